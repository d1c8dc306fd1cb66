//! The brute-force linearizability oracle: an exhaustive search straight from the definition,
//! which the searches are tested against. Used by the unit tests (through `testkit`) and by
//! `tests/cross_check.rs` (which includes this file by path), so it names the types it needs
//! through its parent module, whose `Interval` and `Model` each includer provides.

use super::{Interval, Model};

/// Whether some order of `ops` is legal in turn from `m`'s initial state, each op after every
/// op that returned before its call, with every op that returned included (ops of unknown
/// outcome may be left out). Exponential: for a handful of ops only.
pub fn linearizable<M: Model>(m: &M, ops: &[Interval<M::Input>]) -> bool {
    brute(m, ops, &mut vec![false; ops.len()], m.init())
}

/// [`linearizable`] from state `s`, with the ops marked `done` already placed.
fn brute<M: Model>(m: &M, ops: &[Interval<M::Input>], done: &mut Vec<bool>, s: M::State) -> bool {
    if ops
        .iter()
        .zip(done.iter())
        .all(|(o, &d)| d || o.return_ns.is_none())
    {
        return true;
    }
    for i in 0..ops.len() {
        let ready = !done[i]
            && (0..ops.len())
                .all(|j| done[j] || !matches!(ops[j].return_ns, Some(r) if r < ops[i].call_ns));
        if !ready {
            continue;
        }
        if let Some(next) = m.step(&s, &ops[i].input) {
            done[i] = true;
            let ok = brute(m, ops, done, next);
            done[i] = false;
            if ok {
                return true;
            }
        }
    }
    false
}
