//! Each replica against its master, slot by slot: key counts first, then the keys (and, where
//! counts differ or `--deep` asks, their values) of the slots that need it — after replication
//! has caught up, so that only a real divergence remains.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::{Admin, SLOT_COUNT};

use super::counts;
use super::finding::Finding;
use super::placement::sample;
use super::topology::Topology;
use super::{VerifyError, VerifyOptions};

/// How often a replica's offset is asked while waiting for it to catch up.
const SYNC_POLL_MS: u64 = 20;
/// Slots whose keys are fetched per round trip in the key-level comparison.
const SLOTS_PER_ROUND: usize = 128;
/// Slots named in one divergence finding's data.
const SLOTS_NAMED_MAX: usize = 20;

/// Replica/master pairs as member indexes.
pub fn pairs(topology: &Topology) -> Vec<(usize, usize)> {
    topology
        .members
        .iter()
        .enumerate()
        .filter(|(_, m)| m.is_replica())
        .filter_map(|(r, m)| Some((r, topology.by_id(m.line.master_id.as_deref()?)?)))
        .collect()
}

fn info_field(text: &str, field: &str) -> Option<String> {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(field)?.strip_prefix(':'))
        .map(str::to_string)
}

/// Waits until every replica has processed its master's stream up to the master's offset as
/// read now; returns a warning per replica that did not within the timeout.
pub async fn wait_synced(topology: &Topology, opts: &VerifyOptions) -> Vec<String> {
    let mut warnings = Vec::new();
    for (r, m) in pairs(topology) {
        let (replica, master) = (&topology.members[r], &topology.members[m]);
        match wait_one(&mut master.admin.clone(), &mut replica.admin.clone(), opts).await {
            Ok(None) => {}
            Ok(Some(last)) => warnings.push(format!(
                "replica {} did not catch up with {} within {} ms ({last}): compared anyway",
                replica.addr(),
                master.addr(),
                opts.sync_timeout_ms
            )),
            Err(e) => warnings.push(format!("replica {}: {e}", replica.addr())),
        }
    }
    warnings
}

/// `None` once caught up, else the last offsets seen.
async fn wait_one(
    master: &mut Admin,
    replica: &mut Admin,
    opts: &VerifyOptions,
) -> Result<Option<String>, VerifyError> {
    let text = master.text(&["INFO", "replication"]).await?;
    let target: u64 = info_field(&text, "master_repl_offset")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let deadline = Instant::now() + Duration::from_millis(opts.sync_timeout_ms);
    loop {
        let text = replica.text(&["INFO", "replication"]).await?;
        let link = info_field(&text, "master_link_status").unwrap_or_default();
        let offset: u64 = info_field(&text, "slave_repl_offset")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        if link == "up" && offset >= target {
            return Ok(None);
        }
        if Instant::now() >= deadline {
            return Ok(Some(format!("link {link}, offset {offset} < {target}")));
        }
        tokio::time::sleep(Duration::from_millis(SYNC_POLL_MS)).await;
    }
}

/// What one replica lacks, has extra, or holds differently, in the slots compared.
#[derive(Debug, Default)]
struct Divergence {
    slots: Vec<(u16, u64, u64)>,
    missing: Vec<String>,
    extra: Vec<String>,
    different: Vec<String>,
    keys_compared: u64,
    digests: bool,
}

/// Compares every replica with its master; returns findings, the keys compared by value, and
/// warnings.
pub async fn compare(
    topology: &Topology,
    counts: &[Vec<u64>],
    opts: &VerifyOptions,
) -> Result<(Vec<Finding>, u64, Vec<String>), VerifyError> {
    let mut tasks = tokio::task::JoinSet::new();
    for (r, m) in pairs(topology) {
        let slots: Vec<(u16, u64)> = (0..SLOT_COUNT as usize)
            .filter(|&s| {
                let (a, b) = (counts[m][s], counts[r][s]);
                a != b || (opts.deep && a > 0)
            })
            .map(|s| (s as u16, counts[m][s].max(counts[r][s])))
            .collect();
        let master = topology.members[m].admin.clone();
        let replica = topology.members[r].admin.clone();
        let opts = opts.clone();
        let slot_counts: Vec<(u16, u64, u64)> = slots
            .iter()
            .map(|&(s, _)| (s, counts[m][s as usize], counts[r][s as usize]))
            .collect();
        tasks.spawn(async move {
            let d = diverge(master, replica, &slots, slot_counts, &opts).await;
            (r, m, d)
        });
    }
    let mut findings = Vec::new();
    let mut compared = 0;
    let mut warnings = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (r, m, d) = joined.map_err(|e| VerifyError::Task(e.to_string()))?;
        let d = d?;
        compared += d.keys_compared;
        let (replica, master) = (&topology.members[r], &topology.members[m]);
        if !d.digests && d.keys_compared == 0 && !d.slots.is_empty() && opts.deep {
            warnings.push(format!(
                "DEBUG DIGEST-VALUE refused on {} or {}: values not compared",
                replica.addr(),
                master.addr()
            ));
        }
        if d.missing.is_empty() && d.extra.is_empty() && d.different.is_empty() {
            continue;
        }
        let diverging: Vec<&(u16, u64, u64)> = d.slots.iter().take(SLOTS_NAMED_MAX).collect();
        let first = diverging.first().map(|s| s.0);
        let mut keys = sample(&d.missing, opts.sample_max);
        keys.extend(sample(&d.extra, opts.sample_max));
        keys.extend(sample(&d.different, opts.sample_max));
        findings.push(Finding {
            class: "replica-divergence",
            node: replica.addr().to_string(),
            slot: first,
            keys,
            text: format!(
                "replica {} differs from its master {} after catching up: {} keys missing, {} \
                 extra, {} with another value (first slot {})",
                replica.addr(),
                master.addr(),
                d.missing.len(),
                d.extra.len(),
                d.different.len(),
                first.map_or("?".into(), |s| s.to_string())
            ),
            data: json!({
                "master": master.addr(),
                "missing": d.missing.len(), "extra": d.extra.len(), "different": d.different.len(),
                "sample_missing": sample(&d.missing, opts.sample_max),
                "sample_extra": sample(&d.extra, opts.sample_max),
                "sample_different": sample(&d.different, opts.sample_max),
                "slots": diverging.iter().map(|(s, a, b)| json!({"slot": s, "master_keys": a,
                    "replica_keys": b})).collect::<Vec<_>>(),
            }),
        });
    }
    Ok((findings, compared, warnings))
}

/// Key-level comparison of `slots` (with their larger count) between a master and a replica.
async fn diverge(
    mut master: Admin,
    mut replica: Admin,
    slots: &[(u16, u64)],
    slot_counts: Vec<(u16, u64, u64)>,
    opts: &VerifyOptions,
) -> Result<Divergence, VerifyError> {
    let mut d = Divergence {
        digests: true,
        ..Divergence::default()
    };
    let mut diverging: BTreeSet<u16> = BTreeSet::new();
    for round in slots.chunks(SLOTS_PER_ROUND) {
        let round: Vec<(u16, u64)> = round
            .iter()
            .map(|&(s, n)| (s, n.min(opts.keys_per_slot_max)))
            .collect();
        let on_master = counts::keys_in_slots(&mut master, &round).await?;
        let on_replica = counts::keys_in_slots(&mut replica, &round).await?;
        let mut common = Vec::new();
        for (i, &(slot, _)) in round.iter().enumerate() {
            let a: BTreeSet<&String> = on_master[i].iter().collect();
            let b: BTreeSet<&String> = on_replica[i].iter().collect();
            let before = d.missing.len() + d.extra.len();
            d.missing.extend(a.difference(&b).map(|k| (*k).clone()));
            d.extra.extend(b.difference(&a).map(|k| (*k).clone()));
            if d.missing.len() + d.extra.len() > before {
                diverging.insert(slot);
            }
            common.extend(a.intersection(&b).map(|k| (*k).clone()));
        }
        if !d.digests || common.is_empty() {
            continue;
        }
        let da = counts::digests(&mut master, &common).await?;
        let db = counts::digests(&mut replica, &common).await?;
        let (Some(da), Some(db)) = (da, db) else {
            d.digests = false;
            continue;
        };
        d.keys_compared += common.len() as u64;
        for ((key, x), y) in common.iter().zip(&da).zip(&db) {
            if x != y {
                d.different.push(key.clone());
                diverging.insert(checker::key_slot(key.as_bytes()));
            }
        }
    }
    d.slots = slot_counts
        .into_iter()
        .filter(|(s, a, b)| a != b || diverging.contains(s))
        .collect();
    Ok(d)
}
