//! Migration plans: which slots to move where, as a list of [`Move`]s, chosen from the current
//! ownership with a caller's seeded RNG (the same seed and ownership give the same plan).
//!
//! ```
//! use rand::SeedableRng;
//! use slotcheck::nemesis::migrate::Peer;
//! use slotcheck::nemesis::plan::{move_slots, rebalance, Owned};
//! let peer = |n: &str| Peer { addr: format!("127.0.0.1:{n}"), id: n.repeat(4) };
//! let owned = vec![
//!     Owned { peer: peer("1"), slots: (0..10).collect() },
//!     Owned { peer: peer("2"), slots: vec![] },
//! ];
//! let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
//! assert_eq!(move_slots(&mut rng, &owned, 3, &owned[0].peer, &owned[1].peer).len(), 3);
//! assert_eq!(rebalance(&mut rng, &owned).len(), 5);
//! ```

use super::migrate::{MigrateError, Peer};
use crate::harness::{parse_nodes, Admin};
use rand::seq::{IndexedRandom, IteratorRandom};
use rand::Rng;
use std::collections::BTreeMap;

/// One slot to move.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Move {
    /// The slot.
    pub slot: u16,
    /// Its owner now.
    pub source: Peer,
    /// Where it should go.
    pub target: Peer,
}

/// A master and the slots it owns, sorted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owned {
    /// The master.
    pub peer: Peer,
    /// Its slots, ascending.
    pub slots: Vec<u16>,
}

/// Reads who owns what from `addr`'s `CLUSTER NODES`: every master not marked failed, in
/// address order (the plans depend on this order, so it must not vary).
pub async fn ownership(addr: &str) -> Result<Vec<Owned>, MigrateError> {
    let step = |step| {
        move |source| MigrateError::Step {
            slot: 0,
            step,
            source,
        }
    };
    let mut admin = Admin::connect(addr).await.map_err(step("connect"))?;
    let text = admin
        .text(&["CLUSTER", "NODES"])
        .await
        .map_err(step("cluster-nodes"))?;
    let lines = parse_nodes(&text).ok_or_else(|| MigrateError::Reply {
        addr: addr.to_string(),
        command: "CLUSTER NODES",
        detail: "unparsable".to_string(),
    })?;
    let mut out: Vec<Owned> = lines
        .into_iter()
        .filter(|l| !l.is_replica() && !l.troubled())
        .map(|l| Owned {
            peer: Peer {
                addr: l.addr.clone(),
                id: l.id.clone(),
            },
            slots: l.slots.iter().flat_map(|&(s, e)| s..=e).collect(),
        })
        .collect();
    out.sort_by(|a, b| a.peer.addr.cmp(&b.peer.addr));
    Ok(out)
}

/// `n` random slots of `from` (fewer if it owns fewer), to `to`, in ascending slot order.
pub fn move_slots(
    rng: &mut impl Rng,
    owned: &[Owned],
    n: usize,
    from: &Peer,
    to: &Peer,
) -> Vec<Move> {
    assert_ne!(from.id, to.id, "moving slots to their own owner");
    let Some(src) = owned.iter().find(|o| o.peer.id == from.id) else {
        return Vec::new();
    };
    let mut slots = src.slots.iter().copied().choose_multiple(rng, n);
    slots.sort_unstable();
    slots
        .into_iter()
        .map(|slot| Move {
            slot,
            source: from.clone(),
            target: to.clone(),
        })
        .collect()
}

/// Moves whole slots until every master owns `total / masters` slots (the first `total %
/// masters` masters in `owned` order one more), like `redis-cli --cluster rebalance`: always
/// from the master with the most excess to the one with the largest deficit, random slots.
pub fn rebalance(rng: &mut impl Rng, owned: &[Owned]) -> Vec<Move> {
    if owned.is_empty() {
        return Vec::new();
    }
    let total: usize = owned.iter().map(|o| o.slots.len()).sum();
    let (base, extra) = (total / owned.len(), total % owned.len());
    let want: Vec<usize> = (0..owned.len())
        .map(|i| base + usize::from(i < extra))
        .collect();
    let mut slots: Vec<Vec<u16>> = owned.iter().map(|o| o.slots.clone()).collect();
    let mut moves = Vec::new();
    loop {
        let balance = |i: usize, slots: &[Vec<u16>]| slots[i].len() as i64 - want[i] as i64;
        let over = (0..owned.len()).max_by_key(|&i| (balance(i, &slots), std::cmp::Reverse(i)));
        let under = (0..owned.len()).min_by_key(|&i| (balance(i, &slots), i));
        let (Some(over), Some(under)) = (over, under) else {
            break;
        };
        let count = balance(over, &slots).min(-balance(under, &slots));
        if count <= 0 {
            break;
        }
        let mut picked = slots[over]
            .iter()
            .copied()
            .choose_multiple(rng, count as usize);
        picked.sort_unstable();
        slots[over].retain(|s| !picked.contains(s));
        slots[under].extend(&picked);
        moves.extend(picked.into_iter().map(|slot| Move {
            slot,
            source: owned[over].peer.clone(),
            target: owned[under].peer.clone(),
        }));
    }
    moves
}

/// Moves `slot` to `to`; empty if `to` already owns it or nobody does.
pub fn one_slot(owned: &[Owned], slot: u16, to: &Peer) -> Vec<Move> {
    owned
        .iter()
        .find(|o| o.slots.binary_search(&slot).is_ok())
        .filter(|o| o.peer.id != to.id)
        .map(|o| {
            vec![Move {
                slot,
                source: o.peer.clone(),
                target: to.clone(),
            }]
        })
        .unwrap_or_default()
}

/// Moves the slot holding the most of `keys` (ties: the lowest slot) to a random other master.
pub fn hot_slot(rng: &mut impl Rng, owned: &[Owned], keys: &[String]) -> Vec<Move> {
    let mut per_slot: BTreeMap<u16, usize> = BTreeMap::new();
    for key in keys {
        *per_slot
            .entry(workloads::key_slot(key.as_bytes()))
            .or_default() += 1;
    }
    let Some((&slot, _)) = per_slot
        .iter()
        .max_by_key(|(slot, n)| (**n, std::cmp::Reverse(**slot)))
    else {
        return Vec::new();
    };
    let Some(owner) = owned.iter().find(|o| o.slots.binary_search(&slot).is_ok()) else {
        return Vec::new();
    };
    let others: Vec<&Owned> = owned
        .iter()
        .filter(|o| o.peer.id != owner.peer.id)
        .collect();
    match others.choose(rng) {
        Some(to) => one_slot(owned, slot, &to.peer),
        None => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn peer(n: u8) -> Peer {
        Peer {
            addr: format!("127.0.0.1:{}", 7000 + u16::from(n)),
            id: format!("{n:040}"),
        }
    }

    fn skewed() -> Vec<Owned> {
        vec![
            Owned {
                peer: peer(1),
                slots: (0..10000).collect(),
            },
            Owned {
                peer: peer(2),
                slots: (10000..16000).collect(),
            },
            Owned {
                peer: peer(3),
                slots: (16000..16384).collect(),
            },
        ]
    }

    #[test]
    fn rebalance_evens_counts_and_is_seeded() {
        let owned = skewed();
        let plan = rebalance(&mut ChaCha8Rng::seed_from_u64(1), &owned);
        let again = rebalance(&mut ChaCha8Rng::seed_from_u64(1), &owned);
        assert_eq!(plan, again);
        assert_ne!(plan, rebalance(&mut ChaCha8Rng::seed_from_u64(2), &owned));
        let mut counts: BTreeMap<String, i64> = owned
            .iter()
            .map(|o| (o.peer.id.clone(), o.slots.len() as i64))
            .collect();
        for m in &plan {
            *counts.get_mut(&m.source.id).unwrap() -= 1;
            *counts.get_mut(&m.target.id).unwrap() += 1;
        }
        assert_eq!(
            counts.values().copied().collect::<Vec<_>>(),
            vec![5462, 5461, 5461]
        );
        assert_eq!(plan.len(), 10000 - 5462 + 6000 - 5461);
        assert!(rebalance(&mut ChaCha8Rng::seed_from_u64(1), &[]).is_empty());
    }

    #[test]
    fn small_plans_pick_the_right_slots() {
        let owned = skewed();
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let plan = move_slots(&mut rng, &owned, 5, &peer(3), &peer(1));
        assert_eq!(plan.len(), 5);
        assert!(plan.iter().all(|m| m.slot >= 16000 && m.target == peer(1)));
        assert_eq!(one_slot(&owned, 12, &peer(2))[0].source, peer(1));
        assert!(one_slot(&owned, 12, &peer(1)).is_empty());
        let keys: Vec<String> = ["{a}1", "{a}2", "{b}1"].map(String::from).to_vec();
        let hot = hot_slot(&mut rng, &owned, &keys);
        assert_eq!(hot[0].slot, workloads::key_slot(b"{a}"));
        assert_ne!(hot[0].target, hot[0].source);
    }
}
