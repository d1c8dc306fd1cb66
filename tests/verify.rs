//! `slotcheck verify` against real clusters (no mocks): damage put there on purpose is found where
//! `redis-cli --cluster check` sees nothing, and a clean `slotcheck test` run reports nothing.

use std::path::Path;
use std::process::Command;

use serde_json::{json, Map, Value};
use slotcheck::harness::{Admin, Role, ServerKind};
use slotcheck::nemesis::migrate::interrupt::migrate_then_abort;
use slotcheck::nemesis::migrate::MigrateOptions;
use slotcheck::verify::{verify, VerifyOptions};
use workloads::Recorder;

mod support;

/// Slot on the first master (which owns 0-5460 at bring-up).
const SLOT: u16 = 100;
/// Keys put into `SLOT` before the aborted migration.
const KEYS: usize = 200;
/// Deadline for the cluster to agree again after a change.
const STABLE_TIMEOUT_MS: u64 = 10_000;

async fn admin(addr: &str) -> Admin {
    Admin::connect(addr).await.unwrap()
}

fn cluster_check(addr: &str) -> String {
    let cli = slotcheck::harness::find_cli().unwrap();
    let out = Command::new(cli)
        .args(["--cluster", "check", addr])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn classes(anomalies: &[checker::Anomaly]) -> Vec<String> {
    let mut c: Vec<String> = anomalies.iter().map(|a| a.class.clone()).collect();
    c.sort();
    c
}

/// Writes a register history that says `key` was last written with `value`.
fn register_history(path: &Path, key: &str, values: &[i64]) -> checker::History {
    let mut run = Map::new();
    run.insert("workload".into(), json!("register"));
    let rec = Recorder::create(path, checker::Header::new(run)).unwrap();
    rec.close().unwrap();
    let mut text = std::fs::read_to_string(path).unwrap();
    let mut t = 1_000;
    for v in values {
        for kind in ["invoke", "ok"] {
            let e = json!({"type": kind, "process": 0, "f": "write", "key": key, "value": v,
                           "time": t});
            text.push_str(&format!("{e}\n"));
            t += 1_000;
        }
    }
    std::fs::write(path, text).unwrap();
    checker::History::read_file(path).unwrap()
}

async fn damage_is_found(kind: ServerKind) {
    let cluster = support::start(kind, 3, 1).await;
    let masters = cluster.peers();
    let (src, dst) = (&masters[0], &masters[1]);
    let seeds = vec![src.addr.clone()];

    let opts = VerifyOptions::default();
    let clean = verify(&seeds, None, &opts).await.unwrap();
    assert!(clean.anomalies.is_empty(), "{:?}", clean.anomalies);
    assert_eq!(clean.nodes.len(), 6);
    assert_eq!(clean.replicas_compared, 3);

    // Stranded: an aborted migration leaves the moved keys on the target, which does not own
    // the slot. Duplicated: one of them written again through the owner.
    let tag = support::tag_for(SLOT);
    let mut owner = admin(&src.addr).await;
    let mut pipe = redis::pipe();
    for i in 0..KEYS {
        pipe.cmd("SET")
            .arg(format!("{{{tag}}}:{i}"))
            .arg(i)
            .ignore();
    }
    owner.pipe::<()>(&pipe).await.unwrap();
    let recorder = cluster.recorder();
    let fast = MigrateOptions {
        batch_keys: 20,
        step_pause_ms: 0,
        ..MigrateOptions::default()
    };
    let aborted = migrate_then_abort(&recorder, SLOT, src, dst, &fast, 3)
        .await
        .unwrap();
    recorder.close().unwrap();
    assert_eq!(aborted.stranded, 60);
    cluster.wait_stable(STABLE_TIMEOUT_MS).await.unwrap();
    let again = &aborted.moved[0];
    owner.run::<()>(&["SET", again, "newer"]).await.unwrap();

    // A replica with a key its master lacks (DEBUG POPULATE is not replicated), and a pair whose
    // key has another value on each side: counts equal, only the values tell.
    let replica_of = |m: &str| {
        let id = cluster
            .nodes
            .iter()
            .find(|x| x.addr == m)
            .unwrap()
            .id
            .clone();
        let replica = cluster.replicas().find(|n| {
            n.role
                == Role::Replica {
                    master_id: id.clone(),
                }
        });
        replica.unwrap().addr.clone()
    };
    let third = masters[2].addr.clone();
    let extra_tag = support::tag_for(16_000);
    admin(&replica_of(&third))
        .await
        .run::<()>(&["DEBUG", "POPULATE", "1", &format!("{{{extra_tag}}}x"), "8"])
        .await
        .unwrap();
    let value_tag = support::tag_for(5_000);
    let prefix = format!("{{{value_tag}}}v");
    owner
        .run::<()>(&["DEBUG", "POPULATE", "1", &prefix, "8"])
        .await
        .unwrap();
    admin(&replica_of(&src.addr))
        .await
        .run::<()>(&["DEBUG", "POPULATE", "1", &prefix, "16"])
        .await
        .unwrap();

    // Final state: the history says 2 was written last; the cluster holds 1.
    let fs_key = format!("{{{value_tag}}}fs");
    owner.run::<()>(&["SET", &fs_key, "1"]).await.unwrap();
    let fs_history = register_history(&cluster.dir.path().join("fs.jsonl"), &fs_key, &[1, 2]);

    let check = cluster_check(&src.addr);
    assert!(check.contains("[OK] All 16384 slots covered"), "{check}");
    assert!(
        !check.contains("[ERR]") && !check.contains("[WARNING]"),
        "{check}"
    );

    let history = checker::History::read_file(&cluster.history_path()).unwrap();
    let found = verify(&seeds, Some(&history), &opts).await.unwrap();
    assert_eq!(
        classes(&found.anomalies),
        ["duplicated-key", "replica-divergence", "stranded-key"],
        "{:#?}",
        found.anomalies
    );
    let stranded = found
        .anomalies
        .iter()
        .find(|a| a.class == "stranded-key")
        .unwrap();
    assert_eq!(stranded.data["count"], 59);
    assert_eq!(stranded.data["node"], json!(dst.addr));
    assert_eq!(stranded.data["owner"], json!(src.addr));
    assert_eq!(stranded.data["slot"], SLOT);
    let phases = stranded.context.as_ref().unwrap()["slot_phases"][SLOT.to_string()].to_string();
    assert!(phases.contains("aborted"), "{phases}");
    let dup = found
        .anomalies
        .iter()
        .find(|a| a.class == "duplicated-key")
        .unwrap();
    assert_eq!(dup.keys, vec![again.clone()]);
    let diverged = found
        .anomalies
        .iter()
        .find(|a| a.class == "replica-divergence")
        .unwrap();
    assert_eq!(diverged.data["extra"], 1, "{diverged:?}");
    assert_eq!(
        diverged.data["different"], 0,
        "counts only: values not compared"
    );
    assert!(!found.checks.iter().all(|c| c.ok));

    let deep = VerifyOptions {
        deep: true,
        ..VerifyOptions::default()
    };
    let found = verify(&seeds, Some(&fs_history), &deep).await.unwrap();
    let dup = found
        .anomalies
        .iter()
        .find(|a| a.class == "duplicated-key")
        .unwrap();
    assert_eq!(dup.data["differing_values"], 1);
    let diverged: Vec<&checker::Anomaly> = found
        .anomalies
        .iter()
        .filter(|a| a.class == "replica-divergence")
        .collect();
    assert_eq!(diverged.len(), 2, "{diverged:#?}");
    assert!(diverged.iter().any(|a| a.data["different"] == 1));
    let fs: Vec<&checker::Anomaly> = found
        .anomalies
        .iter()
        .filter(|a| a.class == "final-state-mismatch")
        .collect();
    assert_eq!(fs.len(), 1, "{:#?}", found.anomalies);
    assert_eq!(fs[0].data["observed"], 1);
    assert_eq!(fs[0].data["allowed"], json!([2]));
    assert!(
        found.keys_compared_by_value > (KEYS as u64),
        "{}",
        found.keys_compared_by_value
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stranded_duplicated_diverged_and_final_state_are_found_redis() {
    damage_is_found(ServerKind::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stranded_duplicated_diverged_and_final_state_are_found_valkey() {
    damage_is_found(ServerKind::Valkey).await;
}

/// A clean `slotcheck test` with replicas, migrations and short pauses: verify runs at its end,
/// judges every key of the history and finds nothing.
fn clean_run_verifies_clean(server: &str) {
    let dir = tempfile::tempdir().unwrap();
    let out = support::slotcheck()
        .args([
            "test",
            "--server",
            server,
            "--replicas",
            "1",
            "--keys",
            "12",
        ])
        .args([
            "--duration",
            "6s",
            "--nemesis",
            "migrate,pause",
            "--migrate-interval",
            "1s",
        ])
        .args([
            "--nemesis-interval",
            "2s",
            "--fault-hold",
            "800ms",
            "--seed",
            "3",
        ])
        .arg("--output")
        .arg(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("replicas match their masters"), "{stderr}");
    let v: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("verify.json")).unwrap()).unwrap();
    assert_eq!(v["anomalies"], json!([]), "{v:#}");
    assert_eq!(v["history_keys_checked"], 12, "{v:#}");
    assert_eq!(v["replicas_compared"], 3);
    assert!(v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .all(|c| c["ok"] == true));
}

#[test]
fn clean_run_verifies_clean_redis() {
    clean_run_verifies_clean("redis");
}

#[test]
fn clean_run_verifies_clean_valkey() {
    clean_run_verifies_clean("valkey");
}
