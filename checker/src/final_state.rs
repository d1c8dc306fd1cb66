//! The data the nodes hold at the end of a run, against what the history allows them to hold.
//!
//! Histories only show what clients saw; a node can still hold a value no history could leave
//! (a lost acknowledged write that no final read happened to see, a key resurrected by a stale
//! copy). For a register, the final value must have been written by a write (or a `cas`'s new
//! value) that could have taken effect last: one that is `ok` or `info` (an `info` may take
//! effect at any time) and that no `ok` write invoked after its completion overwrote. A key with
//! no `ok` write may also still be absent. Values are unique per key within a run (history
//! format v1), so a value names the write that left it.

use crate::anomaly::{Anomaly, AnomalyEvent};
use crate::history::History;
use crate::op::{line_of, Op, OpError, Ops, Outcome};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};

/// The class of an anomaly this check reports.
pub const FINAL_STATE_MISMATCH: &str = "final-state-mismatch";
/// At most this many candidate writes are named in one anomaly.
const CANDIDATES_NAMED_MAX: usize = 5;

/// The value a register key held at the end, read from the node that owns its slot.
#[derive(Debug, Clone, PartialEq)]
pub struct FinalValue {
    /// The value (`null` when the key is absent), as the register workload records values.
    pub value: Value,
    /// The node it was read from.
    pub node: String,
}

/// One mutation of a key: the value it leaves and when it ran.
struct Mutation<'a> {
    op: &'a Op,
    value: &'a Value,
}

/// The value a register op leaves when it takes effect, if it writes.
fn written(op: &Op) -> Option<&Value> {
    match op.f.as_str() {
        "write" => Some(&op.invoke_value),
        "cas" => op.invoke_value.as_array().and_then(|pair| pair.get(1)),
        _ => None,
    }
}

/// Compares the final values of register keys with the history: one anomaly per key whose value
/// no write could have left last. Keys absent from `finals` are not judged.
pub fn check_register(
    history: &History,
    finals: &BTreeMap<String, FinalValue>,
) -> Result<Vec<Anomaly>, OpError> {
    let ops = Ops::from_history(history)?.ops;
    // A multi-key op writes each of its keys (`MSET`; a `DEL` writes `null`): read per key. One
    // that does not parse writes nothing here; the check reports it.
    let expanded = match ops.iter().any(|op| op.f == crate::per_key::TXN) {
        true => crate::per_key::expand(&ops).ok(),
        false => None,
    };
    let ops = expanded.unwrap_or(ops);
    let mut by_key: HashMap<&str, Vec<Mutation>> = HashMap::new();
    for op in &ops {
        let (Some(key), Some(value)) = (op.key.as_deref(), written(op)) else {
            continue;
        };
        if op.outcome != Outcome::Fail {
            by_key.entry(key).or_default().push(Mutation { op, value });
        }
    }
    let mut anomalies = Vec::new();
    for (key, fin) in finals {
        let mutations = by_key.get(key.as_str()).map_or(&[][..], Vec::as_slice);
        if let Some(anomaly) = judge(history, key, fin, mutations) {
            anomalies.push(anomaly);
        }
    }
    Ok(anomalies)
}

/// The anomaly for `key` if its final value is not one a last write could have left.
fn judge(
    history: &History,
    key: &str,
    fin: &FinalValue,
    mutations: &[Mutation],
) -> Option<Anomaly> {
    // The latest invocation of an `ok` write: anything completed before it was overwritten.
    let last_ok_invoke = mutations
        .iter()
        .filter(|m| m.op.outcome == Outcome::Ok)
        .map(|m| m.op.invoke_ns)
        .max();
    let could_be_last = |m: &&Mutation| last_ok_invoke.is_none_or(|t| m.op.complete_ns >= t);
    let candidates: Vec<&Mutation> = mutations.iter().filter(could_be_last).collect();
    let absent_allowed = last_ok_invoke.is_none();
    if fin.value.is_null() && absent_allowed {
        return None;
    }
    if candidates.iter().any(|m| *m.value == fin.value) {
        return None;
    }
    let event = |op: &Op| AnomalyEvent {
        event: op.invoke_event,
        line: line_of(history, op.invoke_event),
    };
    let writer = mutations.iter().find(|m| *m.value == fin.value);
    let overwriter = mutations
        .iter()
        .filter(|m| m.op.outcome == Outcome::Ok)
        .max_by_key(|m| m.op.invoke_ns);
    let why = match (writer, overwriter) {
        (Some(w), Some(o)) => format!(
            "{} was written by the {} at line {}, which completed before the ok {} at line {} \
             began, so it had been overwritten",
            fin.value,
            w.op.f,
            line_of(history, w.op.invoke_event),
            o.op.f,
            line_of(history, o.op.invoke_event)
        ),
        (None, _) if fin.value.is_null() => {
            "the key is absent, yet acknowledged writes had set it".to_string()
        }
        _ => format!("no write in the history wrote {}", fin.value),
    };
    let mut named: Vec<&Mutation> = candidates.clone();
    named.sort_by_key(|m| std::cmp::Reverse(m.op.invoke_ns));
    named.truncate(CANDIDATES_NAMED_MAX);
    let allowed: Vec<Value> = named.iter().map(|m| m.value.clone()).collect();
    let mut events: Vec<AnomalyEvent> = writer.into_iter().map(|w| event(w.op)).collect();
    events.extend(named.iter().map(|m| event(m.op)));
    events.dedup();
    let allowed_text = if allowed.is_empty() && absent_allowed {
        "absent".to_string()
    } else {
        let texts: Vec<String> = allowed.iter().map(Value::to_string).collect();
        texts.join(" or ")
    };
    Some(Anomaly {
        class: FINAL_STATE_MISMATCH.to_string(),
        keys: vec![key.to_string()],
        events,
        explanation: format!(
            "after the run {key:?} holds {} on {}, but only {} could have been left by the last \
             write: {why}",
            fin.value, fin.node, allowed_text
        ),
        data: json!({
            "observed": fin.value,
            "node": fin.node,
            "allowed": allowed,
            "absent_allowed": absent_allowed,
            "candidates": candidates.len(),
        }),
        context: None,
        cause: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testkit::h;

    fn finals(pairs: &[(&str, Value)]) -> BTreeMap<String, FinalValue> {
        pairs
            .iter()
            .map(|(k, v)| {
                let fin = FinalValue {
                    value: v.clone(),
                    node: "127.0.0.1:7000".into(),
                };
                (k.to_string(), fin)
            })
            .collect()
    }

    const TWO_WRITES: &str = "
        0 invoke write k 1 @10
        0 ok     write k 1 @20
        1 invoke write k 2 @30
        1 ok     write k 2 @40
        2 invoke cas   k [2,3] @50
        2 info   cas   k [2,3] @60
    ";

    #[test]
    fn the_last_write_or_a_pending_cas_may_be_left() {
        let history = h(TWO_WRITES);
        for v in [json!(2), json!(3)] {
            let found = check_register(&history, &finals(&[("k", v)])).unwrap();
            assert!(found.is_empty(), "{found:?}");
        }
    }

    #[test]
    fn an_overwritten_value_is_a_mismatch_naming_both_writes() {
        let history = h(TWO_WRITES);
        let found = check_register(&history, &finals(&[("k", json!(1))])).unwrap();
        assert_eq!(found.len(), 1);
        let a = &found[0];
        assert_eq!(a.class, FINAL_STATE_MISMATCH);
        assert_eq!(a.events[0].line, 1, "the write of 1 comes first");
        assert!(a.explanation.contains("line 1"), "{}", a.explanation);
        assert!(a.explanation.contains("line 3"), "{}", a.explanation);
        assert_eq!(a.data["allowed"], json!([3, 2]));
    }

    #[test]
    fn absence_after_an_acknowledged_write_and_unknown_values_are_mismatches() {
        let history = h(TWO_WRITES);
        let found =
            check_register(&history, &finals(&[("k", Value::Null), ("j", json!(9))])).unwrap();
        assert_eq!(
            found.len(),
            2,
            "k was written; j has no writes: absent would do, 9 not"
        );
        let found = check_register(&history, &finals(&[("j", Value::Null)])).unwrap();
        assert!(found.is_empty(), "a key never written may be absent");
        let found = check_register(&history, &finals(&[("k", Value::Null)])).unwrap();
        assert!(found[0].explanation.contains("absent"));
        let found = check_register(&history, &finals(&[("k", json!(7))])).unwrap();
        assert!(found[0].explanation.contains("no write"));
    }

    #[test]
    fn concurrent_writes_and_failed_ones() {
        let history = h("
            0 invoke write k 1 @10
            1 invoke write k 2 @15
            0 ok     write k 1 @20
            1 ok     write k 2 @25
            2 invoke write k 5 @30
            2 fail   write k 5 @35
        ");
        for (v, bad) in [(json!(1), false), (json!(2), false), (json!(5), true)] {
            let found = check_register(&history, &finals(&[("k", v.clone())])).unwrap();
            assert_eq!(!found.is_empty(), bad, "{v}");
        }
        let found = check_register(&history, &finals(&[("k", Value::Null)])).unwrap();
        assert_eq!(found.len(), 1);
    }
}
