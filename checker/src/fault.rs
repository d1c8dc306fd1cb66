//! Fault intervals, paired from the nemesis's `phase: begin|end` events by their named inverses.
//!
//! A fault is *active* from its verb's `begin` until its inverse's `end`: `kill` and `shutdown`
//! until the same node's `restart`, `pause` until its `resume`, `partition` until a `heal`,
//! `slow` until the same node's `fast`,
//! anything else (`failover`, `repair`, ...) until its own `end`; `heal-all` ends every fault.
//! A fault never ended lasts to the end of the history. An event without `phase` is a fault of
//! no duration. Migration events are not faults (see `phase`). Positions are event indices.

use crate::history::{History, Process};
use crate::op::line_of;
use serde::Serialize;
use serde_json::Value;
use std::fmt;

/// One fault, from its first event to the event that ended it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Fault {
    /// The verb (`kill`, `pause`, `partition`, `failover`, ...).
    pub f: String,
    /// The node it targeted, when it names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// Position of its `begin` event in `History::events`.
    pub begin_event: usize,
    /// 1-based line of that event.
    pub begin_line: usize,
    /// Its time, ns.
    pub begin_ns: u64,
    /// Position of the event that ended it; `None` when it lasted to the end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_event: Option<usize>,
    /// 1-based line of that event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_line: Option<usize>,
    /// Its time, ns.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end_ns: Option<u64>,
    /// The verb's own error, when its `end` reported one (the fault may not have happened).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Fault {
    /// Whether the fault was active at some point of the events `first..=last` (`None`: to the
    /// end of the history).
    pub fn overlaps(&self, first: usize, last: Option<usize>) -> bool {
        let starts_in_time = last.is_none_or(|l| self.begin_event <= l);
        let not_over = self.end_event.is_none_or(|e| e >= first);
        starts_in_time && not_over
    }
}

/// Renders as `kill 127.0.0.1:7002 (lines 9..12)`.
impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.f)?;
        if let Some(node) = &self.node {
            write!(f, " {node}")?;
        }
        match self.end_line {
            Some(end) => write!(f, " (lines {}..{end})", self.begin_line)?,
            None => write!(f, " (from line {}, never ended)", self.begin_line)?,
        }
        if self.error.is_some() {
            write!(f, " [failed]")?;
        }
        Ok(())
    }
}

/// The verb whose `end` ends a fault begun by `f`, and whether it must name the same node.
fn inverse(f: &str) -> (&str, bool) {
    match f {
        "kill" | "shutdown" => ("restart", true),
        "pause" => ("resume", true),
        "partition" => ("heal", false),
        "slow" => ("fast", true),
        other => (other, true),
    }
}

/// Verbs that end faults and are not faults themselves.
const INVERSES: [&str; 5] = ["restart", "resume", "heal", "fast", "heal-all"];

/// Every fault of `history`, in the order they began.
pub fn faults(history: &History) -> Vec<Fault> {
    let mut out: Vec<Fault> = Vec::new();
    for (i, e) in history.events.iter().enumerate() {
        if e.process != Process::Nemesis || e.f.starts_with("migrate") || e.f == "repair-step" {
            continue;
        }
        let event = history.index(i);
        let phase = e.value.get("phase").and_then(Value::as_str);
        let node = e.value.get("node").and_then(Value::as_str);
        let error = e
            .value
            .get("error")
            .and_then(Value::as_str)
            .or(e.error.as_deref());
        let close = |fault: &mut Fault| {
            fault.end_event = Some(event);
            fault.end_line = Some(line_of(history, event));
            fault.end_ns = Some(e.time);
        };
        let open = |fault: &Fault| fault.end_event.is_none();
        // An `end` (or a phase-less event) closes what it is the inverse of.
        if phase != Some("begin") {
            for fault in out.iter_mut().filter(|x| open(x)) {
                let (inv, same_node) = inverse(&fault.f);
                let ends = e.f == "heal-all"
                    || (e.f == inv && (!same_node || fault.node.as_deref() == node));
                // A verb that failed ends its own fault at once.
                let failed_self =
                    e.f == fault.f && error.is_some() && fault.node.as_deref() == node;
                if ends || failed_self {
                    if failed_self {
                        fault.error = error.map(str::to_string);
                    }
                    close(fault);
                }
            }
        }
        if INVERSES.contains(&e.f.as_str()) || phase == Some("end") {
            continue;
        }
        let mut fault = Fault {
            f: e.f.clone(),
            node: node.map(str::to_string),
            begin_event: event,
            begin_line: line_of(history, event),
            begin_ns: e.time,
            end_event: None,
            end_line: None,
            end_ns: None,
            error: None,
        };
        if phase.is_none() {
            close(&mut fault);
        }
        out.push(fault);
    }
    debug_assert!(out
        .iter()
        .all(|f| f.end_event.is_none_or(|e| e >= f.begin_event)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{Event, EventType};
    use serde_json::json;

    fn h(rows: &[(&str, Value)]) -> History {
        let mut h = History::default();
        for (i, (f, v)) in rows.iter().enumerate() {
            let time = i as u64 * 10;
            h.events.push(Event::new(
                EventType::Info,
                Process::Nemesis,
                f,
                v.clone(),
                time,
            ));
        }
        h
    }

    #[test]
    fn pairs_verbs_with_their_inverses() {
        let h = h(&[
            /* line 1 */ ("kill", json!({"node": "a", "phase": "begin"})),
            /* line 2 */ ("kill", json!({"node": "a", "phase": "end"})),
            /* line 3 */ ("pause", json!({"node": "b", "phase": "begin"})),
            /* line 4 */ ("restart", json!({"node": "a", "phase": "begin"})),
            /* line 5 */ ("restart", json!({"node": "a", "phase": "end"})),
            /* line 6 */ ("partition", json!({"phase": "begin"})),
            /* line 7 */ ("failover", json!({"node": "c", "phase": "begin"})),
            /* line 8 */
            (
                "failover",
                json!({"node": "c", "phase": "end", "error": "timeout"}),
            ),
            /* line 9 */ ("heal", json!({"phase": "end"})),
            /* line 10 */ ("migrate-start", json!({"slot": 1})),
            /* line 11 */ ("clock-skew", json!({"node": "d"})),
            /* line 12 */ ("slow", json!({"node": "e", "phase": "begin"})),
            /* line 13 */ ("fast", json!({"node": "f", "phase": "end"})),
            /* line 14 */ ("fast", json!({"node": "e", "phase": "end"})),
        ]);
        let got: Vec<String> = faults(&h).iter().map(ToString::to_string).collect();
        assert_eq!(
            got,
            vec![
                "kill a (lines 1..5)",
                "pause b (from line 3, never ended)",
                "partition (lines 6..9)",
                "failover c (lines 7..8) [failed]",
                "clock-skew d (lines 11..11)",
                "slow e (lines 12..14)",
            ]
        );
        let kill = &faults(&h)[0];
        assert!(kill.overlaps(4, Some(6)));
        assert!(kill.overlaps(0, Some(0)));
        assert!(!kill.overlaps(5, None));
    }
}
