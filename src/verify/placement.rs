//! Keys on a master that does not own their slot: invisible to clients (stranded) or shadowing
//! the owner's copy (duplicated), found from the per-slot counts and confirmed key by key.

use serde_json::json;

use super::counts;
use super::finding::Finding;
use super::topology::Topology;
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
        let owner_addr = owner.map_or("no node".to_string(), |o| o.addr().to_string());
        let sampled = keys.len() as u64 != m.count;
        let scale = |n: usize| {
            if sampled {
                format!("{n} of the {max} sampled")
            } else {
                n.to_string()
            }
        };
        if !invisible.is_empty() {
            findings.push(Finding {
                class: "stranded-key",
                node: holder.addr().to_string(),
                slot: Some(m.slot),
                keys: sample(&invisible, opts.sample_max),
                text: format!(
                    "{} holds {} keys of slot {} ({} in all), which {owner_addr} owns and does not \
                     have: clients are sent to {owner_addr}, so these keys are invisible \
                     (sample: {})",
                    holder.addr(),
                    scale(invisible.len()),
                    m.slot,
                    m.count,
                    sample(&invisible, 5).join(", ")
                ),
                data: json!({"count": invisible.len(), "slot_keys": m.count, "owner": owner_addr,
                             "sample": sample(&invisible, opts.sample_max)}),
            });
        }
        if !dup.is_empty() {
            let differing = match owner {
                Some(o) if opts.deep => differing_values(holder, o, &dup).await?,
                _ => None,
            };
            if opts.deep && differing.is_none() {
                warnings.push(format!(
                    "DEBUG DIGEST-VALUE refused on {} or {owner_addr}: values of duplicated \
                     keys not compared",
                    holder.addr()
                ));
            }
            let values = match differing {
                Some(n) => format!(", {n} of them with a different value"),
                None => String::new(),
            };
            findings.push(Finding {
                class: "duplicated-key",
                node: holder.addr().to_string(),
                slot: Some(m.slot),
                keys: sample(&dup, opts.sample_max),
                text: format!(
                    "{} holds {} keys of slot {} that its owner {owner_addr} also holds{values}: \
                     a repair that moves them back (`redis-cli --cluster fix`) may overwrite \
                     the owner's values (sample: {})",
                    holder.addr(),
                    scale(dup.len()),
                    m.slot,
                    sample(&dup, 5).join(", ")
                ),
                data: json!({"count": dup.len(), "slot_keys": m.count, "owner": owner_addr,
                             "differing_values": differing,
                             "sample": sample(&dup, opts.sample_max)}),
            });
        }
    }
    Ok((findings, warnings))
}

/// How many of `keys` have different values on the two nodes; `None` without `DEBUG`.
async fn differing_values(
    a: &super::topology::Member,
    b: &super::topology::Member,
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
