//! Updates that build on the wrong state (Elle's `lost-update` and `dirty-update`).
//!
//! - `lost-update` (Adya's H_lu, as Elle detects it directly): two or more committed
//!   transactions read the same version of a key (their first read of it, before writing it)
//!   and then all append to (or write) that key. Whichever comes later in any serial order
//!   should have seen the other's update; one of them is lost. Found in linear time over the
//!   transactions, whatever the version order (a nil list read is the empty list).
//! - `dirty-update`: a committed transaction's update builds on a state written by one that
//!   failed. For lists (Elle's definition): in a key's version order (the longest read), a
//!   failed transaction's append is followed, past appends of unknown outcome, by a committed
//!   one's. For registers, whose version order we do not recover here: a committed
//!   transaction reads a value a failed one wrote and then writes that key itself (Elle's
//!   rw-register has no such check; the read alone is also `G1a`).

use super::cycle::txn_text;
use super::list::Versions;
use super::show::{list, AnomalyBuilder};
use super::txn::{FxMap, Key, Mop, Seen};
use crate::anomaly::Anomaly;
use crate::op::Outcome;
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// A version read, comparable across transactions: a list, or a register's value.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Version {
    List(Vec<i64>),
    Register(Option<i64>),
}

impl Version {
    fn of(seen: &Seen) -> Option<Version> {
        match seen {
            Seen::List(l) => Some(Version::List(l.clone())),
            Seen::Register(r) => Some(Version::Register(*r)),
            Seen::Unknown => None,
        }
    }

    fn text(&self) -> String {
        match self {
            Version::List(l) => list(l),
            Version::Register(Some(v)) => v.to_string(),
            Version::Register(None) => "nil".to_string(),
        }
    }

    fn json(&self) -> Value {
        match self {
            Version::List(l) => json!(l),
            Version::Register(r) => json!(r),
        }
    }
}

/// Every `lost-update` of the committed transactions, one per (key, version read).
pub(crate) fn lost_update_cases(b: &AnomalyBuilder) -> Vec<Anomaly> {
    let mut groups: BTreeMap<(Key, Version), Vec<u32>> = BTreeMap::new();
    for (t, txn) in b.txns.iter().enumerate() {
        if txn.outcome != Outcome::Ok {
            continue;
        }
        let mut first_read: FxMap<Key, Option<Version>> = FxMap::default();
        for mop in &txn.mops {
            match mop {
                Mop::Read { key, seen } => {
                    first_read.entry(*key).or_insert_with(|| Version::of(seen));
                }
                Mop::Append { key, .. } | Mop::Write { key, .. } => {
                    // Written before read: later reads are its own; nothing to compare.
                    match first_read.insert(*key, None) {
                        Some(Some(version)) => groups.entry((*key, version)).or_default(),
                        _ => continue,
                    }
                    .push(t as u32);
                }
            }
        }
    }
    groups
        .into_iter()
        .filter(|(_, ts)| ts.len() >= 2)
        .map(|((key, version), ts)| b.lost_update(key, &version, &ts))
        .collect()
}

/// Every list `dirty-update` (by each key's version order) and register one; see the module doc.
pub(crate) fn dirty_update_cases(b: &AnomalyBuilder, v: &Versions) -> Vec<Anomaly> {
    let mut out = Vec::new();
    for key in 0..b.keys.names.len() {
        let k = key as Key;
        // The last writer that decides what the next committed append built on: `None` is the
        // initial state (committed); `Some(t)` a failed or committed transaction.
        let mut base: Option<u32> = None;
        let mut values: Vec<i64> = Vec::new();
        for e in v.appends(k) {
            let Some(w) = v.writer(k, e) else { continue };
            let outcome = b.txn(w.txn).outcome;
            let base_failed = base.is_some_and(|t| b.txn(t).outcome == Outcome::Fail);
            match outcome {
                Outcome::Info => {
                    values.push(e);
                    continue;
                }
                Outcome::Ok if base_failed => {
                    values.push(e);
                    let from = base.expect("a failed base");
                    out.push(b.dirty_list(k, from, w.txn, &values));
                }
                Outcome::Fail if base_failed => {
                    values.push(e);
                    continue;
                }
                _ => {}
            }
            base = Some(w.txn);
            values = vec![e];
        }
    }
    out.extend(dirty_register_cases(b, v));
    out
}

/// Register dirty updates: a committed transaction read a failed one's value, then wrote.
fn dirty_register_cases(b: &AnomalyBuilder, v: &Versions) -> Vec<Anomaly> {
    let mut out = Vec::new();
    for (t, txn) in b.txns.iter().enumerate() {
        if txn.outcome != Outcome::Ok {
            continue;
        }
        let mut dirty: FxMap<Key, (u32, i64)> = FxMap::default();
        for mop in &txn.mops {
            match mop {
                Mop::Read {
                    key,
                    seen: Seen::Register(Some(value)),
                } => {
                    let failed = v
                        .writer(*key, *value)
                        .filter(|w| b.txn(w.txn).outcome == Outcome::Fail);
                    if let Some(w) = failed {
                        dirty.entry(*key).or_insert((w.txn, *value));
                    }
                }
                Mop::Write { key, value } => {
                    if let Some((from, read)) = dirty.remove(key) {
                        out.push(b.dirty_register(*key, from, t as u32, read, *value));
                    }
                }
                _ => {}
            }
        }
    }
    out
}

impl AnomalyBuilder<'_> {
    fn legend(&self, ts: &[u32]) -> String {
        let mut s = String::from("Let:\n");
        for (i, t) in ts.iter().enumerate() {
            s.push_str(&format!(
                "  T{} = {}\n",
                i + 1,
                txn_text(self.keys, self.txn(*t))
            ));
        }
        s
    }

    fn ops_json(&self, ts: &[u32]) -> Value {
        let ops: Vec<Value> = ts
            .iter()
            .map(|t| json!({"event": self.txn(*t).event, "line": self.txn(*t).line}))
            .collect();
        json!(ops)
    }

    fn lost_update(&self, key: Key, version: &Version, ts: &[u32]) -> Anomaly {
        let k = self.key(key);
        let names: Vec<String> = (1..=ts.len()).map(|i| format!("T{i}")).collect();
        let (names, all) = match names.len() {
            2 => (names.join(" and "), "both"),
            _ => (names.join(", "), "all"),
        };
        self.build(
            "lost-update",
            key,
            ts,
            format!(
                "{}\nThen:\n  - {names} {all} committed, {all} read {k:?} = {} before updating it, and {all} then updated {k:?}.\n  - However, in any serial order the later of any two of them must have read the earlier one's update, not {}: one of the updates is lost, a contradiction!",
                self.legend(ts),
                version.text(),
                version.text(),
            ),
            json!({"key": k, "value": version.json(), "txns": self.ops_json(ts)}),
        )
    }

    fn dirty_list(&self, key: Key, from: u32, to: u32, values: &[i64]) -> Anomaly {
        let k = self.key(key);
        let (first, last) = (values[0], values[values.len() - 1]);
        let between = if values.len() > 2 {
            " past appends of unknown outcome"
        } else {
            " right"
        };
        self.build(
            "dirty-update",
            key,
            &[from, to],
            format!(
                "{}\nThen:\n  - The version order of {k:?}, from its longest read, has {}: T1's append of {first}, then,{between} after it, T2's append of {last}.\n  - However, T1 failed and T2 committed: T2's update built on an aborted one (a dirty update), a contradiction!",
                self.legend(&[from, to]),
                list(values),
            ),
            json!({"key": k, "values": values, "txns": self.ops_json(&[from, to])}),
        )
    }

    fn dirty_register(&self, key: Key, from: u32, to: u32, read: i64, wrote: i64) -> Anomaly {
        let k = self.key(key);
        self.build(
            "dirty-update",
            key,
            &[from, to],
            format!(
                "{}\nThen:\n  - T2 read {k:?} = {read}, which only T1 wrote, and then wrote {wrote} to {k:?}.\n  - However, T1 failed, and T2 committed: a committed update built on an aborted one, a contradiction!",
                self.legend(&[from, to]),
            ),
            json!({"key": k, "values": [read, wrote], "txns": self.ops_json(&[from, to])}),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elle::list::versions;
    use crate::elle::txn::txns;
    use crate::op::Ops;
    use crate::testkit::h;

    /// (class, lines of the ops named) of every case in `table`.
    fn cases(table: &str) -> Vec<(String, Vec<usize>)> {
        let history = h(table);
        let ops = Ops::from_history(&history).unwrap().ops;
        let (txns, keys) = txns(&history, &ops).unwrap();
        let v = versions(&txns, &keys);
        let b = AnomalyBuilder {
            txns: &txns,
            keys: &keys,
        };
        let mut found = lost_update_cases(&b);
        found.extend(dirty_update_cases(&b, &v));
        found
            .into_iter()
            .map(|a| (a.class, a.events.iter().map(|e| e.line).collect()))
            .collect()
    }

    #[test]
    fn two_committed_read_modify_writes_of_one_version_lose_an_update() {
        // Elle's lost-update-test shape: both read x = [] (one of them as nil), both append.
        let bad = r#"
            0 invoke txn - [["r","x",null],["append","x",1]] @10
            1 invoke txn - [["r","x",null],["append","x",2]] @11
            0 ok     txn - [["r","x",null],["append","x",1]] @20
            1 ok     txn - [["r","x",[]],["append","x",2]]   @21
        "#;
        assert_eq!(cases(bad), [("lost-update".to_string(), vec![1, 2])]);
        // One of them failed: nothing was lost. A read after the write is the txn's own.
        let ok = r#"
            0 invoke txn - [["r","x",null],["append","x",1]] @10
            1 invoke txn - [["append","x",2],["r","x",null]] @11
            2 invoke txn - [["r","x",null],["append","x",3]] @12
            0 ok     txn - [["r","x",[]],["append","x",1]]   @20
            1 ok     txn - [["append","x",2],["r","x",[]]]   @21
            2 fail   txn - [["r","x",null],["append","x",3]] @22
        "#;
        assert_eq!(cases(ok), []);
        let registers = r#"
            0 invoke txn - [["r","x",null],["w","x",1]] @10
            1 invoke txn - [["r","x",null],["w","x",2]] @11
            0 ok     txn - [["r","x",null],["w","x",1]] @20
            1 ok     txn - [["r","x",null],["w","x",2]] @21
        "#;
        assert_eq!(cases(registers), [("lost-update".to_string(), vec![1, 2])]);
    }

    #[test]
    fn a_committed_append_after_a_failed_one_is_a_dirty_update() {
        // Elle's dirty-update-test shapes: [fail 1, ok 2]; [fail 1, info 2, ok 3]; no case when
        // the committed append comes first or an info one ends the order.
        let table = |outcomes: [&str; 3]| {
            format!(
                "0 invoke txn - [[\"append\",\"x\",1]] @10\n0 {} txn - [[\"append\",\"x\",1]] @20\n\
                 1 invoke txn - [[\"append\",\"x\",2]] @30\n1 {} txn - [[\"append\",\"x\",2]] @40\n\
                 2 invoke txn - [[\"append\",\"x\",3]] @50\n2 {} txn - [[\"append\",\"x\",3]] @60\n\
                 3 invoke txn - [[\"r\",\"x\",null]] @70\n3 ok txn - [[\"r\",\"x\",[1,2,3]]] @80",
                outcomes[0], outcomes[1], outcomes[2]
            )
        };
        let dirty = |lines: Vec<usize>| vec![("dirty-update".to_string(), lines)];
        assert_eq!(cases(&table(["fail", "ok", "ok"])), dirty(vec![1, 3]));
        assert_eq!(cases(&table(["fail", "info", "ok"])), dirty(vec![1, 5]));
        assert_eq!(cases(&table(["ok", "fail", "ok"])), dirty(vec![3, 5]));
        assert_eq!(cases(&table(["ok", "ok", "fail"])), []);
        assert_eq!(cases(&table(["fail", "info", "info"])), []);
    }

    #[test]
    fn a_committed_write_after_reading_a_failed_one_is_a_dirty_update() {
        let bad = r#"
            0 invoke txn - [["w","x",1]]                @10
            0 fail   txn - [["w","x",1]]                @20
            1 invoke txn - [["r","x",null],["w","x",2]] @30
            1 ok     txn - [["r","x",1],["w","x",2]]    @40
        "#;
        assert_eq!(cases(bad), [("dirty-update".to_string(), vec![1, 3])]);
    }
}
