//! The dependency graph of transactions and its cycles (Elle; Adya's phenomena).
//!
//! Nodes are transactions (ops that did not `fail`); edges say one must precede another:
//! ww, wr, rw from the recovered version orders (see `list`), real time (one completed before
//! the other began) and process order. Real-time edges come from a sweep over invocations and
//! completions that links each op only to the *frontier* of completed ops not yet followed by
//! another completed op, which keeps the edge count at O(n × concurrency) while preserving every
//! real-time order by transitivity.
//!
//! A cycle is an anomaly. Strongly connected components (Tarjan, petgraph) bound where cycles
//! can be; inside each, the shortest cycle of each class is searched (breadth first from the end
//! of one starting edge back to its start), the classes being Adya's:
//!
//! - `G0` (write cycle): ww edges only;
//! - `G1c` (circular information flow): ww and wr edges, at least one wr;
//! - `G-single` (read skew): exactly one rw edge, the rest ww / wr;
//! - `G2-item` (anti-dependency cycle): two or more rw edges;
//!
//! and, when a component has no cycle of a class on data edges alone, the same class with real
//! time or process edges allowed: `G0-realtime`, `G1c-process`, `G-single-realtime`, ... (the
//! suffix names the extra order used: `-realtime` if any real-time edge, else `-process`). Every
//! search counts the edges it looks at against a budget; a component where the budget ran out
//! before any cycle was found leaves the verdict `Unknown`.

use super::cycle::{render, EdgeKind, Step};
use super::list::Versions;
use super::txn::{FxMap, Key, Keys, Mop, Seen, Txn};
use crate::anomaly::Anomaly;
use crate::anomaly::AnomalyEvent;
use crate::op::Outcome;
use petgraph::graph::{DiGraph, EdgeIndex, NodeIndex};
use petgraph::visit::EdgeRef;
use rayon::prelude::*;
use serde_json::json;
use std::collections::{BTreeSet, VecDeque};

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

/// A cycle found: its class and its edges, in order.
struct Found {
    class: String,
    edges: Vec<EdgeIndex>,
}

/// The budget of a component's search ran out.
struct Exhausted;

/// Breadth-first searches inside one strongly connected component.
struct Component<'g> {
    g: &'g Dependencies,
    nodes: &'g [NodeIndex],
    /// Component id of every node of the graph.
    comp_of: &'g [u32],
    /// Index of every node in its component's `nodes`.
    local: &'g [u32],
    id: u32,
    /// Visit stamps per (local node, saw a second rw) state.
    stamp: Vec<u32>,
    parent: Vec<(u32, EdgeIndex)>,
    generation: u32,
    steps: u64,
    steps_max: u64,
}

impl Component<'_> {
    /// The shortest path from `from` to `to` over `allowed` edges, at most `len_max` long; with
    /// `want_rw`, one that uses at least one rw edge.
    fn path(
        &mut self,
        from: NodeIndex,
        to: NodeIndex,
        allowed: u8,
        want_rw: bool,
        len_max: usize,
    ) -> Result<Option<Vec<EdgeIndex>>, Exhausted> {
        self.generation += 1;
        let generation = self.generation;
        let start = self.local[from.index()] * 2;
        let target = self.local[to.index()] * 2 + u32::from(want_rw);
        self.stamp[start as usize] = generation;
        let mut queue = VecDeque::from([(start, 0usize)]);
        while let Some((s, depth)) = queue.pop_front() {
            if depth >= len_max {
                continue;
            }
            let node = self.nodes[(s / 2) as usize];
            for e in self.g.edges(node) {
                self.steps += 1;
                if self.steps > self.steps_max {
                    return Err(Exhausted);
                }
                let kind = *e.weight();
                let t = e.target();
                if kind & allowed == 0 || self.comp_of[t.index()] != self.id {
                    continue;
                }
                let flag = (s & 1) | u32::from(want_rw && kind == RW);
                let next = self.local[t.index()] * 2 + flag;
                if self.stamp[next as usize] == generation {
                    continue;
                }
                self.stamp[next as usize] = generation;
                self.parent[next as usize] = (s, e.id());
                if next == target {
                    let mut path = Vec::with_capacity(depth + 1);
                    let mut states = vec![next / 2];
                    let mut at = next;
                    while at != start {
                        let (prev, edge) = self.parent[at as usize];
                        path.push(edge);
                        states.push(prev / 2);
                        at = prev;
                    }
                    path.reverse();
                    // With `want_rw` a walk may pass a node twice (once per flag): not a cycle.
                    states.sort_unstable();
                    let simple = states.windows(2).all(|w| w[0] != w[1]);
                    return Ok(simple.then_some(path));
                }
                if t == to {
                    // Only the target state may end at `to`; never walk through it.
                    continue;
                }
                queue.push_back((next, depth + 1));
            }
        }
        Ok(None)
    }

    /// The shortest cycle that starts with an edge of kind `first` and continues over `allowed`
    /// edges (with `want_rw`, through a second rw edge), and whether the budget ran out.
    fn shortest(
        &mut self,
        first: u8,
        allowed: u8,
        want_rw: bool,
    ) -> (Option<Vec<EdgeIndex>>, bool) {
        let mut best: Option<Vec<EdgeIndex>> = None;
        for i in 0..self.nodes.len() {
            let u = self.nodes[i];
            let starts: Vec<(EdgeIndex, NodeIndex)> = self
                .g
                .edges(u)
                .filter(|e| *e.weight() == first && self.comp_of[e.target().index()] == self.id)
                .map(|e| (e.id(), e.target()))
                .collect();
            for (edge, v) in starts {
                let len_max = best.as_ref().map_or(usize::MAX, |b| b.len() - 2);
                if len_max == 0 {
                    return (best, false);
                }
                match self.path(v, u, allowed, want_rw, len_max) {
                    Ok(Some(path)) => {
                        let mut cycle = vec![edge];
                        cycle.extend(path);
                        best = Some(cycle);
                    }
                    Ok(None) => {}
                    Err(Exhausted) => return (best, true),
                }
            }
        }
        (best, false)
    }
}

/// Adya's class of a cycle from its edges' kinds (see the module doc).
fn classify(g: &Dependencies, edges: &[EdgeIndex]) -> String {
    let kinds: Vec<u8> = edges.iter().map(|e| g[*e]).collect();
    let rw = kinds.iter().filter(|k| **k == RW).count();
    let base = match rw {
        0 if kinds.iter().all(|k| *k & (WR | RW) == 0) => "G0",
        0 => "G1c",
        1 => "G-single",
        _ => "G2-item",
    };
    let suffix = if kinds.contains(&RT) {
        "-realtime"
    } else if kinds.contains(&PROCESS) {
        "-process"
    } else {
        ""
    };
    format!("{base}{suffix}")
}

/// The searches run in every component: (first edge, allowed edges, needs a second rw).
const SEARCHES: [(u8, u8, bool); 4] = [
    (WW, WW, false),
    (WR, WW | WR, false),
    (RW, WW | WR, false),
    (RW, DATA, true),
];

/// The cycles of one component: per class, the shortest found; and whether the search was cut
/// short before finding any.
fn component_cycles(mut c: Component) -> (Vec<Found>, bool) {
    let mut found: Vec<Found> = Vec::new();
    let mut cut = false;
    for extra in [0, ORDER] {
        for (first, allowed, want_rw) in SEARCHES {
            let (best, exhausted) = c.shortest(first, allowed | extra, want_rw);
            cut |= exhausted;
            if let Some(edges) = best {
                let class = classify(c.g, &edges);
                if !found.iter().any(|f| f.class == class) {
                    found.push(Found { class, edges });
                }
            }
            if exhausted {
                break;
            }
        }
        // Real-time variants only where data edges alone found nothing of the kind.
        if cut || !found.is_empty() {
            break;
        }
    }
    debug_assert!(
        cut || !found.is_empty(),
        "a component of two or more nodes has a cycle"
    );
    let unknown = found.is_empty();
    (found, unknown)
}

/// Every cycle anomaly of `g`, and how many components were left undecided by the budget.
pub(crate) fn cycle_cases(
    g: &Dependencies,
    txns: &[Txn],
    keys: &Keys,
    v: &Versions,
    steps_max: u64,
) -> (Vec<Anomaly>, usize) {
    let sccs: Vec<Vec<NodeIndex>> = petgraph::algo::tarjan_scc(g)
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
            component_cycles(Component {
                g,
                nodes,
                comp_of: &comp_of,
                local: &local,
                id: id as u32,
                stamp: vec![0; nodes.len() * 2],
                parent: vec![(0, EdgeIndex::end()); nodes.len() * 2],
                generation: 0,
                steps: 0,
                steps_max,
            })
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
                let next = v.next_unseen(*key, l.len())?;
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
    }
    step
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::elle::list::versions;
    use crate::elle::txn::txns;
    use crate::op::Ops;
    use crate::testkit::h;

    fn cycles(table: &str) -> Vec<Anomaly> {
        let history = h(table);
        let ops = Ops::from_history(&history).unwrap().ops;
        let (txns, keys) = txns(&history, &ops).unwrap();
        let v = versions(&txns, &keys);
        let g = build(&txns, &keys, &v);
        let (found, unknown) = cycle_cases(&g, &txns, &keys, &v, 1_000_000);
        assert_eq!(unknown, 0);
        found
    }

    fn classes(found: &[Anomaly]) -> Vec<&str> {
        found.iter().map(|a| a.class.as_str()).collect()
    }

    #[test]
    fn serializable_txns_have_no_cycle() {
        let ok = r#"
            0  invoke txn - [["append","x",1],["append","y",1]] @10
            0  ok     txn - [["append","x",1],["append","y",1]] @20
            1  invoke txn - [["r","x",null],["r","y",null]]     @30
            1  ok     txn - [["r","x",[1]],["r","y",[1]]]       @40
        "#;
        assert!(cycles(ok).is_empty());
    }

    #[test]
    fn write_cycle_is_g0() {
        // T1 appends 1 to x then T2's 2; on y, T2's 1 comes before T1's 2.
        let bad = r#"
            0  invoke txn - [["append","x",1],["append","y",2]] @10
            1  invoke txn - [["append","x",2],["append","y",1]] @11
            0  ok     txn - [["append","x",1],["append","y",2]] @20
            1  ok     txn - [["append","x",2],["append","y",1]] @21
            2  invoke txn - [["r","x",null],["r","y",null]]     @30
            2  ok     txn - [["r","x",[1,2]],["r","y",[1,2]]]   @40
        "#;
        let found = cycles(bad);
        assert_eq!(classes(&found), ["G0"]);
        let text = &found[0].explanation;
        assert!(
            text.contains("T2 appended 2 after T1 appended 1 to x"),
            "{text}"
        );
        assert!(text.contains("However, T2 < T1, because T1 appended 2 after T2 appended 1 to y: a contradiction!"), "{text}");
    }

    #[test]
    fn read_skew_is_g_single() {
        // T2 sees T1's append to x but not to y... in the other order: T2 reads y before T1's
        // append, and x after it.
        let bad = r#"
            0  invoke txn - [["append","x",1],["append","y",1]] @10
            1  invoke txn - [["r","x",null],["r","y",null]]     @11
            0  ok     txn - [["append","x",1],["append","y",1]] @20
            1  ok     txn - [["r","x",[1]],["r","y",[]]]        @21
            2  invoke txn - [["r","y",null]]                    @30
            2  ok     txn - [["r","y",[1]]]                     @40
        "#;
        let found = cycles(bad);
        assert_eq!(classes(&found), ["G-single"]);
        assert_eq!(found[0].keys, ["x", "y"]);
        let text = &found[0].explanation;
        assert!(text.contains("observed y empty, without"), "{text}");
    }

    #[test]
    fn write_skew_is_g2_item() {
        let bad = r#"
            0  invoke txn - [["r","x",null],["append","y",1]] @10
            1  invoke txn - [["r","y",null],["append","x",1]] @11
            0  ok     txn - [["r","x",[]],["append","y",1]]   @20
            1  ok     txn - [["r","y",[]],["append","x",1]]   @21
            2  invoke txn - [["r","x",null],["r","y",null]]   @30
            2  ok     txn - [["r","x",[1]],["r","y",[1]]]     @40
        "#;
        assert_eq!(classes(&cycles(bad)), ["G2-item"]);
    }

    #[test]
    fn repeated_elements_make_no_edges() {
        // 1 is appended once but read twice: a `duplicate-elements` anomaly, not evidence that
        // 1 came after 2 (G0) or that the read of [1] missed an append of 1 (G-single).
        let dup = "
            0  invoke append x 1       @10
            0  ok     append x 1       @20
            1  invoke read   x null    @25
            1  ok     read   x [1]     @28
            0  invoke append x 2       @30
            0  ok     append x 2       @40
            1  invoke read   x null    @70
            1  ok     read   x [1,2,1] @80
        ";
        assert!(cycles(dup).is_empty());
        // Past the repeat, the order goes on: 3 follows 2, and [1,2,1], read after 3 was
        // acknowledged, did not see it.
        let stale = "
            0  invoke append x 1         @10
            0  ok     append x 1         @20
            0  invoke append x 2         @30
            0  ok     append x 2         @40
            0  invoke append x 3         @50
            0  ok     append x 3         @60
            1  invoke read   x null      @70
            1  ok     read   x [1,2,1]   @80
            2  invoke read   x null      @90
            2  ok     read   x [1,2,1,3] @100
        ";
        let found = cycles(stale);
        assert_eq!(classes(&found), ["G-single-realtime"]);
        let text = &found[0].explanation;
        assert!(
            text.contains("observed x ending in 1, without T1's append of 3"),
            "{text}"
        );
    }

    #[test]
    fn stale_single_key_read_is_g_single_realtime() {
        // The read of [] began after the append of 1 completed; a later read shows 1.
        let bad = "
            0  invoke append x 1    @10
            0  ok     append x 1    @20
            1  invoke read   x null @30
            1  ok     read   x []   @40
            1  invoke read   x null @50
            1  ok     read   x [1]  @60
        ";
        let found = cycles(bad);
        assert_eq!(classes(&found), ["G-single-realtime"]);
        let text = &found[0].explanation;
        assert!(text.contains("completed before"), "{text}");
    }
}
