//! The one error type of the harness: every failure says which node, what we waited for and what we saw.

use std::path::PathBuf;

use super::server::ServerKind;

/// Why the harness could not find, start, inspect or stop a cluster, or make a network fault.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// No server binary of this kind was found by any lookup; `hint` says what to install.
    #[error("no {kind} server binary found: {hint}")]
    ServerNotFound {
        /// The kind we looked for.
        kind: ServerKind,
        /// What we tried and what to install.
        hint: String,
    },
    /// `redis-cli` was not found.
    #[error("redis-cli not found (looked at $SLOTCHECK_REDIS_CLI and PATH); run scripts/setup.sh or `apt-get install -y redis-tools`")]
    CliNotFound,
    /// Running `<server> --version` failed or printed no version.
    #[error("could not read the version of {path}: {detail}")]
    Version {
        /// The binary we ran.
        path: PathBuf,
        /// What went wrong.
        detail: String,
    },
    /// A `ServerKind` name other than `redis` or `valkey`.
    #[error("unknown server kind {0:?} (expected `redis` or `valkey`)")]
    UnknownKind(String),
    /// The cluster spec asks for something the harness refuses to do.
    #[error("invalid cluster spec: {0}")]
    InvalidSpec(String),
    /// A filesystem or process operation failed.
    #[error("{what}: {source}")]
    Io {
        /// What we were doing.
        what: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// No run of free ports (port and port+10000 both bindable) was found.
    #[error("no {count} free port pairs found in 20000..29999 after {attempts} attempts")]
    NoFreePorts {
        /// How many ports we needed.
        count: usize,
        /// How many bases we tried.
        attempts: usize,
    },
    /// A server process exited while we still needed it.
    #[error("server {addr} exited during bring-up ({status}); log tail:\n{log_tail}")]
    Exited {
        /// The node's address.
        addr: String,
        /// The exit status as reported by the OS.
        status: String,
        /// The last lines of its log and stdout.
        log_tail: String,
    },
    /// An admin command failed or returned an error reply.
    #[error("{addr}: `{command}` failed: {source}")]
    Command {
        /// The node's address.
        addr: String,
        /// The command, e.g. `CLUSTER MEET`.
        command: String,
        /// The client error.
        #[source]
        source: redis::RedisError,
    },
    /// A reply did not have the shape we expected.
    #[error("{addr}: unexpected reply to `{command}`: {detail}")]
    Reply {
        /// The node's address.
        addr: String,
        /// The command.
        command: String,
        /// What was wrong with it.
        detail: String,
    },
    /// A wait passed its deadline.
    #[error("timed out after {elapsed_ms} ms waiting for {waiting_for} on {addr}; last observed: {last_state}")]
    Timeout {
        /// The node that was not ready (or `cluster` when several).
        addr: String,
        /// What we were waiting for.
        waiting_for: String,
        /// How long we waited.
        elapsed_ms: u64,
        /// The last state we saw.
        last_state: String,
    },
    /// A process-control verb does not fit the node's state (restart of a running node, pause of a
    /// stopped one) or names a node that is not in the cluster.
    #[error("{addr}: cannot {verb}: {reason}")]
    Control {
        /// The node's address.
        addr: String,
        /// The verb, e.g. `restart`.
        verb: &'static str,
        /// Why not.
        reason: String,
    },
    /// This machine cannot make the network fault at all (not root, a tool missing).
    #[error("{what} is unavailable: {why}")]
    Unavailable {
        /// The fault, e.g. `network partitions`.
        what: String,
        /// Why, e.g. `not running as root`.
        why: String,
    },
    /// An external tool (iptables, ...) failed or could not be started.
    #[error("`{cmd}` failed: {stderr}")]
    Tool {
        /// The command line as run.
        cmd: String,
        /// Its stderr (or why it could not run).
        stderr: String,
    },
    /// The network fault makes no sense for this cluster (unknown node, nodes sharing an address,
    /// proxy faults outside their limits).
    #[error("invalid fault: {0}")]
    InvalidFault(String),
    /// A cluster state file could not be read or written.
    #[error("cluster state file {path}: {source}")]
    State {
        /// The state file.
        path: PathBuf,
        /// The (de)serialization error.
        #[source]
        source: serde_json::Error,
    },
    /// A hosts file (`--hosts`) could not be read or makes no sense.
    #[error("hosts file {path}: {detail}")]
    HostsFile {
        /// The hosts file.
        path: PathBuf,
        /// What is wrong with it.
        detail: String,
    },
    /// A command on a remote host (over SSH) failed or the host cannot be reached.
    #[error("host {host}: `{command}` failed: {detail}")]
    Remote {
        /// The host's name and SSH destination.
        host: String,
        /// The remote command line.
        command: String,
        /// Its exit status and stderr, or why it could not run.
        detail: String,
    },
}

impl HarnessError {
    /// Wraps an io error with what we were doing.
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> HarnessError {
        HarnessError::Io {
            what: what.into(),
            source,
        }
    }
}
