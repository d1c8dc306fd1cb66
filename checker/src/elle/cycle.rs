//! A dependency cycle as data ([`Step`]s), and its rendering as Elle's prose proof.
//!
//! Each step says why one transaction must precede the next; a cycle of them is a contradiction
//! (no serial order, or no real-time-respecting one, can satisfy every step).

use super::show::list;
use super::txn::{Keys, Mop, Seen, Txn};
use serde::Serialize;
use std::fmt::Write;

/// Why one transaction precedes another in the dependency graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EdgeKind {
    /// Write-write: the later one appended right after the earlier one's element.
    Ww,
    /// Write-read: the later one read the earlier one's write.
    Wr,
    /// Read-write (anti-dependency): the earlier one read a version before the later one's write.
    Rw,
    /// Real time: the earlier one completed before the later one began.
    Realtime,
    /// Process order: the same process ran the earlier one first.
    Process,
}

impl EdgeKind {
    /// The kind whose bit is `bit`.
    pub(crate) fn from_bit(bit: u8) -> EdgeKind {
        match bit {
            1 => EdgeKind::Ww,
            2 => EdgeKind::Wr,
            4 => EdgeKind::Rw,
            8 => EdgeKind::Realtime,
            16 => EdgeKind::Process,
            _ => unreachable!("one kind per edge, not {bit:#b}"),
        }
    }
}

/// One step of a cycle: `from_txn` precedes `to_txn` because of `edge_kind` on `key`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Step {
    /// The earlier transaction (event index of its invocation).
    pub from_txn: usize,
    /// The later transaction (event index of its invocation).
    pub to_txn: usize,
    /// Why.
    pub edge_kind: EdgeKind,
    /// The key the dependency is on (data edges only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The value in question: ww the later append, wr the value read, rw the append not seen.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<i64>,
    /// ww: the earlier append; rw: the last value the reader saw (absent: it saw nothing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_value: Option<i64>,
    /// ww / rw: `value` was never read, so it is placed after every element read (Elle's
    /// unobserved writes).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub unread: bool,
    /// Register ww / rw steps: the source of the version order `from_value < value` (`initial-state`,
    /// `wfr-keys`, `sequential-keys`, `linearizable-keys`); `from_value` absent is `nil`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_order: Option<String>,
}

/// A micro-op as prose: `append 3 to x`, `r x [1 2]`, `w x 4`.
pub(super) fn mop_text(keys: &Keys, mop: &Mop) -> String {
    match mop {
        Mop::Append { key, value } => format!("append {value} to {}", keys.name(*key)),
        Mop::Write { key, value } => format!("w {} {value}", keys.name(*key)),
        Mop::Read { key, seen } => match seen {
            Seen::List(l) => format!("r {} {}", keys.name(*key), list(l)),
            Seen::Register(Some(v)) => format!("r {} {v}", keys.name(*key)),
            Seen::Register(None) => format!("r {} nil", keys.name(*key)),
            Seen::Unknown => format!("r {} ?", keys.name(*key)),
        },
    }
}

/// A transaction as prose: `process 1 at line 5: [append 1 to x, r y [5]] (ok, 30..40 ns)`.
pub(crate) fn txn_text(keys: &Keys, txn: &Txn) -> String {
    let mops: Vec<String> = txn.mops.iter().map(|m| mop_text(keys, m)).collect();
    let mut s = format!(
        "process {} at line {}: [{}] ({}, {}..",
        txn.process,
        txn.line,
        mops.join(", "),
        txn.outcome.name(),
        txn.invoke_ns
    );
    if txn.complete_ns != u64::MAX {
        let _ = write!(s, "{}", txn.complete_ns);
    }
    s.push_str(" ns)");
    s
}

/// Why `step` holds, naming its transactions `a` and `b` (`T1`, `T2`).
fn reason(step: &Step, a: &str, b: &str, process: u64) -> String {
    let key = step.key.as_deref().unwrap_or("?");
    let value = step.value.map_or("?".to_string(), |v| v.to_string());
    if let Some(source) = &step.version_order {
        // A register step, Elle's words: "T1 set key x to 1, and T2 set it to 2, which came
        // later in the version order".
        let from = step.from_value.map_or("nil".to_string(), |v| v.to_string());
        let what = match step.edge_kind {
            EdgeKind::Ww => format!("{a} set {key} to {from}"),
            _ => format!("{a} read {key} = {from}"),
        };
        return format!(
            "{what}, and {b} set it to {value}, which came later in the version order ({source})"
        );
    }
    let never = if step.unread {
        format!(" ({value} was never read, so it came after every element read)")
    } else {
        String::new()
    };
    match step.edge_kind {
        EdgeKind::Ww => match step.from_value {
            Some(prev) => {
                format!("{b} appended {value} after {a} appended {prev} to {key}{never}")
            }
            None => format!("{b} appended {value} after {a} wrote {key}"),
        },
        EdgeKind::Wr => format!("{b} observed {a}'s write of {value} to {key}"),
        EdgeKind::Rw => match (step.from_value, step.unread) {
            (Some(last), false) => format!(
                "{a} observed {key} ending in {last}, without {b}'s append of {value}, which came right after"
            ),
            (Some(last), true) => format!(
                "{a} observed {key} ending in {last}, without {b}'s append of {value}{never}"
            ),
            (None, false) => format!("{a} observed {key} empty, without {b}'s append of {value}"),
            (None, true) => format!(
                "{a} observed {key} empty, without {b}'s append of {value} (which no read ever saw)"
            ),
        },
        EdgeKind::Realtime => format!("{a} completed before {b} began"),
        EdgeKind::Process => format!("process {process} executed {a} before {b}"),
    }
}

/// Renders a cycle Elle's way: a legend naming each transaction, then one line per step.
pub(crate) fn render(keys: &Keys, txns: &[&Txn], steps: &[Step]) -> String {
    debug_assert_eq!(txns.len(), steps.len());
    let mut s = String::from("Let:\n");
    for (i, t) in txns.iter().enumerate() {
        let _ = writeln!(s, "  T{} = {}", i + 1, txn_text(keys, t));
    }
    s.push_str("\nThen:\n");
    let n = steps.len();
    for (i, step) in steps.iter().enumerate() {
        let (a, b) = (format!("T{}", i + 1), format!("T{}", (i + 1) % n + 1));
        let why = reason(step, &a, &b, txns[i].process);
        if i + 1 == n {
            let _ = write!(s, "  - However, {a} < {b}, because {why}: a contradiction!");
        } else {
            let _ = writeln!(s, "  - {a} < {b}, because {why}.");
        }
    }
    s
}
