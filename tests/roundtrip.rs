//! Property tests: render -> parse is the identity, and so is parse -> aggregate -> render ->
//! parse for input without duplicate series.

use metric_gate::aggregate::RenderOptions;
use metric_gate::exposition::render::{write_help, write_series, write_type, write_value_line_end};
use metric_gate::exposition::{Metadata, ParseOptions, Parser, Sample, Sink};
use metric_gate::pipeline::Pipeline;
use metric_gate::relabel::Config;
use proptest::prelude::*;

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
