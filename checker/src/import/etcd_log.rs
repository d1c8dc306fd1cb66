//! Jepsen 0.0.x log lines of a CAS register (Porcupine's etcd test data):
//! `INFO  jepsen.util - 2<TAB>:invoke<TAB>:cas<TAB>[3 0]`, fields separated by tabs or spaces.
//!
//! `:info` completions mean the outcome is unknown; `:fail :read :timed-out` is a read that
//! returned nothing; `:fail :cas` is a compare that did not match (see `CheckOptions`).

use super::builder::{self, RawEvent};
use super::ImportError;
use crate::edn;
use crate::history::{EventType, History};

/// What every event line starts with.
const PREFIX: &str = "jepsen.util -";

/// Reads a Jepsen log; blank lines are skipped, any other line must be an event.
pub(crate) fn import(path: &str, text: &str) -> Result<History, ImportError> {
    let mut raw = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        raw.push(parse_line(path, i + 1, line)?);
    }
    Ok(builder::build(raw))
}

/// The event on line `line`, whose text is `text`.
fn parse_line(path: &str, line: usize, text: &str) -> Result<RawEvent, ImportError> {
    let field = |field: &str, message: String| ImportError::Field {
        path: path.to_string(),
        line,
        field: field.to_string(),
        message,
    };
    let Some(at) = text.find(PREFIX) else {
        return Err(field(
            "line",
            format!("expected `... {PREFIX} PROCESS :TYPE :F VALUE`"),
        ));
    };
    let mut rest = text[at + PREFIX.len()..].trim_start();
    let mut next = |name: &str| {
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let (token, tail) = rest.split_at(end);
        rest = tail.trim_start();
        if token.is_empty() {
            Err(field(name, "missing".into()))
        } else {
            Ok(token)
        }
    };
    let process = process(next("process")?).map_err(|m| field("process", m))?;
    let kind = event_type(next("type")?).map_err(|m| field("type", m))?;
    let f = keyword(next("f")?).map_err(|m| field("f", m))?;
    let value = value(rest.trim_end()).map_err(|m| field("value", m))?;
    Ok(RawEvent {
        line,
        process,
        kind,
        f,
        key: None,
        value,
        error: None,
    })
}

/// The process token: a client's number, or `:nemesis` (none).
fn process(token: &str) -> Result<Option<u64>, String> {
    match token {
        ":nemesis" => Ok(None),
        p => p.parse::<u64>().map(Some).map_err(|_| {
            format!(
                "expected a non-negative integer, got {}",
                crate::echo::Echo(format_args!("{:?}", p))
            )
        }),
    }
}

/// The type token: `:invoke`, `:ok`, `:fail` or `:info`.
fn event_type(token: &str) -> Result<EventType, String> {
    match token {
        ":invoke" => Ok(EventType::Invoke),
        ":ok" => Ok(EventType::Ok),
        ":fail" => Ok(EventType::Fail),
        ":info" => Ok(EventType::Info),
        other => Err(format!(
            "expected :invoke, :ok, :fail or :info, got {}",
            crate::echo::Echo(format_args!("{:?}", other))
        )),
    }
}

/// The `f` token, a keyword, without its colon.
fn keyword(token: &str) -> Result<String, String> {
    match token.strip_prefix(':') {
        Some(f) => Ok(f.to_string()),
        None => Err(format!(
            "expected a keyword, got {}",
            crate::echo::Echo(format_args!("{:?}", token))
        )),
    }
}

/// The rest of the line: exactly one EDN value.
fn value(text: &str) -> Result<serde_json::Value, String> {
    match edn::parse_all(text) {
        Ok(mut values) if values.len() == 1 => Ok(values.remove(0).1),
        Ok(_) => Err(format!(
            "expected one value, got {}",
            crate::echo::Echo(format_args!("{:?}", text))
        )),
        Err(e) => Err(e.message),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn tabs_or_spaces() {
        let text = "INFO  jepsen.util - 2\t:invoke\t:cas\t[3 0]\n\
                    INFO  jepsen.util - 2   :fail   :cas    [3 0]\n\n\
                    INFO  jepsen.util - 17  :fail   :read   :timed-out\n";
        let h = import("e.log", text).unwrap();
        // Process 17's failed read was never seen invoked: its invocation comes first.
        assert_eq!(h.events[1].value, json!([3, 0]));
        assert_eq!(h.events[2].kind, EventType::Fail);
        assert_eq!(h.events[3].value, json!("timed-out"));
        assert_eq!(h.events[0].kind, EventType::Invoke);
        assert_eq!(h.lines, [4, 1, 2, 4]);
    }

    #[test]
    fn errors_name_line_and_field() {
        let err = import(
            "e.log",
            "INFO  jepsen.util - 2\t:invoke\t:cas\t[3 0]\nINFO  jepsen.util - x :ok :read 1",
        )
        .unwrap_err();
        assert!(
            err.to_string().starts_with("e.log:2: field `process`"),
            "{err}"
        );
        let err = import("e.log", "hello").unwrap_err();
        assert!(
            err.to_string().starts_with("e.log:1: field `line`"),
            "{err}"
        );
    }
}
