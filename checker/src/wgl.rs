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

use crate::model::{Effect, Model};
use std::time::Instant;

pub use crate::search::{Budget, Exhausted, Interval, Search};

mod cache;
mod entries;
mod obligations;
mod split;

use cache::{op_key, Bitset, Cache};
use entries::Entries;
use obligations::Obligations;

const NIL: u32 = u32::MAX;
/// Check the wall clock and cache size only every this many steps (a power of two):
/// `Instant::now` is not free.
const STEPS_PER_CLOCK_CHECK: u64 = 1024;
const _: () = assert!(STEPS_PER_CLOCK_CHECK.is_power_of_two());

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

/// Decides whether `intervals` are linearizable with respect to `model`, within `budget`; a large
/// key, or one the whole search gives up on, is searched piece by piece between its quiescent
/// points where it has any (see `split`).
pub fn check<M: Model>(
    model: &M,
    intervals: &[Interval<M::Input>],
    budget: &Budget,
) -> Search<M::State> {
    if budget.plain {
        return search(&Plain(model), intervals, budget);
    }
    if intervals.len() >= split::PIECES_FIRST_OPS_MIN {
        if let Some(decided) = split::by_pieces(model, intervals, budget) {
            return decided;
        }
    }
    match search(model, intervals, budget) {
        // Out of budget: split at quiescent points with a known state (see `split`).
        unknown @ Search::Unknown { .. } => {
            split::by_pieces(model, intervals, budget).unwrap_or(unknown)
        }
        decided => decided,
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
    let mut s = Searcher::new(model, intervals);
    while s.returns_left > 0 {
        if let Some(exhausted) = s.tick(budget, deadline) {
            return Search::Unknown {
                steps: s.steps,
                exhausted,
            };
        }
        // A return entry is left while returns_left > 0, and the cursor never passes one.
        debug_assert!(s.cursor != NIL);
        let entry = s.entries.nodes[s.cursor as usize];
        let op = entry.op as usize;
        if !entry.is_return {
            match s.call(op) {
                Call::Skipped => {
                    s.cursor = entry.next;
                    continue;
                }
                Call::Linearized => continue,
                // A committed observer leads to an explored configuration: this one is dead too.
                Call::DeadEnd => {}
            }
        } else {
            // A return no order of the ops so far can satisfy: remember the deepest such point as
            // evidence, then backtrack.
            record_deepest(&mut s.deepest, &s.stack, &s.entries, op, &s.state);
        }
        if let Some(invalid) = s.backtrack() {
            return invalid;
        }
    }
    debug_assert!(s.stack.iter().all(|f| s
        .linearized
        .get(s.entries.nodes[f.call as usize].op as usize)));
    Search::Valid { steps: s.steps }
}

/// What trying to linearize an op at its call entry led to.
enum Call {
    /// It cannot go now: try the next entry.
    Skipped,
    /// It went: the search starts again from the front of the list.
    Linearized,
    /// A committed observer whose configuration was explored already: backtrack.
    DeadEnd,
}

/// Where the search stands: the entry list, what is linearized, the model state and the stack.
struct Searcher<'a, M: Model> {
    model: &'a M,
    intervals: &'a [Interval<M::Input>],
    entries: Entries,
    obligations: Obligations<M::State>,
    ordered: bool,
    /// Whether each op only observes (its model effect, computed once, not on every attempt).
    observes: Vec<bool>,
    /// Return entries still in the list: the search is done when none is left.
    returns_left: usize,
    linearized: Bitset,
    linearized_hash: u64,
    state: M::State,
    stack: Vec<Frame<M::State>>,
    cache: Cache<M::State>,
    deepest: Option<Deepest<M::State>>,
    cursor: u32,
    steps: u64,
}

impl<'a, M: Model> Searcher<'a, M> {
    fn new(model: &'a M, intervals: &'a [Interval<M::Input>]) -> Self {
        let entries = Entries::new(intervals);
        let returns_left = entries.return_of.iter().filter(|&&r| r != NIL).count();
        let linearized = Bitset::new(intervals.len());
        let cursor = entries.first();
        Searcher {
            model,
            intervals,
            obligations: Obligations::new(model, intervals),
            ordered: model.ordered(),
            observes: intervals
                .iter()
                .map(|i| matches!(model.effect(&i.input), Effect::Observes))
                .collect(),
            returns_left,
            cache: Cache::new(linearized.words.len()),
            linearized,
            linearized_hash: 0,
            state: model.init(),
            stack: Vec::new(),
            deepest: None,
            cursor,
            entries,
            steps: 0,
        }
    }

    /// Counts one step; the budget that ran out, if one did (the clock and the cache's size are
    /// looked at every [`STEPS_PER_CLOCK_CHECK`] steps).
    fn tick(&mut self, budget: &Budget, deadline: Option<Instant>) -> Option<Exhausted> {
        if self.steps >= budget.steps_max {
            return Some(Exhausted::Steps);
        }
        self.steps += 1;
        if self.steps & (STEPS_PER_CLOCK_CHECK - 1) == 0 {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Some(Exhausted::Time);
            }
            if self.cache.bytes() > budget.cache_bytes_max {
                return Some(Exhausted::Memory);
            }
        }
        None
    }

    /// Tries to linearize `op`, whose call entry is at the cursor, now.
    fn call(&mut self, op: usize) -> Call {
        let Some(next) = self.legal_next(op) else {
            return Call::Skipped;
        };
        // Why committing is sound: an observer legal now could be moved to now in any
        // linearization that places it later (it changes nothing, every op that must precede
        // it is already linearized, or its return would stand before this call in the list).
        let committed = self.observes[op];
        self.linearized.set(op);
        let hash = self.linearized_hash ^ op_key(op);
        let key = hash ^ self.model.hash_state(&next);
        if self.cache.insert(key, &self.linearized, &next) {
            self.linearized_hash = hash;
            self.obligations.remove(op);
            self.stack.push(Frame {
                call: self.cursor,
                before: std::mem::replace(&mut self.state, next),
                committed,
            });
            self.entries.lift(self.cursor);
            if self.entries.return_of[op] != NIL {
                self.returns_left -= 1;
            }
            self.cursor = self.entries.first();
            return Call::Linearized;
        }
        self.linearized.clear(op);
        if committed {
            Call::DeadEnd
        } else {
            Call::Skipped
        }
    }

    /// The state after `op`, if the model accepts it now and it leaves no dead end behind.
    fn legal_next(&mut self, op: usize) -> Option<M::State> {
        let (model, intervals, state) = (self.model, self.intervals, &self.state);
        let next = model.step(state, &intervals[op].input)?;
        let dead = self
            .obligations
            .strands(model, intervals, &self.linearized, op, state, &next)
            || (self.ordered && next != *state && self.obligations.unreachable(model, op, &next));
        (!dead).then_some(next)
    }

    /// Undoes linearizations up to and including the latest that was not committed, and moves
    /// the cursor past its call; the verdict `Invalid` when the stack runs empty first.
    fn backtrack(&mut self) -> Option<Search<M::State>> {
        loop {
            let Some(frame) = self.stack.pop() else {
                return Some(self.invalid());
            };
            if let Some(d) = &mut self.deepest {
                d.stable = d.stable.min(self.stack.len());
            }
            let undone = self.entries.nodes[frame.call as usize].op as usize;
            self.linearized.clear(undone);
            self.linearized_hash ^= op_key(undone);
            self.obligations.restore(undone);
            self.state = frame.before;
            self.entries.unlift(frame.call);
            if self.entries.return_of[undone] != NIL {
                self.returns_left += 1;
            }
            if !frame.committed {
                self.cursor = self.entries.nodes[frame.call as usize].next;
                return None;
            }
        }
    }

    /// The verdict when no order works: the deepest point reached, as evidence.
    fn invalid(&mut self) -> Search<M::State> {
        let d = self
            .deepest
            .take()
            .expect("a return was met before the stack emptied");
        let stranded = stranded(self.model, self.intervals, &d, &self.obligations);
        Search::Invalid {
            steps: self.steps,
            op: d.op,
            prefix: d.prefix,
            state: d.state,
            stranded,
        }
    }
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
mod tests;
