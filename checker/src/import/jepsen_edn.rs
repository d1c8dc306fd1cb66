//! Jepsen's `history.edn`: one op map per line (`:process :type :f :value :time :index`).
//!
//! Histories of `jepsen.independent` tests wrap every value in a `[key value]` tuple; they are
//! split into keys here, so each key is checked on its own. A value whose elements are
//! micro-ops (`[[:r :x nil] [:w :x 1]]`) is a transaction, never a tuple, whatever its length;
//! `:read` and `:write` ops carrying micro-ops are transactions too. Times and indexes are not
//! needed: the line order is the order of events.

use super::builder::{self, RawEvent};
use super::edn_ops::{is_micro_op, read_ops, txn_shaped};
use super::ImportError;
use crate::history::History;
use serde_json::Value;

/// Reads a Jepsen `history.edn`; see the module doc.
pub(crate) fn import(path: &str, text: &str) -> Result<History, ImportError> {
    let mut ops = read_ops(path, text)?;
    if is_independent(&ops) {
        split_tuples(&mut ops);
    }
    txn_shaped(&mut ops);
    Ok(builder::build(ops))
}

/// Whether every client op is a `jepsen.independent` `[key value]` tuple: no op names a key,
/// every client event's value (a read's invocation included) is a pair whose first element is
/// no micro-op (a two-micro-op transaction is a pair too), and not every op is a `cas` (whose
/// plain value is a pair too).
pub(crate) fn is_independent(ops: &[RawEvent]) -> bool {
    let client = || ops.iter().filter(|e| e.process.is_some());
    let tuple = |v: &Value| matches!(v, Value::Array(a) if a.len() == 2 && !is_micro_op(&a[0]));
    client().next().is_some()
        && client().all(|e| e.key.is_none() && tuple(&e.value))
        && client().any(|e| e.f != "cas")
}

/// Moves each client op's tuple key into its `key` and its inner value into `value`.
pub(crate) fn split_tuples(ops: &mut [RawEvent]) {
    for e in ops.iter_mut().filter(|e| e.process.is_some()) {
        if let Value::Array(pair) = std::mem::take(&mut e.value) {
            let mut pair = pair.into_iter();
            let key = pair.next().unwrap_or(Value::Null);
            e.key = Some(match key {
                Value::String(s) => s,
                other => other.to_string(),
            });
            e.value = pair.next().unwrap_or(Value::Null);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn independent_tuples_become_keys() {
        let text = "{:process 0, :type :invoke, :f :read, :value [1 nil], :time 5, :index 0}\n\
                    {:process 0, :type :ok, :f :read, :value [1 3], :time 9, :index 1}\n\
                    {:process :nemesis, :type :info, :f :start, :value nil}\n\
                    {:process 1, :type :invoke, :f :cas, :value [:k [1 2]]}\n";
        let h = import("h.edn", text).unwrap();
        let keys: Vec<_> = h.events.iter().map(|e| e.key.clone()).collect();
        assert_eq!(
            keys,
            [Some("1".into()), Some("1".into()), None, Some("k".into())]
        );
        assert_eq!(h.events[1].value, json!(3));
        assert_eq!(h.events[3].value, json!([1, 2]));
        assert_eq!(h.lines, [1, 2, 3, 4]);
    }

    #[test]
    fn plain_cas_pairs_stay_values() {
        let text = "{:process 0, :type :invoke, :f :cas, :value [1 2]}\n";
        let h = import("h.edn", text).unwrap();
        assert_eq!(
            (h.events[0].key.clone(), h.events[0].value.clone()),
            (None, json!([1, 2]))
        );
    }

    #[test]
    fn a_bad_field_names_file_line_and_field() {
        let text = "{:process 0, :type :invoke, :f :read, :value nil}\n{:process -1, :type :ok, :f :read}\n";
        let err = import("h.edn", text).unwrap_err();
        assert!(
            err.to_string().starts_with("h.edn:2: field `:process`"),
            "{err}"
        );
        let err = import("h.edn", "{:process 0 :type}").unwrap_err();
        assert!(err.to_string().starts_with("h.edn:1:"), "{err}");
    }
}
