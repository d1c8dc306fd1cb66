//! Test helpers: histories written as aligned tables, one event per line; and the brute-force
//! linearizability oracle (`oracle`).
//!
//! ```text
//! process  type    f      key  value   @time  [redirect kinds...]
//! 0        invoke  write  k    1       @10
//! 0        ok      write  k    1       @20    moved ask
//! nemesis  info    kill   -    {}      @15
//! 1        ok      txn    -    []      @30    slot=7 batch=multi ask
//! ```
//! `-` as the key means none; the value is one JSON token without spaces; blank lines and lines
//! starting with `#` are skipped. After the time, `slot=N` sets the event's slot, `batch=KIND`
//! its batch, and any other word is a redirect kind. No header, so event `i` is on line `i + 1`.

use crate::history::{Event, EventType, History, Process, Redirect, RedirectKind};
use crate::model::Model;
use crate::search::Interval;

mod oracle;

pub(crate) use oracle::linearizable;

/// Builds a [`History`] from the table in `text`; panics on a malformed row (tests only).
pub(crate) fn h(text: &str) -> History {
    let mut history = History::default();
    for row in text.lines().map(str::trim) {
        if row.is_empty() || row.starts_with('#') {
            continue;
        }
        let cols: Vec<&str> = row.split_whitespace().collect();
        assert!(cols.len() >= 6, "row needs 6 columns: {row:?}");
        let process = match cols[0] {
            "nemesis" => Process::Nemesis,
            p => Process::Client(p.parse().expect("process")),
        };
        let kind = match cols[1] {
            "invoke" => EventType::Invoke,
            "ok" => EventType::Ok,
            "fail" => EventType::Fail,
            "info" => EventType::Info,
            other => panic!("bad type {other:?} in {row:?}"),
        };
        let value = serde_json::from_str(cols[4]).expect("value is one JSON token");
        let time = cols[5]
            .strip_prefix('@')
            .expect("time is @ns")
            .parse()
            .expect("time");
        let mut event = Event::new(kind, process, cols[2], value, time);
        event.key = (cols[3] != "-").then(|| cols[3].to_string());
        for kind in &cols[6..] {
            if let Some(slot) = kind.strip_prefix("slot=") {
                event.slot = Some(slot.parse().expect("slot=N"));
                continue;
            }
            if let Some(batch) = kind.strip_prefix("batch=") {
                event.batch = Some(serde_json::from_value(batch.into()).expect("batch=KIND"));
                continue;
            }
            let kind = *RedirectKind::ALL
                .iter()
                .find(|k| k.name() == *kind)
                .unwrap_or_else(|| panic!("bad redirect kind {kind:?}"));
            event.redirects.push(Redirect {
                kind,
                slot: 0,
                from: "127.0.0.1:7000".into(),
                to: "127.0.0.1:7001".into(),
            });
        }
        history.events.push(event);
    }
    history
}
