//! `slotcheck bench client`: slotcheck's recording client against `redis-benchmark` on the same
//! cluster in the same run, at equal concurrency and without pipelining, with the same commands
//! (`SET` then `GET` of random keys, same value size and key space); and the cost of recording
//! the history (history on: `workloads::Client`, which writes an invoke and a completion event
//! per op; history off: the same `workloads::Router`, nothing written).
//!
//! Fairness: `redis-benchmark --cluster -c C -P 1` keeps C requests in flight; we run C tasks
//! that each wait for their reply before sending the next. The variants take turns within each
//! round (benchmark, history on, history off), and the table shows the median over rounds.

use super::usage;
use crate::harness::{find_cli, Cluster, ClusterSpec, ServerKind};
use anyhow::{bail, Context, Result};
use hdrhistogram::Histogram;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use serde_json::json;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;
use workloads::{Client, Completion, Operation, Recorder, Router, RouterConfig, SlotMap};

/// The tools compared, in the order they take turns.
pub const TOOLS: [&str; 3] = [
    "redis-benchmark",
    "slotcheck history on",
    "slotcheck history off",
];
/// The commands compared.
pub const COMMANDS: [&str; 2] = ["SET", "GET"];

/// What `slotcheck bench client` runs.
#[derive(Debug, Clone, Serialize)]
pub struct ClientBenchConfig {
    /// Server to run.
    pub server: ServerKind,
    /// Masters in the cluster.
    pub masters: usize,
    /// Requests in flight (redis-benchmark `-c`; our tasks).
    pub clients: usize,
    /// Requests per command per run (redis-benchmark `-n`).
    pub requests: u64,
    /// Value bytes of `SET` (redis-benchmark `-d`).
    pub value_bytes: usize,
    /// Distinct random keys (redis-benchmark `-r`).
    pub keyspace: u64,
    /// Rounds of every tool; the table shows medians.
    pub rounds: usize,
    /// Each client task keeps to one master's slots through a hash tag of that master, as
    /// `redis-benchmark --cluster` does with its clients; false spreads every task's keys over
    /// all masters, as a workload does.
    pub pinned: bool,
    /// Runtime threads of our client: 1 is one thread, as `redis-benchmark`'s default
    /// `--threads 1`; 0 is one per CPU, as `slotcheck test` runs its clients.
    pub threads: usize,
    /// Where results go.
    #[serde(skip)]
    pub output: PathBuf,
}

/// One tool running one command once.
#[derive(Debug, Clone, Serialize)]
pub struct Measurement {
    /// One of [`TOOLS`].
    pub tool: String,
    /// `SET` or `GET`.
    pub command: String,
    /// Round number, from 0.
    pub round: usize,
    /// Requests completed.
    pub requests: u64,
    /// Requests per second.
    pub ops_per_s: f64,
    /// Median latency, ms.
    pub p50_ms: f64,
    /// 99th percentile latency, ms.
    pub p99_ms: f64,
    /// Client CPU seconds (the tool's process; for us, this whole process).
    pub cpu_s: f64,
    /// CPU seconds of the masters meanwhile: what serving this client's traffic cost the servers.
    pub server_cpu_s: f64,
    /// Errors (ours only; `redis-benchmark` stops on one).
    pub errors: u64,
}

/// The medians of one command.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    /// `SET` or `GET`.
    pub command: String,
    /// Median ops/s per tool, in [`TOOLS`] order.
    pub ops_per_s: [f64; 3],
    /// Median client CPU µs per request, in [`TOOLS`] order.
    pub cpu_us_per_op: [f64; 3],
    /// Median CPU µs per request of the masters, in [`TOOLS`] order.
    pub server_cpu_us_per_op: [f64; 3],
    /// History on / redis-benchmark: the median of the rounds' ratios (each round runs both
    /// back to back, so the machine's drift between rounds cancels).
    pub on_vs_benchmark: f64,
    /// History off / redis-benchmark, the median of the rounds' ratios.
    pub off_vs_benchmark: f64,
    /// Throughput lost to recording: 1 - on / off, the median of the rounds' ratios.
    pub recording_cost: f64,
}

/// Everything `slotcheck bench client` measured, as written to `bench.json`.
#[derive(Debug, Clone, Serialize)]
pub struct ClientBench {
    /// `client`.
    pub bench: String,
    /// The machine.
    pub machine: super::Machine,
    /// Server version.
    pub version: String,
    /// The configuration.
    pub config: ClientBenchConfig,
    /// Every run.
    pub runs: Vec<Measurement>,
    /// Medians per command.
    pub summary: Vec<Summary>,
}

/// Runs the comparison on one fresh cluster.
pub async fn run(cfg: &ClientBenchConfig) -> Result<ClientBench> {
    anyhow::ensure!(cfg.clients > 0 && cfg.requests > 0 && cfg.rounds > 0 && cfg.keyspace > 0);
    std::fs::create_dir_all(&cfg.output)?;
    let machine = super::Machine::this();
    let mut spec = ClusterSpec::new(cfg.server, cfg.masters, 0, cfg.output.join("cluster"));
    spec.die_with_parent = true;
    let cluster = Cluster::start(spec).await.context("starting the cluster")?;
    let mut runs = Vec::new();
    for round in 0..cfg.rounds {
        for tool in TOOLS {
            crate::term::status(&format!("round {}/{}: {tool}", round + 1, cfg.rounds));
            if tool == TOOLS[0] {
                runs.extend(redis_benchmark(&cluster, cfg, round).await?);
                continue;
            }
            for command in COMMANDS {
                let history = cfg.output.join("history.jsonl");
                let recorder = match tool == TOOLS[1] {
                    true => Some(Recorder::create(
                        &history,
                        checker::Header::new(Default::default()),
                    )?),
                    false => None,
                };
                let servers_before = servers_cpu_s(&cluster);
                let m = on_runtime(cfg.threads, {
                    let (seeds, cfg) = (cluster.seeds(), cfg.clone());
                    let (command, recorder) = (command.to_string(), recorder.clone());
                    async move { ours(seeds, &cfg, &command, recorder).await }
                })
                .await?;
                if let Some(r) = recorder {
                    r.close()?;
                }
                let _ = std::fs::remove_file(&history);
                runs.push(Measurement {
                    tool: tool.into(),
                    round,
                    server_cpu_s: servers_cpu_s(&cluster) - servers_before,
                    ..m
                });
            }
        }
    }
    let summary = COMMANDS.iter().map(|c| summarize(&runs, c)).collect();
    Ok(ClientBench {
        bench: "client".into(),
        machine,
        version: cluster.version.clone(),
        config: cfg.clone(),
        runs,
        summary,
    })
}

fn median(mut xs: Vec<f64>) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

/// CPU seconds the cluster's masters have used so far.
fn servers_cpu_s(cluster: &Cluster) -> f64 {
    cluster
        .masters()
        .filter_map(|n| usage::sample(n.pid))
        .map(|s| s.cpu_s)
        .sum()
}

fn summarize(runs: &[Measurement], command: &str) -> Summary {
    let of = |tool: &str, f: &dyn Fn(&Measurement) -> f64| -> Vec<f64> {
        let mut rows: Vec<&Measurement> = runs
            .iter()
            .filter(|m| m.tool == tool && m.command == command)
            .collect();
        rows.sort_by_key(|m| m.round);
        rows.into_iter().map(f).collect()
    };
    let per_op = |s: f64, m: &Measurement| s * 1e6 / m.requests.max(1) as f64;
    let ops = TOOLS.map(|t| of(t, &|m| m.ops_per_s));
    let cpu = TOOLS.map(|t| median(of(t, &|m| per_op(m.cpu_s, m))));
    let server_cpu = TOOLS.map(|t| median(of(t, &|m| per_op(m.server_cpu_s, m))));
    let ratios = |a: &[f64], b: &[f64]| -> f64 {
        let paired = a.iter().zip(b).filter(|(_, b)| **b > 0.0);
        median(paired.map(|(a, b)| a / b).collect())
    };
    Summary {
        command: command.into(),
        ops_per_s: ops.clone().map(median),
        cpu_us_per_op: cpu,
        server_cpu_us_per_op: server_cpu,
        on_vs_benchmark: ratios(&ops[1], &ops[0]),
        off_vs_benchmark: ratios(&ops[2], &ops[0]),
        recording_cost: 1.0 - ratios(&ops[1], &ops[2]),
    }
}

/// `redis-benchmark --cluster -t set,get -P 1 --csv` once; one measurement per command.
async fn redis_benchmark(
    cluster: &Cluster,
    cfg: &ClientBenchConfig,
    round: usize,
) -> Result<Vec<Measurement>> {
    let cli = find_cli()?;
    let bin = cli.with_file_name("redis-benchmark");
    let bin = if bin.is_file() {
        bin
    } else {
        PathBuf::from("redis-benchmark")
    };
    let first = cluster.masters().next().context("no master")?;
    let cpu_before = usage::children_cpu_s();
    let servers_before = servers_cpu_s(cluster);
    let out = tokio::process::Command::new(&bin)
        .args([
            "-h",
            &first.host,
            "-p",
            &first.port.to_string(),
            "--cluster",
        ])
        .args([
            "-c",
            &cfg.clients.to_string(),
            "-n",
            &cfg.requests.to_string(),
        ])
        .args([
            "-d",
            &cfg.value_bytes.to_string(),
            "-r",
            &cfg.keyspace.to_string(),
        ])
        .args(["-t", "set,get", "-P", "1", "--csv"])
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .with_context(|| format!("running {}", bin.display()))?;
    let cpu = usage::children_cpu_s() - cpu_before;
    let server_cpu = servers_cpu_s(cluster) - servers_before;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "redis-benchmark exited with {}: {}{}",
            out.status,
            text,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let rows = parse_csv(&text);
    let total: f64 = rows
        .iter()
        .map(|r| cfg.requests as f64 / r.1.max(1e-9))
        .sum();
    let found: Vec<Measurement> = rows
        .into_iter()
        .map(|(command, rps, p50, p99)| Measurement {
            tool: TOOLS[0].into(),
            command,
            round,
            requests: cfg.requests,
            ops_per_s: rps,
            p50_ms: p50,
            p99_ms: p99,
            // Split the process's CPU between the tests by their share of its run time.
            cpu_s: cpu * (cfg.requests as f64 / rps.max(1e-9)) / total.max(1e-9),
            server_cpu_s: server_cpu * (cfg.requests as f64 / rps.max(1e-9)) / total.max(1e-9),
            errors: 0,
        })
        .collect();
    anyhow::ensure!(
        found.len() == 2,
        "redis-benchmark printed no SET and GET rows: {text}"
    );
    Ok(found)
}

/// `(test, rps, p50 ms, p99 ms)` rows of `redis-benchmark --csv`.
fn parse_csv(text: &str) -> Vec<(String, f64, f64, f64)> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').map(|f| f.trim_matches('"')).collect();
            let num = |i: usize| f.get(i)?.parse::<f64>().ok();
            let test = *f.first()?;
            COMMANDS
                .contains(&test)
                .then(|| Some((test.to_string(), num(1)?, num(4)?, num(6)?)))?
        })
        .collect()
}

/// Our client: `cfg.clients` tasks sharing `cfg.requests` requests of `command`, recording the
/// history when `recorder` is given.
async fn ours(
    seeds: Vec<String>,
    cfg: &ClientBenchConfig,
    command: &str,
    recorder: Option<Recorder>,
) -> Result<Measurement> {
    let slots = SlotMap::new().shared();
    Router::new(seeds.clone(), slots.clone(), RouterConfig::default())
        .refresh_slot_map()
        .await?;
    let tags = node_tags(&slots.read().unwrap_or_else(|p| p.into_inner()));
    let left = Arc::new(AtomicI64::new(cfg.requests as i64));
    let next_process = Arc::new(AtomicU64::new(cfg.clients as u64));
    let value: Arc<[u8]> = vec![b'x'; cfg.value_bytes].into();
    let cpu_before = usage::self_cpu_s();
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for c in 0..cfg.clients {
        let router = Router::new(seeds.clone(), slots.clone(), RouterConfig::default());
        let (client, router) = match recorder.clone() {
            Some(r) => (
                Some(Client::new(c as u64, router, r, next_process.clone())),
                None,
            ),
            None => (None, Some(router)),
        };
        let task = Task {
            rng: ChaCha8Rng::seed_from_u64(c as u64),
            left: left.clone(),
            value: value.clone(),
            keyspace: cfg.keyspace,
            set: command == "SET",
            tag: match cfg.pinned {
                true => Some(tags[c % tags.len()].clone()),
                false => None,
            },
        };
        tasks.spawn(task.run(client, router));
    }
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
    let mut errors = 0;
    while let Some(done) = tasks.join_next().await {
        let (h, e) = done.context("a client task panicked")?;
        hist.add(&h)?;
        errors += e;
    }
    let secs = started.elapsed().as_secs_f64();
    Ok(Measurement {
        tool: String::new(),
        command: command.into(),
        round: 0,
        requests: hist.len(),
        ops_per_s: hist.len() as f64 / secs.max(1e-9),
        p50_ms: hist.value_at_quantile(0.5) as f64 / 1e3,
        p99_ms: hist.value_at_quantile(0.99) as f64 / 1e3,
        cpu_s: usage::self_cpu_s() - cpu_before,
        server_cpu_s: 0.0,
        errors,
    })
}

/// One hash tag per master, each hashing to a slot that master owns, in the map's master order.
fn node_tags(map: &SlotMap) -> Vec<String> {
    let masters = map.masters();
    let mut tags: Vec<Option<String>> = vec![None; masters.len()];
    for n in 0u32.. {
        if tags.iter().all(Option::is_some) || n > 1_000_000 {
            break;
        }
        let tag = format!("t{n}");
        let owner = map.owner(workloads::key_slot(tag.as_bytes()));
        if let Some(i) = masters.iter().position(|m| Some(m.as_str()) == owner) {
            tags[i].get_or_insert(tag);
        }
    }
    tags.into_iter().flatten().collect()
}

/// Runs `work` on a runtime of its own with `threads` workers (0: one per CPU), on threads of its
/// own, so that our client gets the threads the comparison says and no more.
async fn on_runtime<T: Send + 'static>(
    threads: usize,
    work: impl std::future::Future<Output = Result<T>> + Send + 'static,
) -> Result<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("bench-client".into())
        .spawn(move || {
            let runtime = match threads {
                1 => tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build(),
                0 => tokio::runtime::Builder::new_multi_thread()
                    .enable_all()
                    .build(),
                n => tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(n)
                    .enable_all()
                    .build(),
            };
            let result = match runtime {
                Ok(rt) => rt.block_on(work),
                Err(e) => Err(e.into()),
            };
            let _ = tx.send(result);
        })?;
    rx.await.context("the client thread died")?
}

/// One of our client tasks.
struct Task {
    rng: ChaCha8Rng,
    left: Arc<AtomicI64>,
    value: Arc<[u8]>,
    keyspace: u64,
    set: bool,
    /// A hash tag of one master's slot: every key of this task goes there.
    tag: Option<String>,
}

impl Task {
    /// Sends requests until none are left, through `client` (recording) or else `router`.
    async fn run(
        mut self,
        mut client: Option<Client>,
        mut router: Option<Router>,
    ) -> (Histogram<u64>, u64) {
        let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("valid bounds");
        let mut errors = 0;
        while self.left.fetch_sub(1, Ordering::Relaxed) > 0 {
            // Send from the next scheduler tick, as redis-benchmark sends from its next event-loop
            // turn: every task that got a reply handles it first, then the requests go out
            // together, and the servers wake once for several. Sending straight after each reply
            // spread the requests out, and the masters woke per request: 10.6 against 9.7 us of
            // server CPU per SET, 86 % against 97 % of redis-benchmark's rate (Redis, 3 rounds).
            tokio::task::yield_now().await;
            let n = self.rng.random_range(0..self.keyspace);
            let key = match &self.tag {
                Some(tag) => format!("{{{tag}}}key:{n:012}"),
                None => format!("key:{n:012}"),
            };
            let mut cmd = redis::cmd(if self.set { "SET" } else { "GET" });
            cmd.arg(&key);
            if self.set {
                cmd.arg(&self.value[..]);
            }
            let invoked = Instant::now();
            let failed = match (&mut client, &mut router) {
                (Some(client), _) => {
                    let (f, value) = match self.set {
                        true => ("write", json!(String::from_utf8_lossy(&self.value))),
                        false => ("read", json!(null)),
                    };
                    let op = Operation {
                        f,
                        key: &key,
                        value,
                        cmd,
                    };
                    // The history holds what was written and what was read, as a test's does.
                    let written = self.set.then(|| op.value.clone());
                    let interpret = |reply: redis::Value| match (written, reply) {
                        (Some(v), redis::Value::Okay) => Completion::Ok(v),
                        (None, redis::Value::BulkString(b)) => {
                            Completion::Ok(json!(String::from_utf8_lossy(&b)))
                        }
                        (None, redis::Value::Nil) => Completion::Ok(json!(null)),
                        (_, other) => Completion::Info(format!("unexpected reply {other:?}")),
                    };
                    let (kind, _, _) = client.perform(op, interpret).await;
                    kind != checker::EventType::Ok
                }
                (None, Some(router)) => router.execute(key.as_bytes(), &cmd).await.result.is_err(),
                (None, None) => unreachable!("a task has a client or a router"),
            };
            let us = invoked.elapsed().as_micros() as u64;
            let _ = hist.record(us.max(1));
            errors += u64::from(failed);
        }
        (hist, errors)
    }
}

/// The run directory's page and JSON, for `main`.
pub fn write(dir: &Path, bench: &ClientBench) -> Result<(PathBuf, PathBuf)> {
    super::write(dir, bench, &super::page::client_html(bench)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_benchmark_csv_rows_parse() {
        let text = "\"test\",\"rps\",\"avg_latency_ms\",\"min_latency_ms\",\"p50_latency_ms\",\"p95_latency_ms\",\"p99_latency_ms\",\"max_latency_ms\"\n\
                    \"SET\",\"39920.16\",\"0.485\",\"0.040\",\"0.399\",\"1.119\",\"1.591\",\"5.783\"\n\
                    \"GET\",\"79365.08\",\"0.440\",\"0.024\",\"0.439\",\"0.831\",\"1.031\",\"2.551\"";
        let rows = parse_csv(text);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0], ("SET".to_string(), 39920.16, 0.399, 1.591));
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0]), 2.5);
    }
}
