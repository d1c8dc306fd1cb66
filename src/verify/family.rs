//! One interface over each server family's placement check ([`Placement`]): after the heal,
//! what the servers hold, as anomalies, with the run's `verify.json` written. [`ClusterPlacement`]
//! is the Redis Cluster family's (this module's [`verify`](super::verify)); PikiwiDB's, against its
//! Codis slot table, is in the `pika` module.

use std::future::Future;
use std::path::PathBuf;

use anyhow::Result;
use checker::{Anomaly, History};

use super::{print, verify, write, VerifyOptions};
use crate::term::warn;

/// A server family's placement check, the run pipeline's one way to ask what the healed servers
/// hold.
pub trait Placement: Send + Sync {
    /// Checks every key's place on the healed servers (with `history`, when there is one, to
    /// judge and explain by), writes the run's `verify.json` and returns the findings; `None`
    /// when the check could not finish (a warning said why). An error is a file not written.
    fn check(
        &self,
        history: Option<&History>,
    ) -> impl Future<Output = Result<Option<Vec<Anomaly>>>> + Send;
}

/// The Redis Cluster family's placement check: `slotcheck verify` on the nodes' own addresses
/// (past any proxy), its summary printed and its `verify.json` written into `output`.
pub struct ClusterPlacement {
    /// Every node's own address.
    pub seeds: Vec<String>,
    /// The run's output directory.
    pub output: PathBuf,
}

impl Placement for ClusterPlacement {
    async fn check(&self, history: Option<&History>) -> Result<Option<Vec<Anomaly>>> {
        let opts = VerifyOptions::default();
        match verify(&self.seeds, history, &opts).await {
            Ok(v) => {
                print(&v);
                write(&self.output, &v)?;
                Ok(Some(v.anomalies))
            }
            Err(e) => {
                warn(&format!("verify did not finish: {e}"));
                Ok(None)
            }
        }
    }
}
