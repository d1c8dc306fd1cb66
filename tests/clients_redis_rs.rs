//! redis-rs's async cluster client as a client under test, against real 3-master clusters (no
//! mocks): values, the redirects it follows out of sight (ASK during a half-migrated slot, MOVED
//! after), and what it does when a request may be lost (a paused master, a connection killed before
//! the command ran, a reply lost after it ran). Every server is stopped by the cluster's Drop, also
//! when an assertion fails.

use std::time::{Duration, Instant};

use checker::{Redirect, RedirectKind};
use redis::{Cmd, Value};
use slotcheck::harness::{Admin, ServerKind};
use workloads::{Execution, OpError, RedirectVisibility, RedisRs, RouterConfig};

mod support;

/// A slot of the first master (which owns 0-5460 at bring-up).
const SLOT: u16 = 100;
/// A pause shorter than this node timeout leaves the cluster healthy (no FAIL, no CLUSTERDOWN).
const NODE_TIMEOUT_MS_LONG: u64 = 15_000;
/// Rounds of the pause scenario, to see how often a timed-out INCR runs twice.
const PAUSE_ROUNDS: usize = 5;

/// A running cluster and its masters as `(addr, id)`.
struct Setup {
    cluster: support::TestCluster,
    masters: Vec<(String, String)>,
}

async fn setup(kind: ServerKind, node_timeout_ms: Option<u64>) -> Setup {
    let cluster = support::start_with(kind, 3, 0, |spec| {
        if let Some(ms) = node_timeout_ms {
            spec.node_timeout_ms = ms;
        }
    })
    .await;
    let masters = cluster
        .masters()
        .map(|n| (n.addr.clone(), n.id.clone()))
        .collect();
    Setup { cluster, masters }
}

async fn open(s: &Setup, timeout_ms: u64) -> RedisRs {
    let config = RouterConfig {
        timeout_ms,
        ..RouterConfig::default()
    };
    RedisRs::open(&s.cluster.seeds(), &config).await.unwrap()
}

fn cmd(words: &[&str]) -> Cmd {
    let mut cmd = redis::cmd(words[0]);
    for w in &words[1..] {
        cmd.arg(*w);
    }
    cmd
}

async fn run(rs: &mut RedisRs, words: &[&str]) -> Execution {
    rs.execute(words[1].as_bytes(), &cmd(words)).await
}

fn bulk(s: &str) -> Value {
    Value::BulkString(s.as_bytes().to_vec())
}

/// The last op's requests as `(node, command, reply)`.
fn trace(rs: &RedisRs) -> Vec<(String, String, String)> {
    rs.last_requests()
        .iter()
        .map(|s| (s.node.clone(), s.command.clone(), s.reply.clone()))
        .collect()
}

/// Reads `key` straight from `addr` with a fresh admin connection (after the client's tricks).
async fn read_int(addr: &str, key: &str) -> i64 {
    let mut admin = Admin::connect(addr).await.unwrap();
    admin.run::<i64>(&["GET", key]).await.unwrap()
}

/// `CLUSTER SETSLOT <SLOT> <how> <id>` on `addr`.
async fn setslot(addr: &str, how: &str, id: &str) {
    let mut admin = Admin::connect(addr).await.unwrap();
    let slot = SLOT.to_string();
    let words = ["CLUSTER", "SETSLOT", &slot, how, id];
    admin.run::<()>(&words).await.unwrap();
}

/// (a) Values come back right; a refusal is `fail` with the node that refused it.
async fn values_are_right(kind: ServerKind) {
    let s = setup(kind, None).await;
    let mut rs = open(&s, 2000).await;
    let info = rs.info();
    assert_eq!(
        (info.name.as_str(), info.version.as_str()),
        ("redis-rs", "1.8.1")
    );
    assert_eq!(info.redirects, RedirectVisibility::Seen);
    for (i, slot) in [SLOT, 6000, 12000].into_iter().enumerate() {
        let owner = &s.masters[i].0;
        let keys = support::keys_for(slot, 3);
        let (text, counter, script) = (&keys[0], &keys[1], &keys[2]);
        let set = run(&mut rs, &["SET", text, "v"]).await;
        assert_eq!(
            (set.result, &set.node, set.slot),
            (Ok(Value::Okay), owner, slot)
        );
        assert!(set.redirects.is_empty());
        assert_eq!(run(&mut rs, &["GET", text]).await.result, Ok(bulk("v")));
        let want = (owner.clone(), "GET".to_string(), "ok".to_string());
        assert_eq!(trace(&rs), vec![want]);
        for n in 1..=3 {
            assert_eq!(
                run(&mut rs, &["INCR", counter]).await.result,
                Ok(Value::Int(n))
            );
        }
        let incrby = "return redis.call('INCRBY', KEYS[1], ARGV[1])";
        for n in [5, 10] {
            let e = rs
                .execute(script.as_bytes(), &cmd(&["EVAL", incrby, "1", script, "5"]))
                .await;
            assert_eq!((e.result, &e.node), (Ok(Value::Int(n)), owner));
        }
        let refused = run(&mut rs, &["INCR", text]).await;
        let text = "ERR value is not an integer or out of range".to_string();
        assert_eq!(
            (refused.result, &refused.node),
            (Err(OpError::Fail(text)), owner)
        );
    }
    // The observer's username never reached a server (no AUTH): every client is the default user.
    let mut admin = Admin::connect(&s.masters[0].0).await.unwrap();
    let clients = admin.text(&["CLIENT", "LIST"]).await.unwrap();
    assert!(
        clients.lines().all(|l| l.contains(" user=default ")),
        "{clients}"
    );
    if kind == ServerKind::Valkey {
        // The version the history names is the one the library tells the server.
        let lib = format!("lib-name=redis-rs lib-ver={}", info.version);
        assert!(clients.lines().any(|l| l.contains(&lib)), "{clients}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_are_right_redis() {
    values_are_right(ServerKind::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_are_right_valkey() {
    values_are_right(ServerKind::Valkey).await;
}

/// (b) A half-migrated slot: the moved key is read through `ASK` (listed), the others stay; after
/// `SETSLOT NODE` the next op meets `MOVED` (listed) and the library learns the new owner.
async fn ask_then_moved(kind: ServerKind) {
    let s = setup(kind, None).await;
    let ((src, src_id), (dst, dst_id)) = (&s.masters[0], &s.masters[1]);
    let keys = support::keys_for(SLOT, 2);
    let (moved, stays) = (&keys[0], &keys[1]);
    let mut rs = open(&s, 2000).await;
    for key in [moved, stays] {
        let e = run(&mut rs, &["SET", key, key]).await;
        assert_eq!((e.result, &e.node), (Ok(Value::Okay), src));
    }
    setslot(dst, "IMPORTING", src_id).await;
    setslot(src, "MIGRATING", dst_id).await;
    let mut admin_src = Admin::connect(src).await.unwrap();
    let (host, port) = dst.rsplit_once(':').unwrap();
    let migrate = [
        "MIGRATE",
        host,
        port,
        "",
        "0",
        "5000",
        "KEYS",
        moved.as_str(),
    ];
    admin_src.run::<String>(&migrate).await.unwrap();

    let ask = |from: &str, to: &str| Redirect {
        kind: RedirectKind::Ask,
        slot: SLOT,
        from: from.into(),
        to: to.into(),
    };
    let e = run(&mut rs, &["GET", moved]).await;
    eprintln!(
        "{kind}: GET during migration: {e:?}\n  requests {:?}",
        trace(&rs)
    );
    assert_eq!((e.result, &e.node), (Ok(bulk(moved)), dst));
    assert_eq!(e.redirects, vec![ask(src, dst)]);
    let sent: Vec<(String, String)> = trace(&rs).into_iter().map(|(n, c, _)| (n, c)).collect();
    let want = [(src, "GET"), (dst, "ASKING"), (dst, "GET")];
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(n, c)| (n.to_string(), c.to_string()))
        .collect();
    assert_eq!(sent, want, "ASKING goes as a request of its own");
    assert!(trace(&rs)[0].2.starts_with(&format!("ASK {SLOT} ")));
    // ASK leaves the library's slot map alone: the next write is asked again.
    let e = run(&mut rs, &["SET", moved, "again"]).await;
    assert_eq!(
        (e.result, e.redirects),
        (Ok(Value::Okay), vec![ask(src, dst)])
    );
    let e = run(&mut rs, &["GET", stays]).await;
    assert_eq!(
        (e.result, &e.node, e.redirects.len()),
        (Ok(bulk(stays)), src, 0)
    );

    setslot(dst, "NODE", dst_id).await;
    // The source still holds `stays`: it accepts `SETSLOT NODE` only once gossip has told it
    // that the target owns the slot now (Redis and Valkey refuse to hand away a slot they hold
    // keys of), which may take a moment on a loaded machine.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut admin = Admin::connect(src).await.unwrap();
        let words = [
            "CLUSTER",
            "SETSLOT",
            &SLOT.to_string(),
            "NODE",
            dst_id.as_str(),
        ];
        match admin.run::<()>(&words).await {
            Ok(()) => break,
            Err(e) if e.to_string().contains("still hold keys") => {
                assert!(tokio::time::Instant::now() < deadline, "{e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("{e}"),
        }
    }
    setslot(&s.masters[2].0, "NODE", dst_id).await;
    let e = run(&mut rs, &["GET", moved]).await;
    eprintln!(
        "{kind}: GET after SETSLOT NODE: {e:?}\n  requests {:?}",
        trace(&rs)
    );
    assert_eq!((e.result, &e.node), (Ok(bulk("again")), dst));
    let moved_hop = Redirect {
        kind: RedirectKind::Moved,
        ..ask(src, dst)
    };
    assert_eq!(e.redirects, vec![moved_hop]);
    // MOVED makes the library refresh its slot map (in the background): later ops go straight.
    let mut still_moved = 0;
    loop {
        let e = run(&mut rs, &["GET", moved]).await;
        assert_eq!(e.result, Ok(bulk("again")));
        if e.redirects.is_empty() {
            break;
        }
        still_moved += 1;
        assert!(still_moved < 50, "the library never learned the new owner");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    eprintln!("{kind}: ops still redirected after the first MOVED: {still_moved}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ask_then_moved_redis() {
    ask_then_moved(ServerKind::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ask_then_moved_valkey() {
    ask_then_moved(ServerKind::Valkey).await;
}

/// How many of the last op's requests were `command`.
fn sends(rs: &RedisRs, command: &str) -> usize {
    trace(rs).iter().filter(|(_, c, _)| c == command).count()
}

/// (c) INCR while its master is SIGSTOPped past the timeout: `info`, never `fail`; the value read
/// after SIGCONT tells how often it ran (twice would mean the library resent it).
async fn paused_master(kind: ServerKind) {
    let s = setup(kind, Some(NODE_TIMEOUT_MS_LONG)).await;
    let owner = &s.masters[0].0;
    let key = &support::keys_for(SLOT, 1)[0];
    let mut rs = open(&s, 500).await;
    assert_eq!(run(&mut rs, &["INCR", key]).await.result, Ok(Value::Int(1)));
    let (mut value, mut doubled) = (1, 0);
    for round in 0..PAUSE_ROUNDS {
        s.cluster.pause(owner).await.unwrap();
        let start = Instant::now();
        let e = run(&mut rs, &["INCR", key]).await;
        let took = start.elapsed();
        // Time for a resend, had the library decided on one, to reach the paused server.
        tokio::time::sleep(Duration::from_millis(200)).await;
        s.cluster.resume(owner).await.unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = read_int(owner, key).await;
        let applied = now - value;
        value = now;
        doubled += usize::from(applied > 1);
        eprintln!(
            "{kind} round {round}: {:?} after {took:?}; INCR sent {}x, applied {applied}x; {:?}",
            e.result,
            sends(&rs, "INCR"),
            trace(&rs)
        );
        assert!(matches!(e.result, Err(OpError::Info(_))), "{e:?}");
        assert!(
            applied >= 1,
            "the INCR waiting in the socket runs after SIGCONT"
        );
    }
    eprintln!("{kind}: INCR ran more than once in {doubled} of {PAUSE_ROUNDS} paused rounds");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_master_redis() {
    paused_master(ServerKind::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paused_master_valkey() {
    paused_master(ServerKind::Valkey).await;
}

/// (c) INCR held by `CLIENT PAUSE WRITE`, its connection killed before it ran: the library resends
/// it on a new connection; never `fail`, and it runs exactly once.
async fn killed_before_running(kind: ServerKind) {
    let s = setup(kind, None).await;
    let owner = s.masters[0].0.clone();
    let key = support::keys_for(SLOT, 1).remove(0);
    let mut rs = open(&s, 5000).await;
    assert_eq!(
        run(&mut rs, &["INCR", &key]).await.result,
        Ok(Value::Int(1))
    );
    let mut admin = Admin::connect(&owner).await.unwrap();
    admin
        .run::<()>(&["CLIENT", "PAUSE", "1500", "WRITE"])
        .await
        .unwrap();
    let incr_key = key.clone();
    let op = tokio::spawn(async move {
        let e = run(&mut rs, &["INCR", &incr_key]).await;
        (e, sends(&rs, "INCR"), trace(&rs))
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let kill = ["CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"];
    let killed = admin.run::<i64>(&kill).await.unwrap();
    let (e, incr_sends, requests) = op.await.unwrap();
    let value = read_int(&owner, &key).await;
    eprintln!(
        "{kind}: killed {killed} connections; INCR: {:?}, sent {incr_sends}x, counter {value}; {requests:?}",
        e.result
    );
    assert!(killed >= 1);
    assert!(!matches!(e.result, Err(OpError::Fail(_))), "{e:?}");
    if let Ok(Value::Int(n)) = e.result {
        assert_eq!(n, value);
    }
    assert!(incr_sends >= 2, "the library resent the INCR: {requests:?}");
    assert_eq!(
        value, 2,
        "the killed INCR never ran, the resent one ran once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_before_running_redis() {
    killed_before_running(ServerKind::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_before_running_valkey() {
    killed_before_running(ServerKind::Valkey).await;
}

/// (c) A 1-key EVAL that INCRs and then replies past the server's output buffer limit: the server
/// runs it and closes the connection, so the reply is lost after the command ran. The op must be
/// `info`; the counter says how often the library's resends ran it.
async fn reply_lost_after_running(kind: ServerKind) {
    let s = setup(kind, None).await;
    let owner = &s.masters[0].0;
    let key = &support::keys_for(SLOT, 1)[0];
    let mut rs = open(&s, 3000).await;
    assert_eq!(run(&mut rs, &["GET", key]).await.result, Ok(Value::Nil));
    let mut admin = Admin::connect(owner).await.unwrap();
    let limit = [
        "CONFIG",
        "SET",
        "client-output-buffer-limit",
        "normal 65536 0 0",
    ];
    admin.run::<()>(&limit).await.unwrap();
    let script = "redis.call('INCR', KEYS[1]) return string.rep('x', 1000000)";
    let start = Instant::now();
    let e = rs
        .execute(key.as_bytes(), &cmd(&["EVAL", script, "1", key]))
        .await;
    let took = start.elapsed();
    let unlimit = [
        "CONFIG",
        "SET",
        "client-output-buffer-limit",
        "normal 0 0 0",
    ];
    admin.run::<()>(&unlimit).await.unwrap();
    let value = read_int(owner, key).await;
    let evals = sends(&rs, "EVAL");
    eprintln!(
        "{kind}: EVAL with its reply lost: {:?} after {took:?}; sent {evals}x, ran {value}x; redirects {:?}; {:?}",
        e.result,
        e.redirects,
        trace(&rs)
    );
    assert!(matches!(e.result, Err(OpError::Info(_))), "{e:?}");
    assert!(
        value >= 1 && value as usize <= evals,
        "{value} runs, {evals} sends"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reply_lost_after_running_redis() {
    reply_lost_after_running(ServerKind::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reply_lost_after_running_valkey() {
    reply_lost_after_running(ServerKind::Valkey).await;
}
