//! Against a real 3-master Redis Cluster: slots agree with the server, the router follows real
//! `MOVED` and `ASK` hops through a manual slot migration, and the register workload records a
//! well-formed history while a slot moves back and forth.

mod cluster;

use checker::{EventType, History, Process, RedirectKind};
use cluster::{cli, Cluster};
use redis::Value;
use serde_json::{json, Map};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use workloads::{
    final_reads, key_slot, run_register, workload_keys, Client, Completion, OpError, Operation,
    Recorder, Router, RouterConfig, SlotMap, WorkloadConfig,
};

fn port_of(addr: &str) -> u16 {
    addr.rsplit_once(':').unwrap().1.parse().unwrap()
}

fn node_id(addr: &str) -> String {
    cli(port_of(addr), &["CLUSTER", "MYID"]).trim().to_string()
}

fn history_path(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("slotcheck-wl-hist-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn header() -> checker::Header {
    let mut run = Map::new();
    run.insert("workload".into(), json!("register"));
    checker::Header::new(run)
}

/// Moves `slot` from `source` to `target` the way `redis-cli --cluster reshard` does, pausing
/// `window` while the slot is half-migrated so that clients meet `ASK`.
fn migrate_slot(slot: u16, source: &str, target: &str, everyone: &[String], window: Duration) {
    let (s, t) = (port_of(source), port_of(target));
    let (sid, tid) = (node_id(source), node_id(target));
    let slot_s = slot.to_string();
    assert!(cli(t, &["CLUSTER", "SETSLOT", &slot_s, "IMPORTING", &sid]).contains("OK"));
    assert!(cli(s, &["CLUSTER", "SETSLOT", &slot_s, "MIGRATING", &tid]).contains("OK"));
    std::thread::sleep(window);
    loop {
        let keys = cli(s, &["CLUSTER", "GETKEYSINSLOT", &slot_s, "100"]);
        let keys: Vec<&str> = keys.split_whitespace().collect();
        if keys.is_empty() {
            break;
        }
        let mut args = vec!["MIGRATE", "127.0.0.1", "", "", "0", "5000", "KEYS"];
        let tp = t.to_string();
        args[2] = &tp;
        args.extend(keys);
        assert!(cli(s, &args).contains("OK"));
    }
    std::thread::sleep(window);
    // Target first, then source, then the rest, as the cluster spec recommends.
    for addr in [target, source] {
        assert!(cli(
            port_of(addr),
            &["CLUSTER", "SETSLOT", &slot_s, "NODE", &tid]
        )
        .contains("OK"));
    }
    for addr in everyone.iter().filter(|a| *a != source && *a != target) {
        cli(
            port_of(addr),
            &["CLUSTER", "SETSLOT", &slot_s, "NODE", &tid],
        );
    }
}

#[test]
fn key_slots_match_cluster_keyslot() {
    let Some(cluster) = Cluster::start(3) else {
        return;
    };
    let keys = [
        "foo",
        "bar",
        "hello",
        "123456789",
        "{user1000}.following",
        "{user1000}.followers",
        "foo{}{bar}",
        "foo{{bar}}zap",
        "foo{bar}{zap}",
        "{}",
        "{",
        "}{",
        "register:0",
        "register:7",
    ];
    for key in keys {
        let server: u16 = cli(cluster.ports[0], &["CLUSTER", "KEYSLOT", key])
            .trim()
            .parse()
            .unwrap();
        assert_eq!(workloads::key_slot(key.as_bytes()), server, "{key}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn router_follows_moved_and_ask_during_a_migration() {
    let Some(cluster) = Cluster::start(3) else {
        return;
    };
    let seeds = cluster.seeds();
    let slots = SlotMap::new().shared();
    let mut router = Router::new(seeds.clone(), slots.clone(), RouterConfig::default());
    router.refresh_slot_map().await.unwrap();
    let path = history_path("migration.jsonl");
    let recorder = Recorder::create(&path, header()).unwrap();
    let mut client = Client::new(0, router, recorder.clone(), Arc::new(AtomicU64::new(1)));

    let slot = key_slot(b"foo");
    let source = slots.read().unwrap().owner(slot).unwrap().to_string();
    let target = seeds.iter().find(|a| **a != source).unwrap().clone();
    let get = |key: &'static str| Operation {
        f: "read",
        key,
        value: json!(null),
        cmd: redis::cmd("GET").arg(key).clone(),
    };
    let set = |key: &'static str, v: u64| Operation {
        f: "write",
        key,
        value: json!(v),
        cmd: redis::cmd("SET").arg(key).arg(v).clone(),
    };
    let as_int = |v: Value| match v {
        Value::BulkString(b) => {
            Completion::Ok(json!(String::from_utf8(b).unwrap().parse::<u64>().unwrap()))
        }
        Value::Okay => Completion::Ok(json!("OK")),
        Value::Nil => Completion::Ok(json!(null)),
        other => Completion::Info(format!("{other:?}")),
    };
    let hops = |e: &workloads::Execution| -> Vec<(RedirectKind, String, String)> {
        e.redirects
            .iter()
            .map(|r| (r.kind, r.from.clone(), r.to.clone()))
            .collect()
    };

    // 1. Plain write and read at the owner: no hops.
    let (kind, _, e) = client.perform(set("foo", 1), as_int).await;
    assert_eq!(
        (kind, e.node.as_str(), hops(&e).len()),
        (EventType::Ok, source.as_str(), 0)
    );

    // 2. Half-migrated slot: the existing key is still served by the source...
    let (s, t) = (port_of(&source), port_of(&target));
    let slot_s = slot.to_string();
    cli(
        t,
        &[
            "CLUSTER",
            "SETSLOT",
            &slot_s,
            "IMPORTING",
            &node_id(&source),
        ],
    );
    cli(
        s,
        &[
            "CLUSTER",
            "SETSLOT",
            &slot_s,
            "MIGRATING",
            &node_id(&target),
        ],
    );
    let (kind, value, e) = client.perform(get("foo"), as_int).await;
    assert_eq!((kind, value, hops(&e).len()), (EventType::Ok, json!(1), 0));
    // ...and a key absent from the source is ASKed to the target, which takes it with ASKING.
    let (kind, _, e) = client.perform(set("{foo}new", 2), as_int).await;
    assert_eq!(kind, EventType::Ok, "{e:?}");
    assert_eq!(
        hops(&e),
        vec![(RedirectKind::Ask, source.clone(), target.clone())]
    );
    assert_eq!(e.node, target);

    // 3. Once the key itself has moved, reading it is ASKed too; the map stays at the source.
    let migrated = cli(
        s,
        &["MIGRATE", "127.0.0.1", &t.to_string(), "foo", "0", "5000"],
    );
    assert!(migrated.contains("OK"), "{migrated}");
    let (kind, value, e) = client.perform(get("foo"), as_int).await;
    assert_eq!((kind, value), (EventType::Ok, json!(1)));
    assert_eq!(
        hops(&e),
        vec![(RedirectKind::Ask, source.clone(), target.clone())]
    );
    assert_eq!(slots.read().unwrap().owner(slot), Some(source.as_str()));

    // 4. Slot handed over: the source answers MOVED, and the map follows.
    for addr in [&target, &source] {
        cli(
            port_of(addr),
            &["CLUSTER", "SETSLOT", &slot_s, "NODE", &node_id(&target)],
        );
    }
    for addr in seeds.iter().filter(|a| **a != source && **a != target) {
        cli(
            port_of(addr),
            &["CLUSTER", "SETSLOT", &slot_s, "NODE", &node_id(&target)],
        );
    }
    let (kind, value, e) = client.perform(get("foo"), as_int).await;
    assert_eq!((kind, value), (EventType::Ok, json!(1)));
    assert_eq!(
        hops(&e),
        vec![(RedirectKind::Moved, source.clone(), target.clone())]
    );
    assert_eq!(slots.read().unwrap().owner(slot), Some(target.as_str()));
    let (_, _, e) = client.perform(get("{foo}new"), as_int).await;
    assert_eq!((e.node.as_str(), hops(&e).len()), (target.as_str(), 0));

    // 5. An error reply is a fail; a request that times out is an info (and retires process 0).
    let lpush = Operation {
        f: "append",
        key: "foo",
        value: json!(3),
        cmd: redis::cmd("LPUSH").arg("foo").arg(3).clone(),
    };
    let (kind, _, e) = client.perform(lpush, as_int).await;
    assert_eq!(kind, EventType::Fail);
    assert!(
        matches!(&e.result, Err(OpError::Fail(t)) if t.starts_with("WRONGTYPE")),
        "{e:?}"
    );
    let mut quick = Router::new(
        seeds.clone(),
        slots.clone(),
        RouterConfig {
            timeout_ms: 300,
            ..RouterConfig::default()
        },
    );
    let e = quick
        .execute(b"empty", redis::cmd("BLPOP").arg("empty").arg(2))
        .await;
    assert!(
        matches!(&e.result, Err(OpError::Info(t)) if t.contains("timeout")),
        "{e:?}"
    );
    // A connect failure before sending is a fail (on a router with no reason to refresh yet;
    // the timeout above made `quick` refresh before its next operation)...
    let mut fresh = Router::new(seeds.clone(), slots.clone(), RouterConfig::default());
    let gone = redis::cmd("GET").arg("gone").clone();
    slots
        .write()
        .unwrap()
        .update(key_slot(b"gone"), "127.0.0.1:1");
    let e = fresh.execute(b"gone", &gone).await;
    assert!(
        matches!(&e.result, Err(OpError::Fail(t)) if t.contains("connect")),
        "{e:?}"
    );
    // ...and makes the next operation refresh the slot map, which routes it right again.
    let e = fresh.execute(b"gone", &gone).await;
    assert_eq!(e.result, Ok(Value::Nil), "{e:?}");
    assert_ne!(e.node, "127.0.0.1:1");

    recorder.close().unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    eprintln!("{text}");
    let h = History::read_file(&path).unwrap();
    let kinds: Vec<RedirectKind> = h
        .events
        .iter()
        .flat_map(|e| e.redirects.iter().map(|r| r.kind))
        .collect();
    assert_eq!(
        kinds,
        vec![RedirectKind::Ask, RedirectKind::Ask, RedirectKind::Moved]
    );
    drop(cluster);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_history_under_migration() {
    let Some(cluster) = Cluster::start(3) else {
        return;
    };
    let seeds = cluster.seeds();
    let cfg = WorkloadConfig {
        clients: 4,
        keys: 4,
        seed: 7,
        ..WorkloadConfig::default()
    };
    let path = history_path("register.jsonl");
    let recorder = Recorder::create(&path, header()).unwrap();
    let stop = CancellationToken::new();

    // A nemesis stand-in: move the first key's slot around the masters until stopped.
    let slot = key_slot(workload_keys(&cfg)[0].as_bytes());
    let migrator = {
        let (stop, seeds, recorder) = (stop.clone(), seeds.clone(), recorder.clone());
        tokio::task::spawn_blocking(move || {
            let mut moves = 0;
            while !stop.is_cancelled() {
                let owner = owner_of(slot, &seeds);
                let next = seeds.iter().find(|a| **a != owner).unwrap().clone();
                recorder.nemesis(
                    "migrate-start",
                    json!({"slot": slot, "from": owner, "to": next}),
                );
                migrate_slot(slot, &owner, &next, &seeds, Duration::from_millis(150));
                recorder.nemesis(
                    "migrate-end",
                    json!({"slot": slot, "from": owner, "to": next}),
                );
                moves += 1;
                std::thread::sleep(Duration::from_millis(200));
            }
            moves
        })
    };
    let timer = {
        let stop = stop.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(4)).await;
            stop.cancel();
        })
    };
    let mut stats = run_register(&cfg, seeds.clone(), recorder.clone(), stop)
        .await
        .unwrap();
    timer.await.unwrap();
    let moves = migrator.await.unwrap();
    let finals = final_reads(&cfg, seeds.clone(), recorder.clone(), &stats.extra_keys)
        .await
        .unwrap();
    stats.merge(&finals);
    recorder.close().unwrap();
    drop(cluster);

    let h = History::read_file(&path).unwrap();
    eprintln!("moves {moves}; stats {stats:?}; events {}", h.events.len());
    assert!(h.warnings.is_empty());
    assert!(h.events.windows(2).all(|w| w[0].time <= w[1].time));
    // Every client invocation is followed by its completion before the process's next event.
    let mut open: HashMap<Process, bool> = HashMap::new();
    let mut redirects: HashMap<RedirectKind, u64> = HashMap::new();
    for e in &h.events {
        if e.process == Process::Nemesis {
            continue;
        }
        let was_open = open
            .insert(e.process, e.kind == EventType::Invoke)
            .unwrap_or(false);
        assert_eq!(was_open, e.kind != EventType::Invoke, "{e:?}");
        for r in &e.redirects {
            *redirects.entry(r.kind).or_default() += 1;
        }
    }
    assert!(open.values().all(|o| !o), "an invocation was left open");
    // Every value read was written (by a write or a CAS) to that key.
    let mut written: HashMap<&str, Vec<u64>> = HashMap::new();
    for e in h.events.iter().filter(|e| e.kind == EventType::Invoke) {
        let v = match e.f.as_str() {
            "write" => e.value.as_u64(),
            "cas" => e.value[1].as_u64(),
            _ => None,
        };
        written
            .entry(e.key.as_deref().unwrap())
            .or_default()
            .extend(v);
    }
    for e in h
        .events
        .iter()
        .filter(|e| e.kind == EventType::Ok && e.f == "read")
    {
        if let Some(v) = e.value.as_u64() {
            assert!(written[e.key.as_deref().unwrap()].contains(&v), "{e:?}");
        }
    }
    assert_eq!(finals.ops_ok, cfg.keys as u64);
    assert!(stats.ops_ok > 100, "{stats:?}");
    assert!(moves > 0);
    assert!(
        redirects.get(&RedirectKind::Moved).copied().unwrap_or(0) > 0,
        "{redirects:?}"
    );
    eprintln!("redirects in history: {redirects:?}");
    std::fs::remove_file(&path).unwrap();
}

/// The current owner of `slot`, per `CLUSTER SLOTS` parsed by the workload's own map.
fn owner_of(slot: u16, seeds: &[String]) -> String {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let slots = SlotMap::new().shared();
        let mut router = Router::new(seeds.to_vec(), slots.clone(), RouterConfig::default());
        router.refresh_slot_map().await.unwrap();
        let owner = slots.read().unwrap().owner(slot).unwrap().to_string();
        owner
    })
}
