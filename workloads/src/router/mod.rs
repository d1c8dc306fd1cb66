//! A self-routing cluster client: sends a single-key command to the slot's owner, follows
//! `MOVED`/`ASK`, waits out `TRYAGAIN`/`CLUSTERDOWN`, records every hop, and says whether the
//! command certainly failed (`Fail`) or may have run (`Info`). Transactions (`MULTI`/`EXEC`) go
//! the same way, whole, in [`txn`].

use crate::bugs::{BugState, ClientBug, Prefix};
use crate::conn::{self, Conn, Reply};
use crate::slot::key_slot;
use crate::slotmap::{SharedSlotMap, SlotMap};
use checker::{GaveUp, Redirect, RedirectKind};
use redis::{Cmd, ErrorKind, RedisError, ServerErrorKind, Value};
use std::collections::HashMap;
use std::time::Duration;

mod classify;
mod pipeline;

pub use classify::{classify, error_text, Action};
pub use pipeline::OnDone;
mod txn;

/// Why an operation did not complete with a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpError {
    /// The operation certainly did not happen (an error reply, or no connection to send it on).
    #[error("fail: {0}")]
    Fail(String),
    /// The operation may or may not have happened (a timeout or a connection lost after sending).
    #[error("info: {0}")]
    Info(String),
}

/// The result of one routed operation, with how it got there.
#[derive(Debug, Clone, PartialEq)]
pub struct Execution {
    /// The reply, or why there is none.
    pub result: Result<Value, OpError>,
    /// The node that finally answered (or was last tried), `host:port`.
    pub node: String,
    /// The key's hash slot.
    pub slot: u16,
    /// Every hop followed, in order.
    pub redirects: Vec<Redirect>,
    /// Set when the op failed because the client stopped following redirects (its hop limit,
    /// or a library's TTL or retry budget): the last redirect reply, which is not a hop.
    pub gave_up: Option<GaveUp>,
}

impl Execution {
    /// An op on `key` that certainly did not happen, for `text`, before any hop.
    pub fn failed(key: &[u8], text: &str) -> Execution {
        Execution {
            result: Err(OpError::Fail(text.to_string())),
            node: String::new(),
            slot: key_slot(key),
            redirects: Vec::new(),
            gave_up: None,
        }
    }

    /// An op on `key` whose end nobody reported (`text` says why): it may have happened.
    pub fn unknown(key: &[u8], text: &str) -> Execution {
        Execution {
            result: Err(OpError::Info(text.to_string())),
            ..Execution::failed(key, text)
        }
    }
}

/// Why the router could not learn the cluster's slot map.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouterError {
    /// No seed or known master answered `CLUSTER SLOTS` with a usable map.
    #[error("no node answered CLUSTER SLOTS (tried {tried:?}); last error: {last}")]
    NoSlotMap {
        /// The nodes asked.
        tried: Vec<String>,
        /// The last node's error.
        last: String,
    },
}

/// Bounds on a router's waiting and retrying.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouterConfig {
    /// Per request (and per connect) timeout; past it the outcome is unknown.
    pub timeout_ms: u64,
    /// Most hops (redirects and retries) one operation may follow before it fails.
    pub hops_max: u32,
    /// First back-off after `TRYAGAIN`/`CLUSTERDOWN`; doubles on each retry.
    pub backoff_ms_first: u64,
    /// Cap on the back-off.
    pub backoff_ms_max: u64,
    /// A client bug to inject (a test aid, see [`crate::bugs`]); `None` for a correct client.
    pub bug: Option<ClientBug>,
}

impl Default for RouterConfig {
    fn default() -> Self {
        RouterConfig {
            timeout_ms: 1000,
            hops_max: 16,
            backoff_ms_first: 20,
            backoff_ms_max: 500,
            bug: None,
        }
    }
}

/// A client that routes by slot over its own connections and a slot map shared with others.
pub struct Router {
    seeds: Vec<String>,
    slots: SharedSlotMap,
    /// Idle connections by node; a request takes one out and puts it back if still in step.
    conns: HashMap<String, Conn>,
    /// Set when a node failed in a way that suggests the topology changed (a failover, a
    /// kill): the next operation refreshes the slot map first.
    stale: bool,
    config: RouterConfig,
    /// What an injected bug remembers between ops (nothing for a correct client).
    bugs: BugState,
}

impl Router {
    /// A router with no connections yet; they are opened on first use.
    pub fn new(seeds: Vec<String>, slots: SharedSlotMap, config: RouterConfig) -> Self {
        Router {
            seeds,
            slots,
            conns: HashMap::new(),
            stale: false,
            config,
            bugs: BugState::new(config.bug),
        }
    }

    /// The slot map this router reads and updates.
    pub fn slot_map(&self) -> &SharedSlotMap {
        &self.slots
    }

    /// Drops every connection, so that the next request opens fresh ones (a new process).
    pub fn reset_connections(&mut self) {
        self.conns.clear();
    }

    fn timeout(&self) -> Duration {
        Duration::from_millis(self.config.timeout_ms)
    }

    /// Sends `cmd` (after `prefix`) on `addr`'s connection, opening it first if there is none;
    /// a connection the reply left out of step is dropped. An error means it could not connect.
    async fn request(
        &mut self,
        addr: &str,
        cmd: &Cmd,
        prefix: Option<&str>,
    ) -> Result<Reply, RedisError> {
        let timeout = self.timeout();
        if !self.conns.contains_key(addr) {
            let conn = conn::connect(addr, timeout).await?;
            self.conns.insert(addr.to_string(), conn);
        }
        let conn = self.conns.get_mut(addr).expect("opened above");
        let reply = conn::send(conn, cmd, prefix, timeout).await;
        if !reply.keeps_connection() {
            self.conns.remove(addr);
        }
        Ok(reply)
    }

    /// Replaces the shared slot map with `CLUSTER SLOTS` from the first seed or known master
    /// that answers with at least one slot.
    pub async fn refresh_slot_map(&mut self) -> Result<(), RouterError> {
        let mut candidates = self.seeds.clone();
        let known = read_map(&self.slots).masters();
        candidates.extend(known.into_iter().filter(|m| !self.seeds.contains(m)));
        let mut last = String::from("no seeds");
        for addr in &candidates {
            match self.cluster_slots(addr).await {
                Ok(map) if map.covered_slots() > 0 => {
                    *self.slots.write().unwrap_or_else(|p| p.into_inner()) = map;
                    return Ok(());
                }
                Ok(_) => last = format!("{addr}: no slots assigned"),
                Err(e) => last = format!("{addr}: {e}"),
            }
        }
        Err(RouterError::NoSlotMap {
            tried: candidates,
            last,
        })
    }

    async fn cluster_slots(&mut self, addr: &str) -> Result<SlotMap, String> {
        let slots = redis::cmd("CLUSTER").arg("SLOTS").clone();
        match self
            .request(addr, &slots, None)
            .await
            .map_err(|e| e.to_string())?
        {
            Reply::Value(v) => SlotMap::from_cluster_slots(&v, addr).map_err(|e| e.to_string()),
            Reply::Error(e) => Err(error_text(&e)),
            Reply::Lost(text) => Err(text),
        }
    }

    /// The slot's owner per the map, refreshing the map once if it names none.
    async fn owner(&mut self, slot: u16) -> Result<String, String> {
        if let Some(owner) = read_map(&self.slots).owner(slot) {
            return Ok(owner.to_string());
        }
        self.refresh_slot_map().await.map_err(|e| e.to_string())?;
        read_map(&self.slots)
            .owner(slot)
            .map(str::to_string)
            .ok_or_else(|| format!("no node owns slot {slot}"))
    }

    /// Sends `cmd`, whose only key is `key`, to the key's owner, following redirects and
    /// retries up to `hops_max` hops.
    pub async fn execute(&mut self, key: &[u8], cmd: &Cmd) -> Execution {
        let slot = key_slot(key);
        let learn = self.bugs.wants_refresh(slot, cmd, &read_map(&self.slots));
        if std::mem::take(&mut self.stale) || learn {
            // Best effort: if no node answers, route by the old map and let the op say why.
            let _ = self.refresh_slot_map().await;
        }
        let mut trip = Trip::new(slot, self.config.backoff_ms_first);
        let mut next = match self.first_hop(slot, cmd).await {
            Ok(hop) => hop,
            Err(e) => return trip.finish(Err(OpError::Fail(e)), String::new()),
        };
        loop {
            next = match self.step(&mut trip, cmd, next).await {
                Next::Hop(hop) => hop,
                Next::Done(done) => return self.bugs.finished(done),
            };
        }
    }

    /// Where an op goes first: its slot's owner, unless an injected bug sends it elsewhere.
    async fn first_hop(&mut self, slot: u16, cmd: &Cmd) -> Result<Hop, String> {
        let misrouted = self.bugs.first_hop(slot, cmd, &read_map(&self.slots));
        match misrouted {
            Some(hop) => Ok(hop),
            None => Ok((self.owner(slot).await?, None)),
        }
    }

    /// Sends `cmd` (after the hop's prefix) to the hop's node and decides from the reply: the
    /// next hop, or the op's end.
    async fn step(&mut self, trip: &mut Trip, cmd: &Cmd, (addr, prefix): Hop) -> Next {
        let reply = match self.request(&addr, cmd, prefix).await {
            Ok(reply) => reply,
            Err(e) => {
                let text = format!("connect to {addr}: {e}");
                self.stale = true;
                return Next::Done(trip.finish(Err(OpError::Fail(text)), addr));
            }
        };
        self.decide(trip, (addr, prefix), reply).await
    }

    /// Decides from the reply `hop`'s node gave: the next hop (a redirect followed and
    /// recorded), or the op's end.
    async fn decide(&mut self, trip: &mut Trip, (addr, prefix): Hop, reply: Reply) -> Next {
        let err = match reply {
            Reply::Value(v) => return Next::Done(trip.finish(Ok(v), addr)),
            Reply::Lost(text) => return self.after_lost(trip, (addr, prefix), text),
            Reply::Error(e) => e,
        };
        let text = error_text(&err);
        self.on_error(trip, &err, text, (addr, prefix)).await
    }

    /// Decides from the error reply `err` (its text for the history: `text`) to the request sent
    /// on `hop`: the next hop (a redirect or retry, recorded), or the op's end.
    async fn on_error(
        &mut self,
        trip: &mut Trip,
        err: &RedisError,
        text: String,
        hop: Hop,
    ) -> Next {
        let (addr, prefix) = hop;
        let (kind, hop_slot, to) = match classify(err) {
            Action::Fail => {
                // A write to a demoted master, or a replica without its master: failover.
                self.stale |= matches!(
                    err.kind(),
                    ErrorKind::Server(ServerErrorKind::ReadOnly | ServerErrorKind::MasterDown)
                );
                return Next::Done(trip.finish(Err(OpError::Fail(text)), addr));
            }
            Action::Indeterminate => return self.after_lost(trip, (addr, prefix), text),
            Action::Moved { slot: s, addr: to } => (RedirectKind::Moved, s, resolve(&to, &addr)),
            Action::Ask { slot: s, addr: to } => (RedirectKind::Ask, s, resolve(&to, &addr)),
            Action::TryAgain => (RedirectKind::TryAgain, trip.slot, String::new()),
            Action::ClusterDown => (RedirectKind::ClusterDown, trip.slot, String::new()),
        };
        if trip.redirects.len() >= self.config.hops_max as usize {
            return Next::Done(trip.give_up(kind, &text, addr));
        }
        let hop = Redirect {
            kind,
            slot: hop_slot,
            from: addr,
            to,
        };
        Next::Hop(self.follow(trip, hop).await)
    }

    /// A request that may have run and got no reply: the op's end (`info`), unless an injected
    /// bug resends it to the same node.
    fn after_lost(&mut self, trip: &mut Trip, hop: Hop, text: String) -> Next {
        self.stale = true;
        match self.bugs.after_lost(&mut trip.resent, text) {
            Ok(()) => Next::Hop(hop),
            Err(e) => Next::Done(trip.finish(Err(e), hop.0)),
        }
    }

    /// Follows one redirect or retry and records it: `MOVED` updates the map, `ASK` keeps it,
    /// `TRYAGAIN`/`CLUSTERDOWN` back off and go to the owner (the hop's `to`); returns the next
    /// hop.
    async fn follow(&mut self, trip: &mut Trip, mut hop: Redirect) -> Hop {
        let next = match hop.kind {
            RedirectKind::Moved => {
                let old = read_map(&self.slots).owner(hop.slot).map(str::to_string);
                write_map(&self.slots).update(hop.slot, &hop.to);
                self.bugs.moved(hop.slot, old, &hop.to);
                (hop.to.clone(), None)
            }
            RedirectKind::Ask if self.bugs.ask_refreshes_map() => {
                // `ask-as-moved`: back to the owner a fresh map names, the source while the
                // slot migrates; the hop still records the target the reply named.
                let _ = self.refresh_slot_map().await;
                let owner = read_map(&self.slots).owner(hop.slot).map(str::to_string);
                (owner.unwrap_or_else(|| hop.from.clone()), None)
            }
            RedirectKind::Ask => (hop.to.clone(), self.bugs.ask_prefix()),
            RedirectKind::TryAgain | RedirectKind::ClusterDown => {
                tokio::time::sleep(Duration::from_millis(trip.backoff_ms)).await;
                trip.backoff_ms = (trip.backoff_ms * 2).min(self.config.backoff_ms_max);
                if hop.kind == RedirectKind::ClusterDown {
                    // The slot may have a new owner by now (after a failover).
                    let _ = self.refresh_slot_map().await;
                }
                let owner = read_map(&self.slots).owner(trip.slot).map(str::to_string);
                hop.to = owner.unwrap_or_else(|| hop.from.clone());
                (hop.to.clone(), None)
            }
            codis => unreachable!("classify gives no {} hop", codis.name()),
        };
        trip.redirects.push(hop);
        next
    }
}

/// Where a request goes: the node, and what is sent before the command (`ASKING`).
type Hop = (String, Prefix);

/// What one reply leads to: the next hop, or the op's end.
enum Next {
    Hop(Hop),
    Done(Execution),
}

/// One operation's way through the cluster: its key's slot, the hops it followed, its current
/// back-off, and how often an injected bug resent it.
struct Trip {
    slot: u16,
    redirects: Vec<Redirect>,
    backoff_ms: u64,
    resent: u32,
}

impl Trip {
    /// A trip for an op on `slot` that has not been sent yet.
    fn new(slot: u16, backoff_ms: u64) -> Trip {
        Trip {
            slot,
            redirects: Vec::new(),
            backoff_ms,
            resent: 0,
        }
    }

    /// The op's end at `node` with `result`.
    fn finish(&mut self, result: Result<Value, OpError>, node: String) -> Execution {
        Execution {
            result,
            node,
            slot: self.slot,
            redirects: std::mem::take(&mut self.redirects),
            gave_up: None,
        }
    }

    /// The op's end at its hop limit, on the redirect reply `text` of `kind` from `node`.
    fn give_up(&mut self, kind: RedirectKind, text: &str, node: String) -> Execution {
        let hops = self.redirects.len();
        let gave_up = GaveUp::new(kind, text, hops);
        let text = format!("gave up after {hops} hops: {text}");
        Execution {
            gave_up: Some(gave_up),
            ..self.finish(Err(OpError::Fail(text)), node)
        }
    }
}

/// A redirect target with an empty host (`:30002`) means the sender's host.
fn resolve(to: &str, from: &str) -> String {
    match to.strip_prefix(':') {
        Some(port) => {
            let host = from.rsplit_once(':').map_or(from, |(host, _)| host);
            format!("{host}:{port}")
        }
        None => to.to_string(),
    }
}

fn read_map(slots: &SharedSlotMap) -> std::sync::RwLockReadGuard<'_, SlotMap> {
    slots.read().unwrap_or_else(|p| p.into_inner())
}

fn write_map(slots: &SharedSlotMap) -> std::sync::RwLockWriteGuard<'_, SlotMap> {
    slots.write().unwrap_or_else(|p| p.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolves_empty_hosts() {
        assert_eq!(resolve(":30002", "127.0.0.1:30001"), "127.0.0.1:30002");
        assert_eq!(resolve("10.0.0.2:1", "127.0.0.1:30001"), "10.0.0.2:1");
    }
}
