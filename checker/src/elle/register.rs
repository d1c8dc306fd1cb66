//! Version orders of register keys (Elle's rw-register analysis), the ww / rw dependencies they
//! give, and the anomaly found on the way:
//!
//! - `cyclic-versions` (Elle's name): the version order inferred for one key has a cycle, so no
//!   order of that key's versions agrees with every source of it. One process that writes
//!   x = 1, then x = 2, then reads x = 1 gives 1 < 2 and 2 < 1 under `sequential-keys`.
//!
//! A register read names the write it saw (values are unique per key), which gives wr edges, but
//! the order of the writes is not in the reads as it is for lists: it is inferred, per key, from
//! these sources, in this order (Elle's; each a graph of versions, `nil` the initial state):
//!
//! 1. `initial-state`: every key starts as `nil`, so `nil` precedes every value read or written;
//! 2. `wfr-keys` (with [`Assumptions::wfr_keys`]): a transaction that read x = 1 and then wrote
//!    x = 2 ordered 1 < 2;
//! 3. `sequential-keys` (with [`Assumptions::sequential_keys`]): of two `ok` transactions of one
//!    process touching x, the version the earlier one left (its write, else its read) precedes the
//!    one the next saw first (its read, else its write);
//! 4. `linearizable-keys` (with [`Assumptions::linearizable_keys`]): likewise for a transaction
//!    that completed before another (`ok` or `info`, whose write counts) began, from the nearest
//!    such ones (a sweep over invocations and completions per key, as for real-time edges).
//!
//! Each source is added to a key's order only if the order stays acyclic; if it would not, each
//! cycle is a `cyclic-versions` anomaly naming the sources that gave it and the source is left
//! out for that key (Elle leaves it out for every key). Then each edge `v1 < v2` of a key's order
//! gives ww edges from v1's writer to v2's, and rw edges from each reader of v1 to v2's writer
//! (only the first read before any write of the key in a transaction, and only its last write,
//! count: Elle's external reads and writes). A `nil` read gets rw edges to the writers of the
//! first versions only: the rest follow from those by ww edges.
//!
//! A finding that rests on an assumption says so: `cyclic-versions` lists its sources, and a
//! cycle whose ww / rw step came from an assumed order names it (`version_order` in the step,
//! `assumptions` in the data, a sentence in the explanation).

mod explain;
mod sources;
#[cfg(test)]
mod tests;

pub(crate) use explain::with_assumptions;

use super::cycle::EdgeKind;
use super::txn::{FxMap, Key, Keys, Mop, Seen, Txn};
use crate::anomaly::Anomaly;
use crate::op::Outcome;
use crate::options::Assumptions;
use petgraph::graph::{DiGraph, NodeIndex};
use std::collections::BTreeSet;

/// A version of a register: a value, or `None` for the initial state (`nil`).
pub(crate) type Version = Option<i64>;

/// Where an edge of a version order comes from (Elle's source names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Source {
    /// `nil` precedes every value.
    InitialState,
    /// A transaction's read precedes its own later write of the key.
    WfrKeys,
    /// Process order orders a key's versions.
    SequentialKeys,
    /// Real-time order orders a key's versions.
    LinearizableKeys,
}

impl Source {
    /// Elle's name of the source.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Source::InitialState => "initial-state",
            Source::WfrKeys => "wfr-keys",
            Source::SequentialKeys => "sequential-keys",
            Source::LinearizableKeys => "linearizable-keys",
        }
    }
}

/// Why one version precedes another: the source and the transactions it rests on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Why {
    /// The source.
    pub source: Source,
    /// The transaction that left the earlier version (none for the initial state).
    pub from_txn: Option<u32>,
    /// The transaction that saw or made the later version.
    pub to_txn: u32,
}

/// One edge of a key's version order: `from` precedes `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct VersionEdge {
    /// The earlier version.
    pub from: Version,
    /// The later version.
    pub to: Version,
    /// Its evidence.
    pub why: Why,
}

/// How a transaction met one register key from outside: Elle's external read and write.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Touch {
    /// What its first read saw, if that read came before any write of the key (`ok` only).
    pub read: Option<Version>,
    /// Its last write of the key.
    pub write: Option<i64>,
}

impl Touch {
    /// The first version it met: what it read, else what it wrote.
    pub fn first(&self) -> Option<Version> {
        self.read.or(self.write.map(Some))
    }

    /// The version it left: what it wrote, else what it read.
    pub fn last(&self) -> Option<Version> {
        self.write.map(Some).or(self.read)
    }
}

/// The register keys a transaction met and how: reads only if it is `ok`, nothing if it failed.
pub(crate) fn touches(txn: &Txn) -> Vec<(Key, Touch)> {
    let mut out: Vec<(Key, Touch)> = Vec::new();
    if txn.outcome == Outcome::Fail {
        return out;
    }
    for mop in &txn.mops {
        let (key, read, write) = match mop {
            Mop::Read {
                key,
                seen: Seen::Register(v),
            } => (*key, Some(*v), None),
            Mop::Write { key, value } => (*key, None, Some(*value)),
            _ => continue,
        };
        let i = match out.iter().position(|(k, _)| *k == key) {
            Some(i) => i,
            None => {
                out.push((key, Touch::default()));
                out.len() - 1
            }
        };
        let touch = &mut out[i].1;
        if touch.read.is_none() && touch.write.is_none() {
            touch.read = read;
        }
        if write.is_some() {
            touch.write = write;
        }
    }
    out.retain(|(_, t)| t.read.is_some() || t.write.is_some());
    out
}

/// The inferred version orders and the indexes that turn them into dependencies.
#[derive(Debug, Default)]
pub(crate) struct Orders {
    /// Per key (by id): the edges of its version order.
    pub edges: Vec<Vec<VersionEdge>>,
    /// Why each (key, earlier, later) edge holds.
    why: FxMap<(Key, Version, Version), Why>,
    /// The transaction (`ok` or `info`) whose last write of a key left each value.
    writers: FxMap<(Key, i64), u32>,
    /// The `ok` transactions whose external read of a key saw each version.
    readers: FxMap<(Key, Version), Vec<u32>>,
    /// Values with an earlier version that is not `nil` and has a writer.
    after_written: BTreeSet<(Key, i64)>,
}

/// Infers every register key's version order under `assume`; returns it with the
/// `cyclic-versions` anomalies met on the way (see the module doc).
pub(crate) fn orders(txns: &[Txn], keys: &Keys, assume: &Assumptions) -> (Orders, Vec<Anomaly>) {
    let n = keys.names.len();
    let touched: Vec<Vec<(Key, Touch)>> = txns.iter().map(touches).collect();
    let mut o = Orders {
        edges: vec![Vec::new(); n],
        ..Orders::default()
    };
    for (t, touches) in touched.iter().enumerate() {
        for (k, touch) in touches {
            if let Some(w) = touch.write {
                o.writers.entry((*k, w)).or_insert(t as u32);
            }
            if let Some(r) = touch.read {
                o.readers.entry((*k, r)).or_default().push(t as u32);
            }
        }
    }
    let mut by_source = vec![(Source::InitialState, sources::initial_state(&touched, n))];
    if assume.wfr_keys {
        by_source.push((Source::WfrKeys, sources::wfr(txns, &touched, n)));
    }
    if assume.sequential_keys {
        let edges = sources::sequential(txns, &touched, n);
        by_source.push((Source::SequentialKeys, edges));
    }
    if assume.linearizable_keys {
        let edges = sources::linearizable(txns, &touched, n);
        by_source.push((Source::LinearizableKeys, edges));
    }
    let mut anomalies = Vec::new();
    for key in 0..n {
        let mut used: Vec<Source> = Vec::new();
        for (source, edges) in &by_source {
            let mut names = used.clone();
            names.push(*source);
            let candidate = &edges[key];
            if candidate.is_empty() {
                used = names;
                continue;
            }
            let mut all = o.edges[key].clone();
            let have: FxMap<(Version, Version), ()> =
                all.iter().map(|e| ((e.from, e.to), ())).collect();
            all.extend(
                candidate
                    .iter()
                    .filter(|e| !have.contains_key(&(e.from, e.to))),
            );
            let sccs = cycles(&all);
            if sccs.is_empty() {
                o.edges[key] = all;
                used = names;
                continue;
            }
            for scc in sccs {
                let k = key as Key;
                anomalies.push(explain::cyclic(txns, keys, k, &scc, &all, &names));
            }
        }
    }
    o.index();
    (o, anomalies)
}

/// The strongly connected components of more than one version of the graph of `edges`, each as
/// its versions in order (`nil` first).
fn cycles(edges: &[VersionEdge]) -> Vec<Vec<Version>> {
    let mut g: DiGraph<Version, ()> = DiGraph::new();
    let mut node: FxMap<Version, NodeIndex> = FxMap::default();
    for e in edges {
        let a = *node.entry(e.from).or_insert_with(|| g.add_node(e.from));
        let b = *node.entry(e.to).or_insert_with(|| g.add_node(e.to));
        g.add_edge(a, b, ());
    }
    let mut out: Vec<Vec<Version>> = petgraph::algo::kosaraju_scc(&g)
        .into_iter()
        .filter(|c| c.len() > 1)
        .map(|c| {
            let mut versions: Vec<Version> = c.iter().map(|n| g[*n]).collect();
            versions.sort_unstable();
            versions
        })
        .collect();
    out.sort();
    out
}

impl Orders {
    /// Fills the indexes of the accepted edges.
    fn index(&mut self) {
        for (key, edges) in self.edges.iter().enumerate() {
            let k = key as Key;
            for e in edges {
                self.why.entry((k, e.from, e.to)).or_insert(e.why);
                if let (Some(from), Some(to)) = (e.from, e.to) {
                    if self.writers.contains_key(&(k, from)) {
                        self.after_written.insert((k, to));
                    }
                }
            }
        }
    }

    /// Calls `edge(a, b, kind)` for every ww and rw dependency the version orders give (see
    /// the module doc); self-edges included, for the caller to drop.
    pub(crate) fn dependencies(&self, edge: &mut dyn FnMut(u32, u32, EdgeKind)) {
        for (key, edges) in self.edges.iter().enumerate() {
            let k = key as Key;
            for e in edges {
                let Some(to) = e.to else { continue };
                let Some(&w2) = self.writers.get(&(k, to)) else {
                    continue;
                };
                if let Some(&w1) = e.from.and_then(|from| self.writers.get(&(k, from))) {
                    edge(w1, w2, EdgeKind::Ww);
                }
                if e.from.is_none() && self.after_written.contains(&(k, to)) {
                    continue;
                }
                for r in self.readers.get(&(k, e.from)).into_iter().flatten() {
                    edge(*r, w2, EdgeKind::Rw);
                }
            }
        }
    }

    /// Why transaction `a` precedes `b` by a ww or rw edge of these orders: the key, `b`'s
    /// value, the version `a` wrote or read, and the source; `None` if no register edge does.
    pub(crate) fn evidence(
        &self,
        txns: &[Txn],
        a: u32,
        b: u32,
        kind: EdgeKind,
    ) -> Option<(Key, i64, Version, Source)> {
        let (ta, tb) = (touches(&txns[a as usize]), touches(&txns[b as usize]));
        ta.iter().find_map(|(k, touch)| {
            let from = match kind {
                EdgeKind::Ww => Some(touch.write?),
                EdgeKind::Rw => touch.read?,
                _ => return None,
            };
            let to = tb.iter().find(|(kb, _)| kb == k)?.1.write?;
            let why = self.why.get(&(*k, from, Some(to)))?;
            Some((*k, to, from, why.source))
        })
    }
}
