//! The shortest cycle of each of Adya's classes inside one strongly connected component, found
//! breadth first within a budget.

use super::{Dependencies, DATA, ORDER, PROCESS, RT, RW, WR, WW};
use petgraph::graph::{DiGraph, EdgeIndex, NodeIndex};
use petgraph::visit::EdgeRef;
use std::collections::VecDeque;

/// A cycle found: its class and its edges, in order.
pub(super) struct Found {
    pub(super) class: String,
    pub(super) edges: Vec<EdgeIndex>,
}

/// The budget of a component's search ran out.
struct Exhausted;

/// Breadth-first searches inside one strongly connected component.
pub(super) struct Component<'g> {
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
    /// Per local node, its strongly connected component over the current search's edge kinds
    /// only: a cycle of those kinds never leaves one, so nothing outside it is walked.
    sub: Vec<u32>,
    steps: u64,
    steps_max: u64,
}

impl<'g> Component<'g> {
    /// The search state of component `id`, whose nodes are `nodes`.
    pub(super) fn new(
        g: &'g Dependencies,
        nodes: &'g [NodeIndex],
        comp_of: &'g [u32],
        local: &'g [u32],
        id: u32,
        steps_max: u64,
    ) -> Self {
        Component {
            g,
            nodes,
            comp_of,
            local,
            id,
            stamp: vec![0; nodes.len() * 2],
            parent: vec![(0, EdgeIndex::end()); nodes.len() * 2],
            generation: 0,
            sub: vec![0; nodes.len()],
            steps: 0,
            steps_max,
        }
    }

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
                if self.sub[self.local[t.index()] as usize] != self.sub[(s / 2) as usize] {
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

    /// Per local node, the id of its strongly connected component over the edges of the kinds
    /// in `mask` (Kosaraju, iterative, on a copy of the component with those edges only).
    fn sub_components(&self, mask: u8) -> Vec<u32> {
        let mut sub: DiGraph<(), ()> = DiGraph::with_capacity(self.nodes.len(), 0);
        for _ in self.nodes {
            sub.add_node(());
        }
        for (i, n) in self.nodes.iter().enumerate() {
            for e in self.g.edges(*n) {
                let t = e.target().index();
                if *e.weight() & mask != 0 && self.comp_of[t] == self.id {
                    let to = NodeIndex::new(self.local[t] as usize);
                    sub.add_edge(NodeIndex::new(i), to, ());
                }
            }
        }
        let mut out = vec![0; self.nodes.len()];
        for (id, c) in petgraph::algo::kosaraju_scc(&sub).into_iter().enumerate() {
            for n in c {
                out[n.index()] = id as u32;
            }
        }
        out
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
        self.sub = self.sub_components(first | allowed);
        for i in 0..self.nodes.len() {
            let u = self.nodes[i];
            let starts: Vec<(EdgeIndex, NodeIndex)> = self
                .g
                .edges(u)
                .filter(|e| *e.weight() == first && self.comp_of[e.target().index()] == self.id)
                .filter(|e| self.sub[self.local[e.target().index()] as usize] == self.sub[i])
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
pub(super) fn component_cycles(mut c: Component) -> (Vec<Found>, bool) {
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
