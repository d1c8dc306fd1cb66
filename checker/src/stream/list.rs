//! The list-append model's streaming check, which holds each read as a length instead of a list.
//!
//! A list-append read returns the whole list, so a history of a million ops carries hundreds of
//! millions of elements. Per key the reader keeps a *reference*: the longest list read so far
//! (starting at the initial list). While every read is a prefix of it, a read is kept as its
//! length, and the key is searched with [`Chain`], whose states are prefix lengths: exactly the
//! list-append model restricted to lists that are prefixes of the reference, with every other
//! list merged into one "off the reference" state that no read can observe (from there, only
//! appends follow, and they stay off it). A read that is not a prefix (nor an extension) of the
//! reference turns the key back to full lists and the plain [`ListAppend`] model.

use super::pairing::{Arg, Keys, Paired, Sink};
use super::scan::{Val, F_APPEND, F_READ};
use crate::explanation::OpRef;
use crate::model::list_append::{ListAppend, ListOp};
use crate::model::{Effect, Model, OpModel};
use crate::op::{Op, Outcome};
use crate::options::CheckError;
use crate::partition;
use crate::report::{KeyReport, Report};
use crate::wgl::{self, Budget, Interval, Search};
use rayon::prelude::*;
use serde_json::Value;

/// A list op as kept: an append, or a read as a prefix length of the key's reference or in full.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum ChainOp {
    /// Appended this element.
    Append(i64),
    /// Read the reference's first this many elements.
    Prefix(u32),
    /// Read this list (keys whose reads are not all prefixes of one list).
    Read(Vec<i64>),
}

/// The list-append model over prefixes of `reference`: state `Some(n)` is the list
/// `reference[..n]`, `None` any list that is not a prefix of it.
#[derive(Debug)]
pub(crate) struct Chain<'a> {
    /// Every read of the key is a prefix of it, and so is the initial list.
    pub reference: &'a [i64],
    /// The initial list's length.
    pub initial: u32,
}

impl Model for Chain<'_> {
    type State = Option<u32>;
    type Input = ChainOp;

    fn init(&self) -> Option<u32> {
        Some(self.initial)
    }

    fn step(&self, state: &Option<u32>, input: &ChainOp) -> Option<Option<u32>> {
        match (input, *state) {
            (ChainOp::Append(v), Some(n)) => {
                Some((self.reference.get(n as usize) == Some(v)).then_some(n + 1))
            }
            (ChainOp::Append(_), None) => Some(None),
            (ChainOp::Prefix(len), s) => (s == Some(*len)).then_some(s),
            (ChainOp::Read(_), _) => unreachable!("a chained key has no full reads"),
        }
    }

    fn requires(&self, input: &ChainOp) -> Option<Option<u32>> {
        match input {
            ChainOp::Prefix(len) => Some(Some(*len)),
            _ => None,
        }
    }

    fn effect(&self, input: &ChainOp) -> Effect<Option<u32>> {
        match input {
            ChainOp::Append(_) => Effect::Other,
            _ => Effect::Observes,
        }
    }

    fn may_produce(&self, input: &ChainOp, state: &Option<u32>) -> bool {
        match (input, *state) {
            (ChainOp::Append(v), Some(n)) => n > 0 && self.reference.get(n as usize - 1) == Some(v),
            (ChainOp::Append(_), None) => true,
            _ => false,
        }
    }

    fn ordered(&self) -> bool {
        true
    }

    fn precedes(&self, from: &Option<u32>, to: &Option<u32>) -> bool {
        match (from, to) {
            (Some(a), Some(b)) => a <= b,
            (None, Some(_)) => false,
            (_, None) => true,
        }
    }

    fn describe_state(&self, state: &Option<u32>) -> String {
        match state {
            Some(n) => format!("{:?}", &self.reference[..*n as usize]),
            None => "a list no read saw".into(),
        }
    }

    fn describe_input(&self, input: &ChainOp) -> String {
        match input {
            ChainOp::Append(v) => format!("append {v}"),
            ChainOp::Prefix(n) => format!("read {:?}", &self.reference[..*n as usize]),
            ChainOp::Read(seen) => format!("read {seen:?}"),
        }
    }
}

/// An op the search may need, with what its explanation shows.
#[derive(Debug, Clone)]
struct Kept {
    input: ChainOp,
    outcome: Outcome,
    process: u64,
    invoke_ns: u64,
    complete_ns: u64,
    invoke_event: usize,
    invoke_line: usize,
    /// The invocation's value.
    value: Value,
    /// The completion's value; `None` for a read, whose list the input holds.
    result: Option<Value>,
}

/// One key's ops.
#[derive(Default)]
struct KeyOps {
    ops: usize,
    /// `Some` while every read is a prefix of it (see the module doc).
    reference: Option<Vec<i64>>,
    kept: Vec<Kept>,
}

impl KeyOps {
    /// Keeps an ok read of `seen`, as a prefix length while it fits the reference.
    fn read(&mut self, seen: Vec<i64>) -> ChainOp {
        let Some(r) = &mut self.reference else {
            return ChainOp::Read(seen);
        };
        let common = r.len().min(seen.len());
        if r[..common] == seen[..common] {
            if seen.len() > r.len() {
                r.extend_from_slice(&seen[common..]);
            }
            return ChainOp::Prefix(seen.len() as u32);
        }
        // Not a prefix: every read kept so far becomes its full list.
        for op in &mut self.kept {
            if let ChainOp::Prefix(n) = op.input {
                op.input = ChainOp::Read(r[..n as usize].to_vec());
            }
        }
        self.reference = None;
        ChainOp::Read(seen)
    }
}

/// Keeps what the list-append search needs of each op.
pub(crate) struct ListSink {
    model: ListAppend,
    /// Reused for [`OpModel::input`] on ops the fast conversion does not take.
    scratch: Op,
    keys: Vec<KeyOps>,
}

impl ListSink {
    pub(crate) fn new(model: ListAppend) -> Self {
        ListSink {
            model,
            scratch: super::register::scratch_op(),
            keys: Vec::new(),
        }
    }

    /// The model's input for `op`, as [`ListAppend`]'s `input` reads it (a read's list is taken
    /// out of `op`).
    fn input(&mut self, op: &mut Paired<'_>) -> Result<Option<ListOp>, CheckError> {
        let complete = op.complete.as_mut().map(|c| &mut c.3);
        // An ok append returns its argument (or null); anything else goes to the model, which
        // says what is wrong.
        let echoes = match (&complete, &op.invoke_value) {
            (None | Some(Arg::Fast(Val::Null)), _) => true,
            (Some(Arg::Fast(Val::Int(c))), Arg::Fast(Val::Int(v))) => c == v,
            _ => false,
        };
        match (op.f_code, &op.invoke_value, op.outcome, complete) {
            (F_APPEND, Arg::Fast(Val::Int(v)), outcome, _) if outcome != Outcome::Ok || echoes => {
                return Ok((outcome != Outcome::Fail).then_some(ListOp::Append(*v)))
            }
            (F_READ, _, outcome, _) if outcome != Outcome::Ok => return Ok(None),
            (F_READ, _, _, Some(Arg::Fast(Val::Ints(seen)))) => {
                return Ok(Some(ListOp::Read(std::mem::take(seen))))
            }
            _ => {}
        }
        let complete = op.complete.as_ref().map(|c| &c.3);
        let s = &mut self.scratch;
        s.f.clear();
        s.f.push_str(op.f);
        s.outcome = op.outcome;
        s.invoke_value = op.invoke_value.clone().into_json();
        s.complete_value = complete.map_or(Value::Null, |c| c.clone().into_json());
        let complete_at = op.complete.as_ref().map(|c| (c.0, c.1));
        self.model
            .input(s)
            .map_err(|e| e.at((op.invoke_event, op.invoke_line), complete_at))
    }
}

impl Sink for ListSink {
    fn op(&mut self, mut op: Paired<'_>, keys: &mut Keys) -> Result<(), CheckError> {
        let input = self.input(&mut op)?;
        // Ops without a key join the partition "" (slot 0), as in `check`.
        let k = match op.key {
            Some(k) if !keys.names[k as usize].is_empty() => k as usize + 1,
            _ => 0,
        };
        if self.keys.len() <= k {
            let initial = &self.model.initial;
            self.keys.resize_with(k + 1, || KeyOps {
                reference: Some(initial.clone()),
                ..KeyOps::default()
            });
        }
        let key = &mut self.keys[k];
        key.ops += 1;
        let Some(input) = input else {
            return Ok(());
        };
        let (input, result) = match input {
            ListOp::Append(v) => {
                let result = op
                    .complete
                    .as_ref()
                    .map_or(Value::Null, |c| c.3.clone().into_json());
                (ChainOp::Append(v), Some(result))
            }
            ListOp::Read(seen) => (key.read(seen), None),
        };
        let complete_ns = match op.complete {
            Some((_, _, t, _)) if op.outcome != Outcome::Info => t,
            _ => u64::MAX,
        };
        key.kept.push(Kept {
            input,
            outcome: op.outcome,
            process: op.process,
            invoke_ns: op.invoke_ns,
            complete_ns,
            invoke_event: op.invoke_event,
            invoke_line: op.invoke_line,
            value: op.invoke_value.into_json(),
            result,
        });
        Ok(())
    }
}

impl ListSink {
    /// Checks every key, in parallel, into `report`, in key order.
    pub(crate) fn finish(self, mut report: Report, names: Vec<String>, budget: &Budget) -> Report {
        let model = self.model;
        let mut keys: Vec<(String, KeyOps)> = std::iter::once(String::new())
            .chain(names)
            .zip(self.keys)
            .filter(|(_, k)| k.ops > 0)
            .collect();
        keys.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        let results: Vec<KeyReport> = keys
            .par_iter_mut()
            .map(|(key, ops)| check_key(&model, key, ops, budget))
            .collect();
        for key_report in results {
            report.valid = report.valid.combine(key_report.valid);
            report.keys.push(key_report);
        }
        report
    }
}

/// Searches one key: with [`Chain`] while its reads fit one list, else with [`ListAppend`].
fn check_key(model: &ListAppend, key: &str, ops: &mut KeyOps, budget: &Budget) -> KeyReport {
    let mut kept = std::mem::take(&mut ops.kept);
    // Ops arrive in completion order; the search numbers them in invocation order.
    kept.sort_unstable_by_key(|op| op.invoke_event);
    let reference = ops.reference.take();
    let reference = reference.as_deref();
    let as_list_op = |input: &ChainOp| match input {
        ChainOp::Append(v) => ListOp::Append(*v),
        read => ListOp::Read(seen(read, reference)),
    };
    let result: Search<()> = match reference {
        Some(r) => {
            let chain = Chain {
                reference: r,
                initial: model.initial.len() as u32,
            };
            let intervals: Vec<_> = kept
                .iter()
                .map(|op| interval(op, op.input.clone()))
                .collect();
            forget_state(wgl::check(&chain, &intervals, budget))
        }
        None => {
            let intervals: Vec<_> = kept
                .iter()
                .map(|op| interval(op, as_list_op(&op.input)))
                .collect();
            forget_state(wgl::check(model, &intervals, budget))
        }
    };
    // The state after an invalid verdict's prefix, replayed on the full model.
    let replay = |prefix: &[usize]| {
        prefix.iter().fold(model.init(), |s, &i| {
            model
                .step(&s, &as_list_op(&kept[i].input))
                .expect("the prefix is a legal sequence")
        })
    };
    partition::key_report(
        key,
        (ops.ops, kept.len()),
        replayed(result, replay),
        budget,
        |i| op_ref(&kept[i], reference),
        |state| model.describe_state(state),
    )
}

/// The list a kept read saw, given the key's `reference`.
fn seen(input: &ChainOp, reference: Option<&[i64]>) -> Vec<i64> {
    match (input, reference) {
        (ChainOp::Prefix(n), Some(r)) => r[..*n as usize].to_vec(),
        (ChainOp::Read(seen), _) => seen.clone(),
        _ => unreachable!("a read as a prefix of no reference"),
    }
}

/// The report's view of a kept op.
fn op_ref(k: &Kept, reference: Option<&[i64]>) -> OpRef {
    OpRef {
        event: k.invoke_event,
        line: k.invoke_line,
        process: k.process,
        f: match k.input {
            ChainOp::Append(_) => "append".into(),
            _ => "read".into(),
        },
        value: k.value.clone(),
        result: k
            .result
            .clone()
            .unwrap_or_else(|| Value::from(seen(&k.input, reference))),
        outcome: k.outcome,
        invoke_ns: k.invoke_ns,
        complete_ns: (k.outcome != Outcome::Info).then_some(k.complete_ns),
    }
}

/// The search's view of `op`, with `input` as the model reads it.
fn interval<I>(op: &Kept, input: I) -> Interval<I> {
    Interval {
        input,
        call_ns: op.invoke_ns,
        return_ns: (op.outcome != Outcome::Info).then_some(op.complete_ns),
    }
}

/// A search's verdict without the model's state (the caller replays it on the full model).
fn forget_state<S>(s: Search<S>) -> Search<()> {
    replayed(s, |_| ())
}

/// `s` with an invalid verdict's state replaced by `replay` of its prefix.
fn replayed<S, T>(s: Search<S>, replay: impl FnOnce(&[usize]) -> T) -> Search<T> {
    match s {
        Search::Valid { steps } => Search::Valid { steps },
        Search::Invalid {
            steps,
            op,
            prefix,
            stranded,
            ..
        } => Search::Invalid {
            steps,
            op,
            state: replay(&prefix),
            prefix,
            stranded,
        },
        Search::Unknown { steps, exhausted } => Search::Unknown { steps, exhausted },
    }
}
