//! The types workload: one key per data type and variant (strings, counters, sets, hashes, sorted
//! sets, lists, HyperLogLogs), each written by the commands a server may treat differently
//! during a slot migration, and read whole; checked per key with the model its name says
//! (`checker`'s `types` model kind). Half the keys of each type are written only by the
//! commands PikiwiDB 4.0 never puts into its slot index (`PSETEX`, `DECR`, `SMOVE` into the key,
//! `SUNIONSTORE` and `RPOPLPUSH` destinations), so a migration leaves them behind; with
//! `mixed_case` the keys carry capitals, which PikiwiDB's `SLOTSMGRT-EXEC-WRAPPER` lowercases.

use crate::client::{Client, Completion, Operation};
use crate::router::Execution;
use crate::stats::WorkloadStats;
use crate::workload::{Process, Shared, WorkloadConfig};
use checker::EventType;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use redis::Value;
use serde_json::{json, Value as Json};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// `PSETEX`'s expiry: far beyond any run, so the key never expires under the checker.
const PSETEX_MS: u64 = 3_600_000;
/// One in this many ops on a set written by `SMOVE` also stores its union into a companion.
const STORE_ONE_IN: u32 = 4;

/// A key's data type, the first segment of its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataType {
    /// `str`: a register (`SET` or `PSETEX`, `GET`).
    Str,
    /// `cnt`: a counter (`INCR` or `DECR`, `GET`).
    Cnt,
    /// `set`: members added by `SADD` or `SMOVE`, read by `SMEMBERS`.
    Set,
    /// `hash`: fields added by `HSET`, read by `HKEYS`.
    Hash,
    /// `zset`: members added by `ZADD`, read by `ZRANGE`.
    Zset,
    /// `list`: `RPUSH` appends, `LRANGE` reads.
    List,
    /// `hll`: a HyperLogLog (`PFADD`, `PFCOUNT`), not modelled: only its type is checked.
    Hll,
}

/// Every data type, in the order keys cycle through them.
pub const DATA_TYPES: [DataType; 7] = [
    DataType::Str,
    DataType::Cnt,
    DataType::Set,
    DataType::Hash,
    DataType::Zset,
    DataType::List,
    DataType::Hll,
];

impl DataType {
    /// The key-name prefix (the checker reads the model off it, case-insensitively).
    pub fn prefix(self) -> &'static str {
        match self {
            DataType::Str => "str",
            DataType::Cnt => "cnt",
            DataType::Set => "set",
            DataType::Hash => "hash",
            DataType::Zset => "zset",
            DataType::List => "list",
            DataType::Hll => "hll",
        }
    }
}

/// Key `i` of the workload: its type, whether it is written by the unindexed commands, its name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TypedKey {
    /// Its data type.
    pub data_type: DataType,
    /// Written by `PSETEX`, `DECR`, `SMOVE` (with `SUNIONSTORE`) or `RPOPLPUSH` companions.
    pub unindexed: bool,
    /// The hash tag, shared with its companions so that they have the same slot.
    pub tag: String,
    /// The key.
    pub name: String,
}

impl TypedKey {
    /// Key `i`: types cycle every 7 keys, the unindexed variant every other cycle; with
    /// `mixed_case` the prefix is capitalised, and every other pair of cycles the tag too.
    pub fn new(i: usize, mixed_case: bool) -> TypedKey {
        let data_type = DATA_TYPES[i % DATA_TYPES.len()];
        let unindexed = (i / DATA_TYPES.len()) % 2 == 1;
        let tag = match mixed_case && (i / (2 * DATA_TYPES.len())) % 2 == 1 {
            true => format!("K{i}"),
            false => format!("k{i}"),
        };
        let prefix = match mixed_case {
            true => capitalised(data_type.prefix()),
            false => data_type.prefix().to_string(),
        };
        let name = format!("{prefix}:{{{tag}}}");
        TypedKey {
            data_type,
            unindexed,
            tag,
            name,
        }
    }

    /// A companion key of another (unmodelled) prefix in the same slot.
    pub fn companion(&self, prefix: &str) -> String {
        format!("{prefix}:{{{}}}", self.tag)
    }
}

/// The command that writes `key` in this workload (`PSETEX`, `DECR`, `SMOVE`, ... for the
/// unindexed variants, the companions' own commands), read off its name; `None` for another
/// workload's key. Explanations name it: the history's `f` (`write`, `incr`, `add`) does not.
pub fn writer_of(key: &str) -> Option<&'static str> {
    let (prefix, rest) = key.split_once(':')?;
    let i: usize = rest
        .strip_prefix('{')?
        .strip_suffix('}')?
        .get(1..)?
        .parse()
        .ok()?;
    let unindexed = TypedKey::new(i, false).unindexed;
    let writer = match (prefix.to_ascii_lowercase().as_str(), unindexed) {
        ("str", false) => "SET",
        ("str", true) => "PSETEX",
        ("cnt", false) => "INCR",
        ("cnt", true) => "DECR",
        ("set", false) => "SADD",
        ("set", true) => "SMOVE",
        ("hash", _) => "HSET",
        ("zset", _) => "ZADD",
        ("list", _) => "RPUSH",
        ("hll", _) => "PFADD",
        ("smv", _) => "SADD",
        ("sto", _) => "SUNIONSTORE",
        ("rps", _) => "RPUSH",
        ("rpl", _) => "RPOPLPUSH",
        _ => return None,
    };
    Some(writer)
}

fn capitalised(s: &str) -> String {
    let mut chars = s.chars();
    chars
        .next()
        .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}

/// The workload's key names.
pub fn typed_keys(cfg: &WorkloadConfig) -> Vec<String> {
    (0..cfg.keys)
        .map(|i| TypedKey::new(i, cfg.mixed_case).name)
        .collect()
}

/// The read of a key of type `t`: the whole value, as the model wants it.
fn read_op(t: DataType, key: &str) -> Operation<'_> {
    let cmd = match t {
        DataType::Str | DataType::Cnt => redis::cmd("GET").arg(key).clone(),
        DataType::Set => redis::cmd("SMEMBERS").arg(key).clone(),
        DataType::Hash => redis::cmd("HKEYS").arg(key).clone(),
        DataType::Zset => redis::cmd("ZRANGE").arg(key).arg(0).arg(-1).clone(),
        DataType::List => redis::cmd("LRANGE").arg(key).arg(0).arg(-1).clone(),
        DataType::Hll => redis::cmd("PFCOUNT").arg(key).clone(),
    };
    let f = if t == DataType::Hll {
        "pfcount"
    } else {
        "read"
    };
    Operation {
        f,
        key,
        value: Json::Null,
        cmd,
    }
}

/// A read's completion: absent strings are `null`, absent counters 0, collections their members.
fn read_reply(t: DataType, reply: Value) -> Completion {
    match (t, reply) {
        (DataType::Str, Value::Nil) => Completion::Ok(Json::Null),
        (DataType::Cnt, Value::Nil) => Completion::Ok(json!(0)),
        (DataType::Str | DataType::Cnt, Value::BulkString(b)) => match int(&b) {
            Some(n) => Completion::Ok(json!(n)),
            None => Completion::Info(format!("read a non-integer {:?}", lossy(&b))),
        },
        (DataType::Hll, Value::Int(n)) => Completion::Ok(json!(n)),
        (DataType::Set | DataType::Hash | DataType::Zset | DataType::List, Value::Array(items)) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                match item {
                    Value::BulkString(b) => match int(&b) {
                        Some(n) => out.push(n),
                        None => return Completion::Info(format!("non-integer {:?}", lossy(&b))),
                    },
                    other => return Completion::Info(format!("unexpected member {other:?}")),
                }
            }
            if t != DataType::List {
                out.sort_unstable();
            }
            Completion::Ok(json!(out))
        }
        (DataType::Set | DataType::Hash | DataType::Zset | DataType::List, Value::Set(items)) => {
            read_reply(t, Value::Array(items))
        }
        (_, other) => Completion::Info(format!("unexpected reply {other:?}")),
    }
}

fn int(bytes: &[u8]) -> Option<i64> {
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A write's completion: `OK` or an integer reply means it happened (`SMOVE`'s 0: it did not);
/// `RPOPLPUSH` answers the element it moved, or nil when the source was empty.
fn write_reply(f: &str, value: Json, reply: Value) -> Completion {
    match (f, reply) {
        ("smove", Value::Int(0)) => {
            Completion::Fail("SMOVE: the member was not in the source".into())
        }
        ("incr", Value::Int(n)) => Completion::Ok(json!(n)),
        ("rpoplpush", Value::Nil) => Completion::Fail("RPOPLPUSH: the source was empty".into()),
        ("rpoplpush", Value::BulkString(b)) => Completion::Ok(json!(lossy(&b))),
        (_, Value::Okay | Value::Int(_)) => Completion::Ok(value),
        (_, other) => Completion::Info(format!("unexpected reply {other:?}")),
    }
}

/// One recorded write: `f` and `value` for the history, `cmd` for the server.
async fn write(client: &mut Client, f: &str, key: &str, value: Json, cmd: redis::Cmd) -> EventType {
    let op = Operation {
        f: if f == "smove" { "add" } else { f },
        key,
        value: value.clone(),
        cmd,
    };
    let (kind, _, _) = client
        .perform(op, |reply| write_reply(f, value, reply))
        .await;
    kind
}

/// The writes of one op on `k` with the fresh value `n`, companions first.
async fn write_key(client: &mut Client, k: &TypedKey, n: u64, rng: &mut ChaCha8Rng) {
    let key = k.name.as_str();
    match (k.data_type, k.unindexed) {
        (DataType::Str, false) => {
            let cmd = redis::cmd("SET").arg(key).arg(n).clone();
            write(client, "write", key, json!(n), cmd).await;
        }
        (DataType::Str, true) => {
            let cmd = redis::cmd("PSETEX").arg(key).arg(PSETEX_MS).arg(n).clone();
            write(client, "write", key, json!(n), cmd).await;
        }
        (DataType::Cnt, unindexed) => {
            let (name, delta) = if unindexed { ("DECR", -1) } else { ("INCR", 1) };
            let cmd = redis::cmd(name).arg(key).clone();
            write(client, "incr", key, json!(delta), cmd).await;
        }
        (DataType::Set, false) => {
            let cmd = redis::cmd("SADD").arg(key).arg(n).clone();
            write(client, "add", key, json!(n), cmd).await;
        }
        (DataType::Set, true) => {
            let source = k.companion("smv");
            let add = redis::cmd("SADD").arg(&source).arg(n).clone();
            if write(client, "add", &source, json!(n), add).await == EventType::Ok {
                let mv = redis::cmd("SMOVE").arg(&source).arg(key).arg(n).clone();
                write(client, "smove", key, json!(n), mv).await;
            }
            if rng.random_range(0..STORE_ONE_IN) == 0 {
                let dest = k.companion("sto");
                let store = redis::cmd("SUNIONSTORE").arg(&dest).arg(key).clone();
                write(client, "store", &dest, Json::Null, store).await;
            }
        }
        (DataType::Hash, _) => {
            let cmd = redis::cmd("HSET").arg(key).arg(n).arg(1).clone();
            write(client, "add", key, json!(n), cmd).await;
        }
        (DataType::Zset, _) => {
            let cmd = redis::cmd("ZADD").arg(key).arg(n).arg(n).clone();
            write(client, "add", key, json!(n), cmd).await;
        }
        (DataType::List, unindexed) => {
            let cmd = redis::cmd("RPUSH").arg(key).arg(n).clone();
            write(client, "append", key, json!(n), cmd).await;
            if unindexed {
                let (source, dest) = (k.companion("rps"), k.companion("rpl"));
                let push = redis::cmd("RPUSH").arg(&source).arg(n).clone();
                if write(client, "push", &source, json!(n), push).await == EventType::Ok {
                    let pop = redis::cmd("RPOPLPUSH").arg(&source).arg(&dest).clone();
                    write(client, "rpoplpush", &dest, Json::Null, pop).await;
                }
            }
        }
        (DataType::Hll, _) => {
            let cmd = redis::cmd("PFADD").arg(key).arg(n).clone();
            write(client, "pfadd", key, json!(n), cmd).await;
        }
    }
}

/// One read of `key` through `client`, recorded: the final reads' types read.
pub(crate) async fn read(client: &mut Client, key: &str) -> (EventType, Json, Execution) {
    let t = DATA_TYPES
        .into_iter()
        .find(|t| {
            key.split(':')
                .next()
                .is_some_and(|p| p.eq_ignore_ascii_case(t.prefix()))
        })
        .unwrap_or(DataType::Str);
    client
        .perform(read_op(t, key), |reply| read_reply(t, reply))
        .await
}

/// One process of the types workload: typed reads and writes until `stop` fires
/// ([`crate::run_workload`] runs `cfg.clients` of them).
pub(crate) async fn client_loop(
    shared: Arc<Shared>,
    worker: usize,
    next_value: Arc<AtomicU64>,
    stop: CancellationToken,
) -> WorkloadStats {
    let cfg = &shared.cfg;
    let mut p = Process::new(&shared, worker);
    let keys: Vec<TypedKey> = (0..cfg.keys)
        .map(|i| TypedKey::new(i, cfg.mixed_case))
        .collect();
    let total = cfg.read_weight + cfg.write_weight;
    while p.next(&stop).await {
        let k = &keys[p.rng.random_range(0..keys.len())];
        if p.rng.random_range(0..total) < cfg.read_weight {
            let t = k.data_type;
            p.client
                .perform(read_op(t, &k.name), |reply| read_reply(t, reply))
                .await;
        } else {
            let n = next_value.fetch_add(1, Ordering::Relaxed);
            write_key(&mut p.client, k, n, &mut p.rng).await;
        }
        tokio::task::yield_now().await;
    }
    p.client.stats().clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_cycle_types_variants_and_case() {
        let k = |i| TypedKey::new(i, false);
        assert_eq!(k(0).name, "str:{k0}");
        assert_eq!((k(1).data_type, k(1).unindexed), (DataType::Cnt, false));
        assert_eq!((k(8).data_type, k(8).unindexed), (DataType::Cnt, true));
        assert_eq!(k(6).companion("rpl"), "rpl:{k6}");
        let m = |i| TypedKey::new(i, true).name;
        assert_eq!(m(2), "Set:{k2}");
        assert_eq!(m(16), "Set:{K16}");
        let writers: Vec<_> = [
            "str:{k0}",
            "Str:{K7}",
            "cnt:{k8}",
            "set:{k9}",
            "rpl:{k13}",
            "x:1",
        ]
        .iter()
        .map(|k| writer_of(k))
        .collect();
        let want = [Some("SET"), Some("PSETEX"), Some("DECR"), Some("SMOVE")];
        assert_eq!(writers[..4], want);
        assert_eq!(writers[4..], [Some("RPOPLPUSH"), None]);
        for i in 0..28 {
            let name = TypedKey::new(i, true).name;
            let t = checker::typed::key_type(&name);
            assert_ne!(
                t == checker::typed::KeyType::Unmodelled,
                i % 7 != 6,
                "{name}"
            );
        }
    }

    #[test]
    fn replies() {
        let bulk = |s: &str| Value::BulkString(s.as_bytes().to_vec());
        let ok = |t, r| read_reply(t, r);
        assert_eq!(ok(DataType::Str, Value::Nil), Completion::Ok(Json::Null));
        assert_eq!(ok(DataType::Cnt, Value::Nil), Completion::Ok(json!(0)));
        assert_eq!(ok(DataType::Cnt, bulk("-3")), Completion::Ok(json!(-3)));
        let members = Value::Array(vec![bulk("9"), bulk("2")]);
        assert_eq!(
            ok(DataType::Set, members.clone()),
            Completion::Ok(json!([2, 9]))
        );
        assert_eq!(ok(DataType::List, members), Completion::Ok(json!([9, 2])));
        assert!(matches!(ok(DataType::Hll, bulk("x")), Completion::Info(_)));
        assert_eq!(
            write_reply("smove", json!(4), Value::Int(0)),
            Completion::Fail("SMOVE: the member was not in the source".into())
        );
        assert_eq!(
            write_reply("incr", json!(-1), Value::Int(-5)),
            Completion::Ok(json!(-5))
        );
        assert_eq!(
            write_reply("write", json!(7), Value::Okay),
            Completion::Ok(json!(7))
        );
        assert!(matches!(
            write_reply("add", json!(1), Value::Nil),
            Completion::Info(_)
        ));
        assert_eq!(
            write_reply("rpoplpush", Json::Null, bulk("3")),
            Completion::Ok(json!("3"))
        );
        assert!(matches!(
            write_reply("rpoplpush", Json::Null, Value::Nil),
            Completion::Fail(_)
        ));
    }
}
