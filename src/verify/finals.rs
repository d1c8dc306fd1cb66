//! The final value of every key the history touched, read from the master that owns its slot,
//! against the values a last write could have left (`checker::final_state`).

use std::collections::BTreeMap;

use checker::final_state::{self, FinalValue};
use checker::{key_slot, Anomaly, History, Ops};
use redis::Value as Reply;
use serde_json::Value;

use super::topology::Topology;
use super::VerifyError;

/// Keys read per round trip.
const KEYS_PER_PIPELINE: usize = 1000;

/// Whether the history is a register workload's (the only model whose final state we judge).
pub fn is_register(history: &History) -> bool {
    let declared = history
        .header
        .as_ref()
        .and_then(|h| h.run.get("workload"))
        .and_then(Value::as_str);
    match declared {
        Some(w) => w == "register",
        None => false,
    }
}

/// Reads every key `history` names from its owner and judges the values; returns the anomalies
/// and how many keys were read.
pub async fn check(
    topology: &Topology,
    history: &History,
) -> Result<(Vec<Anomaly>, usize), VerifyError> {
    let ops = Ops::from_history(history).map_err(|e| VerifyError::History(e.to_string()))?;
    let mut by_owner: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    let mut keys: Vec<&str> = ops.ops.iter().filter_map(|o| o.key.as_deref()).collect();
    keys.sort_unstable();
    keys.dedup();
    for key in &keys {
        if let Some(owner) = topology.owner[key_slot(key.as_bytes()) as usize] {
            by_owner.entry(owner).or_default().push(key.to_string());
        }
    }
    let mut finals = BTreeMap::new();
    for (owner, keys) in by_owner {
        let member = &topology.members[owner];
        let mut admin = member.admin.clone();
        for chunk in keys.chunks(KEYS_PER_PIPELINE) {
            let mut pipe = redis::pipe();
            for key in chunk {
                pipe.cmd("GET").arg(key);
            }
            let replies: Vec<Reply> = admin.pipe(&pipe).await?;
            for (key, reply) in chunk.iter().zip(replies) {
                let fin = FinalValue {
                    value: value_of(&reply),
                    node: member.addr().to_string(),
                };
                finals.insert(key.clone(), fin);
            }
        }
    }
    let read = finals.len();
    let anomalies = final_state::check_register(history, &finals)
        .map_err(|e| VerifyError::History(e.to_string()))?;
    Ok((anomalies, read))
}

/// A register value as histories record it: an integer, else the text, `null` when absent.
fn value_of(reply: &Reply) -> Value {
    let text = match reply {
        Reply::Nil => return Value::Null,
        Reply::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Reply::SimpleString(s) => s.clone(),
        Reply::Int(i) => return Value::from(*i),
        other => format!("{other:?}"),
    };
    match text.parse::<i64>() {
        Ok(i) => Value::from(i),
        Err(_) => Value::String(text),
    }
}
