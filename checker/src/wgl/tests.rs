//! The search on small register histories, and against the plain search and brute force.

use super::*;
use crate::model::register::{Register, RegisterOp};
use crate::testkit::linearizable;

fn iv(input: RegisterOp, call_ns: u64, return_ns: Option<u64>) -> Interval<RegisterOp> {
    Interval {
        input,
        call_ns,
        return_ns,
    }
}

#[test]
fn empty_and_info_only_are_valid() {
    let m = Register::default();
    assert_eq!(
        check(&m, &[], &Budget::default()),
        Search::Valid { steps: 0 }
    );
    let ops = [iv(RegisterOp::Write(1), 0, None)];
    assert_eq!(
        check(&m, &ops, &Budget::default()),
        Search::Valid { steps: 0 }
    );
}

#[test]
fn touching_intervals_are_concurrent() {
    // The read returns at 10 and the write is invoked at 10: closed intervals overlap, so the
    // read may see the write.
    let m = Register::default();
    let ops = [
        iv(RegisterOp::Read(Some(1)), 0, Some(10)),
        iv(RegisterOp::Write(1), 10, Some(20)),
    ];
    assert!(matches!(
        check(&m, &ops, &Budget::default()),
        Search::Valid { .. }
    ));
    let ops = [
        iv(RegisterOp::Read(Some(1)), 0, Some(9)),
        iv(RegisterOp::Write(1), 10, Some(20)),
    ];
    let Search::Invalid {
        op, prefix, state, ..
    } = check(&m, &ops, &Budget::default())
    else {
        panic!()
    };
    assert_eq!((op, prefix, state), (0, vec![], None));
}

#[test]
fn deepest_prefix_is_reported() {
    let m = Register::default();
    let ops = [
        iv(RegisterOp::Write(1), 0, Some(10)),
        iv(RegisterOp::Write(2), 20, Some(30)),
        iv(RegisterOp::Read(Some(2)), 40, Some(50)),
        iv(RegisterOp::Read(Some(1)), 60, Some(70)),
    ];
    let Search::Invalid {
        op,
        prefix,
        state,
        stranded,
        ..
    } = check(&m, &ops, &Budget::default())
    else {
        panic!()
    };
    // Writing 2 would strand the read of 1 that comes after it.
    assert_eq!(
        (op, prefix, state, stranded),
        (1, vec![0], Some(1), Some(3))
    );
}

#[test]
fn step_budget_gives_unknown() {
    let m = Register::default();
    // Concurrent, so that no quiescent point lets the pieces be searched instead.
    let ops = [
        iv(RegisterOp::Write(1), 0, Some(10)),
        iv(RegisterOp::Read(Some(1)), 5, Some(30)),
    ];
    let budget = Budget {
        steps_max: 1,
        ..Budget::default()
    };
    assert_eq!(
        check(&m, &ops, &budget),
        Search::Unknown {
            steps: 1,
            exhausted: Exhausted::Steps
        }
    );
}

#[test]
fn pruned_search_agrees_with_plain_search_and_brute_force() {
    let mut seed = 0x1234_5678_9abc_def1_u64;
    let mut below = |n: u64| {
        seed ^= seed >> 12;
        seed ^= seed << 25;
        seed ^= seed >> 27;
        seed.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    };
    let value = |v: u64| if v == 0 { None } else { Some(v as i64) };
    let (mut valid, mut invalid) = (0, 0);
    for case in 0..4000 {
        let n = 1 + below(7) as usize;
        let m = Register::new(value(below(3)));
        let ops: Vec<_> = (0..n)
            .map(|_| {
                let input = match below(3) {
                    0 => RegisterOp::Read(value(below(4))),
                    1 => RegisterOp::Write(1 + below(3) as i64),
                    _ => RegisterOp::Cas {
                        expected: value(below(4)),
                        new: 1 + below(3) as i64,
                    },
                };
                let call_ns = below(20);
                let return_ns = (below(5) != 0).then(|| call_ns + below(10));
                iv(input, call_ns, return_ns)
            })
            .collect();
        let expected = linearizable(&m, &ops);
        let pruned = check(&m, &ops, &Budget::default());
        let plain_budget = Budget {
            plain: true,
            ..Budget::default()
        };
        let plain = check(&m, &ops, &plain_budget);
        let verdict = |s: &Search<Option<i64>>| match s {
            Search::Valid { .. } => true,
            Search::Invalid { .. } => false,
            Search::Unknown { .. } => panic!("case {case}: unknown"),
        };
        assert_eq!(
            verdict(&pruned),
            expected,
            "case {case}: pruned vs brute on {ops:?}, initial {m:?}"
        );
        assert_eq!(
            verdict(&plain),
            expected,
            "case {case}: plain vs brute on {ops:?}, initial {m:?}"
        );
        if let Search::Invalid { prefix, state, .. } = &pruned {
            // The evidence prefix is itself a legal sequence from the initial state.
            let end = prefix
                .iter()
                .try_fold(m.init(), |s, &i| m.step(&s, &ops[i].input));
            assert_eq!(end.as_ref(), Some(state), "case {case}");
        }
        if expected {
            valid += 1
        } else {
            invalid += 1
        }
    }
    assert!(
        valid > 500 && invalid > 500,
        "{valid} valid, {invalid} invalid"
    );
}
