//! The record of one nemesis step against pika servers (what it did, when, how it ended) and the
//! bounds migrations run under.

use std::time::Duration;

use serde_json::{json, Value};

/// Bounds and batch sizes of a migration.
#[derive(Debug, Clone)]
pub struct MigrateOptions {
    /// The whole migration of one slot must end by then, or it is reported stuck.
    pub deadline: Duration,
    /// A migration whose command has failed on every call for this long is reported stuck.
    pub failing_max: Duration,
    /// How long we wait for any one admin command.
    pub command_timeout: Duration,
    /// pika's own timeout (ms) for talking to the target, the `timeout` argument.
    pub pika_timeout_ms: u64,
    /// `maxbulks` and `maxbytes` of `SLOTSMGRTTAGSLOT-ASYNC`.
    pub max_bulks: u64,
    /// See `max_bulks`.
    pub max_bytes: u64,
    /// `numkeys`: keys per async round.
    pub keys_per_round: u64,
    /// Pause between polls of a migration in progress.
    pub poll: Duration,
}

impl Default for MigrateOptions {
    fn default() -> Self {
        MigrateOptions {
            deadline: Duration::from_secs(60),
            failing_max: Duration::from_secs(2),
            command_timeout: Duration::from_secs(5),
            pika_timeout_ms: 3000,
            max_bulks: 200,
            max_bytes: 32 << 20,
            keys_per_round: 500,
            poll: Duration::from_millis(5),
        }
    }
}

/// Why a step did not finish.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stuck {
    /// The slot (when the step concerns one).
    pub slot: Option<u16>,
    /// The command that did not answer, or the step that did not finish.
    pub command: String,
    /// Keys the source's slot index still held, when known.
    pub remaining: Option<i64>,
    /// How long the step had run.
    pub elapsed: Duration,
    /// The last error seen, if any.
    pub last_error: Option<String>,
}

impl Stuck {
    /// Whether a command never answered: it is named bare, while a step that ran out of time
    /// or failed on every call is named with ` (deadline)` or ` (failing)`.
    pub fn hung(&self) -> bool {
        !self.failing() && !self.command.ends_with(" (deadline)")
    }

    /// Whether the step's command failed on every call until it gave up.
    pub fn failing(&self) -> bool {
        self.command.ends_with(" (failing)")
    }
}

/// How a step ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Done; for a migration, the slot was flipped and `keys_moved` left the source's index.
    Done {
        /// Keys moved (migrations), else 0.
        keys_moved: u64,
    },
    /// Did not finish by its deadline, or a command never answered.
    Stuck(Stuck),
    /// Failed at once with an error (a refused command, a server that did not come back).
    Failed(String),
}

/// One nemesis step, as it went: what the run writes to its history.
#[derive(Debug, Clone)]
pub struct Step {
    /// The verb (`pika-migrate-sync`, `pika-migrate-async`, `pika-cancel`, `pika-reload`, `kill`, `restart`).
    pub f: &'static str,
    /// The server command(s) it used.
    pub command: String,
    /// The slot, for migrations.
    pub slot: Option<u16>,
    /// The source (or the node acted on).
    pub from: Option<String>,
    /// The target, for migrations.
    pub to: Option<String>,
    /// Start, in history time (ns since the recorder's start; since the nemesis's without one).
    pub start_ns: u64,
    /// End, in the same clock.
    pub end_ns: u64,
    /// How it ended.
    pub outcome: Outcome,
}

impl Step {
    /// The step's target as a history `value` (without `phase`).
    pub fn value(&self) -> Value {
        let mut v = json!({"command": self.command});
        if let Some(s) = self.slot {
            v["slot"] = json!(s);
        }
        if let Some(f) = &self.from {
            v[if self.to.is_some() { "from" } else { "node" }] = json!(f);
        }
        if let Some(t) = &self.to {
            v["to"] = json!(t);
        }
        v
    }
}
