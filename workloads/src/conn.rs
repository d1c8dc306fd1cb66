//! One request on one node's connection, with the outcome sorted into what the router needs.

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Cmd, RedisError, Value};
use std::time::Duration;

/// What came back from sending one request to one node.
#[derive(Debug)]
pub(crate) enum Reply {
    /// The server answered with a value (not an error).
    Value(Value),
    /// The server answered with an error reply, or the client met an error after sending.
    Error(RedisError),
    /// No answer within the timeout, or an answer of the wrong shape: the request may have run.
    Lost(String),
}

/// Opens a connection to `addr` (`host:port`), giving up after `timeout`.
pub(crate) async fn connect(
    addr: &str,
    timeout: Duration,
) -> Result<MultiplexedConnection, RedisError> {
    let client = redis::Client::open(format!("redis://{addr}/"))?;
    // Response timeouts are enforced by `send` with tokio, so that the router alone decides them.
    let config = AsyncConnectionConfig::new()
        .set_connection_timeout(Some(timeout))
        .set_response_timeout(None);
    match tokio::time::timeout(
        timeout,
        client.get_multiplexed_async_connection_with_config(&config),
    )
    .await
    {
        Ok(result) => result,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("connect timed out after {} ms", timeout.as_millis()),
        )
        .into()),
    }
}

/// Sends `cmd`, preceded in the same pipeline by `prefix` (`ASKING`, or `READONLY` for the
/// `write-to-replica` test aid) if given, and waits at most `timeout` for the reply to `cmd` (the
/// prefix's reply is dropped).
///
/// `ASKING` and the command go out as one write so that no other request on this multiplexed
/// connection can slip between them and consume the one-shot `ASKING` flag.
pub(crate) async fn send(
    conn: &mut MultiplexedConnection,
    cmd: &Cmd,
    prefix: Option<&str>,
    timeout: Duration,
) -> Reply {
    let request = async {
        if let Some(prefix) = prefix {
            let mut pipe = redis::pipe();
            pipe.cmd(prefix).add_command(cmd.clone());
            conn.send_packed_commands(&pipe, 0, 2)
                .await
                .map(|mut replies| (replies.len() == 2).then(|| replies.swap_remove(1)))
        } else {
            conn.send_packed_command(cmd).await.map(Some)
        }
    };
    match tokio::time::timeout(timeout, request).await {
        Err(_) => Reply::Lost(format!("timeout after {} ms", timeout.as_millis())),
        Ok(Err(e)) => Reply::Error(e),
        Ok(Ok(None)) => Reply::Lost("prefixed pipeline: expected 2 replies".into()),
        Ok(Ok(Some(Value::ServerError(e)))) => Reply::Error(e.into()),
        Ok(Ok(Some(value))) => Reply::Value(value),
    }
}
