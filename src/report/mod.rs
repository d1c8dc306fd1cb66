//! `report.html`: one self-contained page per run, what a Jepsen user opens after a run and a
//! Porcupine user opens for a partial linearization, plus what only slotcheck knows: where the
//! slots were and which redirects each op followed.
//!
//! Sections: a summary (verdict, ops by outcome, anomalies by class, redirects by kind, nemesis
//! actions, the run's configuration); a timeline (a lane per client, ops coloured by outcome
//! with their redirects marked, nemesis lanes with each migration's phases and each fault; zoom,
//! scroll and tooltips); each invalid key's partial linearization, failing op and model states;
//! each anomaly's explanation and slot phase; latency, throughput and redirect plots with fault
//! and migration periods shaded.
//!
//! The page is a pure function of the [`History`] and the checker's [`Report`]: no clock, no
//! paths, ordered maps only, so `slotcheck report DIR` rebuilds it byte for byte. A
//! register-family page is drawn from the one path's read instead ([`render_file`]: the reduced
//! history, a compact record per op, and the lines of only the ops drawn), the same bytes. It needs no
//! network: inline SVG (plots by plotters' SVG backend), inline styles and a small inline
//! script. At most [`OPS_SHOWN_MAX`] ops are drawn one by one (every k-th, as the page says,
//! plus every op an explanation or anomaly names), so that a 1M-op history gives a page of a
//! few MB.

/// Appends formatted text to a `String` (writing to a `String` cannot fail).
macro_rules! w {
    ($out:expr, $($arg:tt)*) => {{
        use std::fmt::Write as _;
        let _ = write!($out, $($arg)*);
    }};
}

mod bars;
pub(crate) mod chart;
mod explain;
pub(crate) mod page;
mod plots;
mod prepare;
#[cfg(test)]
mod same;
mod timeline;

pub use prepare::OPS_SHOWN_MAX;

use anyhow::{Context, Result};
use checker::{History, ModelKind, Report};
use std::path::{Path, PathBuf};

/// The page's file name in a run directory.
pub const REPORT_FILE: &str = "report.html";
/// The checker's results in a run directory.
pub const RESULTS_FILE: &str = "results.json";
/// The history in a run directory.
pub const HISTORY_FILE: &str = "history.jsonl";

/// Why a page could not be built from a history and its report.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The history's events break the format's pairing rules.
    #[error(transparent)]
    Op(#[from] checker::OpError),
    /// A plot could not be drawn.
    #[error("drawing the plot `{plot}`: {message}")]
    Plot {
        /// Which plot.
        plot: String,
        /// What went wrong.
        message: String,
    },
}

/// The page for `history` and the checker's `report` on it.
pub fn render(history: &History, report: &Report) -> Result<String, ReportError> {
    draw(&prepare::Prepared::new(history, report)?)
}

/// The page for the register-family history file at `path`, checked against `model` in
/// `report`, from the one path's read (the reduced history and every op's compact record, see
/// [`checker::page_file`]) plus a read of only the lines of the ops drawn that it left out: the
/// page [`render`] gives of the whole history, with no whole history read.
pub fn render_file(path: &Path, model: ModelKind, report: &Report) -> Result<String> {
    let name = path.display();
    let (mut history, series) = checker::page_file(path, model, report)
        .with_context(|| format!("reading {name} for the report"))?;
    let lines = prepare::to_fetch(&history, report, &series);
    checker::add_lines(&mut history, path, &lines)
        .with_context(|| format!("reading the ops drawn from {name}"))?;
    let p = prepare::Prepared::reduced(&history, report, series)?;
    Ok(draw(&p)?)
}

/// The page, drawn from what `p` prepared.
fn draw(p: &prepare::Prepared<'_>) -> Result<String, ReportError> {
    let mut out = String::with_capacity(1 << 20);
    page::head(&mut out, p);
    page::summary(&mut out, p);
    timeline::section(&mut out, p);
    explain::keys(&mut out, p);
    explain::anomalies(&mut out, p);
    plots::section(&mut out, p)?;
    page::tail(&mut out);
    Ok(out)
}

/// Writes `dir/report.html` for `history` and `report`; returns its path.
pub fn write(dir: &Path, history: &History, report: &Report) -> Result<PathBuf> {
    let html = render(history, report).context("building the report")?;
    write_html(dir, html)
}

/// Writes `dir/report.html` for the register-family history file at `history_path` (checked
/// against `model` in `report`) by [`render_file`]; returns its path.
pub fn write_streamed(
    dir: &Path,
    history_path: &Path,
    model: ModelKind,
    report: &Report,
) -> Result<PathBuf> {
    let html = render_file(history_path, model, report).context("building the report")?;
    write_html(dir, html)
}

/// Writes `html` to `dir/report.html`; returns its path.
fn write_html(dir: &Path, html: String) -> Result<PathBuf> {
    let path = dir.join(REPORT_FILE);
    std::fs::write(&path, html).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// Reads the history at `history_path` and writes `dir/report.html` for it and `report`.
pub fn write_for_history(dir: &Path, history_path: &Path, report: &Report) -> Result<PathBuf> {
    let history = History::read_file(history_path)
        .with_context(|| format!("reading {} for the report", history_path.display()))?;
    write(dir, &history, report)
}

/// Writes `dir/results.json`: the report as pretty JSON plus `run`, the run's configuration
/// (seed, server kind and version, nodes, nemesis schedule) from the header of
/// `dir/history.jsonl`, as `slotcheck test` writes it.
pub fn write_results(dir: &Path, report: &Report) -> Result<PathBuf> {
    let path = dir.join(RESULTS_FILE);
    let mut value = serde_json::to_value(report)?;
    if let Some(run) = header_of(&dir.join(HISTORY_FILE)) {
        value["run"] = run;
    }
    std::fs::write(&path, serde_json::to_vec_pretty(&value)?)
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}

/// The header line of the history at `path`, if it has one.
fn header_of(path: &Path) -> Option<serde_json::Value> {
    use std::io::BufRead;
    let mut line = String::new();
    std::io::BufReader::new(std::fs::File::open(path).ok()?)
        .read_line(&mut line)
        .ok()?;
    let value: serde_json::Value = serde_json::from_str(&line).ok()?;
    (value["type"] == "header").then_some(value)
}

/// A saved run directory, as `slotcheck report DIR` finds it: its history and its workload.
pub struct SavedRun {
    /// The run directory.
    pub dir: PathBuf,
    /// `DIR/history.jsonl`.
    pub history: PathBuf,
    /// The workload its header names (the default for a history without one).
    pub workload: workloads::WorkloadKind,
    /// The server its header names, if any.
    pub server: Option<String>,
}

impl SavedRun {
    /// The run saved in `dir`; an error if `dir` has no history.
    pub fn open(dir: &Path) -> Result<SavedRun> {
        let history = dir.join(HISTORY_FILE);
        if !history.is_file() {
            anyhow::bail!(
                "{} is not a run directory: it has no {HISTORY_FILE}",
                dir.display()
            );
        }
        let header = header_of(&history);
        let field = |name: &str| header.as_ref().and_then(|h| h[name].as_str());
        let workload = field("workload")
            .and_then(workloads::WorkloadKind::parse)
            .unwrap_or_default();
        let server = field("server").map(str::to_string);
        Ok(SavedRun {
            dir: dir.to_path_buf(),
            history,
            workload,
            server,
        })
    }
}

/// What `slotcheck report DIR` rewrote.
pub struct Rewritten {
    /// `DIR/results.json`.
    pub results: PathBuf,
    /// `DIR/report.html`.
    pub html: PathBuf,
}

/// Rewrites the saved run's `results.json` and `report.html` from `report`, the check of its
/// history made again as `slotcheck test` made it: the same bytes the run wrote. The page of a
/// register-family history (`streamed`, its model) comes from [`write_streamed`]; else from
/// `history` when it was read whole, else the page reads the file.
pub fn rewrite(
    run: &SavedRun,
    report: &Report,
    history: Option<&History>,
    streamed: Option<ModelKind>,
) -> Result<Rewritten> {
    let results = write_results(&run.dir, report)?;
    let html = match (streamed, history) {
        (Some(model), _) => write_streamed(&run.dir, &run.history, model, report)?,
        (None, Some(h)) => write(&run.dir, h, report)?,
        (None, None) => write_for_history(&run.dir, &run.history, report)?,
    };
    Ok(Rewritten { results, html })
}

#[cfg(test)]
mod tests {
    use super::*;
    use checker::{CheckOptions, ModelKind};

    fn fixture(name: &str) -> History {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("histories")
            .join(name);
        History::read_file(&path).unwrap()
    }

    fn page(name: &str) -> String {
        let h = fixture(name);
        let opts = CheckOptions::default();
        let mut r = checker::check(&h, ModelKind::Register, &opts).unwrap();
        checker::analyze_redirects(&h, ModelKind::Register, &opts, &mut r).unwrap();
        render(&h, &r).unwrap()
    }

    #[test]
    fn an_invalid_key_shows_its_proof_phase_and_states() {
        let html = page("register-lost-write-bad.jsonl");
        assert!(html.contains("<p class=\"verdict invalid\""));
        assert!(html.contains("key &quot;k&quot; is not linearizable."));
        // The failing write ran while its slot's migration was starting, after an ASK.
        assert!(html.contains("slot 7629 starting 127.0.0.1:7000 -&gt; 127.0.0.1:7001"));
        assert!(html.contains("path 127.0.0.1:7000 -ASK-&gt; 127.0.0.1:7001"));
        // Porcupine-style: numbered prefix with the state after each op, the failing op.
        assert!(html.contains("<tr><td>2</td><td>line 4: process 1 read -&gt; 1"));
        assert!(html.contains("<tr class=\"failing\"><td>x</td><td>line 7: process 0 write 2"));
        assert!(html.contains("class=\"lane client\""));
        assert!(html.contains("class=\"lane nemesis\""));
        assert!(html.contains("class=\"ph ph-starting\""));
    }

    #[test]
    fn the_coverage_sits_beside_the_verdict() {
        let html = page("register-lost-write-bad.jsonl");
        let verdict = html.find("id=\"verdict\"").unwrap();
        let coverage = html.find("<p class=\"coverage\" id=\"coverage\"").unwrap();
        assert!(verdict < coverage && coverage < html.find("</header>").unwrap());
        // Five ops; write 2 was invoked between migrate-start and migrate-end, after an ASK.
        assert!(html.contains(
            "<b>coverage</b> 5 client ops, 20.0% invoked in a migrating slot (1), 2 redirected \
             (40.0%) with 2 hops (moved 1, ask 1, tryagain 0, clusterdown 0)<br>txn ops 0"
        ));
    }

    #[test]
    fn the_page_is_deterministic_and_self_contained() {
        let a = page("register-ok.jsonl");
        assert_eq!(a, page("register-ok.jsonl"));
        assert!(a.contains("<p class=\"verdict valid\""));
        for remote in ["http://", "https://", "src=\"", "@import"] {
            let allowed = a.matches("http://www.w3.org/2000/svg").count();
            let found = a.matches(remote).count();
            let found = if remote == "http://" {
                found - allowed
            } else {
                found
            };
            assert_eq!(found, 0, "{remote}");
        }
    }
}
