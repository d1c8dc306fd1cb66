//! `slotcheck check` on mutated histories (see `checker/tests/fuzz_parsers.rs` for the library
//! side): whatever the file holds, the binary answers with an exit code of Jepsen's — 0 valid, 1
//! invalid, 2 unknown, 254 malformed input — and never panics (101) or fails inside (255).
//! Bounded for CI: a fixed number of small cases.

use checker::gen::{history_text, GenConfig};
use checker::mutate::mutate;
use checker::ModelKind;
use proptest::prelude::*;

#[path = "../checker/tests/fuzz/mutations.rs"]
mod mutations;
mod support;

/// The models histories are generated from, with the header workload each is written under.
const GENERATED: [(ModelKind, &str); 5] = [
    (ModelKind::Register, "register"),
    (ModelKind::Counter, "counter"),
    (ModelKind::Set, "set"),
    (ModelKind::ListAppend, "list-append"),
    (ModelKind::Txn, "txn"),
];

/// Flags `slotcheck check` may get.
const FLAGS: [&[&str]; 6] = [
    &[],
    &["--json"],
    &["--format", "jsonl"],
    &["--format", "jepsen-edn"],
    &["--model", "list-append"],
    &["--model", "cas-register"],
];

/// A small history of `model` with a header naming `workload`.
fn base(model: ModelKind, workload: &str, seed: u64) -> String {
    let cfg = GenConfig {
        model,
        keys: 2,
        clients: 3,
        ops: 10,
        info_fraction: 0.15,
        seed,
    };
    let header = format!(
        r#"{{"type":"header","format":"slotcheck-history","version":1,"workload":"{workload}"}}"#
    );
    format!("{header}\n{}", history_text(&cfg).0)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: mutations::cases(48),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn any_mutated_history_gets_a_jepsen_exit_code(
        generated in prop::sample::select(GENERATED.to_vec()),
        seed in 0u64..1000,
        mutations in prop::collection::vec(mutations::mutation(), 1..4),
        flags in prop::sample::select(FLAGS.to_vec()),
    ) {
        let (model, workload) = generated;
        let mut bytes = base(model, workload, seed).into_bytes();
        for m in &mutations {
            let text = String::from_utf8_lossy(&bytes).into_owned();
            bytes = mutate(&text, m);
        }
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("fuzz.jsonl");
        std::fs::write(&path, &bytes).unwrap();
        let output = support::slotcheck()
            .arg("check")
            .arg(&path)
            .args(flags)
            .output()
            .expect("run slotcheck");
        let code = output.status.code().unwrap_or(-1);
        let err = String::from_utf8_lossy(&output.stderr);
        prop_assert!(
            [0, 1, 2, 254].contains(&code),
            "exit {code} for {mutations:?} {flags:?}: {err}"
        );
        prop_assert!(!err.contains("panicked"), "{err}");
    }
}
