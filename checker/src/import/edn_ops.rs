//! Jepsen-style op maps (`{:process 0, :type :invoke, :f :read, :value nil}`), as read by the
//! EDN reader, into [`RawEvent`]s. Shared by the Jepsen, Knossos and Porcupine kv importers.

use super::builder::{RawEvent, PROCESS_MISSING};
use super::ImportError;
use crate::edn::{EdnError, Reader};
use crate::history::EventType;
use serde_json::Value;

/// Converts one op map read at `line` of `path`.
pub(crate) fn op_from_map(path: &str, line: usize, value: Value) -> Result<RawEvent, ImportError> {
    let field = |field: &str, message: String| ImportError::Field {
        path: path.to_string(),
        line,
        field: field.to_string(),
        message,
    };
    let Value::Object(mut map) = value else {
        return Err(field(
            "",
            format!("expected an op map, got {}", crate::echo::Echo(value)),
        ));
    };
    let kind = event_type(map.get("type")).map_err(|m| field(":type", m))?;
    let process = process(map.get("process")).map_err(|m| field(":process", m))?;
    let value = map.remove("value").unwrap_or(Value::Null);
    let f = match map.get("f") {
        Some(Value::String(s)) => s.clone(),
        Some(other) => {
            return Err(field(
                ":f",
                format!("expected a keyword, got {}", crate::echo::Echo(other)),
            ))
        }
        // Elle's own examples leave `:f` out of transactions.
        None if is_txn_value(&value) => "txn".to_string(),
        None => {
            return Err(field(
                ":f",
                "missing (and the value is no list of micro-ops)".into(),
            ))
        }
    };
    let key = key(map.get("key")).map_err(|m| field(":key", m))?;
    let error = map.get("error").map(|e| match e {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    });
    Ok(RawEvent {
        line,
        process,
        kind,
        f,
        key,
        value,
        error,
    })
}

/// `:type`: `:invoke`, `:ok`, `:fail` or `:info`.
fn event_type(v: Option<&Value>) -> Result<EventType, String> {
    match v.and_then(Value::as_str) {
        Some("invoke") => Ok(EventType::Invoke),
        Some("ok") => Ok(EventType::Ok),
        Some("fail") => Ok(EventType::Fail),
        Some("info") => Ok(EventType::Info),
        _ => {
            let got = v.map_or("nothing".into(), Value::to_string);
            Err(format!(
                "expected :invoke, :ok, :fail or :info, got {}",
                crate::echo::Echo(got)
            ))
        }
    }
}

/// `:process`: a client's number, `:nemesis` (none), or [`PROCESS_MISSING`] when absent (Elle
/// accepts op maps without one).
fn process(v: Option<&Value>) -> Result<Option<u64>, String> {
    match v {
        Some(Value::String(s)) if s == "nemesis" => Ok(None),
        Some(v) => v
            .as_u64()
            .filter(|p| *p != PROCESS_MISSING)
            .map(Some)
            .ok_or_else(|| {
                format!(
                    "expected a non-negative integer or :nemesis, got {}",
                    crate::echo::Echo(v)
                )
            }),
        None => Ok(Some(PROCESS_MISSING)),
    }
}

/// Whether `v` is a micro-op `[f k v]` named as Elle (`:r`, `:w`, `:append`) or Knossos
/// (`:read`, `:write`) name them: how a transaction is told from a `[key value]` tuple.
/// A read's invocation may leave its value out (`[:r :x]`, as Elle's tests do).
pub(crate) fn is_micro_op(v: &Value) -> bool {
    match v.as_array().map(Vec::as_slice) {
        Some([f, _, _]) => matches!(f.as_str(), Some("r" | "w" | "append" | "read" | "write")),
        Some([f, _]) => matches!(f.as_str(), Some("r" | "read")),
        _ => false,
    }
}

/// Whether `v` is a transaction's value: a non-empty vector of micro-ops.
pub(crate) fn is_txn_value(v: &Value) -> bool {
    v.as_array()
        .is_some_and(|items| !items.is_empty() && items.iter().all(is_micro_op))
}

/// Reads `:read` and `:write` ops whose value is a vector of micro-ops as the transactions
/// they are (`:txn`), as Elle does, and completes a read micro-op written without its value
/// (`[:r :x]`) with `nil`.
pub(crate) fn txn_shaped(ops: &mut [RawEvent]) {
    for e in ops.iter_mut() {
        if !is_txn_value(&e.value) {
            continue;
        }
        if e.f == "read" || e.f == "write" {
            e.f = "txn".to_string();
        }
        for mop in e.value.as_array_mut().into_iter().flatten() {
            if let Value::Array(parts) = mop {
                if parts.len() == 2 {
                    parts.push(Value::Null);
                }
            }
        }
    }
}

/// `:key`, if any: a string, or an integer as its digits.
fn key(v: Option<&Value>) -> Result<Option<String>, String> {
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(other) => Err(format!(
            "expected a string or integer, got {}",
            crate::echo::Echo(other)
        )),
    }
}

/// Reads op maps from `text`: top-level maps one after another, or top-level vectors or lists
/// of maps (a Knossos file is one such vector).
pub(crate) fn read_ops(path: &str, text: &str) -> Result<Vec<RawEvent>, ImportError> {
    let syntax = |e: EdnError| ImportError::Syntax {
        path: path.to_string(),
        line: e.line,
        column: e.column,
        message: e.message,
    };
    let mut reader = Reader::new(text);
    let mut ops = Vec::new();
    loop {
        if let Some(close) = reader.open_collection().map_err(syntax)? {
            while let Some((line, v)) = reader.next_element(close).map_err(syntax)? {
                ops.push(op_from_map(path, line, v)?);
            }
            continue;
        }
        match reader.next_value().map_err(syntax)? {
            Some((line, v)) => ops.push(op_from_map(path, line, v)?),
            None => return Ok(ops),
        }
    }
}
