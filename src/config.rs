//! The validated configuration of one test run, built by the command line before any server
//! starts; the run pipeline, scenarios and soaks read it.

use crate::harness::proxy::bug::ServerBug;
use crate::harness::{Persistence, ServerKind};
use crate::nemesis::failover::FailoverChoice;
use crate::nemesis::migrate::MigrateOptions;
use crate::nemesis::schedule::{FaultKind, MigrateTarget, Pacing, Schedule};
use crate::pika::scenario::PikaScenario;
use crate::scenario::Scenario;
use anyhow::{bail, Result};
use std::path::PathBuf;
use std::time::Duration;
use workloads::codis::{CodisRouting, MigrationMode, SharedCodisTable};
use workloads::{ClientBug, ClientChoice, KeyDist, WorkloadConfig, WorkloadKind};

mod builder;
pub use builder::{listing, ConfigError, RunConfigBuilder, KEYS_MAX, SLOTS_DEFAULT};

/// Everything a test run needs, validated before any server starts.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// Which server to test.
    pub server: ServerKind,
    /// Masters in the cluster.
    pub masters: usize,
    /// Replicas per master.
    pub replicas: usize,
    /// Which workload the clients run.
    pub workload: WorkloadKind,
    /// Which client library carries the workload's commands.
    pub client: ClientChoice,
    /// Concurrent logical client processes.
    pub clients: usize,
    /// Keys the register workload spreads over.
    pub keys: usize,
    /// Hash-tag groups the keys fall in, one slot each (`--slots`; 0: one slot per key).
    pub slots: usize,
    /// How an op picks its key (`--key-dist`).
    pub key_dist: KeyDist,
    /// Masters that own no slots when the run starts (`--spare-masters`), beyond `masters`.
    pub spare_masters: usize,
    /// Where migrations move a slot (`--migrate-target`): any other master, or one owning none.
    pub migrate_target: MigrateTarget,
    /// Logical processes per client worker whose ops go out as one pipeline (`--pipeline`);
    /// 1: no pipelines.
    pub pipeline: usize,
    /// How the Elle workloads send a transaction (`--txn multi|lua`).
    pub txn: workloads::TxnMode,
    /// Target operations per second over all clients; 0 for unpaced.
    pub rate_per_s: u64,
    /// How long the workload and nemesis run.
    pub duration: Duration,
    /// Seeds the workload and the nemesis schedule; recorded in the history header.
    pub seed: u64,
    /// Where the run's files go.
    pub output: PathBuf,
    /// Nemesis actions to schedule (already checked against the server and cluster shape).
    pub nemesis: Vec<FaultKind>,
    /// Mean pause between migrations.
    pub migrate_interval_ms: u64,
    /// Mean pause between node faults.
    pub fault_interval_ms: u64,
    /// Longest time a fault is held before its inverse.
    pub hold_ms_max: u64,
    /// How the classic migration paces itself.
    pub migrate: MigrateOptions,
    /// Per-request timeout of the workload's clients.
    pub timeout_ms: u64,
    /// What the nodes keep on disk (`--persistence`): with `aof` a killed node keeps every
    /// acknowledged write; with `off` it comes back empty (a loss by design).
    pub persistence: Persistence,
    /// Which `CLUSTER FAILOVER` the `failover` nemesis sends (`--failover`): `default` is the
    /// safe kind; `force`, `takeover` and `mixed` may drop unreplicated writes by design.
    pub failover: FailoverChoice,
    /// A client bug the workload injects on purpose (a test aid; `None` normally).
    pub client_bug: Option<ClientBug>,
    /// A server bug the nodes' proxies inject on purpose (a test aid; `None` normally).
    pub server_bug: Option<ServerBug>,
    /// The named scenario this run is (its preset is already applied; it fixes the schedule).
    pub scenario: Option<Scenario>,
    /// The PikiwiDB binary (`--server-binary`, already found), for `--server pikiwidb`.
    pub server_binary: Option<PathBuf>,
    /// How slotcheck's Codis routing crosses a migrating PikiwiDB slot, and which migration
    /// command the nemesis uses (sync: `SLOTSMGRTTAGSLOT`; semi-async: `SLOTSMGRTTAGSLOT-ASYNC`).
    pub pika_mode: MigrationMode,
    /// The named PikiwiDB scenario this run is, if any (its preset is already applied).
    pub pika_scenario: Option<PikaScenario>,
    /// A cluster slotcheck does not start (`--attach`, `--hosts`); `None`: a local one.
    pub existing: Option<Existing>,
}

/// A running cluster the run attaches to instead of starting one: by address (`--attach`),
/// or on the hosts of a hosts file (`--hosts`), whose process verbs and partitions then run
/// on those hosts over SSH.
#[derive(Debug, Clone, Default)]
pub struct Existing {
    /// Addresses of the cluster's nodes (any one suffices); with `hosts` alone, its servers'.
    pub seeds: Vec<String>,
    /// The hosts file, when the servers' hosts are reachable over SSH.
    pub hosts: Option<PathBuf>,
    /// Leave the workload's keys in the cluster at the end (`--keep-keys`).
    pub keep_keys: bool,
}

impl RunConfig {
    /// The workload this run drives (a soak adds its windows and process base).
    pub fn workload_config(&self) -> WorkloadConfig {
        WorkloadConfig {
            kind: self.workload,
            client: self.client.clone(),
            key_prefix: format!("{}:", self.workload.name()),
            clients: self.clients,
            keys: self.keys,
            slots: self.slots,
            txn: self.txn,
            rate_per_s: self.rate_per_s,
            seed: self.seed,
            timeout_ms: self.timeout_ms,
            client_bug: self.client_bug,
            key_dist: self.key_dist,
            pipeline: self.pipeline,
            ..WorkloadConfig::default()
        }
    }

    /// The workload of a PikiwiDB run, routed through `table` as a Codis proxy: no
    /// compare-and-set, since PikiwiDB has no `EVAL`, so the register workload is plain `SET`/`GET`.
    pub fn codis_workload_config(&self, table: SharedCodisTable) -> WorkloadConfig {
        WorkloadConfig {
            codis: Some(CodisRouting(table)),
            mixed_case: self.mixed_case(),
            cas_weight: 0,
            ..self.workload_config()
        }
    }

    /// Whether key names have capitals (the PikiwiDB scenario of the `types` workload).
    pub fn mixed_case(&self) -> bool {
        self.pika_scenario.is_some_and(|s| s.mixed_case())
    }

    /// Sets the cluster shape, nemesis, pacing and length to `scenario`'s, and
    /// persistence off for `restart-empty` (whose loss needs it); the server, seed, output,
    /// client count, keys, rate, timeout and other persistence stay the caller's.
    pub fn apply_scenario(&mut self, scenario: Scenario) -> Result<()> {
        self.masters = 3;
        self.replicas = usize::from(matches!(
            scenario,
            Scenario::PartitionedMaster | Scenario::FailoverMidMigration
        ));
        if scenario == Scenario::RestartEmpty {
            self.persistence = Persistence::Off;
        }
        self.nemesis = vec![scenario.nemesis()];
        self.duration = Duration::from_millis(crate::scenario::DURATION_MS);
        self.migrate_interval_ms = 1500;
        self.fault_interval_ms = 4000;
        self.hold_ms_max = 1000;
        self.scenario = Some(scenario);
        if scenario == Scenario::PartitionedMaster {
            if let Err(e) = crate::nemesis::net::available() {
                bail!("--scenario {scenario} needs network partitions: {e}");
            }
        }
        Ok(())
    }

    /// The seeded plan of every nemesis action of this run.
    pub fn schedule(&self) -> Schedule {
        let pacing = Pacing {
            duration_ms: self.duration.as_millis() as u64,
            migrate_interval_ms: self.migrate_interval_ms,
            fault_interval_ms: self.fault_interval_ms,
            hold_ms_max: self.hold_ms_max,
        };
        match self.scenario {
            Some(scenario) => scenario.schedule(self.seed, pacing),
            None => Schedule::generate(self.seed, &self.nemesis, pacing),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restart_empty_forces_persistence_off_and_failover_mid_migration_needs_replicas() {
        let mut cfg = RunConfig {
            server: crate::harness::ServerKind::Redis,
            masters: 1,
            replicas: 0,
            workload: workloads::WorkloadKind::Register,
            client: workloads::ClientChoice::Slotcheck,
            clients: 1,
            keys: 1,
            slots: 0,
            key_dist: KeyDist::Uniform,
            spare_masters: 0,
            migrate_target: MigrateTarget::Any,
            pipeline: 1,
            txn: workloads::TxnMode::Multi,
            rate_per_s: 0,
            duration: Duration::from_secs(1),
            seed: 1,
            output: "out".into(),
            nemesis: Vec::new(),
            migrate_interval_ms: 0,
            fault_interval_ms: 0,
            hold_ms_max: 0,
            migrate: Default::default(),
            timeout_ms: 1000,
            persistence: Persistence::Aof,
            failover: Default::default(),
            client_bug: None,
            server_bug: None,
            scenario: None,
            server_binary: None,
            pika_mode: MigrationMode::Sync,
            pika_scenario: None,
            existing: None,
        };
        cfg.apply_scenario(Scenario::FailoverMidMigration).unwrap();
        assert_eq!((cfg.masters, cfg.replicas), (3, 1));
        assert_eq!(cfg.persistence, Persistence::Aof);
        assert_eq!(cfg.nemesis, vec![FaultKind::StrikeFailover]);
        cfg.apply_scenario(Scenario::RestartEmpty).unwrap();
        assert_eq!(cfg.persistence, Persistence::Off);
    }
}
