//! The redirect-protocol checker: every op's hops, checked against the Redis Cluster specification.
//!
//! An op's hops form a path. Each hop should start at the node the previous redirect named;
//! after `ASK A -> B` the client must send `ASKING` and the command to `B`, and go back to `A`
//! only for its next op. The anomalies, each with its [`Cause`]:
//!
//! - **ask-without-asking** (client): `ASK A -> B` straight followed by `MOVED B -> A`, while the
//!   history shows `B` importing the slot from `A` (no failover since the migration began): `B`
//!   answers `MOVED` to the owner only to a request without `ASKING`.
//! - **ask-as-moved** (client): after `ASK A -> B` the next attempt went to `A` again, with no fault
//!   at `B` to excuse it, and no `ASK` of the op was ever followed to its target: the client took
//!   the `ASK` for a reason to refresh its map (or as a `MOVED`) and never asked `B`. A return to
//!   `A` that the client then follows to `B` (redis-py resends a command redirected inside a
//!   pipeline alone, by its map) is a detour, counted as a bounce.
//! - **redirect-loop** (server, or unexplained when the client cannot be vouched for): a node
//!   that had already sent the op away sent it away again, the same way, after the redirect chain
//!   brought the client back to it: the nodes disagree on who serves the slot.
//!
//! All three are judged only where the cluster's view was unchanged while the op ran: no
//! migration step of its slot and no fault on a node of its path; a path that went back to the
//! source after `ASK` twice or more is judged whatever the migration did, unless a fault struck
//! the `ASK` target meanwhile. A bounce during a view change
//! that resolves (a failover, a finalizing migration) is convergence, counted in
//! [`PathCounts::bounces`], never an anomaly. Codis steps (PikiwiDB) are a router's own choice and
//! are not judged here.

use crate::anomaly::{Anomaly, AnomalyEvent};
use crate::cause::{Cause, CauseKind, Settings};
use crate::fault::Fault;
use crate::history::{History, Redirect, RedirectKind};
use crate::op::{line_of, Op};
use crate::phase::{Phase, Timeline};
use serde_json::json;
use std::collections::BTreeMap;

pub use crate::report::PathCounts;

/// How many protocol anomalies are listed; the rest are only counted.
pub const VIOLATIONS_LISTED_MAX: usize = 100;

/// The protocol anomalies of a history, counted in full, listed up to [`VIOLATIONS_LISTED_MAX`].
#[derive(Debug, Clone, Default)]
pub struct Violations {
    /// The listed anomalies.
    pub anomalies: Vec<Anomaly>,
    /// Every anomaly found, by class (listed or not).
    pub counts: BTreeMap<String, u64>,
    /// The anomalies found past the listed ones, by cause and class.
    pub unlisted: BTreeMap<CauseKind, BTreeMap<String, usize>>,
    /// The bounces and breaks that are no anomaly.
    pub paths: PathCounts,
}

/// What a history says about the cluster around one op.
struct Scene<'a> {
    history: &'a History,
    timeline: &'a Timeline,
    faults: &'a [Fault],
    settings: Settings,
}

/// Checks every op's path (see the module doc).
pub fn violations(
    history: &History,
    ops: &[Op],
    timeline: &Timeline,
    faults: &[Fault],
) -> Violations {
    let scene = Scene {
        history,
        timeline,
        faults,
        settings: Settings::of(history),
    };
    let mut out = Violations::default();
    for op in ops {
        let hops = &op.redirects;
        if hops.len() < 2 || hops.iter().any(|h| h.kind.is_codis()) {
            continue;
        }
        let shape = Shape::of(hops);
        if shape.is_straight() {
            continue;
        }
        if !scene.view_unchanged(op) && !scene.returns_again(op, &shape) {
            out.paths.bounces += u64::from(shape.bends());
            out.paths.breaks += u64::from(!shape.bends() && shape.broke);
            continue;
        }
        match scene.judge(op, &shape) {
            Some((class, cause)) => {
                *out.counts.entry(class.to_string()).or_default() += 1;
                if out.anomalies.len() < VIOLATIONS_LISTED_MAX {
                    out.anomalies.push(anomaly(history, op, class, cause));
                } else {
                    let by_class = out.unlisted.entry(cause.kind).or_default();
                    *by_class.entry(class.to_string()).or_default() += 1;
                }
            }
            None if shape.bends() => out.paths.bounces += 1,
            None => out.paths.breaks += 1,
        }
    }
    out
}

/// The notable turns of a path, by hop index.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Shape {
    /// First `i` with `ASK A -> B` at `i - 1` and `MOVED B -> A` at `i`.
    ask_moved: Option<usize>,
    /// First `i` with `ASK A -> B` at `i - 1` and hop `i` starting at `A` again.
    ask_return: Option<usize>,
    /// How many times the path went back to the source after an `ASK`.
    ask_returns: usize,
    /// First `(j, k)`: hop `k` repeats hop `j` (same node, kind and target), and the chain of
    /// redirects from `j` led the client back to that node.
    looped: Option<(usize, usize)>,
    /// Some hop started at a node the previous redirect did not name.
    broke: bool,
}

impl Shape {
    fn of(hops: &[Redirect]) -> Shape {
        let mut shape = Shape::default();
        // The first hop of the unbroken chain of redirects that ends at each hop.
        let mut chain_start = 0;
        for i in 1..hops.len() {
            let (prev, cur) = (&hops[i - 1], &hops[i]);
            let followed = prev.to.is_empty() || cur.from == prev.to;
            if !followed {
                chain_start = i;
                shape.broke = true;
            }
            // After `TRYAGAIN` (or `CLUSTERDOWN`) the client retries at the owner its map names:
            // no node sent it there, so the redirects start a new chain (a multi-key op on a
            // slot whose keys are split goes `ASK A -> B`, `TRYAGAIN` at B, `ASK A -> B` again).
            if matches!(
                prev.kind,
                RedirectKind::TryAgain | RedirectKind::ClusterDown
            ) {
                chain_start = i;
            }
            if prev.kind == RedirectKind::Ask {
                if followed && cur.kind == RedirectKind::Moved && cur.to == prev.from {
                    shape.ask_moved.get_or_insert(i);
                }
                if !followed && cur.from == prev.from {
                    shape.ask_return.get_or_insert(i);
                    shape.ask_returns += 1;
                }
            }
            if shape.looped.is_none() && matches!(cur.kind, RedirectKind::Moved | RedirectKind::Ask)
            {
                shape.looped = (chain_start..i)
                    .find(|&j| same_hop(&hops[j], cur))
                    .map(|j| (j, i));
            }
        }
        shape
    }

    /// No turn worth a look.
    fn is_straight(&self) -> bool {
        *self == Shape::default()
    }

    /// The path came back on itself.
    fn bends(&self) -> bool {
        self.ask_moved.is_some() || self.ask_return.is_some() || self.looped.is_some()
    }
}

/// Whether the op, after its return to the source at hop `from` (or later), followed some
/// `ASK A -> B` to `B`: that hop's next hop starts at `B`, or it was the last hop and `B`
/// answered the op. An `ASK` followed before the return excuses nothing after it.
fn asked_target(op: &Op, from: usize) -> bool {
    let hops = &op.redirects;
    hops.iter().enumerate().skip(from).any(|(i, h)| {
        h.kind == RedirectKind::Ask
            && match hops.get(i + 1) {
                Some(next) => next.from == h.to,
                None => op.node.as_deref() == Some(h.to.as_str()),
            }
    })
}

fn same_hop(a: &Redirect, b: &Redirect) -> bool {
    a.kind == b.kind && a.from == b.from && a.to == b.to && a.slot == b.slot
}

impl Scene<'_> {
    /// Whether the cluster's view of the op's slot stayed the same while it ran: no migration step
    /// of the slot, no fault active on a node of its path, and no failover anywhere.
    fn view_unchanged(&self, op: &Op) -> bool {
        let (first, last) = (op.invoke_event, op.complete_event);
        let last_event = last.unwrap_or(usize::MAX);
        let slot = op.redirects[0].slot;
        let migrating = self.timeline.migrations_of(slot).any(|m| {
            m.steps
                .iter()
                .any(|s| s.event > first && s.event < last_event)
        });
        let on_path = |node: &Option<String>| match node {
            None => true,
            Some(n) => op.redirects.iter().any(|h| &h.from == n || &h.to == n),
        };
        let faulted = self
            .faults
            .iter()
            .filter(|f| f.overlaps(first, last))
            .any(|f| f.f == "failover" || on_path(&f.node));
        !migrating && !faulted
    }

    /// Whether the op went back to the source after an `ASK` more than once with no fault on the
    /// `ASK` target while it ran: a correct client never does, whatever the migration does
    /// meanwhile (one return may follow a timeout at the target; two do not).
    fn returns_again(&self, op: &Op, shape: &Shape) -> bool {
        let Some(i) = shape.ask_return.filter(|_| shape.ask_returns >= 2) else {
            return false;
        };
        let target = &op.redirects[i - 1].to;
        !self
            .faults
            .iter()
            .filter(|f| f.overlaps(op.invoke_event, op.complete_event))
            .any(|f| f.f == "failover" || f.node.as_ref().is_none_or(|n| n == target))
    }

    /// The failover recorded after the slot's current migration began and before the op ended.
    fn failover_during_migration(&self, op: &Op, since: Option<usize>) -> Option<&Fault> {
        let since = since?;
        let until = op.complete_event.unwrap_or(usize::MAX);
        self.faults
            .iter()
            .find(|f| f.f == "failover" && f.begin_event > since && f.begin_event < until)
    }

    /// The class and cause of a path with a turn in a steady view, or `None` for a turn that
    /// breaks no rule.
    fn judge(&self, op: &Op, shape: &Shape) -> Option<(&'static str, Cause)> {
        let hops = &op.redirects;
        // A client that went back to the source but later sent the command to an `ASK` target
        // (redis-py's pipelines resend a redirected command alone, by their map) took a detour:
        // a bounce, not an `ASK` taken for a `MOVED`.
        if let Some(i) = shape.ask_return.filter(|&i| !asked_target(op, i)) {
            let (a, b) = (&hops[i - 1].from, &hops[i - 1].to);
            let why = format!(
                "after ASK {a} -> {b} the client went back to {a} instead of sending ASKING and the \
                 command to {b}, with no fault at {b}: it took the ASK for a MOVED or a reason to \
                 refresh its slot map"
            );
            return Some(("ask-as-moved", Cause::new(CauseKind::Client, why)));
        }
        if let Some(i) = shape.ask_moved {
            return self.judge_ask_moved(op, i, shape.looped.is_some());
        }
        let (j, k) = shape.looped?;
        let (x, y) = (&hops[j].from, &hops[j].to);
        let kind = hops[j].kind.name().to_uppercase();
        let back = &hops[k - 1].from;
        let why = format!(
            "{x} sent the op to {y} ({kind}) twice, and {back} sent it back to {x} in between, \
             while no migration step or fault changed the slot: the nodes disagree on who serves slot {}",
            hops[j].slot
        );
        Some(("redirect-loop", Cause::new(CauseKind::Server, why)))
    }

    /// `ASK A -> B` then `MOVED B -> A` at hop `i`.
    fn judge_ask_moved(&self, op: &Op, i: usize, looped: bool) -> Option<(&'static str, Cause)> {
        let (a, b) = (&op.redirects[i - 1].from, &op.redirects[i - 1].to);
        let slot = op.redirects[i].slot;
        let state = self
            .timeline
            .state_at(self.history, slot, op.invoke_event, None);
        let migrating = state.phase == Phase::Migrating
            && state.from.as_ref() == Some(a)
            && state.to.as_ref() == Some(b);
        let start = self
            .timeline
            .migrations_of(slot)
            .filter(|m| m.steps[0].event < op.invoke_event)
            .last()
            .map(|m| m.steps[0].event);
        let failover = self.failover_during_migration(op, start);
        let since = state
            .migration_line
            .map_or(String::new(), |l| format!(" (migration at line {l})"));
        if migrating && failover.is_none() && !self.settings.trusted_client {
            let why = format!(
                "{a} answered ASK to {b}, and {b}, which was importing slot {slot} from {a}{since}, \
                 answered MOVED back to {a}: an importing node does that only to a request \
                 without ASKING"
            );
            let cause = Cause::new(CauseKind::Client, why);
            let cause = match state.migration_line {
                Some(l) => cause.at(l),
                None => cause,
            };
            return Some(("ask-without-asking", cause));
        }
        if !looped {
            return None;
        }
        let lost_import = match failover {
            Some(f) => format!(
                "; {f} came while the slot was migrating, and a new master does not inherit \
                 IMPORTING/MIGRATING (Redis before 8.0: redis/redis#6339)"
            ),
            None => String::new(),
        };
        let disagree = format!(
            "{a} keeps sending the op to {b} by ASK for slot {slot} and {b} keeps refusing it \
             with MOVED back to {a}{lost_import}"
        );
        let cause = if self.settings.trusted_client {
            Cause::new(
                CauseKind::Server,
                format!("{disagree}; the client (slotcheck's router) sends ASKING with every ASK"),
            )
        } else {
            Cause::new(
                CauseKind::Unexplained,
                format!("{disagree}; either {b} no longer imports the slot, or the client did not send ASKING"),
            )
        };
        let cause = match failover {
            Some(f) => cause.at(f.begin_line),
            None => cause,
        };
        Some(("redirect-loop", cause))
    }
}

/// The path of hops as text, each hop from the node it left: `a -ASK-> b -MOVED-> a`, with
/// ` | ` where the client started again at a node no redirect named (`a -ASK-> b | a -ASK-> b`).
/// A path that goes round the same cycle is drawn once with its count:
/// `a -ASK-> b -MOVED-> a (x8 = 16 hops)`.
pub fn path(hops: &[Redirect]) -> String {
    let n = hops.len();
    let period = (1..=n / 2).find(|&p| (p..n).all(|i| same_hop(&hops[i], &hops[i - p])));
    match period {
        Some(p) => {
            let (rounds, rest) = (n / p, n % p);
            let mut s = format!("{} (x{rounds} = {n} hops)", drawn(&hops[..p]));
            if rest > 0 {
                s.push_str(&format!(" then {}", drawn(&hops[..rest])));
            }
            s
        }
        None => drawn(hops),
    }
}

/// Every hop of `hops`, as [`path`] draws them, with no cycle folded.
fn drawn(hops: &[Redirect]) -> String {
    let mut s = String::new();
    for (i, h) in hops.iter().enumerate() {
        let followed = i > 0 && (hops[i - 1].to.is_empty() || hops[i - 1].to == h.from);
        if !followed {
            if i > 0 {
                s.push_str(" | ");
            }
            s.push_str(&h.from);
        }
        let to = if h.to.is_empty() { &h.from } else { &h.to };
        s.push_str(&format!(" -{}-> {to}", h.kind.name().to_uppercase()));
    }
    s
}

fn anomaly(history: &History, op: &Op, class: &str, cause: Cause) -> Anomaly {
    let line = line_of(history, op.invoke_event);
    let drawn = path(&op.redirects);
    Anomaly {
        class: class.into(),
        keys: op.key.iter().cloned().collect(),
        events: vec![AnomalyEvent {
            event: op.invoke_event,
            line,
        }],
        explanation: format!(
            "line {line}: process {} {} went {drawn}, ending {}; {}",
            op.process,
            op.f,
            op.outcome.name(),
            cause.why
        ),
        data: json!({"path": drawn, "hops": op.redirects, "outcome": op.outcome.name()}),
        context: None,
        cause: Some(cause),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hops from a table: `kind from to`, one per `;`.
    fn hops(table: &str) -> Vec<Redirect> {
        table
            .split(';')
            .map(|h| {
                let c: Vec<&str> = h.split_whitespace().collect();
                Redirect {
                    kind: *RedirectKind::ALL.iter().find(|k| k.name() == c[0]).unwrap(),
                    slot: 5,
                    from: c[1].into(),
                    to: c[2].into(),
                }
            })
            .collect()
    }

    /// A path's turns: (ask_moved, ask_return, looped, broke).
    type Turns = (Option<usize>, Option<usize>, Option<(usize, usize)>, bool);

    fn shape(table: &str) -> Turns {
        let s = Shape::of(&hops(table));
        (s.ask_moved, s.ask_return, s.looped, s.broke)
    }

    /// The op of a history of one invoke and one `ok` at `node` with `table`'s hops.
    fn op_at(table: &str, node: &str) -> Op {
        let mut done = crate::history::Event::new(
            crate::history::EventType::Ok,
            crate::history::Process::Client(1),
            "read",
            serde_json::Value::Null,
            2,
        );
        done.key = Some("k".into());
        done.node = Some(node.into());
        done.redirects = hops(table);
        let mut invoke = done.clone();
        invoke.kind = crate::history::EventType::Invoke;
        invoke.time = 1;
        invoke.redirects.clear();
        let history = History {
            events: vec![invoke, done],
            ..History::default()
        };
        crate::op::Ops::from_history(&history)
            .unwrap()
            .ops
            .remove(0)
    }

    #[test]
    fn only_an_ask_followed_after_the_return_excuses_it() {
        // redis-py's detour: back to a once, then the second ASK is followed to b.
        assert!(asked_target(&op_at("ask a b; ask a b", "b"), 1));
        // Never at b: the ASK was taken for a MOVED.
        assert!(!asked_target(&op_at("ask a b; ask a b", "a"), 1));
        // An ASK followed before the return (b sent it back) excuses no later return.
        let later = op_at("ask a b; moved b a; ask a b; ask a b", "a");
        assert!(asked_target(&later, 0));
        assert!(!asked_target(&later, 3));
    }

    #[test]
    fn shapes() {
        assert_eq!(shape("moved a b; ask b c"), (None, None, None, false));
        assert_eq!(
            shape("tryagain a a; tryagain a a"),
            (None, None, None, false)
        );
        // No ASKING: the importing node sends the client back, and round it goes.
        assert_eq!(
            shape("ask a b; moved b a; ask a b; moved b a"),
            (Some(1), None, Some((0, 2)), false)
        );
        // ASK taken for a map refresh: back to the source, never to b.
        assert_eq!(shape("ask a b; ask a b"), (None, Some(1), None, true));
        assert_eq!(Shape::of(&hops("ask a b; ask a b; ask a b")).ask_returns, 2);
        // Two nodes that each name the other as the owner.
        assert_eq!(
            shape("moved a b; moved b a; moved a b"),
            (None, None, Some((0, 2)), false)
        );
        // A paused owner: two nodes send the client to it, a timeout in between is no loop.
        assert_eq!(
            shape("moved a p; moved b p; moved a p"),
            (None, None, None, true)
        );
        // A multi-key op on a half-moved slot: the importing node says TRYAGAIN, the retry at
        // the owner is ASKed there again. No node sent it back: no loop.
        assert_eq!(
            shape("ask a b; tryagain b a; ask a b; tryagain b a; ask a b"),
            (None, None, None, false)
        );
        // One bounce that resolves: a sends away twice, but the chain never returns to a again.
        assert_eq!(
            shape("ask a b; moved b a; ask a b"),
            (Some(1), None, Some((0, 2)), false)
        );
    }

    #[test]
    fn paths_are_drawn_from_the_node_each_hop_left() {
        assert_eq!(path(&hops("moved a b; ask b c")), "a -MOVED-> b -ASK-> c");
        assert_eq!(
            path(&hops("ask a b; ask a b; ask a b")),
            "a -ASK-> b (x3 = 3 hops)"
        );
        assert_eq!(drawn(&hops("ask a b; ask a b")), "a -ASK-> b | a -ASK-> b");
        assert_eq!(
            path(&hops("ask a b; moved b a; ask a b; moved b a; ask a b")),
            "a -ASK-> b -MOVED-> a (x2 = 5 hops) then a -ASK-> b"
        );
        assert_eq!(
            path(&hops("ask a b; moved b a; ask a b")),
            "a -ASK-> b -MOVED-> a -ASK-> b"
        );
    }
}
