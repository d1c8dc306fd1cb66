//! The spill path gives the report of the in-memory path, and of [`crate::check`] on a whole
//! [`History`]: same verdicts, same explanations, same key order, whatever the budget.

use super::super::RegisterSink;
use super::PARTITIONS;
use crate::gen::{history_text, GenConfig};
use crate::history::History;
use crate::model::register::Register;
use crate::model::ModelKind;
use crate::options::CheckOptions;
use crate::report::Report;
use crate::validity::Validity;
use std::io::Write;

/// Checks the register history `text` streaming, holding at most `held_bytes_max` bytes of ops;
/// returns the report and whether the ops were spilled.
fn streamed(text: &str, held_bytes_max: usize) -> (Report, bool) {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(text.as_bytes()).unwrap();
    let opts = CheckOptions::default();
    let mut sink = RegisterSink::new(Register::default(), held_bytes_max, false);
    let checker = "register-linearizable";
    let (report, keys) = crate::stream::read(
        crate::Source::open(file.path()).unwrap(),
        "h",
        checker,
        &mut sink,
    )
    .unwrap();
    let spilled = sink.spill.is_some();
    (sink.finish(report, keys, &opts.budget()).unwrap(), spilled)
}

/// Budgets that spill at the first op (one partition per batch), after a few ops, and after
/// many (several partitions per batch).
const SPILLING: [usize; 3] = [0, 4 << 10, 32 << 10];

/// Checks `text` in memory, from a [`History`] and spilled under every [`SPILLING`] budget, and
/// asserts that every report is the in-memory one; returns it.
fn same_everywhere(text: &str, what: &str) -> Report {
    let (held, spilled) = streamed(text, usize::MAX);
    assert!(!spilled, "{what}: an unbounded budget spilled");
    let history = History::parse(text.as_bytes(), "h").unwrap();
    let reference = crate::check(&history, ModelKind::Register, &CheckOptions::default()).unwrap();
    assert_eq!(held, reference, "{what}: in memory vs History");
    for budget in SPILLING {
        let (report, spilled) = streamed(text, budget);
        assert!(spilled, "{what}: budget {budget} did not spill");
        assert_eq!(report, held, "{what}: budget {budget}");
        assert_eq!(
            report.to_string(),
            held.to_string(),
            "{what}: budget {budget}"
        );
    }
    held
}

/// A generated register history with `ok` reads of some keys changed to a value never written.
fn corrupted(cfg: &GenConfig, keys: &[&str]) -> String {
    let (text, _) = history_text(cfg);
    let mut out = String::with_capacity(text.len());
    let mut hit = vec![false; keys.len()];
    for line in text.lines() {
        let target = keys.iter().position(|k| {
            line.contains(&format!("\"key\":\"{k}\""))
                && line.starts_with("{\"type\":\"ok\"")
                && line.contains("\"f\":\"read\"")
                && !line.contains("\"value\":null")
        });
        match target {
            Some(i) if !hit[i] => {
                hit[i] = true;
                let (head, _) = line.split_once("\"value\":").unwrap();
                let (_, tail) = line.split_once(",\"time\"").unwrap();
                out.push_str(&format!("{head}\"value\":987654321,\"time\"{tail}"));
            }
            _ => out.push_str(line),
        }
        out.push('\n');
    }
    assert!(hit.iter().all(|&h| h), "every key was read");
    out
}

#[test]
fn valid_histories_give_the_same_report() {
    let shapes = [(3 * PARTITIONS as u32 + 7, 4000), (5, 3000), (1, 2000)];
    for (keys, ops) in shapes {
        for seed in 1..=2 {
            let mut cfg = GenConfig::register(keys, 12, ops, seed);
            cfg.info_fraction = 0.05;
            let (text, _) = history_text(&cfg);
            let what = format!("{keys} keys, {ops} ops, seed {seed}");
            let report = same_everywhere(&text, &what);
            assert_eq!(report.valid, Validity::Valid, "{what}");
            assert_eq!(report.keys.len(), keys as usize, "{what}");
        }
    }
}

#[test]
fn invalid_histories_give_the_same_explanations() {
    let keys = 2 * PARTITIONS as u32 + 3;
    let cfg = GenConfig::register(keys, 10, 6000, 7);
    let bad = ["k0", "k5", "k133", "k258"];
    let text = corrupted(&cfg, &bad);
    let report = same_everywhere(&text, "corrupted reads");
    assert_eq!(report.valid, Validity::Invalid);
    let explained: Vec<&str> = report
        .keys
        .iter()
        .filter(|k| k.explanation.is_some())
        .map(|k| k.key.as_str())
        .collect();
    let mut expected = bad.to_vec();
    expected.sort_unstable();
    assert_eq!(explained, expected);
}

#[test]
fn a_cut_off_last_line_gives_the_same_report() {
    let cfg = GenConfig::register(PARTITIONS as u32 + 1, 8, 1500, 3);
    let text = corrupted(&cfg, &["k1"]);
    let cut = &text[..text.len() - 9];
    assert!(!cut.ends_with('\n'));
    let report = same_everywhere(cut, "cut-off last line");
    assert_eq!(report.valid, Validity::Invalid);
    assert!(report.ops.info > 0);
}
