//! Admin connections: one multiplexed connection per node, every command bounded by a timeout.

use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Cmd, FromRedisValue};

use super::error::HarnessError;

/// How long a TCP connect to a local server may take.
const CONNECT_TIMEOUT_MS: u64 = 1000;
/// How long one admin command may take; local admin commands answer in well under a millisecond.
const RESPONSE_TIMEOUT_MS: u64 = 2000;
/// Response timeout of a probe: a paused or cut-off node must not stall a poll for long.
const PROBE_TIMEOUT_MS: u64 = 500;
/// The longest command label we put into an error.
const LABEL_CHARS_MAX: usize = 120;

/// A connection used only for administration (PING, CLUSTER ..., INFO); clones share it.
#[derive(Clone)]
pub struct Admin {
    addr: String,
    conn: MultiplexedConnection,
}

impl Admin {
    /// Connects to `addr` (`host:port`) with the default response timeout.
    pub async fn connect(addr: &str) -> Result<Admin, HarnessError> {
        Admin::connect_with_timeout(addr, RESPONSE_TIMEOUT_MS).await
    }

    /// Connects with the short response timeout of a probe, for nodes that may be paused or cut
    /// off (a paused server never answers).
    pub async fn probe(addr: &str) -> Result<Admin, HarnessError> {
        Admin::connect_with_timeout(addr, PROBE_TIMEOUT_MS).await
    }

    /// Connects with a chosen response timeout: `MIGRATE` of a large batch can take seconds.
    pub async fn connect_with_timeout(
        addr: &str,
        response_timeout_ms: u64,
    ) -> Result<Admin, HarnessError> {
        let command_error = |source| HarnessError::Command {
            addr: addr.to_string(),
            command: "connect".to_string(),
            source,
        };
        let client = redis::Client::open(format!("redis://{addr}/")).map_err(command_error)?;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(CONNECT_TIMEOUT_MS)))
            .set_response_timeout(Some(Duration::from_millis(response_timeout_ms)));
        let conn = client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(command_error)?;
        Ok(Admin {
            addr: addr.to_string(),
            conn,
        })
    }

    /// The address this connection talks to.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Runs one command given as words, e.g. `["CLUSTER", "MEET", "127.0.0.1", "20001"]`.
    pub async fn run<T: FromRedisValue>(&mut self, words: &[&str]) -> Result<T, HarnessError> {
        self.query(&cmd_of(words)).await
    }

    /// Runs a command that must answer `OK`; any other answer is an error naming it.
    pub async fn run_ok(&mut self, words: &[&str]) -> Result<(), HarnessError> {
        let reply: String = self.run(words).await?;
        if reply != "OK" {
            return Err(HarnessError::Reply {
                addr: self.addr.clone(),
                command: words.join(" "),
                detail: format!("expected OK, got {reply:?}"),
            });
        }
        Ok(())
    }

    /// Runs a prepared command (for arguments that are not text, such as key lists).
    pub async fn query<T: FromRedisValue>(&mut self, cmd: &Cmd) -> Result<T, HarnessError> {
        cmd.query_async(&mut self.conn)
            .await
            .map_err(|source| HarnessError::Command {
                addr: self.addr.clone(),
                command: label(&describe(cmd)),
                source,
            })
    }

    /// Runs a pipeline in one round trip; with `ignore_errors` set on it, error replies come back
    /// as values rather than failing the whole pipeline.
    pub async fn pipe<T: FromRedisValue>(
        &mut self,
        pipe: &redis::Pipeline,
    ) -> Result<T, HarnessError> {
        pipe.query_async(&mut self.conn)
            .await
            .map_err(|source| HarnessError::Command {
                addr: self.addr.clone(),
                command: "pipeline".to_string(),
                source,
            })
    }

    /// Runs a command whose reply is text (`CLUSTER NODES`, `CLUSTER INFO`, `INFO`).
    pub async fn text(&mut self, words: &[&str]) -> Result<String, HarnessError> {
        self.run::<String>(words).await
    }
}

/// The words of a command, cursors shown as `<cursor>`.
fn describe(cmd: &Cmd) -> Vec<String> {
    cmd.args_iter()
        .map(|a| match a {
            redis::Arg::Simple(b) => String::from_utf8_lossy(b).into_owned(),
            _ => "<cursor>".to_string(),
        })
        .collect()
}

/// The command `words` spell, e.g. `["CLUSTER", "MEET", "127.0.0.1", "20001"]`.
pub(crate) fn cmd_of(words: &[&str]) -> Cmd {
    assert!(!words.is_empty(), "empty command");
    let mut cmd = redis::cmd(words[0]);
    for word in &words[1..] {
        cmd.arg(*word);
    }
    cmd
}

/// The words of a command joined, cut to a readable length for errors.
pub(crate) fn label<S: AsRef<str>>(words: &[S]) -> String {
    let words: Vec<&str> = words.iter().map(AsRef::as_ref).collect();
    let mut label = words.join(" ");
    if label.len() > LABEL_CHARS_MAX {
        let cut = (0..=LABEL_CHARS_MAX)
            .rev()
            .find(|&i| label.is_char_boundary(i))
            .unwrap_or(0);
        label.truncate(cut);
        label.push_str("...");
    }
    label
}
