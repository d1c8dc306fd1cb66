//! The harness against real servers (no mocks): bring-up, health, and that every process is gone after.

use std::collections::BTreeMap;
use std::net::TcpListener;

use slotcheck::harness::{
    pid_alive, Cluster, ClusterSpec, ClusterState, HarnessError, Role, ServerKind, SLOT_COUNT,
};

mod support;

/// Runs one admin command against `addr` and returns its text reply.
async fn text(addr: &str, words: &[&str]) -> String {
    let client = redis::Client::open(format!("redis://{addr}/")).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let mut cmd = redis::cmd(words[0]);
    for word in &words[1..] {
        cmd.arg(*word);
    }
    cmd.query_async(&mut conn).await.unwrap()
}

fn info(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.trim().split_once(':'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn assert_gone(pids: &[u32], ports: &[u16]) {
    for pid in pids {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"));
        assert!(stat.is_err(), "pid {pid} still exists: {stat:?}");
    }
    for port in ports {
        for p in [*port, port + 10000] {
            assert!(
                TcpListener::bind(("127.0.0.1", p)).is_ok(),
                "port {p} still taken"
            );
        }
    }
}

/// Checks the cluster from outside, with our own connections, as a client would see it.
async fn assert_healthy(cluster: &Cluster, masters: usize, replicas: usize) {
    let total = masters * (1 + replicas);
    assert_eq!(cluster.nodes.len(), total);
    assert_eq!(cluster.masters().count(), masters);
    assert_eq!(cluster.seeds().len(), total);
    for node in &cluster.nodes {
        assert_eq!(node.id.len(), 40, "node id {:?}", node.id);
        assert_eq!(cluster.node(&node.addr), Some(node));
        assert!(pid_alive(node.pid));
        assert!(node.log.exists());
        let cluster_info = info(&text(&node.addr, &["CLUSTER", "INFO"]).await);
        assert_eq!(cluster_info["cluster_state"], "ok", "{}", node.addr);
        assert_eq!(
            cluster_info["cluster_slots_assigned"],
            SLOT_COUNT.to_string()
        );
        assert_eq!(cluster_info["cluster_slots_ok"], SLOT_COUNT.to_string());
        assert_eq!(cluster_info["cluster_known_nodes"], total.to_string());
        let myid = text(&node.addr, &["CLUSTER", "MYID"]).await;
        assert_eq!(myid, node.id);
        let replication = info(&text(&node.addr, &["INFO", "replication"]).await);
        match &node.role {
            Role::Master => {
                assert_eq!(replication["role"], "master");
                assert_eq!(replication["connected_slaves"], replicas.to_string());
            }
            Role::Replica { master_id } => {
                let master = cluster.nodes.iter().find(|n| &n.id == master_id).unwrap();
                assert_eq!(master.role, Role::Master);
                assert_eq!(replication["role"], "slave");
                assert_eq!(replication["master_link_status"], "up");
                assert_eq!(replication["master_port"], master.port.to_string());
            }
        }
    }
    cluster.wait_stable(5_000).await.unwrap();
}

async fn start_check_stop(kind: ServerKind, masters: usize, replicas: usize) {
    let cluster = support::start(kind, masters, replicas).await;
    assert_eq!(cluster.kind, kind);
    assert_healthy(&cluster, masters, replicas).await;
    let pids: Vec<u32> = cluster.nodes.iter().map(|n| n.pid).collect();
    let ports: Vec<u16> = cluster.nodes.iter().map(|n| n.port).collect();
    cluster.stop();
    cluster.stop(); // idempotent
    assert_gone(&pids, &ports);
}

#[tokio::test]
async fn redis_three_masters() {
    start_check_stop(ServerKind::Redis, 3, 0).await;
}

#[tokio::test]
async fn redis_three_masters_one_replica_each() {
    start_check_stop(ServerKind::Redis, 3, 1).await;
}

#[tokio::test]
async fn valkey_three_masters() {
    start_check_stop(ServerKind::Valkey, 3, 0).await;
}

#[tokio::test]
async fn valkey_three_masters_one_replica_each() {
    start_check_stop(ServerKind::Valkey, 3, 1).await;
}

#[tokio::test]
async fn a_restart_in_the_same_dir_starts_fresh() {
    let dir = tempfile::tempdir().unwrap();
    for _ in 0..2 {
        let cluster = Cluster::start(ClusterSpec::new(ServerKind::Redis, 1, 1, dir.path()))
            .await
            .unwrap();
        assert_healthy(&cluster, 1, 1).await;
    }
}

#[tokio::test]
async fn detached_cluster_is_destroyed_from_its_saved_state() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("cluster");
    let mut spec = ClusterSpec::new(ServerKind::Valkey, 2, 1, &root);
    spec.die_with_parent = false;
    let cluster = Cluster::start(spec).await.unwrap();
    let pids: Vec<u32> = cluster.nodes.iter().map(|n| n.pid).collect();
    let ports: Vec<u16> = cluster.nodes.iter().map(|n| n.port).collect();
    let state = cluster.detach();
    for pid in &pids {
        assert!(pid_alive(*pid), "detached server {pid} was stopped");
    }
    let path = dir.path().join("cluster.json");
    state.save(&path).unwrap();
    let loaded = ClusterState::load(&path).unwrap();
    assert_eq!(loaded, state);
    assert_eq!(loaded.seeds().len(), 4);
    let addr = &loaded.seeds()[0];
    assert_eq!(
        info(&text(addr, &["CLUSTER", "INFO"]).await)["cluster_state"],
        "ok"
    );
    loaded.try_destroy().unwrap();
    assert_gone(&pids, &ports);
    assert!(!root.exists(), "root dir left behind");
    loaded.destroy(); // idempotent: nothing left to stop or remove
}

#[test]
fn a_panic_while_holding_a_cluster_stops_its_servers() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let (tx, rx) = std::sync::mpsc::channel();
    let result = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async {
            let cluster = Cluster::start(ClusterSpec::new(ServerKind::Redis, 1, 0, path))
                .await
                .unwrap();
            tx.send(cluster.nodes.clone()).unwrap();
            panic!("test panic with a live cluster");
        })
    })
    .join();
    assert!(result.is_err());
    let nodes = rx.recv().unwrap();
    let pids: Vec<u32> = nodes.iter().map(|n| n.pid).collect();
    let ports: Vec<u16> = nodes.iter().map(|n| n.port).collect();
    assert_gone(&pids, &ports);
}

#[tokio::test]
async fn bad_specs_are_refused_before_any_server_starts() {
    let dir = tempfile::tempdir().unwrap();
    let no_masters = ClusterSpec::new(ServerKind::Redis, 0, 0, dir.path());
    assert!(matches!(
        Cluster::start(no_masters).await,
        Err(HarnessError::InvalidSpec(_))
    ));
    let mut reserved = ClusterSpec::new(ServerKind::Redis, 1, 0, dir.path());
    reserved
        .extra_config
        .push(("port".to_string(), "1".to_string()));
    assert!(matches!(
        Cluster::start(reserved).await,
        Err(HarnessError::InvalidSpec(_))
    ));
}

#[tokio::test]
async fn extra_config_reaches_the_servers() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = ClusterSpec::new(ServerKind::Valkey, 1, 0, dir.path());
    spec.extra_config
        .push(("maxmemory".to_string(), "12345678".to_string()));
    let cluster = Cluster::start(spec).await.unwrap();
    let reply: Vec<String> = {
        let addr = &cluster.nodes[0].addr;
        let client = redis::Client::open(format!("redis://{addr}/")).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        redis::cmd("CONFIG")
            .arg("GET")
            .arg("maxmemory")
            .query_async(&mut conn)
            .await
            .unwrap()
    };
    assert_eq!(reply, vec!["maxmemory".to_string(), "12345678".to_string()]);
}

/// Set in the child process of `servers_die_with_a_sigkilled_parent`.
const HELPER_ENV: &str = "SLOTCHECK_HARNESS_DEATH_HELPER";

/// Not a test on its own: when re-run by `servers_die_with_a_sigkilled_parent`, starts a cluster with
/// `die_with_parent`, prints its pids and ports, and waits to be SIGKILLed.
#[tokio::test]
async fn death_helper() {
    let Some(dir) = std::env::var_os(HELPER_ENV) else {
        return;
    };
    let mut spec = ClusterSpec::new(ServerKind::Redis, 1, 1, std::path::PathBuf::from(dir));
    spec.die_with_parent = true;
    let cluster = Cluster::start(spec).await.unwrap();
    for node in &cluster.nodes {
        println!("NODE {} {}", node.pid, node.port);
    }
    println!("READY");
    tokio::time::sleep(std::time::Duration::from_secs(60)).await;
}

#[test]
fn servers_die_with_a_sigkilled_parent() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "death_helper", "--nocapture", "--test-threads=1"])
        .env(HELPER_ENV, dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut nodes = Vec::new();
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    for line in stdout.lines() {
        let line = line.unwrap();
        if line.contains("READY") {
            break;
        }
        if let Some(rest) = line.split("NODE ").nth(1) {
            let mut words = rest.split_whitespace();
            let pid: u32 = words.next().unwrap().parse().unwrap();
            let port: u16 = words.next().unwrap().parse().unwrap();
            nodes.push((pid, port));
        }
    }
    assert_eq!(nodes.len(), 2, "helper did not report its cluster");
    child.kill().unwrap(); // SIGKILL: no Drop runs in the helper
    child.wait().unwrap();
    // The servers are reparented and reaped by init; give the kernel a moment.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while nodes.iter().any(|(pid, _)| pid_alive(*pid)) && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    for (pid, port) in nodes {
        assert!(
            !pid_alive(pid),
            "server {pid} outlived its SIGKILLed parent"
        );
        let _ = port;
    }
}

#[tokio::test]
async fn a_server_that_cannot_start_is_reported_with_its_log() {
    let dir = tempfile::tempdir().unwrap();
    let mut spec = ClusterSpec::new(ServerKind::Redis, 2, 0, dir.path());
    spec.extra_config
        .push(("maxmemory-policy".to_string(), "no-such-policy".to_string()));
    match Cluster::start(spec).await {
        Err(HarnessError::Exited { addr, log_tail, .. }) => {
            assert!(addr.starts_with("127.0.0.1:"));
            assert!(
                log_tail.contains("maxmemory-policy"),
                "log tail: {log_tail}"
            );
        }
        other => panic!("expected Exited, got {other:?}"),
    }
}
