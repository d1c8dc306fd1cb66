//! The workload's keys: their names, the hash-tag groups they fall in (several keys a slot, so a
//! migrating slot holds many keys while clients use them), and which key an op picks.

use rand::Rng;

/// Share of ops a hot distribution sends to its hot keys, in percent.
pub const HOT_OPS_PERCENT: u32 = 90;
/// Share of the keys that are hot, in percent (at least one key).
pub const HOT_KEYS_PERCENT: usize = 10;

/// How an op picks its key among the workload's keys.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum KeyDist {
    /// Every key equally likely.
    #[default]
    Uniform,
    /// [`HOT_OPS_PERCENT`] of ops go to the first [`HOT_KEYS_PERCENT`] of the keys (which, with
    /// groups, lie in every group), the rest to the others: contention on a few keys.
    Hot,
}

impl KeyDist {
    /// The name on the command line and in the history header.
    pub fn name(self) -> &'static str {
        match self {
            KeyDist::Uniform => "uniform",
            KeyDist::Hot => "hot",
        }
    }

    /// Reads `uniform` or `hot`.
    pub fn parse(text: &str) -> Option<KeyDist> {
        match text {
            "uniform" => Some(KeyDist::Uniform),
            "hot" => Some(KeyDist::Hot),
            _ => None,
        }
    }

    /// A key index in `0..keys` (`keys` ≥ 1).
    pub fn pick(self, rng: &mut impl Rng, keys: usize) -> usize {
        let hot = (keys * HOT_KEYS_PERCENT / 100).max(1);
        match self {
            KeyDist::Hot if hot < keys => {
                if rng.random_range(0..100) < HOT_OPS_PERCENT {
                    rng.random_range(0..hot)
                } else {
                    rng.random_range(hot..keys)
                }
            }
            _ => rng.random_range(0..keys),
        }
    }
}

/// How key names are made: a prefix, and how many hash-tag groups the keys fall in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyNames<'a> {
    /// Every name starts with it (inside the hash tag when there are groups).
    pub prefix: &'a str,
    /// Key `i` is in group `i % groups`, and every key of a group has the group's hash tag, so
    /// the group's keys share one slot. 0: no tags, every key hashes on its own name.
    pub groups: usize,
}

impl KeyNames<'_> {
    /// Key `i`'s name: `{prefix}{i}` without groups, `{{prefix}g{group}}:{i}` with them.
    pub fn name(&self, i: usize) -> String {
        match self.group_of(i) {
            None => format!("{}{i}", self.prefix),
            Some(g) => format!("{{{}g{g}}}:{i}", self.prefix),
        }
    }

    /// Key `i`'s name in `epoch`, in the slot of its plain name in every epoch (so that the
    /// nemesis keeps migrating the same slots): `{{prefix}{i}}:e{epoch}` without groups, the
    /// grouped name plus `:e{epoch}` with them.
    pub fn epoch_name(&self, i: usize, epoch: u64) -> String {
        match self.group_of(i) {
            None => format!("{{{}{i}}}:e{epoch}", self.prefix),
            Some(_) => format!("{}:e{epoch}", self.name(i)),
        }
    }

    /// Key `i`'s group, `None` without groups.
    pub fn group_of(&self, i: usize) -> Option<usize> {
        (self.groups > 0).then(|| i % self.groups)
    }

    /// The keys (indices below `keys`) that share key `i`'s slot: its group, or `i` alone
    /// without groups; `i` first.
    pub fn same_slot(&self, i: usize, keys: usize) -> Vec<usize> {
        let Some(g) = self.group_of(i) else {
            return vec![i];
        };
        let rest = (g..keys).step_by(self.groups).filter(|&j| j != i);
        std::iter::once(i).chain(rest).collect()
    }
}

/// The epoch of an epoch key (`None` for a key without one).
pub fn key_epoch(key: &str) -> Option<u64> {
    key.rsplit_once(":e")?.1.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slot::key_slot;
    use rand::SeedableRng;

    #[test]
    fn grouped_keys_share_their_group_slot_in_every_epoch() {
        let names = KeyNames {
            prefix: "register:",
            groups: 4,
        };
        assert_eq!(names.name(6), "{register:g2}:6");
        let slot = |k: String| key_slot(k.as_bytes());
        for i in 0..40 {
            let same = slot(names.name(i % 4));
            assert_eq!(slot(names.name(i)), same, "key {i}");
            assert_eq!(slot(names.epoch_name(i, 7)), same, "key {i}, epoch 7");
            assert_eq!(key_epoch(&names.epoch_name(i, 7)), Some(7));
        }
        assert_eq!(names.same_slot(5, 14), vec![5, 1, 9, 13]);
        let groups: std::collections::BTreeSet<u16> = (0..4).map(|i| slot(names.name(i))).collect();
        assert_eq!(groups.len(), 4, "four groups, four slots");
    }

    #[test]
    fn ungrouped_keys_keep_their_own_slot() {
        let names = KeyNames {
            prefix: "register:",
            groups: 0,
        };
        assert_eq!(names.name(3), "register:3");
        for i in [0, 7, 99] {
            let plain = key_slot(names.name(i).as_bytes());
            let key = names.epoch_name(i, 12345);
            assert_eq!(key_slot(key.as_bytes()), plain, "{key}");
            assert_eq!(key_epoch(&key), Some(12345));
        }
        assert_eq!(key_epoch("register:3"), None);
        assert_eq!(names.same_slot(3, 10), vec![3]);
    }

    #[test]
    fn hot_keys_take_most_ops() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let picks: Vec<usize> = (0..10_000)
            .map(|_| KeyDist::Hot.pick(&mut rng, 100))
            .collect();
        let hot = picks.iter().filter(|&&k| k < 10).count();
        assert!(
            (8_500..9_500).contains(&hot),
            "{hot} of 10000 on the hot keys"
        );
        assert!(picks.iter().all(|&k| k < 100));
        let uniform = (0..10_000).filter(|_| KeyDist::Uniform.pick(&mut rng, 100) < 10);
        assert!((700..1_300).contains(&uniform.count()));
        assert_eq!(KeyDist::Hot.pick(&mut rng, 1), 0);
    }
}
