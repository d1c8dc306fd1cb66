//! The client ops a reduced history left out, as coverage counts them (see `stream::keep`): an
//! `ok` with no redirect, error or batch, not a final read. Eight bytes each where their events
//! would take hundreds: the position of the invocation among the file's events and the slot,
//! packed; an op that recorded no slot (rare: an imported history's) keeps its key instead, and
//! each key keeps the slot its op invoked last recorded, for those.

/// Bits of a packed op that hold its slot (slots are below 16384).
const SLOT_BITS: u32 = 14;

/// The plain ops of a history, and the key names their keys index.
#[derive(Debug, Clone, Default)]
pub struct PlainOps {
    /// Ops that recorded a slot: `invoke_event << SLOT_BITS | slot`.
    slotted: Vec<u64>,
    /// Ops that recorded none: (position of the invocation, key index or `u32::MAX`).
    unslotted: Vec<(usize, u32)>,
    /// By key index: the position and slot of its latest op that recorded one.
    last_slot: Vec<Option<(usize, u16)>>,
    /// Key names by index.
    pub keys: Vec<String>,
}

impl PlainOps {
    /// Records a plain op invoked at position `invoke_event`, of key index `key`, that recorded
    /// `slot` (from its completion, else its invocation).
    pub fn push(&mut self, invoke_event: usize, key: Option<u32>, slot: Option<u16>) {
        let Some(slot) = slot.filter(|&s| u32::from(s) < 1 << SLOT_BITS) else {
            self.unslotted.push((invoke_event, key.unwrap_or(u32::MAX)));
            return;
        };
        debug_assert!((invoke_event as u64) < 1 << (64 - SLOT_BITS));
        self.slotted
            .push((invoke_event as u64) << SLOT_BITS | u64::from(slot));
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

    /// How many ops there are.
    pub fn len(&self) -> usize {
        self.slotted.len() + self.unslotted.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every op that recorded a slot: (position of its invocation, slot).
    pub fn slotted(&self) -> impl Iterator<Item = (usize, u16)> + '_ {
        let mask = (1u64 << SLOT_BITS) - 1;
        self.slotted
            .iter()
            .map(move |&p| ((p >> SLOT_BITS) as usize, (p & mask) as u16))
    }

    /// Every op that recorded no slot: (position of its invocation, key name if it has one).
    pub fn unslotted(&self) -> impl Iterator<Item = (usize, Option<&str>)> + '_ {
        self.unslotted
            .iter()
            .map(|&(at, k)| (at, self.keys.get(k as usize).map(String::as_str)))
    }

    /// Per key name, the position and slot of its latest op that recorded one.
    pub fn last_slots(&self) -> impl Iterator<Item = (&str, usize, u16)> + '_ {
        self.last_slot.iter().enumerate().filter_map(|(k, last)| {
            let (at, slot) = (*last)?;
            Some((self.keys.get(k)?.as_str(), at, slot))
        })
    }
}
