//! Keys on a master that does not own their slot: invisible to clients (stranded) or shadowing
//! the owner's copy (duplicated), found from the per-slot counts and confirmed key by key.

use serde_json::json;

use super::counts;
use super::finding::Finding;
use super::topology::{Member, Topology};
use super::{VerifyError, VerifyOptions};

/// A slot on a master that holds keys of it without owning it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Misplaced {
    /// Index of the holding master in `Topology::members`.
    pub member: usize,
    /// The slot.
    pub slot: u16,
    /// Keys of the slot it holds.
    pub count: u64,
}

/// The misplaced slots, from every master's per-slot counts (`counts[i]` is member i's).
pub fn misplaced(topology: &Topology, counts: &[Vec<u64>]) -> Vec<Misplaced> {
    let mut found = Vec::new();
    for (i, m) in topology.members.iter().enumerate() {
        if m.is_replica() {
            continue;
        }
        for (slot, &count) in counts[i].iter().enumerate() {
            // A slot whose owner did not answer cannot be judged: the keys may be its own.
            if count > 0 && topology.owner[slot] != Some(i) && !topology.owner_unreachable(slot) {
                found.push(Misplaced {
                    member: i,
                    slot: slot as u16,
                    count,
                });
            }
        }
    }
    found
}

/// Looks at the keys of each misplaced slot: which the owner also has (and, with digests,
/// whether the values differ). One `stranded-key` and/or `duplicated-key` finding per slot.
pub async fn inspect(
    topology: &Topology,
    misplaced: &[Misplaced],
    opts: &VerifyOptions,
) -> Result<(Vec<Finding>, Vec<String>), VerifyError> {
    let mut findings = Vec::new();
    let mut warnings = Vec::new();
    for m in misplaced {
        let slot = Slot::read(topology, m, opts).await?;
        findings.extend(slot.stranded(opts));
        if !slot.dup.is_empty() {
            let (found, warning) = slot.duplicated(opts).await?;
            findings.push(found);
            warnings.extend(warning);
        }
    }
    Ok((findings, warnings))
}

/// One misplaced slot's keys on its holder, split by whether its owner has them too.
struct Slot<'a> {
    /// The misplaced slot.
    m: &'a Misplaced,
    /// The master that holds keys of the slot without owning it.
    holder: &'a Member,
    /// The slot's owner, if any.
    owner: Option<&'a Member>,
    /// The owner's address, or `no node`.
    owner_addr: String,
    /// Keys fetched at most.
    max: u64,
    /// Whether fewer keys were fetched than the holder has.
    sampled: bool,
    /// Keys the owner has too.
    dup: Vec<String>,
    /// Keys the owner lacks.
    invisible: Vec<String>,
}

impl<'a> Slot<'a> {
    /// Fetches the keys of `m` on its holder and asks the owner which it has.
    async fn read(
        topology: &'a Topology,
        m: &'a Misplaced,
        opts: &VerifyOptions,
    ) -> Result<Slot<'a>, VerifyError> {
        let holder = &topology.members[m.member];
        let mut admin = holder.admin.clone();
        let max = m.count.min(opts.keys_per_slot_max);
        let keys = counts::keys_in_slots(&mut admin, &[(m.slot, max)])
            .await?
            .pop()
            .unwrap_or_default();
        let owner = topology.owner[m.slot as usize].map(|o| &topology.members[o]);
        let on_owner = match owner {
            Some(o) => counts::exist(&mut o.admin.clone(), &keys).await?,
            None => vec![false; keys.len()],
        };
        let mut dup: Vec<String> = Vec::new();
        let mut invisible: Vec<String> = Vec::new();
        for (key, there) in keys.iter().zip(on_owner) {
            if there {
                dup.push(key.clone());
            } else {
                invisible.push(key.clone());
            }
        }
        Ok(Slot {
            m,
            holder,
            owner,
            owner_addr: owner.map_or("no node".to_string(), |o| o.addr().to_string()),
            max,
            sampled: keys.len() as u64 != m.count,
            dup,
            invisible,
        })
    }

    /// `n` keys, as a share of those sampled when not all were fetched.
    fn scale(&self, n: usize) -> String {
        if self.sampled {
            format!("{n} of the {} sampled", self.max)
        } else {
            n.to_string()
        }
    }

    /// The `stranded-key` finding, if the owner lacks some of the keys.
    fn stranded(&self, opts: &VerifyOptions) -> Option<Finding> {
        let (m, invisible, owner_addr) = (self.m, &self.invisible, &self.owner_addr);
        if invisible.is_empty() {
            return None;
        }
        Some(Finding {
            class: "stranded-key",
            node: self.holder.addr().to_string(),
            slot: Some(m.slot),
            keys: sample(invisible, opts.sample_max),
            text: format!(
                "{} holds {} keys of slot {} ({} in all), which {owner_addr} owns and does not \
                 have: clients are sent to {owner_addr}, so these keys are invisible \
                 (sample: {})",
                self.holder.addr(),
                self.scale(invisible.len()),
                m.slot,
                m.count,
                sample(invisible, 5).join(", ")
            ),
            data: json!({"count": invisible.len(), "slot_keys": m.count, "owner": owner_addr,
                         "sample": sample(invisible, opts.sample_max)}),
        })
    }

    /// The `duplicated-key` finding (with how many values differ, when `deep`), and a warning
    /// when the values could not be compared.
    async fn duplicated(
        &self,
        opts: &VerifyOptions,
    ) -> Result<(Finding, Option<String>), VerifyError> {
        let (m, dup, owner_addr, holder) = (self.m, &self.dup, &self.owner_addr, self.holder);
        let differing = match self.owner {
            Some(o) if opts.deep => differing_values(holder, o, dup).await?,
            _ => None,
        };
        let warning = (opts.deep && differing.is_none()).then(|| {
            format!(
                "DEBUG DIGEST-VALUE refused on {} or {owner_addr}: values of duplicated \
                 keys not compared",
                holder.addr()
            )
        });
        let values = match differing {
            Some(n) => format!(", {n} of them with a different value"),
            None => String::new(),
        };
        let finding = Finding {
            class: "duplicated-key",
            node: holder.addr().to_string(),
            slot: Some(m.slot),
            keys: sample(dup, opts.sample_max),
            text: format!(
                "{} holds {} keys of slot {} that its owner {owner_addr} also holds{values}: \
                 a repair that moves them back (`redis-cli --cluster fix`) may overwrite \
                 the owner's values (sample: {})",
                holder.addr(),
                self.scale(dup.len()),
                m.slot,
                sample(dup, 5).join(", ")
            ),
            data: json!({"count": dup.len(), "slot_keys": m.count, "owner": owner_addr,
                         "differing_values": differing,
                         "sample": sample(dup, opts.sample_max)}),
        };
        Ok((finding, warning))
    }
}

/// How many of `keys` have different values on the two nodes; `None` without `DEBUG`.
async fn differing_values(
    a: &Member,
    b: &Member,
    keys: &[String],
) -> Result<Option<usize>, VerifyError> {
    let da = counts::digests(&mut a.admin.clone(), keys).await?;
    let db = counts::digests(&mut b.admin.clone(), keys).await?;
    Ok(match (da, db) {
        (Some(da), Some(db)) => Some(da.iter().zip(&db).filter(|(x, y)| x != y).count()),
        _ => None,
    })
}

/// The first `max` keys, sorted.
pub fn sample(keys: &[String], max: usize) -> Vec<String> {
    let mut keys: Vec<String> = keys.to_vec();
    keys.sort();
    keys.truncate(max);
    keys
}
