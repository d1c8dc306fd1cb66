//! The history format, version 1 (documented in `histories/README.md`): one JSON object per line.
//!
//! Writing uses serde; reading validates field by field so that a bad line is reported with its
//! line number and the name of the field that is wrong, and a final line cut short by a killed
//! run is a warning, not an error.

//!
//! The types of an event live in `event`, the header line in `header`, the checks of an event's
//! fields in `fields`, and the errors in `error`.

use serde_json::Value;
use std::io::{BufRead, Read};
use std::path::Path;

mod error;
mod event;
mod fields;
mod header;

pub use error::HistoryError;
pub use event::{
    Batch, Event, EventType, GaveUp, Process, Redirect, RedirectKind, GAVE_UP_REPLY_BYTES_MAX,
};
pub use header::Header;

/// The format name written in a history's header line.
pub const FORMAT_NAME: &str = "slotcheck-history";
/// The only format version this crate reads and writes.
pub const FORMAT_VERSION: u64 = 1;

/// The longest line a history may hold, newline excluded: a line past it is an error, named by
/// file and line, not a reason to hold gigabytes (a line is held while its JSON is read, so a
/// bound here bounds the reader's memory). Generous: a read of a million-element set is ~8 MB.
pub const LINE_BYTES_MAX: usize = 64 << 20;
/// A line buffer grown past this many bytes (by a long line) is given back after that line.
const LINE_BUFFER_KEPT_BYTES_MAX: usize = 1 << 20;

/// A parsed history: the optional header, the events in order, and warnings met on the way.
#[derive(Debug, Clone, Default)]
pub struct History {
    /// The header line, if the history had one.
    pub header: Option<Header>,
    /// Every event, in line order.
    pub events: Vec<Event>,
    /// Non-fatal problems (a cut-off last line), for the user to see.
    pub warnings: Vec<String>,
    /// The 1-based source line of each event, for imported formats whose events do not sit one
    /// per line after the header; empty when that default holds.
    pub lines: Vec<usize>,
    /// For a history reduced to some of a file's events (the streaming check's, see
    /// `crate::stream`): the position each event has among all of the file's events, increasing,
    /// so that positions compare in line order as in the whole history; empty when every event
    /// is here (each event's position is then its index).
    pub indices: Vec<usize>,
}

impl History {
    /// The position among the file's events of `events[i]` (see [`History::indices`]).
    pub fn index(&self, i: usize) -> usize {
        self.indices.get(i).copied().unwrap_or(i)
    }

    /// Where in `events` the event at position `event` of the file is; `None` when a reduced
    /// history did not keep it (or there is no such event).
    pub fn position(&self, event: usize) -> Option<usize> {
        if self.indices.is_empty() {
            return (event < self.events.len()).then_some(event);
        }
        self.indices.binary_search(&event).ok()
    }

    /// The event at position `event` of the file, if this history holds it.
    pub fn event(&self, event: usize) -> Option<&Event> {
        self.events.get(self.position(event)?)
    }

    /// Reads a history file; see [`History::parse`].
    pub fn read_file(path: &Path) -> Result<History, HistoryError> {
        let name = path.display().to_string();
        let file = std::fs::File::open(path).map_err(|source| HistoryError::Io {
            path: name.clone(),
            source,
        })?;
        History::parse(std::io::BufReader::new(file), &name)
    }

    /// Reads a history already opened once (a pipe or standard input too); see [`History::parse`].
    pub fn read(source: crate::source::Source) -> Result<History, HistoryError> {
        let name = source.name().to_string();
        History::parse(source.into_reader(), &name)
    }

    /// Parses JSON Lines; `name` is used in errors. A last line that is not valid JSON and has no
    /// trailing newline (a killed writer) is skipped with a warning.
    pub fn parse<R: BufRead>(mut reader: R, name: &str) -> Result<History, HistoryError> {
        let mut history = History::default();
        let mut buf = Vec::new();
        let mut line_no = 0usize;
        while next_line(&mut reader, &mut buf, name)? {
            line_no += 1;
            match decode(&buf, name, line_no)? {
                Line::Empty => {}
                Line::Cut(warning) => {
                    history.warnings.push(warning);
                    break;
                }
                Line::Json(value) => history.add(value, name, line_no)?,
            }
        }
        Ok(history)
    }

    /// Adds the object on line `line_no`: the header (on the first line only) or an event.
    fn add(&mut self, value: Value, name: &str, line_no: usize) -> Result<(), HistoryError> {
        let fail = |field: &str, message: String| HistoryError::Field {
            path: name.to_string(),
            line: line_no,
            field: field.to_string(),
            message,
        };
        let Value::Object(obj) = value else {
            return Err(HistoryError::Syntax {
                path: name.to_string(),
                line: line_no,
                message: "expected an object".into(),
            });
        };
        if obj.get("type").and_then(Value::as_str) == Some("header") {
            if !self.events.is_empty() || self.header.is_some() {
                return Err(fail(
                    "type",
                    "a header is allowed only on the first line".into(),
                ));
            }
            self.header = Some(header::parse_header(obj).map_err(|(f, m)| fail(f, m))?);
            return Ok(());
        }
        let event = fields::parse_event(obj).map_err(|(f, m)| fail(f, m))?;
        self.events.push(event);
        Ok(())
    }
}

/// One line of a history as read.
enum Line {
    /// Blank.
    Empty,
    /// The last line, cut short by a killed writer: the warning to give.
    Cut(String),
    /// A whole JSON value.
    Json(Value),
}

/// Reads the next line into `buf`, at most one byte past [`LINE_BYTES_MAX`] (a newline there
/// still ends a line of the most bytes); false at the end of the input.
fn next_line<R: BufRead>(
    reader: &mut R,
    buf: &mut Vec<u8>,
    name: &str,
) -> Result<bool, HistoryError> {
    if buf.capacity() > LINE_BUFFER_KEPT_BYTES_MAX {
        *buf = Vec::new();
    }
    buf.clear();
    let n = reader
        .by_ref()
        .take(LINE_BYTES_MAX as u64 + 1)
        .read_until(b'\n', buf)
        .map_err(|source| HistoryError::Io {
            path: name.to_string(),
            source,
        })?;
    Ok(n > 0)
}

/// Line `line_no` of `name` as text and then JSON; a line with no newline is the last one, and
/// if it does not decode it was cut short (a warning, not an error).
fn decode(buf: &[u8], name: &str, line_no: usize) -> Result<Line, HistoryError> {
    let complete = buf.ends_with(b"\n");
    if !complete && buf.len() > LINE_BYTES_MAX {
        return Err(HistoryError::LineTooLong {
            path: name.to_string(),
            line: line_no,
        });
    }
    let text = match std::str::from_utf8(buf) {
        Ok(text) => text.trim(),
        // A killed writer can stop inside a multi-byte character.
        Err(e) if !complete && e.error_len().is_none() => {
            return Ok(Line::Cut(format!(
                "{name}:{line_no}: last line is cut short (inside a UTF-8 character); skipped"
            )));
        }
        Err(e) => {
            return Err(HistoryError::Encoding {
                path: name.to_string(),
                line: line_no,
                byte: e.valid_up_to() + 1,
            })
        }
    };
    if text.is_empty() {
        return Ok(Line::Empty);
    }
    match serde_json::from_str(text) {
        Ok(v) => Ok(Line::Json(v)),
        Err(e) if !complete => Ok(Line::Cut(format!(
            "{name}:{line_no}: last line is cut short ({e}); skipped"
        ))),
        Err(e) => Err(HistoryError::Syntax {
            path: name.to_string(),
            line: line_no,
            message: e.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests;
