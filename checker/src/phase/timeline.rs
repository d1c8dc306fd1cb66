//! The [`Timeline`]: every migration of a history by slot, folded into a slot's state at any
//! point.

use super::{Migration, Phase, SlotState, Step};
use crate::history::{History, Process};
use crate::op::line_of;
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};

/// Every migration of a history, indexed by slot.
#[derive(Debug, Clone, Default)]
pub struct Timeline {
    /// The migrations, in the order they started.
    pub migrations: Vec<Migration>,
    /// For each slot, the migrations touching it, in order.
    by_slot: HashMap<u16, Vec<usize>>,
}

/// The most recent migration on `slot`'s list.
fn latest(by_slot: &HashMap<u16, Vec<usize>>, slot: u16) -> Option<usize> {
    by_slot.get(&slot).and_then(|v| v.last().copied())
}

impl Timeline {
    /// Rebuilds every migration from the nemesis events of `history`.
    pub fn new(history: &History) -> Timeline {
        let mut t = Timeline::default();
        for (i, e) in history.events.iter().enumerate() {
            if e.process != Process::Nemesis {
                continue;
            }
            let event = history.index(i);
            let step = Step {
                event,
                f: e.f.clone(),
                value: e.value.clone(),
            };
            let slot = e
                .value
                .get("slot")
                .and_then(Value::as_u64)
                .filter(|&s| s < u64::from(crate::slot::SLOT_COUNT))
                .map(|s| s as u16);
            match (e.f.as_str(), slot) {
                ("migrate-start", Some(slot)) => {
                    t.start(slot, step);
                }
                (PIKA_SYNC | PIKA_ASYNC, Some(slot))
                    if e.value.get("phase").and_then(Value::as_str) == Some("begin") =>
                {
                    t.start(slot, step);
                }
                (
                    "migrate-step" | "migrate-end" | "repair-step" | PIKA_SYNC | PIKA_ASYNC,
                    Some(slot),
                ) => {
                    // A repair step joins the slot's latest migration and never ends it.
                    let end = e.f == "migrate-end" || e.f.starts_with("pika-migrate");
                    let i = match latest(&t.by_slot, slot) {
                        Some(i) => i,
                        None => t.start(slot, step.clone()),
                    };
                    let m = &mut t.migrations[i];
                    if m.steps[0].event != event {
                        m.steps.push(step);
                    }
                    if end {
                        m.end_event = Some(event);
                    }
                }
                ("migrate-cancel", _) => {
                    // Names only the source: every open atomic migration from it.
                    let node = e.value.get("node").and_then(Value::as_str);
                    for m in &mut t.migrations {
                        if m.atomic && m.end_event.is_none() && m.from.as_deref() == node {
                            m.steps.push(step.clone());
                        }
                    }
                }
                _ => {}
            }
        }
        t
    }

    /// Opens a migration for `slot` (or the event's `slots` range) and returns its position.
    fn start(&mut self, slot: u16, step: Step) -> usize {
        let range = step
            .value
            .get("slots")
            .and_then(Value::as_array)
            .and_then(|r| Some((r.first()?.as_u64()?, r.get(1)?.as_u64()?)))
            .filter(|&(a, b)| a <= b && b < u64::from(crate::slot::SLOT_COUNT))
            .map_or((slot, slot), |(a, b)| (a as u16, b as u16));
        let i = self.migrations.len();
        for s in range.0..=range.1 {
            self.by_slot.entry(s).or_default().push(i);
        }
        self.migrations.push(Migration {
            slots: range,
            from: step.str("from").map(str::to_string),
            to: step.str("to").map(str::to_string),
            atomic: step.str("mode") == Some("atomic"),
            steps: vec![step],
            end_event: None,
        });
        i
    }

    /// How many migrations touched `slot`.
    pub fn migrations_of(&self, slot: u16) -> impl Iterator<Item = &Migration> {
        self.by_slot
            .get(&slot)
            .into_iter()
            .flatten()
            .map(|&i| &self.migrations[i])
    }

    /// The state of `slot` just before event `event`, as seen by an op on `key` (if given).
    pub fn state_at(
        &self,
        history: &History,
        slot: u16,
        event: usize,
        key: Option<&str>,
    ) -> SlotState {
        let mut state = SlotState::stable(slot);
        let Some(m) = self
            .migrations_of(slot)
            .filter(|m| m.steps[0].event < event)
            .last()
        else {
            return state;
        };
        state.from = m.from.clone();
        state.to = m.to.clone();
        state.atomic = m.atomic;
        state.migration_line = Some(line_of(history, m.steps[0].event));
        let mut moved: BTreeSet<&str> = BTreeSet::new();
        let mut moved_total = 0usize;
        let mut marked: BTreeSet<&str> = BTreeSet::new();
        for step in m.steps.iter().take_while(|s| s.event < event) {
            let before = state.phase;
            apply(&mut state, step, &mut moved, &mut moved_total, &mut marked);
            if state.phase != before || step.event == m.steps[0].event {
                state.since_line = Some(line_of(history, step.event));
                state.since_ns = history.event(step.event).map(|e| e.time);
            }
        }
        state.keys_moved = moved_total.max(moved.len());
        if let Some(key) = key.filter(|_| !m.atomic) {
            state.key_moved = Some(moved.contains(key));
            if !marked.is_empty() {
                state.key_stranded_or_lost = Some(marked.contains(key));
            }
        }
        debug_assert!(state.slot >= m.slots.0 && state.slot <= m.slots.1);
        state
    }

    /// The phases `slot` went through, one state per change, for a report (at most `max`).
    pub fn phases_of(&self, history: &History, slot: u16, max: usize) -> Vec<SlotState> {
        let mut out: Vec<SlotState> = Vec::new();
        for m in self.migrations_of(slot) {
            for step in &m.steps {
                let s = self.state_at(history, slot, step.event + 1, None);
                if out.last().map(|l| (l.phase, l.since_line)) != Some((s.phase, s.since_line))
                    && out.len() < max
                {
                    out.push(s);
                }
            }
        }
        out
    }
}

/// A PikiwiDB migration by `SLOTSMGRTTAGSLOT` (`phase` `begin`, then `end` with an `outcome`):
/// the slot is migrating in between, and stays so if the migration is stuck.
pub(super) const PIKA_SYNC: &str = "pika-migrate-sync";
/// The same by `SLOTSMGRTTAGSLOT-ASYNC`.
pub(super) const PIKA_ASYNC: &str = "pika-migrate-async";

/// Folds one step into `state`; `moved` collects keys moved, `marked` stranded or lost keys.
fn apply<'a>(
    state: &mut SlotState,
    step: &'a Step,
    moved: &mut BTreeSet<&'a str>,
    moved_total: &mut usize,
    marked: &mut BTreeSet<&'a str>,
) {
    let phase = step.str("phase").unwrap_or("");
    let node = step.str("node").map(str::to_string);
    match (step.f.as_str(), phase) {
        ("migrate-start", _) => {
            state.phase = if state.atomic {
                Phase::Atomic
            } else {
                Phase::Starting
            }
        }
        ("migrate-step", "importing") => state.phase = Phase::Importing,
        ("migrate-step", "migrating") => state.phase = Phase::Migrating,
        ("migrate-step", "keys-moved") => {
            state.phase = Phase::Migrating;
            moved.extend(step.strings("keys"));
            if let Some(n) = step.value.get("moved_total").and_then(Value::as_u64) {
                *moved_total = n as usize;
            }
        }
        ("migrate-step", "finalized") => {
            let early = step.value.get("early").and_then(Value::as_bool) == Some(true);
            state.phase = if early {
                Phase::FinalizedEarly
            } else {
                Phase::Finalizing
            };
            marked.extend(step.strings("left_behind_keys"));
            state.finalized_on.extend(node);
        }
        ("migrate-step", "keys-lost") => {
            state.phase = Phase::FinalizedEarly;
            marked.extend(step.strings("lost_keys"));
        }
        ("migrate-step", "stable") => {
            state.phase = Phase::Aborting;
            state.stable_on.extend(node);
        }
        ("migrate-step", p) if p.starts_with("atomic") => {
            state.phase = Phase::Atomic;
            state.atomic_state = step.str("state").map(str::to_string);
        }
        ("migrate-end", "stable" | "atomic-done" | "atomic-cancelled") => {
            state.phase = Phase::Stable;
            state.atomic_state = step.str("state").map(str::to_string);
        }
        ("migrate-end", "aborted") => {
            state.phase = Phase::Aborted;
            marked.extend(step.strings("stranded_keys"));
        }
        ("migrate-end", "finalized-early") => state.phase = Phase::FinalizedEarly,
        ("migrate-end", _) => state.phase = Phase::Failed,
        ("migrate-cancel", _) => state.atomic_state = Some("cancel-requested".into()),
        (PIKA_SYNC | PIKA_ASYNC, "begin") => state.phase = Phase::Migrating,
        (PIKA_SYNC | PIKA_ASYNC, _) => {
            state.phase = match step.str("outcome") {
                Some("done") => Phase::Stable,
                Some("stuck") => Phase::Migrating,
                _ => Phase::Failed,
            }
        }
        ("repair-step", action) => {
            if matches!(action, "finished" | "rolled-back" | "closed") {
                state.phase = Phase::Stable;
            }
            if action == "stranded" {
                marked.extend(step.strings("sample"));
            }
            state.repair = Some(action.to_string());
        }
        _ => {}
    }
}
