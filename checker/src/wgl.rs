//! Linearizability of one partition (one key) by Wing & Gong's backtracking search with Lowe's
//! memoization: the general search every fast path must agree with.
//!
//! The history becomes one list of call and return entries sorted by time. The search walks the
//! list from the front: at a call it tries to linearize that op now (the model must accept it in
//! the current state), removes ("lifts") the op's entries from the list and starts again from the
//! front; at a return it has met an op that must already have taken effect but could not, so it
//! backtracks: undoes the most recent linearization and tries the next candidate after it. The
//! history is linearizable when no return entries are left. The cache of configurations
//! (set of linearized ops, model state) already explored is what makes this practical: two
//! different orders that reach the same configuration have the same future.
//!
//! Ops with unknown outcome (`info`) have no return entry: their return is at +infinity, so they
//! may be linearized at any point after their call, or never (they may not have happened).
//!
//! The search is iterative (an explicit stack), bounded by a [`Budget`], and deterministic when
//! the budget has no time limit.

use crate::hash::{mix64, BuildPassThrough, FxHasher};
use crate::model::{Effect, Model};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash};
use std::time::Instant;

pub use crate::search::{Budget, Exhausted, Interval, Search};

const NIL: u32 = u32::MAX;
/// Check the wall clock and cache size only every this many steps (a power of two):
/// `Instant::now` is not free.
const STEPS_PER_CLOCK_CHECK: u64 = 1024;
const _: () = assert!(STEPS_PER_CLOCK_CHECK.is_power_of_two());

/// A node of the doubly linked entry list; node 0 is the head sentinel.
#[derive(Debug, Clone, Copy)]
struct Entry {
    op: u32,
    is_return: bool,
    prev: u32,
    next: u32,
}

/// The entry list, with O(1) lift (unlink an op's entries) and unlift (relink them).
struct Entries {
    nodes: Vec<Entry>,
    /// Per op, the node of its return entry (`NIL` for `info`).
    return_of: Vec<u32>,
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
    fn new<I>(intervals: &[Interval<I>]) -> Entries {
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

    fn unlink(&mut self, node: u32) {
        let Entry { prev, next, .. } = self.nodes[node as usize];
        self.nodes[prev as usize].next = next;
        if next != NIL {
            self.nodes[next as usize].prev = prev;
        }
    }

    fn relink(&mut self, node: u32) {
        let Entry { prev, next, .. } = self.nodes[node as usize];
        self.nodes[prev as usize].next = node;
        if next != NIL {
            self.nodes[next as usize].prev = node;
        }
    }

    /// Removes call `node` and its op's return entry from the list.
    fn lift(&mut self, node: u32) {
        let ret = self.return_of[self.nodes[node as usize].op as usize];
        self.unlink(node);
        if ret != NIL {
            self.unlink(ret);
        }
    }

    /// Undoes [`Entries::lift`] (in reverse order, as dancing links require).
    fn unlift(&mut self, node: u32) {
        let ret = self.return_of[self.nodes[node as usize].op as usize];
        if ret != NIL {
            self.relink(ret);
        }
        self.relink(node);
    }

    fn first(&self) -> u32 {
        self.nodes[0].next
    }
}

/// A fixed-size set of op indexes.
struct Bitset {
    words: Vec<u64>,
}

impl Bitset {
    fn new(bits: usize) -> Bitset {
        Bitset {
            words: vec![0; bits.div_ceil(64)],
        }
    }

    fn set(&mut self, i: usize) {
        debug_assert!(!self.get(i));
        self.words[i / 64] |= 1 << (i % 64);
    }

    fn clear(&mut self, i: usize) {
        debug_assert!(self.get(i));
        self.words[i / 64] &= !(1 << (i % 64));
    }

    fn get(&self, i: usize) -> bool {
        self.words[i / 64] & (1 << (i % 64)) != 0
    }
}

/// The hash contribution of op `i` to a set's hash (Zobrist hashing: the XOR of its members'
/// keys, so adding or removing a member is O(1) instead of rehashing every word).
fn op_key(i: usize) -> u64 {
    mix64(i as u64 ^ 0x2545_f491_4f6c_dd1d)
}

/// Configurations (linearized set, state) already explored, in flat arenas with hash chains.
struct Cache<S> {
    words: usize,
    bits: Vec<u64>,
    states: Vec<S>,
    chain: Vec<u32>,
    heads: HashMap<u64, u32, BuildPassThrough>,
}

impl<S: Eq + Clone> Cache<S> {
    fn new(words: usize) -> Self {
        Cache {
            words,
            bits: Vec::new(),
            states: Vec::new(),
            chain: Vec::new(),
            heads: HashMap::default(),
        }
    }

    /// Adds the configuration; false if it was already there.
    fn insert(&mut self, hash: u64, set: &Bitset, state: &S) -> bool {
        debug_assert_eq!(set.words.len(), self.words);
        let head = self.heads.get(&hash).copied().unwrap_or(NIL);
        let mut i = head;
        while i != NIL {
            let k = i as usize;
            if self.states[k] == *state
                && self.bits[k * self.words..(k + 1) * self.words] == set.words[..]
            {
                return false;
            }
            i = self.chain[k];
        }
        let k = self.states.len();
        assert!(k < NIL as usize, "cache index overflows u32");
        self.bits.extend_from_slice(&set.words);
        self.states.push(state.clone());
        self.chain.push(head);
        self.heads.insert(hash, k as u32);
        true
    }

    fn bytes(&self) -> usize {
        self.bits.capacity() * 8
            + self.states.capacity() * std::mem::size_of::<S>()
            + self.chain.capacity() * 4
            + self.heads.capacity() * 16
    }
}

/// What the search knows of each op's needs and effects, kept up to date as ops are linearized
/// and undone, so that it can see a dead end long before it reaches a return entry.
///
/// The rule (sound for any model that reports [`Model::requires`] and [`Model::effect`]): an
/// op that must be linearized (it has a return) and is legal only in state `s` needs the state to
/// be `s` at some future point. If linearizing op `X` moves the state away from `s` while such an
/// op remains, and no remaining op other than `X` can set the state to `s` again, then no
/// completion exists: `X` cannot go next. For a register with unique values this prunes almost
/// every wrong guess at once (a write can go only after every read of the value it overwrites).
/// Ops of unknown effect are asked [`Model::may_produce`] only when the rule would fire
/// otherwise, so models whose every op is predictable (an append ends the list in its value) keep
/// the pruning.
struct Obligations<S> {
    /// Every state some op needs or sets, once; the fields below name states by index here.
    states: Vec<S>,
    index: HashMap<S, u32, BuildHasherDefault<FxHasher>>,
    /// Per op: the state it needs, if it must be linearized.
    needs: Vec<Option<u32>>,
    /// Per op: the state it sets, if it sets one regardless of the state before.
    sets: Vec<Option<u32>>,
    /// Per op: whether its effect is unknown ([`Effect::Other`]).
    other: Vec<bool>,
    /// Per state: how many unlinearized ops need it.
    needed: Vec<u32>,
    /// Per state: how many unlinearized ops set it.
    setters: Vec<u32>,
    /// The states some op needs.
    goals: Vec<u32>,
    /// The states some op sets.
    set_states: Vec<u32>,
    /// For ordered models, per state once asked: the states some op sets that precede it.
    rescuers: Vec<Option<Vec<u32>>>,
    /// The ops whose effect is [`Effect::Other`], to ask [`Model::may_produce`].
    other_ops: Vec<u32>,
}

impl<S: Clone + Eq + Hash> Obligations<S> {
    fn new<M: Model<State = S>>(model: &M, intervals: &[Interval<M::Input>]) -> Self {
        let mut o = Obligations {
            states: Vec::new(),
            index: HashMap::default(),
            needs: Vec::with_capacity(intervals.len()),
            sets: Vec::with_capacity(intervals.len()),
            other: Vec::with_capacity(intervals.len()),
            needed: Vec::new(),
            setters: Vec::new(),
            goals: Vec::new(),
            set_states: Vec::new(),
            rescuers: Vec::new(),
            other_ops: Vec::new(),
        };
        for interval in intervals {
            let needs = interval
                .return_ns
                .and_then(|_| model.requires(&interval.input))
                .map(|s| o.intern(s));
            let (sets, other) = match model.effect(&interval.input) {
                Effect::Observes => (None, false),
                Effect::Sets(s) => (Some(o.intern(s)), false),
                Effect::Other => (None, true),
            };
            if other {
                o.other_ops.push(o.other.len() as u32);
            }
            o.needs.push(needs);
            o.sets.push(sets);
            o.other.push(other);
        }
        let n = o.states.len();
        o.needed = vec![0; n];
        o.setters = vec![0; n];
        o.rescuers = vec![None; n];
        for op in 0..intervals.len() {
            o.restore(op);
        }
        let (needed, setters) = (&o.needed, &o.setters);
        o.goals = (0..n as u32).filter(|&s| needed[s as usize] > 0).collect();
        o.set_states = (0..n as u32).filter(|&s| setters[s as usize] > 0).collect();
        o
    }

    /// The index of `state`.
    fn intern(&mut self, state: S) -> u32 {
        if let Some(&i) = self.index.get(&state) {
            return i;
        }
        let i = self.states.len() as u32;
        self.states.push(state.clone());
        self.index.insert(state, i);
        i
    }

    /// The state op `op` needs.
    fn need(&self, op: usize) -> Option<&S> {
        self.needs[op].map(|s| &self.states[s as usize])
    }

    /// The state op `op` sets.
    fn set(&self, op: usize) -> Option<&S> {
        self.sets[op].map(|s| &self.states[s as usize])
    }

    /// Op `op` was linearized.
    fn remove(&mut self, op: usize) {
        if let Some(s) = self.needs[op] {
            self.needed[s as usize] -= 1;
        }
        if let Some(s) = self.sets[op] {
            self.setters[s as usize] -= 1;
        }
    }

    /// Op `op` was undone (or is counted for the first time).
    fn restore(&mut self, op: usize) {
        if let Some(s) = self.needs[op] {
            self.needed[s as usize] += 1;
        }
        if let Some(s) = self.sets[op] {
            self.setters[s as usize] += 1;
        }
    }

    /// Whether linearizing unlinearized op `op`, moving the state from `before` to `after`, leaves
    /// an op that needs `before` with no way to see it again.
    fn strands<M: Model<State = S>>(
        &self,
        model: &M,
        intervals: &[Interval<M::Input>],
        linearized: &Bitset,
        op: usize,
        before: &S,
        after: &S,
    ) -> bool {
        if before == after {
            return false;
        }
        // A state no op needs or sets strands nobody.
        let Some(&b) = self.index.get(before) else {
            return false;
        };
        let same = |s: Option<u32>| u32::from(s == Some(b));
        let needed = self.needed[b as usize] - same(self.needs[op]);
        if needed == 0 {
            return false;
        }
        let setters = self.setters[b as usize] - same(self.sets[op]);
        if setters > 0 {
            return false;
        }
        !self.other_ops.iter().any(|&j| {
            let j = j as usize;
            j != op && !linearized.get(j) && model.may_produce(&intervals[j].input, before)
        })
    }

    /// For ordered models ([`Model::ordered`]): whether linearizing unlinearized op `op`, which
    /// leaves state `after`, makes some state a remaining op needs unreachable. From `after`,
    /// only states that `after` precedes can follow, unless a remaining op sets the state to
    /// some `v`, after which states `v` precedes can follow. A needed state reachable neither way
    /// can never be seen: `op` cannot go next.
    fn unreachable<M: Model<State = S>>(&mut self, model: &M, op: usize, after: &S) -> bool {
        // Whether an op other than `op` is among the `count` ops of state `s` (`own` is `op`'s).
        let others = |count: u32, own: Option<u32>, s: u32| match count {
            0 => false,
            1 => own != Some(s),
            _ => true,
        };
        for k in 0..self.goals.len() {
            let goal = self.goals[k];
            let g = goal as usize;
            if !others(self.needed[g], self.needs[op], goal)
                || model.precedes(after, &self.states[g])
            {
                continue;
            }
            if self.rescuers[g].is_none() {
                let states = &self.states;
                let rescuers = self
                    .set_states
                    .iter()
                    .copied()
                    .filter(|&v| model.precedes(&states[v as usize], &states[g]))
                    .collect();
                self.rescuers[g] = Some(rescuers);
            }
            let rescuers = self.rescuers[g].as_deref().unwrap_or_default();
            if !rescuers
                .iter()
                .any(|&v| others(self.setters[v as usize], self.sets[op], v))
            {
                return true;
            }
        }
        false
    }
}

/// The deepest point the search reached, kept as evidence for an invalid verdict.
struct Deepest<S> {
    /// The linearized ops at that point, in order.
    prefix: Vec<usize>,
    /// The op whose return entry stopped the search there.
    op: usize,
    state: S,
    /// How many leading entries of `prefix` still match the search stack (so recording a new
    /// deepest point copies only what changed: amortized O(1) per step).
    stable: usize,
}

/// One linearized op on the search stack.
struct Frame<S> {
    /// Its call entry.
    call: u32,
    /// The state before it.
    before: S,
    /// An observer linearized as soon as it was legal: if the search comes back here, no other
    /// choice at this point can succeed either, so it backtracks further.
    committed: bool,
}

/// `model` as the plain search sees it ([`Budget::plain`]): only its states and steps, so that no
/// op is known to need or set a state, and none is committed.
struct Plain<'a, M>(&'a M);

impl<M: Model> Model for Plain<'_, M> {
    type State = M::State;
    type Input = M::Input;

    fn init(&self) -> M::State {
        self.0.init()
    }

    fn step(&self, state: &M::State, input: &M::Input) -> Option<M::State> {
        self.0.step(state, input)
    }

    fn hash_state(&self, state: &M::State) -> u64 {
        self.0.hash_state(state)
    }

    fn describe_state(&self, state: &M::State) -> String {
        self.0.describe_state(state)
    }

    fn describe_input(&self, input: &M::Input) -> String {
        self.0.describe_input(input)
    }
}

/// Decides whether `intervals` are linearizable with respect to `model`, within `budget`.
pub fn check<M: Model>(
    model: &M,
    intervals: &[Interval<M::Input>],
    budget: &Budget,
) -> Search<M::State> {
    if budget.plain {
        search(&Plain(model), intervals, budget)
    } else {
        search(model, intervals, budget)
    }
}

/// The search [`check`] runs.
fn search<M: Model>(
    model: &M,
    intervals: &[Interval<M::Input>],
    budget: &Budget,
) -> Search<M::State> {
    assert!(
        intervals.len() < NIL as usize / 2,
        "too many ops for one partition"
    );
    let deadline = budget.time_limit.map(|t| Instant::now() + t);
    let mut entries = Entries::new(intervals);
    let mut obligations = Obligations::new(model, intervals);
    let ordered = model.ordered();
    let mut returns_left = entries.return_of.iter().filter(|&&r| r != NIL).count();
    let mut linearized = Bitset::new(intervals.len());
    let mut linearized_hash = 0u64;
    let mut state = model.init();
    let mut stack: Vec<Frame<M::State>> = Vec::new();
    let mut cache = Cache::new(linearized.words.len());
    let mut deepest: Option<Deepest<M::State>> = None;
    let mut cursor = entries.first();
    let mut steps = 0u64;

    while returns_left > 0 {
        if steps >= budget.steps_max {
            return Search::Unknown {
                steps,
                exhausted: Exhausted::Steps,
            };
        }
        steps += 1;
        if steps & (STEPS_PER_CLOCK_CHECK - 1) == 0 {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Search::Unknown {
                    steps,
                    exhausted: Exhausted::Time,
                };
            }
            if cache.bytes() > budget.cache_bytes_max {
                return Search::Unknown {
                    steps,
                    exhausted: Exhausted::Memory,
                };
            }
        }
        // A return entry is left while returns_left > 0, and the cursor never passes one.
        debug_assert!(cursor != NIL);
        let entry = entries.nodes[cursor as usize];
        let op = entry.op as usize;
        if !entry.is_return {
            let input = &intervals[op].input;
            let next = model.step(&state, input).filter(|next| {
                let dead = obligations.strands(model, intervals, &linearized, op, &state, next)
                    || (ordered && *next != state && obligations.unreachable(model, op, next));
                !dead
            });
            let Some(next) = next else {
                cursor = entry.next;
                continue;
            };
            // Why committing is sound: an observer legal now could be moved to now in any
            // linearization that places it later (it changes nothing, every op that must precede
            // it is already linearized, or its return would stand before this call in the list).
            let committed = matches!(model.effect(input), Effect::Observes);
            linearized.set(op);
            let hash = linearized_hash ^ op_key(op);
            if cache.insert(hash ^ model.hash_state(&next), &linearized, &next) {
                linearized_hash = hash;
                obligations.remove(op);
                stack.push(Frame {
                    call: cursor,
                    before: std::mem::replace(&mut state, next),
                    committed,
                });
                entries.lift(cursor);
                if entries.return_of[op] != NIL {
                    returns_left -= 1;
                }
                cursor = entries.first();
                continue;
            }
            linearized.clear(op);
            if !committed {
                cursor = entry.next;
                continue;
            }
            // A committed observer leads to an explored configuration: this one is dead too.
        } else {
            // A return no order of the ops so far can satisfy: remember the deepest such point as
            // evidence, then backtrack.
            record_deepest(&mut deepest, &stack, &entries, op, &state);
        }
        loop {
            let Some(frame) = stack.pop() else {
                let d = deepest.expect("a return was met before the stack emptied");
                let stranded = stranded(model, intervals, &d, &obligations);
                return Search::Invalid {
                    steps,
                    op: d.op,
                    prefix: d.prefix,
                    state: d.state,
                    stranded,
                };
            };
            if let Some(d) = &mut deepest {
                d.stable = d.stable.min(stack.len());
            }
            let undone = entries.nodes[frame.call as usize].op as usize;
            linearized.clear(undone);
            linearized_hash ^= op_key(undone);
            obligations.restore(undone);
            state = frame.before;
            entries.unlift(frame.call);
            if entries.return_of[undone] != NIL {
                returns_left += 1;
            }
            if !frame.committed {
                cursor = entries.nodes[frame.call as usize].next;
                break;
            }
        }
    }
    debug_assert!(stack
        .iter()
        .all(|f| linearized.get(entries.nodes[f.call as usize].op as usize)));
    Search::Valid { steps }
}

/// Records the search's position as the deepest so far, if it is deeper than the last one.
fn record_deepest<S: Clone>(
    deepest: &mut Option<Deepest<S>>,
    stack: &[Frame<S>],
    entries: &Entries,
    op: usize,
    state: &S,
) {
    let depth = stack.len();
    if deepest.as_ref().is_some_and(|d| depth <= d.prefix.len()) {
        return;
    }
    let d = deepest.get_or_insert_with(|| Deepest {
        prefix: Vec::new(),
        op,
        state: state.clone(),
        stable: 0,
    });
    d.prefix.truncate(d.stable);
    d.prefix.extend(
        stack[d.stable..]
            .iter()
            .map(|f| entries.nodes[f.call as usize].op as usize),
    );
    d.op = op;
    d.state = state.clone();
    d.stable = depth;
    debug_assert_eq!(d.prefix.len(), depth);
}

/// When the deepest point's op was legal but would strand another op, that op (the earliest
/// called of those that need the state the first would overwrite); `None` when it was illegal.
/// `obligations` is as the search left it: every op unlinearized.
fn stranded<M: Model>(
    model: &M,
    intervals: &[Interval<M::Input>],
    deepest: &Deepest<M::State>,
    obligations: &Obligations<M::State>,
) -> Option<usize> {
    let next = model.step(&deepest.state, &intervals[deepest.op].input)?;
    if next == deepest.state {
        return None;
    }
    let mut in_prefix = vec![false; intervals.len()];
    for &i in &deepest.prefix {
        in_prefix[i] = true;
    }
    let remaining = |i: usize| i != deepest.op && !in_prefix[i];
    let restorable = (0..intervals.len()).any(|i| {
        remaining(i)
            && ((obligations.other[i] && model.may_produce(&intervals[i].input, &deepest.state))
                || obligations.set(i) == Some(&deepest.state))
    });
    if restorable {
        return None;
    }
    (0..intervals.len())
        .filter(|&i| remaining(i) && obligations.need(i) == Some(&deepest.state))
        .min_by_key(|&i| (intervals[i].call_ns, i))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::register::{Register, RegisterOp};

    fn iv(input: RegisterOp, call_ns: u64, return_ns: Option<u64>) -> Interval<RegisterOp> {
        Interval {
            input,
            call_ns,
            return_ns,
        }
    }

    #[test]
    fn empty_and_info_only_are_valid() {
        let m = Register::default();
        assert_eq!(
            check(&m, &[], &Budget::default()),
            Search::Valid { steps: 0 }
        );
        let ops = [iv(RegisterOp::Write(1), 0, None)];
        assert_eq!(
            check(&m, &ops, &Budget::default()),
            Search::Valid { steps: 0 }
        );
    }

    #[test]
    fn touching_intervals_are_concurrent() {
        // The read returns at 10 and the write is invoked at 10: closed intervals overlap, so the
        // read may see the write.
        let m = Register::default();
        let ops = [
            iv(RegisterOp::Read(Some(1)), 0, Some(10)),
            iv(RegisterOp::Write(1), 10, Some(20)),
        ];
        assert!(matches!(
            check(&m, &ops, &Budget::default()),
            Search::Valid { .. }
        ));
        let ops = [
            iv(RegisterOp::Read(Some(1)), 0, Some(9)),
            iv(RegisterOp::Write(1), 10, Some(20)),
        ];
        let Search::Invalid {
            op, prefix, state, ..
        } = check(&m, &ops, &Budget::default())
        else {
            panic!()
        };
        assert_eq!((op, prefix, state), (0, vec![], None));
    }

    #[test]
    fn deepest_prefix_is_reported() {
        let m = Register::default();
        let ops = [
            iv(RegisterOp::Write(1), 0, Some(10)),
            iv(RegisterOp::Write(2), 20, Some(30)),
            iv(RegisterOp::Read(Some(2)), 40, Some(50)),
            iv(RegisterOp::Read(Some(1)), 60, Some(70)),
        ];
        let Search::Invalid {
            op,
            prefix,
            state,
            stranded,
            ..
        } = check(&m, &ops, &Budget::default())
        else {
            panic!()
        };
        // Writing 2 would strand the read of 1 that comes after it.
        assert_eq!(
            (op, prefix, state, stranded),
            (1, vec![0], Some(1), Some(3))
        );
    }

    #[test]
    fn step_budget_gives_unknown() {
        let m = Register::default();
        let ops = [
            iv(RegisterOp::Write(1), 0, Some(10)),
            iv(RegisterOp::Read(Some(1)), 20, Some(30)),
        ];
        let budget = Budget {
            steps_max: 1,
            ..Budget::default()
        };
        assert_eq!(
            check(&m, &ops, &budget),
            Search::Unknown {
                steps: 1,
                exhausted: Exhausted::Steps
            }
        );
    }

    /// Exhaustive search straight from the definition: some order of the ops, each after every
    /// op that returned before its call, legal in turn, with every op that returned included.
    fn brute(
        m: &Register,
        ops: &[Interval<RegisterOp>],
        done: &mut Vec<bool>,
        s: Option<i64>,
    ) -> bool {
        if ops
            .iter()
            .zip(done.iter())
            .all(|(o, &d)| d || o.return_ns.is_none())
        {
            return true;
        }
        for i in 0..ops.len() {
            let ready = !done[i]
                && (0..ops.len())
                    .all(|j| done[j] || !matches!(ops[j].return_ns, Some(r) if r < ops[i].call_ns));
            if !ready {
                continue;
            }
            if let Some(next) = m.step(&s, &ops[i].input) {
                done[i] = true;
                let ok = brute(m, ops, done, next);
                done[i] = false;
                if ok {
                    return true;
                }
            }
        }
        false
    }

    #[test]
    fn pruned_search_agrees_with_plain_search_and_brute_force() {
        let mut seed = 0x1234_5678_9abc_def1_u64;
        let mut below = |n: u64| {
            seed ^= seed >> 12;
            seed ^= seed << 25;
            seed ^= seed >> 27;
            seed.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
        };
        let value = |v: u64| if v == 0 { None } else { Some(v as i64) };
        let (mut valid, mut invalid) = (0, 0);
        for case in 0..4000 {
            let n = 1 + below(7) as usize;
            let m = Register::new(value(below(3)));
            let ops: Vec<_> = (0..n)
                .map(|_| {
                    let input = match below(3) {
                        0 => RegisterOp::Read(value(below(4))),
                        1 => RegisterOp::Write(1 + below(3) as i64),
                        _ => RegisterOp::Cas {
                            expected: value(below(4)),
                            new: 1 + below(3) as i64,
                        },
                    };
                    let call_ns = below(20);
                    let return_ns = (below(5) != 0).then(|| call_ns + below(10));
                    iv(input, call_ns, return_ns)
                })
                .collect();
            let expected = brute(&m, &ops, &mut vec![false; n], m.init());
            let pruned = check(&m, &ops, &Budget::default());
            let plain_budget = Budget {
                plain: true,
                ..Budget::default()
            };
            let plain = check(&m, &ops, &plain_budget);
            let verdict = |s: &Search<Option<i64>>| match s {
                Search::Valid { .. } => true,
                Search::Invalid { .. } => false,
                Search::Unknown { .. } => panic!("case {case}: unknown"),
            };
            assert_eq!(
                verdict(&pruned),
                expected,
                "case {case}: pruned vs brute on {ops:?}, initial {m:?}"
            );
            assert_eq!(
                verdict(&plain),
                expected,
                "case {case}: plain vs brute on {ops:?}, initial {m:?}"
            );
            if let Search::Invalid { prefix, state, .. } = &pruned {
                // The evidence prefix is itself a legal sequence from the initial state.
                let end = prefix
                    .iter()
                    .try_fold(m.init(), |s, &i| m.step(&s, &ops[i].input));
                assert_eq!(end.as_ref(), Some(state), "case {case}");
            }
            if expected {
                valid += 1
            } else {
                invalid += 1
            }
        }
        assert!(
            valid > 500 && invalid > 500,
            "{valid} valid, {invalid} invalid"
        );
    }
}
