//! Clusters slotcheck did not start: [`Cluster::attach`] takes a running cluster by address
//! (its nodes, roles and versions from `CLUSTER NODES` and `INFO`), optionally with the
//! [`Remote`] hosts its servers run on; [`form_on_hosts`] starts servers on remote hosts over
//! SSH and forms a cluster of them (`slotcheck cluster up --hosts`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::admin::Admin;
use super::cluster::{Cluster, Node, Role};
use super::control::Procs;
use super::error::HarnessError;
use super::health::{self, Planned};
use super::ports::PortLease;
use super::remote::Remote;
use super::server::ServerKind;
use super::view::{self, NodeLine};

/// How long a formed cluster may take to agree.
const FORM_TIMEOUT_MS: u64 = 60_000;
/// How often formation looks again.
const FORM_POLL_MS: u64 = 50;

impl Cluster {
    /// The running cluster one of `seeds` belongs to: every node it knows (failed ones too),
    /// masters first, their versions from `INFO server`. With `remote`, process verbs and
    /// partitions run on its hosts over SSH; without, the cluster has no process control.
    pub async fn attach(
        seeds: &[String],
        remote: Option<Arc<Remote>>,
    ) -> Result<Cluster, HarnessError> {
        let start = Instant::now();
        let lines = cluster_nodes(seeds).await?;
        let mut nodes = Vec::with_capacity(lines.len());
        let mut node_versions = Vec::with_capacity(lines.len());
        let (mut kind, mut version) = (ServerKind::Redis, String::new());
        for line in &lines {
            let mut admin = Admin::connect(&line.addr).await?;
            let info = view::parse_info(&admin.text(&["INFO", "server"]).await?);
            (kind, version) = kind_version(&info);
            node_versions.push((line.addr.clone(), format!("{kind} {version}")));
            let pid = info.get("process_id").and_then(|p| p.parse().ok());
            nodes.push(node_of(line, pid.unwrap_or(0), remote.as_deref()));
        }
        let spare_masters = lines
            .iter()
            .filter(|l| !l.is_replica() && l.slots.is_empty())
            .count();
        if let Some(remote) = &remote {
            remote.refresh().await?;
            for node in &nodes {
                if remote.ssh(&node.addr).is_err() {
                    return Err(HarnessError::InvalidSpec(format!(
                        "{} is a node of the cluster but not in the hosts file",
                        node.addr
                    )));
                }
            }
        }
        Ok(Cluster {
            kind,
            version,
            nodes,
            spare_masters,
            bring_up: start.elapsed(),
            dir: PathBuf::new(),
            procs: Procs::new(Vec::new(), Vec::new()),
            proxies: Vec::new(),
            remote,
            attached: true,
            node_versions,
            _ports: PortLease::none(),
        })
    }

    /// The remote hosts the servers run on, if the cluster is on hosts (`--hosts`).
    pub fn remote(&self) -> Option<&Arc<Remote>> {
        self.remote.as_ref()
    }
}

/// `CLUSTER NODES` of the first seed that answers, masters (by first slot) before replicas.
async fn cluster_nodes(seeds: &[String]) -> Result<Vec<NodeLine>, HarnessError> {
    let mut last = None;
    for seed in seeds {
        let text = match Admin::connect(seed).await {
            Ok(mut admin) => admin.text(&["CLUSTER", "NODES"]).await,
            Err(e) => Err(e),
        };
        match text {
            Ok(text) => {
                let mut lines = view::parse_nodes(&text).ok_or_else(|| HarnessError::Reply {
                    addr: seed.clone(),
                    command: "CLUSTER NODES".to_string(),
                    detail: "unparsable".to_string(),
                })?;
                lines.sort_by_key(|l| {
                    (l.is_replica(), l.slots.first().map(|s| s.0), l.addr.clone())
                });
                return Ok(lines);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| HarnessError::InvalidSpec("no address to attach to".to_string())))
}

/// The family and version `INFO server` names (Valkey says `server_name:valkey`).
fn kind_version(info: &std::collections::BTreeMap<String, String>) -> (ServerKind, String) {
    match info.get("server_name").map(String::as_str) {
        Some("valkey") => (
            ServerKind::Valkey,
            info.get("valkey_version").cloned().unwrap_or_default(),
        ),
        _ => (
            ServerKind::Redis,
            info.get("redis_version").cloned().unwrap_or_default(),
        ),
    }
}

/// The harness's node for a `CLUSTER NODES` line (with its host's data dir and log, if on hosts).
fn node_of(line: &NodeLine, pid: u32, remote: Option<&Remote>) -> Node {
    let (host, port) = line.addr.rsplit_once(':').unwrap_or((&line.addr, "0"));
    let spec = remote.and_then(|r| r.specs().find(|s| s.addr == line.addr));
    Node {
        addr: line.addr.clone(),
        host: host.to_string(),
        port: port.parse().unwrap_or(0),
        id: line.id.clone(),
        pid,
        role: match &line.master_id {
            Some(master_id) => Role::Replica {
                master_id: master_id.clone(),
            },
            None => Role::Master,
        },
        dir: spec.map(|s| PathBuf::from(&s.data_dir)).unwrap_or_default(),
        log: spec.map(|s| PathBuf::from(&s.log_file)).unwrap_or_default(),
    }
}

/// Starts the server of every host of `remote` over SSH and forms a cluster of them: the first
/// `masters` hosts own the slots (evenly), each next group of `replicas` replicates one master,
/// the rest are masters without slots. Refuses hosts whose server already runs.
pub async fn form_on_hosts(
    remote: &Remote,
    masters: usize,
    replicas: usize,
) -> Result<(), HarnessError> {
    let specs: Vec<_> = remote.specs().cloned().collect();
    if masters == 0 || masters * (1 + replicas) > specs.len() {
        return Err(HarnessError::InvalidSpec(format!(
            "{masters} masters with {replicas} replicas each need {} hosts; the file has {}",
            masters * (1 + replicas),
            specs.len()
        )));
    }
    let mut admins = Vec::with_capacity(specs.len());
    for spec in &specs {
        if Admin::probe(&spec.addr).await.is_ok() {
            return Err(HarnessError::InvalidSpec(format!(
                "a server already answers at {} (host {}): run `slotcheck cluster down --hosts` first",
                spec.addr, spec.name
            )));
        }
        remote.start(&spec.addr).await?;
        admins.push(Admin::connect(&spec.addr).await?);
    }
    let plan = plan(&mut admins, masters, replicas).await?;
    for (i, (admin, planned)) in admins.iter_mut().zip(&plan).enumerate() {
        if let Some((first, last)) = planned.slots {
            let (first, last) = (first.to_string(), last.to_string());
            admin
                .run_ok(&["CLUSTER", "ADDSLOTSRANGE", &first, &last])
                .await?;
        }
        admin
            .run_ok(&["CLUSTER", "SET-CONFIG-EPOCH", &(i + 1).to_string()])
            .await?;
    }
    for (i, admin) in admins.iter_mut().enumerate() {
        for spec in specs.iter().skip(i + 1) {
            let port = spec.port().to_string();
            admin
                .run_ok(&["CLUSTER", "MEET", &spec.node_host(), &port])
                .await?;
        }
    }
    let start = Instant::now();
    for admin in admins.iter_mut() {
        loop {
            let problem = health::knows_all(admin, &plan).await?;
            if !pending(admin, "every node known", problem, start)? {
                break;
            }
            tokio::time::sleep(Duration::from_millis(FORM_POLL_MS)).await;
        }
    }
    for (admin, planned) in admins.iter_mut().zip(&plan) {
        if let Role::Replica { master_id } = &planned.role {
            admin.run_ok(&["CLUSTER", "REPLICATE", master_id]).await?;
        }
    }
    let map = health::planned_map(&plan);
    for (admin, me) in admins.iter_mut().zip(&plan) {
        loop {
            let problem = health::ready_problem(admin, me, &plan, &map).await?;
            if !pending(admin, "the planned cluster", problem, start)? {
                break;
            }
            tokio::time::sleep(Duration::from_millis(FORM_POLL_MS)).await;
        }
    }
    Ok(())
}

/// Roles and slot ranges in host order: masters, then each master's replicas, then spares.
async fn plan(
    admins: &mut [Admin],
    masters: usize,
    replicas: usize,
) -> Result<Vec<Planned>, HarnessError> {
    let mut ids = Vec::with_capacity(admins.len());
    for admin in admins.iter_mut() {
        let id: String = admin.run(&["CLUSTER", "MYID"]).await?;
        ids.push(id);
    }
    let ranges = view::even_ranges(masters);
    let replicas_end = masters * (1 + replicas);
    Ok(admins
        .iter()
        .enumerate()
        .map(|(i, admin)| {
            let (role, slots) = if i < masters {
                (Role::Master, Some(ranges[i]))
            } else if i < replicas_end {
                let master_id = ids[(i - masters) / replicas].clone();
                (Role::Replica { master_id }, None)
            } else {
                (Role::Master, None)
            };
            Planned {
                addr: admin.addr().to_string(),
                id: ids[i].clone(),
                role,
                slots,
            }
        })
        .collect())
}

/// Whether to look again for `what` on `admin` after seeing `problem` (`None`: it holds); an
/// error once formation, begun at `start`, ran out of time.
fn pending(
    admin: &Admin,
    what: &str,
    problem: Option<String>,
    start: Instant,
) -> Result<bool, HarnessError> {
    let Some(problem) = problem else {
        return Ok(false);
    };
    if start.elapsed() >= Duration::from_millis(FORM_TIMEOUT_MS) {
        return Err(HarnessError::Timeout {
            addr: admin.addr().to_string(),
            waiting_for: what.to_string(),
            elapsed_ms: start.elapsed().as_millis() as u64,
            last_state: problem,
        });
    }
    Ok(true)
}
