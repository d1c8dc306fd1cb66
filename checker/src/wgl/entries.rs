//! The list of call and return entries the search walks, sorted by time.

use super::NIL;
use crate::search::Interval;

/// A node of the doubly linked entry list; node 0 is the head sentinel.
#[derive(Debug, Clone, Copy)]
pub(super) struct Entry {
    pub(super) op: u32,
    pub(super) is_return: bool,
    pub(super) prev: u32,
    pub(super) next: u32,
}

/// The entry list, with O(1) lift (unlink an op's entries) and unlift (relink them).
pub(super) struct Entries {
    pub(super) nodes: Vec<Entry>,
    /// Per op, the node of its return entry (`NIL` for `info`).
    pub(super) return_of: Vec<u32>,
}

impl Entries {
    /// Builds the list sorted by time.
    ///
    /// Why calls sort before returns at equal times (intervals are closed): timestamps come from
    /// a clock of finite resolution, and two events stamped alike may have happened in either
    /// order. Treating `[call, return]` as closed makes ops that merely touch concurrent, so the
    /// search may order them either way; it can only accept more histories, never report a
    /// violation that hinges on which of two equal timestamps came first. (Porcupine does the
    /// same.) Ties among calls or among returns break by op index, to stay deterministic.
    pub(super) fn new<I>(intervals: &[Interval<I>]) -> Entries {
        let mut order: Vec<(u64, bool, u32)> = Vec::with_capacity(intervals.len() * 2);
        for (i, interval) in intervals.iter().enumerate() {
            order.push((interval.call_ns, false, i as u32));
            if let Some(r) = interval.return_ns {
                debug_assert!(interval.call_ns <= r, "op {i} returns before its call");
                order.push((r, true, i as u32));
            }
        }
        order.sort_unstable();
        let mut nodes = Vec::with_capacity(order.len() + 1);
        nodes.push(Entry {
            op: NIL,
            is_return: false,
            prev: NIL,
            next: if order.is_empty() { NIL } else { 1 },
        });
        let mut return_of = vec![NIL; intervals.len()];
        for (k, &(_, is_return, op)) in order.iter().enumerate() {
            let node = (k + 1) as u32;
            if is_return {
                return_of[op as usize] = node;
            }
            nodes.push(Entry {
                op,
                is_return,
                prev: node - 1,
                next: if k + 1 < order.len() { node + 1 } else { NIL },
            });
        }
        Entries { nodes, return_of }
    }

    pub(super) fn unlink(&mut self, node: u32) {
        let Entry { prev, next, .. } = self.nodes[node as usize];
        self.nodes[prev as usize].next = next;
        if next != NIL {
            self.nodes[next as usize].prev = prev;
        }
    }

    pub(super) fn relink(&mut self, node: u32) {
        let Entry { prev, next, .. } = self.nodes[node as usize];
        self.nodes[prev as usize].next = node;
        if next != NIL {
            self.nodes[next as usize].prev = node;
        }
    }

    /// Removes call `node` and its op's return entry from the list.
    pub(super) fn lift(&mut self, node: u32) {
        let ret = self.return_of[self.nodes[node as usize].op as usize];
        self.unlink(node);
        if ret != NIL {
            self.unlink(ret);
        }
    }

    /// Undoes [`Entries::lift`] (in reverse order, as dancing links require).
    pub(super) fn unlift(&mut self, node: u32) {
        let ret = self.return_of[self.nodes[node as usize].op as usize];
        if ret != NIL {
            self.relink(ret);
        }
        self.relink(node);
    }

    pub(super) fn first(&self) -> u32 {
        self.nodes[0].next
    }
}
