//! Cluster bring-up, in the order the team measured fastest and most reliable:
//! spawn all, wait for each to answer, assign slots and distinct config epochs, `CLUSTER MEET` every pair
//! (a star of MEETs is slow and flaky), wait until every node knows every other, `CLUSTER REPLICATE`,
//! then poll until every node sees the planned cluster.

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use super::admin::Admin;
use super::cluster::{Cluster, ClusterSpec, Node, Role};
use super::config::{node_count, node_host, server_args, validate};
use super::control::{Launch, Procs};
use super::error::HarnessError;
use super::health::{self, Planned};
use super::ports::{self, PortLease};
use super::process;
use super::proxy::Proxy;
use super::server::{self, ServerBinary};
use super::view;

/// How many times we pick new ports after a server lost a race for its port.
const PORT_ATTEMPTS_MAX: usize = 3;
/// Bring-up deadline: a base plus a share per node (each node adds gossip and, for replicas, a sync).
const BRING_UP_TIMEOUT_MS_BASE: u64 = 20_000;
const BRING_UP_TIMEOUT_MS_PER_NODE: u64 = 500;
/// How often we poll a starting server and the forming cluster.
const PING_POLL_MS: u64 = 5;
const READY_POLL_MS: u64 = 10;
/// Starts the cluster, retrying with fresh ports when a server lost its port to another process.
pub(crate) async fn start(spec: ClusterSpec) -> Result<Cluster, HarnessError> {
    validate(&spec)?;
    let binary = server::find_server(spec.kind)?;
    std::fs::create_dir_all(&spec.dir)
        .map_err(|e| HarnessError::io(format!("create {}", spec.dir.display()), e))?;
    let root = spec
        .dir
        .canonicalize()
        .map_err(|e| HarnessError::io(format!("resolve {}", spec.dir.display()), e))?;
    let total = node_count(&spec);
    let mut attempt = 1;
    loop {
        wipe_node_dirs(&root)?;
        // With proxies, a second port per node for its proxy, on the node's host.
        let copies = if spec.proxy { 2 } else { 1 };
        let hosts: Vec<String> = (0..total * copies)
            .map(|i| node_host(&spec, i % total))
            .collect();
        let lease = ports::lease_ports(&hosts)?;
        match attempt_start(&spec, &binary, &root, lease).await {
            Err(HarnessError::Exited { log_tail, .. })
                if attempt < PORT_ATTEMPTS_MAX && log_tail.contains("Address already in use") =>
            {
                tracing::debug!(
                    attempt,
                    "a server lost its port to another process; retrying"
                );
                attempt += 1;
            }
            result => return result,
        }
    }
}

/// Removes every `node-*` dir under `root`: a former replica reloads a stale dump.rdb even with `save ''`.
/// Other files are left alone, so a mistaken `dir` cannot wipe someone's data.
fn wipe_node_dirs(root: &Path) -> Result<(), HarnessError> {
    let entries = std::fs::read_dir(root)
        .map_err(|e| HarnessError::io(format!("list {}", root.display()), e))?;
    for entry in entries {
        let entry = entry.map_err(|e| HarnessError::io(format!("list {}", root.display()), e))?;
        let is_node_dir = entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with("node-"))
            && entry.file_type().is_ok_and(|t| t.is_dir());
        if is_node_dir {
            std::fs::remove_dir_all(entry.path())
                .map_err(|e| HarnessError::io(format!("remove {}", entry.path().display()), e))?;
        }
    }
    Ok(())
}

/// Children of a bring-up in progress: stopped if bring-up fails or panics, handed to `Cluster` if not.
struct Fleet {
    children: Vec<Child>,
    addrs: Vec<String>,
    logs: Vec<(PathBuf, PathBuf)>,
}

impl Fleet {
    /// The first server that has exited, as an error quoting its logs.
    fn exited(&mut self) -> Option<HarnessError> {
        for (i, child) in self.children.iter_mut().enumerate() {
            if let Ok(Some(status)) = child.try_wait() {
                let (log, stdout) = &self.logs[i];
                return Some(HarnessError::Exited {
                    addr: self.addrs[i].clone(),
                    status: status.to_string(),
                    log_tail: process::log_tail(&[log, stdout]),
                });
            }
        }
        None
    }

    /// Prefers "a server died" over the command error it caused.
    fn explain(&mut self, error: HarnessError) -> HarnessError {
        self.exited().unwrap_or(error)
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        process::stop_children(&mut self.children);
    }
}

/// One bring-up on the leased ports: proxies, servers, slots and epochs, the mesh, replicas; the
/// fleet is stopped if any step fails.
async fn attempt_start(
    spec: &ClusterSpec,
    binary: &ServerBinary,
    root: &Path,
    lease: PortLease,
) -> Result<Cluster, HarnessError> {
    let total = node_count(spec);
    let (ports, proxy_ports) = lease.ports().split_at(total);
    let (ports, proxy_ports) = (ports.to_vec(), proxy_ports.to_vec());
    let (mut fleet, dirs) = Fleet::prepare(spec, root, &ports)?;
    let timeout_ms = BRING_UP_TIMEOUT_MS_BASE + BRING_UP_TIMEOUT_MS_PER_NODE * total as u64;
    let start = Instant::now();
    let deadline = start + Duration::from_millis(timeout_ms);
    // Proxies listen before any server starts: a replica's first sync already goes through one.
    let proxies = start_proxies(spec, &proxy_ports, &fleet.addrs).await?;
    let launches = spawn_all(spec, binary, &mut fleet, &dirs, &proxy_ports)?;

    let mut admins = Vec::with_capacity(total);
    for i in 0..total {
        admins.push(wait_answering(&mut fleet, i, start, deadline).await?);
    }
    tracing::debug!(
        elapsed_ms = start.elapsed().as_millis() as u64,
        "all servers answer"
    );
    let plan = plan(spec, &mut fleet, &mut admins).await?;
    let clock = (start, deadline);
    form(spec, &mut fleet, &mut admins, &plan, &ports, clock).await?;
    let bring_up = start.elapsed();
    tracing::debug!(elapsed_ms = bring_up.as_millis() as u64, "cluster ready");

    Ok(Cluster {
        kind: binary.kind,
        version: binary.version.clone(),
        nodes: nodes(spec, &plan, &fleet, &dirs),
        spare_masters: spec.spare_masters,
        bring_up,
        dir: root.to_path_buf(),
        procs: Procs::new(std::mem::take(&mut fleet.children), launches),
        proxies,
        remote: None,
        attached: false,
        node_versions: Vec::new(),
        _ports: lease,
    })
}

impl Fleet {
    /// Makes every node's directory under `root` and names its address and logs; nothing runs
    /// yet. Returns the fleet and each node's directory and port.
    fn prepare(
        spec: &ClusterSpec,
        root: &Path,
        ports: &[u16],
    ) -> Result<(Fleet, Vec<(PathBuf, u16)>), HarnessError> {
        let mut fleet = Fleet {
            children: Vec::with_capacity(ports.len()),
            addrs: ports
                .iter()
                .enumerate()
                .map(|(i, p)| format!("{}:{p}", node_host(spec, i)))
                .collect(),
            logs: Vec::with_capacity(ports.len()),
        };
        let mut dirs = Vec::with_capacity(ports.len());
        for (i, port) in ports.iter().enumerate() {
            let dir = root.join(format!("node-{i:02}"));
            std::fs::create_dir_all(&dir)
                .map_err(|e| HarnessError::io(format!("create {}", dir.display()), e))?;
            fleet
                .logs
                .push((dir.join("server.log"), dir.join("stdout.log")));
            dirs.push((dir, *port));
        }
        Ok((fleet, dirs))
    }
}

/// Starts one proxy per node on `proxy_ports` (none without `ClusterSpec::proxy`), in front of
/// the node at the same index of `addrs`.
async fn start_proxies(
    spec: &ClusterSpec,
    proxy_ports: &[u16],
    addrs: &[String],
) -> Result<Vec<Proxy>, HarnessError> {
    let mut proxies = Vec::with_capacity(proxy_ports.len());
    for (i, proxy_port) in proxy_ports.iter().enumerate() {
        let host = node_host(spec, i);
        let proxy = Proxy::start(&host, *proxy_port, &addrs[i])
            .await
            .map_err(|e| HarnessError::io(format!("start a proxy on {host}:{proxy_port}"), e))?;
        proxies.push(proxy);
    }
    Ok(proxies)
}

/// Spawns every server into `fleet`; returns how each was started, so `Cluster::restart` can
/// start it again the same way.
fn spawn_all(
    spec: &ClusterSpec,
    binary: &ServerBinary,
    fleet: &mut Fleet,
    dirs: &[(PathBuf, u16)],
    proxy_ports: &[u16],
) -> Result<Vec<Launch>, HarnessError> {
    let mut launches = Vec::with_capacity(dirs.len());
    for (i, (dir, port)) in dirs.iter().enumerate() {
        let host = node_host(spec, i);
        let proxy_port = proxy_ports.get(i).copied();
        let args = server_args(spec, &host, *port, proxy_port, dir, &fleet.logs[i].0);
        // Spawned right here, on the runtime thread that polls us, never on a blocking-pool thread:
        // PR_SET_PDEATHSIG fires when the forking *thread* exits (see `process::spawn_server`).
        let child =
            process::spawn_server(&binary.path, &args, &fleet.logs[i].1, spec.die_with_parent)?;
        fleet.children.push(child);
        launches.push(Launch {
            binary: binary.path.clone(),
            args,
            stdout: fleet.logs[i].1.clone(),
            die_with_parent: spec.die_with_parent,
        });
    }
    Ok(launches)
}

/// Forms the cluster `plan` describes from answering servers: slots and distinct config epochs,
/// a `CLUSTER MEET` per pair, the full mesh known, `CLUSTER REPLICATE`, then every node seeing
/// the planned cluster. `clock` is the bring-up's start and deadline.
async fn form(
    spec: &ClusterSpec,
    fleet: &mut Fleet,
    admins: &mut [Admin],
    plan: &[Planned],
    ports: &[u16],
    (start, deadline): (Instant, Instant),
) -> Result<(), HarnessError> {
    let map = health::planned_map(plan);
    for (i, (admin, planned)) in admins.iter_mut().zip(plan).enumerate() {
        if let Some((first, last)) = planned.slots {
            let (first, last) = (first.to_string(), last.to_string());
            run_ok(fleet, admin, &["CLUSTER", "ADDSLOTSRANGE", &first, &last]).await?;
        }
        let epoch = (i + 1).to_string();
        run_ok(fleet, admin, &["CLUSTER", "SET-CONFIG-EPOCH", &epoch]).await?;
    }
    // Every pair meets once: node i introduces itself to every later node.
    for (i, admin) in admins.iter_mut().enumerate() {
        for (j, port) in ports.iter().enumerate().skip(i + 1) {
            let (host, port) = (node_host(spec, j), port.to_string());
            run_ok(fleet, admin, &["CLUSTER", "MEET", &host, &port]).await?;
        }
    }
    for admin in admins.iter_mut() {
        wait_known(fleet, admin, plan, start, deadline).await?;
    }
    tracing::debug!(
        elapsed_ms = start.elapsed().as_millis() as u64,
        "full mesh known"
    );
    for (admin, planned) in admins.iter_mut().zip(plan) {
        if let Role::Replica { master_id } = &planned.role {
            run_ok(fleet, admin, &["CLUSTER", "REPLICATE", master_id]).await?;
        }
    }
    wait_ready(fleet, admins, plan, &map, start, deadline).await
}

/// The nodes of a formed cluster, as `Cluster` lists them.
fn nodes(
    spec: &ClusterSpec,
    plan: &[Planned],
    fleet: &Fleet,
    dirs: &[(PathBuf, u16)],
) -> Vec<Node> {
    plan.iter()
        .zip(&fleet.children)
        .zip(dirs)
        .enumerate()
        .map(|(i, ((planned, child), (dir, port)))| Node {
            addr: planned.addr.clone(),
            host: node_host(spec, i),
            port: *port,
            id: planned.id.clone(),
            pid: child.id(),
            role: planned.role.clone(),
            dir: dir.clone(),
            log: dir.join("server.log"),
        })
        .collect()
}

/// Waits until server `i` answers `INFO server` as *our* process: the port might belong to someone else's
/// server if ours lost the bind race, and then we must not send it cluster commands.
async fn wait_answering(
    fleet: &mut Fleet,
    i: usize,
    start: Instant,
    deadline: Instant,
) -> Result<Admin, HarnessError> {
    let addr = fleet.addrs[i].clone();
    let pid = fleet.children[i].id().to_string();
    loop {
        if let Some(error) = fleet.exited() {
            return Err(error);
        }
        let last_state = match Admin::connect(&addr).await {
            Ok(mut admin) => match admin.text(&["INFO", "server"]).await {
                Ok(text) => match view::parse_info(&text).get("process_id") {
                    Some(answered) if *answered == pid => return Ok(admin),
                    answered => format!("answered by process_id {answered:?}, ours is {pid}"),
                },
                Err(e) => e.to_string(),
            },
            Err(e) => e.to_string(),
        };
        if Instant::now() >= deadline {
            return Err(HarnessError::Timeout {
                addr,
                waiting_for: "the server to answer INFO".to_string(),
                elapsed_ms: start.elapsed().as_millis() as u64,
                last_state,
            });
        }
        tokio::time::sleep(Duration::from_millis(PING_POLL_MS)).await;
    }
}

/// Asks every node its id and decides roles and slot ranges: masters first, then each master's replicas.
async fn plan(
    spec: &ClusterSpec,
    fleet: &mut Fleet,
    admins: &mut [Admin],
) -> Result<Vec<Planned>, HarnessError> {
    let mut ids = Vec::with_capacity(admins.len());
    for admin in admins.iter_mut() {
        let id: String = admin
            .run(&["CLUSTER", "MYID"])
            .await
            .map_err(|e| fleet.explain(e))?;
        ids.push(id);
    }
    let ranges = view::even_ranges(spec.masters);
    let plan = admins
        .iter()
        .enumerate()
        .map(|(i, admin)| {
            let replicas_end = spec.masters * (1 + spec.replicas);
            let (role, slots) = if i < spec.masters {
                (Role::Master, Some(ranges[i]))
            } else if i >= replicas_end {
                // A spare master: no slots, no replicas.
                (Role::Master, None)
            } else {
                let master = (i - spec.masters) / spec.replicas;
                (
                    Role::Replica {
                        master_id: ids[master].clone(),
                    },
                    None,
                )
            };
            Planned {
                addr: admin.addr().to_string(),
                id: ids[i].clone(),
                role,
                slots,
            }
        })
        .collect();
    Ok(plan)
}

/// Runs a command that must answer `OK`.
async fn run_ok(fleet: &mut Fleet, admin: &mut Admin, words: &[&str]) -> Result<(), HarnessError> {
    admin.run_ok(words).await.map_err(|e| fleet.explain(e))
}

/// Waits until the node knows every planned node by id, with no handshake in progress.
async fn wait_known(
    fleet: &mut Fleet,
    admin: &mut Admin,
    plan: &[Planned],
    start: Instant,
    deadline: Instant,
) -> Result<(), HarnessError> {
    loop {
        let problem = match health::knows_all(admin, plan)
            .await
            .map_err(|e| fleet.explain(e))?
        {
            None => return Ok(()),
            Some(problem) => problem,
        };
        if Instant::now() >= deadline {
            return Err(HarnessError::Timeout {
                addr: admin.addr().to_string(),
                waiting_for: "every node to be known (handshakes done)".to_string(),
                elapsed_ms: start.elapsed().as_millis() as u64,
                last_state: problem,
            });
        }
        tokio::time::sleep(Duration::from_millis(PING_POLL_MS)).await;
    }
}

/// Polls all nodes until, in one round, every node sees the planned cluster. A round stops at the first
/// node that is not ready, so a forming cluster costs a few commands per poll, not all of them.
async fn wait_ready(
    fleet: &mut Fleet,
    admins: &mut [Admin],
    plan: &[Planned],
    map: &view::SlotMap,
    start: Instant,
    deadline: Instant,
) -> Result<(), HarnessError> {
    loop {
        let mut not_ready = None;
        for (admin, me) in admins.iter_mut().zip(plan) {
            let problem = health::ready_problem(admin, me, plan, map)
                .await
                .map_err(|e| fleet.explain(e))?;
            if let Some(problem) = problem {
                not_ready = Some((admin.addr().to_string(), problem));
                break;
            }
        }
        let Some((addr, last_state)) = not_ready else {
            return Ok(());
        };
        if Instant::now() >= deadline {
            return Err(HarnessError::Timeout {
                addr,
                waiting_for: "cluster_state:ok with the planned slots, roles and replication links"
                    .to_string(),
                elapsed_ms: start.elapsed().as_millis() as u64,
                last_state,
            });
        }
        tokio::time::sleep(Duration::from_millis(READY_POLL_MS)).await;
    }
}
