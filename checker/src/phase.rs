//! Per-slot timelines of migration phases, rebuilt from the nemesis's migration events.
//!
//! A *migration* is one `migrate-start` (classic, one slot; or atomic, a slot range) with every
//! later `migrate-step` / `migrate-end` / `migrate-cancel` / `repair-step` event for its slots.
//! Folding a migration's steps up to a point of the history gives that slot's [`SlotState`]
//! then: which [`Phase`] it was in, between which nodes, which keys had already moved, on which
//! nodes the new owner was set, which keys were stranded or lost. Positions are event indices
//! (line order), not clocks, so an op and a nemesis event with the same timestamp still have an
//! order.

use crate::history::{History, Process};
use crate::op::line_of;
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::fmt;

/// How far a slot's migration had got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// No migration open: one owner everywhere (or none ever recorded).
    Stable,
    /// `migrate-start` recorded; nothing set on any node yet.
    Starting,
    /// The target is `IMPORTING`; the source does not yet redirect.
    Importing,
    /// The source is `MIGRATING` too: keys move in batches and clients get `ASK`.
    Migrating,
    /// The new owner is set on some nodes (target first, then source, then the rest).
    Finalizing,
    /// An abort is setting the slot `STABLE` node by node.
    Aborting,
    /// An abort ended: keys it had moved may be stranded on the target.
    Aborted,
    /// The owner was set before every key moved: the source dropped the keys it still held.
    FinalizedEarly,
    /// The migration stopped on an error; the slot may be left open.
    Failed,
    /// An atomic migration (`CLUSTER MIGRATESLOTS`) is running.
    Atomic,
}

impl Phase {
    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Stable => "stable",
            Phase::Starting => "starting",
            Phase::Importing => "importing",
            Phase::Migrating => "migrating",
            Phase::Finalizing => "finalizing",
            Phase::Aborting => "aborting",
            Phase::Aborted => "aborted",
            Phase::FinalizedEarly => "finalized-early",
            Phase::Failed => "failed",
            Phase::Atomic => "atomic",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One recorded migration event, as a step of its migration.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// Position in `History::events`.
    pub event: usize,
    /// Its `f` (`migrate-step`, `migrate-end`, `repair-step`, ...).
    pub f: String,
    /// Its `value` object (`phase`, `node`, `keys`, ...).
    pub value: Value,
}

impl Step {
    fn str(&self, field: &str) -> Option<&str> {
        self.value.get(field).and_then(Value::as_str)
    }

    fn strings(&self, field: &str) -> impl Iterator<Item = &str> {
        self.value
            .get(field)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
    }
}

/// One migration of a slot range, with its steps in history order (the first is its start).
#[derive(Debug, Clone, PartialEq)]
pub struct Migration {
    /// First and last slot (equal for a classic migration).
    pub slots: (u16, u16),
    /// The source node, when recorded.
    pub from: Option<String>,
    /// The target node, when recorded.
    pub to: Option<String>,
    /// `CLUSTER MIGRATESLOTS` rather than `SETSLOT` + `MIGRATE`.
    pub atomic: bool,
    /// Its events, the first being `migrate-start` (or the first `repair-step` for a slot
    /// migrated by no recorded migration).
    pub steps: Vec<Step>,
    /// Position of its `migrate-end`, once recorded.
    pub end_event: Option<usize>,
}

/// A slot's state at one point of the history: what a reader needs to judge an op on it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SlotState {
    /// The slot.
    pub slot: u16,
    /// How far its migration had got.
    pub phase: Phase,
    /// The migration's source.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The migration's target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<String>,
    /// An atomic migration.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub atomic: bool,
    /// 1-based line of the event that put the slot in this phase (absent: never migrated).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since_line: Option<usize>,
    /// Its time, ns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub since_ns: Option<u64>,
    /// 1-based line of the migration's `migrate-start`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub migration_line: Option<usize>,
    /// Keys moved so far by `MIGRATE` batches.
    pub keys_moved: usize,
    /// Whether the key in question had already been moved (classic migrations).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_moved: Option<bool>,
    /// Whether the key in question was named among stranded or lost keys.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_stranded_or_lost: Option<bool>,
    /// Nodes on which the new owner had been set.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub finalized_on: Vec<String>,
    /// Nodes an abort had set `STABLE`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub stable_on: Vec<String>,
    /// The atomic job's last reported state (`snapshotting`, `cancel-requested`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub atomic_state: Option<String>,
    /// The last repair action on the slot (`finished`, `rolled-back`, `closed`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub repair: Option<String>,
}

impl SlotState {
    fn stable(slot: u16) -> SlotState {
        SlotState {
            slot,
            phase: Phase::Stable,
            from: None,
            to: None,
            atomic: false,
            since_line: None,
            since_ns: None,
            migration_line: None,
            keys_moved: 0,
            key_moved: None,
            key_stranded_or_lost: None,
            finalized_on: Vec::new(),
            stable_on: Vec::new(),
            atomic_state: None,
            repair: None,
        }
    }
}

/// Renders as `slot 7629 migrating 127.0.0.1:7000 -> 127.0.0.1:7001 since line 6 (2 keys
/// moved, this one not yet)`.
impl fmt::Display for SlotState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "slot {} {}", self.slot, self.phase)?;
        if self.atomic {
            write!(f, " (atomic")?;
            if let Some(s) = &self.atomic_state {
                write!(f, ", {s}")?;
            }
            write!(f, ")")?;
        }
        if let (Some(from), Some(to)) = (&self.from, &self.to) {
            write!(f, " {from} -> {to}")?;
        }
        if let Some(line) = self.since_line {
            write!(f, " since line {line}")?;
        }
        let mut notes = Vec::new();
        if self.keys_moved > 0 || self.key_moved.is_some() {
            let mut n = format!("{} keys moved", self.keys_moved);
            match self.key_moved {
                Some(true) => n.push_str(", this one included"),
                Some(false) if self.phase != Phase::Stable => n.push_str(", this one not yet"),
                _ => {}
            }
            notes.push(n);
        }
        if self.key_stranded_or_lost == Some(true) {
            notes.push("this key was stranded or lost".into());
        }
        if !self.finalized_on.is_empty() {
            notes.push(format!("owner set on {}", self.finalized_on.join(", ")));
        }
        if !self.stable_on.is_empty() {
            notes.push(format!("STABLE on {}", self.stable_on.join(", ")));
        }
        if let Some(r) = &self.repair {
            notes.push(format!("repair {r}"));
        }
        if !notes.is_empty() {
            write!(f, " ({})", notes.join("; "))?;
        }
        Ok(())
    }
}

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
        for (event, e) in history.events.iter().enumerate() {
            if e.process != Process::Nemesis {
                continue;
            }
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
                ("migrate-step" | "migrate-end" | PIKA_SYNC | PIKA_ASYNC, Some(slot)) => {
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
                ("repair-step", Some(slot)) => {
                    let i = match latest(&t.by_slot, slot) {
                        Some(i) => i,
                        None => t.start(slot, step.clone()),
                    };
                    let m = &mut t.migrations[i];
                    if m.steps[0].event != event {
                        m.steps.push(step);
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
                state.since_ns = Some(history.events[step.event].time);
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
const PIKA_SYNC: &str = "pika-migrate-sync";
/// The same by `SLOTSMGRTTAGSLOT-ASYNC`.
const PIKA_ASYNC: &str = "pika-migrate-async";

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Event, EventType};
    use serde_json::json;

    /// A history of nemesis events, one per row: `f` and its value object; event `i` is on
    /// line `i + 1`.
    fn nemesis(rows: &[(&str, Value)]) -> History {
        let mut h = History::default();
        for (i, (f, value)) in rows.iter().enumerate() {
            let time = i as u64 * 10;
            let e = Event::new(EventType::Info, Process::Nemesis, f, value.clone(), time);
            h.events.push(e);
        }
        h
    }

    #[test]
    fn classic_migration_phases() {
        let m = |phase: &str, extra: Value| {
            let mut v = json!({"slot": 7, "from": "a:1", "to": "b:2", "phase": phase});
            v.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            v
        };
        //  event  f               phase        extra
        let h = nemesis(&[
            /* 0 */ ("migrate-start", m("stable", json!({}))),
            /* 1 */ ("migrate-step", m("importing", json!({"node": "b:2"}))),
            /* 2 */ ("migrate-step", m("migrating", json!({"node": "a:1"}))),
            /* 3 */
            (
                "migrate-step",
                m("keys-moved", json!({"keys": ["k1"], "moved_total": 1})),
            ),
            /* 4 */ ("migrate-step", m("finalized", json!({"node": "b:2"}))),
            /* 5 */ ("migrate-end", m("stable", json!({"keys_moved": 1}))),
        ]);
        let t = Timeline::new(&h);
        assert_eq!(t.migrations.len(), 1);
        let at = |e: usize, key: &str| t.state_at(&h, 7, e, Some(key));
        assert_eq!(at(0, "k1").phase, Phase::Stable);
        assert_eq!(at(1, "k1").phase, Phase::Starting);
        assert_eq!(at(2, "k1").phase, Phase::Importing);
        assert_eq!(at(3, "k1").phase, Phase::Migrating);
        assert_eq!(at(3, "k1").key_moved, Some(false));
        assert_eq!(at(4, "k1").key_moved, Some(true));
        assert_eq!(at(4, "k2").key_moved, Some(false));
        assert_eq!(at(4, "k1").since_line, Some(3));
        assert_eq!(at(5, "k1").phase, Phase::Finalizing);
        assert_eq!(at(5, "k1").finalized_on, vec!["b:2".to_string()]);
        assert_eq!(at(6, "k1").phase, Phase::Stable);
        assert_eq!(t.state_at(&h, 8, 6, None).phase, Phase::Stable);
        assert_eq!(
            at(4, "k1").to_string(),
            "slot 7 migrating a:1 -> b:2 since line 3 (1 keys moved, this one included)"
        );
        let phases: Vec<Phase> = t.phases_of(&h, 7, 64).iter().map(|s| s.phase).collect();
        use Phase::*;
        assert_eq!(
            phases,
            vec![Starting, Importing, Migrating, Finalizing, Stable]
        );
    }

    #[test]
    fn pika_migrations_open_between_begin_and_end() {
        let m = |phase: &str, outcome: Option<&str>| {
            let mut v = json!({"slot": 7, "from": "a:1", "to": "b:2", "phase": phase});
            if let Some(o) = outcome {
                v["outcome"] = json!(o);
            }
            v
        };
        let h = nemesis(&[
            /* 0 */ (PIKA_SYNC, m("begin", None)),
            /* 1 */ (PIKA_SYNC, m("end", Some("done"))),
            /* 2 */ (PIKA_ASYNC, m("begin", None)),
            /* 3 */ (PIKA_ASYNC, m("end", Some("stuck"))),
        ]);
        let t = Timeline::new(&h);
        assert_eq!(t.migrations.len(), 2);
        let at = |e: usize| t.state_at(&h, 7, e, None).phase;
        assert_eq!(at(0), Phase::Stable);
        assert_eq!(at(1), Phase::Migrating);
        assert_eq!(at(2), Phase::Stable);
        assert_eq!(at(3), Phase::Migrating);
        assert_eq!(at(4), Phase::Migrating, "a stuck migration stays open");
    }

    #[test]
    fn abort_early_finalize_atomic_and_repair() {
        let h = nemesis(&[
            /* 0 */
            (
                "migrate-start",
                json!({"slot": 1, "from": "a", "to": "b", "phase": "stable"}),
            ),
            /* 1 */
            (
                "migrate-step",
                json!({"slot": 1, "phase": "keys-moved", "keys": ["x"]}),
            ),
            /* 2 */
            (
                "migrate-step",
                json!({"slot": 1, "phase": "stable", "node": "b"}),
            ),
            /* 3 */
            (
                "migrate-end",
                json!({"slot": 1, "phase": "aborted", "stranded_keys": ["x"]}),
            ),
            /* 4 */
            (
                "migrate-start",
                json!({"slot": 2, "from": "a", "to": "b", "phase": "stable"}),
            ),
            /* 5 */
            (
                "migrate-step",
                json!({"slot": 2, "phase": "finalized", "early": true, "node": "b"}),
            ),
            /* 6 */
            (
                "migrate-step",
                json!({"slot": 2, "phase": "keys-lost", "lost_keys": ["y"]}),
            ),
            /* 7 */
            (
                "migrate-start",
                json!({"slot": 10, "from": "a", "to": "b", "phase": "stable", "mode": "atomic", "slots": [10, 20]}),
            ),
            /* 8 */
            (
                "migrate-step",
                json!({"slot": 10, "phase": "atomic-progress", "state": "snapshotting", "mode": "atomic"}),
            ),
            /* 9 */ ("migrate-cancel", json!({"node": "a", "phase": "requested"})),
            /* 10 */
            (
                "migrate-end",
                json!({"slot": 10, "phase": "atomic-cancelled", "mode": "atomic"}),
            ),
            /* 11 */
            (
                "repair-step",
                json!({"slot": 1, "phase": "finished", "to": "b"}),
            ),
        ]);
        let t = Timeline::new(&h);
        let s = t.state_at(&h, 1, 4, Some("x"));
        assert_eq!(
            (s.phase, s.key_stranded_or_lost),
            (Phase::Aborted, Some(true))
        );
        assert_eq!(s.stable_on, vec!["b".to_string()]);
        let s = t.state_at(&h, 2, 7, Some("y"));
        assert_eq!(
            (s.phase, s.key_stranded_or_lost),
            (Phase::FinalizedEarly, Some(true))
        );
        let s = t.state_at(&h, 15, 9, Some("z"));
        assert_eq!(
            (s.phase, s.atomic, s.atomic_state.as_deref()),
            (Phase::Atomic, true, Some("snapshotting"))
        );
        assert_eq!(s.key_moved, None);
        let s = t.state_at(&h, 20, 10, None);
        assert_eq!(s.atomic_state.as_deref(), Some("cancel-requested"));
        assert_eq!(t.state_at(&h, 20, 11, None).phase, Phase::Stable);
        assert_eq!(t.state_at(&h, 21, 11, None).migration_line, None);
        let s = t.state_at(&h, 1, 12, None);
        assert_eq!(
            (s.phase, s.repair.as_deref()),
            (Phase::Stable, Some("finished"))
        );
    }
}
