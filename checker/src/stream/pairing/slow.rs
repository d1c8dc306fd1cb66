//! Lines the scanner did not take: read by a serde reader of the usual shape, and failing that
//! by [`History::parse`] on that line alone, which says what is wrong or what the line holds (a
//! header, a nemesis event, a cut-off last line).

use super::{Arg, Ev, Pairing};
use crate::history::{EventType, GaveUp, History, HistoryError, Process, Redirect};
use crate::stream::blocks::Line;
use crate::stream::FileError;
use serde::Deserialize;
use serde_json::Value;
use std::borrow::Cow;

/// One line as the serde reader takes it; anything unusual fails here and goes to the full reader.
#[derive(Deserialize)]
struct JsonLine<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    process: u64,
    #[serde(borrow)]
    f: Cow<'a, str>,
    #[serde(default, borrow)]
    key: Option<Cow<'a, str>>,
    value: Value,
    time: u64,
    #[serde(default)]
    #[allow(dead_code)]
    index: Option<u64>,
    #[serde(default, borrow)]
    #[allow(dead_code)]
    wall: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    #[allow(dead_code)]
    node: Option<Cow<'a, str>>,
    #[serde(default)]
    slot: Option<u16>,
    #[serde(default)]
    redirects: Option<Vec<Redirect>>,
    #[serde(default, borrow)]
    #[allow(dead_code)]
    error: Option<Cow<'a, str>>,
    /// Read to validate it: the register's compact ops carry no redirects.
    #[serde(default)]
    gave_up: Option<GaveUp>,
}

impl Pairing {
    /// Reads a line the scanner did not take: `None` when it holds no client event.
    pub(super) fn slow<'a>(&mut self, line: &Line<'a>) -> Result<Option<Ev<'a>>, FileError> {
        let Ok(text) = std::str::from_utf8(line.text) else {
            // The full reader tells a last line cut inside a character from an invalid one.
            return self.full(line);
        };
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Ok(None);
        }
        let kind = |k: &str| match k {
            "invoke" => Some(EventType::Invoke),
            "ok" => Some(EventType::Ok),
            "fail" => Some(EventType::Fail),
            "info" => Some(EventType::Info),
            _ => None,
        };
        let json = serde_json::from_str::<JsonLine>(trimmed)
            .ok()
            .filter(|l| l.slot.is_none_or(|s| s < 16384))
            .and_then(|l| kind(&l.kind).map(|k| (k, l)))
            .filter(|(k, l)| l.gave_up.is_none() || matches!(k, EventType::Fail | EventType::Info));
        if let Some((k, l)) = json {
            let redirects = l.redirects.unwrap_or_default();
            return Ok(Some(Ev::new(
                k,
                l.process,
                l.f,
                l.key,
                Arg::Json(l.value),
                l.time,
                redirects.iter().map(|r| r.kind).collect(),
            )));
        }
        self.full(line)
    }

    /// Reads `line` with [`History::parse`], alone (with its newline, so that it can tell a
    /// cut-off last line): what is wrong with it, or what it holds.
    fn full<'a>(&mut self, line: &Line<'a>) -> Result<Option<Ev<'a>>, FileError> {
        use std::io::Read as _;
        let newline: &[u8] = if line.newline { b"\n" } else { b"" };
        let one =
            History::parse(line.text.chain(newline), &self.name).map_err(|e| e.at_line(line.no))?;
        if let Some(w) = one.warnings.first() {
            let name = &self.name;
            let at = format!("{name}:{}:", line.no);
            self.report
                .warnings
                .push(w.replace(&format!("{name}:1:"), &at));
            self.done = true;
            return Ok(None);
        }
        if one.header.is_some() {
            if self.event > 0 || self.header_seen {
                return Err(HistoryError::Field {
                    path: self.name.clone(),
                    line: line.no,
                    field: "type".into(),
                    message: "a header is allowed only on the first line".into(),
                }
                .into());
            }
            self.header_seen = true;
            if let Some(keep) = self.keep.as_mut() {
                keep.header(one.header);
            }
            return Ok(None);
        }
        let Some(e) = one.events.into_iter().next() else {
            return Ok(None);
        };
        let Process::Client(process) = e.process else {
            self.report.nemesis_events += 1;
            if let Some(keep) = self.keep.as_mut() {
                keep.nemesis(self.event, line.no, e);
            }
            self.event += 1;
            return Ok(None);
        };
        Ok(Some(Ev::new(
            e.kind,
            process,
            Cow::Owned(e.f),
            e.key.map(Cow::Owned),
            Arg::Json(e.value),
            e.time,
            e.redirects.iter().map(|r| r.kind).collect(),
        )))
    }
}
