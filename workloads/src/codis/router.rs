//! A Codis proxy's routing, played by slotcheck's client: a single-key (or same-tag) command
//! goes to its slot's owner by the [`SharedCodisTable`]; while the slot migrates it crosses by the
//! table's mode, `SLOTSMGRTTAGONE` (sync) or `SLOTSMGRT-EXEC-WRAPPER` (semi-async), and records
//! each step as a hop. PikiwiDB 4.0's exec-wrapper never runs the command: it answers `[0,0]`
//! (the key is not on the source: go to the target), `[1,1]` (being migrated: ask again) or
//! `[-1,-1]` (an error: the op fails). Outcome rules are the cluster router's: an error reply is
//! `fail`, a timeout or a connection lost after sending is `info`.

use super::table::{MigrationMode, SharedCodisTable, SlotRoute};
use crate::conn::{self, Conn, Reply};
use crate::router::{error_text, Execution, OpError, RouterConfig};
use checker::{GaveUp, Redirect, RedirectKind};
use redis::{Arg, Cmd, Value};
use std::collections::HashMap;
use std::time::Duration;

/// What `SLOTSMGRT-EXEC-WRAPPER` answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WrapperAnswer {
    /// `[0,0]`: the key is not on the source (or not migrating): send the command to the target.
    NotHere,
    /// `[1,1]`: the key is being migrated: wait, then ask again.
    Migrating,
    /// `[-1,-1]`: an error (e.g. the key's slot is not the migrating slot): the op fails.
    Error,
}

/// Reads the exec-wrapper's reply; `None` for any other shape.
pub fn parse_wrapper(reply: &Value) -> Option<WrapperAnswer> {
    let Value::Array(items) = reply else {
        return None;
    };
    match items.as_slice() {
        [Value::Int(0), Value::Int(0)] => Some(WrapperAnswer::NotHere),
        [Value::Int(1), Value::Int(1)] => Some(WrapperAnswer::Migrating),
        [Value::Int(-1), Value::Int(-1)] => Some(WrapperAnswer::Error),
        _ => None,
    }
}

/// The next request a router makes for a key, from its slot's route and the table's mode.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// No migration open: send the command to the owner.
    Owner(String),
    /// Sync: `SLOTSMGRTTAGONE` on `from`, then the command to `to`.
    MgrtOne {
        /// The source (the slot's owner).
        from: String,
        /// The target.
        to: String,
    },
    /// Semi-async: `SLOTSMGRT-EXEC-WRAPPER` on `from`; on `0` the command goes to `to`.
    Wrapper {
        /// The source (the slot's owner).
        from: String,
        /// The target.
        to: String,
    },
}

/// Decides the next request from where the slot lives and how migrations are crossed.
pub fn plan(route: &SlotRoute, mode: MigrationMode) -> Step {
    let from = route.owner.to_string();
    match (&route.migrating_to, mode) {
        (None, _) => Step::Owner(from),
        (Some(to), MigrationMode::Sync) => Step::MgrtOne {
            from,
            to: to.to_string(),
        },
        (Some(to), MigrationMode::SemiAsync) => Step::Wrapper {
            from,
            to: to.to_string(),
        },
    }
}

/// `SLOTSMGRT-EXEC-WRAPPER key <cmd words...>` for `cmd`.
pub fn wrapper_cmd(key: &[u8], cmd: &Cmd) -> Cmd {
    let mut wrapped = redis::cmd("SLOTSMGRT-EXEC-WRAPPER");
    wrapped.arg(key);
    for arg in cmd.args_iter() {
        if let Arg::Simple(bytes) = arg {
            wrapped.arg(bytes);
        }
    }
    wrapped
}

/// `SLOTSMGRTTAGONE host port timeout_ms key`, moving `key` and its tag to `to` (`host:port`).
pub fn mgrt_one_cmd(to: &str, timeout_ms: u64, key: &[u8]) -> Cmd {
    let (host, port) = to.rsplit_once(':').unwrap_or((to, ""));
    let mut cmd = redis::cmd("SLOTSMGRTTAGONE");
    cmd.arg(host).arg(port).arg(timeout_ms).arg(key);
    cmd
}

/// A client that routes by a Codis slot table over its own direct connections.
pub struct CodisRouter {
    table: SharedCodisTable,
    conns: HashMap<String, Conn>,
    config: RouterConfig,
}

impl CodisRouter {
    /// A router with no connections yet; they are opened on first use.
    pub fn new(table: SharedCodisTable, config: RouterConfig) -> Self {
        CodisRouter {
            table,
            conns: HashMap::new(),
            config,
        }
    }

    /// Drops every connection, so that the next request opens fresh ones (a new process).
    pub fn reset_connections(&mut self) {
        self.conns.clear();
    }

    /// Sends `cmd` on `addr`'s connection, opening it first; a connection left out of step is
    /// dropped. An error means it could not connect (nothing was sent).
    async fn request(&mut self, addr: &str, cmd: &Cmd) -> Result<Reply, String> {
        let timeout = Duration::from_millis(self.config.timeout_ms);
        if !self.conns.contains_key(addr) {
            let conn = conn::connect(addr, timeout)
                .await
                .map_err(|e| format!("connect to {addr}: {e}"))?;
            self.conns.insert(addr.to_string(), conn);
        }
        let conn = self.conns.get_mut(addr).expect("opened above");
        let reply = conn::send(conn, cmd, None, timeout).await;
        if !reply.keeps_connection() {
            self.conns.remove(addr);
        }
        Ok(reply)
    }

    /// Sends the command itself to `addr`: its reply is the op's.
    async fn finish_at(&mut self, addr: String, trip: &mut Trip<'_>) -> Execution {
        let result = match self.request(&addr, trip.cmd).await {
            Err(e) => Err(OpError::Fail(e)),
            Ok(Reply::Value(v)) => Ok(v),
            Ok(Reply::Error(e)) => Err(outcome_of_error(&e)),
            Ok(Reply::Lost(text)) => Err(OpError::Info(text)),
        };
        trip.end(result, addr)
    }

    /// Sends `cmd`, whose keys all share `key`'s tag, by the table; re-reads the table before
    /// each step, since the nemesis may flip the slot meanwhile.
    pub async fn execute(&mut self, key: &[u8], cmd: &Cmd) -> Execution {
        let mut trip = Trip {
            key,
            cmd,
            slot: 0,
            hops: Vec::new(),
        };
        let mut backoff_ms = self.config.backoff_ms_first;
        loop {
            let (route, mode) = {
                let table = self.table.read().unwrap_or_else(|p| p.into_inner());
                let (slot, route) = table.route_key(key);
                trip.slot = slot;
                (route, table.mode())
            };
            match plan(&route, mode) {
                Step::Owner(addr) => return self.finish_at(addr, &mut trip).await,
                Step::MgrtOne { from, to } => return self.mgrt_one(&mut trip, from, to).await,
                Step::Wrapper { from, to } => {
                    if let Some(done) = self.wrapper(&mut trip, from, to).await {
                        return done;
                    }
                    tokio::time::sleep(Duration::from_millis(backoff_ms)).await;
                    backoff_ms = (backoff_ms * 2).min(self.config.backoff_ms_max);
                }
            }
        }
    }

    /// Sync crossing: `SLOTSMGRTTAGONE` moves the key's tag from `from` to `to` (a hop), then
    /// the command goes to `to`.
    async fn mgrt_one(&mut self, trip: &mut Trip<'_>, from: String, to: String) -> Execution {
        let slot = trip.slot;
        let mgrt = mgrt_one_cmd(&to, self.config.timeout_ms, trip.key);
        match self.request(&from, &mgrt).await {
            Err(e) => return trip.end(Err(OpError::Fail(e)), from),
            Ok(Reply::Error(e)) => {
                let text = format!(
                    "MGRT-ONE SLOTSMGRTTAGONE {:?} (slot {slot}) on {from}: {}",
                    trip.name(),
                    error_text(&e)
                );
                let outcome = match outcome_of_error(&e) {
                    OpError::Fail(_) => OpError::Fail(text),
                    OpError::Info(_) => OpError::Info(text),
                };
                return trip.end(Err(outcome), from);
            }
            Ok(Reply::Lost(text)) => {
                let text = format!("MGRT-ONE {:?} (slot {slot}) on {from}: {text}", trip.name());
                return trip.end(Err(OpError::Info(text)), from);
            }
            Ok(Reply::Value(_)) => {}
        }
        trip.hops.push(hop(RedirectKind::MgrtOne, slot, &from, &to));
        self.finish_at(to, trip).await
    }

    /// Semi-async crossing: `SLOTSMGRT-EXEC-WRAPPER` on `from` says where the key is. Returns
    /// the op's end, or `None` when the key is still being migrated (a hop; ask again later).
    async fn wrapper(
        &mut self,
        trip: &mut Trip<'_>,
        from: String,
        to: String,
    ) -> Option<Execution> {
        let slot = trip.slot;
        let wrapped = wrapper_cmd(trip.key, trip.cmd);
        let answer = match self.request(&from, &wrapped).await {
            Err(e) => return Some(trip.end(Err(OpError::Fail(e)), from)),
            Ok(Reply::Error(e)) => return Some(trip.end(Err(outcome_of_error(&e)), from)),
            // The wrapper runs nothing, but a reply that never came is unknown by the outcome
            // rule: stay on the safe side.
            Ok(Reply::Lost(text)) => return Some(trip.end(Err(OpError::Info(text)), from)),
            Ok(Reply::Value(v)) => parse_wrapper(&v).ok_or(v),
        };
        match answer {
            Err(v) => {
                let text = format!("SLOTSMGRT-EXEC-WRAPPER answered {v:?}");
                Some(trip.end(Err(OpError::Info(text)), from))
            }
            Ok(WrapperAnswer::NotHere) => {
                trip.hops
                    .push(hop(RedirectKind::WrapperMoved, slot, &from, &to));
                Some(self.finish_at(to, trip).await)
            }
            Ok(WrapperAnswer::Error) => {
                trip.hops
                    .push(hop(RedirectKind::WrapperError, slot, &from, &from));
                let name = trip.name();
                let text = format!(
                    "WRAPPER-ERROR SLOTSMGRT-EXEC-WRAPPER answered -1 on {from} for key \
                     {name:?} (slot {slot}, migrating to {to})"
                );
                Some(trip.end(Err(OpError::Fail(text)), from))
            }
            Ok(WrapperAnswer::Migrating) => {
                trip.hops
                    .push(hop(RedirectKind::WrapperRetry, slot, &from, &from));
                let hops = trip.hops.len();
                if hops < self.config.hops_max as usize {
                    return None;
                }
                let name = trip.name();
                let text = format!(
                    "gave up after {hops} hops: WRAPPER-RETRY key {name:?} (slot {slot}) still \
                     being migrated from {from} to {to}"
                );
                let reply = format!("SLOTSMGRT-EXEC-WRAPPER {name:?} answered 1");
                let gave_up = GaveUp::new(RedirectKind::WrapperRetry, &reply, hops);
                Some(Execution {
                    gave_up: Some(gave_up),
                    ..trip.end(Err(OpError::Fail(text)), from)
                })
            }
        }
    }
}

/// One operation on its way: what it sends, its slot as the table last said, and its hops.
struct Trip<'a> {
    key: &'a [u8],
    cmd: &'a Cmd,
    slot: u16,
    hops: Vec<Redirect>,
}

impl Trip<'_> {
    /// The key as text, for error messages.
    fn name(&self) -> String {
        String::from_utf8_lossy(self.key).into_owned()
    }

    /// The op's end at `node` with `result`.
    fn end(&mut self, result: Result<Value, OpError>, node: String) -> Execution {
        Execution {
            result,
            node,
            slot: self.slot,
            redirects: std::mem::take(&mut self.hops),
            gave_up: None,
        }
    }
}

/// An error reply means the server did not run the command; a client-side error after sending
/// (I/O, parse) leaves it unknown.
fn outcome_of_error(err: &redis::RedisError) -> OpError {
    let text = error_text(err);
    match err.kind() {
        redis::ErrorKind::Server(_) | redis::ErrorKind::Extension => OpError::Fail(text),
        _ => OpError::Info(text),
    }
}

fn hop(kind: RedirectKind, slot: u16, from: &str, to: &str) -> Redirect {
    Redirect {
        kind,
        slot,
        from: from.to_string(),
        to: to.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codis::CodisTable;

    #[test]
    fn wrapper_replies() {
        let pair = |a, b| Value::Array(vec![Value::Int(a), Value::Int(b)]);
        let table = [
            (pair(0, 0), Some(WrapperAnswer::NotHere)),
            (pair(1, 1), Some(WrapperAnswer::Migrating)),
            (pair(-1, -1), Some(WrapperAnswer::Error)),
            (pair(0, 1), None),
            (Value::Int(0), None),
            (Value::Okay, None),
            (Value::Array(vec![Value::Int(0)]), None),
        ];
        for (reply, want) in table {
            assert_eq!(parse_wrapper(&reply), want, "{reply:?}");
        }
    }

    #[test]
    fn plans_follow_the_table_and_mode() {
        let servers = vec!["a:1".to_string(), "b:2".to_string()];
        for mode in [MigrationMode::Sync, MigrationMode::SemiAsync] {
            let mut t = CodisTable::new(&servers, mode);
            assert_eq!(plan(&t.route(3), mode), Step::Owner("a:1".into()));
            t.begin_migration(3, "b:2");
            let (from, to) = ("a:1".to_string(), "b:2".to_string());
            let want = match mode {
                MigrationMode::Sync => Step::MgrtOne { from, to },
                MigrationMode::SemiAsync => Step::Wrapper { from, to },
            };
            assert_eq!(plan(&t.route(3), mode), want);
            t.finish_migration(3);
            assert_eq!(plan(&t.route(3), mode), Step::Owner("b:2".into()));
        }
    }

    #[test]
    fn commands_are_spelled_as_pika_takes_them() {
        let words = |cmd: &Cmd| -> Vec<String> {
            cmd.args_iter()
                .map(|a| match a {
                    Arg::Simple(b) => String::from_utf8_lossy(b).into_owned(),
                    _ => "<cursor>".into(),
                })
                .collect()
        };
        let set = redis::cmd("SET").arg("Str:{T3}:a").arg(7).clone();
        assert_eq!(
            words(&wrapper_cmd(b"Str:{T3}:a", &set)),
            [
                "SLOTSMGRT-EXEC-WRAPPER",
                "Str:{T3}:a",
                "SET",
                "Str:{T3}:a",
                "7"
            ]
        );
        assert_eq!(
            words(&mgrt_one_cmd("127.0.0.1:9221", 500, b"k")),
            ["SLOTSMGRTTAGONE", "127.0.0.1", "9221", "500", "k"]
        );
    }
}
