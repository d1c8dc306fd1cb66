//! `slotcheck export --edn`: a history as Jepsen's `history.edn`, so that the same run can be
//! fed to Knossos or Elle (and read back by `checker::import` as `jepsen-edn`).
//!
//! One op map per line, in history order, with Jepsen's fields first:
//! `{:type :invoke, :f :write, :value ["r17" 42], :time 1200345, :process 3, :index 0}`.
//! When every client event names a key, values are `jepsen.independent` tuples `[key value]`
//! (a read's invocation is `[key nil]`); otherwise the key rides along as `:key`. Nemesis events
//! are `:process :nemesis` with their value maps. slotcheck's own fields follow as extra keys,
//! which Jepsen's checkers ignore: `:node`, `:slot`, `:redirects` (maps of `:kind`, `:slot`,
//! `:from`, `:to`), `:error`, `:wall`. JSON objects become maps with keyword keys, strings stay
//! strings, `null` is `nil`.
//!
//! Knossos reads a `nil` read as "read nothing", where slotcheck reads it as an absent key, so
//! a verdict that rests on an absent key being read needs slotcheck's register semantics on
//! import (`slotcheck check --model register` keeps them only for slotcheck's own format).

use anyhow::{Context, Result};
use checker::{Event, History, Process};
use serde_json::Value;
use std::io::{BufWriter, Write};
use std::path::Path;

/// Whether `s` can be written as an EDN keyword (`:migrate-start`, `:keys_moved`).
fn keyword_ok(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || "-_*+!?<>=.".contains(c))
}

/// Appends `s` as an EDN string.
fn string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends `s` as a keyword if it can be one, else as a string.
fn keyword(s: &str, out: &mut String) {
    if keyword_ok(s) {
        out.push(':');
        out.push_str(s);
    } else {
        string(s, out);
    }
}

/// Appends `v` as EDN.
pub fn value(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("nil"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                value(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                keyword(k, out);
                out.push(' ');
                value(item, out);
            }
            out.push('}');
        }
    }
}

/// Appends one event as a Jepsen op map (without a newline); `tuples` wraps client values in
/// `[key value]`.
pub fn event(e: &Event, index: usize, tuples: bool, out: &mut String) {
    let kind = serde_json::to_value(e.kind).unwrap_or(Value::Null);
    out.push_str("{:type ");
    keyword(kind.as_str().unwrap_or("info"), out);
    out.push_str(", :f ");
    keyword(&e.f, out);
    out.push_str(", :value ");
    let client = matches!(e.process, Process::Client(_));
    match (&e.key, client && tuples) {
        (Some(key), true) => {
            out.push('[');
            string(key, out);
            out.push(' ');
            value(&e.value, out);
            out.push(']');
        }
        _ => value(&e.value, out),
    }
    out.push_str(&format!(", :time {}, :process ", e.time));
    match e.process {
        Process::Client(p) => out.push_str(&p.to_string()),
        Process::Nemesis => out.push_str(":nemesis"),
    }
    out.push_str(&format!(", :index {index}"));
    if let (Some(key), false) = (&e.key, client && tuples) {
        out.push_str(", :key ");
        string(key, out);
    }
    if let Some(node) = &e.node {
        out.push_str(", :node ");
        string(node, out);
    }
    if let Some(slot) = e.slot {
        out.push_str(&format!(", :slot {slot}"));
    }
    if !e.redirects.is_empty() {
        out.push_str(", :redirects ");
        value(
            &serde_json::to_value(&e.redirects).unwrap_or(Value::Null),
            out,
        );
    }
    if let Some(error) = &e.error {
        out.push_str(", :error ");
        string(error, out);
    }
    if let Some(wall) = &e.wall {
        out.push_str(", :wall ");
        string(wall, out);
    }
    out.push('}');
}

/// Writes `history` as `history.edn` to `out`; returns the number of ops written.
pub fn write_edn<W: Write>(history: &History, out: W) -> std::io::Result<usize> {
    let mut out = BufWriter::new(out);
    let client = || {
        history
            .events
            .iter()
            .filter(|e| matches!(e.process, Process::Client(_)))
    };
    let tuples = client().next().is_some() && client().all(|e| e.key.is_some());
    let mut line = String::new();
    for (index, e) in history.events.iter().enumerate() {
        line.clear();
        event(e, index, tuples, &mut line);
        line.push('\n');
        out.write_all(line.as_bytes())?;
    }
    out.flush()?;
    Ok(history.events.len())
}

/// Reads the slotcheck history at `input` and writes it as `history.edn` at `output`; returns
/// the number of ops written.
pub fn export_file(input: &Path, output: &Path) -> Result<usize> {
    let history =
        History::read_file(input).with_context(|| format!("reading {}", input.display()))?;
    let file =
        std::fs::File::create(output).with_context(|| format!("creating {}", output.display()))?;
    write_edn(&history, file).with_context(|| format!("writing {}", output.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use checker::edn::Reader;
    use serde_json::json;

    #[test]
    fn values_read_back_as_the_same_json() {
        let cases = [
            json!(null),
            json!([null, 4]),
            json!({"slot": 7527, "from": "127.0.0.1:1", "phase": "keys-moved", "keys": ["a\"b", "c\\d\n"]}),
            json!({"not a keyword": 1.5, "x": true}),
        ];
        for v in cases {
            let mut text = String::new();
            value(&v, &mut text);
            let (_, back) = Reader::new(&text).next_value().unwrap().unwrap();
            assert_eq!(back, v, "{text}");
        }
    }

    #[test]
    fn events_are_jepsen_op_maps() {
        let text = r#"{"type":"invoke","process":3,"f":"write","key":"r17","value":42,"time":1200345}
{"type":"ok","process":3,"f":"write","key":"r17","value":42,"time":1350020,"node":"127.0.0.1:21001","slot":1234,"redirects":[{"kind":"ask","slot":1234,"from":"127.0.0.1:21000","to":"127.0.0.1:21001"}]}
{"type":"info","process":"nemesis","f":"migrate-start","value":{"slot":1234},"time":1400000}
"#;
        let h = History::parse(text.as_bytes(), "t").unwrap();
        let mut out = Vec::new();
        assert_eq!(write_edn(&h, &mut out).unwrap(), 3);
        let edn = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = edn.lines().collect();
        assert_eq!(
            lines[0],
            r#"{:type :invoke, :f :write, :value ["r17" 42], :time 1200345, :process 3, :index 0}"#
        );
        assert_eq!(
            lines[1],
            r#"{:type :ok, :f :write, :value ["r17" 42], :time 1350020, :process 3, :index 1, :node "127.0.0.1:21001", :slot 1234, :redirects [{:from "127.0.0.1:21000", :kind "ask", :slot 1234, :to "127.0.0.1:21001"}]}"#
        );
        assert_eq!(
            lines[2],
            r#"{:type :info, :f :migrate-start, :value {:slot 1234}, :time 1400000, :process :nemesis, :index 2}"#
        );
    }
}
