//! The adapter protocol's batch requests (protocol 2) through the redis-py and node-redis
//! adapters, against real Redis 7.0 and Valkey 9.1 clusters: a pipeline's values come back one
//! per command in order, a transaction's value is `EXEC`'s replies, and a pipeline that meets a
//! half-migrated slot reports what each library does with the `ASK` (redis-py resends the
//! command alone and follows it, its hops recorded on that command; node-redis follows no
//! redirect in a pipeline and rejects the slot's whole group, so its commands are `info`).
//!
//! A test whose adapter's libraries are not installed (`scripts/setup.sh` installs them) says so
//! and passes, unless SLOTCHECK_REQUIRE_CLIENTS is set: then it fails.

use checker::RedirectKind;
use redis::{Cmd, Value};
use slotcheck::harness::{Admin, ServerKind};
use slotcheck::nemesis::migrate::{open_slot, MigrateOptions};
use workloads::{key_slot, Execution, External, ExternalSpec, OpError, RouterConfig};

mod support;

/// Slot on the first master (which owns 0-5460 at bring-up).
const SLOT: u16 = 100;

/// The adapter, `None` (after saying so) if it is not installed and not required.
fn adapter_or_skip(name: &str) -> Option<ExternalSpec> {
    match slotcheck::clients::adapter(name) {
        Ok(spec) => Some(spec),
        Err(why) if std::env::var_os("SLOTCHECK_REQUIRE_CLIENTS").is_none() => {
            eprintln!("SKIPPED {name}: {why}; run scripts/setup.sh to install it");
            None
        }
        Err(why) => panic!("{name}: {why} (SLOTCHECK_REQUIRE_CLIENTS is set)"),
    }
}

fn bulk(s: &str) -> Value {
    Value::BulkString(s.as_bytes().to_vec())
}

fn cmd(words: &[&str]) -> Cmd {
    let mut cmd = redis::cmd(words[0]);
    for w in &words[1..] {
        cmd.arg(*w);
    }
    cmd
}

/// `(key, command)` items of a pipeline, the key being each command's second word.
fn items(commands: &[&[&str]]) -> Vec<(Vec<u8>, Cmd)> {
    let item = |words: &&[&str]| (words[1].as_bytes().to_vec(), cmd(words));
    commands.iter().map(item).collect()
}

fn results(done: &[Execution]) -> Vec<Result<Value, OpError>> {
    done.iter().map(|e| e.result.clone()).collect()
}

async fn batches_against(name: &str, kind: ServerKind) {
    let Some(spec) = adapter_or_skip(name) else {
        return;
    };
    let cluster = support::start(kind, 3, 0).await;
    let masters = cluster.peers();
    let (src, dst) = (&masters[0], &masters[1]);
    let mut client = External::open(&spec, &cluster.seeds(), &RouterConfig::default())
        .await
        .unwrap();

    // A pipeline over keys of several slots: one result per command, in order.
    let pipeline: &[&[&str]] = &[
        &["SET", "a", "1"],
        &["SET", "b", "2"],
        &["GET", "a"],
        &["INCR", "n"],
        &["GET", "absent"],
        &["GET", "b"],
    ];
    let done = client.pipeline(&items(pipeline)).await;
    eprintln!("{name}: pipeline: {done:?}");
    let want = [
        Ok(Value::Okay),
        Ok(Value::Okay),
        Ok(bulk("1")),
        Ok(Value::Int(1)),
        Ok(Value::Nil),
        Ok(bulk("2")),
    ];
    assert_eq!(results(&done), want);
    let slots: Vec<u16> = done.iter().map(|e| e.slot).collect();
    let keys = ["a", "b", "a", "n", "absent", "b"];
    assert_eq!(slots, keys.map(|k| key_slot(k.as_bytes())));

    // A transaction on one slot: EXEC's replies, one a command.
    let tagged = support::keys_for(SLOT, 2);
    let txn = [
        cmd(&["SET", &tagged[0], "5"]),
        cmd(&["INCR", &tagged[1]]),
        cmd(&["GET", &tagged[0]]),
    ];
    let exec = client.transaction(tagged[0].as_bytes(), &txn).await;
    eprintln!("{name}: transaction: {exec:?}");
    let want = Value::Array(vec![Value::Okay, Value::Int(1), bulk("5")]);
    assert_eq!(exec.result, Ok(want));
    assert_eq!(exec.slot, SLOT);

    // Half migrated: the first key moved to the target, the second still on the source.
    let recorder = cluster.recorder();
    let opts = MigrateOptions {
        step_pause_ms: 0,
        ..MigrateOptions::default()
    };
    let _open = open_slot(&recorder, SLOT, src, dst, &opts).await.unwrap();
    let (host, port) = dst.addr.rsplit_once(':').unwrap();
    let mut admin = Admin::connect(&src.addr).await.unwrap();
    let migrate = ["MIGRATE", host, port, "", "0", "5000", "KEYS", &tagged[0]];
    admin.run::<()>(&migrate).await.unwrap();
    let asked: &[&[&str]] = &[&["SET", &tagged[0], "6"], &["GET", &tagged[1]]];
    let done = client.pipeline(&items(asked)).await;
    eprintln!("{name}: pipeline during migration: {done:?}");
    match name {
        "redis-py" => {
            assert_eq!(results(&done), [Ok(Value::Okay), Ok(bulk("1"))]);
            let set = &done[0];
            assert_eq!(set.node, dst.addr, "{set:?}");
            let first = set.redirects.first().expect("the ASK is a hop of the SET");
            assert_eq!(first.kind, RedirectKind::Ask, "{set:?}");
            assert_eq!((&first.from, &first.to), (&src.addr, &dst.addr));
            assert!(done[1].redirects.is_empty(), "{:?}", done[1]);
        }
        _ => {
            for e in &done {
                let text = match &e.result {
                    Err(OpError::Info(text)) => text,
                    other => panic!("not info: {other:?}"),
                };
                assert!(text.contains("rejected the whole pipeline"), "{text}");
            }
        }
    }
    recorder.close().unwrap();
    let status = client.close().await.expect("the adapter was running");
    assert!(status.success(), "{name} exits 0 at stdin EOF: {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_py_batches_redis() {
    batches_against("redis-py", ServerKind::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_redis_batches_redis() {
    batches_against("node-redis", ServerKind::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_py_batches_valkey() {
    batches_against("redis-py", ServerKind::Valkey).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_redis_batches_valkey() {
    batches_against("node-redis", ServerKind::Valkey).await;
}
