//! The `redis` crate's async cluster client as a client under test, with its redirects recorded
//! although the library follows them out of sight.
//!
//! **Observation.** redis-rs lets a caller choose the per-node connection type of its cluster
//! connection. [`Observed`] wraps the library's own `MultiplexedConnection` and sees every request
//! and reply on every node connection, so the history can list each `MOVED`/`ASK`/`TRYAGAIN`/
//! `CLUSTERDOWN` reply to the op's command, each I/O error or timeout, and the node that answered.
//! The library opens those connections through a static [`Connect::connect_with_config`] that gets
//! only the node's connection info, so each [`RedisRs`] gives its `ClusterClient` a username of its
//! own (`slotcheck-redis-rs-<pid>-<n>`), and `Observed` looks that name up in a process-wide registry
//! to find its `RedisRs`'s observer; the entry is removed when the `RedisRs` is dropped. The name
//! never reaches a server: redis-rs sends `AUTH` only with a password, and with RESP2 (the default,
//! kept) no `HELLO` (see `connection_setup_pipeline` in redis 1.8.1). Requests are matched to the
//! op by their encoded bytes and an op generation, so a late reply of an abandoned op is ignored.
//!
//! **Outcome rule.** A value is `Ok` as it is. An error is `Fail` only when the op certainly did not
//! run: the final error is a server error reply (per [`classify`] a refusal, or a redirect the
//! library gave up on) *and* no send of the op's command was lost (no I/O error, timeout or
//! abandoned request), because after a dropped connection redis-rs resends the command, so a later
//! error reply says nothing about the first send. Everything else is `Info`.

use crate::executor::{ClientInfo, RedirectVisibility};
use crate::router::{classify, error_text, Action, Execution, OpError, RouterConfig};
use crate::slot::key_slot;
use checker::{GaveUp, Redirect, RedirectKind};
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::{ClusterConnection, Connect};
use redis::{AsyncConnectionConfig, Cmd, ErrorKind, IntoConnectionInfo, RedisError, RedisFuture};
use redis::{RedisResult, Value};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// The redis crate version pinned in Cargo.lock (a unit test keeps them equal); the history header
/// names the library as it reports itself to servers (`CLIENT SETINFO LIB-VER`).
pub const REDIS_RS_VERSION: &str = "1.8.1";
/// Default bound on one `execute`, past which the op is `info` whatever the library is doing.
pub const DEADLINE_DEFAULT: Duration = Duration::from_secs(30);
/// Most requests one op's trace keeps (the library's retries are bounded, this bounds the record).
const TRACE_MAX: usize = 256;

/// Observers by the username of their `RedisRs`: how a statically opened connection finds its own.
static OBSERVERS: Mutex<BTreeMap<String, Arc<Observer>>> = Mutex::new(BTreeMap::new());
/// Makes each `RedisRs`'s username unique within the process.
static NEXT_ID: AtomicU64 = AtomicU64::new(0);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One request the library sent while an op ran, as a node connection saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// The node it went to, `host:port`.
    pub node: String,
    /// The command's name (`GET`, `ASKING`, `PING`).
    pub command: String,
    /// `ok`, the server's error text, the client error, or `no reply seen`.
    pub reply: String,
}

/// What one op's requests showed.
#[derive(Debug, Default)]
struct Op {
    generation: u64,
    packed: Vec<u8>,
    slot: u16,
    redirects: Vec<Redirect>,
    /// The node of the last reply to the op's command.
    answered: Option<String>,
    /// The node the op's command was last sent to.
    tried: Option<String>,
    /// Sends of the op's command that may have run without us seeing a reply.
    lost: Vec<String>,
    trace: Vec<Sent>,
}

/// Where one request stands in its op's record.
#[derive(Debug, Clone, Copy)]
struct Ticket {
    generation: u64,
    index: Option<usize>,
    is_op: bool,
}

/// Collects what the node connections of one `RedisRs` see during its current op.
#[derive(Debug, Default)]
struct Observer {
    state: Mutex<(u64, Option<Op>)>,
}

impl Observer {
    fn begin(&self, cmd: &Cmd, slot: u16) {
        let mut state = lock(&self.state);
        state.0 += 1;
        let (generation, packed) = (state.0, cmd.get_packed_command());
        state.1 = Some(Op {
            generation,
            packed,
            slot,
            ..Op::default()
        });
    }

    fn finish(&self) -> Op {
        lock(&self.state).1.take().unwrap_or_default()
    }

    /// Notes a request about to go to `node`; `None` when no op runs (background work).
    fn sent(&self, node: &str, cmd: &Cmd) -> Option<Ticket> {
        let mut state = lock(&self.state);
        let op = state.1.as_mut()?;
        let is_op = cmd.get_packed_command() == op.packed;
        if is_op {
            op.tried = Some(node.to_string());
        }
        let index = (op.trace.len() < TRACE_MAX).then(|| {
            op.trace.push(Sent {
                node: node.to_string(),
                command: command_name(cmd),
                reply: "no reply seen".into(),
            });
            op.trace.len() - 1
        });
        Some(Ticket {
            generation: op.generation,
            index,
            is_op,
        })
    }

    /// Records how a request ended: `None` if it was dropped before its reply.
    fn ended(&self, ticket: Ticket, node: &str, result: Option<&RedisResult<Value>>) {
        let mut state = lock(&self.state);
        let Some(op) = state
            .1
            .as_mut()
            .filter(|op| op.generation == ticket.generation)
        else {
            return; // a late end of an earlier op's request
        };
        let err = match result {
            None => Some(RedisError::from((
                ErrorKind::Io,
                "request abandoned before its reply",
            ))),
            Some(Ok(Value::ServerError(e))) => Some(RedisError::from(e.clone())),
            Some(Ok(_)) => None,
            Some(Err(e)) => Some(e.clone()),
        };
        if let Some(sent) = ticket.index.and_then(|i| op.trace.get_mut(i)) {
            sent.reply = err.as_ref().map_or_else(|| "ok".into(), error_text);
        }
        if !ticket.is_op {
            return;
        }
        let Some(err) = err else {
            op.answered = Some(node.to_string());
            return;
        };
        let redirect = |kind, slot, to: String| Redirect {
            kind,
            slot,
            from: node.to_string(),
            to,
        };
        match classify(&err) {
            Action::Indeterminate => op.lost.push(format!("{node}: {}", error_text(&err))),
            action => {
                op.answered = Some(node.to_string());
                op.redirects.extend(match action {
                    Action::Moved { slot, addr } => {
                        Some(redirect(RedirectKind::Moved, slot, resolve(&addr, node)))
                    }
                    Action::Ask { slot, addr } => {
                        Some(redirect(RedirectKind::Ask, slot, resolve(&addr, node)))
                    }
                    Action::TryAgain => {
                        Some(redirect(RedirectKind::TryAgain, op.slot, node.into()))
                    }
                    Action::ClusterDown => {
                        Some(redirect(RedirectKind::ClusterDown, op.slot, node.into()))
                    }
                    Action::Fail | Action::Indeterminate => None,
                });
            }
        }
    }
}

/// The first word of a command, upper-cased, for the trace.
fn command_name(cmd: &Cmd) -> String {
    match cmd.args_iter().next() {
        Some(redis::Arg::Simple(word)) => String::from_utf8_lossy(word).to_ascii_uppercase(),
        _ => String::new(),
    }
}

/// A redirect target with an empty host (`:30002`) means the sender's host (as the router reads it).
fn resolve(to: &str, from: &str) -> String {
    match to.strip_prefix(':') {
        Some(port) => {
            let host = from.rsplit_once(':').map_or(from, |(host, _)| host);
            format!("{host}:{port}")
        }
        None => to.to_string(),
    }
}

/// Clears a request's ticket when its future is dropped before the reply: it may have been sent.
struct InFlight<'a> {
    observer: &'a Observer,
    node: &'a str,
    ticket: Option<Ticket>,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        if let Some(ticket) = self.ticket.take() {
            self.observer.ended(ticket, self.node, None);
        }
    }
}

/// A node connection of redis-rs's cluster client that reports every request and reply to the
/// observer of the `RedisRs` that opened it.
#[derive(Clone)]
pub struct Observed {
    inner: MultiplexedConnection,
    node: Arc<str>,
    observer: Arc<Observer>,
}

impl ConnectionLike for Observed {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let mut flight = InFlight {
                observer: &self.observer,
                node: &self.node,
                ticket: self.observer.sent(&self.node, cmd),
            };
            let result = self.inner.req_packed_command(cmd).await;
            if let Some(ticket) = flight.ticket.take() {
                flight.observer.ended(ticket, flight.node, Some(&result));
            }
            result
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        // The cluster client pipelines only subscriptions and user pipelines; ops never use them.
        self.inner.req_packed_commands(pipeline, offset, count)
    }

    fn get_db(&self) -> i64 {
        self.inner.get_db()
    }
}

impl Connect for Observed {
    fn connect_with_config<'a, T>(info: T, config: AsyncConnectionConfig) -> RedisFuture<'a, Self>
    where
        T: IntoConnectionInfo + Send + 'a,
    {
        Box::pin(async move {
            let info = info.into_connection_info()?;
            let user = info.redis_settings().username().unwrap_or_default();
            let observer = lock(&OBSERVERS).get(user).cloned().ok_or_else(|| {
                let detail = format!("no RedisRs observer is registered as {user:?}");
                RedisError::from((ErrorKind::Client, "unobserved connection", detail))
            })?;
            let node: Arc<str> = info.addr().to_string().into();
            let inner = MultiplexedConnection::connect_with_config(info, config).await?;
            Ok(Observed {
                inner,
                node,
                observer,
            })
        })
    }
}

/// Removes a `RedisRs`'s observer from the registry when the `RedisRs` goes.
struct Registration(String);

impl Drop for Registration {
    fn drop(&mut self) {
        lock(&OBSERVERS).remove(&self.0);
    }
}

/// One workload process's redis-rs cluster client: its own `ClusterClient`, connections and observer.
pub struct RedisRs {
    conn: ClusterConnection<Observed>,
    observer: Arc<Observer>,
    last: Vec<Sent>,
    /// Longest one `execute` may take; past it the op is `info` ([`DEADLINE_DEFAULT`] unless set).
    pub deadline: Duration,
    _registration: Registration,
}

impl RedisRs {
    /// Connects with the library's defaults except the connection and response timeouts, which are
    /// `config.timeout_ms` (the library then also bounds each whole request, retries included, by
    /// the response timeout: its default); retries stay at the library's default (16) so that its
    /// own behaviour shows. `config`'s hop and back-off limits are slotcheck's router's, unused here.
    pub async fn open(seeds: &[String], config: &RouterConfig) -> Result<RedisRs, String> {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let user = format!("slotcheck-redis-rs-{}-{id}", std::process::id());
        let observer = Arc::new(Observer::default());
        lock(&OBSERVERS).insert(user.clone(), observer.clone());
        let registration = Registration(user.clone());
        let timeout = Duration::from_millis(config.timeout_ms);
        let client = ClusterClientBuilder::new(seeds.iter().map(|s| format!("redis://{s}/")))
            .username(&user)
            .connection_timeout(timeout)
            .response_timeout(timeout)
            .build()
            .map_err(|e| format!("redis-rs client for {seeds:?}: {e}"))?;
        let conn = client
            .get_async_generic_connection::<Observed>()
            .await
            .map_err(|e| format!("redis-rs connect to {seeds:?}: {e}"))?;
        Ok(RedisRs {
            conn,
            observer,
            last: Vec::new(),
            deadline: DEADLINE_DEFAULT,
            _registration: registration,
        })
    }

    /// Sends `cmd`, whose only key is `key`, through the library and reports how it ended, the node
    /// that answered last, and every redirect reply the library followed.
    pub async fn execute(&mut self, key: &[u8], cmd: &Cmd) -> Execution {
        let slot = key_slot(key);
        self.observer.begin(cmd, slot);
        let reply = tokio::time::timeout(self.deadline, self.conn.req_packed_command(cmd))
            .await
            .ok();
        let mut op = self.observer.finish();
        let mut gave_up = None;
        if let Some((kind, text)) = reply.as_ref().and_then(gave_up_on) {
            // The last redirect reply is the one the library gave up on, not a hop it followed.
            if op.redirects.last().is_some_and(|r| r.kind == kind) {
                op.redirects.pop();
            }
            gave_up = Some(GaveUp::new(kind, &text, op.redirects.len()));
        }
        let result = outcome(reply, &op.lost, self.deadline);
        self.last = std::mem::take(&mut op.trace);
        Execution {
            result,
            node: op.answered.or(op.tried).unwrap_or_default(),
            slot,
            redirects: op.redirects,
            gave_up,
        }
    }

    /// Every request the library sent during the last `execute` (cut at 256), to show how it routed.
    pub fn last_requests(&self) -> &[Sent] {
        &self.last
    }

    /// The client the history header names: redis-rs, its version, redirects seen.
    pub fn info(&self) -> ClientInfo {
        RedisRs::describe()
    }

    /// The same, without a client: what every instance says.
    pub fn describe() -> ClientInfo {
        ClientInfo {
            name: "redis-rs".into(),
            version: REDIS_RS_VERSION.into(),
            redirects: RedirectVisibility::Seen,
        }
    }
}

/// The redirect kind of a final error, if the library gave up on a redirect.
fn gave_up_on(reply: &RedisResult<Value>) -> Option<(RedirectKind, String)> {
    let err = match reply {
        Ok(Value::ServerError(e)) => RedisError::from(e.clone()),
        Ok(_) => return None,
        Err(e) => e.clone(),
    };
    let kind = match classify(&err) {
        Action::Moved { .. } => RedirectKind::Moved,
        Action::Ask { .. } => RedirectKind::Ask,
        Action::TryAgain => RedirectKind::TryAgain,
        Action::ClusterDown => RedirectKind::ClusterDown,
        Action::Fail | Action::Indeterminate => return None,
    };
    Some((kind, error_text(&err)))
}

/// The outcome rule (see the module doc): `reply` is `None` when the deadline passed first.
fn outcome(
    reply: Option<RedisResult<Value>>,
    lost: &[String],
    deadline: Duration,
) -> Result<Value, OpError> {
    let err = match reply {
        None => {
            let ms = deadline.as_millis();
            return Err(OpError::Info(format!(
                "no reply within the {ms} ms deadline"
            )));
        }
        Some(Ok(Value::ServerError(e))) => RedisError::from(e),
        Some(Ok(value)) => return Ok(value),
        Some(Err(e)) => e,
    };
    let text = error_text(&err);
    match (classify(&err), lost.first()) {
        (Action::Indeterminate, _) => Err(OpError::Info(text)),
        (_, None) => Err(OpError::Fail(text)),
        (_, Some(first)) => Err(OpError::Info(format!(
            "{text} (an earlier send may have run: {first})"
        ))),
    }
}

#[cfg(test)]
mod tests;
