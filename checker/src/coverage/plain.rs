//! The client ops a reduced history left out, as coverage counts them (see `stream::keep`): an
//! `ok` with no redirect, error or batch, not a final read.
//!
//! Whether an op was invoked while its slot migrated depends only on its slot and on which
//! nemesis events precede its invocation (every position the timeline compares is a nemesis
//! event's), so the ops are counted by (epoch, slot), an epoch being the stretch of the file
//! between two nemesis events, with the position of one of them to stand for all: memory grows
//! with the slots the ops touched between faults, not with the ops. An op that recorded no slot
//! (an imported history's) is counted by (epoch, key) instead, and each key keeps the slot its op
//! invoked last recorded, for those.

use crate::hash::FxHasher;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;

type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// The plain ops of a history, counted (see the module doc), and the key names they index.
#[derive(Debug, Clone, Default)]
pub struct PlainOps {
    /// Positions of the history's nemesis events, in order: the epochs' bounds.
    nemesis: Vec<usize>,
    /// By (epoch, slot): how many ops, and the position of one of them.
    slotted: FxMap<(u32, u16), (u64, usize)>,
    /// By (epoch, key index or `u32::MAX`) for ops that recorded no slot, as `slotted`.
    unslotted: FxMap<(u32, u32), (u64, usize)>,
    /// By key index: the position and slot of its latest op that recorded one.
    last_slot: Vec<Option<(usize, u16)>>,
    /// How many ops were counted.
    count: u64,
    /// Key names by index.
    pub keys: Vec<String>,
}

impl PlainOps {
    /// Notes a nemesis event at position `event` (after every one noted before): an epoch ends.
    pub fn nemesis(&mut self, event: usize) {
        debug_assert!(self.nemesis.last().is_none_or(|&n| n < event));
        self.nemesis.push(event);
    }

    /// Counts a plain op invoked at position `invoke_event`, of key index `key`, that recorded
    /// `slot` (from its completion, else its invocation).
    pub fn push(&mut self, invoke_event: usize, key: Option<u32>, slot: Option<u16>) {
        self.count += 1;
        let epoch = self.nemesis.partition_point(|&n| n < invoke_event) as u32;
        let count = |at: &mut (u64, usize)| at.0 += 1;
        let Some(slot) = slot else {
            let key = key.unwrap_or(u32::MAX);
            count(
                self.unslotted
                    .entry((epoch, key))
                    .or_insert((0, invoke_event)),
            );
            return;
        };
        count(
            self.slotted
                .entry((epoch, slot))
                .or_insert((0, invoke_event)),
        );
        if let Some(k) = key.map(|k| k as usize) {
            if self.last_slot.len() <= k {
                self.last_slot.resize(k + 1, None);
            }
            let last = &mut self.last_slot[k];
            if last.is_none_or(|(at, _)| at <= invoke_event) {
                *last = Some((invoke_event, slot));
            }
        }
    }

    /// How many ops were counted.
    pub fn len(&self) -> u64 {
        self.count
    }

    /// Whether none were.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The ops that recorded a slot: (position of one, slot, how many), by epoch and slot.
    pub fn slotted(&self) -> impl Iterator<Item = (usize, u16, u64)> + '_ {
        self.slotted
            .iter()
            .map(|(&(_, slot), &(n, at))| (at, slot, n))
    }

    /// The ops that recorded no slot: (position of one, key name if any, how many), by epoch
    /// and key.
    pub fn unslotted(&self) -> impl Iterator<Item = (usize, Option<&str>, u64)> + '_ {
        self.unslotted.iter().map(|(&(_, k), &(n, at))| {
            let key = self.keys.get(k as usize).map(String::as_str);
            (at, key, n)
        })
    }

    /// Per key name, the position and slot of its latest op that recorded one.
    pub fn last_slots(&self) -> impl Iterator<Item = (&str, usize, u16)> + '_ {
        self.last_slot.iter().enumerate().filter_map(|(k, last)| {
            let (at, slot) = (*last)?;
            Some((self.keys.get(k)?.as_str(), at, slot))
        })
    }
}
