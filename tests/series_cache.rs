//! The cross-scrape series cache never changes a result: a pipeline that serves many scrapes
//! with the cache answers each scrape exactly as a fresh pipeline would (same series, same
//! values, same metadata), while series come, go and change values.

use metric_gate::aggregate::RenderOptions;
use metric_gate::exposition::{ParseOptions, Parser};
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
