//! What every section of the page shares: the history's ops, migrations and faults, the client
//! lanes, and which ops are drawn (all of them, or every k-th plus every op an explanation or
//! anomaly names).

use checker::context::Attribution;
use checker::op::line_of;
use checker::{History, Op, OpError, Report, Validity};
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Most ops drawn one by one (timeline and latency points); above it every k-th op is drawn,
/// plus every op an explanation or anomaly names, so that a 1M-op report stays under 20 MB.
pub const OPS_SHOWN_MAX: usize = 20_000;

/// The history read for drawing: ops, migrations, faults, lanes and the sample to draw.
pub struct Prepared<'h> {
    /// The history.
    pub history: &'h History,
    /// The checker's report on it.
    pub report: &'h Report,
    /// Ops, migrations and faults, as the checker's redirect-aware analysis sees them.
    pub at: Attribution<'h>,
    /// Op index by the event of its invocation.
    pub by_invoke: HashMap<usize, usize>,
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
    /// Pairs the ops of `history`, lays out the lanes and picks the ops to draw.
    pub fn new(history: &'h History, report: &'h Report) -> Result<Prepared<'h>, OpError> {
        let at = Attribution::new(history)?;
        let by_invoke: HashMap<usize, usize> = at
            .ops
            .iter()
            .enumerate()
            .map(|(i, op)| (op.invoke_event, i))
            .collect();
        let end_ns = history.events.iter().map(|e| e.time).max().unwrap_or(0);
        let flagged: BTreeSet<usize> = flagged_events(report)
            .iter()
            .filter_map(|e| by_invoke.get(e).copied())
            .collect();
        let (shown, stride) = sample(at.ops.len(), &flagged, OPS_SHOWN_MAX);
        let (lane_of, lane_processes) = lanes(&at.ops, |op| end_of(history, op, end_ns));
        Ok(Prepared {
            history,
            report,
            at,
            by_invoke,
            end_ns,
            lane_of,
            lane_processes,
            flagged,
            shown,
            stride,
        })
    }

    /// When `op` completed, ns; ops never completed last to the end of the history.
    pub fn end_of(&self, op: &Op) -> u64 {
        end_of(self.history, op, self.end_ns)
    }

    /// The time `op` completed, ns, if it did (an `info` completion included).
    pub fn completed_ns(&self, op: &Op) -> Option<u64> {
        op.complete_event.map(|c| self.history.events[c].time)
    }

    /// The 1-based line of event `event`.
    pub fn line(&self, event: usize) -> usize {
        line_of(self.history, event)
    }

    /// The sentence that says how much of the history is drawn.
    pub fn sample_note(&self) -> String {
        let total = self.at.ops.len();
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

/// When `op` ended: its completion's time, else the end of the history.
fn end_of(history: &History, op: &Op, end_ns: u64) -> u64 {
    op.complete_event
        .map_or(end_ns, |c| history.events[c].time)
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
fn lanes(ops: &[Op], end: impl Fn(&Op) -> u64) -> (Vec<usize>, Vec<Vec<u64>>) {
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
        let (lane_of, procs) = lanes(&ops, |op| end_of(&h, op, 60));
        assert_eq!(procs, vec![vec![0, 2], vec![1]]);
        let by_process: Vec<(u64, usize)> = ops
            .iter()
            .zip(&lane_of)
            .map(|(o, &l)| (o.process, l))
            .collect();
        assert_eq!(by_process, vec![(0, 0), (1, 1), (2, 0)]);
    }
}
