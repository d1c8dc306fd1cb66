//! The `redirect-after-apply` anomaly.
//!
//! **redirect-after-apply**: a server answered with a redirect (`MOVED`, `ASK`, `TRYAGAIN`)
//! after the operation had taken effect. The client records a redirect it gave up on as `fail`,
//! "certainly did not happen"; if a key that is not linearizable becomes linearizable once such
//! an op is read as `info` instead (it may have happened), then the op did happen and the reply
//! lied. Found by re-checking each invalid key with those ops relaxed, one at a time first (to
//! name the op), then all together; every re-check has the original search budget and the
//! number of re-checks per key is bounded.

use crate::anomaly::{Anomaly, AnomalyEvent};
use crate::explanation::OpRef;
use crate::history::RedirectKind;
use crate::history::{EventType, History, Process};
use crate::kind;
use crate::model::ModelKind;
use crate::op::{line_of, Op, Outcome};
use crate::options::{CheckError, CheckOptions};
use crate::redirects::gave_up_on;
use crate::report::Report;
use crate::validity::Validity;
use serde_json::json;
use std::collections::{HashMap, HashSet};

/// Redirect-failed ops tried one by one per key before trying them all at once.
pub const SINGLES_MAX: usize = 16;

/// Whether `op` is a `fail` the client blamed on a redirect reply.
pub fn failed_on_redirect(op: &Op) -> bool {
    op.outcome == Outcome::Fail
        && matches!(
            gave_up_on(op),
            Some(RedirectKind::Moved | RedirectKind::Ask | RedirectKind::TryAgain)
        )
}

/// Whether `op` belongs to the partition named `key` under `model`.
fn in_partition(model: ModelKind, op: &Op, key: &str) -> bool {
    match model {
        ModelKind::MultiRegister => true,
        // A multi-key op is in the partition of each key it touches (see `per_key`).
        ModelKind::Register | ModelKind::CasRegister => crate::per_key::touches(op, key),
        _ => op.key.as_deref().unwrap_or("") == key,
    }
}

/// The events of the ops in `part`, with the completions in `relax` turned into `info` and the
/// relaxed ops' processes continuing under fresh numbers (an `info` retires its process).
fn relaxed(history: &History, part: &[&Op], relax: &HashSet<usize>) -> History {
    let mut wanted: Vec<usize> = part
        .iter()
        .flat_map(|op| std::iter::once(op.invoke_event).chain(op.complete_event))
        .collect();
    wanted.sort_unstable();
    let mut fresh = history
        .events
        .iter()
        .filter_map(|e| match e.process {
            Process::Client(p) => Some(p + 1),
            Process::Nemesis => None,
        })
        .max()
        .unwrap_or(0);
    let mut alias: HashMap<u64, u64> = HashMap::new();
    let mut out = History {
        header: history.header.clone(),
        ..History::default()
    };
    for i in wanted {
        // `i` is a position in the file (a reduced history holds every op of the key).
        let Some(mut e) = history.event(i).cloned() else {
            continue;
        };
        if let Process::Client(p) = e.process {
            e.process = Process::Client(*alias.get(&p).unwrap_or(&p));
            if relax.contains(&i) {
                e.kind = EventType::Info;
                alias.insert(p, fresh);
                fresh += 1;
            }
        }
        out.events.push(e);
        out.lines.push(line_of(history, i));
    }
    out
}

/// One `redirect-after-apply` anomaly per invalid key of `report` that only a redirect-failed op
/// taking effect explains.
pub fn redirect_after_apply_cases(
    history: &History,
    ops: &[Op],
    model: ModelKind,
    opts: &CheckOptions,
    report: &Report,
) -> Result<Vec<Anomaly>, CheckError> {
    let mut out = Vec::new();
    for key in report.keys.iter().filter(|k| k.valid == Validity::Invalid) {
        let part: Vec<&Op> = ops
            .iter()
            .filter(|op| in_partition(model, op, &key.key))
            .collect();
        let suspects: Vec<&Op> = part
            .iter()
            .copied()
            .filter(|op| failed_on_redirect(op))
            .collect();
        if suspects.is_empty() {
            continue;
        }
        let valid_with = |relax: &[&Op]| -> Result<bool, CheckError> {
            let set: HashSet<usize> = relax.iter().filter_map(|op| op.complete_event).collect();
            let sub = relaxed(history, &part, &set);
            // Only this key: a multi-key op brings its other keys without their other ops.
            let checked = kind::check(&sub, model, opts)?;
            let valid = match checked.keys.iter().find(|k| k.key == key.key) {
                Some(k) => k.valid,
                None => checked.valid,
            };
            Ok(valid == Validity::Valid)
        };
        let mut named: Vec<&Op> = Vec::new();
        for op in suspects.iter().take(SINGLES_MAX) {
            if valid_with(&[op])? {
                named.push(op);
                break;
            }
        }
        if named.is_empty() && suspects.len() > 1 && valid_with(&suspects)? {
            named = suspects.clone();
        }
        if named.is_empty() {
            continue;
        }
        out.push(anomaly(history, &key.key, &named));
    }
    Ok(out)
}

fn anomaly(history: &History, key: &str, named: &[&Op]) -> Anomaly {
    let refs: Vec<OpRef> = named.iter().map(|op| OpRef::new(history, op)).collect();
    let what: Vec<String> = named
        .iter()
        .zip(&refs)
        .map(|(op, r)| format!("{r} failed with `{}`", op.error.as_deref().unwrap_or("")))
        .collect();
    let (them, it) = if named.len() == 1 {
        ("this op", "it")
    } else {
        ("these ops", "they")
    };
    Anomaly {
        class: "redirect-after-apply".into(),
        keys: vec![key.to_string()],
        events: refs
            .iter()
            .map(|r| AnomalyEvent {
                event: r.event,
                line: r.line,
            })
            .collect(),
        explanation: format!(
            "key {key:?} is not linearizable if {them} certainly did not happen: {}; yet it is \
             if {it} took effect: a server answered with a redirect after the operation had \
             taken effect.",
            what.join("; ")
        ),
        data: json!({"ops": refs, "errors": named.iter().map(|op| &op.error).collect::<Vec<_>>(),
                     "redirects": named.iter().map(|op| &op.redirects).collect::<Vec<_>>()}),
        context: None,
        cause: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::Ops;
    use crate::testkit::h;

    fn cases(table: &str, errors: &[(usize, &str)]) -> Vec<Anomaly> {
        let mut history = h(table);
        for &(event, text) in errors {
            history.events[event].error = Some(text.to_string());
        }
        let ops = Ops::from_history(&history).unwrap().ops;
        let opts = CheckOptions::default();
        let report = kind::check(&history, ModelKind::Register, &opts).unwrap();
        redirect_after_apply_cases(&history, &ops, ModelKind::Register, &opts, &report).unwrap()
    }

    #[test]
    fn a_moved_write_that_was_read_is_named() {
        let table = "
            # event
            0  invoke write k 1    @10   # 0
            0  fail   write k 1    @20   # 1
            0  invoke read  k null @30   # 2
            0  ok     read  k 1    @40   # 3
            1  invoke write j 5    @10   # 4
            1  fail   write j 5    @20   # 5
        ";
        let table: String = table
            .lines()
            .map(|l| l.split('#').next().unwrap())
            .collect::<Vec<_>>()
            .join("\n");
        let found = cases(
            &table,
            &[(1, "MOVED 7629 127.0.0.1:7001"), (5, "MOVED 1 a:1")],
        );
        assert_eq!(found.len(), 1);
        let a = &found[0];
        assert_eq!(a.class, "redirect-after-apply");
        assert_eq!(a.keys, vec!["k".to_string()]);
        assert_eq!(a.events, vec![AnomalyEvent { event: 0, line: 1 }]);
        assert!(a.explanation.contains("MOVED 7629"), "{}", a.explanation);
        // A redirect the client followed until its hop limit is blamed the same way.
        let gave_up = "gave up after 16 hops: MOVED 7629 127.0.0.1:7001";
        assert_eq!(cases(&table, &[(1, gave_up)]).len(), 1);
        assert_eq!(
            crate::redirects::last_reply("gave up after 2 hops: ERR x"),
            "ERR x"
        );
        // The same history with a plain error reply: nothing to blame on a redirect.
        assert!(cases(&table, &[(1, "ERR wrong type")]).is_empty());
    }

    #[test]
    fn a_violation_that_stays_is_not_blamed_on_the_redirect() {
        let table = "
            0  invoke write k 1    @10
            0  fail   write k 1    @20
            0  invoke read  k null @30
            0  ok     read  k 9    @40
        ";
        assert!(cases(table, &[(1, "ASK 7629 a:1")]).is_empty());
    }
}
