//! The dependency graph of transactions and its cycles (Elle; Adya's phenomena).
//!
//! Nodes are transactions (ops that did not `fail`); edges say one must precede another:
//! ww, wr, rw from the recovered version orders (see `list`), real time (one completed before
//! the other began) and process order. Real-time edges come from a sweep over invocations and
//! completions that links each op only to the *frontier* of completed ops not yet followed by
//! another completed op, which keeps the edge count at O(n × concurrency) while preserving every
//! real-time order by transitivity.
//!
//! A cycle is an anomaly. Strongly connected components (Kosaraju, petgraph: iterative, where
//! Tarjan's recursion overflows the stack on long chains) bound where cycles can be; inside each
//! (and, per class, inside the components of that class's edge kinds alone), the shortest cycle
//! of each class is searched (breadth first from the end of one starting edge back to its
//! start), the classes being Elle's (Adya's, for items):
//!
//! - `G0` (write cycle): ww edges only;
//! - `G1c` (circular information flow): ww and wr edges, at least one wr;
//! - `G-single-item` (read skew): exactly one rw edge, the rest ww / wr;
//! - `G-nonadjacent-item`: two or more rw edges, no two of them adjacent in the cycle;
//! - `G2-item` (anti-dependency cycle): two or more rw edges, some two adjacent;
//!
//! and the same classes with process edges (`-process`) or real-time edges too (`-realtime`,
//! when the cycle has one). A class is not searched when one found before implies it (Elle's
//! `implied-anomalies`, see `search`): `G0` hides `G1c`, `G-single-item` hides
//! `G-nonadjacent-item` and `G2-item`, a plain class hides its variants. Every search counts
//! the edges it looks at against a budget; a component where the budget ran out before any
//! cycle was found leaves the verdict `Unknown`.
//!
//! Appends no read saw are placed after the longest read, as Elle does (unobserved writes):
//! ww from the key's last read append to each, rw from every read of the whole order (or of
//! the empty list, when nothing was read) to each.

use super::cycle::{render, EdgeKind, Step};
use super::list::Versions;
use super::txn::{FxMap, Key, Keys, Mop, Seen, Txn};
use crate::anomaly::Anomaly;
use crate::anomaly::AnomalyEvent;
use crate::op::Outcome;
use petgraph::graph::{DiGraph, EdgeIndex, NodeIndex};
use rayon::prelude::*;
use serde_json::json;
use std::collections::BTreeSet;

mod search;

use search::{component_cycles, Component, Found};

const WW: u8 = 1;
const WR: u8 = 2;
const RW: u8 = 4;
const RT: u8 = 8;
const PROCESS: u8 = 16;
const DATA: u8 = WW | WR | RW;
const ORDER: u8 = RT | PROCESS;

/// The graph: node `i` is transaction `i`; each edge carries one kind's bit.
pub(crate) type Dependencies = DiGraph<(), u8>;

/// Builds the dependency graph of `txns`; see the module doc.
pub(crate) fn build(txns: &[Txn], keys: &Keys, v: &Versions) -> Dependencies {
    let mut g = Dependencies::with_capacity(txns.len(), txns.len() * 4);
    for _ in txns {
        g.add_node(());
    }
    let live = |t: u32| txns[t as usize].outcome != Outcome::Fail;
    let add = |g: &mut Dependencies, a: u32, b: u32, kind: u8| {
        if a != b && live(a) && live(b) {
            g.add_edge(NodeIndex::new(a as usize), NodeIndex::new(b as usize), kind);
        }
    };
    for key in 0..keys.names.len() {
        let k = key as Key;
        let appends: Vec<i64> = v.appends(k).collect();
        for w in appends.windows(2) {
            if let (Some(a), Some(b)) = (v.writer(k, w[0]), v.writer(k, w[1])) {
                add(&mut g, a.txn, b.txn, WW);
            }
        }
        let order = &v.order[key];
        for read in &v.reads[key] {
            if v.incompatible.contains(read) {
                continue;
            }
            let n = v.seen(txns, *read).len();
            if let Some(w) = n.checked_sub(1).and_then(|i| v.writer(k, order[i])) {
                add(&mut g, w.txn, read.txn, WR);
            }
            if let Some(w) = v.next_unseen(k, n).and_then(|e| v.writer(k, e)) {
                add(&mut g, read.txn, w.txn, RW);
            }
        }
        unread_edges(txns, v, k, &mut |a, b, kind| add(&mut g, a, b, kind));
    }
    for (t, txn) in txns.iter().enumerate() {
        if txn.outcome != Outcome::Ok {
            continue;
        }
        for mop in &txn.mops {
            if let Mop::Read {
                key,
                seen: Seen::Register(Some(value)),
            } = mop
            {
                if let Some(w) = v.writer(*key, *value) {
                    add(&mut g, w.txn, t as u32, WR);
                }
            }
        }
    }
    v.register.dependencies(&mut |a, b, kind| {
        add(&mut g, a, b, if kind == EdgeKind::Ww { WW } else { RW })
    });
    realtime_edges(txns, &mut |a, b| add(&mut g, a, b, RT));
    let mut last: FxMap<u64, u32> = FxMap::default();
    for (t, txn) in txns.iter().enumerate() {
        if txn.outcome == Outcome::Fail {
            continue;
        }
        if let Some(prev) = last.insert(txn.process, t as u32) {
            add(&mut g, prev, t as u32, PROCESS);
        }
    }
    g
}

/// The edges of `key`'s appends that no read saw, placed after the whole order as Elle does:
/// ww from the order's last append, rw from every read that saw the whole order (the empty
/// read, when nothing was ever read).
fn unread_edges(txns: &[Txn], v: &Versions, key: Key, edge: &mut dyn FnMut(u32, u32, u8)) {
    let n = v.order[key as usize].len();
    let last = v.appends(key).last().and_then(|e| v.writer(key, e));
    let full: Vec<u32> = v.reads[key as usize]
        .iter()
        .filter(|r| !v.incompatible.contains(r) && v.seen(txns, **r).len() == n)
        .map(|r| r.txn)
        .collect();
    for e in &v.unread[key as usize] {
        let Some(w) = v.writer(key, *e) else { continue };
        if let Some(last) = last {
            edge(last.txn, w.txn, WW);
        }
        for r in &full {
            edge(*r, w.txn, RW);
        }
    }
}

/// Calls `edge(a, b)` for a set of real-time pairs whose transitive closure is "a completed
/// before b began", over the ops that did not fail.
fn realtime_edges(txns: &[Txn], edge: &mut dyn FnMut(u32, u32)) {
    // (time, 0 = invocation / 1 = completion, txn): invocations first at equal times, since
    // "completed before began" is strict.
    let mut events: Vec<(u64, u8, u32)> = Vec::with_capacity(txns.len() * 2);
    for (t, txn) in txns.iter().enumerate() {
        match txn.outcome {
            Outcome::Fail => {}
            Outcome::Info => events.push((txn.invoke_ns, 0, t as u32)),
            Outcome::Ok => {
                events.push((txn.invoke_ns, 0, t as u32));
                events.push((txn.complete_ns, 1, t as u32));
            }
        }
    }
    events.sort_unstable();
    let mut frontier: Vec<u32> = Vec::new();
    let mut preceded_by: FxMap<u32, Vec<u32>> = FxMap::default();
    for (_, kind, t) in events {
        if kind == 0 {
            for f in &frontier {
                edge(*f, t);
            }
            if txns[t as usize].outcome == Outcome::Ok {
                preceded_by.insert(t, frontier.clone());
            }
        } else {
            let before = preceded_by.remove(&t).expect("invoked before completed");
            frontier.retain(|f| !before.contains(f));
            frontier.push(t);
        }
    }
}

/// Every cycle anomaly of `g`, and how many components were left undecided by the budget.
pub(crate) fn cycle_cases(
    g: &Dependencies,
    txns: &[Txn],
    keys: &Keys,
    v: &Versions,
    steps_max: u64,
) -> (Vec<Anomaly>, usize) {
    let sccs: Vec<Vec<NodeIndex>> = petgraph::algo::kosaraju_scc(g)
        .into_iter()
        .filter(|c| c.len() > 1)
        .collect();
    let mut comp_of = vec![u32::MAX; g.node_count()];
    let mut local = vec![0u32; g.node_count()];
    for (id, nodes) in sccs.iter().enumerate() {
        for (i, n) in nodes.iter().enumerate() {
            comp_of[n.index()] = id as u32;
            local[n.index()] = i as u32;
        }
    }
    let results: Vec<(Vec<Found>, bool)> = sccs
        .par_iter()
        .enumerate()
        .map(|(id, nodes)| {
            component_cycles(Component::new(
                g, nodes, &comp_of, &local, id as u32, steps_max,
            ))
        })
        .collect();
    let mut out = Vec::new();
    let mut unknown = 0;
    for (found, undecided) in results {
        unknown += usize::from(undecided);
        for f in found {
            out.push(anomaly(g, txns, keys, v, &f));
        }
    }
    (out, unknown)
}

/// The anomaly for cycle `f`: steps with their evidence, rendered.
fn anomaly(g: &Dependencies, txns: &[Txn], keys: &Keys, v: &Versions, f: &Found) -> Anomaly {
    // Start the proof at the transaction earliest in the history.
    let source = |e: &EdgeIndex| g.edge_endpoints(*e).expect("an edge of the graph").0;
    let first = (0..f.edges.len())
        .min_by_key(|i| source(&f.edges[*i]).index())
        .expect("a cycle");
    let mut edges = f.edges.clone();
    edges.rotate_left(first);
    let f = &Found {
        class: f.class.clone(),
        edges,
    };
    let mut steps = Vec::with_capacity(f.edges.len());
    let mut order: Vec<&Txn> = Vec::with_capacity(f.edges.len());
    let mut names = BTreeSet::new();
    for e in &f.edges {
        let (a, b) = g.edge_endpoints(*e).expect("an edge of the graph");
        let (a, b) = (a.index() as u32, b.index() as u32);
        let step = evidence(txns, keys, v, a, b, EdgeKind::from_bit(g[*e]));
        if let Some(k) = &step.key {
            names.insert(k.clone());
        }
        order.push(&txns[a as usize]);
        steps.push(step);
    }
    debug_assert_eq!(
        g.edge_endpoints(f.edges[0]).map(|(a, _)| a),
        g.edge_endpoints(*f.edges.last().expect("a cycle"))
            .map(|(_, b)| b)
    );
    Anomaly {
        class: f.class.clone(),
        keys: names.into_iter().collect(),
        events: order
            .iter()
            .map(|t| AnomalyEvent {
                event: t.event,
                line: t.line,
            })
            .collect(),
        explanation: render(keys, &order, &steps),
        data: json!({ "cycle": steps }),
        context: None,
        cause: None,
    }
}

/// Why `a` precedes `b` by `kind`: the key and values that made the edge.
fn evidence(txns: &[Txn], keys: &Keys, v: &Versions, a: u32, b: u32, kind: EdgeKind) -> Step {
    let (ta, tb) = (&txns[a as usize], &txns[b as usize]);
    let mut step = Step {
        from_txn: ta.event,
        to_txn: tb.event,
        edge_kind: kind,
        key: None,
        value: None,
        from_value: None,
        unread: false,
        version_order: None,
    };
    let by = |k: Key, e: i64, t: u32| v.writer(k, e).is_some_and(|w| w.txn == t);
    let found: Option<(Key, i64, Option<i64>)> = match kind {
        EdgeKind::Ww => tb.mops.iter().find_map(|m| match m {
            Mop::Append { key, value } => {
                let prev = v.previous(*key, *value)?;
                by(*key, prev, a).then_some((*key, *value, Some(prev)))
            }
            _ => None,
        }),
        EdgeKind::Wr => tb.mops.iter().find_map(|m| match m {
            Mop::Read {
                key,
                seen: Seen::List(l),
            } => l
                .last()
                .filter(|e| by(*key, **e, a))
                .map(|e| (*key, *e, None)),
            Mop::Read {
                key,
                seen: Seen::Register(Some(e)),
            } => by(*key, *e, a).then_some((*key, *e, None)),
            _ => None,
        }),
        EdgeKind::Rw => ta.mops.iter().find_map(|m| match m {
            Mop::Read {
                key,
                seen: Seen::List(l),
            } => {
                let next = v.next_unseen(*key, l.len()).or_else(|| {
                    // The whole order seen: b's append came after it, never read.
                    let whole = l.len() == v.order[*key as usize].len();
                    let unread = &v.unread[*key as usize];
                    whole.then(|| unread.iter().copied().find(|e| by(*key, *e, b)))?
                })?;
                by(*key, next, b).then_some((*key, next, l.last().copied()))
            }
            _ => None,
        }),
        EdgeKind::Realtime | EdgeKind::Process => None,
    };
    if let Some((k, value, from_value)) = found {
        step.key = Some(keys.name(k).to_string());
        step.value = Some(value);
        step.from_value = from_value;
        step.unread =
            matches!(kind, EdgeKind::Ww | EdgeKind::Rw) && !v.position.contains_key(&(k, value));
    } else if let Some((k, value, from, source)) = v.register.evidence(txns, a, b, kind) {
        step.key = Some(keys.name(k).to_string());
        step.value = Some(value);
        step.from_value = from;
        step.version_order = Some(source.name().to_string());
    }
    step
}

#[cfg(test)]
mod tests;
