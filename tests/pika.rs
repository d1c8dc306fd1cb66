//! PikiwiDB (pika 4.0) against real servers: sync and async slot migration, the slot function
//! against the server's own `SLOTSHASHKEY`, keys pika leaves behind, and a target killed
//! mid-migration. Run only with `SLOTCHECK_PIKIWIDB_SERVER` set to a pika binary.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use checker::history::{EventType, History};
use checker::slot::codis_slot;
use rand::{Rng, SeedableRng};
use slotcheck::pika::strike::{Mode, Victim};
use slotcheck::pika::{check_placement, FindingKind, Outcome, PikaNemesis};
use workloads::codis::{CodisTable, MigrationMode};

mod support;

async fn conn(addr: &str) -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(format!("redis://{addr}/")).unwrap();
    client.get_multiplexed_async_connection().await.unwrap()
}

/// `count` keys (as `prefix<i>`) whose slots are in `slots`, in order of `i`.
fn keys_in(prefix: &str, slots: &BTreeSet<u16>, count: usize) -> Vec<String> {
    (0u64..)
        .map(|i| format!("{prefix}{i}"))
        .filter(|k| slots.contains(&codis_slot(k.as_bytes())))
        .take(count)
        .collect()
}

/// Writes key `i` as one of five types (by `i % 5`), with commands pika indexes; returns the
/// expected `TYPE`s.
async fn write_typed(addr: &str, keys: &[String]) -> BTreeMap<String, String> {
    let mut c = conn(addr).await;
    let mut expected = BTreeMap::new();
    for chunk in keys.chunks(500) {
        let mut pipe = redis::pipe();
        for k in chunk {
            let i = expected.len();
            let ty = match i % 5 {
                0 => {
                    pipe.cmd("SET").arg(k).arg(i);
                    "string"
                }
                1 => {
                    pipe.cmd("HSET").arg(k).arg("f").arg(i);
                    "hash"
                }
                2 => {
                    pipe.cmd("RPUSH").arg(k).arg(i).arg(i + 1);
                    "list"
                }
                3 => {
                    pipe.cmd("SADD").arg(k).arg(i);
                    "set"
                }
                _ => {
                    pipe.cmd("ZADD").arg(k).arg(1).arg(i);
                    "zset"
                }
            };
            expected.insert(k.clone(), ty.to_string());
        }
        let _: Vec<redis::Value> = pipe.query_async(&mut c).await.unwrap();
    }
    expected
}

async fn migrate_three_slots(mode: Mode) {
    let Some(bin) = support::pika_binary() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cluster = support::start_pika(bin, 2, &dir).await;
    let [a, b] = <[String; 2]>::try_from(cluster.addrs()).unwrap();
    let table = CodisTable::new(&cluster.addrs(), MigrationMode::Sync).shared();
    // A hash tag whose slot server A owns (the first half): its 100 keys move as one group.
    let tag = (0..)
        .map(|i| format!("tag{i}"))
        .find(|t| codis_slot(t.as_bytes()) < 500)
        .unwrap();
    let tag_slot = codis_slot(tag.as_bytes());
    let moved: [u16; 3] = [17, 200, tag_slot];
    let slots: BTreeSet<u16> = [3, 17, 100, 200, 300, 400, 511].into();
    let mut keys = keys_in("k", &slots, 1900);
    keys.extend(keys_in(&format!("{{{tag}}}:"), &[tag_slot].into(), 100));
    let expected = write_typed(&a, &keys).await;
    assert_eq!(expected.len(), 2000);

    let history = dir.path().join(support::HISTORY);
    let recorder = support::recorder(&history);
    let nemesis = PikaNemesis::new(cluster.clone(), table.clone(), Some(recorder.clone()));
    let slot_keys = keys
        .iter()
        .filter(|k| moved.contains(&codis_slot(k.as_bytes())))
        .count();
    let started = Instant::now();
    for slot in moved {
        let step = match mode {
            Mode::Sync => nemesis.migrate_sync(slot, &a, &b).await,
            Mode::Async => nemesis.migrate_async(slot, &a, &b).await,
        };
        assert!(
            matches!(step.outcome, Outcome::Done { .. }),
            "slot {slot}: {step:?}"
        );
    }
    let took = started.elapsed();
    eprintln!(
        "{mode:?}: {slot_keys} keys in 3 slots moved in {took:?}: {:.0} keys/s",
        slot_keys as f64 / took.as_secs_f64()
    );
    recorder.close().unwrap();

    let t = table.read().unwrap().clone();
    for slot in moved {
        assert_eq!(&*t.route(slot).owner, b.as_str());
    }
    let report = check_placement(&cluster.addrs(), &t).await.unwrap();
    assert!(
        report.is_clean(),
        "{} findings, first: {:?}",
        report.findings.len(),
        report.findings.first()
    );
    assert_eq!(
        report.keys.len(),
        expected.len(),
        "every key still somewhere, once"
    );
    for (key, ty) in &expected {
        let on = &report.keys[key];
        let want = if moved.contains(&codis_slot(key.as_bytes())) {
            &b
        } else {
            &a
        };
        assert_eq!(on.keys().collect::<Vec<_>>(), vec![want], "{key}");
        assert_eq!(&on[want], ty, "{key}");
    }

    let h = History::read_file(&history).unwrap();
    let f = match mode {
        Mode::Sync => "pika-migrate-sync",
        Mode::Async => "pika-migrate-async",
    };
    let ends: Vec<_> = h
        .events
        .iter()
        .filter(|e| e.f == f && e.value["phase"] == "end")
        .collect();
    assert_eq!(ends.len(), 3);
    for e in ends {
        assert_eq!(e.kind, EventType::Info);
        assert_eq!(e.value["outcome"], "done");
        assert_eq!(e.value["from"], a.as_str());
        assert_eq!(e.value["to"], b.as_str());
    }
    cluster.stop();
}

#[tokio::test]
async fn sync_migration_moves_every_key_of_three_slots() {
    migrate_three_slots(Mode::Sync).await;
}

#[tokio::test]
async fn async_migration_moves_every_key_of_three_slots() {
    migrate_three_slots(Mode::Async).await;
}

#[tokio::test]
async fn codis_slot_agrees_with_slotshashkey() {
    let Some(bin) = support::pika_binary() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    // Three servers, though one answers: the bring-up time of a 3-server cluster is measured here.
    let cluster = support::start_pika(bin, 3, &dir).await;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let alphabet = b"abcXYZ09{}:_-";
    let keys: Vec<Vec<u8>> = (0..10_000)
        .map(|i| {
            let len = rng.random_range(0..16);
            let mut k: Vec<u8> = (0..len)
                .map(|_| alphabet[rng.random_range(0..alphabet.len())])
                .collect();
            match i % 5 {
                0 => k.splice(0..0, b"{user:1}".iter().copied()).for_each(drop),
                1 => k.splice(0..0, b"{}".iter().copied()).for_each(drop),
                2 => k.extend_from_slice(b"{unclosed"),
                3 => k.extend_from_slice(b"MiXeD{Tag}"),
                _ => {}
            }
            k
        })
        .collect();
    let mut c = conn(&cluster.addrs()[0]).await;
    let mut checked = 0;
    for chunk in keys.chunks(500) {
        let mut cmd = redis::cmd("SLOTSHASHKEY");
        for k in chunk {
            cmd.arg(k);
        }
        let slots: Vec<u16> = cmd.query_async(&mut c).await.unwrap();
        assert_eq!(slots.len(), chunk.len());
        for (k, s) in chunk.iter().zip(slots) {
            assert_eq!(codis_slot(k), s, "key {:?}", String::from_utf8_lossy(k));
            checked += 1;
        }
    }
    assert_eq!(checked, 10_000);
    cluster.stop();
}

#[tokio::test]
async fn keys_outside_the_slot_index_are_left_behind() {
    let Some(bin) = support::pika_binary() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cluster = support::start_pika(bin, 2, &dir).await;
    let [a, b] = <[String; 2]>::try_from(cluster.addrs()).unwrap();
    let table = CodisTable::new(&cluster.addrs(), MigrationMode::Sync).shared();
    let slot = 42;
    let k = keys_in("c", &[slot].into(), 5);
    let mut c = conn(&a).await;
    let _: () = redis::cmd("SET")
        .arg(&k[0])
        .arg(1)
        .query_async(&mut c)
        .await
        .unwrap();
    let _: i64 = redis::cmd("DECR")
        .arg(&k[1])
        .query_async(&mut c)
        .await
        .unwrap();
    let _: () = redis::cmd("PSETEX")
        .arg(&k[2])
        .arg(600_000)
        .arg("v")
        .query_async(&mut c)
        .await
        .unwrap();
    let _: i64 = redis::cmd("PFADD")
        .arg(&k[3])
        .arg("x")
        .query_async(&mut c)
        .await
        .unwrap();
    let _: i64 = redis::cmd("INCR")
        .arg(&k[4])
        .query_async(&mut c)
        .await
        .unwrap();

    for (k, how) in k.iter().zip(["SET", "DECR", "PSETEX", "PFADD", "INCR"]) {
        eprintln!("{k}: written by {how}");
    }
    let nemesis = PikaNemesis::new(cluster.clone(), table.clone(), None);
    let step = nemesis.migrate_sync(slot, &a, &b).await;
    eprintln!("migration: {step:?}");
    assert!(matches!(step.outcome, Outcome::Done { .. }));
    let t = table.read().unwrap().clone();
    let report = check_placement(&cluster.addrs(), &t).await.unwrap();
    for f in &report.findings {
        eprintln!(
            "finding: {} {} slot {} owner {} on {:?}",
            f.kind.name(),
            f.key,
            f.slot,
            f.owner,
            f.found_on
        );
    }
    let stranded: BTreeSet<&str> = report
        .of_kind(FindingKind::Stranded)
        .map(|f| f.key.as_str())
        .collect();
    assert!(
        stranded.contains(k[1].as_str()),
        "the DECR key is left on the source"
    );
    assert_eq!(
        report.keys[&k[1]].get(&a).map(String::as_str),
        Some("string")
    );
    assert!(
        !stranded.contains(k[0].as_str()) && !stranded.contains(k[4].as_str()),
        "SET and INCR keys moved"
    );

    // SLOTSRELOAD on the source puts the left-behind keys into its slot index; migrating the slot
    // again (the table already names the target as owner) then moves them.
    let reload = nemesis.slots_reload(&a).await;
    assert!(matches!(reload.outcome, Outcome::Done { .. }), "{reload:?}");
    let again = nemesis.migrate_sync(slot, &a, &b).await;
    eprintln!("after SLOTSRELOAD: {:?}", again.outcome);
    let t = table.read().unwrap().clone();
    let report = check_placement(&cluster.addrs(), &t).await.unwrap();
    assert!(report.is_clean(), "{:?}", report.findings);
    assert_eq!(report.keys.len(), 5);
    cluster.stop();
}

#[tokio::test]
async fn killing_the_target_mid_sync_migration_does_not_hang() {
    kill_target_mid_migration(Mode::Sync).await;
}

#[tokio::test]
async fn killing_the_target_mid_async_migration_does_not_hang() {
    kill_target_mid_migration(Mode::Async).await;
}

/// Kills the target early in a slow migration (400 lists of 500 elements), checks the
/// migration ends by its deadline and stays open, restarts the target, reports placement,
/// then migrates the rest and checks every key arrived once.
async fn kill_target_mid_migration(mode: Mode) {
    let Some(bin) = support::pika_binary() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cluster = support::start_pika(bin, 2, &dir).await;
    let [a, b] = <[String; 2]>::try_from(cluster.addrs()).unwrap();
    let table = CodisTable::new(&cluster.addrs(), MigrationMode::Sync).shared();
    let slot = 7;
    let keys = write_big(&a, "big", slot, 400).await;
    let mut nemesis = PikaNemesis::new(cluster.clone(), table.clone(), None);
    nemesis.options.deadline = Duration::from_secs(4);
    nemesis.options.keys_per_round = 20;
    // The async migration is ~4x faster: it is hit earlier.
    let kill_after = Duration::from_millis(if mode == Mode::Sync { 150 } else { 40 });
    let started = Instant::now();
    let strike = nemesis
        .strike(slot, (&a, &b), mode, Victim::Target, kill_after, None)
        .await;
    let took = started.elapsed();
    eprintln!(
        "{mode:?} strike took {took:?}: migration {:?}; kill {:?}",
        strike.migration.outcome, strike.kill.outcome
    );
    assert!(took < Duration::from_secs(15), "bounded");
    assert!(
        !matches!(strike.migration.outcome, Outcome::Done { .. }),
        "the target died: {:?}",
        strike.migration
    );
    assert!(
        table.read().unwrap().route(slot).migrating_to.is_some(),
        "left open"
    );

    nemesis.restart(&b).await;
    let t = table.read().unwrap().clone();
    let report = check_placement(&cluster.addrs(), &t).await.unwrap();
    let on = |s: &String| report.keys.values().filter(|m| m.contains_key(s)).count();
    eprintln!(
        "{mode:?} after restart: {} keys on source, {} on target, {} findings, first {:?}",
        on(&a),
        on(&b),
        report.findings.len(),
        report.findings.first()
    );
    assert!(report.keys.len() <= keys.len());

    let resumed = match mode {
        Mode::Sync => nemesis.migrate_sync(slot, &a, &b).await,
        Mode::Async => nemesis.migrate_async(slot, &a, &b).await,
    };
    eprintln!("{mode:?} resumed: {:?}", resumed.outcome);
    let t = table.read().unwrap().clone();
    let report = check_placement(&cluster.addrs(), &t).await.unwrap();
    eprintln!(
        "{mode:?} after resume: {} keys, {} findings, first {:?}",
        report.keys.len(),
        report.findings.len(),
        report.findings.first()
    );
    assert!(matches!(resumed.outcome, Outcome::Done { .. }));
    assert_eq!(report.keys.len(), keys.len(), "no key lost");
    assert!(report.is_clean());
    cluster.stop();
}

/// Writes `count` lists of 500 elements into `slot` on `addr` (slow to migrate); returns the keys.
async fn write_big(addr: &str, prefix: &str, slot: u16, count: usize) -> Vec<String> {
    let keys = keys_in(prefix, &[slot].into(), count);
    let mut c = conn(addr).await;
    for k in &keys {
        let mut cmd = redis::cmd("RPUSH");
        cmd.arg(k);
        for v in 0..500 {
            cmd.arg(v);
        }
        let _: i64 = cmd.query_async(&mut c).await.unwrap();
    }
    keys
}

#[tokio::test]
async fn a_new_async_migration_after_cancel_ends_bounded() {
    let Some(bin) = support::pika_binary() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let cluster = support::start_pika(bin, 2, &dir).await;
    let [a, b] = <[String; 2]>::try_from(cluster.addrs()).unwrap();
    let table = CodisTable::new(&cluster.addrs(), MigrationMode::Sync).shared();
    let keys = write_big(&a, "cancel", 9, 400).await;
    let mut nemesis = PikaNemesis::new(cluster.clone(), table.clone(), None);
    nemesis.options.deadline = Duration::from_secs(6);
    nemesis.options.command_timeout = Duration::from_secs(2);
    nemesis.options.keys_per_round = 20;
    let started = Instant::now();
    let (first, cancel) = tokio::join!(nemesis.migrate_async(9, &a, &b), async {
        tokio::time::sleep(Duration::from_millis(30)).await;
        nemesis.cancel_async(&a).await
    });
    eprintln!(
        "first: {:?} after {:?}; cancel: {:?}",
        first.outcome,
        started.elapsed(),
        cancel.outcome
    );
    let again = Instant::now();
    let second = nemesis.migrate_async(9, &a, &b).await;
    eprintln!("second: {:?} after {:?}", second.outcome, again.elapsed());
    assert!(
        again.elapsed() < Duration::from_secs(12),
        "bounded by deadline + one command timeout"
    );
    let t = table.read().unwrap().clone();
    let report = check_placement(&cluster.addrs(), &t).await.unwrap();
    let on = |s: &String| report.keys.values().filter(|m| m.contains_key(s)).count();
    eprintln!(
        "placement: {} of {} keys, {} on source, {} on target, {} findings {:?}",
        report.keys.len(),
        keys.len(),
        on(&a),
        on(&b),
        report.findings.len(),
        report.findings.first()
    );
    assert_eq!(
        report.keys.len(),
        keys.len(),
        "no key lost by cancel and restart"
    );
    cluster.stop();
}
