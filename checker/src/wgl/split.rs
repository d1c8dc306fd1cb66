//! A key the search gave up on, split at its quiescent points and searched piece by piece.
//!
//! A *quiescent point* lies before op `i` (ops in call order) when every op before it returned
//! before `i` was called: every op after the point is then invoked after every op before it
//! returned, so in any linearization the ops before come first. The point is usable when the
//! state there is *known*: the ops before it that change the state ([`Effect::Sets`]; an op of
//! [`Effect::Other`] or of unknown outcome forbids the point) are all ordered before the last of
//! them, which therefore sets the state every linearization of the piece ends in (or no op
//! changes it, and it is the piece's starting state). Then the whole is linearizable iff every
//! piece is, each starting from the state the piece before it ends in; an invalid piece makes the
//! key invalid, with the piece's evidence. Each piece gets the whole budget: the cache a search
//! needs grows with the square of its ops (a set of linearized ops per entry), so pieces are far
//! cheaper than the whole. A key of [`PIECES_FIRST_OPS_MIN`] ops or more is searched by pieces
//! straight away (the verdict is the same; an invalid key's evidence is then its piece's).

use super::{search, Budget, Interval, Search};
use crate::model::{Effect, Model};

/// Keys with at least this many ops to search are searched by pieces first, not only when the
/// whole search gives up.
pub(super) const PIECES_FIRST_OPS_MIN: usize = 4096;

/// `model`, starting from `state` instead of its initial state.
struct From<'a, M: Model> {
    model: &'a M,
    state: M::State,
}

impl<M: Model> Model for From<'_, M> {
    type State = M::State;
    type Input = M::Input;

    fn init(&self) -> M::State {
        self.state.clone()
    }
    fn step(&self, state: &M::State, input: &M::Input) -> Option<M::State> {
        self.model.step(state, input)
    }
    fn hash_state(&self, state: &M::State) -> u64 {
        self.model.hash_state(state)
    }
    fn requires(&self, input: &M::Input) -> Option<M::State> {
        self.model.requires(input)
    }
    fn effect(&self, input: &M::Input) -> Effect<M::State> {
        self.model.effect(input)
    }
    fn may_produce(&self, input: &M::Input, state: &M::State) -> bool {
        self.model.may_produce(input, state)
    }
    fn ordered(&self) -> bool {
        self.model.ordered()
    }
    fn precedes(&self, from: &M::State, to: &M::State) -> bool {
        self.model.precedes(from, to)
    }
    fn describe_state(&self, state: &M::State) -> String {
        self.model.describe_state(state)
    }
    fn describe_input(&self, input: &M::Input) -> String {
        self.model.describe_input(input)
    }
}

/// The usable quiescent points of `intervals` (see the module doc) as indexes where a piece
/// starts, each with the index of the op that sets the state there (`None`: the piece's starting
/// state carries over); empty when the ops are not in call order.
fn points<M: Model>(model: &M, intervals: &[Interval<M::Input>]) -> Vec<(usize, Option<usize>)> {
    if intervals.windows(2).any(|w| w[0].call_ns > w[1].call_ns) {
        return Vec::new();
    }
    let mut out = Vec::new();
    // Over the current piece: the latest return, and the op setting the state (if known).
    let mut returned_max: Option<u64> = None;
    let mut setters_returned_max: Option<u64> = None;
    // `Ok(None)`: no op changed the state; `Ok(Some(i))`: op `i` sets it; `Err`: unknown.
    let mut setter: Result<Option<usize>, ()> = Ok(None);
    let mut open = false;
    for (i, op) in intervals.iter().enumerate() {
        let quiescent = i > 0 && !open && returned_max.is_some_and(|r| r < op.call_ns);
        if let (true, Ok(set)) = (quiescent, setter) {
            out.push((i, set));
            (setter, setters_returned_max) = (Ok(None), None);
        }
        match op.return_ns {
            Some(r) => returned_max = Some(returned_max.map_or(r, |m| m.max(r))),
            None => open = true,
        }
        let changes = match model.effect(&op.input) {
            Effect::Observes => continue,
            Effect::Sets(_) => true,
            Effect::Other => false,
        };
        let after_all = setters_returned_max.is_none_or(|m| m < op.call_ns);
        setter = match (changes, op.return_ns) {
            (true, Some(_)) if after_all => Ok(Some(i)),
            _ => Err(()),
        };
        let r = op.return_ns.unwrap_or(u64::MAX);
        setters_returned_max = Some(setters_returned_max.map_or(r, |m| m.max(r)));
    }
    out
}

/// Searches `intervals` piece by piece between the usable quiescent points; `None` when there is
/// no such point (the caller keeps the whole search's verdict).
pub(super) fn by_pieces<M: Model>(
    model: &M,
    intervals: &[Interval<M::Input>],
    budget: &Budget,
) -> Option<Search<M::State>> {
    let cuts = points(model, intervals);
    if cuts.is_empty() {
        return None;
    }
    let mut state = model.init();
    let mut start = 0;
    let mut steps = 0u64;
    let ends = cuts
        .iter()
        .map(|&(i, set)| (i, set))
        .chain([(intervals.len(), None)]);
    for (end, set) in ends {
        let piece = &intervals[start..end];
        let from = From {
            model,
            state: state.clone(),
        };
        match search(&from, piece, budget) {
            Search::Valid { steps: s } => steps += s,
            Search::Unknown {
                steps: s,
                exhausted,
            } => {
                return Some(Search::Unknown {
                    steps: steps + s,
                    exhausted,
                })
            }
            Search::Invalid {
                steps: s,
                op,
                prefix,
                state,
                stranded,
            } => {
                return Some(Search::Invalid {
                    steps: steps + s,
                    op: start + op,
                    prefix: prefix.into_iter().map(|p| start + p).collect(),
                    state,
                    stranded: stranded.map(|p| start + p),
                })
            }
        }
        if let Some(Effect::Sets(s)) = set.map(|i| model.effect(&intervals[i].input)) {
            state = s;
        }
        start = end;
    }
    Some(Search::Valid { steps })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::register::{Register, RegisterOp};
    use crate::search::Exhausted;

    fn op(input: RegisterOp, call_ns: u64, return_ns: Option<u64>) -> Interval<RegisterOp> {
        Interval {
            input,
            call_ns,
            return_ns,
        }
    }

    #[test]
    fn points_need_quiescence_and_a_known_state() {
        use RegisterOp::*;
        let m = Register::default();
        let ops = [
            op(Write(1), 0, Some(10)),
            op(Write(2), 5, Some(15)), // concurrent with 1: state unknown after them,
            op(Read(Some(2)), 20, Some(30)), // so no point before this read
            op(Write(3), 40, Some(50)), // nor this write; after it the state is 3
            op(Read(Some(3)), 45, Some(60)),
            op(Write(4), 70, None), // info: nothing after it is quiescent
            op(Read(Some(4)), 80, Some(90)),
        ];
        assert_eq!(points(&m, &ops), vec![(5, Some(3))]);
        // A piece that changes nothing keeps its starting state.
        let reads = [op(Read(None), 0, Some(10)), op(Read(None), 20, Some(30))];
        assert_eq!(points(&m, &reads), vec![(1, None)]);
    }

    #[test]
    fn pieces_give_the_whole_searchs_verdict_where_it_gives_up() {
        use RegisterOp::*;
        // Rounds of 12 concurrent writes of fresh values, then a write alone, read back: 700
        // ops, more than the step budget allows the whole, while each round fits.
        let mut ops = Vec::new();
        let mut t = 0;
        for round in 0..50i64 {
            for w in 0..12i64 {
                ops.push(op(Write(round * 100 + w), t + w as u64, Some(t + 100)));
            }
            t += 200;
            ops.push(op(Write(round * 100 + 99), t, Some(t + 10)));
            ops.push(op(Read(Some(round * 100 + 99)), t + 20, Some(t + 30)));
            t += 100;
        }
        let m = Register::default();
        let small = Budget {
            steps_max: 200,
            ..Budget::default()
        };
        assert!(matches!(
            search(&m, &ops, &small),
            Search::Unknown {
                exhausted: Exhausted::Steps,
                ..
            }
        ));
        assert!(matches!(
            by_pieces(&m, &ops, &small),
            Some(Search::Valid { .. })
        ));
        // A stale read in round 30 makes the whole invalid, at that read.
        let stale = ops
            .iter()
            .position(|o| o.input == Read(Some(3099)))
            .unwrap();
        ops[stale].input = Read(Some(2999));
        match by_pieces(&m, &ops, &small) {
            Some(Search::Invalid { op, .. }) => assert_eq!(op, stale),
            other => panic!("{other:?}"),
        }
    }
}
