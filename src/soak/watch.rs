//! The rolling checker of a soak: each window's keys (the workload's keys live for one window,
//! `workloads::KeyNames::epoch_name`) are checked as soon as the segments that can hold their events are
//! closed, and an alarm with that window's report is raised when one is invalid.
//!
//! Window `w` covers history time `[w, w + 1) × window`; its keys are invoked only then, and
//! every op completes (at worst as `info`) within the client timeout, so its events lie in
//! `[w × window, (w + 1) × window + margin)`. The segments overlapping that span are read (windows
//! overlap by the margin, so an op that spans a boundary is not missed), its keys' events and the
//! nemesis events among them make the window's history. An op still open past the margin (one
//! that kept being redirected or retried) is followed into later closed segments; while it is
//! open in every closed segment, the window is carried to the next poll, until the soak ends. Only the segment
//! index and one window's events are in memory: nothing grows with the soak's length.

use std::collections::{BTreeMap, HashMap};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use checker::{CheckOptions, EventType, Header, History, ModelKind, Ops, Process, Validity};
use serde::Serialize;

use super::segments::{self, Segment};

/// The rolling checker's state: which segments it has indexed and which window is next.
pub struct Watcher {
    run_dir: PathBuf,
    seg_dir: PathBuf,
    window_ns: u64,
    margin_ns: u64,
    segments: Vec<Segment>,
    header: Option<Header>,
    next_window: Option<u64>,
    out: std::fs::File,
    /// What was checked so far.
    pub totals: Totals,
}

/// Running totals for the progress line and the summary.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Totals {
    /// Windows checked.
    pub windows: u64,
    /// Windows found invalid.
    pub alarms: u64,
    /// Client ops checked.
    pub ops: u64,
    /// Migrations ended in the indexed segments.
    pub migrations: u64,
    /// Node faults begun in the indexed segments.
    pub faults: u64,
    /// Windows with an unknown verdict (a search budget ran out).
    pub unknown: u64,
}

/// The outcome of one window, one line of `windows.jsonl`.
#[derive(Debug, Clone, Serialize)]
pub struct WindowResult {
    /// Window number (history time / window length).
    pub window: u64,
    /// Its span in history time, ms.
    pub from_ms: u64,
    /// End of its span, ms (its ops may complete up to the margin later).
    pub to_ms: u64,
    /// Client ops on its keys.
    pub ops: u64,
    /// Keys with ops.
    pub keys: usize,
    /// `valid`, `invalid` or `unknown`.
    pub verdict: &'static str,
    /// Anomaly classes found, with counts.
    pub classes: BTreeMap<String, usize>,
    /// The invalid keys (at most 20).
    pub invalid_keys: Vec<String>,
    /// Time the check took, ms.
    pub check_ms: u64,
    /// History time up to which segments were closed when the window was checked, ms: how
    /// long after the window the verdict came.
    pub checked_at_ms: u64,
    /// The checker's resident memory after the check, KiB (from /proc/self/status).
    pub rss_kib: Option<u64>,
    /// The alarm's directory (history, results.json, report.html of the window).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alarm: Option<PathBuf>,
}

/// Invalid keys named per window.
const INVALID_KEYS_NAMED_MAX: usize = 20;

impl Watcher {
    /// A watcher of `run_dir/segments` that appends its results to `run_dir/results_file`;
    /// with `resume`, it goes on after the last window that file names.
    pub fn new(
        run_dir: &Path,
        window_ms: u64,
        margin_ms: u64,
        results_file: &str,
        resume: bool,
    ) -> Result<Self> {
        let path = run_dir.join(results_file);
        let next_window = if resume {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            text.lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .filter_map(|v| v["window"].as_u64())
                .max()
                .map(|w| w + 1)
        } else {
            None
        };
        let segments = segments::load_index(run_dir)?;
        let mut totals = Totals::default();
        for s in &segments {
            totals.migrations += s.migrations;
            totals.faults += s.faults;
        }
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .with_context(|| format!("opening {}", path.display()))?;
        Ok(Watcher {
            run_dir: run_dir.to_path_buf(),
            seg_dir: run_dir.join(segments::SEGMENTS_DIR),
            window_ns: window_ms.max(1) * 1_000_000,
            margin_ns: margin_ms * 1_000_000,
            header: match segments.first() {
                Some(first) => History::read_file(&first.path)?.header,
                None => None,
            },
            next_window: next_window.or_else(|| {
                let window_ns = window_ms.max(1) * 1_000_000;
                segments
                    .iter()
                    .filter(|s| s.events > 0)
                    .map(|s| s.min_time / window_ns)
                    .min()
            }),
            segments,
            out,
            totals,
        })
    }

    /// The segments indexed so far.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// Indexes newly closed segments (all of them once `finished`), then checks every window
    /// that is due, in order; returns their results.
    pub fn poll(&mut self, finished: bool) -> Result<Vec<WindowResult>> {
        let present = segments::list(&self.seg_dir)?;
        let newest = present.last().copied();
        for index in present {
            let closed = finished || Some(index) != newest;
            if !closed || self.segments.iter().any(|s| s.index == index) {
                continue;
            }
            let (segment, history) = segments::read(&self.seg_dir, index)?;
            segments::append_index(&self.run_dir, &segment)?;
            if self.header.is_none() {
                self.header = history.header.clone();
            }
            self.totals.migrations += segment.migrations;
            self.totals.faults += segment.faults;
            if segment.events > 0 && self.next_window.is_none() {
                self.next_window = Some(segment.min_time / self.window_ns);
            }
            self.segments.push(segment);
        }
        self.segments.sort_by_key(|s| s.index);
        let closed_until = self.segments.iter().map(|s| s.max_time).max().unwrap_or(0);
        let mut results = Vec::new();
        while let Some(w) = self.next_window {
            let due = (w + 1) * self.window_ns + self.margin_ns;
            let last_event = self.segments.iter().map(|s| s.max_time).max().unwrap_or(0);
            if w * self.window_ns > last_event || (!finished && closed_until < due) {
                break;
            }
            match self.check_window(w, finished, closed_until)? {
                Some(result) => {
                    self.next_window = Some(w + 1);
                    if result.ops > 0 {
                        let mut line = serde_json::to_vec(&result)?;
                        line.push(b'\n');
                        self.out.write_all(&line)?;
                        results.push(result);
                    }
                }
                None => break, // an op of the window is still open: carried to the next poll
            }
        }
        Ok(results)
    }

    /// The events of window `w` (its clients' ops by key epoch, and nemesis events from one
    /// window before `from` up to `to`), in time order, and whether an op of it is still open.
    fn window_history(&self, w: u64, from: u64, to: u64) -> Result<(History, bool)> {
        let mut history = History {
            header: self.header.clone(),
            ..History::default()
        };
        // Nemesis events from one window earlier on, so that a migration begun before the
        // window still has its start in the window's history.
        let context_from = from.saturating_sub(self.window_ns);
        let mut open: HashMap<u64, bool> = HashMap::new();
        let mut still_open = false;
        for s in self.segments.iter().filter(|s| s.max_time >= context_from) {
            // Past the margin, read on only while an op of the window is still open (a
            // request that kept being redirected or retried can outlast the margin).
            if s.min_time >= to && !still_open {
                break;
            }
            let part = History::read_file(&s.path)?;
            for e in part.events {
                let mine = match e.process {
                    Process::Nemesis => e.time >= context_from && e.time < to,
                    Process::Client(p) => {
                        let epoch = e.key.as_deref().and_then(workloads::key_epoch);
                        let mine = epoch == Some(w);
                        if mine {
                            open.insert(p, e.kind == EventType::Invoke);
                        }
                        mine
                    }
                };
                if mine {
                    history.events.push(e);
                }
            }
            still_open = open.values().any(|&o| o);
        }
        history.events.sort_by_key(|e| e.time);
        Ok((history, still_open))
    }

    /// Checks window `w`; `None` when one of its ops is still open and the soak goes on.
    fn check_window(
        &mut self,
        w: u64,
        finished: bool,
        closed_until: u64,
    ) -> Result<Option<WindowResult>> {
        let (from, to) = (
            w * self.window_ns,
            (w + 1) * self.window_ns + self.margin_ns,
        );
        let (history, still_open) = self.window_history(w, from, to)?;
        if !finished && still_open {
            return Ok(None);
        }
        let started = Instant::now();
        let name = self.run_dir.join(format!("window-{w}"));
        let report = crate::run::check_loaded(
            &history,
            &name,
            ModelKind::Register,
            &CheckOptions::default(),
        )?;
        let ops = Ops::from_history(&history)?.ops;
        let classes = report.classes();
        let invalid_keys: Vec<String> = report
            .keys
            .iter()
            .filter(|k| k.valid == Validity::Invalid)
            .take(INVALID_KEYS_NAMED_MAX)
            .map(|k| k.key.clone())
            .collect();
        let alarm = if report.valid == Validity::Invalid || !classes.is_empty() {
            Some(self.write_alarm(w, &history, &report)?)
        } else {
            None
        };
        self.totals.windows += 1;
        self.totals.ops += ops.len() as u64;
        self.totals.alarms += u64::from(alarm.is_some());
        self.totals.unknown += u64::from(report.valid == Validity::Unknown);
        Ok(Some(WindowResult {
            window: w,
            from_ms: from / 1_000_000,
            to_ms: (w + 1) * self.window_ns / 1_000_000,
            ops: ops.len() as u64,
            keys: report.keys.len(),
            verdict: report.valid.name(),
            classes,
            invalid_keys,
            check_ms: started.elapsed().as_millis() as u64,
            checked_at_ms: closed_until / 1_000_000,
            rss_kib: rss_kib(),
            alarm,
        }))
    }

    /// Writes `alarms/window-NNNNNN/` as a run directory of its own: the window's history,
    /// `results.json` and `report.html` (`slotcheck report` rebuilds them from it).
    fn write_alarm(&self, w: u64, history: &History, report: &checker::Report) -> Result<PathBuf> {
        let dir = self.run_dir.join("alarms").join(format!("window-{w:06}"));
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let path = dir.join(crate::report::HISTORY_FILE);
        let mut text = Vec::new();
        if let Some(h) = &history.header {
            text.extend(h.to_line().into_bytes());
            text.push(b'\n');
        }
        for e in &history.events {
            text.extend(serde_json::to_vec(e)?);
            text.push(b'\n');
        }
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))?;
        crate::report::write_results(&dir, report)?;
        crate::report::write(&dir, history, report)?;
        Ok(dir)
    }
}

/// This process's resident memory, KiB.
pub fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    /// Writes segment `index` of `dir/segments` from `(process, type, key, value, ms)` rows.
    fn segment(dir: &Path, index: u64, rows: &[(u64, &str, &str, Value, u64)]) {
        let seg = dir.join(segments::SEGMENTS_DIR);
        std::fs::create_dir_all(&seg).unwrap();
        let mut text = String::new();
        if index == 1 {
            text.push_str("{\"type\":\"header\",\"format\":\"slotcheck-history\",\"version\":1,\"workload\":\"register\"}\n");
        }
        for (p, kind, key, value, ms) in rows {
            let f = if value.is_null() || *p == 1 {
                "read"
            } else {
                "write"
            };
            let e = json!({"type": kind, "process": p, "f": f, "key": key, "value": value,
                           "time": ms * 1_000_000});
            text.push_str(&format!("{e}\n"));
        }
        std::fs::write(workloads::segment_path(&seg, index), text).unwrap();
    }

    #[test]
    fn an_op_open_past_the_margin_is_followed_or_carried() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let (w0, w1) = ("{register:0}:e0", "{register:0}:e1");
        segment(
            d,
            1,
            &[
                (0, "invoke", w0, json!(1), 100),
                (0, "ok", w0, json!(1), 200),
                (1, "invoke", w0, Value::Null, 900),
            ],
        );
        segment(
            d,
            2,
            &[
                (0, "invoke", w1, json!(2), 1600),
                (0, "ok", w1, json!(2), 1700),
            ],
        );
        // The read of window 0 completes at 2.1 s, well past its margin (1 s + 0.5 s).
        segment(d, 3, &[(1, "ok", w0, json!(1), 2100)]);
        segment(d, 4, &[(0, "invoke", "{register:0}:e3", Value::Null, 3100)]);
        let mut watcher = Watcher::new(d, 1000, 500, "w.jsonl", false).unwrap();
        let results = watcher.poll(false).unwrap();
        assert_eq!(
            results.len(),
            1,
            "window 0 done, window 1 waits for segment 4: {results:?}"
        );
        assert_eq!(
            (results[0].window, results[0].ops, results[0].verdict),
            (0, 2, "valid")
        );
        let results = watcher.poll(true).unwrap();
        let done: Vec<(u64, u64)> = results.iter().map(|r| (r.window, r.ops)).collect();
        assert_eq!(
            done,
            [(1, 1), (3, 1)],
            "window 2 has no op; window 3's read never ended"
        );

        // With the completion in the newest (open) segment, window 0 is carried, not judged.
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        segment(d, 1, &[(1, "invoke", w0, Value::Null, 900)]);
        segment(
            d,
            2,
            &[
                (2, "invoke", w1, json!(3), 1600),
                (2, "ok", w1, json!(3), 1700),
            ],
        );
        segment(d, 3, &[(1, "ok", w0, Value::Null, 2600)]);
        let mut watcher = Watcher::new(d, 1000, 500, "w.jsonl", false).unwrap();
        assert!(watcher.poll(false).unwrap().is_empty(), "window 0 carried");
        let results = watcher.poll(true).unwrap();
        assert_eq!(results.iter().map(|r| r.window).collect::<Vec<_>>(), [0, 1]);
        assert_eq!(results[0].ops, 1);
    }
}
