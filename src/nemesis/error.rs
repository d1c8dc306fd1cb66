//! Why a nemesis verb could not inject or remove a fault.

/// A fault that could not be injected or removed. Faults this machine or cluster cannot make at
/// all are the harness's `HarnessError::Unavailable`, so a run can skip them and keep the others.
#[derive(Debug, thiserror::Error)]
pub enum NemesisError {
    /// A migration or repair step failed (its own error names the slot and the step).
    #[error("{0}")]
    Migration(String),
    /// The harness could not do what the verb asked of it (signal, restart, connect, command, a
    /// network cut or proxy fault it cannot make).
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
