//! The list-append model: `append` adds an integer at the end; `read` returns the whole list.
//! The list starts empty unless an initial array is given.

use super::{collection_input, Effect, FieldError, Model, OpModel};
use crate::op::Op;

/// One list operation as the model sees it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ListOp {
    /// Appended this element.
    Append(i64),
    /// Observed exactly this list.
    Read(Vec<i64>),
}

/// The list's sequential specification.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListAppend {
    /// The list before any operation.
    pub initial: Vec<i64>,
}

impl Model for ListAppend {
    type State = Vec<i64>;
    type Input = ListOp;

    fn init(&self) -> Vec<i64> {
        self.initial.clone()
    }

    fn step(&self, state: &Vec<i64>, input: &ListOp) -> Option<Vec<i64>> {
        match input {
            ListOp::Append(v) => {
                let mut next = Vec::with_capacity(state.len() + 1);
                next.extend_from_slice(state);
                next.push(*v);
                Some(next)
            }
            ListOp::Read(seen) => (seen == state).then(|| state.clone()),
        }
    }

    fn requires(&self, input: &ListOp) -> Option<Vec<i64>> {
        match input {
            ListOp::Append(_) => None,
            ListOp::Read(seen) => Some(seen.clone()),
        }
    }

    fn effect(&self, input: &ListOp) -> Effect<Vec<i64>> {
        match input {
            ListOp::Append(_) => Effect::Other,
            ListOp::Read(_) => Effect::Observes,
        }
    }

    fn may_produce(&self, input: &ListOp, state: &Vec<i64>) -> bool {
        match input {
            ListOp::Append(v) => state.last() == Some(v),
            ListOp::Read(_) => false,
        }
    }

    fn ordered(&self) -> bool {
        true
    }

    fn precedes(&self, from: &Vec<i64>, to: &Vec<i64>) -> bool {
        to.starts_with(from)
    }

    fn describe_state(&self, state: &Vec<i64>) -> String {
        format!("{state:?}")
    }

    fn describe_input(&self, input: &ListOp) -> String {
        match input {
            ListOp::Append(v) => format!("append {v}"),
            ListOp::Read(seen) => format!("read {seen:?}"),
        }
    }
}

impl OpModel for ListAppend {
    fn input(&self, op: &Op) -> Result<Option<ListOp>, FieldError> {
        let names = ("list-append", "append", "append and read");
        collection_input(op, names, ListOp::Append, ListOp::Read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps() {
        let m = ListAppend::default();
        let s = m.step(&vec![1], &ListOp::Append(2)).unwrap();
        assert_eq!(s, vec![1, 2]);
        assert_eq!(m.step(&s, &ListOp::Read(vec![2, 1])), None);
        assert!(m.may_produce(&ListOp::Append(2), &s));
        assert!(!m.may_produce(&ListOp::Append(1), &s));
    }
}
