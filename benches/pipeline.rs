//! Criterion benches on the generated ingress-nginx payload.
//!
//! - `parse/*`: the parser alone with a sink that reads every field (throughput in bytes, and
//!   per line).
//! - `pipeline/*`: parse -> relabel (`labeldrop: path`) -> aggregate -> render; `_repeat` is a
//!   later scrape of the same payload, served by the cross-scrape series cache.
//! - `stages/*`: each stage of the general relabel path on its own, on samples parsed beforehand:
//!   `relabel` (copy the label set, apply `labeldrop: path`, sort), `aggregate` (sum the relabeled
//!   label sets into a fresh aggregate), `render` (write the filled aggregate out).
//! - `analyze/*`: the cardinality report.
//!
//! Sizes: `METRIC_GATE_BENCH_SIZE=INGRESSESxPATHS` (default `1000x10`, about 276 MB, 851k
//! series; use `100x10` for a quick run).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use metric_gate::aggregate::{Aggregator, KeyBuf, Point, RenderOptions};
use metric_gate::analyze::Analyzer;
use metric_gate::exposition::{Metadata, ParseOptions, Parser, Sample, Sink};
use metric_gate::labels::{LabelBuf, METRIC_NAME};
use metric_gate::pipeline::Pipeline;
use metric_gate::relabel::aggregation::{Action, Op};
use metric_gate::relabel::Config;
use testkit::ingress;

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

/// One parsed sample, owned, with its label set built as the pipeline's general path builds it.
struct Owned {
    family: String,
    labels: LabelBuf,
    value: f64,
    raw: String,
    timestamp_ms: Option<i64>,
}

/// Collects every sample as [`Owned`], for the stage benches.
#[derive(Default)]
struct Collect(Vec<Owned>);

impl Sink for Collect {
    fn metadata(&mut self, _: &Metadata<'_>) {}
    fn sample(&mut self, s: &Sample<'_>) {
        let mut labels = LabelBuf::new();
        labels.push(METRIC_NAME, s.name);
        for (n, v) in s.labels().filter(|(_, v)| !v.is_empty()) {
            labels.push(n, v);
        }
        labels.sort();
        self.0.push(Owned {
            family: s.family.to_owned(),
            labels,
            value: s.value,
            raw: s.value_text.to_owned(),
            timestamp_ms: s.timestamp_ms,
        });
    }
}

fn payload() -> (String, Vec<u8>, u64) {
    let size = std::env::var("METRIC_GATE_BENCH_SIZE").unwrap_or_else(|_| "1000x10".into());
    let (i, p) = size
        .split_once('x')
        .and_then(|(i, p)| Some((i.parse().ok()?, p.parse().ok()?)))
        .unwrap_or((1000, 10));
    let mut out = Vec::new();
    let (series, _) = ingress::generate(&ingress::Options::sized(i, p), &mut out)
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
            let mut out = Vec::new();
            p.subsets()[0]
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

    // The stages on their own, on samples parsed beforehand.
    let mut parsed = Collect::default();
    feed_in_chunks(&data, &mut parsed);
    let samples = parsed.0;
    let mut program = config.default.clone();
    let mut g = c.benchmark_group("stages");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.throughput(Throughput::Bytes(data.len() as u64));
    let mut work = LabelBuf::new();
    g.bench_function(format!("relabel/{size}"), |b| {
        b.iter(|| {
            let mut kept = 0usize;
            for s in &samples {
                work.copy_from(&s.labels);
                if program.apply(&mut work) {
                    work.sort();
                    kept += work.len();
                }
            }
            black_box(kept)
        })
    });
    let relabeled: Vec<LabelBuf> = samples
        .iter()
        .map(|s| {
            let mut l = s.labels.clone();
            assert!(program.apply(&mut l), "labeldrop keeps every series");
            l.sort();
            l
        })
        .collect();
    let fill = || {
        let mut agg = Aggregator::new();
        let mut key = KeyBuf::new();
        for (s, labels) in samples.iter().zip(&relabeled) {
            let series = key.label_set(labels).expect("every series keeps its name");
            let point = Point {
                value: s.value,
                text: &s.raw,
                timestamp_ms: s.timestamp_ms,
            };
            agg.add(&s.family, series, point, |_| Action::Combine(Op::Sum))
                .expect("no label limits");
        }
        agg
    };
    g.bench_function(format!("aggregate/{size}"), |b| {
        b.iter(|| black_box(fill().series_count()))
    });
    let filled = fill();
    let mut out = Vec::new();
    g.bench_function(format!("render/{size}"), |b| {
        b.iter(|| {
            out.clear();
            filled.render(&mut out, &RenderOptions::default());
            black_box(out.len())
        })
    });
    g.finish();
    drop((samples, relabeled, filled));

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
