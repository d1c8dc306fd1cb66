//! Classic migration of many slots, a window of them at a time, over one connection per node.
//!
//! The steps and the events are those of [`super::migrate_slot`] for every slot
//! (`migrate-start`, `importing`, `migrating`, `keys-moved` per batch, `finalized` on the target
//! and the source, `migrate-end`), but each step goes out for every slot of the window in one
//! pipeline: `SETSLOT IMPORTING` for all of them to the target, `SETSLOT MIGRATING` for all to
//! the source, then rounds of one `MIGRATE` (plus the `GETKEYSINSLOT` that fetches that slot's
//! next batch) per slot still holding keys, then `SETSLOT NODE` for all of them to the target,
//! the source and every other master. A window of 1 is the classic one-slot-at-a-time order of
//! `redis-cli --cluster reshard`, without its per-slot connection and round-trip costs.
//!
//! Why windows: a server saves its cluster config (`nodes.conf`) once per event-loop iteration
//! that changed it, so every `SETSLOT` sent alone costs a config save. Valkey 9 saves by writing a
//! temporary file and renaming it over `nodes.conf` (and logs each `SETSLOT`), which on ext4 waits
//! for the new file's data to reach the disk; Redis 7.0 rewrites the file in place. A slot needs
//! at least four `SETSLOT`s (importing, migrating, node on target and source) plus one per other
//! master, so for slots holding few keys the saves are most of the time. Pipelined, a window of
//! W slots costs each node one save per step instead of W.

use super::commands::{keys_in_slot_cmd, migrate_cmd, setslot, split_addr};
use super::{MigrateError, MigrateOptions, Migration, Notes, Peer};
use crate::harness::{Admin, HarnessError};
use serde_json::json;
use std::time::Instant;
use workloads::Recorder;

/// One slot of the window.
struct Open {
    slot: u16,
    notes: Notes,
    /// The next batch, fetched by the previous round's pipeline; `None` before the first round.
    next: Option<Vec<String>>,
    moved: usize,
    batches: usize,
}

/// Moves `slots` from `source` to `target`, `window` slots at a time (in the order given), and
/// tells `others` the new owner; returns one [`Migration`] per slot. A slot that still holds keys
/// after `opts.batches_max` batches fails the run with [`MigrateError::NotDraining`]; any failure
/// leaves the window's slots open, as a crashed `redis-cli` would (`repair` closes them).
/// `opts.step_pause_ms` is not used: this driver is for moving slots fast.
pub async fn migrate_slots(
    recorder: &Recorder,
    slots: &[u16],
    source: &Peer,
    target: &Peer,
    others: &[Peer],
    opts: &MigrateOptions,
    window: usize,
) -> Result<Vec<Migration>, MigrateError> {
    assert!(window > 0, "a window holds at least one slot");
    let Some(&first) = slots.first() else {
        return Ok(Vec::new());
    };
    let mut conns = Conns::connect(first, source, target, others, opts).await?;
    let mut done = Vec::with_capacity(slots.len());
    for chunk in slots.chunks(window) {
        let started = Instant::now();
        let mut open: Vec<Open> = chunk
            .iter()
            .map(|&slot| Open {
                slot,
                notes: Notes::new(recorder, slot, &source.addr, &target.addr),
                next: None,
                moved: 0,
                batches: 0,
            })
            .collect();
        conns.open(&open, source, target).await?;
        drain(&mut conns.src, &mut open, &target.addr, opts).await?;
        conns.close(&open, source, target).await?;
        let duration = started.elapsed();
        for o in &open {
            let ms = duration.as_millis() as u64;
            o.notes.note(
                "migrate-end",
                "stable",
                json!({"keys_moved": o.moved, "duration_ms": ms}),
            );
            done.push(Migration {
                slot: o.slot,
                source: source.addr.clone(),
                target: target.addr.clone(),
                keys_moved: o.moved,
                duration,
            });
        }
    }
    Ok(done)
}

/// One connection to each node a window migration talks to.
struct Conns {
    src: Admin,
    dst: Admin,
    /// The other masters.
    rest: Vec<Admin>,
}

impl Conns {
    /// Connects to source, target and `others`; a failure is a `connect` step of slot `first`.
    async fn connect(
        first: u16,
        source: &Peer,
        target: &Peer,
        others: &[Peer],
        opts: &MigrateOptions,
    ) -> Result<Conns, MigrateError> {
        let timeout_ms = opts.response_timeout_ms();
        let connect = |addr: String| async move {
            Admin::connect_with_timeout(&addr, timeout_ms)
                .await
                .map_err(step_err(first, "connect"))
        };
        let src = connect(source.addr.clone()).await?;
        let dst = connect(target.addr.clone()).await?;
        let mut rest = Vec::with_capacity(others.len());
        for other in others {
            rest.push(connect(other.addr.clone()).await?);
        }
        Ok(Conns { src, dst, rest })
    }

    /// Opens the window's slots: `migrate-start`, `IMPORTING` on the target, `MIGRATING` on the
    /// source, each recorded for every slot.
    async fn open(
        &mut self,
        open: &[Open],
        source: &Peer,
        target: &Peer,
    ) -> Result<(), MigrateError> {
        note_all(open, "migrate-start", "stable", json!({}));
        let importing = |s| setslot(s, "IMPORTING", Some(&source.id));
        all(&mut self.dst, open, importing, "importing").await?;
        note_all(
            open,
            "migrate-step",
            "importing",
            json!({"node": target.addr}),
        );
        let migrating = |s| setslot(s, "MIGRATING", Some(&target.id));
        all(&mut self.src, open, migrating, "migrating").await?;
        note_all(
            open,
            "migrate-step",
            "migrating",
            json!({"node": source.addr}),
        );
        Ok(())
    }

    /// Sets the target the owner of the window's slots on the target, the source (each
    /// recorded) and the other masters.
    async fn close(
        &mut self,
        open: &[Open],
        source: &Peer,
        target: &Peer,
    ) -> Result<(), MigrateError> {
        let node = |s| setslot(s, "NODE", Some(&target.id));
        all(&mut self.dst, open, node, "node-target").await?;
        note_all(
            open,
            "migrate-step",
            "finalized",
            json!({"node": target.addr}),
        );
        all(&mut self.src, open, node, "node-source").await?;
        note_all(
            open,
            "migrate-step",
            "finalized",
            json!({"node": source.addr}),
        );
        for admin in self.rest.iter_mut() {
            all(admin, open, node, "node-other").await?;
        }
        Ok(())
    }
}

/// Records event `f` in `phase` with `extra` for every slot of the window.
fn note_all(open: &[Open], f: &str, phase: &str, extra: serde_json::Value) {
    for o in open {
        o.notes.note(f, phase, extra.clone());
    }
}

/// Maps a node's error to a failed `step` of `slot`.
fn step_err(slot: u16, step: &'static str) -> impl Fn(HarnessError) -> MigrateError {
    move |source| MigrateError::Step { slot, step, source }
}

/// Sends `cmd(slot)` for every slot of `open` to `admin` in one pipeline.
async fn all(
    admin: &mut Admin,
    open: &[Open],
    cmd: impl Fn(u16) -> redis::Cmd,
    step: &'static str,
) -> Result<(), MigrateError> {
    let mut pipe = redis::pipe();
    for o in open {
        pipe.add_command(cmd(o.slot));
    }
    admin
        .pipe::<()>(&pipe)
        .await
        .map_err(step_err(open[0].slot, step))
}

/// Moves every key of the window's slots: rounds of one pipeline to the source holding, for each
/// slot with keys left, its next `MIGRATE` and the `GETKEYSINSLOT` for the batch after it.
async fn drain(
    src: &mut Admin,
    open: &mut [Open],
    target_addr: &str,
    opts: &MigrateOptions,
) -> Result<(), MigrateError> {
    let (host, port) = split_addr(target_addr);
    // The first batch of every slot.
    let mut pipe = redis::pipe();
    for o in open.iter() {
        pipe.add_command(keys_in_slot_cmd(o.slot, opts.batch_keys));
    }
    let first: Vec<Vec<String>> = src
        .pipe(&pipe)
        .await
        .map_err(step_err(open[0].slot, "getkeysinslot"))?;
    for (o, keys) in open.iter_mut().zip(first) {
        o.next = Some(keys);
    }
    loop {
        let busy: Vec<usize> = (0..open.len())
            .filter(|&i| open[i].next.as_ref().is_some_and(|k| !k.is_empty()))
            .collect();
        let Some(&first_busy) = busy.first() else {
            return Ok(());
        };
        let mut pipe = redis::pipe();
        let mut sent: Vec<Vec<String>> = Vec::with_capacity(busy.len());
        for &i in &busy {
            let o = &mut open[i];
            if o.batches >= opts.batches_max {
                return Err(MigrateError::NotDraining {
                    slot: o.slot,
                    batches: o.batches,
                });
            }
            let keys = o.next.take().unwrap_or_default();
            let migrate = migrate_cmd(host, port, opts.migrate_timeout_ms, false, &keys);
            pipe.add_command(migrate).ignore();
            pipe.add_command(keys_in_slot_cmd(o.slot, opts.batch_keys));
            sent.push(keys);
        }
        let next: Vec<Vec<String>> = src
            .pipe(&pipe)
            .await
            .map_err(step_err(open[first_busy].slot, "migrate"))?;
        for ((&i, keys), following) in busy.iter().zip(sent).zip(next) {
            let o = &mut open[i];
            o.moved += keys.len();
            o.notes.note(
                "migrate-step",
                "keys-moved",
                json!({"keys": keys, "batch": o.batches, "moved_total": o.moved}),
            );
            o.batches += 1;
            o.next = Some(following);
        }
    }
}
