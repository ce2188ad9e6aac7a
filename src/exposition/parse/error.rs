//! What a failed parse reports: [`ParseError`], with the 1-based line and byte column of the
//! offending byte and what was expected there.
//!
//! An error ends the input (summing a body whose rest was skipped would silently lose data), so
//! it has to say precisely where and why: a user fixes the exporter from this message alone.
//! Building one is kept out of line ([`error`] is `#[cold]`), so the hot path carries no
//! formatting code.

use std::fmt;

/// A parse failure with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line number.
    pub line: u64,
    /// 1-based byte column.
    pub column: usize,
    /// What was expected or found.
    pub message: String,
    /// What kind of failure: a syntax error or the line-length limit.
    pub kind: ParseErrorKind,
}

/// The two ways input can fail to parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ParseErrorKind {
    /// The text is not valid exposition text (syntax, UTF-8, values, duplicates...).
    #[default]
    Syntax,
    /// A line is longer than [`ParseOptions::max_line_len`](super::ParseOptions::max_line_len).
    LineTooLong,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, col {}: {}",
            self.line, self.column, self.message
        )
    }
}

impl std::error::Error for ParseError {}

/// Builds a [`ParseError`]; kept out of line so the hot path stays small.
#[cold]
#[inline(never)]
pub(super) fn error(line: u64, column: usize, message: fmt::Arguments<'_>) -> ParseError {
    ParseError {
        line,
        column,
        message: message.to_string(),
        kind: ParseErrorKind::Syntax,
    }
}
