//! PikiwiDB findings as anomalies a person can act on: a misplaced key with the command that
//! created it, its slot and the migration step that should have moved it; and an
//! `SLOTSMGRT-EXEC-WRAPPER` that answered `-1` for a key of the migrating slot, with the slot
//! of the lowercased key pika looked up instead.

use super::placement::{Finding, FindingKind};
use checker::op::{line_of, Op, Ops, Outcome};
use checker::{
    codis_slot, Anomaly, AnomalyEvent, History, Process, RedirectKind, Report, Validity,
};
use checker::{Cause, CauseKind};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// The anomaly for a misplaced key, with the history's account of it: the first op that
/// succeeded on the key (the command that created it) and the last migration of its slot.
pub fn placement(f: &Finding, history: &History, ops: &Ops) -> Anomaly {
    let mut events = Vec::new();
    let found = where_found(f, "");
    let mut text = match f.kind {
        FindingKind::Stranded => format!(
            "key {} (slot {}) is on {found} but not on the slot's owner {}",
            f.key, f.slot, f.owner
        ),
        FindingKind::Duplicated if f.found_on.contains_key(&f.owner) => format!(
            "key {} (slot {}) is on its owner {} and also on {found_elsewhere}, which clients no \
             longer reach",
            f.key,
            f.slot,
            f.owner,
            found_elsewhere = where_found(f, &f.owner),
        ),
        FindingKind::Duplicated => format!(
            "key {} (slot {}, owner {}) is on more than one server: {found}",
            f.key, f.slot, f.owner
        ),
    };
    if let Some(op) = first_ok(ops, &f.key) {
        let line = line_of(history, op.invoke_event);
        events.push(AnomalyEvent {
            event: op.invoke_event,
            line,
        });
        let command = workloads::types::writer_of(&f.key)
            .map(|c| format!(" ({c})"))
            .unwrap_or_default();
        text.push_str(&format!(
            "; it was created by {}{command} (line {line}, on {})",
            op.f,
            op.node.as_deref().unwrap_or("?")
        ));
    }
    if let Some((event, v)) = last_migration(&history.events, f.slot) {
        let line = line_of(history, event);
        events.push(AnomalyEvent { event, line });
        let field = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("?").to_string();
        text.push_str(&format!(
            "; the last migration of slot {} ({} from {} to {}) ended {} at line {line}",
            f.slot,
            field("command"),
            field("from"),
            field("to"),
            field("outcome"),
        ));
        if f.kind == FindingKind::Stranded {
            text.push_str(", with the source's slot index empty, yet the key stayed behind");
        }
    }
    Anomaly {
        class: f.kind.name().into(),
        keys: vec![f.key.clone()],
        events,
        explanation: text,
        data: json!({"slot": f.slot, "owner": f.owner, "migrating_to": f.migrating_to,
                     "found_on": f.found_on}),
        context: Some(json!({ "slot": f.slot })),
        cause: Some(Cause::new(
            CauseKind::Migration,
            format!(
                "slot {} was migrated by pika's own migration commands",
                f.slot
            ),
        )),
    }
}

/// `server (as type), ...`, leaving out `except`.
fn where_found(f: &Finding, except: &str) -> String {
    let parts: Vec<String> = f
        .found_on
        .iter()
        .filter(|(s, _)| *s != except)
        .map(|(s, t)| format!("{s} (as {t})"))
        .collect();
    parts.join(", ")
}

/// The first op on `key` that succeeded and could have created it (not a read).
fn first_ok<'a>(ops: &'a Ops, key: &str) -> Option<&'a Op> {
    ops.ops
        .iter()
        .filter(|op| op.key.as_deref() == Some(key) && op.outcome == Outcome::Ok)
        .filter(|op| op.f != "read" && op.f != "pfcount")
        .min_by_key(|op| op.complete_ns)
}

/// What the history alone shows of PikiwiDB's bugs, added to its check's `report`: a
/// `wrapper-error` per key the exec-wrapper refused for its capitals, and, on each `type-changed`
/// anomaly, the migration that rewrote the key. `slotcheck test` and `slotcheck check` both call
/// this, so a saved history checks to the same verdict.
pub fn annotate(history: &History, ops: &Ops, report: &mut Report) {
    for a in wrapper_errors(history, ops) {
        *report.anomaly_counts.entry(a.class.clone()).or_default() += 1;
        report.anomalies.push(a);
        report.valid = Validity::Invalid;
    }
    type_changed_migrations(history, &mut report.anomalies);
    report.tally_causes();
}

/// Whether `header` (the history's first line, parsed) is a PikiwiDB run's.
pub fn is_pika_run(header: &Value) -> bool {
    header.get("server").and_then(Value::as_str) == Some("pikiwidb")
}

/// Adds PikiwiDB's own findings to `report` when `history` is a PikiwiDB run's, as the run
/// itself did: `slotcheck check` and `slotcheck report` on a saved run reach the same verdict.
pub fn annotate_saved(history: &History, report: &mut Report) -> anyhow::Result<()> {
    let server = history.header.as_ref().and_then(|h| h.run.get("server"));
    if server.and_then(Value::as_str) != Some("pikiwidb") {
        return Ok(());
    }
    let ops = Ops::from_history(history)?;
    annotate(history, &ops, report);
    Ok(())
}

/// Adds to each `type-changed` anomaly the last migration of its slot before the first op that
/// met `WRONGTYPE` (the migration that rewrote the key), with the `SLOTSRELOAD` before it.
pub fn type_changed_migrations(history: &History, anomalies: &mut [Anomaly]) {
    for a in anomalies.iter_mut().filter(|a| a.class == "type-changed") {
        let slot = a.data.get("slot").and_then(Value::as_u64);
        // The op that met WRONGTYPE is the anomaly's latest event.
        let (Some(slot), Some(wrong)) = (slot, a.events.iter().map(|e| e.event).max()) else {
            continue;
        };
        let Some((event, v)) = last_migration(&history.events[..wrong], slot as u16) else {
            continue;
        };
        let line = line_of(history, event);
        let field = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("?").to_string();
        a.explanation.push_str(&format!(
            "; before it, the migration of slot {slot} ({} from {} to {}) ended {} at line {line}",
            field("command"),
            field("from"),
            field("to"),
            field("outcome"),
        ));
        let reload = history.events[..event].iter().rposition(|e| {
            e.process == Process::Nemesis
                && e.f == "pika-reload"
                && e.value.get("node").and_then(Value::as_str) == Some(&field("from"))
        });
        if let Some(r) = reload {
            a.explanation.push_str(&format!(
                ", after SLOTSRELOAD on {} at line {}",
                field("from"),
                line_of(history, r)
            ));
        }
        a.events.push(AnomalyEvent { event, line });
    }
}

/// The last migration `end` event of `slot` in `events`: its position and value.
fn last_migration(events: &[checker::Event], slot: u16) -> Option<(usize, &Value)> {
    events
        .iter()
        .enumerate()
        .rev()
        .find(|(_, e)| {
            e.process == Process::Nemesis
                && e.f.starts_with("pika-migrate")
                && e.value.get("phase").and_then(Value::as_str) == Some("end")
                && e.value.get("slot").and_then(Value::as_u64) == Some(slot.into())
        })
        .map(|(i, e)| (i, &e.value))
}

/// One `wrapper-error` anomaly per key that `SLOTSMGRT-EXEC-WRAPPER` answered `-1` for while its
/// slot migrated because pika looked up the lowercased key, whose slot is another: the first
/// such op, the slot, and the lowercased key. (A `-1` for a key whose lowercase form has the same
/// slot means pika's migrate thread was not on that slot yet, e.g. before the first
/// `SLOTSMGRTTAGSLOT-ASYNC` or with the target down: the op fails, and that is no anomaly.)
pub fn wrapper_errors(history: &History, ops: &Ops) -> Vec<Anomaly> {
    let mut first: BTreeMap<&str, (&Op, u16, &str)> = BTreeMap::new();
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for op in &ops.ops {
        let Some(key) = op.key.as_deref() else {
            continue;
        };
        for r in op
            .redirects
            .iter()
            .filter(|r| r.kind == RedirectKind::WrapperError)
        {
            if codis_slot(key.to_lowercase().as_bytes()) == r.slot {
                continue;
            }
            *counts.entry(key).or_default() += 1;
            first.entry(key).or_insert((op, r.slot, &r.from));
        }
    }
    first
        .into_iter()
        .map(|(key, (op, slot, from))| {
            let line = line_of(history, op.invoke_event);
            let lower = key.to_lowercase();
            let lower_slot = codis_slot(lower.as_bytes());
            Anomaly {
                class: "wrapper-error".into(),
                keys: vec![key.to_string()],
                events: vec![AnomalyEvent {
                    event: op.invoke_event,
                    line,
                }],
                explanation: format!(
                    "SLOTSMGRT-EXEC-WRAPPER on {from} answered -1 -1 for {} {key} (line {line}) \
                     while its slot {slot} migrated: pika lowercases the key to {lower}, whose \
                     slot is {lower_slot}, not the migrating slot {slot}; the op failed ({} such \
                     answers for this key)",
                    op.f, counts[key]
                ),
                data: json!({"slot": slot, "source": from, "lowercased": lower,
                             "lowercased_slot": lower_slot, "count": counts[key]}),
                context: Some(json!({ "slot": slot })),
                cause: Some(Cause::new(
                    CauseKind::Server,
                    "pika's exec wrapper looks up the lowercased key, in another slot",
                )),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HISTORY: &str = r#"{"type":"header","format":"slotcheck-history","version":1,"workload":"types"}
{"type":"invoke","process":0,"f":"incr","key":"cnt:{k8}","value":-1,"time":10}
{"type":"ok","process":0,"f":"incr","key":"cnt:{k8}","value":-1,"time":20,"node":"a:1","slot":7}
{"type":"info","process":"nemesis","f":"pika-migrate-sync","value":{"phase":"begin","slot":7,"from":"a:1","to":"b:2","command":"SLOTSMGRTTAGSLOT"},"time":30}
{"type":"info","process":"nemesis","f":"pika-migrate-sync","value":{"phase":"end","slot":7,"from":"a:1","to":"b:2","command":"SLOTSMGRTTAGSLOT","outcome":"done"},"time":40}
{"type":"invoke","process":1,"f":"read","key":"Str:{K3}","value":null,"time":50}
{"type":"fail","process":1,"f":"read","key":"Str:{K3}","value":null,"time":60,"node":"a:1","slot":9,"redirects":[{"kind":"wrapper-error","slot":9,"from":"a:1","to":"a:1"}]}
{"type":"invoke","process":2,"f":"read","key":"str:{k3}","value":null,"time":70}
{"type":"fail","process":2,"f":"read","key":"str:{k3}","value":null,"time":80,"node":"a:1","slot":@LOWER,"redirects":[{"kind":"wrapper-error","slot":@LOWER,"from":"a:1","to":"a:1"}]}
"#;

    fn finding(kind: FindingKind) -> Finding {
        Finding {
            kind,
            key: "cnt:{k8}".into(),
            slot: 7,
            owner: "b:2".into(),
            migrating_to: None,
            found_on: [("a:1".to_string(), "string".to_string())].into(),
        }
    }

    #[test]
    fn placement_names_command_slot_and_migration() {
        let history = History::parse(HISTORY.replace("@LOWER", "1").as_bytes(), "t.jsonl").unwrap();
        let ops = Ops::from_history(&history).unwrap();
        let a = placement(&finding(FindingKind::Stranded), &history, &ops);
        assert_eq!(a.class, "stranded-key");
        let want = "key cnt:{k8} (slot 7) is on a:1 (as string) but not on the slot's owner b:2; \
                    it was created by incr (DECR) (line 2, on a:1); the last migration of slot 7 \
                    (SLOTSMGRTTAGSLOT from a:1 to b:2) ended done at line 5, with the source's \
                    slot index empty, yet the key stayed behind";
        assert_eq!(a.explanation, want);
        assert_eq!(a.events.len(), 2);
        let mut both = finding(FindingKind::Duplicated);
        both.found_on.insert("b:2".into(), "string".into());
        let d = placement(&both, &history, &ops);
        assert_eq!(d.class, "duplicated-key");
        assert!(d.explanation.starts_with(
            "key cnt:{k8} (slot 7) is on its owner b:2 and also on a:1 (as string), which \
             clients no longer reach"
        ));
    }

    #[test]
    fn wrapper_error_names_the_lowercased_key() {
        let lower_slot = codis_slot(b"str:{k3}");
        let text = HISTORY.replace("@LOWER", &lower_slot.to_string());
        let history = History::parse(text.as_bytes(), "t.jsonl").unwrap();
        let ops = Ops::from_history(&history).unwrap();
        let a = wrapper_errors(&history, &ops);
        assert_eq!(a.len(), 1);
        assert_eq!(a[0].class, "wrapper-error");
        assert_eq!(
            a[0].keys,
            ["Str:{K3}"],
            "the lowercase key's -1 is no anomaly"
        );
        assert!(
            a[0].explanation
                .contains(&format!("str:{{k3}}, whose slot is {lower_slot}")),
            "{}",
            a[0].explanation
        );
    }
}
