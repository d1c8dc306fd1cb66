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

use crate::model::register::RegisterOp;
use crate::wgl::Interval;
use std::collections::HashMap;

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

impl Zone {
    fn lo(&self) -> At {
        self.first_complete.min(self.last_invoke)
    }

    fn hi(&self) -> At {
        self.first_complete.max(self.last_invoke)
    }
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

/// Decides a register partition from its ops (as the search would see them: no `fail` ops, no
/// `info` reads, unobserved `info` writes already dropped), starting from `initial`.
pub fn check(initial: Option<i64>, ops: &[Interval<RegisterOp>]) -> Zones {
    // Cluster index by value; cluster 0 is the initial value's.
    let mut index: HashMap<Option<i64>, usize> = HashMap::with_capacity(ops.len() / 2 + 1);
    let mut zones = vec![Zone {
        value: initial,
        forward: false,
        first_complete: MINUS_INF,
        last_invoke: MINUS_INF,
        write: None,
        first_complete_op: None,
        last_invoke_op: None,
        reads: 0,
    }];
    index.insert(initial, 0);
    for (i, op) in ops.iter().enumerate() {
        let RegisterOp::Write(v) = op.input else {
            continue;
        };
        if index.insert(Some(v), zones.len()).is_some() {
            return Zones::NotApplicable("a value is written twice (or is the initial value)");
        }
        zones.push(Zone {
            value: Some(v),
            forward: false,
            first_complete: op.return_ns.map_or(PLUS_INF, At::from),
            last_invoke: At::from(op.call_ns),
            write: Some(i),
            first_complete_op: op.return_ns.map(|_| i),
            last_invoke_op: Some(i),
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
        };
        let Some(&c) = index.get(&v) else {
            return Zones::NotApplicable("a read returned a value no write wrote");
        };
        let Some(return_ns) = op.return_ns else {
            return Zones::NotApplicable("a read of unknown outcome");
        };
        let z = &mut zones[c];
        if z.write.is_some_and(|w| ops[w].call_ns > return_ns) {
            return Zones::NotApplicable("a read completed before the write it saw was invoked");
        }
        z.reads += 1;
        // The initial value's write completed at −∞: no read completes earlier.
        if At::from(return_ns) < z.first_complete {
            z.first_complete = At::from(return_ns);
            z.first_complete_op = Some(i);
        }
        if At::from(op.call_ns) > z.last_invoke {
            z.last_invoke = At::from(op.call_ns);
            z.last_invoke_op = Some(i);
        }
    }
    // The initial value's write at −∞ fixes its `f` at −∞ (kept `None`); an initial value nobody
    // read pins nothing, nor does an `info` write nobody read.
    zones.retain(|z| z.reads > 0 || (z.write.is_some() && z.first_complete < PLUS_INF));
    for z in &mut zones {
        z.forward = z.first_complete < z.last_invoke;
        debug_assert!(z.lo() <= z.hi());
    }
    decide(zones)
}

/// Whether `inner` conflicts with the forward zone `outer`.
fn conflicts(outer: &Zone, inner: &Zone) -> bool {
    debug_assert!(outer.forward);
    if inner.forward {
        outer.lo() < inner.hi() && inner.lo() < outer.hi()
    } else {
        outer.lo() < inner.lo() && inner.hi() < outer.hi()
    }
}

fn decide(zones: Vec<Zone>) -> Zones {
    let (mut forward, backward): (Vec<&Zone>, Vec<&Zone>) = zones.iter().partition(|z| z.forward);
    forward.sort_by_key(|z| (z.lo(), z.hi()));
    let mut found: Option<(&Zone, &Zone)> = None;
    for w in forward.windows(2) {
        // Sorted by start and pairwise disjoint so far: only the neighbour can overlap.
        if conflicts(w[0], w[1]) {
            found = Some((w[0], w[1]));
            break;
        }
    }
    if found.is_none() {
        for b in &backward {
            // The forward zone starting last before `b` is the only one that can contain it.
            let n = forward.partition_point(|z| z.lo() < b.lo());
            if n > 0 && conflicts(forward[n - 1], b) {
                found = Some((forward[n - 1], b));
                break;
            }
        }
    }
    let Some((outer, inner)) = found else {
        return Zones::Valid;
    };
    // Name the conflict that shows the most: among the forward zones involved, one that an
    // observed value contradicts (a stale read) if there is one.
    let candidates = [outer, inner].into_iter().filter(|z| z.forward);
    let mut best = (outer, inner);
    for o in candidates {
        if let Some(z) = zones
            .iter()
            .find(|z| z.reads > 0 && *z != o && conflicts(o, z))
        {
            best = (o, z);
            break;
        }
    }
    Zones::Invalid(Box::new(Conflict {
        outer: best.0.clone(),
        inner: best.1.clone(),
    }))
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
