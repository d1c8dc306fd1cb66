//! The benchmarks against real Redis 7.0 clusters: a small `bench migrate` (our driver and
//! `redis-cli --cluster reshard`, dense and sparse slots, under traffic) and a small `bench
//! client`, checked for complete and sane output; and the windowed classic driver checked key by
//! key. No timing is asserted. Every cluster is stopped by its Drop, also when an assertion fails.

use slotcheck::bench::client::{self, ClientBenchConfig, TOOLS};
use slotcheck::bench::dataset::{self, DatasetSpec, Layout};
use slotcheck::bench::migrate::Method;
use slotcheck::bench::suite::{self, MigrateBenchConfig};
use slotcheck::bench::traffic::TrafficConfig;
use slotcheck::bench::{page, usage};
use slotcheck::harness::ServerKind;
use slotcheck::nemesis::migrate::window::migrate_slots;
use slotcheck::nemesis::migrate::MigrateOptions;
use workloads::key_slot;

mod support;

/// Keys of the small migration benchmark.
const KEYS: u64 = 20_000;
/// Slots moved in its sparse cases.
const SPARSE_SLOTS: u16 = 256;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_migration_benchmark_moves_every_key_and_reports_every_number() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = MigrateBenchConfig {
        servers: vec![ServerKind::Redis],
        masters: 3,
        keys: KEYS,
        value_bytes: 100,
        dense_slots: 16,
        sparse_slots: SPARSE_SLOTS,
        batches: vec![100],
        windows: vec![16],
        idle: false,
        loaded: true,
        traffic: TrafficConfig {
            clients: 4,
            rate_per_s: 1000,
            read_percent: 50,
            seed: 1,
        },
        phase_ms: 300,
        sweep: Vec::new(),
        sweep_slots: 16,
        sweep_batch: 100,
        repeat: 1,
        output: dir.path().to_path_buf(),
    };
    let bench = suite::run(&cfg).await.unwrap();
    assert_eq!(bench.cases.len(), 4, "2 methods x dense/sparse");
    let sparse_keys = (0..KEYS)
        .filter(|&i| {
            let spec = DatasetSpec {
                keys: KEYS,
                value_bytes: 100,
                layout: Layout::Spread,
                prefix: "bench:".into(),
            };
            key_slot(dataset::key(&spec, i).as_bytes()) < SPARSE_SLOTS
        })
        .count() as u64;
    for r in &bench.cases {
        let name = format!("{} {}", r.layout, r.method);
        // A case's own checks: the target holds every key of the moved slots, the source none,
        // every node agrees on the new owner, and the cluster holds every key of the data set.
        assert_eq!(r.error, None, "{name}");
        let want = if r.layout == "dense" {
            KEYS
        } else {
            sparse_keys
        };
        assert_eq!(r.keys_moved, want, "{name}");
        assert!(
            r.duration_s > 0.0 && r.keys_per_s > 0.0 && r.mb_per_s > 0.0,
            "{name}"
        );
        assert!(r.bytes_moved >= want * 100, "{name}");
        assert!(
            r.source.cpu_s > 0.0 && r.source.peak_rss_bytes > 0,
            "{name}"
        );
        assert!(r.target.peak_rss_bytes > 0, "{name}");
        let t = r.traffic.as_ref().expect("traffic ran");
        assert!(
            t.before.ops > 0 && t.during.ops > 0 && t.after.ops > 0,
            "{name}"
        );
        assert_eq!(
            t.before.errors + t.during.errors + t.after.errors,
            0,
            "{name}"
        );
        assert!(t.during.p99_ms >= t.during.p50_ms && t.during.max_ms >= t.during.p99_ms);
        assert!(!t.ops_per_bucket.is_empty() && t.migration_s.1 >= t.migration_s.0);
    }
    let methods: Vec<Method> = bench.cases.iter().map(|c| c.method_spec).collect();
    assert!(methods.contains(&Method::Cli { batch: 100 }));
    assert!(methods.contains(&Method::Classic {
        batch: 100,
        window: 16
    }));
    let tables = page::migrate_tables(&bench);
    let speed = tables[0].text();
    assert!(speed.contains("redis-cli/100") && speed.contains("slotcheck/100 w16"));
    assert!(tables
        .iter()
        .any(|t| t.caption.starts_with("Clients under traffic")));
    let html = page::migrate_html(&bench).unwrap();
    assert!(html.contains("<svg") && html.contains("slotcheck/100 w16"));
    let (json, _) = slotcheck::bench::write(dir.path(), &bench, &html).unwrap();
    let back: serde_json::Value = serde_json::from_slice(&std::fs::read(json).unwrap()).unwrap();
    assert_eq!(back["cases"].as_array().unwrap().len(), 4);
    assert!(back["machine"]["cpus"].as_u64().unwrap() >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_windowed_driver_moves_every_key_of_every_slot() {
    let cluster = support::start(ServerKind::Redis, 3, 0).await;
    let slots: Vec<u16> = (100..110).collect();
    let data = DatasetSpec {
        keys: 5_000,
        value_bytes: 32,
        layout: Layout::Dense {
            slots: slots.clone(),
        },
        prefix: "w:".into(),
    };
    let loaded = dataset::load(&cluster, &data).await.unwrap();
    assert_eq!(loaded.keys, 5_000);
    let peers = cluster.peers();
    assert_eq!(
        dataset::keys_in_slots(&peers[0].addr, &slots)
            .await
            .unwrap(),
        5_000
    );
    let recorder = cluster.recorder();
    let opts = MigrateOptions {
        batch_keys: 64,
        step_pause_ms: 0,
        ..MigrateOptions::default()
    };
    let done = migrate_slots(
        &recorder,
        &slots,
        &peers[0],
        &peers[1],
        &peers[2..],
        &opts,
        4,
    )
    .await
    .unwrap();
    recorder.close().unwrap();
    assert_eq!(done.len(), slots.len());
    assert_eq!(done.iter().map(|m| m.keys_moved).sum::<usize>(), 5_000);
    assert_eq!(
        dataset::keys_in_slots(&peers[0].addr, &slots)
            .await
            .unwrap(),
        0
    );
    assert_eq!(
        dataset::keys_in_slots(&peers[1].addr, &slots)
            .await
            .unwrap(),
        5_000
    );
    assert_eq!(dataset::keys_total(&cluster).await.unwrap(), 5_000);
    cluster.wait_stable(10_000).await.unwrap();
    for peer in &peers {
        let map = dataset::slot_map(&peer.addr).await.unwrap();
        assert!(slots
            .iter()
            .all(|&s| map.owner(s) == Some(peers[1].addr.as_str())));
    }
    let history = std::fs::read_to_string(cluster.history_path()).unwrap();
    let ends = history.matches("\"migrate-end\"").count();
    assert_eq!(ends, slots.len(), "one migrate-end per slot");
    // The target's counters read from /proc: its memory is never zero, while its CPU time
    // (clock ticks, 10 ms each) may still be after importing a few thousand keys.
    let usage = usage::sample(cluster.nodes[1].pid).unwrap();
    assert!(
        usage.rss_bytes > 0 && usage.peak_rss_bytes >= usage.rss_bytes,
        "{usage:?}"
    );
    assert!(usage.cpu_s.is_finite() && usage.cpu_s >= 0.0, "{usage:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_small_client_benchmark_reports_both_tools_and_the_recording_cost() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = ClientBenchConfig {
        server: ServerKind::Redis,
        masters: 3,
        clients: 10,
        requests: 5_000,
        value_bytes: 3,
        keyspace: 1_000,
        rounds: 1,
        threads: 1,
        pinned: true,
        output: dir.path().to_path_buf(),
    };
    let bench = client::run(&cfg).await.unwrap();
    assert_eq!(bench.runs.len(), TOOLS.len() * 2);
    for m in &bench.runs {
        assert!(m.ops_per_s > 0.0 && m.p99_ms >= m.p50_ms, "{m:?}");
        assert_eq!(m.errors, 0, "{m:?}");
        assert_eq!(m.requests, 5_000, "{m:?}");
    }
    assert_eq!(bench.summary.len(), 2);
    for s in &bench.summary {
        assert!(s.ops_per_s.iter().all(|&x| x > 0.0), "{s:?}");
        assert!(s.on_vs_benchmark > 0.0 && s.off_vs_benchmark > 0.0, "{s:?}");
        assert!(s.recording_cost.is_finite(), "{s:?}");
    }
    let text = page::client_table(&bench).text();
    assert!(text.contains("redis-benchmark") && text.contains("SET") && text.contains("GET"));
    let (json, html) = client::write(dir.path(), &bench).unwrap();
    assert!(json.is_file() && html.is_file());
    assert!(
        !dir.path().join("history.jsonl").exists(),
        "the history is removed after each run"
    );
}
