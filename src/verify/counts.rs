//! Keys per slot on every node, by `CLUSTER COUNTKEYSINSLOT` pipelined over all 16,384 slots: the
//! cheap first pass that tells which slots need a look at their keys.

use crate::harness::{Admin, SLOT_COUNT};

use super::VerifyError;

/// Slots counted per pipeline round trip.
const SLOTS_PER_PIPELINE: u32 = 4096;

/// How many keys each slot holds on one node.
pub async fn per_slot(admin: &mut Admin) -> Result<Vec<u64>, VerifyError> {
    let mut counts = Vec::with_capacity(SLOT_COUNT as usize);
    for start in (0..SLOT_COUNT).step_by(SLOTS_PER_PIPELINE as usize) {
        let end = (start + SLOTS_PER_PIPELINE).min(SLOT_COUNT);
        let mut pipe = redis::pipe();
        for slot in start..end {
            pipe.cmd("CLUSTER").arg("COUNTKEYSINSLOT").arg(slot);
        }
        let part: Vec<u64> = admin.pipe(&pipe).await?;
        counts.extend(part);
    }
    Ok(counts)
}

/// The keys of `slot` on a node (at most `max`), by `CLUSTER GETKEYSINSLOT`, which answers for
/// any slot, owned or not.
pub async fn keys_in_slots(
    admin: &mut Admin,
    slots: &[(u16, u64)],
) -> Result<Vec<Vec<String>>, VerifyError> {
    let mut pipe = redis::pipe();
    for &(slot, max) in slots {
        pipe.cmd("CLUSTER").arg("GETKEYSINSLOT").arg(slot).arg(max);
    }
    Ok(admin.pipe(&pipe).await?)
}

/// Which of `keys` exist on a node that owns their slot (per-key `EXISTS`, one round trip).
pub async fn exist(admin: &mut Admin, keys: &[String]) -> Result<Vec<bool>, VerifyError> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let mut pipe = redis::pipe();
    for key in keys {
        pipe.cmd("EXISTS").arg(key);
    }
    Ok(admin.pipe(&pipe).await?)
}

/// A digest of each key's value (`DEBUG DIGEST-VALUE`: independent of encoding, all zeros for
/// an absent key), on any node, owner or not; `None` if the node refuses `DEBUG`.
pub async fn digests(
    admin: &mut Admin,
    keys: &[String],
) -> Result<Option<Vec<String>>, VerifyError> {
    if keys.is_empty() {
        return Ok(Some(Vec::new()));
    }
    let mut cmd = redis::cmd("DEBUG");
    cmd.arg("DIGEST-VALUE");
    for key in keys {
        cmd.arg(key);
    }
    match admin.query::<Vec<String>>(&cmd).await {
        Ok(d) => Ok(Some(d)),
        // An error reply (not a lost connection): `DEBUG` is disabled on this node.
        Err(crate::harness::HarnessError::Command { source, .. })
            if !source.is_io_error() && !source.is_timeout() =>
        {
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}
