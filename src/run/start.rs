//! The start stage: the cluster up (with its iptables chain and proxies when the faults need
//! them), the client asked what it is, and the history header that records both.

use crate::config::RunConfig;
use crate::harness::proxy::bug::{BugConfig, ServerBug};
use crate::harness::{Cluster, ClusterSpec};
use crate::nemesis::net;
use crate::nemesis::schedule::{FaultKind, Schedule};
use crate::term::{ok, status, warn};
use anyhow::{Context, Result};
use serde_json::{json, Map, Value};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;
use workloads::{ClientInfo, SlotMap};

/// What the start stage brought up, before anything is recorded.
pub struct Started {
    /// The run's configuration.
    pub cfg: RunConfig,
    /// Fires on Ctrl-C.
    pub interrupt: CancellationToken,
    /// The cluster under test; stopped when the last handle is dropped.
    pub cluster: Arc<Cluster>,
    /// The iptables chain, when the run partitions.
    pub partitioner: Option<Arc<net::Partitioner>>,
    /// The seeded plan of every nemesis action.
    pub schedule: Schedule,
    /// What the client under test says it is.
    pub client: ClientInfo,
}

/// Starts the run `cfg` asks for: Ctrl-C handling, the output directory, the cluster and its
/// schedule; `bug` runs on the cluster before the client is asked what it is.
pub async fn start(cfg: &RunConfig, bug: impl FnOnce(&Cluster)) -> Result<Started> {
    let interrupt = crate::interrupt::install();
    std::fs::create_dir_all(&cfg.output)
        .with_context(|| format!("creating output directory {}", cfg.output.display()))?;
    let (cluster, partitioner) = start_cluster(cfg).await?;
    let mut cfg = cfg.clone();
    if cfg.existing.is_some() {
        // The cluster's shape is what it is: recorded as found.
        cfg.server = cluster.kind;
        cfg.spare_masters = cluster.spare_masters;
        cfg.masters = cluster.masters().count() - cluster.spare_masters;
        cfg.replicas = cluster.replicas().count() / cfg.masters.max(1);
    }
    let cfg = &cfg;
    bug(&cluster);
    let schedule = cfg.schedule();
    let client = client_info(cfg, &cluster).await?;
    Ok(Started {
        cfg: cfg.clone(),
        interrupt,
        cluster,
        partitioner,
        schedule,
        client,
    })
}

/// Removes the iptables chains of dead runs and, when `cfg` partitions, makes this run's.
fn partitioner(cfg: &RunConfig) -> Result<Option<Arc<net::Partitioner>>> {
    let partitions = cfg.nemesis.contains(&FaultKind::Partition);
    // Chains of runs that died (SIGKILL, a second signal) go first, on any machine that can
    // partition, whether or not this run does.
    if net::available().is_ok() {
        match net::cleanup_stale() {
            Ok(0) => {}
            Ok(n) => warn(&format!(
                "removed {n} iptables chains left by dead slotcheck runs"
            )),
            Err(e) if partitions => {
                return Err(e).context("removing iptables chains of dead runs");
            }
            Err(e) => warn(&format!(
                "could not remove iptables chains of dead runs: {e}"
            )),
        }
    }
    Ok(if partitions {
        Some(Arc::new(
            net::Partitioner::new().context("creating the iptables chain")?,
        ))
    } else {
        None
    })
}

/// Starts the cluster `cfg` asks for (with distinct hosts and an iptables chain when it
/// partitions, with proxies when it slows nodes or injects a server bug), dying with slotcheck.
pub(crate) async fn start_cluster(
    cfg: &RunConfig,
) -> Result<(Arc<Cluster>, Option<Arc<net::Partitioner>>)> {
    if let Some(existing) = &cfg.existing {
        return super::attach::attach(cfg, existing).await;
    }
    let partitioner = partitioner(cfg)?;
    let mut spec = ClusterSpec::new(
        cfg.server,
        cfg.masters,
        cfg.replicas,
        cfg.output.join("cluster"),
    );
    spec.die_with_parent = true;
    spec.spare_masters = cfg.spare_masters;
    spec.persistence = cfg.persistence;
    spec.distinct_hosts = cfg.nemesis.contains(&FaultKind::Partition);
    spec.proxy = cfg.nemesis.contains(&FaultKind::Slow) || cfg.server_bug.is_some();
    let spare = match cfg.spare_masters {
        0 => String::new(),
        n => format!(", {n} spare masters without slots"),
    };
    status(&format!(
        "Starting {} masters, {} replicas per master{spare} ({}, persistence {})",
        cfg.masters, cfg.replicas, cfg.server, cfg.persistence
    ));
    let starting = crate::term::spinner("starting the cluster");
    let cluster = Cluster::start(spec).await.context("starting the cluster");
    starting.finish_and_clear();
    let cluster = Arc::new(cluster?);
    ok(&format!(
        "{} {} cluster ready in {:.2} s",
        cluster.kind,
        cluster.version,
        cluster.bring_up.as_secs_f64()
    ));
    tracing::info!(
        bring_up_ms = cluster.bring_up.as_millis() as u64,
        "cluster ready"
    );
    Ok((cluster, partitioner))
}

/// Puts `bug` on every node's proxy, hitting a request with probability `p` (0: requests are
/// relayed RESP-aware and none is hit yet), each seeded by `seed` and its index, with the other
/// nodes' announced addresses as `MOVED` targets.
pub(crate) fn set_server_bug(cluster: &Cluster, bug: ServerBug, seed: u64, p: f64) {
    let addrs: Vec<String> = cluster
        .proxies
        .iter()
        .map(|p| p.addr().to_string())
        .collect();
    for (i, proxy) in cluster.proxies.iter().enumerate() {
        proxy.set_bug(Some(BugConfig {
            bug,
            p,
            seed: seed ^ ((i as u64) << 48),
            peers: addrs
                .iter()
                .filter(|a| *a != proxy.addr())
                .cloned()
                .collect(),
        }));
    }
}

/// Asks the run's client what it is (an external adapter names its library's version), with
/// the nodes to open it against.
pub(crate) async fn client_info(cfg: &RunConfig, cluster: &Cluster) -> Result<ClientInfo> {
    let factory = cfg
        .workload_config()
        .factory(cluster.seeds(), SlotMap::new().shared());
    factory
        .info()
        .await
        .map_err(|e| anyhow::anyhow!("opening client {}: {e}", cfg.client.name()))
}

/// The history header: what produced this run, with its seed.
pub fn header(s: &Started) -> checker::Header {
    let (cfg, cluster) = (&s.cfg, &s.cluster);
    let mut run = Map::new();
    run.insert("workload".into(), json!(cfg.workload.name()));
    run.insert("client".into(), json!(s.client));
    run.insert("server".into(), json!(cfg.server.to_string()));
    run.insert("server_version".into(), json!(cluster.version));
    run.insert("seed".into(), json!(cfg.seed));
    run.insert("masters".into(), json!(cfg.masters));
    run.insert("replicas".into(), json!(cfg.replicas));
    run.insert("clients".into(), json!(cfg.clients));
    run.insert("keys".into(), json!(cfg.keys));
    run.insert("slots".into(), json!(cfg.slots));
    run.insert("key_dist".into(), json!(cfg.key_dist.name()));
    run.insert("spare_masters".into(), json!(cfg.spare_masters));
    run.insert("migrate_target".into(), json!(cfg.migrate_target.name()));
    if cfg.workload.has_transactions() {
        run.insert("txn".into(), json!(cfg.txn.name()));
    }
    run.insert("rate_per_s".into(), json!(cfg.rate_per_s));
    run.insert("duration_ms".into(), json!(cfg.duration.as_millis() as u64));
    run.insert("nodes".into(), Value::Array(nodes(cluster)));
    run.insert("nemesis".into(), json!(cfg.nemesis));
    run.insert("persistence".into(), json!(cfg.persistence.name()));
    run.insert("failover".into(), json!(cfg.failover.name()));
    run.insert(
        "node_timeout_ms".into(),
        json!(crate::harness::NODE_TIMEOUT_MS_DEFAULT),
    );
    run.insert("nemesis_schedule".into(), json!(s.schedule));
    if cfg.pipeline > 1 {
        run.insert("pipeline".into(), json!(cfg.pipeline));
    }
    if let Some(bug) = cfg.client_bug {
        run.insert("client_bug".into(), json!(bug));
    }
    if let Some(bug) = cfg.server_bug {
        run.insert("server_bug".into(), json!(bug));
    }
    if let Some(scenario) = cfg.scenario {
        run.insert("scenario".into(), json!(scenario));
    }
    if let Some(existing) = &cfg.existing {
        run.insert("attached".into(), attached(existing, cluster));
    }
    run.insert("start".into(), json!(chrono::Utc::now().to_rfc3339()));
    checker::Header::new(run)
}

/// The header's `attached`: the addresses given, the hosts file (if any) and what each node
/// said it runs.
fn attached(existing: &crate::config::Existing, cluster: &Cluster) -> Value {
    let versions: Map<String, Value> = cluster
        .node_versions
        .iter()
        .map(|(addr, version)| (addr.clone(), json!(version)))
        .collect();
    json!({
        "seeds": existing.seeds,
        "hosts": existing.hosts.as_ref().map(|p| p.display().to_string()),
        "versions": versions,
    })
}

/// The header's `nodes`: each node's address, id and pid, and its proxy's address if it has one.
fn nodes(cluster: &Cluster) -> Vec<Value> {
    cluster
        .nodes
        .iter()
        .map(|n| {
            let mut node = json!({"addr": n.addr, "id": n.id, "pid": n.pid});
            if let Some(proxy) = cluster.proxy(&n.addr) {
                node["proxy"] = json!(proxy.addr());
            }
            node
        })
        .collect()
}
