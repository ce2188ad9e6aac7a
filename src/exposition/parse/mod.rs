//! Streaming, zero-allocation parser for the Prometheus text format 0.0.4 and OpenMetrics 1.0
//! text.
//!
//! # Shape
//!
//! [`Parser::feed`] takes chunks of any size. Complete lines are parsed straight out of the chunk;
//! a trailing partial line is copied into a reused carry buffer and completed by the next call
//! ([`Parser::finish`] refuses a last line that has no newline: the input was cut off). Every event is handed to a
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
//! - A sink that remembers series across inputs (the pipeline's series cache) may name the
//!   length of the series text it expects next ([`Sink::expected_series_len`]): the parser then
//!   offers that prefix of the line with the value parsed but the label block unparsed
//!   ([`Sink::known_sample`]), and parses the line in full only if the sink does not recognize
//!   it.
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
//!   checked for syntax, in every format, and handed out with its sample as written
//!   ([`Sample::exemplar`]).
//!
//! - `# HELP` text unescapes `\\` and `\n` (also `\"` in [`Format::OpenMetrics`]); exactly one
//!   blank separates it from the name, as in `promparse`. `# TYPE` must name a known type.
//!
//! # Errors
//!
//! A [`ParseError`] gives the 1-based line and byte column of the offending byte and what was
//! expected there. Besides syntax errors: duplicate label names, a metric name given twice or
//! empty, an empty label name, invalid UTF-8 (in samples and metadata; ignored comments are not
//! checked), a value or timestamp that does not parse or is out of range, a line longer than
//! [`ParseOptions::max_line_len`], and a truncated input: a last line without its `\n`, or
//! [`Format::OpenMetrics`] text without `# EOF` ([`ParseErrorKind::Truncated`]).
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
//!
//! # Files
//!
//! - `mod.rs`: the chunk driver [`Parser`] (carry buffer, UTF-8 blocks, sticky errors),
//!   [`ParseOptions`], [`Format`].
//! - `sink.rs`: [`Sink`] and the borrowed events [`Sample`] and [`Metadata`].
//! - `error.rs`: [`ParseError`].
//! - `line.rs`: the per-input state, the line dispatch and the sample line grammar.
//! - `label_block.rs`: the `{...}` grammar: the layout fast path, the general path, duplicates.
//! - `comment.rs`: `# HELP`, `# TYPE`, `# UNIT` and `# EOF`.
//! - `exemplar.rs`, `timestamp.rs`: what may follow a value.
//! - `families.rs`: family membership by `# TYPE`.
//! - `layout_cache.rs`: the remembered label layouts and metric names.
//! - `piece.rs`, `quoted.rs`, `scan.rs`: spans into the line, quoted strings and escapes, byte
//!   scanning.

use std::sync::Arc;

use memchr::{memchr, memrchr};

mod comment;
mod error;
mod exemplar;
mod families;
mod label_block;
mod layout_cache;
mod line;
mod name_index;
mod piece;
mod quoted;
mod scan;
mod sink;
mod timestamp;

#[cfg(test)]
mod tests;

pub use error::{ParseError, ParseErrorKind};
pub use sink::{Exemplar, KnownSample, MetaKind, Metadata, Sample, Sink};

use line::LineState;

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
    /// Most labels a series may have, counted as Prometheus' `label_limit` counts them:
    /// `__name__` included, labels with an empty value (absent labels) not; a series with more
    /// is a [`ParseErrorKind::LabelLimit`] error at the first label over the limit, before its
    /// names are checked for duplicates. 0 (the default): any number. Only for callers whose
    /// input labels all reach the output (no relabeling), where `--label-limit` means the same
    /// on input and output: see [`crate::limits`].
    pub max_labels: usize,
    /// Asked between blocks of lines (about every 64 KiB, never per line): when it answers
    /// true, the input is abandoned with a [`ParseErrorKind::Interrupted`] error. A scrape
    /// gives up there at its deadline. Default: none.
    pub interrupt: Option<Interrupt>,
}

impl Default for ParseOptions {
    fn default() -> Self {
        Self {
            max_line_len: 1 << 20,
            format: Format::Auto,
            max_labels: 0,
            interrupt: None,
        }
    }
}

/// A question the parser asks between blocks of lines: should it give up now?
/// ([`ParseOptions::interrupt`]). Cloning shares it.
#[derive(Clone)]
pub struct Interrupt(Arc<dyn Fn() -> bool + Send + Sync>);

impl Interrupt {
    /// An interrupt that fires once `give_up` answers true.
    pub fn new(give_up: impl Fn() -> bool + Send + Sync + 'static) -> Self {
        Self(Arc::new(give_up))
    }

    /// True when the parser should give up.
    fn fired(&self) -> bool {
        (self.0)()
    }
}

impl std::fmt::Debug for Interrupt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Interrupt")
    }
}

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
}

impl Parser {
    /// A parser with the given options.
    pub fn new(mut opts: ParseOptions) -> Self {
        opts.max_line_len = opts.max_line_len.min(MAX_LINE_LIMIT);
        let st = LineState::new(opts.format, opts.max_labels);
        Self {
            opts,
            carry: Vec::new(),
            st,
            failed: None,
        }
    }

    /// The settings this parser was made with.
    pub fn options(&self) -> &ParseOptions {
        &self.opts
    }

    /// True when the input so far used an OpenMetrics-only feature (`# UNIT`, `# EOF`, an
    /// exemplar): from there [`Format::Auto`] reads small integer timestamps as seconds, and
    /// `# EOF` ends the input. A reader that splits one input between several parsers asks this
    /// before [`Parser::finish`] (which forgets it), since a later part cannot know it.
    pub fn openmetrics_seen(&self) -> bool {
        self.st.om_seen
    }

    /// Parses every complete line in `chunk` (plus a line carried over from the previous chunk)
    /// and keeps the trailing partial line for the next call.
    ///
    /// Events for the lines before an erroneous line have been delivered when this returns an
    /// error. After `# EOF` the rest of the input is ignored, and so it is once the sink says it
    /// [should stop](Sink::should_stop) (asked here and after every sample, so the outcome does
    /// not depend on the chunking) until `finish` or [`Parser::reset`] starts a new input.
    pub fn feed<S: Sink + ?Sized>(&mut self, chunk: &[u8], sink: &mut S) -> Result<(), ParseError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        if sink.should_stop() {
            self.st.ended = true;
        }
        let res = self.feed_lines(chunk, sink);
        if let Err(e) = &res {
            self.failed = Some(e.clone());
            self.carry.clear();
        }
        res
    }

    /// Ends the input and resets for the next one.
    ///
    /// An input must be whole, as Prometheus requires: text 0.0.4 ends its last line with `\n`,
    /// and [`Format::OpenMetrics`] text ends with `# EOF` (a newline after it is optional). A
    /// last line without its newline (unless it is `# EOF`, or blanks), or declared
    /// OpenMetrics text without `# EOF`, is a [`ParseErrorKind::Truncated`] error: a body cut off mid-line
    /// (`67890` arriving as `67`) must not pass as data. The cut line is never delivered to the
    /// sink. An input the sink stopped ([`Sink::should_stop`]) or that ended at `# EOF` is whole.
    pub fn finish<S: Sink + ?Sized>(&mut self, sink: &mut S) -> Result<(), ParseError> {
        let res = match self.failed.take() {
            Some(e) => Err(e),
            None if self.st.ended || sink.should_stop() => Ok(()),
            None if self.st.is_eof(&self.carry) => {
                let carry = std::mem::take(&mut self.carry);
                let res = self.st.line(&carry, None, sink);
                self.carry = carry;
                res
            }
            // Blanks after the last newline cut nothing off (as Prometheus' text parser sees it).
            None if is_blank(&self.carry) && self.opts.format != Format::OpenMetrics => Ok(()),
            None => Err(self.st.truncated(
                self.carry.len() + 1,
                self.opts.format == Format::OpenMetrics,
            )),
        };
        self.reset();
        res
    }

    /// Forgets the current input (partial line, line count, families, errors, `# EOF`) but keeps
    /// the buffers, so the next [`Parser::feed`] starts a new input without allocating.
    pub fn reset(&mut self) {
        self.carry.clear();
        self.failed = None;
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
        if self.st.ended {
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
        // pass while they are in cache, then parsed. Between blocks the caller may stop us.
        while !self.st.ended {
            if self.opts.interrupt.as_ref().is_some_and(Interrupt::fired) {
                return Err(self.st.interrupted());
            }
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
        while !self.st.ended {
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

/// True when `b` holds only blanks and tabs.
fn is_blank(b: &[u8]) -> bool {
    b.iter().all(|&c| scan::is_ws(c))
}

/// Bytes of complete lines checked for UTF-8 at once (lines are not split): small enough to
/// stay in cache until parsed, large enough to make the per-call cost vanish.
const BLOCK: usize = 64 * 1024;

/// Cap of [`ParseOptions::max_line_len`]: offsets within a line are stored in 31 bits.
const MAX_LINE_LIMIT: usize = i32::MAX as usize;
