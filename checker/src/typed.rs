//! Histories of mixed data types (the `types` workload): each key's name says its type, and each
//! key is checked with that type's model, so one history of strings, counters, sets, hashes,
//! sorted sets and lists gets a per-key linearizability verdict. A key whose server answered
//! `WRONGTYPE` held another type than the one it was created as: a `type-changed` anomaly (a
//! migration that rewrote a HyperLogLog as a plain string shows this way).
//!
//! The type is the key's first `:`-separated segment, case-insensitive (keys may be mixed-case):
//! `str` (register: `read`, `write`), `cnt` (counter: `incr` with a signed delta, `read`), `set`,
//! `hash`, `zset` (set: `add` of an integer member or field, `read` of them all), `list`
//! (list-append: `append`, `read`). The workload's other prefixes (HyperLogLogs `hll`, and the
//! `smv`, `sto`, `rps`, `rpl` companions: `SMOVE` sources, `*STORE` and `RPOPLPUSH` keys) are
//! not modelled: their ops count, and only the type check applies. A prefix the workload does
//! not write at all is not checked either, and its key's verdict is `unknown`, saying why.

use crate::anomaly::{Anomaly, AnomalyEvent};
use crate::history::History;
use crate::model::counter::Counter;
use crate::model::list_append::ListAppend;
use crate::model::register::Register;
use crate::model::set::Set;
use crate::model::ModelKind;
use crate::op::{line_of, Op, Ops};
use crate::options::CheckError;
use crate::partition::{check_each, check_partition, Split};
use crate::report::{KeyReport, Report};
use crate::search::Budget;
use crate::validity::Validity;
use serde_json::json;
use std::collections::BTreeSet;

/// The name of this check in reports.
pub const CHECKER: &str = ModelKind::Types.checker();

/// Which model a key's ops are checked with, read off its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyType {
    /// `str:`: a register of integers.
    Str,
    /// `cnt:`: a counter.
    Cnt,
    /// `set:`, `hash:`, `zset:`: a grow-only set of integer members (or hash fields).
    Members,
    /// `list:`: an append-only list.
    List,
    /// A prefix the workload writes but no model reads (`hll`, companions): ops counted, only
    /// the type check applies.
    Unmodelled,
    /// A prefix the workload does not write: not checked, the key's verdict is unknown.
    Unrecognised,
}

/// The prefixes the `types` workload writes without a model for them.
pub const UNMODELLED_PREFIXES: [&str; 5] = ["hll", "smv", "sto", "rps", "rpl"];

/// The key's type by its first `:`-separated segment, case-insensitive.
pub fn key_type(key: &str) -> KeyType {
    let head = key.split(':').next().unwrap_or("").to_ascii_lowercase();
    match head.as_str() {
        "str" => KeyType::Str,
        "cnt" => KeyType::Cnt,
        "set" | "hash" | "zset" => KeyType::Members,
        "list" => KeyType::List,
        p if UNMODELLED_PREFIXES.contains(&p) => KeyType::Unmodelled,
        _ => KeyType::Unrecognised,
    }
}

/// Checks every key with its type's model and adds a `type-changed` anomaly per key that met
/// `WRONGTYPE`.
pub(crate) fn check(history: &History, budget: &Budget) -> Result<Report, CheckError> {
    let paired = Ops::from_history(history)?;
    let mut report = check_each(history, &paired, CHECKER, Split::ByKey, |key, ops| {
        check_key(history, budget, key, ops)
    })?;
    // Usually no op met WRONGTYPE: only then are the keys' ops gathered again.
    let wrong: BTreeSet<&str> = paired
        .ops
        .iter()
        .filter(|op| is_wrongtype(op))
        .map(|op| op.key.as_deref().unwrap_or(""))
        .collect();
    for key in wrong {
        let ops: Vec<&Op> = paired
            .ops
            .iter()
            .filter(|op| op.key.as_deref().unwrap_or("") == key)
            .collect();
        if let Some(a) = type_changed(history, key, &ops) {
            *report.anomaly_counts.entry(a.class.clone()).or_default() += 1;
            report.anomalies.push(a);
            report.valid = Validity::Invalid;
        }
    }
    Ok(report)
}

/// One key's verdict under its type's model.
fn check_key(
    history: &History,
    budget: &Budget,
    key: &str,
    ops: &[&Op],
) -> Result<KeyReport, CheckError> {
    match key_type(key) {
        KeyType::Str => check_partition(history, &Register::new(None), budget, key, ops),
        KeyType::Cnt => check_partition(history, &Counter::default(), budget, key, ops),
        KeyType::Members => check_partition(history, &Set::default(), budget, key, ops),
        KeyType::List => check_partition(history, &ListAppend::default(), budget, key, ops),
        KeyType::Unmodelled => Ok(KeyReport::valid(key, ops.len(), 0, 0)),
        KeyType::Unrecognised => {
            let mut report = KeyReport::valid(key, ops.len(), 0, 0);
            report.valid = Validity::Unknown;
            let prefix = key.split(':').next().unwrap_or("");
            report.unknown = Some(format!(
                "not checked: key type \"{}\" is none the types workload writes (str, cnt, set, \
                 hash, zset, list; {} unmodelled)",
                crate::echo::Echo(prefix),
                UNMODELLED_PREFIXES.join(", ")
            ));
            Ok(report)
        }
    }
}

/// Whether the server answered `op` with `WRONGTYPE`.
fn is_wrongtype(op: &Op) -> bool {
    op.error.as_deref().is_some_and(|e| e.contains("WRONGTYPE"))
}

/// A `type-changed` anomaly for `key` if any op on it was answered `WRONGTYPE`: the key held
/// another type than its name (and the ops before) say. Names the first such op and the last op
/// that succeeded before it.
fn type_changed(history: &History, key: &str, ops: &[&Op]) -> Option<Anomaly> {
    let wrong: Vec<&&Op> = ops.iter().filter(|op| is_wrongtype(op)).collect();
    let first = wrong.first()?;
    let before = ops
        .iter()
        .filter(|op| op.outcome == crate::op::Outcome::Ok && op.complete_ns <= first.invoke_ns)
        .max_by_key(|op| op.complete_ns);
    let line = line_of(history, first.invoke_event);
    let mut events = vec![AnomalyEvent {
        event: first.invoke_event,
        line,
    }];
    let mut explanation = format!(
        "{} on {key} (line {line}, node {}, slot {}) was answered WRONGTYPE: the key no longer \
         holds the type it was created as",
        first.f,
        first.node.as_deref().unwrap_or("?"),
        first.slot.map_or("?".to_string(), |s| s.to_string()),
    );
    if let Some(b) = before {
        let l = line_of(history, b.invoke_event);
        events.insert(
            0,
            AnomalyEvent {
                event: b.invoke_event,
                line: l,
            },
        );
        explanation.push_str(&format!(
            "; {} at line {l} (node {}) still succeeded",
            b.f,
            b.node.as_deref().unwrap_or("?")
        ));
    }
    explanation.push_str(&format!(" ({} ops met WRONGTYPE)", wrong.len()));
    Some(Anomaly {
        class: "type-changed".into(),
        keys: vec![key.to_string()],
        events,
        explanation,
        data: json!({"wrongtype_ops": wrong.len(), "first_f": first.f, "slot": first.slot}),
        context: None,
        cause: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::h;

    #[test]
    fn key_types_by_prefix() {
        assert_eq!(key_type("Str:{T1}:a"), KeyType::Str);
        assert_eq!(key_type("cnt:x"), KeyType::Cnt);
        assert_eq!(key_type("ZSET:x"), KeyType::Members);
        assert_eq!(key_type("list:x"), KeyType::List);
        assert_eq!(key_type("hll:x"), KeyType::Unmodelled);
        assert_eq!(key_type("Rpl:{k6}"), KeyType::Unmodelled);
        assert_eq!(key_type("x"), KeyType::Unrecognised);
        assert_eq!(key_type("blob:x"), KeyType::Unrecognised);
    }

    #[test]
    fn each_key_gets_its_types_model() {
        let ok = "
            0 invoke write str:a 1 @10
            0 ok     write str:a 1 @20
            1 invoke incr  cnt:b -1 @11
            1 ok     incr  cnt:b -1 @21
            2 invoke add   set:c 5 @12
            2 ok       add set:c 5 @22
            0 invoke read  str:a null @30
            0 ok     read  str:a 1 @40
            1 invoke read  cnt:b null @31
            1 ok     read  cnt:b -1 @41
            2 invoke read  set:c null @32
            2 ok     read  set:c [5] @42
        ";
        let r = check(&h(ok), &Budget::default()).unwrap();
        assert_eq!(r.valid, Validity::Valid, "{r:?}");
        assert_eq!(r.keys.len(), 3);
        // A member acknowledged, then missing: invalid under the set model.
        let lost = ok.replace("ok     read  set:c [5]", "ok     read  set:c []");
        let r = check(&h(&lost), &Budget::default()).unwrap();
        assert_eq!(r.valid, Validity::Invalid);
        let bad: Vec<&str> = r
            .keys
            .iter()
            .filter(|k| k.valid == Validity::Invalid)
            .map(|k| k.key.as_str())
            .collect();
        assert_eq!(bad, ["set:c"]);
    }

    #[test]
    fn an_unrecognised_key_type_is_unknown_saying_why() {
        let text = "
            0 invoke write str:a 1 @10
            0 ok     write str:a 1 @20
            1 invoke write blob:b 1 @11
            1 ok     write blob:b 1 @21
            2 invoke add   hll:c 5 @12
            2 ok     add   hll:c 5 @22
        ";
        let r = check(&h(text), &Budget::default()).unwrap();
        assert_eq!(r.valid, Validity::Unknown, "{r:?}");
        let verdicts: Vec<(&str, Validity)> =
            r.keys.iter().map(|k| (k.key.as_str(), k.valid)).collect();
        let want = [
            ("blob:b", Validity::Unknown),
            ("hll:c", Validity::Valid),
            ("str:a", Validity::Valid),
        ];
        assert_eq!(verdicts, want);
        let why = r.keys[0].unknown.as_deref().unwrap();
        assert!(why.contains("key type \"blob\""), "{why}");
    }

    #[test]
    fn wrongtype_is_a_type_change() {
        let text = r#"{"type":"header","format":"slotcheck-history","version":1,"workload":"types"}
{"type":"invoke","process":0,"f":"pfadd","key":"hll:{t}:A","value":1,"time":10}
{"type":"ok","process":0,"f":"pfadd","key":"hll:{t}:A","value":1,"time":20,"node":"s:1","slot":7}
{"type":"invoke","process":0,"f":"pfcount","key":"hll:{t}:A","value":null,"time":30}
{"type":"fail","process":0,"f":"pfcount","key":"hll:{t}:A","value":null,"time":40,"node":"s:2","slot":7,"error":"WRONGTYPE Operation against a key holding the wrong kind of value"}
"#;
        let history = History::parse(text.as_bytes(), "t.jsonl").unwrap();
        let r = check(&history, &Budget::default()).unwrap();
        assert_eq!(r.valid, Validity::Invalid);
        assert_eq!(r.anomaly_counts.get("type-changed"), Some(&1));
        let a = &r.anomalies[0];
        assert_eq!(a.keys, ["hll:{t}:A"]);
        assert!(
            a.explanation
                .contains("pfcount on hll:{t}:A (line 4, node s:2, slot 7)"),
            "{}",
            a.explanation
        );
        assert!(
            a.explanation
                .contains("pfadd at line 2 (node s:1) still succeeded"),
            "{}",
            a.explanation
        );
        // Without the WRONGTYPE answer, nothing to report.
        let fine = text
            .replace(
                r#""fail","process":0,"f":"pfcount""#,
                r#""ok","process":0,"f":"pfcount""#,
            )
            .replace(
                r#","error":"WRONGTYPE Operation against a key holding the wrong kind of value""#,
                "",
            );
        let r = check(
            &History::parse(fine.as_bytes(), "t.jsonl").unwrap(),
            &Budget::default(),
        )
        .unwrap();
        assert_eq!(r.valid, Validity::Valid, "{r:?}");
    }
}
