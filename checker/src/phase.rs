//! Per-slot timelines of migration phases, rebuilt from the nemesis's migration events.
//!
//! A *migration* is one `migrate-start` (classic, one slot; or atomic, a slot range) with every
//! later `migrate-step` / `migrate-end` / `migrate-cancel` / `repair-step` event for its slots.
//! Folding a migration's steps up to a point of the history gives that slot's [`SlotState`]
//! then: which [`Phase`] it was in, between which nodes, which keys had already moved, on which
//! nodes the new owner was set, which keys were stranded or lost. Positions are event indices
//! (line order), not clocks, so an op and a nemesis event with the same timestamp still have an
//! order.

use serde::Serialize;
use serde_json::Value;
use std::fmt;

mod timeline;

pub use timeline::Timeline;

/// How far a slot's migration had got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
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

/// Serialized as its [`name`](Phase::name), the one place a phase's name is spelled.
impl Serialize for Phase {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
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

#[cfg(test)]
mod tests;
