//! Elle's rw-register test shapes (`test/elle/rw_register_test.clj`), written as our histories:
//! each asserts Elle's verdict and classes, with and without the assumption it needs.

use super::*;
use crate::elle::txn::txns;
use crate::op::Ops;
use crate::options::CheckOptions;
use crate::testkit::h;
use crate::validity::Validity;

/// Elle's compact transactions, `wx1ry_` = `[["w","x",1],["r","y",null]]`, as a JSON value;
/// `invoke` leaves reads `null` as an invocation does.
fn mops(text: &str, invoke: bool) -> String {
    let mut out: Vec<String> = Vec::new();
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let (f, k) = (chars[i], chars[i + 1]);
        i += 2;
        let start = i;
        while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '_') {
            i += 1;
        }
        let v: String = chars[start..i].iter().collect();
        let v = if v == "_" || (invoke && f == 'r') {
            "null".to_string()
        } else {
            v
        };
        out.push(format!("[\"{f}\",\"{k}\",{v}]"));
    }
    format!("[{}]", out.join(","))
}

/// A history from rows `process type mops @time`, as [`h`] reads them.
fn history(rows: &str) -> crate::history::History {
    let mut table = String::new();
    for row in rows.lines().map(str::trim).filter(|r| !r.is_empty()) {
        let cols: Vec<&str> = row.split_whitespace().collect();
        let value = mops(cols[2], cols[1] == "invoke");
        table += &format!("{} {} txn - {value} {}\n", cols[0], cols[1], cols[3]);
    }
    h(&table)
}

fn assume(wfr: bool, sequential: bool, linearizable: bool) -> Assumptions {
    Assumptions {
        wfr_keys: wfr,
        sequential_keys: sequential,
        linearizable_keys: linearizable,
    }
}

/// The verdict and the sorted anomaly classes of `rows` under `assumptions`.
fn check(rows: &str, assumptions: Assumptions) -> (Validity, Vec<String>) {
    let opts = CheckOptions {
        assumptions,
        ..CheckOptions::default()
    };
    let report = crate::elle::check(&history(rows), &opts).unwrap();
    let mut classes: Vec<String> = report.anomalies.iter().map(|a| a.class.clone()).collect();
    classes.sort();
    (report.valid, classes)
}

fn anomalies(rows: &str, assumptions: Assumptions) -> Vec<Anomaly> {
    let opts = CheckOptions {
        assumptions,
        ..CheckOptions::default()
    };
    crate::elle::check(&history(rows), &opts).unwrap().anomalies
}

fn valid() -> (Validity, Vec<String>) {
    (Validity::Valid, vec![])
}

fn invalid(classes: &[&str]) -> (Validity, Vec<String>) {
    (
        Validity::Invalid,
        classes.iter().map(|c| c.to_string()).collect(),
    )
}

#[test]
fn external_reads_and_writes_are_elles() {
    let rows = "0 invoke wx1wx2rx_ry3ry4wy5 @1\n0 ok wx1wx2rx2ry3ry4wy5 @2";
    let hist = history(rows);
    let ops = Ops::from_history(&hist).unwrap().ops;
    let (txns, _) = txns(&hist, &ops).unwrap();
    // x: written twice then read back (internal): the last write only; y: the first read, the
    // last write.
    let x = Touch {
        read: None,
        write: Some(2),
    };
    let y = Touch {
        read: Some(Some(3)),
        write: Some(5),
    };
    assert_eq!(touches(&txns[0]), [(0, x), (1, y)]);
    assert_eq!((y.first(), y.last()), (Some(Some(3)), Some(Some(5))));
}

/// Elle's "cyclic version order": one process writes x = 1, x = 2, then reads x = 1.
#[test]
fn cyclic_versions_under_sequential_keys() {
    let rows = |last: &str| {
        format!(
            "0 invoke wx1 @10\n0 ok wx1 @20\n0 invoke wx2 @30\n0 ok wx2 @40\n0 invoke {last} @50\n0 ok {last} @60"
        )
    };
    let seq = assume(false, true, false);
    assert_eq!(check(&rows("rx2"), seq), valid());
    assert_eq!(check(&rows("rx1"), Assumptions::default()), valid());
    assert_eq!(check(&rows("rx1"), seq), invalid(&["cyclic-versions"]));
    let a = &anomalies(&rows("rx1"), seq)[0];
    assert_eq!(a.data["scc"], serde_json::json!([1, 2]));
    assert_eq!(
        a.data["sources"],
        serde_json::json!(["initial-state", "sequential-keys"])
    );
    assert_eq!(
        a.data["assumptions"],
        serde_json::json!(["sequential-keys"])
    );
    assert_eq!(a.keys, ["x"]);
    let lines: Vec<usize> = a.events.iter().map(|e| e.line).collect();
    assert_eq!(lines, [1, 3, 5], "{}", a.explanation);
    for needle in [
        "T1 = process 0 at line 1: [w x 1]",
        "  - x = 1 < x = 2, because process 0 ran T1, which wrote 1, before T2, which wrote 2 (sequential-keys).",
        "  - However, x = 2 < x = 1, because process 0 ran T2, which wrote 2, before T3, which read 1 (sequential-keys): a contradiction!",
        "This rests on the assumption sequential-keys (each key is sequentially consistent",
    ] {
        assert!(a.explanation.contains(needle), "{needle}\n{}", a.explanation);
    }
}

/// Elle's "read read returns what was just been written", with 2 written by a transaction
/// concurrent with all (Elle leaves 2 unwritten, which we report as `garbage-read`).
#[test]
fn cyclic_versions_under_linearizable_keys() {
    let rows = |last: &str| {
        format!(
            "1 invoke wx2 @5\n0 invoke wx1 @10\n0 ok wx1 @20\n0 invoke rx2 @30\n0 ok rx2 @40\n0 invoke {last} @50\n0 ok {last} @60\n1 ok wx2 @100"
        )
    };
    let lin = assume(false, false, true);
    assert_eq!(check(&rows("rx2"), lin), valid());
    assert_eq!(check(&rows("rx1"), Assumptions::default()), valid());
    assert_eq!(check(&rows("rx1"), lin), invalid(&["cyclic-versions"]));
    let a = &anomalies(&rows("rx1"), lin)[0];
    assert_eq!(
        a.data["sources"],
        serde_json::json!(["initial-state", "linearizable-keys"])
    );
    assert!(
        a.explanation
            .contains("T1, which wrote 1, completed at 20 ns, before T2, which read 2, began at 30 ns (linearizable-keys)"),
        "{}",
        a.explanation
    );
}

/// Elle's "G0" under sequential keys: T1 < T2 on x and T2 < T1 on y, seen only through each
/// process's later read.
#[test]
fn g0_from_sequential_keys() {
    let rows = |y: &str| {
        format!(
            "0 invoke wx1wy2 @10\n0 ok wx1wy2 @20\n1 invoke wx2wy1 @30\n1 ok wx2wy1 @40\n0 invoke rx2 @50\n0 ok rx2 @60\n1 invoke {y} @70\n1 ok {y} @80"
        )
    };
    let seq = assume(false, true, false);
    assert_eq!(check(&rows("ry2"), Assumptions::default()), valid());
    assert_eq!(check(&rows("ry1"), seq), valid());
    assert_eq!(check(&rows("ry2"), seq), invalid(&["G0"]));
    let a = &anomalies(&rows("ry2"), seq)[0];
    assert_eq!(
        a.data["assumptions"],
        serde_json::json!(["sequential-keys"])
    );
    assert!(
        a.explanation.contains("T1 < T2, because T1 set x to 1, and T2 set it to 2, which came later in the version order (sequential-keys)"),
        "{}",
        a.explanation
    );
}

/// Elle's "G2-item" under linearizable keys, with the initial values 1 written first (Elle
/// leaves them unwritten): T2 and T3 each read the other's key at 1 and advance their own.
#[test]
fn g2_item_from_linearizable_keys() {
    let rows = |t3: &str| {
        format!(
            "3 invoke wx1wy1 @1\n3 ok wx1wy1 @2\n0 invoke rx1ry1 @10\n0 ok rx1ry1 @20\n1 invoke rx1wy2 @30\n2 invoke {t3} @40\n2 ok {t3} @50\n1 ok rx1wy2 @60"
        )
    };
    let lin = assume(false, false, true);
    assert_eq!(check(&rows("ry1wx2"), Assumptions::default()), valid());
    assert_eq!(check(&rows("ry2wx2"), lin), valid());
    assert_eq!(check(&rows("ry1wx2"), lin), invalid(&["G2-item"]));
}

/// Elle's "initial state", with no assumption: `nil` precedes every write, so T1's read of x =
/// nil anti-depends on T2's write of x, while T1 read T2's y.
#[test]
fn g_single_from_the_initial_state() {
    let rows = |x: &str| {
        format!("0 invoke rx_ry1 @10\n1 invoke wy1wx2 @20\n1 ok wy1wx2 @30\n0 ok {x}ry1 @40")
    };
    assert_eq!(check(&rows("rx2"), Assumptions::default()), valid());
    assert_eq!(
        check(&rows("rx_"), Assumptions::default()),
        invalid(&["G-single-item"])
    );
    let a = &anomalies(&rows("rx_"), Assumptions::default())[0];
    assert!(
        a.explanation.contains("T1 read x = nil, and T2 set it to 2, which came later in the version order (initial-state)"),
        "{}",
        a.explanation
    );
    assert!(a.data.get("assumptions").is_none(), "{}", a.data);
}

/// Elle's "wfr", with y = 1 written first (Elle leaves it unwritten): T1 read y = 1 and then
/// wrote y = 2, so T2's read of y = 1 precedes T1, while T2 read T1's x.
#[test]
fn g_single_from_wfr_keys() {
    let rows = |y: &str| {
        format!(
            "2 invoke wy1 @1\n2 ok wy1 @2\n0 invoke ry1wx1wy2 @10\n1 invoke rx1{y} @12\n0 ok ry1wx1wy2 @15\n1 ok rx1{y} @20"
        )
    };
    let wfr = assume(true, false, false);
    assert_eq!(check(&rows("ry1"), Assumptions::default()), valid());
    assert_eq!(check(&rows("ry2"), wfr), valid());
    assert_eq!(check(&rows("ry1"), wfr), invalid(&["G-single-item"]));
}

/// Elle's `scc-sort-bug-test`: linearizable keys order x as 1 < nil (a read of 1, then a read
/// of nil) and 3 < 4 (a transaction that read 4 and wrote 3, then a write of 4), against the
/// initial state and wfr: two cycles, and T3 read T4's write although T4 began after T3 ended.
#[test]
fn two_version_cycles_and_a_realtime_cycle() {
    let rows = "1 invoke wx1 @1\n0 invoke rx1 @10\n0 ok rx1 @20\n0 invoke rx_ @30\n0 ok rx_ @40\n0 invoke rx4wx3 @50\n0 ok rx4wx3 @60\n2 invoke wx4 @70\n2 ok wx4 @80\n1 ok wx1 @100";
    let found = anomalies(rows, assume(true, false, true));
    let cyclic: Vec<&Anomaly> = found
        .iter()
        .filter(|a| a.class == "cyclic-versions")
        .collect();
    let sccs: Vec<&serde_json::Value> = cyclic.iter().map(|a| &a.data["scc"]).collect();
    assert_eq!(
        sccs,
        [&serde_json::json!([null, 1]), &serde_json::json!([3, 4])]
    );
    assert_eq!(
        cyclic[0].data["sources"],
        serde_json::json!(["initial-state", "wfr-keys", "linearizable-keys"])
    );
    // T3 read T4's write though T4 began after T3 ended: a cycle of ww/wr and real time, whose
    // least class is G0-realtime here (the wfr order 4 < 3 makes T4 → T3 a ww edge); G0 implies
    // G1c, so G1c-realtime is not reported beside it (Elle's implied anomalies).
    assert!(found.iter().any(|a| a.class == "G0-realtime"), "{found:?}");
    assert!(
        !found.iter().any(|a| a.class == "G1c-realtime"),
        "{found:?}"
    );
}

/// Elle's `cyclic-versions-bug-test`: a read of nil concurrent with the write of 4, then a read
/// of 4, is a fine version order under linearizable keys.
#[test]
fn no_cycle_from_a_concurrent_write() {
    let rows = "0 invoke rx_ @36022782\n1 invoke wx4 @36230324\n0 ok rx_ @37708797\n1 ok wx4 @37894295\n0 invoke rx_ @39956694\n0 ok rx4 @40746079";
    assert_eq!(check(rows, Assumptions::ALL), valid());
}

/// An `info` write counts where it is placed (after what completed before it began) but gives
/// nothing after it: no cycle when it never took effect, nor when a later read sees it.
#[test]
fn info_writes_are_placed_after_their_invocation() {
    let never = "0 invoke wx1 @10\n0 ok wx1 @20\n1 invoke wx2 @30\n1 info wx2 @40\n2 invoke rx1 @50\n2 ok rx1 @60";
    assert_eq!(check(never, Assumptions::ALL), valid());
    let later = "0 invoke wx1 @10\n0 ok wx1 @20\n1 invoke wx2 @30\n1 info wx2 @40\n2 invoke rx1 @50\n2 ok rx1 @60\n2 invoke rx2 @70\n2 ok rx2 @80";
    assert_eq!(check(later, Assumptions::ALL), valid());
    let before = "0 invoke wx1 @10\n0 ok wx1 @20\n1 invoke wx2 @30\n1 info wx2 @40\n2 invoke rx2 @50\n2 ok rx2 @60\n2 invoke rx1 @70\n2 ok rx1 @80";
    // Process order (2 < 1) and real time (1 < 2) disagree: the latter is left out, and the
    // former, against real time, gives cycles through T1's write of 1.
    assert_eq!(
        check(before, Assumptions::ALL),
        invalid(&["G-single-item-realtime", "G0-realtime", "cyclic-versions"])
    );
}

/// The version graphs of Elle's `transaction-graph->version-graphs-test`, from process order:
/// only external versions are related, failed transactions are skipped, crashed ones end a
/// process.
#[test]
fn sequential_sources_relate_external_versions() {
    let edges = |rows: &str| -> Vec<(Version, Version)> {
        let hist = history(rows);
        let ops = Ops::from_history(&hist).unwrap().ops;
        let (txns, keys) = txns(&hist, &ops).unwrap();
        let (o, _) = orders(&txns, &keys, &assume(false, true, false));
        o.edges[0]
            .iter()
            .filter(|e| e.why.source == Source::SequentialKeys)
            .map(|e| (e.from, e.to))
            .collect()
    };
    // External ww: 2 -> 4; external rw: 1 -> 4; external rr: 1 -> 3.
    let ww = "0 invoke wx1wx2 @1\n0 ok wx1wx2 @2\n0 invoke wx3wx4rx_ @3\n0 ok wx3wx4rx4 @4";
    assert_eq!(edges(ww), [(Some(2), Some(4))]);
    let rw = "0 invoke rx_rx_ @1\n0 ok rx1rx1 @2\n0 invoke wx3wx4 @3\n0 ok wx3wx4 @4";
    assert_eq!(edges(rw), [(Some(1), Some(4))]);
    let rr = "0 invoke rx_ @1\n0 ok rx1 @2\n0 invoke rx_wx5 @3\n0 ok rx3wx5 @4";
    assert_eq!(edges(rr), [(Some(1), Some(3))]);
    // A failed transaction between two others is seen through.
    let fail = "0 invoke wx1 @1\n0 ok wx1 @2\n0 invoke wx2 @3\n0 fail wx2 @4\n0 invoke wx3 @5\n0 ok wx3 @6";
    assert_eq!(edges(fail), [(Some(1), Some(3))]);
    // Same version: no edge.
    assert_eq!(
        edges("0 invoke wx1 @1\n0 ok wx1 @2\n0 invoke rx_ @3\n0 ok rx1 @4"),
        []
    );
}

/// A `nil` read gets rw edges to the first writes only; later ones follow by ww edges.
#[test]
fn nil_reads_anti_depend_on_the_first_writes() {
    let rows =
        "0 invoke rx_ @1\n0 ok rx_ @2\n1 invoke wx1 @3\n1 ok wx1 @4\n1 invoke wx2 @5\n1 ok wx2 @6";
    let hist = history(rows);
    let ops = Ops::from_history(&hist).unwrap().ops;
    let (txns, keys) = txns(&hist, &ops).unwrap();
    let deps = |assumptions: Assumptions| {
        let (o, _) = orders(&txns, &keys, &assumptions);
        let mut out = Vec::new();
        o.dependencies(&mut |a, b, kind| out.push((a, b, kind)));
        out.sort_by_key(|(a, b, k)| (*a, *b, *k as u8));
        out
    };
    let (rw, ww) = (EdgeKind::Rw, EdgeKind::Ww);
    assert_eq!(deps(Assumptions::default()), [(0, 1, rw), (0, 2, rw)]);
    assert_eq!(deps(assume(false, true, false)), [(0, 1, rw), (1, 2, ww)]);
}
