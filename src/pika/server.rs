//! Standalone pika servers on 127.0.0.1: free ports (pika also binds port+2000 on 0.0.0.0 for
//! replication and port+10001 for rsync), a config per server written by us, start, wait for
//! PING, kill/restart by pid, and stop every process when done (also on panic, in `Drop`).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::config::write_config;
use super::error::PikaError;
use super::link::Link;
use crate::harness::process::{log_tail, pid_alive, send_signal, spawn_server, stop_pid};
use crate::harness::{ServerFamily, ServerKind};

/// The environment variable naming the pika binary when `--server-binary` is not given.
pub const SERVER_ENV: &str = "SLOTCHECK_PIKIWIDB_SERVER";
/// Lowest client port we hand out (below the kernel's ephemeral range).
const PORT_MIN: u16 = 10000;
/// Highest client port; +10001 stays below the ephemeral range (32768).
const PORT_MAX: u16 = 19999;
/// pika's replication server port offset (`kPortShiftReplServer`), bound on 0.0.0.0.
const REPL_PORT_OFFSET: u16 = 2000;
/// pika's rsync server port offset (`kPortShiftRsync2`), bound on 127.0.0.1 with `network-interface : lo`.
const RSYNC_PORT_OFFSET: u16 = 10001;
/// How long a starting server gets to answer PING (RocksDB opens 3 instances).
const READY_TIMEOUT_MS: u64 = 30_000;
/// How often we knock while waiting.
const READY_POLL_MS: u64 = 20;
/// How often a server whose ports were taken meanwhile is started again on others.
const START_ATTEMPTS: usize = 3;

/// Ports (client and derived) leased to servers of this process, so concurrent tests never share one.
static LEASED: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// What to start.
#[derive(Debug, Clone)]
pub struct PikaSpec {
    /// The pika 4.0 binary.
    pub binary: PathBuf,
    /// How many servers.
    pub servers: usize,
    /// Where each server gets its directory `node-<port>` (config, data, logs).
    pub dir: PathBuf,
    /// Whether servers are SIGKILLed when slotcheck dies (`PR_SET_PDEATHSIG`).
    pub die_with_parent: bool,
}

/// The pika binary: `given` (from `--server-binary`), else `$SLOTCHECK_PIKIWIDB_SERVER`.
pub fn find_binary(given: Option<&Path>) -> Result<PathBuf, PikaError> {
    let path = match given {
        Some(p) => p.to_path_buf(),
        None => match std::env::var_os(SERVER_ENV) {
            Some(p) if !p.is_empty() => PathBuf::from(p),
            _ => return Err(PikaError::BinaryNotFound),
        },
    };
    if !path.is_file() {
        return Err(PikaError::BinaryMissing { path });
    }
    Ok(path)
}

/// One server: its port, directory and the pid of its current life.
#[derive(Debug)]
struct Server {
    port: u16,
    dir: PathBuf,
    pid: Option<u32>,
}

impl Server {
    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

/// Running pika servers; every process is stopped by `stop` or when this is dropped.
#[derive(Debug)]
pub struct PikaCluster {
    binary: PathBuf,
    die_with_parent: bool,
    servers: Mutex<Vec<Server>>,
    version: String,
    /// How long bring-up took (spawn to every server answering PING).
    pub bring_up: Duration,
}

impl PikaCluster {
    /// Starts `spec.servers` servers and waits until each answers PING.
    pub async fn start(spec: PikaSpec) -> Result<PikaCluster, PikaError> {
        if spec.servers == 0 {
            return Err(PikaError::InvalidSpec("servers must be at least 1".into()));
        }
        std::fs::create_dir_all(&spec.dir)
            .map_err(|e| PikaError::io(format!("create {}", spec.dir.display()), e))?;
        let started = Instant::now();
        let mut cluster = PikaCluster {
            binary: spec.binary.clone(),
            die_with_parent: spec.die_with_parent,
            servers: Mutex::new(Vec::new()),
            version: String::new(),
            bring_up: Duration::ZERO,
        };
        // Spawn all first, then wait: the servers open their databases in parallel.
        for _ in 0..spec.servers {
            let port = lease_port()?;
            let dir = spec.dir.join(format!("node-{port}"));
            let mut server = Server {
                port,
                dir,
                pid: None,
            };
            write_config(&server.dir, server.port)?;
            server.pid = Some(cluster.spawn(&server)?);
            cluster.lock().push(server);
        }
        for i in 0..spec.servers {
            let mut attempt = 1;
            while let Err(e) = cluster.wait_ready(i).await {
                if attempt >= START_ATTEMPTS || !matches!(e, PikaError::Exited { .. }) {
                    return Err(e);
                }
                // Most likely a port taken by another process since we looked: move this server.
                attempt += 1;
                let port = lease_port()?;
                let mut servers = cluster.lock();
                let old = servers[i].port;
                release_port(old);
                servers[i].port = port;
                servers[i].dir = spec.dir.join(format!("node-{port}"));
                write_config(&servers[i].dir, servers[i].port)?;
                let pid = cluster.spawn(&servers[i])?;
                servers[i].pid = Some(pid);
            }
        }
        let first = cluster.addrs()[0].clone();
        cluster.version = read_version(&first).await?;
        cluster.bring_up = started.elapsed();
        Ok(cluster)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Server>> {
        self.servers.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn spawn(&self, server: &Server) -> Result<u32, PikaError> {
        let conf = server.dir.join("pika.conf");
        let args = vec!["-c".to_string(), conf.display().to_string()];
        let child = spawn_server(
            &self.binary,
            &args,
            &server.dir.join("stdout.log"),
            self.die_with_parent,
        )
        .map_err(|e| {
            PikaError::io(
                format!("spawn {}", self.binary.display()),
                std::io::Error::other(e.to_string()),
            )
        })?;
        // The Child handle is dropped; the pid is stopped and reaped by `stop_pid`.
        Ok(child.id())
    }

    /// Waits until server `i` answers PING, or reports why not.
    async fn wait_ready(&self, i: usize) -> Result<(), PikaError> {
        let (addr, pid, stdout) = {
            let servers = self.lock();
            let s = &servers[i];
            (s.addr(), s.pid, s.dir.join("stdout.log"))
        };
        let started = Instant::now();
        let mut link = Link::new(&addr, Duration::from_millis(1000));
        let mut last_error = String::from("none");
        while started.elapsed() < Duration::from_millis(READY_TIMEOUT_MS) {
            if let Some(pid) = pid {
                if !pid_alive(pid) {
                    stop_pid(pid); // reaps the zombie
                    return Err(PikaError::Exited {
                        addr,
                        status: format!("pid {pid} gone"),
                        log_tail: log_tail(&[&stdout]),
                    });
                }
            }
            match link.run::<String>(&["PING"]).await {
                Ok(pong) if pong == "PONG" => return Ok(()),
                Ok(other) => last_error = format!("PING answered {other:?}"),
                Err(e) => last_error = e.to_string(),
            }
            tokio::time::sleep(Duration::from_millis(READY_POLL_MS)).await;
        }
        Err(PikaError::NotReady {
            addr,
            waited_ms: READY_TIMEOUT_MS,
            last_error,
            log_tail: log_tail(&[&stdout]),
        })
    }

    /// Every server's address (`127.0.0.1:port`), in start order.
    pub fn addrs(&self) -> Vec<String> {
        self.lock().iter().map(Server::addr).collect()
    }

    /// The servers' version, from `INFO server` (`pika_version`).
    pub fn version(&self) -> &str {
        &self.version
    }

    /// The pid of the server at `addr`, if it runs.
    pub fn pid(&self, addr: &str) -> Option<u32> {
        self.lock()
            .iter()
            .find(|s| s.addr() == addr)
            .and_then(|s| s.pid)
    }

    /// The directory (config, data, `stdout.log`) of the server at `addr`.
    pub fn dir(&self, addr: &str) -> Option<PathBuf> {
        self.lock()
            .iter()
            .find(|s| s.addr() == addr)
            .map(|s| s.dir.clone())
    }

    fn index(&self, addr: &str) -> Result<usize, PikaError> {
        self.lock()
            .iter()
            .position(|s| s.addr() == addr)
            .ok_or_else(|| PikaError::UnknownServer(addr.to_string()))
    }

    /// SIGKILLs the server at `addr` and reaps it (no shutdown: what RocksDB's WAL holds survives).
    /// Returns the pid it had.
    pub fn kill(&self, addr: &str) -> Result<Option<u32>, PikaError> {
        let i = self.index(addr)?;
        let pid = self.lock()[i].pid.take();
        if let Some(pid) = pid {
            send_signal(pid, libc::SIGKILL);
            stop_pid(pid); // waits for the death and reaps
        }
        Ok(pid)
    }

    /// Starts the server at `addr` again (same port, config and data dir) if it is not running,
    /// and waits until it answers PING; returns its new pid.
    pub async fn restart(&self, addr: &str) -> Result<u32, PikaError> {
        let i = self.index(addr)?;
        let pid = {
            let mut servers = self.lock();
            if let Some(pid) = servers[i].pid.filter(|&p| pid_alive(p)) {
                return Ok(pid);
            }
            if let Some(dead) = servers[i].pid.take() {
                stop_pid(dead); // a crashed server: reap its zombie
            }
            let pid = self.spawn(&servers[i])?;
            servers[i].pid = Some(pid);
            pid
        };
        self.wait_ready(i).await?;
        Ok(pid)
    }

    /// Stops every server: SIGTERM, a grace, SIGKILL; reaped. Calling it again does nothing.
    pub fn stop(&self) {
        let mut servers = self.lock();
        let pids: Vec<u32> = servers.iter_mut().filter_map(|s| s.pid.take()).collect();
        // All are told first, so the grace periods run together (pika takes ~6 s to exit cleanly).
        for &pid in &pids {
            send_signal(pid, libc::SIGTERM);
        }
        for pid in pids {
            stop_pid(pid);
        }
    }
}

/// PikiwiDB: standalone servers behind slotcheck's Codis routing, keys in Codis slots; routers
/// take the slot table, not seeds.
impl ServerFamily for PikaCluster {
    type Error = PikaError;

    fn kind(&self) -> ServerKind {
        ServerKind::Pikiwidb
    }
    fn version(&self) -> &str {
        &self.version
    }
    fn bring_up(&self) -> Duration {
        self.bring_up
    }
    fn addrs(&self) -> Vec<String> {
        PikaCluster::addrs(self)
    }
    fn pid(&self, addr: &str) -> Option<u32> {
        PikaCluster::pid(self, addr)
    }
    fn slot_function(&self) -> &'static dyn checker::SlotFunction {
        &checker::CodisSlots
    }
    fn seeds(&self) -> Vec<String> {
        Vec::new()
    }
    async fn kill(&self, addr: &str) -> Result<(), PikaError> {
        PikaCluster::kill(self, addr).map(|_| ())
    }
    async fn shutdown(&self, addr: &str) -> Result<(), PikaError> {
        let i = self.index(addr)?;
        let pid = self.lock()[i].pid.take();
        if let Some(pid) = pid {
            send_signal(pid, libc::SIGTERM);
            stop_pid(pid);
        }
        Ok(())
    }
    async fn restart(&self, addr: &str) -> Result<u32, PikaError> {
        PikaCluster::restart(self, addr).await
    }
    async fn pause(&self, addr: &str) -> Result<(), PikaError> {
        self.signal(addr, libc::SIGSTOP)
    }
    async fn resume(&self, addr: &str) -> Result<(), PikaError> {
        self.signal(addr, libc::SIGCONT)
    }
    fn stop(&self) {
        PikaCluster::stop(self)
    }
}

impl PikaCluster {
    /// Sends `signal` to the server at `addr`, if it runs.
    fn signal(&self, addr: &str, signal: i32) -> Result<(), PikaError> {
        let i = self.index(addr)?;
        if let Some(pid) = self.lock()[i].pid {
            send_signal(pid, signal);
        }
        Ok(())
    }
}

impl Drop for PikaCluster {
    fn drop(&mut self) {
        self.stop();
        for server in self.lock().iter() {
            release_port(server.port);
        }
    }
}

/// Reads `pika_version` from `INFO server`.
async fn read_version(addr: &str) -> Result<String, PikaError> {
    let mut link = Link::new(addr, Duration::from_millis(2000));
    let info: String = link.run(&["INFO", "server"]).await?;
    info.lines()
        .find_map(|l| l.strip_prefix("pika_version:"))
        .map(|v| v.trim().to_string())
        .ok_or_else(|| PikaError::Reply {
            addr: addr.to_string(),
            command: "INFO server".into(),
            detail: "no pika_version line".into(),
        })
}

/// The three ports a server at `port` binds.
fn derived(port: u16) -> [u16; 3] {
    [port, port + REPL_PORT_OFFSET, port + RSYNC_PORT_OFFSET]
}

/// Leases a client port whose derived ports are free too (bindable now, leased by nobody here),
/// scanning from a random base.
fn lease_port() -> Result<u16, PikaError> {
    let range = usize::from(PORT_MAX - PORT_MIN) + 1;
    let base = rand::random_range(0..range);
    let mut leased = LEASED.lock().unwrap_or_else(|e| e.into_inner());
    for offset in 0..range {
        let port = PORT_MIN + ((base + offset) % range) as u16;
        let ports = derived(port);
        let free = ports.iter().all(|p| !leased.contains(p))
            && bindable("127.0.0.1", ports[0])
            && bindable("0.0.0.0", ports[1])
            && bindable("127.0.0.1", ports[2]);
        if free {
            leased.extend(ports);
            return Ok(port);
        }
    }
    Err(PikaError::NoFreePorts { count: 1 })
}

fn release_port(port: u16) {
    let mut leased = LEASED.lock().unwrap_or_else(|e| e.into_inner());
    for p in derived(port) {
        leased.remove(&p);
    }
}

fn bindable(host: &str, port: u16) -> bool {
    std::net::TcpListener::bind((host, port)).is_ok()
}
