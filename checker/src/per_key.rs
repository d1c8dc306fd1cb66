//! A `txn` op of register micro-ops read as one op per key it touches, for the register models.
//!
//! slotcheck's register workload sends multi-key commands on keys of one slot (`MSET`, `MGET`,
//! `DEL k1 k2`) and records each as one `txn` op whose value lists its micro-ops: `["r", k, v]`
//! (`v` null on invocation, the value read on `ok`), `["w", k, v]` (`v` null: the key deleted).
//! Linearizability is local, and a multi-key command on Redis is atomic, so each key's
//! sub-history may read the command as a single op on that key: a `read` or `write` with the
//! command's times, process and outcome. The register check (and its analyses: classes,
//! `redirect-after-apply`) do exactly that; Elle's analysis reads `txn` ops whole instead.

use crate::model::FieldError;
use crate::op::{Op, Outcome};
use serde_json::Value;

/// The `f` of a multi-key op.
pub const TXN: &str = "txn";

/// The ops of `ops` with every `txn` op replaced by its per-key ops (see [`key_ops`]), in
/// order; `Err` names the index in `ops` of the first `txn` op that does not fit, and why.
pub fn expand(ops: &[Op]) -> Result<Vec<Op>, (usize, FieldError)> {
    let mut out = Vec::with_capacity(ops.len());
    for (i, op) in ops.iter().enumerate() {
        if op.f == TXN {
            out.extend(key_ops(op).map_err(|e| (i, e))?);
        } else {
            out.push(op.clone());
        }
    }
    Ok(out)
}

/// Whether `op` is `key`'s: it names `key`, or is a `txn` op with a micro-op on `key`.
pub fn touches(op: &Op, key: &str) -> bool {
    match op.key.as_deref() {
        Some(k) => k == key,
        None if op.f == TXN => {
            micro_ops(&op.invoke_value).is_ok_and(|mops| mops.iter().any(|m| m.key == key))
        }
        None => false,
    }
}

/// One micro-op of a register `txn`.
#[derive(Debug, Clone, PartialEq)]
struct Micro<'a> {
    /// `r` or `w`.
    write: bool,
    key: &'a str,
    value: &'a Value,
}

/// Parses a `txn` value: `[[f, key, value], ...]` with `f` `r` or `w` and a string key.
fn micro_ops(value: &Value) -> Result<Vec<Micro<'_>>, String> {
    let items = value.as_array().ok_or_else(|| {
        format!(
            "a txn needs an array of micro-ops, got {}",
            crate::echo::Echo(value)
        )
    })?;
    items
        .iter()
        .map(|m| {
            let bad = || {
                format!(
                    "the register model reads micro-ops [\"r\" or \"w\", key, value], got {}",
                    crate::echo::Echo(m)
                )
            };
            let parts = m.as_array().filter(|p| p.len() == 3).ok_or_else(bad)?;
            let write = match parts[0].as_str() {
                Some("r") => false,
                Some("w") => true,
                _ => return Err(bad()),
            };
            let key = parts[1].as_str().ok_or_else(bad)?;
            Ok(Micro {
                write,
                key,
                value: &parts[2],
            })
        })
        .collect()
}

/// The ops of `txn` on each key it touches, in micro-op order: a `read` (its result the value
/// an `ok` txn read) or a `write` (its argument the value written, `null` for a delete), each
/// with the txn's process, times, events, outcome, route and error. A key met twice is refused:
/// the register model takes one op per key.
pub fn key_ops(txn: &Op) -> Result<Vec<Op>, FieldError> {
    let invoked = micro_ops(&txn.invoke_value).map_err(|m| FieldError::invoke("value", m))?;
    let completed = match txn.outcome {
        Outcome::Ok => {
            let done =
                micro_ops(&txn.complete_value).map_err(|m| FieldError::completion("value", m))?;
            let same = done.len() == invoked.len()
                && done
                    .iter()
                    .zip(&invoked)
                    .all(|(d, i)| d.write == i.write && d.key == i.key);
            if !same {
                return Err(FieldError::completion(
                    "value",
                    "an ok txn's micro-ops must be its invocation's, on the same keys".into(),
                ));
            }
            Some(done)
        }
        Outcome::Fail | Outcome::Info => None,
    };
    let mut out: Vec<Op> = Vec::with_capacity(invoked.len());
    for (i, m) in invoked.iter().enumerate() {
        if out.iter().any(|o| o.key.as_deref() == Some(m.key)) {
            return Err(FieldError::invoke(
                "value",
                format!(
                    "the txn touches key {} twice; the register model reads one micro-op per key",
                    crate::echo::Echo(format_args!("{:?}", m.key))
                ),
            ));
        }
        let done = completed.as_ref().map(|c| c[i].value);
        let (f, invoke_value, complete_value) = if m.write {
            let echoed = done.map_or(Value::Null, |_| m.value.clone());
            ("write", m.value.clone(), echoed)
        } else {
            ("read", Value::Null, done.cloned().unwrap_or(Value::Null))
        };
        out.push(Op {
            f: f.to_string(),
            key: Some(m.key.to_string()),
            invoke_value,
            complete_value,
            ..txn.clone()
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::op::Ops;
    use crate::testkit::h;
    use serde_json::json;

    #[test]
    fn a_txn_becomes_one_op_per_key() {
        let history = h(r#"
            0  invoke txn  -  [["w","a",1],["w","b",2]]       @10
            0  ok     txn  -  [["w","a",1],["w","b",2]]       @20
            1  invoke txn  -  [["r","a",null],["r","b",null]] @30
            1  ok     txn  -  [["r","a",1],["r","b",null]]    @40
            2  invoke txn  -  [["w","a",null],["w","b",null]] @50
            2  fail   txn  -  [["w","a",null],["w","b",null]] @60
            3  invoke read a  null                            @70
            3  ok     read a  1                               @80
        "#);
        let ops = Ops::from_history(&history).unwrap().ops;
        let split = expand(&ops).unwrap();
        let view: Vec<(&str, &str, Value, Value, Outcome, u64)> = split
            .iter()
            .map(|o| {
                let key = o.key.as_deref().unwrap();
                let (v, r) = (o.invoke_value.clone(), o.complete_value.clone());
                (o.f.as_str(), key, v, r, o.outcome, o.invoke_ns)
            })
            .collect();
        let want = vec![
            ("write", "a", json!(1), json!(1), Outcome::Ok, 10),
            ("write", "b", json!(2), json!(2), Outcome::Ok, 10),
            ("read", "a", json!(null), json!(1), Outcome::Ok, 30),
            ("read", "b", json!(null), json!(null), Outcome::Ok, 30),
            ("write", "a", json!(null), json!(null), Outcome::Fail, 50),
            ("write", "b", json!(null), json!(null), Outcome::Fail, 50),
            ("read", "a", json!(null), json!(1), Outcome::Ok, 70),
        ];
        assert_eq!(view, want);
        assert!(touches(&ops[0], "b") && !touches(&ops[0], "c"));
        assert!(touches(&ops[3], "a") && !touches(&ops[3], "b"));
    }

    fn verdict(model: crate::ModelKind, table: &str) -> crate::Validity {
        crate::check(&h(table), model, &crate::CheckOptions::default())
            .unwrap()
            .valid
    }

    /// An MSET of a and b, then reads of each: ok when both keys keep their value, bad when
    /// one key of the MSET is lost later (b reads absent after the MSET was acknowledged).
    const MSET_THEN_READS: &str = r#"
        0  invoke txn   -  [["w","a",1],["w","b",2]]       @10
        0  ok     txn   -  [["w","a",1],["w","b",2]]       @20
        1  invoke read  a  null                            @30
        1  ok     read  a  1                               @40
        1  invoke txn   -  [["r","a",null],["r","b",null]] @50
        1  ok     txn   -  [["r","a",1],["r","b",B]]       @60
    "#;

    #[test]
    fn an_mset_is_checked_per_key() {
        use crate::{ModelKind, Validity};
        for model in [ModelKind::Register, ModelKind::CasRegister] {
            let ok = MSET_THEN_READS.replace('B', "2");
            assert_eq!(verdict(model, &ok), Validity::Valid, "{model}");
            let lost = MSET_THEN_READS.replace('B', "null");
            assert_eq!(verdict(model, &lost), Validity::Invalid, "{model}");
        }
        let report = crate::check(
            &h(&MSET_THEN_READS.replace('B', "null")),
            ModelKind::Register,
            &crate::CheckOptions::default(),
        )
        .unwrap();
        let bad: Vec<&str> = report
            .keys
            .iter()
            .filter(|k| k.valid == Validity::Invalid)
            .map(|k| k.key.as_str())
            .collect();
        assert_eq!(bad, ["b"], "only b lost its value");
    }

    /// A DEL (writes of null) makes keys absent: a later read of absent is ok, a read of the
    /// deleted value after the DEL was acknowledged is not.
    #[test]
    fn a_delete_makes_the_key_absent() {
        use crate::{ModelKind, Validity};
        let table = r#"
            0  invoke write k  1                               @10
            0  ok     write k  1                               @20
            0  invoke txn   -  [["w","k",null],["w","j",null]] @30
            0  ok     txn   -  [["w","k",null],["w","j",null]] @40
            1  invoke read  k  null                            @50
            1  ok     read  k  V                               @60
        "#;
        let ok = table.replace('V', "null");
        assert_eq!(verdict(ModelKind::Register, &ok), Validity::Valid);
        let resurrected = table.replace('V', "1");
        assert_eq!(
            verdict(ModelKind::Register, &resurrected),
            Validity::Invalid
        );
    }

    /// A multi-key op that failed did not happen: a read of its value is an aborted read.
    #[test]
    fn a_failed_mset_read_later_is_an_aborted_read() {
        let table = r#"
            0  invoke txn   -  [["w","a",7],["w","b",8]] @10
            0  fail   txn   -  [["w","a",7],["w","b",8]] @20
            1  invoke read  b  null                      @30
            1  ok     read  b  8                         @40
        "#;
        let history = h(table);
        let opts = crate::CheckOptions::default();
        let mut report = crate::check(&history, crate::ModelKind::Register, &opts).unwrap();
        assert_eq!(report.valid, crate::Validity::Invalid);
        crate::analyze_redirects(&history, crate::ModelKind::Register, &opts, &mut report).unwrap();
        let json = serde_json::to_value(&report).unwrap();
        let text = json.to_string();
        assert!(text.contains("aborted-read"), "{text}");
    }

    #[test]
    fn malformed_txns_are_refused() {
        let table = [
            r#"0 invoke txn - [["w","a",1],["r","a",null]] @1"#,
            r#"0 invoke txn - [["append","a",1]] @1"#,
            r#"0 invoke txn - {"a":1} @1"#,
            "0 invoke txn - [[\"w\",\"a\",1]] @1\n0 ok txn - [[\"r\",\"a\",1]] @2",
        ];
        for text in table {
            let ops = Ops::from_history(&h(text)).unwrap().ops;
            assert!(expand(&ops).is_err(), "{text}");
        }
    }
}
