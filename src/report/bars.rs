//! What the timeline's lanes hold besides geometry: each op as a compact row for its tooltip,
//! each migration as one bar per phase and each fault as a bar, with their tooltips, and the
//! packing of nemesis bars into lanes.

use super::page::secs;
use super::prepare::Prepared;
use checker::phase::Phase;
use checker::{Op, Outcome, RedirectKind};
use serde_json::{json, Value};
use std::collections::HashMap;

/// Phase changes listed in a migration's tooltip.
const PHASES_LISTED_MAX: usize = 24;

/// Strings the tooltips share (keys, nodes, phases), each stored once and named by index.
#[derive(Default)]
pub struct Strings {
    index: HashMap<String, usize>,
    /// The strings, by index.
    pub list: Vec<String>,
}

impl Strings {
    /// The index of `s`, adding it on first sight (so indices follow the page's order).
    fn id(&mut self, s: &str) -> usize {
        if let Some(&i) = self.index.get(s) {
            return i;
        }
        self.list.push(s.to_string());
        self.index.insert(s.to_string(), self.list.len() - 1);
        self.list.len() - 1
    }

    fn opt(&mut self, s: Option<&str>) -> Value {
        s.map_or(Value::from(-1), |s| Value::from(self.id(s)))
    }
}

/// One op for its tooltip, which the script renders (what it did, when, node, slot and its
/// phase, hops, and its invocation and completion events): `[line, process, f, key, value,
/// outcome, result, invoke_ns, complete_ns, node, slot, phase, hops, error]`, strings as
/// indices into [`Strings`] (-1: none), outcome 0 ok / 1 fail / 2 info, hops
/// `[kind, slot, from, to]` with kind an index into `RedirectKind::ALL`.
pub fn op_row(p: &Prepared, op: &Op, strings: &mut Strings) -> Value {
    let slot = checker::redirects::op_slot(op);
    let phase = slot.map(|s| {
        if p.at.timeline.migrations_of(s).next().is_some() {
            p.at.timeline
                .state_at(p.history, s, op.invoke_event, op.key.as_deref())
                .to_string()
        } else {
            format!("slot {s}, never migrated")
        }
    });
    let outcome = match op.outcome {
        Outcome::Ok => 0,
        Outcome::Fail => 1,
        Outcome::Info => 2,
    };
    let hops: Vec<Value> = op
        .redirects
        .iter()
        .map(|h| {
            let kind = RedirectKind::ALL.iter().position(|&k| k == h.kind);
            json!([kind, h.slot, strings.id(&h.from), strings.id(&h.to)])
        })
        .collect();
    json!([
        p.line(op.invoke_event),
        op.process,
        strings.id(&op.f),
        strings.opt(op.key.as_deref()),
        op.invoke_value,
        outcome,
        op.complete_value,
        op.invoke_ns,
        p.completed_ns(op),
        strings.opt(op.node.as_deref()),
        slot.map_or(-1, i64::from),
        strings.opt(phase.as_deref()),
        hops,
        strings.opt(op.error.as_deref()),
    ])
}

/// Lanes for intervals `(start, end)` in start order: the lowest lane free by each start.
fn pack(intervals: &[(u64, u64)]) -> (Vec<usize>, usize) {
    let mut free_at: Vec<u64> = Vec::new();
    let mut lane = Vec::with_capacity(intervals.len());
    for &(start, end) in intervals {
        let l = match free_at.iter().position(|&f| f < start) {
            Some(l) => l,
            None => {
                free_at.push(0);
                free_at.len() - 1
            }
        };
        free_at[l] = end;
        lane.push(l);
    }
    (lane, free_at.len().max(1))
}

/// A nemesis bar: a rect in the scaled group pointing at its tooltip.
pub struct Bar {
    /// Where it begins, ns.
    pub start_ns: u64,
    /// Where it ends, ns.
    pub end_ns: u64,
    /// Its CSS classes (`ph ph-migrating`, `fault fault-kill`).
    pub class: String,
    /// Its tooltip's index in the nemesis tooltips.
    pub tip: usize,
}

/// One migration or fault: its span and its bars.
pub struct Item {
    /// Where it begins, ns.
    pub start_ns: u64,
    /// Where it ends (the end of the history if it never ended), ns.
    pub end_ns: u64,
    /// One bar per phase (a fault has one).
    pub bars: Vec<Bar>,
}

/// Migrations or faults packed into lanes.
pub struct Group {
    /// The items, in start order.
    pub items: Vec<Item>,
    /// Each item's lane.
    pub lane_of: Vec<usize>,
    /// How many lanes (at least one, so that an empty group still shows its lane).
    pub lanes: usize,
}

impl Group {
    fn new(items: Vec<Item>) -> Group {
        let spans: Vec<(u64, u64)> = items.iter().map(|i| (i.start_ns, i.end_ns)).collect();
        let (lane_of, lanes) = pack(&spans);
        Group {
            items,
            lane_of,
            lanes,
        }
    }
}

/// Every migration as bars, one per phase, and their tooltips.
pub fn migrations(p: &Prepared, tips: &mut Vec<Value>) -> Group {
    let mut out = Vec::new();
    for m in &p.at.timeline.migrations {
        let start = p.time_of(m.steps[0].event);
        let end = m.end_event.map_or(p.end_ns, |e| p.time_of(e)).max(start);
        let mut phases: Vec<(u64, Phase)> = Vec::new();
        for step in &m.steps {
            let state =
                p.at.timeline
                    .state_at(p.history, m.slots.0, step.event + 1, None);
            if phases.last().map(|l| l.1) != Some(state.phase) {
                phases.push((p.time_of(step.event), state.phase));
            }
        }
        let slots = if m.slots.0 == m.slots.1 {
            format!("slot {}", m.slots.0)
        } else {
            format!("slots {}-{}", m.slots.0, m.slots.1)
        };
        let mut text = format!(
            "{} migration of {slots}: {} -> {}\nline {} .. {}, {} .. {}",
            if m.atomic { "atomic" } else { "classic" },
            m.from.as_deref().unwrap_or("?"),
            m.to.as_deref().unwrap_or("?"),
            p.line(m.steps[0].event),
            m.end_event
                .map_or("not ended".to_string(), |e| p.line(e).to_string()),
            secs(start),
            secs(end)
        );
        for (t, phase) in phases.iter().take(PHASES_LISTED_MAX) {
            text.push_str(&format!("\n  {} {phase}", secs(*t)));
        }
        if let Some(e) = m.end_event {
            text.push_str(&format!("\nend: {}", p.value_of(e)));
        }
        let mut bars = Vec::new();
        for (i, &(t, phase)) in phases.iter().enumerate() {
            let until = phases.get(i + 1).map_or(end, |n| n.0).min(end);
            if until <= t && i + 1 < phases.len() {
                continue;
            }
            tips.push(Value::from(format!("phase {phase}\n{text}")));
            bars.push(Bar {
                start_ns: t,
                end_ns: until.max(t),
                class: format!("ph ph-{}", phase.name()),
                tip: tips.len() - 1,
            });
        }
        out.push(Item {
            start_ns: start,
            end_ns: end,
            bars,
        });
    }
    Group::new(out)
}

/// Every fault as a bar, and their tooltips.
pub fn faults(p: &Prepared, tips: &mut Vec<Value>) -> Group {
    let mut out = Vec::new();
    for f in &p.at.faults {
        let end = f.end_ns.unwrap_or(p.end_ns).max(f.begin_ns);
        let mut text = format!("{f}\n{} .. {}", secs(f.begin_ns), secs(end));
        text.push_str(&format!("\nbegin: {}", p.value_of(f.begin_event)));
        if let Some(e) = f.end_event.filter(|&e| e != f.begin_event) {
            let f_of = p.history.event(e).map_or("", |e| e.f.as_str());
            text.push_str(&format!("\nended by {f_of}: {}", p.value_of(e)));
        }
        tips.push(Value::from(text));
        let class: String =
            f.f.chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
                .collect();
        let bar = Bar {
            start_ns: f.begin_ns,
            end_ns: end,
            class: format!("fault fault-{class}"),
            tip: tips.len() - 1,
        };
        out.push(Item {
            start_ns: f.begin_ns,
            end_ns: end,
            bars: vec![bar],
        });
    }
    Group::new(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_overlapping_items_into_lanes() {
        assert_eq!(
            pack(&[(0, 10), (5, 8), (9, 12), (11, 20)]),
            (vec![0, 1, 1, 0], 2)
        );
        assert_eq!(pack(&[]), (vec![], 1));
        let mut s = Strings::default();
        assert_eq!((s.id("a"), s.id("b"), s.id("a")), (0, 1, 0));
        assert_eq!(s.opt(None), Value::from(-1));
    }
}
