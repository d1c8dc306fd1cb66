//! Builders of the benchmarks' configurations, as turmoil's builder: `&mut Self` setters with
//! `slotcheck bench`'s defaults, and a `build()` that fills in the default output directory and
//! validates before any server starts.

use super::client::ClientBenchConfig;
use super::default_output;
use super::suite::MigrateBenchConfig;
use super::traffic::TrafficConfig;
use crate::harness::ServerKind;
use std::path::PathBuf;
use std::time::Duration;

/// The settings of `slotcheck bench migrate` before validation.
#[derive(Debug, Clone)]
pub struct MigrateBenchBuilder {
    servers: Vec<ServerKind>,
    masters: usize,
    keys: u64,
    value_bytes: usize,
    dense_slots: u16,
    sparse_slots: u16,
    batches: Vec<usize>,
    windows: Vec<usize>,
    idle: bool,
    loaded: bool,
    clients: usize,
    rate_per_s: u64,
    read_percent: u32,
    phase: Duration,
    sweep: Vec<(u64, usize)>,
    sweep_slots: u16,
    sweep_batch: usize,
    repeat: usize,
    output: Option<PathBuf>,
}

impl Default for MigrateBenchBuilder {
    fn default() -> Self {
        MigrateBenchBuilder {
            servers: vec![ServerKind::Redis, ServerKind::Valkey],
            masters: 3,
            keys: 200_000,
            value_bytes: 100,
            dense_slots: 16,
            sparse_slots: 1024,
            batches: vec![10, 100],
            windows: vec![1, 16],
            idle: true,
            loaded: true,
            clients: 8,
            rate_per_s: 4000,
            read_percent: 50,
            phase: Duration::from_secs(1),
            sweep: vec![
                (10_000, 100),
                (100_000, 100),
                (1_000_000, 100),
                (100_000, 1000),
                (100_000, 10_000),
            ],
            sweep_slots: 16,
            sweep_batch: 100,
            repeat: 1,
            output: None,
        }
    }
}

impl MigrateBenchBuilder {
    /// A builder with `slotcheck bench migrate`'s defaults.
    pub fn new() -> Self {
        Self::default()
    }

    setters! {
        /// Servers to measure.
        servers: Vec<ServerKind>;
        /// Masters per cluster (at least 2).
        masters: usize;
        /// Keys in the matrix's data set.
        keys: u64;
        /// Bytes per value in the matrix's data set.
        value_bytes: usize;
        /// Slots the dense cases' keys are packed into (and moved).
        dense_slots: u16;
        /// Slots moved in the sparse cases.
        sparse_slots: u16;
        /// Keys per `MIGRATE`, one case each.
        batches: Vec<usize>;
        /// Slots per pipelined step of our driver, one case each.
        windows: Vec<usize>;
        /// Client tasks of the traffic.
        clients: usize;
        /// Operations per second of the traffic.
        rate_per_s: u64;
        /// Percentage of reads in the traffic (capped at 100).
        read_percent: u32;
        /// Traffic before and after each migration.
        phase: Duration;
        /// The data-size sweep's (keys, value bytes); empty for none.
        sweep: Vec<(u64, usize)>;
        /// Slots the sweep's keys are packed into.
        sweep_slots: u16;
        /// Keys per `MIGRATE` in the sweep.
        sweep_batch: usize;
        /// Runs of every idle case.
        repeat: usize;
        /// Where results go (`store/bench-migrate/<start time>/` when `None`).
        output: Option<PathBuf>;
    }

    /// Which matrix cases run: idle ones, ones under traffic, or both.
    pub fn load(&mut self, idle: bool, loaded: bool) -> &mut Self {
        (self.idle, self.loaded) = (idle, loaded);
        self
    }

    /// The validated configuration.
    pub fn build(&self) -> anyhow::Result<MigrateBenchConfig> {
        let cfg = MigrateBenchConfig {
            servers: self.servers.clone(),
            masters: self.masters,
            keys: self.keys,
            value_bytes: self.value_bytes,
            dense_slots: self.dense_slots,
            sparse_slots: self.sparse_slots,
            batches: self.batches.clone(),
            windows: self.windows.clone(),
            idle: self.idle,
            loaded: self.loaded,
            traffic: TrafficConfig {
                clients: self.clients,
                rate_per_s: self.rate_per_s,
                read_percent: self.read_percent.min(100),
                seed: 0,
            },
            phase_ms: self.phase.as_millis() as u64,
            sweep: self.sweep.clone(),
            sweep_slots: self.sweep_slots,
            sweep_batch: self.sweep_batch,
            repeat: self.repeat,
            output: self
                .output
                .clone()
                .unwrap_or_else(|| default_output("migrate")),
        };
        cfg.validate()?;
        Ok(cfg)
    }
}

/// The settings of `slotcheck bench client` before they become its configuration.
#[derive(Debug, Clone)]
pub struct ClientBenchBuilder {
    server: ServerKind,
    masters: usize,
    clients: usize,
    requests: u64,
    value_bytes: usize,
    keyspace: u64,
    rounds: usize,
    pinned: bool,
    threads: usize,
    output: Option<PathBuf>,
}

impl Default for ClientBenchBuilder {
    fn default() -> Self {
        ClientBenchBuilder {
            server: ServerKind::Redis,
            masters: 3,
            clients: 50,
            requests: 100_000,
            value_bytes: 3,
            keyspace: 100_000,
            rounds: 3,
            pinned: true,
            threads: 1,
            output: None,
        }
    }
}

impl ClientBenchBuilder {
    /// A builder with `slotcheck bench client`'s defaults.
    pub fn new() -> Self {
        Self::default()
    }

    setters! {
        /// The server to run.
        server: ServerKind;
        /// Masters in the cluster.
        masters: usize;
        /// Requests in flight.
        clients: usize;
        /// Requests per command per run.
        requests: u64;
        /// Value bytes of `SET`.
        value_bytes: usize;
        /// Distinct random keys.
        keyspace: u64;
        /// Rounds of every tool.
        rounds: usize;
        /// Each client task keeps to one master's slots (false: spread over all masters).
        pinned: bool;
        /// Runtime threads of our client (0: one per CPU).
        threads: usize;
        /// Where results go (`store/bench-client/<start time>/` when `None`).
        output: Option<PathBuf>;
    }

    /// The configuration; every setting is usable as it is.
    pub fn build(&self) -> ClientBenchConfig {
        ClientBenchConfig {
            server: self.server,
            masters: self.masters,
            clients: self.clients,
            requests: self.requests,
            value_bytes: self.value_bytes,
            keyspace: self.keyspace,
            rounds: self.rounds,
            threads: self.threads,
            pinned: self.pinned,
            output: self
                .output
                .clone()
                .unwrap_or_else(|| default_output("client")),
        }
    }
}
