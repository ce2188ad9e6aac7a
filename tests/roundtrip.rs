//! Property tests: render -> parse is the identity, and so is parse -> aggregate -> render ->
//! parse for input without duplicate series, render -> escape -> parse under every escaping
//! scheme, and the same for OpenMetrics output (also read by Python `prometheus_client`'s
//! parser).

use metric_gate::aggregate::RenderOptions;
use metric_gate::exposition::escape::{
    escape_label_name, escape_metric_name, escape_text, rewrite, Escaping, Written,
};
use metric_gate::exposition::render::{
    is_legacy_label_name, is_legacy_metric_name, write_help, write_series, write_type,
    write_value_line_end,
};
use metric_gate::exposition::{Format, Metadata, ParseOptions, Parser, Sample, Sink};
use metric_gate::pipeline::Pipeline;
use metric_gate::relabel::Config;
use proptest::prelude::*;
use std::collections::BTreeSet;
use testkit::e2e::python_openmetrics;

#[derive(Debug, Clone, PartialEq)]
struct Series {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
    timestamp_ms: Option<i64>,
}

#[derive(Default)]
struct Collect {
    series: Vec<Series>,
    help: Vec<(String, String)>,
}

impl Sink for Collect {
    fn metadata(&mut self, m: &Metadata<'_>) {
        if m.kind == metric_gate::exposition::MetaKind::Help {
            self.help.push((m.family.to_owned(), m.text.to_owned()));
        }
    }
    fn sample(&mut self, s: &Sample<'_>) {
        self.series.push(Series {
            name: s.name.to_owned(),
            labels: s
                .labels()
                .map(|(n, v)| (n.to_owned(), v.to_owned()))
                .collect(),
            value: s.value,
            timestamp_ms: s.timestamp_ms,
        });
    }
}

fn parse_all(text: &[u8], chunk: usize) -> Result<Collect, String> {
    let mut c = Collect::default();
    let mut p = Parser::new(ParseOptions::default());
    for part in text.chunks(chunk.max(1)) {
        p.feed(part, &mut c).map_err(|e| e.to_string())?;
    }
    p.finish(&mut c).map_err(|e| e.to_string())?;
    Ok(c)
}

fn metric_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-zA-Z_:][a-zA-Z0-9_:]{0,20}",
        1 => "[a-z][a-z0-9_.\\- ]{0,10}\\.[a-z0-9]{1,5}",
        1 => "\\PC{1,12}",
    ]
    .prop_filter("not __name__", |n| n != "__name__")
}

fn label_name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-zA-Z_][a-zA-Z0-9_]{0,12}",
        1 => "[a-z][a-z0-9.\\-]{0,8}\\.[a-z]{1,3}",
    ]
    .prop_filter("reserved", |n| n != "__name__")
}

fn label_value() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-zA-Z0-9/_.\\-]{1,20}",
        1 => "[\\\\\"\\na-z ]{1,10}",
        1 => "\\PC{1,10}",
        1 => ".*\\\\",
    ]
    .prop_filter("non-empty", |v| !v.is_empty())
}

fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        6 => any::<f64>().prop_filter("finite", |f| f.is_finite()),
        2 => (-1_000_000i64..1_000_000).prop_map(|i| i as f64),
        1 => Just(f64::INFINITY),
        1 => Just(f64::NEG_INFINITY),
        1 => Just(f64::NAN),
    ]
}

fn series() -> impl Strategy<Value = Series> {
    (
        metric_name(),
        proptest::collection::btree_map(label_name(), label_value(), 0..6),
        value(),
        proptest::option::of(-10_000_000_000_000i64..10_000_000_000_000),
    )
        .prop_map(|(name, labels, value, timestamp_ms)| Series {
            name,
            labels: labels.into_iter().collect(),
            value,
            timestamp_ms,
        })
}

fn render(series: &[Series]) -> Vec<u8> {
    let mut out = Vec::new();
    for s in series {
        write_series(
            &mut out,
            &s.name,
            s.labels.iter().map(|(n, v)| (n.as_str(), v.as_str())),
        );
        write_value_line_end(&mut out, s.value, s.timestamp_ms);
    }
    out
}

fn same(a: &[Series], b: &[Series]) -> bool {
    a.len() == b.len()
        && a.iter().zip(b).all(|(x, y)| {
            x.name == y.name
                && x.labels == y.labels
                && x.timestamp_ms == y.timestamp_ms
                && (x.value.to_bits() == y.value.to_bits()
                    || (x.value.is_nan() && y.value.is_nan())
                    || x.value == y.value)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn render_then_parse_is_identity(
        input in proptest::collection::vec(series(), 1..20),
        chunk in 1usize..64,
        help in "\\PC{0,20}",
    ) {
        let mut text = Vec::new();
        write_help(&mut text, &input[0].name, &help);
        write_type(&mut text, &input[0].name, "untyped");
        text.extend(render(&input));
        let parsed = parse_all(&text, chunk)
            .map_err(|e| TestCaseError::fail(format!("{e}\n{}", String::from_utf8_lossy(&text))))?;
        prop_assert!(same(&parsed.series, &input), "\n{}", String::from_utf8_lossy(&text));
        prop_assert_eq!(&parsed.help, &vec![(input[0].name.clone(), help)]);
    }

    #[test]
    fn passthrough_pipeline_preserves_distinct_series(
        input in proptest::collection::vec(series(), 1..20),
    ) {
        // Distinct series only (the pipeline sums duplicates), labels in canonical order.
        let mut seen = std::collections::HashSet::new();
        let input: Vec<Series> = input
            .into_iter()
            .filter(|s| seen.insert((s.name.clone(), s.labels.clone())))
            .collect();
        let text = render(&input);
        let mut pipeline = Pipeline::new(&Config::passthrough());
        let mut p = Parser::new(ParseOptions::default());
        p.feed(&text, &mut pipeline).map_err(|e| TestCaseError::fail(e.to_string()))?;
        p.finish(&mut pipeline).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut out = Vec::new();
        pipeline.subsets()[0].aggregator.render(&mut out, &RenderOptions::default());
        let mut reparsed = parse_all(&out, 4096)
            .map_err(|e| TestCaseError::fail(format!("{e}\n{}", String::from_utf8_lossy(&out))))?
            .series;
        // The output groups series by family in first-seen order; compare as sets.
        let key = |s: &Series| format!("{}{:?}", s.name, s.labels);
        let mut want = input.clone();
        want.sort_by_key(key);
        reparsed.sort_by_key(key);
        prop_assert!(same(&reparsed, &want), "\nin:\n{}\nout:\n{}",
            String::from_utf8_lossy(&text), String::from_utf8_lossy(&out));
    }
}

/// The series a client asking for `scheme` should store from `input` (distinct series): names
/// escaped, labels sorted, series whose label names collide left out, series that became one
/// summed with the latest timestamp.
fn escaped_expectation(input: &[Series], scheme: Escaping) -> Vec<Series> {
    let mut out: Vec<Series> = Vec::new();
    for s in input {
        let mut labels: Vec<(String, String)> = s
            .labels
            .iter()
            .map(|(n, v)| (escape_label_name(n, scheme).into_owned(), v.clone()))
            .collect();
        labels.sort();
        if labels.windows(2).any(|w| w[0].0 == w[1].0) {
            continue;
        }
        let name = escape_metric_name(&s.name, scheme).into_owned();
        match out
            .iter_mut()
            .find(|o| o.name == name && o.labels == labels)
        {
            Some(o) => {
                o.value += s.value;
                o.timestamp_ms = match (o.timestamp_ms, s.timestamp_ms) {
                    (Some(a), Some(b)) => Some(a.max(b)),
                    (a, b) => a.or(b),
                };
            }
            None => out.push(Series {
                name,
                labels,
                value: s.value,
                timestamp_ms: s.timestamp_ms,
            }),
        }
    }
    out
}

fn scheme() -> impl Strategy<Value = Escaping> {
    prop_oneof![
        Just(Escaping::AllowUtf8),
        Just(Escaping::Underscores),
        Just(Escaping::Dots),
        Just(Escaping::Values),
    ]
}

/// Renders distinct `input` the way the server does (pass-through pipeline, aggregator render).
fn render_through_pipeline(input: &[Series]) -> Result<Vec<u8>, TestCaseError> {
    let text = render(input);
    let mut pipeline = Pipeline::new(&Config::passthrough());
    let mut p = Parser::new(ParseOptions::default());
    p.feed(&text, &mut pipeline)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    p.finish(&mut pipeline)
        .map_err(|e| TestCaseError::fail(e.to_string()))?;
    let mut out = Vec::new();
    pipeline.subsets()[0]
        .aggregator
        .render(&mut out, &RenderOptions::default());
    Ok(out)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Every escaping scheme: the escaped text parses back to exactly the escaped series, and
    /// (but for `allow-utf-8`) writes legacy names only.
    #[test]
    fn escaped_output_parses_to_the_escaped_series(
        input in proptest::collection::vec(series(), 1..20),
        values in proptest::collection::vec(-1000i64..1000, 20),
        scheme in scheme(),
    ) {
        // Distinct series; integer values, so sums do not depend on the order of addition.
        let mut seen = std::collections::HashSet::new();
        let input: Vec<Series> = input
            .into_iter()
            .filter(|s| seen.insert((s.name.clone(), s.labels.clone())))
            .zip(values)
            .map(|(s, v)| Series { value: v as f64, ..s })
            .collect();
        let rendered = render_through_pipeline(&input)?;
        let (escaped, _) = escape_text(&rendered, scheme)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let mut got = parse_all(&escaped, 4096)
            .map_err(|e| TestCaseError::fail(format!("{e}\n{}", String::from_utf8_lossy(&escaped))))?
            .series;
        for s in got.iter_mut() {
            s.labels.sort();
        }
        let key = |s: &Series| format!("{}{:?}", s.name, s.labels);
        let mut want = escaped_expectation(&input, scheme);
        want.sort_by_key(key);
        got.sort_by_key(key);
        prop_assert!(same(&got, &want), "\nin:\n{}\nout:\n{}",
            String::from_utf8_lossy(&rendered), String::from_utf8_lossy(&escaped));
        if scheme != Escaping::AllowUtf8 {
            for s in &got {
                prop_assert!(is_legacy_metric_name(&s.name), "{}", s.name);
                prop_assert!(s.labels.iter().all(|(n, _)| is_legacy_label_name(n)), "{:?}", s.labels);
            }
        }
    }
}

/// `promtool check metrics` (Prometheus 2.42's parser, which knows no quoted names) reads the
/// escaped text of UTF-8 names under every scheme that escapes.
#[test]
fn promtool_reads_escaped_text() {
    let input = "\
# HELP \"http.server.duration\" Duration.
# TYPE \"http.server.duration\" histogram
{\"http.server.duration_bucket\",\"url.scheme\"=\"https\",le=\"0.5\"} 1
{\"http.server.duration_bucket\",\"url.scheme\"=\"https\",le=\"+Inf\"} 2
{\"http.server.duration_sum\",\"url.scheme\"=\"https\"} 0.7
{\"http.server.duration_count\",\"url.scheme\"=\"https\"} 2
# TYPE \"ünïcode:total\" counter
{\"ünïcode:total\",\"a:b\"=\"x\",\"9lives\"=\"y\"} 3
# TYPE up gauge
up{\"host.name\"=\"a\\\\b\\\"c\\n\"} 1 1700000000000
";
    for scheme in [Escaping::Underscores, Escaping::Dots, Escaping::Values] {
        let (text, _) = escape_text(input.as_bytes(), scheme).unwrap();
        let text = String::from_utf8(text).unwrap();
        testkit::e2e::promtool_check_if_installed(&format!("{scheme:?} escaping"), &text);
    }
}

/// Parses OpenMetrics text (float-second timestamps).
fn parse_openmetrics(text: &[u8]) -> Result<Vec<Series>, String> {
    let mut c = Collect::default();
    let mut p = Parser::new(ParseOptions {
        format: Format::OpenMetrics,
        ..ParseOptions::default()
    });
    p.feed(text, &mut c).map_err(|e| e.to_string())?;
    p.finish(&mut c).map_err(|e| e.to_string())?;
    Ok(c.series)
}

/// Distinct series with labels sorted, in a canonical order, for set comparison.
fn canonical(mut series: Vec<Series>) -> Vec<Series> {
    for s in series.iter_mut() {
        s.labels.sort();
    }
    series.sort_by_key(|s| format!("{}{:?}", s.name, s.labels));
    series
}

/// Python `prometheus_client`'s OpenMetrics parser reads `text`: its sample count, or `None`
/// when python3 or the module is missing.
fn python_reads(text: &[u8]) -> Result<Option<usize>, String> {
    const SCRIPT: &str = "
import sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
print(sum(len(f.samples) for f in text_string_to_metric_families(sys.stdin.read())))
";
    Ok(python_openmetrics("OpenMetrics round trip", SCRIPT, text)?
        .and_then(|out| out.trim().parse().ok()))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// OpenMetrics output (the aggregate's own, and the conversion from text under every
    /// scheme) parses back to the same series as the text output, timestamps exact.
    #[test]
    fn openmetrics_output_parses_to_the_same_series(
        input in proptest::collection::vec(series(), 1..20),
        scheme in scheme(),
    ) {
        let mut seen = std::collections::HashSet::new();
        let input: Vec<Series> = input
            .into_iter()
            .filter(|s| seen.insert((s.name.clone(), s.labels.clone())))
            .collect();
        let text = render(&input);
        let mut pipeline = Pipeline::new(&Config::passthrough());
        let mut p = Parser::new(ParseOptions::default());
        p.feed(&text, &mut pipeline).map_err(|e| TestCaseError::fail(e.to_string()))?;
        p.finish(&mut pipeline).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let agg = &pipeline.subsets()[0].aggregator;
        let mut om = Vec::new();
        agg.render_openmetrics(&mut om, &RenderOptions::default());
        prop_assert!(om.ends_with(b"# EOF\n"));
        let got = parse_openmetrics(&om)
            .map_err(|e| TestCaseError::fail(format!("{e}\n{}", String::from_utf8_lossy(&om))))?;
        prop_assert!(same(&canonical(got), &canonical(input.clone())), "\n{}", String::from_utf8_lossy(&om));

        let mut rendered = Vec::new();
        agg.render(&mut rendered, &RenderOptions::default());
        let (converted, _) = rewrite(&rendered, Format::Text, Written::OpenMetrics, scheme)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let got = parse_openmetrics(&converted)
            .map_err(|e| TestCaseError::fail(format!("{e}\n{}", String::from_utf8_lossy(&converted))))?;
        let want = escaped_expectation(&input, scheme);
        prop_assert!(same(&canonical(got), &canonical(want)), "\n{}", String::from_utf8_lossy(&converted));
    }
}

proptest! {
    // Each case starts a Python process.
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// The reference OpenMetrics parser (Python `prometheus_client`) reads metric-gate's
    /// OpenMetrics output, names escaped with underscores, and finds every series.
    #[test]
    fn python_reads_openmetrics_output(
        input in proptest::collection::vec(series(), 1..12),
    ) {
        // Distinct series; Python also refuses label names that start with `__` (reserved).
        let mut seen = std::collections::HashSet::new();
        let input: Vec<Series> = input
            .into_iter()
            .filter(|s| s.labels.iter().all(|(n, _)| !n.starts_with("__")))
            .filter(|s| seen.insert((s.name.clone(), s.labels.clone())))
            .collect();
        let rendered = render_through_pipeline(&input)?;
        let (om, _) = rewrite(&rendered, Format::Text, Written::OpenMetrics, Escaping::Underscores)
            .map_err(|e| TestCaseError::fail(e.to_string()))?;
        let want = escaped_expectation(&input, Escaping::Underscores).len();
        match python_reads(&om) {
            Ok(Some(n)) => prop_assert_eq!(n, want, "\n{}", String::from_utf8_lossy(&om)),
            Ok(None) => {}
            Err(e) => prop_assert!(false, "{e}\n{}", String::from_utf8_lossy(&om)),
        }
    }
}

/// One family of an OpenMetrics upstream with an exemplar on its first sample (for a gauge,
/// where OpenMetrics allows none, metric-gate leaves it out).
#[derive(Debug, Clone)]
struct OmFamily {
    name: String,
    kind: &'static str,
    labels: Vec<(String, String)>,
    value: u32,
    exemplar: String,
}

/// Exemplar label values: with escapes, or (`plain`) without the `"` and `\` that Python's
/// parser does not read in exemplars.
fn exemplar(plain: bool) -> impl Strategy<Value = String> {
    let value = if plain {
        "[a-zA-Z0-9 _./-]{0,12}"
    } else {
        "([a-zA-Z0-9 _./-]|\\\\\\\\|\\\\\"|\\\\n){0,12}"
    };
    (
        proptest::collection::btree_map("[a-zA-Z][a-zA-Z0-9_]{0,8}", value, 0..3),
        -1_000_000i64..1_000_000,
        proptest::option::of((1_000_000_000i64..2_000_000_000, 0u32..1000)),
    )
        .prop_map(|(labels, v, ts)| {
            let labels: Vec<String> = labels
                .into_iter()
                .map(|(n, v)| format!("{n}=\"{v}\""))
                .collect();
            let mut text = format!("{{{}}} {}", labels.join(","), v as f64 / 8.0);
            if let Some((s, ms)) = ts {
                text.push_str(&format!(" {s}.{ms:03}"));
            }
            text
        })
}

fn om_families(plain: bool) -> impl Strategy<Value = Vec<OmFamily>> {
    proptest::collection::vec(
        (
            "[a-z][a-z0-9_]{0,10}",
            prop_oneof![Just("counter"), Just("histogram"), Just("gauge")],
            proptest::collection::btree_map("[a-z][a-z0-9_]{0,6}", "[a-zA-Z0-9/]{1,8}", 0..3),
            0u32..1000,
            exemplar(plain),
        )
            .prop_map(|(name, kind, labels, value, exemplar)| OmFamily {
                name: format!("f_{name}"),
                kind,
                labels: labels.into_iter().filter(|(n, _)| n != "le").collect(),
                value,
                exemplar,
            }),
        1..8,
    )
    .prop_map(|mut v| {
        let mut seen = std::collections::HashSet::new();
        v.retain(|f| seen.insert(f.name.clone()));
        v
    })
}

/// The families as an OpenMetrics upstream writes them, and the sample lines (with their
/// exemplars) an OpenMetrics answer must have.
fn om_text(families: &[OmFamily]) -> (String, BTreeSet<String>) {
    let mut text = String::new();
    let mut want = BTreeSet::new();
    for f in families {
        // Sorted by name, as the aggregator writes them.
        let series = |name: &str, le: Option<&str>| {
            let mut l: Vec<(&str, &str)> = f
                .labels
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect();
            l.extend(le.map(|v| ("le", v)));
            l.sort();
            let l: Vec<String> = l.iter().map(|(n, v)| format!("{n}=\"{v}\"")).collect();
            if l.is_empty() {
                name.to_owned()
            } else {
                format!("{name}{{{}}}", l.join(","))
            }
        };
        text.push_str(&format!("# TYPE {} {}\n", f.name, f.kind));
        let (first, rest): (String, Vec<String>) = match f.kind {
            "counter" => (series(&format!("{}_total", f.name), None), vec![]),
            "histogram" => (
                series(&format!("{}_bucket", f.name), Some("1.0")),
                vec![
                    format!(
                        "{} {}",
                        series(&format!("{}_bucket", f.name), Some("+Inf")),
                        f.value
                    ),
                    format!("{} {}", series(&format!("{}_count", f.name), None), f.value),
                    format!("{} {}", series(&format!("{}_sum", f.name), None), f.value),
                ],
            ),
            _ => (series(&f.name, None), vec![]),
        };
        text.push_str(&format!("{first} {} # {}\n", f.value, f.exemplar));
        if f.kind == "gauge" {
            want.insert(format!("{first} {}", f.value));
        } else {
            want.insert(format!("{first} {} # {}", f.value, f.exemplar));
        }
        for line in rest {
            text.push_str(&line);
            text.push('\n');
            want.insert(line);
        }
    }
    text.push_str("# EOF\n");
    (text, want)
}

/// `text` (OpenMetrics) through a pass-through pipeline, written as OpenMetrics.
fn openmetrics_through_pipeline(text: &str) -> Result<String, TestCaseError> {
    let mut pipeline = Pipeline::new(&Config::passthrough());
    let mut p = Parser::new(ParseOptions {
        format: Format::OpenMetrics,
        ..ParseOptions::default()
    });
    p.feed(text.as_bytes(), &mut pipeline)
        .map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
    p.finish(&mut pipeline)
        .map_err(|e| TestCaseError::fail(format!("{e}\n{text}")))?;
    let mut om = Vec::new();
    pipeline.subsets()[0]
        .aggregator
        .render_openmetrics(&mut om, &RenderOptions::default());
    String::from_utf8(om).map_err(|e| TestCaseError::fail(e.to_string()))
}

/// Exemplars metric-gate's parser reads from OpenMetrics `text`, as `series -> exemplar`.
fn parsed_exemplars(text: &str) -> Result<BTreeSet<String>, String> {
    struct Ex(BTreeSet<String>);
    impl Sink for Ex {
        fn metadata(&mut self, _: &Metadata<'_>) {}
        fn sample(&mut self, s: &Sample<'_>) {
            if let Some(e) = s.exemplar {
                self.0.insert(format!(
                    "{} {:?} -> {} {:?}",
                    s.name,
                    s.labels().collect::<Vec<_>>(),
                    e.value,
                    e.timestamp
                ));
            }
        }
    }
    let mut ex = Ex(BTreeSet::new());
    let mut p = Parser::new(ParseOptions {
        format: Format::OpenMetrics,
        ..ParseOptions::default()
    });
    p.feed(text.as_bytes(), &mut ex)
        .map_err(|e| e.to_string())?;
    p.finish(&mut ex).map_err(|e| e.to_string())?;
    Ok(ex.0)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// An OpenMetrics upstream's exemplars come out of the OpenMetrics answer as the upstream
    /// wrote them, on the samples that may carry one, and parse back the same.
    #[test]
    fn openmetrics_exemplars_round_trip(families in om_families(false)) {
        let (text, want) = om_text(&families);
        let om = openmetrics_through_pipeline(&text)?;
        let got: BTreeSet<String> = om
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(str::to_owned)
            .collect();
        prop_assert_eq!(&got, &want, "\n{}", om);
        let mut want_parsed = parsed_exemplars(&text).map_err(TestCaseError::fail)?;
        // Gauges may not carry one in OpenMetrics: theirs are left out.
        let gauges: Vec<&str> = families.iter().filter(|f| f.kind == "gauge").map(|f| f.name.as_str()).collect();
        want_parsed.retain(|l| !gauges.iter().any(|g| l.starts_with(&format!("{g} "))));
        prop_assert_eq!(parsed_exemplars(&om).map_err(TestCaseError::fail)?, want_parsed);
    }
}

proptest! {
    // Each case starts a Python process.
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Python `prometheus_client`'s OpenMetrics parser reads the exemplars of the answer.
    #[test]
    fn python_reads_openmetrics_exemplars(families in om_families(true)) {
        let (text, _) = om_text(&families);
        let om = openmetrics_through_pipeline(&text)?;
        let want = families.iter().filter(|f| f.kind != "gauge").count();
        match python_exemplars(om.as_bytes()) {
            Ok(Some(n)) => prop_assert_eq!(n, want, "\n{}", om),
            Ok(None) => {}
            Err(e) => prop_assert!(false, "{e}\n{}", om),
        }
    }
}

/// The number of exemplars Python `prometheus_client`'s OpenMetrics parser reads from `text`,
/// or `None` when python3 or the module is missing.
fn python_exemplars(text: &[u8]) -> Result<Option<usize>, String> {
    const SCRIPT: &str = "
import sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
print(sum(1 for f in text_string_to_metric_families(sys.stdin.read()) for s in f.samples if s.exemplar))
";
    Ok(python_openmetrics("OpenMetrics round trip", SCRIPT, text)?
        .and_then(|out| out.trim().parse().ok()))
}
