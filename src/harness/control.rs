//! Process control of a running cluster's nodes: the fault verbs in named pairs (`kill`/`restart`,
//! `shutdown`/`restart`, `pause`/`resume`), all through `&Cluster`, so a nemesis holding an
//! `Arc<Cluster>` can use them while the run still owns the cluster.
//!
//! The process table lives behind a `std::sync::Mutex` that is never held across an `.await`.
//! A restarted node gets the same binary, arguments (port, config, data dir, `nodes.conf`) and
//! `die_with_parent` as at bring-up, so it rejoins with the same node id.

use std::path::PathBuf;
use std::process::Child;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::admin::Admin;
use super::cluster::Cluster;
use super::error::HarnessError;
use super::process;
use super::remote::Remote;
use super::view;

/// How long a SIGKILLed server may take to be reaped.
const KILL_TIMEOUT_MS: u64 = 5_000;
/// How long a graceful shutdown may take (Redis 7 waits up to `shutdown-timeout`, 10 s, for lagging
/// replicas before it exits).
const SHUTDOWN_TIMEOUT_MS: u64 = 15_000;
/// How long a restarted server may take to answer (it may replay an AOF first).
const RESTART_TIMEOUT_MS: u64 = 20_000;
/// How long the kernel may take to show a signalled process stopped or running again.
const SIGNAL_TIMEOUT_MS: u64 = 2_000;
/// How often we look at a process we wait for.
const POLL_MS: u64 = 5;

/// What the harness knows about a node's process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProcessState {
    /// Our process runs (it may still be starting).
    Running,
    /// Our process is stopped by SIGSTOP (`pause`); it holds its port but answers nothing.
    Paused,
    /// No process: killed, shut down, or the whole cluster stopped.
    Down,
}

/// How to start a node's server again: what bring-up used for it.
#[derive(Debug, Clone)]
pub(crate) struct Launch {
    /// The server binary.
    pub binary: PathBuf,
    /// Its full argument list (port, dir, `nodes.conf`, persistence, extra config).
    pub args: Vec<String>,
    /// Where stdout and stderr are appended.
    pub stdout: PathBuf,
    /// Whether the process dies with slotcheck (PR_SET_PDEATHSIG).
    pub die_with_parent: bool,
}

/// One node's entry in the process table.
#[derive(Debug)]
struct Entry {
    launch: Launch,
    /// `None` once the process is known dead and reaped.
    child: Option<Child>,
    paused: bool,
}

/// The cluster's process table: one entry per node, in `Cluster::nodes` order.
#[derive(Debug)]
pub(crate) struct Procs {
    entries: Mutex<Vec<Entry>>,
}

impl Procs {
    /// A table of freshly started children and how each was launched (same order, same length).
    pub(crate) fn new(children: Vec<Child>, launches: Vec<Launch>) -> Procs {
        assert_eq!(children.len(), launches.len(), "one launch per child");
        let entries = children
            .into_iter()
            .zip(launches)
            .map(|(child, launch)| Entry {
                launch,
                child: Some(child),
                paused: false,
            })
            .collect();
        Procs {
            entries: Mutex::new(entries),
        }
    }

    /// The table, also after a panic elsewhere poisoned the lock (Drop must still stop every server).
    fn lock(&self) -> MutexGuard<'_, Vec<Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Stops every process: resumes paused ones first (a stopped process ignores SIGTERM until
    /// SIGCONT), then SIGTERM, a short grace, SIGKILL; every child is reaped. Idempotent.
    pub(crate) fn stop_all(&self) {
        let mut children: Vec<Child> = {
            let mut entries = self.lock();
            entries
                .iter_mut()
                .filter_map(|e| {
                    e.paused = false;
                    e.child.take()
                })
                .collect()
        };
        for child in &children {
            process::send_signal(child.id(), libc::SIGCONT);
        }
        process::stop_children(&mut children);
    }

    /// Takes every child out of the table without stopping it (for `detach`); returns the current pid
    /// of each node, `None` where no process runs.
    pub(crate) fn release_all(&self) -> Vec<Option<u32>> {
        let mut entries = self.lock();
        entries
            .iter_mut()
            .map(|e| {
                // Dropping a `Child` neither kills nor waits.
                e.child.take().map(|child| child.id())
            })
            .collect()
    }

    /// The pid of node `i` if its process runs (or is paused).
    fn pid(&self, i: usize) -> Option<u32> {
        self.lock()[i].child.as_ref().map(Child::id)
    }

    /// A process that exited on its own (a crash) is reaped here and reported `Down`.
    fn state(&self, i: usize) -> ProcessState {
        let mut entries = self.lock();
        if let Some(child) = entries[i].child.as_mut() {
            if !matches!(child.try_wait(), Ok(None)) {
                entries[i].child = None;
                entries[i].paused = false;
            }
        }
        match &entries[i] {
            Entry { child: None, .. } => ProcessState::Down,
            Entry { paused: true, .. } => ProcessState::Paused,
            Entry { .. } => ProcessState::Running,
        }
    }

    /// Reaps node `i` if it has exited; returns its exit status then.
    fn reap_exited(&self, i: usize) -> Option<String> {
        let mut entries = self.lock();
        let entry = &mut entries[i];
        let status = match entry.child.as_mut()?.try_wait() {
            Ok(Some(status)) => status.to_string(),
            Ok(None) => return None,
            Err(e) => format!("unknown ({e})"),
        };
        entry.child = None;
        entry.paused = false;
        Some(status)
    }
}

impl Cluster {
    /// The current pid of the node at `addr` (it changes on `restart`); `None` if no process runs.
    pub fn pid(&self, addr: &str) -> Option<u32> {
        let i = self.index(addr).ok()?;
        if self.attached {
            return self.remote.as_ref().and_then(|r| r.pid(addr));
        }
        self.procs.pid(i)
    }

    /// Whether the node at `addr` runs, is paused or is down; `None` for an address not in the cluster.
    pub fn process_state(&self, addr: &str) -> Option<ProcessState> {
        let i = self.index(addr).ok()?;
        if self.attached {
            // Without hosts we see no process: an attached node counts as running.
            return Some(self.remote.as_ref().map_or(ProcessState::Running, |r| {
                r.state(addr).unwrap_or(ProcessState::Running)
            }));
        }
        Some(self.procs.state(i))
    }

    /// Kills the node at `addr` with SIGKILL (no chance to save or say goodbye) and reaps it; its port
    /// refuses connections afterwards. Works on a paused node too.
    pub async fn kill(&self, addr: &str) -> Result<(), HarnessError> {
        if self.attached {
            return self.remotely(addr, "kill")?.signal(addr, "KILL").await;
        }
        let i = self.index(addr)?;
        self.signal_running(i, addr, "kill", libc::SIGKILL)?;
        self.wait_exit(i, addr, "the killed server to exit", KILL_TIMEOUT_MS)
            .await
    }

    /// Stops the node at `addr` gracefully (SIGTERM: the server flushes its AOF and closes its
    /// connections) and reaps it; `restart` brings it back. A paused node is resumed to let it exit.
    pub async fn shutdown(&self, addr: &str) -> Result<(), HarnessError> {
        if self.attached {
            return self.remotely(addr, "shutdown")?.signal(addr, "TERM").await;
        }
        let i = self.index(addr)?;
        self.signal_running(i, addr, "shut down", libc::SIGTERM)?;
        self.wait_exit(
            i,
            addr,
            "the server to shut down after SIGTERM",
            SHUTDOWN_TIMEOUT_MS,
        )
        .await
    }

    /// Starts the node at `addr` again after `kill` or `shutdown`: same port, config, data dir and
    /// `nodes.conf` (so it rejoins with the same id), then waits until it answers as the new process.
    /// Returns the new pid. Must be awaited on a long-lived thread when `die_with_parent` is set (the
    /// server is forked right here; see `process::spawn_server`).
    pub async fn restart(&self, addr: &str) -> Result<u32, HarnessError> {
        if self.attached {
            return self.remotely(addr, "restart")?.start(addr).await;
        }
        let i = self.index(addr)?;
        let start = Instant::now();
        let pid = self.spawn_again(i, addr)?;
        let deadline = start + Duration::from_millis(RESTART_TIMEOUT_MS);
        let want = pid.to_string();
        loop {
            if let Some(status) = self.procs.reap_exited(i) {
                let node = &self.nodes[i];
                let stdout = node.dir.join("stdout.log");
                return Err(HarnessError::Exited {
                    addr: addr.to_string(),
                    status,
                    log_tail: process::log_tail(&[&node.log, &stdout]),
                });
            }
            let last_state = match answering_pid(addr).await {
                Ok(Some(answered)) if answered == want => return Ok(pid),
                Ok(answered) => format!("answered by process_id {answered:?}, ours is {want}"),
                Err(e) => e.to_string(),
            };
            if Instant::now() >= deadline {
                return Err(HarnessError::Timeout {
                    addr: addr.to_string(),
                    waiting_for: "the restarted server to answer INFO".to_string(),
                    elapsed_ms: start.elapsed().as_millis() as u64,
                    last_state,
                });
            }
            tokio::time::sleep(Duration::from_millis(POLL_MS)).await;
        }
    }

    /// Freezes the node at `addr` with SIGSTOP: it keeps its port and connections but answers nothing
    /// (to clients and to the cluster bus) until `resume`.
    pub async fn pause(&self, addr: &str) -> Result<(), HarnessError> {
        if self.attached {
            return self.remotely(addr, "pause")?.signal(addr, "STOP").await;
        }
        let i = self.index(addr)?;
        let pid = {
            let mut entries = self.procs.lock();
            let entry = &mut entries[i];
            let pid = running_pid(entry, addr, "pause")?;
            if entry.paused {
                return Err(control(addr, "pause", "already paused"));
            }
            process::send_signal(pid, libc::SIGSTOP);
            entry.paused = true;
            pid
        };
        wait_proc_state(addr, pid, true).await
    }

    /// Lets a paused node run again with SIGCONT; the inverse of `pause`.
    pub async fn resume(&self, addr: &str) -> Result<(), HarnessError> {
        if self.attached {
            return self.remotely(addr, "resume")?.signal(addr, "CONT").await;
        }
        let i = self.index(addr)?;
        let pid = {
            let mut entries = self.procs.lock();
            let entry = &mut entries[i];
            let pid = running_pid(entry, addr, "resume")?;
            if !entry.paused {
                return Err(control(addr, "resume", "not paused"));
            }
            process::send_signal(pid, libc::SIGCONT);
            entry.paused = false;
            pid
        };
        wait_proc_state(addr, pid, false).await
    }

    /// The hosts of an attached cluster, for process verb `verb` on `addr`; an error when the
    /// cluster was attached without hosts (no process faults) or `addr` is not one of its nodes.
    fn remotely(&self, addr: &str, verb: &'static str) -> Result<&Remote, HarnessError> {
        self.index(addr)?;
        self.remote.as_deref().ok_or_else(|| {
            control(
                addr,
                verb,
                "the cluster is attached without --hosts: no process control",
            )
        })
    }

    /// The index of `addr` in `nodes` (and in the process table).
    fn index(&self, addr: &str) -> Result<usize, HarnessError> {
        self.nodes
            .iter()
            .position(|n| n.addr == addr)
            .ok_or_else(|| control(addr, "find", "no such node in this cluster"))
    }

    /// Sends `signal` to node `i`'s running process (a paused one is resumed after, so SIGTERM acts).
    fn signal_running(
        &self,
        i: usize,
        addr: &str,
        verb: &'static str,
        signal: libc::c_int,
    ) -> Result<(), HarnessError> {
        let mut entries = self.procs.lock();
        let entry = &mut entries[i];
        let pid = running_pid(entry, addr, verb)?;
        process::send_signal(pid, signal);
        if entry.paused {
            process::send_signal(pid, libc::SIGCONT);
            entry.paused = false;
        }
        Ok(())
    }

    /// Polls until node `i`'s process has exited and is reaped.
    async fn wait_exit(
        &self,
        i: usize,
        addr: &str,
        waiting_for: &str,
        timeout_ms: u64,
    ) -> Result<(), HarnessError> {
        let start = Instant::now();
        loop {
            if self.procs.reap_exited(i).is_some() || self.procs.pid(i).is_none() {
                return Ok(());
            }
            if start.elapsed() >= Duration::from_millis(timeout_ms) {
                return Err(HarnessError::Timeout {
                    addr: addr.to_string(),
                    waiting_for: waiting_for.to_string(),
                    elapsed_ms: start.elapsed().as_millis() as u64,
                    last_state: "process still running".to_string(),
                });
            }
            tokio::time::sleep(Duration::from_millis(POLL_MS)).await;
        }
    }

    /// Forks node `i`'s server again, on this thread; refuses while the old process still runs.
    fn spawn_again(&self, i: usize, addr: &str) -> Result<u32, HarnessError> {
        let mut entries = self.procs.lock();
        let entry = &mut entries[i];
        if let Some(child) = entry.child.as_mut() {
            match child.try_wait() {
                Ok(Some(_)) => entry.child = None,
                _ => {
                    return Err(control(
                        addr,
                        "restart",
                        &format!("pid {} still runs; kill or shut it down first", child.id()),
                    ))
                }
            }
        }
        let launch = &entry.launch;
        let child = process::spawn_server(
            &launch.binary,
            &launch.args,
            &launch.stdout,
            launch.die_with_parent,
        )?;
        let pid = child.id();
        entry.child = Some(child);
        entry.paused = false;
        Ok(pid)
    }
}

/// The pid of an entry's live process, or why the verb cannot act on it.
fn running_pid(entry: &mut Entry, addr: &str, verb: &'static str) -> Result<u32, HarnessError> {
    let Some(child) = entry.child.as_mut() else {
        return Err(control(addr, verb, "no process runs (killed or shut down)"));
    };
    if let Ok(Some(status)) = child.try_wait() {
        entry.child = None;
        entry.paused = false;
        return Err(control(
            addr,
            verb,
            &format!("the process had already exited ({status})"),
        ));
    }
    Ok(child.id())
}

fn control(addr: &str, verb: &'static str, reason: &str) -> HarnessError {
    HarnessError::Control {
        addr: addr.to_string(),
        verb,
        reason: reason.to_string(),
    }
}

/// The `process_id` the server at `addr` reports, with a short timeout (a paused server never answers).
pub(crate) async fn answering_pid(addr: &str) -> Result<Option<String>, HarnessError> {
    let mut admin = Admin::probe(addr).await?;
    let text = admin.text(&["INFO", "server"]).await?;
    Ok(view::parse_info(&text).get("process_id").cloned())
}

/// Waits until /proc shows `pid` stopped (`T`) or, with `stopped == false`, no longer stopped.
async fn wait_proc_state(addr: &str, pid: u32, stopped: bool) -> Result<(), HarnessError> {
    let start = Instant::now();
    loop {
        let state = process::proc_state(pid);
        let is_stopped = state.as_deref() == Some("T");
        if is_stopped == stopped {
            return Ok(());
        }
        if start.elapsed() >= Duration::from_millis(SIGNAL_TIMEOUT_MS) {
            return Err(HarnessError::Timeout {
                addr: addr.to_string(),
                waiting_for: if stopped {
                    "the process to stop after SIGSTOP".to_string()
                } else {
                    "the process to run after SIGCONT".to_string()
                },
                elapsed_ms: start.elapsed().as_millis() as u64,
                last_state: format!("/proc state {state:?}"),
            });
        }
        tokio::time::sleep(Duration::from_millis(POLL_MS)).await;
    }
}

/// Redis and Valkey: a Redis Cluster of our own processes, keys in CRC16 slots.
impl super::family::ServerFamily for Cluster {
    type Error = HarnessError;

    fn kind(&self) -> super::ServerKind {
        self.kind
    }
    fn version(&self) -> &str {
        &self.version
    }
    fn bring_up(&self) -> Duration {
        self.bring_up
    }
    fn addrs(&self) -> Vec<String> {
        self.nodes.iter().map(|n| n.addr.clone()).collect()
    }
    fn pid(&self, addr: &str) -> Option<u32> {
        Cluster::pid(self, addr)
    }
    fn slot_function(&self) -> &'static dyn checker::SlotFunction {
        &checker::ClusterSlots
    }
    fn seeds(&self) -> Vec<String> {
        Cluster::seeds(self)
    }
    async fn kill(&self, addr: &str) -> Result<(), HarnessError> {
        Cluster::kill(self, addr).await
    }
    async fn shutdown(&self, addr: &str) -> Result<(), HarnessError> {
        Cluster::shutdown(self, addr).await
    }
    async fn restart(&self, addr: &str) -> Result<u32, HarnessError> {
        Cluster::restart(self, addr).await
    }
    async fn pause(&self, addr: &str) -> Result<(), HarnessError> {
        Cluster::pause(self, addr).await
    }
    async fn resume(&self, addr: &str) -> Result<(), HarnessError> {
        Cluster::resume(self, addr).await
    }
    fn stop(&self) {
        Cluster::stop(self)
    }
}
