//! The client adapters (`clients/redis-py`, `clients/node-redis`) against real Redis 7.0 and
//! Valkey 9.1 clusters (no mocks): values, outcomes, and the redirects each library follows while
//! a slot is half migrated (ASK) and after it moved (MOVED). Every server is stopped by the
//! cluster's Drop, also when an assertion fails; each adapter is told to exit (stdin EOF) and must
//! exit 0.
//!
//! A test whose adapter's libraries are not installed (`scripts/setup.sh` installs them) says so
//! and passes, unless SLOTCHECK_REQUIRE_CLIENTS is set (scripts/test.sh sets it): then it fails.

use checker::{Redirect, RedirectKind};
use redis::Value;
use slotcheck::harness::{Admin, ServerKind};
use slotcheck::nemesis::migrate::{open_slot, MigrateOptions, Peer};
use workloads::{key_slot, Execution, External, ExternalSpec, OpError, RouterConfig};

mod support;

/// Slot on the first master (which owns 0-5460 at bring-up).
const SLOT: u16 = 100;
/// Deadline for the cluster to agree again after a change.
const STABLE_TIMEOUT_MS: u64 = 10_000;
/// A compare-and-set on one key, as the register workload's `cas` is: 1 if it set, else 0.
const CAS: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
                   redis.call('SET', KEYS[1], ARGV[2]) return 1 else return 0 end";

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

fn fail_text(e: &Execution) -> &str {
    match &e.result {
        Err(OpError::Fail(text)) => text,
        other => panic!("not fail: {other:?} ({e:?})"),
    }
}

async fn run(client: &mut External, words: &[&str]) -> Execution {
    let mut cmd = redis::cmd(words[0]);
    for w in &words[1..] {
        cmd.arg(*w);
    }
    let key = if words[0] == "EVAL" {
        words[3]
    } else {
        words[1]
    };
    client.execute(key.as_bytes(), &cmd).await
}

fn hop(kind: RedirectKind, from: &Peer, to: &Peer) -> Redirect {
    Redirect {
        kind,
        slot: SLOT,
        from: from.addr.clone(),
        to: to.addr.clone(),
    }
}

async fn adapter_against(name: &str, kind: ServerKind) {
    let Some(spec) = adapter_or_skip(name) else {
        return;
    };
    let cluster = support::start(kind, 3, 0).await;
    let masters = cluster.peers();
    let (src, dst) = (&masters[0], &masters[1]);
    let config = RouterConfig::default();
    let mut client = External::open(&spec, &cluster.seeds(), &config)
        .await
        .unwrap();
    let info = client.info();
    eprintln!("{name}: {info:?}");
    assert_eq!(info.name, name);

    // Values and outcomes on a stable cluster.
    let ok = run(&mut client, &["SET", "r1", "5"]).await;
    assert_eq!(ok.result, Ok(Value::Okay), "{ok:?}");
    assert_eq!((ok.slot, ok.redirects.len()), (key_slot(b"r1"), 0));
    assert!(!ok.node.is_empty(), "{ok:?}");
    assert_eq!(run(&mut client, &["GET", "r1"]).await.result, Ok(bulk("5")));
    assert_eq!(
        run(&mut client, &["GET", "absent"]).await.result,
        Ok(Value::Nil)
    );
    assert_eq!(
        run(&mut client, &["INCR", "n"]).await.result,
        Ok(Value::Int(1))
    );
    assert_eq!(
        run(&mut client, &["INCR", "n"]).await.result,
        Ok(Value::Int(2))
    );
    let cas = |expected: &'static str, new: &'static str| ["EVAL", CAS, "1", "r1", expected, new];
    assert_eq!(
        run(&mut client, &cas("5", "6")).await.result,
        Ok(Value::Int(1))
    );
    assert_eq!(
        run(&mut client, &cas("5", "7")).await.result,
        Ok(Value::Int(0))
    );
    assert_eq!(run(&mut client, &["GET", "r1"]).await.result, Ok(bulk("6")));
    run(&mut client, &["SET", "word", "abc"]).await;
    let refused = run(&mut client, &["INCR", "word"]).await;
    assert!(
        fail_text(&refused).contains("not an integer"),
        "{refused:?}"
    );

    // Half migrated: one key moved to the target; the library must follow ASK for it.
    let keys = support::keys_for(SLOT, 2);
    for key in &keys {
        let set = run(&mut client, &["SET", key.as_str(), "1"]).await;
        assert_eq!(set.result, Ok(Value::Okay), "{set:?}");
        assert_eq!(set.node, src.addr);
    }
    let recorder = cluster.recorder();
    let opts = MigrateOptions {
        step_pause_ms: 0,
        ..MigrateOptions::default()
    };
    let mut open = open_slot(&recorder, SLOT, src, dst, &opts).await.unwrap();
    let (host, port) = dst.addr.rsplit_once(':').unwrap();
    let mut admin = Admin::connect(&src.addr).await.unwrap();
    let migrate = [
        "MIGRATE",
        host,
        port,
        "",
        "0",
        "5000",
        "KEYS",
        keys[0].as_str(),
    ];
    admin.run::<()>(&migrate).await.unwrap();
    let asked = run(&mut client, &["SET", keys[0].as_str(), "2"]).await;
    eprintln!("{name}: SET during migration: {asked:?}");
    assert_eq!(asked.result, Ok(Value::Okay), "{asked:?}");
    assert_eq!(asked.node, dst.addr, "{asked:?}");
    assert_eq!(asked.redirects, vec![hop(RedirectKind::Ask, src, dst)]);
    let stayed = run(&mut client, &["GET", keys[1].as_str()]).await;
    assert_eq!(stayed.result, Ok(bulk("1")));
    assert_eq!(
        (stayed.node.as_str(), stayed.redirects.len()),
        (src.addr.as_str(), 0)
    );

    // Moved: the library still maps the slot to the source, which now answers MOVED.
    assert!(open.move_batches(10).await.unwrap(), "the slot drained");
    open.finalize(&masters[2..]).await.unwrap();
    cluster.wait_stable(STABLE_TIMEOUT_MS).await.unwrap();
    let moved = run(&mut client, &["GET", keys[0].as_str()]).await;
    eprintln!("{name}: GET after migration: {moved:?}");
    assert_eq!(moved.result, Ok(bulk("2")));
    assert_eq!(moved.node, dst.addr, "{moved:?}");
    assert_eq!(moved.redirects, vec![hop(RedirectKind::Moved, src, dst)]);
    let again = run(&mut client, &["GET", keys[1].as_str()]).await;
    assert_eq!((again.result, again.redirects.len()), (Ok(bulk("1")), 0));
    recorder.close().unwrap();

    let status = client.close().await.expect("the adapter was running");
    assert!(status.success(), "{name} exits 0 at stdin EOF: {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_py_values_outcomes_and_redirects_redis() {
    adapter_against("redis-py", ServerKind::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_redis_values_outcomes_and_redirects_redis() {
    adapter_against("node-redis", ServerKind::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_py_values_outcomes_and_redirects_valkey() {
    adapter_against("redis-py", ServerKind::Valkey).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_redis_values_outcomes_and_redirects_valkey() {
    adapter_against("node-redis", ServerKind::Valkey).await;
}

/// A node killed before the first operation on its key: the operation cannot reach it, and both
/// adapters must say it certainly did not happen (`fail`: redis-py's connects are refused;
/// node-redis's command times out unsent in its offline queue). (Had redis-py used the node
/// before, its pooled connection would take the write and then find the node gone: `info`.)
async fn dead_node_is_fail(name: &str) {
    let Some(spec) = adapter_or_skip(name) else {
        return;
    };
    let cluster = support::start(ServerKind::Redis, 3, 0).await;
    let config = RouterConfig {
        timeout_ms: 1000,
        ..RouterConfig::default()
    };
    let mut client = External::open(&spec, &cluster.seeds(), &config)
        .await
        .unwrap();
    // `k` is in slot 7629, which the second master owns at bring-up (5461-10922).
    let owner = cluster.masters().nth(1).unwrap().addr.clone();
    cluster.kill(&owner).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let started = std::time::Instant::now();
    let lost = run(&mut client, &["SET", "k", "2"]).await;
    eprintln!("{name}: after {:?}: {lost:?}", started.elapsed());
    assert!(matches!(lost.result, Err(OpError::Fail(_))), "{lost:?}");
    assert_eq!(lost.node, owner, "the node tried last");
    assert!(client.close().await.unwrap().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_py_dead_node_is_fail() {
    dead_node_is_fail("redis-py").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_redis_dead_node_is_fail() {
    dead_node_is_fail("node-redis").await;
}

/// A cluster that lost a master (no replicas) answers CLUSTERDOWN for every slot: an error reply,
/// so `fail`. redis-py retries it (each retry a `clusterdown` hop from the node that said it; the
/// one it gave up on is the error); node-redis does not (no hop).
async fn cluster_down_is_fail(name: &str) {
    let Some(spec) = adapter_or_skip(name) else {
        return;
    };
    let cluster = support::start(ServerKind::Redis, 3, 0).await;
    let mut client = External::open(&spec, &cluster.seeds(), &RouterConfig::default())
        .await
        .unwrap();
    let masters: Vec<String> = cluster.masters().map(|n| n.addr.clone()).collect();
    cluster.kill(&masters[1]).await.unwrap();
    let mut admin = Admin::connect(&masters[0]).await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_millis(STABLE_TIMEOUT_MS);
    while !admin
        .text(&["CLUSTER", "INFO"])
        .await
        .unwrap()
        .contains("cluster_state:fail")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the cluster never failed"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let key = &support::keys_for(SLOT, 1)[0];
    let down = run(&mut client, &["GET", key.as_str()]).await;
    eprintln!("{name}: {down:?}");
    assert!(fail_text(&down).starts_with("CLUSTERDOWN"), "{down:?}");
    // The CLUSTERDOWN it gave up on, after the hops it followed (none for node-redis).
    let gave_up = down.gave_up.clone().expect("gave_up");
    assert_eq!(gave_up.kind, RedirectKind::ClusterDown, "{down:?}");
    assert_eq!(gave_up.hops, down.redirects.len(), "{down:?}");
    assert!(
        gave_up.reply.unwrap().starts_with("CLUSTERDOWN"),
        "{down:?}"
    );
    let hops: Vec<(RedirectKind, &str)> = down
        .redirects
        .iter()
        .map(|r| (r.kind, r.from.as_str()))
        .collect();
    match name {
        "redis-py" => {
            assert!(!hops.is_empty(), "{down:?}");
            assert!(hops
                .iter()
                .all(|&h| h == (RedirectKind::ClusterDown, masters[0].as_str())));
        }
        _ => assert!(hops.is_empty(), "{down:?}"),
    }
    assert!(client.close().await.unwrap().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_py_cluster_down_is_fail() {
    cluster_down_is_fail("redis-py").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_redis_cluster_down_is_fail() {
    cluster_down_is_fail("node-redis").await;
}

/// A command still running on the server when the client's timeout passes may have happened:
/// `info`, whether the client gives up at once (the node-redis adapter, after `timeout_ms`) or
/// resends first (redis-py, until its retries run out or the server answers BUSY once the script
/// passed its time limit).
async fn timeout_is_info(name: &str) {
    let Some(spec) = adapter_or_skip(name) else {
        return;
    };
    let cluster = support::start(ServerKind::Redis, 3, 0).await;
    let config = RouterConfig {
        timeout_ms: 1000,
        ..RouterConfig::default()
    };
    let mut client = External::open(&spec, &cluster.seeds(), &config)
        .await
        .unwrap();
    let owner = run(&mut client, &["GET", "k"]).await.node;
    // Opened before the script runs: a busy server answers no handshake.
    let mut admin = Admin::connect_with_timeout(&owner, 15_000).await.unwrap();
    // Spins for 20 s unless killed (it writes nothing, so SCRIPT KILL may end it).
    let spin = "local t = redis.call('TIME') local e = t[1] * 1000000 + t[2] + 20000000 \
                repeat t = redis.call('TIME') until t[1] * 1000000 + t[2] > e return 1";
    let started = std::time::Instant::now();
    let slow = run(&mut client, &["EVAL", spin, "1", "k"]).await;
    eprintln!("{name}: after {:?}: {slow:?}", started.elapsed());
    assert!(matches!(slow.result, Err(OpError::Info(_))), "{slow:?}");
    admin.run::<()>(&["SCRIPT", "KILL"]).await.unwrap();
    // SCRIPT KILL answers before the script has stopped: a request in between still gets BUSY.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let after = loop {
        let after = run(&mut client, &["GET", "k"]).await;
        match &after.result {
            Err(OpError::Fail(e))
                if e.starts_with("BUSY") && std::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            _ => break after,
        }
    };
    assert_eq!(after.result, Ok(Value::Nil), "{after:?}");
    assert!(client.close().await.unwrap().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_py_timeout_is_info() {
    timeout_is_info("redis-py").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_redis_timeout_is_info() {
    timeout_is_info("node-redis").await;
}

/// A redirect loop made by hand: the source says MIGRATING to a target that does not import the
/// slot, so the source ASKs a missing key to the target, and the target, asked, sends it back
/// with MOVED. Each client follows the loop to its limit and gives up: the op fails, its hops
/// alternate `ASK src→dst` and `MOVED dst→src`, and `gave_up` holds the reply it gave up on
/// (redis-py: "TTL exhausted." after 16 replies; node-redis: the 17th reply itself; oldlib: the
/// 17th reply).
async fn redirect_loop_gives_up(spec: ExternalSpec) {
    let name = spec.name.clone();
    let cluster = support::start(ServerKind::Redis, 3, 0).await;
    let masters = cluster.peers();
    let (src, dst) = (&masters[0], &masters[1]);
    let mut client = External::open(&spec, &cluster.seeds(), &RouterConfig::default())
        .await
        .unwrap();
    let mut admin = Admin::connect(&src.addr).await.unwrap();
    let slot = SLOT.to_string();
    let migrating = ["CLUSTER", "SETSLOT", &slot, "MIGRATING", &dst.id];
    admin.run::<()>(&migrating).await.unwrap();
    let key = &support::keys_for(SLOT, 1)[0];
    let lost = run(&mut client, &["SET", key.as_str(), "1"]).await;
    eprintln!("{name}: {lost:?}");
    assert!(matches!(lost.result, Err(OpError::Fail(_))), "{lost:?}");
    let gave_up = lost.gave_up.clone().expect("gave_up");
    assert_eq!(gave_up.hops, lost.redirects.len(), "{lost:?}");
    assert!(gave_up.hops >= 15, "{lost:?}");
    let reply = gave_up.reply.clone().unwrap();
    let want = match gave_up.kind {
        RedirectKind::Ask => format!("ASK {SLOT} {}", dst.addr),
        RedirectKind::Moved => format!("MOVED {SLOT} {}", src.addr),
        other => panic!("{name} gave up on {other:?}: {lost:?}"),
    };
    assert_eq!(reply, want, "{lost:?}");
    for (i, hop) in lost.redirects.iter().enumerate() {
        let want = match i % 2 {
            0 => (RedirectKind::Ask, &src.addr, &dst.addr),
            _ => (RedirectKind::Moved, &dst.addr, &src.addr),
        };
        assert_eq!((hop.kind, &hop.from, &hop.to), want, "hop {i}: {lost:?}");
    }
    assert!(client.close().await.unwrap().success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_py_redirect_loop_gives_up() {
    if let Some(spec) = adapter_or_skip("redis-py") {
        redirect_loop_gives_up(spec).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_redis_redirect_loop_gives_up() {
    if let Some(spec) = adapter_or_skip("node-redis") {
        redirect_loop_gives_up(spec).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oldlib_redirect_loop_gives_up() {
    let script = slotcheck::clients::clients_dir().join("oldlib/adapter.py");
    let spec = ExternalSpec {
        name: "oldlib".into(),
        argv: vec!["python3".into(), script.display().to_string()],
    };
    redirect_loop_gives_up(spec).await;
}
