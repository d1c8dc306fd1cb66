//! The fast line scanner: reads the common shape of a history line (an object of plain strings,
//! integers, `null` and arrays of integers) straight from bytes, without building JSON values.
//!
//! It is a filter, not a parser of record: whatever it is not certain to read exactly as
//! [`History::parse`](crate::History::parse) would (escapes, non-ASCII bytes, floats, nested
//! objects, a repeated field, a missing one, a nemesis process) makes it return `None`, and the
//! line goes to the full reader, which also names what is wrong. Scanning needs nothing but the
//! line, so lines are scanned in parallel.

use crate::history::EventType;
use std::hash::Hasher;
use std::ops::Range;

/// A value as the scanner reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Val {
    /// `null`.
    Null,
    /// An integer that fits `i64`.
    Int(i64),
    /// An array of such integers (possibly empty).
    Ints(Vec<i64>),
}

impl Val {
    /// The same value as JSON.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        match self {
            Val::Null => serde_json::Value::Null,
            Val::Int(v) => serde_json::Value::from(*v),
            Val::Ints(items) => serde_json::Value::from(items.clone()),
        }
    }
}

/// A client event read by the scanner; `f` and `key` are byte ranges of the scanned line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Fast {
    pub kind: EventType,
    pub process: u64,
    pub f: Range<u32>,
    /// [`f_code`] of `f`.
    pub f_code: u8,
    pub key: Option<Range<u32>>,
    /// [`key_hash`] of the key (0 without one), computed here since scanning runs in parallel.
    pub key_hash: u64,
    pub value: Val,
    pub time: u64,
    /// The `slot` field, when it holds one.
    pub slot: Option<u16>,
    /// Which fields beyond the six every event has the line holds (see [`Shape`]).
    pub shape: Shape,
}

/// Which fields a scanned line holds beyond `type`, `process`, `f`, `key`, `value` and `time`,
/// so that the streaming check knows which events it may leave out of its reduced history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Shape {
    /// None: the event is rebuilt from what the scanner read.
    Bare,
    /// Only `index`, `wall`, `node` or `slot`: nothing the redirect-aware analysis reads of an
    /// ordinary op but its slot.
    Plain,
    /// `error`, `redirects`, or a field the scanner does not know (`batch`, ...).
    Other,
}

/// The `f`s named by a code (their index here), so that the pairing and the models compare
/// fewer bytes; any other `f` is [`OTHER_F`].
pub(crate) const KNOWN_F: [&str; 4] = ["read", "write", "cas", "append"];
/// The code of an `f` not in [`KNOWN_F`].
pub(crate) const OTHER_F: u8 = u8::MAX;
/// Codes of [`KNOWN_F`].
pub(crate) const F_READ: u8 = 0;
/// See [`F_READ`].
pub(crate) const F_WRITE: u8 = 1;
/// See [`F_READ`].
pub(crate) const F_APPEND: u8 = 3;

/// The code of `f`.
pub(crate) fn f_code(f: &[u8]) -> u8 {
    let w = word_in(f, 0..f.len());
    match KNOWN_F_WORDS.iter().position(|&c| c == w) {
        Some(i) if w != LONG => i as u8,
        _ => OTHER_F,
    }
}

/// [`word`] of each of [`KNOWN_F`].
const KNOWN_F_WORDS: [u64; KNOWN_F.len()] = [
    word(KNOWN_F[0].as_bytes()),
    word(KNOWN_F[1].as_bytes()),
    word(KNOWN_F[2].as_bytes()),
    word(KNOWN_F[3].as_bytes()),
];

/// The hash by which the pairing interns keys.
pub(crate) fn key_hash(key: &[u8]) -> u64 {
    let mut h = crate::hash::FxHasher::default();
    h.write(key);
    h.finish()
}

/// A string of at most 7 bytes as one integer (its bytes, and its length in the top byte), so
/// that short names compare as integers rather than by `memcmp`; [`LONG`] for longer strings.
const fn word(s: &[u8]) -> u64 {
    if s.len() > 7 {
        return LONG;
    }
    let mut w = (s.len() as u64) << 56;
    let mut i = 0;
    while i < s.len() {
        w |= (s[i] as u64) << (8 * i);
        i += 1;
    }
    w
}

/// [`word`] of every string longer than 7 bytes (no shorter one has 0xff as its length byte).
const LONG: u64 = u64::MAX;

/// [`word`] of `b[r]`, loading 8 bytes at once where `b` has them.
fn word_in(b: &[u8], r: Range<usize>) -> u64 {
    let len = r.len();
    if len > 7 {
        return LONG;
    }
    let w = match b.get(r.start..r.start + 8) {
        Some(eight) => u64::from_le_bytes(eight.try_into().expect("8 bytes")),
        None => {
            let mut eight = [0u8; 8];
            eight[..len].copy_from_slice(&b[r]);
            u64::from_le_bytes(eight)
        }
    };
    let mask = (1u64 << (8 * len)) - 1;
    (len as u64) << 56 | (w & mask)
}

/// Whether two byte strings are equal; short ones compare as [`word`]s, without a `memcmp` call.
pub(crate) fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len()
        && if a.len() <= 7 {
            word_in(a, 0..a.len()) == word_in(b, 0..b.len())
        } else {
            a == b
        }
}

/// The fields the scanner knows, by their bit in the set of fields seen; each may appear once.
fn field(b: &[u8], name: Range<usize>) -> Option<u32> {
    const TYPE: u64 = word(b"type");
    const PROCESS: u64 = word(b"process");
    const F: u64 = word(b"f");
    const KEY: u64 = word(b"key");
    const VALUE: u64 = word(b"value");
    const TIME: u64 = word(b"time");
    const INDEX: u64 = word(b"index");
    const WALL: u64 = word(b"wall");
    const NODE: u64 = word(b"node");
    const SLOT: u64 = word(b"slot");
    const ERROR: u64 = word(b"error");
    Some(match word_in(b, name.clone()) {
        TYPE => 0,
        PROCESS => 1,
        F => 2,
        KEY => 3,
        VALUE => 4,
        TIME => 5,
        INDEX => 6,
        WALL => 7,
        NODE => 8,
        SLOT => 9,
        ERROR => 10,
        // Read only when empty (`[]` or `null`).
        LONG if &b[name] == b"redirects" => REDIRECTS,
        _ => return None,
    })
}

const REDIRECTS: u32 = 11;
/// type, process, f, value, time.
const REQUIRED: u32 = 0b11_0111;

/// What a byte means inside a string: 0 an ordinary character, 1 the closing quote, 2 anything
/// the scanner leaves to the full reader (escapes, control characters, non-ASCII bytes).
static STRING_BYTES: [u8; 256] = {
    let mut class = [0u8; 256];
    let mut c = 0;
    while c < 256 {
        class[c] = if c == b'"' as usize {
            1
        } else if c == b'\\' as usize || c < 0x20 || c >= 0x80 {
            2
        } else {
            0
        };
        c += 1;
    }
    class
};

/// The bytes of `x` (eight string bytes) that are not ordinary in a string (see
/// [`STRING_BYTES`]), as a mask whose lowest set bit lies in the first such byte (bits above it
/// may be set spuriously, as in the usual "has a zero byte" test).
fn special_bytes(x: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let zero_in = |v: u64| v.wrapping_sub(ONES) & !v & HIGH;
    let quote = zero_in(x ^ (ONES * u64::from(b'"')));
    let backslash = zero_in(x ^ (ONES * u64::from(b'\\')));
    let control = x.wrapping_sub(ONES * 0x20) & !x & HIGH;
    quote | backslash | control | (x & HIGH)
}

/// The scanner's position in the bytes from a line's start to the end of its block.
struct Cursor<'a> {
    b: &'a [u8],
    i: usize,
}

/// A scalar or integer array, as far as the scanner reads values.
enum Token {
    Str(Range<usize>),
    Int(i64),
    Null,
    Bool,
    Ints(Vec<i64>),
}

impl Cursor<'_> {
    /// Skips JSON whitespace but the newline, which ends the line.
    fn ws(&mut self) {
        while let Some(&c) = self.b.get(self.i) {
            if c > b' ' || !matches!(c, b' ' | b'\t' | b'\r') {
                break;
            }
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        if self.b.get(self.i) != Some(&c) {
            self.ws();
            if self.b.get(self.i) != Some(&c) {
                return None;
            }
        }
        self.i += 1;
        Some(())
    }

    fn peek(&mut self) -> Option<u8> {
        match self.b.get(self.i) {
            Some(&c) if c > b' ' => Some(c),
            _ => {
                self.ws();
                self.b.get(self.i).copied()
            }
        }
    }

    /// A string of printable ASCII without escapes; the range excludes the quotes.
    fn string(&mut self) -> Option<Range<usize>> {
        self.eat(b'"')?;
        let start = self.i;
        let mut k = start;
        // Eight bytes at a time while there are eight, to the first that is not ordinary.
        while let Some(eight) = self.b.get(k..k + 8) {
            let special = special_bytes(u64::from_le_bytes(eight.try_into().expect("8 bytes")));
            if special != 0 {
                k += special.trailing_zeros() as usize / 8;
                break;
            }
            k += 8;
        }
        while let Some(&c) = self.b.get(k) {
            match STRING_BYTES[c as usize] {
                0 => k += 1,
                1 => {
                    self.i = k + 1;
                    return Some(start..k);
                }
                _ => return None,
            }
        }
        None
    }

    /// An integer in JSON's syntax that fits `i64` (`-0` and anything with a fraction or an
    /// exponent are left to the full reader).
    fn int(&mut self) -> Option<i64> {
        self.ws();
        let negative = self.b.get(self.i) == Some(&b'-');
        let start = self.i + usize::from(negative);
        let mut end = start;
        let mut magnitude = 0i64;
        while let Some(&c) = self.b.get(end) {
            if !c.is_ascii_digit() || end - start == 18 {
                break;
            }
            magnitude = magnitude * 10 + i64::from(c - b'0');
            end += 1;
        }
        let digits = end - start;
        if digits == 0 || (digits > 1 && self.b[start] == b'0') {
            return None;
        }
        if matches!(self.b.get(end), Some(b'0'..=b'9' | b'.' | b'e' | b'E')) {
            return None;
        }
        if negative && magnitude == 0 {
            return None;
        }
        self.i = end;
        Some(if negative { -magnitude } else { magnitude })
    }

    fn literal(&mut self, word: &[u8]) -> Option<()> {
        self.ws();
        self.b[self.i..]
            .starts_with(word)
            .then(|| self.i += word.len())
    }

    fn token(&mut self) -> Option<Token> {
        match self.peek()? {
            b'"' => self.string().map(Token::Str),
            b'n' => self.literal(b"null").map(|_| Token::Null),
            b't' => self.literal(b"true").map(|_| Token::Bool),
            b'f' => self.literal(b"false").map(|_| Token::Bool),
            b'[' => {
                self.i += 1;
                let mut items = Vec::new();
                if self.eat(b']').is_some() {
                    return Some(Token::Ints(items));
                }
                loop {
                    items.push(self.int()?);
                    if self.eat(b',').is_none() {
                        self.eat(b']')?;
                        return Some(Token::Ints(items));
                    }
                }
            }
            _ => self.int().map(Token::Int),
        }
    }
}

impl Shape {
    /// The shape of a line holding the field of [`field`]'s bit `field` (`None`: unknown).
    fn of(field: Option<u32>) -> Shape {
        match field {
            Some(0..=5) => Shape::Bare,
            Some(6..=9) => Shape::Plain,
            _ => Shape::Other,
        }
    }
}

/// Scans the line that starts `rest` (which runs on to the end of its block) and returns what it
/// read and the line's length (to its newline or the end of `rest`); `None` sends the line to
/// the full reader. Strings must be printable ASCII, and only JSON's whitespace is skipped (the
/// full reader's `str::trim` also strips \x0B and \x0C), so that what the scanner takes reads
/// alike both ways.
pub(crate) fn scan_line(rest: &[u8]) -> Option<(Fast, usize)> {
    let b = rest;
    let mut c = Cursor { b, i: 0 };
    let mut seen = 0u32;
    let (mut kind, mut process, mut f, mut key, mut value, mut time) =
        (None, 0u64, 0..0, None, Val::Null, 0u64);
    let (mut slot, mut shape) = (None, Shape::Bare);
    c.eat(b'{')?;
    if c.eat(b'}').is_none() {
        loop {
            let name = c.string()?;
            c.eat(b':')?;
            let field = field(b, name);
            let token = c.token()?;
            if let Some(field) = field {
                if seen & (1 << field) != 0 {
                    return None;
                }
                seen |= 1 << field;
            }
            shape = shape.max(Shape::of(field));
            match (field, token) {
                (Some(0), Token::Str(r)) => {
                    const INVOKE: u64 = word(b"invoke");
                    const OK: u64 = word(b"ok");
                    const FAIL: u64 = word(b"fail");
                    const INFO: u64 = word(b"info");
                    kind = Some(match word_in(b, r) {
                        INVOKE => EventType::Invoke,
                        OK => EventType::Ok,
                        FAIL => EventType::Fail,
                        INFO => EventType::Info,
                        _ => return None,
                    })
                }
                (Some(1), Token::Int(p)) if p >= 0 => process = p as u64,
                (Some(2), Token::Str(r)) => f = r,
                (Some(3), Token::Str(r)) => key = Some(r),
                (Some(3), Token::Null) => {}
                (Some(4), Token::Null) => value = Val::Null,
                (Some(4), Token::Int(v)) => value = Val::Int(v),
                (Some(4), Token::Ints(v)) => value = Val::Ints(v),
                (Some(5), Token::Int(t)) if t >= 0 => time = t as u64,
                (Some(6), Token::Int(i)) if i >= 0 => {}
                (Some(9), Token::Int(s)) if (0..16384).contains(&s) => slot = Some(s as u16),
                (Some(7 | 8 | 10), Token::Str(_)) => {}
                (Some(6..=10), Token::Null) => {}
                (Some(REDIRECTS), Token::Null) => {}
                (Some(REDIRECTS), Token::Ints(v)) if v.is_empty() => {}
                (None, Token::Str(_) | Token::Int(_) | Token::Null | Token::Bool) => {}
                _ => return None,
            }
            if c.eat(b',').is_none() {
                c.eat(b'}')?;
                break;
            }
        }
    }
    c.ws();
    if !matches!(b.get(c.i), None | Some(b'\n')) || seen & REQUIRED != REQUIRED {
        return None;
    }
    let f_code = word_in(b, f.clone());
    let fast = Fast {
        kind: kind?,
        process,
        f_code: KNOWN_F_WORDS
            .iter()
            .position(|&w| w == f_code && w != LONG)
            .map_or(OTHER_F, |i| i as u8),
        f: f.start as u32..f.end as u32,
        key_hash: key.clone().map_or(0, |k| key_hash(&b[k])),
        key: key.map(|k| k.start as u32..k.end as u32),
        value,
        time,
        slot,
        shape,
    };
    Some((fast, c.i))
}

/// Scans one whole line (without its newline); see [`scan_line`].
#[cfg(test)]
pub(crate) fn scan(line: &[u8]) -> Option<Fast> {
    scan_line(line).and_then(|(fast, len)| (len == line.len()).then_some(fast))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{History, Process};

    /// Scans `line` and, when the scanner takes it, checks that it agrees with the full reader.
    fn agrees(line: &str) -> Option<Fast> {
        let fast = scan(line.as_bytes())?;
        let history = History::parse(line.as_bytes(), "h").expect("the full reader takes it");
        let e = &history.events[0];
        let text = |r: &Range<u32>| &line[r.start as usize..r.end as usize];
        assert_eq!(e.kind, fast.kind, "{line}");
        assert_eq!(e.process, Process::Client(fast.process), "{line}");
        assert_eq!(e.f, text(&fast.f), "{line}");
        assert_eq!(e.key.as_deref(), fast.key.as_ref().map(text), "{line}");
        assert_eq!(e.value, fast.value.to_json(), "{line}");
        assert_eq!(e.time, fast.time, "{line}");
        Some(fast)
    }

    #[test]
    fn common_lines_are_scanned_as_the_full_reader_reads_them() {
        for line in [
            r#"{"type":"invoke","process":3,"f":"write","key":"k1","value":17,"time":100}"#,
            r#"{"type":"ok","process":3,"f":"read","key":"k1","value":null,"time":120}"#,
            r#" { "type" : "info" , "process":0,"f":"cas","value":[-1,2],"time":0 } "#,
            r#"{"type":"fail","process":9,"f":"read","key":null,"value":[],"time":5,"index":7}"#,
            r#"{"time":5,"value":[1, 2 ,3],"f":"read","process":1,"type":"ok","slot":12}"#,
            r#"{"type":"ok","process":1,"f":"x","value":1,"time":5,"redirects":[],"extra":true}"#,
            r#"{"type":"ok","process":1,"f":"x","value":0,"time":5,"wall":"t","node":null}"#,
        ] {
            assert!(agrees(line).is_some(), "{line}");
        }
    }

    #[test]
    fn special_bytes_finds_the_first_byte_a_string_cannot_hold_plainly() {
        // Every byte value at every position, behind ordinary bytes and before other values.
        for pos in 0..8 {
            for v in 0..=255u8 {
                for after in [b'a', b'"', 0, 0xff, b'\\'] {
                    let mut eight = [b'a'; 8];
                    eight[pos] = v;
                    if pos < 7 {
                        eight[pos + 1] = after;
                    }
                    let first = eight.iter().position(|&c| STRING_BYTES[c as usize] != 0);
                    let special = special_bytes(u64::from_le_bytes(eight));
                    let found = (special != 0).then(|| special.trailing_zeros() as usize / 8);
                    assert_eq!(found, first, "{eight:?}");
                }
            }
        }
    }

    #[test]
    fn f_codes_name_exactly_the_known_fs() {
        for (i, f) in KNOWN_F.iter().enumerate() {
            assert_eq!(f_code(f.as_bytes()), i as u8);
        }
        for f in [
            "",
            "rea",
            "reads",
            "read\0",
            "\0read",
            "appendix",
            "Read",
            "compare-and-set",
        ] {
            assert_eq!(f_code(f.as_bytes()), OTHER_F, "{f:?}");
        }
        let field_of = |name: &[u8]| field(name, 0..name.len());
        assert_eq!(field_of(b"redirects"), Some(REDIRECTS));
        assert_eq!(field_of(b"type"), Some(0));
        let none = (field_of(b"redirect"), field_of(b"type\0"), field_of(b""));
        assert_eq!(none, (None, None, None));
        assert!(same(b"k1", b"k1") && !same(b"k1", b"k10") && !same(b"k1\0", b"k1\x01"));
        assert!(same(b"a-long-key-1", b"a-long-key-1") && !same(b"a-long-key-1", b"a-long-key-2"));
    }

    #[test]
    fn anything_unusual_goes_to_the_full_reader() {
        for line in [
            r#"{"type":"header","format":"slotcheck-history","version":1}"#,
            r#"{"type":"info","process":"nemesis","f":"kill","value":{},"time":1}"#,
            r#"{"type":"ok","process":1,"f":"read","key":"k\"1","value":1,"time":5}"#,
            r#"{"type":"ok","process":1,"f":"read","key":"é","value":1,"time":5}"#,
            r#"{"type":"ok","process":1,"f":"read","value":1.5,"time":5}"#,
            r#"{"type":"ok","process":1,"f":"read","value":1e3,"time":5}"#,
            r#"{"type":"ok","process":1,"f":"read","value":-0,"time":5}"#,
            r#"{"type":"ok","process":1,"f":"read","value":01,"time":5}"#,
            r#"{"type":"ok","process":1,"f":"read","value":[1,null],"time":5}"#,
            r#"{"type":"ok","process":1,"f":"read","value":"s","time":5}"#,
            r#"{"type":"ok","process":1,"f":"read","value":1,"time":5,"time":6}"#,
            r#"{"type":"ok","process":1,"f":"read","value":1}"#,
            r#"{"type":"ok","process":1,"f":"read","time":1}"#,
            r#"{"type":"ok","process":1,"f":"read","value":1234567890123456789,"time":1}"#,
            r#"{"type":"ok","process":-1,"f":"read","value":1,"time":5}"#,
            r#"{"type":"ok","process":1,"f":"read","value":1,"time":5,"slot":16384}"#,
            r#"{"type":"ok","process":1,"f":"read","value":1,"time":5,"redirects":[{"kind":"ask"}]}"#,
            r#"{"type":"ok","process":1,"f":"read","value":1,"time":5,"x":{}}"#,
            r#"{"type":"ok","process":1,"f":"read","value":1,"time":5} x"#,
            r#"{"type":"ok","process":1,"f":"read","value":1,"time":5,}"#,
            r#"{"type":"ok","process":1,"f":"read","value":1,"time":99999999999999999999}"#,
            "{\"type\":\"ok\",\"process\":1,\"f\":\"read\",\"value\":1,\"time\":5}\x0c",
            r#"{"type":"ok""#,
            "",
        ] {
            assert_eq!(scan(line.as_bytes()), None, "{line}");
        }
    }
}
