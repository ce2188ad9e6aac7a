//! Feeds a payload through one pipeline with a series cache, scrape after scrape, as the server
//! does for a target it scrapes repeatedly. Small enough a process for `valgrind --tool=callgrind`:
//! the difference between ROUNDS=2 and ROUNDS=1 is what a repeat scrape (every series known to
//! the cache) costs.
//!
//!     cargo run --release --example pipeline_repeat -- PAYLOAD RELABEL_FILE [ROUNDS]

use std::process::exit;
use std::time::Instant;

use metric_gate::aggregate::RenderOptions;
use metric_gate::exposition::ParseOptions;
use metric_gate::pipeline::{read_all, Pipeline};
use metric_gate::relabel::Config;

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(path), Some(relabel)) = (args.next(), args.next()) else {
        eprintln!("usage: pipeline_repeat PAYLOAD RELABEL_FILE [ROUNDS]");
        exit(2);
    };
    let rounds: u32 = args.next().and_then(|r| r.parse().ok()).unwrap_or(2);
    let read = |p: &str| {
        std::fs::read(p).unwrap_or_else(|e| {
            eprintln!("{p}: {e}");
            exit(1)
        })
    };
    let data = read(&path);
    let yaml = String::from_utf8_lossy(&read(&relabel)).into_owned();
    let config = Config::from_yaml(&yaml, &relabel).unwrap_or_else(|e| {
        eprintln!("{relabel}: {e}");
        exit(1)
    });
    let mut pipeline = Pipeline::new(&config).with_series_cache(1 << 22);
    for round in 0..rounds {
        let start = Instant::now();
        if round > 0 {
            pipeline.begin_scrape();
        }
        if let Err(e) = read_all(&data[..], ParseOptions::default(), &mut pipeline) {
            eprintln!("{path}: {e}");
            exit(1);
        }
        let mut out = Vec::new();
        for sub in pipeline.subsets() {
            sub.aggregator.render(&mut out, &RenderOptions::default());
        }
        let hits = pipeline.series_cache().map_or(0, |c| c.stats().hits);
        println!(
            "round {}: {} samples, {} cache hits, {} bytes out in {:.1} ms",
            round + 1,
            pipeline.samples(),
            hits,
            out.len(),
            start.elapsed().as_secs_f64() * 1e3
        );
    }
}
