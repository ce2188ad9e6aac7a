//! Streaming, zero-allocation parser for the Prometheus text format 0.0.4 and OpenMetrics 1.0
//! text.
//!
//! # Shape
//!
//! [`Parser::feed`] takes chunks of any size. Complete lines are parsed straight out of the chunk;
//! a trailing partial line is copied into a reused carry buffer and completed by the next call
//! ([`Parser::finish`] parses a last line that has no newline). Every event is handed to a
//! [`Sink`] as a borrowed [`Sample`] or [`Metadata`], valid only during the call.
//!
//! In steady state nothing is allocated per line: label names and values are kept as spans
//! (offsets packed into one word) into the line, and only strings that hold a backslash are
//! unescaped, into one scratch buffer that is reused across lines (the approach of Prometheus'
//! `promparse`, which also unescapes only when `\` occurs). Buffers grow to the largest line
//! seen, and never beyond [`ParseOptions::max_line_len`].
//!
//! # Speed
//!
//! - Complete lines are taken in blocks of about 64 KiB and checked for UTF-8 in one pass (with
//!   an exact position, line by line, only when that fails); newlines are found with `memchr`.
//! - Label values are scanned for `"` and `\` eight bytes at a time; unquoted names are checked
//!   with a 256-entry class table.
//! - The label names of the last few label sets (and the last few metric names) are remembered
//!   as `name="` patterns of whole words. The series of a family repeat their names, so a label
//!   usually costs one or two word comparisons, which also prove it valid and distinct without
//!   a duplicate check; sets that differ take the general path (and become remembered). Only
//!   plain (unquoted-valid) names are remembered, so a match never accepts what the general path
//!   would reject.
//!
//! # Syntax accepted
//!
//! - Samples `name{label="value",...} value [timestamp]`, with the name given before the braces,
//!   as `__name__="x"` inside them, or in the Prometheus 3 quoted form `{"my.metric",
//!   "label.x"="v"}` (a quoted string followed by `,` or `}` is the metric name; label names may be
//!   quoted). Spaces and tabs around tokens, a trailing comma, `{}`, a missing comma between two
//!   labels (as `promparse` tolerates) and `\r\n` line ends are accepted; blank lines are skipped.
//! - Label values (and quoted names) unescape `\\`, `\"` and `\n`; any other backslash sequence is
//!   kept verbatim, as Prometheus' `strings.Replacer` does (`\t` stays the two bytes `\` `t`).
//! - Values follow Go's `strconv.ParseFloat` as Prometheus uses it: decimal floats, `NaN`, `Inf`,
//!   `+Inf`, `-Inf`, `Infinity` (case-insensitive); hex floats and `_` are rejected, and so is a
//!   value that overflows to infinity (Go reports a range error there).
//! - `# HELP`, `# TYPE`, `# UNIT` become [`Metadata`]; other comments are ignored; `# EOF` ends the
//!   input (not in [`Format::Text`], where it is an ordinary comment, as in `promparse`).
//! - An OpenMetrics exemplar ` # {labels} value [timestamp]` after the value or timestamp is
//!   checked for syntax and skipped, in every format.
//!
//! - `# HELP` text unescapes `\\` and `\n` (also `\"` in [`Format::OpenMetrics`]); exactly one
//!   blank separates it from the name, as in `promparse`. `# TYPE` must name a known type.
//!
//! # Errors
//!
//! A [`ParseError`] gives the 1-based line and byte column of the offending byte and what was
//! expected there. Besides syntax errors: duplicate label names, a metric name given twice or
//! empty, an empty label name, invalid UTF-8 (in samples and metadata; ignored comments are not
//! checked), a value or timestamp that does not parse or is out of range, and a line longer than
//! [`ParseOptions::max_line_len`].
//!
//! # Timestamps ([`Format`])
//!
//! The 0.0.4 format writes integer milliseconds, OpenMetrics float seconds. [`Format::Text`]
//! accepts only integers (milliseconds); [`Format::OpenMetrics`] reads every timestamp as
//! seconds. [`Format::Auto`] decides per timestamp: one written with `.`, `e` or `E` is
//! OpenMetrics seconds; an integer is milliseconds, unless an OpenMetrics-only feature (`# UNIT`,
//! `# EOF`, an exemplar, earlier in the input or on the same line) was seen and its absolute value
//! is below 1e11 (1e11 s is in the year 5138, 1e11 ms in 1973), in which case it is seconds.
//! Seconds become milliseconds rounded to nearest.
//!
//! # Families
//!
//! [`Sample::family`] follows the last `# TYPE`: under `# TYPE x histogram`, `x_bucket`, `x_sum`,
//! `x_count` and `x_created` belong to `x`; summary: `x`, `x_sum`, `x_count`, `x_created`;
//! counter: `x`, `x_total`, `x_created`; gaugehistogram: `x_bucket`, `x_gcount`, `x_gsum`; info:
//! `x_info`; every type: `x` itself. A `# HELP` or `# UNIT` for another name ends the claim of the
//! last `# TYPE` (it starts a new, untyped family), so a stale TYPE never claims later samples;
//! samples of unrelated names do not end it. A sample nobody claims is its own family.

use std::fmt;

use memchr::{memchr, memrchr};

use super::float::parse_go_float;

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
#[derive(Clone, Copy)]
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
    /// The whole line (labels that needed no unescaping point into it).
    text: &'a str,
    /// The parser's unescape buffer (labels that held a backslash point into it).
    scratch: &'a str,
    /// Labels in input order, without `__name__`.
    spans: &'a [LabelSpan],
    /// See [`Sample::layout`].
    layout: u64,
    /// The metric name was written bare, before the label block (so it is a valid legacy name).
    plain_name: bool,
}

impl<'a> Sample<'a> {
    /// Number of labels (not counting `__name__`).
    pub fn label_count(&self) -> usize {
        self.spans.len()
    }

    /// Labels as `(name, unescaped value)` in input order, without `__name__`. Empty values are
    /// reported as written (Prometheus treats them as absent labels).
    pub fn labels(&self) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        let (text, scratch) = (self.text, self.scratch);
        self.spans
            .iter()
            .map(move |l| (l.name.get(text, scratch), l.value.get(text, scratch)))
    }

    /// The layout of the label names: when nonzero, every sample with the same layout (from any
    /// parser of this process) has the same label names in the same order, and all of them are
    /// plain names (`[a-zA-Z_][a-zA-Z0-9_]*`, so rendered without quotes). Zero says nothing.
    /// Lets a sink decide once per layout what it would decide per label from the names alone.
    #[inline]
    pub fn layout(&self) -> u64 {
        self.layout
    }

    /// Whether the metric name was written bare before the label block, and is therefore a
    /// valid legacy metric name (rendered without quotes).
    #[inline]
    pub fn plain_name(&self) -> bool {
        self.plain_name
    }

    /// Label `i` (input order) as `(name, unescaped value, verbatim)`; `verbatim` says the value
    /// held no escape sequence, so it renders as itself (it holds no `\`, `"` or newline).
    #[inline]
    pub fn label_at(&self, i: usize) -> Option<(&'a str, &'a str, bool)> {
        let l = self.spans.get(i)?;
        Some((
            l.name.get(self.text, self.scratch),
            l.value.get(self.text, self.scratch),
            !l.value.in_scratch(),
        ))
    }

    /// The input text of labels `from..to` (input order), from the first name through the last
    /// value's closing quote, when it is exactly what rendering those labels writes: names and
    /// values as written (no escape sequence, no quoted name), no empty value, `="` between each
    /// name and its value and a bare `,` (not blanks) between labels. `None` otherwise, and for
    /// an empty or out-of-range span. Lets a sink copy a run of kept labels into a series key
    /// at once. Meant for samples with a nonzero [`Sample::layout`], whose names are all plain.
    #[inline]
    pub fn raw_labels(&self, from: usize, to: usize) -> Option<&'a [u8]> {
        let spans = self.spans.get(from..to)?;
        let (first, last) = (spans.first()?, spans.last()?);
        let b = self.text.as_bytes();
        let mut name_at = first.name.start();
        for l in spans {
            // The gap before a name is one byte: a `,` (a blank alone also separates labels,
            // as promparse tolerates, but does not render so). Before a value it is `="`.
            if l.name.in_scratch()
                || l.value.in_scratch()
                || l.name.start() != name_at
                || (name_at != first.name.start() && b.get(name_at - 1) != Some(&b','))
                || l.value.start() != l.name.end() + 2
                || l.value.is_empty()
            {
                return None;
            }
            name_at = l.value.end() + 2;
        }
        b.get(first.name.start()..last.value.end() + 1)
    }

    /// The unescaped value of label `name`, if the line has it (`__name__` is not a label here:
    /// use [`Sample::name`]).
    pub fn label_value(&self, name: &str) -> Option<&'a str> {
        self.labels().find(|&(n, _)| n == name).map(|(_, v)| v)
    }
}

impl fmt::Debug for Sample<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Labels<'s, 'a>(&'s Sample<'a>);
        impl fmt::Debug for Labels<'_, '_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_list().entries(self.0.labels()).finish()
            }
        }
        f.debug_struct("Sample")
            .field("name", &self.name)
            .field("family", &self.family)
            .field("labels", &Labels(self))
            .field("value", &self.value)
            .field("value_text", &self.value_text)
            .field("timestamp_ms", &self.timestamp_ms)
            .field("series_text", &String::from_utf8_lossy(self.series_text))
            .field("line", &self.line)
            .finish()
    }
}

/// Receives what the parser finds.
pub trait Sink {
    /// A `# HELP`, `# TYPE` or `# UNIT` line.
    fn metadata(&mut self, meta: &Metadata<'_>);
    /// A sample line.
    fn sample(&mut self, sample: &Sample<'_>);

    /// A limit the sink hit: it ignores further input, and whoever feeds the parser should stop
    /// and report this. Asked between chunks, never per line.
    fn limit_hit(&self) -> Option<&crate::limits::LimitHit> {
        None
    }
}

/// Which exposition format the input is in; decides how timestamps are read (see the module
/// documentation for the [`Format::Auto`] rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Format {
    /// Guess per timestamp: `.`/`e`/`E` means OpenMetrics seconds; an integer is milliseconds
    /// unless an OpenMetrics-only feature was seen and it is below 1e11 in absolute value.
    #[default]
    Auto,
    /// Prometheus text 0.0.4: integer millisecond timestamps; `# EOF` is an ordinary comment.
    Text,
    /// OpenMetrics 1.0 text: timestamps are (float) seconds.
    OpenMetrics,
}

impl Format {
    /// The format announced by an HTTP `Content-Type`: `application/openmetrics-text` is
    /// [`Format::OpenMetrics`], `text/plain` is [`Format::Text`], anything else (or nothing
    /// recognisable) is [`Format::Auto`].
    pub fn from_content_type(content_type: &str) -> Format {
        let media = content_type.split(';').next().unwrap_or("").trim();
        if media.eq_ignore_ascii_case("application/openmetrics-text") {
            Format::OpenMetrics
        } else if media.eq_ignore_ascii_case("text/plain") {
            Format::Text
        } else {
            Format::Auto
        }
    }
}

/// Parser settings.
#[derive(Debug, Clone)]
pub struct ParseOptions {
    /// Longest accepted line in bytes, not counting the `\n`; a longer one is an error (default
    /// 1 MiB; values above 2 GiB - 1 are capped there). Also bounds the carry buffer.
    pub max_line_len: usize,
    /// How to read timestamps (default [`Format::Auto`]).
    pub format: Format,
}

impl Default for ParseOptions {
    fn default() -> Self {
        Self {
            max_line_len: 1 << 20,
            format: Format::Auto,
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
    /// What kind of failure: a syntax error or the line-length limit.
    pub kind: ParseErrorKind,
}

/// The two ways input can fail to parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ParseErrorKind {
    /// The text is not valid exposition text (syntax, UTF-8, values, duplicates...).
    #[default]
    Syntax,
    /// A line is longer than [`ParseOptions::max_line_len`].
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

/// Streaming parser: feed chunks, get events.
///
/// One parser reads one input at a time and can be reused: [`Parser::finish`] ends an input and
/// makes the parser ready for the next one, keeping its buffers. After an error the input is
/// abandoned: later [`Parser::feed`] and [`Parser::finish`] calls return the same error until
/// `finish` or [`Parser::reset`] starts over.
#[derive(Debug, Default)]
pub struct Parser {
    /// Settings.
    opts: ParseOptions,
    /// The partial last line of the previous chunk (never longer than `max_line_len`).
    carry: Vec<u8>,
    /// Everything the line parser needs across lines.
    st: LineState,
    /// The first error; the input is abandoned from there.
    failed: Option<ParseError>,
    /// `finish` ran: the next `feed` starts a new input (and forgets `saw_eof`).
    finished: bool,
}

impl Parser {
    /// A parser with the given options.
    pub fn new(mut opts: ParseOptions) -> Self {
        opts.max_line_len = opts.max_line_len.min(MAX_LINE_LIMIT);
        let st = LineState {
            format: opts.format,
            ..LineState::default()
        };
        Self {
            opts,
            carry: Vec::new(),
            st,
            failed: None,
            finished: false,
        }
    }

    /// Parses every complete line in `chunk` (plus a line carried over from the previous chunk)
    /// and keeps the trailing partial line for the next call.
    ///
    /// Events for the lines before an erroneous line have been delivered when this returns an
    /// error. After `# EOF` the rest of the input is ignored.
    pub fn feed<S: Sink + ?Sized>(&mut self, chunk: &[u8], sink: &mut S) -> Result<(), ParseError> {
        if self.finished {
            self.finished = false;
            self.st.eof = false;
        }
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let res = self.feed_lines(chunk, sink);
        if let Err(e) = &res {
            self.failed = Some(e.clone());
            self.carry.clear();
        }
        res
    }

    /// Parses the carried-over last line (input without a final newline) and resets for the next
    /// input; [`Parser::saw_eof`] still reports on this input until the next `feed`.
    pub fn finish<S: Sink + ?Sized>(&mut self, sink: &mut S) -> Result<(), ParseError> {
        let res = match self.failed.take() {
            Some(e) => Err(e),
            None if self.st.eof || self.carry.is_empty() => Ok(()),
            None => {
                let carry = std::mem::take(&mut self.carry);
                let res = self.st.line(&carry, None, sink);
                self.carry = carry;
                res
            }
        };
        let eof = self.st.eof;
        self.reset();
        self.st.eof = eof;
        self.finished = true;
        res
    }

    /// True once an OpenMetrics `# EOF` was seen (later input is ignored).
    pub fn saw_eof(&self) -> bool {
        self.st.eof
    }

    /// Forgets the current input (partial line, line count, families, errors, `# EOF`) but keeps
    /// the buffers, so the next [`Parser::feed`] starts a new input without allocating.
    pub fn reset(&mut self) {
        self.carry.clear();
        self.failed = None;
        self.finished = false;
        self.st.reset();
    }

    /// The line loop of `feed`: completes the carried line, parses the chunk's complete lines in
    /// place, carries the rest.
    fn feed_lines<S: Sink + ?Sized>(
        &mut self,
        chunk: &[u8],
        sink: &mut S,
    ) -> Result<(), ParseError> {
        let mut rest = chunk;
        if self.st.eof {
            return Ok(());
        }
        if !self.carry.is_empty() {
            let Some(nl) = memchr(b'\n', rest) else {
                return self.carry_partial(rest);
            };
            self.carry_partial(&rest[..nl])?;
            let carry = std::mem::take(&mut self.carry);
            let res = self.st.line(&carry, None, sink);
            self.carry = carry;
            self.carry.clear();
            res?;
            rest = &rest[nl + 1..];
        }
        // Complete lines are taken in blocks of about `BLOCK` bytes, checked for UTF-8 in one
        // pass while they are in cache, then parsed.
        while !self.st.eof {
            let window = rest.len().min(BLOCK);
            let last_nl = match memrchr(b'\n', &rest[..window]) {
                Some(nl) => nl,
                None => match memchr(b'\n', &rest[window..]) {
                    Some(nl) => window + nl,
                    None => return self.carry_partial(rest),
                },
            };
            let (lines, tail) = rest.split_at(last_nl + 1);
            self.block(lines, sink)?;
            rest = tail;
        }
        Ok(())
    }

    /// Parses `lines`, complete lines each ending in `\n`. They are checked for UTF-8 in one
    /// pass; if that fails, line by line, so that the error gets its position and ignored
    /// comments are exempt.
    fn block<S: Sink + ?Sized>(&mut self, lines: &[u8], sink: &mut S) -> Result<(), ParseError> {
        let max = self.opts.max_line_len;
        let text = simdutf8::basic::from_utf8(lines).ok();
        let mut at = 0;
        while !self.st.eof {
            let Some(nl) = memchr(b'\n', &lines[at..]) else {
                break;
            };
            if nl > max {
                return Err(self.st.too_long(max));
            }
            let line_text = text.and_then(|t| t.get(at..at + nl));
            self.st.line(&lines[at..at + nl], line_text, sink)?;
            at += nl + 1;
        }
        Ok(())
    }

    /// Appends part of a line to the carry buffer, refusing to grow it past the line limit.
    fn carry_partial(&mut self, part: &[u8]) -> Result<(), ParseError> {
        let max = self.opts.max_line_len;
        if self.carry.len() + part.len() > max {
            return Err(self.st.too_long(max));
        }
        self.carry.extend_from_slice(part);
        Ok(())
    }
}

/// Bytes of complete lines checked for UTF-8 at once (lines are not split): small enough to
/// stay in cache until parsed, large enough to make the per-call cost vanish.
const BLOCK: usize = 64 * 1024;

/// Cap of [`ParseOptions::max_line_len`]: offsets within a line are stored in 31 bits.
const MAX_LINE_LIMIT: usize = i32::MAX as usize;

/// Types named by `# TYPE`, as far as family membership goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum FamilyType {
    /// No `# TYPE` currently claims samples (or the type claims only its own name).
    #[default]
    Plain,
    Counter,
    Histogram,
    Summary,
    GaugeHistogram,
    Info,
}

impl FamilyType {
    /// Suffixes whose samples belong to a family of this type, besides the family name itself.
    fn suffixes(self) -> &'static [&'static str] {
        match self {
            FamilyType::Plain => &[],
            FamilyType::Counter => &["_total", "_created"],
            FamilyType::Histogram => &["_bucket", "_sum", "_count", "_created"],
            FamilyType::Summary => &["_sum", "_count", "_created"],
            FamilyType::GaugeHistogram => &["_bucket", "_gcount", "_gsum"],
            FamilyType::Info => &["_info"],
        }
    }
}

/// The `# TYPE` words, with what they mean for family membership.
fn family_type(word: &str) -> Option<FamilyType> {
    Some(match word {
        "counter" => FamilyType::Counter,
        "histogram" => FamilyType::Histogram,
        "summary" => FamilyType::Summary,
        "gaugehistogram" => FamilyType::GaugeHistogram,
        "info" => FamilyType::Info,
        "gauge" | "untyped" | "unknown" | "stateset" => FamilyType::Plain,
        _ => return None,
    })
}

/// A piece of text in the current line or in the unescape scratch buffer, packed into one
/// word (start in bits 0..32, end in bits 32..63, bit 63 set for the scratch buffer) so that it
/// moves through registers whole: a struct of narrower fields, spilled and reloaded as a word,
/// stalls store forwarding in the label loop.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Piece(u64);

impl Piece {
    const SCRATCH: u64 = 1 << 63;

    // Offsets fit: lines (and the unescaped strings of one line) are at most `MAX_LINE_LIMIT`
    // (< 2^31) bytes long.
    #[inline(always)]
    fn line(start: usize, end: usize) -> Self {
        Piece(start as u64 | (end as u64) << 32)
    }

    #[inline(always)]
    fn scratch(start: usize, end: usize) -> Self {
        Piece(Self::line(start, end).0 | Self::SCRATCH)
    }

    #[inline(always)]
    fn in_scratch(self) -> bool {
        self.0 & Self::SCRATCH != 0
    }

    #[inline(always)]
    fn start(self) -> usize {
        (self.0 & 0xffff_ffff) as usize
    }

    #[inline(always)]
    fn end(self) -> usize {
        ((self.0 & !Self::SCRATCH) >> 32) as usize
    }

    fn is_empty(self) -> bool {
        self.start() == self.end()
    }

    #[inline(always)]
    fn range(self) -> std::ops::Range<usize> {
        self.start()..self.end()
    }

    /// The bytes of the text, for comparisons in the hot path (no char-boundary checks).
    #[inline]
    fn bytes<'s>(self, line: &'s [u8], scratch: &'s [u8]) -> &'s [u8] {
        let src = if self.in_scratch() { scratch } else { line };
        src.get(self.range()).unwrap_or(&[])
    }

    /// The text. Pieces always start and end next to ASCII delimiters, so the range is on char
    /// boundaries; `get` just keeps that from ever being a panic.
    #[inline]
    fn get<'s>(self, line: &'s str, scratch: &'s str) -> &'s str {
        let src = if self.in_scratch() { scratch } else { line };
        src.get(self.range()).unwrap_or("")
    }
}

/// One label of the current line.
#[derive(Debug, Clone, Copy, Default)]
struct LabelSpan {
    name: Piece,
    value: Piece,
}

/// Per-input state of the line parser, with the buffers it reuses.
#[derive(Debug, Default)]
struct LineState {
    format: Format,
    /// Number of the line being parsed (1-based once parsing started).
    line_no: u64,
    /// Unescaped strings of the current line.
    scratch: String,
    /// Labels of the current line.
    spans: Vec<LabelSpan>,
    /// Family named by the last `# TYPE` (empty: none).
    type_family: String,
    /// Its type.
    type_kind: FamilyType,
    /// An OpenMetrics-only feature (`# UNIT`, `# EOF`, exemplar) was seen: [`Format::Auto`] reads
    /// small integer timestamps as seconds.
    om_seen: bool,
    /// `# EOF` seen.
    eof: bool,
    /// Label layouts of recent lines whose label names took the full check. Series of a family
    /// repeat their label names, so most lines match one of these word by word, which proves
    /// their names valid and distinct without scanning or comparing them.
    layouts: [Layout; CACHE_SLOTS],
    /// The slot in `layouts` the last line matched (or filled).
    last_layout: usize,
    /// [`Layout::id`] of the current line's labels, 0 if they match no layout.
    line_layout: u64,
    /// Label sets in a row that matched no remembered layout.
    layout_misses: u32,
    /// Recent metric names that had to be scanned; same idea.
    names: [Layout; CACHE_SLOTS],
    /// The slot in `names` the last line matched (or filled).
    last_name: usize,
}

/// Spaces and tabs separate tokens.
#[inline]
fn is_ws(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

/// Index of the first non-blank byte at or after `i`.
#[inline]
fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && is_ws(b[i]) {
        i += 1;
    }
    i
}

/// End of the token starting at `i` (the next space, tab or end of line).
#[inline]
fn token_end(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && !is_ws(b[i]) {
        i += 1;
    }
    i
}

/// Class bits of [`NAME_CLASS`]: may start / continue a label name, a metric name.
const LABEL_START: u8 = 1;
const LABEL_CHAR: u8 = 2;
const METRIC_START: u8 = 4;
const METRIC_CHAR: u8 = 8;

/// Character classes of unquoted names: labels `[a-zA-Z_][a-zA-Z0-9_]*`, metrics
/// `[a-zA-Z_:][a-zA-Z0-9_:]*`.
static NAME_CLASS: [u8; 256] = name_class();

const fn name_class() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        if c.is_ascii_alphabetic() || c == b'_' {
            t[i] = LABEL_START | LABEL_CHAR | METRIC_START | METRIC_CHAR;
        } else if c.is_ascii_digit() {
            t[i] = LABEL_CHAR | METRIC_CHAR;
        } else if c == b':' {
            t[i] = METRIC_START | METRIC_CHAR;
        }
        i += 1;
    }
    t
}

/// Whether byte `c` is in `class` (one of the `*_START` / `*_CHAR` bits).
#[inline]
fn has_class(c: u8, class: u8) -> bool {
    NAME_CLASS[c as usize] & class != 0
}

/// End of the run of `class` characters starting at `i`.
#[inline]
fn scan_class(b: &[u8], mut i: usize, class: u8) -> usize {
    while i < b.len() && has_class(b[i], class) {
        i += 1;
    }
    i
}

/// Index of the first `"` or `\\` in `b[i..]`. Label values are short (a dozen bytes), where a
/// word-at-a-time scan inlined here beats a call into `memchr2`.
#[inline]
fn find_quote_or_backslash(b: &[u8], mut i: usize) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    const QUOTES: u64 = LO * b'"' as u64;
    const BACKSLASHES: u64 = LO * b'\\' as u64;
    while let Some(word) = b.get(i..i + 8) {
        let Ok(word) = <[u8; 8]>::try_from(word) else {
            break;
        };
        let x = u64::from_le_bytes(word);
        let (q, s) = (x ^ QUOTES, x ^ BACKSLASHES);
        // A byte of `q` or `s` is zero where `x` has a quote or backslash; the lowest flagged
        // byte is exact (borrows only disturb the bytes above it).
        let found = ((q.wrapping_sub(LO) & !q) | (s.wrapping_sub(LO) & !s)) & HI;
        if found != 0 {
            return Some(i + (found.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    while let Some(&c) = b.get(i) {
        if c == b'"' || c == b'\\' {
            return Some(i);
        }
        i += 1;
    }
    None
}

/// `a > b` (as strings: byte order is UTF-8 order), inlined: label names usually differ early,
/// where a call to `memcmp` would cost more than the comparison.
#[inline]
fn bytes_greater(a: &[u8], b: &[u8]) -> bool {
    for (x, y) in a.iter().zip(b) {
        if x != y {
            return x > y;
        }
    }
    a.len() > b.len()
}

/// One of 64 bits, chosen by a cheap hash of a label name (length, first, middle and last
/// byte), for the duplicate check's filter.
#[inline]
fn name_bit(name: &[u8]) -> u64 {
    let byte = |i: usize| u32::from(name.get(i).copied().unwrap_or(0));
    let n = name.len();
    let h = (n as u32)
        .wrapping_mul(0x9e37_79b9)
        .wrapping_add(byte(0).wrapping_mul(0x85eb_ca6b))
        .wrapping_add(byte(n / 2).wrapping_mul(0xc2b2_ae35))
        .wrapping_add(byte(n.wrapping_sub(1)).wrapping_mul(0x27d4_eb2f));
    1 << (h >> 26)
}

/// `a == b`, inlined: names of equal length usually differ early, where a call to `memcmp`
/// would cost more than the comparison.
#[inline]
fn bytes_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

/// A byte string stored as little-endian 8-byte words (zero-padded) in its owner's word
/// buffer, to be compared against the input a word at a time instead of through `memcmp`.
/// The words are followed by the mask of the last word's bytes, so a match need not compute it.
/// Packed into one word (first word index in bits 0..32, length in bytes in bits 32..64) for
/// the same store-forwarding reason as [`Piece`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Pattern(u64);

impl Pattern {
    /// Index of the first word in the owner's buffer.
    #[inline(always)]
    fn word(self) -> usize {
        (self.0 & 0xffff_ffff) as usize
    }

    /// Length in bytes.
    #[inline(always)]
    fn len(self) -> usize {
        (self.0 >> 32) as usize
    }

    /// Number of words.
    #[inline(always)]
    fn words(self) -> usize {
        self.len().div_ceil(8)
    }

    /// The words of the pattern in the owner's buffer `buf`.
    #[inline(always)]
    fn in_buf(self, buf: &[u64]) -> Option<&[u64]> {
        buf.get(self.word()..self.word() + self.words())
    }

    /// Appends `head` followed by `tail` (at most 8 bytes) to `buf` as a pattern. Names are
    /// shorter than a line, so index and length fit in 32 bits.
    fn push(buf: &mut Vec<u64>, head: &[u8], tail: &[u8]) -> Pattern {
        let word = buf.len();
        let len = head.len() + tail.len();
        buf.reserve(len / 8 + 3);
        let mut chunks = head.chunks_exact(8);
        for c in &mut chunks {
            buf.push(u64::from_le_bytes(<[u8; 8]>::try_from(c).unwrap_or([0; 8])));
        }
        // The rest of `head` (< 8 bytes) and `tail` (<= 8 bytes) fill one or two more words.
        let mut rest = [0u8; 16];
        let mut n: usize = 0;
        for (d, &s) in rest.iter_mut().zip(chunks.remainder().iter().chain(tail)) {
            *d = s;
            n += 1;
        }
        for c in rest.chunks_exact(8).take(n.div_ceil(8)) {
            buf.push(u64::from_le_bytes(<[u8; 8]>::try_from(c).unwrap_or([0; 8])));
        }
        let tail = len % 8;
        buf.push(if tail == 0 {
            u64::MAX
        } else {
            (1u64 << (tail * 8)) - 1
        });
        Pattern(word as u64 | (len as u64) << 32)
    }

    /// Whether `b[i..]` starts with this pattern (`buf` is the owner's word buffer). Needs
    /// whole words of input: near the end of the line it answers `false`, and callers take
    /// their general path.
    #[inline(always)]
    fn matches(self, buf: &[u64], b: &[u8], i: usize) -> bool {
        let with_mask = buf.get(self.word()..self.word() + self.words() + 1);
        let Some((&mask, words)) = with_mask.and_then(<[u64]>::split_last) else {
            return false;
        };
        let Some((&last, full)) = words.split_last() else {
            return false;
        };
        let mut at = i;
        for &want in full {
            if load_word(b, at) != Some(want) {
                return false;
            }
            at += 8;
        }
        load_word(b, at).is_some_and(|have| (have ^ last) & mask == 0)
    }
}

/// The 8 bytes at `b[at..]` as a little-endian word, if there are 8.
#[inline(always)]
fn load_word(b: &[u8], at: usize) -> Option<u64> {
    let w = b.get(at..at + 8)?;
    <[u8; 8]>::try_from(w).ok().map(u64::from_le_bytes)
}

/// Number of label layouts (and metric names) remembered: enough for the shapes a family
/// alternates between (`_bucket` with `le`, `_sum`, `_count`, ...).
const CACHE_SLOTS: usize = 4;

/// A remembered sequence of patterns: per label `name="`, or a single metric name.
#[derive(Debug, Default)]
struct Layout {
    patterns: Vec<Pattern>,
    words: Vec<u64>,
    /// Unique per fill, process-wide (see [`Sample::layout`]); 0 while empty.
    id: u64,
}

/// The next [`Layout::id`]: shared by all parsers, so ids never repeat within a process, and a
/// sink fed by several parsers in turn can key on them.
static NEXT_LAYOUT_ID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl Layout {
    /// Whether pattern `k` matches at `b[i..]`.
    #[inline(always)]
    fn matches(&self, k: usize, b: &[u8], i: usize) -> Option<Pattern> {
        let p = *self.patterns.get(k)?;
        p.matches(&self.words, b, i).then_some(p)
    }

    /// Whether the first `k` patterns are the same as those of `other`.
    fn same_prefix(&self, other: &Layout, k: usize) -> bool {
        let (Some(mine), Some(theirs)) = (self.patterns.get(..k), other.patterns.get(..k)) else {
            return false;
        };
        mine.iter().zip(theirs).all(|(&a, &b)| {
            let (Some(x), Some(y)) = (a.in_buf(&self.words), b.in_buf(&other.words)) else {
                return false;
            };
            // Inline word comparison: a call to `memcmp` costs more for these few words.
            a.len() == b.len() && x.iter().zip(y).all(|(v, w)| v == w)
        })
    }

    /// Replaces the contents with one pattern per `(head, tail)` pair.
    fn fill<'p>(&mut self, parts: impl Iterator<Item = (&'p [u8], &'p [u8])>) {
        self.patterns.clear();
        self.words.clear();
        self.id = NEXT_LAYOUT_ID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        for (head, tail) in parts {
            self.patterns
                .push(Pattern::push(&mut self.words, head, tail));
        }
    }
}

/// Finds the slot of `slots` other than `cur` that agrees with `slots[cur]` on the first `k`
/// patterns and whose pattern `k` matches `b[i..]`; with `exact_len`, one that has exactly `k`
/// patterns instead.
fn switch_slot(
    slots: &[Layout; CACHE_SLOTS],
    cur: usize,
    k: usize,
    b: &[u8],
    i: usize,
    exact_len: bool,
) -> Option<(usize, Option<Pattern>)> {
    let current = slots.get(cur)?;
    slots.iter().enumerate().find_map(|(j, slot)| {
        if j == cur || !slot.same_prefix(current, k) {
            return None;
        }
        if exact_len {
            (slot.patterns.len() == k).then_some((j, None))
        } else {
            slot.matches(k, b, i).map(|p| (j, Some(p)))
        }
    })
}

/// Parses a quoted string (label value, quoted name) whose opening quote is at `q`; returns its
/// unescaped text (unescaped into `scratch` only if it holds a backslash) and the index after
/// the closing quote, `None` if unterminated.
#[inline(always)]
fn quoted(scratch: &mut String, s: &str, q: usize) -> Option<(Piece, usize)> {
    let b = s.as_bytes();
    let body = q + 1;
    let k = find_quote_or_backslash(b, body)?;
    if b[k] == b'"' {
        Some((Piece::line(body, k), k + 1))
    } else {
        unescape_into(scratch, s, body, k, true, true)
    }
}

/// Finds the end of a quoted string whose opening quote is at `q` without unescaping: the index
/// after the closing quote, `None` when the line ends first.
fn skip_quoted(b: &[u8], q: usize) -> Option<usize> {
    let mut j = q + 1;
    loop {
        let k = find_quote_or_backslash(b, j)?;
        if b[k] == b'"' {
            return Some(k + 1);
        }
        j = k + 2;
    }
}

/// Unescapes `s[body..]`, whose first backslash (or closing quote) is at `first`, into
/// `scratch`. `\\` and `\n` are replaced, `\"` too with `quote_escape`; any other backslash is
/// kept, as Prometheus' `strings.Replacer` does. A `quoted` string ends at its closing quote (and
/// `None` means it is unterminated); otherwise the text runs to the end of `s`. Returns the
/// unescaped piece and the index after the text (after the closing quote).
fn unescape_into(
    scratch: &mut String,
    s: &str,
    body: usize,
    first: usize,
    quoted: bool,
    quote_escape: bool,
) -> Option<(Piece, usize)> {
    let b = s.as_bytes();
    let start = scratch.len();
    let mut seg = body;
    let mut at = Some(first);
    loop {
        let Some(p) = at else {
            if quoted {
                return None;
            }
            scratch.push_str(s.get(seg..)?);
            return Some((Piece::scratch(start, scratch.len()), b.len()));
        };
        scratch.push_str(s.get(seg..p)?);
        if quoted && b[p] == b'"' {
            return Some((Piece::scratch(start, scratch.len()), p + 1));
        }
        // `b[p]` is a backslash.
        seg = match b.get(p + 1) {
            Some(b'\\') => {
                scratch.push('\\');
                p + 2
            }
            Some(b'n') => {
                scratch.push('\n');
                p + 2
            }
            Some(b'"') if quote_escape => {
                scratch.push('"');
                p + 2
            }
            // Unknown escape (or a lone backslash ending help text): keep the backslash; the
            // next byte is ordinary text (it is neither a backslash nor, if quoted, a quote).
            Some(_) => {
                scratch.push('\\');
                p + 1
            }
            None if quoted => return None,
            None => {
                scratch.push('\\');
                p + 1
            }
        };
        at = find_special(b, seg, quoted).map(|k| seg + k);
    }
}

/// Offset of the next backslash (or quote, in quoted strings) in `b[from..]`.
#[inline]
fn find_special(b: &[u8], from: usize, quoted: bool) -> Option<usize> {
    if quoted {
        find_quote_or_backslash(b, from).map(|k| k - from)
    } else {
        memchr(b'\\', b.get(from..)?)
    }
}

/// Builds a [`ParseError`]; kept out of line so the hot path stays small.
#[cold]
#[inline(never)]
fn error(line: u64, column: usize, message: fmt::Arguments<'_>) -> ParseError {
    ParseError {
        line,
        column,
        message: message.to_string(),
        kind: ParseErrorKind::Syntax,
    }
}

/// Where the label loop goes after a value.
enum Step {
    /// Parse the next label from this index.
    Next(usize),
    /// The label set closed; parsing continues at this index.
    Close(usize),
}

/// How a timestamp failed to parse.
enum TsError {
    Syntax,
    Range,
}

impl LineState {
    /// Forgets the input (not the buffers, nor the remembered layouts: they stay valid).
    fn reset(&mut self) {
        self.line_no = 0;
        self.type_family.clear();
        self.type_kind = FamilyType::Plain;
        self.om_seen = false;
        self.eof = false;
    }

    /// Error at 1-based `column` of the current line.
    #[cold]
    fn err(&self, column: usize, message: fmt::Arguments<'_>) -> ParseError {
        error(self.line_no, column, message)
    }

    /// The next line is longer than `max` bytes.
    #[cold]
    fn too_long(&self, max: usize) -> ParseError {
        ParseError {
            kind: ParseErrorKind::LineTooLong,
            ..error(
                self.line_no + 1,
                max + 1,
                format_args!("line longer than the limit of {max} bytes (--max-line-length)"),
            )
        }
    }

    /// Parses one line (without its `\n`).
    #[inline]
    fn line<S: Sink + ?Sized>(
        &mut self,
        raw: &[u8],
        text: Option<&str>,
        sink: &mut S,
    ) -> Result<(), ParseError> {
        self.line_no += 1;
        let (b, text) = match raw {
            [head @ .., b'\r'] => (head, text.and_then(|t| t.get(..head.len()))),
            _ => (raw, text),
        };
        let start = skip_ws(b, 0);
        match b.get(start) {
            None => Ok(()),
            Some(b'#') => self.comment(b, text, start, sink),
            Some(_) => {
                let s = match text {
                    Some(s) => s,
                    None => self.utf8(b)?,
                };
                self.sample(s, start, sink)
            }
        }
    }

    /// The line as `&str`, or an error at the first invalid byte.
    #[inline]
    fn utf8<'l>(&self, b: &'l [u8]) -> Result<&'l str, ParseError> {
        std::str::from_utf8(b)
            .map_err(|e| self.err(e.valid_up_to() + 1, format_args!("invalid UTF-8")))
    }

    /// A sample line; `i` is its first non-blank byte.
    fn sample<S: Sink + ?Sized>(
        &mut self,
        s: &str,
        i: usize,
        sink: &mut S,
    ) -> Result<(), ParseError> {
        let b = s.as_bytes();
        self.scratch.clear();
        self.spans.clear();
        self.line_layout = 0;
        let mut name = None;
        let series_end;
        let first = b[i..].first().copied().unwrap_or(b'\n');
        let mut i = i;
        let plain_name = has_class(first, METRIC_START);
        if plain_name {
            let end = self.metric_name_end(b, i);
            name = Some(Piece::line(i, end));
            let j = skip_ws(b, end);
            match b.get(j) {
                Some(b'{') => {
                    i = self.label_block(s, j + 1, &mut name)?;
                    series_end = i;
                }
                Some(&c) if j == end => {
                    return Err(self.err(
                        j + 1,
                        format_args!(
                            "expected '{{' or whitespace after metric name {:?}, found {:?}",
                            &s[i..end],
                            char::from(c)
                        ),
                    ))
                }
                _ => {
                    series_end = end;
                    i = j;
                }
            }
        } else if first == b'{' {
            i = self.label_block(s, i + 1, &mut name)?;
            series_end = i;
        } else {
            return Err(self.err(
                i + 1,
                format_args!("expected metric name or '{{' at start of sample"),
            ));
        }
        let Some(name) = name else {
            return Err(self.err(
                series_end,
                format_args!(
                    "missing metric name (no name before '{{', no quoted name or __name__ label)"
                ),
            ));
        };

        // Value.
        i = skip_ws(b, i);
        if i == b.len() {
            return Err(self.err(i + 1, format_args!("expected value after series")));
        }
        let value_start = i;
        let value_end = token_end(b, i);
        let value_text = &s[value_start..value_end];
        let Some(value) = parse_go_float(value_text) else {
            return Err(self.err(
                value_start + 1,
                format_args!("expected a float value, found {value_text:?}"),
            ));
        };

        // Optional timestamp, optional exemplar.
        i = skip_ws(b, value_end);
        let mut ts_span = None;
        if i < b.len() && b[i] != b'#' {
            let end = token_end(b, i);
            ts_span = Some((i, end));
            i = skip_ws(b, end);
            if i < b.len() && b[i] != b'#' {
                return Err(self.err(
                    i + 1,
                    format_args!("expected end of line or exemplar after timestamp"),
                ));
            }
        }
        if i < b.len() {
            self.exemplar(s, i)?;
        }
        let timestamp_ms = match ts_span {
            None => None,
            Some((a, z)) => Some(self.timestamp(&s[a..z], a)?),
        };

        let scratch = self.scratch.as_str();
        let name = name.get(s, scratch);
        let family = if self.type_family.is_empty() {
            name
        } else {
            self.family_of(name)
        };
        sink.sample(&Sample {
            name,
            family,
            value,
            value_text,
            timestamp_ms,
            series_text: &b[..series_end],
            line: self.line_no,
            text: s,
            scratch,
            spans: &self.spans,
            layout: self.line_layout,
            plain_name,
        });
        Ok(())
    }

    /// The family `name` belongs to under the last `# TYPE`.
    #[inline]
    fn family_of<'n>(&'n self, name: &'n str) -> &'n str {
        let fam = self.type_family.as_str();
        match name.strip_prefix(fam) {
            Some("") => fam,
            Some(suffix) if self.type_kind.suffixes().contains(&suffix) => fam,
            _ => name,
        }
    }

    /// Parses a label block from just after `{`; returns the index after `}`. A quoted string
    /// followed by `,` or `}`, or a `__name__` label, sets `name`.
    ///
    /// Labels matching the cached layout of an earlier line (`name="` at the expected place)
    /// take a fast path; the others are scanned, checked against the name charset and for
    /// duplicates, with blanks allowed between all tokens.
    fn label_block(
        &mut self,
        s: &str,
        mut i: usize,
        name: &mut Option<Piece>,
    ) -> Result<usize, ParseError> {
        let b = s.as_bytes();
        // All labels so far matched `layouts[cur]`, and are therefore valid and distinct.
        let mut on_layout = true;
        let mut cur = self.last_layout;
        // Duplicate check: `max_idx` is the index in `spans` of the greatest name so far (while
        // names arrive in increasing order, as most writers sort them, one comparison proves a
        // new name unique); `seen` has one bit per name hash, so that a name whose bit is clear
        // is unique too. Only the rest are compared with every earlier name.
        let mut max_idx = 0;
        let mut seen = 0u64;
        let close = 'labels: loop {
            if on_layout {
                // Fast path: `name="` as in the layout, the value, then `,` or `}`.
                let mut layout = self.layouts.get(cur);
                loop {
                    let k = self.spans.len();
                    let mut hit = layout.and_then(|l| l.matches(k, b, i));
                    if hit.is_none() {
                        if let Some((j, p)) = switch_slot(&self.layouts, cur, k, b, i, false) {
                            cur = j;
                            layout = self.layouts.get(j);
                            hit = p;
                        }
                    }
                    let Some(p) = hit else {
                        break;
                    };
                    let lname = Piece::line(i, i + p.len() - 2);
                    let Some((value, end)) = quoted(&mut self.scratch, s, i + p.len() - 1) else {
                        return Err(self.unterminated_value(s, i + p.len() - 1, lname));
                    };
                    self.spans.push(LabelSpan { name: lname, value });
                    match b.get(end) {
                        Some(b',') => i = end + 1,
                        Some(b'}') => break 'labels end + 1,
                        _ => match self.after_value(s, end, lname)? {
                            Step::Next(j) => i = j,
                            Step::Close(j) => break 'labels j,
                        },
                    }
                }
                on_layout = false;
                (max_idx, seen) = self.dup_state(b);
            }

            let mut c = b.get(i).copied();
            if c.is_some_and(is_ws) {
                i = skip_ws(b, i);
                c = b.get(i).copied();
            }
            let name_at = i;
            let lname = match c {
                Some(c) if has_class(c, LABEL_START) => {
                    let end = scan_class(b, i + 1, LABEL_CHAR);
                    i = skip_ws(b, end);
                    if b.get(i) != Some(&b'=') {
                        return Err(self.err(
                            i + 1,
                            format_args!("expected '=' after label name {:?}", &s[name_at..end]),
                        ));
                    }
                    Piece::line(name_at, end)
                }
                Some(b'}') => break i + 1,
                Some(b'"') => {
                    let Some((q, end)) = quoted(&mut self.scratch, s, i) else {
                        return Err(self.err(
                            i + 1,
                            format_args!("unterminated quoted name (missing closing '\"')"),
                        ));
                    };
                    let j = skip_ws(b, end);
                    match b.get(j) {
                        Some(b'=') => {
                            i = j;
                            q
                        }
                        Some(&c @ (b',' | b'}')) => {
                            self.set_name(name, q, s, name_at)?;
                            if c == b'}' {
                                break j + 1;
                            }
                            i = j + 1;
                            continue;
                        }
                        _ => {
                            return Err(self.err(
                                j + 1,
                                format_args!(
                                    "expected '=', ',' or '}}' after quoted name {:?}",
                                    q.get(s, &self.scratch)
                                ),
                            ))
                        }
                    }
                }
                Some(_) => {
                    return Err(self.err(i + 1, format_args!("expected label name or '}}'")));
                }
                None => {
                    return Err(self.err(
                        i + 1,
                        format_args!("expected label name or '}}' (unterminated label set)"),
                    ));
                }
            };
            // `b[i]` is '='.
            i = skip_ws(b, i + 1);
            let (value, end) = self.label_value(s, i, lname)?;
            let lname_bytes = lname.bytes(b, self.scratch.as_bytes());
            if lname_bytes == b"__name__" {
                self.set_name(name, value, s, name_at)?;
            } else {
                if lname_bytes.is_empty() {
                    return Err(self.err(name_at + 1, format_args!("empty label name")));
                }
                let bit = name_bit(lname_bytes);
                if let Some(max) = self.spans.get(max_idx) {
                    let scratch = self.scratch.as_bytes();
                    if bytes_greater(lname_bytes, max.name.bytes(b, scratch)) {
                        max_idx = self.spans.len();
                    } else if seen & bit != 0
                        && self
                            .spans
                            .iter()
                            .any(|l| bytes_eq(l.name.bytes(b, scratch), lname_bytes))
                    {
                        return Err(self.err(
                            name_at + 1,
                            format_args!("duplicate label name {:?}", lname.get(s, &self.scratch)),
                        ));
                    }
                }
                seen |= bit;
                self.spans.push(LabelSpan { name: lname, value });
            }
            match self.after_value(s, end, lname)? {
                Step::Next(j) => i = j,
                Step::Close(j) => break j,
            }
        };
        let k = self.spans.len();
        if on_layout && self.layouts.get(cur).is_some_and(|l| l.patterns.len() != k) {
            // A shorter label set, e.g. `_sum` after `_bucket` with a trailing `le`.
            match switch_slot(&self.layouts, cur, k, b, 0, true) {
                Some((j, _)) => cur = j,
                None => on_layout = false,
            }
        }
        if on_layout {
            self.last_layout = cur;
            self.layout_misses = 0;
            self.line_layout = self.layouts.get(cur).map_or(0, |l| l.id);
        } else {
            // When label sets keep changing from line to line (as in kube-state-metrics'
            // `*_labels` series), remembering each is wasted work: then only every 8th is.
            self.layout_misses = self.layout_misses.saturating_add(1);
            self.line_layout = 0;
            if (self.layout_misses <= 4 || self.layout_misses % 8 == 0) && self.remember_layout(b) {
                self.line_layout = self.layouts.get(self.last_layout).map_or(0, |l| l.id);
            }
        }
        Ok(close)
    }

    /// The quoted value of label `lname` whose opening quote should be at `i`: the value and the
    /// index after its closing quote.
    #[inline(always)]
    fn label_value(
        &mut self,
        s: &str,
        i: usize,
        lname: Piece,
    ) -> Result<(Piece, usize), ParseError> {
        if s.as_bytes().get(i) != Some(&b'"') {
            return Err(self.err(
                i + 1,
                format_args!(
                    "expected '\"' to open the value of label {:?}",
                    lname.get(s, &self.scratch)
                ),
            ));
        }
        match quoted(&mut self.scratch, s, i) {
            Some(v) => Ok(v),
            None => Err(self.unterminated_value(s, i, lname)),
        }
    }

    /// The value of label `lname`, opened at `q`, never closes.
    #[cold]
    fn unterminated_value(&self, s: &str, q: usize, lname: Piece) -> ParseError {
        self.err(
            q + 1,
            format_args!(
                "unterminated value of label {:?} (missing closing '\"')",
                lname.get(s, &self.scratch)
            ),
        )
    }

    /// What follows the value of label `lname` that ends at `end`: `,` (or, as `promparse`
    /// tolerates, just blanks) and the next label, or `}`.
    #[inline(always)]
    fn after_value(&self, s: &str, end: usize, lname: Piece) -> Result<Step, ParseError> {
        let b = s.as_bytes();
        let mut i = end;
        let mut c = b.get(i).copied();
        if c.is_some_and(is_ws) {
            i = skip_ws(b, i);
            c = b.get(i).copied();
        }
        match c {
            Some(b',') => Ok(Step::Next(i + 1)),
            Some(b'}') => Ok(Step::Close(i + 1)),
            Some(_) if i > end => Ok(Step::Next(i)),
            _ => Err(self.err(
                i + 1,
                format_args!(
                    "expected ',' or '}}' after the value of label {:?}",
                    lname.get(s, &self.scratch)
                ),
            )),
        }
    }

    /// The duplicate-check state for the labels so far: index in `spans` of the greatest name,
    /// and the [`name_bit`]s of all names.
    fn dup_state(&self, b: &[u8]) -> (usize, u64) {
        let scratch = self.scratch.as_bytes();
        let mut max = 0;
        let mut seen = 0;
        for (k, l) in self.spans.iter().enumerate() {
            let name = l.name.bytes(b, scratch);
            seen |= name_bit(name);
            if let Some(m) = self.spans.get(max) {
                if bytes_greater(name, m.name.bytes(b, scratch)) {
                    max = k;
                }
            }
        }
        (max, seen)
    }

    /// Makes the labels of the current line a layout later lines are matched against, in the
    /// slot after the one used last (round robin).
    ///
    /// Only sets of plain label names qualify: a pattern made from a quoted name such as
    /// `label.x` would otherwise accept `label.x="v"` unquoted, which is invalid.
    fn remember_layout(&mut self, b: &[u8]) -> bool {
        let scratch = self.scratch.as_bytes();
        let plain = self.spans.iter().all(|l| {
            let name = l.name.bytes(b, scratch);
            name.first().is_some_and(|&c| has_class(c, LABEL_START))
                && scan_class(name, 0, LABEL_CHAR) == name.len()
        });
        if !plain {
            return false;
        }
        let slot = (self.last_layout + 1) % CACHE_SLOTS;
        if let Some(layout) = self.layouts.get_mut(slot) {
            layout.fill(
                self.spans
                    .iter()
                    .map(|l| (l.name.bytes(b, scratch), &b"=\""[..])),
            );
        }
        self.last_layout = slot;
        true
    }

    /// End of the unquoted metric name starting at `b[i]`, a metric-name start character:
    /// matched against recent names, scanned (and remembered) if none matches.
    #[inline]
    fn metric_name_end(&mut self, b: &[u8], i: usize) -> usize {
        let ends_here = |end: usize| !b.get(end).is_some_and(|&c| has_class(c, METRIC_CHAR));
        let last = self.last_name;
        if let Some(p) = self.names.get(last).and_then(|n| n.matches(0, b, i)) {
            if ends_here(i + p.len()) {
                return i + p.len();
            }
        }
        for (j, n) in self.names.iter().enumerate() {
            if let Some(p) = n.matches(0, b, i) {
                if j != last && ends_here(i + p.len()) {
                    self.last_name = j;
                    return i + p.len();
                }
            }
        }
        let end = scan_class(b, i + 1, METRIC_CHAR);
        let slot = (last + 1) % CACHE_SLOTS;
        if let Some(n) = self.names.get_mut(slot) {
            n.fill(std::iter::once((&b[i..end], &[][..])));
        }
        self.last_name = slot;
        end
    }

    /// Sets the metric name from inside the braces, refusing a second or empty one.
    fn set_name(
        &self,
        name: &mut Option<Piece>,
        value: Piece,
        s: &str,
        at: usize,
    ) -> Result<(), ParseError> {
        if let Some(old) = name {
            return Err(self.err(
                at + 1,
                format_args!(
                    "metric name given twice (already {:?})",
                    old.get(s, &self.scratch)
                ),
            ));
        }
        if value.is_empty() {
            return Err(self.err(at + 1, format_args!("empty metric name")));
        }
        *name = Some(value);
        Ok(())
    }

    /// Checks and skips an exemplar ` # {labels} value [timestamp]` starting at the `#` at `i`.
    fn exemplar(&mut self, s: &str, i: usize) -> Result<(), ParseError> {
        let b = s.as_bytes();
        let mut j = i + 1;
        if !b.get(j).is_some_and(|&c| is_ws(c)) {
            return Err(self.err(j + 1, format_args!("expected ' ' after '#' of an exemplar")));
        }
        j = skip_ws(b, j);
        if b.get(j) != Some(&b'{') {
            return Err(self.err(
                j + 1,
                format_args!("expected '{{' to open the label set of an exemplar"),
            ));
        }
        j += 1;
        loop {
            j = skip_ws(b, j);
            match b.get(j) {
                Some(b'}') => {
                    j += 1;
                    break;
                }
                Some(b'"') => match skip_quoted(b, j) {
                    Some(end) => j = end,
                    None => {
                        return Err(self.err(
                            j + 1,
                            format_args!("unterminated quoted label name in exemplar"),
                        ))
                    }
                },
                Some(&c) if has_class(c, LABEL_START) => j = scan_class(b, j + 1, LABEL_CHAR),
                _ => {
                    return Err(self.err(
                        j + 1,
                        format_args!("expected label name or '}}' in exemplar"),
                    ))
                }
            }
            j = skip_ws(b, j);
            if b.get(j) != Some(&b'=') {
                return Err(self.err(
                    j + 1,
                    format_args!("expected '=' after exemplar label name"),
                ));
            }
            j = skip_ws(b, j + 1);
            if b.get(j) != Some(&b'"') {
                return Err(self.err(
                    j + 1,
                    format_args!("expected '\"' to open an exemplar label value"),
                ));
            }
            j = match skip_quoted(b, j) {
                Some(end) => end,
                None => {
                    return Err(self.err(
                        j + 1,
                        format_args!("unterminated exemplar label value (missing closing '\"')"),
                    ))
                }
            };
            j = skip_ws(b, j);
            match b.get(j) {
                Some(b',') => j += 1,
                Some(b'}') => {}
                _ => {
                    return Err(self.err(
                        j + 1,
                        format_args!("expected ',' or '}}' in exemplar label set"),
                    ))
                }
            }
        }
        // Value and optional timestamp: both floats.
        for what in ["value", "timestamp"] {
            let start = skip_ws(b, j);
            if start == b.len() {
                if what == "value" {
                    return Err(self.err(start + 1, format_args!("expected exemplar value")));
                }
                break;
            }
            if start == j {
                return Err(self.err(
                    start + 1,
                    format_args!("expected whitespace before exemplar {what}"),
                ));
            }
            j = token_end(b, start);
            if parse_go_float(&s[start..j]).is_none() {
                return Err(self.err(
                    start + 1,
                    format_args!("expected a float exemplar {what}, found {:?}", &s[start..j]),
                ));
            }
        }
        let end = skip_ws(b, j);
        if end < b.len() {
            return Err(self.err(end + 1, format_args!("unexpected text after exemplar")));
        }
        self.om_seen = true;
        Ok(())
    }

    /// Reads a timestamp token per [`Format`]; `at` is its index in the line.
    fn timestamp(&self, t: &str, at: usize) -> Result<i64, ParseError> {
        let floaty = t.bytes().any(|c| matches!(c, b'.' | b'e' | b'E'));
        let res = match self.format {
            Format::Text => t.parse::<i64>().map_err(|_| TsError::Syntax),
            Format::OpenMetrics if floaty => seconds_to_ms(t),
            Format::OpenMetrics => int_seconds_to_ms(t),
            Format::Auto if floaty => seconds_to_ms(t),
            Format::Auto => match t.parse::<i64>() {
                Ok(v) if self.om_seen && v.unsigned_abs() < 100_000_000_000 => Ok(v * 1000),
                Ok(v) => Ok(v),
                Err(_) => Err(TsError::Syntax),
            },
        };
        res.map_err(|e| {
            let unit = match self.format {
                Format::Text => "integer milliseconds",
                Format::OpenMetrics => "seconds",
                Format::Auto => "integer milliseconds or float seconds",
            };
            match e {
                TsError::Syntax => self.err(
                    at + 1,
                    format_args!("expected a timestamp in {unit}, found {t:?}"),
                ),
                TsError::Range => self.err(at + 1, format_args!("timestamp {t:?} out of range")),
            }
        })
    }

    /// A `#` line; `i` is the index of `#`.
    fn comment<S: Sink + ?Sized>(
        &mut self,
        b: &[u8],
        text: Option<&str>,
        i: usize,
        sink: &mut S,
    ) -> Result<(), ParseError> {
        // `#` not followed by a blank is a plain comment, as in `promparse`.
        if !b.get(i + 1).is_some_and(|&c| is_ws(c)) {
            return Ok(());
        }
        let k = skip_ws(b, i + 1);
        let rest = &b[k..];
        let kind = if rest.starts_with(b"HELP") {
            MetaKind::Help
        } else if rest.starts_with(b"TYPE") {
            MetaKind::Type
        } else if rest.starts_with(b"UNIT") {
            MetaKind::Unit
        } else {
            if rest.starts_with(b"EOF")
                && skip_ws(rest, 3) == rest.len()
                && self.format != Format::Text
            {
                self.eof = true;
                self.om_seen = true;
            }
            return Ok(());
        };
        // A keyword not followed by a blank (`# HELPx`, `# HELP`) is a plain comment.
        if !b.get(k + 4).is_some_and(|&c| is_ws(c)) {
            return Ok(());
        }
        let s = match text {
            Some(s) => s,
            None => self.utf8(b)?,
        };
        self.scratch.clear();
        let keyword = &s[k..k + 4];

        // The family name, plain or quoted.
        let n = skip_ws(b, k + 4);
        let (family, name_end) = match b.get(n) {
            Some(b'"') => match quoted(&mut self.scratch, s, n) {
                Some(q) => q,
                None => {
                    return Err(self.err(
                        n + 1,
                        format_args!("unterminated quoted metric name in {keyword}"),
                    ))
                }
            },
            Some(&c) if has_class(c, METRIC_START) => {
                let end = scan_class(b, n + 1, METRIC_CHAR);
                (Piece::line(n, end), end)
            }
            _ => return Err(self.err(n + 1, format_args!("expected metric name after {keyword}"))),
        };
        if family.is_empty() {
            return Err(self.err(n + 1, format_args!("empty metric name in {keyword}")));
        }
        let text = match b.get(name_end) {
            None => Piece::line(name_end, name_end),
            Some(&c) if is_ws(c) => {
                if kind == MetaKind::Help {
                    // Exactly one blank separates name and text, as in `promparse`.
                    let t = name_end + 1;
                    match memchr(b'\\', &b[t..]) {
                        None => Piece::line(t, b.len()),
                        Some(bs) => {
                            let quote_escape = self.format == Format::OpenMetrics;
                            match unescape_into(
                                &mut self.scratch,
                                s,
                                t,
                                t + bs,
                                false,
                                quote_escape,
                            ) {
                                Some((p, _)) => p,
                                None => Piece::line(t, b.len()),
                            }
                        }
                    }
                } else {
                    let t = skip_ws(b, name_end);
                    let mut e = b.len();
                    while e > t && is_ws(b[e - 1]) {
                        e -= 1;
                    }
                    Piece::line(t, e)
                }
            }
            Some(_) => {
                return Err(self.err(
                    name_end + 1,
                    format_args!("expected whitespace after the metric name in {keyword}"),
                ))
            }
        };

        let text_col = if text.in_scratch() {
            name_end + 2
        } else {
            text.start() + 1
        };
        let scratch = self.scratch.as_str();
        let family = family.get(s, scratch);
        let text = text.get(s, scratch);
        match kind {
            MetaKind::Type => {
                let Some(ty) = family_type(text) else {
                    let msg = if text.is_empty() {
                        format_args!("expected a metric type after {family:?}")
                    } else {
                        format_args!("unknown metric type {text:?} for {family:?}")
                    };
                    return Err(self.err(text_col, msg));
                };
                self.type_family.clear();
                self.type_family.push_str(family);
                self.type_kind = ty;
            }
            MetaKind::Help | MetaKind::Unit => {
                if family != self.type_family {
                    self.type_family.clear();
                    self.type_kind = FamilyType::Plain;
                }
                if kind == MetaKind::Unit {
                    self.om_seen = true;
                }
            }
        }
        sink.metadata(&Metadata { kind, family, text });
        Ok(())
    }
}

/// OpenMetrics float seconds to milliseconds, rounded to nearest.
fn seconds_to_ms(t: &str) -> Result<i64, TsError> {
    let secs = parse_go_float(t).ok_or(TsError::Syntax)?;
    if secs.is_nan() {
        return Err(TsError::Syntax);
    }
    let ms = (secs * 1000.0).round();
    // `i64::MAX as f64` rounds up to 2^63, so the bound is exclusive.
    let limit = 2f64.powi(63);
    if (-limit..limit).contains(&ms) {
        Ok(ms as i64)
    } else {
        Err(TsError::Range)
    }
}

/// OpenMetrics integer seconds to milliseconds.
fn int_seconds_to_ms(t: &str) -> Result<i64, TsError> {
    let secs = t.parse::<i64>().map_err(|_| TsError::Syntax)?;
    secs.checked_mul(1000).ok_or(TsError::Range)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::render;

    /// An owned copy of a sample.
    #[derive(Debug, Clone, PartialEq)]
    struct S {
        name: String,
        family: String,
        labels: Vec<(String, String)>,
        value_bits: u64,
        value_text: String,
        ts: Option<i64>,
        series: String,
        line: u64,
    }

    impl S {
        fn value(&self) -> f64 {
            f64::from_bits(self.value_bits)
        }
        fn labels(&self) -> Vec<(&str, &str)> {
            self.labels
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect()
        }
    }

    #[derive(Debug, Clone, PartialEq)]
    enum Ev {
        Meta(MetaKind, String, String),
        Sample(S),
    }

    #[derive(Default)]
    struct Rec(Vec<Ev>);

    impl Sink for Rec {
        fn metadata(&mut self, m: &Metadata<'_>) {
            self.0
                .push(Ev::Meta(m.kind, m.family.to_string(), m.text.to_string()));
        }
        fn sample(&mut self, s: &Sample<'_>) {
            assert_eq!(s.label_count(), s.labels().count());
            self.0.push(Ev::Sample(S {
                name: s.name.to_string(),
                family: s.family.to_string(),
                labels: s
                    .labels()
                    .map(|(n, v)| (n.to_string(), v.to_string()))
                    .collect(),
                value_bits: s.value.to_bits(),
                value_text: s.value_text.to_string(),
                ts: s.timestamp_ms,
                series: String::from_utf8_lossy(s.series_text).into_owned(),
                line: s.line,
            }));
        }
    }

    fn opts(format: Format) -> ParseOptions {
        ParseOptions {
            format,
            ..ParseOptions::default()
        }
    }

    /// Feeds `chunks` then finishes; events and the first error.
    fn run(chunks: &[&[u8]], o: ParseOptions) -> (Vec<Ev>, Result<(), ParseError>) {
        let mut p = Parser::new(o);
        let mut rec = Rec::default();
        for c in chunks {
            if let Err(e) = p.feed(c, &mut rec) {
                return (rec.0, Err(e));
            }
        }
        let r = p.finish(&mut rec);
        (rec.0, r)
    }

    fn events_fmt(input: &str, format: Format) -> Vec<Ev> {
        let (ev, r) = run(&[input.as_bytes()], opts(format));
        if let Err(e) = r {
            panic!("unexpected error {e} for {input:?}");
        }
        ev
    }

    fn events(input: &str) -> Vec<Ev> {
        events_fmt(input, Format::Auto)
    }

    fn samples_fmt(input: &str, format: Format) -> Vec<S> {
        events_fmt(input, format)
            .into_iter()
            .filter_map(|e| match e {
                Ev::Sample(s) => Some(s),
                Ev::Meta(..) => None,
            })
            .collect()
    }

    fn samples(input: &str) -> Vec<S> {
        samples_fmt(input, Format::Auto)
    }

    fn one(input: &str) -> S {
        let mut s = samples(input);
        assert_eq!(s.len(), 1, "{input:?}");
        s.remove(0)
    }

    fn err_bytes(input: &[u8], format: Format) -> ParseError {
        match run(&[input], opts(format)).1 {
            Ok(()) => panic!("expected an error for {:?}", String::from_utf8_lossy(input)),
            Err(e) => e,
        }
    }

    fn err(input: &str) -> ParseError {
        err_bytes(input.as_bytes(), Format::Auto)
    }

    /// Asserts the error position and that the message contains `msg`.
    fn assert_err(input: &str, line: u64, column: usize, msg: &str) {
        let e = err(input);
        assert_eq!((e.line, e.column), (line, column), "{input:?}: {e}");
        assert!(e.message.contains(msg), "{input:?}: {e}");
    }

    fn ts_of(input: &str, format: Format) -> Option<i64> {
        let s = samples_fmt(input, format);
        assert_eq!(s.len(), 1, "{input:?}");
        s[0].ts
    }

    #[test]
    fn simple_sample() {
        let s = one("x 1\n");
        assert_eq!(s.name, "x");
        assert_eq!(s.family, "x");
        assert!(s.labels.is_empty());
        assert_eq!(s.value(), 1.0);
        assert_eq!(s.value_text, "1");
        assert_eq!(s.ts, None);
        assert_eq!(s.series, "x");
        assert_eq!(s.line, 1);
    }

    #[test]
    fn sample_with_labels_and_timestamp() {
        let s = one("http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n");
        assert_eq!(s.name, "http_requests_total");
        assert_eq!(s.labels(), [("method", "post"), ("code", "200")]);
        assert_eq!(s.value(), 1027.0);
        assert_eq!(s.ts, Some(1_395_066_363_000));
        assert_eq!(
            s.series,
            "http_requests_total{method=\"post\",code=\"200\"}"
        );
    }

    #[test]
    fn colon_in_metric_name() {
        let s = one("job:rate5m{a=\"b\"} 3");
        assert_eq!(s.name, "job:rate5m");
        assert_eq!(s.labels(), [("a", "b")]);
    }

    #[test]
    fn name_inside_braces() {
        let s = one("{__name__=\"x\",a=\"b\"} 2\n");
        assert_eq!(s.name, "x");
        assert_eq!(s.labels(), [("a", "b")]);
        assert_eq!(s.series, "{__name__=\"x\",a=\"b\"}");
        let s = one("{a=\"b\", __name__=\"x\"} 2\n");
        assert_eq!(s.name, "x");
        assert_eq!(s.labels(), [("a", "b")]);
    }

    #[test]
    fn quoted_utf8_names() {
        let s = one("{\"my.metric\", \"label.x\"=\"v\", \"ünï cødé\"=\"ç\", plain=\"p\"} 1\n");
        assert_eq!(s.name, "my.metric");
        assert_eq!(s.family, "my.metric");
        assert_eq!(
            s.labels(),
            [("label.x", "v"), ("ünï cødé", "ç"), ("plain", "p")]
        );
        // The quoted name may come anywhere, and alone.
        let s = one("{a=\"1\", \"my.metric\"} 1");
        assert_eq!(s.name, "my.metric");
        assert_eq!(s.labels(), [("a", "1")]);
        let s = one("{\"my.metric\"} 1");
        assert_eq!(s.name, "my.metric");
        assert_eq!(s.series, "{\"my.metric\"}");
        // Quoted names unescape like values; a quoted `__name__` label is the name.
        let s = one(r#"{"a\"b", "c\\d"="e"} 1"#);
        assert_eq!(s.name, "a\"b");
        assert_eq!(s.labels(), [("c\\d", "e")]);
        let s = one(r#"{"__name__"="q.x"} 1"#);
        assert_eq!(s.name, "q.x");
    }

    #[test]
    fn whitespace_and_tabs() {
        let line = " \tx \t{ a = \"1\" ,\tb=\"2\" , } \t 3 \t 4 \t\n";
        let s = one(line);
        assert_eq!(s.name, "x");
        assert_eq!(s.labels(), [("a", "1"), ("b", "2")]);
        assert_eq!(s.value_text, "3");
        assert_eq!(s.ts, Some(4));
        assert_eq!(s.series, " \tx \t{ a = \"1\" ,\tb=\"2\" , }");
        // No blank needed between `}` and the value.
        assert_eq!(one("x{a=\"1\"}5").value(), 5.0);
        // Blank-only lines are skipped but counted.
        let s = samples("x 1\n \t \n\ny 2\n");
        assert_eq!(s[1].line, 4);
    }

    #[test]
    fn trailing_comma_empty_braces_missing_comma() {
        assert_eq!(one("x{a=\"1\",} 1").labels(), [("a", "1")]);
        let s = one("x{} 1");
        assert!(s.labels.is_empty());
        assert_eq!(s.series, "x{}");
        // `promparse` accepts labels separated by blanks only.
        assert_eq!(
            one("x{a=\"1\" b=\"2\"} 1").labels(),
            [("a", "1"), ("b", "2")]
        );
        // Empty values are reported as written.
        assert_eq!(one("x{a=\"\"} 1").labels(), [("a", "")]);
    }

    #[test]
    fn crlf_line_ends() {
        let s = samples("x 1\r\ny{a=\"b\"} 2 3\r\n# HELP z h\r\nz 4\r");
        assert_eq!(s.len(), 3);
        assert_eq!(s[0].value_text, "1");
        assert_eq!(s[1].ts, Some(3));
        assert_eq!(s[2].value_text, "4");
        assert_eq!(
            events("# HELP z h\r\n")[0],
            Ev::Meta(MetaKind::Help, "z".into(), "h".into())
        );
    }

    #[test]
    fn label_value_escapes() {
        let s =
            one(r#"x{a="q\"uote",b="back\\slash",c="new\nline",d="tab\t",e="\\n",f="plain"} 1"#);
        assert_eq!(
            s.labels(),
            [
                ("a", "q\"uote"),
                ("b", "back\\slash"),
                ("c", "new\nline"),
                // Unknown escapes stay verbatim, as with Prometheus' strings.Replacer.
                ("d", "tab\\t"),
                ("e", "\\n"),
                ("f", "plain"),
            ]
        );
    }

    #[test]
    fn value_ending_in_backslash() {
        let s = one(r#"x{a="end\\",b="c"} 1"#);
        assert_eq!(s.labels(), [("a", "end\\"), ("b", "c")]);
        assert_eq!(one(r#"x{a="\\"} 1"#).labels(), [("a", "\\")]);
        assert_eq!(one(r#"x{a="\\\\"} 1"#).labels(), [("a", "\\\\")]);
        assert_eq!(one(r#"x{a="\""} 1"#).labels(), [("a", "\"")]);
        // `\"` does not close the value.
        assert_err(r#"x{a="b\"} 1"#, 1, 5, "unterminated value of label \"a\"");
    }

    #[test]
    fn scratch_reused_across_lines() {
        let s = samples("x{a=\"1\\n\"} 1\ny{b=\"2\\\\\",c=\"3\"} 2\nz{d=\"x\"} 3\n");
        assert_eq!(s[0].labels(), [("a", "1\n")]);
        assert_eq!(s[1].labels(), [("b", "2\\"), ("c", "3")]);
        assert_eq!(s[2].labels(), [("d", "x")]);
    }

    #[test]
    fn float_forms() {
        let cases: &[(&str, f64)] = &[
            ("1", 1.0),
            ("0", 0.0),
            ("-1.5e-3", -1.5e-3),
            ("+Inf", f64::INFINITY),
            ("-Inf", f64::NEG_INFINITY),
            ("Inf", f64::INFINITY),
            ("inf", f64::INFINITY),
            ("+infinity", f64::INFINITY),
            ("-Infinity", f64::NEG_INFINITY),
            ("1e10", 1e10),
            ("1E5", 1e5),
            ("1e+05", 1e5),
            (".5", 0.5),
            ("5.", 5.0),
            ("+3", 3.0),
            ("0.25", 0.25),
            ("123456789012345678901234", 1.2345678901234568e23),
            ("1e-400", 0.0),
            ("007", 7.0),
        ];
        for &(text, want) in cases {
            let s = one(&format!("x {text}\n"));
            assert_eq!(s.value(), want, "{text}");
            assert_eq!(s.value_text, text);
        }
        let s = one("x -0");
        assert!(s.value() == 0.0 && s.value().is_sign_negative());
        for nan in ["NaN", "nan", "NAN"] {
            assert!(one(&format!("x {nan}")).value().is_nan(), "{nan}");
        }
    }

    #[test]
    fn go_rejected_floats() {
        for bad in [
            "0x1p3", "0x10", "1_000", "1p3", "+nan", "-NaN", "1e400", "-1e400", "", ".", "e5",
            "E5", "1e", "1e+", "abc", "1.5.5", "in", "infi", "infinit", "nanx", "--1", "+-1",
            "1,5", "١", "1 ", " 1",
        ] {
            assert_eq!(parse_go_float(bad), None, "{bad:?} must be rejected");
        }
        assert_err("x 0x1p3", 1, 3, "expected a float value, found \"0x1p3\"");
        assert_err("x{a=\"b\"} 1_0", 1, 10, "expected a float value");
    }

    #[test]
    fn millisecond_timestamps() {
        for f in [Format::Auto, Format::Text] {
            assert_eq!(ts_of("x 1 1395066363000", f), Some(1_395_066_363_000));
            assert_eq!(ts_of("x 1 -5", f), Some(-5));
            assert_eq!(ts_of("x 1 12", f), Some(12));
        }
        let e = err_bytes(b"x 1 1.5", Format::Text);
        assert_eq!((e.line, e.column), (1, 5));
        assert!(e.message.contains("integer milliseconds"), "{e}");
        assert_err("x 1 99999999999999999999", 1, 5, "timestamp");
        assert_err("x 1 abc", 1, 5, "expected a timestamp");
        assert_err("x 1 NaN", 1, 5, "expected a timestamp");
    }

    #[test]
    fn openmetrics_second_timestamps() {
        // Written as a float: seconds, in Auto and OpenMetrics.
        for f in [Format::Auto, Format::OpenMetrics] {
            assert_eq!(ts_of("x 1 1520879607.789", f), Some(1_520_879_607_789));
            assert_eq!(ts_of("x 1 1.5e3", f), Some(1_500_000));
            assert_eq!(ts_of("x 1 -0.5", f), Some(-500));
        }
        // OpenMetrics: integers are seconds too.
        assert_eq!(
            ts_of("x 1 1520879607", Format::OpenMetrics),
            Some(1_520_879_607_000)
        );
        // Auto: an integer is milliseconds without an OpenMetrics feature...
        assert_eq!(ts_of("x 1 1520879607", Format::Auto), Some(1_520_879_607));
        // ... and seconds after one, when below 1e11.
        let s = samples("# UNIT x seconds\nx 1 1520879607\nx 2 1520879607000\n");
        assert_eq!(s[0].ts, Some(1_520_879_607_000));
        assert_eq!(s[1].ts, Some(1_520_879_607_000));
        let s = samples("a 1 1520879607 # {t=\"1\"} 1\nb 1 1520879607\n");
        assert_eq!(
            s[0].ts,
            Some(1_520_879_607_000),
            "exemplar on the same line"
        );
        assert_eq!(s[1].ts, Some(1_520_879_607_000));
        // Out of range or not finite.
        assert_err("x 1 1e300", 1, 5, "out of range");
        assert_err("x 1 +Inf.", 1, 5, "expected a timestamp");
        let e = err_bytes(b"x 1 9223372036854775807", Format::OpenMetrics);
        assert!(e.message.contains("out of range"), "{e}");
    }

    #[test]
    fn help_text() {
        let ev = events("# HELP x a\\\\b\\nc \\t end \\q\\\n");
        assert_eq!(
            ev,
            [Ev::Meta(
                MetaKind::Help,
                "x".into(),
                "a\\b\nc \\t end \\q\\".into()
            )]
        );
        // Exactly one blank is the separator; trailing blanks are kept.
        assert_eq!(
            events("# HELP x  two \n"),
            [Ev::Meta(MetaKind::Help, "x".into(), " two ".into())]
        );
        assert_eq!(
            events("#\tHELP\tx\n"),
            [Ev::Meta(MetaKind::Help, "x".into(), "".into())]
        );
        // `\"` is an escape only in OpenMetrics help text.
        let line = "# HELP x say \\\"hi\\\"\n";
        assert_eq!(
            events_fmt(line, Format::Text),
            [Ev::Meta(
                MetaKind::Help,
                "x".into(),
                "say \\\"hi\\\"".into()
            )]
        );
        assert_eq!(
            events_fmt(line, Format::OpenMetrics),
            [Ev::Meta(MetaKind::Help, "x".into(), "say \"hi\"".into())]
        );
        assert_eq!(
            events("# HELP \"my.metric\" UTF-8 ✓\n"),
            [Ev::Meta(
                MetaKind::Help,
                "my.metric".into(),
                "UTF-8 ✓".into()
            )]
        );
    }

    #[test]
    fn type_and_unit() {
        assert_eq!(
            events("# TYPE x counter\n# UNIT x seconds \n# TYPE \"my.metric\" gauge\n"),
            [
                Ev::Meta(MetaKind::Type, "x".into(), "counter".into()),
                Ev::Meta(MetaKind::Unit, "x".into(), "seconds".into()),
                Ev::Meta(MetaKind::Type, "my.metric".into(), "gauge".into()),
            ]
        );
        for t in [
            "counter",
            "gauge",
            "histogram",
            "summary",
            "untyped",
            "unknown",
            "gaugehistogram",
            "info",
            "stateset",
        ] {
            assert_eq!(
                events(&format!("# TYPE x {t}\n")),
                [Ev::Meta(MetaKind::Type, "x".into(), t.into())]
            );
        }
        assert_err("# TYPE x foo\n", 1, 10, "unknown metric type \"foo\"");
        assert_err("x 1\n# TYPE x\n", 2, 9, "expected a metric type");
        assert_err("# TYPE \n", 1, 8, "expected metric name after TYPE");
        assert_err(
            "# HELP x.y z\n",
            1,
            9,
            "expected whitespace after the metric name in HELP",
        );
        assert_err("# HELP \"x z\n", 1, 8, "unterminated quoted metric name");
    }

    #[test]
    fn ignored_comments() {
        let ev = events(
            "# hello\n#\n#HELP x y\n# HELPx y\n# HELP\n# EOFX\n# TYPE\n# \n  # indented\nx 1\n",
        );
        assert_eq!(ev.len(), 1);
        match &ev[0] {
            Ev::Sample(s) => assert_eq!(s.line, 10),
            other => panic!("{other:?}"),
        }
        // Ordinary comments are not checked for UTF-8.
        assert_eq!(run(&[b"# caf\xe9\nx 1\n"], opts(Format::Auto)).0.len(), 1);
    }

    #[test]
    fn eof_stops_input() {
        let input = "x 1\n# EOF\ny 2\ngarbage{{{\n";
        for chunked in [false, true] {
            let mut p = Parser::new(ParseOptions::default());
            let mut rec = Rec::default();
            if chunked {
                for b in input.as_bytes().chunks(3) {
                    p.feed(b, &mut rec).unwrap();
                }
            } else {
                p.feed(input.as_bytes(), &mut rec).unwrap();
            }
            assert!(p.saw_eof());
            p.feed(b"more garbage\n{{{", &mut rec).unwrap();
            p.finish(&mut rec).unwrap();
            assert!(p.saw_eof(), "still reported after finish");
            assert_eq!(rec.0.len(), 1);
            // The next input starts afresh.
            p.feed(b"z 1\n", &mut rec).unwrap();
            assert!(!p.saw_eof());
            assert_eq!(rec.0.len(), 2);
        }
        // `# EOF` with trailing blanks, no newline.
        let (ev, r) = run(&[b"x 1\n# EOF "], ParseOptions::default());
        assert!(r.is_ok() && ev.len() == 1);
        // In the 0.0.4 format it is an ordinary comment, as in promparse.
        let s = samples_fmt("x 1\n# EOF\ny 2\n", Format::Text);
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn exemplars_skipped() {
        let s = one("foo_bucket{le=\"0.1\"} 8 # {trace_id=\"KOO5S4vxi0o\", \"q.x\"=\"}\\\"\"} 0.067 1520879607.789\n");
        assert_eq!(s.value(), 8.0);
        assert_eq!(s.ts, None);
        assert_eq!(s.series, "foo_bucket{le=\"0.1\"}");
        let s = one("foo_total 17 1520879607.789 # {a=\"b\"} 1\n");
        assert_eq!(s.ts, Some(1_520_879_607_789));
        let s = one("foo_total 17 # {} 1\n");
        assert_eq!(s.value(), 17.0);
        assert_err("x 1 # {a=\"b\"}\n", 1, 14, "expected exemplar value");
        assert_err(
            "x 1 # {a=\"b\"} z\n",
            1,
            15,
            "expected a float exemplar value",
        );
        assert_err(
            "x 1 # {a=\"b\"} 1 2 3\n",
            1,
            19,
            "unexpected text after exemplar",
        );
        assert_err(
            "x 1 # a\n",
            1,
            7,
            "expected '{' to open the label set of an exemplar",
        );
        assert_err("x 1 #{a=\"b\"} 1\n", 1, 6, "expected ' ' after '#'");
        assert_err(
            "x 1 # {a=\"b} 1\n",
            1,
            10,
            "unterminated exemplar label value",
        );
        assert_err("x 1 # {a \"b\"} 1\n", 1, 10, "expected '='");
    }

    #[test]
    fn family_membership() {
        let input = "\
# HELP h A histogram.
# TYPE h histogram
h_bucket{le=\"1\"} 1
h_bucket{le=\"+Inf\"} 2
h_sum 3
h_count 2
h_created 1
h_total 5
other 1
h_sum 4
# TYPE s summary
s{quantile=\"0.5\"} 1
s_sum 1
s_count 1
s_created 1
s_bucket 1
# TYPE c counter
c_total 1
c_created 1
c 1
c_sum 1
# TYPE g gauge
g 1
g_sum 1
# TYPE gh gaugehistogram
gh_bucket{le=\"1\"} 1
gh_gcount 1
gh_gsum 1
gh_sum 1
# TYPE i info
i_info{v=\"1\"} 1
# TYPE h2 histogram
# HELP h2_count not the histogram any more
h2_count 1
h2_bucket 1
";
        let fam: Vec<(String, String)> = samples(input)
            .into_iter()
            .map(|s| (s.name, s.family))
            .collect();
        let want = [
            ("h_bucket", "h"),
            ("h_bucket", "h"),
            ("h_sum", "h"),
            ("h_count", "h"),
            ("h_created", "h"),
            ("h_total", "h_total"),
            ("other", "other"),
            ("h_sum", "h"),
            ("s", "s"),
            ("s_sum", "s"),
            ("s_count", "s"),
            ("s_created", "s"),
            ("s_bucket", "s_bucket"),
            ("c_total", "c"),
            ("c_created", "c"),
            ("c", "c"),
            ("c_sum", "c_sum"),
            ("g", "g"),
            ("g_sum", "g_sum"),
            ("gh_bucket", "gh"),
            ("gh_gcount", "gh"),
            ("gh_gsum", "gh"),
            ("gh_sum", "gh_sum"),
            ("i_info", "i"),
            ("h2_count", "h2_count"),
            ("h2_bucket", "h2_bucket"),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|&(a, b)| (a.to_string(), b.to_string()))
            .collect();
        assert_eq!(fam, want);
        // Quoted family names work the same way.
        let s = samples("# TYPE \"my.h\" histogram\n{\"my.h_bucket\",le=\"1\"} 1\n");
        assert_eq!(s[0].family, "my.h");
    }

    #[test]
    fn duplicate_labels() {
        assert_err(
            "x{a=\"1\",b=\"2\",a=\"3\"} 1",
            1,
            15,
            "duplicate label name \"a\"",
        );
        assert_err(
            "x{b=\"1\",a=\"2\",b=\"3\"} 1",
            1,
            15,
            "duplicate label name \"b\"",
        );
        assert_err(
            "x{a=\"1\",\"a\"=\"2\"} 1",
            1,
            9,
            "duplicate label name \"a\"",
        );
        assert_err("x{__name__=\"y\"} 1", 1, 3, "metric name given twice");
        assert_err("{\"x\",\"y\"} 1", 1, 6, "metric name given twice");
        assert_err("{__name__=\"\"} 1", 1, 2, "empty metric name");
        assert_err("{\"\"=\"v\"} 1", 1, 2, "empty label name");
        // Unique names in any order are fine.
        assert_eq!(one("x{c=\"1\",a=\"2\",b=\"3\"} 1").labels.len(), 3);
        assert_eq!(one("x{a=\"1\",b=\"2\",c=\"3\"} 1").labels.len(), 3);
    }

    #[test]
    fn malformed_lines_positions() {
        assert_err("x{a=\"b", 1, 5, "unterminated value of label \"a\"");
        assert_err("x{a=\"b\"} ", 1, 10, "expected value after series");
        assert_err("x{a=\"b\"}", 1, 9, "expected value after series");
        assert_err("x", 1, 2, "expected value after series");
        assert_err(
            "x{a=b} 1",
            1,
            5,
            "expected '\"' to open the value of label \"a\"",
        );
        assert_err("x{a} 1", 1, 4, "expected '=' after label name \"a\"");
        assert_err(
            "x 1 2 3",
            1,
            7,
            "expected end of line or exemplar after timestamp",
        );
        assert_err("x abc", 1, 3, "expected a float value, found \"abc\"");
        assert_err("-x 1", 1, 1, "expected metric name or '{'");
        assert_err("\"x\" 1", 1, 1, "expected metric name or '{'");
        assert_err(
            "x.y 1",
            1,
            2,
            "expected '{' or whitespace after metric name \"x\"",
        );
        assert_err("{a=\"b\"} 1", 1, 7, "missing metric name");
        assert_err("x{a=\"1\",,} 1", 1, 9, "expected label name or '}'");
        assert_err(
            "x{a=\"1\"",
            1,
            8,
            "expected ',' or '}' after the value of label \"a\"",
        );
        assert_err("x{a=\"1\",", 1, 9, "unterminated label set");
        assert_err(
            "x{\"a\" 1} 1",
            1,
            7,
            "expected '=', ',' or '}' after quoted name \"a\"",
        );
        assert_err("x{\"a} 1", 1, 3, "unterminated quoted name");
        assert_err("x{a=\"1\"=} 1", 1, 8, "expected ',' or '}'");
        // The documented message shape, on a later line.
        let e = err("ok 1\n# HELP m h\nx{method \"GET\"} 1\n");
        assert_eq!(
            e.to_string(),
            "line 3, col 10: expected '=' after label name \"method\""
        );
    }

    #[test]
    fn events_before_an_error_are_delivered_and_error_sticks() {
        let mut p = Parser::new(ParseOptions::default());
        let mut rec = Rec::default();
        let e = p.feed(b"a 1\nb{ 2\nc 3\n", &mut rec).unwrap_err();
        assert_eq!(e.line, 2);
        assert_eq!(rec.0.len(), 1);
        assert_eq!(p.feed(b"d 4\n", &mut rec), Err(e.clone()));
        assert_eq!(p.finish(&mut rec), Err(e));
        // finish started over.
        p.feed(b"e 5\n", &mut rec).unwrap();
        p.finish(&mut rec).unwrap();
        match rec.0.last() {
            Some(Ev::Sample(s)) => assert_eq!((s.name.as_str(), s.line), ("e", 1)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn finish_parses_last_line_and_resets() {
        let mut p = Parser::new(ParseOptions::default());
        let mut rec = Rec::default();
        p.feed(b"# TYPE h histogram\nh_sum 1\nh_count", &mut rec)
            .unwrap();
        assert_eq!(rec.0.len(), 2);
        p.feed(b" 2", &mut rec).unwrap();
        assert_eq!(rec.0.len(), 2);
        p.finish(&mut rec).unwrap();
        match &rec.0[2] {
            Ev::Sample(s) => {
                assert_eq!(
                    (s.name.as_str(), s.family.as_str(), s.line),
                    ("h_count", "h", 3)
                );
            }
            other => panic!("{other:?}"),
        }
        // Reuse: line numbers and families start over.
        p.feed(b"h_count 1\n", &mut rec).unwrap();
        p.finish(&mut rec).unwrap();
        match &rec.0[3] {
            Ev::Sample(s) => assert_eq!((s.family.as_str(), s.line), ("h_count", 1)),
            other => panic!("{other:?}"),
        }
    }

    /// A multi-line input touching every construct.
    const MIXED: &str = "# HELP http_requests_total The total number of \\\\ requests.\n\
# TYPE http_requests_total counter\n\
http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n\
http_requests_total{method=\"post\",code=\"400\"}    3 1395066363000\r\n\
\n\
# A comment\n\
metric_without_timestamp_and_labels 12.47\n\
{\"my.metric\", \"label.x\"=\"v\\\"q\"} -Inf\n\
# TYPE rpc histogram\n\
rpc_bucket{le=\"0.05\",path=\"C:\\\\dir\\\\\"} 24054\n\
rpc_bucket{le=\"+Inf\",path=\"a\\nb\"} 144320\n\
rpc_sum 53423 1520879607.789\n\
rpc_count{ } 144320 # {trace=\"x\"} 1 2\n\
{__name__=\"late\",\tz=\"\"} NaN\n\
tail_without_newline{a=\"b\"} 7";

    fn run_split(input: &[u8], cuts: &[usize]) -> (Vec<Ev>, Result<(), ParseError>) {
        run_split_with(input, cuts, ParseOptions::default())
    }

    fn run_split_with(
        input: &[u8],
        cuts: &[usize],
        o: ParseOptions,
    ) -> (Vec<Ev>, Result<(), ParseError>) {
        let mut chunks = Vec::new();
        let mut last = 0;
        for &c in cuts {
            chunks.push(&input[last..c]);
            last = c;
        }
        chunks.push(&input[last..]);
        run(&chunks, o)
    }

    #[test]
    fn chunk_borders_at_every_offset() {
        let input = MIXED.as_bytes();
        let (whole, r) = run(&[input], ParseOptions::default());
        r.unwrap();
        assert_eq!(whole.len(), 13);
        for k in 0..=input.len() {
            assert_eq!(
                run_split(input, &[k]),
                (whole.clone(), Ok(())),
                "cut at {k}"
            );
        }
        for k in (0..input.len()).step_by(7) {
            for j in (k..input.len()).step_by(11) {
                assert_eq!(
                    run_split(input, &[k, j]),
                    (whole.clone(), Ok(())),
                    "{k},{j}"
                );
            }
        }
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(run(&bytes, ParseOptions::default()), (whole, Ok(())));
    }

    #[test]
    fn errors_identical_across_chunk_borders() {
        let input = b"a 1\nb{x=\"1\"} 2\nc{y=\"2\" 3\n";
        let (ev, e) = run(&[input], ParseOptions::default());
        let e = e.unwrap_err();
        assert_eq!((e.line, e.column), (3, 9));
        for k in 0..=input.len() {
            assert_eq!(
                run_split(input, &[k]),
                (ev.clone(), Err(e.clone())),
                "cut at {k}"
            );
        }
    }

    #[test]
    fn line_length_limit() {
        let o = ParseOptions {
            max_line_len: 10,
            ..ParseOptions::default()
        };
        let input = b"x 1\nlong_name_x 1\n";
        let (ev, r) = run(&[input], o.clone());
        assert_eq!(ev.len(), 1);
        let e = r.unwrap_err();
        assert_eq!((e.line, e.column), (2, 11));
        assert!(e.message.contains("limit of 10 bytes"), "{e}");
        // Same through the carry buffer, and for a final line without newline.
        for k in 0..=input.len() {
            assert_eq!(
                run_split_with(input, &[k], o.clone()).1.unwrap_err(),
                e.clone(),
                "cut at {k}"
            );
        }
        let mut p = Parser::new(o.clone());
        let mut rec = Rec::default();
        p.feed(b"x 1\n0123456789", &mut rec).unwrap();
        let e = p.feed(b"a", &mut rec).unwrap_err();
        assert_eq!((e.line, e.column), (2, 11));
        // Exactly the limit is fine.
        let (ev, r) = run(&[b"abcdefgh 1\nabcdefgh 2"], o);
        assert!(r.is_ok());
        assert_eq!(ev.len(), 2);
    }

    #[test]
    fn long_lines_and_block_edges() {
        // Lines across the 64 KiB UTF-8 blocks, and one line longer than a block.
        let mut input = String::new();
        let mut n = 0;
        while input.len() < 3 * BLOCK {
            input.push_str(&format!(
                "m{{i=\"{n}\",pad=\"{}\"}} {n}\n",
                "é".repeat(n % 50)
            ));
            n += 1;
            if n == 1000 {
                input.push_str(&format!("big{{v=\"{}\"}} 1\n", "x".repeat(BLOCK + 10)));
            }
        }
        let (whole, r) = run(&[input.as_bytes()], ParseOptions::default());
        r.unwrap();
        assert_eq!(whole.len(), n + 1);
        match &whole[1000] {
            Ev::Sample(s) => assert_eq!(s.labels[0].1.len(), BLOCK + 10),
            other => panic!("{other:?}"),
        }
        for size in [1000, 4099, BLOCK - 1, BLOCK + 1] {
            let chunks: Vec<&[u8]> = input.as_bytes().chunks(size).collect();
            assert_eq!(
                run(&chunks, ParseOptions::default()),
                (whole.clone(), Ok(())),
                "{size}"
            );
        }
    }

    #[test]
    fn invalid_utf8() {
        let e = err_bytes(b"x 1\nx{a=\"\xff\"} 1\n", Format::Auto);
        assert_eq!(
            (e.line, e.column, e.message.as_str()),
            (2, 6, "invalid UTF-8")
        );
        let e = err_bytes(b"x{a=\"ok\xc3\"} 1\n", Format::Auto);
        assert_eq!((e.line, e.column), (1, 8));
        let e = err_bytes(b"# HELP x bad \xe2\x82\n", Format::Auto);
        assert_eq!((e.line, e.column), (1, 14));
        // A multi-byte character split across chunks is fine.
        let input = "x{a=\"€\"} 1\n".as_bytes();
        for k in 0..=input.len() {
            let (ev, r) = run_split(input, &[k]);
            assert!(r.is_ok());
            match &ev[0] {
                Ev::Sample(s) => assert_eq!(s.labels(), [("a", "€")]),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn never_panics_on_odd_input() {
        let pieces: [&[u8]; 16] = [
            b"x", b"{", b"}", b"\"", b"\\", b"=", b",", b" ", b"\n", b"#", b"1", b"e", b"\xff",
            b"\r", b"HELP ", b"# ",
        ];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..3000 {
            let mut line = Vec::new();
            for _ in 0..(seed % 24) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                line.extend_from_slice(pieces[(seed % 16) as usize]);
            }
            let _ = run(&[&line], ParseOptions::default());
            let _ = run_split(&line, &[line.len() / 2]);
        }
    }

    #[test]
    fn sample_accessors() {
        struct Check;
        impl Sink for Check {
            fn metadata(&mut self, _: &Metadata<'_>) {}
            fn sample(&mut self, s: &Sample<'_>) {
                assert_eq!(s.label_value("b"), Some("x\ny"));
                assert_eq!(s.label_value("zz"), None);
                let dbg = format!("{s:?}");
                assert!(dbg.contains("(\"a\", \"1\")"), "{dbg}");
            }
        }
        let mut p = Parser::new(ParseOptions::default());
        p.feed(b"m{a=\"1\",b=\"x\\ny\"} 1\n", &mut Check).unwrap();
        let dynsink: &mut dyn Sink = &mut Check;
        p.feed(b"m{a=\"1\",b=\"x\\ny\"} 1\n", dynsink).unwrap();
    }

    #[test]
    fn word_scans_agree_with_the_byte_rules() {
        for c in 0..=255u8 {
            for pos in 0..12 {
                let mut line = vec![b'a'; 12];
                line[pos] = c;
                let label = c.is_ascii_alphanumeric() || c == b'_';
                let metric = label || c == b':';
                let want = |ok: bool| if ok { 12 } else { pos };
                assert_eq!(
                    scan_class(&line, 0, LABEL_CHAR),
                    want(label),
                    "label {c:#x}"
                );
                assert_eq!(
                    scan_class(&line, 0, METRIC_CHAR),
                    want(metric),
                    "metric {c:#x}"
                );
                assert_eq!(
                    has_class(c, LABEL_START),
                    c.is_ascii_alphabetic() || c == b'_'
                );
                assert_eq!(
                    has_class(c, METRIC_START),
                    c.is_ascii_alphabetic() || c == b'_' || c == b':'
                );
                let special = c == b'"' || c == b'\\';
                assert_eq!(
                    find_quote_or_backslash(&line, 0),
                    if special { Some(pos) } else { None },
                    "{c:#x} at {pos}"
                );
                assert_eq!(skip_quoted(&line, 0).is_some(), c == b'"' && pos > 0);
            }
        }
    }

    /// Outcome of one line: its events, or the error's column and message.
    fn outcome(p: &mut Parser, line: &[u8]) -> Result<Vec<Ev>, (usize, String)> {
        let mut rec = Rec::default();
        let r = p
            .feed(line, &mut rec)
            .and_then(|()| p.feed(b"\n", &mut rec));
        let out = match r {
            Ok(()) => Ok(rec
                .0
                .into_iter()
                .map(|e| match e {
                    Ev::Sample(s) => Ev::Sample(S { line: 0, ..s }),
                    m => m,
                })
                .collect()),
            Err(e) => Err((e.column, e.message)),
        };
        p.reset();
        out
    }

    #[test]
    fn remembered_layouts_and_names_never_change_results() {
        // Label sets that share prefixes, repeat, reorder, duplicate, quote or space out names:
        // a parser warmed by earlier lines must answer exactly as a fresh one.
        let names = [
            "a", "b", "le", "zz", "\"a.b\"", "\"b\"", "__name__", "a.b", "c1",
        ];
        let metrics = ["m_bucket", "m_sum", "m", "m_count_x", ""];
        let values = ["1", "", "x\\\"y", "long value with spaces", "\\", "é"];
        let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        let mut warm = Parser::new(ParseOptions::default());
        let mut checked = 0;
        for _ in 0..6000 {
            let mut line = String::from(metrics[next(metrics.len())]);
            line.push('{');
            let count = next(5);
            for k in 0..count {
                // Mostly stable shapes, so the caches get hits.
                let n = if next(4) == 0 {
                    next(names.len())
                } else {
                    k % 4
                };
                line.push_str(names[n]);
                line.push_str(if next(10) == 0 { " = " } else { "=" });
                line.push('"');
                line.push_str(values[next(values.len())]);
                line.push('"');
                if k + 1 < count || next(3) == 0 {
                    line.push_str(if next(10) == 0 { " , " } else { "," });
                }
            }
            line.push_str("} 1");
            let fresh = outcome(&mut Parser::new(ParseOptions::default()), line.as_bytes());
            assert_eq!(outcome(&mut warm, line.as_bytes()), fresh, "{line}");
            checked += usize::from(fresh.is_ok());
        }
        assert!(checked > 1000, "too few valid lines: {checked}");
    }

    /// What [`Sample::layout`], [`Sample::plain_name`], [`Sample::label_at`] and
    /// [`Sample::raw_labels`] promise, over
    /// random lines that share, reorder, quote and space out label names, fed in random chunks.
    #[test]
    fn layouts_identify_plain_label_name_sequences() {
        #[derive(Default)]
        struct Shapes {
            by_layout: std::collections::HashMap<u64, Vec<String>>,
            with_layout: usize,
            lines: usize,
            raw_runs: usize,
        }
        impl Sink for Shapes {
            fn metadata(&mut self, _: &Metadata<'_>) {}
            fn sample(&mut self, s: &Sample<'_>) {
                self.lines += 1;
                let text = std::str::from_utf8(s.series_text).unwrap();
                if s.plain_name() {
                    assert!(render::is_legacy_metric_name(s.name), "{text}");
                    assert!(text.starts_with(s.name), "{text}");
                }
                let mut names = Vec::new();
                for i in 0..s.label_count() {
                    let (n, v, verbatim) = s.label_at(i).unwrap();
                    assert_eq!(s.labels().nth(i), Some((n, v)));
                    if verbatim {
                        assert!(!v.contains(['\\', '"', '\n']), "{text}");
                    }
                    names.push(n.to_owned());
                }
                assert!(s.label_at(s.label_count()).is_none());
                if s.layout() == 0 {
                    return;
                }
                self.with_layout += 1;
                // raw_labels: a run is either None or exactly the rendered labels.
                for from in 0..s.label_count() {
                    for to in from + 1..=s.label_count() {
                        let Some(raw) = s.raw_labels(from, to) else {
                            continue;
                        };
                        let mut want = Vec::new();
                        render::write_series_checked(
                            &mut want,
                            "m",
                            true,
                            (from..to).map(|i| s.label_at(i).unwrap()),
                        );
                        assert_eq!(
                            format!("m{{{}}}", std::str::from_utf8(raw).unwrap()).as_bytes(),
                            &want[..],
                            "{text} [{from}..{to}]"
                        );
                        assert!((from..to).all(|i| s.label_at(i).unwrap().2), "{text}");
                        self.raw_runs += (to - from > 1) as usize;
                    }
                }
                assert!(s.raw_labels(0, 0).is_none() && s.raw_labels(0, 99).is_none());
                assert!(
                    names.iter().all(|n| render::is_legacy_label_name(n)),
                    "{text}"
                );
                let known = self.by_layout.entry(s.layout()).or_insert(names.clone());
                assert_eq!(*known, names, "layout {} at {text}", s.layout());
            }
        }
        let names = ["a", "b", "le", "zz", "\"a.b\"", "\"b\"", "c1"];
        let metrics = ["m_bucket", "m_sum", "m", "{\"m.x\"", "{"];
        let values = ["1", "", "x\\\"y", "sp ace", "\\\\", "é", "a\\nb"];
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        let mut input = String::new();
        for _ in 0..4000 {
            let metric = metrics[next(metrics.len())];
            input.push_str(metric);
            let mut first = metric.starts_with('{') && metric.len() > 1;
            if !metric.starts_with('{') {
                input.push('{');
            }
            let mut used = Vec::new();
            for k in 0..next(5) {
                let n = if next(4) == 0 {
                    next(names.len())
                } else {
                    k % 4
                };
                let bare = names[n].trim_matches('"');
                if used.contains(&bare) {
                    continue;
                }
                used.push(bare);
                if !first {
                    first = true;
                } else {
                    input.push_str(match next(20) {
                        0 | 1 => " , ",
                        // Blanks alone separate labels (as promparse tolerates), but not a
                        // quoted metric name from the first label.
                        2 if used.len() > 1 => " ",
                        _ => ",",
                    });
                }
                input.push_str(names[n]);
                input.push_str(if next(10) == 0 { " = " } else { "=" });
                input.push('"');
                input.push_str(values[next(values.len())]);
                input.push('"');
            }
            if metric == "{" {
                input.push_str(if first {
                    ",__name__=\"q\""
                } else {
                    "__name__=\"q\""
                });
            }
            input.push_str("} 1\n");
        }
        let mut shapes = Shapes::default();
        let mut p = Parser::new(ParseOptions::default());
        let mut rest = input.as_bytes();
        while !rest.is_empty() {
            let (chunk, tail) = rest.split_at(rest.len().min(1 + next(300)));
            p.feed(chunk, &mut shapes).unwrap();
            rest = tail;
        }
        p.finish(&mut shapes).unwrap();
        assert_eq!(shapes.lines, 4000);
        assert!(shapes.with_layout > 1000, "{}", shapes.with_layout);
        assert!(shapes.by_layout.len() > 20, "{}", shapes.by_layout.len());
        assert!(shapes.raw_runs > 100, "{}", shapes.raw_runs);
    }

    #[test]
    fn quoted_names_are_not_remembered_as_plain_ones() {
        let e = err("x{\"label.x\"=\"v\"} 1\nx{label.x=\"v\"} 1\n");
        assert_eq!((e.line, e.column), (2, 8), "{e}");
        let e = err("x{\"a\\\"b\"=\"v\"} 1\nx{a\"b=\"v\"} 1\n");
        assert_eq!((e.line, e.column), (2, 4), "{e}");
        // Same names, plain then quoted, both fine.
        let s = samples("x{a=\"1\"} 1\nx{\"a\"=\"2\"} 1\nx{a=\"3\"} 1\n");
        assert_eq!(s[1].labels(), [("a", "2")]);
        assert_eq!(s[2].labels(), [("a", "3")]);
    }

    #[test]
    fn format_from_content_type() {
        assert_eq!(
            Format::from_content_type("application/openmetrics-text; version=1.0.0; charset=utf-8"),
            Format::OpenMetrics
        );
        assert_eq!(
            Format::from_content_type("text/plain; version=0.0.4; charset=utf-8"),
            Format::Text
        );
        assert_eq!(Format::from_content_type(""), Format::Auto);
        assert_eq!(Format::from_content_type("application/json"), Format::Auto);
        assert_eq!(ParseOptions::default().format, Format::Auto);
        assert_eq!(ParseOptions::default().max_line_len, 1 << 20);
    }
}
