//! The process verbs on remote hosts, Jepsen's way: every `kill`, `pause`, `restart` is the
//! host's own `kill` (or `systemctl`) run over the host's SSH connection, on the pid the server
//! wrote to its pid file (or systemd's `MainPID`).

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::super::control::{answering_pid, ProcessState};
use super::super::error::HarnessError;
use super::hosts::{HostSpec, HostsFile};
use super::ssh::{quote, Ssh};

/// How long a (re)started server may take to answer as its new process.
const START_TIMEOUT_MS: u64 = 20_000;
/// How often we ask a starting server again.
const POLL_MS: u64 = 50;

/// Hosts reached over SSH, one connection each, and what we know of each server's process.
#[derive(Debug)]
pub struct Remote {
    /// The hosts file they come from.
    pub file: HostsFile,
    hosts: Vec<RemoteHost>,
    /// The control sockets' directory, removed on drop.
    control_dir: PathBuf,
}

/// One host: its entry, its connection, its server's process as we last saw it.
#[derive(Debug)]
struct RemoteHost {
    spec: HostSpec,
    ssh: Ssh,
    proc: Mutex<Proc>,
}

/// A server process as the verbs left it.
#[derive(Debug, Clone, Copy)]
struct Proc {
    pid: Option<u32>,
    state: ProcessState,
}

impl Remote {
    /// Opens one SSH connection per host of `file`; a host that cannot be reached is an error
    /// naming it, and no connection stays open.
    pub fn connect(file: HostsFile) -> Result<Remote, HarnessError> {
        let control_dir =
            std::env::temp_dir().join(format!("slotcheck-ssh-{}", std::process::id()));
        std::fs::create_dir_all(&control_dir)
            .map_err(|e| HarnessError::io(format!("creating {}", control_dir.display()), e))?;
        let hosts = file
            .host
            .iter()
            .map(|spec| RemoteHost {
                ssh: Ssh::new(spec, &control_dir),
                spec: spec.clone(),
                proc: Mutex::new(Proc {
                    pid: None,
                    state: ProcessState::Down,
                }),
            })
            .collect();
        let remote = Remote {
            file,
            hosts,
            control_dir,
        };
        for h in &remote.hosts {
            let log = remote.control_dir.join(format!("{}.ssh.log", h.spec.name));
            h.ssh.open(&log)?;
        }
        Ok(remote)
    }

    /// The hosts, in file order.
    pub fn specs(&self) -> impl Iterator<Item = &HostSpec> {
        self.hosts.iter().map(|h| &h.spec)
    }

    /// The SSH connection to the host of the server at `addr`.
    pub fn ssh(&self, addr: &str) -> Result<&Ssh, HarnessError> {
        Ok(&self.host(addr)?.ssh)
    }

    /// The host of the server at `addr`.
    fn host(&self, addr: &str) -> Result<&RemoteHost, HarnessError> {
        self.hosts
            .iter()
            .find(|h| h.spec.addr == addr)
            .ok_or_else(|| HarnessError::Control {
                addr: addr.to_string(),
                verb: "find",
                reason: "no such host in the hosts file".to_string(),
            })
    }

    /// The pid of the server at `addr` as last seen; `None` if it is down.
    pub fn pid(&self, addr: &str) -> Option<u32> {
        lock(&self.host(addr).ok()?.proc).pid
    }

    /// The state of the server at `addr` as the verbs left it.
    pub fn state(&self, addr: &str) -> Option<ProcessState> {
        Some(lock(&self.host(addr).ok()?.proc).state)
    }

    /// Reads every server's pid on its host (a server that answers is taken as running).
    pub async fn refresh(&self) -> Result<(), HarnessError> {
        for h in &self.hosts {
            let out = h
                .ssh
                .exec(&format!("{} || true", pid_script(&h.spec)))
                .await?;
            let pid = out.trim().parse().ok().filter(|p| *p != 0);
            *lock(&h.proc) = Proc {
                pid,
                state: if pid.is_some() {
                    ProcessState::Running
                } else {
                    ProcessState::Down
                },
            };
        }
        Ok(())
    }

    /// Starts the server at `addr` on its host and waits until it answers as the new process;
    /// returns its pid.
    pub async fn start(&self, addr: &str) -> Result<u32, HarnessError> {
        let h = self.host(addr)?;
        let out = h.ssh.exec(&start_script(&h.spec)).await?;
        let pid: u32 = out.trim().parse().map_err(|_| HarnessError::Control {
            addr: addr.to_string(),
            verb: "start",
            reason: format!("no pid after starting: {out:?}"),
        })?;
        *lock(&h.proc) = Proc {
            pid: Some(pid),
            state: ProcessState::Running,
        };
        wait_answering(addr, pid).await?;
        Ok(pid)
    }

    /// Sends `signal` (`KILL`, `TERM`, `STOP`, `CONT`) to the server at `addr` on its host and
    /// waits there until it took effect (exited, stopped, running again).
    pub async fn signal(&self, addr: &str, signal: &str) -> Result<(), HarnessError> {
        let h = self.host(addr)?;
        let script = match signal {
            "TERM" if h.spec.stop.is_some() || h.spec.systemd.is_some() => stop_script(&h.spec),
            _ => signal_script(&h.spec, signal),
        };
        h.ssh.exec(&script).await?;
        let mut proc = lock(&h.proc);
        match signal {
            "KILL" | "TERM" => {
                *proc = Proc {
                    pid: None,
                    state: ProcessState::Down,
                }
            }
            "STOP" => proc.state = ProcessState::Paused,
            _ => proc.state = ProcessState::Running,
        }
        Ok(())
    }

    /// Lets every server we paused run again (blocking; for the end of a run and drops).
    pub fn resume_all(&self) {
        for h in &self.hosts {
            if lock(&h.proc).state != ProcessState::Paused {
                continue;
            }
            match h.ssh.run(&signal_script(&h.spec, "CONT")) {
                Ok(_) => lock(&h.proc).state = ProcessState::Running,
                Err(e) => tracing::error!(host = %h.spec.name, error = %e, "could not resume"),
            }
        }
    }

    /// Stops every server with its stop command (blocking); returns what failed.
    pub fn stop_all(&self) -> Vec<HarnessError> {
        let mut failed = Vec::new();
        for h in &self.hosts {
            match h.ssh.run(&stop_script(&h.spec)) {
                Ok(_) => {
                    *lock(&h.proc) = Proc {
                        pid: None,
                        state: ProcessState::Down,
                    }
                }
                Err(e) => failed.push(e),
            }
        }
        failed
    }

    /// Copies every host's server log into `dir` as `<name>.log`; returns what failed.
    pub fn copy_logs(&self, dir: &Path) -> Vec<HarnessError> {
        if let Err(e) = std::fs::create_dir_all(dir) {
            return vec![HarnessError::io(format!("creating {}", dir.display()), e)];
        }
        self.hosts
            .iter()
            .filter_map(|h| {
                let to = dir.join(format!("{}.log", h.spec.name));
                h.ssh.copy(&h.spec.log_file, &to).err()
            })
            .collect()
    }
}

impl Drop for Remote {
    fn drop(&mut self) {
        self.resume_all();
        for h in &self.hosts {
            h.ssh.close();
        }
        let _ = std::fs::remove_dir_all(&self.control_dir);
    }
}

/// Prints the server's pid on its host.
fn pid_script(h: &HostSpec) -> String {
    match (&h.systemd, &h.pid_file) {
        (Some(unit), _) => format!("systemctl show -p MainPID --value {}", quote(unit)),
        (None, Some(file)) => format!("cat {} 2>/dev/null", quote(file)),
        (None, None) => "false".to_string(),
    }
}

/// Sends `signal` to the server's pid and waits on the host until it took effect.
fn signal_script(h: &HostSpec, signal: &str) -> String {
    let wait = match signal {
        "KILL" | "TERM" => "kill -0 $p 2>/dev/null || exit 0",
        "STOP" => "[ \"$(cut -d' ' -f3 /proc/$p/stat)\" = T ] && exit 0",
        _ => "[ \"$(cut -d' ' -f3 /proc/$p/stat)\" != T ] && exit 0",
    };
    let cont = if signal == "TERM" {
        "kill -CONT $p; "
    } else {
        ""
    };
    format!(
        "p=$({}); [ -n \"$p\" ] && [ \"$p\" != 0 ] || {{ echo 'no server pid' >&2; exit 1; }}; \
         kill -{signal} $p || exit 1; {cont}\
         for i in $(seq 300); do {wait}; sleep 0.05; done; echo \"pid $p: {signal} took no effect\" >&2; exit 1",
        pid_script(h)
    )
}

/// Stops the server gracefully: its stop command, `systemctl stop`, or SIGTERM.
fn stop_script(h: &HostSpec) -> String {
    match (&h.systemd, &h.stop) {
        (Some(unit), _) => format!("systemctl stop {}", quote(unit)),
        (None, Some(stop)) => format!("cd {} && {stop}", quote(&h.data_dir)),
        (None, None) => format!(
            "p=$({}) && [ -n \"$p\" ] && kill -0 $p 2>/dev/null || exit 0; kill -CONT $p; kill -TERM $p; \
             for i in $(seq 300); do kill -0 $p 2>/dev/null || exit 0; sleep 0.05; done; exit 1",
            pid_script(h)
        ),
    }
}

/// Starts the server and prints its new pid once it has written one.
fn start_script(h: &HostSpec) -> String {
    match (&h.systemd, &h.start, &h.pid_file) {
        (Some(unit), _, _) => format!(
            "systemctl start {u} && systemctl show -p MainPID --value {u}",
            u = quote(unit)
        ),
        (None, Some(start), Some(file)) => format!(
            "rm -f {f}; cd {d} || exit 1; out=$({start} 2>&1 </dev/null) || {{ echo \"$out\" >&2; exit 1; }}; \
             for i in $(seq 200); do [ -s {f} ] && exec cat {f}; sleep 0.05; done; \
             echo 'no pid file {f} after start' >&2; exit 1",
            f = quote(file),
            d = quote(&h.data_dir)
        ),
        _ => "echo 'no start command' >&2; exit 1".to_string(),
    }
}

/// Waits until the server at `addr` answers `INFO` as process `pid`.
async fn wait_answering(addr: &str, pid: u32) -> Result<(), HarnessError> {
    let start = Instant::now();
    let want = pid.to_string();
    loop {
        let last_state = match answering_pid(addr).await {
            Ok(Some(answered)) if answered == want => return Ok(()),
            Ok(answered) => format!("answered by process_id {answered:?}, ours is {want}"),
            Err(e) => e.to_string(),
        };
        if start.elapsed() >= Duration::from_millis(START_TIMEOUT_MS) {
            return Err(HarnessError::Timeout {
                addr: addr.to_string(),
                waiting_for: "the started server to answer INFO".to_string(),
                elapsed_ms: start.elapsed().as_millis() as u64,
                last_state,
            });
        }
        tokio::time::sleep(Duration::from_millis(POLL_MS)).await;
    }
}

/// Locks a host's process record, also after a panic elsewhere poisoned it.
fn lock(m: &Mutex<Proc>) -> MutexGuard<'_, Proc> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
