//! Every register fixture in `histories/` gets the verdict its README line promises, and the bad
//! ones are explained by the right key and op.

use checker::{check_register, CheckOptions, History, Report, Validity};
use std::path::PathBuf;

fn check(name: &str) -> Report {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../histories")
        .join(name);
    let history = History::read_file(&path).unwrap_or_else(|e| panic!("{e}"));
    assert!(history.header.is_some(), "{name} has a header line");
    assert!(
        history.warnings.is_empty(),
        "{name}: {:?}",
        history.warnings
    );
    check_register(&history, &CheckOptions::default()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The invalid keys, each with its explanation's (op line, stranded op line).
fn explained(report: &Report) -> Vec<(String, usize, Option<usize>)> {
    report
        .keys
        .iter()
        .filter(|k| k.valid == Validity::Invalid)
        .map(|k| {
            let e = k.explanation.as_ref().expect("invalid keys are explained");
            (
                k.key.clone(),
                e.op.line,
                e.stranded.as_ref().map(|s| s.line),
            )
        })
        .collect()
}

#[test]
fn register_ok() {
    let report = check("register-ok.jsonl");
    assert_eq!(report.valid, Validity::Valid, "{report}");
    assert_eq!(report.keys.len(), 2);
    assert_eq!((report.ops.ok, report.ops.fail, report.ops.info), (7, 1, 0));
    assert_eq!((report.redirects.moved, report.redirects.ask), (1, 1));
    assert_eq!(report.nemesis_events, 2);
}

#[test]
fn register_stale_read_bad() {
    let report = check("register-stale-read-bad.jsonl");
    assert_eq!(report.valid, Validity::Invalid, "{report}");
    // Write 21 (line 8) must finish by 4500 ns, but would overwrite 20, which the read invoked
    // at 5000 ns (line 10) returns.
    assert_eq!(
        explained(&report),
        [("k2".to_string(), 8, Some(10))],
        "{report}"
    );
    assert_eq!(report.valid.exit_code(), 1);
}

#[test]
fn register_lost_write_bad() {
    let report = check("register-lost-write-bad.jsonl");
    assert_eq!(report.valid, Validity::Invalid, "{report}");
    // The acknowledged write of 2 (line 7) cannot take effect: later reads (line 10) still see 1.
    assert_eq!(
        explained(&report),
        [("k".to_string(), 7, Some(10))],
        "{report}"
    );
    let e = report.keys[0].explanation.as_ref().unwrap();
    assert_eq!(e.state, "1");
    assert_eq!(
        e.prefix.iter().map(|op| op.line).collect::<Vec<_>>(),
        [2, 4]
    );
}

#[test]
fn register_phantom_bad() {
    let report = check("register-phantom-bad.jsonl");
    assert_eq!(report.valid, Validity::Invalid, "{report}");
    // The read of 99 (line 6) fits no state: nothing ever wrote 99.
    assert_eq!(explained(&report), [("k".to_string(), 6, None)], "{report}");
}

#[test]
fn register_info_ok() {
    let report = check("register-info-ok.jsonl");
    assert_eq!(report.valid, Validity::Valid, "{report}");
    assert_eq!((report.ops.ok, report.ops.fail, report.ops.info), (3, 0, 4));
    // Only the info write of 1 (read later) and the three ok reads need placing.
    assert_eq!(report.keys[0].ops_searched, 4);
}

#[test]
fn reports_serialize_jepsen_style() {
    let json = serde_json::to_value(check("register-phantom-bad.jsonl")).unwrap();
    assert_eq!(json["valid"], serde_json::Value::Bool(false));
    assert_eq!(json["keys"][0]["explanation"]["op"]["line"], 6);
}

#[test]
fn register_mset_ok() {
    let report = check("register-mset-ok.jsonl");
    assert_eq!(report.valid, Validity::Valid, "{report}");
    // Three multi-key ops and two reads, over the two keys the ops are read per key on.
    assert_eq!(report.keys.len(), 2);
    assert_eq!((report.ops.ok, report.ops.total()), (5, 5));
    assert_eq!(report.redirects.tryagain, 1);
}

#[test]
fn register_mset_lost_bad() {
    let report = check("register-mset-lost-bad.jsonl");
    assert_eq!(report.valid, Validity::Invalid, "{report}");
    // Only {m}:b: the MGET (line 7) reads it absent after the MSET (line 2) set it to 2.
    let want = [("{m}:b".to_string(), 7, None)];
    assert_eq!(explained(&report), want, "{report}");
    let e = report.keys[1].explanation.as_ref().unwrap();
    assert_eq!(e.prefix.iter().map(|op| op.line).collect::<Vec<_>>(), [2]);
}
