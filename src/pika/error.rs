//! The one error type of the PikiwiDB harness: every failure names the server and what we did.

use std::path::PathBuf;

/// Why a pika server could not be found, started, asked or stopped.
#[derive(Debug, thiserror::Error)]
pub enum PikaError {
    /// Neither `--server-binary` nor `$SLOTCHECK_PIKIWIDB_SERVER` named a binary.
    #[error("no PikiwiDB server binary: pass --server-binary PATH or set SLOTCHECK_PIKIWIDB_SERVER to a pika 4.0 binary")]
    BinaryNotFound,
    /// The named binary does not exist or is not a file.
    #[error("PikiwiDB server binary {path} does not exist or is not a file")]
    BinaryMissing {
        /// The path we were given.
        path: PathBuf,
    },
    /// The spec asks for something we refuse (no servers).
    #[error("invalid PikiwiDB spec: {0}")]
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
    /// No port whose derived ports (+2000 replication, +10001 rsync) were free too.
    #[error("no free port triple (port, port+2000, port+10001) found for {count} servers")]
    NoFreePorts {
        /// How many servers needed ports.
        count: usize,
    },
    /// A server process exited while we still needed it.
    #[error("pika {addr} exited ({status}); log tail:\n{log_tail}")]
    Exited {
        /// The server's address.
        addr: String,
        /// What the OS said about it.
        status: String,
        /// The end of its stdout (pika logs to stderr too).
        log_tail: String,
    },
    /// A server did not answer PING in time.
    #[error("pika {addr} did not answer PING within {waited_ms} ms (last error: {last_error}); log tail:\n{log_tail}")]
    NotReady {
        /// The server's address.
        addr: String,
        /// How long we waited.
        waited_ms: u64,
        /// The last connection or reply error.
        last_error: String,
        /// The end of its stdout.
        log_tail: String,
    },
    /// An address that is not a server of this cluster.
    #[error("{0} is not a server of this PikiwiDB cluster")]
    UnknownServer(String),
    /// An admin command failed, was refused, or did not answer within its timeout.
    #[error("{addr}: `{command}` failed after {elapsed_ms} ms: {detail}")]
    Command {
        /// The server's address.
        addr: String,
        /// The command's words.
        command: String,
        /// How long we waited for it.
        elapsed_ms: u64,
        /// The error (a timeout says so).
        detail: String,
        /// Whether the command timed out (the server may be wedged) rather than failed.
        timed_out: bool,
    },
    /// A reply did not have the shape we expected.
    #[error("{addr}: unexpected reply to `{command}`: {detail}")]
    Reply {
        /// The server's address.
        addr: String,
        /// The command's words.
        command: String,
        /// What was wrong with it.
        detail: String,
    },
}

impl PikaError {
    /// An I/O error with what we were doing.
    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        PikaError::Io {
            what: what.into(),
            source,
        }
    }
}
