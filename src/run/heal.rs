//! The heal and final-reads stages: every fault healed and the cluster settled, then every key
//! read once more so that the check sees what the cluster ended up holding.

use crate::harness::ServerFamily;
use crate::nemesis::error::NemesisError;
use crate::nemesis::Nemesis;
use crate::term::status;
use anyhow::{Context, Result};
use workloads::final_reads;

use super::Run;

/// Heals every fault, waits for the cluster to settle, and drops the run's iptables chain; keeps
/// whether it settled in `run.healed`.
pub async fn heal(run: &mut Run) -> Result<(), NemesisError> {
    status("Healing every fault and waiting for the cluster to settle");
    let healed = run.cluster_nemesis().heal().await;
    run.family.partitioner = None;
    run.healed = healed.is_ok();
    healed
}

/// Reads every key of the workload once more, recorded like any other op.
pub async fn read_back<S: ServerFamily, F>(run: &Run<S, F>) -> Result<()> {
    let keys = run.cfg.keys + run.extra_keys.len();
    status(&format!("Reading every key once more ({keys} keys)"));
    let reading = crate::term::spinner(&format!("final reads of {keys} keys"));
    let read = final_reads(
        &run.workload,
        ServerFamily::seeds(&*run.cluster),
        run.recorder.clone(),
        &run.extra_keys,
    )
    .await;
    reading.finish_and_clear();
    read.context("final reads")?;
    Ok(())
}
