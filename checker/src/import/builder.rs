//! Turns the events an importer read into a [`History`]: times from positions, processes kept
//! to the format's rule that a process issues nothing after an `info`.

use crate::history::{Event, EventType, History, Process};
use serde_json::Value;
use std::collections::HashMap;

/// One event as an importer read it, before processes are renumbered.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RawEvent {
    /// 1-based source line.
    pub line: usize,
    /// The client process, or `None` for the nemesis.
    pub process: Option<u64>,
    /// Invocation or completion.
    pub kind: EventType,
    /// The operation's name.
    pub f: String,
    /// The key, when the format names one.
    pub key: Option<String>,
    /// Argument or result.
    pub value: Value,
    /// Error text, if any.
    pub error: Option<String>,
}

/// The process of an op map that names none (Elle accepts such maps): every such op belongs to
/// one process, as Elle, which reads the missing process as `nil`, takes them to. It is
/// numbered one above every process the file names (fresh numbers start above it).
pub(crate) const PROCESS_MISSING: u64 = u64::MAX;

/// Per source process: its current number, and whether an invocation is outstanding or an
/// `info` retired it.
#[derive(Debug, Clone, Copy)]
struct Slot {
    number: u64,
    outstanding: bool,
    retired: bool,
}

/// Builds the history. Each event's time is its position: these formats list events in the
/// order they happened, and distinct times keep touching intervals apart exactly as the order
/// says. Older Jepsen and Knossos histories reuse a process number after an `info`; such a
/// process continues under a fresh number above every number in the file, as slotcheck's own
/// clients do. A completion with no invocation outstanding on its process (Elle's tests and
/// examples list only completions) is an op whose invocation nobody saw: it gets one at the
/// start of the history, under a fresh process of its own, so it is ordered after nothing —
/// as Elle, which draws real-time edges only to invocations it saw, orders it.
pub(crate) fn build(raw: Vec<RawEvent>) -> History {
    let named_max = raw
        .iter()
        .filter_map(|e| e.process)
        .filter(|p| *p != PROCESS_MISSING)
        .max();
    let missing = named_max.map_or(0, |p| p + 1);
    let any_missing = raw.iter().any(|e| e.process == Some(PROCESS_MISSING));
    let mut next_fresh = missing + u64::from(any_missing);
    let mut fresh = || {
        next_fresh += 1;
        next_fresh - 1
    };
    let mut slots: HashMap<u64, Slot> = HashMap::new();
    let mut unseen: Vec<(Event, usize)> = Vec::new();
    let mut events: Vec<(Event, usize)> = Vec::with_capacity(raw.len());
    for e in raw {
        let process = match e.process {
            None => Process::Nemesis,
            Some(p) => {
                let number = if p == PROCESS_MISSING { missing } else { p };
                let slot = slots.entry(p).or_insert(Slot {
                    number,
                    outstanding: false,
                    retired: false,
                });
                if e.kind != EventType::Invoke && !slot.outstanding {
                    let own = Process::Client(fresh());
                    unseen.push((invocation_of(&e, own), e.line));
                    own
                } else {
                    if slot.retired && e.kind == EventType::Invoke {
                        slot.number = fresh();
                    }
                    slot.outstanding = e.kind == EventType::Invoke;
                    slot.retired = e.kind == EventType::Info;
                    Process::Client(slot.number)
                }
            }
        };
        let mut event = Event::new(e.kind, process, &e.f, e.value, 0);
        event.key = e.key;
        event.error = e.error;
        events.push((event, e.line));
    }
    let mut history = History::default();
    for (position, (mut event, line)) in unseen.into_iter().chain(events).enumerate() {
        event.time = position as u64;
        history.events.push(event);
        history.lines.push(line);
    }
    debug_assert_eq!(history.events.len(), history.lines.len());
    history
}

/// The invocation of completion `e`, which has none: its value with reads not yet known.
fn invocation_of(e: &RawEvent, process: Process) -> Event {
    let value = match &e.value {
        _ if e.f == "read" => Value::Null,
        Value::Array(mops) if e.f == "txn" => Value::Array(
            mops.iter()
                .map(|m| match m.as_array().map(Vec::as_slice) {
                    Some([f, k, _]) if matches!(f.as_str(), Some("r" | "read")) => {
                        Value::Array(vec![f.clone(), k.clone(), Value::Null])
                    }
                    _ => m.clone(),
                })
                .collect(),
        ),
        v => v.clone(),
    };
    let mut event = Event::new(EventType::Invoke, process, &e.f, value, 0);
    event.key = e.key.clone();
    event
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(process: u64, kind: EventType) -> RawEvent {
        RawEvent {
            line: 1,
            process: Some(process),
            kind,
            f: "write".into(),
            key: None,
            value: Value::Null,
            error: None,
        }
    }

    #[test]
    fn a_process_reused_after_info_gets_a_fresh_number() {
        use EventType::*;
        let h = build(vec![
            raw(3, Invoke),
            raw(3, Info),
            raw(3, Invoke),
            raw(3, Ok),
            raw(1, Invoke),
        ]);
        let procs: Vec<_> = h.events.iter().map(|e| e.process).collect();
        let c = Process::Client;
        assert_eq!(procs, [c(3), c(3), c(4), c(4), c(1)]);
        let times: Vec<_> = h.events.iter().map(|e| e.time).collect();
        assert_eq!(times, [0, 1, 2, 3, 4]);
    }
}
