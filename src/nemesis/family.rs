//! One interface over each server family's nemesis ([`Nemesis`]): run its schedule of
//! migrations and faults, heal what is left in force, say what it did. [`ClusterNemesis`] is the
//! Redis Cluster family's (the [`super::runner`] over a [`Schedule`]); PikiwiDB's, over its
//! Codis slot table, is in the `pika` module.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use super::error::NemesisError;
use super::failover::FailoverChoice;
use super::migrate::MigrateOptions;
use super::net::Partitioner;
use super::runner::{self, NemesisSummary};
use super::schedule::{MigrateTarget, Schedule};
use super::Ctx;
use crate::term::{error, ok, warn};

/// A server family's nemesis: its migration verbs and faults on its own schedule, every action
/// recorded in the run's history, the run pipeline's one way to drive and heal them.
pub trait Nemesis: Send + Sync + 'static {
    /// What the nemesis did, for the terminal and the run's outcome.
    type Summary: Default + Send + 'static;

    /// Runs the schedule against the servers until `stop` fires (a family whose verbs do not
    /// watch `stop` runs until `deadline`); returns what it did.
    fn run(
        self,
        stop: CancellationToken,
        deadline: Instant,
    ) -> impl Future<Output = Self::Summary> + Send + 'static;
    /// Undoes every fault that may still be in force and waits for the servers to settle.
    fn heal(&self) -> impl Future<Output = Result<(), NemesisError>> + Send;
    /// Prints what the nemesis did, skipped and failed.
    fn report(summary: &Self::Summary);
}

/// The Redis Cluster family's nemesis: a seeded [`Schedule`] of migrations and faults over the
/// workload's slots, carried out by the [`runner`].
#[derive(Clone)]
pub struct ClusterNemesis {
    /// The cluster and the history.
    pub ctx: Ctx,
    /// The seeded plan of every action.
    pub schedule: Schedule,
    /// The slots worth migrating (the workload's).
    pub slots: Vec<u16>,
    /// How migrations run.
    pub migrate: MigrateOptions,
    /// Where migrations move a slot.
    pub target: MigrateTarget,
    /// Which `CLUSTER FAILOVER` the failover faults send.
    pub failover: FailoverChoice,
    /// The iptables chain, when the run partitions.
    pub partitioner: Option<Arc<Partitioner>>,
}

impl Nemesis for ClusterNemesis {
    type Summary = NemesisSummary;

    fn run(
        self,
        stop: CancellationToken,
        _deadline: Instant,
    ) -> impl Future<Output = NemesisSummary> + Send + 'static {
        runner::run(self, stop)
    }

    fn heal(&self) -> impl Future<Output = Result<(), NemesisError>> + Send {
        runner::heal_all(&self.ctx, self.partitioner.as_deref())
    }

    fn report(summary: &NemesisSummary) {
        report(summary);
    }
}

/// Prints what the Redis Cluster nemesis did, skipped and failed, and every server crash it saw.
pub fn report(summary: &NemesisSummary) {
    let done: Vec<String> = summary
        .done
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    ok(&format!(
        "nemesis: {} ({} keys moved by migrations)",
        if done.is_empty() {
            "nothing".to_string()
        } else {
            done.join(", ")
        },
        summary.keys_moved
    ));
    for (kind, n) in &summary.skipped {
        warn(&format!(
            "{kind}: {n} skipped (no fitting target at the time)"
        ));
    }
    for failure in &summary.failures {
        warn(failure);
    }
    for crash in &summary.crashes {
        error(&format!("server crash: {crash}"));
    }
}
