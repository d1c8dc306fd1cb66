//! The register check on small tabular histories: stale reads, lost writes, cas, budgets, counts.

use super::*;
use crate::history::EventType;
use crate::op::OpError;
use crate::report::OutcomeCounts;
use crate::report::RedirectCounts;
use crate::testkit::h;
use crate::validity::Validity;

fn check(table: &str) -> Report {
    register(&h(table), &CheckOptions::default()).unwrap()
}

/// The invalid key's explanation as (failing op's line, prefix lines, state, stranded op's
/// line).
fn why(report: &Report) -> (usize, Vec<usize>, String, Option<usize>) {
    let e = report
        .keys
        .iter()
        .find_map(|k| k.explanation.as_ref())
        .expect("an explanation");
    let prefix = e.prefix.iter().map(|op| op.line).collect();
    (
        e.op.line,
        prefix,
        e.state.clone(),
        e.stranded.as_ref().map(|op| op.line),
    )
}

#[test]
fn valid_concurrent_history() {
    let report = check(
        "
        0  invoke write k 1    @10
        1  invoke read  k null @15
        0  ok     write k 1    @20
        1  ok     read  k null @25
        2  invoke read  k null @30
        0  invoke write k 2    @35
        1  invoke read  k null @36
        2  ok     read  k 1    @40
        1  ok     read  k 2    @45
        0  ok     write k 2    @50
        2  invoke read  k null @55
        2  ok     read  k 2    @60
    ",
    );
    assert_eq!(report.valid, Validity::Valid, "{report}");
    assert_eq!(report.keys.len(), 1);
    assert_eq!((report.keys[0].ops, report.keys[0].ops_searched), (6, 6));
}

#[test]
fn stale_read() {
    let report = check(
        "
        0  invoke write k 1    @10
        0  ok     write k 1    @20
        0  invoke write k 2    @30
        0  ok     write k 2    @40
        1  invoke read  k null @50
        1  ok     read  k 1    @60
    ",
    );
    assert_eq!(report.valid, Validity::Invalid);
    // Writing 2 (line 3) must finish by 40 ns, but would strand the read of 1 (line 5).
    assert_eq!(why(&report), (3, vec![1], "1".into(), Some(5)));
    let text = report.to_string();
    assert!(
        text.contains("line 3: process 0 write 2 (ok, 30..40 ns)"),
        "{text}"
    );
    assert!(
        text.contains("line 5: process 1 read -> 1 (ok, 50..60 ns)"),
        "{text}"
    );
}

#[test]
fn lost_write() {
    // The write of 2 is acknowledged, yet later reads still see 1.
    let report = check(
        "
        0  invoke write k 1    @10
        0  ok     write k 1    @20
        1  invoke read  k null @30
        1  ok     read  k 1    @40
        0  invoke write k 2    @50
        0  ok     write k 2    @60
        1  invoke read  k null @70
        1  ok     read  k 1    @80
        2  invoke read  k null @90
        2  ok     read  k 1    @100
    ",
    );
    assert_eq!(report.valid, Validity::Invalid);
    assert_eq!(why(&report), (5, vec![1, 3], "1".into(), Some(7)));
}

#[test]
fn phantom_value() {
    let report = check(
        "
        0  invoke write k 1    @10
        0  ok     write k 1    @20
        1  invoke read  k null @30
        1  ok     read  k 7    @40
    ",
    );
    assert_eq!(report.valid, Validity::Invalid);
    assert_eq!(why(&report), (3, vec![1], "1".into(), None));
}

#[test]
fn info_write_taking_effect_later_is_valid() {
    let report = check(
        "
        0  invoke write k 1    @10
        0  info   write k 1    @20
        1  invoke read  k null @30
        1  ok     read  k null @40
        1  invoke read  k null @50
        1  ok     read  k 1    @60
    ",
    );
    assert_eq!(report.valid, Validity::Valid, "{report}");
    assert_eq!(
        report.ops,
        OutcomeCounts {
            ok: 2,
            fail: 0,
            info: 1
        }
    );
}

#[test]
fn info_write_never_read_is_valid_and_not_searched() {
    let report = check(
        "
        0  invoke write k 1    @10
        0  info   write k 1    @20
        1  invoke read  k null @30
        1  ok     read  k null @40
        2  invoke write k 2    @45
        1  invoke read  k null @50
        1  ok     read  k null @60
    ",
    );
    assert_eq!(report.valid, Validity::Valid, "{report}");
    // Both crashed writes (one `info`, one never completed) are unobserved: dropped.
    assert_eq!((report.keys[0].ops, report.keys[0].ops_searched), (4, 2));
}

#[test]
fn failed_write_whose_value_is_read() {
    let report = check(
        "
        0  invoke write k 1    @10
        0  fail   write k 1    @20
        1  invoke read  k null @30
        1  ok     read  k 1    @40
    ",
    );
    assert_eq!(report.valid, Validity::Invalid);
    assert_eq!(why(&report), (3, vec![], "absent".into(), None));
}

#[test]
fn cas_ok_and_fail() {
    let valid = check(
        "
        0  invoke write k 1     @10
        0  ok     write k 1     @20
        0  invoke cas   k [1,2] @30
        0  ok     cas   k [1,2] @40
        1  invoke cas   k [1,3] @50
        1  fail   cas   k [1,3] @60
        1  invoke read  k null  @70
        1  ok     read  k 2     @80
    ",
    );
    assert_eq!(valid.valid, Validity::Valid, "{valid}");
    // An ok cas whose expected value was not there.
    let bad = check(
        "
        0  invoke write k 3     @10
        0  ok     write k 3     @20
        0  invoke cas   k [1,2] @30
        0  ok     cas   k [1,2] @40
    ",
    );
    assert_eq!(why(&bad), (3, vec![1], "3".into(), None));
    // A failed cas whose new value shows up.
    let bad = check(
        "
        0  invoke write k 1     @10
        0  ok     write k 1     @20
        0  invoke cas   k [1,2] @30
        0  fail   cas   k [1,2] @40
        1  invoke read  k null  @50
        1  ok     read  k 2     @60
    ",
    );
    assert_eq!(why(&bad), (5, vec![1], "1".into(), None));
}

#[test]
fn info_cas_may_apply_or_not() {
    let report = check(
        "
        0  invoke cas   k [null,1] @10
        0  info   cas   k [null,1] @20
        1  invoke read  k null     @30
        1  ok     read  k null     @40
        1  invoke read  k null     @50
        1  ok     read  k 1        @60
    ",
    );
    assert_eq!(report.valid, Validity::Valid, "{report}");
}

#[test]
fn keys_are_independent_and_invalid_wins() {
    let report = check(
        "
        0  invoke write a 1    @10
        0  ok     write a 1    @20
        1  invoke read  b null @30
        1  ok     read  b 1    @40
        0  invoke read  a null @50
        0  ok     read  a 1    @60
    ",
    );
    assert_eq!(report.valid, Validity::Invalid);
    let verdicts: Vec<_> = report
        .keys
        .iter()
        .map(|k| (k.key.as_str(), k.valid))
        .collect();
    assert_eq!(verdicts, [("a", Validity::Valid), ("b", Validity::Invalid)]);
}

#[test]
fn step_budget_gives_unknown() {
    let history = h("
        0  invoke write k 1    @10
        1  invoke write k 2    @11
        0  ok     write k 1    @20
        1  ok     write k 2    @21
        0  invoke read  k null @30
        0  ok     read  k 1    @40
    ");
    let opts = CheckOptions {
        steps_max_per_key: 3,
        ..CheckOptions::default()
    };
    let report = register(&history, &opts).unwrap();
    assert_eq!(report.valid, Validity::Unknown);
    assert_eq!(report.valid.exit_code(), 2);
    assert_eq!(report.keys[0].steps, 3);
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["valid"], Value::from("unknown"));
    assert_eq!(
        json["keys"][0]["unknown"],
        Value::from("step budget (3 steps) exhausted")
    );
    let unbounded = register(&history, &CheckOptions::default()).unwrap();
    assert_eq!(unbounded.valid, Validity::Valid);
}

#[test]
fn initial_value_is_configurable() {
    let history = h("
        0  invoke read k null @10
        0  ok     read k 5    @20
    ");
    let opts = CheckOptions {
        initial: Value::from(5),
        ..CheckOptions::default()
    };
    assert_eq!(register(&history, &opts).unwrap().valid, Validity::Valid);
    assert_eq!(
        register(&history, &CheckOptions::default()).unwrap().valid,
        Validity::Invalid
    );
    let opts = CheckOptions {
        initial: Value::from("x"),
        ..CheckOptions::default()
    };
    let err = register(&history, &opts).unwrap_err();
    assert!(
        matches!(
            err,
            CheckError::Option {
                option: "initial",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn fields_that_do_not_fit_name_line_and_field() {
    let err = |table: &str| register(&h(table), &CheckOptions::default()).unwrap_err();
    let e = err("
        0  invoke write k 1 @10
        0  ok     write - 1 @20
    ");
    assert!(
        matches!(
            e,
            CheckError::Op(OpError::Mismatch {
                line: 2,
                field: "key",
                ..
            })
        ),
        "{e}"
    );
    let e = err("
        0  invoke write - 1 @10
        0  ok     write - 1 @20
    ");
    assert_eq!(e.to_string(), "line 1 (event 0): field `key`: the register model needs a key on every op; this write has none");
    // The bad field's (line, name), for errors of the model's fields.
    let field = |e: CheckError| match e {
        CheckError::Field { line, field, .. } => (line, field),
        other => panic!("{other}"),
    };
    let cases = [
        ("0  invoke incr k 1 @10", (1, "f")),
        (
            "0  invoke read k null  @10\n0  ok     read k \"x\" @20",
            (2, "value"),
        ),
        ("0  invoke cas  k 1  @10", (1, "value")),
        (
            "0  invoke write k 1 @10\n0  ok     write k 2 @20",
            (2, "value"),
        ),
    ];
    for (table, expected) in cases {
        assert_eq!(field(err(table)), expected, "{table}");
    }
}

#[test]
fn report_counts_and_json_shape() {
    let report = check(
        "
        nemesis info   migrate-start - {}   @5
        0       invoke write         k 1    @10
        0       ok     write         k 1    @20   moved ask
        1       invoke read          k null @30
        1       fail   read          k null @40   clusterdown
        1       invoke read          k null @50
        1       info   read          k null @60
        nemesis info   migrate-end   - {}   @70
    ",
    );
    assert_eq!(report.valid, Validity::Valid);
    assert_eq!(
        report.ops,
        OutcomeCounts {
            ok: 1,
            fail: 1,
            info: 1
        }
    );
    assert_eq!(
        report.ops_by_f["read"],
        OutcomeCounts {
            ok: 0,
            fail: 1,
            info: 1
        }
    );
    assert_eq!(
        report.redirects,
        RedirectCounts {
            moved: 1,
            ask: 1,
            tryagain: 0,
            clusterdown: 1,
            ..RedirectCounts::default()
        }
    );
    assert_eq!(report.nemesis_events, 2);
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["valid"], Value::Bool(true));
    assert_eq!(json["redirects"]["ask"], Value::from(1));
    let text = report.to_string();
    assert!(
        text.starts_with("register-linearizable: valid (1 keys: 1 valid"),
        "{text}"
    );
}

mod simulated;

#[test]
fn a_read_no_write_produced_is_invalid_at_once_among_concurrent_writes() {
    // 20 writes all concurrent with one read of a value none of them writes: the search would
    // try the writes' orders; the direct proof decides at once, and the explanation says why.
    let mut table = String::new();
    for p in 0..20 {
        table += &format!("{p} invoke write k {} @{}\n", p + 1, 10 + p);
    }
    table += "20 invoke read k null @50\n20 ok read k 99 @60\n";
    for p in 0..20 {
        table += &format!("{p} ok write k {} @{}\n", p + 1, 100 + p);
    }
    let report = check(&table);
    assert_eq!(report.valid, Validity::Invalid);
    let key = &report.keys[0];
    let e = key.explanation.as_ref().unwrap();
    assert_eq!(e.op.line, 21, "the read");
    let proof = e.proof.as_deref().unwrap();
    assert!(
        proof.contains("it observed 99") && proof.contains("no op writes"),
        "{proof}"
    );
    assert!(key.steps <= 200_000, "{} steps", key.steps);
    assert!(
        e.to_string()
            .contains("It cannot, in any order: it observed 99"),
        "{e}"
    );
    // The same read of a value one write wrote is valid: the proof is no guess.
    let valid = check(&table.replace("read k 99", "read k 7"));
    assert_eq!(valid.valid, Validity::Valid);
}
