//! The checks behind the fuzz targets (`fuzz/fuzz_targets/*.rs`), shared with
//! `tests/fuzz_regressions.rs` (which runs them over every saved input in `testdata/fuzz/`) and
//! `tests/properties.rs` (which feeds and collects through [`feed`] and [`Record`]). Each check
//! panics when an oracle fails, which is what libFuzzer and the test harness report: a panic in
//! metric-gate itself, or an inconsistency (chunking changes the result, output does not parse
//! back, the cache disagrees with a fresh pipeline).

use metric_gate::aggregate::RenderOptions;
use metric_gate::analyze::Analyzer;
use metric_gate::exposition::render::{write_series, write_value_line_end};
use metric_gate::exposition::{Metadata, ParseError, ParseOptions, Parser, Sample, Sink};
use metric_gate::limits::LabelLimits;
use metric_gate::pipeline::Pipeline;
use metric_gate::relabel::Config;

/// One parsed sample, owned.
#[derive(Debug, Clone)]
pub struct Owned {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
    pub timestamp_ms: Option<i64>,
}

impl PartialEq for Owned {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
            && self.labels == other.labels
            && self.timestamp_ms == other.timestamp_ms
            // -0 renders as 0, as Prometheus writes it; otherwise exact.
            && (self.value == other.value || (self.value.is_nan() && other.value.is_nan()))
    }
}

/// Everything a parse reports, in order.
#[derive(Debug, Default, PartialEq)]
pub struct Record {
    pub samples: Vec<Owned>,
    pub metadata: Vec<(String, String)>,
}

impl Sink for Record {
    fn metadata(&mut self, m: &Metadata<'_>) {
        self.metadata
            .push((m.family.to_owned(), format!("{:?} {}", m.kind, m.text)));
    }

    fn sample(&mut self, s: &Sample<'_>) {
        // Touch every accessor the pipeline uses; they must agree with each other.
        let labels: Vec<(String, String)> = s
            .labels()
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect();
        assert_eq!(labels.len(), s.label_count(), "label_count");
        for (i, (n, v)) in labels.iter().enumerate() {
            let (an, av, _) = s.label_at(i).expect("label_at within label_count");
            assert_eq!((an, av), (n.as_str(), v.as_str()), "label_at({i})");
            assert!(s.label_value(n).is_some(), "label_value({n:?})");
        }
        assert!(s.label_at(labels.len()).is_none(), "label_at past the end");
        assert!(!s.series_text.is_empty(), "empty series text");
        self.samples.push(Owned {
            name: s.name.to_owned(),
            labels,
            value: s.value,
            timestamp_ms: s.timestamp_ms,
        });
    }
}

/// Feeds `data` in chunks of the given sizes (cycled), then finishes.
pub fn feed<S: Sink>(data: &[u8], chunks: &[usize], sink: &mut S) -> Result<(), ParseError> {
    let mut parser = Parser::new(ParseOptions::default());
    let mut rest = data;
    let mut i = 0;
    while !rest.is_empty() {
        let n = chunks[i % chunks.len()].clamp(1, rest.len());
        parser.feed(&rest[..n], sink)?;
        rest = &rest[n..];
        i += 1;
    }
    parser.finish(sink)
}

/// Parses text metric-gate wrote, in one piece; panics, naming `what`, if it does not parse.
pub fn reparse(text: &[u8], what: &str) -> Record {
    let mut parsed = Record::default();
    if let Err(e) = feed(text, &[text.len().max(1)], &mut parsed) {
        panic!(
            "{what} does not parse: {e}\n{}",
            String::from_utf8_lossy(text)
        );
    }
    parsed
}

/// Chunk sizes derived from the input, so the fuzzer explores buffer boundaries too.
fn chunk_plan(data: &[u8]) -> Vec<usize> {
    let seed = data
        .iter()
        .take(8)
        .fold(0usize, |h, &b| h.wrapping_mul(31) ^ b as usize);
    vec![1 + seed % 13, 1 + seed % 97, 1 + (seed >> 3) % 5]
}

/// Parser oracle: never panics; the same records and the same error whole or in chunks; what
/// parses, rendered again, parses to the same samples.
pub fn check_parse(data: &[u8]) {
    let mut whole = Record::default();
    let whole_result = feed(data, &[data.len().max(1)], &mut whole);
    let mut chunked = Record::default();
    let chunked_result = feed(data, &chunk_plan(data), &mut chunked);
    assert_eq!(whole_result, chunked_result, "chunking changed the outcome");
    assert_eq!(whole, chunked, "chunking changed the records");
    if let Err(e) = &whole_result {
        assert!(e.line >= 1, "error without a line: {e}");
        return;
    }
    let mut text = Vec::new();
    for s in &whole.samples {
        write_series(
            &mut text,
            &s.name,
            s.labels.iter().map(|(n, v)| (n.as_str(), v.as_str())),
        );
        write_value_line_end(&mut text, s.value, s.timestamp_ms);
    }
    let again = reparse(&text, "rendered samples");
    assert_eq!(
        again.samples, whole.samples,
        "render -> parse changed samples"
    );
}

/// A small exposition every configuration is applied to.
pub const SAMPLE_INPUT: &str = "# HELP req_total Requests.\n# TYPE req_total counter\n\
req_total{code=\"200\",path=\"/api\",method=\"GET\",pod=\"p1\"} 3\n\
req_total{code=\"500\",path=\"/api/v1\",method=\"post\",pod=\"p1\"} 1 1700000000000\n\
req_total{code=\"200\",path=\"/\",method=\"GET\",pod=\"p2\"} 2\n\
# TYPE lat histogram\n\
lat_bucket{le=\"0.1\",path=\"/api\"} 1\n\
lat_bucket{le=\"+Inf\",path=\"/api\"} 4\n\
lat_sum{path=\"/api\"} 0.25\n\
lat_count{path=\"/api\"} 4\n\
up 1\n\
{\"my.metric\",\"a.b\"=\"x\"} 5\n";

/// Runs `input` through `config` for two scrapes (the second from the series cache) and checks
/// that every subset's output parses and has no more series than samples went in, that both
/// cached scrapes render exactly what a pipeline without the cache renders, and that feeding the
/// input whole renders the same as feeding it in chunks.
pub fn check_config_on(config: &Config, input: &[u8]) {
    let plan = chunk_plan(input);
    let limits = LabelLimits {
        labels: 8,
        name_length: 64,
        value_length: 256,
    };
    let fresh = || {
        Pipeline::new(config)
            .normalize_float_labels(true)
            .with_label_limits(limits)
    };
    let mut cached = fresh().with_series_cache(256);
    if feed(input, &plan, &mut cached).is_err() {
        // A parse error fails the scrape; what was added so far must still render.
        render_all(&cached, usize::MAX);
        return;
    }
    let samples = cached.samples() as usize;
    let first = render_all(&cached, samples);
    cached.begin_scrape();
    feed(input, &plan, &mut cached).expect("the same input parsed the first time");
    let second = render_all(&cached, samples);
    assert_eq!(first, second, "the cached scrape differs from the first");
    let mut uncached = fresh();
    feed(input, &plan, &mut uncached).expect("parsed with the cache, so without too");
    let uncached = render_all(&uncached, samples);
    assert_eq!(uncached, first, "the series cache changed the output");
    let mut whole = fresh();
    feed(input, &[input.len().max(1)], &mut whole).expect("parsed in chunks, so whole too");
    assert_eq!(
        render_all(&whole, samples),
        uncached,
        "chunking changed the output"
    );
}

/// Renders every subset, asserts the output parses and is not larger than the input in series,
/// returns the sorted output lines per subset.
fn render_all(pipeline: &Pipeline, max_series: usize) -> Vec<Vec<String>> {
    pipeline
        .subsets()
        .iter()
        .map(|s| {
            let mut out = Vec::new();
            s.aggregator.render(&mut out, &RenderOptions::default());
            let parsed = reparse(&out, "output");
            assert!(
                parsed.samples.len() <= max_series,
                "{} series out of {max_series} samples",
                parsed.samples.len()
            );
            let text = String::from_utf8(out).expect("output is UTF-8");
            let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
            lines.sort_unstable();
            lines
        })
        .collect()
}

/// Relabel configuration oracle: loading never panics, a refusal names its origin, and a
/// loaded configuration passes [`check_config_on`] on [`SAMPLE_INPUT`].
pub fn check_relabel_config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Config::from_yaml(text, "fuzz.yaml") {
        Ok(config) => check_config_on(&config, SAMPLE_INPUT.as_bytes()),
        Err(e) => {
            let message = e.to_string();
            assert!(
                message.contains("fuzz.yaml"),
                "error without origin: {message}"
            );
        }
    }
}

/// The configurations the pipeline target picks from.
pub const CONFIGS: [&str; 4] = [
    include_str!("../../testdata/relabel/labeldrop_path.yaml"),
    include_str!("../../testdata/relabel/subsets.yaml"),
    "",
    include_str!("../../testdata/relabel/rule_mix.yaml"),
];

/// Pipeline oracle: the first byte picks a configuration, the rest is the exposition.
pub fn check_pipeline(data: &[u8]) {
    let Some((&pick, input)) = data.split_first() else {
        return;
    };
    thread_local! {
        static LOADED: Vec<Config> = CONFIGS
            .iter()
            .map(|c| Config::from_yaml(c, "bundled").expect("bundled configurations are valid"))
            .collect();
    }
    LOADED.with(|configs| check_config_on(&configs[pick as usize % configs.len()], input));
    let mut analyzer = Analyzer::new();
    let _ = feed(input, &chunk_plan(input), &mut analyzer);
    let _ = analyzer.report();
}
