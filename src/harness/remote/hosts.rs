//! The hosts file of `--hosts FILE`: one TOML `[[host]]` entry per server, each with how to
//! reach its machine over SSH and how to start, stop and find the server there.
//!
//! ```toml
//! server = "redis"                 # or "valkey"
//! client_addr = "198.18.0.254"     # where slotcheck's clients connect from (client partitions)
//!
//! [[host]]
//! name = "n1"
//! addr = "198.18.0.1:6379"         # the server's address as clients and peers reach it
//! start = "redis-server /etc/redis/cluster.conf --daemonize yes"   # or: systemd = "redis-server"
//! stop = "redis-cli -h 198.18.0.1 shutdown"                       # optional: SIGTERM by default
//! pid_file = "/var/run/redis/redis.pid"   # with `start`: where the server writes its pid
//! data_dir = "/var/lib/redis"
//! log_file = "/var/log/redis/redis.log"
//! sudo = false                     # run kill/iptables through `sudo -n`
//! ssh = { user = "root", host = "198.18.0.1", port = 22, identity = "~/.ssh/id_ed25519" }
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::super::error::HarnessError;
use super::super::server::ServerKind;

/// A parsed hosts file: the server kind, the control node's address and every host.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostsFile {
    /// Which server the hosts run (`redis` or `valkey`); recorded in the history header.
    #[serde(default = "default_server")]
    pub server: String,
    /// The address slotcheck's clients connect from, as the hosts see it; needed by client
    /// partitions (`clients_from`), which drop exactly that source.
    pub client_addr: Option<String>,
    /// One entry per server, in the order the cluster is formed (masters first).
    pub host: Vec<HostSpec>,
}

/// The default `server`.
fn default_server() -> String {
    "redis".to_string()
}

/// One host: its SSH destination and its server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HostSpec {
    /// A short name for logs and the run directory (`nodes/<name>.log`).
    pub name: String,
    /// The server's `host:port` as clients and peers reach it.
    pub addr: String,
    /// The command line that starts the server in the background (it must return); exclusive
    /// with `systemd`.
    pub start: Option<String>,
    /// The command line that stops the server gracefully (default: SIGTERM to its pid).
    pub stop: Option<String>,
    /// A systemd unit that runs the server, started and stopped with `systemctl`.
    pub systemd: Option<String>,
    /// Where the server writes its pid (needed with `start`).
    pub pid_file: Option<String>,
    /// The server's data directory (commands run there).
    pub data_dir: String,
    /// The server's log file, copied into the run directory at the end.
    pub log_file: String,
    /// Whether signals and iptables need `sudo -n` (the SSH user is not root).
    #[serde(default)]
    pub sudo: bool,
    /// How to reach the host.
    pub ssh: SshSpec,
}

/// An SSH destination, as `ssh -i identity -p port user@host` reaches it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SshSpec {
    /// The login user.
    pub user: String,
    /// The host name or address sshd listens on.
    pub host: String,
    /// sshd's port.
    #[serde(default = "default_ssh_port")]
    pub port: u16,
    /// The private key (`~/` is the control user's home).
    pub identity: Option<String>,
    /// A known_hosts file to check the host key against (default: the user's).
    pub known_hosts: Option<String>,
}

/// sshd's default port.
fn default_ssh_port() -> u16 {
    22
}

impl HostsFile {
    /// Reads and checks the hosts file at `path`.
    pub fn load(path: &Path) -> Result<HostsFile, HarnessError> {
        let bad = |detail: String| HarnessError::HostsFile {
            path: path.to_path_buf(),
            detail,
        };
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let file: HostsFile = toml::from_str(&text).map_err(|e| bad(e.to_string()))?;
        file.check().map_err(bad)?;
        Ok(file)
    }

    /// The server kind the file names.
    pub fn kind(&self) -> Result<ServerKind, HarnessError> {
        let kind: ServerKind = self.server.parse()?;
        if kind == ServerKind::Pikiwidb {
            return Err(HarnessError::UnknownKind(self.server.clone()));
        }
        Ok(kind)
    }

    /// Every server's address, in file order.
    pub fn addrs(&self) -> Vec<String> {
        self.host.iter().map(|h| h.addr.clone()).collect()
    }

    /// What makes the file unusable, in words.
    fn check(&self) -> Result<(), String> {
        self.kind().map_err(|e| e.to_string())?;
        if self.host.is_empty() {
            return Err("no [[host]] entry".to_string());
        }
        let mut seen = std::collections::BTreeSet::new();
        for h in &self.host {
            if !seen.insert(&h.addr) {
                return Err(format!("{} is listed twice", h.addr));
            }
            if split_addr(&h.addr).is_none() {
                return Err(format!(
                    "host {}: addr {:?} is not host:port",
                    h.name, h.addr
                ));
            }
            match (&h.start, &h.systemd, &h.pid_file) {
                (Some(_), None, Some(_)) | (None, Some(_), None) => {}
                (Some(_), None, None) => {
                    return Err(format!("host {}: `start` needs `pid_file`", h.name))
                }
                _ => {
                    return Err(format!(
                        "host {}: give either `start` (with `pid_file`) or `systemd`",
                        h.name
                    ))
                }
            }
        }
        Ok(())
    }
}

impl HostSpec {
    /// The server's host part of `addr`.
    pub fn node_host(&self) -> String {
        split_addr(&self.addr).map_or_else(String::new, |(h, _)| h)
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        split_addr(&self.addr).map_or(0, |(_, p)| p)
    }

    /// The identity file with a leading `~/` expanded.
    pub fn identity(&self) -> Option<PathBuf> {
        let id = self.ssh.identity.as_ref()?;
        match (id.strip_prefix("~/"), std::env::var_os("HOME")) {
            (Some(rest), Some(home)) => Some(PathBuf::from(home).join(rest)),
            _ => Some(PathBuf::from(id)),
        }
    }
}

/// `host:port` split, or `None`.
fn split_addr(addr: &str) -> Option<(String, u16)> {
    let (host, port) = addr.rsplit_once(':')?;
    Some((host.to_string(), port.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<(), String> {
        let file: HostsFile = toml::from_str(text).map_err(|e| e.to_string())?;
        file.check()
    }

    const HOST: &str = r#"
[[host]]
name = "n1"
addr = "198.18.0.1:6379"
start = "redis-server --daemonize yes"
pid_file = "/tmp/p"
data_dir = "/tmp"
log_file = "/tmp/log"
ssh = { user = "root", host = "198.18.0.1" }
"#;

    #[test]
    fn a_host_needs_a_way_to_start_and_find_its_server() {
        assert_eq!(parse(HOST), Ok(()));
        let no_pid = HOST.replace("pid_file = \"/tmp/p\"\n", "");
        assert!(parse(&no_pid).unwrap_err().contains("pid_file"));
        let both = HOST.replace("pid_file", "systemd = \"redis\"\npid_file");
        assert!(parse(&both).unwrap_err().contains("either"));
        let twice = format!("{HOST}{HOST}");
        assert!(parse(&twice).unwrap_err().contains("twice"));
        let unknown = HOST.replace("data_dir", "datadir");
        assert!(parse(&unknown).is_err());
        let pika = format!("server = \"pikiwidb\"\n{HOST}");
        assert!(parse(&pika).is_err());
    }
}
