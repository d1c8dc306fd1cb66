//! Names the anomaly class of an invalid counter key by bounding what each observation could
//! have seen. A counter starting at 0 that only grows can, when an op observes it (an `ok` read,
//! or an `ok` `incr`'s result), hold no more than the sum of every increment invoked before that
//! op completed (`ok` or `info`: an `info` may have taken effect), and no less than the sum of
//! the `ok` increments completed before it began (plus its own, for an `incr`).
//! - **duplicated-increment**: an observation above the upper bound: some increment took effect
//!   more than once (a client resent it after a lost reply, say).
//! - **lost-increment**: an observation below the lower bound: an acknowledged increment is gone.
//! - **non-linearizable** when every observation is within its bounds but no order fits.

use crate::op::{Op, Outcome};

/// The class of an invalid counter key whose ops (of that key only) are `ops`.
pub fn counter_class(ops: &[&Op]) -> &'static str {
    let delta = |op: &Op| op.invoke_value.as_i64().unwrap_or(1);
    let increments = || {
        ops.iter()
            .filter(|op| matches!(op.f.as_str(), "incr" | "add"))
    };
    let mut lost = false;
    for seen in ops.iter().filter(|op| op.outcome == Outcome::Ok) {
        let value = match (seen.f.as_str(), seen.complete_value.as_i64()) {
            ("read" | "incr", Some(v)) => v,
            _ => continue,
        };
        let upper: i64 = increments()
            .filter(|op| op.outcome != Outcome::Fail && op.invoke_ns < seen.complete_ns)
            .map(|op| delta(op))
            .sum();
        if value > upper {
            return "duplicated-increment";
        }
        let own = if seen.f == "incr" { delta(seen) } else { 0 };
        let lower: i64 = increments()
            .filter(|op| op.outcome == Outcome::Ok && op.complete_ns < seen.invoke_ns)
            .map(|op| delta(op))
            .sum();
        lost |= value < lower + own;
    }
    if lost {
        "lost-increment"
    } else {
        "non-linearizable"
    }
}

/// Whether `ops` (of one key) are a counter's: some op increments.
pub fn is_counter(ops: &[&Op]) -> bool {
    ops.iter().any(|op| matches!(op.f.as_str(), "incr" | "add"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::Ops;
    use crate::testkit::h;

    fn class(table: &str) -> &'static str {
        let ops = Ops::from_history(&h(table)).unwrap().ops;
        let refs: Vec<&Op> = ops.iter().collect();
        assert!(is_counter(&refs));
        counter_class(&refs)
    }

    #[test]
    fn classes() {
        // An incr that timed out, then a read of 2: applied twice.
        let doubled = "0 invoke incr c 1 @10
                       0 info incr c 1 @20
                       1 invoke read c null @30
                       1 ok read c 2 @40";
        assert_eq!(class(doubled), "duplicated-increment");
        // An acknowledged incr, then a read of 0.
        let lost = "0 invoke incr c 1 @10
                    0 ok incr c 1 @20
                    1 invoke read c null @30
                    1 ok read c 0 @40";
        assert_eq!(class(lost), "lost-increment");
        // Two concurrent incrs both returning 1: within bounds, no order fits.
        let same = "0 invoke incr c 1 @10
                    1 invoke incr c 1 @11
                    0 ok incr c 1 @20
                    1 ok incr c 1 @21";
        assert_eq!(class(same), "non-linearizable");
    }
}
