//! The counter model: `incr` adds its integer argument (default 1) and, when `ok`, returns the
//! counter's new value; `read` returns the value. Jepsen's `add` is an `incr` whose result is not
//! reported. The counter starts at a configurable integer (0 by default).

use super::{ok_result, parse_int, unknown_f, Effect, FieldError, Model, OpModel};
use crate::op::{Op, Outcome};

/// One counter operation as the model sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CounterOp {
    /// Added `delta`; `result` is the value after it, when reported.
    Incr {
        /// The amount added.
        delta: i64,
        /// The counter's value just after, if the op reported it.
        result: Option<i64>,
    },
    /// Observed this value.
    Read(i64),
}

/// The counter's sequential specification.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counter {
    /// The value before any operation.
    pub initial: i64,
}

impl Model for Counter {
    type State = i64;
    type Input = CounterOp;

    fn init(&self) -> i64 {
        self.initial
    }

    fn step(&self, state: &i64, input: &CounterOp) -> Option<i64> {
        match *input {
            CounterOp::Incr { delta, result } => {
                let next = state.wrapping_add(delta);
                result.is_none_or(|r| r == next).then_some(next)
            }
            CounterOp::Read(v) => (v == *state).then_some(v),
        }
    }

    fn requires(&self, input: &CounterOp) -> Option<i64> {
        match *input {
            CounterOp::Incr { delta, result } => result.map(|r| r.wrapping_sub(delta)),
            CounterOp::Read(v) => Some(v),
        }
    }

    fn effect(&self, input: &CounterOp) -> Effect<i64> {
        match *input {
            CounterOp::Incr {
                result: Some(r), ..
            } => Effect::Sets(r),
            CounterOp::Incr { result: None, .. } => Effect::Other,
            CounterOp::Read(_) => Effect::Observes,
        }
    }

    fn describe_state(&self, state: &i64) -> String {
        state.to_string()
    }

    fn describe_input(&self, input: &CounterOp) -> String {
        match *input {
            CounterOp::Incr {
                delta,
                result: Some(r),
            } => format!("incr {delta} -> {r}"),
            CounterOp::Incr {
                delta,
                result: None,
            } => format!("incr {delta}"),
            CounterOp::Read(v) => format!("read {v}"),
        }
    }
}

impl OpModel for Counter {
    fn input(&self, op: &Op) -> Result<Option<CounterOp>, FieldError> {
        let input = match op.f.as_str() {
            "incr" | "add" => {
                let delta = if op.invoke_value.is_null() {
                    1
                } else {
                    parse_int(&op.invoke_value).map_err(|m| FieldError::invoke("value", m))?
                };
                let result = if op.f == "incr" {
                    ok_result(op, parse_int)?
                } else {
                    None
                };
                CounterOp::Incr { delta, result }
            }
            "read" => match ok_result(op, parse_int)? {
                Some(v) => CounterOp::Read(v),
                None => return Ok(None),
            },
            other => return Err(unknown_f("counter", "incr, add and read", other)),
        };
        Ok((op.outcome != Outcome::Fail).then_some(input))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps() {
        let m = Counter::default();
        let incr = CounterOp::Incr {
            delta: 2,
            result: Some(2),
        };
        assert_eq!(m.step(&0, &incr), Some(2));
        assert_eq!(m.step(&1, &incr), None);
        assert_eq!(
            m.step(
                &1,
                &CounterOp::Incr {
                    delta: 2,
                    result: None
                }
            ),
            Some(3)
        );
        assert_eq!(m.step(&3, &CounterOp::Read(3)), Some(3));
        assert_eq!(m.requires(&incr), Some(0));
        assert_eq!(m.effect(&incr), Effect::Sets(2));
    }
}
