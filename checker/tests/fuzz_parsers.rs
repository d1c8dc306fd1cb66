//! Fuzz-style properties of the readers and checks: histories generated from every model, then
//! cut at every byte, bytes flipped, lines duplicated, dropped and swapped, numbers made huge and
//! fields given values of the wrong type. Reading and checking return a report or a typed error,
//! never panic. Bounded for CI: a fixed number of small cases, a few seconds.

use checker::gen::{history_text, GenConfig};
use checker::mutate::{mutate, Mutation};
use checker::{import, CheckOptions, Format, History, ModelKind, Source};
use proptest::prelude::*;

#[path = "fuzz/mutations.rs"]
mod mutations;

/// The models histories are generated from.
const GENERATED: [ModelKind; 7] = [
    ModelKind::Register,
    ModelKind::CasRegister,
    ModelKind::Counter,
    ModelKind::Set,
    ModelKind::ListAppend,
    ModelKind::Txn,
    ModelKind::Kv,
];

/// A small history of `model`.
fn base(model: ModelKind, seed: u64) -> String {
    let cfg = GenConfig {
        model,
        keys: 2,
        clients: 3,
        ops: 10,
        info_fraction: 0.15,
        seed,
    };
    history_text(&cfg).0
}

/// Reads `bytes` every way `slotcheck check` can and checks what reads against every model.
/// Returns whether the history parsed.
fn exercise(bytes: &[u8]) -> bool {
    let opts = CheckOptions::default();
    let parsed = History::parse(bytes, "fuzz.jsonl");
    if let Ok(history) = &parsed {
        for model in ModelKind::ALL {
            if let Ok(mut report) = checker::check(history, model, &opts) {
                let _ = checker::analyze_redirects(history, model, &opts, &mut report);
            }
        }
    }
    for model in [ModelKind::Register, ModelKind::ListAppend] {
        let source = Source::from_reader("fuzz.jsonl", std::io::Cursor::new(bytes.to_vec()));
        let _ = checker::check_source(source, model, &opts);
    }
    if let Ok(text) = std::str::from_utf8(bytes) {
        for format in Format::ALL.map(Some).into_iter().chain([None]) {
            if let Ok(imported) = import::import(text, "fuzz", format) {
                let model = imported.model().unwrap_or(ModelKind::Register);
                let _ = checker::check(&imported.history, model, &imported.options());
            }
        }
    }
    parsed.is_ok()
}

#[test]
fn a_history_cut_at_any_byte_reads_with_at_most_a_warning() {
    for model in GENERATED {
        let text = base(model, 3);
        for cut in 0..=text.len() {
            let bytes = mutate(&text, &Mutation::Truncate(cut));
            let history = History::parse(&bytes[..], "cut.jsonl")
                .unwrap_or_else(|e| panic!("{model} cut at {cut}: {e}"));
            assert!(history.warnings.len() <= 1, "{model} cut at {cut}");
            // Every whole line is kept: a cut only loses the line it falls in.
            let whole = bytes.iter().filter(|&&c| c == b'\n').count();
            assert!(
                history.events.len() >= whole.saturating_sub(1),
                "{model} cut at {cut}"
            );
            if cut % 7 == 0 || cut == text.len() {
                exercise(&bytes);
            }
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: mutations::cases(256),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn mutated_histories_read_and_check_without_panicking(
        model in prop::sample::select(GENERATED.to_vec()),
        seed in 0u64..1000,
        mutations in prop::collection::vec(mutations::mutation(), 1..4),
    ) {
        let mut bytes = base(model, seed).into_bytes();
        for m in &mutations {
            let text = String::from_utf8_lossy(&bytes).into_owned();
            bytes = mutate(&text, m);
        }
        exercise(&bytes);
    }
}
