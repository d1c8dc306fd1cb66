//! Redirect statistics: hops by slot and migration phase, give-ups, and the paths that turned.
//!
//! The redirect-protocol anomalies themselves (`ask-without-asking`, `ask-as-moved`,
//! `redirect-loop`) are judged in [`crate::protocol`]; here they are only counted.

use crate::history::{History, RedirectKind};
use crate::op::{Op, Outcome};
use crate::phase::Timeline;
use crate::slot::key_slot;

pub use crate::report::RedirectStats;

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

/// The kind of redirect the op's client gave up on: its structured `gave_up`, else (histories
/// written before it existed) a `fail` whose error text is a redirect reply.
pub fn gave_up_on(op: &Op) -> Option<RedirectKind> {
    match &op.gave_up {
        Some(g) => Some(g.kind),
        None if op.outcome == Outcome::Fail => op.error.as_deref().and_then(redirect_error),
        None => None,
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
        if let Some(kind) = gave_up_on(op) {
            stats.failed_on.add(kind);
        }
        if op.redirects.is_empty() {
            continue;
        }
        stats.ops_redirected += 1;
        stats.hops_max = stats.hops_max.max(op.redirects.len());
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

#[cfg(test)]
mod tests {
    use super::*;

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
