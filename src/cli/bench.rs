//! `slotcheck bench migrate|client`: flags, validated into the benchmarks' configurations, then
//! run, printed as tables and written to the run store.

use anyhow::{bail, Context, Result};
use slotcheck::bench::builder::{ClientBenchBuilder, MigrateBenchBuilder};
use slotcheck::bench::client;
use slotcheck::bench::suite::{self, MigrateBenchConfig};
use slotcheck::bench::{page, write};
use slotcheck::harness::ServerKind;
use slotcheck::term::ok;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// The subcommand of `slotcheck bench`.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    #[command(subcommand)]
    what: Benchmark,
}

/// Which benchmark to run.
#[derive(clap::Subcommand, Debug)]
enum Benchmark {
    /// Load a data set, migrate slots with each method (our classic driver, redis-cli --cluster
    /// reshard, Valkey's atomic migration), idle and under traffic, plus a data-size sweep;
    /// exit 1 if a case failed.
    Migrate(MigrateArgs),
    /// Our recording client (history on and off) against redis-benchmark at equal concurrency.
    Client(ClientArgs),
}

/// Flags of `slotcheck bench migrate`.
#[derive(clap::Args, Debug)]
struct MigrateArgs {
    /// Servers to measure, comma-separated: redis, valkey.
    #[arg(long, default_value = "redis,valkey")]
    servers: String,
    /// Masters per cluster.
    #[arg(long, default_value_t = 3)]
    masters: usize,
    /// Keys in the matrix's data set.
    #[arg(long, default_value_t = 200_000)]
    keys: u64,
    /// Bytes per value in the matrix's data set.
    #[arg(long, default_value_t = 100)]
    value_bytes: usize,
    /// Dense cases: every key is hash-tagged into this many slots, all moved.
    #[arg(long, default_value_t = 16)]
    dense_slots: u16,
    /// Sparse cases: keys spread over all 16384 slots; this many slots move.
    #[arg(long, default_value_t = 1024)]
    sparse_slots: u16,
    /// Keys per MIGRATE (our driver and redis-cli's --cluster-pipeline), comma-separated.
    #[arg(long, default_value = "10,100")]
    batches: String,
    /// Slots per pipelined step of our driver, comma-separated (1: slot by slot, like redis-cli).
    #[arg(long, default_value = "1,16")]
    windows: String,
    /// Matrix cases idle, under client traffic, or both: idle, traffic, both.
    #[arg(long, default_value = "both")]
    load: String,
    /// Client tasks of the traffic.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Operations per second of the traffic, over all clients.
    #[arg(long, default_value_t = 4000)]
    rate: u64,
    /// Percentage of reads in the traffic.
    #[arg(long, default_value_t = 50)]
    read_percent: u32,
    /// Traffic before and after each migration (e.g. 1s).
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    phase: Duration,
    /// Data-size sweep, KEYS:VALUE_BYTES pairs (k, M suffixes), or `none`.
    #[arg(long, default_value = "10k:100,100k:100,1M:100,100k:1000,100k:10000")]
    sweep: String,
    /// Slots the sweep's keys are packed into (and moved).
    #[arg(long, default_value_t = 16)]
    sweep_slots: u16,
    /// Keys per MIGRATE in the sweep.
    #[arg(long, default_value_t = 100)]
    sweep_batch: usize,
    /// Runs of every idle case, each in a fresh cluster; the table shows the median by keys/s.
    #[arg(long, default_value_t = 1)]
    repeat: usize,
    /// Directory for the results (default: store/bench-migrate/<start time>/).
    #[arg(long)]
    output: Option<PathBuf>,
}

/// Flags of `slotcheck bench client`.
#[derive(clap::Args, Debug)]
struct ClientArgs {
    /// Server: redis or valkey.
    #[arg(long, default_value = "redis")]
    server: ServerKind,
    /// Masters in the cluster.
    #[arg(long, default_value_t = 3)]
    masters: usize,
    /// Requests in flight: redis-benchmark's -c, our client tasks.
    #[arg(long, default_value_t = 50)]
    clients: usize,
    /// Requests per command per run (redis-benchmark's -n).
    #[arg(long, default_value_t = 100_000)]
    requests: u64,
    /// SET value bytes (redis-benchmark's -d).
    #[arg(long, default_value_t = 3)]
    value_bytes: usize,
    /// Distinct random keys (redis-benchmark's -r).
    #[arg(long, default_value_t = 100_000)]
    keyspace: u64,
    /// Rounds of every tool; the table shows the medians.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Spread every client task's keys over all masters, as a workload does, rather than keep
    /// each task on one master's slots as redis-benchmark --cluster keeps its clients.
    #[arg(long)]
    spread: bool,
    /// Runtime threads of our client: 1 (one thread, as redis-benchmark's default) or 0 (one per
    /// CPU, as `slotcheck test` runs its clients).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Directory for the results (default: store/bench-client/<start time>/).
    #[arg(long)]
    output: Option<PathBuf>,
}

/// Runs the benchmark `args` names; prints its tables and where its files went.
pub fn run(args: BenchArgs) -> Result<ExitCode> {
    let runtime = super::runtime()?;
    match args.what {
        Benchmark::Migrate(a) => {
            let cfg = migrate_config(a)?;
            let bench = runtime.block_on(suite::run(&cfg))?;
            for t in page::migrate_tables(&bench) {
                println!("{}", t.text());
            }
            let html = page::migrate_html(&bench)?;
            finish(&cfg.output, write(&cfg.output, &bench, &html)?);
            let failed = bench.cases.iter().filter(|c| c.error.is_some()).count();
            Ok(ExitCode::from(u8::from(failed > 0)))
        }
        Benchmark::Client(a) => {
            let cfg = ClientBenchBuilder::new()
                .server(a.server)
                .masters(a.masters)
                .clients(a.clients)
                .requests(a.requests)
                .value_bytes(a.value_bytes)
                .keyspace(a.keyspace)
                .rounds(a.rounds)
                .threads(a.threads)
                .pinned(!a.spread)
                .output(a.output)
                .build();
            let bench = runtime.block_on(client::run(&cfg))?;
            println!("{}", page::client_table(&bench).text());
            finish(&cfg.output, client::write(&cfg.output, &bench)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Prints the files' paths and points `store/latest` at a run under `store/`.
fn finish(dir: &Path, (json, html): (PathBuf, PathBuf)) {
    let latest = PathBuf::from("store").join("latest");
    if let Ok(rel) = dir.strip_prefix("store") {
        let _ = std::fs::remove_file(&latest);
        let _ = std::os::unix::fs::symlink(rel, &latest);
    }
    ok(&format!("results: {}", json.display()));
    ok(&format!("page: {}", html.display()));
}

/// Parses the lists of `bench migrate`'s flags and validates them into its configuration.
fn migrate_config(a: MigrateArgs) -> Result<MigrateBenchConfig> {
    let servers = a
        .servers
        .split(',')
        .map(|s| s.trim().parse::<ServerKind>().map_err(anyhow::Error::msg))
        .collect::<Result<Vec<_>>>()?;
    let batches = a
        .batches
        .split(',')
        .map(|b| {
            b.trim()
                .parse::<usize>()
                .with_context(|| format!("--batches: {b:?}"))
        })
        .collect::<Result<Vec<_>>>()?;
    let windows = a
        .windows
        .split(',')
        .map(|w| {
            w.trim()
                .parse::<usize>()
                .with_context(|| format!("--windows: {w:?}"))
        })
        .collect::<Result<Vec<_>>>()?;
    let (idle, loaded) = match a.load.as_str() {
        "idle" => (true, false),
        "traffic" => (false, true),
        "both" => (true, true),
        other => bail!("--load {other:?}: expected idle, traffic or both"),
    };
    MigrateBenchBuilder::new()
        .servers(servers)
        .masters(a.masters)
        .keys(a.keys)
        .value_bytes(a.value_bytes)
        .dense_slots(a.dense_slots)
        .sparse_slots(a.sparse_slots)
        .batches(batches)
        .windows(windows)
        .load(idle, loaded)
        .clients(a.clients)
        .rate_per_s(a.rate)
        .read_percent(a.read_percent)
        .phase(a.phase)
        .sweep(parse_sweep(&a.sweep)?)
        .sweep_slots(a.sweep_slots)
        .sweep_batch(a.sweep_batch)
        .repeat(a.repeat)
        .output(a.output)
        .build()
}

/// `10k:100,1M:100` into `[(10000, 100), (1000000, 100)]`; `none` into nothing.
fn parse_sweep(text: &str) -> Result<Vec<(u64, usize)>> {
    if text.trim() == "none" {
        return Ok(Vec::new());
    }
    let number = |s: &str| -> Result<u64> {
        let s = s.trim();
        let (digits, unit) = match s.chars().last() {
            Some('k') | Some('K') => (&s[..s.len() - 1], 1_000),
            Some('M') | Some('m') => (&s[..s.len() - 1], 1_000_000),
            _ => (s, 1),
        };
        Ok(digits
            .parse::<u64>()
            .with_context(|| format!("--sweep: bad number {s:?}"))?
            * unit)
    };
    text.split(',')
        .map(|pair| {
            let (keys, bytes) = pair
                .split_once(':')
                .with_context(|| format!("--sweep: {pair:?} is not KEYS:VALUE_BYTES"))?;
            let (keys, bytes) = (number(keys)?, number(bytes)? as usize);
            anyhow::ensure!(keys > 0 && bytes > 0, "--sweep: {pair:?} must be positive");
            Ok((keys, bytes))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sweeps_parse() {
        assert_eq!(
            parse_sweep("10k:100, 1M:1k").unwrap(),
            vec![(10_000, 100), (1_000_000, 1000)]
        );
        assert!(parse_sweep("none").unwrap().is_empty());
        assert!(parse_sweep("10k").is_err());
        assert!(parse_sweep("0:1").is_err());
    }
}
