//! The configurations (linearized set, model state) the search has already explored.

use super::NIL;
use crate::hash::{mix64, BuildPassThrough};
use std::collections::HashMap;

/// A fixed-size set of op indexes.
pub(super) struct Bitset {
    pub(super) words: Vec<u64>,
}

impl Bitset {
    pub(super) fn new(bits: usize) -> Bitset {
        Bitset {
            words: vec![0; bits.div_ceil(64)],
        }
    }

    pub(super) fn set(&mut self, i: usize) {
        debug_assert!(!self.get(i));
        self.words[i / 64] |= 1 << (i % 64);
    }

    pub(super) fn clear(&mut self, i: usize) {
        debug_assert!(self.get(i));
        self.words[i / 64] &= !(1 << (i % 64));
    }

    pub(super) fn get(&self, i: usize) -> bool {
        self.words[i / 64] & (1 << (i % 64)) != 0
    }
}

/// The hash contribution of op `i` to a set's hash (Zobrist hashing: the XOR of its members'
/// keys, so adding or removing a member is O(1) instead of rehashing every word).
pub(super) fn op_key(i: usize) -> u64 {
    mix64(i as u64 ^ 0x2545_f491_4f6c_dd1d)
}

/// Configurations (linearized set, state) already explored, in flat arenas with hash chains.
pub(super) struct Cache<S> {
    pub(super) words: usize,
    pub(super) bits: Vec<u64>,
    pub(super) states: Vec<S>,
    pub(super) chain: Vec<u32>,
    pub(super) heads: HashMap<u64, u32, BuildPassThrough>,
}

impl<S: Eq + Clone> Cache<S> {
    pub(super) fn new(words: usize) -> Self {
        Cache {
            words,
            bits: Vec::new(),
            states: Vec::new(),
            chain: Vec::new(),
            heads: HashMap::default(),
        }
    }

    /// Adds the configuration; false if it was already there.
    pub(super) fn insert(&mut self, hash: u64, set: &Bitset, state: &S) -> bool {
        debug_assert_eq!(set.words.len(), self.words);
        let head = self.heads.get(&hash).copied().unwrap_or(NIL);
        let mut i = head;
        while i != NIL {
            let k = i as usize;
            if self.states[k] == *state
                && self.bits[k * self.words..(k + 1) * self.words] == set.words[..]
            {
                return false;
            }
            i = self.chain[k];
        }
        let k = self.states.len();
        assert!(k < NIL as usize, "cache index overflows u32");
        self.bits.extend_from_slice(&set.words);
        self.states.push(state.clone());
        self.chain.push(head);
        self.heads.insert(hash, k as u32);
        true
    }

    pub(super) fn bytes(&self) -> usize {
        self.bits.capacity() * 8
            + self.states.capacity() * std::mem::size_of::<S>()
            + self.chain.capacity() * 4
            + self.heads.capacity() * 16
    }
}
