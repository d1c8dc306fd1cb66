//! Classic migration of one slot, one step at a time, every step written to the history.
//!
//! The steps are those of `redis-cli --cluster reshard`: `SETSLOT IMPORTING` on the target,
//! `SETSLOT MIGRATING` on the source, `GETKEYSINSLOT` + `MIGRATE ... KEYS` in batches, then
//! `SETSLOT NODE` on the target, the source and every other master. Pauses between steps make
//! the half-migrated states last long enough for clients to meet `ASK` and `TRYAGAIN`.

use super::commands::{
    count_keys_in_slot, keys_in_slot, keys_in_slot_cmd, migrate_cmd, setslot, split_addr,
    tell_others,
};
use super::{MigrateError, MigrateOptions, Migration, Notes, Peer};
use crate::harness::{Admin, HarnessError};
use serde_json::json;
use std::time::{Duration, Instant};
use workloads::Recorder;

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
/// (see [`super::interrupt`]). Dropping it leaves the slot open, as a crashed `redis-cli` would;
/// [`super::repair::repair`] closes it.
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
