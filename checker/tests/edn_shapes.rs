//! Histories in the shapes Elle's and Jepsen's own tests and examples write them, imported as
//! `slotcheck check --format jepsen-edn` reads them, with the verdicts and classes Elle and
//! Jepsen give: two-micro-op transactions, op maps without `:process` or `:f`, completions
//! without invocations, `:read`/`:write` ops carrying micro-ops, Jepsen set-full, and `--initial`
//! refused where a model has no use for it.

use checker::import::import;
use checker::{check, CheckError, CheckOptions, Format, ModelKind, Report, Validity};

/// Imports `edn` as Jepsen EDN and checks it against the model the format implies (or
/// `model`), with the format's options.
fn run(edn: &str, model: Option<ModelKind>) -> Report {
    let imported = import(edn, "h.edn", Some(Format::JepsenEdn)).unwrap();
    let model = model.or(imported.model()).unwrap();
    check(&imported.history, model, &imported.options()).unwrap()
}

/// The classes of `report`'s anomalies, with counts.
fn classes(report: &Report) -> Vec<(String, usize)> {
    report
        .anomaly_counts
        .iter()
        .map(|(c, n)| (c.clone(), *n))
        .collect()
}

/// Elle's README example: three committed transactions, no `:f`, no invocations. Elle: G1c.
const ELLE_README: &str = "
{:process 0, :type :ok, :value [[:append :x 1] [:r :y [1]]]}
{:process 1, :type :ok, :value [[:append :x 2] [:append :y 1]]}
{:process 2, :type :ok, :value [[:r :x [1 2]]]}
";

#[test]
fn a_two_micro_op_txn_is_a_transaction_not_an_independent_tuple() {
    let imported = import(ELLE_README, "h.edn", Some(Format::JepsenEdn)).unwrap();
    assert_eq!(imported.model(), Some(ModelKind::Txn));
    let first = &imported.history.events[1];
    assert_eq!((first.f.as_str(), first.key.as_deref()), ("txn", None));
    assert_eq!(first.value.as_array().map(Vec::len), Some(2));
    let report = run(ELLE_README, None);
    assert_eq!(report.valid, Validity::Invalid, "{report}");
    assert!(classes(&report).iter().any(|(c, _)| c == "G1c"), "{report}");
    // Without T3's read there is no ww order on x: no cycle, valid (Elle agrees).
    let ok = ELLE_README.replace("[[:r :x [1 2]]]", "[[:r :x [1]]]");
    let ok = ok.replace(
        "[[:append :x 1] [:r :y [1]]]",
        "[[:append :x 1] [:r :y []]]",
    );
    assert_eq!(run(&ok, None).valid, Validity::Valid, "{}", run(&ok, None));
}

#[test]
fn independent_tuples_still_split_into_keys() {
    let edn = "
{:process 0, :type :invoke, :f :write, :value [3 1]}
{:process 0, :type :ok, :f :write, :value [3 1]}
{:process 1, :type :invoke, :f :read, :value [3 nil]}
{:process 1, :type :ok, :f :read, :value [3 2]}
";
    let imported = import(edn, "h.edn", Some(Format::JepsenEdn)).unwrap();
    assert_eq!(imported.history.events[0].key.as_deref(), Some("3"));
    assert_eq!(run(edn, None).valid, Validity::Invalid);
}

#[test]
fn completions_without_invocations_are_ordered_after_nothing() {
    // Elle draws no real-time edge to an op whose invocation it never saw: each such op is
    // invoked at the start, by a fresh process of its own, above process 2.
    let imported = import(ELLE_README, "h.edn", Some(Format::JepsenEdn)).unwrap();
    let processes: Vec<String> = imported
        .history
        .events
        .iter()
        .map(|e| format!("{:?} {:?}", e.process, e.kind))
        .collect();
    assert_eq!(
        processes,
        [
            "Client(3) Invoke",
            "Client(4) Invoke",
            "Client(5) Invoke",
            "Client(3) Ok",
            "Client(4) Ok",
            "Client(5) Ok"
        ]
    );
    assert_eq!(imported.history.lines, [2, 3, 4, 2, 3, 4]);
}

#[test]
fn op_maps_without_process_share_one_process() {
    let edn = ELLE_README
        .replace(":process 0, ", "")
        .replace(":process 1, ", "");
    let report = run(&edn, None);
    assert!(classes(&report).iter().any(|(c, _)| c == "G1c"), "{report}");
    // Invocations and completions without processes pair up in order, as one process's.
    let paired = "
{:type :invoke, :f :txn, :value [[:append :x 1]]}
{:type :ok, :f :txn, :value [[:append :x 1]]}
{:process 0, :type :invoke, :f :txn, :value [[:r :x nil]]}
{:process 0, :type :ok, :f :txn, :value [[:r :x [1]]]}
";
    let imported = import(paired, "h.edn", Some(Format::JepsenEdn)).unwrap();
    let processes: Vec<String> = imported
        .history
        .events
        .iter()
        .map(|e| format!("{:?}", e.process))
        .collect();
    assert_eq!(
        processes,
        ["Client(1)", "Client(1)", "Client(0)", "Client(0)"]
    );
    assert_eq!(run(paired, None).valid, Validity::Valid);
    // The read began after the append was acknowledged, and missed it.
    let lost = paired.replace("[[:r :x [1]]]", "[[:r :x []]]");
    assert_eq!(run(&lost, None).valid, Validity::Invalid);
}

#[test]
fn read_and_write_ops_carrying_micro_ops_are_transactions() {
    let ok = "
{:process 0, :type :invoke, :f :write, :value [[:append :x 1] [:append :y 1]]}
{:process 0, :type :ok, :f :write, :value [[:append :x 1] [:append :y 1]]}
{:process 1, :type :invoke, :f :read, :value [[:r :x nil] [:r :y nil]]}
{:process 1, :type :ok, :f :read, :value [[:r :x [1]] [:r :y [1]]]}
";
    let imported = import(ok, "h.edn", Some(Format::JepsenEdn)).unwrap();
    assert!(imported.history.events.iter().all(|e| e.f == "txn"));
    assert_eq!(imported.model(), Some(ModelKind::Txn));
    assert_eq!(run(ok, None).valid, Validity::Valid);
    // The reader, begun after the write was acknowledged, sees y's append but not x's.
    let torn = ok.replace("[[:r :x [1]] [:r :y [1]]]", "[[:r :x []] [:r :y [1]]]");
    let report = run(&torn, None);
    assert_eq!(report.valid, Validity::Invalid, "{report}");
    assert!(
        classes(&report).iter().any(|(c, _)| c == "lost-write"),
        "{report}"
    );
}

#[test]
fn knossos_micro_ops_stay_a_multi_register() {
    let edn = "
{:process 0, :type :invoke, :f :txn, :value [[:write :x 1] [:write :y 2]]}
{:process 0, :type :ok, :f :txn, :value [[:write :x 1] [:write :y 2]]}
{:process 1, :type :invoke, :f :txn, :value [[:read :x nil] [:read :y nil]]}
{:process 1, :type :ok, :f :txn, :value [[:read :x 1] [:read :y 0]]}
";
    let imported = import(edn, "h.edn", Some(Format::JepsenEdn)).unwrap();
    assert_eq!(imported.model(), Some(ModelKind::MultiRegister));
}

#[test]
fn initial_is_refused_by_models_that_cannot_use_it() {
    let imported = import(ELLE_README, "h.edn", Some(Format::JepsenEdn)).unwrap();
    let opts = CheckOptions {
        initial: serde_json::json!([5]),
        ..imported.options()
    };
    for model in [ModelKind::Txn, ModelKind::Types] {
        let err = check(&imported.history, model, &opts).unwrap_err();
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
        let shown = err.to_string();
        assert!(
            shown.contains(&format!("model {}", model.name())),
            "{shown}"
        );
    }
}

/// Jepsen's set (`jepsen.checker-test/set-full-test`) shapes: `:add` and `:read` of a set in
/// an independent key, checked as `--model set`.
#[test]
fn set_full_classes_on_jepsen_sets() {
    let set = |events: &str| run(events, Some(ModelKind::Set));
    let stable = "
{:process 0, :type :invoke, :f :add, :value [:s 0]}
{:process 0, :type :ok, :f :add, :value [:s 0]}
{:process 1, :type :invoke, :f :read, :value [:s nil]}
{:process 1, :type :ok, :f :read, :value [:s #{0}]}
";
    assert_eq!(set(stable).valid, Validity::Valid);
    // "Absent read after": lost, invalid.
    let lost = set(&stable.replace("#{0}", "#{}"));
    assert_eq!(lost.valid, Validity::Invalid);
    assert_eq!(classes(&lost), [("lost-write".to_string(), 1)]);
    // Seen, then gone: Jepsen says lost (not stale).
    let gone = format!(
        "{stable}{}",
        "{:process 1, :type :invoke, :f :read, :value [:s nil]}\n\
         {:process 1, :type :ok, :f :read, :value [:s #{}]}\n"
    );
    assert_eq!(classes(&set(&gone)), [("lost-write".to_string(), 1)]);
    // "Never read": unknown.
    let never = "
{:process 0, :type :invoke, :f :add, :value [:s 0]}
{:process 0, :type :ok, :f :add, :value [:s 0]}
";
    let never = set(never);
    assert_eq!(never.valid, Validity::Unknown, "{never}");
    assert_eq!(never.lost_writes.unwrap().never_read, 1);
    // A read holding 0 twice: duplicated.
    let dup = set(&stable.replace("#{0}", "[0 0]"));
    assert_eq!(classes(&dup), [("duplicated".to_string(), 1)]);
    // One set with no key, exactly as Jepsen's set-full tests write it.
    let keyless = gone.replace("[:s 0]", "0").replace("[:s nil]", "nil");
    let keyless = keyless
        .replace("[:s #{0}]", "#{0}")
        .replace("[:s #{}]", "#{}");
    let report = set(&keyless);
    assert_eq!(
        classes(&report),
        [("lost-write".to_string(), 1)],
        "{report}"
    );
    assert_eq!(report.keys[0].key, "");
}

/// A vector of Elle op maps, as Elle's README writes them, is detected as `knossos-edn` and
/// still checked as Elle's, from empty lists (no Knossos initial 0).
#[test]
fn a_vector_of_elle_ops_is_checked_as_elle() {
    let vector = format!("[{ELLE_README}]");
    let imported = import(&vector, "h.edn", None).unwrap();
    assert_eq!(imported.format, Format::KnossosEdn);
    assert_eq!(imported.model(), Some(ModelKind::Txn));
    assert!(imported.options().initial.is_null());
    let report = check(&imported.history, ModelKind::Txn, &imported.options()).unwrap();
    assert!(classes(&report).iter().any(|(c, _)| c == "G1c"), "{report}");
}

/// Elle's `checker-test` "G0" history, as its `op` helper writes it (`"ax1ay1"`: every op
/// completed `:ok` by process 0, no invocation): two-micro-op transactions throughout.
/// Elle: G0 (x puts T1 before T2, y T2 before T1).
#[test]
fn elle_g0_of_two_micro_op_transactions() {
    let op = |mops: &str| format!("{{:time 0, :process 0, :type :ok, :f :txn, :value {mops}}}\n");
    let h = [
        op("[[:append :x 1] [:append :y 1]]"),
        op("[[:append :x 2] [:append :y 2]]"),
        op("[[:r :x [1 2]] [:r :y [2 1]]]"),
    ]
    .concat();
    let report = run(&h, None);
    assert_eq!(report.valid, Validity::Invalid, "{report}");
    assert!(classes(&report).iter().any(|(c, _)| c == "G0"), "{report}");
    // Reads agreeing on one order: no cycle.
    let ok = h.replace("[:r :y [2 1]]", "[:r :y [1 2]]");
    assert_eq!(run(&ok, None).valid, Validity::Valid, "{}", run(&ok, None));
}

/// Elle's `wr-process-test` (elle issue 21): invocations write reads without a value
/// (`[:r :x]`). Elle: G1c-process (session models), a violation of strong serializability too.
#[test]
fn reads_invoked_without_a_value_are_read() {
    let h = "
{:process 1, :type :invoke, :f :txn, :value [[:r :x] [:append :y 1]], :index 0}
{:process 1, :type :ok, :f :txn, :value [[:r :x [1]] [:append :y 1]], :index 1}
{:process 2, :type :invoke, :f :txn, :value [[:r :y]], :index 2}
{:process 2, :type :ok, :f :txn, :value [[:r :y [1]]], :index 3}
{:process 2, :type :invoke, :f :txn, :value [[:append :x 1]], :index 4}
{:process 2, :type :ok, :f :txn, :value [[:append :x 1]], :index 5}
";
    let report = run(h, None);
    assert_eq!(report.valid, Validity::Invalid, "{report}");
    assert!(
        classes(&report).iter().any(|(c, _)| c.starts_with("G1c")),
        "{report}"
    );
    // T1 reading x empty breaks the cycle.
    let ok = h.replace(
        "[[:r :x [1]] [:append :y 1]]",
        "[[:r :x []] [:append :y 1]]",
    );
    assert_eq!(run(&ok, None).valid, Validity::Valid, "{}", run(&ok, None));
}
