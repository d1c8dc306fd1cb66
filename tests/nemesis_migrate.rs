//! Migrations of every kind against real 3-master clusters (no mocks): classic, aborted, finalized
//! early, atomic (Valkey 9) and its cancel, repair of interrupted migrations, and plans. Every
//! server is stopped by the cluster's Drop, also when an assertion fails.

use std::time::{Duration, Instant};

use slotcheck::harness::{Admin, ServerKind};
use slotcheck::nemesis::migrate::atomic::{
    cancel_atomic, migrate_atomic, slot_migrations, AtomicOptions,
};
use slotcheck::nemesis::migrate::interrupt::{migrate_then_abort, migrate_then_finalize_early};
use slotcheck::nemesis::migrate::repair::{repair, wait_no_open_slots};
use slotcheck::nemesis::migrate::{migrate_slot, open_slot, MigrateError, MigrateOptions, Peer};
use slotcheck::nemesis::plan::{move_slots, ownership, rebalance, Owned};
use workloads::Recorder;

mod support;

/// Keys put into a slot before moving it.
const KEYS: usize = 200;
/// Slot on the first master (which owns 0-5460 at bring-up).
const SLOT: u16 = 100;
/// Deadline for the cluster to agree again after a change.
const STABLE_TIMEOUT_MS: u64 = 10_000;

/// A running cluster with its history and its masters as peers; the cluster (and its temp dir)
/// is dropped after the recorder, also when an assertion fails.
struct Setup {
    recorder: Recorder,
    masters: Vec<Peer>,
    cluster: support::TestCluster,
}

async fn setup(kind: ServerKind) -> Setup {
    let cluster = support::start(kind, 3, 0).await;
    Setup {
        recorder: cluster.recorder(),
        masters: cluster.peers(),
        cluster,
    }
}

impl Setup {
    /// The nemesis steps as `f/phase`, after flushing the history.
    fn phases(&self) -> Vec<String> {
        self.recorder.close().unwrap();
        support::nemesis_events(&self.cluster.history_path())
            .iter()
            .map(support::NemesisEvent::step)
            .collect()
    }

    /// Masters other than `a` and `b`.
    fn others(&self, a: usize, b: usize) -> Vec<Peer> {
        (0..self.masters.len())
            .filter(|&i| i != a && i != b)
            .map(|i| self.masters[i].clone())
            .collect()
    }
}

/// Writes `n` keys of `slot` to its owner `addr`; returns them.
async fn fill(addr: &str, slot: u16, n: usize) -> Vec<String> {
    let keys = support::keys_for(slot, n);
    let client = redis::Client::open(format!("redis://{addr}/")).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    for chunk in keys.chunks(100) {
        let mut pipe = redis::pipe();
        for k in chunk {
            pipe.set(k, k).ignore();
        }
        pipe.query_async::<()>(&mut conn).await.unwrap();
    }
    keys
}

async fn count(addr: &str, slot: u16) -> usize {
    let mut admin = Admin::connect(addr).await.unwrap();
    admin
        .run(&["CLUSTER", "COUNTKEYSINSLOT", &slot.to_string()])
        .await
        .unwrap()
}

/// The owner of `slot` as `addr` sees it.
async fn owner(addr: &str, slot: u16) -> String {
    ownership(addr)
        .await
        .unwrap()
        .into_iter()
        .find(|o| o.slots.binary_search(&slot).is_ok())
        .map(|o| o.peer.addr)
        .unwrap_or_default()
}

fn fast() -> MigrateOptions {
    MigrateOptions {
        batch_keys: 20,
        step_pause_ms: 0,
        ..MigrateOptions::default()
    }
}

async fn classic_moves_all_keys(kind: ServerKind) {
    let s = setup(kind).await;
    let (src, dst) = (&s.masters[0], &s.masters[1]);
    fill(&src.addr, SLOT, KEYS).await;
    let opts = MigrateOptions {
        batch_keys: 50,
        ..fast()
    };
    let m = migrate_slot(&s.recorder, SLOT, src, dst, &s.others(0, 1), &opts)
        .await
        .unwrap();
    assert_eq!(m.keys_moved, KEYS);
    assert_eq!(count(&src.addr, SLOT).await, 0);
    assert_eq!(count(&dst.addr, SLOT).await, KEYS);
    s.cluster.wait_stable(STABLE_TIMEOUT_MS).await.unwrap();
    for peer in &s.masters {
        assert_eq!(owner(&peer.addr, SLOT).await, dst.addr);
    }
    let phases = s.phases();
    let moved = phases.iter().filter(|p| *p == "migrate-step/keys-moved");
    assert_eq!(moved.count(), KEYS / 50);
    assert_eq!(phases.first().unwrap(), "migrate-start/stable");
    assert_eq!(phases.last().unwrap(), "migrate-end/stable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classic_migration_moves_all_keys_redis() {
    classic_moves_all_keys(ServerKind::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classic_migration_moves_all_keys_valkey() {
    classic_moves_all_keys(ServerKind::Valkey).await;
}

/// `redis-cli --cluster check` output; it must call the cluster healthy.
fn cluster_check(addr: &str) -> String {
    let cli = slotcheck::harness::find_cli().unwrap();
    let out = std::process::Command::new(cli)
        .args(["--cluster", "check", addr])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

async fn abort_strands_keys(kind: ServerKind) {
    let s = setup(kind).await;
    let (src, dst) = (&s.masters[0], &s.masters[1]);
    let keys = fill(&src.addr, SLOT, KEYS).await;
    let report = migrate_then_abort(&s.recorder, SLOT, src, dst, &fast(), 3)
        .await
        .unwrap();
    assert_eq!(report.moved.len(), 60);
    assert_eq!(report.stranded, 60, "every moved key is stranded");
    assert_eq!(report.left, KEYS - 60);
    let mut stranded = report.stranded_keys.clone();
    stranded.sort();
    let mut moved = report.moved.clone();
    moved.sort();
    assert_eq!(stranded, moved);
    s.cluster.wait_stable(STABLE_TIMEOUT_MS).await.unwrap();
    assert_eq!(owner(&dst.addr, SLOT).await, src.addr);
    // The owner no longer has them; the node that has them does not serve them.
    let client = redis::Client::open(format!("redis://{}/", src.addr)).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let got: Option<String> = redis::cmd("GET")
        .arg(&report.moved[0])
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(got, None);
    assert!(keys.contains(&report.moved[0]));
    // redis-cli sees nothing wrong.
    let check = cluster_check(&src.addr);
    assert!(check.contains("[OK] All 16384 slots covered"), "{check}");
    assert!(
        !check.contains("[WARNING]") && !check.contains("[ERR]"),
        "{check}"
    );
    // repair reports them and leaves them where they are.
    let fixed = repair(&s.recorder, &s.masters).await.unwrap();
    assert!(fixed.fixed.is_empty() && fixed.unfixed.is_empty());
    assert_eq!(fixed.stranded.len(), 1);
    assert_eq!((fixed.stranded[0].slot, fixed.stranded[0].keys), (SLOT, 60));
    assert_eq!(fixed.stranded[0].node, dst.addr);
    let phases = s.phases();
    assert!(phases.contains(&"migrate-end/aborted".to_string()));
    assert_eq!(
        phases
            .iter()
            .filter(|p| *p == "migrate-step/stable")
            .count(),
        2
    );
    assert!(phases.contains(&"repair-step/stranded".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_strands_moved_keys_redis() {
    abort_strands_keys(ServerKind::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn abort_strands_moved_keys_valkey() {
    abort_strands_keys(ServerKind::Valkey).await;
}

async fn finalize_early_loses_keys(kind: ServerKind) {
    let s = setup(kind).await;
    let (src, dst) = (&s.masters[0], &s.masters[1]);
    fill(&src.addr, SLOT, KEYS).await;
    let report = migrate_then_finalize_early(
        &s.recorder,
        SLOT,
        src,
        dst,
        &s.others(0, 1),
        &fast(),
        3,
        10_000,
    )
    .await
    .unwrap();
    eprintln!(
        "{kind}: left behind {}, lost {}, source dropped them after {:?} ms",
        report.left_behind.len(),
        report.lost.len(),
        report.drop_ms
    );
    assert_eq!(report.moved.len(), 60);
    assert_eq!(report.left_behind.len(), KEYS - 60);
    assert_eq!(
        report.lost.len(),
        KEYS - 60,
        "every key left behind is lost"
    );
    assert_eq!(report.still_on_source, 0);
    assert_eq!(count(&dst.addr, SLOT).await, 60);
    // Redis 7.0 leaves the old owner MIGRATING a slot it no longer owns; Valkey 9 clears it.
    assert_eq!(report.source_still_migrating, kind == ServerKind::Redis);
    if report.source_still_migrating {
        let fixed = repair(&s.recorder, &s.masters).await.unwrap();
        assert_eq!(fixed.fixed.len(), 1, "{fixed:?}");
        assert_eq!(
            (fixed.fixed[0].slot, fixed.fixed[0].action),
            (SLOT, "closed")
        );
        assert_eq!(fixed.fixed[0].closed, vec![src.addr.clone()]);
    }
    s.cluster.wait_stable(STABLE_TIMEOUT_MS).await.unwrap();
    assert_eq!(owner(&src.addr, SLOT).await, dst.addr);
    let phases = s.phases();
    assert!(phases.contains(&"migrate-step/keys-lost".to_string()));
    assert!(phases.contains(&"migrate-end/finalized-early".to_string()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finalize_early_loses_unmoved_keys_redis() {
    finalize_early_loses_keys(ServerKind::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finalize_early_loses_unmoved_keys_valkey() {
    finalize_early_loses_keys(ServerKind::Valkey).await;
}

/// Three interrupted migrations, one `repair`: finish, roll back (no keys), roll back (keys).
async fn repair_closes_open_slots(kind: ServerKind) {
    let s = setup(kind).await;
    let (src, dst) = (&s.masters[0], &s.masters[1]);
    let (finish, bare, back) = (SLOT, SLOT + 1, SLOT + 2);
    for slot in [finish, bare, back] {
        fill(&src.addr, slot, KEYS).await;
    }
    // Interrupted after MIGRATING and two batches: repair finishes it.
    let mut open = open_slot(&s.recorder, finish, src, dst, &fast())
        .await
        .unwrap();
    open.move_batches(2).await.unwrap();
    drop(open);
    // Interrupted right after IMPORTING: repair rolls it back.
    let mut admin_dst = Admin::connect(&dst.addr).await.unwrap();
    let b = bare.to_string();
    admin_dst
        .run::<()>(&["CLUSTER", "SETSLOT", &b, "IMPORTING", &src.id])
        .await
        .unwrap();
    // Two batches moved, then the source closed its side only: keys on both, importing only.
    let mut open = open_slot(&s.recorder, back, src, dst, &fast())
        .await
        .unwrap();
    open.move_batches(2).await.unwrap();
    drop(open);
    let mut admin_src = Admin::connect(&src.addr).await.unwrap();
    admin_src
        .run::<()>(&["CLUSTER", "SETSLOT", &back.to_string(), "STABLE"])
        .await
        .unwrap();

    assert!(wait_no_open_slots(&s.masters, 200).await.is_err());
    let report = repair(&s.recorder, &s.masters).await.unwrap();
    eprintln!("{kind}: {report:?}");
    assert!(report.unfixed.is_empty() && report.stranded.is_empty());
    let fixes: Vec<(u16, &str, &str, usize)> = report
        .fixed
        .iter()
        .map(|f| (f.slot, f.action, f.owner.as_str(), f.keys_moved))
        .collect();
    assert_eq!(
        fixes,
        vec![
            (finish, "finished", dst.addr.as_str(), KEYS - 40),
            (bare, "rolled-back", src.addr.as_str(), 0),
            (back, "rolled-back", src.addr.as_str(), 40),
        ]
    );
    wait_no_open_slots(&s.masters, STABLE_TIMEOUT_MS)
        .await
        .unwrap();
    s.cluster.wait_stable(STABLE_TIMEOUT_MS).await.unwrap();
    assert_eq!(count(&dst.addr, finish).await, KEYS);
    assert_eq!(count(&src.addr, back).await, KEYS);
    assert_eq!(count(&dst.addr, back).await, 0);
    assert_eq!(owner(&src.addr, finish).await, dst.addr);
    assert_eq!(owner(&dst.addr, back).await, src.addr);
    let phases = s.phases();
    assert_eq!(phases.last().unwrap(), "repair/end");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repair_finishes_or_rolls_back_redis() {
    repair_closes_open_slots(ServerKind::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repair_finishes_or_rolls_back_valkey() {
    repair_closes_open_slots(ServerKind::Valkey).await;
}

/// A migration whose `MIGRATE` failed after the target restored a key (here `MIGRATE COPY`) left a
/// stale copy there while the owner kept serving the key; rolled back, the owner's newer value
/// stays and the copy is dropped, while a key only the target holds comes back.
async fn repair_keeps_the_owners_copy(kind: ServerKind) {
    let s = setup(kind).await;
    let (src, dst) = (&s.masters[0], &s.masters[1]);
    let slot = SLOT + 3;
    let keys = fill(&src.addr, slot, 3).await;
    let (mut a_src, mut a_dst) = (
        Admin::connect(&src.addr).await.unwrap(),
        Admin::connect(&dst.addr).await.unwrap(),
    );
    let sl = slot.to_string();
    a_dst
        .run::<()>(&["CLUSTER", "SETSLOT", &sl, "IMPORTING", &src.id])
        .await
        .unwrap();
    a_src
        .run::<()>(&["CLUSTER", "SETSLOT", &sl, "MIGRATING", &dst.id])
        .await
        .unwrap();
    let (host, port) = dst.addr.rsplit_once(':').unwrap();
    let migrate = |copy: bool, key: &str| {
        let mut w = vec!["MIGRATE", host, port, "", "0", "5000"];
        if copy {
            w.push("COPY");
        }
        w.extend(["KEYS", key].iter().map(|k| k.to_owned()));
        w.into_iter().map(str::to_string).collect::<Vec<_>>()
    };
    for (copy, key) in [(true, &keys[0]), (false, &keys[1])] {
        let words = migrate(copy, key);
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        a_src.run::<()>(&words).await.unwrap();
    }
    a_src.run::<()>(&["SET", &keys[0], "newer"]).await.unwrap();
    a_src
        .run::<()>(&["CLUSTER", "SETSLOT", &sl, "STABLE"])
        .await
        .unwrap();

    let report = repair(&s.recorder, &s.masters).await.unwrap();
    let fix = &report.fixed[0];
    assert_eq!((fix.slot, fix.action), (slot, "rolled-back"), "{report:?}");
    assert_eq!(
        (fix.keys_moved, fix.duplicates_dropped),
        (1, 1),
        "{report:?}"
    );
    let value: String = a_src.run(&["GET", &keys[0]]).await.unwrap();
    assert_eq!(value, "newer", "the stale copy overwrote the owner's value");
    assert_eq!(count(&src.addr, slot).await, 3);
    assert_eq!(count(&dst.addr, slot).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repair_keeps_the_owners_copy_redis() {
    repair_keeps_the_owners_copy(ServerKind::Redis).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repair_keeps_the_owners_copy_valkey() {
    repair_keeps_the_owners_copy(ServerKind::Valkey).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn atomic_migration_moves_a_range_valkey() {
    let s = setup(ServerKind::Valkey).await;
    let (src, dst) = (&s.masters[0], &s.masters[1]);
    for slot in SLOT..=SLOT + 3 {
        fill(&src.addr, slot, KEYS).await;
    }
    let m = migrate_atomic(
        &s.recorder,
        SLOT,
        SLOT + 3,
        src,
        dst,
        &AtomicOptions::default(),
    )
    .await
    .unwrap();
    eprintln!("atomic: {m:?}");
    assert_eq!(m.state, "success", "{m:?}");
    for slot in SLOT..=SLOT + 3 {
        assert_eq!(count(&src.addr, slot).await, 0);
        assert_eq!(count(&dst.addr, slot).await, KEYS);
    }
    s.cluster.wait_stable(STABLE_TIMEOUT_MS).await.unwrap();
    for peer in &s.masters {
        assert_eq!(owner(&peer.addr, SLOT + 3).await, dst.addr);
    }
    let jobs = slot_migrations(&dst.addr).await.unwrap();
    assert!(jobs
        .iter()
        .any(|j| j.name == m.job && j.operation == "IMPORT" && j.state == "success"));
    let phases = s.phases();
    assert!(phases.contains(&"migrate-step/atomic-started".to_string()));
    assert!(phases.contains(&"migrate-step/atomic-progress".to_string()));
    assert_eq!(phases.last().unwrap(), "migrate-end/atomic-done");
    // Nothing to cancel now.
    assert!(!cancel_atomic(&s.recorder, src).await.unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn atomic_cancel_keeps_slot_and_keys_on_source_valkey() {
    let s = setup(ServerKind::Valkey).await;
    let (src, dst) = (&s.masters[0], &s.masters[1]);
    let keys = 2000;
    fill(&src.addr, SLOT, keys).await;
    // 1 ms per key in the snapshot child: the snapshot takes about 2 s.
    let mut admin = Admin::connect(&src.addr).await.unwrap();
    admin
        .run::<()>(&["CONFIG", "SET", "rdb-key-save-delay", "1000"])
        .await
        .unwrap();
    let job = tokio::spawn({
        let (rec, src, dst) = (s.recorder.clone(), src.clone(), dst.clone());
        async move { migrate_atomic(&rec, SLOT, SLOT, &src, &dst, &AtomicOptions::default()).await }
    });
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let jobs = slot_migrations(&src.addr).await.unwrap();
        if jobs.iter().any(|j| j.state == "snapshotting") && count(&dst.addr, SLOT).await > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never saw the snapshot: {jobs:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let partial = count(&dst.addr, SLOT).await;
    assert!(cancel_atomic(&s.recorder, src).await.unwrap());
    let m = job.await.unwrap().unwrap();
    eprintln!("cancelled with {partial} keys imported: {m:?}");
    assert_eq!(m.state, "cancelled");
    // The target drops what it had imported; the source keeps everything.
    let deadline = Instant::now() + Duration::from_secs(5);
    while count(&dst.addr, SLOT).await != 0 {
        assert!(Instant::now() < deadline, "target kept imported keys");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(count(&src.addr, SLOT).await, keys);
    s.cluster.wait_stable(STABLE_TIMEOUT_MS).await.unwrap();
    for peer in &s.masters {
        assert_eq!(owner(&peer.addr, SLOT).await, src.addr);
    }
    let target_jobs = slot_migrations(&dst.addr).await.unwrap();
    eprintln!("target's view: {target_jobs:?}");
    let phases = s.phases();
    assert!(phases.contains(&"migrate-cancel/requested".to_string()));
    assert_eq!(phases.last().unwrap(), "migrate-end/atomic-cancelled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn atomic_verbs_are_unsupported_on_redis() {
    let s = setup(ServerKind::Redis).await;
    let (src, dst) = (&s.masters[0], &s.masters[1]);
    let e = migrate_atomic(&s.recorder, SLOT, SLOT, src, dst, &AtomicOptions::default())
        .await
        .unwrap_err();
    assert!(matches!(e, MigrateError::Unsupported { .. }), "{e}");
    let e = cancel_atomic(&s.recorder, src).await.unwrap_err();
    assert!(matches!(e, MigrateError::Unsupported { .. }), "{e}");
    assert!(slot_migrations(&src.addr).await.is_err());
    assert_eq!(owner(&src.addr, SLOT).await, src.addr);
}

fn counts(owned: &[Owned]) -> Vec<usize> {
    owned.iter().map(|o| o.slots.len()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rebalance_evens_out_a_skewed_cluster() {
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;
    let s = setup(ServerKind::Redis).await;
    let seed_addr = s.masters[0].addr.clone();
    let before = ownership(&seed_addr).await.unwrap();
    let (from, to) = (before[0].peer.clone(), before[1].peer.clone());
    let plan = move_slots(&mut ChaCha8Rng::seed_from_u64(42), &before, 30, &from, &to);
    assert_eq!(
        plan,
        move_slots(&mut ChaCha8Rng::seed_from_u64(42), &before, 30, &from, &to),
        "same seed, same plan"
    );
    assert_ne!(
        plan,
        move_slots(&mut ChaCha8Rng::seed_from_u64(43), &before, 30, &from, &to)
    );
    let run = |plan: Vec<slotcheck::nemesis::plan::Move>| {
        let (rec, masters) = (s.recorder.clone(), s.masters.clone());
        async move {
            for m in plan {
                let others: Vec<Peer> = masters
                    .iter()
                    .filter(|p| p.id != m.source.id && p.id != m.target.id)
                    .cloned()
                    .collect();
                migrate_slot(&rec, m.slot, &m.source, &m.target, &others, &fast())
                    .await
                    .unwrap();
            }
        }
    };
    run(plan).await;
    s.cluster.wait_stable(STABLE_TIMEOUT_MS).await.unwrap();
    let skewed = ownership(&seed_addr).await.unwrap();
    let c = counts(&skewed);
    assert_eq!(c[0] + 30, counts(&before)[0]);
    let plan = rebalance(&mut ChaCha8Rng::seed_from_u64(7), &skewed);
    assert_eq!(plan, rebalance(&mut ChaCha8Rng::seed_from_u64(7), &skewed));
    // 30 back, plus one if the even split wants the odd slot elsewhere.
    assert!((30..=31).contains(&plan.len()), "{}", plan.len());
    run(plan).await;
    s.cluster.wait_stable(STABLE_TIMEOUT_MS).await.unwrap();
    let after = counts(&ownership(&seed_addr).await.unwrap());
    eprintln!("before {:?} skewed {c:?} after {after:?}", counts(&before));
    assert!(after.iter().max().unwrap() - after.iter().min().unwrap() <= 1);
}
