//! The register's streaming check: each finished op becomes a compact per-key record (the model's
//! input, times, lines), and keys are then checked in parallel as by [`check`](crate::check):
//! zones first, the search when they do not apply. Past a memory budget the records go to
//! temporary files and keys are checked a batch at a time ([`spill`]).

mod spill;

use super::pairing::{Arg, Keys, Paired, Sink};
use super::scan::{Val, F_READ, F_WRITE, KNOWN_F};
use crate::explanation::OpRef;
use crate::model::register::{prune_keep, Register, RegisterOp};
use crate::model::{Model, OpModel};
use crate::op::{Op, Outcome};
use crate::options::CheckError;
use crate::partition::{self, search};
use crate::report::{KeyReport, Report};
use crate::wgl::{Budget, Interval};
use rayon::prelude::*;
use serde_json::Value;
use spill::Spill;

/// Bytes of compact ops a register check holds before it spills them to temporary files, and
/// holds per batch when it reads them back: the default bound on a streaming check's memory.
pub const HELD_BYTES_MAX: usize = 1 << 30;

/// An op the search may need, in 64 bytes or so.
#[derive(Debug, Clone, Copy)]
struct Compact {
    input: RegisterOp,
    outcome: Outcome,
    process: u64,
    invoke_ns: u64,
    complete_ns: u64,
    invoke_event: u32,
    invoke_line: u32,
    /// [`f_code`](super::scan::f_code) of its `f`.
    f: u8,
}

/// One key's ops.
#[derive(Default)]
struct KeyOps {
    ops: usize,
    /// The ops the search may need, unless they were spilled.
    kept: Vec<Compact>,
    /// How many ops were kept, here or in the spill.
    kept_count: usize,
}

/// Keeps what the register's search needs of each op.
pub(crate) struct RegisterSink {
    model: Register,
    /// Reused for [`OpModel::input`], which reads an [`Op`].
    scratch: Op,
    /// Per key index of the pairing.
    keys: Vec<KeyOps>,
    /// Bytes the `kept` vectors hold (their capacity).
    held_bytes: usize,
    /// Past this many held bytes every kept op goes to `spill`.
    held_bytes_max: usize,
    spill: Option<Spill>,
    /// Ops without a key join the key "" (a CAS register's), rather than being refused.
    keyless: bool,
}

/// An op to fill in and hand to [`OpModel::input`].
pub(crate) fn scratch_op() -> Op {
    Op {
        process: 0,
        f: String::new(),
        key: None,
        invoke_value: Value::Null,
        complete_value: Value::Null,
        outcome: Outcome::Info,
        invoke_ns: 0,
        complete_ns: 0,
        invoke_event: 0,
        complete_event: None,
        node: None,
        slot: None,
        redirects: Vec::new(),
        error: None,
        gave_up: None,
        batch: None,
    }
}

impl RegisterSink {
    /// A sink that holds at most `held_bytes_max` bytes of ops before it spills them.
    pub(crate) fn new(model: Register, held_bytes_max: usize, keyless: bool) -> Self {
        RegisterSink {
            keyless,
            model,
            scratch: scratch_op(),
            keys: Vec::new(),
            held_bytes: 0,
            held_bytes_max,
            spill: None,
        }
    }

    /// Moves every held op to a new spill, which takes every later op too.
    fn start_spill(&mut self) {
        let mut spill = Spill::new();
        for (k, key) in self.keys.iter_mut().enumerate() {
            for op in std::mem::take(&mut key.kept) {
                spill.write(k as u32, &op);
            }
        }
        self.held_bytes = 0;
        self.spill = Some(spill);
    }
}

/// An op's value as JSON.
fn json(arg: &Arg) -> Value {
    match arg {
        Arg::Fast(v) => v.to_json(),
        Arg::Json(v) => v.clone(),
    }
}

/// The model's input for the common shapes (a read of `null` or an integer; a write of an
/// integer that an `ok` completion echoes or leaves `null`), exactly as [`Register`]'s `input`
/// reads them, without building JSON values; `None` sends the op through `input` itself.
fn fast_input(model: &Register, op: &Paired<'_>) -> Option<Option<RegisterOp>> {
    let complete = op.complete.as_ref().map(|c| &c.3);
    let write = match &op.invoke_value {
        Arg::Fast(Val::Int(v)) => Some(*v),
        _ => None,
    };
    Some(match (op.f_code, write, op.outcome, complete) {
        (F_READ, _, Outcome::Fail | Outcome::Info, _) => None,
        (F_READ, _, Outcome::Ok, Some(Arg::Fast(Val::Null))) => {
            (!model.null_read_is_unknown).then_some(RegisterOp::Read(None))
        }
        (F_READ, _, Outcome::Ok, Some(Arg::Fast(Val::Int(v)))) => Some(RegisterOp::Read(Some(*v))),
        (F_WRITE, Some(_), Outcome::Fail, _) => None,
        (F_WRITE, Some(v), Outcome::Info, _) => Some(RegisterOp::Write(v)),
        (F_WRITE, Some(v), Outcome::Ok, Some(Arg::Fast(Val::Null))) => Some(RegisterOp::Write(v)),
        (F_WRITE, Some(v), Outcome::Ok, Some(Arg::Fast(Val::Int(w)))) if *w == v => {
            Some(RegisterOp::Write(v))
        }
        _ => return None,
    })
}

impl RegisterSink {
    /// The model's input for `op`, by [`OpModel::input`] on an [`Op`] built for it.
    fn input(
        &mut self,
        op: &Paired<'_>,
        complete_ns: u64,
    ) -> Result<Option<RegisterOp>, CheckError> {
        let complete_at = self.fill_scratch(op, complete_ns);
        let invoke_at = (op.invoke_event, op.invoke_line);
        self.model
            .input(&self.scratch)
            .map_err(|e| e.at(invoke_at, complete_at))
    }

    /// Makes the scratch [`Op`] `op`; returns its completion's event and line.
    fn fill_scratch(&mut self, op: &Paired<'_>, complete_ns: u64) -> Option<(usize, usize)> {
        let scratch = &mut self.scratch;
        scratch.process = op.process;
        scratch.f.clear();
        scratch.f.push_str(op.f);
        scratch.invoke_value = json(&op.invoke_value);
        scratch.outcome = op.outcome;
        scratch.invoke_ns = op.invoke_ns;
        scratch.invoke_event = op.invoke_event;
        scratch.complete_ns = complete_ns;
        match &op.complete {
            Some((event, line, _, value)) => {
                scratch.complete_value = json(value);
                scratch.complete_event = Some(*event);
                Some((*event, *line))
            }
            None => {
                scratch.complete_value = Value::Null;
                scratch.complete_event = None;
                None
            }
        }
    }
}

impl Sink for RegisterSink {
    fn op(&mut self, op: Paired<'_>, keys: &mut Keys) -> Result<(), CheckError> {
        if op.f == crate::per_key::TXN {
            return self.txn(&op, keys);
        }
        let key = match op.key {
            Some(key) => key,
            // A CAS register's keyless ops form the partition "", as in `check`.
            None if self.keyless => keys.index(""),
            None => {
                return Err(CheckError::Field {
                    event: op.invoke_event,
                    line: op.invoke_line,
                    field: "key",
                    message: format!(
                        "the register model needs a key on every op; this {} has none",
                        op.f
                    ),
                })
            }
        };
        let complete_ns = complete_ns(&op);
        let input = match fast_input(&self.model, &op) {
            Some(input) => input,
            None => self.input(&op, complete_ns)?,
        };
        let at = (op.invoke_event, op.invoke_line);
        self.keep(key, input, &op, at, op.f_code, complete_ns);
        Ok(())
    }
}

/// When `op` completed, for the search: `u64::MAX` for an `info` op (open to the end).
fn complete_ns(op: &Paired<'_>) -> u64 {
    match op.complete {
        Some((_, _, time, _)) if op.outcome != Outcome::Info => time,
        _ => u64::MAX,
    }
}

impl RegisterSink {
    /// Reads a `txn` op (multi-key commands) as one op per key it touches, as
    /// [`crate::per_key`] reads it in memory, and keeps each.
    fn txn(&mut self, op: &Paired<'_>, keys: &mut Keys) -> Result<(), CheckError> {
        let complete_ns = complete_ns(op);
        self.fill_scratch(op, complete_ns);
        let complete_at = op.complete.as_ref().map(|c| (c.0, c.1));
        let at = (op.invoke_event, op.invoke_line);
        let field = |e: crate::model::FieldError| e.at(at, complete_at);
        let per_key = crate::per_key::key_ops(&self.scratch).map_err(field)?;
        for one in per_key {
            let input = self.model.input(&one).map_err(field)?;
            let key = keys.index(one.key.as_deref().unwrap_or_default());
            let f = if one.f == "write" { F_WRITE } else { F_READ };
            self.keep(key, input, op, at, f, complete_ns);
        }
        Ok(())
    }

    /// Counts an op of key index `key` and keeps it if it has an `input` for the search.
    fn keep(
        &mut self,
        key: u32,
        input: Option<RegisterOp>,
        op: &Paired<'_>,
        (invoke_event, invoke_line): (usize, usize),
        f: u8,
        complete_ns: u64,
    ) {
        let k = key as usize;
        if self.keys.len() <= k {
            self.keys.resize_with(k + 1, KeyOps::default);
        }
        let slot = &mut self.keys[k];
        slot.ops += 1;
        let Some(input) = input else {
            return;
        };
        slot.kept_count += 1;
        let compact = Compact {
            input,
            outcome: op.outcome,
            process: op.process,
            invoke_ns: op.invoke_ns,
            complete_ns,
            invoke_event: u32::try_from(invoke_event).unwrap_or(u32::MAX),
            invoke_line: u32::try_from(invoke_line).unwrap_or(u32::MAX),
            f,
        };
        if let Some(spill) = &mut self.spill {
            spill.write(key, &compact);
            return;
        }
        let capacity = slot.kept.capacity();
        slot.kept.push(compact);
        self.held_bytes += (slot.kept.capacity() - capacity) * std::mem::size_of::<Compact>();
        if self.held_bytes > self.held_bytes_max {
            self.start_spill();
        }
    }
}

impl RegisterSink {
    /// Checks every key, in parallel, into `report`, in key order: from memory, or a batch at a
    /// time from the spill. An error is one of reading or writing the spill.
    pub(crate) fn finish(
        self,
        mut report: Report,
        names: Vec<String>,
        budget: &Budget,
    ) -> std::io::Result<Report> {
        let model = self.model;
        let mut per_key = self.keys;
        per_key.resize_with(names.len(), KeyOps::default);
        let all_ops = per_key.iter().map(|k| k.kept_count).sum();
        let results = match self.spill {
            Some(spill) => spill::check_spilled(
                spill,
                per_key,
                &names,
                &model,
                (budget, all_ops),
                self.held_bytes_max,
            )?,
            None => {
                let mut keys: Vec<(String, KeyOps)> = names.into_iter().zip(per_key).collect();
                keys.sort_unstable_by(|a, b| a.0.cmp(&b.0));
                keys.par_iter_mut()
                    .map(|(key, ops)| {
                        let kept = std::mem::take(&mut ops.kept);
                        check_key(
                            key,
                            ops.ops,
                            &kept,
                            &model,
                            &budget.for_key(kept.len(), all_ops),
                        )
                    })
                    .collect()
            }
        };
        for key_report in results {
            report.valid = report.valid.combine(key_report.valid);
            report.keys.push(key_report);
        }
        Ok(report)
    }
}

/// Searches one key, `ops` ops of which `kept` are the ones the search may need, in the order
/// they came; returns its report.
fn check_key(
    key: &str,
    ops: usize,
    kept: &[Compact],
    model: &Register,
    budget: &Budget,
) -> KeyReport {
    // Ops arrive in completion order; the search numbers them in invocation order
    // (a stable sort finds the long sorted runs that this order mostly is).
    let mut order: Vec<u64> = kept
        .iter()
        .enumerate()
        .map(|(i, op)| u64::from(op.invoke_event) << 32 | i as u64)
        .collect();
    order.sort();
    let keep = if budget.plain {
        vec![true; order.len()]
    } else {
        prune_keep(&order, |&o| {
            let op = &kept[o as u32 as usize];
            (op.outcome, op.input)
        })
    };
    let searched: Vec<u32> = order
        .iter()
        .zip(keep)
        .filter_map(|(&o, k)| k.then_some(o as u32))
        .collect();
    drop(order);
    let intervals: Vec<Interval<RegisterOp>> = searched
        .iter()
        .map(|&i| {
            let op = &kept[i as usize];
            Interval {
                input: op.input,
                call_ns: op.invoke_ns,
                return_ns: (op.outcome != Outcome::Info).then_some(op.complete_ns),
            }
        })
        .collect();
    let result = search(model, &intervals, budget);
    let proof = partition::proof_of(model, &intervals, &result);
    drop(intervals);
    // `searched` indexes `kept` in the search's order.
    let mut report = partition::key_report(
        key,
        (ops, searched.len()),
        result,
        budget,
        |i| op_ref(&kept[searched[i] as usize]),
        |state| model.describe_state(state),
    );
    partition::with_proof(&mut report, proof);
    report
}

/// The report's view of a compact op (values rebuilt from the model's input).
fn op_ref(op: &Compact) -> OpRef {
    let opt = |v: Option<i64>| v.map_or(Value::Null, Value::from);
    let ok = op.outcome == Outcome::Ok;
    let (value, result) = match op.input {
        RegisterOp::Read(v) => (Value::Null, if ok { opt(v) } else { Value::Null }),
        RegisterOp::Write(v) => (
            Value::from(v),
            if ok { Value::from(v) } else { Value::Null },
        ),
        RegisterOp::Cas { expected, new } => {
            let pair = Value::from(vec![opt(expected), Value::from(new)]);
            (pair.clone(), if ok { pair } else { Value::Null })
        }
        RegisterOp::CasFailed(expected) => (Value::from(vec![opt(expected)]), Value::Null),
        RegisterOp::Delete => (Value::Null, Value::Null),
    };
    OpRef {
        event: op.invoke_event as usize,
        line: op.invoke_line as usize,
        process: op.process,
        f: KNOWN_F[op.f as usize].to_string(),
        value,
        result,
        outcome: op.outcome,
        invoke_ns: op.invoke_ns,
        complete_ns: (op.outcome != Outcome::Info).then_some(op.complete_ns),
    }
}

#[cfg(test)]
mod tests {
    use super::super::scan::f_code;
    use super::*;

    /// Wherever the fast conversion answers, [`Register`]'s `input` gives the same answer.
    #[test]
    fn fast_input_agrees_with_the_model() {
        let values = [
            None,
            Some(Val::Null),
            Some(Val::Int(1)),
            Some(Val::Int(-2)),
            Some(Val::Ints(vec![1, 2])),
            Some(Val::Ints(vec![])),
        ];
        let knossos = Register {
            initial: Some(1),
            failed_cas_is_read: true,
            null_read_is_unknown: true,
        };
        let mut taken = 0;
        for model in [Register::default(), knossos] {
            for f in ["read", "write", "cas", "incr"] {
                for outcome in [Outcome::Ok, Outcome::Fail, Outcome::Info] {
                    for invoke in values.iter().flatten() {
                        for complete in &values {
                            if complete.is_none() && outcome != Outcome::Info {
                                continue;
                            }
                            let op = Paired {
                                process: 1,
                                f,
                                f_code: f_code(f.as_bytes()),
                                key: Some(0),
                                invoke_event: 0,
                                invoke_line: 1,
                                invoke_ns: 10,
                                invoke_value: Arg::Fast(invoke.clone()),
                                outcome,
                                complete: complete.clone().map(|v| (1, 2, 20, Arg::Fast(v))),
                            };
                            let Some(fast) = fast_input(&model, &op) else {
                                continue;
                            };
                            taken += 1;
                            let slow =
                                RegisterSink::new(model, HELD_BYTES_MAX, false).input(&op, 20);
                            let what = format!("{f} {outcome:?} {invoke:?} {complete:?}");
                            assert_eq!(slow, Ok(fast), "{what}");
                        }
                    }
                }
            }
        }
        assert!(taken > 40, "{taken}");
    }
}
