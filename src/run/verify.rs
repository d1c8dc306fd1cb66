//! The verify stage: what the healed nodes hold, against the slot map and the history, and the
//! one place where its findings enter the run's report.

use crate::harness::Cluster;
use crate::term::{status, warn};
use anyhow::Result;
use checker::{Anomaly, History, Report};

use super::Run;

/// Runs `slotcheck verify` on the healed cluster (by the nodes' own addresses, past any proxy),
/// with the history when there is one to judge final values by; writes `verify.json` into the
/// run's output. A verify that cannot finish is a warning: the run's history is still checked.
pub async fn verify<F>(run: &mut Run<Cluster, F>, history: Option<&History>) -> Result<()> {
    let seeds: Vec<String> = run.cluster.nodes.iter().map(|n| n.addr.clone()).collect();
    let opts = crate::verify::VerifyOptions::default();
    match crate::verify::verify(&seeds, history, &opts).await {
        Ok(v) => {
            crate::verify::print(&v);
            crate::verify::write(&run.cfg.output, &v)?;
            run.verified = Some(v.anomalies);
        }
        Err(e) => warn(&format!("verify did not finish: {e}")),
    }
    Ok(())
}

/// `slotcheck test`'s verify: announced, with the history when it was small enough to read whole.
pub async fn verify_test(run: &mut Run, history: Option<&History>) -> Result<()> {
    status("Verifying what the nodes hold against the slot map and the history");
    if history.is_none() {
        warn("history too large to read whole: final values not judged by verify");
    }
    verify(run, history).await
}

/// Keeps `anomalies` as the run's verify findings and writes them as its `verify.json` (a family
/// whose verify is its own, PikiwiDB's placement check, reports the same way).
pub fn keep_findings<S, F>(run: &mut Run<S, F>, anomalies: Vec<Anomaly>) -> Result<()> {
    std::fs::write(
        run.cfg.output.join(crate::verify::VERIFY_FILE),
        serde_json::to_vec_pretty(&serde_json::json!({ "anomalies": anomalies }))?,
    )?;
    run.verified = Some(anomalies);
    Ok(())
}

/// Merges the run's verify findings, held in memory, into `report`: every run's one way in.
pub fn merge<S, F>(run: &Run<S, F>, report: &mut Report, history: Option<&History>) -> Result<()> {
    let findings = run.verified.as_deref().unwrap_or_default();
    crate::verify::merge(report, findings, history)?;
    Ok(())
}
