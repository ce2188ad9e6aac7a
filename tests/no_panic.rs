//! Bad input never panics: arbitrary bytes, and valid expositions with random damage, go through
//! the parser, every relabel action and the aggregator (and the analyzer) without a panic; each
//! either parses or fails with a positioned error.

use metric_gate::analyze::Analyzer;
use metric_gate::exposition::{ParseOptions, Parser, Sink};
use metric_gate::pipeline::Pipeline;
use metric_gate::relabel::Config;
use proptest::prelude::*;

const CONFIG: &str = include_str!("../testdata/relabel/rule_mix.yaml");

const VALID: &str = "# HELP req_total Requests \\\\ \\n done.\n# TYPE req_total counter\nreq_total{code=\"200\",path=\"/a\",method=\"GET\",x_team=\"t\"} 1 1700000000000\nreq_total{code=\"500\",path=\"/b\",method=\"Post\"} 2\n# TYPE lat histogram\nlat_bucket{le=\"0.5\"} 1\nlat_bucket{le=\"+Inf\"} 2\nlat_sum 1.5e-3\nlat_count 2\n{\"my.metric\",\"a.b\"=\"c\\\"d\"} NaN\nx{a=\"1\",b=\"1\"} -Inf\n";

fn run<S: Sink>(data: &[u8], chunk: usize, sink: &mut S) -> Result<(), String> {
    let mut p = Parser::new(ParseOptions::default());
    for part in data.chunks(chunk.max(1)) {
        p.feed(part, sink).map_err(|e| e.to_string())?;
    }
    p.finish(sink).map_err(|e| e.to_string())
}

fn check(data: &[u8], chunk: usize) -> Result<(), TestCaseError> {
    let config = Config::from_yaml(CONFIG, "test").expect("valid config");
    let mut pipeline = Pipeline::new(&config)
        .normalize_float_labels(true)
        .with_series_cache(64);
    if let Err(e) = run(data, chunk, &mut pipeline) {
        prop_assert!(e.starts_with("line "), "error without position: {e}");
    }
    pipeline.begin_scrape();
    let _ = run(data, chunk, &mut pipeline);
    for s in pipeline.subsets() {
        let mut out = Vec::new();
        s.aggregator
            .render(&mut out, &metric_gate::aggregate::RenderOptions::default());
        prop_assert!(std::str::from_utf8(&out).is_ok());
    }
    let mut a = Analyzer::new();
    let _ = run(data, chunk, &mut a);
    let _ = a.report();
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..400), chunk in 1usize..50) {
        check(&data, chunk)?;
    }

    #[test]
    fn damaged_valid_input(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8),
        chunk in 1usize..64,
    ) {
        let mut data = VALID.as_bytes().to_vec();
        for (at, byte, kind) in edits {
            if data.is_empty() {
                break;
            }
            let i = at.index(data.len());
            match kind {
                0 => data[i] = byte,
                1 => { data.remove(i); }
                _ => {
                    let specials = b"{}\",=\\\n #e.";
                    data.insert(i, specials[byte as usize % specials.len()]);
                }
            }
        }
        check(&data, chunk)?;
    }
}

#[test]
fn the_valid_sample_is_valid() {
    let config = Config::from_yaml(CONFIG, "test").expect("valid config");
    let mut pipeline = Pipeline::new(&config);
    run(VALID.as_bytes(), 7, &mut pipeline).expect("parses");
    assert_eq!(pipeline.samples(), 8);
}
