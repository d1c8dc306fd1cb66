//! Why a key is not linearizable, built as data and rendered as prose (Elle's way).

use crate::history::History;
use crate::op::{line_of, Op, Outcome};
use serde::Serialize;
use serde_json::Value;
use std::fmt;

/// How many ops of the linearized prefix the prose shows (the JSON carries them all).
const PREFIX_SHOWN_MAX: usize = 8;

/// An op as it appears in reports: where it is in the history and what it did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OpRef {
    /// Position of the invocation in `History::events`.
    pub event: usize,
    /// 1-based line of the invocation in the file.
    pub line: usize,
    /// The client's logical process.
    pub process: u64,
    /// The operation's name.
    pub f: String,
    /// The invocation's argument.
    pub value: Value,
    /// The completion's result (`null` when never completed).
    pub result: Value,
    /// How it ended.
    pub outcome: Outcome,
    /// When it was invoked, ns.
    pub invoke_ns: u64,
    /// When it completed, ns; absent for `info`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub complete_ns: Option<u64>,
}

impl OpRef {
    /// The report's view of `op` from `history`.
    pub fn new(history: &History, op: &Op) -> OpRef {
        OpRef {
            event: op.invoke_event,
            line: line_of(history, op.invoke_event),
            process: op.process,
            f: op.f.clone(),
            value: op.invoke_value.clone(),
            result: op.complete_value.clone(),
            outcome: op.outcome,
            invoke_ns: op.invoke_ns,
            complete_ns: (op.outcome != Outcome::Info).then_some(op.complete_ns),
        }
    }
}

/// Renders as `line 7: process 2 read -> 1 (ok, 40..50 ns)`.
impl fmt::Display for OpRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: process {} {}", self.line, self.process, self.f)?;
        let ok = self.outcome == Outcome::Ok;
        if self.value.is_null() {
            if ok {
                write!(f, " -> {}", self.result)?;
            }
        } else {
            write!(f, " {}", self.value)?;
            if ok && !self.result.is_null() && self.result != self.value {
                write!(f, " -> {}", self.result)?;
            }
        }
        write!(f, " ({}, {}..", self.outcome.name(), self.invoke_ns)?;
        if let Some(c) = self.complete_ns {
            write!(f, "{c}")?;
        }
        f.write_str(" ns)")
    }
}

/// Evidence that a key has no linearization: the deepest point the search reached.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation {
    /// The key.
    pub key: String,
    /// The op whose completion no order of the ops before it could satisfy.
    pub op: OpRef,
    /// The longest linearizable prefix found, in linearization order.
    pub prefix: Vec<OpRef>,
    /// The model's state after `prefix`, as text.
    pub state: String,
    /// When `op` itself was legal after `prefix`: an op that still needs that state, which `op`
    /// would overwrite and no remaining op can restore.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stranded: Option<OpRef>,
    /// A direct argument that `op` can take effect in no order at all (a read of a value no
    /// write produced, a zones conflict), found before or without the search.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proof: Option<String>,
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "key {:?} is not linearizable.", self.key)?;
        if let (Some(proof), true) = (&self.proof, self.prefix.is_empty()) {
            writeln!(f, "  This op must have taken effect by its completion:")?;
            writeln!(f, "    {}", self.op)?;
            return write!(f, "  It cannot, in any order: {proof}: a contradiction.");
        }
        if self.prefix.is_empty() {
            writeln!(
                f,
                "  No op can be linearized first; the state is {}.",
                self.state
            )?;
        } else {
            let hidden = self.prefix.len().saturating_sub(PREFIX_SHOWN_MAX);
            writeln!(
                f,
                "  The longest linearizable prefix found has {} ops{}:",
                self.prefix.len(),
                if hidden > 0 {
                    format!(" ({hidden} earlier ones not shown)")
                } else {
                    String::new()
                }
            )?;
            for op in &self.prefix[hidden..] {
                writeln!(f, "    {op}")?;
            }
            writeln!(f, "  after which the state is {}.", self.state)?;
        }
        writeln!(f, "  But this op must have taken effect by its completion:")?;
        writeln!(f, "    {}", self.op)?;
        if let Some(proof) = &self.proof {
            writeln!(f, "  It cannot, in any order: {proof}.")?;
        }
        if let Some(stranded) = &self.stranded {
            writeln!(
                f,
                "  and taking effect would overwrite {}, which this op still needs and no remaining op restores:",
                self.state
            )?;
            writeln!(f, "    {stranded}")?;
            write!(
                f,
                "  nor does any reordering of the ops before them help: a contradiction."
            )
        } else {
            write!(
                f,
                "  and neither it nor any reordering of the ops before it fits: a contradiction."
            )
        }
    }
}
