//! The reduced history the streaming check keeps for the redirect-aware analysis, so that the
//! analysis needs no second parse of the file into JSON values.
//!
//! Kept whole, as [`Event`]s with their lines and their positions among the file's events
//! ([`History::indices`]): the header, every nemesis event, and both events of every op that is
//! not *plain*. A plain op is an `ok` of a client process below [`FINAL_READ_PROCESS_BASE`],
//! not a `txn`, whose two lines the scanner read and held nothing beyond `index`, `wall`, `node`
//! and `slot` (no redirects, no error, no `batch`, no field it does not know), and whose key is
//! not one the caller wants whole. Of a plain op only what coverage counts is kept
//! ([`PlainOps`]: counted by slot between two nemesis events, less than a byte per op). Every rule of the analysis that reads an op's
//! path, error or outcome reads only ops that are kept; the ops of a key the check did not find
//! valid are kept whole by a second pass that wants that key.

use super::pairing::Invoked;
use super::FileError;
use crate::coverage::{PlainOps, FINAL_READ_PROCESS_BASE};
use crate::history::{Event, EventType, Header, History, HistoryError, Process};
use crate::op::Outcome;
use crate::per_key::TXN;
use std::collections::HashSet;

use super::scan::Shape;

/// What the pairing keeps of a history for the redirect-aware analysis (see the module doc).
#[derive(Default)]
pub(crate) struct Keep {
    /// Keys whose every op is kept whole ("" for keyless ops).
    wanted: HashSet<String>,
    header: Option<Header>,
    /// Kept events: (position among the file's events, line, event), in no order.
    events: Vec<(usize, usize, Event)>,
    plain: PlainOps,
}

/// A finished op as the pairing hands it to [`Keep::op`].
pub(crate) struct Finished<'a> {
    /// The client's process.
    pub process: u64,
    /// Its `f`.
    pub f: &'a str,
    /// Its key ("" for none).
    pub key: &'a str,
    /// How it ended (`Info` if never completed).
    pub outcome: Outcome,
    /// The completion; `None` if never completed.
    pub complete: Option<Completion<'a>>,
}

/// A completion's line as [`Keep::op`] reads it.
pub(crate) struct Completion<'a> {
    /// Its position among the file's events.
    pub event: usize,
    /// Its 1-based line.
    pub line: usize,
    /// The line's bytes, without the newline.
    pub text: &'a [u8],
    /// Which fields beyond the six the line holds ([`Shape::Other`] if the scanner did not take it).
    pub shape: Shape,
    /// Its `slot` field, as the scanner read it.
    pub slot: Option<u16>,
}

impl Keep {
    /// Keeps plain ops compact but those of `wanted` keys.
    pub(crate) fn new(wanted: HashSet<String>) -> Self {
        Keep {
            wanted,
            ..Keep::default()
        }
    }

    /// Keeps the header.
    pub(crate) fn header(&mut self, header: Option<Header>) {
        self.header = header;
    }

    /// Keeps the nemesis event at position `event`, on line `line`.
    pub(crate) fn nemesis(&mut self, event: usize, line: usize, e: Event) {
        debug_assert_eq!(e.process, Process::Nemesis);
        self.plain.nemesis(event);
        self.events.push((event, line, e));
    }

    /// Keeps the finished op `op` invoked by `inv`: as a plain op, or both its events.
    pub(crate) fn op(
        &mut self,
        inv: &Invoked,
        op: Finished<'_>,
        name: &str,
    ) -> Result<(), FileError> {
        let plain = op.outcome == Outcome::Ok
            && op.process < FINAL_READ_PROCESS_BASE
            && op.f != TXN
            && inv.shape != Shape::Other
            && (self.wanted.is_empty() || !self.wanted.contains(op.key));
        if let Some(c) = op.complete {
            if plain && c.shape != Shape::Other {
                self.plain.push(inv.event, inv.key, c.slot.or(inv.slot));
                return Ok(());
            }
            let complete = parse_line(c.text, name, c.line)?;
            self.events.push((c.event, c.line, complete));
        }
        let invoke = match &inv.raw {
            Some(text) => parse_line(text, name, inv.line)?,
            None => {
                let mut e = Event::new(
                    EventType::Invoke,
                    Process::Client(op.process),
                    op.f,
                    inv.value.clone().into_json(),
                    inv.time,
                );
                e.key = inv.key.map(|_| op.key.to_string());
                e
            }
        };
        self.events.push((inv.event, inv.line, invoke));
        Ok(())
    }

    /// The reduced history, its events in line order, and the plain ops (without key names).
    pub(crate) fn finish(mut self) -> (History, PlainOps) {
        self.events.sort_unstable_by_key(|&(event, _, _)| event);
        let mut history = History {
            header: self.header,
            ..History::default()
        };
        for (event, line, e) in self.events {
            history.indices.push(event);
            history.lines.push(line);
            history.events.push(e);
        }
        (history, self.plain)
    }
}

/// The event on line `line` of `name`, whose text is `text`.
pub(super) fn parse_line(text: &[u8], name: &str, line: usize) -> Result<Event, FileError> {
    let one = History::parse(text, name).map_err(|e| e.at_line(line))?;
    one.events.into_iter().next().ok_or_else(|| {
        FileError::History(HistoryError::Syntax {
            path: name.to_string(),
            line,
            message: "expected an event".into(),
        })
    })
}
