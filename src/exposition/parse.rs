//! Streaming, zero-allocation parser for the Prometheus text format 0.0.4 and OpenMetrics 1.0 text.
//! (API stub: implementation in progress.)

use std::fmt;

/// Which metadata comment a [`Metadata`] event came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MetaKind {
    /// `# HELP name text`
    Help,
    /// `# TYPE name type`
    Type,
    /// `# UNIT name unit` (OpenMetrics)
    Unit,
}

/// A `# HELP`, `# TYPE` or `# UNIT` line.
#[derive(Debug, Clone, Copy)]
pub struct Metadata<'a> {
    /// Which comment.
    pub kind: MetaKind,
    /// The family name the comment is about (unquoted, unescaped).
    pub family: &'a str,
    /// HELP: the unescaped help text. TYPE: the type word (`counter`, `gauge`, `histogram`,
    /// `summary`, `untyped`, OpenMetrics `unknown`, `gaugehistogram`, `info`, `stateset`).
    /// UNIT: the unit.
    pub text: &'a str,
}

/// One sample line, borrowed from the parser's buffers. Valid only during the [`Sink`] call.
#[derive(Debug, Clone, Copy)]
pub struct Sample<'a> {
    /// Metric name (unquoted; taken from `__name__` when the line names it that way).
    pub name: &'a str,
    /// The family this sample belongs to, following `# TYPE` (e.g. `x` for `x_bucket` under
    /// `# TYPE x histogram`); the metric name itself when no TYPE claims it.
    pub family: &'a str,
    /// The value, parsed.
    pub value: f64,
    /// The value exactly as written in the input.
    pub value_text: &'a str,
    /// Timestamp in milliseconds (OpenMetrics float seconds converted), if the line has one.
    pub timestamp_ms: Option<i64>,
    /// The raw bytes of the series: from the first byte of the line through the end of the label
    /// block (or the name when there is no label block). Same series, same bytes: the key for
    /// caches across scrapes.
    pub series_text: &'a [u8],
    /// 1-based line number in the input.
    pub line: u64,
    labels: &'a [(&'a str, &'a str)],
}

impl<'a> Sample<'a> {
    /// Number of labels (not counting `__name__`).
    pub fn label_count(&self) -> usize {
        self.labels.len()
    }
    /// Labels as `(name, unescaped value)` in input order, without `__name__`.
    pub fn labels(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.labels.iter().copied()
    }
}

/// Receives what the parser finds.
pub trait Sink {
    /// A `# HELP`, `# TYPE` or `# UNIT` line.
    fn metadata(&mut self, meta: &Metadata<'_>);
    /// A sample line.
    fn sample(&mut self, sample: &Sample<'_>);
}

/// Parser settings.
#[derive(Debug, Clone)]
pub struct ParseOptions {
    /// Longest accepted line in bytes; a longer one is an error (default 1 MiB).
    pub max_line_len: usize,
}

impl Default for ParseOptions {
    fn default() -> Self {
        Self {
            max_line_len: 1 << 20,
        }
    }
}

/// A parse failure with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// 1-based line number.
    pub line: u64,
    /// 1-based byte column.
    pub column: usize,
    /// What was expected or found.
    pub message: String,
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

/// Streaming parser: feed chunks, get events.
#[derive(Debug, Default)]
pub struct Parser {
    _opts: ParseOptions,
}

impl Parser {
    /// A parser with the given options.
    pub fn new(opts: ParseOptions) -> Self {
        Self { _opts: opts }
    }
    /// Parses every complete line in `chunk` (plus a line carried over from the previous chunk)
    /// and keeps the trailing partial line for the next call.
    pub fn feed<S: Sink + ?Sized>(
        &mut self,
        _chunk: &[u8],
        _sink: &mut S,
    ) -> Result<(), ParseError> {
        todo!()
    }
    /// Parses the carried-over last line (input without a final newline) and resets.
    pub fn finish<S: Sink + ?Sized>(&mut self, _sink: &mut S) -> Result<(), ParseError> {
        todo!()
    }
    /// True once an OpenMetrics `# EOF` was seen (later input is ignored).
    pub fn saw_eof(&self) -> bool {
        false
    }
}
