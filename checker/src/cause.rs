//! Why an anomaly happened, as far as the history can prove it.
//!
//! Every anomaly and every invalid key gets a [`Cause`]: its [`CauseKind`], one sentence of proof
//! and the line of the fault or migration it rests on. The kinds, in the order a reader should
//! look at them:
//!
//! - **unexplained**: nothing recorded accounts for it: a bug in the servers, until shown
//!   otherwise;
//! - **migration**: it touches a slot that was migrating (or had just been finalized, aborted or
//!   repaired) around its ops, and no documented loss accounts for it;
//! - **server**: the servers broke the protocol (nodes that disagree on a slot's owner, a redirect
//!   after the write applied);
//! - **client**: the client broke the redirect protocol (no `ASKING`, back to the source after
//!   `ASK`, a stale slot map);
//! - **client-resend**: a non-idempotent op applied twice: the client sent it again after losing
//!   the reply;
//! - **documented-loss**: a loss the chosen faults cause by design: a kill with persistence off,
//!   a `FORCE`/`TAKEOVER` or automatic failover, a partitioned master (asynchronous replication).
//!
//! A cause never clears an anomaly: the verdict counts every one, and the cause says where to look.

pub use crate::anomaly::{Cause, CauseKind};

use crate::fault::Fault;
use crate::history::History;
use crate::op::line_of;
use crate::phase::{Phase, Timeline};
use serde_json::Value;

/// The run's settings that decide which faults lose data by design, read from the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// Nodes keep every acknowledged write on disk (`appendonly yes`, `appendfsync always`).
    pub aof: bool,
    /// Masters have replicas, so a fault can promote one.
    pub replicas: bool,
    /// How long a master may be unreachable before a replica takes over (0: unknown, any).
    pub node_timeout_ms: u64,
    /// The client is slotcheck's own router with no injected bug: it follows the protocol.
    pub trusted_client: bool,
}

impl Settings {
    /// Reads the settings from `history`'s header; a history without one (or older than the
    /// `persistence` field) ran with persistence off, an unknown node timeout and an unknown
    /// client.
    pub fn of(history: &History) -> Settings {
        let run = history.header.as_ref().map(|h| &h.run);
        let field = |name: &str| run.and_then(|r| r.get(name));
        let client = field("client")
            .and_then(|c| c.get("name"))
            .and_then(Value::as_str);
        Settings {
            aof: field("persistence").and_then(Value::as_str) == Some("aof"),
            replicas: field("replicas").and_then(Value::as_u64).unwrap_or(0) > 0,
            node_timeout_ms: field("node_timeout_ms")
                .and_then(Value::as_u64)
                .unwrap_or(0),
            trusted_client: client == Some("slotcheck") && field("client_bug").is_none(),
        }
    }
}

/// The header's nodes reached through a proxy of ours: proxy address to the node's own.
fn proxies(history: &History) -> std::collections::HashMap<String, String> {
    let nodes = history
        .header
        .as_ref()
        .and_then(|h| h.run.get("nodes"))
        .and_then(Value::as_array);
    nodes
        .into_iter()
        .flatten()
        .filter_map(|n| {
            let proxy = n.get("proxy")?.as_str()?;
            Some((proxy.to_string(), n.get("addr")?.as_str()?.to_string()))
        })
        .collect()
}

/// Why `fault` loses acknowledged writes by design under `settings`, or `None` if it does not.
/// `nodes` are the nodes the anomaly's ops met (empty: any node may be concerned): a kill, pause
/// or partition counts only on one of them, a failover anywhere.
pub fn documented_loss(
    fault: &Fault,
    history: &History,
    settings: Settings,
    nodes: &[&str],
) -> Option<String> {
    let value = history.event(fault.begin_event).map(|e| &e.value);
    let text = |name: &str| value.and_then(|v| v.get(name)).and_then(Value::as_str);
    // Cut off from clients only: the other nodes still see it, no replica is promoted.
    let from_clients = match value.and_then(|v| v.get("from")) {
        Some(Value::String(f)) => f == "clients",
        Some(Value::Array(a)) => a.iter().all(|f| f.as_str() == Some("clients")),
        _ => false,
    };
    let isolated: Vec<&str> = match value.and_then(|v| v.get("isolated")) {
        Some(Value::String(n)) => vec![n.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => fault.node.as_deref().into_iter().collect(),
    };
    // Clients may reach a node through its proxy: compare nodes by their own address.
    let aliases = proxies(history);
    let own = |n: &str| aliases.get(n).cloned().unwrap_or_else(|| n.to_string());
    let nodes: Vec<String> = nodes.iter().map(|n| own(n)).collect();
    let met = |n: &str| nodes.contains(&own(n));
    let touches = nodes.is_empty()
        || fault.node.as_deref().is_some_and(met)
        || isolated.iter().any(|n| met(n));
    // Held past the node timeout, a master's replica is promoted.
    let held_ms = fault
        .end_ns
        .map_or(u64::MAX, |e| e.saturating_sub(fault.begin_ns) / 1_000_000);
    let timeout = settings.node_timeout_ms;
    let promotes = settings.replicas && held_ms >= timeout;
    let asynchronous =
        "a replica took over, and writes not yet replicated are lost (asynchronous replication)";
    match (fault.f.as_str(), text("mode")) {
        ("failover", Some(m @ ("force" | "takeover" | "auto"))) => Some(format!(
            "{fault} ({m}): the new master lacks the writes the old one had not yet replicated"
        )),
        ("kill" | "shutdown", _) if touches && !settings.aof => Some(format!(
            "{fault}: with persistence off a node restarted within the node timeout comes back empty"
        )),
        ("kill" | "shutdown" | "pause", _) if touches && promotes => Some(format!(
            "{fault}, held {held_ms} ms, past the node timeout ({timeout} ms): {asynchronous}"
        )),
        ("partition", _) if touches && promotes && !from_clients => Some(format!(
            "{fault}, held {held_ms} ms, past the node timeout ({timeout} ms): a master cut off from the other nodes keeps acknowledging writes that its promoted replica never sees (asynchronous replication)"
        )),
        _ => None,
    }
}

/// The cause of a data anomaly (a lost, stale, duplicated or misplaced value) of `class` whose
/// ops ran in `window` (first invocation, last completion) on `slots` and `nodes`: a resent op, a documented loss of a fault active in
/// the ops' window, a migration of one of the slots, or unexplained.
pub fn of_data(
    history: &History,
    timeline: &Timeline,
    faults: &[Fault],
    class: &str,
    window: (usize, Option<usize>),
    slots: &[u16],
    nodes: &[&str],
) -> Cause {
    if matches!(class, "duplicated-increment" | "duplicate-elements") {
        return Cause::new(
            CauseKind::ClientResend,
            "a non-idempotent op took effect twice: the client sent it again after losing the reply",
        );
    }
    let settings = Settings::of(history);
    // A slot left open or unserved is the cluster's state, not a lost value.
    let topology = matches!(
        class,
        "open-slot" | "uncovered-slot" | "slot-map-disagreement"
    );
    let lossy = faults
        .iter()
        .filter(|_| !topology)
        .filter(|f| f.overlaps(window.0, window.1) && f.error.is_none())
        .find_map(|f| documented_loss(f, history, settings, nodes).map(|why| (f, why)));
    if let Some((fault, why)) = lossy {
        return Cause::new(CauseKind::DocumentedLoss, why).at(fault.begin_line);
    }
    for &slot in slots {
        if let Some(cause) = migration_near(history, timeline, faults, slot, window) {
            return cause;
        }
    }
    Cause::new(
        CauseKind::Unexplained,
        "no documented loss, resend or migration accounts for it",
    )
}

/// A migration of `slot` that was open during `window`, or that began or ended in it; a
/// failover that landed while it ran is named.
fn migration_near(
    history: &History,
    timeline: &Timeline,
    faults: &[Fault],
    slot: u16,
    (first, last): (usize, Option<usize>),
) -> Option<Cause> {
    let last_event = last.unwrap_or(usize::MAX);
    let open_at = |e: usize| {
        let s = timeline.state_at(history, slot, e, None);
        (s.phase != Phase::Stable).then_some((s, e))
    };
    let (why, migration) = match open_at(first).or_else(|| open_at(last?.saturating_add(1))) {
        Some((state, at)) => {
            let m = timeline
                .migrations_of(slot)
                .filter(|m| m.steps[0].event < at)
                .last()?;
            (state.to_string(), m)
        }
        None => {
            let m = timeline.migrations_of(slot).find(|m| {
                m.steps
                    .iter()
                    .any(|s| s.event > first && s.event < last_event)
            })?;
            let (from, to) = (
                m.from.as_deref().unwrap_or("?"),
                m.to.as_deref().unwrap_or("?"),
            );
            (
                format!("slot {slot} migrated {from} -> {to} between its ops"),
                m,
            )
        }
    };
    if let Some(how) = deliberate(migration) {
        let line = line_of(history, migration.steps[0].event);
        return Some(Cause::new(CauseKind::DocumentedLoss, format!("{why}; {how}")).at(line));
    }
    let (start, end) = (
        migration.steps[0].event,
        migration.end_event.unwrap_or(usize::MAX),
    );
    let failover = faults
        .iter()
        .find(|f| f.f == "failover" && f.begin_event > start && f.begin_event < end);
    let why = match failover {
        Some(f) => format!(
            "{why}; {f} landed while the slot migrated (a new master that does not inherit \
             IMPORTING/MIGRATING answers for moved keys as if they were absent: Redis before \
             8.0, redis/redis#6339)"
        ),
        None => why,
    };
    Some(Cause::new(CauseKind::Migration, why).at(line_of(history, start)))
}

/// How a migration the nemesis broke on purpose loses keys by design: an abort (`SETSLOT
/// STABLE` after keys moved strands them on the target) or an early finalization (the owner set
/// before the source was empty drops what the source still held).
fn deliberate(m: &crate::phase::Migration) -> Option<&'static str> {
    const ABORT: &str = "the nemesis aborted the migration (SETSLOT STABLE) after keys moved: \
                         they are stranded on the target by design (abort)";
    const EARLY: &str = "the nemesis set the new owner before the source was empty: the source \
                         dropped what it still held, by design (finalize-early)";
    m.steps.iter().find_map(|s| {
        let phase = s.value.get("phase").and_then(Value::as_str);
        let early = s.value.get("early").and_then(Value::as_bool) == Some(true);
        match (s.f.as_str(), phase) {
            ("migrate-step", Some("stable")) => Some(ABORT),
            ("migrate-step", Some("keys-lost")) => Some(EARLY),
            ("migrate-step", Some("finalized")) if early => Some(EARLY),
            _ => None,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fault::faults;

    /// Whether the one fault of a history with `header` (run fields) and the fault's
    /// `begin`/`end` events (`f`, value, time in ms) is a documented loss for ops on node `a`.
    fn documented(header: &str, f: &str, value: &str, held_ms: u64) -> bool {
        let text = format!(
            "{{\"type\":\"header\",\"format\":\"slotcheck-history\",\"version\":1{header}}}\n\
             {{\"type\":\"info\",\"process\":\"nemesis\",\"f\":\"{f}\",\"value\":{{\"phase\":\"begin\"{value}}},\"time\":1000000}}\n\
             {{\"type\":\"info\",\"process\":\"nemesis\",\"f\":\"{inv}\",\"value\":{{\"phase\":\"end\"{value}}},\"time\":{end}}}\n",
            inv = match f {
                "kill" => "restart",
                "pause" => "resume",
                "partition" => "heal",
                other => other,
            },
            end = 1_000_000 + held_ms * 1_000_000,
        );
        let history = History::parse(text.as_bytes(), "t").unwrap();
        let all = faults(&history);
        assert_eq!(all.len(), 1, "{all:?}");
        documented_loss(&all[0], &history, Settings::of(&history), &["a"]).is_some()
    }

    #[test]
    fn nodes_met_through_a_proxy_are_the_nodes_behind_it() {
        let text = "{\"type\":\"header\",\"format\":\"slotcheck-history\",\"version\":1,\
                    \"persistence\":\"off\",\"nodes\":[{\"addr\":\"a\",\"proxy\":\"pa\"}]}\n\
                    {\"type\":\"info\",\"process\":\"nemesis\",\"f\":\"kill\",\"value\":{\"phase\":\"begin\",\"node\":\"a\"},\"time\":1}\n";
        let history = History::parse(text.as_bytes(), "t").unwrap();
        let fault = &faults(&history)[0];
        let settings = Settings::of(&history);
        assert!(documented_loss(fault, &history, settings, &["pa"]).is_some());
        assert!(documented_loss(fault, &history, settings, &["pb"]).is_none());
    }

    #[test]
    fn documented_losses_follow_the_settings() {
        let aof = ",\"persistence\":\"aof\",\"replicas\":1,\"node_timeout_ms\":2000";
        let off_no_replicas = ",\"persistence\":\"off\",\"replicas\":0";
        let on_a = ",\"node\":\"a\"";
        let on_b = ",\"node\":\"b\"";
        // (header, f, value, held ms, documented?)
        let table = [
            (off_no_replicas, "kill", on_a, 100, true),
            (off_no_replicas, "kill", on_b, 100, false),
            (aof, "kill", on_a, 100, false),
            (aof, "kill", on_a, 3000, true),
            (aof, "pause", on_a, 1500, false),
            (aof, "pause", on_a, 2500, true),
            (off_no_replicas, "pause", on_a, 9000, false),
            (
                aof,
                "failover",
                ",\"node\":\"r\",\"mode\":\"default\"",
                500,
                false,
            ),
            (
                aof,
                "failover",
                ",\"node\":\"r\",\"mode\":\"force\"",
                500,
                true,
            ),
            (
                aof,
                "failover",
                ",\"node\":\"r\",\"mode\":\"takeover\"",
                500,
                true,
            ),
            (
                aof,
                "partition",
                ",\"isolated\":[\"a\"],\"from\":[\"b\",\"c\"]",
                3000,
                true,
            ),
            (
                aof,
                "partition",
                ",\"isolated\":[\"a\"],\"from\":\"clients\"",
                3000,
                false,
            ),
            (
                aof,
                "partition",
                ",\"isolated\":[\"b\"],\"from\":[\"a\",\"c\"]",
                3000,
                false,
            ),
        ];
        for (header, f, value, held, want) in table {
            assert_eq!(
                documented(header, f, value, held),
                want,
                "{header} {f} {value} {held}"
            );
        }
    }

    #[test]
    fn kinds_list_unexplained_and_migration_first() {
        let mut sorted = CauseKind::ALL.to_vec();
        sorted.sort();
        assert_eq!(sorted, CauseKind::ALL);
        assert_eq!(CauseKind::ALL[0].name(), "unexplained");
        assert_eq!(CauseKind::ALL[1].name(), "migration");
        let json = serde_json::to_string(&CauseKind::ClientResend).unwrap();
        assert_eq!(json, "\"client-resend\"");
    }
}
