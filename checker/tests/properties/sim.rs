//! Shared by the property tests: a sequential execution of a model, stretched into a concurrent
//! history, with at most one fault injected.
//!
//! Op `i` takes effect at its linearization point `SPACING * (i + 11)` ns; its invocation and
//! completion are moved randomly before and after that point (up to three ops' worth), so ops
//! overlap in real time while the sequential order stays a valid linearization. Some ops `fail`
//! (and never take effect), some end `info` (and take effect or not, a coin flip). Processes are
//! assigned greedily: an op reuses the lowest-numbered process that is idle by its invocation
//! (a process that saw `info` is never reused). A [`Fault`] then breaks the execution in one
//! place: a read served from an old snapshot, an acknowledged write dropped, or a write applied
//! twice.

use checker::{Event, EventType, History, Outcome, Process};
use proptest::prelude::*;
use serde_json::Value;
use std::fmt::Debug;

/// Keys of the multi-key models: three keys, one hash tag (one slot, as MULTI/EXEC needs).
pub const KEYS: [&str; 3] = ["{t}x", "{t}y", "{t}z"];

/// Key number `k` of [`KEYS`].
pub fn key(k: u8) -> String {
    KEYS[usize::from(k) % KEYS.len()].to_string()
}

/// Distance between consecutive linearization points, ns.
pub const SPACING: u64 = 100;

/// How an op ends, besides what its semantics say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Acknowledged (or `fail` when the semantics say so, e.g. a cas whose value differed).
    Ok,
    /// `fail`: the op never took effect.
    Fail,
    /// `info`, and the op took effect.
    InfoApplied,
    /// `info`, and the op never took effect.
    InfoLost,
}

/// Mostly `Ok`, with a few `fail` and `info` ops.
pub fn fate() -> impl Strategy<Value = Fate> {
    prop_oneof![
        14 => Just(Fate::Ok),
        1 => Just(Fate::Fail),
        1 => Just(Fate::InfoApplied),
        1 => Just(Fate::InfoLost),
    ]
}

/// The one fault injected into an execution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Nothing: the history is linearizable.
    None,
    /// Read-only op `read` observes the store as it was before op `from`.
    Stale { read: usize, from: usize },
    /// Op `op` is acknowledged, but its effect is dropped.
    Lost { op: usize },
    /// Op `op`'s effect is applied a second time, just before op `at`.
    Replay { op: usize, at: usize },
}

/// An op about to run: what the client sends.
#[derive(Debug, Clone)]
pub struct Planned {
    /// The operation's name.
    pub f: &'static str,
    /// Its key (none for `txn`).
    pub key: Option<String>,
    /// The invocation's value.
    pub invoke: Value,
}

/// A model's sequential behaviour, over all keys.
pub trait Store: Clone + Default {
    /// The random choice an op is made from.
    type Intent: Clone + Debug;
    /// Whether the op only observes the store.
    fn read_only(intent: &Self::Intent) -> bool;
    /// The op `intent` becomes in this state; `fresh` is a value no other op uses.
    fn plan(&self, intent: &Self::Intent, fresh: i64) -> Planned;
    /// Runs `op`: its `ok` value, or `None` when its semantics make it fail (a cas).
    fn exec(&mut self, op: &Planned) -> Option<Value>;
}

/// One op of the execution, timed.
#[derive(Debug, Clone)]
pub struct Timed {
    /// The operation's name.
    pub f: &'static str,
    /// Its key.
    pub key: Option<String>,
    /// The invocation's value.
    pub invoke: Value,
    /// The completion's value (the invocation's unless `ok`).
    pub result: Value,
    /// How it ended.
    pub outcome: Outcome,
    /// Invocation time, ns.
    pub invoke_ns: u64,
    /// Completion time, ns.
    pub complete_ns: u64,
    /// 1-based line of the invocation in the history.
    pub line: usize,
}

impl Timed {
    /// Whether this op certainly completed before `other` began.
    pub fn precedes(&self, other: &Timed) -> bool {
        self.outcome == Outcome::Ok && self.complete_ns < other.invoke_ns
    }

    /// Whether it ended `ok`.
    pub fn ok(&self) -> bool {
        self.outcome == Outcome::Ok
    }
}

/// Per op: its intent, its fate, and how far its invocation and completion are stretched.
pub type Plan<I> = Vec<(I, Fate, u64, u64)>;

/// `n` ops of `intent` with random fates and stretches.
pub fn plan<I: Debug>(
    intent: impl Strategy<Value = I>,
    n: std::ops::RangeInclusive<usize>,
) -> impl Strategy<Value = Plan<I>> {
    let stretch = 1..=3 * SPACING;
    prop::collection::vec((intent, fate(), stretch.clone(), stretch), n)
}

/// Runs `plan` on a fresh store with `fault` injected, and times the ops.
pub fn simulate<S: Store>(plan: &Plan<S::Intent>, fault: Fault) -> Vec<Timed> {
    let mut store = S::default();
    let mut snapshots: Vec<S> = Vec::with_capacity(plan.len());
    let mut planned: Vec<Planned> = Vec::with_capacity(plan.len());
    let mut out = Vec::with_capacity(plan.len());
    for (i, (intent, fate, before, after)) in plan.iter().enumerate() {
        if let Fault::Replay { op, at } = fault {
            if at == i {
                store.exec(&planned[op]);
            }
        }
        snapshots.push(store.clone());
        let op = store.plan(intent, i as i64 + 1);
        let applies = match fate {
            Fate::Ok => fault != Fault::Lost { op: i },
            Fate::InfoApplied => true,
            Fate::Fail | Fate::InfoLost => false,
        };
        let result = match fault {
            Fault::Stale { read, from } if read == i => snapshots[from].clone().exec(&op),
            _ if applies => store.exec(&op),
            _ => store.clone().exec(&op),
        };
        let (outcome, result) = match (fate, result) {
            (Fate::Ok, Some(v)) => (Outcome::Ok, v),
            (Fate::Ok | Fate::Fail, _) => (Outcome::Fail, op.invoke.clone()),
            (Fate::InfoApplied | Fate::InfoLost, _) => (Outcome::Info, op.invoke.clone()),
        };
        let lp = SPACING * (i as u64 + 11);
        out.push(Timed {
            f: op.f,
            key: op.key.clone(),
            invoke: op.invoke.clone(),
            result,
            outcome,
            invoke_ns: lp - before,
            complete_ns: lp + after,
            line: 0,
        });
        planned.push(op);
    }
    out
}

/// The faults worth trying on `plan`: stale reads from up to 10 ops back, lost acknowledged
/// writes, and writes replayed up to 10 ops later.
pub fn faults<S: Store>(plan: &Plan<S::Intent>) -> [Vec<Fault>; 3] {
    let n = plan.len();
    let ok = |i: usize| plan[i].1 == Fate::Ok;
    let (mut stale, mut lost, mut replay) = (Vec::new(), Vec::new(), Vec::new());
    for (i, (intent, ..)) in plan.iter().enumerate() {
        if !ok(i) {
            continue;
        }
        if S::read_only(intent) {
            for from in i.saturating_sub(10)..i {
                stale.push(Fault::Stale { read: i, from });
            }
        } else {
            lost.push(Fault::Lost { op: i });
            for at in i + 1..n.min(i + 11) {
                replay.push(Fault::Replay { op: i, at });
            }
        }
    }
    [stale, lost, replay]
}

/// The first of `faults`, starting at `pick`, whose execution has a witness of non-linearizability
/// (`witness` must only find real ones): the fault, the ops, and the witness.
pub fn inject<S: Store, W>(
    plan: &Plan<S::Intent>,
    faults: &[Fault],
    pick: prop::sample::Index,
    witness: impl Fn(&[Timed]) -> Option<W>,
) -> Option<(Fault, Vec<Timed>, W)> {
    if faults.is_empty() {
        return None;
    }
    let start = pick.index(faults.len());
    (0..faults.len()).find_map(|j| {
        let fault = faults[(start + j) % faults.len()];
        let ops = simulate::<S>(plan, fault);
        witness(&ops).map(|w| (fault, ops, w))
    })
}

/// The history of `ops` (processes assigned, events in time order, no header), as the format's
/// reader reads it; sets each op's `line`.
pub fn history(ops: &mut [Timed]) -> History {
    let mut order: Vec<usize> = (0..ops.len()).collect();
    order.sort_by_key(|&i| (ops[i].invoke_ns, i));
    // Per process: when it is idle again (`None`: retired by an `info`).
    let mut idle_at: Vec<Option<u64>> = Vec::new();
    let mut events: Vec<(u64, usize, Event)> = Vec::with_capacity(2 * ops.len());
    for i in order {
        let op = &ops[i];
        let process = match idle_at
            .iter()
            .position(|t| t.is_some_and(|t| t < op.invoke_ns))
        {
            Some(p) => p,
            None => {
                idle_at.push(None);
                idle_at.len() - 1
            }
        };
        idle_at[process] = (op.outcome != Outcome::Info).then_some(op.complete_ns);
        let kind = match op.outcome {
            Outcome::Ok => EventType::Ok,
            Outcome::Fail => EventType::Fail,
            Outcome::Info => EventType::Info,
        };
        let p = Process::Client(process as u64);
        let mut invoke = Event::new(EventType::Invoke, p, op.f, op.invoke.clone(), op.invoke_ns);
        let mut complete = Event::new(kind, p, op.f, op.result.clone(), op.complete_ns);
        invoke.key.clone_from(&op.key);
        complete.key.clone_from(&op.key);
        events.push((op.invoke_ns, 2 * i, invoke));
        events.push((op.complete_ns, 2 * i + 1, complete));
    }
    events.sort_by_key(|(t, seq, _)| (*t, *seq));
    for (line, (_, seq, _)) in events.iter().enumerate() {
        if seq % 2 == 0 {
            ops[seq / 2].line = line + 1;
        }
    }
    // Written as JSON Lines and read back, so that every history passes the format's reader.
    let mut text = String::new();
    for (_, _, e) in &events {
        text.push_str(&serde_json::to_string(e).expect("events serialize"));
        text.push('\n');
    }
    History::parse(text.as_bytes(), "generated.jsonl").expect("generated histories are valid")
}
