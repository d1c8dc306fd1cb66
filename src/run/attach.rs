//! Runs against a cluster slotcheck did not start (`slotcheck test --attach`, `--hosts`): the
//! cluster taken by address (with its hosts over SSH when a hosts file is given), the
//! workload's keys guarded (a run refuses a cluster that already holds keys under its prefix,
//! and deletes exactly those keys at the end unless `--keep-keys`), and the nodes' logs copied
//! into the run directory.

use crate::config::{Existing, RunConfig};
use crate::harness::remote::{remove_stale_chains, HostsFile, Remote};
use crate::harness::{Admin, Cluster};
use crate::nemesis::net;
use crate::nemesis::schedule::FaultKind;
use crate::term::{ok, status, warn};
use anyhow::{bail, Context, Result};
use std::sync::Arc;

/// How long an attached cluster may take to show itself stable before the run.
const STABLE_TIMEOUT_MS: u64 = 20_000;
/// Keys one `SCAN` step asks for.
const SCAN_COUNT: &str = "1000";

/// The nemesis kinds that act on processes or the network: they need the hosts (`--hosts`).
pub const NEEDS_HOSTS: [FaultKind; 5] = [
    FaultKind::Kill,
    FaultKind::Pause,
    FaultKind::Partition,
    FaultKind::Strike,
    FaultKind::StrikeFailover,
];

/// Attaches to the cluster `existing` names (connecting to its hosts first, if any: a host that
/// cannot be reached is an error here), waits until it is stable and checks that it holds no
/// key under the workload's prefix; with partitions, makes the chain on every host.
pub(crate) async fn attach(
    cfg: &RunConfig,
    existing: &Existing,
) -> Result<(Arc<Cluster>, Option<Arc<net::Partitioner>>)> {
    let remote = match &existing.hosts {
        Some(path) => {
            let file = HostsFile::load(path)?;
            status(&format!(
                "Connecting to {} hosts over SSH ({})",
                file.host.len(),
                path.display()
            ));
            let remote = Remote::connect(file).context("reaching the hosts")?;
            // Rules of a run that died (SIGKILL) go first, whatever this run's nemesis: they
            // would keep the cluster from settling.
            match remove_stale_chains(&remote).context("removing iptables chains of dead runs")? {
                0 => {}
                n => warn(&format!(
                    "removed {n} iptables chains left by dead slotcheck runs"
                )),
            }
            Some(Arc::new(remote))
        }
        None => None,
    };
    let seeds = match (&remote, existing.seeds.is_empty()) {
        (Some(remote), true) => remote.file.addrs(),
        _ => existing.seeds.clone(),
    };
    let cluster = Cluster::attach(&seeds, remote.clone())
        .await
        .with_context(|| format!("attaching to the cluster at {}", seeds.join(",")))?;
    cluster
        .wait_stable(STABLE_TIMEOUT_MS)
        .await
        .context("the attached cluster is not stable")?;
    if let Some(named) = remote.as_ref().and_then(|r| r.file.kind().ok()) {
        if named != cluster.kind {
            warn(&format!(
                "the hosts file says {named}, the servers say {} {}: recorded as they say",
                cluster.kind, cluster.version
            ));
        }
    }
    let prefix = cfg.workload_config().key_prefix;
    let held = keys_under(&cluster, &prefix).await?;
    if !held.is_empty() {
        bail!(
            "the cluster already holds {} keys under the workload's prefix {prefix:?} (e.g. {:?}): \
             slotcheck touches no key it did not write; delete them first",
            held.len(),
            held[0].1
        );
    }
    ok(&format!(
        "attached to {} {} ({} nodes{})",
        cluster.kind,
        cluster.version,
        cluster.nodes.len(),
        if remote.is_some() {
            ", hosts over SSH"
        } else {
            ""
        }
    ));
    let partitioner = match (&remote, cfg.nemesis.contains(&FaultKind::Partition)) {
        (Some(remote), true) => Some(Arc::new(
            net::Partitioner::on_hosts(remote.clone())
                .context("making iptables chains on the hosts")?,
        )),
        (None, true) => bail!("partitions on an attached cluster need --hosts"),
        (_, false) => None,
    };
    Ok((Arc::new(cluster), partitioner))
}

/// Every key under `prefix` on the cluster's masters (as they are now), with the master's
/// address.
async fn keys_under(cluster: &Cluster, prefix: &str) -> Result<Vec<(String, String)>> {
    let mut keys = Vec::new();
    for node in &cluster.nodes {
        let mut admin = match Admin::connect(&node.addr).await {
            Ok(admin) => admin,
            Err(e) => {
                warn(&format!("{}: {e}", node.addr));
                continue;
            }
        };
        let role: Vec<redis::Value> = admin.run(&["ROLE"]).await?;
        let master = match role.first() {
            Some(redis::Value::BulkString(r)) => r == b"master",
            Some(redis::Value::SimpleString(r)) => r == "master",
            _ => false,
        };
        if !master {
            continue;
        }
        // A key is the prefix's, or a hash tag that opens with it (`{register:g1}:7`).
        for pattern in [format!("{prefix}*"), format!("{{{prefix}*")] {
            let mut cursor = "0".to_string();
            loop {
                let (next, found): (String, Vec<String>) = admin
                    .run(&["SCAN", &cursor, "MATCH", &pattern, "COUNT", SCAN_COUNT])
                    .await?;
                let ours = found.into_iter().filter(|k| is_ours(k, prefix));
                keys.extend(ours.map(|k| (node.addr.clone(), k)));
                if next == "0" {
                    break;
                }
                cursor = next;
            }
        }
    }
    Ok(keys)
}

/// At the end of an attached run: deletes the workload's keys (unless `--keep-keys`) and copies
/// every host's server log into `<output>/nodes/`. Failures are warnings.
pub(crate) async fn finish(cfg: &RunConfig, cluster: &Cluster) {
    let Some(existing) = &cfg.existing else {
        return;
    };
    if let Some(remote) = cluster.remote() {
        let dir = cfg.output.join("nodes");
        for e in remote.copy_logs(&dir) {
            warn(&format!("copying a node's log: {e}"));
        }
        ok(&format!("node logs copied to {}", dir.display()));
    }
    if existing.keep_keys {
        return;
    }
    match delete_keys(cluster, &cfg.workload_config().key_prefix).await {
        Ok(n) => ok(&format!("deleted the run's {n} keys")),
        Err(e) => warn(&format!("could not delete the run's keys: {e:#}")),
    }
}

/// Deletes every key under `prefix` from the cluster's masters; returns how many.
async fn delete_keys(cluster: &Cluster, prefix: &str) -> Result<usize> {
    let keys = keys_under(cluster, prefix).await?;
    let mut deleted = 0;
    let mut admin: Option<Admin> = None;
    for (addr, key) in &keys {
        let other = match &admin {
            Some(a) => a.addr() != addr,
            None => true,
        };
        if other {
            admin = Some(Admin::connect(addr).await?);
        }
        if let Some(admin) = admin.as_mut() {
            if is_ours(key, prefix) {
                deleted += admin.run::<usize>(&["DEL", key]).await?;
            }
        }
    }
    Ok(deleted)
}

/// Whether `key` is under the workload's `prefix`, plainly or inside a hash tag.
fn is_ours(key: &str, prefix: &str) -> bool {
    key.starts_with(prefix) || key.strip_prefix('{').is_some_and(|k| k.starts_with(prefix))
}

#[cfg(test)]
mod tests {
    use super::is_ours;

    #[test]
    fn only_keys_under_the_prefix_are_ours() {
        assert!(is_ours("register:7", "register:"));
        assert!(is_ours("{register:g1}:7", "register:"));
        assert!(!is_ours("registers:7", "register:"));
        assert!(!is_ours("user:register:7", "register:"));
        assert!(!is_ours("{user}:register:7", "register:"));
    }
}
