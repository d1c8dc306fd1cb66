//! Transactions as the Elle workloads send and record them: micro-ops on keys of one slot, sent
//! as `MULTI`/`EXEC` or as one Lua script (`--txn multi|lua`), recorded as one `txn` op whose
//! value lists the micro-ops as Elle writes them (`["r", k, v]`, `["w", k, v]`,
//! `["append", k, v]`).

use crate::client::{Client, Completion, TxnOperation, TxnRequest};
use checker::Batch;
use redis::{Cmd, Value};
use serde_json::{json, Value as Json};

/// How a transaction goes to the server.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TxnMode {
    /// `MULTI`, the commands, `EXEC`, in one write ([`crate::Router::execute_txn`]).
    #[default]
    Multi,
    /// One `EVAL` of a script that runs the micro-ops in order ([`TXN_SCRIPT`]), its keys in
    /// `KEYS`: routed as a single command (`ASK` → `ASKING` + `EVAL`, `TRYAGAIN` while its keys
    /// are split between source and target).
    Lua,
}

impl TxnMode {
    /// The name on the command line and in the history header.
    pub fn name(self) -> &'static str {
        match self {
            TxnMode::Multi => "multi",
            TxnMode::Lua => "lua",
        }
    }

    /// Reads `multi` or `lua`.
    pub fn parse(text: &str) -> Option<TxnMode> {
        match text {
            "multi" => Some(TxnMode::Multi),
            "lua" => Some(TxnMode::Lua),
            _ => None,
        }
    }

    /// The batch kind its ops are recorded with.
    pub fn batch(self) -> Batch {
        match self {
            TxnMode::Multi => Batch::Multi,
            TxnMode::Lua => Batch::Lua,
        }
    }
}

/// Runs `ARGV[i]` (`r` GET, `w` SET to `ARGV[n+i]`, `a` RPUSH `ARGV[n+i]`, `l` LRANGE 0 -1) on
/// `KEYS[i]` for each of the `n` keys, in order, and returns one reply per micro-op as `EXEC`
/// would (a missing key's GET is `false`, read back as nil).
pub const TXN_SCRIPT: &str = "local n = #KEYS local out = {} \
     for i = 1, n do local op, k, v = ARGV[i], KEYS[i], ARGV[n + i] \
     if op == 'r' then out[i] = redis.call('GET', k) \
     elseif op == 'w' then out[i] = redis.call('SET', k, v) \
     elseif op == 'a' then out[i] = redis.call('RPUSH', k, v) \
     else out[i] = redis.call('LRANGE', k, 0, -1) end end return out";

/// One micro-op of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Micro {
    /// `GET` of a register.
    Read(String),
    /// `SET` of a register to a value unique in the run.
    Write(String, u64),
    /// `RPUSH` of a value unique in the run.
    Append(String, u64),
    /// `LRANGE 0 -1`: the whole list (`[]` when absent).
    ReadList(String),
}

impl Micro {
    fn key(&self) -> &str {
        match self {
            Micro::Read(k) | Micro::Write(k, _) | Micro::Append(k, _) | Micro::ReadList(k) => k,
        }
    }

    /// The micro-op as the invocation records it.
    fn invoked(&self) -> Json {
        match self {
            Micro::Read(k) | Micro::ReadList(k) => json!(["r", k, null]),
            Micro::Write(k, v) => json!(["w", k, v]),
            Micro::Append(k, v) => json!(["append", k, v]),
        }
    }

    /// The command `MULTI`/`EXEC` queues for it.
    fn command(&self) -> Cmd {
        match self {
            Micro::Read(k) => redis::cmd("GET").arg(k).clone(),
            Micro::Write(k, v) => redis::cmd("SET").arg(k).arg(v).clone(),
            Micro::Append(k, v) => redis::cmd("RPUSH").arg(k).arg(v).clone(),
            Micro::ReadList(k) => redis::cmd("LRANGE").arg(k).arg(0).arg(-1).clone(),
        }
    }

    /// Its code and argument in [`TXN_SCRIPT`]'s `ARGV`.
    fn script_args(&self) -> (&'static str, u64) {
        match self {
            Micro::Read(_) => ("r", 0),
            Micro::Write(_, v) => ("w", *v),
            Micro::Append(_, v) => ("a", *v),
            Micro::ReadList(_) => ("l", 0),
        }
    }

    /// The completed micro-op from its reply, or why the reply makes no sense for it.
    fn completed(&self, reply: &Value) -> Result<Json, String> {
        let bad = || format!("unexpected reply {reply:?} to {}", self.invoked());
        match (self, reply) {
            (Micro::Read(k), Value::Nil) => Ok(json!(["r", k, null])),
            (Micro::Read(k), Value::BulkString(b)) => Ok(json!(["r", k, int(b).ok_or_else(bad)?])),
            (Micro::Write(..), Value::Okay) | (Micro::Append(_, _), Value::Int(_)) => {
                Ok(self.invoked())
            }
            (Micro::ReadList(k), Value::Array(items)) => {
                let list: Option<Vec<u64>> = items
                    .iter()
                    .map(|i| match i {
                        Value::BulkString(b) => int(b),
                        _ => None,
                    })
                    .collect();
                Ok(json!(["r", k, list.ok_or_else(bad)?]))
            }
            _ => Err(bad()),
        }
    }
}

fn int(bytes: &[u8]) -> Option<u64> {
    std::str::from_utf8(bytes).ok()?.parse().ok()
}

/// The `txn` op that runs `mops` (all on keys of one slot) in `mode`.
pub(crate) fn operation(mops: &[Micro], mode: TxnMode) -> TxnOperation<'_> {
    debug_assert!(!mops.is_empty());
    let value = Json::Array(mops.iter().map(Micro::invoked).collect());
    let request = match mode {
        TxnMode::Multi => TxnRequest::Multi(mops.iter().map(Micro::command).collect()),
        TxnMode::Lua => {
            let mut eval = redis::cmd("EVAL");
            eval.arg(TXN_SCRIPT).arg(mops.len());
            for m in mops {
                eval.arg(m.key());
            }
            let args: Vec<(&str, u64)> = mops.iter().map(Micro::script_args).collect();
            for (code, _) in &args {
                eval.arg(*code);
            }
            for (_, v) in &args {
                eval.arg(*v);
            }
            TxnRequest::Command(eval)
        }
    };
    TxnOperation {
        route_key: mops[0].key(),
        value,
        request,
        batch: Some(mode.batch()),
    }
}

/// Sends `mops` as one transaction the way `mode` says, and records it as one `txn` op: the one
/// way the Elle workloads send a transaction.
pub(crate) async fn perform(client: &mut Client, mops: &[Micro], mode: TxnMode) {
    client
        .perform_txn(operation(mops, mode), |reply| complete(mops, reply))
        .await;
}

/// One micro-op sent alone as a plain command, recorded as a one-micro-op `txn` (a register
/// read has no single-key form in Elle's histories).
pub(crate) fn single(m: &Micro) -> TxnOperation<'_> {
    TxnOperation {
        route_key: m.key(),
        value: json!([m.invoked()]),
        request: TxnRequest::Command(m.command()),
        batch: None,
    }
}

/// Reads the reply of a single command [`single`] sent.
pub(crate) fn complete_single(m: &Micro, reply: Value) -> Completion {
    complete(std::slice::from_ref(m), Value::Array(vec![reply]))
}

/// Reads `EXEC`'s (or the script's) reply: one value per micro-op, into the completed micro-ops.
/// A reply of another shape, or an error inside it, leaves the outcome unknown (`info`): some
/// of the transaction's commands may have run.
pub(crate) fn complete(mops: &[Micro], reply: Value) -> Completion {
    let replies = match reply {
        Value::Array(replies) if replies.len() == mops.len() => replies,
        other => {
            return Completion::Info(format!("expected {} replies, got {other:?}", mops.len()))
        }
    };
    let done: Result<Vec<Json>, String> = mops
        .iter()
        .zip(&replies)
        .map(|(m, r)| m.completed(r))
        .collect();
    match done {
        Ok(done) => Completion::Ok(Json::Array(done)),
        Err(e) => Completion::Info(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn completes_micro_ops_from_replies() {
        let mops = vec![
            Micro::Append("a".into(), 3),
            Micro::ReadList("a".into()),
            Micro::Read("b".into()),
            Micro::Write("b".into(), 9),
        ];
        let op = operation(&mops, TxnMode::Multi);
        assert_eq!(
            op.value,
            json!([
                ["append", "a", 3],
                ["r", "a", null],
                ["r", "b", null],
                ["w", "b", 9]
            ])
        );
        let reply = Value::Array(vec![
            Value::Int(2),
            Value::Array(vec![bulk("1"), bulk("3")]),
            Value::Nil,
            Value::Okay,
        ]);
        assert_eq!(
            complete(&mops, reply),
            Completion::Ok(json!([
                ["append", "a", 3],
                ["r", "a", [1, 3]],
                ["r", "b", null],
                ["w", "b", 9]
            ]))
        );
        let short = Value::Array(vec![Value::Int(2)]);
        assert!(matches!(complete(&mops, short), Completion::Info(_)));
        let wrong = Value::Array(vec![Value::Okay, Value::Nil, Value::Nil, Value::Okay]);
        assert!(matches!(complete(&mops, wrong), Completion::Info(_)));
        let empty = Micro::ReadList("z".into());
        assert_eq!(
            complete_single(&empty, Value::Array(vec![])),
            Completion::Ok(json!([["r", "z", []]]))
        );
    }

    #[test]
    fn lua_sends_keys_then_codes_then_values() {
        let mops = vec![Micro::Write("k".into(), 5), Micro::Read("j".into())];
        let op = operation(&mops, TxnMode::Lua);
        assert_eq!(op.batch, Some(Batch::Lua));
        let TxnRequest::Command(cmd) = op.request else {
            panic!("a script is one command")
        };
        let args: Vec<Vec<u8>> = cmd
            .args_iter()
            .map(|a| match a {
                redis::Arg::Simple(b) => b.to_vec(),
                _ => Vec::new(),
            })
            .collect();
        let tail: Vec<&[u8]> = args[2..].iter().map(Vec::as_slice).collect();
        let want: [&[u8]; 7] = [b"2", b"k", b"j", b"w", b"r", b"5", b"0"];
        assert_eq!(tail, want);
        assert_eq!(TxnMode::parse("lua"), Some(TxnMode::Lua));
        assert_eq!(TxnMode::Multi.name(), "multi");
    }
}
