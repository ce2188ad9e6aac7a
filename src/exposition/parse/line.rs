//! One line of input: the per-input state the line parser keeps ([`LineState`]), the dispatch
//! between blank, comment and sample lines, and the sample line grammar
//! `name{labels} value [timestamp] [# exemplar]`.
//!
//! Guarantees: a line is parsed in one pass over its bytes, without allocating once the reused
//! buffers (`scratch`, `spans`) have grown to the longest line seen; a sample is delivered to the
//! sink only when the whole line is valid, so a sink never sees half a line; and every error
//! carries the 1-based line and byte column of the offending byte. The label block, comments,
//! exemplars and timestamps have files of their own (`label_block.rs`, `comment.rs`,
//! `exemplar.rs`, `timestamp.rs`); they extend [`LineState`] with their parts of the grammar.

use std::fmt;

use super::error::error;
use super::families::Families;
use super::layout_cache::{LabelLayouts, MetricNames};
use super::name_index::NameIndex;
use super::piece::{LabelSpan, Piece};
use super::scan::{has_class, is_ws, skip_ws, token_end, METRIC_START};
use super::{Exemplar, Format, KnownSample, ParseError, ParseErrorKind, Sample, Sink};
use crate::exposition::float::parse_go_float;

/// Per-input state of the line parser, with the buffers it reuses.
#[derive(Debug, Default)]
pub(super) struct LineState {
    /// How timestamps are read.
    pub(super) format: Format,
    /// Number of the line being parsed (1-based once parsing started).
    pub(super) line_no: u64,
    /// Unescaped strings of the current line.
    pub(super) scratch: String,
    /// Labels of the current line.
    pub(super) spans: Vec<LabelSpan>,
    /// Which family the samples belong to, following `# TYPE`.
    pub(super) families: Families,
    /// An OpenMetrics-only feature (`# UNIT`, `# EOF`, exemplar) was seen: [`Format::Auto`] reads
    /// small integer timestamps as seconds.
    pub(super) om_seen: bool,
    /// The input ended before its last byte: `# EOF` was seen, or the sink asked to stop
    /// ([`Sink::should_stop`]). The rest of the input is ignored.
    pub(super) ended: bool,
    /// Label layouts of recent lines whose label names took the full check. Series of a family
    /// repeat their label names, so most lines match one of these word by word, which proves
    /// their names valid and distinct without scanning or comparing them.
    pub(super) layouts: LabelLayouts,
    /// Id of the current line's label layout (see [`Sample::layout`]), 0 if none.
    pub(super) line_layout: u64,
    /// The current line's labels all stand in it exactly as rendering writes them: each plain
    /// name right after the `{` or a bare `,`, then `="`, a value without escape sequences that
    /// is not empty, and its closing quote (set by the layout path, the only one that proves it
    /// as it goes). Lets [`Sample::raw_labels`] hand out a run of labels without checking each.
    pub(super) plain_block: bool,
    /// Recent metric names that had to be scanned; same idea.
    pub(super) names: MetricNames,
    /// [`ParseOptions::max_labels`](super::ParseOptions::max_labels).
    pub(super) max_labels: usize,
    /// The duplicate check's hash table for blocks of many unsorted names (`label_block.rs`).
    pub(super) name_index: NameIndex,
}

/// What follows the series on a sample line.
struct Tail<'s> {
    value: f64,
    /// Where the value's text is in the line.
    value_text: (usize, usize),
    timestamp_ms: Option<i64>,
    /// The line's exemplar, if it has one.
    exemplar: Option<Exemplar<'s>>,
}

/// The series part of a sample line: the metric name and where the series text ends.
struct Series {
    /// The metric name.
    name: Piece,
    /// The name was written bare before the label block.
    plain_name: bool,
    /// End of the series text: after the label block's `}`, or after the bare name.
    end: usize,
    /// Where the value is looked for.
    next: usize,
}

impl LineState {
    /// A line state for `format` that refuses series with more than `max_labels` labels
    /// (0: any number).
    pub(super) fn new(format: Format, max_labels: usize) -> Self {
        LineState {
            format,
            max_labels,
            ..LineState::default()
        }
    }

    /// The parser gave up: [`ParseOptions::interrupt`](super::ParseOptions::interrupt) fired
    /// before the next line.
    #[cold]
    pub(super) fn interrupted(&self) -> ParseError {
        ParseError {
            kind: ParseErrorKind::Interrupted,
            ..error(
                self.line_no + 1,
                1,
                format_args!("parsing stopped before this line: out of time"),
            )
        }
    }

    /// Forgets the input (not the buffers, nor the remembered layouts: they stay valid).
    pub(super) fn reset(&mut self) {
        self.line_no = 0;
        self.families.reset();
        self.om_seen = false;
        self.ended = false;
    }

    /// Error at 1-based `column` of the current line.
    #[cold]
    pub(super) fn err(&self, column: usize, message: fmt::Arguments<'_>) -> ParseError {
        error(self.line_no, column, message)
    }

    /// The next line is longer than `max` bytes.
    #[cold]
    pub(super) fn too_long(&self, max: usize) -> ParseError {
        ParseError {
            kind: ParseErrorKind::LineTooLong,
            ..error(
                self.line_no + 1,
                max + 1,
                format_args!("line longer than the limit of {max} bytes (--max-line-length)"),
            )
        }
    }

    /// The input ends at 1-based `column` of the next line without being whole: `open_metrics`
    /// says it lacks `# EOF`, otherwise its last line lacks the newline.
    #[cold]
    pub(super) fn truncated(&self, column: usize, open_metrics: bool) -> ParseError {
        let message = if open_metrics {
            format_args!("OpenMetrics text ends without \"# EOF\": the input may be cut off")
        } else {
            format_args!("no newline at the end of the last line: the input may be cut off (every line must end with \\n)")
        };
        ParseError {
            kind: ParseErrorKind::Truncated,
            ..error(self.line_no + 1, column, message)
        }
    }

    /// Parses one line (without its `\n`); `text` is the same line when the caller already
    /// checked it for UTF-8.
    #[inline]
    pub(super) fn line<S: Sink + ?Sized>(
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
    pub(super) fn utf8<'l>(&self, b: &'l [u8]) -> Result<&'l str, ParseError> {
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
        if let Some(len) = sink.expected_series_len() {
            if self.known_sample(s, i, len, sink) {
                return Ok(());
            }
        }
        let b = s.as_bytes();
        self.scratch.clear();
        self.spans.clear();
        self.line_layout = 0;
        self.plain_block = false;
        let series = self.series(s, i)?;
        let tail = self.tail(s, series.next)?;

        let scratch = self.scratch.as_str();
        let name = series.name.get(s, scratch);
        sink.sample(&Sample {
            name,
            family: self.families.family_of(name),
            value: tail.value,
            value_text: &s[tail.value_text.0..tail.value_text.1],
            timestamp_ms: tail.timestamp_ms,
            exemplar: tail.exemplar,
            series_text: &b[..series.end],
            line: self.line_no,
            text: s,
            scratch,
            spans: &self.spans,
            layout: self.line_layout,
            plain_block: self.plain_block,
            plain_name: series.plain_name,
        });
        // Asked after every sample, so where the input ends does not depend on how it was
        // split into chunks (a later syntax error is reported, or not, the same either way).
        if sink.should_stop() {
            self.ended = true;
        }
        Ok(())
    }

    /// The fast path of a sample line (starting at `i`) whose first `len` bytes the sink
    /// expects to be a series it has seen before ([`Sink::expected_series_len`]): the label
    /// block is not parsed. `true` when the sink took the line as a [`KnownSample`]; `false`
    /// when the line must be parsed in full (it does not have the expected shape, the rest of it
    /// does not parse, or the sink does not recognize the series text), which then reports any
    /// error as usual.
    ///
    /// Why skipping the label block is sound: the sink takes the line only if these `len` bytes
    /// are exactly the series text of a sample it received whole before, so a full parse of
    /// them succeeded (labels, label limit, duplicate names), and a full parse ends the series at
    /// the same place here. A label block ends at the first unquoted `}`, which the same bytes
    /// put at the same place; a bare name (no label block) ends where its name does, which the
    /// blank after it proves, as long as no `{` follows the blanks.
    fn known_sample<S: Sink + ?Sized>(
        &mut self,
        s: &str,
        i: usize,
        len: usize,
        sink: &mut S,
    ) -> bool {
        let b = s.as_bytes();
        if len <= i || len >= b.len() || !has_class(b[i], METRIC_START) {
            return false;
        }
        let name_end = self.names.name_end(b, i);
        let bare = name_end == len;
        if name_end > len
            || (!bare && b[len - 1] != b'}')
            || (bare && (!is_ws(b[len]) || b.get(skip_ws(b, len)) == Some(&b'{')))
        {
            return false;
        }
        let Ok(tail) = self.tail(s, len) else {
            return false;
        };
        let name = &s[i..name_end];
        let taken = sink.known_sample(&KnownSample {
            name,
            family: self.families.family_of(name),
            value: tail.value,
            value_text: &s[tail.value_text.0..tail.value_text.1],
            timestamp_ms: tail.timestamp_ms,
            exemplar: tail.exemplar,
            series_text: &b[..len],
            line: self.line_no,
        });
        if taken && sink.should_stop() {
            self.ended = true;
        }
        taken
    }

    /// What follows the series on a sample line, from `i`: the value, an optional timestamp
    /// and an optional exemplar.
    #[inline(always)]
    fn tail<'s>(&mut self, s: &'s str, i: usize) -> Result<Tail<'s>, ParseError> {
        let b = s.as_bytes();
        let mut i = skip_ws(b, i);
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
        // Exemplars are rare: only a `#` after the value costs anything.
        let exemplar = if i < b.len() {
            Some(self.exemplar(s, i)?)
        } else {
            None
        };
        let timestamp_ms = match ts_span {
            None => None,
            Some((a, z)) => Some(self.timestamp(&s[a..z], a)?),
        };
        Ok(Tail {
            value,
            value_text: (value_start, value_end),
            timestamp_ms,
            exemplar,
        })
    }

    /// The series of a sample line starting at `i`: a bare metric name, a label block, or both
    /// (the name then comes first). Fills `spans` with the labels.
    #[inline(always)]
    fn series(&mut self, s: &str, i: usize) -> Result<Series, ParseError> {
        let b = s.as_bytes();
        let first = b[i..].first().copied().unwrap_or(b'\n');
        let plain_name = has_class(first, METRIC_START);
        let mut name = None;
        let (end, next) = if plain_name {
            let end = self.names.name_end(b, i);
            name = Some(Piece::line(i, end));
            let j = skip_ws(b, end);
            match b.get(j) {
                Some(b'{') => {
                    let close = self.label_block(s, j + 1, &mut name)?;
                    (close, close)
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
                _ => (end, j),
            }
        } else if first == b'{' {
            let close = self.label_block(s, i + 1, &mut name)?;
            (close, close)
        } else {
            return Err(self.err(
                i + 1,
                format_args!("expected metric name or '{{' at start of sample"),
            ));
        };
        let Some(name) = name else {
            return Err(self.err(
                end,
                format_args!(
                    "missing metric name (no name before '{{', no quoted name or __name__ label)"
                ),
            ));
        };
        Ok(Series {
            name,
            plain_name,
            end,
            next,
        })
    }
}
