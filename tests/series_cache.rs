//! The cross-scrape series cache never changes a result: a pipeline that serves many scrapes
//! with the cache answers each scrape exactly as a fresh pipeline would (same series, same
//! values, same metadata), while series come, go and change values.

use metric_gate::aggregate::RenderOptions;
use metric_gate::exposition::{KnownSample, Metadata, ParseOptions, Parser, Sample, Sink};
use metric_gate::pipeline::Pipeline;
use metric_gate::relabel::Config;
use proptest::prelude::*;

const CONFIG: &str = "
metric_relabel_configs:
- action: labeldrop
  regex: path
- action: drop
  source_labels: [code]
  regex: '5..'
errors:
- action: keep
  source_labels: [code]
  regex: '5..'
- action: replace
  source_labels: [path]
  regex: '/api/(.*)'
  target_label: api
- action: labelkeep
  regex: 'code|api'
renamed:
- action: replace
  source_labels: [__name__]
  regex: 'req_(.*)'
  replacement: 'http_${1}'
  target_label: __name__
";

/// One scrape's body from a choice of series and values.
fn body(present: &[bool], values: &[u32]) -> String {
    let mut out = String::from("# HELP req_total Requests.\n# TYPE req_total counter\n");
    for (i, (&p, &v)) in present.iter().zip(values).enumerate() {
        if !p {
            continue;
        }
        let code = [200, 404, 500, 503][i % 4];
        let path = ["/api/a", "/api/b", "/x", "/api/a/b"][(i / 4) % 4];
        let pod = i / 16;
        out.push_str(&format!(
            "req_total{{code=\"{code}\",path=\"{path}\",pod=\"p{pod}\"}} {v}\n"
        ));
    }
    out.push_str("# TYPE up gauge\nup 1\n");
    out
}

fn run(pipeline: &mut Pipeline, text: &str) -> Vec<String> {
    let mut parser = Parser::new(ParseOptions::default());
    for chunk in text.as_bytes().chunks(37) {
        parser.feed(chunk, pipeline).expect("parses");
    }
    parser.finish(pipeline).expect("parses");
    pipeline
        .subsets()
        .iter()
        .map(|s| {
            let mut out = Vec::new();
            s.aggregator.render(&mut out, &RenderOptions::default());
            // Series order may differ (first seen across scrapes vs in this scrape); the set of
            // lines and the metadata lines may not.
            let text = String::from_utf8(out).expect("utf-8");
            let mut lines: Vec<&str> = text.lines().collect();
            lines.sort_unstable();
            format!(
                "{} series, dropped {}\n{}",
                s.aggregator.series_count(),
                s.dropped_by_relabel,
                lines.join("\n")
            )
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn cached_scrapes_equal_fresh_ones(
        scrapes in proptest::collection::vec(
            (proptest::collection::vec(any::<bool>(), 48), proptest::collection::vec(0u32..1000, 48)),
            1..12,
        ),
    ) {
        let config = Config::from_yaml(CONFIG, "test").expect("valid config");
        let mut cached = Pipeline::new(&config).with_series_cache(1 << 20);
        for (i, (present, values)) in scrapes.iter().enumerate() {
            let text = body(present, values);
            if i > 0 {
                cached.begin_scrape();
            }
            let got = run(&mut cached, &text);
            let want = run(&mut Pipeline::new(&config), &text);
            prop_assert_eq!(got, want, "scrape {}", i);
        }
        let cache = cached.series_cache().expect("enabled");
        if scrapes.len() > 1 {
            prop_assert!(cache.stats().hits > 0 || scrapes.last().map(|s| !s.0.iter().any(|&p| p)).unwrap_or(true));
        }
    }
}

#[test]
fn repeat_scrape_is_served_from_the_cache() {
    let config = Config::from_yaml(CONFIG, "test").expect("valid config");
    let mut p = Pipeline::new(&config).with_series_cache(1 << 20);
    let text = body(&[true; 48], &[7; 48]);
    let first = run(&mut p, &text);
    let misses = p.series_cache().unwrap().stats().misses;
    assert_eq!(misses, 49, "every sample is new");
    p.begin_scrape();
    assert_eq!(run(&mut p, &text), first);
    let st = p.series_cache().unwrap().stats();
    assert_eq!((st.hits, st.misses), (49, 0));
}

/// Feeds the pipeline as the parser would, forwarding the repeat scrape's fast path
/// ([`Sink::known_sample`]) only when `fast`: the same pipeline with and without it.
struct Via<'a> {
    pipeline: &'a mut Pipeline,
    fast: bool,
    known: usize,
}

impl Sink for Via<'_> {
    fn metadata(&mut self, meta: &Metadata<'_>) {
        self.pipeline.metadata(meta);
    }
    fn sample(&mut self, sample: &Sample<'_>) {
        self.pipeline.sample(sample);
    }
    fn should_stop(&self) -> bool {
        self.pipeline.should_stop()
    }
    fn expected_series_len(&self) -> Option<usize> {
        self.pipeline.expected_series_len().filter(|_| self.fast)
    }
    fn known_sample(&mut self, sample: &KnownSample<'_>) -> bool {
        let taken = self.pipeline.known_sample(sample);
        self.known += usize::from(taken);
        taken
    }
}

/// A body with a histogram (whose `le` the pipeline normalizes), a summary, counters (some
/// series twice: the first sample counts), the process start time and a series with escapes;
/// `present` picks the counter series, `values` their values, `extra` adds a series in the
/// middle.
fn rich_body(present: &[bool], values: &[u32], extra: bool) -> String {
    let mut out = String::from(
        "# HELP lat Latency.\n# TYPE lat histogram\n\
         lat_bucket{path=\"/a\",le=\"1\"} 1\nlat_bucket{path=\"/a\",le=\"+Inf\"} 2\n\
         lat_sum{path=\"/a\"} 3\nlat_count{path=\"/a\"} 2\n\
         # TYPE q summary\nq{quantile=\"0.5\"} 1\nq_sum 2\nq_count 3\n\
         process_start_time_seconds 1700000000\n# TYPE req_total counter\n",
    );
    for (i, (&p, &v)) in present.iter().zip(values).enumerate() {
        if i == present.len() / 2 && extra {
            out.push_str("req_total{code=\"999\",path=\"/new\"} 1\n");
        }
        if p {
            let code = [200, 404, 500, 503][i % 4];
            let path = ["/api/a", "/api/b", "/x", "/a\\\"b"][(i / 4) % 4];
            out.push_str(&format!(
                "req_total{{code=\"{code}\",path=\"{path}\"}} {v} 1700000000000\n"
            ));
        }
    }
    // Text the histogram's block saw, now outside any `# TYPE` (another family).
    out.push_str("lat_sum{path=\"/a\"} 4\nup 1\n");
    out
}

/// What a scrape left: the rendered lists, counts, counter records and cache counters.
fn scrape_via(pipeline: &mut Pipeline, text: &str, fast: bool) -> (String, usize) {
    let mut via = Via {
        pipeline,
        fast,
        known: 0,
    };
    let mut parser = Parser::new(ParseOptions::default());
    for chunk in text.as_bytes().chunks(53) {
        parser.feed(chunk, &mut via).expect("parses");
    }
    parser.finish(&mut via).expect("parses");
    let known = via.known;
    let mut state = format!(
        "samples {} duplicates {} start {:?} cache {:?}\n",
        pipeline.samples(),
        pipeline.duplicates(),
        pipeline.process_start(),
        pipeline.series_cache().map(|c| c.stats()),
    );
    for s in pipeline.subsets() {
        let mut out = Vec::new();
        s.aggregator.render(&mut out, &RenderOptions::default());
        state.push_str(&format!(
            "{}: dropped {} {:?}\n{:?}\n{}",
            s.name,
            s.dropped_by_relabel,
            s.stats(),
            s.counters,
            String::from_utf8_lossy(&out)
        ));
    }
    (state, known)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// The repeat scrape's fast path (labels not parsed for a series the cache expects) leaves
    /// exactly what the full parse leaves: outputs, counts, duplicates, counter records.
    #[test]
    fn known_series_fast_path_equals_the_full_parse(
        scrapes in proptest::collection::vec(
            (
                proptest::collection::vec(any::<bool>(), 24),
                proptest::collection::vec(0u32..1000, 24),
                any::<bool>(),
                any::<bool>(),
            ),
            1..8,
        ),
        label_filter in any::<bool>(),
    ) {
        let yaml = if label_filter {
            "metric_relabel_configs: [{action: labeldrop, regex: path}]"
        } else {
            CONFIG
        };
        let config = Config::from_yaml(yaml, "test").expect("valid config");
        let make = || {
            Pipeline::new(&config)
                .with_series_cache(1 << 20)
                .track_counters()
                .normalize_float_labels(true)
        };
        let (mut fast, mut full) = (make(), make());
        let mut known = 0;
        for (i, (present, values, extra, twice)) in scrapes.iter().enumerate() {
            let mut text = rich_body(present, values, *extra);
            if *twice {
                // The same series again later in the body: Prometheus keeps the first.
                text.push_str("req_total{code=\"200\",path=\"/api/a\"} 5 1700000000000\n");
            }
            if i > 0 {
                fast.begin_scrape();
                full.begin_scrape();
            }
            let (got, k) = scrape_via(&mut fast, &text, true);
            let (want, _) = scrape_via(&mut full, &text, false);
            prop_assert_eq!(got, want, "scrape {}", i);
            known += k;
        }
        if scrapes.len() > 1 {
            prop_assert!(known > 0, "the fast path never ran");
        }
    }
}
