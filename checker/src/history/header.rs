//! The optional first line of a history: the format, its version and what run produced it.

use super::fields::FieldError;
use super::{FORMAT_NAME, FORMAT_VERSION};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The optional first line: what run produced the history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Header {
    /// Always `slotcheck-history`.
    pub format: String,
    /// Always 1.
    pub version: u64,
    /// Free-form description of the run (workload, server, seed, nodes, start time, ...).
    #[serde(flatten)]
    pub run: Map<String, Value>,
}

impl Header {
    /// A version-1 header carrying the given run description.
    pub fn new(run: Map<String, Value>) -> Self {
        Header {
            format: FORMAT_NAME.to_string(),
            version: FORMAT_VERSION,
            run,
        }
    }

    /// Serializes as the header line (with `"type":"header"` first).
    pub fn to_line(&self) -> String {
        let mut m = Map::new();
        m.insert("type".into(), Value::from("header"));
        m.insert("format".into(), Value::from(self.format.clone()));
        m.insert("version".into(), Value::from(self.version));
        for (k, v) in &self.run {
            m.insert(k.clone(), v.clone());
        }
        Value::Object(m).to_string()
    }
}

/// The header from its line's object (`"type":"header"`), its format and version checked.
pub(super) fn parse_header(mut obj: Map<String, Value>) -> Result<Header, FieldError> {
    obj.remove("type");
    let format = match obj.remove("format") {
        Some(Value::String(s)) if s == FORMAT_NAME => s,
        Some(other) => {
            return Err((
                "format",
                format!(
                    "expected \"{FORMAT_NAME}\", got {}",
                    crate::echo::Echo(other)
                ),
            ))
        }
        None => return Err(("format", "missing".into())),
    };
    let version = match obj.remove("version").as_ref().and_then(Value::as_u64) {
        Some(FORMAT_VERSION) => FORMAT_VERSION,
        Some(v) => return Err(("version", format!("version {v} is not supported (only 1)"))),
        None => return Err(("version", "missing or not an integer".into())),
    };
    Ok(Header {
        format,
        version,
        run: obj,
    })
}
