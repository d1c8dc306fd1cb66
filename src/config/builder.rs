//! [`RunConfigBuilder`]: a test run's settings, given one by one (`&mut Self` setters, as
//! turmoil's builder), then validated into a [`RunConfig`] before any server starts: value
//! ranges, the cluster's shape, the nemesis against server and shape, the scenario and injected
//! bugs, and the server binary. The seed is always recorded: random when none is given.
//! [`listing`] is what `list` in place of a scenario's or a bug's name prints.

use super::RunConfig;
use crate::harness::proxy::bug::ServerBug;
use crate::harness::{self, ClusterSpec, HarnessError, Persistence, ServerKind};
use crate::nemesis::failover::FailoverChoice;
use crate::nemesis::migrate::MigrateOptions;
use crate::nemesis::schedule::{parse_kinds, FaultKind, MigrateTarget};
use crate::scenario::Scenario;
use crate::term::warn;
use std::path::PathBuf;
use std::time::Duration;
use workloads::{ClientBug, ClientChoice, KeyDist, WorkloadKind};

/// Most keys a run may spread over: every key is read once more after the run, verified and
/// checked; at 10M keys the final reads alone took minutes.
pub const KEYS_MAX: usize = 100_000;

/// Hash-tag groups of the default run (`--slots`): 100 keys in 3 slots, 33 or 34 keys a slot,
/// so a migration takes 4 batches of 10 (about 1.3 s with the default 250 ms pauses) and moves a
/// slot a third of the ops use. Measured (README, "Keys grouped by slot"): about 13 % of the
/// default run's ops are invoked while their slot migrates on Redis 7.0 and Valkey 9.1; 4 slots
/// gave about 7 %, short of issue 19's 5 % with margin.
pub const SLOTS_DEFAULT: usize = 3;

/// Most spare masters (`--spare-masters`): enough for several empty targets at once.
pub const SPARE_MASTERS_MAX: usize = 8;

/// Why settings cannot make a run; the command line exits 254 for every one of them (except a
/// harness error that is the machine's, not the input's).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A setting's value that cannot be used, or settings that cannot go together; the sentence
    /// names the flag.
    #[error("{0}")]
    Flag(String),
    /// The cluster's shape is beyond the limits, or the server binary is missing or unusable.
    #[error(transparent)]
    Harness(#[from] HarnessError),
}

/// Refuses a setting: returns [`ConfigError::Flag`] with the formatted sentence.
macro_rules! refuse {
    ($($why:tt)*) => {
        return Err(ConfigError::Flag(format!($($why)*)))
    };
}

/// A test run's settings before validation; defaults are `slotcheck test`'s.
#[derive(Debug, Clone)]
pub struct RunConfigBuilder {
    server: ServerKind,
    masters: usize,
    replicas: usize,
    workload: WorkloadKind,
    client: ClientChoice,
    clients: usize,
    keys: usize,
    slots: usize,
    key_dist: KeyDist,
    spare_masters: usize,
    migrate_target: MigrateTarget,
    pipeline: usize,
    txn: workloads::TxnMode,
    rate_per_s: u64,
    duration: Duration,
    seed: Option<u64>,
    output: Option<PathBuf>,
    nemesis: String,
    fault_interval: Duration,
    fault_hold: Duration,
    migrate_interval: Duration,
    migrate_batch: usize,
    migrate_pause: Duration,
    timeout: Duration,
    persistence: Persistence,
    failover: FailoverChoice,
    scenario: Option<String>,
    client_bug: Option<String>,
    server_bug: Option<String>,
}

impl Default for RunConfigBuilder {
    fn default() -> Self {
        RunConfigBuilder {
            server: ServerKind::Redis,
            masters: 3,
            replicas: 0,
            workload: WorkloadKind::Register,
            client: ClientChoice::Slotcheck,
            clients: 20,
            keys: 100,
            slots: SLOTS_DEFAULT,
            key_dist: KeyDist::Uniform,
            spare_masters: 0,
            migrate_target: MigrateTarget::Any,
            pipeline: 1,
            txn: workloads::TxnMode::Multi,
            rate_per_s: 5000,
            duration: Duration::from_secs(30),
            seed: None,
            output: None,
            nemesis: "migrate".into(),
            fault_interval: Duration::from_secs(5),
            fault_hold: Duration::from_secs(4),
            migrate_interval: Duration::from_secs(3),
            migrate_batch: 10,
            migrate_pause: Duration::from_millis(250),
            timeout: Duration::from_secs(1),
            persistence: Persistence::Aof,
            failover: FailoverChoice::default(),
            scenario: None,
            client_bug: None,
            server_bug: None,
        }
    }
}

impl RunConfigBuilder {
    /// A builder with `slotcheck test`'s defaults.
    pub fn new() -> Self {
        Self::default()
    }

    setters! {
        /// The server to test.
        server: ServerKind;
        /// Masters in the cluster (at least 1).
        masters: usize;
        /// Replicas per master.
        replicas: usize;
        /// The workload the clients run.
        workload: WorkloadKind;
        /// The client that carries the workload's commands.
        client: ClientChoice;
        /// Concurrent clients (at least 1).
        clients: usize;
        /// Keys the workload spreads over (1 to [`KEYS_MAX`]).
        keys: usize;
        /// Hash-tag groups the keys fall in, one slot each (0: one slot per key; at most `keys`).
        slots: usize;
        /// How an op picks its key.
        key_dist: KeyDist;
        /// Masters that own no slots at start (at most [`SPARE_MASTERS_MAX`]).
        spare_masters: usize;
        /// Where migrations move a slot (`empty` needs spare masters).
        migrate_target: MigrateTarget;
        /// Logical processes per client worker, their ops sent as one pipeline (1: none).
        pipeline: usize;
        /// How the Elle workloads send a transaction.
        txn: workloads::TxnMode;
        /// Operations per second over all clients; 0 for unpaced.
        rate_per_s: u64;
        /// How long the workload and nemesis run.
        duration: Duration;
        /// Mean time between node faults.
        fault_interval: Duration;
        /// Longest time a fault is held before its inverse.
        fault_hold: Duration;
        /// Mean time between migrations.
        migrate_interval: Duration;
        /// Keys per `MIGRATE` batch (at least 1).
        migrate_batch: usize;
        /// Pause after each migration step.
        migrate_pause: Duration;
        /// Client request timeout (longer than 0).
        timeout: Duration;
        /// What the nodes keep on disk.
        persistence: Persistence;
        /// Which `CLUSTER FAILOVER` the failover nemesis sends.
        failover: FailoverChoice;
    }

    /// The seed of the workload and the nemesis schedule; a random one is drawn (and recorded
    /// in the config) when none is given.
    pub fn seed(&mut self, seed: Option<u64>) -> &mut Self {
        self.seed = seed;
        self
    }

    /// Where the run's files go; `store/<workload>-<server>/<start time>/` when none is given.
    pub fn output(&mut self, output: Option<PathBuf>) -> &mut Self {
        self.output = output;
        self
    }

    /// The nemesis actions as `--nemesis` names them: `all`, `none` or a list of fault names.
    pub fn nemesis(&mut self, text: &str) -> &mut Self {
        self.nemesis = text.to_string();
        self
    }

    /// A named scenario (its preset replaces shape, nemesis, pacing and length).
    pub fn scenario(&mut self, name: Option<&str>) -> &mut Self {
        self.scenario = name.map(str::to_string);
        self
    }

    /// A client bug to inject, by name.
    pub fn client_bug(&mut self, name: Option<&str>) -> &mut Self {
        self.client_bug = name.map(str::to_string);
        self
    }

    /// A server bug to inject through proxies, by name.
    pub fn server_bug(&mut self, name: Option<&str>) -> &mut Self {
        self.server_bug = name.map(str::to_string);
        self
    }

    /// Validates the settings into a [`RunConfig`], in the order the command line always has:
    /// value ranges, the shape, the nemesis (warning of faults `all` implies but this run cannot
    /// do), scenario and bugs, the shape again, then the server binary.
    pub fn build(&self) -> Result<RunConfig, ConfigError> {
        self.check_ranges()?;
        let server = self.server;
        shape(server, self.masters, self.replicas, self.spare_masters).validate()?;
        let mut cfg = RunConfig {
            server,
            masters: self.masters,
            replicas: self.replicas,
            workload: self.workload,
            client: self.client.clone(),
            clients: self.clients,
            keys: self.keys,
            // The types workload names its own keys (the type is the name's first segment), one
            // slot each: no groups, recorded as such.
            slots: match self.workload {
                WorkloadKind::Types => 0,
                _ => self.slots,
            },
            key_dist: self.key_dist,
            spare_masters: self.spare_masters,
            migrate_target: self.migrate_target,
            pipeline: self.pipeline,
            txn: self.txn,
            rate_per_s: self.rate_per_s,
            duration: self.duration,
            seed: self.seed.unwrap_or_else(rand::random),
            output: self.output.clone().unwrap_or_else(|| self.default_output()),
            nemesis: self.nemesis_kinds()?,
            fault_interval_ms: self.fault_interval.as_millis() as u64,
            hold_ms_max: self.fault_hold.as_millis() as u64,
            migrate_interval_ms: self.migrate_interval.as_millis() as u64,
            migrate: MigrateOptions {
                batch_keys: self.migrate_batch,
                step_pause_ms: self.migrate_pause.as_millis() as u64,
                ..MigrateOptions::default()
            },
            timeout_ms: (self.timeout.as_millis() as u64).max(1),
            persistence: self.persistence,
            failover: self.failover,
            client_bug: None,
            server_bug: None,
            scenario: None,
            server_binary: None,
            pika_mode: workloads::codis::MigrationMode::Sync,
            pika_scenario: None,
            existing: None,
        };
        self.apply_cases(&mut cfg)?;
        if let Some(why) = cfg.workload_config().pipeline_refused() {
            refuse!("--pipeline {}: {why}", self.pipeline);
        }
        cfg.workload_config()
            .validate()
            .map_err(|e| ConfigError::Flag(e.to_string()))?;
        // The scenario may have changed the shape: check it again, then find the server.
        shape(server, cfg.masters, cfg.replicas, cfg.spare_masters).validate()?;
        harness::find_server(server)?;
        Ok(cfg)
    }

    /// Refuses values no run can use.
    fn check_ranges(&self) -> Result<(), ConfigError> {
        if self.masters == 0 {
            refuse!("--masters must be at least 1");
        }
        if self.clients == 0 {
            refuse!("--clients must be at least 1");
        }
        if self.keys == 0 || self.keys > KEYS_MAX {
            refuse!(
                "--keys must be 1 to {KEYS_MAX}, not {} (every key is read back after the run, \
                 verified and checked)",
                self.keys
            );
        }
        if self.slots > self.keys {
            refuse!(
                "--slots {} is more than --keys {}: every slot needs a key (0: one slot per key)",
                self.slots,
                self.keys
            );
        }
        if self.spare_masters > SPARE_MASTERS_MAX {
            refuse!(
                "--spare-masters must be 0 to {SPARE_MASTERS_MAX}, not {}",
                self.spare_masters
            );
        }
        if self.migrate_target == MigrateTarget::Empty && self.spare_masters == 0 {
            refuse!(
                "--migrate-target empty moves slots to a master that owns none: add one with \
                 --spare-masters 1 (or more)"
            );
        }
        if self.migrate_batch == 0 {
            refuse!("--migrate-batch must be at least 1");
        }
        if self.timeout.is_zero() {
            refuse!("--timeout must be longer than 0 (e.g. 1s)");
        }
        Ok(())
    }

    /// `store/<workload>-<server>/<start time>/`.
    fn default_output(&self) -> PathBuf {
        let stamp = chrono::Local::now().format("%Y%m%dT%H%M%S%.3f");
        PathBuf::from("store")
            .join(format!("{}-{}", self.workload.name(), self.server))
            .join(stamp.to_string())
    }

    /// Parses the nemesis and drops what this run cannot do: named explicitly, that is an
    /// error; implied by `all`, a warning. Partitions need root and iptables: without them, a
    /// warning.
    fn nemesis_kinds(&self) -> Result<Vec<FaultKind>, ConfigError> {
        let text = &self.nemesis;
        if text.trim().is_empty() {
            refuse!("--nemesis is empty: name the faults, or `none` for a run without any");
        }
        let explicit = !text.split(',').any(|w| w.trim() == "all");
        let kinds = parse_kinds(text).map_err(|e| ConfigError::Flag(format!("--nemesis: {e}")))?;
        let mut keep = Vec::new();
        for kind in kinds {
            match self.cannot(kind) {
                None => keep.push(kind),
                Some(why) if explicit && kind != FaultKind::Partition => {
                    refuse!("--nemesis {kind}: {why}")
                }
                Some(why) => warn(&format!("nemesis {kind} skipped: {why}")),
            }
        }
        Ok(keep)
    }

    /// Why this run cannot do `kind`, if it cannot.
    fn cannot(&self, kind: FaultKind) -> Option<String> {
        let server = self.server;
        if kind.needs_atomic_migration() && server != ServerKind::Valkey {
            Some(format!(
                "atomic slot migration needs Valkey 9, not {server}"
            ))
        } else if kind.needs_replicas() && self.replicas == 0 {
            Some("needs --replicas 1 or more".into())
        } else if kind.is_migration() && self.masters + self.spare_masters < 2 {
            Some("migrations need --masters 2 or more".into())
        } else if kind == FaultKind::Partition {
            crate::nemesis::net::available()
                .err()
                .map(|e| e.to_string())
        } else {
            None
        }
    }

    /// Applies the scenario (its preset replaces shape, nemesis, pacing and length), the client
    /// bug and the server bug to `cfg`, refusing combinations that cannot work.
    fn apply_cases(&self, cfg: &mut RunConfig) -> Result<(), ConfigError> {
        let flag = |e: anyhow::Error| ConfigError::Flag(format!("{e:#}"));
        if let Some(name) = &self.scenario {
            let s: Scenario = name.parse().map_err(ConfigError::Flag)?;
            cfg.apply_scenario(s).map_err(flag)?;
        }
        if let Some(name) = &self.client_bug {
            let bug: ClientBug = name.parse().map_err(ConfigError::Flag)?;
            if bug.needs_replicas() && cfg.replicas == 0 {
                refuse!("--client-bug {bug} needs --replicas 1 or more");
            }
            let timeouts = |k: &FaultKind| {
                matches!(k.name(), "pause" | "kill" | "partition" | "slow" | "strike")
            };
            if bug.needs_timeouts() && !cfg.nemesis.iter().any(timeouts) {
                warn(&format!(
                    "--client-bug {bug} only shows when requests time out: add a fault that \
                     makes them (--nemesis pause, kill, partition or slow)"
                ));
            }
            if let Some(needs) = bug.needs_workload(&cfg.workload_config()) {
                warn(&format!("--client-bug {bug} only shows with {needs}"));
            }
            cfg.client_bug = Some(bug);
        }
        if let Some(name) = &self.server_bug {
            let bug: ServerBug = name.parse().map_err(ConfigError::Flag)?;
            if cfg.nemesis.contains(&FaultKind::Slow) {
                refuse!(
                    "--server-bug {bug} relays requests one by one: it cannot run with --nemesis \
                     slow"
                );
            }
            cfg.server_bug = Some(bug);
        }
        Ok(())
    }
}

/// The cluster shape a run asks for, to validate before anything starts.
fn shape(server: ServerKind, masters: usize, replicas: usize, spare: usize) -> ClusterSpec {
    let mut spec = ClusterSpec::new(server, masters, replicas, "store/cluster");
    spec.spare_masters = spare;
    spec
}

/// The text `--scenario list`, `--client-bug list` or `--server-bug list` asks for, if any does:
/// each name the builder takes, what it does and what it must show.
pub fn listing(
    scenario: Option<&str>,
    client_bug: Option<&str>,
    server_bug: Option<&str>,
) -> Option<String> {
    let mut out = String::new();
    if scenario == Some("list") {
        for s in Scenario::ALL {
            out.push_str(&format!("{s}\n    {}\n", s.description()));
        }
    }
    if client_bug == Some("list") {
        for b in ClientBug::ALL {
            // A bug that breaks linearizability leaves no hop to blame the client by.
            let cause = match b.breaks_linearizability() {
                true => "",
                false => ", cause client",
            };
            out.push_str(&format!(
                "{b}\n    {}; expected: {} (verdict invalid{cause})\n",
                b.description(),
                b.expected()
            ));
        }
    }
    if server_bug == Some("list") {
        for b in ServerBug::ALL {
            out.push_str(&format!(
                "{b}\n    {}; expected: {} (verdict invalid)\n",
                b.description(),
                b.expected()
            ));
        }
    }
    (!out.is_empty()).then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_refused_before_anything_is_looked_up() {
        let refused = |b: &mut RunConfigBuilder| match b.build() {
            Err(ConfigError::Flag(why)) => why,
            other => panic!("expected a refusal, got {other:?}"),
        };
        assert_eq!(
            refused(RunConfigBuilder::new().masters(0)),
            "--masters must be at least 1"
        );
        assert!(refused(RunConfigBuilder::new().keys(KEYS_MAX + 1)).starts_with("--keys must"));
        assert!(refused(RunConfigBuilder::new().nemesis(" ")).starts_with("--nemesis is empty"));
        assert_eq!(
            refused(RunConfigBuilder::new().masters(1).nemesis("migrate")),
            "--nemesis migrate: migrations need --masters 2 or more"
        );
        assert_eq!(
            refused(RunConfigBuilder::new().nemesis("atomic")),
            "--nemesis atomic: atomic slot migration needs Valkey 9, not redis"
        );
        let why = refused(RunConfigBuilder::new().migrate_target(MigrateTarget::Empty));
        assert!(why.contains("--spare-masters 1"), "{why}");
        let why = refused(RunConfigBuilder::new().keys(3).slots(4));
        assert!(why.starts_with("--slots 4 is more than --keys 3"), "{why}");
        let why = refused(RunConfigBuilder::new().spare_masters(SPARE_MASTERS_MAX + 1));
        assert!(why.starts_with("--spare-masters must be"), "{why}");
    }
}
