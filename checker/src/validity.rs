//! The three-valued verdict every check ends in (Jepsen's `valid?`).

use serde::{Serialize, Serializer};
use std::fmt;

/// A verdict: valid, invalid, or unknown when a budget ran out before the search decided.
///
/// Ordered so that combining verdicts is `max`: `Invalid` wins over `Unknown` wins over `Valid`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Validity {
    /// The checked property holds.
    Valid,
    /// The search could not decide within its budget.
    Unknown,
    /// The checked property is violated; an explanation says how.
    Invalid,
}

/// Each verdict, in declaration order, with its name and process exit code: the one place
/// either is spelled.
const TABLE: [(Validity, &str, u8); 3] = [
    (Validity::Valid, "valid", 0),
    (Validity::Unknown, "unknown", 2),
    (Validity::Invalid, "invalid", 1),
];

impl Validity {
    /// This verdict's row of [`TABLE`].
    fn row(self) -> (Validity, &'static str, u8) {
        let row = TABLE[self as usize];
        debug_assert_eq!(row.0, self);
        row
    }

    /// The verdict as one lowercase word (`valid`, `invalid`, `unknown`): its one spelling in
    /// tables, CSS classes, JSON and `detection.json`.
    pub fn name(self) -> &'static str {
        self.row().1
    }

    /// The process exit code for this verdict: 0 valid, 1 invalid, 2 unknown.
    pub fn exit_code(self) -> u8 {
        self.row().2
    }

    /// The verdict whose exit code is `code`, if any (a tally of verdicts kept as exit codes).
    pub fn from_exit_code(code: u8) -> Option<Validity> {
        TABLE.iter().find(|row| row.2 == code).map(|row| row.0)
    }

    /// The verdict of a whole made of parts with verdicts `self` and `other`.
    pub fn combine(self, other: Validity) -> Validity {
        self.max(other)
    }
}

/// Serialized Jepsen-style: `true`, `false`, or `"unknown"`.
impl Serialize for Validity {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Validity::Valid => s.serialize_bool(true),
            Validity::Invalid => s.serialize_bool(false),
            Validity::Unknown => s.serialize_str(self.name()),
        }
    }
}

/// The [`name`](Validity::name), with `INVALID` in capitals so that a violation stands out in a
/// terminal.
impl fmt::Display for Validity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Validity::Invalid => f.write_str(&self.name().to_ascii_uppercase()),
            _ => f.write_str(self.name()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Validity::*;

    #[test]
    fn invalid_wins_over_unknown_wins_over_valid() {
        assert_eq!(Valid.combine(Unknown), Unknown);
        assert_eq!(Unknown.combine(Invalid), Invalid);
        assert_eq!(Invalid.combine(Valid), Invalid);
        assert_eq!([Valid, Invalid, Unknown].map(|v| v.exit_code()), [0, 1, 2]);
        let json = serde_json::to_string(&[Valid, Invalid, Unknown]).unwrap();
        assert_eq!(json, r#"[true,false,"unknown"]"#);
        assert_eq!(
            [Valid, Invalid, Unknown].map(|v| v.to_string()),
            ["valid", "INVALID", "unknown"]
        );
        for v in [Valid, Invalid, Unknown] {
            assert_eq!(super::Validity::from_exit_code(v.exit_code()), Some(v));
        }
        assert_eq!(super::Validity::from_exit_code(3), None);
    }
}
