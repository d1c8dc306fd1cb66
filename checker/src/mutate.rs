//! Mutations of a history's text, for fuzz-style tests of the readers: what a killed writer, a
//! bad disk, a hand edit or a hostile file does to a history. Pure and deterministic: the same
//! mutation of the same text gives the same bytes.
//!
//! ```
//! use checker::mutate::{mutate, Mutation};
//!
//! let text = "{\"a\":1}\n{\"b\":2}\n";
//! assert_eq!(mutate(text, &Mutation::Truncate(3)), b"{\"a");
//! assert_eq!(mutate(text, &Mutation::DropLine(0)), b"{\"b\":2}\n");
//! ```

use serde_json::Value;

/// Numbers no history field holds: past `u64` and `i64`, floats, exponents.
pub const HUGE_NUMBERS: [&str; 7] = [
    "18446744073709551616",
    "-9223372036854775809",
    "99999999999999999999999999999999",
    "1e400",
    "1.5",
    "-0",
    "-1",
];

/// Values of the wrong type for most fields.
pub const WRONG_VALUES: [&str; 10] = [
    "null",
    "true",
    "1.5",
    "-1",
    "\"s\"",
    "[]",
    "{}",
    "[1,\"a\",null]",
    "[[\"r\",\"k\",[1]]]",
    "18446744073709551616",
];

/// The fields of an event line, and a few that only some lines have.
pub const FIELDS: [&str; 12] = [
    "type",
    "process",
    "f",
    "key",
    "value",
    "time",
    "index",
    "slot",
    "redirects",
    "gave_up",
    "error",
    "node",
];

/// One change to a history's text; indexes wrap around the text's length or line count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mutation {
    /// Keep the first N bytes (a killed writer).
    Truncate(usize),
    /// XOR the byte at N with the mask (a bad disk).
    Flip(usize, u8),
    /// Write line N twice.
    DuplicateLine(usize),
    /// Leave line N out.
    DropLine(usize),
    /// Swap lines N and N+1.
    SwapLines(usize),
    /// Replace the Nth number in the text with `HUGE_NUMBERS[M]`.
    HugeNumber(usize, usize),
    /// Set field `FIELDS[F]` of line N to `WRONG_VALUES[V]` (adding it if absent).
    WrongType {
        /// The line.
        line: usize,
        /// Index into [`FIELDS`].
        field: usize,
        /// Index into [`WRONG_VALUES`].
        value: usize,
    },
}

/// `text` with `m` applied.
pub fn mutate(text: &str, m: &Mutation) -> Vec<u8> {
    let bytes = text.as_bytes();
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let line_at = |n: usize| n % lines.len().max(1);
    let join = |lines: Vec<&str>| lines.concat().into_bytes();
    match *m {
        Mutation::Truncate(n) => bytes[..n % (bytes.len() + 1)].to_vec(),
        Mutation::Flip(n, mask) => {
            let mut out = bytes.to_vec();
            if !out.is_empty() {
                let i = n % out.len();
                out[i] ^= mask.max(1);
            }
            out
        }
        Mutation::DuplicateLine(n) if !lines.is_empty() => {
            let mut out = lines.clone();
            let i = line_at(n);
            out.insert(i, lines[i]);
            join(out)
        }
        Mutation::DropLine(n) if !lines.is_empty() => {
            let mut out = lines.clone();
            out.remove(line_at(n));
            join(out)
        }
        Mutation::SwapLines(n) if lines.len() > 1 => {
            let mut out = lines.clone();
            let i = n % (lines.len() - 1);
            out.swap(i, i + 1);
            join(out)
        }
        Mutation::HugeNumber(n, m) => {
            let spans = numbers(bytes);
            if spans.is_empty() {
                return bytes.to_vec();
            }
            let (start, end) = spans[n % spans.len()];
            let huge = HUGE_NUMBERS[m % HUGE_NUMBERS.len()];
            [&bytes[..start], huge.as_bytes(), &bytes[end..]].concat()
        }
        Mutation::WrongType { line, field, value } if !lines.is_empty() => {
            let i = line_at(line);
            let Ok(Value::Object(mut obj)) = serde_json::from_str::<Value>(lines[i]) else {
                return bytes.to_vec();
            };
            let wrong = WRONG_VALUES[value % WRONG_VALUES.len()];
            let wrong: Value = serde_json::from_str(wrong).unwrap_or(Value::Null);
            obj.insert(FIELDS[field % FIELDS.len()].to_string(), wrong);
            let mut edited = Value::Object(obj).to_string();
            if lines[i].ends_with('\n') {
                edited.push('\n');
            }
            let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
            out[i] = edited;
            out.concat().into_bytes()
        }
        _ => bytes.to_vec(),
    }
}

/// The byte spans of the unquoted integers in `bytes` (digits not inside a JSON string).
fn numbers(bytes: &[u8]) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let (mut in_string, mut escaped) = (false, false);
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            i += 1;
            continue;
        }
        if c == b'"' {
            in_string = true;
            i += 1;
        } else if c.is_ascii_digit() || c == b'-' {
            let start = i;
            i += 1;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
            spans.push((start, i));
        } else {
            i += 1;
        }
    }
    spans
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_mutation_changes_what_it_names() {
        let text = "{\"k\":\"a1\",\"v\":12}\n{\"v\":-3}\n";
        assert_eq!(numbers(text.as_bytes()).len(), 2);
        let huge = mutate(text, &Mutation::HugeNumber(1, 3));
        assert_eq!(huge, b"{\"k\":\"a1\",\"v\":12}\n{\"v\":1e400}\n");
        let wrong = Mutation::WrongType {
            line: 1,
            field: 1,
            value: 4,
        };
        assert_eq!(
            mutate(text, &wrong),
            b"{\"k\":\"a1\",\"v\":12}\n{\"process\":\"s\",\"v\":-3}\n"
        );
        assert_eq!(
            mutate(text, &Mutation::SwapLines(7)),
            b"{\"v\":-3}\n{\"k\":\"a1\",\"v\":12}\n"
        );
        assert_eq!(
            mutate(text, &Mutation::Truncate(text.len())),
            text.as_bytes()
        );
        assert_eq!(mutate(text, &Mutation::Truncate(text.len() + 3)), b"{\"");
        assert_eq!(mutate("", &Mutation::DropLine(3)), b"");
    }
}
