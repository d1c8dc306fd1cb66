//! What each client process is doing while the pairing reads: dense for small process numbers,
//! a map for the rest.

use super::{FxMap, Invoked};

/// Where a process stands: between ops, awaiting a completion, or done after an `info`.
#[derive(Default)]
pub(super) enum Pending {
    #[default]
    Idle,
    Outstanding(Invoked),
    Retired {
        info_line: usize,
    },
}

/// Processes below this are kept in a vector, the rest in a map.
const DENSE_PROCESSES: u64 = 1 << 20;

/// What each process is doing.
#[derive(Default)]
pub(super) struct Processes {
    dense: Vec<Pending>,
    sparse: FxMap<u64, Pending>,
}

impl Processes {
    /// The process's state, which the caller replaces.
    pub(super) fn get(&mut self, process: u64) -> &mut Pending {
        if process < DENSE_PROCESSES {
            let p = process as usize;
            if self.dense.len() <= p {
                self.dense.resize_with(p + 1, Pending::default);
            }
            &mut self.dense[p]
        } else {
            self.sparse.entry(process).or_default()
        }
    }

    /// The invocations still outstanding, in the order they were invoked.
    pub(super) fn outstanding(self) -> Vec<(u64, Invoked)> {
        let dense = self
            .dense
            .into_iter()
            .enumerate()
            .map(|(p, s)| (p as u64, s));
        let mut open: Vec<(u64, Invoked)> = dense
            .chain(self.sparse)
            .filter_map(|(p, pending)| match pending {
                Pending::Outstanding(inv) => Some((p, inv)),
                _ => None,
            })
            .collect();
        open.sort_by_key(|(_, inv)| inv.event);
        open
    }
}
