//! The key-value model of Porcupine's kv tests, for one key: `get` returns the string value,
//! `put` sets it, `append` concatenates to it. Every key starts as a configurable string ("" by
//! default); a `get` of `null` reads "".

use super::{unknown_f, Effect, FieldError, Model, OpModel};
use crate::op::{Op, Outcome};
use serde_json::Value;

/// One kv operation on a key as the model sees it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum KvOp {
    /// Observed this value.
    Get(String),
    /// Set this value.
    Put(String),
    /// Appended this string.
    Append(String),
}

/// The sequential specification of one key of a string key-value store.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Kv {
    /// Every key's value before any operation.
    pub initial: String,
}

impl Model for Kv {
    type State = String;
    type Input = KvOp;

    fn init(&self) -> String {
        self.initial.clone()
    }

    fn step(&self, state: &String, input: &KvOp) -> Option<String> {
        match input {
            KvOp::Get(v) => (v == state).then(|| state.clone()),
            KvOp::Put(v) => Some(v.clone()),
            KvOp::Append(v) => {
                let mut next = String::with_capacity(state.len() + v.len());
                next.push_str(state);
                next.push_str(v);
                Some(next)
            }
        }
    }

    fn requires(&self, input: &KvOp) -> Option<String> {
        match input {
            KvOp::Get(v) => Some(v.clone()),
            KvOp::Put(_) | KvOp::Append(_) => None,
        }
    }

    fn effect(&self, input: &KvOp) -> Effect<String> {
        match input {
            KvOp::Get(_) => Effect::Observes,
            KvOp::Put(v) => Effect::Sets(v.clone()),
            KvOp::Append(_) => Effect::Other,
        }
    }

    fn may_produce(&self, input: &KvOp, state: &String) -> bool {
        match input {
            KvOp::Get(_) => false,
            KvOp::Put(v) => v == state,
            KvOp::Append(v) => state.ends_with(v.as_str()),
        }
    }

    fn ordered(&self) -> bool {
        true
    }

    fn precedes(&self, from: &String, to: &String) -> bool {
        to.starts_with(from.as_str())
    }

    fn describe_state(&self, state: &String) -> String {
        format!("{state:?}")
    }

    fn describe_input(&self, input: &KvOp) -> String {
        match input {
            KvOp::Get(v) => format!("get {v:?}"),
            KvOp::Put(v) => format!("put {v:?}"),
            KvOp::Append(v) => format!("append {v:?}"),
        }
    }
}

fn string(v: &Value) -> Result<String, String> {
    match v {
        Value::Null => Ok(String::new()),
        Value::String(s) => Ok(s.clone()),
        other => Err(format!(
            "expected a string, got {}",
            crate::echo::Echo(other)
        )),
    }
}

impl OpModel for Kv {
    fn input(&self, op: &Op) -> Result<Option<KvOp>, FieldError> {
        let arg = || string(&op.invoke_value).map_err(|m| FieldError::invoke("value", m));
        let input = match op.f.as_str() {
            "get" => {
                if op.outcome != Outcome::Ok {
                    return Ok(None);
                }
                KvOp::Get(
                    string(&op.complete_value).map_err(|m| FieldError::completion("value", m))?,
                )
            }
            "put" => KvOp::Put(arg()?),
            "append" => KvOp::Append(arg()?),
            other => return Err(unknown_f("kv", "get, put and append", other)),
        };
        Ok((op.outcome != Outcome::Fail).then_some(input))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps() {
        let m = Kv::default();
        let s = m.step(&"a".into(), &KvOp::Append("b".into())).unwrap();
        assert_eq!(s, "ab");
        assert_eq!(m.step(&s, &KvOp::Get("ab".into())), Some(s.clone()));
        assert_eq!(m.step(&s, &KvOp::Put("c".into())), Some("c".into()));
        assert!(m.may_produce(&KvOp::Append("b".into()), &s));
        assert!(!m.may_produce(&KvOp::Append("a".into()), &s));
    }
}
