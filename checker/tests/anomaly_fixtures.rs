//! Every anomaly class the checker reports has a fixture pair in `histories/`: `<class>-ok.jsonl`
//! gets `valid` with no anomaly, `<class>-bad.jsonl` gets `invalid` (or, for the redirect
//! classes, the redirect anomaly), explained the way `histories/README.md` says: which key,
//! which ops (by file line, the header being line 1), which class, and for cycles the cycle's
//! transactions and edge kinds.

use checker::{
    analyze_redirects, check, check_elle, key_slot, Anomaly, CauseKind, CheckOptions, History,
    KeyReport, ModelKind, Report, Validity,
};
use serde_json::{json, Value};
use std::path::PathBuf;

/// Elle's classes beyond the classic cycles, in the shapes of Elle's own tests.
#[path = "anomaly_fixtures/elle_classes.rs"]
mod elle_classes;
#[path = "anomaly_fixtures/set_full.rs"]
mod set_full;

/// Reads a fixture: it has a header, no warnings, and every `slot` it names is its key's.
fn load(name: &str) -> History {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../histories")
        .join(format!("{name}.jsonl"));
    let history = History::read_file(&path).unwrap_or_else(|e| panic!("{e}"));
    assert!(history.header.is_some(), "{name} has a header line");
    assert!(
        history.warnings.is_empty(),
        "{name}: {:?}",
        history.warnings
    );
    for e in &history.events {
        let key = e.key.clone().or_else(|| {
            let first = e.value.as_array()?.first()?;
            first.get(1)?.as_str().map(String::from)
        });
        if let (Some(slot), Some(key)) = (e.slot, key) {
            assert_eq!(slot, key_slot(key.as_bytes()), "{name}: slot of {key}");
        }
    }
    history
}

fn elle(name: &str) -> Report {
    check_elle(&load(name), &CheckOptions::default()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn linear(name: &str, model: ModelKind) -> Report {
    check(&load(name), model, &CheckOptions::default()).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The report with the redirect-aware analysis added.
fn redirects(name: &str) -> Report {
    let history = load(name);
    let opts = CheckOptions::default();
    let mut report = check(&history, ModelKind::Register, &opts).unwrap();
    analyze_redirects(&history, ModelKind::Register, &opts, &mut report).unwrap();
    report
}

/// An anomaly as (class, keys, lines of the ops it names).
fn summary(a: &Anomaly) -> (&str, Vec<&str>, Vec<usize>) {
    let keys = a.keys.iter().map(String::as_str).collect();
    (&a.class, keys, a.events.iter().map(|e| e.line).collect())
}

/// A cycle's steps as (from line, to line, edge kind, key); event `i` is on line `i + 2`.
fn cycle(a: &Anomaly) -> Vec<(u64, u64, &str, &str)> {
    let steps = a.data["cycle"].as_array().expect("a cycle");
    let line = |v: &Value| v.as_u64().unwrap() + 2;
    steps
        .iter()
        .map(|s| {
            let kind = s["edge_kind"].as_str().unwrap();
            (
                line(&s["from_txn"]),
                line(&s["to_txn"]),
                kind,
                s["key"].as_str().unwrap_or("-"),
            )
        })
        .collect()
}

/// The one anomaly of `report`, which must be its only one.
fn only(report: &Report) -> &Anomaly {
    assert_eq!(report.anomalies.len(), 1, "{report}");
    &report.anomalies[0]
}

fn assert_valid(report: &Report) {
    assert_eq!(report.valid, Validity::Valid, "{report}");
    assert!(report.anomalies.is_empty(), "{report}");
}

/// The invalid keys, each with its explanation's (op line, stranded op line, prefix lines).
fn explained(report: &Report) -> Vec<(&str, usize, Option<usize>, Vec<usize>)> {
    let invalid = report.keys.iter().filter(|k| k.valid == Validity::Invalid);
    invalid
        .map(|k: &KeyReport| {
            let e = k.explanation.as_ref().expect("invalid keys are explained");
            let prefix = e.prefix.iter().map(|op| op.line).collect();
            (
                k.key.as_str(),
                e.op.line,
                e.stranded.as_ref().map(|s| s.line),
                prefix,
            )
        })
        .collect()
}

#[test]
fn cas_register() {
    assert_valid(&linear("cas-register-ok", ModelKind::CasRegister));
    let bad = linear("cas-register-bad", ModelKind::CasRegister);
    assert_eq!(bad.valid, Validity::Invalid, "{bad}");
    // After write 1 (line 2) the value is 1; cas 1->2 (line 4) must take effect by 4000 ns,
    // but would overwrite the 1 that cas 1->3 (line 6, invoked after it) still needs.
    assert_eq!(explained(&bad), [("c", 4, Some(6), vec![2])], "{bad}");
    assert_eq!(bad.keys[0].explanation.as_ref().unwrap().state, "1");
}

#[test]
fn counter() {
    assert_valid(&linear("counter-ok", ModelKind::Counter));
    let bad = linear("counter-bad", ModelKind::Counter);
    // After incr 2 (line 3) the counter is 2; incr 1 -> 3 (line 2) must take effect by
    // 2000 ns, but would overwrite the 2 that the read invoked at 3000 ns (line 6) returns.
    assert_eq!(explained(&bad), [("n", 2, Some(6), vec![3])], "{bad}");
    assert_eq!(bad.keys[0].explanation.as_ref().unwrap().state, "2");
}

#[test]
fn list_append_lost_write() {
    assert_valid(&elle("list-append-lost-write-ok"));
    let bad = elle("list-append-lost-write-bad");
    // Append 2 (line 4) is in neither final read; the last begun (line 9) proves it lost.
    let a = &bad.anomalies[0];
    assert_eq!(summary(a), ("lost-write", vec!["l"], vec![4, 9]));
    assert_eq!(a.data["element"], 2);
    assert_eq!(explained(&bad)[0].0, "l");
    // Never read, 2 is placed after the longest read [1 3], as Elle places unobserved writes:
    // after 3 (ww), though it completed before 3 began (G0-realtime), and missed by process 1's
    // own later read of [1 3] (rw; G-single-item-process). Elle, whose real-time graph holds
    // process order, names the second G-single-item-realtime.
    let cycles: Vec<_> = bad.anomalies[1..].iter().map(summary).collect();
    assert_eq!(
        cycles,
        [
            ("G-single-item-process", vec!["l"], vec![4, 9]),
            ("G0-realtime", vec!["l"], vec![4, 6]),
        ],
        "{bad}"
    );
    assert_eq!(
        cycle(&bad.anomalies[2]),
        [(4, 6, "realtime", "-"), (6, 4, "ww", "l")]
    );
}

#[test]
fn incompatible_order() {
    assert_valid(&elle("incompatible-order-ok"));
    let bad = elle("incompatible-order-bad");
    // The read of [2 1] (line 7) against the longest read, [1 2] (line 6).
    let a = only(&bad);
    assert_eq!(summary(a), ("incompatible-order", vec!["l"], vec![7, 6]));
    assert_eq!(a.data["reads"][0]["value"], json!([2, 1]));
}

#[test]
fn duplicate_elements() {
    assert_valid(&elle("duplicate-elements-ok"));
    let bad = elle("duplicate-elements-bad");
    // The read at line 6 holds 1 twice; no dependency cycle is made up from the repeat.
    let a = only(&bad);
    assert_eq!(summary(a), ("duplicate-elements", vec!["l"], vec![6]));
    assert_eq!(a.data["element"], 1);
}

#[test]
fn garbage_read() {
    assert_valid(&elle("garbage-read-ok"));
    let bad = elle("garbage-read-bad");
    // The read at line 4 holds 99, which nothing appended.
    let a = only(&bad);
    assert_eq!(summary(a), ("garbage-read", vec!["l"], vec![4]));
    assert_eq!(a.data["element"], 99);
}

#[test]
fn g_single_realtime() {
    assert_valid(&elle("G-single-item-realtime-ok"));
    let bad = elle("G-single-item-realtime-bad");
    assert_eq!(bad.valid, Validity::Invalid, "{bad}");
    let found: Vec<_> = bad.anomalies.iter().map(summary).collect();
    assert_eq!(
        found,
        [
            ("stale-read", vec!["l"], vec![2, 4, 6]),
            ("G-single-item-realtime", vec!["l"], vec![2, 4]),
        ],
        "{bad}"
    );
    // The append (line 2) completed before the read (line 4) began, and the read saw l empty,
    // without that append.
    assert_eq!(
        cycle(&bad.anomalies[1]),
        [(2, 4, "realtime", "-"), (4, 2, "rw", "l")]
    );
}

#[test]
fn g1a() {
    assert_valid(&elle("G1a-ok"));
    let bad = elle("G1a-bad");
    // The read (line 6) saw 2, appended by the transaction at line 4, which failed.
    let a = only(&bad);
    assert_eq!(summary(a), ("G1a", vec!["{t}x"], vec![6, 4]));
    assert_eq!(a.data["element"], 2);
}

#[test]
fn g1b() {
    assert_valid(&elle("G1b-ok"));
    let bad = elle("G1b-bad");
    // The read (line 3) ends in 1, which the transaction at line 2 followed with 2.
    let a = &bad.anomalies[0];
    assert_eq!(summary(a), ("G1b", vec!["{t}x"], vec![3, 2]));
    assert_eq!(a.data["element"], 1);
    // As in Elle's checker-test ("G1b": [:G-single-item :G1b]): 2 was never read, so it came
    // after 1, and the read of [1] missed it (rw) while observing 1 (wr).
    let b = &bad.anomalies[1];
    assert_eq!(bad.anomalies.len(), 2, "{bad}");
    assert_eq!(summary(b), ("G-single-item", vec!["{t}x"], vec![2, 3]));
    assert_eq!(cycle(b), [(2, 3, "wr", "{t}x"), (3, 2, "rw", "{t}x")]);
}

#[test]
fn g0() {
    assert_valid(&elle("G0-ok"));
    let bad = elle("G0-bad");
    let a = only(&bad);
    assert_eq!(summary(a), ("G0", vec!["{t}x", "{t}y"], vec![2, 3]));
    assert_eq!(
        cycle(a),
        [(2, 3, "ww", "{t}x"), (3, 2, "ww", "{t}y")],
        "{}",
        a.explanation
    );
    assert!(a
        .explanation
        .contains("However, T2 < T1, because T1 appended 1 after T2 appended 2 to {t}y"));
}

#[test]
fn g1c() {
    assert_valid(&elle("G1c-ok"));
    let bad = elle("G1c-bad");
    let a = only(&bad);
    assert_eq!(summary(a), ("G1c", vec!["{t}x", "{t}y"], vec![2, 3]));
    assert_eq!(cycle(a), [(2, 3, "wr", "{t}x"), (3, 2, "wr", "{t}y")]);
    assert!(a
        .explanation
        .contains("T1 < T2, because T2 observed T1's write of 1 to {t}x"));
}

#[test]
fn g_single() {
    assert_valid(&elle("G-single-item-ok"));
    let bad = elle("G-single-item-bad");
    let a = only(&bad);
    assert_eq!(
        summary(a),
        ("G-single-item", vec!["{t}x", "{t}y"], vec![2, 3])
    );
    assert_eq!(cycle(a), [(2, 3, "wr", "{t}x"), (3, 2, "rw", "{t}y")]);
    assert!(a
        .explanation
        .contains("T2 observed {t}y empty, without T1's append of 1"));
}

#[test]
fn g2_item() {
    assert_valid(&elle("G2-item-ok"));
    let bad = elle("G2-item-bad");
    let a = only(&bad);
    assert_eq!(summary(a), ("G2-item", vec!["{t}x", "{t}y"], vec![2, 3]));
    assert_eq!(cycle(a), [(2, 3, "rw", "{t}x"), (3, 2, "rw", "{t}y")]);
}

/// The one redirect anomaly of fixture `name`, checking that it makes the verdict invalid.
fn only_redirect_anomaly(name: &str) -> Anomaly {
    let bad = redirects(name);
    assert_eq!(bad.valid, Validity::Invalid, "{bad}");
    let listed: Vec<&Anomaly> = bad.anomalies.iter().filter(|a| a.is_redirect()).collect();
    assert_eq!(listed.len(), 1, "{name}");
    listed[0].clone()
}

#[test]
fn redirect_loop() {
    let ok = redirects("redirect-loop-ok");
    assert_valid(&ok);
    assert!(ok.anomalies.is_empty(), "{ok}");
    // Linearizable (the write failed, the read saw nothing), but 7000 sent line 3's write to
    // 7001 twice, 7001 sending it back in between: every anomaly counts in the verdict.
    let a = only_redirect_anomaly("redirect-loop-bad");
    assert_eq!(summary(&a), ("redirect-loop", vec!["k"], vec![3]));
    assert_eq!(
        a.data["path"],
        "127.0.0.1:7000 -MOVED-> 127.0.0.1:7001 -MOVED-> 127.0.0.1:7000 -MOVED-> 127.0.0.1:7001"
    );
    assert_eq!(a.cause.unwrap().kind, CauseKind::Server);
}

#[test]
fn ask_without_asking() {
    let ok = redirects("ask-without-asking-ok");
    assert_valid(&ok);
    assert!(ok.anomalies.is_empty(), "{ok}");
    let a = only_redirect_anomaly("ask-without-asking-bad");
    assert_eq!(summary(&a), ("ask-without-asking", vec!["k"], vec![5]));
    assert_eq!(
        a.data["path"],
        "127.0.0.1:7000 -ASK-> 127.0.0.1:7001 -MOVED-> 127.0.0.1:7000 (x2 = 4 hops)"
    );
    let cause = a.cause.unwrap();
    assert_eq!(cause.kind, CauseKind::Client);
    assert!(cause.why.contains("without ASKING"), "{}", cause.why);
}

#[test]
fn ask_as_moved() {
    let ok = redirects("ask-as-moved-ok");
    assert_valid(&ok);
    assert!(ok.anomalies.is_empty(), "{ok}");
    // The detour (back to 7000 once, then on to 7001 with the second ASK) is a bounce.
    assert_eq!(
        ok.redirect_analysis.as_ref().unwrap().stats.paths.bounces,
        1
    );
    let a = only_redirect_anomaly("ask-as-moved-bad");
    assert_eq!(summary(&a), ("ask-as-moved", vec!["k"], vec![5]));
    // The return to 7000 after each ASK is drawn, not hidden.
    assert_eq!(
        a.data["path"],
        "127.0.0.1:7000 -ASK-> 127.0.0.1:7001 (x3 = 3 hops)"
    );
    assert!(a.explanation.contains("went back to 127.0.0.1:7000"));
    assert_eq!(a.cause.unwrap().kind, CauseKind::Client);
    // The library's own give-up text ("TTL exhausted") names no redirect: `gave_up` counts it.
    let stats = redirects("ask-as-moved-bad")
        .redirect_analysis
        .unwrap()
        .stats;
    assert_eq!(stats.failed_on.ask, 1);
    assert_eq!(stats.violations["ask-as-moved"], 1);
}

#[test]
fn stale_route() {
    let ok = redirects("stale-route-ok");
    assert_valid(&ok);
    assert!(ok.anomalies.is_empty(), "{ok}");
    // Linearizable, but the read at line 6 went where line 4 had already been sent away from.
    let a = only_redirect_anomaly("stale-route-bad");
    assert_eq!(summary(&a), ("stale-route", vec!["k"], vec![4, 6]));
    assert_eq!(a.data["to"], "127.0.0.1:7001");
    assert_eq!(a.cause.unwrap().kind, CauseKind::Client);
}

#[test]
fn restart_empty_is_a_lost_write_with_the_kill_in_between() {
    let ok = redirects("restart-empty-ok");
    assert_valid(&ok);
    let history = load("restart-empty-bad");
    let bad = redirects("restart-empty-bad");
    // The read at line 8 finds nothing though the write at line 2 was acknowledged by 7000.
    assert_eq!(bad.valid, Validity::Invalid, "{bad}");
    let key = bad
        .keys
        .iter()
        .find(|k| k.valid == Validity::Invalid)
        .unwrap();
    let ops = checker::Ops::from_history(&history).unwrap().ops;
    let class = checker::classify::register_class(&ops, key.explanation.as_ref().unwrap());
    assert_eq!(class, "lost-write");
    let context = key.context.as_ref().expect("a context");
    let summary = context["summary"].to_string();
    assert!(
        summary.contains("between them: kill 127.0.0.1:7000 (lines 4..7)"),
        "{summary}"
    );
    assert_eq!(context["faults_between"][0]["f"], "kill");
    // Persistence was off (the header says nothing): the kill loses the write by design.
    assert_eq!(key.class.as_deref(), Some("lost-write"));
    let cause = key.cause.as_ref().expect("a cause");
    assert_eq!(cause.kind, CauseKind::DocumentedLoss, "{cause}");
    assert_eq!(cause.line, Some(4));
    // With every write on disk the same kill explains nothing: the loss is the server's.
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../histories/restart-empty-bad.jsonl");
    let text = std::fs::read_to_string(path).unwrap();
    let text = text.replacen("\"seed\":0", "\"seed\":0,\"persistence\":\"aof\"", 1);
    let aof = History::parse(text.as_bytes(), "restart-empty-aof").unwrap();
    let mut report = check(&aof, ModelKind::Register, &CheckOptions::default()).unwrap();
    analyze_redirects(
        &aof,
        ModelKind::Register,
        &CheckOptions::default(),
        &mut report,
    )
    .unwrap();
    let key = report
        .keys
        .iter()
        .find(|k| k.valid == Validity::Invalid)
        .unwrap();
    assert_eq!(key.cause.as_ref().unwrap().kind, CauseKind::Unexplained);
    assert_eq!(report.causes[&CauseKind::Unexplained]["lost-write"], 1);
}

#[test]
fn redirect_after_apply() {
    let ok = redirects("redirect-after-apply-ok");
    assert_valid(&ok);
    assert!(ok.anomalies.is_empty(), "{ok}");
    let bad = redirects("redirect-after-apply-bad");
    // The read of 2 (line 6) needs the write of 2 (line 4), which failed with MOVED.
    assert_eq!(bad.valid, Validity::Invalid, "{bad}");
    assert_eq!(explained(&bad), [("k", 6, None, vec![2])], "{bad}");
    let listed: Vec<&Anomaly> = bad.anomalies.iter().filter(|a| a.is_redirect()).collect();
    assert_eq!(listed.len(), 1);
    let a = listed[0];
    assert_eq!(summary(a), ("redirect-after-apply", vec!["k"], vec![4]));
    assert_eq!(a.data["errors"], json!(["MOVED 7629 127.0.0.1:7001"]));
}

#[test]
fn g0_realtime() {
    assert_valid(&elle("G0-realtime-ok"));
    let bad = elle("G0-realtime-bad");
    // The list says 2 (line 4) came before 1 (line 2), which completed before 2 began.
    let a = only(&bad);
    assert_eq!(summary(a), ("G0-realtime", vec!["l"], vec![2, 4]));
    assert_eq!(cycle(a), [(2, 4, "realtime", "-"), (4, 2, "ww", "l")]);
    assert_eq!(explained(&bad)[0].0, "l");
}

#[test]
fn g1c_realtime() {
    assert_valid(&elle("G1c-realtime-ok"));
    let bad = elle("G1c-realtime-bad");
    // The read (line 2) saw the append (line 4) that began after the read completed.
    let a = only(&bad);
    assert_eq!(summary(a), ("G1c-realtime", vec!["l"], vec![2, 4]));
    assert_eq!(cycle(a), [(2, 4, "realtime", "-"), (4, 2, "wr", "l")]);
}

#[test]
fn g2_item_realtime() {
    assert_valid(&elle("G2-item-realtime-ok"));
    let bad = elle("G2-item-realtime-bad");
    // T1 (line 2) completed before T3 (line 5) began; T3 missed T2's (line 3) append to {t}x;
    // T2 missed T1's append to {t}y.
    let a = only(&bad);
    assert_eq!(
        summary(a),
        ("G2-item-realtime", vec!["{t}x", "{t}y"], vec![2, 5, 3])
    );
    assert_eq!(
        cycle(a),
        [
            (2, 5, "realtime", "-"),
            (5, 3, "rw", "{t}x"),
            (3, 2, "rw", "{t}y")
        ]
    );
}

/// The `-process` variants: one process's own ops, in order, contradict the data; process order
/// is reported even where real time also orders the ops (it is the stronger finding).
#[test]
fn process_variants() {
    for (name, keys, lines, steps) in [
        (
            "G0-process",
            vec!["l"],
            vec![2, 4],
            vec![(2, 4, "process", "-"), (4, 2, "ww", "l")],
        ),
        (
            "G1c-process",
            vec!["l"],
            vec![2, 4],
            vec![(2, 4, "process", "-"), (4, 2, "wr", "l")],
        ),
        (
            "G-single-item-process",
            vec!["l"],
            vec![2, 4],
            vec![(2, 4, "process", "-"), (4, 2, "rw", "l")],
        ),
        (
            "G2-item-process",
            vec!["{t}x", "{t}y"],
            vec![2, 5, 3],
            vec![
                (2, 5, "process", "-"),
                (5, 3, "rw", "{t}x"),
                (3, 2, "rw", "{t}y"),
            ],
        ),
    ] {
        assert_valid(&elle(&format!("{name}-ok")));
        let bad = elle(&format!("{name}-bad"));
        let a = bad
            .anomalies
            .iter()
            .find(|a| a.class != "stale-read")
            .unwrap_or_else(|| panic!("{bad}"));
        assert_eq!(summary(a), (name, keys, lines), "{bad}");
        assert_eq!(cycle(a), steps, "{name}");
        // Process 0's read (line 4) also missed its own acknowledged append (line 2).
        let also =
            (name == "G-single-item-process").then_some(("stale-read", vec!["l"], vec![2, 4, 6]));
        let others: Vec<_> = bad
            .anomalies
            .iter()
            .filter(|b| *b != a)
            .map(summary)
            .collect();
        assert_eq!(others, Vec::from_iter(also), "{bad}");
    }
}

/// `cyclic-versions` (an rw-register history, checked as its run would be, under
/// `sequential-keys`): process 0's own order of `{t}x` is 1 < 2 (lines 2, 4) and 2 < 1 (lines 4,
/// 6). Without the assumption the bad history is valid: nothing else orders the writes.
#[test]
fn cyclic_versions() {
    let opts = CheckOptions {
        assumptions: checker::Assumptions {
            sequential_keys: true,
            ..checker::Assumptions::default()
        },
        ..CheckOptions::default()
    };
    let check = |name: &str| check_elle(&load(name), &opts).unwrap();
    assert_valid(&check("cyclic-versions-ok"));
    assert_valid(&elle("cyclic-versions-bad"));
    let bad = check("cyclic-versions-bad");
    let a = only(&bad);
    assert_eq!(summary(a), ("cyclic-versions", vec!["{t}x"], vec![2, 4, 6]));
    assert_eq!(a.data["scc"], json!([1, 2]));
    assert_eq!(
        a.data["sources"],
        json!(["initial-state", "sequential-keys"])
    );
    assert!(
        a.explanation.contains(
            "However, {t}x = 2 < {t}x = 1, because process 0 ran T2, which wrote 2, before T3, which read 1 (sequential-keys): a contradiction!"
        ),
        "{}",
        a.explanation
    );
}
