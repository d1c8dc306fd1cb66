//! The protocol as the Rust side speaks it, against tiny `sh` and `python3` children that answer
//! with canned lines (no server involved: what a library does is tested in
//! `tests/clients_external.rs`).

use super::*;
use checker::{Redirect, RedirectKind};
use redis::Value;

fn spec(argv: &[&str]) -> ExternalSpec {
    ExternalSpec {
        name: "canned".into(),
        argv: argv.iter().map(|s| s.to_string()).collect(),
    }
}

/// A `sh` child that says hello, then runs `body` with each request in `$req`.
fn sh(body: &str) -> ExternalSpec {
    let hello = r#"{"type":"hello","client":"canned","version":"1.0","redirects":"seen"}"#;
    let script = format!("read open; echo '{hello}'; while read req; do {body}; done");
    spec(&["sh", "-c", &script])
}

fn seeds() -> Vec<String> {
    vec!["127.0.0.1:30001".into(), "127.0.0.1:30002".into()]
}

async fn open(spec: &ExternalSpec) -> External {
    let config = RouterConfig::default();
    External::open_within(spec, &seeds(), &config, Duration::from_secs(10))
        .await
        .unwrap()
}

fn set(key: &str, value: i64) -> Cmd {
    redis::cmd("SET").arg(key).arg(value).clone()
}

fn info_text(e: &Execution) -> &str {
    match &e.result {
        Err(OpError::Info(text)) => text,
        other => panic!("not info: {other:?}"),
    }
}

fn fail_text(e: &Execution) -> &str {
    match &e.result {
        Err(OpError::Fail(text)) => text,
        other => panic!("not fail: {other:?}"),
    }
}

#[tokio::test]
async fn sends_open_and_requests_as_documented() {
    // Replies with the two lines it read, so the test sees exactly what was sent.
    let echo = r#"
import json, sys
opened = sys.stdin.readline()
print(json.dumps({"type": "hello", "client": "echo", "version": "2", "redirects": "hidden"}),
      flush=True)
for line in sys.stdin:
    req = json.loads(line)
    print(json.dumps({"id": req["id"], "outcome": "ok", "value": [opened.strip(), line.strip()]}),
          flush=True)
"#;
    let mut client = open(&spec(&["python3", "-c", echo])).await;
    let info = client.info();
    assert_eq!((info.name.as_str(), info.version.as_str()), ("echo", "2"));
    assert_eq!(info.redirects, RedirectVisibility::Hidden);
    let got = client.execute(b"register:3", &set("register:3", 5)).await;
    let bulk = |s: &str| Value::BulkString(s.as_bytes().to_vec());
    let open_line =
        r#"{"type":"open","seeds":["127.0.0.1:30001","127.0.0.1:30002"],"timeout_ms":1000}"#;
    let request = r#"{"id":1,"key":"register:3","args":["SET","register:3","5"]}"#;
    assert_eq!(
        got.result,
        Ok(Value::Array(vec![bulk(open_line), bulk(request)]))
    );
    assert_eq!(got.slot, key_slot(b"register:3"));
    assert_eq!((got.node.as_str(), got.redirects.len()), ("", 0));
    let second = client.execute(b"k", redis::cmd("GET").arg("k")).await;
    let Ok(Value::Array(lines)) = second.result else {
        panic!("{second:?}")
    };
    assert_eq!(lines[1], bulk(r#"{"id":2,"key":"k","args":["GET","k"]}"#));
    assert!(
        client.close().await.unwrap().success(),
        "stdin EOF ends the child"
    );
}

#[tokio::test]
async fn replies_become_executions() {
    let replies = r#"case "$req" in
      *'"id":1,'*) echo '{"id":1,"outcome":"ok","value":{"status":"OK"},"error":null,"node":"127.0.0.1:30002","redirects":[{"kind":"ask","slot":5,"from":"127.0.0.1:30001","to":"127.0.0.1:30002"}]}';;
      *'"id":2,'*) echo '{"id":2,"outcome":"fail","value":null,"error":"WRONGTYPE Operation against a key holding the wrong kind of value","node":"127.0.0.1:30001","redirects":[]}';;
      *'"id":3,'*) echo '{"id":3,"outcome":"info","error":"Timeout reading from 127.0.0.1:30001"}';;
      *'"id":4,'*) echo '{"id":4,"outcome":"ok","value":{"nested":1}}';;
      *) echo '{"id":5,"outcome":"ok","value":7}';;
    esac"#;
    let mut client = open(&sh(replies)).await;
    assert_eq!(client.info().redirects, RedirectVisibility::Seen);
    let ok = client.execute(b"k", &set("k", 1)).await;
    assert_eq!(ok.result, Ok(Value::Okay));
    assert_eq!(ok.node, "127.0.0.1:30002");
    let hop = Redirect {
        kind: RedirectKind::Ask,
        slot: 5,
        from: "127.0.0.1:30001".into(),
        to: "127.0.0.1:30002".into(),
    };
    assert_eq!(ok.redirects, vec![hop]);
    let fail = client.execute(b"k", &set("k", 2)).await;
    assert!(fail_text(&fail).starts_with("WRONGTYPE"), "{fail:?}");
    assert_eq!(fail.node, "127.0.0.1:30001");
    let info = client.execute(b"k", &set("k", 3)).await;
    assert_eq!(info_text(&info), "Timeout reading from 127.0.0.1:30001");
    let odd = client.execute(b"k", &set("k", 4)).await;
    assert!(info_text(&odd).contains("unreadable value"), "{odd:?}");
    // The child is still in step after an unreadable value.
    let last = client.execute(b"k", &set("k", 5)).await;
    assert_eq!(last.result, Ok(Value::Int(7)));
}

#[tokio::test]
async fn garbage_and_wrong_ids_end_the_child() {
    let mut client = open(&sh(r#"echo "Traceback: boom" >&2; echo 'not json'"#)).await;
    let got = client.execute(b"k", &set("k", 1)).await;
    let text = info_text(&got);
    assert!(text.contains("not a reply line"), "{text}");
    assert!(text.contains("stderr: Traceback: boom"), "{text}");
    let after = client.execute(b"k", &set("k", 2)).await;
    assert!(fail_text(&after).starts_with("client process gone, nothing sent"));

    let mut client = open(&sh(r#"echo '{"id":9,"outcome":"ok"}'"#)).await;
    let got = client.execute(b"k", &set("k", 1)).await;
    assert!(
        info_text(&got).contains("the reply is for request 9"),
        "{got:?}"
    );
}

#[tokio::test]
async fn a_dead_child_leaves_info_with_its_stderr() {
    let mut client = open(&sh(r#"echo "fatal: lost the cluster" >&2; exit 3"#)).await;
    let got = client.execute(b"k", &set("k", 1)).await;
    let text = info_text(&got);
    assert!(text.contains("closed its stdout"), "{text}");
    assert!(text.contains("exit status: 3"), "{text}");
    assert!(text.contains("stderr: fatal: lost the cluster"), "{text}");
    assert!(client.close().await.is_none(), "already gone");
}

#[tokio::test]
async fn no_reply_within_the_deadline_kills_the_child() {
    let mut client = open(&sh("exec sleep 30")).await;
    client.deadline = Duration::from_millis(300);
    let started = std::time::Instant::now();
    let got = client.execute(b"k", &set("k", 1)).await;
    assert!(
        info_text(&got).contains("no reply within 300 ms"),
        "{got:?}"
    );
    assert!(info_text(&got).contains("signal: 9"), "{got:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    let after = client.execute(b"k", &set("k", 2)).await;
    assert!(fail_text(&after).contains("no reply within 300 ms"));
}

#[tokio::test]
async fn open_failures_say_why() {
    let config = RouterConfig::default();
    let short = Duration::from_millis(500);
    let cases: Vec<(ExternalSpec, &str)> = vec![
        (spec(&[]), "no command line"),
        (
            spec(&["/nonexistent/adapter"]),
            "cannot start /nonexistent/adapter",
        ),
        (
            spec(&[
                "sh",
                "-c",
                r#"read l; echo '{"type":"error","error":"no seed answered"}'"#,
            ]),
            "did not open: no seed answered",
        ),
        (
            spec(&["sh", "-c", "echo 'ModuleNotFoundError: redis' >&2; exit 1"]),
            "stderr: ModuleNotFoundError: redis",
        ),
        (
            spec(&["sh", "-c", "read l; echo hello"]),
            "not a hello line",
        ),
        (
            spec(&["sh", "-c", "exec sleep 30"]),
            "no reply within 500 ms",
        ),
    ];
    for (spec, want) in cases {
        let err = External::open_within(&spec, &seeds(), &config, short)
            .await
            .err()
            .unwrap_or_else(|| panic!("{spec:?} opened"));
        assert!(err.contains(want), "{spec:?}: {err}");
    }
}

#[tokio::test]
async fn what_cannot_be_sent_fails_without_sending() {
    let mut client = open(&sh(r#"echo '{"id":1,"outcome":"ok","value":1}'"#)).await;
    let binary = redis::cmd("SET").arg("k").arg(&[0xffu8][..]).clone();
    assert!(fail_text(&client.execute(b"k", &binary).await).contains("not UTF-8"));
    assert!(fail_text(&client.execute(&[0xff], &set("k", 1)).await).contains("key is not UTF-8"));
    // Nothing was sent: the next request is still number 1.
    let got = client.execute(b"k", &set("k", 1)).await;
    assert_eq!(got.result, Ok(Value::Int(1)));
}

/// A `sh` child of protocol 2 that says hello, then runs `body` with each request in `$req`.
fn sh2(body: &str) -> ExternalSpec {
    let hello =
        r#"{"type":"hello","client":"canned","version":"1.0","redirects":"seen","protocol":2}"#;
    let script = format!("read open; echo '{hello}'; while read req; do {body}; done");
    spec(&["sh", "-c", &script])
}

#[tokio::test]
async fn pipelines_send_every_command_and_read_a_part_each() {
    // Replies with the request line it read as the first part's value, then a fail and an info.
    let echo = r#"
import json, sys
sys.stdin.readline()
print(json.dumps({"type": "hello", "client": "echo", "version": "2", "redirects": "seen",
                  "protocol": 2}), flush=True)
for line in sys.stdin:
    req = json.loads(line)
    hop = {"kind": "ask", "slot": 3, "from": "127.0.0.1:30001", "to": "127.0.0.1:30002"}
    print(json.dumps({"id": req["id"], "replies": [
        {"outcome": "ok", "value": line.strip(), "node": "127.0.0.1:30002", "redirects": [hop]},
        {"outcome": "fail", "error": "ASK 3 127.0.0.1:30002",
         "gave_up": {"kind": "ask", "hops": 0}},
        {"outcome": "info", "error": "Timeout"}]}), flush=True)
"#;
    let mut client = open(&spec(&["python3", "-c", echo])).await;
    let items = vec![
        (b"a".to_vec(), set("a", 1)),
        (b"b".to_vec(), redis::cmd("GET").arg("b").clone()),
        (b"c".to_vec(), set("c", 3)),
    ];
    let done = client.pipeline(&items).await;
    let request = r#"{"id":1,"pipeline":[{"key":"a","args":["SET","a","1"]},{"key":"b","args":["GET","b"]},{"key":"c","args":["SET","c","3"]}]}"#;
    assert_eq!(done[0].result, Ok(Value::BulkString(request.into())));
    assert_eq!(done[0].redirects.len(), 1);
    assert_eq!(done[0].node, "127.0.0.1:30002");
    assert_eq!(fail_text(&done[1]), "ASK 3 127.0.0.1:30002");
    assert_eq!(done[1].gave_up.as_ref().map(|g| g.hops), Some(0));
    assert_eq!(info_text(&done[2]), "Timeout");
    let slots: Vec<u16> = done.iter().map(|e| e.slot).collect();
    assert_eq!(slots, [key_slot(b"a"), key_slot(b"b"), key_slot(b"c")]);
}

#[tokio::test]
async fn a_pipeline_reply_of_the_wrong_size_leaves_every_command_info() {
    let mut client = open(&sh2(
        r#"echo '{"id":1,"replies":[{"outcome":"ok","value":1}]}'"#,
    ))
    .await;
    let items = vec![(b"a".to_vec(), set("a", 1)), (b"b".to_vec(), set("b", 2))];
    let done = client.pipeline(&items).await;
    for e in &done {
        assert!(info_text(e).contains("1 replies to 2 commands"), "{e:?}");
    }
    let after = client.execute(b"a", &set("a", 3)).await;
    assert!(fail_text(&after).starts_with("client process gone, nothing sent"));
}

#[tokio::test]
async fn transactions_read_exec_replies_and_their_errors() {
    let reply = r#"echo '{"id":1,"outcome":"ok","value":[{"status":"OK"},{"error":"WRONGTYPE Operation against a key holding the wrong kind of value"},"5"]}'"#;
    let mut client = open(&sh2(reply)).await;
    let cmds = [set("{t}:1", 5), redis::cmd("INCR").arg("{t}:2").clone()];
    let exec = client.transaction(b"{t}:1", &cmds).await;
    let Ok(Value::Array(values)) = &exec.result else {
        panic!("{exec:?}")
    };
    assert_eq!(values[0], Value::Okay);
    assert!(
        matches!(&values[1], Value::ServerError(e) if e.code() == "WRONGTYPE"),
        "{values:?}"
    );
    assert_eq!(values[2], Value::BulkString(b"5".to_vec()));
    assert_eq!(exec.slot, key_slot(b"{t}:1"));
}

#[tokio::test]
async fn an_adapter_of_protocol_one_is_sent_no_batch() {
    let mut client = open(&sh(r#"echo '{"id":1,"outcome":"ok","value":1}'"#)).await;
    let items = vec![(b"a".to_vec(), set("a", 1))];
    let done = client.pipeline(&items).await;
    assert!(
        fail_text(&done[0]).contains("speaks protocol 1"),
        "{done:?}"
    );
    let exec = client.transaction(b"a", &[set("a", 1)]).await;
    assert!(fail_text(&exec).contains("speaks protocol 1"), "{exec:?}");
    // Nothing was sent: a single request is still number 1.
    let got = client.execute(b"a", &set("a", 1)).await;
    assert_eq!(got.result, Ok(Value::Int(1)));
}
