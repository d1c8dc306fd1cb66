//! What a workload is configured with: which workload ([`WorkloadKind`]), and how hard, with
//! which client and keys, and within which bounds ([`WorkloadConfig`]), checked before a run.

use crate::bugs::ClientBug;
use crate::executor::{ClientChoice, ClientFactory};
use crate::keys::{KeyDist, KeyNames};
use crate::router::RouterConfig;
use crate::stats::WorkloadError;
use crate::txn::TxnMode;

/// Which workload a run drives: it names the checker's model in the history header.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum WorkloadKind {
    /// Reads, writes and compare-and-sets of integer registers (`GET`, `SET`, `EVAL`).
    #[default]
    Register,
    /// Increments and reads of counters (`INCR`, `GET`): a resent `INCR` shows as a double count.
    Counter,
    /// Every data type, each key written by its own commands ([`crate::types`]): PikiwiDB's
    /// migrations lose or retype some of them.
    Types,
    /// Jepsen's cas-register: the register's reads, writes and compare-and-sets, with values
    /// drawn from `0..=`[`CAS_VALUES_MAX`](crate::register::CAS_VALUES_MAX), so that many
    /// compare-and-sets succeed; checked by the general search (values repeat).
    CasRegister,
    /// Elle's list-append: `RPUSH`, `LRANGE` and transactions of them ([`crate::list_append`]).
    ListAppend,
    /// Elle's rw-register: transactions of `GET`s and `SET`s ([`crate::rw_register`]).
    RwRegister,
}

impl WorkloadKind {
    /// The name in the history header's `workload` field and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            WorkloadKind::Register => "register",
            WorkloadKind::Counter => "counter",
            WorkloadKind::Types => "types",
            WorkloadKind::CasRegister => "cas-register",
            WorkloadKind::ListAppend => "list-append",
            WorkloadKind::RwRegister => "rw-register",
        }
    }

    /// Reads a name [`WorkloadKind::name`] gives.
    pub fn parse(text: &str) -> Option<WorkloadKind> {
        match text {
            "register" => Some(WorkloadKind::Register),
            "counter" => Some(WorkloadKind::Counter),
            "types" => Some(WorkloadKind::Types),
            "cas-register" => Some(WorkloadKind::CasRegister),
            "list-append" => Some(WorkloadKind::ListAppend),
            "rw-register" => Some(WorkloadKind::RwRegister),
            _ => None,
        }
    }

    /// Whether its ops include `MULTI`/`EXEC` transactions (with `--txn multi`).
    pub fn has_transactions(self) -> bool {
        matches!(self, WorkloadKind::ListAppend | WorkloadKind::RwRegister)
    }
}

/// What a workload does, how hard, with which client, and with which bounds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadConfig {
    /// Which workload.
    pub kind: WorkloadKind,
    /// Which client carries its commands.
    pub client: ClientChoice,
    /// Concurrent logical processes (tokio tasks).
    pub clients: usize,
    /// Number of registers or counters (keys).
    pub keys: usize,
    /// Key names are `{key_prefix}{i}`.
    pub key_prefix: String,
    /// Seeds every client's operation choices.
    pub seed: u64,
    /// Per-request timeout; past it the outcome is `info`.
    pub timeout_ms: u64,
    /// Most redirects/retries one operation may follow.
    pub hops_max: u32,
    /// Relative weight of reads.
    pub read_weight: u32,
    /// Relative weight of writes (for the counter: increments).
    pub write_weight: u32,
    /// Relative weight of compare-and-sets (the counter has none).
    pub cas_weight: u32,
    /// Target operations per second over all clients; 0 means as fast as the servers answer.
    pub rate_per_s: u64,
    /// A client bug the workload's routers inject (a test aid, see [`crate::bugs`]); the final
    /// reads never do.
    pub client_bug: Option<ClientBug>,
    /// With a value above 0, each key lives for one epoch of this many ms of history time
    /// ([`KeyNames::epoch_name`](crate::KeyNames::epoch_name)), so a soak can check each epoch's keys as soon as the epoch is over; the
    /// key's slot stays the same from epoch to epoch.
    pub epoch_ms: u64,
    /// First process number (a resumed soak continues above the numbers it already used).
    pub process_base: u64,
    /// Route through this Codis table (PikiwiDB) instead of learning a Redis Cluster slot map;
    /// the seeds are then unused.
    pub codis: Option<crate::codis::CodisRouting>,
    /// Key names with capitals (the `types` workload; the others' keys follow `key_prefix`).
    pub mixed_case: bool,
    /// The keys fall in this many hash-tag groups, one slot each (key `i` in group `i % slots`),
    /// so that a migrating slot holds several keys while clients use them; 0: no tags, every key
    /// hashes on its own name (see [`crate::keys`]).
    pub slots: usize,
    /// How an op picks its key.
    pub key_dist: KeyDist,
    /// Logical processes per client worker, whose ops go out together as one pipeline on one
    /// connection per node (`--pipeline K`); 1: one op at a time, no pipeline.
    pub pipeline: usize,
    /// Relative weight of the register's multi-key ops (`MSET`, `MGET`, `DEL` of 2 to 4 keys of
    /// one slot), among reads, writes and CASes; they need groups (`slots` > 0).
    pub multi_weight: u32,
    /// How the Elle workloads send a transaction: `MULTI`/`EXEC` or one Lua script.
    pub txn: TxnMode,
}

impl Default for WorkloadConfig {
    fn default() -> Self {
        WorkloadConfig {
            kind: WorkloadKind::Register,
            client: ClientChoice::Slotcheck,
            clients: 5,
            keys: 8,
            key_prefix: "register:".into(),
            seed: 0,
            timeout_ms: 1000,
            hops_max: 16,
            read_weight: 50,
            write_weight: 35,
            cas_weight: 15,
            rate_per_s: 0,
            client_bug: None,
            epoch_ms: 0,
            process_base: 0,
            codis: None,
            mixed_case: false,
            slots: 0,
            key_dist: KeyDist::Uniform,
            pipeline: 1,
            multi_weight: 5,
            txn: TxnMode::Multi,
        }
    }
}

impl WorkloadConfig {
    /// Checks that the configuration describes a run.
    pub fn validate(&self) -> Result<(), WorkloadError> {
        let bad = |m: &str| Err(WorkloadError::InvalidConfig(m.to_string()));
        if self.clients == 0 {
            return bad("clients must be at least 1");
        }
        if self.keys == 0 {
            return bad("keys must be at least 1");
        }
        if self.timeout_ms == 0 {
            return bad("timeout_ms must be at least 1");
        }
        if let Some(why) = self.pipeline_refused() {
            return bad(&why);
        }
        let (cas, multi) = match self.kind {
            WorkloadKind::Register => (self.cas_weight as u64, self.multi_weight as u64),
            WorkloadKind::CasRegister => (self.cas_weight as u64, 0),
            _ => (0, 0),
        };
        let total = self.read_weight as u64 + self.write_weight as u64 + cas + multi;
        if total == 0 || total > u32::MAX as u64 {
            return bad("read/write/cas/multi weights must sum to between 1 and u32::MAX");
        }
        let txns = self.kind.has_transactions() && self.txn == TxnMode::Multi;
        let refuses = match (&self.client, &self.codis) {
            (_, Some(_)) => Some("the Codis router"),
            (ClientChoice::RedisRs, _) => Some("the redis-rs client"),
            _ => None,
        };
        if let (true, Some(who)) = (txns, refuses) {
            return Err(WorkloadError::InvalidConfig(format!(
                "{who} does not run MULTI/EXEC transactions, which the {} workload sends; \
                 use --txn lua or another client",
                self.kind.name()
            )));
        }
        Ok(())
    }

    /// Why `--pipeline` cannot run as configured: 0, a workload or client without pipelines
    /// (redis-rs's and Codis routing's pipelines are not under test), or a pipeline bug
    /// without a pipeline; `None` when it can.
    pub fn pipeline_refused(&self) -> Option<String> {
        if self.pipeline == 0 {
            return Some("pipeline must be at least 1".into());
        }
        if self.pipeline == 1 {
            return match self.client_bug {
                Some(bug) if bug.needs_pipeline() => {
                    Some(format!("client bug {bug} needs --pipeline 2 or more"))
                }
                _ => None,
            };
        }
        if !matches!(
            self.kind,
            WorkloadKind::Register | WorkloadKind::CasRegister | WorkloadKind::Counter
        ) {
            let kind = self.kind.name();
            return Some(format!(
                "--pipeline runs the register, cas-register and counter workloads, not {kind}"
            ));
        }
        if self.codis.is_some() {
            return Some("--pipeline is not supported with Codis routing (PikiwiDB)".into());
        }
        match self.client {
            ClientChoice::RedisRs => {
                Some("--pipeline is not supported with --client redis-rs (only slotcheck and the adapters)".into())
            }
            _ => None,
        }
    }

    /// How this configuration names its keys.
    pub fn key_names(&self) -> KeyNames<'_> {
        KeyNames {
            prefix: &self.key_prefix,
            groups: self.slots,
        }
    }

    /// The routing bounds this configuration implies.
    pub fn router_config(&self) -> RouterConfig {
        RouterConfig {
            timeout_ms: self.timeout_ms,
            hops_max: self.hops_max,
            bug: self.client_bug,
            ..RouterConfig::default()
        }
    }

    /// How this workload's processes open their client.
    pub fn factory(&self, seeds: Vec<String>, slots: crate::SharedSlotMap) -> ClientFactory {
        ClientFactory {
            choice: self.client.clone(),
            seeds,
            slots,
            config: self.router_config(),
            codis: self.codis.as_ref().map(|c| c.0.clone()),
        }
    }
}
