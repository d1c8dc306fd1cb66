//! The sources of a register key's version order (see the parent module doc), each computed on
//! its own: per key, its edges in the order found, without repeats.

use super::{Source, Touch, Version, VersionEdge, Why};
use crate::elle::txn::{FxMap, Key, Txn};
use crate::op::Outcome;

/// Per-key edge lists that keep the first edge of each (earlier, later) pair and no self-edge.
struct Edges {
    per_key: Vec<Vec<VersionEdge>>,
    seen: FxMap<(Key, Version, Version), ()>,
}

impl Edges {
    fn new(keys: usize) -> Edges {
        Edges {
            per_key: vec![Vec::new(); keys],
            seen: FxMap::default(),
        }
    }

    fn add(&mut self, key: Key, from: Version, to: Version, why: Why) {
        if from != to && self.seen.insert((key, from, to), ()).is_none() {
            self.per_key[key as usize].push(VersionEdge { from, to, why });
        }
    }
}

/// `initial-state`: `nil` before every value a transaction read or wrote.
pub(super) fn initial_state(touched: &[Vec<(Key, Touch)>], keys: usize) -> Vec<Vec<VersionEdge>> {
    let mut out = Edges::new(keys);
    for (t, touches) in touched.iter().enumerate() {
        for (k, touch) in touches {
            for v in [touch.read.flatten(), touch.write].into_iter().flatten() {
                let why = Why {
                    source: Source::InitialState,
                    from_txn: None,
                    to_txn: t as u32,
                };
                out.add(*k, None, Some(v), why);
            }
        }
    }
    out.per_key
}

/// `wfr-keys`: an `ok` transaction's external read of a key (not `nil`: the initial state has
/// it) before its write of that key.
pub(super) fn wfr(
    txns: &[Txn],
    touched: &[Vec<(Key, Touch)>],
    keys: usize,
) -> Vec<Vec<VersionEdge>> {
    let mut out = Edges::new(keys);
    for (t, touches) in touched.iter().enumerate() {
        if txns[t].outcome != Outcome::Ok {
            continue;
        }
        for (k, touch) in touches {
            if let (Some(Some(read)), Some(write)) = (touch.read, touch.write) {
                let why = Why {
                    source: Source::WfrKeys,
                    from_txn: Some(t as u32),
                    to_txn: t as u32,
                };
                out.add(*k, Some(read), Some(write), why);
            }
        }
    }
    out.per_key
}

/// `sequential-keys`: per process and key, the version one `ok` transaction left before the
/// first version the process's next `ok` transaction on that key met (Elle's process order
/// links `ok` ops only).
pub(super) fn sequential(
    txns: &[Txn],
    touched: &[Vec<(Key, Touch)>],
    keys: usize,
) -> Vec<Vec<VersionEdge>> {
    let mut out = Edges::new(keys);
    let mut last: FxMap<(u64, Key), u32> = FxMap::default();
    // Transactions are in invocation order, which is each process's order.
    for (t, touches) in touched.iter().enumerate() {
        let txn = &txns[t];
        if txn.outcome != Outcome::Ok {
            continue;
        }
        for (k, touch) in touches {
            if let Some(a) = last.insert((txn.process, *k), t as u32) {
                let from = left(&touched[a as usize], *k);
                if let (Some(from), Some(to)) = (from, touch.first()) {
                    let why = Why {
                        source: Source::SequentialKeys,
                        from_txn: Some(a),
                        to_txn: t as u32,
                    };
                    out.add(*k, from, to, why);
                }
            }
        }
    }
    out.per_key
}

/// The version a transaction with `touches` left on `key`.
fn left(touches: &[(Key, Touch)], key: Key) -> Option<Version> {
    touches.iter().find(|(k, _)| *k == key)?.1.last()
}

/// `linearizable-keys`: per key, the version each `ok` transaction left before the first version
/// met by every transaction on that key invoked after it completed, from the nearest such ones:
/// a transaction leaves the sweep's frontier once another on the key completed after it.
pub(super) fn linearizable(
    txns: &[Txn],
    touched: &[Vec<(Key, Touch)>],
    keys: usize,
) -> Vec<Vec<VersionEdge>> {
    // Per key: (time, 0 = invocation / 1 = completion, txn); invocations first at equal times,
    // since "completed before began" is strict.
    let mut events: Vec<Vec<(u64, u8, u32)>> = vec![Vec::new(); keys];
    for (t, touches) in touched.iter().enumerate() {
        let txn = &txns[t];
        for (k, _) in touches {
            events[*k as usize].push((txn.invoke_ns, 0, t as u32));
            if txn.outcome == Outcome::Ok {
                events[*k as usize].push((txn.complete_ns, 1, t as u32));
            }
        }
    }
    let mut out = Edges::new(keys);
    for (key, mut events) in events.into_iter().enumerate() {
        let k = key as Key;
        events.sort_unstable();
        let mut frontier: Vec<u32> = Vec::new();
        let mut preceded_by: FxMap<u32, Vec<u32>> = FxMap::default();
        for (_, kind, t) in events {
            if kind == 1 {
                let before = preceded_by.remove(&t).unwrap_or_default();
                frontier.retain(|f| !before.contains(f));
                frontier.push(t);
                continue;
            }
            let to = first_met(&touched[t as usize], k);
            for a in &frontier {
                if let (Some(from), Some(to)) = (left(&touched[*a as usize], k), to) {
                    let why = Why {
                        source: Source::LinearizableKeys,
                        from_txn: Some(*a),
                        to_txn: t,
                    };
                    out.add(k, from, to, why);
                }
            }
            if txns[t as usize].outcome == Outcome::Ok {
                preceded_by.insert(t, frontier.clone());
            }
        }
    }
    out.per_key
}

/// The first version a transaction with `touches` met on `key`.
fn first_met(touches: &[(Key, Touch)], key: Key) -> Option<Version> {
    touches.iter().find(|(k, _)| *k == key)?.1.first()
}
