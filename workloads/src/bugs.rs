//! Client-side bug injection: test aids that make the [`Router`](crate::Router) misbehave on
//! purpose, so that a run shows whether slotcheck notices a broken client. Off by default;
//! `slotcheck test --client-bug NAME` turns one on for the workload (never for the final reads).
//!
//! Each bug is a mistake real cluster clients have made. Whether the checker *can* see it depends
//! on what the servers do with the misrouted request — Redis Cluster refuses most of them:
//!
//! | bug | what the client does | what the servers do | what the checker reports |
//! |---|---|---|---|
//! | `ask-without-asking` | follows `ASK` without `ASKING` | the importing node answers `MOVED` back to the source, which answers `ASK` again: no wrong value, the op fails at the hop limit (path `ASK A→B`, `MOVED B→A`, `ASK A→B`, ...) | `ask-without-asking`, cause `client`: invalid |
//! | `ask-as-moved` | on `ASK`, refreshes the slot map (`CLUSTER SLOTS`) and resends to the slot's owner per the map, the source, never visiting the `ASK` target (old redis-rs) | the source answers `ASK` again until the migration ends: the op fails at the hop limit (path `ASK A→B`, `ASK A→B`, ..., each from A again) | `ask-as-moved`, cause `client`: invalid |
//! | `retry-without-info` | after a timeout, resends the op and records the last reply as its outcome, or `fail` when none came: never `info` | the first attempt is applied when the node answers again | `aborted-read` (a read of a value whose write was recorded `fail`): invalid |
//! | `stale-moved` | after a `MOVED` updated the map, sends its next op on that slot to the old owner once more | the old owner answers `MOVED` again: no wrong value | `stale-route`, cause `client`: invalid |
//! | `no-asking-in-multi` | follows `ASK` for a `MULTI`/`EXEC` transaction by resending it to the target without `ASKING` | the target answers `MOVED` back to the source for each queued command and `EXECABORT` for `EXEC`; the source answers `ASK` again: no wrong value, the transaction fails at the hop limit | `ask-without-asking`, cause `client`: invalid |
//! | `tryagain-as-fail-after-apply` | after a `TRYAGAIN` hop, the retry is applied and answered, but the client records the op as `fail` with the `TRYAGAIN` text | the retry ran: a later read sees the value of a write recorded `fail` | `aborted-read`, cause `server`, with `redirect-after-apply` (server) beside it: the recorded `fail` carries the server's `TRYAGAIN` text, so the history cannot tell this client from a server that applied and then answered `TRYAGAIN`; `final-state-mismatch` where the applied value stayed last: invalid (measured 3/3 seeds on Redis 7.0 and Valkey 9.1, `tests/txn.rs`) |
//! | `write-to-replica` | sends writes to a replica of the slot's master, after `READONLY` | the replica answers `MOVED` to `SET` and refuses the CAS script's write (`READONLY` on Redis 7.0, a non-local-key error on Valkey 9.1): no write lands on a replica, no value is wrong | `stale-route` (every write goes back to the replica that already redirected it), cause `client`: invalid |
//! | `pipeline-ask-drop` | inside a pipeline (`--pipeline 2` or more), takes a command's `ASK` for its empty success (`OK` for a write, nil for a read) and never resends it | nothing: the target never sees the command, the source never applied it | `lost-write` (an acknowledged `SET` is gone), with `stale-read` beside it (measured: both on every seed of 4, on Redis 7.0 and Valkey 9.1; cause `migration`, since no hop is recorded); a CAS answered `OK` is `info` |
//!
//! Five of the eight cannot produce a wrong value against a correct server, by the protocol's
//! design: a node serves a slot only if it owns it (or imports it and was sent `ASKING`), and a
//! replica never applies a client's write. The checker still sees them, in the hops the history
//! records, as the redirect anomalies above; `retry-without-info`, `pipeline-ask-drop` and
//! `tryagain-as-fail-after-apply` break linearizability, and every anomaly makes the verdict
//! invalid, whatever its cause.

use crate::router::{Execution, OpError};
use crate::slotmap::SlotMap;
use checker::RedirectKind;
use redis::{Arg, Cmd, RedisError, Value};
use serde::Serialize;
use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

/// The error `tryagain-as-fail-after-apply` records: the reply Redis gives to a multi-key command
/// on a slot whose keys are split between source and target.
const TRYAGAIN_TEXT: &str = "TRYAGAIN Multiple keys request during rehashing of slot";
/// How many times `retry-without-info` resends an op after a timeout before recording `fail`.
pub const RETRIES_MAX: u32 = 2;
/// Least time between two slot-map refreshes `write-to-replica` asks for while it knows no
/// replica: `CLUSTER SLOTS` lists a replica only once its replication offset is not 0, that
/// is after the first write to its master.
const REPLICA_REFRESH_MS: u64 = 200;

/// One injected client bug (see the module doc for what each does and what it leads to).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ClientBug {
    /// Follows `ASK` to the importing node without sending `ASKING` first.
    AskWithoutAsking,
    /// Treats `ASK` as a reason to refresh the slot map and resends to the owner it names (the
    /// source), never to the importing node.
    AskAsMoved,
    /// Resends an op after a timeout and records the last reply, or `fail`: never `info`.
    RetryWithoutInfo,
    /// Sends the next op on a slot to its old owner once more after a `MOVED` updated the map.
    StaleMoved,
    /// Sends writes for a slot to a replica of its master, after `READONLY`.
    WriteToReplica,
    /// Takes an `ASK` answered to a command inside a pipeline for the command's empty success
    /// (`OK` for a write, nil for a read) instead of resending it with `ASKING`.
    PipelineAskDrop,
    /// Follows `ASK` for a transaction without `ASKING` before `MULTI`.
    NoAskingInMulti,
    /// Records an op that succeeded after a `TRYAGAIN` hop as `fail`, with the `TRYAGAIN` text.
    TryagainAsFailAfterApply,
}

impl ClientBug {
    /// Every bug, in a fixed order.
    pub const ALL: [ClientBug; 8] = [
        ClientBug::AskWithoutAsking,
        ClientBug::AskAsMoved,
        ClientBug::RetryWithoutInfo,
        ClientBug::StaleMoved,
        ClientBug::WriteToReplica,
        ClientBug::PipelineAskDrop,
        ClientBug::NoAskingInMulti,
        ClientBug::TryagainAsFailAfterApply,
    ];

    /// The command-line name.
    pub fn name(self) -> &'static str {
        match self {
            ClientBug::AskWithoutAsking => "ask-without-asking",
            ClientBug::AskAsMoved => "ask-as-moved",
            ClientBug::RetryWithoutInfo => "retry-without-info",
            ClientBug::StaleMoved => "stale-moved",
            ClientBug::WriteToReplica => "write-to-replica",
            ClientBug::PipelineAskDrop => "pipeline-ask-drop",
            ClientBug::NoAskingInMulti => "no-asking-in-multi",
            ClientBug::TryagainAsFailAfterApply => "tryagain-as-fail-after-apply",
        }
    }

    /// One line on what the client does wrong.
    pub fn description(self) -> &'static str {
        match self {
            ClientBug::AskWithoutAsking => "follows ASK to the importing node without ASKING",
            ClientBug::AskAsMoved => {
                "treats ASK as a reason to refresh the slot map (CLUSTER SLOTS) and resends to the \
                 owner it names, the source, never to the ASK target"
            }
            ClientBug::RetryWithoutInfo => {
                "resends an op after a timeout and records the last reply (or fail), never info"
            }
            ClientBug::StaleMoved => {
                "sends its next op on a slot to the old owner once more after a MOVED"
            }
            ClientBug::WriteToReplica => {
                "sends writes to a replica of the slot's master (READONLY)"
            }
            ClientBug::PipelineAskDrop => {
                "takes an ASK inside a pipeline for the command's empty success (OK for a write, \
                 nil for a read) and never resends it (needs --pipeline 2 or more)"
            }
            ClientBug::NoAskingInMulti => {
                "follows ASK for a MULTI/EXEC transaction by resending it to the target without \
                 ASKING"
            }
            ClientBug::TryagainAsFailAfterApply => {
                "records an op whose retry after TRYAGAIN succeeded as fail, with the TRYAGAIN text"
            }
        }
    }

    /// The anomaly class the checker reports when this bug is on.
    pub fn expected(self) -> &'static str {
        match self {
            ClientBug::AskWithoutAsking | ClientBug::NoAskingInMulti => "ask-without-asking",
            ClientBug::AskAsMoved => "ask-as-moved",
            ClientBug::RetryWithoutInfo | ClientBug::TryagainAsFailAfterApply => "aborted-read",
            ClientBug::StaleMoved | ClientBug::WriteToReplica => "stale-route",
            ClientBug::PipelineAskDrop => "lost-write",
        }
    }

    /// Whether the bug can make the history non-linearizable; the others only misroute
    /// requests that a correct server refuses (see the module doc): their anomalies are in the
    /// recorded hops, and make the verdict invalid all the same.
    pub fn breaks_linearizability(self) -> bool {
        matches!(
            self,
            ClientBug::RetryWithoutInfo
                | ClientBug::PipelineAskDrop
                | ClientBug::TryagainAsFailAfterApply
        )
    }

    /// Whether the bug only shows when commands are pipelined (`--pipeline` of 2 or more).
    pub fn needs_pipeline(self) -> bool {
        self == ClientBug::PipelineAskDrop
    }

    /// Whether the bug needs replicas in the cluster to do anything.
    pub fn needs_replicas(self) -> bool {
        self == ClientBug::WriteToReplica
    }

    /// What the workload `cfg` lacks for the bug to show, if anything: transactions sent as
    /// `MULTI`/`EXEC` (`no-asking-in-multi`), or multi-key ops that can meet `TRYAGAIN`
    /// (`tryagain-as-fail-after-apply`).
    pub fn needs_workload(self, cfg: &crate::WorkloadConfig) -> Option<&'static str> {
        let multi = cfg.kind.has_transactions() && cfg.txn == crate::TxnMode::Multi;
        let register_multi = cfg.kind == crate::WorkloadKind::Register && cfg.multi_weight > 0;
        let multi_key = cfg.slots > 0 && (cfg.kind.has_transactions() || register_multi);
        match self {
            ClientBug::NoAskingInMulti if !multi => {
                Some("MULTI/EXEC transactions: --workload list-append or rw-register, --txn multi")
            }
            ClientBug::TryagainAsFailAfterApply if !multi_key => Some(
                "multi-key ops: --slots 1 or more with the register workload, or a transaction \
                 workload",
            ),
            _ => None,
        }
    }

    /// Whether the bug only shows when requests time out (a fault must make them).
    pub fn needs_timeouts(self) -> bool {
        self == ClientBug::RetryWithoutInfo
    }
}

impl fmt::Display for ClientBug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ClientBug {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        crate::named::parse_name(&ClientBug::ALL, ClientBug::name, s, "client bug", "")
    }
}

/// A command sent before the op's command in the same pipeline.
pub(crate) type Prefix = Option<&'static str>;

/// What a router with a bug on remembers between ops, and the decisions the bug changes.
#[derive(Debug, Default)]
pub(crate) struct BugState {
    bug: Option<ClientBug>,
    /// `stale-moved`: the old owner of each slot whose `MOVED` this router followed, to be sent
    /// the next op on that slot.
    stale_once: HashMap<u16, String>,
    /// `write-to-replica`: when this router last asked for a refresh to learn replicas.
    refreshed: Option<Instant>,
}

impl BugState {
    /// The state of a router with `bug` on (or none).
    pub(crate) fn new(bug: Option<ClientBug>) -> BugState {
        BugState {
            bug,
            stale_once: HashMap::new(),
            refreshed: None,
        }
    }

    /// Where the bug sends an op first instead of the slot's owner, and with which prefix.
    pub(crate) fn first_hop(
        &mut self,
        slot: u16,
        cmd: &Cmd,
        map: &SlotMap,
    ) -> Option<(String, Prefix)> {
        match self.bug? {
            ClientBug::StaleMoved => self.stale_once.remove(&slot).map(|old| (old, None)),
            ClientBug::WriteToReplica if is_write(cmd) => {
                map.replica(slot).map(|r| (r.to_string(), Some("READONLY")))
            }
            _ => None,
        }
    }

    /// Whether the router should refresh its slot map before routing `cmd` for `slot`:
    /// `write-to-replica` knows no replica of the slot yet (at most every
    /// [`REPLICA_REFRESH_MS`]).
    pub(crate) fn wants_refresh(&mut self, slot: u16, cmd: &Cmd, map: &SlotMap) -> bool {
        let due = self
            .refreshed
            .is_none_or(|at| at.elapsed() >= Duration::from_millis(REPLICA_REFRESH_MS));
        let want = self.bug == Some(ClientBug::WriteToReplica)
            && is_write(cmd)
            && map.replica(slot).is_none()
            && due;
        if want {
            self.refreshed = Some(Instant::now());
        }
        want
    }

    /// Notes that a `MOVED` moved `slot` from `old` (the map's owner before) to `new`.
    pub(crate) fn moved(&mut self, slot: u16, old: Option<String>, new: &str) {
        if self.bug == Some(ClientBug::StaleMoved) {
            if let Some(old) = old.filter(|o| o != new) {
                self.stale_once.insert(slot, old);
            }
        }
    }

    /// The prefix of a request that follows an `ASK` to its target.
    pub(crate) fn ask_prefix(&self) -> Prefix {
        match self.bug {
            Some(ClientBug::AskWithoutAsking) => None,
            _ => Some("ASKING"),
        }
    }

    /// Whether the router follows an `ASK` for a transaction without `ASKING`.
    pub(crate) fn txn_drops_asking(&self) -> bool {
        self.bug == Some(ClientBug::NoAskingInMulti)
    }

    /// The op's execution as the client reports it: as it ended, unless
    /// `tryagain-as-fail-after-apply` turns a success after a `TRYAGAIN` hop into a `fail`.
    pub(crate) fn finished(&self, done: Execution) -> Execution {
        (self.finisher())(done)
    }

    /// [`Self::finished`] as a value of its own, for paths that report ops through a callback
    /// (pipelines) while the router is borrowed.
    pub(crate) fn finisher(&self) -> impl Fn(Execution) -> Execution + Send + Copy {
        let bug = self.bug;
        move |mut done: Execution| {
            let retried = done
                .redirects
                .iter()
                .any(|h| h.kind == RedirectKind::TryAgain);
            if bug == Some(ClientBug::TryagainAsFailAfterApply) && retried && done.result.is_ok() {
                done.result = Err(OpError::Fail(TRYAGAIN_TEXT.into()));
            }
            done
        }
    }

    /// Whether an `ASK` makes the router refresh its slot map and resend to the owner it names
    /// (the source) instead of following the `ASK` to its target.
    pub(crate) fn ask_refreshes_map(&self) -> bool {
        self.bug == Some(ClientBug::AskAsMoved)
    }

    /// `pipeline-ask-drop`: the reply the client makes up for `cmd` when the server answered
    /// it `err` inside a pipeline and `err` is an `ASK` (`OK` for a write, nil for a read);
    /// `None` (follow the reply) for every other error and for a correct client.
    pub(crate) fn dropped_ask(&self, err: &RedisError, cmd: &Cmd) -> Option<Value> {
        let ask = matches!(
            crate::router::classify(err),
            crate::router::Action::Ask { .. }
        );
        if self.bug != Some(ClientBug::PipelineAskDrop) || !ask {
            return None;
        }
        Some(if is_write(cmd) {
            Value::Okay
        } else {
            Value::Nil
        })
    }

    /// What to do after the request may have been lost (`text` says how): `Ok` to resend it to
    /// the same node, else the op's error. A correct client says `info`; `retry-without-info`
    /// resends up to [`RETRIES_MAX`] times and then says `fail`.
    pub(crate) fn after_lost(&self, resent: &mut u32, text: String) -> Result<(), OpError> {
        if self.bug != Some(ClientBug::RetryWithoutInfo) {
            return Err(OpError::Info(text));
        }
        if *resent < RETRIES_MAX {
            *resent += 1;
            return Ok(());
        }
        Err(OpError::Fail(format!("{text} (resent {resent} times)")))
    }
}

/// Whether `cmd` writes: anything but `GET`, `MGET` and `LRANGE` (the workloads' reads).
pub(crate) fn is_write(cmd: &Cmd) -> bool {
    match cmd.args_iter().next() {
        Some(Arg::Simple(name)) => !["GET", "MGET", "LRANGE"]
            .iter()
            .any(|read| name.eq_ignore_ascii_case(read.as_bytes())),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for bug in ClientBug::ALL {
            assert_eq!(bug.name().parse::<ClientBug>(), Ok(bug));
            assert_eq!(serde_json::to_value(bug).unwrap(), bug.name());
        }
        let err = "ask-twice".parse::<ClientBug>().unwrap_err();
        assert!(
            err.contains("ask-twice") && err.contains("stale-moved"),
            "{err}"
        );
    }

    #[test]
    fn correct_router_decisions() {
        let mut s = BugState::new(None);
        let map = SlotMap::new();
        assert_eq!(s.first_hop(1, &redis::cmd("SET"), &map), None);
        assert_eq!(s.ask_prefix(), Some("ASKING"));
        assert!(!s.ask_refreshes_map());
        s.moved(1, Some("a:1".into()), "b:1");
        assert_eq!(s.first_hop(1, &redis::cmd("GET"), &map), None);
        assert_eq!(
            s.after_lost(&mut 0, "timeout".into()),
            Err(OpError::Info("timeout".into()))
        );
    }

    #[test]
    fn ask_bugs_drop_asking() {
        let s = BugState::new(Some(ClientBug::AskWithoutAsking));
        assert_eq!(s.ask_prefix(), None);
        assert!(!s.ask_refreshes_map());
        let s = BugState::new(Some(ClientBug::AskAsMoved));
        assert!(
            s.ask_refreshes_map(),
            "never reaches the target, so no prefix matters"
        );
        assert_eq!(ClientBug::AskWithoutAsking.expected(), "ask-without-asking");
        assert_eq!(ClientBug::AskAsMoved.expected(), "ask-as-moved");
    }

    #[test]
    fn stale_moved_goes_back_once() {
        let mut s = BugState::new(Some(ClientBug::StaleMoved));
        let map = SlotMap::new();
        let get = redis::cmd("GET");
        s.moved(7, Some("a:1".into()), "a:1");
        assert_eq!(s.first_hop(7, &get, &map), None, "no change, nothing stale");
        s.moved(7, Some("a:1".into()), "b:1");
        assert_eq!(s.first_hop(7, &get, &map), Some(("a:1".into(), None)));
        assert_eq!(s.first_hop(7, &get, &map), None, "only once");
    }

    #[test]
    fn retry_without_info_resends_then_fails() {
        let s = BugState::new(Some(ClientBug::RetryWithoutInfo));
        let mut resent = 0;
        assert_eq!(s.after_lost(&mut resent, "t".into()), Ok(()));
        assert_eq!(s.after_lost(&mut resent, "t".into()), Ok(()));
        assert_eq!(
            s.after_lost(&mut resent, "t".into()),
            Err(OpError::Fail("t (resent 2 times)".into()))
        );
    }

    #[test]
    fn pipeline_ask_drop_takes_ask_for_success() {
        let error = |line: &str| -> RedisError {
            match redis::parse_redis_value(format!("-{line}\r\n").as_bytes()).unwrap() {
                Value::ServerError(e) => e.into(),
                other => panic!("not an error: {other:?}"),
            }
        };
        let ask = error("ASK 12 127.0.0.1:30002");
        let moved = error("MOVED 12 127.0.0.1:30002");
        let set = redis::cmd("SET").arg("k").arg(1).clone();
        let get = redis::cmd("GET").arg("k").clone();
        let s = BugState::new(Some(ClientBug::PipelineAskDrop));
        assert_eq!(s.dropped_ask(&ask, &set), Some(Value::Okay));
        assert_eq!(s.dropped_ask(&ask, &get), Some(Value::Nil));
        assert_eq!(s.dropped_ask(&moved, &set), None, "only ASK is dropped");
        assert_eq!(BugState::new(None).dropped_ask(&ask, &set), None);
        assert!(ClientBug::PipelineAskDrop.needs_pipeline());
        assert_eq!(ClientBug::PipelineAskDrop.expected(), "lost-write");
    }

    #[test]
    fn txn_bugs() {
        let exec = |kinds: &[RedirectKind]| Execution {
            result: Ok(redis::Value::Okay),
            node: "a:1".into(),
            slot: 3,
            redirects: kinds
                .iter()
                .map(|&kind| checker::Redirect {
                    kind,
                    slot: 3,
                    from: "a:1".into(),
                    to: "a:1".into(),
                })
                .collect(),
            gave_up: None,
        };
        let correct = BugState::new(None);
        assert!(!correct.txn_drops_asking());
        let retried = exec(&[RedirectKind::TryAgain]);
        assert_eq!(correct.finished(retried.clone()), retried);
        let s = BugState::new(Some(ClientBug::TryagainAsFailAfterApply));
        assert_eq!(
            s.finished(retried).result,
            Err(OpError::Fail(TRYAGAIN_TEXT.into()))
        );
        let asked = exec(&[RedirectKind::Ask]);
        assert_eq!(s.finished(asked.clone()), asked, "only after TRYAGAIN");
        assert!(BugState::new(Some(ClientBug::NoAskingInMulti)).txn_drops_asking());
    }

    #[test]
    fn writes_are_everything_but_get() {
        assert!(!is_write(redis::cmd("GET").arg("k")));
        assert!(!is_write(redis::cmd("get").arg("k")));
        assert!(!is_write(redis::cmd("MGET").arg("k").arg("j")));
        assert!(is_write(redis::cmd("MSET").arg("k").arg(1)));
        assert!(is_write(redis::cmd("SET").arg("k").arg(1)));
        assert!(is_write(redis::cmd("EVAL").arg("script").arg(1).arg("k")));
    }
}
