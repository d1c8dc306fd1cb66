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
mod tests;
