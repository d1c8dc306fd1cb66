//! Admin links to pika servers: one connection per server, every command (connect included)
//! bounded by a timeout, so a command pika never answers ends as an error that says it timed out,
//! never as a hang of slotcheck. The connection is dropped after any error and made again on the
//! next command (a late reply must not be read as the answer to a later command).

use std::time::{Duration, Instant};

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Cmd, FromRedisValue};

use super::error::PikaError;
use crate::harness::admin::{cmd_of, label};

/// A bounded admin connection to one server.
pub struct Link {
    addr: String,
    conn: Option<MultiplexedConnection>,
    timeout: Duration,
}

impl Link {
    /// A link to `addr` (`host:port`); it connects on its first command.
    pub fn new(addr: &str, timeout: Duration) -> Link {
        Link {
            addr: addr.to_string(),
            conn: None,
            timeout,
        }
    }

    /// The server this link talks to.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// Runs one command given as words, e.g. `["SLOTSINFO", "12", "1"]`.
    pub async fn run<T: FromRedisValue>(&mut self, words: &[&str]) -> Result<T, PikaError> {
        self.query(&cmd_of(words), &label(words)).await
    }

    /// Runs a prepared command; `what` names it in errors.
    pub async fn query<T: FromRedisValue>(
        &mut self,
        cmd: &Cmd,
        what: &str,
    ) -> Result<T, PikaError> {
        let started = Instant::now();
        let result = tokio::time::timeout(self.timeout, async {
            let conn = self.connection().await?;
            cmd.query_async::<T>(conn).await
        })
        .await;
        self.settle(result, what, started)
    }

    /// Runs a pipeline in one round trip; `what` names it in errors.
    pub async fn pipe<T: FromRedisValue>(
        &mut self,
        pipe: &redis::Pipeline,
        what: &str,
    ) -> Result<T, PikaError> {
        let started = Instant::now();
        let result = tokio::time::timeout(self.timeout, async {
            let conn = self.connection().await?;
            pipe.query_async::<T>(conn).await
        })
        .await;
        self.settle(result, what, started)
    }

    async fn connection(&mut self) -> Result<&mut MultiplexedConnection, redis::RedisError> {
        if self.conn.is_none() {
            let client = redis::Client::open(format!("redis://{}/", self.addr))?;
            let config = AsyncConnectionConfig::new()
                .set_connection_timeout(Some(self.timeout))
                .set_response_timeout(Some(self.timeout));
            let conn = client
                .get_multiplexed_async_connection_with_config(&config)
                .await?;
            self.conn = Some(conn);
        }
        Ok(self.conn.as_mut().expect("connected above"))
    }

    /// Turns a bounded result into ours; any failure drops the connection.
    fn settle<T>(
        &mut self,
        result: Result<Result<T, redis::RedisError>, tokio::time::error::Elapsed>,
        what: &str,
        started: Instant,
    ) -> Result<T, PikaError> {
        let elapsed_ms = started.elapsed().as_millis() as u64;
        let (detail, timed_out) = match result {
            Ok(Ok(value)) => return Ok(value),
            Ok(Err(e)) => (e.to_string(), e.is_timeout()),
            Err(_) => (
                format!("no answer within {} ms", self.timeout.as_millis()),
                true,
            ),
        };
        self.conn = None;
        Err(PikaError::Command {
            addr: self.addr.clone(),
            command: what.to_string(),
            elapsed_ms,
            detail,
            timed_out,
        })
    }
}
