//! A checker report on a terminal: the verdict with the run's coverage under it, every count,
//! but only the first few invalid and unknown keys explained in full (`--json` has all).

use checker::{Report, Validity};
use std::fmt::{self, Write as _};

/// Invalid keys (and, separately, unknown keys) explained in full on a terminal; `--json` has all.
pub const KEYS_SHOWN_MAX: usize = 10;

// The checker counts final reads apart by the process numbers the workloads give them.
const _: () =
    assert!(checker::coverage::FINAL_READ_PROCESS_BASE == workloads::FINAL_READ_PROCESS_BASE);

/// `report` as [`render_keys`] writes it, with the coverage of the redirect-aware analysis (when
/// it ran) on the lines after the verdict.
pub fn render(report: Report, keys_max: usize) -> String {
    let coverage = report
        .redirect_analysis
        .as_ref()
        .map(|a| a.coverage.to_string());
    let text = render_keys(report, keys_max);
    match (coverage, text.split_once('\n')) {
        (Some(c), Some((verdict, rest))) => format!("{verdict}\n{c}\n{rest}"),
        _ => text,
    }
}

/// `report` as text for a terminal: the verdict and every count, but at most `keys_max` invalid
/// and `keys_max` unknown keys explained; a last line says how many more `--json` has.
fn render_keys(mut report: Report, keys_max: usize) -> String {
    let count = |v: Validity| report.keys.iter().filter(|k| k.valid == v).count();
    let (invalid, unknown) = (count(Validity::Invalid), count(Validity::Unknown));
    if invalid <= keys_max && unknown <= keys_max {
        return report.to_string();
    }
    // The first line counts every key, so it is taken before the keys are cut.
    let mut first = FirstLine(String::new());
    let _ = write!(first, "{report}");
    let (mut invalid_seen, mut unknown_seen) = (0, 0);
    report.keys.retain(|k| {
        let seen = match k.valid {
            Validity::Valid => return true,
            Validity::Invalid => &mut invalid_seen,
            Validity::Unknown => &mut unknown_seen,
        };
        *seen += 1;
        *seen <= keys_max
    });
    let rest = report.to_string();
    let mut text = first.0;
    text.push('\n');
    text.push_str(rest.split_once('\n').map_or("", |(_, r)| r));
    for (n, what) in [(invalid, "invalid"), (unknown, "unknown")] {
        if n > keys_max {
            let _ = writeln!(
                text,
                "... and {} more {what} keys (use --json for all)",
                n - keys_max
            );
        }
    }
    text
}

/// A writer that keeps what is written up to the first newline, then stops the writing with an
/// error, so that a long `Display` is not rendered only to be thrown away.
struct FirstLine(String);

impl fmt::Write for FirstLine {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        match s.split_once('\n') {
            Some((head, _)) => {
                self.0.push_str(head);
                Err(fmt::Error)
            }
            None => {
                self.0.push_str(s);
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use checker::{CheckOptions, History, ModelKind};

    /// The checked fixture `name`, with the redirect-aware analysis.
    fn report(name: &str) -> Report {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("histories")
            .join(name);
        let h = History::read_file(&path).unwrap();
        let opts = CheckOptions::default();
        let mut r = checker::check(&h, ModelKind::Register, &opts).unwrap();
        checker::analyze_redirects(&h, ModelKind::Register, &opts, &mut r).unwrap();
        r
    }

    #[test]
    fn coverage_follows_the_verdict_whether_keys_are_cut_or_not() {
        let r = report("register-lost-write-bad.jsonl");
        for keys_max in [KEYS_SHOWN_MAX, 0] {
            let text = render(r.clone(), keys_max);
            let lines: Vec<&str> = text.lines().collect();
            assert!(
                lines[0].starts_with("register-linearizable: INVALID"),
                "{text}"
            );
            assert!(
                lines[1].starts_with("coverage: 5 client ops, 20.0% invoked in a migrating"),
                "{text}"
            );
            assert!(lines[2].starts_with("coverage: txn ops 0"), "{text}");
            assert_eq!(text.matches("coverage:").count(), 2, "{text}");
        }
        let mut without = r;
        without.redirect_analysis = None;
        assert!(!render(without, KEYS_SHOWN_MAX).contains("coverage:"));
    }
}
