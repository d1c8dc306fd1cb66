//! Slot migrations, one file per variant, every step written to the history as `process:
//! "nemesis"` events that carry `slot`, `from` and `to`.
//!
//! - [`classic`]: one slot at a time, the steps of `redis-cli --cluster reshard` (`migrate_slot`,
//!   and `open_slot` for a migration left under way).
//! - [`window`]: classic migration of many slots, a window of them per pipelined step (bench).
//! - [`atomic`]: Valkey 9's `CLUSTER MIGRATESLOTS`, polled and cancelled.
//! - [`interrupt`]: a classic migration stopped half-way on purpose: `abort`, `finalize_early`.
//! - [`strike`]: a classic migration whose source or target is killed, paused or failed over.
//! - [`repair`]: closes every open slot as `redis-cli --cluster fix` does.
//!
//! Here: what they share: the masters they move between ([`Peer`]), the pacing
//! ([`MigrateOptions`]), what a finished migration did ([`Migration`]), why one stopped
//! ([`MigrateError`]) and the events of one slot's migration (`Notes`); `commands` builds the
//! cluster commands they send.

pub mod atomic;
pub mod classic;
pub(crate) mod commands;
pub mod interrupt;
pub mod repair;
pub mod strike;
pub mod window;

/// The classic one-slot driver, the one most callers mean by "migrate a slot".
pub use classic::{migrate_slot, open_slot, OpenSlot};

use crate::harness::HarnessError;
use serde_json::json;
use std::time::Duration;
use workloads::Recorder;

/// A master as the migration needs it: where to reach it and its cluster id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Peer {
    /// `host:port`.
    pub addr: String,
    /// Cluster node id.
    pub id: String,
}

/// How a classic migration paces itself.
#[derive(Debug, Clone)]
pub struct MigrateOptions {
    /// Keys per `MIGRATE ... KEYS` batch.
    pub batch_keys: usize,
    /// Pause after each step, so that clients hit the intermediate state.
    pub step_pause_ms: u64,
    /// The `MIGRATE` timeout argument.
    pub migrate_timeout_ms: u64,
    /// Upper bound on batches, so a slot that keeps refilling cannot loop forever.
    pub batches_max: usize,
}

impl Default for MigrateOptions {
    fn default() -> Self {
        MigrateOptions {
            batch_keys: 10,
            step_pause_ms: 250,
            migrate_timeout_ms: 5000,
            batches_max: 10_000,
        }
    }
}

/// Slack on top of `MIGRATE`'s own timeout for the response of a connection that sends it.
pub(crate) const MIGRATE_SLACK_MS: u64 = 5000;

impl MigrateOptions {
    /// The response timeout of a connection that sends `MIGRATE`: its timeout plus the slack.
    pub(crate) fn response_timeout_ms(&self) -> u64 {
        self.migrate_timeout_ms + MIGRATE_SLACK_MS
    }
}

/// What one finished migration did, for the run log and the summary.
#[derive(Debug, Clone)]
pub struct Migration {
    /// The slot moved.
    pub slot: u16,
    /// Where it was.
    pub source: String,
    /// Where it went.
    pub target: String,
    /// Keys moved by `MIGRATE`.
    pub keys_moved: usize,
    /// From the first step to the last.
    pub duration: Duration,
}

/// Why a migration stopped half-way.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// A node refused or failed a step.
    #[error("migrating slot {slot} at step {step}: {source}")]
    Step {
        /// The slot being moved.
        slot: u16,
        /// The step that failed.
        step: &'static str,
        /// The node's error.
        source: HarnessError,
    },
    /// The slot kept receiving keys for more than `batches_max` batches.
    #[error("migrating slot {slot}: still not empty after {batches} batches")]
    NotDraining {
        /// The slot being moved.
        slot: u16,
        /// Batches sent.
        batches: usize,
    },
    /// The server does not know the command (atomic migration on Redis 7.0).
    #[error("{what} is unsupported by this server ({addr}): {detail}")]
    Unsupported {
        /// The node that refused.
        addr: String,
        /// The feature, e.g. `CLUSTER MIGRATESLOTS`.
        what: &'static str,
        /// The server's error text.
        detail: String,
    },
    /// A wait ran past its deadline.
    #[error("waiting for {waiting_for}: gave up after {elapsed_ms} ms; last seen: {last_seen}")]
    Timeout {
        /// What we waited for.
        waiting_for: String,
        /// How long we waited.
        elapsed_ms: u64,
        /// The last state observed.
        last_seen: String,
    },
    /// A node answered something we could not parse.
    #[error("unexpected reply from {addr} to {command}: {detail}")]
    Reply {
        /// The node.
        addr: String,
        /// The command sent.
        command: &'static str,
        /// What was wrong with it.
        detail: String,
    },
}

/// Writes one slot's migration events, each carrying `slot`, `from` and `to`.
#[derive(Clone)]
pub(crate) struct Notes {
    recorder: Recorder,
    base: serde_json::Value,
}

impl Notes {
    /// Events about `slot` moving from `from` to `to`.
    pub(crate) fn new(recorder: &Recorder, slot: u16, from: &str, to: &str) -> Notes {
        Notes {
            recorder: recorder.clone(),
            base: json!({"slot": slot, "from": from, "to": to}),
        }
    }

    /// Records event `f` in `phase`, with the fields of `extra` added.
    pub(crate) fn note(&self, f: &str, phase: &str, extra: serde_json::Value) {
        let mut value = self.base.clone();
        value["phase"] = json!(phase);
        if let (Some(v), Some(extra)) = (value.as_object_mut(), extra.as_object()) {
            v.extend(extra.clone());
        }
        self.recorder.nemesis(f, value);
    }
}
