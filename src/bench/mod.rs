//! Benchmarks: how fast slots migrate and what it costs the servers and the clients
//! (`slotcheck bench migrate`), and whether slotcheck's recording client keeps up with
//! `redis-benchmark` (`slotcheck bench client`), each measured side by side with the standard tool
//! in the same run.
//!
//! - [`dataset`] loads N keys of a given size into chosen slots, fast, and counts them again;
//! - [`migrate`] runs one migration case in a fresh cluster; [`suite`] says which cases run;
//! - [`traffic`] is the client load during a migration, [`usage`] reads servers' CPU and memory;
//! - [`client`] compares our client with `redis-benchmark`; [`builder`] makes both configurations;
//! - [`page`] renders the terminal tables and `bench.html`.
//!
//! Results go to `store/bench-<what>/<start time>/` (`bench.json`, `bench.html`), linked from
//! `store/latest`.

pub mod builder;
pub mod client;
pub mod dataset;
pub mod migrate;
pub mod page;
pub mod suite;
pub mod traffic;
pub mod usage;

use anyhow::{Context, Result};
use redis::aio::MultiplexedConnection;
use redis::AsyncConnectionConfig;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The file with every number of a benchmark run.
pub const RESULTS_FILE: &str = "bench.json";
/// The page with its tables and plots.
pub const PAGE_FILE: &str = "bench.html";

/// A multiplexed connection to `addr` whose requests may take up to `timeout_ms` (bulk loads and
/// large `MIGRATE`s take longer than the harness's admin timeout).
pub async fn connect(addr: &str, timeout_ms: u64) -> Result<MultiplexedConnection> {
    let client = redis::Client::open(format!("redis://{addr}/"))?;
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_millis(2000)))
        .set_response_timeout(Some(Duration::from_millis(timeout_ms)));
    client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .with_context(|| format!("connecting to {addr}"))
}

/// The machine a benchmark ran on, since every number depends on it.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// CPUs this process may use.
    pub cpus: usize,
    /// Total memory, GiB.
    pub memory_gib: f64,
    /// The CPU's model name.
    pub cpu_model: String,
    /// Load average over the last minute when the benchmark began (other work skews results).
    pub load_1m: f64,
}

impl Machine {
    /// This machine, from `/proc`.
    pub fn this() -> Machine {
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let kb: f64 = meminfo
            .lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0.0);
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let cpu_model = cpuinfo
            .lines()
            .find_map(|l| l.strip_prefix("model name"))
            .map(|v| v.trim_start_matches([' ', '\t', ':']).to_string())
            .unwrap_or_default();
        let load_1m = std::fs::read_to_string("/proc/loadavg")
            .ok()
            .and_then(|l| l.split_whitespace().next()?.parse().ok())
            .unwrap_or(0.0);
        Machine {
            load_1m,
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
            memory_gib: kb / (1024.0 * 1024.0),
            cpu_model,
        }
    }

    /// `2 CPUs, 24 GiB`.
    pub fn label(&self) -> String {
        format!("{} CPUs, {:.0} GiB", self.cpus, self.memory_gib)
    }
}

/// `store/bench-<what>/<local time>`, the default output of a benchmark.
pub fn default_output(what: &str) -> PathBuf {
    let stamp = chrono::Local::now().format("%Y%m%dT%H%M%S%.3f");
    PathBuf::from("store")
        .join(format!("bench-{what}"))
        .join(stamp.to_string())
}

/// Writes `bench.json` and `bench.html` into `dir`; returns their paths.
pub fn write(dir: &Path, results: &impl Serialize, html: &str) -> Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let json = dir.join(RESULTS_FILE);
    std::fs::write(&json, serde_json::to_vec_pretty(results)?)
        .with_context(|| format!("writing {}", json.display()))?;
    let page = dir.join(PAGE_FILE);
    std::fs::write(&page, html).with_context(|| format!("writing {}", page.display()))?;
    Ok((json, page))
}
