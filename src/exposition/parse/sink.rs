//! What the parser hands out: the [`Sink`] trait and the events it receives, [`Sample`] and
//! [`Metadata`].
//!
//! Events borrow the parser's buffers and are valid only during the call: this is what lets the
//! parser allocate nothing per line. A sink that keeps anything copies it. Labels are kept as
//! offsets into the line (or into the unescape buffer) and turned into `&str`s on demand, so a
//! sink that reads only some labels (or only [`Sample::series_text`], for a cache) pays for no
//! others. [`Sample::layout`] and [`Sample::raw_labels`] let a sink decide once per label
//! layout what depends on the names alone, and copy runs of labels whole.

use std::fmt;

use super::piece::LabelSpan;

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

/// An OpenMetrics exemplar (` # {trace_id="x"} 1.5 1700000000.1` after a sample), borrowed from
/// the line. Its syntax has been checked.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Exemplar<'a> {
    /// `{labels} value [timestamp]` exactly as the input wrote it (from `{` through the last
    /// number, blanks between as written): what an OpenMetrics writer copies after ` # `.
    pub text: &'a str,
    /// The exemplar's value.
    pub value: f64,
    /// Its timestamp in seconds, as written (OpenMetrics), if it has one.
    pub timestamp: Option<f64>,
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
    /// The OpenMetrics exemplar after the value or timestamp, if the line has one.
    pub exemplar: Option<Exemplar<'a>>,
    /// The raw bytes of the series: from the first byte of the line through the end of the label
    /// block (or the name when there is no label block). Same series, same bytes: the key for
    /// caches across scrapes.
    pub series_text: &'a [u8],
    /// 1-based line number in the input.
    pub line: u64,
    /// The whole line (labels that needed no unescaping point into it).
    pub(super) text: &'a str,
    /// The parser's unescape buffer (labels that held a backslash point into it).
    pub(super) scratch: &'a str,
    /// Labels in input order, without `__name__`.
    pub(super) spans: &'a [LabelSpan],
    /// See [`Sample::layout`].
    pub(super) layout: u64,
    /// The metric name was written bare, before the label block (so it is a valid legacy name).
    pub(super) plain_name: bool,
    /// Every label stands in `text` as rendering writes it (the parser's `plain_block`), so
    /// any run of them does ([`Sample::raw_labels`]).
    pub(super) plain_block: bool,
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
        if self.plain_block {
            return b.get(first.name.start()..last.value.end() + 1);
        }
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
            .field("exemplar", &self.exemplar)
            .field("series_text", &String::from_utf8_lossy(self.series_text))
            .field("line", &self.line)
            .finish()
    }
}

/// A sample line whose series the sink recognized before its label block was parsed (see
/// [`Sink::expected_series_len`]). Valid only during the [`Sink::known_sample`] call.
///
/// The parser guarantees: the line starts with a bare metric name (so [`KnownSample::name`] is
/// exactly the name a full parse finds), `series_text` is the line's first bytes, and if those
/// bytes are a series text the sink saw before in a [`Sample`], the rest of the line parsed
/// (value, timestamp, exemplar) exactly as a full parse would parse it. The labels were *not*
/// parsed: the sink must recognize `series_text` as one it received whole before (a full parse
/// of the same bytes then checked the label block, its label limit and its duplicate names),
/// or refuse the sample.
#[derive(Debug, Clone, Copy)]
pub struct KnownSample<'a> {
    /// Metric name (written bare at the start of the line).
    pub name: &'a str,
    /// The family, following `# TYPE`, as [`Sample::family`].
    pub family: &'a str,
    /// The value, parsed.
    pub value: f64,
    /// The value exactly as written in the input.
    pub value_text: &'a str,
    /// Timestamp in milliseconds, if the line has one.
    pub timestamp_ms: Option<i64>,
    /// The line's exemplar, as [`Sample::exemplar`].
    pub exemplar: Option<Exemplar<'a>>,
    /// The line's first [`Sink::expected_series_len`] bytes: its series text, if the sink
    /// recognizes them.
    pub series_text: &'a [u8],
    /// 1-based line number in the input.
    pub line: u64,
}

/// Receives what the parser finds.
pub trait Sink {
    /// A `# HELP`, `# TYPE` or `# UNIT` line.
    fn metadata(&mut self, meta: &Metadata<'_>);
    /// A sample line.
    fn sample(&mut self, sample: &Sample<'_>);

    /// Whether the sink wants no more of this input: it hit a limit of its own, say, and ignores
    /// what follows. The sink keeps the reason; the parser only stops: [`super::Parser::feed`]
    /// asks once per call, never per line, and then ignores the rest of the input, as after
    /// `# EOF`. Whoever feeds the parser should stop too, and ask the sink why.
    fn should_stop(&self) -> bool {
        false
    }

    /// The length of the series text the sink expects on the next sample line, when it would
    /// rather recognize that series than receive it parsed (a cache of series seen in an
    /// earlier input, walked in input order). The parser then takes that many bytes of the line
    /// as the series text without parsing the label block, parses the rest of the line, and
    /// offers it to [`Sink::known_sample`]. `None` (the default): every sample line is parsed
    /// in full.
    fn expected_series_len(&self) -> Option<usize> {
        None
    }

    /// A sample line whose series text is the length [`Sink::expected_series_len`] gave. Answer
    /// `true` to take it: only when `series_text` is exactly the series text of a [`Sample`]
    /// this sink received whole before, from a parser with the same options (that full parse
    /// checked the label block). Answer `false` (the default) and the parser parses the line in
    /// full and delivers it to [`Sink::sample`], reporting any error in it as usual.
    fn known_sample(&mut self, sample: &KnownSample<'_>) -> bool {
        let _ = sample;
        false
    }
}
