//! Criterion benches on the generated ingress-nginx payload.
//!
//! - `parse/*`: the parser alone with a sink that reads every field (throughput in bytes, and
//!   per line).
//! - `pipeline/*`: parse -> relabel (`labeldrop: path`) -> aggregate -> render; `_repeat` is a
//!   later scrape of the same payload, served by the cross-scrape series cache.
//! - `analyze/*`: the cardinality report.
//!
//! Sizes: `METRIC_GATE_BENCH_SIZE=INGRESSESxPATHS` (default `1000x10`, about 276 MB, 851k
//! series; use `100x10` for a quick run).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use metric_gate::aggregate::RenderOptions;
use metric_gate::analyze::Analyzer;
use metric_gate::exposition::{Metadata, ParseOptions, Parser, Sample, Sink};
use metric_gate::pipeline::Pipeline;
use metric_gate::relabel::Config;

#[path = "../examples/gen_ingress.rs"]
#[allow(dead_code)]
mod gen_ingress;

/// Touches every field so the parser's work cannot be optimized away.
#[derive(Default)]
struct Touch {
    acc: u64,
}

impl Sink for Touch {
    fn metadata(&mut self, m: &Metadata<'_>) {
        self.acc += m.text.len() as u64;
    }
    fn sample(&mut self, s: &Sample<'_>) {
        self.acc += s.name.len() as u64 + s.value.to_bits() + s.series_text.len() as u64;
        for (n, v) in s.labels() {
            self.acc += (n.len() + v.len()) as u64;
        }
    }
}

fn payload() -> (String, Vec<u8>, u64) {
    let size = std::env::var("METRIC_GATE_BENCH_SIZE").unwrap_or_else(|_| "1000x10".into());
    let (i, p) = size
        .split_once('x')
        .and_then(|(i, p)| Some((i.parse().ok()?, p.parse().ok()?)))
        .unwrap_or((1000, 10));
    let mut out = Vec::new();
    let (series, _) = gen_ingress::generate(&gen_ingress::Args::sized(i, p), &mut out)
        .expect("generating into memory cannot fail");
    (format!("{i}x{p}"), out, series)
}

fn feed_in_chunks<S: Sink>(data: &[u8], sink: &mut S) {
    let mut parser = Parser::new(ParseOptions::default());
    for chunk in data.chunks(1 << 20) {
        parser.feed(chunk, sink).expect("generated payload parses");
    }
    parser.finish(sink).expect("generated payload parses");
}

fn benches(c: &mut Criterion) {
    let (size, data, series) = payload();
    eprintln!(
        "payload {size}: {} bytes, {series} series, {:.0} bytes/line",
        data.len(),
        data.len() as f64 / series as f64
    );

    let mut g = c.benchmark_group("parse");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.bench_function(format!("bytes/{size}"), |b| {
        b.iter(|| {
            let mut t = Touch::default();
            feed_in_chunks(&data, &mut t);
            black_box(t.acc)
        })
    });
    g.throughput(Throughput::Elements(series));
    g.bench_function(format!("lines/{size}"), |b| {
        b.iter(|| {
            let mut t = Touch::default();
            feed_in_chunks(&data, &mut t);
            black_box(t.acc)
        })
    });
    g.finish();

    let config = Config::from_yaml(
        "metric_relabel_configs:\n- action: labeldrop\n  regex: path\n",
        "bench",
    )
    .expect("valid config");
    let mut g = c.benchmark_group("pipeline");
    g.sample_size(10).measurement_time(Duration::from_secs(15));
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.bench_function(format!("labeldrop_path/{size}"), |b| {
        b.iter(|| {
            let mut p = Pipeline::new(&config);
            feed_in_chunks(&data, &mut p);
            let subsets = p.into_subsets();
            let mut out = Vec::new();
            subsets[0]
                .aggregator
                .render(&mut out, &RenderOptions::default());
            black_box(out.len())
        })
    });
    // A sidecar's second and later scrapes: the series cache knows every series.
    let mut warm = Pipeline::new(&config).with_series_cache(1 << 22);
    feed_in_chunks(&data, &mut warm);
    g.bench_function(format!("labeldrop_path_repeat/{size}"), |b| {
        b.iter(|| {
            warm.begin_scrape();
            feed_in_chunks(&data, &mut warm);
            let mut out = Vec::new();
            warm.subsets()[0]
                .aggregator
                .render(&mut out, &RenderOptions::default());
            black_box(out.len())
        })
    });
    g.finish();

    let mut g = c.benchmark_group("analyze");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.throughput(Throughput::Bytes(data.len() as u64));
    g.bench_function(format!("report/{size}"), |b| {
        b.iter(|| {
            let mut a = Analyzer::new();
            feed_in_chunks(&data, &mut a);
            black_box(a.report().len())
        })
    });
    g.finish();
}

criterion_group!(pipeline, benches);
criterion_main!(pipeline);
