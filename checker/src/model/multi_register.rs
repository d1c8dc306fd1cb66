//! Knossos's multi-register: named integer registers read and written together by `txn` ops
//! whose value is a list of micro-ops, `[:read :x 1]` / `[:write :y 2]` (also `r` / `w`, as in
//! slotcheck's txn format). A read of `nil` read nothing: it constrains no state. Every register
//! starts at the same configurable value.

use super::register::{describe_value, parse_value, RegisterValue};
use super::{unknown_f, Effect, FieldError, Model, OpModel};
use crate::op::{Op, Outcome};
use serde_json::Value;
use std::collections::BTreeMap;

/// One micro-op of a transaction.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MicroOp {
    /// Read register `0`; `None` when the value read is unknown.
    Read(String, Option<RegisterValue>),
    /// Wrote the integer to register `0`.
    Write(String, i64),
}

/// The registers' values; a register not present holds the initial value.
pub type Registers = BTreeMap<String, RegisterValue>;

/// The multi-register's sequential specification: a transaction applies atomically.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MultiRegister {
    /// Every register's value before any operation.
    pub initial: RegisterValue,
}

impl MultiRegister {
    fn get(&self, state: &Registers, key: &str) -> RegisterValue {
        state.get(key).copied().unwrap_or(self.initial)
    }
}

impl Model for MultiRegister {
    type State = Registers;
    type Input = Vec<MicroOp>;

    fn init(&self) -> Registers {
        Registers::new()
    }

    fn step(&self, state: &Registers, txn: &Vec<MicroOp>) -> Option<Registers> {
        let mut next: Option<Registers> = None;
        for micro in txn {
            let now = next.as_ref().unwrap_or(state);
            match micro {
                MicroOp::Read(key, Some(v)) if self.get(now, key) != *v => return None,
                MicroOp::Read(..) => {}
                MicroOp::Write(key, v) => {
                    next.get_or_insert_with(|| state.clone())
                        .insert(key.clone(), Some(*v));
                }
            }
        }
        Some(next.unwrap_or_else(|| state.clone()))
    }

    fn effect(&self, txn: &Vec<MicroOp>) -> Effect<Registers> {
        if txn.iter().all(|m| matches!(m, MicroOp::Read(..))) {
            Effect::Observes
        } else {
            Effect::Other
        }
    }

    fn describe_state(&self, state: &Registers) -> String {
        let shown: Vec<String> = state
            .iter()
            .map(|(k, v)| format!("{k}={}", describe_value(*v)))
            .collect();
        format!(
            "{{{}}} (others {})",
            shown.join(", "),
            describe_value(self.initial)
        )
    }

    fn describe_input(&self, txn: &Vec<MicroOp>) -> String {
        let shown: Vec<String> = txn
            .iter()
            .map(|m| match m {
                MicroOp::Read(k, Some(v)) => format!("r {k} {}", describe_value(*v)),
                MicroOp::Read(k, None) => format!("r {k} ?"),
                MicroOp::Write(k, v) => format!("w {k} {v}"),
            })
            .collect();
        format!("txn [{}]", shown.join(", "))
    }
}

fn micro_ops(v: &Value, reads_known: bool) -> Result<Vec<MicroOp>, String> {
    let Value::Array(items) = v else {
        return Err(format!(
            "expected an array of micro-ops, got {}",
            crate::echo::Echo(v)
        ));
    };
    items
        .iter()
        .map(|item| {
            let parts = match item {
                Value::Array(p) if p.len() == 3 => p,
                other => {
                    return Err(format!(
                        "expected a micro-op [f key value], got {}",
                        crate::echo::Echo(other)
                    ))
                }
            };
            let key = match &parts[1] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            match parts[0].as_str() {
                Some("read" | "r") => {
                    let seen = if reads_known && !parts[2].is_null() {
                        Some(parse_value(&parts[2])?)
                    } else {
                        None
                    };
                    Ok(MicroOp::Read(key, seen))
                }
                Some("write" | "w") => match parse_value(&parts[2])? {
                    Some(v) => Ok(MicroOp::Write(key, v)),
                    None => Err(format!(
                        "a write needs an integer, got {}",
                        crate::echo::Echo(item)
                    )),
                },
                _ => Err(format!(
                    "expected a read or write micro-op, got {}",
                    crate::echo::Echo(item)
                )),
            }
        })
        .collect()
}

impl OpModel for MultiRegister {
    fn input(&self, op: &Op) -> Result<Option<Vec<MicroOp>>, FieldError> {
        if op.f != "txn" {
            return Err(unknown_f("multi-register", "txn", &op.f));
        }
        let txn = match op.outcome {
            Outcome::Fail => return Ok(None),
            Outcome::Ok => micro_ops(&op.complete_value, true)
                .map_err(|m| FieldError::completion("value", m))?,
            Outcome::Info => {
                micro_ops(&op.invoke_value, false).map_err(|m| FieldError::invoke("value", m))?
            }
        };
        let writes = txn.iter().any(|m| matches!(m, MicroOp::Write(..)));
        let reads_known = txn.iter().any(|m| matches!(m, MicroOp::Read(_, Some(_))));
        Ok((writes || reads_known).then_some(txn))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn txns_apply_atomically() {
        let m = MultiRegister { initial: Some(0) };
        let t = micro_ops(
            &json!([["read", "x", 0], ["write", "x", 1], ["r", "x", 1]]),
            true,
        )
        .unwrap();
        let s = m.step(&m.init(), &t).unwrap();
        assert_eq!((m.get(&s, "x"), m.get(&s, "y")), (Some(1), Some(0)));
        assert_eq!(m.step(&s, &t), None);
        let unknown = micro_ops(&json!([["read", "x", 5]]), false).unwrap();
        assert_eq!(m.step(&s, &unknown), Some(s.clone()));
    }
}
