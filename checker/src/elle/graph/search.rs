//! The shortest cycle of each of Elle's cycle classes inside one strongly connected component,
//! found breadth first within a budget.
//!
//! The classes are searched in Elle's order, and one is skipped when a class found earlier
//! implies it (Elle's `implied-anomalies`): in each family (`G0` < `G1c`, and `G-single-item` <
//! `G-nonadjacent-item` < `G2-item`), a class implies the later ones, and a plain class implies
//! its `-process` variant, which implies its `-realtime` one. So a component reports, per
//! family, only its least classes: `G0` and `G-single-item`, say, but never `G0` and `G1c`.

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

/// What a cycle's rw edges must look like, beyond the edges allowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RwRule {
    /// No rw edge after the first (the allowed edges carry none, or at most the first is rw).
    Any,
    /// Two or more rw edges in all (G2-item).
    TwoOrMore,
    /// Two or more rw edges, no two of them adjacent, around the cycle (G-nonadjacent).
    Nonadjacent,
}

/// Search state flags: bit 0, a second rw edge was taken; bit 1, the last edge was rw.
const SECOND_RW: u32 = 1;
const LAST_RW: u32 = 2;
/// States per node.
const FLAGS: u32 = 4;

impl RwRule {
    /// The flags after the first edge (an rw edge unless the rule is `Any`).
    fn start(self) -> u32 {
        match self {
            RwRule::Nonadjacent => LAST_RW,
            _ => 0,
        }
    }

    /// The flags after taking an edge of `kind` in state `flags`, if the rule allows it.
    fn step(self, flags: u32, kind: u8) -> Option<u32> {
        match (self, kind == RW) {
            (RwRule::Any, _) => Some(flags),
            (RwRule::TwoOrMore, true) => Some(SECOND_RW),
            (RwRule::TwoOrMore, false) => Some(flags),
            (RwRule::Nonadjacent, true) if flags & LAST_RW != 0 => None,
            (RwRule::Nonadjacent, true) => Some(SECOND_RW | LAST_RW),
            (RwRule::Nonadjacent, false) => Some(flags & SECOND_RW),
        }
    }

    /// The flags a walk must end in, back at the first edge's source.
    fn target(self) -> u32 {
        match self {
            RwRule::Any => 0,
            // The cycle's first edge is rw: the last one must not be (they are adjacent).
            RwRule::TwoOrMore | RwRule::Nonadjacent => SECOND_RW,
        }
    }
}

/// Breadth-first searches inside one strongly connected component.
pub(super) struct Component<'g> {
    g: &'g Dependencies,
    nodes: &'g [NodeIndex],
    /// Component id of every node of the graph.
    comp_of: &'g [u32],
    /// Index of every node in its component's `nodes`.
    local: &'g [u32],
    id: u32,
    /// Visit stamps per (local node, flags) state.
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
        let states = nodes.len() * FLAGS as usize;
        Component {
            g,
            nodes,
            comp_of,
            local,
            id,
            stamp: vec![0; states],
            parent: vec![(0, EdgeIndex::end()); states],
            generation: 0,
            sub: vec![0; nodes.len()],
            steps: 0,
            steps_max,
        }
    }

    /// The shortest path from `from` to `to` over `allowed` edges, at most `len_max` long,
    /// whose rw edges (after a first edge into `from`) obey `rule`.
    fn path(
        &mut self,
        from: NodeIndex,
        to: NodeIndex,
        allowed: u8,
        rule: RwRule,
        len_max: usize,
    ) -> Result<Option<Vec<EdgeIndex>>, Exhausted> {
        self.generation += 1;
        let generation = self.generation;
        let start = self.local[from.index()] * FLAGS + rule.start();
        let target = self.local[to.index()] * FLAGS + rule.target();
        self.stamp[start as usize] = generation;
        let mut queue = VecDeque::from([(start, 0usize)]);
        while let Some((s, depth)) = queue.pop_front() {
            if depth >= len_max {
                continue;
            }
            let node = self.nodes[(s / FLAGS) as usize];
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
                if self.sub[self.local[t.index()] as usize] != self.sub[(s / FLAGS) as usize] {
                    continue;
                }
                let Some(flags) = rule.step(s % FLAGS, kind) else {
                    continue;
                };
                let next = self.local[t.index()] * FLAGS + flags;
                if self.stamp[next as usize] == generation {
                    continue;
                }
                self.parent[next as usize] = (s, e.id());
                if next == target {
                    match self.walk_back(start, next, depth) {
                        Some(path) => return Ok(Some(path)),
                        // Not a simple cycle: leave the target open to a later, simple walk.
                        None => continue,
                    }
                }
                self.stamp[next as usize] = generation;
                if t == to {
                    // Only the target state may end at `to`; never walk through it.
                    continue;
                }
                queue.push_back((next, depth + 1));
            }
        }
        Ok(None)
    }

    /// The edges from state `start` to state `end`, if they pass no node twice (a walk with
    /// rw flags may pass a node once per flag state: not a cycle).
    fn walk_back(&self, start: u32, end: u32, depth: usize) -> Option<Vec<EdgeIndex>> {
        let mut path = Vec::with_capacity(depth + 1);
        let mut states = vec![end / FLAGS];
        let mut at = end;
        while at != start {
            let (prev, edge) = self.parent[at as usize];
            path.push(edge);
            states.push(prev / FLAGS);
            at = prev;
        }
        path.reverse();
        states.sort_unstable();
        states.windows(2).all(|w| w[0] != w[1]).then_some(path)
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
    /// edges under `rule`, and whether the budget ran out.
    fn shortest(&mut self, first: u8, allowed: u8, rule: RwRule) -> (Option<Vec<EdgeIndex>>, bool) {
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
                match self.path(v, u, allowed, rule, len_max) {
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

/// A cycle class: its family (0: `G0` / `G1c`; 1: `G-single-item` / `G-nonadjacent-item` /
/// `G2-item`), its level in the family, and its variant (0: data edges only, 1: `-process`,
/// 2: `-realtime`). A class implies every class of its family at least as high on both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Class {
    family: u8,
    level: u8,
    variant: u8,
}

impl Class {
    const BASES: [(u8, u8, &'static str); 5] = [
        (0, 0, "G0"),
        (0, 1, "G1c"),
        (1, 0, "G-single-item"),
        (1, 1, "G-nonadjacent-item"),
        (1, 2, "G2-item"),
    ];

    fn name(self) -> String {
        let base = Class::BASES
            .iter()
            .find(|(f, l, _)| (*f, *l) == (self.family, self.level))
            .map_or("?", |(_, _, n)| n);
        let suffix = ["", "-process", "-realtime"][self.variant as usize];
        format!("{base}{suffix}")
    }

    fn implies(self, other: Class) -> bool {
        self.family == other.family && self.level <= other.level && self.variant <= other.variant
    }

    /// (first edge, allowed data edges, rw rule) of the search for this class.
    fn search(self) -> (u8, u8, RwRule) {
        let extra = [0, PROCESS, ORDER][self.variant as usize];
        let (first, allowed, rule) = match (self.family, self.level) {
            (0, 0) => (WW, WW, RwRule::Any),
            (0, _) => (WR, WW | WR, RwRule::Any),
            (_, 0) => (RW, WW | WR, RwRule::Any),
            (_, 1) => (RW, DATA, RwRule::Nonadjacent),
            _ => (RW, DATA, RwRule::TwoOrMore),
        };
        (first, allowed | extra, rule)
    }
}

/// Elle's class of a cycle from its edges' kinds (see the module doc).
fn classify(g: &Dependencies, edges: &[EdgeIndex]) -> Class {
    let kinds: Vec<u8> = edges.iter().map(|e| g[*e]).collect();
    let rw = kinds.iter().filter(|k| **k == RW).count();
    let n = kinds.len();
    let adjacent = (0..n).any(|i| kinds[i] == RW && kinds[(i + 1) % n] == RW);
    let (family, level) = match rw {
        0 if kinds.iter().all(|k| *k & (WR | RW) == 0) => (0, 0),
        0 => (0, 1),
        1 => (1, 0),
        _ if !adjacent => (1, 1),
        _ => (1, 2),
    };
    let variant = if kinds.contains(&RT) {
        2
    } else if kinds.contains(&PROCESS) {
        1
    } else {
        0
    };
    Class {
        family,
        level,
        variant,
    }
}

/// The cycles of one component: per class not implied by one found before, the shortest; and
/// whether it found none (the budget ran out first).
pub(super) fn component_cycles(mut c: Component) -> (Vec<Found>, bool) {
    let mut found: Vec<(Class, Vec<EdgeIndex>)> = Vec::new();
    'search: for variant in 0..3 {
        for (family, level, _) in Class::BASES {
            let class = Class {
                family,
                level,
                variant,
            };
            if found.iter().any(|(f, _)| f.implies(class)) {
                continue;
            }
            let (first, allowed, rule) = class.search();
            let (best, exhausted) = c.shortest(first, allowed, rule);
            if let Some(edges) = best {
                // The search's constraints give `class`; should a pruned walk make a shortest
                // cycle of another class, it is reported under the class it is.
                let is = classify(c.g, &edges);
                if !found.iter().any(|(f, _)| f.implies(is)) {
                    found.push((is, edges));
                }
            }
            if exhausted {
                break 'search;
            }
        }
    }
    // A component of two or more nodes has a cycle; only a budget cut (or, rarely, a shortest
    // walk that is not a simple cycle) leaves it without one, and then its cycles are unknown.
    let unknown = found.is_empty();
    let found = found
        .into_iter()
        .map(|(class, edges)| Found {
            class: class.name(),
            edges,
        })
        .collect();
    (found, unknown)
}
