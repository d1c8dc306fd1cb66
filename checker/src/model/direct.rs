//! Direct proofs for a register key: arguments that decide an op impossible without searching,
//! whatever the concurrency (the search would try every order of the concurrent writes first).
//!
//! - A read (or a successful cas) that observed a value no op could have produced: not the
//!   initial value, and no write or cas sets it, or every op that sets it was invoked after the
//!   read had completed. No order of the ops gives the read that value.
//! - A conflict of the zones argument ([`super::zones`]): a value had to stay in place over a
//!   stretch of time in which another write took effect.
//!
//! Each proof names the op it rules out and says why in one sentence; the explanation of the
//! key's report carries that sentence as its `proof`.

use super::register::{describe_value, RegisterOp};
use super::zones::{self, Zones};
use crate::hash::FxHasher;
use crate::search::Interval;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// The value an op observed and needs in place when it takes effect, if any.
fn observed(input: RegisterOp) -> Option<Option<i64>> {
    match input {
        RegisterOp::Read(v) | RegisterOp::Cas { expected: v, .. } => Some(v),
        _ => None,
    }
}

/// The first op of `ops` (by index) that observed a value no op could have produced before it
/// completed, with why; `initial` is the value before any op.
pub fn unproducible(initial: Option<i64>, ops: &[Interval<RegisterOp>]) -> Option<(usize, String)> {
    // Per value, the earliest invocation of an op that sets it.
    let mut first_set: FxMap<Option<i64>, u64> = FxMap::default();
    for op in ops {
        let set = match op.input {
            RegisterOp::Write(v) | RegisterOp::Cas { new: v, .. } => Some(v),
            RegisterOp::Delete => None,
            _ => continue,
        };
        let at = first_set.entry(set).or_insert(op.call_ns);
        *at = (*at).min(op.call_ns);
    }
    ops.iter().enumerate().find_map(|(i, op)| {
        let v = observed(op.input)?;
        let return_ns = op.return_ns?;
        if v == initial {
            return None;
        }
        let shown = describe_value(v);
        match first_set.get(&v) {
            None => Some((
                i,
                format!(
                    "it observed {shown}, which is not the initial value ({}) and which no op \
                     writes, so no order of the ops gives it",
                    describe_value(initial)
                ),
            )),
            Some(&at) if at > return_ns => Some((
                i,
                format!(
                    "it observed {shown} and completed at {return_ns} ns, before any op that \
                     writes {shown} was invoked (the first at {at} ns)"
                ),
            )),
            Some(_) => None,
        }
    })
}

/// Why op `op` of `ops` can take effect in no linearization, when a direct argument says so:
/// [`unproducible`], else a zones conflict whose inner write or first completing op is `op`.
pub fn proof(initial: Option<i64>, ops: &[Interval<RegisterOp>], op: usize) -> Option<String> {
    if let Some((i, why)) = unproducible(initial, ops) {
        return (i == op).then_some(why);
    }
    let Zones::Invalid(c) = zones::check(initial, ops) else {
        return None;
    };
    let ruled_out = c.inner.write.or(c.inner.first_complete_op);
    (ruled_out == Some(op)).then(|| {
        let at = |t: i128| match t {
            -1 => "the start".to_string(),
            i128::MAX => "the end".to_string(),
            t => format!("{t} ns"),
        };
        format!(
            "{}: {} had to stay in place from {} to {} (its earliest completion to the latest \
             invocation of an op that observed it), and {} had to take effect in between",
            c.anomaly(),
            describe_value(c.outer.value),
            at(c.outer.first_complete),
            at(c.outer.last_invoke),
            match c.inner.value {
                Some(v) => format!("the write of {v}"),
                None => "a write".to_string(),
            },
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn op(input: RegisterOp, call_ns: u64, return_ns: Option<u64>) -> Interval<RegisterOp> {
        Interval {
            input,
            call_ns,
            return_ns,
        }
    }

    #[test]
    fn a_read_of_a_value_never_written_is_ruled_out_among_any_number_of_writes() {
        // 20 concurrent writes of 1..=20, and a read of 99 inside all of them.
        let mut ops: Vec<_> = (1..=20)
            .map(|v| op(RegisterOp::Write(v), v as u64, Some(1000)))
            .collect();
        ops.push(op(RegisterOp::Read(Some(99)), 100, Some(200)));
        let (i, why) = unproducible(None, &ops).unwrap();
        assert_eq!(i, 20);
        assert!(why.contains("no op writes"), "{why}");
        assert_eq!(proof(None, &ops, 20), Some(why));
        // The read of a value one of them wrote is not ruled out; nor is the initial value.
        ops[20].input = RegisterOp::Read(Some(7));
        assert_eq!(unproducible(None, &ops), None);
        ops[20].input = RegisterOp::Read(Some(5));
        assert_eq!(unproducible(Some(5), &ops), None);
    }

    #[test]
    fn a_read_that_completed_before_every_write_of_its_value_is_ruled_out() {
        let ops = [
            op(RegisterOp::Read(Some(1)), 10, Some(20)),
            op(RegisterOp::Write(1), 30, Some(40)),
            op(
                RegisterOp::Cas {
                    expected: Some(1),
                    new: 2,
                },
                50,
                None,
            ),
        ];
        let (i, why) = unproducible(None, &ops).unwrap();
        assert_eq!(i, 0);
        assert!(why.contains("the first at 30 ns"), "{why}");
        // Touching intervals are concurrent: a write invoked when the read completes may be it.
        let touching = [
            op(RegisterOp::Read(Some(1)), 10, Some(30)),
            op(RegisterOp::Write(1), 30, Some(40)),
        ];
        assert_eq!(unproducible(None, &touching), None);
    }

    #[test]
    fn a_zones_conflict_names_the_write_it_rules_out() {
        // 1 is written and read at 30..40 after a read of 2 ended; then 2 is read again.
        let ops = [
            op(RegisterOp::Write(2), 0, Some(5)),
            op(RegisterOp::Read(Some(2)), 6, Some(10)),
            op(RegisterOp::Write(1), 20, Some(25)),
            op(RegisterOp::Read(Some(1)), 30, Some(40)),
            op(RegisterOp::Read(Some(2)), 50, Some(60)),
        ];
        let Zones::Invalid(c) = zones::check(None, &ops) else {
            panic!("zones should conflict");
        };
        let ruled = c.inner.write.or(c.inner.first_complete_op).unwrap();
        let why = proof(None, &ops, ruled).unwrap();
        assert!(
            why.starts_with("stale-read: 2 had to stay in place"),
            "{why}"
        );
        let other = (0..ops.len()).find(|&i| i != ruled).unwrap();
        assert_eq!(proof(None, &ops, other), None);
    }
}
