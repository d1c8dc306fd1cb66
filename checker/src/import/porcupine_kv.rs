//! Porcupine's key-value logs: one op map per line with a `:key`, `:f` one of `get`, `put`,
//! `append` on string values; every key starts as the empty string.

use super::edn_ops::read_ops;
use super::{builder, ImportError};
use crate::history::History;

/// Reads a Porcupine kv log; every op must name its key.
pub(crate) fn import(path: &str, text: &str) -> Result<History, ImportError> {
    let ops = read_ops(path, text)?;
    if let Some(e) = ops.iter().find(|e| e.process.is_some() && e.key.is_none()) {
        return Err(ImportError::Field {
            path: path.to_string(),
            line: e.line,
            field: ":key".into(),
            message: "missing: every op of a kv log names its key".into(),
        });
    }
    Ok(builder::build(ops))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_required() {
        let ok = "{:process 0, :type :invoke, :f :get, :key \"1\", :value nil}\n";
        assert_eq!(
            import("kv", ok).unwrap().events[0].key.as_deref(),
            Some("1")
        );
        let err = import("kv", "{:process 0, :type :invoke, :f :get, :value nil}").unwrap_err();
        assert!(err.to_string().starts_with("kv:1: field `:key`"), "{err}");
    }
}
