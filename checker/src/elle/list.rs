//! Version orders of list keys, recovered from reads, and the anomalies visible without a graph.
//!
//! Every `ok` read of a list reveals a prefix of that key's version order (Elle, Kingsbury &
//! Alvaro, VLDB 2020): the longest read is taken as the order, and every other read must be a
//! prefix of it. Appended values are unique per key, so each element names the op that appended
//! it. The anomalies found directly, one [`Anomaly`] each:
//!
//! - `incompatible-order` (Elle's name): two reads of a key of which neither is a prefix of the
//!   other; no single order of appends explains both.
//! - `duplicate-elements` (Elle's name): one read holds an element twice, though each value is
//!   appended once.
//! - `garbage-read`: a read holds a value no op appended or wrote (a phantom; Elle has no single
//!   name for it in list-append, we follow its "garbage" wording).
//! - `G1a` (aborted read, Adya): a read holds a value appended or written by an op that `fail`ed.
//! - `G1b` (intermediate read, Adya): a read's last element (or a register read's value) is one
//!   that its writer overwrote later in the same transaction, by appending or writing again to
//!   that key.
//!
//! Register keys (`w` / `r` with scalars in `txn`s) take part in `garbage-read`, `G1a`, `G1b` and
//! in the graph's wr edges; their version order is inferred in `register`.

use super::show::{list, AnomalyBuilder};
use super::txn::{FxMap, Key, Keys, Mop, Seen, Txn};
use crate::anomaly::Anomaly;
use crate::op::Outcome;
use serde_json::json;
use std::collections::BTreeSet;

/// Who appended (or wrote) one value of one key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Writer {
    /// Index of the transaction in the analysis' list.
    pub txn: u32,
    /// Whether no later micro-op of that transaction appends or writes the same key.
    pub last_in_txn: bool,
}

/// A read micro-op: which transaction, which of its micro-ops.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct ReadAt {
    /// Index of the transaction.
    pub txn: u32,
    /// Index of the micro-op in it.
    pub mop: u32,
}

/// The recovered version orders and the indexes the graph and the explanations need.
#[derive(Debug, Default)]
pub(crate) struct Versions {
    /// Who wrote each (key, value).
    pub writers: FxMap<(Key, i64), Writer>,
    /// Per key (by id): the version order, i.e. the longest read (empty when never read).
    pub order: Vec<Vec<i64>>,
    /// Per (key, value): the value's first position in its key's order.
    pub position: FxMap<(Key, i64), u32>,
    /// Per key: the `ok` list reads, each a prefix of `order` unless in `incompatible`.
    pub reads: Vec<Vec<ReadAt>>,
    /// Reads that are not a prefix of their key's order: no edges are drawn from them.
    pub incompatible: BTreeSet<ReadAt>,
    /// Per key: values appended by ops that did not fail but absent from the order (never
    /// read). Like Elle, we place them after the whole order: they follow its last append
    /// (ww) and every read that saw the whole order missed them (rw).
    pub unread: Vec<Vec<i64>>,
    /// Register keys' inferred version orders (`register`): their ww / rw edges and evidence.
    pub register: super::register::Orders,
}

impl Versions {
    /// The list read by `at`.
    pub fn seen<'t>(&self, txns: &'t [Txn], at: ReadAt) -> &'t [i64] {
        match &txns[at.txn as usize].mops[at.mop as usize] {
            Mop::Read {
                seen: Seen::List(l),
                ..
            } => l,
            other => unreachable!("ReadAt names a list read, not {other:?}"),
        }
    }

    /// The writer of `value` at `key`, if any op appended or wrote it.
    pub fn writer(&self, key: Key, value: i64) -> Option<Writer> {
        self.writers.get(&(key, value)).copied()
    }

    /// Whether position `i` of `key`'s order holds its element's first occurrence: a repeat is
    /// a `duplicate-elements` anomaly and says nothing about where its writer's append went.
    fn first_at(&self, key: Key, i: usize) -> bool {
        let e = self.order[key as usize].get(i);
        e.is_some_and(|e| self.position.get(&(key, *e)) == Some(&(i as u32)))
    }

    /// `key`'s order without repeats: the order of the appends (ww edges follow it).
    pub fn appends(&self, key: Key) -> impl Iterator<Item = i64> + '_ {
        let order = &self.order[key as usize];
        (0..order.len())
            .filter(move |&i| self.first_at(key, i))
            .map(move |i| order[i])
    }

    /// The first append to `key` after its first `n` elements that a read of those did not
    /// see (rw edges point to its writer).
    pub fn next_unseen(&self, key: Key, n: usize) -> Option<i64> {
        let order = &self.order[key as usize];
        (n..order.len())
            .find(|&i| self.first_at(key, i))
            .map(|i| order[i])
    }

    /// The append to `key` right before `value`'s, skipping repeats; for a value never read,
    /// the order's last append (it came after all of them).
    pub fn previous(&self, key: Key, value: i64) -> Option<i64> {
        let Some(pos) = self.position.get(&(key, value)) else {
            return self.appends(key).last();
        };
        (0..*pos as usize)
            .rev()
            .find(|&i| self.first_at(key, i))
            .map(|i| self.order[key as usize][i])
    }
}

/// Indexes every write and list read of `txns` and recovers each key's version order.
pub(crate) fn versions(txns: &[Txn], keys: &Keys) -> Versions {
    let mut v = Versions {
        order: vec![Vec::new(); keys.names.len()],
        reads: vec![Vec::new(); keys.names.len()],
        unread: vec![Vec::new(); keys.names.len()],
        ..Versions::default()
    };
    for (t, txn) in txns.iter().enumerate() {
        let t = u32::try_from(t).expect("fewer than 2^32 ops");
        for (m, mop) in txn.mops.iter().enumerate() {
            match mop {
                Mop::Append { key, value } | Mop::Write { key, value } => {
                    let last_in_txn = !txn.mops[m + 1..].iter().any(|later| {
                        matches!(later, Mop::Append { key: k, .. } | Mop::Write { key: k, .. } if k == key)
                    });
                    // Values are unique per key; a repeated one keeps its first writer.
                    v.writers.entry((*key, *value)).or_insert(Writer {
                        txn: t,
                        last_in_txn,
                    });
                }
                Mop::Read {
                    key,
                    seen: Seen::List(_),
                } if txn.outcome == Outcome::Ok => {
                    let mop = u32::try_from(m).expect("fewer than 2^32 micro-ops");
                    v.reads[*key as usize].push(ReadAt { txn: t, mop });
                }
                Mop::Read { .. } => {}
            }
        }
    }
    for key in 0..keys.names.len() {
        let longest = v.reads[key].iter().copied().max_by(|a, b| {
            let (la, lb) = (v.seen(txns, *a).len(), v.seen(txns, *b).len());
            la.cmp(&lb).then(b.cmp(a))
        });
        let Some(longest) = longest else { continue };
        let order = v.seen(txns, longest).to_vec();
        for read in &v.reads[key] {
            let seen = v.seen(txns, *read);
            if order[..seen.len()] != *seen {
                v.incompatible.insert(*read);
            }
        }
        let key = key as Key;
        for (i, e) in order.iter().enumerate() {
            v.position.entry((key, *e)).or_insert(i as u32);
        }
        v.order[key as usize] = order;
    }
    let mut placed: FxMap<(Key, i64), ()> = FxMap::default();
    for txn in txns.iter().filter(|t| t.outcome != Outcome::Fail) {
        for mop in &txn.mops {
            if let Mop::Append { key, value } = mop {
                if !v.position.contains_key(&(*key, *value))
                    && placed.insert((*key, *value), ()).is_none()
                {
                    v.unread[*key as usize].push(*value);
                }
            }
        }
    }
    v
}

/// The anomalies of `versions` found without a graph; see the module doc.
pub(crate) fn list_cases(txns: &[Txn], keys: &Keys, v: &Versions, initial: &[i64]) -> Vec<Anomaly> {
    let b = AnomalyBuilder { txns, keys };
    let mut out = Vec::new();
    for key in 0..keys.names.len() {
        let k = key as Key;
        let order = &v.order[key];
        if v.reads[key].is_empty() {
            continue;
        }
        let longest = *v.reads[key]
            .iter()
            .find(|r| v.seen(txns, **r).len() == order.len() && !v.incompatible.contains(r))
            .expect("the longest read is compatible with itself");
        // Reads holding the element at each position: the compatible reads, shortest first.
        let mut by_len: Vec<(usize, ReadAt)> = v.reads[key]
            .iter()
            .filter(|r| !v.incompatible.contains(r))
            .map(|r| (v.seen(txns, *r).len(), *r))
            .collect();
        by_len.sort();
        let first_reader = |i: usize| by_len[by_len.partition_point(|(l, _)| *l <= i)].1;
        let mut checked: BTreeSet<i64> = BTreeSet::new();
        let mut lists: Vec<(ReadAt, &[i64], bool)> = vec![(longest, order.as_slice(), true)];
        for r in v.reads[key].iter().filter(|r| v.incompatible.contains(r)) {
            let seen = v.seen(txns, *r);
            lists.push((*r, seen, false));
            out.push(b.incompatible_order(k, *r, seen, longest, order));
        }
        for (read, seen, compatible) in lists {
            if let Some(dup) = duplicate(seen) {
                out.push(b.duplicate(k, read, seen, dup));
            }
            for (i, e) in seen.iter().enumerate() {
                if !checked.insert(*e) {
                    continue;
                }
                let reader = if compatible { first_reader(i) } else { read };
                match v.writer(k, *e) {
                    None if initial.contains(e) => {}
                    None => out.push(b.garbage(k, reader, *e)),
                    Some(w) if txns[w.txn as usize].outcome == Outcome::Fail => {
                        out.push(b.aborted(k, reader, *e, w.txn))
                    }
                    Some(_) => {}
                }
            }
        }
        for read in &v.reads[key] {
            let seen = v.seen(txns, *read);
            if let Some(last) = seen.last() {
                if let Some(w) = v.writer(k, *last) {
                    if !w.last_in_txn && w.txn != read.txn {
                        out.push(b.intermediate(k, *read, *last, w.txn));
                    }
                }
            }
        }
    }
    out.extend(register_cases(&b, v));
    out
}

/// `garbage-read`, `G1a` and `G1b` for register reads inside `txn`s.
fn register_cases(b: &AnomalyBuilder, v: &Versions) -> Vec<Anomaly> {
    let mut out = Vec::new();
    for (t, txn) in b.txns.iter().enumerate() {
        if txn.outcome != Outcome::Ok {
            continue;
        }
        for (m, mop) in txn.mops.iter().enumerate() {
            let Mop::Read {
                key,
                seen: Seen::Register(Some(value)),
            } = mop
            else {
                continue;
            };
            let read = ReadAt {
                txn: t as u32,
                mop: m as u32,
            };
            match v.writer(*key, *value) {
                None => out.push(b.garbage(*key, read, *value)),
                Some(w) if b.txns[w.txn as usize].outcome == Outcome::Fail => {
                    out.push(b.aborted(*key, read, *value, w.txn))
                }
                Some(w) if !w.last_in_txn && w.txn != read.txn => {
                    out.push(b.intermediate(*key, read, *value, w.txn))
                }
                Some(_) => {}
            }
        }
    }
    out
}

/// The first element of `seen` that occurs in it twice.
fn duplicate(seen: &[i64]) -> Option<i64> {
    let mut set = FxMap::default();
    seen.iter().copied().find(|e| set.insert(*e, ()).is_some())
}

impl AnomalyBuilder<'_> {
    fn incompatible_order(
        &self,
        key: Key,
        read: ReadAt,
        seen: &[i64],
        longest: ReadAt,
        order: &[i64],
    ) -> Anomaly {
        let (r, l) = (self.txn(read.txn), self.txn(longest.txn));
        self.build(
            "incompatible-order",
            key,
            &[read.txn, longest.txn],
            format!(
                "key {:?}: the read at line {} saw {} and the read at line {} saw {}; neither is a prefix of the other, so no single order of appends explains both: a contradiction!",
                self.key(key),
                r.line,
                list(seen),
                l.line,
                list(order)
            ),
            json!({"key": self.key(key), "reads": [
                {"event": r.event, "line": r.line, "value": seen},
                {"event": l.event, "line": l.line, "value": order},
            ]}),
        )
    }

    fn duplicate(&self, key: Key, read: ReadAt, seen: &[i64], element: i64) -> Anomaly {
        let r = self.txn(read.txn);
        self.build(
            "duplicate-elements",
            key,
            &[read.txn],
            format!(
                "key {:?}: the read at line {} saw {element} more than once in {}, though each value is appended once.",
                self.key(key),
                r.line,
                list(seen)
            ),
            json!({"key": self.key(key), "element": element,
                   "read": {"event": r.event, "line": r.line, "value": seen}}),
        )
    }

    fn garbage(&self, key: Key, read: ReadAt, element: i64) -> Anomaly {
        let r = self.txn(read.txn);
        self.build(
            "garbage-read",
            key,
            &[read.txn],
            format!(
                "key {:?}: the read at line {} saw {element}, which no operation appended or wrote.",
                self.key(key),
                r.line
            ),
            json!({"key": self.key(key), "element": element,
                   "read": {"event": r.event, "line": r.line}}),
        )
    }

    fn aborted(&self, key: Key, read: ReadAt, element: i64, writer: u32) -> Anomaly {
        self.read_of_write("G1a", key, read, element, writer, |r, w| {
            format!(
                "key {:?}: the read at line {r} saw {element}, written by the operation at line {w}, which failed (an aborted read).",
                self.key(key)
            )
        })
    }

    fn intermediate(&self, key: Key, read: ReadAt, element: i64, writer: u32) -> Anomaly {
        self.read_of_write("G1b", key, read, element, writer, |r, w| {
            format!(
                "key {:?}: the read at line {r} saw {element} as the latest value, but the transaction at line {w} that wrote it wrote {:?} again afterwards (an intermediate read).",
                self.key(key),
                self.key(key)
            )
        })
    }

    /// An anomaly of a read that saw `element`, written by `writer`: `why` says what is wrong,
    /// from the read's and the writer's lines.
    fn read_of_write(
        &self,
        class: &'static str,
        key: Key,
        read: ReadAt,
        element: i64,
        writer: u32,
        why: impl FnOnce(usize, usize) -> String,
    ) -> Anomaly {
        let (r, w) = (self.txn(read.txn), self.txn(writer));
        self.build(
            class,
            key,
            &[read.txn, writer],
            why(r.line, w.line),
            json!({"key": self.key(key), "element": element,
                   "read": {"event": r.event, "line": r.line},
                   "writer": {"event": w.event, "line": w.line}}),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elle::txn::txns;
    use crate::op::Ops;
    use crate::testkit::h;

    fn cases(table: &str) -> Vec<(String, Vec<usize>)> {
        let history = h(table);
        let ops = Ops::from_history(&history).unwrap().ops;
        let (txns, keys) = txns(&history, &ops).unwrap();
        let v = versions(&txns, &keys);
        list_cases(&txns, &keys, &v, &[])
            .into_iter()
            .map(|a| (a.class, a.events.iter().map(|e| e.line).collect()))
            .collect()
    }

    #[test]
    fn prefixes_are_fine() {
        let ok = "
            0  invoke append x 1     @10
            0  ok     append x 1     @20
            0  invoke append x 2     @30
            0  ok     append x 2     @40
            1  invoke read   x null  @25
            1  ok     read   x [1]   @35
            1  invoke read   x null  @45
            1  ok     read   x [1,2] @55
        ";
        assert_eq!(cases(ok), []);
    }

    #[test]
    fn incompatible_duplicate_garbage_aborted() {
        let bad = "
            0  invoke append x 1       @10
            0  ok     append x 1       @20
            0  invoke append x 2       @30
            0  fail   append x 2       @40
            0  invoke append x 3       @50
            0  ok     append x 3       @60
            1  invoke read   x null    @70
            1  ok     read   x [1,3]   @80
            1  invoke read   x null    @90
            1  ok     read   x [1,2,1,9] @100
        ";
        let found = cases(bad);
        assert!(
            found.contains(&("incompatible-order".into(), vec![7, 9])),
            "{found:?}"
        );
        assert!(
            found.contains(&("duplicate-elements".into(), vec![9])),
            "{found:?}"
        );
        assert!(found.contains(&("G1a".into(), vec![9, 3])), "{found:?}");
        assert!(
            found.contains(&("garbage-read".into(), vec![9])),
            "{found:?}"
        );
    }

    #[test]
    fn intermediate_read_in_txns() {
        let bad = r#"
            0  invoke txn - [["append","x",1],["append","x",2]] @10
            0  ok     txn - [["append","x",1],["append","x",2]] @20
            1  invoke txn - [["r","x",null]]                    @15
            1  ok     txn - [["r","x",[1]]]                     @18
        "#;
        assert_eq!(cases(bad), [("G1b".to_string(), vec![3, 1])]);
    }
}
