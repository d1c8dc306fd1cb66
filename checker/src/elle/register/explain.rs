//! `cyclic-versions` as data and prose (the shortest cycle of a strongly connected component
//! of a key's version order, each step with the source and transactions that gave it), and the
//! sentence a dependency cycle gets when one of its steps rests on an assumed version order.

use super::{touches, Source, Version, VersionEdge};
use crate::anomaly::Anomaly;
use crate::elle::cycle::txn_text;
use crate::elle::show::AnomalyBuilder;
use crate::elle::txn::{FxMap, Key, Keys, Txn};
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::fmt::Write;

/// How many versions of a component the data lists (`scc_size` counts them all).
const SCC_SHOWN_MAX: usize = 64;

/// How many versions of a component a shortest cycle is searched from.
const CYCLE_STARTS_MAX: usize = 16;

/// `nil` or the value.
fn text(v: Version) -> String {
    v.map_or_else(|| "nil".to_string(), |v| v.to_string())
}

/// What an assumption says, for a finding that rests on it.
fn meaning(source: Source) -> &'static str {
    match source {
        Source::InitialState => "every key starts as nil",
        Source::WfrKeys => "within a transaction, writes follow reads",
        Source::SequentialKeys => "each key is sequentially consistent, so a process meets a key's versions in order",
        Source::LinearizableKeys => "each key is linearizable, so a transaction that completed before another began met an earlier or the same version",
    }
}

/// The shortest cycle found among the versions of `scc` over `edges`, searched breadth first
/// from each of its first [`CYCLE_STARTS_MAX`] versions.
fn shortest_cycle(scc: &[Version], edges: &[VersionEdge]) -> Vec<VersionEdge> {
    let index: FxMap<Version, usize> = scc.iter().enumerate().map(|(i, v)| (*v, i)).collect();
    let mut out: Vec<Vec<&VersionEdge>> = vec![Vec::new(); scc.len()];
    for e in edges {
        if let (Some(&a), true) = (index.get(&e.from), index.contains_key(&e.to)) {
            out[a].push(e);
        }
    }
    let mut best: Option<Vec<VersionEdge>> = None;
    for start in 0..scc.len().min(CYCLE_STARTS_MAX) {
        let mut parent: Vec<Option<&VersionEdge>> = vec![None; scc.len()];
        let mut queue = VecDeque::from([start]);
        let mut found = false;
        while let Some(at) = queue.pop_front() {
            for e in &out[at] {
                let to = index[&e.to];
                if parent[to].is_some() {
                    continue;
                }
                parent[to] = Some(e);
                if to == start {
                    found = true;
                    break;
                }
                queue.push_back(to);
            }
            if found {
                break;
            }
        }
        let mut cycle = Vec::new();
        let mut at = start;
        while let (true, Some(e)) = (found, parent[at]) {
            cycle.push(*e);
            at = index[&e.from];
            if at == start {
                break;
            }
        }
        cycle.reverse();
        if found && best.as_ref().is_none_or(|b| cycle.len() < b.len()) {
            best = Some(cycle);
        }
    }
    best.unwrap_or_default()
}

/// Names transactions `T1`, `T2`, ... in the order they are first mentioned.
#[derive(Default)]
struct Names(Vec<u32>);

impl Names {
    fn of(&mut self, t: u32) -> String {
        let i = self.0.iter().position(|x| *x == t).unwrap_or_else(|| {
            self.0.push(t);
            self.0.len() - 1
        });
        format!("T{}", i + 1)
    }
}

/// What transaction `t` did with version `v` of `key`: `wrote 2`, `read nil`.
fn did(txns: &[Txn], t: u32, key: Key, v: Version) -> String {
    let wrote = touches(&txns[t as usize])
        .iter()
        .any(|(k, touch)| *k == key && touch.write.is_some() && touch.write == v);
    format!("{} {}", if wrote { "wrote" } else { "read" }, text(v))
}

/// Why `e` holds, in prose, naming its transactions through `names`.
fn reason(txns: &[Txn], key: Key, e: &VersionEdge, names: &mut Names) -> String {
    let Some(a_txn) = e.why.from_txn else {
        let b = names.of(e.why.to_txn);
        let b_did = did(txns, e.why.to_txn, key, e.to);
        return format!("every key starts as nil, and {b} {b_did} (initial-state)");
    };
    let a = names.of(a_txn);
    let b = names.of(e.why.to_txn);
    let b_did = did(txns, e.why.to_txn, key, e.to);
    let a_did = did(txns, a_txn, key, e.from);
    let (ta, tb) = (&txns[a_txn as usize], &txns[e.why.to_txn as usize]);
    match e.why.source {
        Source::InitialState | Source::WfrKeys => {
            format!("{a} {a_did} and then wrote {} (wfr-keys)", text(e.to))
        }
        Source::SequentialKeys => format!(
            "process {} ran {a}, which {a_did}, before {b}, which {b_did} (sequential-keys)",
            ta.process
        ),
        Source::LinearizableKeys => format!(
            "{a}, which {a_did}, completed at {} ns, before {b}, which {b_did}, began at {} ns (linearizable-keys)",
            ta.complete_ns, tb.invoke_ns
        ),
    }
}

/// The `cyclic-versions` anomaly of component `scc` of `key`'s order `edges`, built from
/// `sources` (the last being the one that closed the cycle).
pub(super) fn cyclic(
    txns: &[Txn],
    keys: &Keys,
    key: Key,
    scc: &[Version],
    edges: &[VersionEdge],
    sources: &[Source],
) -> Anomaly {
    let cycle = shortest_cycle(scc, edges);
    let name = keys.name(key);
    let mut names = Names::default();
    let mut lines = String::new();
    for (i, e) in cycle.iter().enumerate() {
        let why = reason(txns, key, e, &mut names);
        let (from, to) = (text(e.from), text(e.to));
        if i + 1 == cycle.len() {
            let _ = write!(
                lines,
                "  - However, {name} = {from} < {name} = {to}, because {why}: a contradiction!"
            );
        } else {
            let _ = writeln!(lines, "  - {name} = {from} < {name} = {to}, because {why}.");
        }
    }
    let source_names: Vec<&str> = sources.iter().map(|s| s.name()).collect();
    let mut prose = format!(
        "key {name:?}: the version order inferred from {} has a cycle, so no order of its versions agrees with every source.\nLet:\n",
        source_names.join(", ")
    );
    for (i, t) in names.0.iter().enumerate() {
        let _ = writeln!(
            prose,
            "  T{} = {}",
            i + 1,
            txn_text(keys, &txns[*t as usize])
        );
    }
    prose.push_str("\nThen:\n");
    prose.push_str(&lines);
    let assumed: Vec<Source> = sources
        .iter()
        .copied()
        .filter(|s| *s != Source::InitialState && cycle.iter().any(|e| e.why.source == *s))
        .collect();
    prose.push_str(&assumption_sentence(&assumed));
    let step = |e: &VersionEdge| {
        json!({"from": e.from, "to": e.to, "source": e.why.source.name(),
               "from_txn": e.why.from_txn.map(|t| txns[t as usize].event),
               "to_txn": txns[e.why.to_txn as usize].event})
    };
    let data = json!({
        "key": name,
        "scc": &scc[..scc.len().min(SCC_SHOWN_MAX)],
        "scc_size": scc.len(),
        "sources": source_names,
        "assumptions": assumed.iter().map(|s| s.name()).collect::<Vec<_>>(),
        "cycle": cycle.iter().map(step).collect::<Vec<_>>(),
    });
    AnomalyBuilder { txns, keys }.build("cyclic-versions", key, &names.0, prose, data)
}

/// The closing sentence of a finding that rests on the `assumed` sources; empty if none.
fn assumption_sentence(assumed: &[Source]) -> String {
    if assumed.is_empty() {
        return String::new();
    }
    let parts: Vec<String> = assumed
        .iter()
        .map(|s| format!("{} ({})", s.name(), meaning(*s)))
        .collect();
    format!(
        "\n\nThis rests on the assumption{} {}.",
        if parts.len() > 1 { "s" } else { "" },
        parts.join(" and ")
    )
}

/// `anomalies` (dependency cycles) with the assumptions their ww / rw steps rest on stated: in
/// `assumptions` in the data and a closing sentence in the explanation.
pub(crate) fn with_assumptions(mut anomalies: Vec<Anomaly>) -> Vec<Anomaly> {
    let order = [
        Source::WfrKeys,
        Source::SequentialKeys,
        Source::LinearizableKeys,
    ];
    for a in &mut anomalies {
        let steps = a.data.get("cycle").and_then(Value::as_array);
        let used: Vec<&str> = steps
            .into_iter()
            .flatten()
            .filter_map(|s| s.get("version_order").and_then(Value::as_str))
            .collect();
        let assumed: Vec<Source> = order
            .into_iter()
            .filter(|s| used.contains(&s.name()))
            .collect();
        if assumed.is_empty() {
            continue;
        }
        a.explanation.push_str(&assumption_sentence(&assumed));
        if let Value::Object(map) = &mut a.data {
            let names: Vec<&str> = assumed.iter().map(|s| s.name()).collect();
            map.insert("assumptions".to_string(), json!(names));
        }
    }
    anomalies
}
