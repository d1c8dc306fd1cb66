//! What the search knows of each op's needs and effects: the pruning that sees a dead end early.

use super::Bitset;
use crate::hash::FxHasher;
use crate::model::{Effect, Model};
use crate::search::Interval;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash};

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
pub(super) struct Obligations<S> {
    /// Every state some op needs or sets, once; the fields below name states by index here.
    pub(super) states: Vec<S>,
    pub(super) index: HashMap<S, u32, BuildHasherDefault<FxHasher>>,
    /// Per op: the state it needs, if it must be linearized.
    pub(super) needs: Vec<Option<u32>>,
    /// Per op: the state it sets, if it sets one regardless of the state before.
    pub(super) sets: Vec<Option<u32>>,
    /// Per op: whether its effect is unknown ([`Effect::Other`]).
    pub(super) other: Vec<bool>,
    /// Per state: how many unlinearized ops need it.
    pub(super) needed: Vec<u32>,
    /// Per state: how many unlinearized ops set it.
    pub(super) setters: Vec<u32>,
    /// The states some op needs.
    pub(super) goals: Vec<u32>,
    /// The states some op sets.
    pub(super) set_states: Vec<u32>,
    /// For ordered models, per state once asked: the states some op sets that precede it.
    pub(super) rescuers: Vec<Option<Vec<u32>>>,
    /// The ops whose effect is [`Effect::Other`], to ask [`Model::may_produce`].
    pub(super) other_ops: Vec<u32>,
}

impl<S: Clone + Eq + Hash> Obligations<S> {
    pub(super) fn new<M: Model<State = S>>(model: &M, intervals: &[Interval<M::Input>]) -> Self {
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
    pub(super) fn intern(&mut self, state: S) -> u32 {
        if let Some(&i) = self.index.get(&state) {
            return i;
        }
        let i = self.states.len() as u32;
        self.states.push(state.clone());
        self.index.insert(state, i);
        i
    }

    /// The state op `op` needs.
    pub(super) fn need(&self, op: usize) -> Option<&S> {
        self.needs[op].map(|s| &self.states[s as usize])
    }

    /// The state op `op` sets.
    pub(super) fn set(&self, op: usize) -> Option<&S> {
        self.sets[op].map(|s| &self.states[s as usize])
    }

    /// Op `op` was linearized.
    pub(super) fn remove(&mut self, op: usize) {
        if let Some(s) = self.needs[op] {
            self.needed[s as usize] -= 1;
        }
        if let Some(s) = self.sets[op] {
            self.setters[s as usize] -= 1;
        }
    }

    /// Op `op` was undone (or is counted for the first time).
    pub(super) fn restore(&mut self, op: usize) {
        if let Some(s) = self.needs[op] {
            self.needed[s as usize] += 1;
        }
        if let Some(s) = self.sets[op] {
            self.setters[s as usize] += 1;
        }
    }

    /// Whether linearizing unlinearized op `op`, moving the state from `before` to `after`, leaves
    /// an op that needs `before` with no way to see it again.
    pub(super) fn strands<M: Model<State = S>>(
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
    pub(super) fn unreachable<M: Model<State = S>>(
        &mut self,
        model: &M,
        op: usize,
        after: &S,
    ) -> bool {
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
