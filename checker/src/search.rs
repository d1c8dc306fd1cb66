//! What a linearizability search takes and gives: each op's real-time [`Interval`], the
//! [`Budget`] it may spend, and its verdict, a [`Search`]. Plain data, below both the models
//! (whose fast paths give a verdict without search) and the search itself ([`crate::wgl`]).

use std::time::Duration;

/// One op of the partition: its real-time interval and what the model sees.
#[derive(Debug, Clone, PartialEq)]
pub struct Interval<I> {
    /// The model's view of the op.
    pub input: I,
    /// When it was invoked, ns.
    pub call_ns: u64,
    /// When it returned, ns; `None` when unknown (`info`): it may take effect any time after the
    /// call, or never.
    pub return_ns: Option<u64>,
}

/// Limits on one search; exhausting any of them gives [`Search::Unknown`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Search steps (attempts to linearize or backtrack) before giving up.
    pub steps_max: u64,
    /// Wall time before giving up; `None` (the default) keeps results deterministic.
    pub time_limit: Option<Duration>,
    /// Bytes the memo cache may hold before giving up.
    pub cache_bytes_max: usize,
    /// Memory the caches of all keys may share (what the machine has available), when known:
    /// then each key's `cache_bytes_max` is its share by size ([`Budget::for_key`]), not fixed.
    pub cache_bytes_available: Option<usize>,
    /// Search plainly, as Porcupine and Knossos do: no fast path ([`OpModel::decide`]), no
    /// dropping of ops ([`OpModel::prune`]), and none of the search's own pruning and committing
    /// (the model is searched as if it had only `init` and `step`). Slower; verdicts are the
    /// same. A baseline for benchmarks and cross-checks; off by default.
    ///
    /// [`OpModel::decide`]: crate::model::OpModel::decide
    /// [`OpModel::prune`]: crate::model::OpModel::prune
    pub plain: bool,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            steps_max: 10_000_000,
            time_limit: None,
            cache_bytes_max: 1 << 30,
            cache_bytes_available: None,
            plain: false,
        }
    }
}

/// The least cache a key gets from a share of the available memory ([`Budget::for_key`]).
pub const KEY_CACHE_BYTES_MIN: usize = 64 << 20;

impl Budget {
    /// The budget of a key with `key_ops` of the history's `all_ops` ops to search: with
    /// `cache_bytes_available` known, the key's cache may take that share of it (all keys' shares
    /// sum to the memory available, so keys searched at once never hold more together), and at
    /// least [`KEY_CACHE_BYTES_MIN`] (never more than is available); else `cache_bytes_max`.
    pub fn for_key(&self, key_ops: usize, all_ops: usize) -> Budget {
        let Some(available) = self.cache_bytes_available else {
            return *self;
        };
        let share = (available as u128 * key_ops as u128 / all_ops.max(1) as u128) as usize;
        Budget {
            cache_bytes_max: share.max(KEY_CACHE_BYTES_MIN.min(available)),
            ..*self
        }
    }
}

/// Which limit of a [`Budget`] ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exhausted {
    /// `steps_max`.
    Steps,
    /// `time_limit`.
    Time,
    /// `cache_bytes_max`.
    Memory,
}

impl Exhausted {
    /// Why a search of `budget` stopped here, as a key's report says it.
    pub(crate) fn reason(self, budget: &Budget) -> String {
        match self {
            Exhausted::Steps => format!("step budget ({} steps) exhausted", budget.steps_max),
            Exhausted::Time => format!(
                "time limit ({:?}) reached",
                budget.time_limit.unwrap_or_default()
            ),
            Exhausted::Memory => format!("cache limit ({} bytes) reached", budget.cache_bytes_max),
        }
    }
}

/// The verdict of one search.
#[derive(Debug, Clone, PartialEq)]
pub enum Search<S> {
    /// A linearization exists.
    Valid {
        /// Steps taken.
        steps: u64,
    },
    /// No linearization exists; the deepest attempt, as evidence.
    Invalid {
        /// Steps taken.
        steps: u64,
        /// Index (into the intervals) of the op whose return could not be satisfied at the
        /// deepest point of the search.
        op: usize,
        /// The longest linearizable prefix found: indexes into the intervals, in order.
        prefix: Vec<usize>,
        /// The model's state after `prefix`.
        state: S,
        /// When `op` was legal after `prefix` but would overwrite a state that this op (index
        /// into the intervals) still needs and no remaining op can restore.
        stranded: Option<usize>,
    },
    /// The budget ran out first.
    Unknown {
        /// Steps taken.
        steps: u64,
        /// Which limit ran out.
        exhausted: Exhausted,
    },
}

impl<S> Search<S> {
    /// Steps the search took, whatever its verdict.
    pub fn steps(&self) -> u64 {
        match self {
            Search::Valid { steps }
            | Search::Invalid { steps, .. }
            | Search::Unknown { steps, .. } => *steps,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_keys_cache_is_its_share_of_the_memory_available() {
        let fixed = Budget::default();
        assert_eq!(
            fixed.for_key(10, 100),
            fixed,
            "unknown memory: the fixed cap"
        );
        let gib = 1usize << 30;
        let shared = Budget {
            cache_bytes_available: Some(8 * gib),
            ..fixed
        };
        assert_eq!(
            shared.for_key(25, 100).cache_bytes_max,
            2 * gib,
            "4 equal keys"
        );
        assert_eq!(shared.for_key(100, 100).cache_bytes_max, 8 * gib, "one key");
        assert_eq!(
            shared.for_key(1, 1_000_000).cache_bytes_max,
            KEY_CACHE_BYTES_MIN
        );
        let tiny = Budget {
            cache_bytes_available: Some(1 << 20),
            ..fixed
        };
        assert_eq!(tiny.for_key(1, 1000).cache_bytes_max, 1 << 20);
    }
}
