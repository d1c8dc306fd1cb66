//! Operations as Elle sees them: transactions of micro-operations on interned keys.
//!
//! A single-key `append` / `add` / `read` op is a one-micro-op transaction; a `txn` op carries
//! its micro-ops (`["append", k, v]`, `["r", k, v]`, `["w", k, v]`) in its value: the
//! completion's for `ok` ops (reads filled in), the invocation's otherwise (reads unknown).

use crate::hash::FxHasher;
use crate::history::History;
use crate::op::{line_of, Op, Outcome};
use crate::options::CheckError;
use serde_json::Value;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;

/// A deterministic, fast hash map for the analysis' indexes.
pub(crate) type FxMap<K, V> = HashMap<K, V, BuildHasherDefault<FxHasher>>;

/// An interned key: an index into [`Keys::names`].
pub(crate) type Key = u32;

/// The keys a history names, interned so that indexes hash integers, not strings.
#[derive(Debug, Default)]
pub(crate) struct Keys {
    /// Key names by id.
    pub names: Vec<String>,
    ids: FxMap<String, Key>,
}

impl Keys {
    /// The id of `name`, interning it on first sight.
    pub fn intern(&mut self, name: &str) -> Key {
        if let Some(&id) = self.ids.get(name) {
            return id;
        }
        let id = Key::try_from(self.names.len()).expect("fewer than 2^32 keys");
        self.names.push(name.to_string());
        self.ids.insert(name.to_string(), id);
        id
    }

    /// The name of key `id`.
    pub fn name(&self, id: Key) -> &str {
        &self.names[id as usize]
    }
}

/// What one micro-operation read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seen {
    /// A list (list-append and set reads; a missing key reads as empty).
    List(Vec<i64>),
    /// A register's value (`null`: absent).
    Register(Option<i64>),
    /// Unknown: the transaction did not complete `ok`.
    Unknown,
}

/// One micro-operation of a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Mop {
    /// Appended `value` to the list at `key` (also a set's `add`).
    Append { key: Key, value: i64 },
    /// Wrote `value` to the register at `key`.
    Write { key: Key, value: i64 },
    /// Read `key`.
    Read { key: Key, seen: Seen },
}

/// A transaction: one client op, its timing and outcome, and its micro-ops in order.
#[derive(Debug, Clone)]
pub(crate) struct Txn {
    /// Position of the invocation in `History::events` (the op's name in reports).
    pub event: usize,
    /// 1-based line of the invocation.
    pub line: usize,
    /// The client's process.
    pub process: u64,
    /// How the op ended.
    pub outcome: Outcome,
    /// Invocation time, ns.
    pub invoke_ns: u64,
    /// Completion time, ns (`u64::MAX` unless `ok` or `fail`).
    pub complete_ns: u64,
    /// Its micro-ops, in order.
    pub mops: Vec<Mop>,
}

fn field(history: &History, op: &Op, on_completion: bool, message: String) -> CheckError {
    let event = match (on_completion, op.complete_event) {
        (true, Some(c)) => c,
        _ => op.invoke_event,
    };
    CheckError::Field {
        event,
        line: line_of(history, event),
        field: "value",
        message,
    }
}

fn int(v: &Value) -> Result<i64, String> {
    v.as_i64()
        .ok_or_else(|| format!("expected a 64-bit integer, got {}", crate::echo::Echo(v)))
}

fn list(v: &Value) -> Result<Vec<i64>, String> {
    match v {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items.iter().map(int).collect(),
        other => Err(format!(
            "expected an array of integers, got {}",
            crate::echo::Echo(other)
        )),
    }
}

/// Parses one micro-op `[f, key, value]`; `ok` says whether reads carry their result.
fn micro_op(keys: &mut Keys, m: &Value, ok: bool) -> Result<Mop, String> {
    let parts = m.as_array().filter(|p| p.len() == 3).ok_or_else(|| {
        format!(
            "expected a micro-op [f, key, value], got {}",
            crate::echo::Echo(m)
        )
    })?;
    let key = match &parts[1] {
        Value::String(s) => keys.intern(s),
        Value::Number(n) => keys.intern(&n.to_string()),
        other => return Err(format!("expected a key, got {}", crate::echo::Echo(other))),
    };
    match parts[0].as_str() {
        Some("append") => Ok(Mop::Append {
            key,
            value: int(&parts[2])?,
        }),
        Some("w") => Ok(Mop::Write {
            key,
            value: int(&parts[2])?,
        }),
        Some("r") => {
            let seen = match (&parts[2], ok) {
                (_, false) => Seen::Unknown,
                (Value::Array(_), true) => Seen::List(list(&parts[2])?),
                (Value::Null, true) => Seen::Register(None),
                (v, true) => Seen::Register(Some(int(v)?)),
            };
            Ok(Mop::Read { key, seen })
        }
        _ => Err(format!(
            "expected a micro-op named \"append\", \"r\" or \"w\", got {}",
            parts[0]
        )),
    }
}

/// The transaction view of one op, or an error naming the field that does not fit.
fn txn_of(history: &History, keys: &mut Keys, op: &Op) -> Result<Txn, CheckError> {
    let ok = op.outcome == Outcome::Ok;
    // A single set or list without keys (Jepsen's set tests) is the key "", as partitions name it.
    let single = matches!(op.f.as_str(), "append" | "add" | "read");
    let key = op.key.as_deref().or(single.then_some(""));
    let mops = match (op.f.as_str(), key) {
        ("txn", _) => {
            let (value, on_completion) = if ok {
                (&op.complete_value, true)
            } else {
                (&op.invoke_value, false)
            };
            // The invocation's micro-ops are checked whatever the outcome; an ok completion's
            // are the same ones, with the reads filled in.
            let invoked = micro_ops(keys, &op.invoke_value, false)
                .map_err(|e| field(history, op, false, e))?;
            if !on_completion {
                return Ok(txn(history, op, invoked));
            }
            let mops =
                micro_ops(keys, value, true).map_err(|e| field(history, op, on_completion, e))?;
            same_txn(&invoked, &mops, keys).map_err(|e| field(history, op, true, e))?;
            mops
        }
        ("append" | "add", Some(key)) => {
            let value = int(&op.invoke_value).map_err(|e| field(history, op, false, e))?;
            let echoed = &op.complete_value;
            if ok && !echoed.is_null() && echoed != &op.invoke_value {
                let message = format!(
                    "an ok {} returns its argument {}, got {}",
                    op.f,
                    value,
                    crate::echo::Echo(echoed)
                );
                return Err(field(history, op, true, message));
            }
            vec![Mop::Append {
                key: keys.intern(key),
                value,
            }]
        }
        ("read", Some(key)) => {
            let seen = if ok {
                Seen::List(list(&op.complete_value).map_err(|e| field(history, op, true, e))?)
            } else {
                Seen::Unknown
            };
            vec![Mop::Read {
                key: keys.intern(key),
                seen,
            }]
        }
        (f, key) => {
            let event = op.invoke_event;
            return Err(CheckError::Field {
                event,
                line: line_of(history, event),
                field: if key.is_none() && f != "txn" { "key" } else { "f" },
                message: format!(
                    "list-append, set and txn histories know `append`, `add` and `read` on a key, and `txn`; not {f:?}{}",
                    if key.is_none() { " without a key" } else { "" }
                ),
            });
        }
    };
    Ok(txn(history, op, mops))
}

/// The transaction of `op` with micro-ops `mops`.
fn txn(history: &History, op: &Op, mops: Vec<Mop>) -> Txn {
    Txn {
        event: op.invoke_event,
        line: line_of(history, op.invoke_event),
        process: op.process,
        outcome: op.outcome,
        invoke_ns: op.invoke_ns,
        complete_ns: op.complete_ns,
        mops,
    }
}

/// Parses a `txn` op's value: an array of micro-ops; `ok` says whether reads carry results.
fn micro_ops(keys: &mut Keys, value: &Value, ok: bool) -> Result<Vec<Mop>, String> {
    let items = value.as_array().ok_or_else(|| {
        format!(
            "expected an array of micro-ops, got {}",
            crate::echo::Echo(value)
        )
    })?;
    items.iter().map(|m| micro_op(keys, m, ok)).collect()
}

/// Checks that a completion's micro-ops are the invocation's: the same kinds on the same keys,
/// the same values written (reads may differ: the completion fills them in).
fn same_txn(invoked: &[Mop], completed: &[Mop], keys: &Keys) -> Result<(), String> {
    if invoked.len() != completed.len() {
        return Err(format!(
            "the completion has {} micro-ops, its invocation {}",
            completed.len(),
            invoked.len()
        ));
    }
    for (i, (a, b)) in invoked.iter().zip(completed).enumerate() {
        let same = match (a, b) {
            (Mop::Read { key: ka, .. }, Mop::Read { key: kb, .. }) => ka == kb,
            _ => a == b,
        };
        if !same {
            let show = |m: &Mop| crate::echo::Echo(super::cycle::mop_text(keys, m));
            return Err(format!(
                "micro-op {} is {} on completion but {} on invocation",
                i + 1,
                show(b),
                show(a)
            ));
        }
    }
    Ok(())
}

/// Every op of `ops` as a transaction, in invocation order.
pub(crate) fn txns(history: &History, ops: &[Op]) -> Result<(Vec<Txn>, Keys), CheckError> {
    let mut keys = Keys::default();
    let mut out = Vec::with_capacity(ops.len());
    for op in ops {
        out.push(txn_of(history, &mut keys, op)?);
    }
    debug_assert!(out.windows(2).all(|w| w[0].event < w[1].event));
    nil_reads_of_lists(&mut out, &keys);
    Ok((out, keys))
}

/// Reads `["r", k, null]` that completed `ok` on a list key (one some op appends to or reads
/// as a list) saw the empty list, as in Elle's list-append: nil is the initial, empty state.
fn nil_reads_of_lists(txns: &mut [Txn], keys: &Keys) {
    let mut is_list = vec![false; keys.names.len()];
    for mop in txns.iter().flat_map(|t| &t.mops) {
        match mop {
            Mop::Append { key, .. }
            | Mop::Read {
                key,
                seen: Seen::List(_),
            } => is_list[*key as usize] = true,
            _ => {}
        }
    }
    for mop in txns.iter_mut().flat_map(|t| &mut t.mops) {
        if let Mop::Read { key, seen } = mop {
            if *seen == Seen::Register(None) && is_list[*key as usize] {
                *seen = Seen::List(Vec::new());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::Ops;
    use crate::testkit::h;

    #[test]
    fn single_key_ops_and_txns_become_transactions() {
        let history = h(r#"
            0  invoke append x    1                               @10
            0  ok     append x    1                               @20
            1  invoke txn    -    [["append","x",2],["r","y",null]] @30
            1  ok     txn    -    [["append","x",2],["r","y",[5]]]  @40
            2  invoke txn    -    [["w","z",3],["r","z",null]]      @50
            2  info   txn    -    [["w","z",3],["r","z",null]]      @60
            3  invoke read   x    null                            @70
            3  ok     read   x    [1,2]                           @80
        "#);
        let ops = Ops::from_history(&history).unwrap().ops;
        let (txns, keys) = txns(&history, &ops).unwrap();
        assert_eq!(keys.names, ["x", "y", "z"]);
        assert_eq!(txns[0].mops, [Mop::Append { key: 0, value: 1 }]);
        assert_eq!(
            txns[1].mops,
            [
                Mop::Append { key: 0, value: 2 },
                Mop::Read {
                    key: 1,
                    seen: Seen::List(vec![5])
                }
            ]
        );
        assert_eq!(
            txns[2].mops[1],
            Mop::Read {
                key: 2,
                seen: Seen::Unknown
            }
        );
        assert_eq!((txns[3].line, txns[3].complete_ns), (7, 80));
    }

    #[test]
    fn nil_read_of_a_list_key_is_the_empty_list() {
        let history = h(r#"
            0  invoke txn - [["r","x",null],["r","y",null]] @10
            0  ok     txn - [["r","x",null],["r","y",null]] @20
            1  invoke txn - [["append","x",1],["w","y",2]]   @30
            1  ok     txn - [["append","x",1],["w","y",2]]   @40
        "#);
        let ops = Ops::from_history(&history).unwrap().ops;
        let (txns, _) = txns(&history, &ops).unwrap();
        let read = |key| Mop::Read {
            key,
            seen: Seen::List(vec![]),
        };
        assert_eq!(txns[0].mops[0], read(0));
        // y is a register: its nil read stays nil.
        assert_eq!(
            txns[0].mops[1],
            Mop::Read {
                key: 1,
                seen: Seen::Register(None)
            }
        );
    }

    #[test]
    fn malformed_values_name_their_line_and_field() {
        let cases = [
            // An ok append's value is its argument.
            (
                "0 invoke append x 1 @10\n0 ok append x 1.5 @20",
                2,
                "returns its argument 1",
            ),
            // A txn's invocation holds micro-ops, whatever its outcome.
            (
                "0 invoke txn - \"s\" @10\n0 ok txn - [[\"r\",\"x\",[1]]] @20",
                1,
                "micro-ops",
            ),
            (
                "0 invoke txn - \"s\" @10\n0 info txn - null @20",
                1,
                "micro-ops",
            ),
            (
                "0 invoke txn - [[\"append\",\"x\",1.5]] @10\n0 fail txn - null @20",
                1,
                "integer",
            ),
            // An ok txn's micro-ops are its invocation's, with reads filled in.
            (
                "0 invoke txn - [[\"append\",\"x\",1]] @10\n0 ok txn - [[\"append\",\"x\",2]] @20",
                2,
                "micro-op 1 is append 2 to x on completion but append 1 to x on invocation",
            ),
            (
                "0 invoke txn - [[\"r\",\"x\",null]] @10\n0 ok txn - [] @20",
                2,
                "the completion has 0 micro-ops, its invocation 1",
            ),
            (
                "0 invoke read x null @10\n0 ok read x [1.5] @20",
                2,
                "integer",
            ),
        ];
        for (text, line_want, message_want) in cases {
            let history = h(text);
            let ops = Ops::from_history(&history).unwrap().ops;
            let err = txns(&history, &ops).unwrap_err();
            let CheckError::Field {
                line,
                field,
                ref message,
                ..
            } = err
            else {
                panic!("{text}: {err}");
            };
            assert_eq!((line, field), (line_want, "value"), "{text}: {err}");
            assert!(message.contains(message_want), "{text}: {err}");
        }
    }

    #[test]
    fn unknown_f_names_its_line() {
        let history = h("
            0  invoke write x 1 @10
            0  ok     write x 1 @20
        ");
        let ops = Ops::from_history(&history).unwrap().ops;
        let err = txns(&history, &ops).unwrap_err();
        assert!(
            matches!(
                err,
                CheckError::Field {
                    line: 1,
                    field: "f",
                    ..
                }
            ),
            "{err}"
        );
    }
}
