//! Redirect statistics, and the `redirect-loop` anomaly.
//!
//! **redirect-loop**: an op's hops show the cluster sending a client round in circles. Two
//! shapes: a *MOVED ping-pong*, where following `MOVED`/`ASK` replies brings the client back to
//! a node it already asked (the nodes disagree on who owns the slot), and an *ASK after ASK*,
//! where the node an `ASK` pointed to (asked with `ASKING`) answered with another `ASK`. Neither
//! breaks linearizability by itself; both show slot ownership in disarray, and a client without
//! a hop limit would never finish. TRYAGAIN and CLUSTERDOWN retries stay on one node and are
//! not loops; nor are a Codis router's steps (`mgrt-one`, `wrapper-*`), which its slot table
//! chooses, not the servers: `wrapper-retry` asks the same source again by design.

use crate::anomaly::{Anomaly, AnomalyEvent};
use crate::history::{History, Redirect, RedirectKind};
use crate::op::{line_of, Op, Outcome};
use crate::phase::Timeline;
use crate::report::RedirectCounts;
use crate::slot::key_slot;
use serde::Serialize;
use serde_json::json;
use std::collections::BTreeMap;
use std::fmt;

/// How many redirect-loop anomalies are listed; the rest are only counted.
pub const LOOPS_LISTED_MAX: usize = 100;

/// Redirect hops by slot, by the slot's migration phase, and how ops that met them ended.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RedirectStats {
    /// Ops that followed at least one hop.
    pub ops_redirected: u64,
    /// The most hops one op followed.
    pub hops_max: usize,
    /// Hops by slot (the slot the reply named).
    pub by_slot: BTreeMap<u16, RedirectCounts>,
    /// Hops by the migration phase of their slot when the op was invoked.
    pub by_phase: BTreeMap<&'static str, RedirectCounts>,
    /// `fail` ops whose error was a redirect the client gave up on, by kind.
    pub failed_on: RedirectCounts,
    /// Ops whose hops looped (listed or not).
    pub loops: u64,
}

/// The redirect kind an error text names (`MOVED 3999 host:port`, `ASK ...`, `TRYAGAIN ...`,
/// and the Codis router's `MGRT-ONE ...`, `WRAPPER-RETRY ...`, `WRAPPER-ERROR ...`).
pub fn redirect_error(error: &str) -> Option<RedirectKind> {
    let word = last_reply(error).trim_start().trim_start_matches('-');
    let word = word.split_whitespace().next().unwrap_or("");
    match word.to_ascii_uppercase().as_str() {
        "MOVED" => Some(RedirectKind::Moved),
        "ASK" => Some(RedirectKind::Ask),
        "TRYAGAIN" => Some(RedirectKind::TryAgain),
        "CLUSTERDOWN" => Some(RedirectKind::ClusterDown),
        // slotcheck's Codis router names the step that failed the op first.
        "MGRT-ONE" => Some(RedirectKind::MgrtOne),
        "WRAPPER-RETRY" => Some(RedirectKind::WrapperRetry),
        "WRAPPER-ERROR" => Some(RedirectKind::WrapperError),
        _ => None,
    }
}

/// The reply an op's error names: slotcheck's router records a redirect it gave up on at its
/// hop limit as `gave up after N hops: MOVED ...`.
pub fn last_reply(error: &str) -> &str {
    match error.strip_prefix("gave up after ") {
        Some(rest) => rest.split_once(": ").map_or(error, |(_, reply)| reply),
        None => error,
    }
}

/// The op's slot: recorded, else computed from its key.
pub fn op_slot(op: &Op) -> Option<u16> {
    op.slot
        .or_else(|| op.redirects.first().map(|r| r.slot))
        .or_else(|| op.key.as_deref().map(|k| key_slot(k.as_bytes())))
}

/// Counts every op's hops.
pub fn redirect_stats(history: &History, ops: &[Op], timeline: &Timeline) -> RedirectStats {
    let mut stats = RedirectStats::default();
    for op in ops {
        if op.outcome == Outcome::Fail {
            if let Some(kind) = op.error.as_deref().and_then(redirect_error) {
                stats.failed_on.add(kind);
            }
        }
        if op.redirects.is_empty() {
            continue;
        }
        stats.ops_redirected += 1;
        stats.hops_max = stats.hops_max.max(op.redirects.len());
        if loop_of(&op.redirects).is_some() {
            stats.loops += 1;
        }
        for hop in &op.redirects {
            stats.by_slot.entry(hop.slot).or_default().add(hop.kind);
            let phase = timeline
                .state_at(history, hop.slot, op.invoke_event, None)
                .phase;
            stats
                .by_phase
                .entry(phase.name())
                .or_default()
                .add(hop.kind);
        }
    }
    stats
}

/// Renders as a few lines: totals, then the busiest slots and the phases.
impl fmt::Display for RedirectStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = |r: &RedirectCounts| r.to_string();
        write!(
            f,
            "redirected ops: {} (at most {} hops; {} loops); failed on a redirect: {}",
            self.ops_redirected,
            self.hops_max,
            self.loops,
            c(&self.failed_on)
        )?;
        for (phase, counts) in &self.by_phase {
            write!(f, "\n  during {phase}: {}", c(counts))?;
        }
        let mut busiest: Vec<(&u16, &RedirectCounts)> = self.by_slot.iter().collect();
        busiest.sort_by_key(|(slot, r)| (std::cmp::Reverse(r.total()), **slot));
        for (slot, counts) in busiest.into_iter().take(5) {
            write!(f, "\n  slot {slot}: {}", c(counts))?;
        }
        Ok(())
    }
}

/// Why an op's hops form a loop: its shape and the node where it closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Loop {
    /// `moved-ping-pong` or `ask-after-ask`.
    pub shape: &'static str,
    /// The node revisited, or the node that answered ASK to an ASKING request.
    pub node: String,
}

/// The first loop in `hops`, if any (see the module doc).
pub fn loop_of(hops: &[Redirect]) -> Option<Loop> {
    let moves: Vec<&Redirect> = hops
        .iter()
        .filter(|h| matches!(h.kind, RedirectKind::Moved | RedirectKind::Ask))
        .collect();
    for pair in moves.windows(2) {
        if pair[0].kind == RedirectKind::Ask && pair[1].kind == RedirectKind::Ask {
            return Some(Loop {
                shape: "ask-after-ask",
                node: pair[1].from.clone(),
            });
        }
    }
    let mut seen: Vec<&str> = moves.first().map(|h| h.from.as_str()).into_iter().collect();
    for hop in &moves {
        if seen.contains(&hop.to.as_str()) {
            return Some(Loop {
                shape: "moved-ping-pong",
                node: hop.to.clone(),
            });
        }
        seen.push(&hop.to);
    }
    None
}

/// The path of hops as text: `a -MOVED-> b -ASK-> c`.
fn path(hops: &[Redirect]) -> String {
    let mut s = hops.first().map(|h| h.from.clone()).unwrap_or_default();
    for h in hops {
        s.push_str(&format!(" -{}-> {}", h.kind.name().to_uppercase(), h.to));
    }
    s
}

/// One `redirect-loop` anomaly per op whose hops loop, at most [`LOOPS_LISTED_MAX`].
pub fn redirect_loop_cases(history: &History, ops: &[Op]) -> Vec<Anomaly> {
    let mut out = Vec::new();
    for op in ops {
        if out.len() >= LOOPS_LISTED_MAX {
            break;
        }
        let Some(l) = loop_of(&op.redirects) else {
            continue;
        };
        let line = line_of(history, op.invoke_event);
        let why = match l.shape {
            "ask-after-ask" => format!(
                "{} answered ASK to a request it was sent by an ASK: two nodes each think the other imports the slot",
                l.node
            ),
            _ => format!(
                "the client came back to {}, which had already sent it away: the nodes disagree on who owns slot {}",
                l.node,
                op.redirects[0].slot
            ),
        };
        out.push(Anomaly {
            class: "redirect-loop".into(),
            keys: op.key.iter().cloned().collect(),
            events: vec![AnomalyEvent {
                event: op.invoke_event,
                line,
            }],
            explanation: format!(
                "line {line}: process {} {} went {}; {why} ({})",
                op.process,
                op.f,
                path(&op.redirects),
                l.shape
            ),
            data: json!({"shape": l.shape, "node": l.node, "hops": op.redirects,
                         "outcome": op.outcome.name()}),
            context: None,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hops(table: &str) -> Vec<Redirect> {
        // kind from to, one hop per `;`
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

    #[test]
    fn loops() {
        let shape = |t: &str| loop_of(&hops(t)).map(|l| (l.shape, l.node));
        assert_eq!(shape("moved a b"), None);
        assert_eq!(shape("moved a b; ask b c"), None);
        assert_eq!(shape("tryagain a a; tryagain a a; moved a b"), None);
        assert_eq!(
            shape("moved a b; moved b a"),
            Some(("moved-ping-pong", "a".to_string()))
        );
        assert_eq!(
            shape("ask a b; ask b c"),
            Some(("ask-after-ask", "b".to_string()))
        );
        assert_eq!(
            shape("moved a b; ask b c; moved c b"),
            Some(("moved-ping-pong", "b".to_string()))
        );
        assert_eq!(path(&hops("moved a b; ask b c")), "a -MOVED-> b -ASK-> c");
        // A Codis router asking the source again and again, then going to the target.
        assert_eq!(
            shape("wrapper-retry a a; wrapper-retry a a; wrapper-moved a b"),
            None
        );
        assert_eq!(shape("wrapper-moved a b; mgrt-one b a; mgrt-one a b"), None);
        assert_eq!(
            path(&hops("wrapper-retry a a; wrapper-moved a b")),
            "a -WRAPPER-RETRY-> a -WRAPPER-MOVED-> b"
        );
    }

    #[test]
    fn redirect_errors() {
        let table = [
            ("MOVED 3999 127.0.0.1:6381", Some(RedirectKind::Moved)),
            ("-ASK 1 a:1", Some(RedirectKind::Ask)),
            (
                "TRYAGAIN Multiple keys request during rehashing of slot",
                Some(RedirectKind::TryAgain),
            ),
            (
                "CLUSTERDOWN The cluster is down",
                Some(RedirectKind::ClusterDown),
            ),
            ("timeout", None),
            ("ERR moved", None),
            (
                "gave up after 16 hops: CLUSTERDOWN The cluster is down",
                Some(RedirectKind::ClusterDown),
            ),
            (
                "gave up after 16 hops: MOVED 7 a:1",
                Some(RedirectKind::Moved),
            ),
            ("gave up after 2 hops: ERR x", None),
            (
                "gave up after 16 hops: WRAPPER-RETRY key \"k\" (slot 5) is still migrating",
                Some(RedirectKind::WrapperRetry),
            ),
            (
                "WRAPPER-ERROR SLOTSMGRT-EXEC-WRAPPER answered -1",
                Some(RedirectKind::WrapperError),
            ),
            (
                "MGRT-ONE ERR migrate slot error",
                Some(RedirectKind::MgrtOne),
            ),
        ];
        for (text, want) in table {
            assert_eq!(redirect_error(text), want, "{text}");
        }
    }
}
