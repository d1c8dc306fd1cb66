//! Coverage: how much of a run met the cluster's moving parts, so that a valid verdict can be
//! read for what it is worth (a run whose ops never met a migrating slot proves little).
//!
//! Counted over client ops ([`Coverage`]): the nemesis's events are not ops, and final reads
//! (process numbers from [`FINAL_READ_PROCESS_BASE`], run after the nemesis healed everything)
//! are counted apart in `final_reads` and in no other number.
//!
//! An op is *invoked while its slot was migrating* when its slot (the event's `slot`, else the
//! slot of its first hop, else the slot another op on its key recorded, as for a read that timed
//! out before any node answered; an op with none of these counts as `no_slot`, as every op of an
//! imported Jepsen history does: its keys never lived in a cluster) has a migration in the
//! [`Timeline`] whose window holds the op's invocation. A window runs from the event that opened
//! the migration (`migrate-start`, classic or atomic, a PikiwiDB `begin`, or a repair step on a
//! slot no migration opened) to the event that ended it (`migrate-end` of any phase: `stable`,
//! `aborted`, `failed`, `atomic-done`, ...); a migration never ended runs until the timeline puts
//! its slot back `stable` (a repair that finished, rolled back or closed it), else to the end of
//! the history. Positions are event indices (line order), as everywhere in the timeline: an op
//! invoked on the line after `migrate-start` is in the window, one invoked on the line before is
//! not, whatever their timestamps. A reduced history (the streaming check's) compares the same
//! positions: its events keep theirs ([`History::indices`]), and the plain ops it left out are
//! counted from [`PlainOps`] ([`coverage_with`]).

use crate::history::{History, RedirectKind};
use crate::op::Op;
use crate::phase::{Phase, Timeline};
use std::collections::HashMap;

mod plain;

pub use crate::report::{BatchCoverage, Coverage, TxnCoverage};
pub use plain::PlainOps;

/// The first process number of the final reads (slotcheck's workloads read every key once after
/// the run with processes from here on; `workloads::FINAL_READ_PROCESS_BASE` is the same).
pub const FINAL_READ_PROCESS_BASE: u64 = 1 << 32;

/// The coverage of `ops` (a history's client ops) against the migrations of `timeline`.
pub fn coverage(history: &History, ops: &[Op], timeline: &Timeline) -> Coverage {
    coverage_with(history, ops, &PlainOps::default(), timeline)
}

/// The slot each key's op invoked last recorded, among `ops` and `plain`'s.
fn key_slots<'a>(ops: &'a [Op], plain: &'a PlainOps) -> HashMap<&'a str, u16> {
    let mut last: HashMap<&str, (usize, u16)> = HashMap::new();
    let recorded = ops
        .iter()
        .filter_map(|op| Some((op.key.as_deref()?, op.invoke_event, op.slot?)));
    for (key, event, slot) in recorded.chain(plain.last_slots()) {
        let at = last.entry(key).or_insert((event, slot));
        if event >= at.0 {
            *at = (event, slot);
        }
    }
    last.into_iter().map(|(k, (_, slot))| (k, slot)).collect()
}

/// [`coverage`] of a reduced history's `ops` and the ops it left out (`plain`), which counts
/// as the whole history's would.
pub fn coverage_with(
    history: &History,
    ops: &[Op],
    plain: &PlainOps,
    timeline: &Timeline,
) -> Coverage {
    let mut c = Coverage::default();
    let key_slots = key_slots(ops, plain);
    // Each entry stands for `n` ops whose invocations no nemesis event separates.
    let unslotted = plain
        .unslotted()
        .map(|(at, key, n)| (at, key.and_then(|k| key_slots.get(k).copied()), n));
    let slotted = plain.slotted().map(|(at, s, n)| (at, Some(s), n));
    for (at, slot, n) in slotted.chain(unslotted) {
        c.ops += n;
        match slot {
            Some(slot) => {
                let migrating = in_migration(history, timeline, slot, at);
                c.in_migration += n * u64::from(migrating);
            }
            None => c.no_slot += n,
        }
    }
    for op in ops {
        if op.process >= FINAL_READ_PROCESS_BASE {
            c.final_reads += 1;
            continue;
        }
        c.ops += 1;
        let slot = op
            .slot
            .or_else(|| op.redirects.first().map(|r| r.slot))
            .or_else(|| key_slots.get(op.key.as_deref()?).copied());
        let migrating = match slot {
            Some(slot) => in_migration(history, timeline, slot, op.invoke_event),
            None => {
                c.no_slot += 1;
                false
            }
        };
        c.in_migration += u64::from(migrating);
        let redirected = !op.redirects.is_empty();
        c.redirected += u64::from(redirected);
        for hop in &op.redirects {
            c.hops.add(hop.kind);
        }
        if let Some(kind) = op.batch {
            let b = c.batches.entry(kind).or_default();
            b.ops += 1;
            b.redirected += u64::from(redirected);
        }
        if op.f == "txn" {
            let met = op
                .redirects
                .iter()
                .any(|h| matches!(h.kind, RedirectKind::Ask | RedirectKind::TryAgain));
            c.txn.ops += 1;
            c.txn.met_ask_or_tryagain += u64::from(met);
            c.txn.in_migration += u64::from(migrating);
        }
    }
    debug_assert!(c.in_migration + c.no_slot <= c.ops);
    debug_assert!(c.redirected <= c.ops && c.hops.total() >= c.redirected);
    c
}

/// Whether `slot` was inside a migration window (module doc) just before event `event`.
pub fn in_migration(history: &History, timeline: &Timeline, slot: u16, event: usize) -> bool {
    let Some(m) = timeline
        .migrations_of(slot)
        .filter(|m| m.steps[0].event < event)
        .last()
    else {
        return false;
    };
    match m.end_event {
        Some(end) => event < end,
        // Not ended: open until a step put the slot back stable (a repair).
        None => timeline.state_at(history, slot, event, None).phase != Phase::Stable,
    }
}

#[cfg(test)]
mod tests;
