//! Reading a history file in blocks of whole lines: while the lines of one block are handed out in
//! order, the next block is read and its lines scanned ([`scan`]) in parallel.

use super::scan::{scan_line, Fast};
use super::FileError;
use crate::history::{HistoryError, LINE_BYTES_MAX};
use rayon::prelude::*;
use std::io::Read;

/// Bytes read per block (a block ends at the last newline after this many bytes).
const BLOCK_BYTES: usize = 256 << 10;
/// Bytes scanned per parallel task.
const SEGMENT_BYTES: usize = 256 << 10;

/// One line of the file, as handed to the consumer.
pub(crate) struct Line<'a> {
    /// 1-based line number.
    pub no: usize,
    /// The line's bytes, without its newline.
    pub text: &'a [u8],
    /// Whether a newline ended it (only the file's last line may lack one).
    pub newline: bool,
    /// The scanner's reading of it, if the scanner took it.
    pub fast: Option<Fast>,
}

/// A line's place in its block and what the scanner made of it.
struct Scanned {
    start: usize,
    end: usize,
    fast: Option<Fast>,
}

/// A block of whole lines, scanned.
struct Block {
    bytes: Vec<u8>,
    /// Per segment, its lines in order.
    segments: Vec<Vec<Scanned>>,
    /// Whether the block ends with a newline.
    newline: bool,
}

/// The reader's state between blocks.
struct Reader<R> {
    inner: R,
    /// The start of a line that the last block cut.
    carry: Vec<u8>,
    eof: bool,
}

/// Why the next block could not be read.
enum NextError {
    /// Reading failed.
    Io(std::io::Error),
    /// The block's first line is longer than [`LINE_BYTES_MAX`].
    LineTooLong,
}

impl From<std::io::Error> for NextError {
    fn from(e: std::io::Error) -> Self {
        NextError::Io(e)
    }
}

impl<R: Read> Reader<R> {
    /// The next block of whole lines, scanned; `None` at the end of the file.
    fn next(&mut self) -> Result<Option<Block>, NextError> {
        let mut bytes = Vec::with_capacity(BLOCK_BYTES + self.carry.len() + 1);
        bytes.append(&mut self.carry);
        loop {
            if self.eof {
                break;
            }
            if bytes.len() >= BLOCK_BYTES {
                if let Some(p) = bytes.iter().rposition(|&c| c == b'\n') {
                    self.carry = bytes[p + 1..].to_vec();
                    bytes.truncate(p + 1);
                    break;
                }
                // No newline at all: the block is the start of one line.
                if bytes.len() > LINE_BYTES_MAX {
                    return Err(NextError::LineTooLong);
                }
            }
            let want = BLOCK_BYTES.max(bytes.len() / 2) as u64;
            if (&mut self.inner).take(want).read_to_end(&mut bytes)? == 0 {
                self.eof = true;
            }
        }
        if bytes.is_empty() {
            return Ok(None);
        }
        let newline = bytes.last() == Some(&b'\n');
        // Segments start right after a newline, so that each holds whole lines.
        let mut bounds = vec![0];
        while let Some(&last) = bounds.last() {
            let from = last + SEGMENT_BYTES;
            if from >= bytes.len() {
                break;
            }
            match bytes[from..].iter().position(|&c| c == b'\n') {
                Some(p) if from + p + 1 < bytes.len() => bounds.push(from + p + 1),
                _ => break,
            }
        }
        bounds.push(bytes.len());
        let segments = bounds
            .par_windows(2)
            .map(|w| scan_segment(&bytes, w[0], w[1]))
            .collect();
        Ok(Some(Block {
            bytes,
            segments,
            newline,
        }))
    }
}

/// Splits `bytes[from..to]` into lines and scans each.
fn scan_segment(bytes: &[u8], from: usize, to: usize) -> Vec<Scanned> {
    let mut lines = Vec::with_capacity((to - from) / 64);
    let mut start = from;
    while start < to {
        // The scanner finds the end of a line it takes; others are searched for their newline.
        let (fast, end) = match scan_line(&bytes[start..to]) {
            Some((fast, len)) => (Some(fast), start + len),
            None => {
                let end = bytes[start..to]
                    .iter()
                    .position(|&c| c == b'\n')
                    .map_or(to, |p| start + p);
                (None, end)
            }
        };
        lines.push(Scanned { start, end, fast });
        start = end + 1;
    }
    lines
}

/// Hands every line of `reader` to `each`, in order, with its scan; stops at the first error.
pub(crate) fn for_each_line<R, F>(reader: R, name: &str, mut each: F) -> Result<(), FileError>
where
    R: Read + Send,
    F: FnMut(Line<'_>) -> Result<(), FileError> + Send,
{
    // A line too long is the one after the lines handed out so far.
    let failed = |e, line_no: usize| -> FileError {
        match e {
            NextError::Io(source) => HistoryError::Io {
                path: name.to_string(),
                source,
            },
            NextError::LineTooLong => HistoryError::LineTooLong {
                path: name.to_string(),
                line: line_no + 1,
            },
        }
        .into()
    };
    let mut reader = Reader {
        inner: reader,
        carry: Vec::new(),
        eof: false,
    };
    let mut line_no = 0usize;
    let mut current = reader.next().map_err(|e| failed(e, 0))?;
    while let Some(mut block) = current {
        let (handed, next) = rayon::join(
            || -> Result<(), FileError> {
                let count: usize = block.segments.iter().map(Vec::len).sum();
                let mut k = 0;
                for line in block.segments.iter_mut().flatten() {
                    k += 1;
                    line_no += 1;
                    if line.end - line.start > LINE_BYTES_MAX {
                        return Err(failed(NextError::LineTooLong, line_no - 1));
                    }
                    each(Line {
                        no: line_no,
                        text: &block.bytes[line.start..line.end],
                        newline: k < count || block.newline,
                        fast: line.fast.take(),
                    })?;
                }
                Ok(())
            },
            || reader.next(),
        );
        handed?;
        current = next.map_err(|e| failed(e, line_no))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &[u8]) -> Vec<(usize, Vec<u8>, bool, bool)> {
        let mut out = Vec::new();
        for_each_line(text, "t", |l| {
            out.push((l.no, l.text.to_vec(), l.newline, l.fast.is_some()));
            Ok(())
        })
        .unwrap();
        out
    }

    #[test]
    fn lines_come_in_order_with_numbers_and_newlines() {
        let ok = r#"{"type":"ok","process":1,"f":"read","value":1,"time":5}"#;
        let text = format!("{ok}\n\n x\n{ok} \r\n{ok}\t\"\n{ok}");
        let got = lines(text.as_bytes());
        let want = vec![
            (1, ok.as_bytes().to_vec(), true, true),
            (2, vec![], true, false),
            (3, b" x".to_vec(), true, false),
            (4, format!("{ok} \r").into_bytes(), true, true),
            (5, format!("{ok}\t\"").into_bytes(), true, false),
            (6, ok.as_bytes().to_vec(), false, true),
        ];
        assert_eq!(got, want);
        assert_eq!(lines(b"a\n").len(), 1);
        assert!(lines(b"").is_empty());
    }

    #[test]
    fn a_line_past_the_bound_is_an_error_naming_it() {
        let long = vec![b'x'; LINE_BYTES_MAX + 1];
        for text in [
            [&b"a\nb\n"[..], &long].concat(),
            [&b"a\nb\n"[..], &long, b"\nc\n"].concat(),
        ] {
            let err = for_each_line(&text[..], "t", |_| Ok(())).unwrap_err();
            assert_eq!(
                err.to_string(),
                "t:3: line is longer than 64 MiB, the most a history line may hold"
            );
        }
        let mut fits = vec![b'x'; LINE_BYTES_MAX];
        fits.push(b'\n');
        assert!(for_each_line(&fits[..], "t", |_| Ok(())).is_ok());
    }

    #[test]
    fn blocks_and_segments_keep_every_line_whole() {
        // Lines of varied length across many segments and blocks, one longer than a block.
        let mut text = Vec::new();
        let mut want = Vec::new();
        for i in 0..200_000usize {
            let len = if i == 77_777 {
                BLOCK_BYTES + 10
            } else {
                i % 97
            };
            let line = vec![b'a' + (i % 26) as u8; len];
            text.extend_from_slice(&line);
            text.push(b'\n');
            want.push(line);
        }
        let got = lines(&text);
        assert_eq!(got.len(), want.len());
        for (i, (no, line, newline, _)) in got.into_iter().enumerate() {
            assert_eq!((no, newline), (i + 1, true));
            assert!(line == want[i], "line {}", i + 1);
        }
    }
}
