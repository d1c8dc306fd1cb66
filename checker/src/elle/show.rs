//! Small helpers shared by the anomaly families: naming ops and keys, showing lists, and
//! assembling an [`Anomaly`].

use super::txn::{Key, Keys, Txn};
use crate::anomaly::{Anomaly, AnomalyEvent};
use serde_json::Value;
use std::fmt::Write;

/// How many leading and trailing elements of a long list the prose shows.
const LIST_SHOWN_EACH_SIDE: usize = 6;

/// A list as prose: `[1 2 3]`, or `[1 2 … (40 more) … 99]` when long (the data has it all).
pub(crate) fn list(items: &[i64]) -> String {
    let mut s = String::from("[");
    let n = items.len();
    for (i, e) in items.iter().enumerate() {
        if n > 2 * LIST_SHOWN_EACH_SIDE && i == LIST_SHOWN_EACH_SIDE {
            let _ = write!(s, " … ({} more) …", n - 2 * LIST_SHOWN_EACH_SIDE);
        }
        if n > 2 * LIST_SHOWN_EACH_SIDE
            && (LIST_SHOWN_EACH_SIDE..n - LIST_SHOWN_EACH_SIDE).contains(&i)
        {
            continue;
        }
        if i > 0 && !s.ends_with(' ') {
            s.push(' ');
        }
        let _ = write!(s, "{e}");
    }
    s.push(']');
    s
}

/// Builds anomalies that name transactions by their place in the history.
pub(crate) struct AnomalyBuilder<'a> {
    /// The analysis' transactions.
    pub txns: &'a [Txn],
    /// Key names.
    pub keys: &'a Keys,
}

impl AnomalyBuilder<'_> {
    /// Transaction `t`.
    pub fn txn(&self, t: u32) -> &Txn {
        &self.txns[t as usize]
    }

    /// The name of key `k`.
    pub fn key(&self, k: Key) -> &str {
        self.keys.name(k)
    }

    /// The history position of transaction `t`.
    pub fn event(&self, t: u32) -> AnomalyEvent {
        let txn = self.txn(t);
        AnomalyEvent {
            event: txn.event,
            line: txn.line,
        }
    }

    /// An anomaly of `class` on one key, naming transactions `txns` in that order.
    pub fn build(
        &self,
        class: &str,
        key: Key,
        txns: &[u32],
        explanation: String,
        data: Value,
    ) -> Anomaly {
        Anomaly {
            class: class.to_string(),
            keys: vec![self.key(key).to_string()],
            events: txns.iter().map(|t| self.event(*t)).collect(),
            explanation,
            data,
            context: None,
            cause: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::list;

    #[test]
    fn long_lists_are_shortened() {
        assert_eq!(list(&[]), "[]");
        assert_eq!(list(&[1, 2, 3]), "[1 2 3]");
        let long: Vec<i64> = (1..=20).collect();
        assert_eq!(list(&long), "[1 2 3 4 5 6 … (8 more) … 15 16 17 18 19 20]");
    }
}
