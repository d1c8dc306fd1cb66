//! Elle's list-append test histories, written as Jepsen's `history.edn` and read through the
//! `jepsen-edn` importer, get Elle's anomaly classes. Only shapes the importer already reads are
//! here: transactions of one micro-op (a two-micro-op `:txn` is still read as an
//! `independent` tuple, which the importer's owner is fixing). Elle's own copies have all
//! times 0 and take real time from the history's order; ours give each event the next time.

use checker::{check, import, Format, ModelKind, Report, Validity};

/// Imports `ops` (one EDN map per line, `:time` added in order) and checks it as Elle's `txn`.
fn elle(ops: &str) -> Report {
    let text: Vec<String> = ops
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .enumerate()
        .map(|(i, l)| format!("{}, :time {i}, :index {i}}}", l.trim_end_matches('}')))
        .collect();
    let imported = import::import(&text.join("\n"), "elle.edn", Some(Format::JepsenEdn))
        .unwrap_or_else(|e| panic!("{e}"));
    check(&imported.history, ModelKind::Txn, &imported.options()).unwrap_or_else(|e| panic!("{e}"))
}

fn classes(report: &Report) -> Vec<&str> {
    report.anomalies.iter().map(|a| a.class.as_str()).collect()
}

#[test]
fn dirty_update_direct_and_indirect() {
    // Elle's "dirty update": direct (fail 1, ok 2, read [1 2]) and indirect (fail 1, info 2,
    // ok 3, read [1 2 3]); under Elle's default models also G1a (the read saw the failed 1).
    let direct = "
        {:process 0, :type :invoke, :f :txn, :value [[:append :x 1]]}
        {:process 0, :type :fail,   :f :txn, :value [[:append :x 1]]}
        {:process 1, :type :invoke, :f :txn, :value [[:append :x 2]]}
        {:process 1, :type :ok,     :f :txn, :value [[:append :x 2]]}
        {:process 2, :type :invoke, :f :txn, :value [[:r :x nil]]}
        {:process 2, :type :ok,     :f :txn, :value [[:r :x [1 2]]]}
    ";
    let report = elle(direct);
    assert_eq!(report.valid, Validity::Invalid, "{report}");
    assert_eq!(classes(&report), ["G1a", "dirty-update"], "{report}");
    assert_eq!(
        report.anomalies[1].data["values"],
        serde_json::json!([1, 2])
    );
    let indirect = "
        {:process 0, :type :invoke, :f :txn, :value [[:append :x 1]]}
        {:process 0, :type :fail,   :f :txn, :value [[:append :x 1]]}
        {:process 1, :type :invoke, :f :txn, :value [[:append :x 2]]}
        {:process 1, :type :info,   :f :txn, :value [[:append :x 2]]}
        {:process 2, :type :invoke, :f :txn, :value [[:append :x 3]]}
        {:process 2, :type :ok,     :f :txn, :value [[:append :x 3]]}
        {:process 3, :type :invoke, :f :txn, :value [[:r :x nil]]}
        {:process 3, :type :ok,     :f :txn, :value [[:r :x [1 2 3]]]}
    ";
    let report = elle(indirect);
    assert_eq!(classes(&report), ["G1a", "dirty-update"], "{report}");
    assert_eq!(
        report.anomalies[1].data["values"],
        serde_json::json!([1, 2, 3])
    );
    // Nothing committed after the failed append: no dirty update, and no read saw it.
    let ok = "
        {:process 0, :type :invoke, :f :txn, :value [[:append :x 1]]}
        {:process 0, :type :ok,     :f :txn, :value [[:append :x 1]]}
        {:process 1, :type :invoke, :f :txn, :value [[:append :x 2]]}
        {:process 1, :type :fail,   :f :txn, :value [[:append :x 2]]}
        {:process 2, :type :invoke, :f :txn, :value [[:r :x nil]]}
        {:process 2, :type :ok,     :f :txn, :value [[:r :x [1]]]}
    ";
    let report = elle(ok);
    assert_eq!(report.valid, Validity::Valid, "{report}");
}

#[test]
fn a_nil_read_after_the_only_append_misses_it() {
    // The key's only append, never read, completed before a read of nil began: the read is of
    // the empty list, which anti-depends on that append (Elle: G-single-item-realtime).
    let bad = "
        {:process 0, :type :invoke, :f :txn, :value [[:append :x 1]]}
        {:process 0, :type :ok,     :f :txn, :value [[:append :x 1]]}
        {:process 1, :type :invoke, :f :txn, :value [[:r :x nil]]}
        {:process 1, :type :ok,     :f :txn, :value [[:r :x nil]]}
    ";
    let report = elle(bad);
    assert_eq!(report.valid, Validity::Invalid, "{report}");
    // Jepsen set-full's class for the same miss comes first (slotcheck reports both).
    assert_eq!(
        classes(&report),
        ["lost-write", "G-single-item-realtime"],
        "{report}"
    );
    let ok = "
        {:process 0, :type :invoke, :f :txn, :value [[:append :x 1]]}
        {:process 0, :type :ok,     :f :txn, :value [[:append :x 1]]}
        {:process 1, :type :invoke, :f :txn, :value [[:r :x nil]]}
        {:process 1, :type :ok,     :f :txn, :value [[:r :x [1]]]}
    ";
    let report = elle(ok);
    assert_eq!(report.valid, Validity::Valid, "{report}");
}
