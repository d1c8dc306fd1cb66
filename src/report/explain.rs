//! The proofs: for each invalid key, Porcupine-style, the longest partial linearization found,
//! the op that could not be placed and the model's states; for each anomaly, the checker's
//! explanation; for both, where in the cluster's life the ops ran (slot, migration phase,
//! faults, hops).

use super::page::{esc, secs};
use super::prepare::Prepared;
use checker::{
    Anomaly, CauseKind, Explanation, KeyReport, Model, OpModel, OpRef, Register, Validity,
};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Invalid keys explained on the page; `results.json` has every one.
const KEYS_EXPLAINED_MAX: usize = 50;
/// Ops of a partial linearization listed (the last ones, nearest the op that failed).
const PREFIX_SHOWN_MAX: usize = 60;
/// Other ops of the key drawn around the partial linearization.
const OTHERS_SHOWN_MAX: usize = 60;
/// The key's ops drawn on each side (in invocation order) of every op the proof names.
const NEIGHBOURS: usize = 3;
/// Anomalies shown per class.
const ANOMALIES_SHOWN_PER_CLASS_MAX: usize = 50;
/// Characters of an anomaly's data shown.
const DATA_CHARS_MAX: usize = 4000;
/// Width of a partial linearization's drawing, px.
const PORC_WIDTH_PX: f64 = 1000.0;

/// Writes the invalid (and unknown) keys section.
pub fn keys(out: &mut String, p: &Prepared) {
    let invalid: Vec<&KeyReport> = p
        .report
        .keys
        .iter()
        .filter(|k| k.valid == Validity::Invalid)
        .collect();
    w!(
        out,
        "<section id=\"keys\"><h2>Invalid keys ({})</h2>",
        invalid.len()
    );
    if invalid.is_empty() {
        out.push_str("<p>None: every key's history has a linearization.</p>");
    }
    for (n, key) in invalid.iter().take(KEYS_EXPLAINED_MAX).enumerate() {
        article(out, p, n, key);
    }
    if invalid.len() > KEYS_EXPLAINED_MAX {
        w!(
            out,
            "<p>... and {} more invalid keys; <code>results.json</code> explains every one.</p>",
            invalid.len() - KEYS_EXPLAINED_MAX
        );
    }
    let unknown: Vec<&KeyReport> = p
        .report
        .keys
        .iter()
        .filter(|k| k.valid == Validity::Unknown)
        .collect();
    if !unknown.is_empty() {
        w!(
            out,
            "<h3>Keys out of search budget ({})</h3><ul>",
            unknown.len()
        );
        for key in unknown.iter().take(KEYS_EXPLAINED_MAX) {
            w!(
                out,
                "<li>{}: {}</li>",
                esc(&key.key),
                esc(key.unknown.as_deref().unwrap_or("unknown"))
            );
        }
        out.push_str("</ul>");
    }
    out.push_str("</section>\n");
}

/// One invalid key: the proof, where it happened, the partial linearization.
fn article(out: &mut String, p: &Prepared, n: usize, key: &KeyReport) {
    w!(
        out,
        "<article class=\"key\" id=\"key-{n}\"><h3>key {}: invalid</h3><p>{} ops, {} searched, \
         {} search steps.</p>",
        esc(&Value::from(key.key.as_str()).to_string()),
        key.ops,
        key.ops_searched,
        key.steps
    );
    let Some(e) = &key.explanation else {
        out.push_str("<p>No explanation was recorded.</p></article>");
        return;
    };
    w!(out, "<pre class=\"proof\">{}</pre>", esc(&e.to_string()));
    if let (Some(class), Some(cause)) = (&key.class, &key.cause) {
        w!(
            out,
            "<p class=\"cause\">{}: {}</p>",
            esc(class),
            esc(&cause.to_string())
        );
    }
    let context = key.context.clone().unwrap_or_else(|| {
        let mut events = vec![e.op.event];
        events.extend(e.stranded.as_ref().map(|s| s.event));
        p.at.context(&events)
    });
    where_it_happened(out, &context);
    partial_linearization(out, p, e);
    out.push_str("</article>\n");
}

/// The context's prose lines (slot, phase, node, hops, faults of each op) and slot phases.
fn where_it_happened(out: &mut String, context: &Value) {
    out.push_str("<h4>Where it happened</h4><ul class=\"ctx\">");
    let lines = context.get("summary").and_then(Value::as_array);
    for line in lines.into_iter().flatten() {
        w!(out, "<li>at {}</li>", esc(line.as_str().unwrap_or("")));
    }
    out.push_str("</ul>");
    let Some(slots) = context.get("slot_phases").and_then(Value::as_object) else {
        return;
    };
    for (slot, states) in slots {
        w!(
            out,
            "<table class=\"phases\"><caption>phases of slot {}</caption><tr><th>line</th>\
             <th>time</th><th>phase</th><th>from -&gt; to</th><th>keys moved</th></tr>",
            esc(slot)
        );
        for s in states.as_array().into_iter().flatten() {
            let field = |k: &str| {
                s.get(k).map_or(String::new(), |v| match v {
                    Value::String(t) => t.clone(),
                    other => other.to_string(),
                })
            };
            let time = s
                .get("since_ns")
                .and_then(Value::as_u64)
                .map_or(String::new(), secs);
            w!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{} -&gt; {}</td><td>{}</td></tr>",
                esc(&field("since_line")),
                time,
                esc(&field("phase")),
                esc(&field("from")),
                esc(&field("to")),
                esc(&field("keys_moved"))
            );
        }
        out.push_str("</table>");
    }
}

/// The register's state after each op of `prefix`, when the report is a register check whose
/// final state matches the explanation's (else `None`: only the final state is known).
fn states_after(p: &Prepared, e: &Explanation) -> Option<Vec<String>> {
    if p.report.checker != "register-linearizable" {
        return None;
    }
    let model = Register::default();
    let mut state = model.init();
    let mut states = Vec::with_capacity(e.prefix.len());
    for r in &e.prefix {
        let op = &p.at.ops[*p.by_invoke.get(&r.event)?];
        if let Some(input) = model.input(op).ok()? {
            state = model.step(&state, &input)?;
        }
        states.push(model.describe_state(&state));
    }
    let last = states
        .last()
        .cloned()
        .unwrap_or_else(|| model.describe_state(&state));
    (last == e.state).then_some(states)
}

/// The ops of the partial linearization drawn as Porcupine does (numbered in linearization
/// order, the op that could not be placed in red), then listed with the states.
fn partial_linearization(out: &mut String, p: &Prepared, e: &Explanation) {
    let hidden = e.prefix.len().saturating_sub(PREFIX_SHOWN_MAX);
    w!(
        out,
        "<h4>Longest partial linearization: {} ops{}</h4><p class=\"note\">Numbered: the \
         order found; red: the op that could not be placed; orange: the op it would strand; \
         grey: the key's neighbouring ops. Left to right: the order of invocations and \
         completions, not to scale.</p>",
        e.prefix.len(),
        if hidden > 0 {
            format!(" (the last {PREFIX_SHOWN_MAX} shown)")
        } else {
            String::new()
        }
    );
    // (op ref, class, linearization number)
    let mut drawn: Vec<(&OpRef, &str, Option<usize>)> = e.prefix[hidden..]
        .iter()
        .enumerate()
        .map(|(i, r)| (r, "lin", Some(hidden + i + 1)))
        .collect();
    drawn.push((&e.op, "failing", None));
    if let Some(s) = &e.stranded {
        drawn.push((s, "stranded", None));
    }
    let named: BTreeSet<usize> = drawn.iter().map(|d| d.0.event).collect();
    let others = neighbours(p, e, &named);
    drawn.extend(others.iter().map(|r| (r, "other", None)));
    porcupine_diagram(out, &drawn);
    states_table(out, p, e, hidden);
}

/// An op drawn in the partial linearization: the op, its CSS class, its number in the order
/// found (for the linearized ops).
type Drawn<'a> = (&'a OpRef, &'static str, Option<usize>);

/// The key's other ops next to the `named` ones (in invocation order), not linearized in the
/// prefix shown: what the search had to order them against.
fn neighbours(p: &Prepared, e: &Explanation, named: &BTreeSet<usize>) -> Vec<OpRef> {
    let key_ops: Vec<usize> = (0..p.at.ops.len())
        .filter(|&i| p.at.ops[i].key.as_deref() == Some(e.key.as_str()))
        .collect();
    let position: HashMap<usize, usize> = key_ops
        .iter()
        .enumerate()
        .map(|(pos, &i)| (p.at.ops[i].invoke_event, pos))
        .collect();
    let mut near: BTreeSet<usize> = BTreeSet::new();
    for pos in named.iter().filter_map(|e| position.get(e)) {
        let last = (pos + NEIGHBOURS).min(key_ops.len().saturating_sub(1));
        near.extend(pos.saturating_sub(NEIGHBOURS)..=last);
    }
    near.iter()
        .map(|&pos| &p.at.ops[key_ops[pos]])
        .filter(|op| !named.contains(&op.invoke_event))
        .take(OTHERS_SHOWN_MAX)
        .map(|op| OpRef::new(p.history, op))
        .collect()
}

/// Draws the `drawn` ops as Porcupine does: a lane per process, x the order of the invocations
/// and completions.
fn porcupine_diagram(out: &mut String, drawn: &[Drawn<'_>]) {
    let mut processes: Vec<u64> = drawn.iter().map(|d| d.0.process).collect();
    processes.sort_unstable();
    processes.dedup();
    let lane = |process: u64| processes.binary_search(&process).unwrap_or(0);
    // As Porcupine draws: x is the order of the invocations and completions, not their time,
    // so that ops far apart in time still show how they overlap.
    let mut times: Vec<u64> = drawn
        .iter()
        .flat_map(|d| [Some(d.0.invoke_ns), d.0.complete_ns])
        .flatten()
        .collect();
    times.sort_unstable();
    times.dedup();
    let (label_px, lane_px) = (90.0, 22.0);
    let step = PORC_WIDTH_PX / (times.len() + 1) as f64;
    let x = |ns: Option<u64>| {
        let rank = ns.map_or(times.len(), |t| times.partition_point(|&u| u < t));
        label_px + (rank as f64 + 0.5) * step
    };
    let height = lane_px * processes.len() as f64 + 6.0;
    w!(
        out,
        "<svg class=\"porc\" width=\"{}\" height=\"{height}\">",
        label_px + PORC_WIDTH_PX + 10.0
    );
    for (i, process) in processes.iter().enumerate() {
        w!(
            out,
            "<text class=\"lane-label\" x=\"2\" y=\"{}\">process {process}</text>",
            lane_px * i as f64 + 15.0
        );
    }
    for (r, class, number) in drawn {
        let (x0, x1) = (x(Some(r.invoke_ns)), x(r.complete_ns));
        let y = lane_px * lane(r.process) as f64 + 3.0;
        let w = (x1 - x0).max(2.0);
        let title = match number {
            Some(n) => format!("#{n} {r}"),
            None => format!("{class}: {r}"),
        };
        w!(
            out,
            "<g><title>{}</title><rect class=\"{class}\" x=\"{x0:.1}\" y=\"{y}\" width=\"{w:.1}\" height=\"16\"/>",
            esc(&title)
        );
        if let Some(n) = number.filter(|_| w >= 16.0) {
            w!(
                out,
                "<text class=\"num\" x=\"{:.1}\" y=\"{}\">{n}</text>",
                x0 + w / 2.0,
                y + 12.0
            );
        }
        out.push_str("</g>");
    }
    out.push_str("</svg>");
}

/// The table of the linearized ops (the last `hidden` of the prefix left out) with the model's
/// state after each, then the op that could not be placed and the op it would strand.
fn states_table(out: &mut String, p: &Prepared, e: &Explanation, hidden: usize) {
    let states = states_after(p, e);
    out.push_str(
        "<table class=\"lin\"><tr><th>#</th><th>op</th><th>model state after it</th></tr>",
    );
    for (i, r) in e.prefix.iter().enumerate().skip(hidden) {
        let state = states.as_ref().map_or(
            if i + 1 == e.prefix.len() {
                e.state.as_str()
            } else {
                ""
            },
            |s| s[i].as_str(),
        );
        w!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            i + 1,
            esc(&r.to_string()),
            esc(state)
        );
    }
    let why = if e.stranded.is_some() {
        format!(
            "must take effect by its completion, and would overwrite {}, which the op below still needs",
            e.state
        )
    } else {
        format!(
            "cannot take effect in state {} (nor after any reordering)",
            e.state
        )
    };
    w!(
        out,
        "<tr class=\"failing\"><td>x</td><td>{}</td><td>{}</td></tr>",
        esc(&e.op.to_string()),
        esc(&why)
    );
    if let Some(s) = &e.stranded {
        w!(
            out,
            "<tr class=\"stranded\"><td>!</td><td>{}</td><td>needs state {}</td></tr>",
            esc(&s.to_string()),
            esc(&e.state)
        );
    }
    out.push_str("</table>");
}

/// Writes the anomalies section: every anomaly of the graph, list and redirect analyses, by
/// class, with its explanation and where its ops ran.
pub fn anomalies(out: &mut String, p: &Prepared) {
    // By cause (unexplained and migration first), then by class.
    let mut by_class: BTreeMap<(CauseKind, &str), Vec<&Anomaly>> = BTreeMap::new();
    for a in &p.report.anomalies {
        let cause = a.cause.as_ref().map_or(CauseKind::Unexplained, |c| c.kind);
        by_class
            .entry((cause, a.class.as_str()))
            .or_default()
            .push(a);
    }
    let total: usize = by_class.values().map(Vec::len).sum();
    w!(
        out,
        "<section id=\"anomalies\"><h2>Anomalies ({total})</h2>"
    );
    if total == 0 {
        out.push_str(
            "<p>None found by the graph, list and redirect analyses (redirect loops, redirects \
             after an op applied).</p>",
        );
    }
    for ((cause, class), list) in &by_class {
        // Counted in full (by cause), past the ones listed.
        let counted = p.report.causes.get(cause).and_then(|c| c.get(*class));
        let all = counted.copied().unwrap_or(0).max(list.len());
        w!(out, "<h3>{} ({all}), cause {cause}</h3>", esc(class));
        for a in list.iter().take(ANOMALIES_SHOWN_PER_CLASS_MAX) {
            anomaly(out, a);
        }
    }
    out.push_str("</section>\n");
}

/// One anomaly: its keys and explanation, its ops' lines, where they ran, its data.
fn anomaly(out: &mut String, a: &Anomaly) {
    let lines: Vec<String> = a.events.iter().map(|e| e.line.to_string()).collect();
    w!(
        out,
        "<article class=\"anomaly\"><p><b>{}</b> on {}: lines {}</p><pre class=\"proof\">{}</pre>",
        esc(&a.class),
        esc(&a.keys.join(", ")),
        lines.join(", "),
        esc(&a.explanation)
    );
    if let Some(cause) = &a.cause {
        w!(out, "<p class=\"cause\">{}</p>", esc(&cause.to_string()));
    }
    if let Some(ctx) = &a.context {
        where_it_happened(out, ctx);
    }
    let data = serde_json::to_string_pretty(&a.data).unwrap_or_default();
    let cut: String = data.chars().take(DATA_CHARS_MAX).collect();
    w!(
        out,
        "<details><summary>data</summary><pre>{}{}</pre></details></article>",
        esc(&cut),
        if cut.len() < data.len() { "\n..." } else { "" }
    );
}
