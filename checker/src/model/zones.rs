//! The register fast path: linearizability of a read/write register with unique written values,
//! decided without search in O(n log n) (Gibbons & Korach 1997; the "zones" of Golab, Li & Shah,
//! PODC 2011).
//!
//! Each write forms a *cluster* with the reads that returned its value; reads of the initial value
//! form a cluster with a write at −∞. For a cluster let `f` be the earliest completion and `s` the
//! latest invocation among its ops. If `f < s` the value had to stay in place from `f` to `s`: the
//! cluster's zone `[f, s]` is *forward*; otherwise all its ops share the stretch `[s, f]`, a
//! *backward* zone. The history is linearizable iff no two forward zones overlap and no backward
//! zone lies strictly inside a forward zone, given the preconditions checked first: every read
//! names a value written by a write (not a failed one) invoked no later than the read completed,
//! and no value is written twice. Writes of unknown outcome (`info`) take part with completion at
//! +∞ (an unobserved one is dropped before). Intervals are closed, as in the search (`wgl`): ops
//! that merely touch are concurrent, so zones that merely touch do not conflict.
//!
//! When a precondition fails (a cas, a duplicate value, a read of a value nobody wrote) the fast
//! path does not apply and the caller searches. When two zones conflict, the conflict is the
//! evidence: the outer (forward) zone's value was needed from its `f` to its `s`, and the inner
//! cluster's write had to take effect in between.

use crate::hash::FxHasher;
use crate::model::register::RegisterOp;
use crate::search::Interval;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;

/// A point in time: −∞ (the initial value's write) < every `ns` < +∞ (an `info` op's completion).
type At = i128;
const MINUS_INF: At = -1;
const PLUS_INF: At = i128::MAX;

/// One cluster's zone: a value, its ops, and the stretch of time they pin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Zone {
    /// The cluster's value (`None`: absent, the initial value when it is absent).
    pub value: Option<i64>,
    /// Whether the value had to stay in place over the zone (`f < s`).
    pub forward: bool,
    /// Earliest completion `f`, ns; −1 stands for −∞ (the initial value's write) and
    /// `i128::MAX` for +∞ (an `info` write).
    pub first_complete: i128,
    /// Latest invocation `s`, ns; −1 stands for −∞.
    pub last_invoke: i128,
    /// The cluster's write (index into the ops), `None` for the initial value.
    pub write: Option<usize>,
    /// The op completing at `f` and the op invoked at `s` (indexes; `None` for the initial write).
    pub first_complete_op: Option<usize>,
    /// See `first_complete_op`.
    pub last_invoke_op: Option<usize>,
    /// How many reads returned the value.
    pub reads: usize,
}

/// Two zones that cannot both hold: the evidence that a key is not linearizable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    /// A forward zone: its value had to stay in place over it.
    pub outer: Zone,
    /// A zone overlapping `outer` (forward) or strictly inside it (backward): its write had to
    /// take effect while `outer`'s value was still needed.
    pub inner: Zone,
}

impl Conflict {
    /// The literature's name for it: `stale-read` when the inner value was observed by a read
    /// (a later read went back to the outer value), `lost-write` when the inner write was never
    /// observed (an acknowledged write vanished).
    pub fn anomaly(&self) -> &'static str {
        if self.inner.reads > 0 {
            "stale-read"
        } else {
            "lost-write"
        }
    }
}

/// The fast path's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Zones {
    /// Linearizable.
    Valid,
    /// Not linearizable: two zones conflict.
    Invalid(Box<Conflict>),
    /// A precondition does not hold (the reason); search instead.
    NotApplicable(&'static str),
}

/// A cluster as the check builds it: [`Zone`] without the value, in 48 bytes, so that the
/// clusters of a key with many ops stay in cache.
#[derive(Debug, Clone, Copy)]
struct Cluster {
    first_complete: At,
    last_invoke: At,
    /// Op indexes; [`NONE`] for the initial value's write.
    write: u32,
    first_complete_op: u32,
    last_invoke_op: u32,
    reads: u32,
}

/// No op (the initial value's write at −∞).
const NONE: u32 = u32::MAX;

impl Cluster {
    fn forward(&self) -> bool {
        self.first_complete < self.last_invoke
    }

    fn lo(&self) -> At {
        self.first_complete.min(self.last_invoke)
    }

    fn hi(&self) -> At {
        self.first_complete.max(self.last_invoke)
    }

    fn zone(&self, initial: Option<i64>, ops: &[Interval<RegisterOp>]) -> Zone {
        let op = |i: u32| (i != NONE).then_some(i as usize);
        Zone {
            value: match op(self.write).map(|w| ops[w].input) {
                Some(RegisterOp::Write(v)) => Some(v),
                _ => initial,
            },
            forward: self.forward(),
            first_complete: self.first_complete,
            last_invoke: self.last_invoke,
            write: op(self.write),
            first_complete_op: op(self.first_complete_op),
            last_invoke_op: op(self.last_invoke_op),
            reads: self.reads as usize,
        }
    }
}

/// Decides a register partition from its ops (as the search would see them: no `fail` ops, no
/// `info` reads, unobserved `info` writes already dropped), starting from `initial`.
pub fn check(initial: Option<i64>, ops: &[Interval<RegisterOp>]) -> Zones {
    assert!(ops.len() < NONE as usize, "too many ops for one partition");
    // Cluster index by value; cluster 0 is the initial value's.
    let mut index: HashMap<Option<i64>, u32, BuildHasherDefault<FxHasher>> =
        HashMap::with_capacity_and_hasher(ops.len() / 2 + 1, BuildHasherDefault::default());
    let mut clusters = Vec::with_capacity(ops.len() / 2 + 1);
    clusters.push(Cluster {
        first_complete: MINUS_INF,
        last_invoke: MINUS_INF,
        write: NONE,
        first_complete_op: NONE,
        last_invoke_op: NONE,
        reads: 0,
    });
    index.insert(initial, 0);
    for (i, op) in ops.iter().enumerate() {
        let RegisterOp::Write(v) = op.input else {
            continue;
        };
        if index.insert(Some(v), clusters.len() as u32).is_some() {
            return Zones::NotApplicable("a value is written twice (or is the initial value)");
        }
        clusters.push(Cluster {
            first_complete: op.return_ns.map_or(PLUS_INF, At::from),
            last_invoke: At::from(op.call_ns),
            write: i as u32,
            first_complete_op: if op.return_ns.is_some() {
                i as u32
            } else {
                NONE
            },
            last_invoke_op: i as u32,
            reads: 0,
        });
    }
    for (i, op) in ops.iter().enumerate() {
        let v = match op.input {
            RegisterOp::Read(v) => v,
            RegisterOp::Write(_) => continue,
            RegisterOp::Cas { .. } | RegisterOp::CasFailed(_) => {
                return Zones::NotApplicable("the key has cas ops")
            }
            RegisterOp::Delete => return Zones::NotApplicable("the key has deletes"),
        };
        let Some(&c) = index.get(&v) else {
            return Zones::NotApplicable("a read returned a value no write wrote");
        };
        let Some(return_ns) = op.return_ns else {
            return Zones::NotApplicable("a read of unknown outcome");
        };
        let z = &mut clusters[c as usize];
        if z.write != NONE && ops[z.write as usize].call_ns > return_ns {
            return Zones::NotApplicable("a read completed before the write it saw was invoked");
        }
        z.reads += 1;
        // The initial value's write completed at −∞: no read completes earlier.
        if At::from(return_ns) < z.first_complete {
            z.first_complete = At::from(return_ns);
            z.first_complete_op = i as u32;
        }
        if At::from(op.call_ns) > z.last_invoke {
            z.last_invoke = At::from(op.call_ns);
            z.last_invoke_op = i as u32;
        }
    }
    drop(index);
    // The initial value's write at −∞ fixes its `f` at −∞ (kept `None`); an initial value nobody
    // read pins nothing, nor does an `info` write nobody read.
    clusters.retain(|z| z.reads > 0 || (z.write != NONE && z.first_complete < PLUS_INF));
    match decide(&clusters) {
        None => Zones::Valid,
        Some((outer, inner)) => Zones::Invalid(Box::new(Conflict {
            outer: clusters[outer].zone(initial, ops),
            inner: clusters[inner].zone(initial, ops),
        })),
    }
}

/// Whether `inner` conflicts with the forward zone `outer`.
fn conflicts(outer: &Cluster, inner: &Cluster) -> bool {
    debug_assert!(outer.forward());
    if inner.forward() {
        outer.lo() < inner.hi() && inner.lo() < outer.hi()
    } else {
        outer.lo() < inner.lo() && inner.hi() < outer.hi()
    }
}

/// Two conflicting zones (indexes into `zones`), outer first, or `None` when none conflict.
fn decide(zones: &[Cluster]) -> Option<(usize, usize)> {
    // Forward zones as (lo, hi, index), sorted by start; backward ones as (lo, hi).
    let mut forward: Vec<(At, At, u32)> = Vec::new();
    let mut backward: Vec<(At, At, u32)> = Vec::new();
    for (i, z) in zones.iter().enumerate() {
        let entry = (z.lo(), z.hi(), i as u32);
        if z.forward() {
            forward.push(entry);
        } else {
            backward.push(entry);
        }
    }
    forward.sort_unstable();
    let mut found: Option<(usize, usize)> = None;
    for w in forward.windows(2) {
        // Sorted by start and pairwise disjoint so far: only the neighbour can overlap.
        if w[0].0 < w[1].1 && w[1].0 < w[0].1 {
            found = Some((w[0].2 as usize, w[1].2 as usize));
            break;
        }
    }
    if found.is_none() {
        for &(lo, hi, b) in &backward {
            // The forward zone starting last before `b` is the only one that can contain it.
            let n = forward.partition_point(|z| z.0 < lo);
            if n > 0 && forward[n - 1].0 < lo && hi < forward[n - 1].1 {
                found = Some((forward[n - 1].2 as usize, b as usize));
                break;
            }
        }
    }
    let (outer, inner) = found?;
    // Name the conflict that shows the most: among the forward zones involved, one that an
    // observed value contradicts (a stale read) if there is one.
    let candidates = [outer, inner].into_iter().filter(|&z| zones[z].forward());
    for o in candidates {
        let contradicting = (0..zones.len())
            .find(|&z| zones[z].reads > 0 && z != o && conflicts(&zones[o], &zones[z]));
        if let Some(z) = contradicting {
            return Some((o, z));
        }
    }
    Some((outer, inner))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (op, call, return): `w5` writes 5, `r5` reads 5, `r-` reads absent; return 0 = info.
    fn ops(table: &[(&str, u64, u64)]) -> Vec<Interval<RegisterOp>> {
        table
            .iter()
            .map(|&(op, call_ns, ret)| {
                let v = op[1..].parse().ok();
                Interval {
                    input: if op.starts_with('w') {
                        RegisterOp::Write(v.unwrap())
                    } else {
                        RegisterOp::Read(v)
                    },
                    call_ns,
                    return_ns: (ret > 0).then_some(ret),
                }
            })
            .collect()
    }

    fn verdict(table: &[(&str, u64, u64)]) -> Zones {
        check(None, &ops(table))
    }

    #[test]
    fn concurrent_history_is_valid() {
        let z = verdict(&[
            ("w1", 10, 20),
            ("r-", 15, 25),
            ("r1", 30, 40),
            ("w2", 35, 50),
            ("r2", 36, 45),
            ("r2", 55, 60),
        ]);
        assert_eq!(z, Zones::Valid);
    }

    #[test]
    fn stale_read_is_a_forward_zone_around_an_observed_write() {
        let Zones::Invalid(c) = verdict(&[
            ("w1", 10, 20),
            ("w2", 30, 40),
            ("r2", 42, 44),
            ("r1", 50, 60),
        ]) else {
            panic!()
        };
        assert_eq!((c.outer.value, c.inner.value), (Some(1), Some(2)));
        assert_eq!(c.anomaly(), "stale-read");
    }

    #[test]
    fn lost_write_is_an_unobserved_write_inside_a_forward_zone() {
        let Zones::Invalid(c) = verdict(&[
            ("w1", 10, 20),
            ("r1", 30, 40),
            ("w2", 50, 60),
            ("r1", 70, 80),
        ]) else {
            panic!()
        };
        assert_eq!((c.outer.value, c.inner.value), (Some(1), Some(2)));
        assert_eq!(c.anomaly(), "lost-write");
    }

    #[test]
    fn touching_zones_do_not_conflict_and_info_writes_may_land_late() {
        // The read of absent is invoked at 20, when write 1 completes: closed intervals overlap.
        assert_eq!(verdict(&[("w1", 10, 20), ("r-", 20, 30)]), Zones::Valid);
        assert_eq!(
            verdict(&[("w1", 10, 0), ("r-", 30, 40), ("r1", 50, 60)]),
            Zones::Valid
        );
        assert!(matches!(
            verdict(&[("w1", 10, 20), ("r-", 21, 30)]),
            Zones::Invalid(_)
        ));
    }

    #[test]
    fn preconditions() {
        assert!(matches!(
            verdict(&[("w1", 10, 20), ("w1", 30, 40)]),
            Zones::NotApplicable(_)
        ));
        assert!(matches!(
            verdict(&[("r7", 10, 20)]),
            Zones::NotApplicable(_)
        ));
        assert!(matches!(
            verdict(&[("r1", 10, 20), ("w1", 30, 40)]),
            Zones::NotApplicable(_)
        ));
    }
}
