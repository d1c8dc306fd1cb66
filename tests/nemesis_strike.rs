//! Migrations struck half-way on real 3-master clusters (no mocks): the source killed without
//! persistence comes back empty and the keys it had not moved are gone once the slot is repaired;
//! the target paused and resumed keeps every key and the repair finishes the move. Every server
//! is stopped by the cluster's Drop, also when an assertion fails.

use std::collections::BTreeSet;
use std::sync::Mutex;

use slotcheck::harness::{Admin, ServerKind};
use slotcheck::nemesis::migrate::repair::{repair, wait_no_open_slots};
use slotcheck::nemesis::migrate::strike::{migrate_then_strike, Strike};
use slotcheck::nemesis::migrate::{open_slot, MigrateOptions, Peer};

mod support;

/// Keys put into the slot before moving it.
const KEYS: usize = 100;
/// Keys per `MIGRATE` batch: the strike lands after the first one.
const BATCH: usize = 20;
/// Slot on the first master (which owns 0-5460 at bring-up).
const SLOT: u16 = 200;
/// Below the harness's `cluster-node-timeout`, so no failover muddles the picture.
const HOLD_MS: u64 = 1200;
const SETTLE_MS: u64 = 20_000;

async fn fill(addr: &str) {
    let tag = support::tag_for(SLOT);
    let client = redis::Client::open(format!("redis://{addr}/")).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let mut pipe = redis::pipe();
    for i in 0..KEYS {
        pipe.set(format!("{{{tag}}}:{i}"), i).ignore();
    }
    pipe.query_async::<()>(&mut conn).await.unwrap();
}

/// Keys of `SLOT` held by each master.
async fn counts(masters: &[Peer]) -> Vec<usize> {
    let mut out = Vec::new();
    for m in masters {
        let mut admin = Admin::connect(&m.addr).await.unwrap();
        let n: usize = admin
            .run(&["CLUSTER", "COUNTKEYSINSLOT", &SLOT.to_string()])
            .await
            .unwrap();
        out.push(n);
    }
    out
}

async fn strike(kind: ServerKind, variant: u32) -> (Vec<usize>, usize, String) {
    let bed = support::start(kind, 3, 0).await.with_history();
    let (ctx, masters) = (&bed.ctx, bed.peers());
    fill(&masters[0].addr).await;
    let opts = MigrateOptions {
        batch_keys: BATCH,
        step_pause_ms: 0,
        ..MigrateOptions::default()
    };
    let killing = Mutex::new(BTreeSet::new());
    let strike = Strike {
        slot: SLOT,
        source: &masters[0],
        target: &masters[1],
        opts: &opts,
        variant,
        hold_ms: HOLD_MS,
        settle_ms: SETTLE_MS,
    };
    let r = migrate_then_strike(ctx, &strike, &killing).await.unwrap();
    eprintln!("{kind} variant {variant}: {r:?}");
    assert_eq!(r.moved, BATCH, "the strike came after one batch");
    assert!(killing.lock().unwrap().is_empty());
    wait_no_open_slots(&masters, SETTLE_MS).await.unwrap();
    ctx.cluster.wait_stable(SETTLE_MS).await.unwrap();
    let fixed: Vec<u16> = r.repair.fixed.iter().map(|f| f.slot).collect();
    assert_eq!(fixed, vec![SLOT], "the repair closed the struck slot");
    let owner = r.repair.fixed[0].owner.clone();
    (counts(&masters).await, r.repair.keys_moved, owner)
}

async fn killed_source_loses_unmoved_keys(kind: ServerKind) {
    let (counts, moved, owner) = strike(kind, 0).await;
    // The source restarted empty (no persistence) yet still MIGRATING: the repair finishes the
    // move with nothing left to move, and only the batch already on the target survives.
    assert_eq!(counts, vec![0, BATCH, 0], "{kind}");
    assert_eq!(moved, 0, "{kind}");
    assert!(!owner.is_empty());
}

async fn paused_target_keeps_every_key(kind: ServerKind) {
    let (counts, moved, _) = strike(kind, 3).await;
    // Paused below the node timeout: nothing is lost, the repair moves the rest to the target.
    assert_eq!(counts, vec![0, KEYS, 0], "{kind}");
    assert_eq!(moved, KEYS - BATCH, "{kind}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_killed_source_loses_unmoved_keys() {
    killed_source_loses_unmoved_keys(ServerKind::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valkey_killed_source_loses_unmoved_keys() {
    killed_source_loses_unmoved_keys(ServerKind::Valkey).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_paused_target_keeps_every_key() {
    paused_target_keeps_every_key(ServerKind::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valkey_paused_target_keeps_every_key() {
    paused_target_keeps_every_key(ServerKind::Valkey).await;
}

/// A slot migrating to a target repair cannot reach (down, or flagged failing) is left open
/// rather than rolled back, since the target may hold moved keys the source would then answer
/// "absent" for; once the target is among the masters again, the move is finished.
async fn repair_waits_for_an_unreachable_target(kind: ServerKind) {
    let cluster = support::start(kind, 3, 0).await;
    let (recorder, masters) = (cluster.recorder(), cluster.peers());
    fill(&masters[0].addr).await;
    let opts = MigrateOptions {
        batch_keys: BATCH,
        step_pause_ms: 0,
        ..MigrateOptions::default()
    };
    let mut open = open_slot(&recorder, SLOT, &masters[0], &masters[1], &opts)
        .await
        .unwrap();
    open.move_batches(1).await.unwrap();
    drop(open);
    let without_target = [masters[0].clone(), masters[2].clone()];
    let report = repair(&recorder, &without_target).await.unwrap();
    assert!(report.fixed.is_empty(), "{report:?}");
    assert_eq!(report.unfixed.len(), 1, "{report:?}");
    assert_eq!(report.unfixed[0].0, SLOT);
    assert!(
        wait_no_open_slots(&masters, 200).await.is_err(),
        "left open"
    );
    assert_eq!(counts(&masters).await, vec![KEYS - BATCH, BATCH, 0]);
    let report = repair(&recorder, &masters).await.unwrap();
    assert_eq!(report.fixed[0].action, "finished", "{report:?}");
    assert_eq!(counts(&masters).await, vec![0, KEYS, 0]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_repair_waits_for_an_unreachable_target() {
    repair_waits_for_an_unreachable_target(ServerKind::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valkey_repair_waits_for_an_unreachable_target() {
    repair_waits_for_an_unreachable_target(ServerKind::Valkey).await;
}
