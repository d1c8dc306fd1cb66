//! Anomalies visible inside one transaction (Elle's `internal` and `future-read`).
//!
//! - `internal` (Cerone, Bernardi and Gotsman's axiom INT, as Elle adapts it): a committed
//!   transaction reads a key in a state that disagrees with its own earlier micro-ops on that
//!   key. After reading a list `l` the key is `l`; after appending `v` to a known state `s` it
//!   is `s ++ [v]`, and to a state not yet read it is "some prefix, then `v`" (Elle's
//!   `[... v]`): a later read must end in the appends since. For a register, after reading or
//!   writing `v` the next read must be `v`. One case per transaction, its first contradiction.
//! - `future-read`: a committed transaction reads a value that it only appends (or writes)
//!   later in itself: it saw its own future. Elle's list-append looks for this; its rw-register
//!   does not, we do for registers too (values are unique per key, so the read can only have
//!   come from that later write).
//!
//! Both are found transaction by transaction, with no graph and no version order.

use super::cycle::txn_text;
use super::show::{list, AnomalyBuilder};
use super::txn::{FxMap, Key, Mop, Seen, Txn};
use crate::anomaly::Anomaly;
use crate::op::Outcome;
use serde_json::json;

/// What a transaction's own micro-ops say a key holds at some point.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Expected {
    /// A list: exactly `items` when `known`, else some prefix followed by `items`.
    List { known: bool, items: Vec<i64> },
    /// A register's value (`None`: absent).
    Register(Option<i64>),
}

impl Expected {
    /// Whether a read of `seen` agrees; reads of another kind than expected say nothing.
    fn admits(&self, seen: &Seen) -> bool {
        match (self, seen) {
            (Expected::List { known: true, items }, Seen::List(l)) => items == l,
            (
                Expected::List {
                    known: false,
                    items,
                },
                Seen::List(l),
            ) => l.ends_with(items),
            (Expected::Register(v), Seen::Register(r)) => v == r,
            _ => true,
        }
    }

    /// As prose: `[1 2]`, `[... 3]`, `5`, `nil`.
    fn text(&self) -> String {
        match self {
            Expected::List { known: true, items } => list(items),
            Expected::List {
                known: false,
                items,
            } => {
                let tail = list(items);
                format!("[... {}", &tail[1..])
            }
            Expected::Register(Some(v)) => v.to_string(),
            Expected::Register(None) => "nil".to_string(),
        }
    }
}

/// The first `internal` contradiction of `txn`: (micro-op index, key, what was expected).
fn internal_case(txn: &Txn) -> Option<(usize, Key, Expected)> {
    let mut state: FxMap<Key, Expected> = FxMap::default();
    for (m, mop) in txn.mops.iter().enumerate() {
        match mop {
            Mop::Append { key, value } => {
                let next = match state.remove(key) {
                    Some(Expected::List { known, mut items }) => {
                        items.push(*value);
                        Expected::List { known, items }
                    }
                    _ => Expected::List {
                        known: false,
                        items: vec![*value],
                    },
                };
                state.insert(*key, next);
            }
            Mop::Write { key, value } => {
                state.insert(*key, Expected::Register(Some(*value)));
            }
            Mop::Read { key, seen } => {
                if let Some(expected) = state.get(key) {
                    if !expected.admits(seen) {
                        return Some((m, *key, expected.clone()));
                    }
                }
                let now = match seen {
                    Seen::List(l) => Expected::List {
                        known: true,
                        items: l.clone(),
                    },
                    Seen::Register(r) => Expected::Register(*r),
                    Seen::Unknown => continue,
                };
                state.insert(*key, now);
            }
        }
    }
    None
}

/// The first `future-read` of `txn`: (read's micro-op index, later write's index, key, value).
fn future_read_case(txn: &Txn) -> Option<(usize, usize, Key, i64)> {
    // (key, value) -> the first micro-op that read it.
    let mut read: FxMap<(Key, i64), usize> = FxMap::default();
    for (m, mop) in txn.mops.iter().enumerate() {
        match mop {
            Mop::Append { key, value } | Mop::Write { key, value } => {
                if let Some(r) = read.get(&(*key, *value)) {
                    return Some((*r, m, *key, *value));
                }
            }
            Mop::Read { key, seen } => {
                let values = match seen {
                    Seen::List(l) => l.as_slice(),
                    Seen::Register(Some(v)) => std::slice::from_ref(v),
                    _ => &[],
                };
                for v in values {
                    read.entry((*key, *v)).or_insert(m);
                }
            }
        }
    }
    None
}

/// Every `internal` and `future-read` anomaly of the committed transactions; see the module doc.
pub(crate) fn internal_cases(b: &AnomalyBuilder) -> Vec<Anomaly> {
    let mut out = Vec::new();
    for (t, txn) in b.txns.iter().enumerate() {
        if txn.outcome != Outcome::Ok {
            continue;
        }
        let t = t as u32;
        if let Some((m, key, expected)) = internal_case(txn) {
            out.push(b.internal(t, m, key, &expected));
        }
        if let Some((r, w, key, value)) = future_read_case(txn) {
            out.push(b.future_read(t, r, w, key, value));
        }
    }
    out
}

impl AnomalyBuilder<'_> {
    fn internal(&self, t: u32, m: usize, key: Key, expected: &Expected) -> Anomaly {
        let txn = self.txn(t);
        let mop = super::cycle::mop_text(self.keys, &txn.mops[m]);
        let k = self.key(key);
        self.build(
            "internal",
            key,
            &[t],
            format!(
                "Let:\n  T1 = {}\n\nThen:\n  - T1's earlier micro-ops on {k:?} (its own reads and writes, in order) leave it at {}.\n  - However, T1's micro-op {} is `{mop}`: a transaction must observe its own writes and the state it read (internal consistency), a contradiction!",
                txn_text(self.keys, txn),
                expected.text(),
                m + 1,
            ),
            json!({"key": k, "mop_index": m, "mop": mop, "expected": expected.text(),
                   "op": {"event": txn.event, "line": txn.line}}),
        )
    }

    fn future_read(&self, t: u32, r: usize, w: usize, key: Key, value: i64) -> Anomaly {
        let txn = self.txn(t);
        let read = super::cycle::mop_text(self.keys, &txn.mops[r]);
        let write = super::cycle::mop_text(self.keys, &txn.mops[w]);
        let k = self.key(key);
        self.build(
            "future-read",
            key,
            &[t],
            format!(
                "Let:\n  T1 = {}\n\nThen:\n  - T1's micro-op {} (`{read}`) observed {value} in {k:?}.\n  - However, {value} is written to {k:?} only by T1's later micro-op {} (`{write}`), and each value is written once: T1 read its own future, a contradiction!",
                txn_text(self.keys, txn),
                r + 1,
                w + 1,
            ),
            json!({"key": k, "element": value, "read_index": r, "write_index": w,
                   "op": {"event": txn.event, "line": txn.line}}),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elle::txn::txns;
    use crate::op::Ops;
    use crate::testkit::h;

    /// (class, micro-op index named, expected text or element) of each case of one txn.
    fn cases(mops: &str) -> Vec<(String, String)> {
        let table = format!("0 invoke txn - {mops} @10\n0 ok txn - {mops} @20");
        let history = h(&table);
        let ops = Ops::from_history(&history).unwrap().ops;
        let (txns, keys) = txns(&history, &ops).unwrap();
        let b = AnomalyBuilder {
            txns: &txns,
            keys: &keys,
        };
        internal_cases(&b)
            .into_iter()
            .map(|a| {
                let detail = match a.class.as_str() {
                    "internal" => a.data["expected"].as_str().unwrap().to_string(),
                    _ => a.data["element"].to_string(),
                };
                (a.class, detail)
            })
            .collect()
    }

    fn one(class: &str, detail: &str) -> Vec<(String, String)> {
        vec![(class.to_string(), detail.to_string())]
    }

    #[test]
    fn own_reads_and_appends_agree() {
        // Elle's "good" case.
        let ok = r#"[["r","y",[5,6]],["append","x",3],["r","x",[1,2,3]],["append","x",4],["r","x",[1,2,3,4]]]"#;
        assert!(cases(ok).is_empty());
        assert!(cases(r#"[["w","x",1],["r","x",1],["r","y",null],["r","y",null]]"#).is_empty());
    }

    #[test]
    fn list_contradictions_are_internal() {
        // Elle's internal-cases-test, case by case.
        assert_eq!(
            cases(r#"[["r","x",null],["r","x",[2]]]"#),
            one("internal", "[]")
        );
        let prefix = r#"[["r","x",[1,2]],["append","x",3],["r","x",RESULT]]"#;
        for result in ["[1,2]", "[0,2,3]", "[1,2,3,4]", "[1]"] {
            let mops = prefix.replace("RESULT", result);
            assert_eq!(cases(&mops), one("internal", "[1 2 3]"), "{mops}");
        }
        assert_eq!(
            cases(r#"[["append","x",3],["r","x",[1,2,3,4]]]"#),
            one("internal", "[... 3]")
        );
        assert_eq!(
            cases(r#"[["append","x",3],["r","x",[]]]"#),
            one("internal", "[... 3]")
        );
        // FaunaDB: a completed read of nil after the txn's own append.
        assert_eq!(
            cases(r#"[["append","0",6],["r","0",null]]"#),
            one("internal", "[... 6]")
        );
    }

    #[test]
    fn register_contradictions_are_internal() {
        assert_eq!(cases(r#"[["w","x",1],["r","x",2]]"#), one("internal", "1"));
        assert_eq!(cases(r#"[["r","x",1],["r","x",2]]"#), one("internal", "1"));
        assert_eq!(
            cases(r#"[["r","x",3],["r","x",null]]"#),
            one("internal", "3")
        );
    }

    #[test]
    fn reading_a_later_write_is_a_future_read() {
        // Elle's "future read external" and "future read internal".
        assert_eq!(
            cases(r#"[["r","x",[0,1,2]],["append","x",1]]"#),
            one("future-read", "1")
        );
        assert_eq!(
            cases(r#"[["append","x",1],["r","x",[0,1]],["append","x",0],["append","x",3]]"#),
            one("future-read", "0")
        );
        assert_eq!(
            cases(r#"[["r","x",4],["w","x",4]]"#),
            one("future-read", "4")
        );
    }

    #[test]
    fn the_proof_names_the_op_and_micro_op() {
        let history = h(r#"
            0 invoke txn - [["append","x",3],["r","x",null]] @10
            0 ok     txn - [["append","x",3],["r","x",[1]]]  @20
        "#);
        let ops = Ops::from_history(&history).unwrap().ops;
        let (txns, keys) = txns(&history, &ops).unwrap();
        let b = AnomalyBuilder {
            txns: &txns,
            keys: &keys,
        };
        let found = internal_cases(&b);
        assert_eq!(found.len(), 1);
        let text = &found[0].explanation;
        assert!(text.contains("T1 = process 0 at line 1"), "{text}");
        assert!(text.contains("leave it at [... 3]"), "{text}");
        assert!(text.contains("micro-op 2 is `r x [1]`"), "{text}");
    }
}
