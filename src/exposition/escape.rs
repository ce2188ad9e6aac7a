//! Name escaping for scrapers that cannot read UTF-8 names: Prometheus' escaping schemes
//! (`escaping=` in `Accept` and `Content-Type`), and a pass that applies one to rendered text.
//!
//! metric-gate renders names as they are (Prometheus 3's quoted form for names outside the
//! legacy character set). A client that asks for `underscores`, `dots` or `values` (or names no
//! scheme, as every Prometheus 2 does, which means `underscores`) gets those names escaped the
//! way Prometheus' own client libraries escape them (`EscapeName` and `EscapeMetricFamily` in
//! prometheus/common `model`):
//! - a name that is already legacy-valid is never changed, under every scheme;
//! - `underscores`: every character outside `[a-zA-Z0-9_:]` (a digit only after the first
//!   character) becomes `_`;
//! - `dots`: `_` becomes `__`, `.` becomes `_dot_`, any other invalid character `__`;
//! - `values`: `U__`, then `_` as `__`, valid characters as themselves, any other character as
//!   `_<hex code point>_`.
//!
//! One deliberate difference: Prometheus' libraries test label names against the *metric* name
//! rule, which allows `:`, so `a:b` would be written as a label name that Prometheus 2's parser
//! refuses. Here label names are tested against the label rule (`[a-zA-Z_][a-zA-Z0-9_]*`) and
//! `:` counts as invalid in them, so the output always parses.
//!
//! The same pass converts between the two text formats ([`rewrite`]): a result rendered in
//! one is served in the other to a client that does not accept it (see
//! [`super::render_om`] for what OpenMetrics output changes, and keeps).
//!
//! Escaping can make two series one (`a.b` and `a_b` both become `a_b`). They are summed, as
//! series that became identical after relabeling are, and counted ([`EscapeStats::merged`]).
//! A series in which two label names become one (`a.b="x"` and `a_b="y"`) cannot be written
//! at all (Prometheus refuses duplicate label names, failing the whole scrape): it is left out
//! and counted ([`EscapeStats::dropped`]).

use std::borrow::Cow;
use std::collections::HashMap;

use super::float::write_go_float;
use super::parse::{Format, MetaKind, Metadata, ParseError, ParseOptions, Parser, Sample, Sink};
use super::render::{
    is_legacy_label_name, is_legacy_metric_name, write_help, write_series,
    write_timestamp_line_end, write_type,
};
use super::render_om::{write_eof, write_openmetrics_family, OmSample, OmValue};

/// How names outside the legacy character set are written; the values of the `escaping`
/// media-type parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Escaping {
    /// `allow-utf-8`: names as they are, quoted where they need it.
    AllowUtf8,
    /// `underscores`: invalid characters become `_` (what a client that names no scheme gets).
    Underscores,
    /// `dots`: `.` becomes `_dot_`, `_` becomes `__`, other invalid characters `__`.
    Dots,
    /// `values`: `U__` and every invalid character as its code point in hex.
    Values,
}

impl Escaping {
    /// The scheme a parameter value names (`allow-utf-8`, `underscores`, `dots`, `values`,
    /// compared without case); `None` for anything else, which Prometheus' libraries ignore.
    pub fn from_param(value: &str) -> Option<Self> {
        let v = value.trim().trim_matches('"');
        [Self::AllowUtf8, Self::Underscores, Self::Dots, Self::Values]
            .into_iter()
            .find(|s| v.eq_ignore_ascii_case(s.as_str()))
    }

    /// The parameter value that names this scheme.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AllowUtf8 => "allow-utf-8",
            Self::Underscores => "underscores",
            Self::Dots => "dots",
            Self::Values => "values",
        }
    }
}

/// True for the characters legacy names keep: ASCII letters, `_`, `:` (metric names only), and
/// digits after the first character.
fn is_legacy_char(c: char, first: bool, metric: bool) -> bool {
    c.is_ascii_alphabetic() || c == '_' || (metric && c == ':') || (!first && c.is_ascii_digit())
}

fn escape(name: &str, scheme: Escaping, metric: bool) -> Cow<'_, str> {
    let legacy = if metric {
        is_legacy_metric_name(name)
    } else {
        is_legacy_label_name(name)
    };
    if legacy || name.is_empty() || scheme == Escaping::AllowUtf8 {
        return Cow::Borrowed(name);
    }
    let mut out = String::with_capacity(name.len() + 8);
    if scheme == Escaping::Values {
        out.push_str("U__");
    }
    for (i, c) in name.char_indices() {
        let valid = is_legacy_char(c, i == 0, metric);
        match scheme {
            Escaping::AllowUtf8 | Escaping::Underscores => out.push(if valid { c } else { '_' }),
            Escaping::Dots => match c {
                '_' => out.push_str("__"),
                '.' => out.push_str("_dot_"),
                c if valid => out.push(c),
                _ => out.push_str("__"),
            },
            Escaping::Values => match c {
                '_' => out.push_str("__"),
                c if valid => out.push(c),
                c => {
                    use std::fmt::Write as _;
                    let _ = write!(out, "_{:x}_", c as u32);
                }
            },
        }
    }
    Cow::Owned(out)
}

/// `name` as a metric name under `scheme`; borrowed (unchanged) when it is legacy-valid.
pub fn escape_metric_name(name: &str, scheme: Escaping) -> Cow<'_, str> {
    escape(name, scheme, true)
}

/// `name` as a label name under `scheme`; borrowed (unchanged) when it is legacy-valid
/// (`[a-zA-Z_][a-zA-Z0-9_]*`).
pub fn escape_label_name(name: &str, scheme: Escaping) -> Cow<'_, str> {
    escape(name, scheme, false)
}

/// True when a rendered series key (`name{a="x"}`, see [`super::render::write_series`]) holds a
/// quoted name: the metric name (the key starts with `{"`) or a label name (`"name"=`). A label
/// value with an escaped `"=` answers true too; that only costs an escaping pass that changes
/// nothing. Checked once per new output series, so that text whose names are all legacy
/// skips the escaping pass.
pub fn series_has_quoted_name(key: &[u8]) -> bool {
    // Built once: `memmem::find` builds its searcher on every call, which cost more than the
    // search (~340 instructions per new output series).
    static QUOTED_LABEL: std::sync::LazyLock<memchr::memmem::Finder<'static>> =
        std::sync::LazyLock::new(|| memchr::memmem::Finder::new(b"\"="));
    key.first() == Some(&b'{') || QUOTED_LABEL.find(key).is_some()
}

/// What an escaping pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EscapeStats {
    /// Series summed into another series that escaping gave the same name and labels.
    pub merged: u64,
    /// Series left out because two of their label names became one.
    pub dropped: u64,
}

/// An output family of the escaping pass.
#[derive(Debug, Default)]
struct Family {
    name: String,
    help: Option<String>,
    typ: Option<String>,
    unit: Option<String>,
    series: Vec<usize>,
}

/// An output series of the escaping pass: its rendered key and its (summed) value.
#[derive(Debug)]
struct Series {
    /// The (escaped) metric name.
    name: String,
    key: Vec<u8>,
    value: f64,
    /// The input's value text, while nothing was summed into the series.
    text: Option<String>,
    timestamp_ms: Option<i64>,
    /// The first input's exemplar (OpenMetrics), unless it has a quoted label name, which
    /// would need escaping too.
    exemplar: Option<String>,
}

/// What a sample name may add to its family's name, in either format.
const FAMILY_SUFFIXES: [&str; 9] = [
    "", "_total", "_created", "_bucket", "_sum", "_count", "_info", "_gsum", "_gcount",
];

/// The sink that escapes names and sums the series that became one.
struct EscapeSink {
    scheme: Escaping,
    families: Vec<Family>,
    family_ids: HashMap<String, usize>,
    series: Vec<Series>,
    series_ids: HashMap<Vec<u8>, usize>,
    stats: EscapeStats,
    key: Vec<u8>,
    /// The family of the last HELP/TYPE/UNIT line (input name): the renderers write a
    /// family's metadata right before its samples, so a sample named like it plus one of
    /// [`FAMILY_SUFFIXES`] is that family's, even where the format read cannot tell (an `info`
    /// family `x`, written `untyped` in text, has samples `x_info`).
    meta_family: String,
}

impl EscapeSink {
    fn family(&mut self, name: &str) -> usize {
        let name = escape_metric_name(name, self.scheme);
        if let Some(&id) = self.family_ids.get(name.as_ref()) {
            return id;
        }
        let id = self.families.len();
        self.families.push(Family {
            name: name.clone().into_owned(),
            ..Family::default()
        });
        self.family_ids.insert(name.into_owned(), id);
        id
    }
}

impl Sink for EscapeSink {
    fn metadata(&mut self, meta: &Metadata<'_>) {
        if self.meta_family != meta.family {
            self.meta_family.clear();
            self.meta_family.push_str(meta.family);
        }
        let id = self.family(meta.family);
        let f = &mut self.families[id];
        // A family has one HELP and one TYPE: when escaping joins two families, the first
        // one's win, as they do when relabeling renames a series into another family.
        match meta.kind {
            MetaKind::Help if f.help.is_none() => f.help = Some(meta.text.to_owned()),
            MetaKind::Type if f.typ.is_none() => f.typ = Some(meta.text.to_owned()),
            MetaKind::Unit if f.unit.is_none() => f.unit = Some(meta.text.to_owned()),
            _ => {}
        }
    }

    fn sample(&mut self, sample: &Sample<'_>) {
        let scheme = self.scheme;
        let mut labels: Vec<(Cow<'_, str>, &str)> = sample
            .labels()
            .filter(|(_, v)| !v.is_empty())
            .map(|(n, v)| (escape_label_name(n, scheme), v))
            .collect();
        labels.sort_by(|a, b| a.0.cmp(&b.0));
        if labels.windows(2).any(|w| w[0].0 == w[1].0) {
            self.stats.dropped += 1;
            return;
        }
        let name = escape_metric_name(sample.name, scheme);
        self.key.clear();
        write_series(
            &mut self.key,
            &name,
            labels.iter().map(|(n, v)| (n.as_ref(), *v)),
        );
        if let Some(&id) = self.series_ids.get(&self.key) {
            let s = &mut self.series[id];
            s.value += sample.value;
            s.text = None;
            s.timestamp_ms = match (s.timestamp_ms, sample.timestamp_ms) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
            self.stats.merged += 1;
            return;
        }
        let in_meta_family = !self.meta_family.is_empty()
            && sample
                .name
                .strip_prefix(&self.meta_family)
                .is_some_and(|rest| FAMILY_SUFFIXES.contains(&rest));
        let family = if in_meta_family {
            let meta_family = std::mem::take(&mut self.meta_family);
            let id = self.family(&meta_family);
            self.meta_family = meta_family;
            id
        } else {
            self.family(sample.family)
        };
        let id = self.series.len();
        self.series.push(Series {
            name: name.into_owned(),
            key: self.key.clone(),
            value: sample.value,
            text: Some(sample.value_text.to_owned()),
            timestamp_ms: sample.timestamp_ms,
            exemplar: sample
                .exemplar
                .map(|e| e.text)
                .filter(|t| !t.contains("{\"") && !t.contains(",\""))
                .map(str::to_owned),
        });
        self.series_ids.insert(self.key.clone(), id);
        self.families[family].series.push(id);
    }
}

/// The format [`rewrite`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// Prometheus text format (0.0.4, or 1.0.0 when names are quoted): millisecond
    /// timestamps; OpenMetrics-only types are written `untyped` and `# UNIT` is left out, as
    /// the aggregator's own text rendering does.
    Text,
    /// OpenMetrics text 1.0, as [`super::render_om`] writes it, ending with `# EOF`.
    OpenMetrics,
}

/// Text 0.0.4's word for a TYPE word of either format.
fn text_type(typ: &str) -> &str {
    match typ {
        "counter" | "gauge" | "histogram" | "summary" => typ,
        _ => "untyped",
    }
}

/// [`rewrite`] from text to text: `text` with every name escaped under `scheme`. With
/// `AllowUtf8` the text is returned unchanged.
pub fn escape_text(text: &[u8], scheme: Escaping) -> Result<(Vec<u8>, EscapeStats), ParseError> {
    if scheme == Escaping::AllowUtf8 {
        return Ok((text.to_vec(), EscapeStats::default()));
    }
    rewrite(text, Format::Text, Written::Text, scheme)
}

/// Rewrites `text` (as metric-gate renders it, in format `from`: one HELP and TYPE per family
/// before its samples) into format `to`, with every name escaped under `scheme`. Families and
/// series keep their first-seen order; series that escaping made identical are summed (the
/// latest timestamp wins), and a series with two labels of one escaped name is left out. A
/// value nothing was summed into keeps its spelling; timestamps keep their millisecond value.
///
/// Fails only on text that does not parse, which metric-gate's renderers never write.
pub fn rewrite(
    text: &[u8],
    from: Format,
    to: Written,
    scheme: Escaping,
) -> Result<(Vec<u8>, EscapeStats), ParseError> {
    let mut parser = Parser::new(ParseOptions {
        max_line_len: usize::MAX,
        format: from,
        ..ParseOptions::default()
    });
    let mut sink = EscapeSink {
        scheme,
        families: Vec::new(),
        family_ids: HashMap::new(),
        series: Vec::new(),
        series_ids: HashMap::new(),
        stats: EscapeStats::default(),
        key: Vec::new(),
        meta_family: String::new(),
    };
    parser.feed(text, &mut sink)?;
    parser.finish(&mut sink)?;
    let mut out = Vec::with_capacity(text.len() + 16);
    for f in &sink.families {
        if f.series.is_empty() {
            continue;
        }
        if to == Written::OpenMetrics {
            let samples: Vec<OmSample<'_>> = f
                .series
                .iter()
                .map(|&id| {
                    let s = &sink.series[id];
                    OmSample {
                        name: &s.name,
                        key: &s.key,
                        value: match &s.text {
                            Some(t) => OmValue::Text(t.as_bytes()),
                            None => OmValue::Float(s.value),
                        },
                        timestamp_ms: s.timestamp_ms,
                        exemplar: s.exemplar.as_deref(),
                    }
                })
                .collect();
            write_openmetrics_family(
                &mut out,
                &f.name,
                f.help.as_deref(),
                f.typ.as_deref(),
                f.unit.as_deref(),
                &samples,
            );
            continue;
        }
        if let Some(help) = &f.help {
            write_help(&mut out, &f.name, help);
        }
        if let Some(typ) = &f.typ {
            write_type(&mut out, &f.name, text_type(typ));
        }
        for &id in &f.series {
            let s = &sink.series[id];
            out.extend_from_slice(&s.key);
            out.push(b' ');
            match &s.text {
                Some(t) => out.extend_from_slice(t.as_bytes()),
                None => write_go_float(&mut out, s.value),
            }
            write_timestamp_line_end(&mut out, s.timestamp_ms);
        }
    }
    if to == Written::OpenMetrics {
        write_eof(&mut out);
    }
    Ok((out, sink.stats))
}

#[cfg(test)]
mod tests {
    use super::*;
    use Escaping::{AllowUtf8, Dots, Underscores, Values};

    #[test]
    fn names_escape_like_prometheus() {
        for (name, scheme, want) in [
            ("legacy_name:x", Underscores, "legacy_name:x"),
            ("legacy_name", Dots, "legacy_name"),
            ("legacy_name", Values, "legacy_name"),
            ("my.metric", AllowUtf8, "my.metric"),
            (
                "metric.name/with/slashes",
                Underscores,
                "metric_name_with_slashes",
            ),
            ("9lives", Underscores, "_lives"),
            ("ünïcode", Underscores, "_n_code"),
            (
                "metric.name.with.dots",
                Dots,
                "metric_dot_name_dot_with_dot_dots",
            ),
            ("a_b.c-d", Dots, "a__b_dot_c__d"),
            ("http.status:sum", Values, "U__http_2e_status:sum"),
            ("a_b.c", Values, "U__a__b_2e_c"),
            ("ü", Values, "U___fc_"),
            ("", Underscores, ""),
        ] {
            assert_eq!(escape_metric_name(name, scheme), want, "{name} {scheme:?}");
        }
        // `:` is valid in metric names only.
        assert_eq!(escape_label_name("a:b", Underscores), "a_b");
        assert_eq!(escape_label_name("a:b", Values), "U__a_3a_b");
        assert_eq!(escape_label_name("utf-8.label", Underscores), "utf_8_label");
        assert_eq!(escape_label_name("ok_1", Dots), "ok_1");
    }

    #[test]
    fn scheme_names() {
        for s in [AllowUtf8, Underscores, Dots, Values] {
            assert_eq!(Escaping::from_param(s.as_str()), Some(s));
        }
        assert_eq!(Escaping::from_param("\"Underscores\""), Some(Underscores));
        assert_eq!(Escaping::from_param("nope"), None);
    }

    #[test]
    fn quoted_names_are_detected_in_keys() {
        assert!(!series_has_quoted_name(br#"up{a="1",b="x"}"#));
        assert!(!series_has_quoted_name(b"up"));
        assert!(series_has_quoted_name(br#"{"my.metric",a="1"}"#));
        assert!(series_has_quoted_name(br#"up{"a.b"="1"}"#));
        // A harmless false positive: an escaped quote before `=` in a value.
        assert!(series_has_quoted_name(br#"up{a="\"=x"}"#));
    }

    fn esc(text: &str, scheme: Escaping) -> (String, EscapeStats) {
        let (out, stats) = escape_text(text.as_bytes(), scheme).unwrap();
        (String::from_utf8(out).unwrap(), stats)
    }

    #[test]
    fn escapes_and_merges_series_that_become_one() {
        let text = "\
# HELP \"http.requests\" Requests \\\\ served.
# TYPE \"http.requests\" counter
{\"http.requests\",code=\"200\"} 3 1000
{\"http.requests\",\"utf-8.label\"=\"a\"} 1e3
# TYPE http_requests counter
http_requests{code=\"200\"} 4 2000
http_requests{code=\"500\"} 1
# TYPE x gauge
x{\"a.b\"=\"1\",a_b=\"2\"} 7
x{z=\"\\\"q\\\"\",a=\"1\"} 2
";
        let (out, stats) = esc(text, Underscores);
        assert_eq!(
            out,
            "\
# HELP http_requests Requests \\\\ served.
# TYPE http_requests counter
http_requests{code=\"200\"} 7 2000
http_requests{utf_8_label=\"a\"} 1e3
http_requests{code=\"500\"} 1
# TYPE x gauge
x{a=\"1\",z=\"\\\"q\\\"\"} 2
"
        );
        assert_eq!(
            stats,
            EscapeStats {
                merged: 1,
                dropped: 1
            }
        );
        let (out, stats) = esc(text, Dots);
        assert!(out.contains("# TYPE http_dot_requests counter\n"), "{out}");
        assert!(
            out.contains("http_dot_requests{utf__8_dot_label=\"a\"} 1e3\n"),
            "{out}"
        );
        assert!(out.contains("x{a_b=\"2\",a_dot_b=\"1\"} 7\n"), "{out}");
        assert_eq!(stats, EscapeStats::default());
        let (out, _) = esc(text, Values);
        assert!(
            out.contains("U__http_2e_requests{U__utf_2d_8_2e_label=\"a\"} 1e3\n"),
            "{out}"
        );
        let (out, _) = esc(text, AllowUtf8);
        assert_eq!(out, text);
    }

    #[test]
    fn converts_between_formats() {
        let om = "\
# HELP \"rpc.seconds\" Time \\\"spent\\\".
# TYPE \"rpc.seconds\" counter
# UNIT \"rpc.seconds\" seconds
{\"rpc.seconds_total\",a=\"1\"} 2 1700000000.5
{\"rpc.seconds_created\",a=\"1\"} 1700000000
# TYPE build info
build_info{v=\"1\"} 1
# TYPE s stateset
s{s=\"a\"} 1
# EOF
";
        let (text, _) = rewrite(
            om.as_bytes(),
            Format::OpenMetrics,
            Written::Text,
            Underscores,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(text.clone()).unwrap(),
            "\
# HELP rpc_seconds Time \"spent\".
# TYPE rpc_seconds counter
rpc_seconds_total{a=\"1\"} 2 1700000000500
rpc_seconds_created{a=\"1\"} 1700000000
# TYPE build untyped
build_info{v=\"1\"} 1
# TYPE s untyped
s{s=\"a\"} 1
"
        );
        let (back, _) = rewrite(
            om.as_bytes(),
            Format::OpenMetrics,
            Written::OpenMetrics,
            Underscores,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(back).unwrap(),
            "\
# HELP rpc_seconds Time \\\"spent\\\".
# TYPE rpc_seconds counter
# UNIT rpc_seconds seconds
rpc_seconds_total{a=\"1\"} 2 1700000000.5
rpc_seconds_created{a=\"1\"} 1700000000
# TYPE build info
build_info{v=\"1\"} 1
# TYPE s stateset
s{s=\"a\"} 1
# EOF
"
        );
        // Text to OpenMetrics: a counter without `_total` is retyped, not renamed.
        let text = "# TYPE nginx_requests counter\nnginx_requests 3\n# TYPE x_total counter\nx_total 1 5\n";
        let (om, _) = rewrite(
            text.as_bytes(),
            Format::Text,
            Written::OpenMetrics,
            AllowUtf8,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(om).unwrap(),
            "# TYPE nginx_requests unknown\nnginx_requests 3\n# TYPE x counter\nx_total 1 0.005\n# EOF\n"
        );
    }

    #[test]
    fn histograms_stay_one_family() {
        let text = "\
# TYPE \"rpc.seconds\" histogram
{\"rpc.seconds_bucket\",le=\"1\"} 1
{\"rpc.seconds_bucket\",le=\"+Inf\"} 2
{\"rpc.seconds_sum\"} 0.5
{\"rpc.seconds_count\"} 2
";
        let (out, _) = esc(text, Underscores);
        assert_eq!(
            out,
            "\
# TYPE rpc_seconds histogram
rpc_seconds_bucket{le=\"1\"} 1
rpc_seconds_bucket{le=\"+Inf\"} 2
rpc_seconds_sum 0.5
rpc_seconds_count 2
"
        );
    }
}
