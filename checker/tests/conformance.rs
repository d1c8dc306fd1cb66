//! Every history in the peer corpora (`shared/corpora/expected.tsv`: Porcupine's etcd and kv
//! logs, Knossos's register histories) gets exactly the verdict its upstream project asserts.
//! The corpora are read in place, from `../shared` beside the workspace; none is copied here.

use checker::{check, import, Format, ModelKind, Validity};
use std::time::{Duration, Instant};

#[path = "support/corpora.rs"]
mod support;

use support::{corpora, expected, per_key, Expected as Case};

fn cases() -> Vec<Case> {
    expected("")
}

/// Imports and checks one case, returning its verdict and how long it took.
fn run(case: &Case) -> (Validity, Duration) {
    let path = corpora().join(&case.path);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let start = Instant::now();
    let imported =
        import::import(&text, &case.path, Some(case.format)).unwrap_or_else(|e| panic!("{e}"));
    let model = imported.model().unwrap_or(case.model);
    assert_eq!(
        model, case.model,
        "{}: the format implies another model",
        case.path
    );
    let report = check(&imported.history, model, &imported.options())
        .unwrap_or_else(|e| panic!("{}: {e}", case.path));
    (report.valid, start.elapsed())
}

#[test]
fn every_corpus_history_gets_its_expected_verdict() {
    let cases = cases();
    assert_eq!(cases.len(), 229, "expected.tsv lists 229 histories");
    let mut wrong = Vec::new();
    for case in &cases {
        // Detection must agree with the listed format.
        let text = std::fs::read_to_string(corpora().join(&case.path)).unwrap();
        assert_eq!(Format::detect(&text), Some(case.format), "{}", case.path);
        let (verdict, _) = run(case);
        if verdict != case.expected {
            wrong.push(format!(
                "{}: {verdict}, expected {}",
                case.path, case.expected
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} wrong:\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n")
    );
}

/// Times per corpus group against the targets (a benchmark, never a timed assertion): run with
/// `cargo test --release -p slotcheck-checker --test conformance -- --ignored --nocapture`.
#[test]
#[ignore]
fn corpus_times() {
    let cases = cases();
    const RUNS: usize = 5;
    let median = |case: &Case| {
        let mut times: Vec<Duration> = (0..RUNS).map(|_| run(case).1).collect();
        times.sort();
        times[RUNS / 2]
    };
    let etcd: Vec<&Case> = cases
        .iter()
        .filter(|c| c.format == Format::JepsenLog)
        .collect();
    let mut total = Duration::ZERO;
    let mut slowest = (Duration::ZERO, "");
    for case in &etcd {
        let t = median(case);
        total += t;
        if t > slowest.0 {
            slowest = (t, &case.path);
        }
    }
    println!(
        "etcd: {} logs in {total:?} (sum of medians; target <= 250 ms); slowest {} {:?}",
        etcd.len(),
        slowest.1,
        slowest.0
    );
    for case in cases.iter().filter(|c| c.format == Format::PorcupineKv) {
        println!("{}: {:?} ({})", case.path, median(case), case.expected);
    }
    kv_keys_one_at_a_time("porcupine/test_data/kv/c50-bad.txt");
    let knossos: Duration = cases
        .iter()
        .filter(|c| c.format == Format::KnossosEdn)
        .map(median)
        .sum();
    println!("knossos: {knossos:?} in total");
}

/// Checks each key of a kv log on its own, as Porcupine's per-key numbers are measured, and
/// prints each key's verdict, search steps and time (target: every key decided in < 1 s).
fn kv_keys_one_at_a_time(path: &str) {
    let (imported, ones) = per_key(path);
    for (key, one) in ones {
        let start = Instant::now();
        let report = check(&one, ModelKind::Kv, &imported.options()).unwrap();
        let k = &report.keys[0];
        println!(
            "  {path} key {key}: {} in {:?} ({} ops, {} steps)",
            k.valid,
            start.elapsed(),
            k.ops,
            k.steps
        );
    }
}
