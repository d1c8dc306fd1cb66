//! What every section of the page shares: the history's ops, migrations and faults, the client
//! lanes, and which ops are drawn (all of them, or every k-th plus every op an explanation or
//! anomaly names).

use checker::context::Attribution;
use checker::op::line_of;
use checker::{History, Op, OpError, PageOp, PageOps, Report, Validity};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Most ops drawn one by one (timeline and latency points); above it every k-th op is drawn,
/// plus every op an explanation or anomaly names, so that a 1M-op report stays under 20 MB.
pub const OPS_SHOWN_MAX: usize = 20_000;

/// What [`Prepared::value_of`] gives for an event the history did not keep.
static NULL: Value = Value::Null;

/// The history read for drawing: ops, migrations, faults, lanes and the sample to draw.
pub struct Prepared<'h> {
    /// The history (whole, or reduced to what the page reads: see [`checker::page_file`]).
    pub history: &'h History,
    /// The checker's report on it.
    pub report: &'h Report,
    /// The ops the history holds whole, migrations and faults, as the checker's redirect-aware
    /// analysis sees them.
    pub at: Attribution<'h>,
    /// Index in `at.ops` by the event of its invocation.
    pub by_invoke: HashMap<usize, usize>,
    /// Every op, compact, in invocation order (the op indices below index it).
    pub series: PageOps,
    /// The time of the last event, ns.
    pub end_ns: u64,
    /// The client lane of each op (by op index).
    pub lane_of: Vec<usize>,
    /// The processes of each lane, in the order they ran.
    pub lane_processes: Vec<Vec<u64>>,
    /// Ops an explanation or anomaly names (op indices).
    pub flagged: BTreeSet<usize>,
    /// Ops drawn, sorted (op indices).
    pub shown: Vec<usize>,
    /// Every `stride`-th op is drawn (1: all of them).
    pub stride: usize,
}

impl<'h> Prepared<'h> {
    /// Pairs the ops of the whole `history`, lays out the lanes and picks the ops to draw.
    pub fn new(history: &'h History, report: &'h Report) -> Result<Prepared<'h>, OpError> {
        let at = Attribution::new(history)?;
        let end_ns = history.events.iter().map(|e| e.time).max().unwrap_or(0);
        let series = series_of(history, &at.ops, end_ns);
        Ok(Self::with_attribution(history, report, at, series))
    }

    /// As [`Prepared::new`], of a reduced `history` that holds whole every op `series` has drawn
    /// (see [`to_fetch`]) and every op of the keys `report` names.
    pub fn reduced(
        history: &'h History,
        report: &'h Report,
        series: PageOps,
    ) -> Result<Prepared<'h>, OpError> {
        let at = Attribution::new(history)?;
        Ok(Self::with_attribution(history, report, at, series))
    }

    /// Lays out the lanes of `series` and picks the ops to draw.
    fn with_attribution(
        history: &'h History,
        report: &'h Report,
        at: Attribution<'h>,
        series: PageOps,
    ) -> Prepared<'h> {
        let by_invoke: HashMap<usize, usize> = at
            .ops
            .iter()
            .enumerate()
            .map(|(i, op)| (op.invoke_event, i))
            .collect();
        let end_ns = series.end_ns;
        let (flagged, shown, stride) = plan(report, &series);
        let (lane_of, lane_processes) = lanes(&series.ops, |o| page_end(o, end_ns));
        Prepared {
            history,
            report,
            at,
            by_invoke,
            series,
            end_ns,
            lane_of,
            lane_processes,
            flagged,
            shown,
            stride,
        }
    }

    /// The op at op index `i`, if the history holds it whole (every op drawn is held).
    pub fn op(&self, i: usize) -> Option<&Op> {
        let event = self.series.ops.get(i)?.invoke_event;
        self.by_invoke.get(&event).map(|&j| &self.at.ops[j])
    }

    /// When `op` completed, ns; ops never completed last to the end of the history.
    pub fn end_of(&self, op: &Op) -> u64 {
        end_of(self.history, op, self.end_ns)
    }

    /// The time `op` completed, ns, if it did (an `info` completion included).
    pub fn completed_ns(&self, op: &Op) -> Option<u64> {
        op.complete_event.map(|c| self.time_of(c))
    }

    /// The time of the event at position `event` of the file (a reduced history's events are
    /// found by position, see `History::indices`); 0 if the history did not keep it.
    pub fn time_of(&self, event: usize) -> u64 {
        self.history.event(event).map_or(0, |e| e.time)
    }

    /// The value of the event at position `event` of the file, as [`Prepared::time_of`]; null
    /// if the history did not keep it.
    pub fn value_of(&self, event: usize) -> &'h Value {
        self.history.event(event).map_or(&NULL, |e| &e.value)
    }

    /// The 1-based line of event `event`.
    pub fn line(&self, event: usize) -> usize {
        line_of(self.history, event)
    }

    /// The sentence that says how much of the history is drawn.
    pub fn sample_note(&self) -> String {
        let total = self.series.ops.len();
        if self.stride <= 1 {
            return format!("showing all {total} ops");
        }
        let extra = self
            .flagged
            .iter()
            .filter(|&&i| i % self.stride != 0)
            .count();
        format!(
            "showing {} of {total} ops, every {}-th, plus {extra} that explanations and \
             anomalies name",
            self.shown.len(),
            self.stride
        )
    }
}

/// The compact series of the whole history's `ops`.
fn series_of(history: &History, ops: &[Op], end_ns: u64) -> PageOps {
    let mut series = PageOps {
        end_ns,
        ..PageOps::default()
    };
    let mut f_index: HashMap<&str, u16> = HashMap::new();
    for op in ops {
        let f = *f_index.entry(op.f.as_str()).or_insert_with(|| {
            series.fs.push(op.f.clone());
            u16::try_from(series.fs.len() - 1).unwrap_or(u16::MAX)
        });
        let time = |c: usize| history.event(c).map_or(0, |e| e.time);
        series.ops.push(PageOp {
            process: op.process,
            f,
            outcome: op.outcome,
            invoke_event: op.invoke_event,
            invoke_line: 0,
            invoke_ns: op.invoke_ns,
            complete: op.complete_event.map(|c| (c, 0, time(c))),
        });
    }
    series
}

/// The flagged ops, the ops drawn and the stride of `series` for `report`.
fn plan(report: &Report, series: &PageOps) -> (BTreeSet<usize>, Vec<usize>, usize) {
    let flagged: BTreeSet<usize> = flagged_events(report)
        .iter()
        .filter_map(|&e| series.ops.binary_search_by_key(&e, |o| o.invoke_event).ok())
        .collect();
    let (shown, stride) = sample(series.ops.len(), &flagged, OPS_SHOWN_MAX);
    (flagged, shown, stride)
}

/// The lines (to their positions among the file's events) of the ops drawn for `report` that
/// the reduced `history` left out, for [`checker::add_lines`].
pub fn to_fetch(history: &History, report: &Report, series: &PageOps) -> BTreeMap<usize, usize> {
    let (_, shown, _) = plan(report, series);
    let mut lines = BTreeMap::new();
    for o in shown.iter().filter_map(|&i| series.ops.get(i)) {
        if history.position(o.invoke_event).is_some() {
            continue;
        }
        lines.insert(o.invoke_line as usize, o.invoke_event);
        if let Some((event, line, _)) = o.complete {
            lines.insert(line as usize, event);
        }
    }
    lines
}

/// When the op `o` ended: its completion's time, else the end of the history.
fn page_end(o: &PageOp, end_ns: u64) -> u64 {
    o.complete.map_or(end_ns, |c| c.2).max(o.invoke_ns)
}

/// When `op` ended: its completion's time, else the end of the history.
fn end_of(history: &History, op: &Op, end_ns: u64) -> u64 {
    op.complete_event
        .map_or(end_ns, |c| history.event(c).map_or(0, |e| e.time))
        .max(op.invoke_ns)
}

/// The invocation events that the report's explanations and anomalies name.
fn flagged_events(report: &Report) -> Vec<usize> {
    let mut events = Vec::new();
    for key in report.keys.iter().filter(|k| k.valid == Validity::Invalid) {
        if let Some(e) = &key.explanation {
            events.push(e.op.event);
            events.extend(e.stranded.as_ref().map(|s| s.event));
        }
    }
    for anomaly in &report.anomalies {
        events.extend(anomaly.events.iter().map(|e| e.event));
    }
    events
}

/// Every op when there are at most `max`; else every k-th (k the smallest that keeps at most
/// `max`), plus the flagged ones. Returns the sorted op indices and k.
pub fn sample(ops: usize, flagged: &BTreeSet<usize>, max: usize) -> (Vec<usize>, usize) {
    if ops <= max {
        return ((0..ops).collect(), 1);
    }
    let stride = ops.div_ceil(max.max(1));
    let mut shown: BTreeSet<usize> = (0..ops).step_by(stride).collect();
    shown.extend(flagged.iter().copied().filter(|&i| i < ops));
    (shown.into_iter().collect(), stride)
}

/// Client lanes, as Jepsen's threads: a process retired after an `info` is followed by a new
/// process number, which takes the lowest lane free by then. Returns each op's lane and each
/// lane's processes.
fn lanes(ops: &[PageOp], end: impl Fn(&PageOp) -> u64) -> (Vec<usize>, Vec<Vec<u64>>) {
    // Per process: first invocation, last end.
    let mut span: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    for op in ops {
        let s = span
            .entry(op.process)
            .or_insert((op.invoke_ns, op.invoke_ns));
        s.0 = s.0.min(op.invoke_ns);
        s.1 = s.1.max(end(op));
    }
    let mut order: Vec<(u64, u64, u64)> = span.iter().map(|(&p, &(a, b))| (a, p, b)).collect();
    order.sort_unstable();
    let mut free_at: Vec<u64> = Vec::new();
    let mut lane_processes: Vec<Vec<u64>> = Vec::new();
    let mut lane_by_process: HashMap<u64, usize> = HashMap::new();
    for (start, process, stop) in order {
        let lane = match free_at.iter().position(|&f| f < start) {
            Some(l) => l,
            None => {
                free_at.push(0);
                lane_processes.push(Vec::new());
                free_at.len() - 1
            }
        };
        free_at[lane] = stop;
        lane_processes[lane].push(process);
        lane_by_process.insert(process, lane);
    }
    let lane_of = ops.iter().map(|op| lane_by_process[&op.process]).collect();
    (lane_of, lane_processes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use checker::op::Ops;

    #[test]
    fn samples_every_kth_and_keeps_flagged() {
        let flagged: BTreeSet<usize> = [3, 10, 11].into_iter().collect();
        assert_eq!(sample(5, &flagged, 10), (vec![0, 1, 2, 3, 4], 1));
        let (shown, k) = sample(20, &flagged, 5);
        assert_eq!(k, 4);
        assert_eq!(shown, vec![0, 3, 4, 8, 10, 11, 12, 16]);
    }

    #[test]
    fn retired_processes_reuse_lanes() {
        // process 0 ends with info at 30; process 2 (its successor) starts at 40;
        // process 1 runs throughout.
        let text = r#"{"type":"invoke","process":0,"f":"write","key":"k","value":1,"time":10}
{"type":"invoke","process":1,"f":"read","key":"k","value":null,"time":12}
{"type":"info","process":0,"f":"write","key":"k","value":1,"time":30}
{"type":"invoke","process":2,"f":"write","key":"k","value":2,"time":40}
{"type":"ok","process":2,"f":"write","key":"k","value":2,"time":50}
{"type":"ok","process":1,"f":"read","key":"k","value":null,"time":60}
"#;
        let h = History::parse(text.as_bytes(), "t").unwrap();
        let ops = Ops::from_history(&h).unwrap().ops;
        let series = series_of(&h, &ops, 60);
        let (lane_of, procs) = lanes(&series.ops, |o| page_end(o, 60));
        assert_eq!(procs, vec![vec![0, 2], vec![1]]);
        let by_process: Vec<(u64, usize)> = ops
            .iter()
            .zip(&lane_of)
            .map(|(o, &l)| (o.process, l))
            .collect();
        assert_eq!(by_process, vec![(0, 0), (1, 1), (2, 0)]);
    }
}
