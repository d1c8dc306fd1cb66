//! A small EDN reader: just what Jepsen, Knossos and Porcupine histories use.
//!
//! Values are read straight into `serde_json::Value` so one checking path serves every format:
//! `nil` → `null`, keywords and symbols → strings without the colon (`:read` → `"read"`),
//! vectors, lists and sets → arrays, maps → objects whose keys are rendered the same way (a
//! non-string key becomes its JSON text). Integers must fit `i64`; floats become JSON numbers.
//! Comments (`;`), commas (whitespace), `#_` discards and tags (`#inst "..."` → the string) are
//! understood; characters (`\a`) and ratios are not needed and are rejected.

use serde_json::{Map, Number, Value};

/// Why EDN text could not be read, with the 1-based line and column where the reader stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line}, column {column}: {}", crate::echo::Message(message))]
pub struct EdnError {
    /// 1-based line.
    pub line: usize,
    /// 1-based column (in bytes).
    pub column: usize,
    /// What was wrong.
    pub message: String,
}

/// How deep collections may nest before the reader refuses (a bound on recursion).
const DEPTH_MAX: usize = 64;

/// Reads EDN values one after another from a text, tracking lines for errors.
pub struct Reader<'a> {
    text: &'a [u8],
    pos: usize,
    line: usize,
    line_start: usize,
}

impl<'a> Reader<'a> {
    /// A reader at the start of `text`.
    pub fn new(text: &'a str) -> Self {
        Reader {
            text: text.as_bytes(),
            pos: 0,
            line: 1,
            line_start: 0,
        }
    }

    /// The 1-based line the reader is on.
    pub fn line(&self) -> usize {
        self.line
    }

    /// The next top-level value with the line it starts on, or `None` at the end of the text.
    pub fn next_value(&mut self) -> Result<Option<(usize, Value)>, EdnError> {
        self.skip_space()?;
        if self.pos >= self.text.len() {
            return Ok(None);
        }
        let line = self.line;
        Ok(Some((line, self.value(0)?)))
    }

    /// Starts reading a collection: skips whitespace and, if the next value is a vector, list or
    /// set, consumes its opening bracket and returns the closing one to expect.
    pub fn open_collection(&mut self) -> Result<Option<u8>, EdnError> {
        self.skip_space()?;
        let close = match (self.peek(), self.text.get(self.pos + 1)) {
            (Some(b'['), _) => (1, b']'),
            (Some(b'('), _) => (1, b')'),
            (Some(b'#'), Some(b'{')) => (2, b'}'),
            _ => return Ok(None),
        };
        self.pos += close.0;
        Ok(Some(close.1))
    }

    /// Inside a collection opened by [`Reader::open_collection`]: the next element with its
    /// line, or `None` after consuming the closing bracket `close`.
    pub fn next_element(&mut self, close: u8) -> Result<Option<(usize, Value)>, EdnError> {
        self.skip_space()?;
        match self.peek() {
            None => Err(self.error(format!("unclosed collection: expected `{}`", close as char))),
            Some(c) if c == close => {
                self.pos += 1;
                Ok(None)
            }
            Some(_) => {
                let line = self.line;
                Ok(Some((line, self.value(1)?)))
            }
        }
    }

    fn error(&self, message: String) -> EdnError {
        EdnError {
            line: self.line,
            column: self.pos - self.line_start + 1,
            message,
        }
    }

    fn peek(&self) -> Option<u8> {
        self.text.get(self.pos).copied()
    }

    fn bump(&mut self) -> Option<u8> {
        let c = self.peek()?;
        self.pos += 1;
        if c == b'\n' {
            self.line += 1;
            self.line_start = self.pos;
        }
        Some(c)
    }

    fn skip_space(&mut self) -> Result<(), EdnError> {
        while let Some(c) = self.peek() {
            match c {
                b' ' | b'\t' | b'\r' | b'\n' | b',' => {
                    self.bump();
                }
                b';' => {
                    while self.peek().is_some_and(|c| c != b'\n') {
                        self.bump();
                    }
                }
                b'#' if self.text.get(self.pos + 1) == Some(&b'_') => {
                    self.pos += 2;
                    self.skip_space()?;
                    self.value(0)?;
                }
                _ => break,
            }
        }
        Ok(())
    }

    fn value(&mut self, depth: usize) -> Result<Value, EdnError> {
        if depth > DEPTH_MAX {
            return Err(self.error(format!("nested deeper than {DEPTH_MAX}")));
        }
        self.skip_space()?;
        let Some(c) = self.peek() else {
            return Err(self.error("expected a value, found the end".into()));
        };
        match c {
            b'[' => self.seq(b']', depth),
            b'(' => self.seq(b')', depth),
            b'{' => self.map(depth),
            b'"' => self.string().map(Value::String),
            b'#' => match self.text.get(self.pos + 1) {
                Some(b'{') => {
                    self.pos += 1;
                    self.seq(b'}', depth)
                }
                Some(c) if c.is_ascii_alphabetic() => {
                    self.pos += 1;
                    self.token();
                    self.value(depth + 1)
                }
                _ => Err(self.error("unsupported `#` form".into())),
            },
            b']' | b')' | b'}' => Err(self.error(format!("unexpected `{}`", c as char))),
            b'\\' => Err(self.error("characters (`\\c`) are not supported".into())),
            _ => self.atom(),
        }
    }

    fn seq(&mut self, close: u8, depth: usize) -> Result<Value, EdnError> {
        self.bump();
        let mut items = Vec::new();
        loop {
            self.skip_space()?;
            match self.peek() {
                None => {
                    return Err(
                        self.error(format!("unclosed collection: expected `{}`", close as char))
                    )
                }
                Some(c) if c == close => {
                    self.bump();
                    return Ok(Value::Array(items));
                }
                Some(_) => items.push(self.value(depth + 1)?),
            }
        }
    }

    fn map(&mut self, depth: usize) -> Result<Value, EdnError> {
        self.bump();
        let mut map = Map::new();
        loop {
            self.skip_space()?;
            match self.peek() {
                None => return Err(self.error("unclosed map: expected `}`".into())),
                Some(b'}') => {
                    self.bump();
                    return Ok(Value::Object(map));
                }
                Some(_) => {
                    let key = match self.value(depth + 1)? {
                        Value::String(s) => s,
                        other => other.to_string(),
                    };
                    self.skip_space()?;
                    if self.peek() == Some(b'}') {
                        return Err(self.error(format!("map key `{key}` has no value")));
                    }
                    let value = self.value(depth + 1)?;
                    map.insert(key, value);
                }
            }
        }
    }

    fn string(&mut self) -> Result<String, EdnError> {
        self.bump();
        let mut bytes = Vec::new();
        loop {
            let Some(c) = self.bump() else {
                return Err(self.error("unterminated string".into()));
            };
            match c {
                b'"' => break,
                b'\\' => {
                    let escaped = match self.bump() {
                        Some(b'n') => b'\n',
                        Some(b't') => b'\t',
                        Some(b'r') => b'\r',
                        Some(c @ (b'"' | b'\\')) => c,
                        other => {
                            return Err(self.error(format!(
                                "unsupported escape `\\{}`",
                                other.map_or('?', char::from)
                            )))
                        }
                    };
                    bytes.push(escaped);
                }
                c => bytes.push(c),
            }
        }
        String::from_utf8(bytes).map_err(|e| self.error(format!("string is not UTF-8: {e}")))
    }

    /// A run of characters up to a delimiter.
    fn token(&mut self) -> &'a str {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if matches!(
                c,
                b' ' | b'\t'
                    | b'\r'
                    | b'\n'
                    | b','
                    | b'['
                    | b']'
                    | b'('
                    | b')'
                    | b'{'
                    | b'}'
                    | b'"'
                    | b';'
            ) {
                break;
            }
            self.pos += 1;
        }
        // Delimiters are ASCII, so the token ends on a character boundary.
        std::str::from_utf8(&self.text[start..self.pos]).unwrap_or("")
    }

    fn atom(&mut self) -> Result<Value, EdnError> {
        let token = self.token();
        if token.is_empty() {
            return Err(self.error("expected a value".into()));
        }
        if let Some(name) = token.strip_prefix(':') {
            return Ok(Value::String(name.to_string()));
        }
        match token {
            "nil" => return Ok(Value::Null),
            "true" => return Ok(Value::Bool(true)),
            "false" => return Ok(Value::Bool(false)),
            _ => {}
        }
        let first = token.as_bytes()[0];
        let numeric = first.is_ascii_digit()
            || (matches!(first, b'-' | b'+')
                && token.as_bytes().get(1).is_some_and(u8::is_ascii_digit));
        if !numeric {
            return Ok(Value::String(token.to_string()));
        }
        let digits = token.strip_suffix('N').unwrap_or(token);
        if let Ok(i) = digits.parse::<i64>() {
            return Ok(Value::from(i));
        }
        let float = token.strip_suffix('M').unwrap_or(token);
        match float.parse::<f64>().ok().and_then(Number::from_f64) {
            Some(n) => Ok(Value::Number(n)),
            None => Err(self.error(format!("`{token}` is not a number this reader supports"))),
        }
    }
}

/// Reads every top-level value of `text`.
pub fn parse_all(text: &str) -> Result<Vec<(usize, Value)>, EdnError> {
    let mut reader = Reader::new(text);
    let mut values = Vec::new();
    while let Some(v) = reader.next_value()? {
        values.push(v);
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn one(text: &str) -> Value {
        let mut all = parse_all(text).unwrap();
        assert_eq!(all.len(), 1, "{text}");
        all.remove(0).1
    }

    #[test]
    fn reads_what_histories_use() {
        assert_eq!(
            one(r#"{:process 0, :type :invoke, :f :cas, :value [1 -2], :ok true, :x nil}"#),
            json!({"process": 0, "type": "invoke", "f": "cas", "value": [1, -2], "ok": true, "x": null})
        );
        assert_eq!(
            one("([:read :x nil] [:write :y 1]) ; comment"),
            json!([["read", "x", null], ["write", "y", 1]])
        );
        assert_eq!(one(r#""a \"q\"\n""#), json!("a \"q\"\n"));
        assert_eq!(one("#{1 2}"), json!([1, 2]));
        assert_eq!(one("#_ 5 jepsen.util/x"), json!("jepsen.util/x"));
        assert_eq!(one("{1 :a}"), json!({"1": "a"}));
        assert_eq!(one("1.5"), json!(1.5));
        assert_eq!(one("#inst \"2020\""), json!("2020"));
    }

    #[test]
    fn errors_name_line_and_column() {
        let err = parse_all("{:a 1}\n{:b [1 2}").unwrap_err();
        assert_eq!((err.line, err.column), (2, 9), "{err}");
        let err = parse_all("\n\n  \"open").unwrap_err();
        assert_eq!(err.line, 3, "{err}");
        assert!(parse_all("{:a}").unwrap_err().message.contains("no value"));
        assert!(parse_all("\\c").is_err());
    }

    #[test]
    fn streams_a_collection() {
        let mut r = Reader::new("; head\n[{:a 1}\n {:b 2}]");
        let close = r.open_collection().unwrap().unwrap();
        assert_eq!(r.next_element(close).unwrap(), Some((2, json!({"a": 1}))));
        assert_eq!(r.next_element(close).unwrap(), Some((3, json!({"b": 2}))));
        assert_eq!(r.next_element(close).unwrap(), None);
        assert_eq!(r.next_value().unwrap(), None);
    }
}
