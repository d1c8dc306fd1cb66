//! The verify stage: the family's placement check of what the healed servers hold, and the one
//! place where its findings enter the run's report.

use crate::harness::Cluster;
use crate::verify::{ClusterPlacement, Placement};
use anyhow::Result;
use checker::{History, Report};

use super::family::Family;
use super::Run;

/// Runs the family's placement check on the healed `run` (with the history when there is one to
/// judge by); its findings, when it finished, are the run's. A check that cannot finish is a
/// warning: the run's history is still checked.
pub async fn verify<F: Family>(
    run: &mut Run<F::Servers, F>,
    history: Option<&History>,
) -> Result<()> {
    let found = match F::placement(run, history)? {
        Some(placement) => placement.check(history).await?,
        None => None,
    };
    run.verified = found;
    Ok(())
}

/// The Redis Cluster family's placement check over the nodes' own addresses (past any proxy),
/// writing `verify.json` into the run's output.
pub fn cluster_placement<F>(run: &Run<Cluster, F>) -> ClusterPlacement {
    ClusterPlacement {
        seeds: run.cluster.nodes.iter().map(|n| n.addr.clone()).collect(),
        output: run.cfg.output.clone(),
    }
}

/// A soak's verify: the Redis Cluster placement check, unannounced, with the history when given.
pub async fn cluster<F>(run: &mut Run<Cluster, F>, history: Option<&History>) -> Result<()> {
    run.verified = cluster_placement(run).check(history).await?;
    Ok(())
}

/// Merges the run's verify findings, held in memory, into `report`: every run's one way in.
pub fn merge<S, F>(run: &Run<S, F>, report: &mut Report, history: Option<&History>) -> Result<()> {
    let findings = run.verified.as_deref().unwrap_or_default();
    crate::verify::merge(report, findings, history)?;
    Ok(())
}
