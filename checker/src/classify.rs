//! Names the anomaly class of an invalid register key, so a report (or a matrix of runs) can say
//! *what* went wrong, not only that no linearization exists.
//!
//! Classes, tried in this order on the key's ops:
//! - **aborted-read** (Adya's G1a): an `ok` read (or the expected value of an `ok` cas) returned
//!   a value that only `fail` ops wrote — a write the client was told did not happen, did.
//! - **garbage-read**: an `ok` read returned a value no op of the key wrote at all.
//! - Otherwise the explanation's witness — its stranded op if it has one, else its op, if that
//!   observes a value (an `ok` read, or an `ok` cas through its expected value) — saw `v` although a
//!   write of another value was acknowledged before the witness began. (If no write was, because
//!   the search stopped early in the key's history, the witness is instead the first `ok`
//!   observation of absence after an acknowledged write: a key that vanished.) Of those writes,
//!   take the one acknowledged last:
//!   - **lost-write** if no op invoked after the witness completed ever observes its value again
//!     (the acknowledged write is gone: the key reverted, or vanished when `v` is absent);
//!   - **stale-read** if a later op observes it again (the witness read a value from the past,
//!     the write survived).
//! - **non-linearizable** when none of these fits (for instance only `info` writes are involved),
//!   and for a list or set key, whose anomalies Elle's analysis names.

use crate::explanation::Explanation;
use crate::op::{Op, Outcome};
use serde_json::Value;

/// The class of a key whose search found no linearization; see the module doc.
pub fn register_class(ops: &[Op], explanation: &Explanation) -> &'static str {
    let key = Some(explanation.key.as_str());
    let ops: Vec<&Op> = ops.iter().filter(|op| op.key.as_deref() == key).collect();
    if ops
        .iter()
        .any(|op| matches!(op.f.as_str(), "append" | "add"))
    {
        // A list or a set: the classes here are a register's; Elle's analysis names what its
        // reads missed or saw (lost-write, stale-read, garbage-read, ...).
        return "non-linearizable";
    }
    if let Some(class) = unwritten_read(&ops) {
        return class;
    }
    // With a stranded op, the explanation's op is the write that would destroy the state the
    // stranded op observed: the stranded op is the witness.
    let witness = [explanation.stranded.as_ref(), Some(&explanation.op)]
        .into_iter()
        .flatten()
        .filter_map(|r| ops.iter().find(|op| op.invoke_event == r.event).copied())
        .find(|op| observed(op).is_some());
    // When the search stopped where no acknowledged write precedes the witness, the key may
    // still have vanished later: the first observation of absence after an acknowledged write.
    let vanished = || {
        ops.iter()
            .filter(|op| observed(op).is_some_and(Value::is_null))
            .find(|r| missed(&ops, r).is_some())
            .copied()
    };
    witness
        .and_then(|w| old_value(&ops, w))
        .or_else(|| vanished().and_then(|w| old_value(&ops, w)))
        .unwrap_or("non-linearizable")
}

/// `lost-write` or `stale-read` if `witness` observed a value although a write of another was
/// acknowledged before it began (see the module doc); `None` if none was.
fn old_value(ops: &[&Op], witness: &Op) -> Option<&'static str> {
    let missed = missed(ops, witness)?;
    let seen_again = ops
        .iter()
        .filter(|op| op.invoke_ns > witness.complete_ns)
        .any(|op| observed(op) == Some(missed));
    Some(if seen_again {
        "stale-read"
    } else {
        "lost-write"
    })
}

/// The value of the write acknowledged last before `witness` began, among those whose value is
/// not the one `witness` observed.
fn missed<'o>(ops: &[&'o Op], witness: &Op) -> Option<&'o Value> {
    let seen = observed(witness)?;
    ops.iter()
        .filter(|op| op.outcome == Outcome::Ok && op.complete_ns < witness.invoke_ns)
        .filter_map(|op| written(op).map(|v| (op.complete_ns, v)))
        .filter(|(_, v)| *v != seen)
        .max_by_key(|(at, _)| *at)
        .map(|(_, v)| v)
}

/// `aborted-read` or `garbage-read` if an `ok` op of the key observed a value no `ok` or
/// `info` op wrote.
fn unwritten_read(ops: &[&Op]) -> Option<&'static str> {
    let wrote = |v: &Value, outcomes: &[Outcome]| {
        ops.iter()
            .any(|op| outcomes.contains(&op.outcome) && written(op) == Some(v))
    };
    let mut class = None;
    for v in ops
        .iter()
        .filter_map(|op| observed(op))
        .filter(|v| !v.is_null())
    {
        if wrote(v, &[Outcome::Ok, Outcome::Info]) {
            continue;
        }
        if wrote(v, &[Outcome::Fail]) {
            return Some("aborted-read");
        }
        class = Some("garbage-read");
    }
    class
}

/// The value an `ok` op observed: a read's result, or a cas's expected value.
fn observed(op: &Op) -> Option<&Value> {
    if op.outcome != Outcome::Ok {
        return None;
    }
    match op.f.as_str() {
        "read" => Some(&op.complete_value),
        "cas" => op.invoke_value.get(0),
        _ => None,
    }
}

/// The value a write or cas would write (whatever its outcome).
fn written(op: &Op) -> Option<&Value> {
    match op.f.as_str() {
        "write" => Some(&op.invoke_value),
        "cas" => op.invoke_value.get(1),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::register;
    use crate::op::Ops;
    use crate::options::CheckOptions;
    use crate::testkit::h;

    /// The class of the (only) invalid key of `table`.
    fn class(table: &str) -> &'static str {
        let history = h(table);
        let report = register(&history, &CheckOptions::default()).unwrap();
        let e = report
            .keys
            .iter()
            .find_map(|k| k.explanation.as_ref())
            .expect("an invalid key");
        register_class(&Ops::from_history(&history).unwrap().ops, e)
    }

    #[test]
    fn aborted_read() {
        assert_eq!(
            class(
                "
                0  invoke write k 1    @10
                0  ok     write k 1    @20
                0  invoke write k 2    @30
                0  fail   write k 2    @40
                1  invoke read  k null @50
                1  ok     read  k 2    @60
            "
            ),
            "aborted-read"
        );
    }

    #[test]
    fn garbage_read() {
        assert_eq!(
            class(
                "
                0  invoke write k 1    @10
                0  ok     write k 1    @20
                1  invoke read  k null @50
                1  ok     read  k 9    @60
            "
            ),
            "garbage-read"
        );
    }

    #[test]
    fn lost_write_reverts_or_vanishes() {
        // Written 2 after 1; later reads see 1 and never 2 again.
        let reverted = "
            0  invoke write k 1    @10
            0  ok     write k 1    @20
            1  invoke read  k null @21
            1  ok     read  k 1    @22
            0  invoke write k 2    @30
            0  ok     write k 2    @40
            1  invoke read  k null @50
            1  ok     read  k 1    @60
            1  invoke read  k null @70
            1  ok     read  k 1    @80
        ";
        assert_eq!(class(reverted), "lost-write");
        // The key vanishes: absent after an acknowledged write.
        let vanished = "
            0  invoke write k 1    @10
            0  ok     write k 1    @20
            1  invoke read  k null @50
            1  ok     read  k null @60
        ";
        assert_eq!(class(vanished), "lost-write");
    }

    #[test]
    fn a_key_that_vanishes_after_an_early_stop() {
        // The search stops at the read of 1, which began before the cas acknowledging 1
        // completed; the key vanishes later.
        assert_eq!(
            class(
                "
                0  invoke cas   k [null,1] @10
                1  invoke read  k null     @11
                1  ok     read  k 1        @12
                0  ok     cas   k [null,1] @20
                1  invoke read  k null     @30
                1  ok     read  k null     @40
            "
            ),
            "lost-write"
        );
    }

    #[test]
    fn stale_read_when_the_write_survives() {
        assert_eq!(
            class(
                "
                0  invoke write k 1    @10
                0  ok     write k 1    @20
                0  invoke write k 2    @30
                0  ok     write k 2    @40
                1  invoke read  k null @50
                1  ok     read  k 1    @60
                2  invoke read  k null @70
                2  ok     read  k 2    @80
            "
            ),
            "stale-read"
        );
    }

    #[test]
    fn cas_expected_value_counts_as_a_read() {
        // The cas saw 1 after 2 was acknowledged, and 2 is never seen again.
        assert_eq!(
            class(
                "
                0  invoke write k 1     @10
                0  ok     write k 1     @20
                0  invoke write k 2     @30
                0  ok     write k 2     @40
                1  invoke cas   k [1,3] @50
                1  ok     cas   k [1,3] @60
            "
            ),
            "lost-write"
        );
    }
}
