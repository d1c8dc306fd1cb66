//! Classic slot migration, one step at a time, every step written to the history.
//!
//! The steps are those of `redis-cli --cluster reshard`: `SETSLOT IMPORTING` on the target,
//! `SETSLOT MIGRATING` on the source, `GETKEYSINSLOT` + `MIGRATE ... KEYS` in batches, then
//! `SETSLOT NODE` on the target, the source and every other master. Pauses between steps make
//! the half-migrated states last long enough for clients to meet `ASK` and `TRYAGAIN`.

use crate::harness::{Admin, HarnessError};
use serde_json::json;
use std::time::{Duration, Instant};
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

/// Moves `slot` from `source` to `target` with the classic protocol, recording each step.
///
/// `others` are the remaining masters, told the new owner at the end so that they answer
/// `MOVED` with the right address at once.
pub async fn migrate_slot(
    recorder: &Recorder,
    slot: u16,
    source: &Peer,
    target: &Peer,
    others: &[Peer],
    opts: &MigrateOptions,
) -> Result<Migration, MigrateError> {
    let mut open = open_slot(recorder, slot, source, target, opts).await?;
    if !open.move_batches(opts.batches_max).await? {
        return Err(MigrateError::NotDraining {
            slot,
            batches: open.batches,
        });
    }
    open.finalize(others).await
}

/// A classic migration under way: the slot is `IMPORTING` on the target and `MIGRATING` on the
/// source. Finish it with [`OpenSlot::finalize`], or interrupt it with `abort` / `finalize_early`
/// (see `migrate_interrupt`). Dropping it leaves the slot open, as a crashed `redis-cli` would;
/// `migrate_repair::repair` closes it.
pub struct OpenSlot {
    pub(crate) slot: u16,
    pub(crate) source: Peer,
    pub(crate) target: Peer,
    pub(crate) src: Admin,
    pub(crate) dst: Admin,
    pub(crate) notes: Notes,
    pub(crate) opts: MigrateOptions,
    /// Every key moved so far, in `MIGRATE` order.
    pub(crate) moved: Vec<String>,
    /// `MIGRATE` batches sent so far.
    pub(crate) batches: usize,
    pub(crate) started: Instant,
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

/// The `CLUSTER SETSLOT <slot> <state> [<id>]` command.
pub(crate) fn setslot(slot: u16, state: &str, id: Option<&str>) -> redis::Cmd {
    let mut c = redis::cmd("CLUSTER");
    c.arg("SETSLOT").arg(slot).arg(state);
    if let Some(id) = id {
        c.arg(id);
    }
    c
}

/// Opens `slot` for a classic migration: `migrate-start`, then `IMPORTING` on the target and
/// `MIGRATING` on the source, each recorded, then one pause.
pub async fn open_slot(
    recorder: &Recorder,
    slot: u16,
    source: &Peer,
    target: &Peer,
    opts: &MigrateOptions,
) -> Result<OpenSlot, MigrateError> {
    let started = Instant::now();
    let step_err = |step| move |source| MigrateError::Step { slot, step, source };
    let timeout_ms = opts.response_timeout_ms();
    let mut src = Admin::connect_with_timeout(&source.addr, timeout_ms)
        .await
        .map_err(step_err("connect"))?;
    let mut dst = Admin::connect_with_timeout(&target.addr, timeout_ms)
        .await
        .map_err(step_err("connect"))?;
    let notes = Notes::new(recorder, slot, &source.addr, &target.addr);
    notes.note("migrate-start", "stable", json!({}));
    dst.query::<()>(&setslot(slot, "IMPORTING", Some(&source.id)))
        .await
        .map_err(step_err("importing"))?;
    notes.note("migrate-step", "importing", json!({"node": target.addr}));
    src.query::<()>(&setslot(slot, "MIGRATING", Some(&target.id)))
        .await
        .map_err(step_err("migrating"))?;
    notes.note("migrate-step", "migrating", json!({"node": source.addr}));
    let open = OpenSlot {
        slot,
        source: source.clone(),
        target: target.clone(),
        src,
        dst,
        notes,
        opts: opts.clone(),
        moved: Vec::new(),
        batches: 0,
        started,
    };
    open.pause().await;
    Ok(open)
}

impl OpenSlot {
    /// The slot being moved.
    pub fn slot(&self) -> u16 {
        self.slot
    }

    /// Every key moved so far, in order.
    pub fn moved(&self) -> &[String] {
        &self.moved
    }

    pub(crate) async fn pause(&self) {
        // A zero pause must not cost a timer tick (about a millisecond) per step.
        if self.opts.step_pause_ms > 0 {
            tokio::time::sleep(Duration::from_millis(self.opts.step_pause_ms)).await;
        }
    }

    pub(crate) fn step_err(&self, step: &'static str) -> impl Fn(HarnessError) -> MigrateError {
        let slot = self.slot;
        move |source| MigrateError::Step { slot, step, source }
    }

    /// Sends up to `batches` more `MIGRATE` batches (each recorded, each followed by a pause);
    /// returns whether the source is now empty for the slot.
    ///
    /// Without pauses (`step_pause_ms` 0) each `MIGRATE` goes out in one pipeline with the
    /// `GETKEYSINSLOT` that fetches the next batch: one round trip per batch instead of two.
    pub async fn move_batches(&mut self, batches: usize) -> Result<bool, MigrateError> {
        let (host, port) = split_addr(&self.target.addr);
        let (host, port) = (host.to_string(), port.to_string());
        let pipelined = self.opts.step_pause_ms == 0;
        let mut fetched: Option<Vec<String>> = None;
        for _ in 0..batches {
            let keys = match fetched.take() {
                Some(keys) => keys,
                None => keys_in_slot(&mut self.src, self.slot, self.opts.batch_keys)
                    .await
                    .map_err(self.step_err("getkeysinslot"))?,
            };
            if keys.is_empty() {
                return Ok(true);
            }
            let cmd = migrate_cmd(&host, &port, self.opts.migrate_timeout_ms, false, &keys);
            if pipelined {
                let mut pipe = redis::pipe();
                pipe.add_command(cmd).ignore();
                pipe.add_command(keys_in_slot_cmd(self.slot, self.opts.batch_keys));
                let (next,): (Vec<String>,) = self
                    .src
                    .pipe(&pipe)
                    .await
                    .map_err(self.step_err("migrate"))?;
                fetched = Some(next);
            } else {
                self.src
                    .query::<()>(&cmd)
                    .await
                    .map_err(self.step_err("migrate"))?;
            }
            self.moved.extend(keys.iter().cloned());
            self.notes.note(
                "migrate-step",
                "keys-moved",
                json!({"keys": keys, "batch": self.batches, "moved_total": self.moved.len()}),
            );
            self.batches += 1;
            self.pause().await;
        }
        if fetched.is_some_and(|keys| keys.is_empty()) {
            return Ok(true);
        }
        let left = count_keys_in_slot(&mut self.src, self.slot)
            .await
            .map_err(self.step_err("countkeysinslot"))?;
        Ok(left == 0)
    }

    /// Ends the migration: the new owner is set on the target, then the source, then `others`.
    pub async fn finalize(mut self, others: &[Peer]) -> Result<Migration, MigrateError> {
        // The owner changes on the target first (it then serves the slot without ASKING), then on
        // the source (which starts answering MOVED), then everywhere else.
        let node = setslot(self.slot, "NODE", Some(&self.target.id));
        self.dst
            .query::<()>(&node)
            .await
            .map_err(self.step_err("node-target"))?;
        self.notes.note(
            "migrate-step",
            "finalized",
            json!({"node": self.target.addr}),
        );
        self.src
            .query::<()>(&node)
            .await
            .map_err(self.step_err("node-source"))?;
        self.notes.note(
            "migrate-step",
            "finalized",
            json!({"node": self.source.addr}),
        );
        tell_others(self.slot, &self.target.id, others, &self.opts).await?;
        let duration = self.started.elapsed();
        self.notes.note(
            "migrate-end",
            "stable",
            json!({"keys_moved": self.moved.len(), "duration_ms": duration.as_millis() as u64}),
        );
        Ok(Migration {
            slot: self.slot,
            source: self.source.addr.clone(),
            target: self.target.addr.clone(),
            keys_moved: self.moved.len(),
            duration,
        })
    }
}

/// Tells every peer in `others` that `owner_id` now owns `slot`.
pub(crate) async fn tell_others(
    slot: u16,
    owner_id: &str,
    others: &[Peer],
    opts: &MigrateOptions,
) -> Result<(), MigrateError> {
    let step_err = |step| move |source| MigrateError::Step { slot, step, source };
    for other in others {
        let mut admin = Admin::connect_with_timeout(&other.addr, opts.response_timeout_ms())
            .await
            .map_err(step_err("connect"))?;
        admin
            .query::<()>(&setslot(slot, "NODE", Some(owner_id)))
            .await
            .map_err(step_err("node-other"))?;
    }
    Ok(())
}

/// `CLUSTER GETKEYSINSLOT slot count`.
pub(crate) async fn keys_in_slot(
    admin: &mut Admin,
    slot: u16,
    count: usize,
) -> Result<Vec<String>, HarnessError> {
    admin.query(&keys_in_slot_cmd(slot, count)).await
}

/// The `CLUSTER GETKEYSINSLOT slot count` command.
pub(crate) fn keys_in_slot_cmd(slot: u16, count: usize) -> redis::Cmd {
    let mut c = redis::cmd("CLUSTER");
    c.arg("GETKEYSINSLOT").arg(slot).arg(count);
    c
}

/// `CLUSTER COUNTKEYSINSLOT slot`.
pub(crate) async fn count_keys_in_slot(
    admin: &mut Admin,
    slot: u16,
) -> Result<usize, HarnessError> {
    admin
        .query(redis::cmd("CLUSTER").arg("COUNTKEYSINSLOT").arg(slot))
        .await
}

/// `MIGRATE host port "" 0 timeout [REPLACE] KEYS k...`.
pub(crate) fn migrate_cmd(
    host: &str,
    port: &str,
    timeout_ms: u64,
    replace: bool,
    keys: &[String],
) -> redis::Cmd {
    let mut migrate = redis::cmd("MIGRATE");
    migrate.arg(host).arg(port).arg("").arg(0).arg(timeout_ms);
    if replace {
        migrate.arg("REPLACE");
    }
    migrate.arg("KEYS").arg(keys);
    migrate
}

/// Splits `host:port`; the port is kept as text since it only goes back on the wire.
pub(crate) fn split_addr(addr: &str) -> (&str, &str) {
    addr.rsplit_once(':').unwrap_or((addr, "6379"))
}
