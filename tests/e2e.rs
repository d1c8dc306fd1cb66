//! End to end against real servers: `slotcheck test` on a real cluster, then the checker on the
//! recorded history, on its mutations, and on the history of a run killed with SIGKILL.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use slotcheck::harness::pid_alive;
use support::slotcheck;

mod support;

fn run_ok(cmd: &mut Command) -> Output {
    let out = cmd.output().expect("run slotcheck");
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    out
}

/// Runs a short migration test and returns its output directory.
fn short_test(server: &str, dir: &Path) -> Output {
    run_ok(slotcheck().args([
        "test",
        "--server",
        server,
        "--masters",
        "3",
        "--clients",
        "10",
        "--keys",
        "20",
        "--duration",
        "8s",
        "--migrate-interval",
        "1200ms",
        "--seed",
        "7",
        "--output",
        dir.to_str().unwrap(),
    ]))
}

fn write_lines(path: &Path, lines: &[Value]) {
    let text: String = lines.iter().map(|v| format!("{v}\n")).collect();
    std::fs::write(path, text).unwrap();
}

fn check(history: &Path) -> (i32, String) {
    let out = run_ok(slotcheck().arg("check").arg(history));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    (out.status.code().unwrap_or(-1), stdout)
}

/// A real run is valid, saw MOVED and ASK, left no server behind; its mutations are invalid.
fn end_to_end(server: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let out = short_test(server, &dir);
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    assert_eq!(out.status.code(), Some(0), "run is valid: {stdout}");
    let history = dir.join("history.jsonl");
    assert!(
        stdout.contains(history.to_str().unwrap()),
        "prints the history path"
    );

    let results: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap();
    assert_eq!(results["valid"], Value::Bool(true));
    let verified: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("verify.json")).unwrap()).unwrap();
    assert_eq!(
        verified["anomalies"],
        Value::Array(Vec::new()),
        "{verified:#}"
    );
    assert_eq!(
        verified["history_keys_checked"], 20,
        "every key's final value judged"
    );
    let lines = support::read_lines(&history);
    let hops = |kind: &str| {
        lines
            .iter()
            .filter_map(|l| l["redirects"].as_array())
            .flatten()
            .filter(|r| r["kind"] == kind)
            .count()
    };
    assert!(hops("moved") > 0, "the run recorded MOVED redirects");
    assert!(hops("ask") > 0, "the run recorded ASK redirects");
    let migrations = lines.iter().filter(|l| l["f"] == "migrate-end").count();
    assert!(migrations >= 3, "at least 3 migrations, got {migrations}");
    support::assert_no_server_left(&history);

    let stale = tmp.path().join("stale.jsonl");
    write_lines(&stale, &inject_stale_read(&lines));
    let (code, text) = check(&stale);
    assert_eq!(code, 1, "a stale read is invalid: {text}");

    let phantom = tmp.path().join("phantom.jsonl");
    write_lines(&phantom, &inject_phantom_read(&lines));
    let (code, text) = check(&phantom);
    assert_eq!(code, 1, "a phantom read is invalid: {text}");
}

#[test]
fn redis_end_to_end() {
    end_to_end("redis");
}

#[test]
fn valkey_end_to_end() {
    end_to_end("valkey");
}

/// `--json` prints `results.json` on stdout, and only that: verdict, counts and the run's config.
#[test]
fn json_run_prints_the_results() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let out = run_ok(slotcheck().args([
        "test",
        "--duration",
        "3s",
        "--seed",
        "5",
        "--json",
        "--output",
        dir.to_str().unwrap(),
    ]));
    let printed: Value = serde_json::from_slice(&out.stdout).expect("stdout is one JSON value");
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap();
    assert_eq!(printed, saved);
    assert_eq!(out.status.code(), Some(0), "{printed}");
    assert_eq!(printed["valid"], Value::Bool(true));
    assert_eq!(printed["run"]["seed"], 5);
    assert_eq!(printed["run"]["server"], "redis");
    assert!(printed["run"]["server_version"]
        .as_str()
        .unwrap()
        .starts_with("7."));
}

/// Completed `ok` ops per key as (invoke time, complete time, f, value, index of completion line).
struct OkOp {
    invoke: u64,
    complete: u64,
    f: String,
    value: Value,
    line: usize,
}

fn ok_ops(lines: &[Value]) -> Vec<(String, OkOp)> {
    let mut open: std::collections::HashMap<u64, (u64, String)> = Default::default();
    let mut ops = Vec::new();
    for (i, l) in lines.iter().enumerate() {
        let Some(p) = l["process"].as_u64() else {
            continue;
        };
        let t = l["time"].as_u64().unwrap();
        match l["type"].as_str().unwrap() {
            "invoke" => {
                // A multi-key op (`txn`, no key) is not rewritten: its key is empty.
                open.insert(p, (t, l["key"].as_str().unwrap_or_default().to_string()));
            }
            "ok" => {
                let (invoke, key) = open.remove(&p).unwrap();
                let op = OkOp {
                    invoke,
                    complete: t,
                    f: l["f"].as_str().unwrap().to_string(),
                    value: l["value"].clone(),
                    line: i,
                };
                if !key.is_empty() {
                    ops.push((key, op));
                }
            }
            _ => {
                open.remove(&p);
            }
        }
    }
    ops
}

/// Rewrites one read so that it returns a value overwritten before the read began:
/// write A completes, then write B is invoked and completes, then the read is invoked.
fn inject_stale_read(lines: &[Value]) -> Vec<Value> {
    let ops = ok_ops(lines);
    for (key, read) in ops.iter().filter(|(_, o)| o.f == "read") {
        let writes: Vec<&OkOp> = ops
            .iter()
            .filter(|(k, o)| k == key && o.f == "write" && o.complete < read.invoke)
            .map(|(_, o)| o)
            .collect();
        for a in &writes {
            let overwritten = writes
                .iter()
                .any(|b| b.invoke > a.complete && b.value != a.value);
            if overwritten && read.value != a.value {
                let mut out = lines.to_vec();
                out[read.line]["value"] = a.value.clone();
                return out;
            }
        }
    }
    panic!("no read in the history can be made stale");
}

/// Rewrites one read so that it returns a value nobody wrote.
fn inject_phantom_read(lines: &[Value]) -> Vec<Value> {
    let ops = ok_ops(lines);
    let (_, read) = ops
        .iter()
        .find(|(_, o)| o.f == "read")
        .expect("a read in the history");
    let mut out = lines.to_vec();
    out[read.line]["value"] = Value::from(987_654_321_u64);
    out
}

/// A run killed with SIGKILL takes its servers with it and leaves a checkable history.
#[test]
fn killed_run_leaves_no_server_and_a_readable_history() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let history = dir.join("history.jsonl");
    let mut child = slotcheck()
        .args([
            "test",
            "--server",
            "redis",
            "--duration",
            "60s",
            "--clients",
            "5",
        ])
        .args(["--seed", "3", "--output", dir.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::read_to_string(&history)
        .map(|t| t.lines().count() < 200)
        .unwrap_or(true)
    {
        assert!(Instant::now() < deadline, "the run recorded nothing");
        std::thread::sleep(Duration::from_millis(100));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let pids = support::node_pids(&history);
    let deadline = Instant::now() + Duration::from_secs(5);
    while pids.iter().any(|&p| pid_alive(p)) {
        assert!(Instant::now() < deadline, "servers outlived a killed run");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Cut the last line in the middle, as a crash during a write would.
    let mut text = std::fs::read_to_string(&history).unwrap();
    text.truncate(text.len() - 7);
    let cut = tmp.path().join("cut.jsonl");
    std::fs::write(&cut, &text).unwrap();
    let out = slotcheck().arg("check").arg(&cut).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cut short"),
        "warns about the cut line: {stderr}"
    );
    assert!(
        matches!(out.status.code(), Some(0..=2)),
        "gives a verdict: {stderr}"
    );
}

/// A malformed history is rejected with its line and field, exit code 254.
#[test]
fn malformed_history_names_line_and_field() {
    let tmp = tempfile::tempdir().unwrap();
    let path: PathBuf = tmp.path().join("bad.jsonl");
    std::fs::write(
        &path,
        concat!(
            r#"{"type":"invoke","process":0,"f":"write","key":"k","value":1,"time":10}"#,
            "\n",
            r#"{"type":"ok","process":0,"f":"write","key":"k","value":1,"time":-5}"#,
            "\n"
        ),
    )
    .unwrap();
    let out = slotcheck().arg("check").arg(&path).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(254), "{stderr}");
    assert!(stderr.contains("bad.jsonl:2"), "names the line: {stderr}");
    assert!(stderr.contains("field `time`"), "names the field: {stderr}");
}
