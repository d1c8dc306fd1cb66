//! Sequential specifications: a [`Model`] says which operations are legal in which state.
//!
//! Models are pure (Porcupine's shape): `init` gives the starting state, `step` either moves to a
//! new state or says the operation is illegal there. The search memoizes on states, so they must
//! be cheap to clone, compare and hash.

use crate::hash::FxHasher;
use std::fmt::Debug;
use std::hash::{Hash, Hasher};

pub mod register;

/// A pure sequential specification that the linearizability search steps through.
pub trait Model {
    /// The object's state between operations; compared and hashed by the search's cache.
    type State: Clone + Eq + Hash + Debug;
    /// One operation as the model sees it (argument and, for completed ops, result).
    type Input: Debug;

    /// The state before any operation.
    fn init(&self) -> Self::State;

    /// The state after `input` applied to `state`, or `None` if `input` is illegal in `state`.
    fn step(&self, state: &Self::State, input: &Self::Input) -> Option<Self::State>;

    /// A cheap, deterministic hash of a state (for the search's cache).
    fn hash_state(&self, state: &Self::State) -> u64 {
        let mut hasher = FxHasher::default();
        state.hash(&mut hasher);
        hasher.finish()
    }

    /// The one state in which `input` is legal, if there is exactly one (a read's value, a cas's
    /// expected value). With [`Model::effect`] this lets the search prune early (see `wgl`).
    fn requires(&self, _input: &Self::Input) -> Option<Self::State> {
        None
    }

    /// What `input` does to the state whenever it is legal. The default, `Other`, is always
    /// correct and turns the search's pruning off.
    fn effect(&self, _input: &Self::Input) -> Effect<Self::State> {
        Effect::Other
    }

    /// The state as text, for explanations.
    fn describe_state(&self, state: &Self::State) -> String;

    /// The operation as text, for explanations.
    fn describe_input(&self, input: &Self::Input) -> String;
}

/// What an operation does to the state whenever it is legal, as the search's pruning sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect<S> {
    /// Leaves the state as it was (a read): the search may linearize it as soon as it is legal.
    Observes,
    /// Leaves exactly this state, whatever it was before (a write, an applied cas).
    Sets(S),
    /// Anything else, or not known.
    Other,
}
