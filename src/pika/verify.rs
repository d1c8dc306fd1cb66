//! PikiwiDB's placement check as its family's verify: where every key lives on the servers
//! against the Codis slot table, each misplaced key explained from the history, with a
//! `stuck-migration` per migration step that hung; written as the run's `verify.json`.

use std::path::PathBuf;

use anyhow::{Context, Result};
use checker::op::Ops;
use checker::{Anomaly, History};
use workloads::codis::CodisTable;

use super::explain;
use super::placement::check_placement;
use super::schedule::{self, Summary};
use crate::term::{ok, status, warn};
use crate::verify::{Placement, VERIFY_FILE};

/// PikiwiDB's [`Placement`]: the servers, the slot table as the run left it, the run's paired ops
/// and what its nemesis did.
pub struct PikaPlacement<'a> {
    /// Every server's address.
    pub addrs: Vec<String>,
    /// The slot table the workload routed by, as it stands after the run.
    pub table: CodisTable,
    /// The history's operations, to explain each misplaced key by.
    pub ops: &'a Ops,
    /// What the nemesis did (its stuck steps become anomalies).
    pub nemesis: &'a Summary,
    /// The run's output directory.
    pub output: PathBuf,
}

impl Placement for PikaPlacement<'_> {
    async fn check(&self, history: Option<&History>) -> Result<Option<Vec<Anomaly>>> {
        let Some(history) = history else {
            warn("placement check: no history to explain its findings by");
            return Ok(None);
        };
        let mut anomalies = self.misplaced(history).await;
        anomalies.extend(schedule::anomalies(self.nemesis, history));
        let path = self.output.join(VERIFY_FILE);
        std::fs::write(
            &path,
            serde_json::to_vec_pretty(&serde_json::json!({ "anomalies": anomalies }))?,
        )
        .with_context(|| format!("writing {}", path.display()))?;
        Ok(Some(anomalies))
    }
}

impl PikaPlacement<'_> {
    /// Every misplaced key as an anomaly explained from `history` (none, with a warning, when
    /// the servers could not be scanned).
    async fn misplaced(&self, history: &History) -> Vec<Anomaly> {
        status("Checking where every key lives");
        match check_placement(&self.addrs, &self.table).await {
            Ok(p) => {
                ok(&format!(
                    "{} keys on {} servers, {} misplaced",
                    p.keys.len(),
                    self.addrs.len(),
                    p.findings.len()
                ));
                p.findings
                    .iter()
                    .map(|f| explain::placement(f, history, self.ops))
                    .collect()
            }
            Err(e) => {
                warn(&format!("placement check: {e}"));
                Vec::new()
            }
        }
    }
}
