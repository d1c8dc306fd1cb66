//! The page from the one path's read ([`super::render_file`]) is the page of the whole history
//! ([`super::render`]), byte for byte.

use super::*;
use checker::{CheckOptions, ModelKind};

/// Both pages of the register-family history at `path`, if it checks as `model`.
fn both(path: &Path, model: ModelKind) -> Option<(String, String)> {
    let report = checker::check_file_analyzed(path, model, &CheckOptions::default()).ok()?;
    let whole = History::read_file(path).unwrap();
    let old = render(&whole, &report).unwrap();
    let new = render_file(path, model, &report).unwrap();
    Some((old, new))
}

/// Every committed fixture that reads as a register or cas-register history (and each file
/// `SLOTCHECK_SAME_PAGE` lists, `:`-separated) gives the same page both ways.
#[test]
fn the_one_path_draws_the_whole_historys_page() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("histories");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    paths.sort();
    let extra = std::env::var("SLOTCHECK_SAME_PAGE").unwrap_or_default();
    paths.extend(extra.split(':').filter(|p| !p.is_empty()).map(Into::into));
    let mut compared = 0;
    for path in &paths {
        for model in [ModelKind::Register, ModelKind::CasRegister] {
            let Some((old, new)) = both(path, model) else {
                continue;
            };
            assert!(
                old == new,
                "{} as {model}: the pages differ",
                path.display()
            );
            compared += 1;
        }
    }
    assert!(compared > 20, "{compared} fixtures compared");
}

/// A generated history of more ops than are drawn (every k-th op, fetched by a second read of
/// only their lines), with an invalid key whose ops are all kept, gives the same page both ways.
#[test]
fn a_sampled_page_is_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("h.jsonl");
    let cfg = checker::gen::GenConfig::register(20, 8, 3 * OPS_SHOWN_MAX as u64 / 2, 7);
    let (text, _) = checker::gen::history_text(&cfg);
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    // A read of a value never written: key invalid, explained, its ops flagged.
    let read = lines
        .iter()
        .rposition(|l| l.starts_with(r#"{"type":"ok""#) && l.contains(r#""f":"read""#))
        .unwrap();
    let (head, tail) = lines[read].split_once(r#""value":"#).unwrap();
    let time = &tail[tail.find(r#","time""#).unwrap()..];
    lines[read] = format!(r#"{head}"value":987654321{time}"#);
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    let (old, new) = both(&path, ModelKind::Register).unwrap();
    assert!(old.contains("every 2-th"), "sampled");
    assert!(old.contains("<p class=\"verdict invalid\""));
    assert!(old == new, "the pages differ");
}
