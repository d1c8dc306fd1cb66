//! The verify stage: what the healed nodes hold, against the slot map and the history, and the
//! one place where its findings enter the run's report.

use crate::term::{status, warn};
use anyhow::Result;
use checker::{History, Report};

use super::Run;

/// Runs `slotcheck verify` on the healed cluster (by the nodes' own addresses, past any proxy),
/// with the history when there is one to judge final values by; writes `verify.json` into the
/// run's output. A verify that cannot finish is a warning: the run's history is still checked.
pub async fn verify(run: &Run, history: Option<&History>) -> Result<()> {
    let seeds: Vec<String> = run.cluster.nodes.iter().map(|n| n.addr.clone()).collect();
    let opts = crate::verify::VerifyOptions::default();
    match crate::verify::verify(&seeds, history, &opts).await {
        Ok(v) => {
            crate::verify::print(&v);
            crate::verify::write(&run.cfg.output, &v)?;
        }
        Err(e) => warn(&format!("verify did not finish: {e}")),
    }
    Ok(())
}

/// `slotcheck test`'s verify: announced, with the history when it was small enough to read whole.
pub async fn verify_test(run: &Run, history: Option<&History>) -> Result<()> {
    status("Verifying what the nodes hold against the slot map and the history");
    if history.is_none() {
        warn("history too large to read whole: final values not judged by verify");
    }
    verify(run, history).await
}

/// Writes `anomalies` as the run's `verify.json` (a family whose verify is its own, PikiwiDB's
/// placement check, reports through the same file).
pub fn write_findings(dir: &std::path::Path, anomalies: &[checker::Anomaly]) -> Result<()> {
    std::fs::write(
        dir.join(crate::verify::VERIFY_FILE),
        serde_json::to_vec_pretty(&serde_json::json!({ "anomalies": anomalies }))?,
    )?;
    Ok(())
}

/// Merges the verify findings of the run in `dir` into `report` (every run's one way in).
pub fn merge(dir: &std::path::Path, report: &mut Report, history: Option<&History>) -> Result<()> {
    crate::verify::merge_into(dir, report, history)?;
    Ok(())
}
