//! Knossos's test histories: one EDN vector (or list) of op maps, comments allowed. Its
//! `cas-register` histories start at 0 and its `multi-register` ones at 0 for every register.

use super::edn_ops::{read_ops, txn_shaped};
use super::{builder, ImportError};
use crate::history::History;

/// Reads a Knossos EDN history.
pub(crate) fn import(path: &str, text: &str) -> Result<History, ImportError> {
    let mut ops = read_ops(path, text)?;
    txn_shaped(&mut ops);
    Ok(builder::build(ops))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{EventType, Process};

    #[test]
    fn reads_a_vector_with_comments() {
        let text = "; a comment\n[{:type :invoke, :f :write, :value 0, :process 0}\n ; between\n \
                    {:type :ok, :f :write, :value 0, :process 0}\n \
                    {:process :nemesis, :type :info, :f :kill, :value nil}]\n";
        let h = import("k.edn", text).unwrap();
        assert_eq!(h.events.len(), 3);
        assert_eq!(h.lines, [2, 4, 5]);
        assert_eq!(h.events[1].kind, EventType::Ok);
        assert_eq!(h.events[2].process, Process::Nemesis);
    }
}
