//! One event's fields read from a JSON object, each checked so that an error names the field.

use super::{Event, EventType, Process};
use serde_json::{Map, Value};

/// A field's name and what is wrong with it.
pub(super) type FieldError = (&'static str, String);

/// The event in one line's object; an error names the first field that is wrong.
pub(super) fn parse_event(mut obj: Map<String, Value>) -> Result<Event, FieldError> {
    let kind = event_type(&obj)?;
    let process = Process::from_json(obj.get("process").ok_or(("process", "missing".into()))?)
        .map_err(|m| ("process", m))?;
    let f = string(&mut obj, "f")?;
    let key = opt_str(&mut obj, "key")?;
    let value = obj.remove("value").ok_or(("value", "missing".into()))?;
    let time = time(&obj)?;
    let index = opt_u64(&obj, "index")?;
    let wall = opt_str(&mut obj, "wall")?;
    let node = opt_str(&mut obj, "node")?;
    let slot = slot(&obj)?;
    let redirects = match obj.remove("redirects") {
        None | Some(Value::Null) => Vec::new(),
        Some(v) => serde_json::from_value(v).map_err(|e| ("redirects", e.to_string()))?,
    };
    let error = opt_str(&mut obj, "error")?;
    let gave_up = gave_up(&mut obj, kind)?;
    let batch = match obj.remove("batch") {
        None | Some(Value::Null) => None,
        Some(v) => Some(serde_json::from_value(v).map_err(|e| ("batch", e.to_string()))?),
    };
    Ok(Event {
        kind,
        process,
        f,
        key,
        value,
        time,
        index,
        wall,
        node,
        slot,
        redirects,
        error,
        gave_up,
        batch,
    })
}

/// The `type` field: an invocation or one of the three completions.
fn event_type(obj: &Map<String, Value>) -> Result<EventType, FieldError> {
    match obj.get("type").and_then(Value::as_str) {
        Some("invoke") => Ok(EventType::Invoke),
        Some("ok") => Ok(EventType::Ok),
        Some("fail") => Ok(EventType::Fail),
        Some("info") => Ok(EventType::Info),
        Some(other) => Err((
            "type",
            format!(
                "expected invoke, ok, fail, info or header, got \"{}\"",
                crate::echo::Echo(other)
            ),
        )),
        None => Err(("type", "missing or not a string".into())),
    }
}

/// A field that must be a string.
fn string(obj: &mut Map<String, Value>, field: &'static str) -> Result<String, FieldError> {
    match obj.remove(field) {
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err((
            field,
            format!("expected a string, got {}", crate::echo::Echo(other)),
        )),
        None => Err((field, "missing".into())),
    }
}

/// The `time` field, in nanoseconds.
fn time(obj: &Map<String, Value>) -> Result<u64, FieldError> {
    match obj.get("time") {
        Some(v) => v.as_u64().ok_or((
            "time",
            format!(
                "expected non-negative integer nanoseconds, got {}",
                crate::echo::Echo(v)
            ),
        )),
        None => Err(("time", "missing".into())),
    }
}

/// The optional `slot` field, a Redis Cluster slot.
fn slot(obj: &Map<String, Value>) -> Result<Option<u16>, FieldError> {
    match opt_u64(obj, "slot")? {
        Some(s) if s < 16384 => Ok(Some(s as u16)),
        Some(s) => Err(("slot", format!("{s} is not a slot (0..16383)"))),
        None => Ok(None),
    }
}

/// The optional `gave_up` field, allowed on `fail` and `info` completions only.
fn gave_up(
    obj: &mut Map<String, Value>,
    kind: EventType,
) -> Result<Option<super::GaveUp>, FieldError> {
    match obj.remove("gave_up") {
        None | Some(Value::Null) => Ok(None),
        Some(_) if !matches!(kind, EventType::Fail | EventType::Info) => {
            Err(("gave_up", "only a fail or info completion gives up".into()))
        }
        Some(v) => Ok(Some(
            serde_json::from_value(v).map_err(|e| ("gave_up", e.to_string()))?,
        )),
    }
}

fn opt_u64(obj: &Map<String, Value>, field: &'static str) -> Result<Option<u64>, FieldError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v.as_u64().map(Some).ok_or((
            field,
            format!(
                "expected a non-negative integer, got {}",
                crate::echo::Echo(v)
            ),
        )),
    }
}

fn opt_str(
    obj: &mut Map<String, Value>,
    field: &'static str,
) -> Result<Option<String>, FieldError> {
    match obj.remove(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(v) => Err((
            field,
            format!("expected a string, got {}", crate::echo::Echo(v)),
        )),
    }
}
