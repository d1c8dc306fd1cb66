//! `slotcheck bench migrate`: which cases run, in which order, and where the results go.
//!
//! Two groups per server. The matrix: every method (our classic driver and `redis-cli` at each
//! batch size, Valkey's atomic migration) on dense slots (every key hash-tagged into the moved
//! slots) and sparse slots (keys spread over all 16384 slots, a share of them moved), idle and
//! under client traffic. The sweep: the data-size series (keys x value bytes), dense, idle, one
//! batch size, for the time-vs-size plot.

use super::dataset::{DatasetSpec, Layout};
use super::migrate::{run_case, Case, CaseResult, Method};
use super::traffic::TrafficConfig;
use crate::harness::ServerKind;
use crate::term::{error, ok, status};
use serde::Serialize;
use std::path::PathBuf;
use std::time::Duration;

/// Everything `slotcheck bench migrate` needs, validated before any server starts.
#[derive(Debug, Clone, Serialize)]
pub struct MigrateBenchConfig {
    /// Servers to measure, each with fresh clusters.
    pub servers: Vec<ServerKind>,
    /// Masters per cluster.
    pub masters: usize,
    /// Keys of the matrix's data sets.
    pub keys: u64,
    /// Value bytes of the matrix's data sets.
    pub value_bytes: usize,
    /// Slots moved in the dense cases (every key lives in them).
    pub dense_slots: u16,
    /// Slots moved in the sparse cases (keys spread over all slots).
    pub sparse_slots: u16,
    /// Keys per `MIGRATE` for our driver and `redis-cli` alike.
    pub batches: Vec<usize>,
    /// Slots per pipelined step of our driver, each run at every batch size (1: slot by slot).
    pub windows: Vec<usize>,
    /// Run the matrix idle, under traffic, or both.
    pub idle: bool,
    /// See `idle`.
    pub loaded: bool,
    /// Client traffic for loaded cases.
    pub traffic: TrafficConfig,
    /// How long traffic runs before and after a migration, ms.
    pub phase_ms: u64,
    /// Data sizes of the sweep: (keys, value bytes); empty for no sweep.
    pub sweep: Vec<(u64, usize)>,
    /// Slots the sweep's data sets are packed into and moved.
    pub sweep_slots: u16,
    /// Keys per `MIGRATE` in the sweep.
    pub sweep_batch: usize,
    /// Runs of every idle case (each in a fresh cluster); its row is the median by keys/s.
    pub repeat: usize,
    /// Where `bench.json`, `bench.html` and failed cases' files go.
    #[serde(skip)]
    pub output: PathBuf,
}

impl MigrateBenchConfig {
    /// Checks the configuration before any server starts.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(!self.servers.is_empty(), "no server to measure");
        anyhow::ensure!(self.masters >= 2, "--masters must be at least 2");
        anyhow::ensure!(self.keys > 0, "--keys must be at least 1");
        anyhow::ensure!(
            self.batches.iter().all(|&b| b > 0),
            "batch sizes must be at least 1"
        );
        anyhow::ensure!(self.sweep_batch > 0, "--sweep-batch must be at least 1");
        anyhow::ensure!(self.repeat > 0, "--repeat must be at least 1");
        anyhow::ensure!(
            !self.windows.is_empty() && self.windows.iter().all(|&w| w > 0),
            "--windows needs at least one window of at least 1 slot"
        );
        // The first master owns 0..16384/masters; every moved slot must be one of its.
        let first = (workloads::slot::SLOT_COUNT / self.masters) as u16;
        for (what, n) in [
            ("--dense-slots", self.dense_slots),
            ("--sparse-slots", self.sparse_slots),
            ("--sweep-slots", self.sweep_slots),
        ] {
            anyhow::ensure!(n >= 1 && n <= first, "{what} must be between 1 and {first}");
        }
        anyhow::ensure!(
            self.traffic.clients > 0 && self.traffic.rate_per_s > 0,
            "traffic needs clients and a rate"
        );
        Ok(())
    }

    /// Every case, in run order: per server, the matrix, then the sweep.
    pub fn cases(&self) -> Vec<Case> {
        let mut cases = Vec::new();
        let dataset = |keys: u64, value_bytes: usize, layout: Layout| DatasetSpec {
            keys,
            value_bytes,
            layout,
            prefix: "bench:".into(),
        };
        let dense = |n: u16| Layout::Dense {
            slots: (0..n).collect(),
        };
        for &server in &self.servers {
            let mut methods: Vec<Method> = Vec::new();
            for &batch in &self.batches {
                for &window in &self.windows {
                    methods.push(Method::Classic { batch, window });
                }
                methods.push(Method::Cli { batch });
            }
            methods.push(Method::Atomic);
            methods.retain(|m| m.runs_on(server));
            let mut loads = Vec::new();
            if self.idle {
                loads.push(None);
            }
            if self.loaded {
                loads.push(Some((
                    self.traffic.clone(),
                    Duration::from_millis(self.phase_ms),
                )));
            }
            for traffic in &loads {
                for (layout, slots) in [
                    (dense(self.dense_slots), self.dense_slots),
                    (Layout::Spread, self.sparse_slots),
                ] {
                    for &method in &methods {
                        cases.push(Case {
                            group: "matrix",
                            server,
                            masters: self.masters,
                            dataset: dataset(self.keys, self.value_bytes, layout.clone()),
                            slots,
                            method,
                            traffic: traffic.clone(),
                        });
                    }
                }
            }
            let batch = self.sweep_batch;
            let mut sweep_methods: Vec<Method> = self
                .windows
                .iter()
                .map(|&window| Method::Classic { batch, window })
                .collect();
            sweep_methods.extend([Method::Cli { batch }, Method::Atomic]);
            for &(keys, value_bytes) in &self.sweep {
                for method in sweep_methods.iter().filter(|m| m.runs_on(server)) {
                    cases.push(Case {
                        group: "sweep",
                        server,
                        masters: self.masters,
                        dataset: dataset(keys, value_bytes, dense(self.sweep_slots)),
                        slots: self.sweep_slots,
                        method: *method,
                        traffic: None,
                    });
                }
            }
        }
        cases
    }
}

/// Everything `slotcheck bench migrate` measured, as written to `bench.json`.
#[derive(Debug, Clone, Serialize)]
pub struct MigrateBench {
    /// `migrate`.
    pub bench: String,
    /// The machine: CPUs and memory.
    pub machine: super::Machine,
    /// The configuration.
    pub config: MigrateBenchConfig,
    /// Every case, in run order.
    pub cases: Vec<CaseResult>,
}

/// The run with the median keys/s (a failed run, if any), listing every run's duration.
fn median_run(mut runs: Vec<CaseResult>) -> CaseResult {
    let durations: Vec<f64> = runs.iter().map(|r| r.duration_s).collect();
    let chosen = match runs.iter().position(|r| r.error.is_some()) {
        Some(failed) => failed,
        None => {
            let mut order: Vec<usize> = (0..runs.len()).collect();
            order.sort_by(|&a, &b| runs[a].keys_per_s.total_cmp(&runs[b].keys_per_s));
            order[order.len() / 2]
        }
    };
    let mut r = runs.swap_remove(chosen);
    if durations.len() > 1 {
        r.repeats_s = durations;
    }
    r
}

/// Runs every case of `cfg`, each in a fresh cluster, with a status line per run. With repeats,
/// the whole list runs again in each round (idle cases only), so that a busy spell on the
/// machine hits every method about alike rather than every repeat of one method.
pub async fn run(cfg: &MigrateBenchConfig) -> anyhow::Result<MigrateBench> {
    cfg.validate()?;
    let machine = super::Machine::this();
    let cases = cfg.cases();
    let mut runs: Vec<Vec<CaseResult>> = cases.iter().map(|_| Vec::new()).collect();
    for round in 0..cfg.repeat {
        for (i, case) in cases.iter().enumerate() {
            let failed = runs[i].iter().any(|r| r.error.is_some());
            if round > 0 && (case.traffic.is_some() || failed) {
                continue;
            }
            let name = case_name(case);
            let of = if cfg.repeat > 1 {
                format!(" (round {}/{})", round + 1, cfg.repeat)
            } else {
                String::new()
            };
            status(&format!("[{}/{}]{of} {name}", i + 1, cases.len()));
            let dir = cfg.output.join("cases").join(format!("{:03}", i + 1));
            let r = run_case(case, &dir).await;
            match &r.error {
                None => ok(&format!(
                    "{} keys in {:.3} s: {:.0} keys/s, {:.1} MB/s, {:.2} ms/slot",
                    r.keys_moved, r.duration_s, r.keys_per_s, r.mb_per_s, r.ms_per_slot
                )),
                Some(e) => error(&format!("{name}: {e} (files kept in {})", dir.display())),
            }
            runs[i].push(r);
        }
    }
    Ok(MigrateBench {
        bench: "migrate".into(),
        machine,
        config: cfg.clone(),
        cases: runs.into_iter().map(median_run).collect(),
    })
}

/// A case as its status line names it.
fn case_name(case: &Case) -> String {
    format!(
        "{} {} {} {}k keys x {} B, {} slots, {}{}",
        case.group,
        case.server,
        match case.dataset.layout {
            Layout::Dense { .. } => "dense",
            Layout::Spread => "sparse",
        },
        case.dataset.keys / 1000,
        case.dataset.value_bytes,
        case.slots,
        case.method.label(),
        if case.traffic.is_some() {
            ", under traffic"
        } else {
            ""
        },
    )
}
