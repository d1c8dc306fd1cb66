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

use crate::fault::Fault;
use crate::history::History;
use crate::op::line_of;
use crate::phase::{Phase, Timeline};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// What an anomaly is attributed to (see the module doc).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CauseKind {
    /// Nothing recorded accounts for it.
    Unexplained,
    /// A migration of its slot around its ops, with no documented loss.
    Migration,
    /// The servers broke the protocol.
    Server,
    /// The client broke the redirect protocol.
    Client,
    /// The client resent a non-idempotent op.
    ClientResend,
    /// A loss the chosen faults cause by design.
    DocumentedLoss,
}

impl CauseKind {
    /// Every kind, in the order reports list them (unexplained and migration first).
    pub const ALL: [CauseKind; 6] = [
        CauseKind::Unexplained,
        CauseKind::Migration,
        CauseKind::Server,
        CauseKind::Client,
        CauseKind::ClientResend,
        CauseKind::DocumentedLoss,
    ];

    /// The name used in reports and JSON.
    pub fn name(self) -> &'static str {
        match self {
            CauseKind::Unexplained => "unexplained",
            CauseKind::Migration => "migration",
            CauseKind::Server => "server",
            CauseKind::Client => "client",
            CauseKind::ClientResend => "client-resend",
            CauseKind::DocumentedLoss => "documented-loss",
        }
    }
}

impl fmt::Display for CauseKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An anomaly's cause: its kind, the proof in one sentence, and the line it rests on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cause {
    /// What it is attributed to.
    pub kind: CauseKind,
    /// Why, in one sentence.
    pub why: String,
    /// 1-based line of the fault or migration event the attribution rests on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<usize>,
}

impl Cause {
    /// A cause of `kind` for the reason `why`, resting on no particular line.
    pub fn new(kind: CauseKind, why: impl Into<String>) -> Cause {
        Cause {
            kind,
            why: why.into(),
            line: None,
        }
    }

    /// The same cause, resting on `line`.
    pub fn at(mut self, line: usize) -> Cause {
        self.line = Some(line);
        self
    }
}

/// Renders as `cause documented-loss: a kill ... (line 40)`.
impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cause {}: {}", self.kind, self.why)?;
        if let Some(line) = self.line {
            write!(f, " (line {line})")?;
        }
        Ok(())
    }
}

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

/// Why `fault` loses acknowledged writes by design under `settings`, or `None` if it does not.
/// `nodes` are the nodes the anomaly's ops met (empty: any node may be concerned): a kill, pause
/// or partition counts only on one of them, a failover anywhere.
pub fn documented_loss(
    fault: &Fault,
    history: &History,
    settings: Settings,
    nodes: &[&str],
) -> Option<String> {
    let value = history.events.get(fault.begin_event).map(|e| &e.value);
    let text = |name: &str| value.and_then(|v| v.get(name)).and_then(Value::as_str);
    let isolated: Vec<&str> = match value.and_then(|v| v.get("isolated")) {
        Some(Value::String(n)) => vec![n.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => fault.node.as_deref().into_iter().collect(),
    };
    let touches = nodes.is_empty()
        || fault.node.as_deref().is_some_and(|n| nodes.contains(&n))
        || isolated.iter().any(|n| nodes.contains(n));
    // Held past the node timeout, a master's replica is promoted.
    let held_ms = fault
        .end_ns
        .map_or(u64::MAX, |e| e.saturating_sub(fault.begin_ns) / 1_000_000);
    let promotes = settings.replicas && held_ms >= settings.node_timeout_ms;
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
            "{fault}, held {held_ms} ms past the node timeout: {asynchronous}"
        )),
        ("partition", _) if touches && promotes && text("from") != Some("clients") => Some(format!(
            "{fault}, held {held_ms} ms past the node timeout: a master cut off from the other nodes keeps acknowledging writes that its promoted replica never sees (asynchronous replication)"
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
        if let Some(cause) = migration_near(history, timeline, slot, window) {
            return cause;
        }
    }
    Cause::new(
        CauseKind::Unexplained,
        "no documented loss, resend or migration accounts for it",
    )
}

/// A migration of `slot` that was open during `window`, or that began or ended in it.
fn migration_near(
    history: &History,
    timeline: &Timeline,
    slot: u16,
    (first, last): (usize, Option<usize>),
) -> Option<Cause> {
    let last_event = last.unwrap_or(usize::MAX);
    let open_at = |e: usize| {
        let s = timeline.state_at(history, slot, e, None);
        (s.phase != Phase::Stable).then_some(s)
    };
    let state = open_at(first).or_else(|| last.and_then(|l| open_at(l.saturating_add(1))));
    if let Some(s) = state {
        let line = s.migration_line.unwrap_or(0);
        return Some(Cause::new(CauseKind::Migration, format!("{s}")).at(line));
    }
    let touched = timeline.migrations_of(slot).find(|m| {
        m.steps
            .iter()
            .any(|s| s.event > first && s.event < last_event)
    })?;
    let line = line_of(history, touched.steps[0].event);
    let (from, to) = (
        touched.from.as_deref().unwrap_or("?"),
        touched.to.as_deref().unwrap_or("?"),
    );
    Some(
        Cause::new(
            CauseKind::Migration,
            format!("slot {slot} migrated {from} -> {to} between its ops"),
        )
        .at(line),
    )
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
