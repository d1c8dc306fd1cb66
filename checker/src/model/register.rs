//! The register model: one key holding an integer or nothing, with `read`, `write` and `cas`.
//!
//! - `read`: the `ok` value is the value read; `null` means the key was absent.
//! - `write`: sets the integer argument; a write of `null` deletes the key (a `DEL` in a `txn`, read
//!   per key by [`crate::per_key`]).
//! - `cas [expected, new]`: `ok` means the value was `expected` and became `new`; `fail` means it
//!   certainly did not apply. `expected` may be `null` (absent).
//!
//! Ops that can neither change nor constrain the state are not inputs at all: every `fail` op, and
//! `info` reads (an unknown read returned nothing we know).

use super::zones::Zones;
use super::{Effect, Model, OpModel};
use crate::hash::FxHasher;
use crate::op::{Op, Outcome};
use crate::search::{Interval, Search};
use serde_json::Value;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

pub use super::FieldError;

/// A register's value: an integer, or `None` when the key is absent.
pub type RegisterValue = Option<i64>;

/// One register operation as the model sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RegisterOp {
    /// Observed this value (`None` = absent).
    Read(RegisterValue),
    /// Set this value.
    Write(i64),
    /// Made the key absent (a write of `null`: `DEL`).
    Delete,
    /// If the value is `expected`, set `new` (an `ok` cas must apply; an `info` one may).
    Cas {
        /// The value the cas required.
        expected: RegisterValue,
        /// The value the cas set.
        new: i64,
    },
    /// A cas that certainly did not apply because the value was not this one (etcd's
    /// compare-and-swap; see [`Register::failed_cas_is_read`]).
    CasFailed(RegisterValue),
}

/// The register's sequential specification, starting from a configurable value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Register {
    /// The value before any operation (`None` = absent, the default).
    pub initial: RegisterValue,
    /// Whether a `fail` cas proves the value differed from its expected one (Porcupine's etcd
    /// model) rather than only that it did not apply (slotcheck, Knossos).
    pub failed_cas_is_read: bool,
    /// Whether an `ok` read of `null` read nothing (Knossos) rather than an absent key.
    pub null_read_is_unknown: bool,
}

impl Register {
    /// A register starting at `initial`.
    pub fn new(initial: RegisterValue) -> Self {
        Register {
            initial,
            ..Register::default()
        }
    }
}

impl Model for Register {
    type State = RegisterValue;
    type Input = RegisterOp;

    fn init(&self) -> RegisterValue {
        self.initial
    }

    fn step(&self, state: &RegisterValue, input: &RegisterOp) -> Option<RegisterValue> {
        match *input {
            RegisterOp::Read(seen) => (seen == *state).then_some(*state),
            RegisterOp::Write(v) => Some(Some(v)),
            RegisterOp::Delete => Some(None),
            RegisterOp::Cas { expected, new } => (expected == *state).then_some(Some(new)),
            RegisterOp::CasFailed(expected) => (expected != *state).then_some(*state),
        }
    }

    fn requires(&self, input: &RegisterOp) -> Option<RegisterValue> {
        match *input {
            RegisterOp::Read(v) => Some(v),
            RegisterOp::Write(_) | RegisterOp::Delete | RegisterOp::CasFailed(_) => None,
            RegisterOp::Cas { expected, .. } => Some(expected),
        }
    }

    fn effect(&self, input: &RegisterOp) -> Effect<RegisterValue> {
        match *input {
            RegisterOp::Read(_) | RegisterOp::CasFailed(_) => Effect::Observes,
            RegisterOp::Write(v) | RegisterOp::Cas { new: v, .. } => Effect::Sets(Some(v)),
            RegisterOp::Delete => Effect::Sets(None),
        }
    }

    fn describe_state(&self, state: &RegisterValue) -> String {
        describe_value(*state)
    }

    fn describe_input(&self, input: &RegisterOp) -> String {
        match *input {
            RegisterOp::Read(v) => format!("read {}", describe_value(v)),
            RegisterOp::Write(v) => format!("write {v}"),
            RegisterOp::Delete => "delete".to_string(),
            RegisterOp::Cas { expected, new } => {
                format!("cas {} -> {new}", describe_value(expected))
            }
            RegisterOp::CasFailed(expected) => {
                format!("failed cas (value was not {})", describe_value(expected))
            }
        }
    }
}

impl OpModel for Register {
    fn input(&self, op: &Op) -> Result<Option<RegisterOp>, FieldError> {
        if self.null_read_is_unknown
            && op.f == "read"
            && op.outcome == Outcome::Ok
            && op.complete_value.is_null()
        {
            return Ok(None);
        }
        let input = RegisterOp::from_op(op)?;
        if self.failed_cas_is_read && op.f == "cas" && op.outcome == Outcome::Fail {
            // `from_op` validated the pair; a failed cas has no input of its own there.
            let expected = parse_value(&op.invoke_value[0]).map_err(|m| invoke_err("value", m))?;
            return Ok(Some(RegisterOp::CasFailed(expected)));
        }
        Ok(input)
    }

    /// Decides by the zones of [`crate::zones`] when values are unique and there is no cas.
    /// A read of a value no op could have produced ([`super::direct::unproducible`]).
    fn refute(&self, ops: &[Interval<RegisterOp>]) -> Option<Search<RegisterValue>> {
        let (op, _) = super::direct::unproducible(self.initial, ops)?;
        Some(Search::Invalid {
            steps: 0,
            op,
            prefix: Vec::new(),
            state: self.initial,
            stranded: None,
        })
    }

    fn decide(&self, ops: &[Interval<RegisterOp>]) -> Option<Search<RegisterValue>> {
        match super::zones::check(self.initial, ops) {
            Zones::Valid => Some(Search::Valid { steps: 0 }),
            Zones::Invalid(c) => {
                // As the search would put it: the inner write must take effect while the outer
                // value is still needed by the op invoked last in its cluster.
                let op = c.inner.write.or(c.inner.first_complete_op)?;
                Some(Search::Invalid {
                    steps: 0,
                    op,
                    prefix: c.outer.write.into_iter().collect(),
                    state: c.outer.value,
                    stranded: c.outer.last_invoke_op,
                })
            }
            Zones::NotApplicable(_) => None,
        }
    }

    fn proof(&self, ops: &[Interval<RegisterOp>], op: usize) -> Option<String> {
        super::direct::proof(self.initial, ops, op)
    }

    /// Drops `info` writes and cas whose new value no op observes. Sound for any register: if
    /// such a write took effect, the next op to observe the state would have to follow another
    /// write (nothing reads its value, no cas expects it), so removing it from a linearization
    /// leaves a linearization. A failed cas observes every value but its expected one, so with
    /// those present only values that every failed cas expects are dropped.
    fn prune(&self, inputs: &mut Vec<(&Op, RegisterOp)>) {
        let keep = prune_keep(inputs, |(op, input)| (op.outcome, *input));
        let mut i = 0;
        inputs.retain(|_| {
            i += 1;
            keep[i - 1]
        });
    }
}

/// Which of `items` (each giving its op's outcome and model input) [`Register`]'s `prune` keeps:
/// the same rule, on plain data, for checkers that hold no [`Op`]s (the streaming check).
pub(crate) fn prune_keep<T>(items: &[T], of: impl Fn(&T) -> (Outcome, RegisterOp)) -> Vec<bool> {
    // The candidates: the values `info` writes and cas set, and whether some op observed each.
    let mut observed: FxMap<RegisterValue, bool> = FxMap::default();
    for item in items {
        if let (Outcome::Info, RegisterOp::Write(new) | RegisterOp::Cas { new, .. }) = of(item) {
            observed.insert(Some(new), false);
        }
    }
    if observed.is_empty() {
        return vec![true; items.len()];
    }
    let mut failed_expect: FxMap<RegisterValue, ()> = FxMap::default();
    let mut failed = 0usize;
    for item in items {
        match of(item).1 {
            RegisterOp::Read(v) | RegisterOp::Cas { expected: v, .. } => {
                if let Some(seen) = observed.get_mut(&v) {
                    *seen = true;
                }
            }
            RegisterOp::CasFailed(e) => {
                failed += 1;
                failed_expect.insert(e, ());
            }
            RegisterOp::Write(_) | RegisterOp::Delete => {}
        }
    }
    // A value every failed cas expected (or no failed cas at all) satisfies none of them.
    let unseen_by_failed = |v: RegisterValue| {
        failed == 0 || (failed_expect.len() == 1 && failed_expect.contains_key(&v))
    };
    items
        .iter()
        .map(|item| match of(item) {
            (outcome, RegisterOp::Write(new) | RegisterOp::Cas { new, .. }) => {
                outcome != Outcome::Info || observed[&Some(new)] || !unseen_by_failed(Some(new))
            }
            // A delete is never dropped: its value (absence) is not unique.
            (_, RegisterOp::Read(_) | RegisterOp::CasFailed(_) | RegisterOp::Delete) => true,
        })
        .collect()
}

/// A register value as text: the integer, or `absent`.
pub fn describe_value(v: RegisterValue) -> String {
    v.map_or_else(|| "absent".to_string(), |v| v.to_string())
}

/// Parses a register value: an integer, or `null` for absent.
pub fn parse_value(v: &Value) -> Result<RegisterValue, String> {
    match v {
        Value::Null => Ok(None),
        Value::Number(n) => n
            .as_i64()
            .map(Some)
            .ok_or_else(|| format!("expected a 64-bit integer, got {}", crate::echo::Echo(n))),
        other => Err(format!(
            "expected an integer or null, got {}",
            crate::echo::Echo(other)
        )),
    }
}

fn invoke_err(field: &'static str, message: String) -> FieldError {
    FieldError::invoke(field, message)
}

impl RegisterOp {
    /// The model input for `op`, or `None` when it cannot change or constrain the register
    /// (`fail` ops, `info` reads).
    pub fn from_op(op: &Op) -> Result<Option<RegisterOp>, FieldError> {
        let input = match op.f.as_str() {
            "read" => {
                if op.outcome != Outcome::Ok {
                    return Ok(None);
                }
                RegisterOp::Read(
                    parse_value(&op.complete_value).map_err(|message| FieldError {
                        field: "value",
                        message,
                        on_completion: true,
                    })?,
                )
            }
            "write" => {
                let v = parse_value(&op.invoke_value).map_err(|m| invoke_err("value", m))?;
                crate::model::check_echo(op)?;
                v.map_or(RegisterOp::Delete, RegisterOp::Write)
            }
            "cas" => {
                let pair = match &op.invoke_value {
                    Value::Array(pair) if pair.len() == 2 => pair,
                    other => {
                        return Err(invoke_err(
                            "value",
                            format!(
                                "a cas needs [expected, new], got {}",
                                crate::echo::Echo(other)
                            ),
                        ))
                    }
                };
                let expected = parse_value(&pair[0]).map_err(|m| invoke_err("value", m))?;
                let new = match parse_value(&pair[1]) {
                    Ok(Some(v)) => v,
                    Ok(None) => {
                        return Err(invoke_err(
                            "value",
                            "a cas's new value cannot be null".into(),
                        ))
                    }
                    Err(m) => return Err(invoke_err("value", m)),
                };
                crate::model::check_echo(op)?;
                RegisterOp::Cas { expected, new }
            }
            other => {
                return Err(invoke_err(
                    "f",
                    format!(
                        "the register model knows read, write and cas, not {}",
                        crate::echo::Echo(format_args!("{:?}", other))
                    ),
                ))
            }
        };
        Ok((op.outcome != Outcome::Fail).then_some(input))
    }
}

/// An `ok` write or cas echoes its argument (or says nothing, `null`); anything else is a bug.
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps() {
        let m = Register::new(None);
        assert_eq!(m.step(&None, &RegisterOp::Read(None)), Some(None));
        assert_eq!(m.step(&None, &RegisterOp::Read(Some(1))), None);
        assert_eq!(m.step(&Some(1), &RegisterOp::Write(2)), Some(Some(2)));
        assert_eq!(m.step(&Some(1), &RegisterOp::Delete), Some(None));
        assert_eq!(m.step(&None, &RegisterOp::Delete), Some(None));
        let cas = RegisterOp::Cas {
            expected: Some(2),
            new: 3,
        };
        assert_eq!(m.step(&Some(2), &cas), Some(Some(3)));
        assert_eq!(m.step(&Some(1), &cas), None);
        assert_eq!(m.describe_input(&cas), "cas 2 -> 3");
        assert_eq!(m.describe_state(&None), "absent");
        assert_eq!(Register::new(Some(7)).init(), Some(7));
    }

    #[test]
    fn values() {
        assert_eq!(parse_value(&Value::from(-4)), Ok(Some(-4)));
        assert_eq!(parse_value(&Value::Null), Ok(None));
        assert!(parse_value(&Value::from(1.5)).is_err());
        assert!(parse_value(&Value::from("1")).is_err());
    }
}
