//! One thing verify found wrong, before it becomes an [`Anomaly`] with the slot's history.

use checker::phase::Timeline;
use checker::{Anomaly, History};
use serde_json::{json, Value};

/// Phases of a slot's migration history named in a finding's context.
const PHASES_NAMED_MAX: usize = 24;

/// A finding: its class, where, a sample of the keys, a sentence, and the numbers behind it.
#[derive(Debug, Clone)]
pub struct Finding {
    /// Anomaly class (`stranded-key`, `duplicated-key`, `replica-divergence`, ...).
    pub class: &'static str,
    /// The node it is about (`-` for the whole cluster).
    pub node: String,
    /// The slot it is about, if one.
    pub slot: Option<u16>,
    /// A sample of the keys involved.
    pub keys: Vec<String>,
    /// What is wrong, in one sentence a user can act on.
    pub text: String,
    /// Counts and samples, class-specific.
    pub data: Value,
}

impl Finding {
    /// The finding as an anomaly; with a history, its context lists the slot's migrations and
    /// repairs (phase by phase, with the lines that put it there).
    pub fn into_anomaly(self, history: Option<(&History, &Timeline)>) -> Anomaly {
        let mut data = self.data;
        data["node"] = json!(self.node);
        if let Some(slot) = self.slot {
            data["slot"] = json!(slot);
        }
        let context = match (self.slot, history) {
            (Some(slot), Some((h, timeline))) => Some(slot_context(h, timeline, slot)),
            (Some(slot), None) => Some(json!({"slot": slot})),
            _ => None,
        };
        Anomaly {
            class: self.class.to_string(),
            keys: self.keys,
            events: Vec::new(),
            explanation: self.text,
            data,
            context,
            cause: None,
        }
    }
}

/// A finding's context for the report: the slot, a line saying how its migrations ended, and its
/// phases one by one (as the report's "phases of slot" table reads them).
pub fn slot_context(history: &History, timeline: &Timeline, slot: u16) -> Value {
    let phases = timeline.phases_of(history, slot, PHASES_NAMED_MAX);
    let migrations = timeline.migrations_of(slot).count();
    let summary = match phases.last() {
        Some(last) => format!(
            "slot {slot}: {migrations} migrations or repairs in the history; the last left it {} \
             (line {})",
            last.phase,
            last.since_line.map_or("?".to_string(), |l| l.to_string())
        ),
        None => format!("slot {slot}: never migrated in the history"),
    };
    let mut by_slot = serde_json::Map::new();
    by_slot.insert(slot.to_string(), json!(phases));
    json!({"slot": slot, "summary": [summary], "slot_phases": by_slot})
}
