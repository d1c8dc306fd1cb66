//! Server processes: spawning (optionally tied to our life), stopping by pid, and reading /proc.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::error::HarnessError;

/// How long a server gets to exit after SIGTERM before SIGKILL.
const STOP_GRACE_MS: u64 = 1500;
/// How often we look whether stopped servers have exited.
const STOP_POLL_MS: u64 = 5;
/// How much of the end of a log we quote in an error.
const LOG_TAIL_BYTES_MAX: u64 = 2048;

/// Spawns `binary args...` with stdout and stderr appended to `stdout_path`.
///
/// With `die_with_parent`, the child gets `PR_SET_PDEATHSIG = SIGKILL`, so it dies if slotcheck is
/// SIGKILLed. The kernel sends that signal when the *thread* that forked exits, not the process. So this
/// must be called directly on a long-lived thread: inside the async fn (a runtime worker or `block_on`
/// thread, which lives as long as the runtime), never from `spawn_blocking`, whose threads exit when idle
/// and would take the servers with them.
pub(crate) fn spawn_server(
    binary: &Path,
    args: &[String],
    stdout_path: &Path,
    die_with_parent: bool,
) -> Result<Child, HarnessError> {
    // Appended, not truncated: a restarted node keeps the output of its earlier lives.
    let stdout = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(stdout_path)
        .map_err(|e| HarnessError::io(format!("open {}", stdout_path.display()), e))?;
    let stderr = stdout
        .try_clone()
        .map_err(|e| HarnessError::io("clone stdout handle", e))?;
    let mut command = Command::new(binary);
    command
        .args(args)
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr);
    if die_with_parent {
        let parent_pid = std::process::id() as libc::pid_t;
        // SAFETY: the closure runs between fork and exec and calls only async-signal-safe functions
        // (prctl, getppid, _exit); it allocates nothing.
        unsafe {
            command.pre_exec(move || {
                if libc::prctl(
                    libc::PR_SET_PDEATHSIG,
                    libc::SIGKILL as libc::c_ulong,
                    0,
                    0,
                    0,
                ) != 0
                {
                    return Err(std::io::Error::last_os_error());
                }
                // The parent may have died before prctl took effect; then nobody would ever kill us.
                if libc::getppid() != parent_pid {
                    libc::_exit(1);
                }
                Ok(())
            });
        }
    }
    command
        .spawn()
        .map_err(|e| HarnessError::io(format!("spawn {}", binary.display()), e))
}

/// Stops our own children: SIGTERM to all, a short grace, then SIGKILL; every child is reaped.
/// Drains `children`, so calling it again does nothing.
pub(crate) fn stop_children(children: &mut Vec<Child>) {
    for child in children.iter() {
        send_signal(child.id(), libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_millis(STOP_GRACE_MS);
    while Instant::now() < deadline {
        children.retain_mut(|child| !matches!(child.try_wait(), Ok(Some(_))));
        if children.is_empty() {
            return;
        }
        std::thread::sleep(Duration::from_millis(STOP_POLL_MS));
    }
    for mut child in children.drain(..) {
        // Errors mean the process is already gone; `wait` then reaps it (or reports ECHILD).
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Stops a process we may not have spawned (a detached cluster): SIGTERM, grace, SIGKILL.
/// Reaps it if it happens to be our child, so no zombie keeps its /proc entry.
pub(crate) fn stop_pid(pid: u32) {
    for signal in [libc::SIGTERM, libc::SIGKILL] {
        send_signal(pid, signal);
        if wait_dead(pid) {
            return;
        }
    }
}

/// Waits up to the grace period for `pid` to die, reaping it if it is our child (a zombie keeps its
/// /proc entry, and a multi-threaded server shows `Z` before it can be reaped, so we wait for the reap).
fn wait_dead(pid: u32) -> bool {
    let deadline = Instant::now() + Duration::from_millis(STOP_GRACE_MS);
    loop {
        let dead = match reap(pid) {
            Reap::Reaped => true,
            Reap::NotOurChild => !pid_alive(pid),
            Reap::Running => false,
        };
        if dead {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(STOP_POLL_MS));
    }
}

/// Sends `signal` to `pid`; a pid that no longer exists is ignored.
pub(crate) fn send_signal(pid: u32, signal: libc::c_int) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    assert!(pid > 0, "refusing to signal pid {pid}");
    // SAFETY: kill has no memory-safety preconditions; a stale pid gives ESRCH, which we ignore.
    unsafe {
        libc::kill(pid, signal);
    }
}

/// What a non-blocking `waitpid` said about a pid.
enum Reap {
    /// It was our child and is now reaped.
    Reaped,
    /// Not our child (or already reaped): only /proc can tell whether it lives.
    NotOurChild,
    /// Our child, still running (or still exiting).
    Running,
}

fn reap(pid: u32) -> Reap {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return Reap::NotOurChild;
    };
    let mut status = 0;
    // SAFETY: waitpid writes only to `status`; for a pid that is not our child it returns ECHILD.
    let result = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
    match result {
        r if r == pid => Reap::Reaped,
        0 => Reap::Running,
        _ => Reap::NotOurChild,
    }
}

/// Whether `pid` is a live (not zombie) process.
pub fn pid_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat_field(&stat, 3).is_some_and(|state| state != "Z" && state != "X"),
        Err(_) => false,
    }
}

/// The one-letter state of `pid` from /proc (`R`, `S`, `T` when stopped by SIGSTOP, `Z`, ...).
pub(crate) fn proc_state(pid: u32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat_field(&stat, 3).map(str::to_string)
}

/// The process start time in clock ticks since boot (field 22 of /proc/<pid>/stat), which together with
/// the pid names one process for ever, even after the pid is recycled.
pub(crate) fn start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat_field(&stat, 22)?.parse().ok()
}

/// The command line of `pid` with NULs as spaces (servers rewrite it to `<binary> 127.0.0.1:<port> [cluster]`).
pub(crate) fn cmdline(pid: u32) -> Option<String> {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let text = String::from_utf8_lossy(&raw).replace('\0', " ");
    Some(text.trim().to_string())
}

/// Field `n` (1-based, as in proc(5)) of a /proc/<pid>/stat line; the command name may contain spaces,
/// so fields are counted after its closing parenthesis.
fn stat_field(stat: &str, n: usize) -> Option<&str> {
    assert!(n >= 3, "fields 1 and 2 are pid and comm");
    let after_comm = &stat[stat.rfind(')')? + 1..];
    after_comm.split_whitespace().nth(n - 3)
}

/// The last lines of each file (missing files are skipped), for error messages.
pub(crate) fn log_tail(paths: &[&Path]) -> String {
    let mut tail = String::new();
    for path in paths {
        let Ok(mut file) = File::open(path) else {
            continue;
        };
        let len = file.metadata().map(|m| m.len()).unwrap_or(0);
        let start = len.saturating_sub(LOG_TAIL_BYTES_MAX);
        let mut bytes = Vec::new();
        if file.seek(SeekFrom::Start(start)).is_ok() && file.read_to_end(&mut bytes).is_ok() {
            let text = String::from_utf8_lossy(&bytes);
            if !text.trim().is_empty() {
                tail.push_str(&format!(
                    "--- {} ---\n{}\n",
                    path.display(),
                    text.trim_end()
                ));
            }
        }
    }
    tail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        let stat =
            "123 (redis server) S 1 123 123 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 4 0 98765 1000";
        assert_eq!(stat_field(stat, 3), Some("S"));
        assert_eq!(stat_field(stat, 22), Some("98765"));
    }

    #[test]
    fn our_own_process_is_alive_and_has_a_start_time() {
        assert!(pid_alive(std::process::id()));
        assert!(start_ticks(std::process::id()).is_some());
    }
}
