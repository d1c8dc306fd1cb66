//! Transactions and multi-key commands against real Redis 7.0 and Valkey 9.1 clusters: what a
//! half-migrated slot does to `MULTI`/`EXEC` (the router's hops, `ASKING` lasting through `MULTI`),
//! and the two transaction client bugs, each found 3 seeds out of 3 on both servers through
//! `slotcheck test` and its `detection.json`.
//!
//! Run with `-- --test-threads=2`: the bug cases start a cluster per seed.

use checker::{GaveUp, RedirectKind};
use redis::Value;
use serde_json::Value as Json;
use slotcheck::harness::{Admin, ServerKind};
use slotcheck::nemesis::migrate::{open_slot, MigrateOptions};
use workloads::{ClientBug, Execution, OpError, Router, RouterConfig, SlotMap};

mod support;

/// A slot the first of three masters owns.
const SLOT: u16 = 100;
/// Hops before a bugged or blocked transaction gives up: its loops end quickly.
const HOPS_MAX: u32 = 4;

async fn router(seeds: &[String], bug: Option<ClientBug>) -> Router {
    let config = RouterConfig {
        hops_max: HOPS_MAX,
        bug,
        ..RouterConfig::default()
    };
    let mut router = Router::new(seeds.to_vec(), SlotMap::new().shared(), config);
    router.refresh_slot_map().await.unwrap();
    router
}

fn path(e: &Execution) -> Vec<(RedirectKind, String, String)> {
    let hops = e.redirects.iter();
    hops.map(|r| (r.kind, r.from.clone(), r.to.clone()))
        .collect()
}

/// With the slot `MIGRATING`: an `MSET` queued at the source whose keys are split answers
/// `TRYAGAIN` (a hop per retry, then the give-up); once every key is at the target, the queued
/// commands answer `ASK` and the router resends the whole transaction there after `ASKING`,
/// which runs it (the flag lasts through `MULTI`); without `ASKING` the target sends it back; and
/// a transaction over a moved key and a missing one is `TRYAGAIN` at the target too.
async fn transactions_meet_a_migrating_slot(kind: ServerKind) {
    let cluster = support::start(kind, 3, 0).await;
    let masters = cluster.peers();
    let (src, dst) = (&masters[0], &masters[1]);
    let keys = support::keys_for(SLOT, 2);
    let (k0, k1) = (keys[0].as_str(), keys[1].as_str());
    let mut correct = router(&cluster.seeds(), None).await;
    let set = redis::cmd("SET").arg(k0).arg(1).clone();
    assert_eq!(
        correct.execute(k0.as_bytes(), &set).await.result,
        Ok(Value::Okay)
    );
    let recorder = cluster.recorder();
    let opts = MigrateOptions {
        step_pause_ms: 0,
        ..MigrateOptions::default()
    };
    let _open = open_slot(&recorder, SLOT, src, dst, &opts).await.unwrap();

    // k0 at the source, k1 nowhere: a multi-key command is refused with TRYAGAIN when queued.
    let mset = redis::cmd("MSET").arg(k0).arg(2).arg(k1).arg(2).clone();
    let e = correct.execute_txn(k0.as_bytes(), &[mset]).await;
    eprintln!("{kind}: MSET of split keys in MULTI: {e:?}");
    let retry = (RedirectKind::TryAgain, src.addr.clone(), src.addr.clone());
    assert_eq!(path(&e), vec![retry; HOPS_MAX as usize]);
    assert_eq!(
        e.gave_up.as_ref().map(|g| g.kind),
        Some(RedirectKind::TryAgain)
    );
    assert!(
        matches!(&e.result, Err(OpError::Fail(t)) if t.contains("TRYAGAIN")),
        "{e:?}"
    );

    // k0 moved: both keys are missing at the source, whose queued commands answer ASK.
    let (host, port) = dst.addr.rsplit_once(':').unwrap();
    let mut admin = Admin::connect(&src.addr).await.unwrap();
    let migrate = ["MIGRATE", host, port, "", "0", "5000", "KEYS", k0];
    admin.run::<()>(&migrate).await.unwrap();
    let txn = [
        redis::cmd("SET").arg(k0).arg(3).clone(),
        redis::cmd("GET").arg(k0).clone(),
    ];
    let ask = (RedirectKind::Ask, src.addr.clone(), dst.addr.clone());
    let back = (RedirectKind::Moved, dst.addr.clone(), src.addr.clone());
    let mut bugged = router(&cluster.seeds(), Some(ClientBug::NoAskingInMulti)).await;
    let e = bugged.execute_txn(k0.as_bytes(), &txn).await;
    eprintln!("{kind}: MULTI at the target without ASKING: {e:?}");
    assert_eq!(path(&e), vec![ask.clone(), back.clone(), ask.clone(), back]);
    let gave_up = e.gave_up.clone().expect("gave up at the hop limit");
    assert_eq!(
        gave_up,
        GaveUp::new(RedirectKind::Ask, &format!("ASK {SLOT} {}", dst.addr), 4)
    );
    let e = correct.execute_txn(k0.as_bytes(), &txn).await;
    eprintln!("{kind}: MULTI at the target after ASKING: {e:?}");
    let three = Value::BulkString(b"3".to_vec());
    assert_eq!(e.result, Ok(Value::Array(vec![Value::Okay, three])));
    assert_eq!(
        (path(&e), e.node.as_str()),
        (vec![ask.clone()], dst.addr.as_str())
    );
    // A transaction over both keys: the target, asked, holds k0 but not k1, so its EXEC answers
    // TRYAGAIN (the missing key may still be at the source); the retry goes to the owner again.
    let both = [
        redis::cmd("SET").arg(k0).arg(4).clone(),
        redis::cmd("GET").arg(k1).clone(),
    ];
    let e = correct.execute_txn(k0.as_bytes(), &both).await;
    eprintln!("{kind}: MULTI over a moved and a missing key: {e:?}");
    let retry = (RedirectKind::TryAgain, dst.addr.clone(), src.addr.clone());
    assert_eq!(path(&e), vec![ask.clone(), retry.clone(), ask, retry]);
    let get = redis::cmd("GET").arg(k0).clone();
    let read = correct.execute(k0.as_bytes(), &get).await;
    assert_eq!(
        read.result,
        Ok(Value::BulkString(b"3".to_vec())),
        "{read:?}"
    );
    recorder.close().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_transactions_meet_a_migrating_slot() {
    transactions_meet_a_migrating_slot(ServerKind::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valkey_transactions_meet_a_migrating_slot() {
    transactions_meet_a_migrating_slot(ServerKind::Valkey).await;
}

/// Runs `slotcheck test` with `bug` on `server` for `seed` and returns its `detection.json`.
fn detect(server: &str, bug: ClientBug, workload: &str, seed: u64) -> Json {
    let tmp = tempfile::tempdir().unwrap();
    let out = support::slotcheck()
        .args([
            "test",
            "--server",
            server,
            "--duration",
            "12s",
            "--slots",
            "4",
        ])
        .args(["--workload", workload, "--client-bug", bug.name()])
        .args(["--seed", &seed.to_string(), "--output"])
        .arg(tmp.path())
        .output()
        .expect("run slotcheck");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "invalid: {stdout}");
    support::assert_no_server_left(&tmp.path().join("history.jsonl"));
    let text = std::fs::read_to_string(tmp.path().join("detection.json")).expect("detection.json");
    serde_json::from_str(&text).expect("detection.json is JSON")
}

/// `bug` is found with its class, and the cause `cause`, on both servers for every seed of
/// [`support::bug_seeds`].
fn found_every_time(bug: ClientBug, workload: &str, cause: &str) {
    for server in ["redis", "valkey"] {
        for seed in support::bug_seeds() {
            let d = detect(server, bug, workload, seed);
            eprintln!("{bug} on {server}, seed {seed}: {d}");
            let class = bug.expected();
            assert_eq!(
                (&d["expected"], &d["detected"]),
                (&Json::from(class), &Json::from(true)),
                "{d:#}"
            );
            assert!(d["causes"][cause][class].as_u64() > Some(0), "{d:#}");
        }
    }
}

/// Resending a transaction to the `ASK` target without `ASKING`: the target answers `MOVED` back
/// to the source for each queued command, a path the protocol check names after the mistake.
#[test]
fn no_asking_in_multi_is_found_on_both_servers() {
    found_every_time(ClientBug::NoAskingInMulti, "rw-register", "client");
}

/// A multi-key op whose retry after `TRYAGAIN` was applied but recorded `fail`: a later read sees
/// the value its write "did not" write. The history cannot tell this client from a server that
/// applied a command and then answered `TRYAGAIN` (the `fail` carries the server's words), so the
/// cause is the server's, beside a `redirect-after-apply` finding (see `workloads::bugs`).
#[test]
fn tryagain_as_fail_after_apply_is_found_on_both_servers() {
    found_every_time(ClientBug::TryagainAsFailAfterApply, "register", "server");
}
