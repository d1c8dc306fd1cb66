//! A running cluster of real server processes on 127.0.0.1, stopped when dropped.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::admin::Admin;
use super::control::Procs;
use super::error::HarnessError;
use super::health;
use super::ports::PortLease;
use super::process;
use super::proxy::Proxy;
use super::remote::Remote;
use super::server::ServerKind;
use super::state::{ClusterState, DetachedNode};
use super::view::SlotMap;

/// Default `cluster-node-timeout`: short, so failover tests are quick, long enough for a loaded 2-core box.
pub const NODE_TIMEOUT_MS_DEFAULT: u64 = 2000;
/// How often `wait_stable` asks every node again.
const STABLE_POLL_MS: u64 = 10;

/// What cluster to start: the caller's validated intent, checked again by `Cluster::start`.
#[derive(Debug, Clone)]
pub struct ClusterSpec {
    /// Which server to run.
    pub kind: ServerKind,
    /// Number of masters; slots are split evenly over them.
    pub masters: usize,
    /// Replicas per master.
    pub replicas: usize,
    /// Masters beyond `masters` that own no slots and have no replicas when the cluster starts
    /// (migration targets no client's slot map has named yet); with any, the nodes run with
    /// `cluster-allow-replica-migration no`, so a master whose last slot moves away stays a
    /// master instead of turning into a replica of the slot's new owner.
    pub spare_masters: usize,
    /// Root dir; each node gets a fresh `node-NN` subdirectory (old `node-*` subdirectories are wiped).
    pub dir: PathBuf,
    /// `cluster-node-timeout` in milliseconds.
    pub node_timeout_ms: u64,
    /// Kill the servers (PR_SET_PDEATHSIG) if slotcheck dies, even by SIGKILL; leave it false for a
    /// cluster you will `detach`, or the servers die when this process exits.
    pub die_with_parent: bool,
    /// Whether data survives a `kill`/`restart` (AOF) or is lost with the process (off, the default).
    pub persistence: Persistence,
    /// Extra `--name value` server arguments, after ours; names the harness relies on are refused.
    pub extra_config: Vec<(String, String)>,
    /// Node i binds (and connects from) `127.0.0.(10+i)` instead of `127.0.0.1`, so iptables can tell
    /// node-to-node traffic apart from client traffic (which comes from 127.0.0.1); needed by partitions.
    pub distinct_hosts: bool,
    /// Put a `proxy::Proxy` of ours in front of every node (same host, another port) and have
    /// the node announce it (`cluster-announce-port`; the bus port stays `port + 10000`), so clients
    /// and replication links go through it while admin connections use `Node::addr`; needed by
    /// `slow`. The proxies live in this process: a `detach`ed cluster loses them.
    pub proxy: bool,
}

impl ClusterSpec {
    /// A spec with the default node timeout, no extra config and `die_with_parent: false` (a panic or
    /// a drop still stops the servers; set it for long runs that could be SIGKILLed).
    pub fn new(
        kind: ServerKind,
        masters: usize,
        replicas: usize,
        dir: impl Into<PathBuf>,
    ) -> ClusterSpec {
        ClusterSpec {
            kind,
            masters,
            replicas,
            spare_masters: 0,
            dir: dir.into(),
            node_timeout_ms: NODE_TIMEOUT_MS_DEFAULT,
            die_with_parent: false,
            extra_config: Vec::new(),
            persistence: Persistence::Off,
            distinct_hosts: false,
            proxy: false,
        }
    }

    /// Refuses a spec outside the harness's limits (masters, replicas, nodes, node timeout),
    /// as a start would, without starting or creating anything.
    pub fn validate(&self) -> Result<(), HarnessError> {
        super::config::validate(self)
    }
}

/// What a node keeps on disk, which decides what a restarted node still holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Persistence {
    /// Nothing (`save ""`, `appendonly no`): a restarted node comes back empty, even if it still
    /// owns slots (restarted within the node timeout, no replica took over).
    #[default]
    Off,
    /// `appendonly yes` with `appendfsync always`: every acknowledged write survives a SIGKILL.
    Aof,
}

impl Persistence {
    /// Every mode, in a fixed order.
    pub const ALL: [Persistence; 2] = [Persistence::Off, Persistence::Aof];

    /// The command-line name (`off`, `aof`), also recorded in the history header.
    pub fn name(self) -> &'static str {
        match self {
            Persistence::Off => "off",
            Persistence::Aof => "aof",
        }
    }

    /// The server's `appendonly` value for this mode.
    pub(crate) fn appendonly(self) -> &'static str {
        match self {
            Persistence::Off => "no",
            Persistence::Aof => "yes",
        }
    }

    /// The server's `appendfsync` value: `always`, so an acknowledged write is on disk before a kill.
    pub(crate) fn appendfsync(self) -> &'static str {
        match self {
            Persistence::Off => "everysec",
            Persistence::Aof => "always",
        }
    }
}

impl std::fmt::Display for Persistence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Persistence {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Persistence::ALL
            .into_iter()
            .find(|p| p.name() == s)
            .ok_or_else(|| format!("unknown persistence `{s}`: expected off or aof"))
    }
}

/// A node's role as set up by the harness (faults may change it later; ask the cluster for the truth).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Role {
    /// Owns a slot range.
    Master,
    /// Replicates the master with this node id.
    Replica {
        /// The cluster node id of its master.
        master_id: String,
    },
}

/// One server of the cluster: where to reach it, who it is, where its files are.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    /// `<host>:<port>`, the form clients and `CLUSTER NODES` use.
    pub addr: String,
    /// `127.0.0.1`, or the node's own `127.0.0.x` with `ClusterSpec::distinct_hosts`.
    pub host: String,
    /// Client port; the bus port is `port + 10000`.
    pub port: u16,
    /// The 40-hex cluster node id.
    pub id: String,
    /// Process id of the server at bring-up (`Cluster::pid` gives the current one after a restart).
    pub pid: u32,
    /// Role at bring-up.
    pub role: Role,
    /// The node's data dir (`nodes.conf`, `server.log`, `stdout.log`).
    pub dir: PathBuf,
    /// The server log.
    pub log: PathBuf,
}

/// A running cluster; dropping it stops every server (also on panic).
#[derive(Debug)]
pub struct Cluster {
    /// Which server runs.
    pub kind: ServerKind,
    /// Server version, e.g. `7.0.15`.
    pub version: String,
    /// Masters first (in slot order), then replicas, then the spare masters.
    pub nodes: Vec<Node>,
    /// Masters that owned no slots at bring-up (`ClusterSpec::spare_masters`), the last nodes.
    pub spare_masters: usize,
    /// From the first process start to every node ready.
    pub bring_up: Duration,
    /// The root dir holding the `node-NN` dirs.
    pub(crate) dir: PathBuf,
    /// Our server processes, one entry per node (in `nodes` order); emptied by `stop` and `detach`.
    pub(crate) procs: Procs,
    /// With `ClusterSpec::proxy`, each node's proxy (in `nodes` order); else empty.
    pub(crate) proxies: Vec<Proxy>,
    /// The hosts the servers run on, when the cluster is on other machines (`--hosts`): the
    /// process verbs and partitions go there over SSH.
    pub(crate) remote: Option<Arc<Remote>>,
    /// What each node of an attached cluster said it runs (`addr`, version); empty otherwise.
    pub node_versions: Vec<(String, String)>,
    /// Whether slotcheck did not start these servers ([`Cluster::attach`]): stopping the
    /// cluster leaves them running, and its process verbs need `remote`.
    pub attached: bool,
    /// Keeps our ports reserved against other clusters of this process until we are dropped.
    pub(crate) _ports: PortLease,
}

impl Cluster {
    /// Starts a cluster as `spec` says and waits until every node agrees it is complete and healthy.
    /// Must be awaited on a long-lived thread when `die_with_parent` is set (see `process::spawn_server`).
    pub async fn start(spec: ClusterSpec) -> Result<Cluster, HarnessError> {
        super::bring_up::start(spec).await
    }

    /// The root dir holding the node dirs.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The masters at bring-up.
    pub fn masters(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter().filter(|n| n.role == Role::Master)
    }

    /// The replicas at bring-up.
    pub fn replicas(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter().filter(|n| n.role != Role::Master)
    }

    /// The node with this `host:port` address.
    pub fn node(&self, addr: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.addr == addr)
    }

    /// The proxy in front of the node at `addr`, if the cluster runs proxies (`ClusterSpec::proxy`).
    pub fn proxy(&self, addr: &str) -> Option<&Proxy> {
        let i = self.nodes.iter().position(|n| n.addr == addr)?;
        self.proxies.get(i)
    }

    /// Addresses of all nodes as clients reach them (through their proxies, if any), for a client's
    /// seed list.
    pub fn seeds(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| match self.proxy(&n.addr) {
                Some(proxy) => proxy.addr().to_string(),
                None => n.addr.clone(),
            })
            .collect()
    }

    /// Waits until every node says `cluster_state:ok`, no slot is importing or migrating, every slot is
    /// assigned and all nodes report the same slot map.
    pub async fn wait_stable(&self, timeout_ms: u64) -> Result<(), HarnessError> {
        let start = Instant::now();
        let deadline = start + Duration::from_millis(timeout_ms);
        let mut admins: Vec<Option<Admin>> = self.nodes.iter().map(|_| None).collect();
        loop {
            let (addr, problem) = match self.stable_round(&mut admins).await {
                None => return Ok(()),
                Some(found) => found,
            };
            if Instant::now() >= deadline {
                return Err(HarnessError::Timeout {
                    addr,
                    waiting_for: "a stable cluster (state ok, no open slots, one slot map)"
                        .to_string(),
                    elapsed_ms: start.elapsed().as_millis() as u64,
                    last_state: problem,
                });
            }
            tokio::time::sleep(Duration::from_millis(STABLE_POLL_MS)).await;
        }
    }

    /// One look at every node; `None` if stable, else the first problem and where it was seen.
    async fn stable_round(&self, admins: &mut [Option<Admin>]) -> Option<(String, String)> {
        let mut first_map: Option<(&str, SlotMap)> = None;
        for (node, slot) in self.nodes.iter().zip(admins.iter_mut()) {
            let result = match slot {
                Some(admin) => health::settled_map(admin).await,
                None => match Admin::connect(&node.addr).await {
                    Ok(admin) => health::settled_map(slot.insert(admin)).await,
                    Err(e) => Err(e),
                },
            };
            let map = match result {
                Ok(Ok(map)) => map,
                Ok(Err(problem)) => return Some((node.addr.clone(), problem)),
                Err(e) => {
                    *slot = None; // reconnect next round
                    return Some((node.addr.clone(), e.to_string()));
                }
            };
            match &first_map {
                None => first_map = Some((&node.addr, map)),
                Some((first, seen)) if *seen != map => {
                    return Some((
                        node.addr.clone(),
                        format!("slot map differs from {first}'s: {map:?} vs {seen:?}"),
                    ))
                }
                Some(_) => {}
            }
        }
        None
    }

    /// Stops every server (paused ones are resumed first; SIGTERM, short grace, SIGKILL) and reaps it,
    /// restarted ones included, and every proxy; calling it again does nothing. Takes `&self`, so a
    /// shared `Arc<Cluster>` can be stopped.
    pub fn stop(&self) {
        if let Some(remote) = &self.remote {
            // Servers on hosts belong to `cluster down --hosts`; only what we paused is resumed.
            remote.resume_all();
        }
        self.procs.stop_all();
        for proxy in &self.proxies {
            proxy.stop();
        }
    }

    /// Leaves the servers running and returns a record to stop them later with `ClusterState::destroy`.
    /// Start with `die_with_parent: false`, or the servers die with this process anyway.
    pub fn detach(self) -> ClusterState {
        // Dropping a `Child` neither kills nor waits; taking them out makes our Drop a no-op.
        // A node restarted since bring-up is recorded with its current pid; a down node is left out.
        let pids = self.procs.release_all();
        ClusterState {
            kind: self.kind,
            version: self.version.clone(),
            dir: self.dir.clone(),
            nodes: self
                .nodes
                .iter()
                .zip(pids)
                .filter_map(|(node, pid)| {
                    let pid = pid?;
                    Some(DetachedNode {
                        node: Node {
                            pid,
                            ..node.clone()
                        },
                        start_ticks: process::start_ticks(pid),
                    })
                })
                .collect(),
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}
