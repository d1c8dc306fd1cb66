//! Counters a workload reports at the end of a run, and the workload's error type.

use crate::router::RouterError;
use checker::{EventType, Redirect, RedirectKind};
use std::collections::BTreeMap;

/// How many operations completed each way, and how many hops of each kind were followed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkloadStats {
    /// Completions of type `ok`.
    pub ops_ok: u64,
    /// Completions of type `fail`.
    pub ops_fail: u64,
    /// Completions of type `info`.
    pub ops_info: u64,
    /// Hops followed, by kind (kinds never seen are absent).
    pub redirects: BTreeMap<RedirectKind, u64>,
    /// Keys the workload used beyond its named keys (list-append's later key generations),
    /// which the final reads read too.
    pub extra_keys: Vec<String>,
}

impl WorkloadStats {
    /// Counts one completion and the hops it followed.
    pub fn count(&mut self, outcome: EventType, redirects: &[Redirect]) {
        match outcome {
            EventType::Ok => self.ops_ok += 1,
            EventType::Fail => self.ops_fail += 1,
            EventType::Info => self.ops_info += 1,
            EventType::Invoke => debug_assert!(false, "an invoke is not a completion"),
        }
        for r in redirects {
            *self.redirects.entry(r.kind).or_default() += 1;
        }
    }

    /// Adds another task's counters into these.
    pub fn merge(&mut self, other: &WorkloadStats) {
        self.ops_ok += other.ops_ok;
        self.ops_fail += other.ops_fail;
        self.ops_info += other.ops_info;
        for (kind, n) in &other.redirects {
            *self.redirects.entry(*kind).or_default() += n;
        }
        self.extra_keys.extend(other.extra_keys.iter().cloned());
    }

    /// Completed operations of every type.
    pub fn ops(&self) -> u64 {
        self.ops_ok + self.ops_fail + self.ops_info
    }

    /// Hops of one kind.
    pub fn redirects_of(&self, kind: RedirectKind) -> u64 {
        self.redirects.get(&kind).copied().unwrap_or(0)
    }
}

/// Why a workload could not run (operation failures are history, not errors).
#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    /// The configuration cannot describe a run.
    #[error("invalid workload configuration: {0}")]
    InvalidConfig(String),
    /// The cluster's slot map could not be learned from the seeds.
    #[error(transparent)]
    SlotMap(#[from] RouterError),
    /// A client task panicked.
    #[error("client task failed: {0}")]
    Task(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_and_merges() {
        let hop = |kind| Redirect {
            kind,
            slot: 1,
            from: "a:1".into(),
            to: "b:1".into(),
        };
        let mut a = WorkloadStats::default();
        a.count(
            EventType::Ok,
            &[hop(RedirectKind::Moved), hop(RedirectKind::Ask)],
        );
        a.count(EventType::Fail, &[]);
        let mut b = WorkloadStats::default();
        b.count(EventType::Info, &[hop(RedirectKind::Moved)]);
        a.merge(&b);
        assert_eq!((a.ops_ok, a.ops_fail, a.ops_info, a.ops()), (1, 1, 1, 3));
        assert_eq!(a.redirects_of(RedirectKind::Moved), 2);
        assert_eq!(a.redirects_of(RedirectKind::Ask), 1);
        assert_eq!(a.redirects_of(RedirectKind::TryAgain), 0);
    }
}
