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

/// Builds the history. Each event's time is its position: these formats list events in the
/// order they happened, and distinct times keep touching intervals apart exactly as the order
/// says. Older Jepsen and Knossos histories reuse a process number after an `info`; such a
/// process continues under a fresh number above every number in the file, as slotcheck's own
/// clients do.
pub(crate) fn build(raw: Vec<RawEvent>) -> History {
    let fresh_base = raw
        .iter()
        .filter_map(|e| e.process)
        .max()
        .map_or(0, |p| p + 1);
    let mut next_fresh = fresh_base;
    // Per source process: (current number, retired by an `info`).
    let mut current: HashMap<u64, (u64, bool)> = HashMap::new();
    let mut history = History::default();
    for (position, e) in raw.into_iter().enumerate() {
        let process = match e.process {
            None => Process::Nemesis,
            Some(p) => {
                let slot = current.entry(p).or_insert((p, false));
                if slot.1 && e.kind == EventType::Invoke {
                    *slot = (next_fresh, false);
                    next_fresh += 1;
                }
                if e.kind == EventType::Info {
                    slot.1 = true;
                }
                Process::Client(slot.0)
            }
        };
        let mut event = Event::new(e.kind, process, &e.f, e.value, position as u64);
        event.key = e.key;
        event.error = e.error;
        history.events.push(event);
        history.lines.push(e.line);
    }
    debug_assert_eq!(history.events.len(), history.lines.len());
    history
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
