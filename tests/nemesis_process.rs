//! Process faults and failover against real servers (no mocks), each verb shown with its effect and
//! its inverse: kill/restart (persistence off and AOF), pause/resume, automatic failover of a paused
//! master, and manual `CLUSTER FAILOVER` in its three modes. Every server is stopped by the cluster's
//! Drop, also when an assertion fails.

use std::time::{Duration, Instant};

use slotcheck::harness::{pid_alive, Admin, Persistence, ProcessState, ServerKind};
use slotcheck::nemesis::failover::{
    self, failover, masters_now, replicas_of, wait_promoted, wait_rejoined, FailoverMode,
};
use slotcheck::nemesis::process::{kill, pause, restart, resume, shutdown};
use slotcheck::nemesis::Ctx;
use workloads::key_slot;

mod support;

/// Keys written to the target master.
const KEYS: usize = 100;
/// Deadline for a node to rejoin after restart or resume.
const REJOIN_TIMEOUT_MS: u64 = 20_000;
/// Deadline for an automatic failover (FAIL after ~3 s, promotion ~1 s later, with margin).
const PROMOTE_TIMEOUT_MS: u64 = 15_000;

/// A running cluster of 3 masters with `replicas` each, and its history.
async fn setup(kind: ServerKind, replicas: usize, persistence: Persistence) -> support::Recorded {
    support::start_with(kind, 3, replicas, |spec| spec.persistence = persistence)
        .await
        .with_history()
}

/// The nemesis events of the history as `(f, phase)` pairs.
fn nemesis_events(setup: &support::Recorded) -> Vec<(String, String)> {
    setup
        .nemesis_events()
        .into_iter()
        .map(|e| (e.f, e.phase))
        .collect()
}

/// Writes `KEYS` keys that hash to slots of the master at `addr`, directly to it; returns the first.
async fn fill(ctx: &Ctx, addr: &str) -> String {
    let masters = masters_now(ctx).await.unwrap();
    let me = masters.iter().find(|l| l.addr == addr).unwrap();
    let mut admin = Admin::connect(addr).await.unwrap();
    let mut written = Vec::with_capacity(KEYS);
    for n in 0.. {
        let key = format!("k{n}");
        if me.owns(key_slot(key.as_bytes())) {
            let _: () = admin.run(&["SET", &key, "v"]).await.unwrap();
            written.push(key);
            if written.len() == KEYS {
                break;
            }
        }
    }
    written.swap_remove(0)
}

async fn dbsize(addr: &str) -> usize {
    let mut admin = Admin::connect(addr).await.unwrap();
    admin.run(&["DBSIZE"]).await.unwrap()
}

/// A GET of `key` as a client sends it, bounded by `timeout_ms` for connect and reply together.
async fn client_get(addr: &str, key: &str, timeout_ms: u64) -> Result<Option<String>, String> {
    let request = async {
        let client = redis::Client::open(format!("redis://{addr}/")).map_err(|e| e.to_string())?;
        let mut conn = client
            .get_multiplexed_async_connection()
            .await
            .map_err(|e| e.to_string())?;
        redis::cmd("GET")
            .arg(key)
            .query_async::<Option<String>>(&mut conn)
            .await
            .map_err(|e| e.to_string())
    };
    match tokio::time::timeout(Duration::from_millis(timeout_ms), request).await {
        Ok(result) => result,
        Err(_) => Err(format!("timed out after {timeout_ms} ms")),
    }
}

/// Polls until the node at `addr` says it replicates `master_id` (in its own `CLUSTER NODES`).
async fn wait_replica_of(addr: &str, master_id: &str, timeout_ms: u64) -> Duration {
    let start = Instant::now();
    loop {
        if let Ok(mut admin) = Admin::connect_with_timeout(addr, 500).await {
            if let Ok(text) = admin.text(&["CLUSTER", "NODES"]).await {
                let lines = slotcheck::harness::parse_nodes(&text).unwrap();
                let me = lines.iter().find(|l| l.has_flag("myself")).unwrap();
                if me.is_replica() && me.master_id.as_deref() == Some(master_id) {
                    return start.elapsed();
                }
            }
        }
        assert!(
            start.elapsed() < Duration::from_millis(timeout_ms),
            "{addr} did not become a replica of {master_id} within {timeout_ms} ms"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Kill a master holding keys: its port refuses connections; restart it: it answers with a new pid,
/// rejoins with the same id and slots, and holds 0 keys (persistence off) or all of them (AOF).
async fn kill_and_restart(kind: ServerKind, persistence: Persistence) {
    let setup = setup(kind, 0, persistence).await;
    let ctx = &setup.ctx;
    let master = ctx.cluster.masters().next().unwrap().addr.clone();
    let id = ctx.cluster.node(&master).unwrap().id.clone();
    fill(ctx, &master).await;
    assert_eq!(dbsize(&master).await, KEYS);

    let old_pid = ctx.cluster.pid(&master).unwrap();
    kill(ctx, &master).await.unwrap();
    assert_eq!(ctx.cluster.process_state(&master), Some(ProcessState::Down));
    assert_eq!(ctx.cluster.pid(&master), None);
    assert!(!pid_alive(old_pid));
    let refused = std::net::TcpStream::connect(&master).unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    assert!(
        kill(ctx, &master).await.is_err(),
        "a dead node cannot be killed"
    );

    let start = Instant::now();
    restart(ctx, &master).await.unwrap();
    let answered = start.elapsed();
    let new_pid = ctx.cluster.pid(&master).unwrap();
    assert_ne!(new_pid, old_pid);
    assert!(
        restart(ctx, &master).await.is_err(),
        "a running node cannot be restarted"
    );
    wait_rejoined(ctx, &master, REJOIN_TIMEOUT_MS)
        .await
        .unwrap();
    let rejoined = start.elapsed();
    let mut admin = Admin::connect(&master).await.unwrap();
    let myid: String = admin.run(&["CLUSTER", "MYID"]).await.unwrap();
    assert_eq!(myid, id, "same node id after restart");
    let masters = masters_now(ctx).await.unwrap();
    assert!(
        masters.iter().any(|l| l.addr == master),
        "the restarted node still owns its slots"
    );
    let keys = dbsize(&master).await;
    eprintln!(
        "{kind} {persistence:?}: restarted master answers after {} ms, rejoined after {} ms, keys {keys}/{KEYS}",
        answered.as_millis(),
        rejoined.as_millis()
    );
    match persistence {
        Persistence::Off => assert_eq!(keys, 0, "no persistence: the restarted master is empty"),
        Persistence::Aof => assert_eq!(keys, KEYS, "AOF: every acknowledged key survives"),
    }

    // The graceful twin: SIGTERM, then the same restart; the data outcome is the same.
    fill(ctx, &master).await;
    shutdown(ctx, &master).await.unwrap();
    assert_eq!(ctx.cluster.process_state(&master), Some(ProcessState::Down));
    assert!(std::net::TcpStream::connect(&master).is_err());
    restart(ctx, &master).await.unwrap();
    wait_rejoined(ctx, &master, REJOIN_TIMEOUT_MS)
        .await
        .unwrap();
    let keys = dbsize(&master).await;
    match persistence {
        Persistence::Off => assert_eq!(keys, 0, "no persistence: empty after shutdown too"),
        Persistence::Aof => assert_eq!(keys, KEYS, "AOF: keys survive a shutdown"),
    }

    let events = nemesis_events(&setup);
    for f in ["kill", "shutdown", "restart"] {
        assert!(events.contains(&(f.to_string(), "begin".to_string())));
        assert!(events.contains(&(f.to_string(), "end".to_string())));
    }
}

#[tokio::test]
async fn redis_kill_restart_without_persistence_loses_keys() {
    kill_and_restart(ServerKind::Redis, Persistence::Off).await;
}

#[tokio::test]
async fn redis_kill_restart_with_aof_keeps_keys() {
    kill_and_restart(ServerKind::Redis, Persistence::Aof).await;
}

#[tokio::test]
async fn valkey_kill_restart_without_persistence_loses_keys() {
    kill_and_restart(ServerKind::Valkey, Persistence::Off).await;
}

#[tokio::test]
async fn valkey_kill_restart_with_aof_keeps_keys() {
    kill_and_restart(ServerKind::Valkey, Persistence::Aof).await;
}

/// Pause a master briefly: a client request times out; resume: it answers. Pause it longer than the
/// node timeout: its replica is promoted (timed); resume: the old master rejoins as a replica. Then
/// `stop` must still end a paused and a restarted process.
async fn pause_resume_and_auto_failover(kind: ServerKind) {
    let setup = setup(kind, 1, Persistence::Off).await;
    let ctx = &setup.ctx;
    let master = ctx.cluster.masters().next().unwrap().addr.clone();
    let replicas = replicas_of(ctx, &master).await.unwrap();
    assert_eq!(replicas.len(), 1);
    let replica = replicas[0].addr.clone();
    let key = fill(ctx, &master).await;
    // WAIT: the replica has every key before the master disappears.
    let mut admin = Admin::connect(&master).await.unwrap();
    let acked: usize = admin.run(&["WAIT", "1", "2000"]).await.unwrap();
    assert_eq!(acked, 1);

    pause(ctx, &master).await.unwrap();
    assert_eq!(
        ctx.cluster.process_state(&master),
        Some(ProcessState::Paused)
    );
    let err = client_get(&master, &key, 300).await.unwrap_err();
    assert!(err.contains("timed out"), "{err}");
    resume(ctx, &master).await.unwrap();
    let value = client_get(&master, &key, 1000).await.unwrap();
    assert_eq!(value.as_deref(), Some("v"));
    wait_rejoined(ctx, &master, REJOIN_TIMEOUT_MS)
        .await
        .unwrap();

    pause(ctx, &master).await.unwrap();
    let promotion = wait_promoted(ctx, &master, PROMOTE_TIMEOUT_MS)
        .await
        .unwrap();
    assert_eq!(promotion.node, replica);
    let masters = masters_now(ctx).await.unwrap();
    assert!(masters.iter().any(|l| l.addr == replica));
    assert!(!masters.iter().any(|l| l.addr == master));
    assert_eq!(
        dbsize(&replica).await,
        KEYS,
        "the promoted replica has the keys"
    );

    resume(ctx, &master).await.unwrap();
    let demoted = wait_replica_of(&master, &promotion.id, REJOIN_TIMEOUT_MS).await;
    wait_rejoined(ctx, &master, REJOIN_TIMEOUT_MS)
        .await
        .unwrap();
    eprintln!(
        "{kind}: paused master failed over to {replica} in {} ms (node timeout 2000 ms); \
         resumed old master became a replica after {} ms",
        promotion.took_ms,
        demoted.as_millis()
    );
    let events = nemesis_events(&setup);
    for f in ["pause", "resume", "failover"] {
        assert!(events.contains(&(f.to_string(), "end".to_string())), "{f}");
    }

    // `stop` ends a paused node and a restarted one too.
    pause(ctx, &master).await.unwrap();
    let other = ctx.cluster.masters().nth(1).unwrap().addr.clone();
    kill(ctx, &other).await.unwrap();
    restart(ctx, &other).await.unwrap();
    let pids: Vec<u32> = ctx
        .cluster
        .nodes
        .iter()
        .filter_map(|n| ctx.cluster.pid(&n.addr))
        .collect();
    assert_eq!(pids.len(), ctx.cluster.nodes.len());
    ctx.cluster.stop();
    ctx.cluster.stop(); // idempotent
    for pid in pids {
        assert!(!pid_alive(pid), "pid {pid} survived stop");
    }
}

#[tokio::test]
async fn redis_pause_resume_and_failover_of_a_paused_master() {
    pause_resume_and_auto_failover(ServerKind::Redis).await;
}

#[tokio::test]
async fn valkey_pause_resume_and_failover_of_a_paused_master() {
    pause_resume_and_auto_failover(ServerKind::Valkey).await;
}

/// Each manual mode promotes the replica it is sent to, and its old master follows it as a replica.
async fn manual_failovers(kind: ServerKind) {
    let setup = setup(kind, 1, Persistence::Off).await;
    let ctx = &setup.ctx;
    let masters: Vec<String> = ctx.cluster.masters().map(|n| n.addr.clone()).collect();
    let modes = [
        FailoverMode::Default,
        FailoverMode::Force,
        FailoverMode::Takeover,
    ];
    let mut promoted = Vec::new();
    for (master, mode) in masters.iter().zip(modes) {
        let replica = replicas_of(ctx, master).await.unwrap()[0].addr.clone();
        let promotion = failover(ctx, &replica, mode).await.unwrap();
        assert_eq!(promotion.node, replica);
        let demoted = wait_replica_of(master, &promotion.id, REJOIN_TIMEOUT_MS).await;
        let now = masters_now(ctx).await.unwrap();
        assert!(now.iter().any(|l| l.addr == replica), "{mode:?}");
        assert!(!now.iter().any(|l| &l.addr == master), "{mode:?}");
        eprintln!(
            "{kind}: CLUSTER FAILOVER {} promoted {replica} in {} ms; old master a replica after {} ms",
            mode.name(),
            promotion.took_ms,
            demoted.as_millis()
        );
        promoted.push(replica);
    }
    // A master refuses: CLUSTER FAILOVER must be sent to a replica.
    let err = failover(ctx, &promoted[0], FailoverMode::Default)
        .await
        .unwrap_err();
    assert!(
        matches!(err, slotcheck::nemesis::error::NemesisError::Refused { .. }),
        "{err}"
    );
    // Every node is still listed after three failovers.
    assert_eq!(failover::view(ctx).await.unwrap().len(), 6);
}

#[tokio::test]
async fn redis_manual_failover_default_force_takeover() {
    manual_failovers(ServerKind::Redis).await;
}

#[tokio::test]
async fn valkey_manual_failover_default_force_takeover() {
    manual_failovers(ServerKind::Valkey).await;
}

/// A restart reuses the node's launch arguments, so a node on its own `127.0.0.x` comes back there.
#[tokio::test]
async fn redis_restart_keeps_a_distinct_host() {
    let bed = support::start_with(ServerKind::Redis, 3, 0, |spec| spec.distinct_hosts = true)
        .await
        .with_history();
    let ctx = &bed.ctx;
    let node = ctx.cluster.nodes[2].addr.clone();
    assert!(!node.starts_with("127.0.0.1:"), "{node}");
    kill(ctx, &node).await.unwrap();
    restart(ctx, &node).await.unwrap();
    wait_rejoined(ctx, &node, REJOIN_TIMEOUT_MS).await.unwrap();
}
