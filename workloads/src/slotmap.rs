//! The client's view of which master owns each hash slot.

use crate::slot::SLOT_COUNT;
use redis::Value;
use std::sync::{Arc, RwLock};

/// A slot map shared by every router of a run; a std lock, never held across an `.await`.
pub type SharedSlotMap = Arc<RwLock<SlotMap>>;

/// Why a `CLUSTER SLOTS` reply could not be turned into a slot map.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SlotMapError {
    /// The reply, or one of its entries, does not have the documented shape.
    #[error("malformed CLUSTER SLOTS reply: {0}")]
    Malformed(String),
}

/// Which master (`host:port`) owns each of the 16384 slots, as far as the client knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlotMap {
    owners: Vec<Option<Arc<str>>>,
    /// The first replica `CLUSTER SLOTS` listed for each slot's master (kept across `update`).
    replicas: Vec<Option<Arc<str>>>,
}

impl Default for SlotMap {
    fn default() -> Self {
        SlotMap::new()
    }
}

impl SlotMap {
    /// An empty map: no slot has a known owner yet.
    pub fn new() -> Self {
        SlotMap {
            owners: vec![None; SLOT_COUNT],
            replicas: vec![None; SLOT_COUNT],
        }
    }

    /// Wraps the map for sharing between tasks.
    pub fn shared(self) -> SharedSlotMap {
        Arc::new(RwLock::new(self))
    }

    /// Builds a map from a `CLUSTER SLOTS` reply; `asked` is the `host:port` that gave the reply,
    /// whose host stands in for a master whose address the server left empty or unknown (`?`).
    pub fn from_cluster_slots(reply: &Value, asked: &str) -> Result<SlotMap, SlotMapError> {
        let Value::Array(ranges) = reply else {
            return Err(malformed("expected an array", reply));
        };
        let fallback_host = asked.rsplit_once(':').map_or(asked, |(host, _)| host);
        let mut map = SlotMap::new();
        for range in ranges {
            let Value::Array(parts) = range else {
                return Err(malformed("expected a range array", range));
            };
            let [start, end, master, ..] = parts.as_slice() else {
                return Err(malformed("a range needs start, end and master", range));
            };
            let (start, end) = (slot_number(start)?, slot_number(end)?);
            if start > end {
                return Err(malformed("range start after end", range));
            }
            let addr: Arc<str> = master_addr(master, fallback_host)?.into();
            // Replicas only serve the `write-to-replica` test aid: a malformed one is skipped.
            let replica: Option<Arc<str>> = parts
                .get(3)
                .and_then(|r| master_addr(r, fallback_host).ok())
                .map(Into::into);
            for slot in start..=end {
                map.owners[slot as usize] = Some(addr.clone());
                map.replicas[slot as usize] = replica.clone();
            }
        }
        Ok(map)
    }

    /// The master that owns `slot`, if known.
    pub fn owner(&self, slot: u16) -> Option<&str> {
        self.owners[slot as usize].as_deref()
    }

    /// A replica of `slot`'s master as of the last `CLUSTER SLOTS`, if it listed one.
    pub fn replica(&self, slot: u16) -> Option<&str> {
        self.replicas[slot as usize].as_deref()
    }

    /// Records that `addr` owns `slot` (after a `MOVED`).
    pub fn update(&mut self, slot: u16, addr: &str) {
        self.owners[slot as usize] = Some(addr.into());
    }

    /// Every distinct master in the map, sorted.
    pub fn masters(&self) -> Vec<String> {
        let mut masters: Vec<String> = self
            .owners
            .iter()
            .flatten()
            .map(|a| a.to_string())
            .collect();
        masters.sort();
        masters.dedup();
        masters
    }

    /// How many slots have a known owner (16384 when the cluster is fully covered).
    pub fn covered_slots(&self) -> usize {
        self.owners.iter().filter(|o| o.is_some()).count()
    }
}

fn malformed(what: &str, value: &Value) -> SlotMapError {
    SlotMapError::Malformed(format!("{what}, got {value:?}"))
}

fn slot_number(v: &Value) -> Result<u16, SlotMapError> {
    match v {
        Value::Int(n) if (0..SLOT_COUNT as i64).contains(n) => Ok(*n as u16),
        other => Err(malformed("expected a slot number", other)),
    }
}

/// `host:port` of a master entry `[host, port, id, ...]`.
fn master_addr(master: &Value, fallback_host: &str) -> Result<String, SlotMapError> {
    let Value::Array(fields) = master else {
        return Err(malformed("expected a node array", master));
    };
    let [host, port, ..] = fields.as_slice() else {
        return Err(malformed("a node needs host and port", master));
    };
    let host = match host {
        Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        Value::SimpleString(s) => s.clone(),
        other => return Err(malformed("expected a host string", other)),
    };
    let host = if host.is_empty() || host == "?" {
        fallback_host.to_string()
    } else {
        host
    };
    match port {
        Value::Int(p) if (1..=65535).contains(p) => Ok(format!("{host}:{p}")),
        other => Err(malformed("expected a port number", other)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    fn range(start: i64, end: i64, host: &str, port: i64) -> Value {
        Value::Array(vec![
            Value::Int(start),
            Value::Int(end),
            Value::Array(vec![bulk(host), Value::Int(port), bulk("id")]),
            Value::Array(vec![bulk(host), Value::Int(port + 100), bulk("replica")]),
        ])
    }

    #[test]
    fn builds_from_cluster_slots() {
        let reply = Value::Array(vec![
            range(0, 5460, "127.0.0.1", 30001),
            range(5461, 10922, "127.0.0.1", 30002),
            range(10923, 16383, "", 30003),
        ]);
        let map = SlotMap::from_cluster_slots(&reply, "10.0.0.9:30001").unwrap();
        assert_eq!(map.covered_slots(), SLOT_COUNT);
        assert_eq!(map.owner(0), Some("127.0.0.1:30001"));
        assert_eq!(map.owner(5461), Some("127.0.0.1:30002"));
        assert_eq!(map.owner(16383), Some("10.0.0.9:30003"));
        assert_eq!(map.masters().len(), 3);
        assert_eq!(map.replica(0), Some("127.0.0.1:30101"));
        assert_eq!(map.replica(16383), Some("10.0.0.9:30103"));
    }

    #[test]
    fn update_and_gaps() {
        let reply = Value::Array(vec![range(0, 9, "h", 1)]);
        let mut map = SlotMap::from_cluster_slots(&reply, "h:1").unwrap();
        assert_eq!(map.covered_slots(), 10);
        assert_eq!(map.owner(10), None);
        map.update(3, "h:2");
        assert_eq!(map.owner(3), Some("h:2"));
        assert_eq!(map.masters(), vec!["h:1".to_string(), "h:2".to_string()]);
    }

    #[test]
    fn rejects_malformed_replies() {
        let bad = [
            Value::Nil,
            Value::Array(vec![Value::Int(1)]),
            Value::Array(vec![Value::Array(vec![Value::Int(0), Value::Int(1)])]),
            Value::Array(vec![range(5, 1, "h", 1)]),
            Value::Array(vec![range(0, 16384, "h", 1)]),
            Value::Array(vec![range(0, 1, "h", 0)]),
        ];
        for reply in bad {
            assert!(
                SlotMap::from_cluster_slots(&reply, "h:1").is_err(),
                "{reply:?}"
            );
        }
    }
}
