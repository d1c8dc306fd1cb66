//! The peer corpora (`shared/corpora/expected.tsv`) as the conformance test and the `corpus`
//! benchmark read them: each history's path, format, model and upstream verdict, and a kv log
//! split into one history per key. Included by path from `tests/conformance.rs` and
//! `examples/corpus.rs`.

use checker::{import, Format, History, ModelKind, Validity};
use std::path::PathBuf;

/// Where the corpora are: `../shared` beside the workspace, read in place.
pub fn corpora() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/corpora"))
}

/// One line of `expected.tsv`.
pub struct Expected {
    pub path: String,
    pub format: Format,
    pub model: ModelKind,
    pub expected: Validity,
}

/// The lines of `expected.tsv` that contain `filter`.
pub fn expected(filter: &str) -> Vec<Expected> {
    let tsv = corpora().join("expected.tsv");
    let text = std::fs::read_to_string(&tsv).unwrap_or_else(|e| panic!("{}: {e}", tsv.display()));
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty() && l.contains(filter))
        .map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            assert_eq!(cols.len(), 4, "expected.tsv: {line:?}");
            Expected {
                path: cols[0].to_string(),
                format: cols[1].parse().unwrap(),
                model: cols[2].parse().unwrap(),
                expected: [Validity::Valid, Validity::Invalid]
                    .into_iter()
                    .find(|v| v.name() == cols[3])
                    .unwrap_or_else(|| panic!("expected.tsv: verdict {:?}", cols[3])),
            }
        })
        .collect()
}

/// The kv log at `path` (under [`corpora`]), imported, and one history per key, keys in order.
pub fn per_key(path: &str) -> (import::Imported, Vec<(String, History)>) {
    let text = std::fs::read_to_string(corpora().join(path)).unwrap();
    let imported = import::import(&text, path, Some(Format::PorcupineKv)).unwrap();
    let events = &imported.history.events;
    let mut keys: Vec<String> = events.iter().filter_map(|e| e.key.clone()).collect();
    keys.sort();
    keys.dedup();
    let ones = keys
        .into_iter()
        .map(|key| {
            let kept: Vec<usize> = (0..events.len())
                .filter(|&i| events[i].key.as_deref() == Some(key.as_str()))
                .collect();
            let one = History {
                lines: kept.iter().map(|&i| imported.history.lines[i]).collect(),
                events: kept.iter().map(|&i| events[i].clone()).collect(),
                ..imported.history.clone()
            };
            (key, one)
        })
        .collect();
    (imported, ones)
}
