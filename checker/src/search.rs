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
            plain: false,
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
