//! Issue 19's keys and migration targets through `slotcheck test` on real clusters: keys grouped
//! by slot (`--slots`), spare masters that own no slots (`--spare-masters`), migrations to them
//! (`--migrate-target empty`), and the `cas-register` workload. Each run must be valid; what it
//! claims is read back from its history, independently of the nemesis's own log.
//!
//! Run with `-- --test-threads=1`: each case starts a cluster and keeps both cores busy.

use serde_json::Value;
use slotcheck::harness::{parse_nodes, Admin, NodeLine, ServerKind};
use slotcheck::nemesis::migrate::interrupt::migrate_then_finalize_early;
use slotcheck::nemesis::migrate::repair::repair;
use slotcheck::nemesis::migrate::{migrate_slot, MigrateOptions};
use std::collections::BTreeMap;
use std::path::Path;

mod support;

/// Slots in the cluster.
const SLOT_COUNT: u32 = 16384;

/// Runs `slotcheck test` on `server` with `args` into `dir`; it must be valid (exit 0) and leave
/// no server behind. Returns the history's path.
fn run_valid(server: &str, seed: u64, args: &[&str], dir: &Path) -> std::path::PathBuf {
    let out = support::slotcheck()
        .args(["test", "--server", server, "--seed", &seed.to_string()])
        .args(args)
        .arg("--output")
        .arg(dir)
        .output()
        .expect("run slotcheck");
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{}\n{stdout}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "not valid: {stdout}");
    let history = dir.join("history.jsonl");
    support::assert_no_server_left(&history);
    history
}

/// Every migration of the history as (slot, from, to, whether `to` owned no slot when it began),
/// replayed from the bring-up's ownership: the first `masters` nodes of the header own even
/// ranges, the spare masters after them none; a move counts once its `migrate-end` says `stable`.
fn replay(history: &Path, masters: usize) -> Vec<(u16, String, String, bool)> {
    let header = support::header(history);
    let nodes: Vec<String> = header["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .map(|n| n["addr"].as_str().expect("addr").to_string())
        .collect();
    let mut owned: BTreeMap<String, usize> = nodes.iter().map(|n| (n.clone(), 0)).collect();
    for n in &nodes[..masters] {
        *owned.get_mut(n).unwrap() = (SLOT_COUNT as usize) / masters;
    }
    let mut moves = Vec::new();
    for e in support::nemesis_events(history) {
        let v = &e.value;
        let (from, to) = (v["from"].as_str(), v["to"].as_str());
        let (Some(from), Some(to)) = (from, to) else {
            continue;
        };
        match e.step().as_str() {
            "migrate-start/stable" => {
                let slot = v["slot"].as_u64().expect("slot") as u16;
                moves.push((slot, from.to_string(), to.to_string(), owned[to] == 0));
            }
            "migrate-end/stable" => {
                *owned.get_mut(from).unwrap() -= 1;
                *owned.get_mut(to).unwrap() += 1;
            }
            _ => {}
        }
    }
    moves
}

/// `--spare-masters 1 --migrate-target empty`: the spare master joins without slots, about half
/// of the migrations move a workload slot to a master that owned none (the others empty it
/// again), the spare stays a master, and the run is valid.
fn empty_targets(server: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let args = [
        "--duration",
        "15s",
        "--migrate-interval",
        "1500ms",
        "--spare-masters",
        "1",
        "--migrate-target",
        "empty",
    ];
    let history = run_valid(server, 5, &args, tmp.path());
    let header = support::header(&history);
    assert_eq!(header["spare_masters"], 1);
    assert_eq!(header["migrate_target"], "empty");
    assert_eq!(header["nodes"].as_array().unwrap().len(), 4);
    let moves = replay(&history, 3);
    let empty = moves.iter().filter(|m| m.3).count();
    assert!(moves.len() >= 5, "too few migrations: {moves:?}");
    assert!(
        empty * 3 >= moves.len(),
        "{empty} of {} migrations targeted an empty master: {moves:?}",
        moves.len()
    );
    let spare = header["nodes"][3]["addr"].as_str().unwrap();
    assert!(moves.iter().any(|m| m.2 == spare && m.3), "{moves:?}");
    // The spare, emptied again and again, stayed a master (cluster-allow-replica-migration no).
    let conf = std::fs::read_to_string(tmp.path().join("cluster/node-03/nodes.conf")).unwrap();
    let me = conf.lines().find(|l| l.contains("myself")).expect("myself");
    assert!(
        me.contains("master"),
        "the spare is no longer a master: {me}"
    );
}

#[test]
fn migrations_to_empty_masters_redis() {
    empty_targets("redis");
}

#[test]
fn migrations_to_empty_masters_valkey() {
    empty_targets("valkey");
}

/// `CLUSTER NODES` as the node at `addr` sees it.
async fn cluster_nodes(addr: &str) -> Vec<NodeLine> {
    let mut admin = Admin::connect(addr).await.unwrap();
    parse_nodes(&admin.text(&["CLUSTER", "NODES"]).await.unwrap()).unwrap()
}

/// A spare master joins as a master without slots; a slot with keys moved to it and back again
/// (the spare learning of its loss by gossip) leaves it a master without slots in every node's
/// `CLUSTER NODES`, not a replica of the slot's new owner as `cluster-allow-replica-migration
/// yes` would make it.
async fn spare_master_stays_a_master(kind: ServerKind) {
    let c = support::start_with(kind, 3, 0, |spec| spec.spare_masters = 1).await;
    let spare = c.nodes[3].addr.clone();
    let masters = |lines: &[NodeLine]| -> Vec<(String, usize)> {
        let mut m: Vec<(String, usize)> = lines
            .iter()
            .filter(|l| l.has_flag("master"))
            .map(|l| {
                let owned = l.slots.iter().map(|&(a, b)| usize::from(b - a) + 1);
                (l.addr.clone(), owned.sum())
            })
            .collect();
        m.sort();
        m
    };
    let before = masters(&cluster_nodes(&c.nodes[0].addr).await);
    assert_eq!(before.len(), 4, "{before:?}");
    let empty: Vec<&String> = before.iter().filter(|m| m.1 == 0).map(|m| &m.0).collect();
    assert_eq!(empty, [&spare], "{before:?}");

    let (slot, keys) = (100, support::keys_for(100, 30));
    let client = redis::Client::open(format!("redis://{}/", c.nodes[0].addr)).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    for k in &keys {
        redis::cmd("SET")
            .arg(k)
            .arg(k)
            .query_async::<()>(&mut conn)
            .await
            .unwrap();
    }
    let peers = c.peers();
    assert_eq!(peers.len(), 4);
    let (owner, spare_peer) = (&peers[0], &peers[3]);
    let rest = &peers[1..3];
    let opts = MigrateOptions {
        batch_keys: 10,
        step_pause_ms: 0,
        ..MigrateOptions::default()
    };
    let rec = c.recorder();
    let there = migrate_slot(&rec, slot, owner, spare_peer, rest, &opts)
        .await
        .unwrap();
    assert_eq!(there.keys_moved, keys.len());
    c.wait_stable(10_000).await.unwrap();
    let line = cluster_nodes(&spare)
        .await
        .into_iter()
        .find(|l| l.addr == spare)
        .unwrap();
    assert!(line.owns(slot) && line.has_flag("master"), "{line:?}");
    // Back again, finalized on every master but the spare: the spare learns that it lost its
    // last slot by gossip, where `cluster-allow-replica-migration yes` would make it a replica.
    let back = migrate_then_finalize_early(&rec, slot, spare_peer, owner, rest, &opts, 10, 200);
    let back = back.await.unwrap();
    assert_eq!((back.moved.len(), back.lost.len()), (keys.len(), 0));
    let learned = std::time::Instant::now();
    loop {
        let me = cluster_nodes(&spare)
            .await
            .into_iter()
            .find(|l| l.addr == spare)
            .unwrap();
        if !me.owns(slot) {
            break;
        }
        assert!(
            learned.elapsed().as_secs() < 20,
            "the spare never learned: {me:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    repair(&rec, &peers).await.unwrap();
    c.wait_stable(10_000).await.unwrap();
    for node in &c.nodes {
        let after = masters(&cluster_nodes(&node.addr).await);
        assert_eq!(after, before, "as {} sees it", node.addr);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spare_master_stays_a_master_redis() {
    spare_master_stays_a_master(ServerKind::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spare_master_stays_a_master_valkey() {
    spare_master_stays_a_master(ServerKind::Valkey).await;
}

/// `--migrate-target empty` without a spare master is refused before anything starts.
#[test]
fn empty_target_needs_a_spare_master() {
    let out = support::slotcheck()
        .args(["test", "--migrate-target", "empty", "--plan-only"])
        .output()
        .expect("run slotcheck");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(254), "{stderr}");
    assert!(stderr.contains("--spare-masters 1"), "{stderr}");
}

/// `--plan-only` shows the key and target settings the run would use.
#[test]
fn plan_shows_slots_and_key_dist() {
    let out = support::slotcheck()
        .args(["test", "--plan-only", "--key-dist", "hot", "--seed", "1"])
        .output()
        .expect("run slotcheck");
    assert!(out.status.success());
    let plan: Value = serde_json::from_slice(&out.stdout).expect("JSON plan");
    assert_eq!(plan["slots"], slotcheck::config::SLOTS_DEFAULT as u64);
    assert_eq!(plan["key_dist"], "hot");
    assert_eq!(plan["migrate_target"], "any");
}

/// The cas-register: values from 0 to 4, so many compare-and-sets succeed; the run (final reads
/// included) is valid, and the history says which workload it was.
fn cas_register(server: &str, seed: u64) {
    let tmp = tempfile::tempdir().unwrap();
    let args = ["--workload", "cas-register", "--duration", "12s"];
    let history = run_valid(server, seed, &args, tmp.path());
    assert_eq!(support::header(&history)["workload"], "cas-register");
    let events = support::events(&history);
    let mut cas = BTreeMap::<&str, usize>::new();
    let mut invoked = BTreeMap::new();
    let mut finals = 0;
    for e in &events {
        let Some(p) = e["process"].as_u64() else {
            continue;
        };
        if e["type"] == "invoke" {
            invoked.insert(p, e["f"].as_str().unwrap_or_default().to_string());
            if p >= workloads::FINAL_READ_PROCESS_BASE {
                finals += 1;
            }
        } else if invoked.remove(&p).as_deref() == Some("cas") {
            *cas.entry(e["type"].as_str().unwrap()).or_default() += 1;
        }
        if let Some(v) = e["value"].as_u64().filter(|_| e["f"] == "write") {
            assert!(v <= workloads::register::CAS_VALUES_MAX, "{e}");
        }
    }
    let (ok, fail) = (cas.get("ok").copied(), cas.get("fail").copied());
    let (ok, fail) = (ok.unwrap_or(0), fail.unwrap_or(0));
    eprintln!("{server} seed {seed}: cas ok {ok}, fail {fail}");
    assert!(ok * 100 >= (ok + fail) * 15, "cas ok {ok}, fail {fail}");
    assert_eq!(finals, 100, "one final read per key");
}

#[test]
fn cas_register_redis() {
    cas_register("redis", 11);
}

#[test]
fn cas_register_valkey() {
    cas_register("valkey", 12);
}
