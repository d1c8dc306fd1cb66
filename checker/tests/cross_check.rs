//! The pruned search (obligations, `may_produce`, reachability in ordered models, committed
//! observers) against the plain search and an exhaustive search straight from the definition,
//! on small random histories of every model: same verdict, always.

use checker::model::counter::{Counter, CounterOp};
use checker::model::kv::{Kv, KvOp};
use checker::model::list_append::{ListAppend, ListOp};
use checker::model::multi_register::{MicroOp, MultiRegister};
use checker::model::register::{Register, RegisterOp};
use checker::model::set::{Set, SetOp};
use checker::wgl::{self, Budget, Interval, Search};
use checker::Model;
use proptest::prelude::*;
use std::fmt::Debug;

/// The brute-force oracle the unit tests use too.
#[path = "../src/testkit/oracle.rs"]
mod oracle;

fn verdict<S>(s: &Search<S>) -> bool {
    match s {
        Search::Valid { .. } => true,
        Search::Invalid { .. } => false,
        Search::Unknown { .. } => panic!("unknown on a tiny history"),
    }
}

fn agree<M: Model>(m: &M, ops: Vec<(M::Input, u64, Option<u64>)>) -> Result<(), TestCaseError>
where
    M::Input: Debug,
{
    let ops: Vec<Interval<M::Input>> = ops
        .into_iter()
        .map(|(input, call_ns, len)| Interval {
            input,
            call_ns,
            return_ns: len.map(|l| call_ns + l),
        })
        .collect();
    let expected = oracle::linearizable(m, &ops);
    let pruned = wgl::check(m, &ops, &Budget::default());
    let plain_budget = Budget {
        plain: true,
        ..Budget::default()
    };
    let plain = wgl::check(m, &ops, &plain_budget);
    prop_assert_eq!(verdict(&pruned), expected, "pruned vs brute on {:?}", ops);
    prop_assert_eq!(verdict(&plain), expected, "plain vs brute on {:?}", ops);
    if let Search::Invalid { prefix, state, .. } = &pruned {
        let end = prefix
            .iter()
            .try_fold(m.init(), |s, &i| m.step(&s, &ops[i].input));
        prop_assert_eq!(end.as_ref(), Some(state), "evidence prefix is legal");
    }
    Ok(())
}

/// Up to 7 ops: an input, a call time, and a duration (`None` = unknown outcome, 1 in 5).
fn history<I: Debug>(
    input: impl Strategy<Value = I>,
) -> impl Strategy<Value = Vec<(I, u64, Option<u64>)>> {
    prop::collection::vec(
        (input, 0u64..20, prop::option::weighted(0.8, 0u64..10)),
        1..=7,
    )
}

fn word() -> impl Strategy<Value = String> {
    prop::sample::select(vec!["", "a", "b", "ab", "ba", "aa", "aab", "abb", "bab"])
        .prop_map(String::from)
}

fn small_list() -> impl Strategy<Value = Vec<i64>> {
    prop::collection::vec(1i64..=3, 0..=3)
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 3000,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn kv(ops in history(prop_oneof![
        word().prop_map(KvOp::Get),
        prop::sample::select(vec!["a", "b", "ab"]).prop_map(|s| KvOp::Put(s.into())),
        prop::sample::select(vec!["a", "b"]).prop_map(|s| KvOp::Append(s.into())),
    ]), initial in prop::sample::select(vec!["", "a"])) {
        agree(&Kv { initial: initial.into() }, ops)?;
    }

    #[test]
    fn list_append(ops in history(prop_oneof![
        (1i64..=3).prop_map(ListOp::Append),
        small_list().prop_map(ListOp::Read),
    ])) {
        agree(&ListAppend::default(), ops)?;
    }

    #[test]
    fn set(ops in history(prop_oneof![
        (1i64..=3).prop_map(SetOp::Add),
        small_list().prop_map(|l| SetOp::Read(l.into_iter().collect())),
    ])) {
        agree(&Set::default(), ops)?;
    }

    #[test]
    fn counter(ops in history(prop_oneof![
        (1i64..=2, prop::option::of(0i64..=4))
            .prop_map(|(delta, result)| CounterOp::Incr { delta, result }),
        (0i64..=4).prop_map(CounterOp::Read),
    ])) {
        agree(&Counter::default(), ops)?;
    }

    #[test]
    fn register_with_failed_cas(ops in history({
        let value = prop::option::of(1i64..=3);
        prop_oneof![
            value.clone().prop_map(RegisterOp::Read),
            (1i64..=3).prop_map(RegisterOp::Write),
            (value.clone(), 1i64..=3).prop_map(|(expected, new)| RegisterOp::Cas { expected, new }),
            value.prop_map(RegisterOp::CasFailed),
        ]
    }), initial in prop::option::of(1i64..=2)) {
        agree(&Register::new(initial), ops)?;
    }

    #[test]
    fn multi_register(ops in history(prop::collection::vec(
        (any::<bool>(), prop::sample::select(vec!["x", "y"]), prop::option::of(0i64..=2)),
        1..=2,
    ).prop_map(|micros| micros.into_iter().map(|(write, k, v)| if write {
        MicroOp::Write(k.into(), v.unwrap_or(1))
    } else {
        MicroOp::Read(k.into(), v.map(Some))
    }).collect::<Vec<_>>()))) {
        agree(&MultiRegister { initial: Some(0) }, ops)?;
    }
}
