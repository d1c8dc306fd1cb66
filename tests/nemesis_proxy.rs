//! The client proxy against real servers (Redis and Valkey): nodes announce it, `slow` adds
//! latency, loss and resets that a client sees, `fast` takes them off, and a register run under
//! `--nemesis slow` goes through proxies and checks `valid`.
//!
//! Tests that time round trips run one at a time; every cluster is dropped (servers stopped by pid,
//! proxies aborted) also when an assertion fails.

use std::collections::BTreeSet;
use std::net::TcpStream;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use checker::EventType;
use redis::aio::MultiplexedConnection;
use serde_json::{json, Value};
use slotcheck::harness::proxy::Faults;
use slotcheck::harness::{parse_nodes, pid_alive, Admin, Role, ServerKind};
use slotcheck::nemesis::link;
use workloads::{Client, Completion, Operation, Router, RouterConfig, SlotMap};

mod support;

/// One timing test at a time: round trips stay honest on 2 shared cores.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
/// Round trips measured per phase.
const PINGS: usize = 20;

/// A cluster with proxies and a history; dropping it stops every server and proxy.
async fn setup(kind: ServerKind, masters: usize, replicas: usize) -> support::Recorded {
    support::start_with(kind, masters, replicas, |spec| spec.proxy = true)
        .await
        .with_history()
}

async fn client(addr: &str) -> MultiplexedConnection {
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_secs(2)))
        .set_response_timeout(Some(Duration::from_secs(5)));
    redis::Client::open(format!("redis://{addr}/"))
        .unwrap()
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .unwrap()
}

/// Round trips of `n` PINGs, one after the other, on `conn`.
async fn rtts(conn: &mut MultiplexedConnection, n: usize) -> Vec<Duration> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        let pong: String = redis::cmd("PING").query_async(conn).await.unwrap();
        assert_eq!(pong, "PONG");
        out.push(start.elapsed());
    }
    out
}

fn median(rtts: &[Duration]) -> Duration {
    let mut sorted = rtts.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Every endpoint of a `CLUSTER SLOTS` reply, as `ip:port`.
fn slots_endpoints(reply: &redis::Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let redis::Value::Array(ranges) = reply else {
        panic!("CLUSTER SLOTS: {reply:?}")
    };
    for range in ranges {
        let redis::Value::Array(fields) = range else {
            panic!("{range:?}")
        };
        for node in &fields[2..] {
            let redis::Value::Array(node) = node else {
                panic!("{node:?}")
            };
            let ip: String = redis::from_redis_value(node[0].clone()).unwrap();
            let port: u16 = redis::from_redis_value(node[1].clone()).unwrap();
            out.insert(format!("{ip}:{port}"));
        }
    }
    out
}

/// Every `port` of a `CLUSTER SHARDS` reply.
fn shard_ports(reply: &redis::Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    if let redis::Value::Array(items) = reply {
        for pair in items.windows(2) {
            if let [redis::Value::BulkString(name), redis::Value::Int(port)] = pair {
                if name.as_slice() == b"port" {
                    out.insert(port.to_string());
                }
            }
        }
        for item in items {
            out.extend(shard_ports(item));
        }
    }
    out
}

#[tokio::test]
async fn nodes_announce_their_proxies_to_clients_and_replicas() {
    let _serial = SERIAL.lock().await;
    for kind in ServerKind::ALL {
        let setup = setup(kind, 2, 1).await;
        let cluster = setup.cluster();
        let proxy_of = |addr: &str| cluster.proxy(addr).unwrap().addr().to_string();
        let proxies: BTreeSet<String> = cluster.nodes.iter().map(|n| proxy_of(&n.addr)).collect();
        assert_eq!(
            proxies,
            cluster.seeds().into_iter().collect(),
            "clients seed at the proxies"
        );
        for node in &cluster.nodes {
            let proxy = cluster.proxy(&node.addr).unwrap();
            assert_eq!(proxy.upstream(), node.addr);
            assert!(proxy.addr().starts_with(&format!("{}:", node.host)));
            assert_ne!(proxy.addr(), node.addr);
            // The admin port still answers as the node; `CLUSTER NODES` names nodes by their
            // own port and shows the proxy as what clients get.
            let mut admin = Admin::connect(&node.addr).await.unwrap();
            let slots: redis::Value = admin.run(&["CLUSTER", "SLOTS"]).await.unwrap();
            let endpoints = slots_endpoints(&slots);
            // Replicas are listed once their master has gossiped a replication offset.
            assert!(endpoints.is_subset(&proxies), "{kind}: {endpoints:?}");
            for master in cluster.masters() {
                assert!(
                    endpoints.contains(&proxy_of(&master.addr)),
                    "{kind}: {endpoints:?}"
                );
            }
            let lines = parse_nodes(&admin.text(&["CLUSTER", "NODES"]).await.unwrap()).unwrap();
            for other in &cluster.nodes {
                let line = lines.iter().find(|l| l.id == other.id).unwrap();
                assert_eq!(line.addr, other.addr);
                assert_eq!(line.client_addr, proxy_of(&other.addr));
            }
            let shards: redis::Value = admin.run(&["CLUSTER", "SHARDS"]).await.unwrap();
            let ports: BTreeSet<String> = proxies
                .iter()
                .map(|p| p.rsplit(':').next().unwrap().to_string())
                .collect();
            assert_eq!(shard_ports(&shards), ports, "{kind}: CLUSTER SHARDS");
            if let Role::Replica { master_id } = &node.role {
                let master = cluster.nodes.iter().find(|n| &n.id == master_id).unwrap();
                let info = admin.text(&["INFO", "replication"]).await.unwrap();
                let port = proxy_of(&master.addr)
                    .rsplit(':')
                    .next()
                    .unwrap()
                    .to_string();
                assert!(info.contains(&format!("master_port:{port}")), "{info}");
                assert!(info.contains("master_link_status:up"), "{info}");
            }
        }
        // A misdirected request is sent to the owner's proxy.
        let (m0, m1) = (&cluster.nodes[0], &cluster.nodes[1]);
        let mut admin = Admin::connect(&m0.addr).await.unwrap();
        let key = (0..1000)
            .map(|i| format!("k{i}"))
            .find(|k| workloads::key_slot(k.as_bytes()) >= 8192)
            .unwrap();
        let moved = admin
            .run::<Option<String>>(&["GET", &key])
            .await
            .unwrap_err();
        assert!(
            moved.to_string().contains(&proxy_of(&m1.addr)),
            "{kind}: {moved}"
        );
        cluster.wait_stable(5_000).await.unwrap();
        let pids: Vec<u32> = cluster.nodes.iter().map(|n| n.pid).collect();
        drop(setup);
        // Aborted proxy tasks are dropped, listeners closed, the next time the runtime runs.
        tokio::time::sleep(Duration::from_millis(50)).await;
        for (pid, proxy) in pids.iter().zip(&proxies) {
            assert!(!pid_alive(*pid), "server {pid} stopped");
            assert!(TcpStream::connect(proxy).is_err(), "proxy {proxy} closed");
        }
    }
}

#[tokio::test]
async fn slow_adds_latency_and_fast_takes_it_off() {
    let _serial = SERIAL.lock().await;
    for kind in ServerKind::ALL {
        let setup = setup(kind, 1, 0).await;
        let node = setup.cluster().nodes[0].addr.clone();
        let mut direct = client(&node).await;
        let mut proxied = client(&setup.cluster().seeds()[0]).await;
        let direct_ms = ms(median(&rtts(&mut direct, PINGS).await));
        let before = rtts(&mut proxied, PINGS).await;
        let faults = Faults {
            delay_ms: 40,
            jitter_ms: 10,
            seed: 3,
            ..Faults::NONE
        };
        link::slow(&setup.ctx, &node, &faults).unwrap();
        let during = rtts(&mut proxied, PINGS).await;
        let stats = link::fast(&setup.ctx, &node).unwrap();
        let after = rtts(&mut proxied, PINGS).await;
        eprintln!(
            "{kind} PING median: direct {direct_ms:.2} ms, proxy {:.2} ms before, {:.1} ms \
             during slow (40 ± 10 ms each way; min {:.1}, max {:.1}), {:.2} ms after fast",
            ms(median(&before)),
            ms(median(&during)),
            ms(*during.iter().min().unwrap()),
            ms(*during.iter().max().unwrap()),
            ms(median(&after)),
        );
        assert!(median(&before) < Duration::from_millis(5), "{before:?}");
        assert!(
            during.iter().all(|d| *d >= Duration::from_millis(60)),
            "each way at least 30 ms: {during:?}"
        );
        assert!(median(&during) >= Duration::from_millis(70), "{during:?}");
        assert!(median(&after) < Duration::from_millis(5), "{after:?}");
        assert_eq!(stats.chunks, 2 * PINGS as u64, "{stats:?}");
        assert_eq!((stats.held, stats.resets), (0, 0));
        let events = setup.nemesis_events();
        let f: Vec<(&str, &str)> = events
            .iter()
            .map(|e| (e.f.as_str(), e.phase.as_str()))
            .collect();
        assert_eq!(
            f,
            [
                ("slow", "begin"),
                ("slow", "end"),
                ("fast", "begin"),
                ("fast", "end")
            ]
        );
        let begin = &events[0].value;
        assert_eq!(begin["node"], json!(node));
        assert_eq!(
            (begin["delay_ms"].clone(), begin["jitter_ms"].clone()),
            (json!(40), json!(10))
        );
        assert_eq!(
            (begin["loss"].clone(), begin["reset"].clone()),
            (json!(0.0), json!(0.0))
        );
        assert_eq!(events[3].value["stats"]["chunks"], json!(2 * PINGS));
    }
}

#[tokio::test]
async fn loss_holds_some_requests_for_the_rto() {
    let _serial = SERIAL.lock().await;
    let mut held_by_kind = Vec::new();
    for kind in ServerKind::ALL {
        let setup = setup(kind, 1, 0).await;
        let node = setup.cluster().nodes[0].addr.clone();
        let mut proxied = client(&setup.cluster().seeds()[0]).await;
        let faults = Faults {
            loss: 0.25,
            rto_ms: 200,
            seed: 11,
            ..Faults::NONE
        };
        link::slow(&setup.ctx, &node, &faults).unwrap();
        let during = rtts(&mut proxied, 2 * PINGS).await;
        let stats = link::fast(&setup.ctx, &node).unwrap();
        let late = during
            .iter()
            .filter(|d| **d >= Duration::from_millis(200))
            .count();
        eprintln!(
            "{kind} loss 25 %, RTO 200 ms: {late} of {} PINGs took >= 200 ms (max {:.0} ms, \
             median {:.1} ms); {} of {} chunks held",
            during.len(),
            ms(*during.iter().max().unwrap()),
            ms(median(&during)),
            stats.held,
            stats.chunks
        );
        assert_eq!(stats.chunks, 2 * during.len() as u64, "{stats:?}");
        // P(a chunk is held) = 0.25: 80 chunks hold 4..=36 except with a probability below 1e-6.
        assert!((4..=36).contains(&stats.held), "{stats:?}");
        // A held chunk makes its PING (2 chunks) take at least the RTO; the others are prompt.
        assert!(2 * late >= stats.held as usize, "{late} late: {during:?}");
        assert!(
            during.len() - late >= 3,
            "some PINGs were not held: {during:?}"
        );
        held_by_kind.push(stats.held);
    }
    // Same seed, same connection number, same chunks: the same fates, whatever the server.
    assert_eq!(
        held_by_kind[0], held_by_kind[1],
        "deterministic given the seed"
    );
}

#[tokio::test]
async fn reset_loses_the_connection_and_the_operation_is_info() {
    let _serial = SERIAL.lock().await;
    for kind in ServerKind::ALL {
        let setup = setup(kind, 1, 0).await;
        let node = setup.cluster().nodes[0].addr.clone();
        let router = Router::new(
            setup.cluster().seeds(),
            SlotMap::new().shared(),
            RouterConfig::default(),
        );
        let recorder = setup.ctx.recorder.clone();
        let mut client = Client::new(0, router, recorder, Arc::new(AtomicU64::new(1)));
        let write = |value: i64| {
            let mut cmd = redis::cmd("SET");
            cmd.arg("r").arg(value);
            Operation {
                f: "write",
                key: "r",
                value: json!(value),
                cmd,
            }
        };
        let ok = |_| Completion::Ok(json!(null));
        let (first, _, _) = client.perform(write(1), ok).await;
        assert_eq!(first, EventType::Ok);
        let faults = Faults {
            reset: 1.0,
            ..Faults::NONE
        };
        link::slow(&setup.ctx, &node, &faults).unwrap();
        let (outcome, _, execution) = client.perform(write(2), ok).await;
        let stats = link::fast(&setup.ctx, &node).unwrap();
        eprintln!("{kind} reset: {outcome:?} {:?}", execution.result);
        assert_eq!(outcome, EventType::Info, "{execution:?}");
        assert_eq!(execution.node, setup.cluster().seeds()[0]);
        assert!(stats.resets >= 1, "{stats:?}");
        assert_eq!(client.process(), 1, "the process retired after info");
        let (after, _, _) = client.perform(write(3), ok).await;
        assert_eq!(after, EventType::Ok, "a new connection works after fast");
    }
}

/// A short register run with slot migrations (so that clients follow `MOVED` and `ASK`) and
/// client faults.
const RUN_ARGS: &[&str] = &[
    "--masters",
    "3",
    "--clients",
    "8",
    "--keys",
    "30",
    "--duration",
    "12s",
    "--seed",
    "11",
    "--nemesis",
    "migrate,slow",
    "--nemesis-interval",
    "1500ms",
    "--fault-hold",
    "1500ms",
    "--migrate-interval",
    "1s",
];

/// `slotcheck test --nemesis migrate,slow`: the cluster starts with proxies, clients reach nodes
/// and follow redirects only through them, every `slow` is undone by a `fast`, the history checks
/// `valid`, and no server or proxy is left listening.
#[test]
fn a_register_run_under_slow_goes_through_proxies_and_is_valid() {
    let _serial = SERIAL.blocking_lock();
    for (kind, replicas) in [("redis", "0"), ("valkey", "1")] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("run");
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_slotcheck"))
            .args(["test", "--server", kind, "--replicas", replicas])
            .args(RUN_ARGS)
            .args(["--output", dir.to_str().unwrap()])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        let stdout = String::from_utf8_lossy(&out.stdout);
        eprintln!("{kind}:\n{stderr}{stdout}");
        assert_eq!(out.status.code(), Some(0), "valid");

        let text = std::fs::read_to_string(dir.join("history.jsonl")).unwrap();
        let lines: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let nodes = lines[0]["nodes"].as_array().unwrap();
        let proxies: BTreeSet<&str> = nodes
            .iter()
            .map(|n| n["proxy"].as_str().expect("every node has a proxy"))
            .collect();
        let ops = || lines[1..].iter().filter(|e| e["process"] != "nemesis");
        let answered: BTreeSet<&str> = ops().filter_map(|e| e["node"].as_str()).collect();
        let hops: Vec<&Value> = ops()
            .filter_map(|e| e["redirects"].as_array())
            .flatten()
            .filter(|r| r["kind"] == "moved" || r["kind"] == "ask")
            .collect();
        assert!(
            !answered.is_empty() && !hops.is_empty(),
            "ops were redirected"
        );
        assert!(answered.is_subset(&proxies), "{answered:?} vs {proxies:?}");
        for hop in &hops {
            let to = hop["to"].as_str().unwrap();
            assert!(
                proxies.contains(to),
                "{kind}: a redirect bypassed the proxies: {hop}"
            );
        }
        // The nemesis names nodes by their own address, migrations included.
        let own: BTreeSet<&str> = nodes.iter().map(|n| n["addr"].as_str().unwrap()).collect();
        for e in lines[1..].iter().filter(|e| e["process"] == "nemesis") {
            if let Some(node) = e["value"]["node"].as_str() {
                assert!(own.contains(node), "{kind}: {e}");
            }
        }
        let count = |f: &str, phase: &str| {
            lines
                .iter()
                .filter(|e| e["f"] == f && e["value"]["phase"] == phase)
                .count()
        };
        let slows = count("slow", "begin");
        assert!(slows >= 2, "{slows} slow faults");
        for (f, phase) in [("slow", "end"), ("fast", "begin"), ("fast", "end")] {
            assert_eq!(count(f, phase), slows, "{f} {phase}");
        }
        let relayed: u64 = lines
            .iter()
            .filter(|e| e["f"] == "fast" && e["value"]["phase"] == "end")
            .map(|e| e["value"]["stats"]["chunks"].as_u64().unwrap())
            .sum();
        eprintln!(
            "{kind}: {slows} slow/fast pairs, {relayed} chunks relayed while slow, {} redirects",
            hops.len()
        );
        assert!(relayed > 0, "the slowed proxies relayed traffic");
        for node in nodes {
            for key in ["addr", "proxy"] {
                let addr = node[key].as_str().unwrap();
                assert!(TcpStream::connect(addr).is_err(), "{addr} still listens");
            }
        }
    }
}
