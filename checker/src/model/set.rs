//! The set model: `add` inserts an integer; `read` returns every member (an array, any order).
//! The set starts empty unless an initial array is given.

use super::{collection_input, Effect, FieldError, Model, OpModel};
use crate::op::Op;
use std::collections::BTreeSet;

/// One set operation as the model sees it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum SetOp {
    /// Inserted this element.
    Add(i64),
    /// Observed exactly these members.
    Read(BTreeSet<i64>),
}

/// The set's sequential specification.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Set {
    /// The members before any operation.
    pub initial: BTreeSet<i64>,
}

impl Model for Set {
    type State = BTreeSet<i64>;
    type Input = SetOp;

    fn init(&self) -> BTreeSet<i64> {
        self.initial.clone()
    }

    fn step(&self, state: &BTreeSet<i64>, input: &SetOp) -> Option<BTreeSet<i64>> {
        match input {
            SetOp::Add(v) => {
                let mut next = state.clone();
                next.insert(*v);
                Some(next)
            }
            SetOp::Read(seen) => (seen == state).then(|| state.clone()),
        }
    }

    fn requires(&self, input: &SetOp) -> Option<BTreeSet<i64>> {
        match input {
            SetOp::Add(_) => None,
            SetOp::Read(seen) => Some(seen.clone()),
        }
    }

    fn effect(&self, input: &SetOp) -> Effect<BTreeSet<i64>> {
        match input {
            SetOp::Add(_) => Effect::Other,
            SetOp::Read(_) => Effect::Observes,
        }
    }

    fn may_produce(&self, input: &SetOp, state: &BTreeSet<i64>) -> bool {
        match input {
            SetOp::Add(v) => state.contains(v),
            SetOp::Read(_) => false,
        }
    }

    fn ordered(&self) -> bool {
        true
    }

    fn precedes(&self, from: &BTreeSet<i64>, to: &BTreeSet<i64>) -> bool {
        from.is_subset(to)
    }

    fn describe_state(&self, state: &BTreeSet<i64>) -> String {
        format!("{state:?}")
    }

    fn describe_input(&self, input: &SetOp) -> String {
        match input {
            SetOp::Add(v) => format!("add {v}"),
            SetOp::Read(seen) => format!("read {seen:?}"),
        }
    }
}

impl OpModel for Set {
    fn input(&self, op: &Op) -> Result<Option<SetOp>, FieldError> {
        collection_input(op, ("set", "add", "add and read"), SetOp::Add, |seen| {
            SetOp::Read(seen.into_iter().collect())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps() {
        let m = Set::default();
        let s1 = m.step(&m.init(), &SetOp::Add(1)).unwrap();
        assert_eq!(m.step(&s1, &SetOp::Read([1].into())), Some(s1.clone()));
        assert_eq!(m.step(&s1, &SetOp::Read([].into())), None);
        assert!(m.may_produce(&SetOp::Add(1), &s1));
        assert!(!m.may_produce(&SetOp::Add(2), &s1));
    }
}
