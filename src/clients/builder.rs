//! [`CompareBuilder`]: the settings of `slotcheck clients`, as turmoil's builder: `&mut Self`
//! setters with the command's defaults, then `build()`. The first seed is always recorded.

use super::compare::{CompareConfig, Scenario};
use super::{parse_client, CLIENT_NAMES};
use crate::harness::{Persistence, ServerKind};
use crate::nemesis::failover::FailoverChoice;
use std::path::PathBuf;
use std::time::Duration;
use workloads::{ClientChoice, WorkloadKind};

/// The settings of a comparison of clients before they become its configuration.
#[derive(Debug, Clone)]
pub struct CompareBuilder {
    servers: Vec<ServerKind>,
    clients: Vec<ClientChoice>,
    scenarios: Vec<Scenario>,
    runs: usize,
    duration: Duration,
    workload: WorkloadKind,
    seed: u64,
    output: Option<PathBuf>,
    persistence: Persistence,
    failover: FailoverChoice,
    pipeline: usize,
}

impl Default for CompareBuilder {
    fn default() -> Self {
        CompareBuilder {
            servers: vec![ServerKind::Redis, ServerKind::Valkey],
            clients: CLIENT_NAMES
                .iter()
                .filter_map(|name| parse_client(name).ok())
                .collect(),
            scenarios: Scenario::ALL.to_vec(),
            runs: 1,
            duration: Duration::from_secs(20),
            workload: WorkloadKind::Register,
            seed: 1,
            output: None,
            persistence: Persistence::Aof,
            failover: FailoverChoice::default(),
            pipeline: 1,
        }
    }
}

impl CompareBuilder {
    /// A builder with `slotcheck clients`' defaults: every server, client and scenario.
    pub fn new() -> Self {
        Self::default()
    }

    setters! {
        /// Servers, each a cluster of its own per run.
        servers: Vec<ServerKind>;
        /// Clients under test.
        clients: Vec<ClientChoice>;
        /// Scenarios.
        scenarios: Vec<Scenario>;
        /// Runs per server, client and scenario (at least 1 is made).
        runs: usize;
        /// Length of each run.
        duration: Duration;
        /// The workload.
        workload: WorkloadKind;
        /// First seed: run `i` of every cell uses `seed + i`.
        seed: u64;
        /// Where the runs and `clients.json` go (`store/clients/<start time>/` when `None`).
        output: Option<PathBuf>;
        /// What the nodes keep on disk.
        persistence: Persistence;
        /// Which failovers the `failover` scenario sends.
        failover: FailoverChoice;
        /// Logical processes per client worker, their ops sent as one pipeline (1: none).
        pipeline: usize;
    }

    /// The configuration; a run count of 0 is taken as 1.
    pub fn build(&self) -> CompareConfig {
        CompareConfig {
            servers: self.servers.clone(),
            clients: self.clients.clone(),
            scenarios: self.scenarios.clone(),
            runs: self.runs.max(1),
            duration: self.duration,
            workload: self.workload,
            seed: self.seed,
            output: self.output.clone().unwrap_or_else(default_output),
            persistence: self.persistence,
            failover: self.failover,
            pipeline: self.pipeline.max(1),
        }
    }
}

/// `store/clients/<local time>`, the default output of a comparison.
pub fn default_output() -> PathBuf {
    let stamp = chrono::Local::now().format("%Y%m%dT%H%M%S%.3f");
    PathBuf::from("store")
        .join("clients")
        .join(stamp.to_string())
}
