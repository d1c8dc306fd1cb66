//! Redirect-aware analysis: where each anomaly happened in the cluster's life.
//!
//! Every op an invalid key's explanation (or an [`Anomaly`]) names is annotated with its slot,
//! the migration phase of that slot when the op was invoked (and when it completed, if that
//! differs), the faults active while it ran, and the redirect hops it followed; faults on those
//! nodes between the ops (a restart between a write and the read that lost it) are listed too.
//! The analysis also counts redirects ([`RedirectStats`](crate::redirects::RedirectStats)) and
//! keeps the fault intervals in [`RedirectAnalysis`], and adds the redirect-protocol,
//! `stale-route` and `redirect-after-apply` anomalies to the report's one list.
//!
//! It runs on a whole [`History`] or on the reduced one the streaming check keeps
//! ([`analyze_with`]): every rule here reads only ops that one keeps whole (redirected, failed,
//! `info`, erring, batched, `txn`, final reads, and every op of a key not found valid), and
//! positions are the file's in both ([`History::indices`]).

use crate::after_apply::redirect_after_apply_cases;
use crate::anomaly::Anomaly;
use crate::cause::{self, Cause, CauseKind};
use crate::coverage::PlainOps;
use crate::fault::{faults, Fault};
use crate::history::{History, Redirect};
use crate::model::ModelKind;
use crate::op::{line_of, Op, OpError, Ops, Outcome};
use crate::options::{CheckError, CheckOptions};
use crate::per_key;
use crate::phase::{SlotState, Timeline};
use crate::protocol;
use crate::redirects::{op_slot, redirect_stats};
use crate::report::Report;
use crate::stale_route::stale_route_cases;
use crate::validity::Validity;
use serde::Serialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::fmt;

pub use crate::report::RedirectAnalysis;

/// How many phase changes of a slot a key's context lists.
const PHASES_LISTED_MAX: usize = 32;
/// How many faults between the explained ops a context lists.
const FAULTS_BETWEEN_LISTED_MAX: usize = 5;

/// Where and when one op ran, as far as the cluster's state goes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OpContext {
    /// Position of its invocation in `History::events`.
    pub event: usize,
    /// 1-based line of that invocation.
    pub line: usize,
    /// The client's logical process.
    pub process: u64,
    /// The operation.
    pub f: String,
    /// Its key.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// Its slot (recorded, else computed from the key).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slot: Option<u16>,
    /// The node that finally answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// How it ended.
    pub outcome: Outcome,
    /// The slot's state when the op was invoked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<SlotState>,
    /// The slot's state when the op completed, when the phase had changed meanwhile.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase_at_completion: Option<SlotState>,
    /// Faults active at some point while the op ran.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<Fault>,
    /// The hops it followed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub redirects: Vec<Redirect>,
    /// Its error text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Renders as `line 8 (process 0 write): slot 7629 migrating ... ; hops ask a -> b; faults: none`.
impl fmt::Display for OpContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {} (process {} {}): ",
            self.line, self.process, self.f
        )?;
        match &self.phase {
            Some(p) => write!(f, "{p}")?,
            None => write!(f, "no slot")?,
        }
        if let Some(p) = &self.phase_at_completion {
            write!(f, ", then {} by its completion", p.phase)?;
        }
        if let Some(node) = &self.node {
            write!(f, "; answered by {node}")?;
        }
        if !self.redirects.is_empty() {
            write!(f, "; path {}", protocol::path(&self.redirects))?;
        }
        if let Some(e) = &self.error {
            write!(f, "; error `{e}`")?;
        }
        if self.faults.is_empty() {
            write!(f, "; no fault active")
        } else {
            let fs: Vec<String> = self.faults.iter().map(ToString::to_string).collect();
            write!(f, "; faults: {}", fs.join(", "))
        }
    }
}

/// A history's ops, migrations and faults, ready to annotate anomalies with.
#[derive(Debug, Clone)]
pub struct Attribution<'h> {
    history: &'h History,
    /// The history's client ops.
    pub ops: Vec<Op>,
    by_invoke: HashMap<usize, usize>,
    /// Its migrations.
    pub timeline: Timeline,
    /// Its faults.
    pub faults: Vec<Fault>,
}

impl<'h> Attribution<'h> {
    /// Pairs the ops and rebuilds migrations and faults of `history`.
    pub fn new(history: &'h History) -> Result<Attribution<'h>, OpError> {
        let ops = Ops::from_history(history)?.ops;
        let by_invoke = ops
            .iter()
            .enumerate()
            .map(|(i, op)| (op.invoke_event, i))
            .collect();
        Ok(Attribution {
            history,
            ops,
            by_invoke,
            timeline: Timeline::new(history),
            faults: faults(history),
        })
    }

    /// The context of the op invoked at event `event`; `None` if no op was.
    pub fn op_context(&self, event: usize) -> Option<OpContext> {
        let op = &self.ops[*self.by_invoke.get(&event)?];
        let slot = op_slot(op);
        let key = op.key.as_deref();
        let state = |at: usize| slot.map(|s| self.timeline.state_at(self.history, s, at, key));
        let phase = state(op.invoke_event);
        let at_end = op.complete_event.and_then(|c| state(c + 1));
        let phase_at_completion =
            at_end.filter(|s| Some(s.phase) != phase.as_ref().map(|p| p.phase));
        Some(OpContext {
            event,
            line: line_of(self.history, event),
            process: op.process,
            f: op.f.clone(),
            key: op.key.clone(),
            slot,
            node: op.node.clone(),
            outcome: op.outcome,
            phase,
            phase_at_completion,
            faults: self
                .faults
                .iter()
                .filter(|f| f.overlaps(op.invoke_event, op.complete_event))
                .cloned()
                .collect(),
            redirects: op.redirects.clone(),
            error: op.error.clone(),
        })
    }

    /// A context object for the ops invoked at `events`: `ops` (each an [`OpContext`]),
    /// `summary` (one prose line each), and the phases of their slots.
    pub fn context(&self, events: &[usize]) -> Value {
        let ops: Vec<OpContext> = events.iter().filter_map(|&e| self.op_context(e)).collect();
        let mut summary: Vec<String> = ops.iter().map(ToString::to_string).collect();
        let between = faults_between(&self.faults, &ops);
        if !between.is_empty() {
            let listed: Vec<String> = between.iter().map(ToString::to_string).collect();
            summary.push(format!("between them: {}", listed.join(", ")));
        }
        let mut slots: Vec<u16> = ops.iter().filter_map(|o| o.slot).collect();
        slots.sort_unstable();
        slots.dedup();
        let phases: serde_json::Map<String, Value> = slots
            .iter()
            .map(|&s| {
                let p = self.timeline.phases_of(self.history, s, PHASES_LISTED_MAX);
                (s.to_string(), json!(p))
            })
            .filter(|(_, p)| p.as_array().is_some_and(|a| !a.is_empty()))
            .collect();
        let mut v = json!({"slots": slots, "ops": ops, "summary": summary});
        if !phases.is_empty() {
            v["slot_phases"] = Value::Object(phases);
        }
        if !between.is_empty() {
            v["faults_between"] = json!(between);
        }
        v
    }

    /// Sets `anomaly.context` from the ops it names.
    pub fn annotate(&self, anomaly: &mut Anomaly) {
        let events: Vec<usize> = anomaly.events.iter().map(|e| e.event).collect();
        anomaly.context = Some(self.context(&events));
    }
}

/// Faults on a node that answered one of `ops` which began after the first of them and before the
/// last, and were active during none of them (a master killed and restarted between a write and
/// a read that lost it), at most [`FAULTS_BETWEEN_LISTED_MAX`].
fn faults_between(faults: &[Fault], ops: &[OpContext]) -> Vec<Fault> {
    let (Some(first), Some(last)) = (
        ops.iter().map(|o| o.event).min(),
        ops.iter().map(|o| o.event).max(),
    ) else {
        return Vec::new();
    };
    let nodes: Vec<&str> = ops.iter().filter_map(|o| o.node.as_deref()).collect();
    faults
        .iter()
        .filter(|f| f.begin_event > first && f.begin_event < last)
        .filter(|f| f.node.as_deref().is_some_and(|n| nodes.contains(&n)))
        .filter(|f| !ops.iter().any(|o| o.faults.contains(f)))
        .take(FAULTS_BETWEEN_LISTED_MAX)
        .cloned()
        .collect()
}

/// Runs the redirect-aware analysis on a report `check(history, model, opts)` returned: every
/// key that is not valid gets a `context`, a class and a cause, `report.redirect_analysis` is
/// set, every anomaly gets a cause, and any anomaly makes the verdict invalid.
pub fn analyze(
    history: &History,
    model: ModelKind,
    opts: &CheckOptions,
    report: &mut Report,
) -> Result<(), CheckError> {
    analyze_with(history, &PlainOps::default(), model, opts, report)
}

/// [`analyze`] of a reduced history (see `stream::keep`): `plain` are the ops it left out,
/// which only coverage counts; the report is the one the whole history gives.
pub fn analyze_with(
    history: &History,
    plain: &PlainOps,
    model: ModelKind,
    opts: &CheckOptions,
    report: &mut Report,
) -> Result<(), CheckError> {
    let at = Attribution::new(history)?;
    let found = protocol::violations(history, &at.ops, &at.timeline, &at.faults);
    let mut anomalies = found.anomalies;
    for mut a in stale_route_cases(history, &at.ops, &at.timeline) {
        a.cause = Some(Cause::new(
            CauseKind::Client,
            "the client routed by a slot map older than a MOVED it had already followed",
        ));
        anomalies.push(a);
    }
    let mut after = redirect_after_apply_cases(history, &at.ops, model, opts, report)?;
    for a in &mut after {
        a.cause = Some(Cause::new(
            CauseKind::Server,
            "a node answered with a redirect after the op had taken effect",
        ));
    }
    let classes = at.key_classes(report);
    for key in report
        .keys
        .iter_mut()
        .filter(|k| k.valid != Validity::Valid)
    {
        let mut events = Vec::new();
        if let Some(e) = &key.explanation {
            events.push(e.op.event);
            events.extend(e.stranded.as_ref().map(|s| s.event));
        }
        let mut ctx = at.context(&events);
        let blamed: Vec<&Anomaly> = after
            .iter()
            .filter(|a| a.keys == [key.key.clone()])
            .collect();
        if let Some(a) = blamed.first() {
            ctx["redirect_after_apply"] = json!(a.events);
            if let Some(summary) = ctx["summary"].as_array_mut() {
                summary.push(Value::from(format!(
                    "redirect-after-apply: {}",
                    a.explanation
                )));
            }
        }
        key.context = Some(ctx);
        if key.valid == Validity::Invalid {
            let class = classes.get(&key.key).copied().unwrap_or("non-linearizable");
            key.cause = Some(at.cause_of(class, &events, blamed.first().copied()));
            key.class = Some(class.to_string());
        }
    }
    anomalies.extend(after);
    for a in anomalies.iter_mut().chain(report.anomalies.iter_mut()) {
        at.annotate(a);
    }
    let mut stats = redirect_stats(history, &at.ops, &at.timeline);
    stats.violations = found.counts;
    stats.paths = found.paths;
    report.anomalies.extend(anomalies);
    report.redirect_analysis = Some(RedirectAnalysis {
        stats,
        faults: at.faults.clone(),
        migrations: at.timeline.migrations.len(),
        coverage: crate::coverage::coverage_with(history, &at.ops, plain, &at.timeline),
        unlisted: found.unlisted,
    });
    attribute(&at, report);
    Ok(())
}

/// Gives every anomaly of `report` that has none a cause (anomalies added after the analysis,
/// such as `verify`'s findings, included), then recounts the causes and the verdict.
pub fn attribute(at: &Attribution<'_>, report: &mut Report) {
    for a in &mut report.anomalies {
        if a.cause.is_some() {
            continue;
        }
        let events: Vec<usize> = a.events.iter().map(|e| e.event).collect();
        a.cause = Some(if events.is_empty() {
            // A finding about the cluster's end state (verify's): the whole run is its window.
            let slots = slots_named(&a.data);
            let (history, timeline, faults) = (at.history, &at.timeline, &at.faults);
            cause::of_data(history, timeline, faults, &a.class, (0, None), &slots, &[])
        } else {
            at.cause_of(&a.class, &events, None)
        });
    }
    report.tally_causes();
}

/// The slots an anomaly's data names (`slot`, or `slots`), for findings with no ops.
fn slots_named(data: &Value) -> Vec<u16> {
    let one = data.get("slot").and_then(Value::as_u64);
    let many = data
        .get("slots")
        .and_then(Value::as_array)
        .into_iter()
        .flatten();
    one.into_iter()
        .chain(many.filter_map(Value::as_u64))
        .filter(|&s| s < u64::from(crate::slot::SLOT_COUNT))
        .map(|s| s as u16)
        .collect()
}

impl Attribution<'_> {
    /// The anomaly class of every invalid key of `report`: a counter's by the counter rules,
    /// a register's by its explanation (see [`crate::classify`]).
    pub fn key_classes(&self, report: &Report) -> HashMap<String, &'static str> {
        let invalid: HashMap<&str, &crate::report::KeyReport> = report
            .keys
            .iter()
            .filter(|k| k.valid == Validity::Invalid)
            .map(|k| (k.key.as_str(), k))
            .collect();
        // A register's multi-key ops (`txn`) count as one op per key, as the check read them.
        let has_txn = !invalid.is_empty() && self.ops.iter().any(|op| op.f == per_key::TXN);
        let expanded = match has_txn {
            true => per_key::expand(&self.ops).ok(),
            false => None,
        };
        let all = expanded.as_deref().unwrap_or(&self.ops);
        let mut of_key: HashMap<&str, Vec<&Op>> = HashMap::new();
        for op in all {
            if let Some(k) = op.key.as_deref().filter(|k| invalid.contains_key(k)) {
                of_key.entry(k).or_default().push(op);
            }
        }
        invalid
            .iter()
            .map(|(&name, key)| {
                let ops = of_key.get(name).map_or(&[][..], Vec::as_slice);
                let class = match &key.explanation {
                    _ if crate::classify_counter::is_counter(ops) => {
                        crate::classify_counter::counter_class(ops)
                    }
                    Some(e) => crate::classify::register_class(all, e),
                    None => "non-linearizable",
                };
                (name.to_string(), class)
            })
            .collect()
    }

    /// The cause of a data anomaly of `class` whose ops were invoked at `events`; a
    /// `redirect-after-apply` found on the same key makes it the server's.
    pub fn cause_of(&self, class: &str, events: &[usize], after_apply: Option<&Anomaly>) -> Cause {
        if let Some(a) = after_apply {
            let line = a.events.first().map_or(0, |e| e.line);
            return Cause::new(
                CauseKind::Server,
                format!("redirect-after-apply: {}", a.explanation),
            )
            .at(line);
        }
        let ops: Vec<&Op> = events
            .iter()
            .filter_map(|e| self.by_invoke.get(e).map(|&i| &self.ops[i]))
            .collect();
        let first = ops.iter().map(|o| o.invoke_event).min().unwrap_or(0);
        let last = ops
            .iter()
            .map(|o| o.complete_event)
            .try_fold(first, |m, c| c.map(|c| m.max(c)));
        let slots: Vec<u16> = ops.iter().filter_map(|o| op_slot(o)).collect();
        let mut nodes: Vec<&str> = ops.iter().filter_map(|o| o.node.as_deref()).collect();
        for hop in ops.iter().flat_map(|o| &o.redirects) {
            nodes.extend([hop.from.as_str(), hop.to.as_str()]);
        }
        let (faults, timeline) = (&self.faults, &self.timeline);
        // A finding about what the nodes hold after the run may come from anything after its ops.
        let end_state = matches!(
            class,
            "final-state-mismatch" | "stranded-key" | "duplicated-key" | "replica-divergence"
        );
        let window = (first, if end_state { None } else { last });
        cause::of_data(
            self.history,
            timeline,
            faults,
            class,
            window,
            &slots,
            &nodes,
        )
    }
}
