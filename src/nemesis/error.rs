//! Why a nemesis verb could not inject or remove a fault.

/// A fault that could not be injected or removed; faults this machine cannot do at all are
/// `Unavailable`, so a run can skip them and keep the others.
#[derive(Debug, thiserror::Error)]
pub enum NemesisError {
    /// This machine cannot inject the fault at all (not root, a tool missing).
    #[error("{what} is unavailable: {why}")]
    Unavailable {
        /// The fault, e.g. `network partitions`.
        what: String,
        /// Why, e.g. `not running as root`.
        why: String,
    },
    /// The fault makes no sense for this cluster (a node it does not have).
    #[error("invalid fault: {0}")]
    Invalid(String),
    /// A migration or repair step failed (its own error names the slot and the step).
    #[error("{0}")]
    Migration(String),
    /// The harness could not do what the verb asked of it (signal, restart, connect, command).
    #[error(transparent)]
    Harness(#[from] crate::harness::HarnessError),
    /// The cluster did not reach the awaited state before the deadline.
    #[error("timed out after {waited_ms} ms waiting for {what}")]
    Timeout {
        /// What we waited for, with the last state seen.
        what: String,
        /// How long we waited.
        waited_ms: u64,
    },
    /// A node refused the verb (an error reply such as `ERR ... not a replica`).
    #[error("{node} refused: {reason}")]
    Refused {
        /// The node's address.
        node: String,
        /// Its reply or why the verb cannot apply to it.
        reason: String,
    },
}
