//! Why a history could not be read ([`HistoryError`]); every variant names the file and line.

use super::LINE_BYTES_MAX;

/// Why a history could not be read; every variant names where.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// The file could not be opened or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A line is not valid JSON, or not an object.
    #[error("{path}:{line}: not a JSON object: {}", crate::echo::Message(message))]
    Syntax {
        /// The file.
        path: String,
        /// 1-based line number.
        line: usize,
        /// What the JSON parser said.
        message: String,
    },
    /// A line is not UTF-8 text (a last line cut inside a character is a warning instead).
    #[error("{path}:{line}: not valid UTF-8 (from byte {byte} of the line)")]
    Encoding {
        /// The file.
        path: String,
        /// 1-based line number.
        line: usize,
        /// The 1-based byte of the line where the invalid sequence starts.
        byte: usize,
    },
    /// A line is longer than [`LINE_BYTES_MAX`] bytes.
    #[error(
        "{path}:{line}: line is longer than {} MiB, the most a history line may hold",
        LINE_BYTES_MAX >> 20
    )]
    LineTooLong {
        /// The file.
        path: String,
        /// 1-based line number.
        line: usize,
    },
    /// A line is JSON but a field is missing or has the wrong type or value.
    #[error("{path}:{line}: field `{field}`: {}", crate::echo::Message(message))]
    Field {
        /// The file.
        path: String,
        /// 1-based line number.
        line: usize,
        /// The offending field's name.
        field: String,
        /// What is wrong with it.
        message: String,
    },
}

impl HistoryError {
    /// The same error at line `line_no` (for a line read alone, as line 1).
    pub fn at_line(self, line_no: usize) -> HistoryError {
        match self {
            HistoryError::Syntax { path, message, .. } => HistoryError::Syntax {
                path,
                line: line_no,
                message,
            },
            HistoryError::Encoding { path, byte, .. } => HistoryError::Encoding {
                path,
                line: line_no,
                byte,
            },
            HistoryError::Field {
                path,
                field,
                message,
                ..
            } => HistoryError::Field {
                path,
                line: line_no,
                field,
                message,
            },
            HistoryError::LineTooLong { path, .. } => HistoryError::LineTooLong {
                path,
                line: line_no,
            },
            io @ HistoryError::Io { .. } => io,
        }
    }
}
