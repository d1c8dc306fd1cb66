//! The Redis Cluster family (Redis and Valkey) in the run pipeline: `slotcheck test`'s
//! [`Family`] hooks over [`ClusterRun`]: a server bug on the proxies, the seeded nemesis beside
//! the workload, every fault healed before the final reads, and `slotcheck verify` on the
//! healed nodes.

use crate::config::RunConfig;
use crate::harness::proxy::bug::P_DEFAULT;
use crate::harness::Cluster;
use crate::nemesis::runner::NemesisSummary;
use crate::nemesis::ClusterNemesis;
use crate::term::{status, warn};
use crate::verify::ClusterPlacement;
use anyhow::Result;
use checker::History;

use super::family::Family;
use super::{drive, heal, record, start, verify, ClusterRun, Run};

impl Family for ClusterRun {
    type Servers = Cluster;
    type Nemesis = ClusterNemesis;
    type Placement<'a> = ClusterPlacement;

    async fn open(cfg: &RunConfig) -> Result<Run> {
        let started = start::start(cfg, |cluster| {
            if let Some(bug) = cfg.server_bug {
                start::set_server_bug(cluster, bug, cfg.seed, P_DEFAULT);
            }
        })
        .await?;
        record::to_file(started)
    }

    fn nemesis(run: &Run) -> ClusterNemesis {
        run.cluster_nemesis()
    }

    async fn prepare(run: &mut Run) -> Result<()> {
        drive::announce(run);
        Ok(())
    }

    fn driven(run: &mut Run) {
        drive::end_server_bug(run);
    }

    async fn heal(run: &mut Run) -> Result<()> {
        match heal::heal(run).await {
            Ok(()) if !run.interrupted => heal::read_back(run).await?,
            Ok(()) => {}
            Err(e) => warn(&format!("the cluster did not settle, no final reads: {e}")),
        }
        Ok(())
    }

    fn placement(run: &mut Run, history: Option<&History>) -> Result<Option<ClusterPlacement>> {
        if !run.healed || run.interrupted {
            return Ok(None);
        }
        status("Verifying what the nodes hold against the slot map and the history");
        if history.is_none() {
            warn("history too large to read whole: final values not judged by verify");
        }
        Ok(Some(verify::cluster_placement(run)))
    }

    async fn finish(run: &mut Run) {
        super::attach::finish(&run.cfg, &run.cluster).await;
    }

    fn summary(&mut self) -> &mut NemesisSummary {
        &mut self.nemesis
    }

    fn server_bug_injected(&self) -> Option<u64> {
        self.server_bug_injected
    }
}
