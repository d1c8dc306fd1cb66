//! One reused OpenSSH connection per host: a control master (`ssh -M -N -f`, `ControlPersist`,
//! exiting by itself after 10 idle minutes) opened once, every command multiplexed over it (`ControlPath`), closed with `ssh -O exit`.
//! Commands are shell scripts run by the login shell, through `sudo -n sh -c` when the host
//! says `sudo = true`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::super::error::HarnessError;
use super::hosts::HostSpec;

/// How long one remote command may take before it counts as failed (a kill waits at most 5 s,
/// a graceful stop 15 s, on the host).
const COMMAND_TIMEOUT_S: u64 = 30;
/// A control master left idle this long exits by itself: one orphaned by a control process that
/// died (SIGKILL) does not stay forever.
const CONTROL_PERSIST: &str = "ControlPersist=600";

/// The SSH connection to one host.
#[derive(Debug)]
pub struct Ssh {
    /// `user@host`.
    dest: String,
    /// The options every invocation shares (port, key, known hosts, control path).
    options: Vec<String>,
    /// Whether scripts run through `sudo -n`.
    sudo: bool,
    /// The host's name, for errors.
    name: String,
}

impl Ssh {
    /// The connection to `host`, its control socket in `control_dir`; nothing is opened yet.
    pub fn new(host: &HostSpec, control_dir: &Path) -> Ssh {
        let mut options: Vec<String> = [
            "-o",
            "BatchMode=yes",
            "-o",
            "ConnectTimeout=5",
            "-o",
            "ServerAliveInterval=5",
            "-o",
            "ServerAliveCountMax=3",
            "-o",
            "LogLevel=ERROR",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        options.push("-o".into());
        options.push(format!("ControlPath={}/%C", control_dir.display()));
        options.push("-p".into());
        options.push(host.ssh.port.to_string());
        if let Some(id) = host.identity() {
            options.push("-i".into());
            options.push(id.display().to_string());
            options.push("-o".into());
            options.push("IdentitiesOnly=yes".into());
        }
        if let Some(known) = &host.ssh.known_hosts {
            options.push("-o".into());
            options.push(format!("UserKnownHostsFile={known}"));
            options.push("-o".into());
            options.push("StrictHostKeyChecking=yes".into());
        }
        Ssh {
            dest: format!("{}@{}", host.ssh.user, host.ssh.host),
            options,
            sudo: host.sudo,
            name: host.name.clone(),
        }
    }

    /// Opens the control master (authenticates once; later commands reuse it) and checks that
    /// a command runs: a host that cannot be reached fails here, before any run starts.
    pub fn open(&self, log: &Path) -> Result<(), HarnessError> {
        let stderr = std::fs::File::create(log).map_err(|e| HarnessError::Io {
            what: format!("creating {}", log.display()),
            source: e,
        })?;
        let status = Command::new("ssh")
            .args(["-M", "-N", "-f", "-o", CONTROL_PERSIST])
            .args(&self.options)
            .arg(&self.dest)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .status()
            .map_err(|e| self.failed("ssh -M", format!("cannot start ssh: {e}")))?;
        if !status.success() {
            let why = std::fs::read_to_string(log).unwrap_or_default();
            return Err(self.failed("connect", format!("{status}: {}", why.trim())));
        }
        self.run("true").map(drop)
    }

    /// Closes the control master; a master already gone is no error.
    pub fn close(&self) {
        let _ = Command::new("ssh")
            .args(["-O", "exit"])
            .args(&self.options)
            .arg(&self.dest)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }

    /// The `ssh` invocation that runs `script` on the host.
    fn command(&self, script: &str) -> Vec<String> {
        let mut args = self.options.clone();
        args.push(self.dest.clone());
        args.push("--".into());
        args.push(if self.sudo {
            format!("sudo -n sh -c {}", quote(script))
        } else {
            script.to_string()
        });
        args
    }

    /// Runs `script` on the host, feeding it `stdin` if given, and returns its stdout; a
    /// non-zero exit is an error with its stderr. Blocks (used where the caller is synchronous).
    pub fn run_with(&self, script: &str, stdin: Option<&str>) -> Result<String, HarnessError> {
        let mut ssh = Command::new("ssh");
        ssh.args(self.command(script));
        let out = super::super::net::output_with(&mut ssh, stdin)
            .map_err(|e| self.failed(script, format!("ssh: {e}")))?;
        self.output(script, out)
    }

    /// Runs `script` on the host and returns its stdout (blocking).
    pub fn run(&self, script: &str) -> Result<String, HarnessError> {
        self.run_with(script, None)
    }

    /// Runs `script` on the host without blocking the async runtime, bounded by a timeout.
    pub async fn exec(&self, script: &str) -> Result<String, HarnessError> {
        let child = tokio::process::Command::new("ssh")
            .args(self.command(script))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(Duration::from_secs(COMMAND_TIMEOUT_S), child)
            .await
            .map_err(|_| self.failed(script, format!("no answer in {COMMAND_TIMEOUT_S} s")))?
            .map_err(|e| self.failed(script, format!("cannot run ssh: {e}")))?;
        self.output(script, out)
    }

    /// Copies the remote file `from` to the local `to` (through `cat`).
    pub fn copy(&self, from: &str, to: &PathBuf) -> Result<(), HarnessError> {
        let text = self.run(&format!("cat {}", quote(from)))?;
        std::fs::write(to, text).map_err(|e| HarnessError::Io {
            what: format!("writing {}", to.display()),
            source: e,
        })
    }

    /// Stdout of a finished command, or the error its status and stderr say.
    fn output(&self, script: &str, out: std::process::Output) -> Result<String, HarnessError> {
        if !out.status.success() {
            let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
            return Err(self.failed(script, format!("{}: {stderr}", out.status)));
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The error of `script` failing on this host.
    fn failed(&self, script: &str, detail: String) -> HarnessError {
        HarnessError::Remote {
            host: format!("{} ({})", self.name, self.dest),
            command: script.to_string(),
            detail,
        }
    }
}

/// `s` as one word for a POSIX shell.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoting_survives_single_quotes() {
        assert_eq!(quote("a b"), "'a b'");
        assert_eq!(quote("it's"), r"'it'\''s'");
    }
}
