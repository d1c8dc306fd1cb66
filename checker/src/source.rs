//! A history's bytes, opened once: a regular file, a pipe, a FIFO, a process substitution
//! (`<(cat FILE)`) or standard input (`-`).
//!
//! A pipe can be read only once, so nothing here opens a path twice: the format is detected by
//! peeking at the first bytes through the one handle ([`Source::first_line`],
//! [`Source::peek`]), and the reader handed on ([`Source::into_reader`]) yields the peeked bytes
//! again before the rest.
//!
//! ```
//! use checker::Source;
//!
//! let text = "; a comment\n[{:process 0}]\n";
//! let mut source = Source::from_reader("piped.edn", text.as_bytes());
//! assert_eq!(source.first_line().unwrap(), "[{:process 0}]");
//! let mut all = String::new();
//! std::io::Read::read_to_string(&mut source.into_reader(), &mut all).unwrap();
//! assert_eq!(all, text);
//! ```

use std::io::{BufRead, BufReader, Cursor, Read};
use std::path::Path;

/// The name a `-` argument (standard input) goes by in messages.
pub const STDIN_NAME: &str = "<stdin>";
/// Bytes of the first line peeked to detect a format and read a header; a longer first line is
/// cut (its start is enough to tell the format).
pub const FIRST_LINE_BYTES_MAX: usize = 16 << 20;

/// A history's bytes read through one handle; see the module doc.
pub struct Source {
    /// The name used in messages: the path, or [`STDIN_NAME`].
    name: String,
    /// The length of a regular file; `None` for a pipe, FIFO, terminal or standard input.
    regular_len: Option<u64>,
    /// Bytes already read from `rest`, handed out first.
    head: Vec<u8>,
    /// The bytes after `head`.
    rest: BufReader<Box<dyn Read + Send>>,
    /// Whether `rest` has reached its end.
    eof: bool,
}

impl Source {
    /// Opens `path` once; `-` is standard input.
    pub fn open(path: &Path) -> std::io::Result<Source> {
        if path.as_os_str() == "-" {
            return Ok(Source::new(
                STDIN_NAME.to_string(),
                None,
                Box::new(std::io::stdin()),
            ));
        }
        let file = std::fs::File::open(path)?;
        let meta = file.metadata()?;
        let regular_len = meta.is_file().then_some(meta.len());
        Ok(Source::new(
            path.display().to_string(),
            regular_len,
            Box::new(file),
        ))
    }

    /// A source reading `reader`, named `name` in messages (treated as a pipe: length unknown).
    pub fn from_reader(name: &str, reader: impl Read + Send + 'static) -> Source {
        Source::new(name.to_string(), None, Box::new(reader))
    }

    fn new(name: String, regular_len: Option<u64>, inner: Box<dyn Read + Send>) -> Source {
        Source {
            name,
            regular_len,
            head: Vec::new(),
            rest: BufReader::with_capacity(1 << 16, inner),
            eof: false,
        }
    }

    /// The name used in messages: the path as given, or [`STDIN_NAME`].
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The length of a regular file; `None` for anything that can be read only once.
    pub fn regular_len(&self) -> Option<u64> {
        self.regular_len
    }

    /// Reads ahead until at least `bytes` bytes are held or the input ends; returns whether the
    /// whole input is now held (then [`Source::held`] is all of it).
    pub fn peek(&mut self, bytes: usize) -> std::io::Result<bool> {
        while self.head.len() < bytes && !self.eof {
            let want = (bytes - self.head.len()) as u64;
            if (&mut self.rest).take(want).read_to_end(&mut self.head)? == 0 {
                self.eof = true;
            }
        }
        if !self.eof && self.rest.fill_buf()?.is_empty() {
            self.eof = true;
        }
        Ok(self.eof)
    }

    /// The bytes read ahead so far.
    pub fn held(&self) -> &[u8] {
        &self.head
    }

    /// The first line that is neither blank nor an EDN comment, trimmed, at most
    /// [`FIRST_LINE_BYTES_MAX`] bytes of it (invalid UTF-8 replaced); empty when there is none.
    /// Nothing is consumed: [`Source::into_reader`] yields these bytes again.
    pub fn first_line(&mut self) -> std::io::Result<String> {
        let mut from = 0;
        loop {
            // The end of the line starting at `from`: its newline, or `None` at the input's end.
            let mut searched = from;
            let end = loop {
                if let Some(p) = self.head[searched..].iter().position(|&c| c == b'\n') {
                    break Some(searched + p);
                }
                searched = self.head.len();
                if self.eof || self.head.len() - from >= FIRST_LINE_BYTES_MAX {
                    break None;
                }
                self.peek(self.head.len() + (1 << 16))?;
            };
            let cut = end
                .unwrap_or(self.head.len())
                .min(from + FIRST_LINE_BYTES_MAX);
            let text = String::from_utf8_lossy(&self.head[from..cut]);
            let line = text.trim();
            if !line.is_empty() && !line.starts_with(';') {
                return Ok(line.to_string());
            }
            match end {
                Some(e) => from = e + 1,
                None => return Ok(String::new()),
            }
        }
    }

    /// Every byte of the input from its start: the peeked ones, then the rest.
    pub fn into_reader(self) -> impl BufRead + Send {
        Cursor::new(self.head).chain(self.rest)
    }
}
