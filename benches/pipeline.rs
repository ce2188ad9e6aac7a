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
//! - `counters/*`: the per-scrape cost of the counter state (reset-safe sums): `dns_2_targets`
//!   is a `dns+` scrape of two targets that serve the payload (each target's repeat scrape,
//!   the merge, the state's update, render) with the state off and on; `repeat` is the
//!   sidecar's repeat scrape (`pipeline/labeldrop_path_repeat`) with the state off and on. It
//!   also prints the state's memory per tracked input, from its structures and from the
//!   process' RSS (the group runs first, in a fresh process, for that).
//!
//! Sizes: `METRIC_GATE_BENCH_SIZE=INGRESSESxPATHS` (default `1000x10`, about 276 MB, 851k
//! series; use `100x10` for a quick run).

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use metric_gate::aggregate::{Aggregator, KeyBuf, Point, RenderOptions};
use metric_gate::analyze::Analyzer;
use metric_gate::counters::{CounterState, TargetScrape};
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

/// Two `dns+` targets serving the same payload, summed as the server sums them: each target's
/// pipeline keeps its series cache; the merged aggregate is rebuilt every scrape; with `state`,
/// the counter records of both targets are applied to one [`CounterState`] and the merged
/// aggregate is served from it.
struct FanOut {
    pipelines: Vec<(&'static str, Pipeline)>,
    merged: Aggregator,
    state: Option<CounterState>,
    seq: u64,
}

const TARGETS: [&str; 2] = ["10.0.0.1:10254", "10.0.0.2:10254"];

impl FanOut {
    fn new(config: &Config, targets: &[&'static str], state: bool) -> FanOut {
        let pipelines = targets
            .iter()
            .map(|&t| {
                let p = Pipeline::new(config).with_series_cache(1 << 22);
                (t, if state { p.track_counters() } else { p })
            })
            .collect();
        FanOut {
            pipelines,
            merged: Aggregator::new(),
            state: state.then(CounterState::default),
            seq: 0,
        }
    }

    /// Every target reads `data`.
    fn read(&mut self, data: &[u8]) {
        for (t, p) in &mut self.pipelines {
            p.begin_scrape();
            p.set_target(t);
            feed_in_chunks(data, p);
        }
    }

    /// Sums the targets (fan-out) and applies the counter state; returns the rendered size.
    fn finish(&mut self) -> usize {
        self.seq += 1;
        let fan_out = self.pipelines.len() > 1;
        if fan_out {
            let sources: Vec<&Aggregator> = self
                .pipelines
                .iter()
                .map(|(_, p)| &p.subsets()[0].aggregator)
                .collect();
            self.merged.merge_targets(&sources);
        }
        let pipelines = &self.pipelines;
        let seq = self.seq;
        let report = self.state.as_mut().map(|state| {
            let records: Vec<&TargetScrape> = pipelines
                .iter()
                .filter_map(|(_, p)| p.subsets()[0].counters.as_ref())
                .collect();
            state
                .apply(seq, seq as i64 * 15_000, &records)
                .expect("sequence numbers increase")
        });
        let agg = if fan_out {
            &mut self.merged
        } else {
            &mut self.pipelines[0].1.subsets_mut()[0].aggregator
        };
        if let (Some(state), Some(report)) = (&mut self.state, report) {
            agg.apply_counters(state, &report.needs_description);
        }
        let agg: &Aggregator = agg;
        let mut out = Vec::with_capacity(agg.arena_bytes() + agg.series_count() * 24);
        agg.render(&mut out, &RenderOptions::default());
        out.len()
    }

    fn scrape(&mut self, data: &[u8]) -> usize {
        self.read(data);
        self.finish()
    }
}

/// Resident set size of this process, bytes (Linux; 0 elsewhere).
fn rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("VmRSS:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or(0, |kb| kb * 1024)
}

fn counter_benches(c: &mut Criterion) {
    let (size, data, series) = payload();
    let config = Config::from_yaml(
        "metric_relabel_configs:\n- action: labeldrop\n  regex: path\n",
        "bench",
    )
    .expect("valid config");

    // Memory per tracked input: the state's structures, and the RSS its first update adds.
    {
        let mut f = FanOut::new(&config, &TARGETS, true);
        f.read(&data);
        let observed: usize = f
            .pipelines
            .iter()
            .filter_map(|(_, p)| p.subsets()[0].counters.as_ref())
            .map(TargetScrape::len)
            .sum();
        let record_bytes: usize = f
            .pipelines
            .iter()
            .filter_map(|(_, p)| p.subsets()[0].counters.as_ref())
            .map(TargetScrape::capacity_bytes)
            .sum();
        let before = rss_bytes();
        let state = f.state.as_mut().expect("state on");
        state
            .apply(
                1,
                0,
                &[
                    f.pipelines[0].1.subsets()[0].counters.as_ref().unwrap(),
                    f.pipelines[1].1.subsets()[0].counters.as_ref().unwrap(),
                ],
            )
            .expect("first scrape");
        let after = rss_bytes();
        let st = state.stats();
        let inputs = st.inputs_tracked.max(1) as f64;
        eprintln!(
            "counters {size}: {series} series per target, {observed} counter-like samples \
             observed over 2 targets, {} inputs tracked, {} outputs; input records + index \
             {} bytes ({:.1} bytes/input); whole state {} bytes ({:.1} bytes/input); RSS \
             +{} bytes over the first update ({:.1} bytes/input); per-scrape records of \
             both targets {} bytes ({:.1} bytes/observation)",
            st.inputs_tracked,
            st.outputs_tracked,
            state.input_bytes(),
            state.input_bytes() as f64 / inputs,
            state.memory_bytes(),
            state.memory_bytes() as f64 / inputs,
            after.saturating_sub(before),
            after.saturating_sub(before) as f64 / inputs,
            record_bytes,
            record_bytes as f64 / observed.max(1) as f64,
        );
    }

    let mut g = c.benchmark_group("counters");
    g.sample_size(10).measurement_time(Duration::from_secs(10));
    g.throughput(Throughput::Bytes(2 * data.len() as u64));
    for state in [false, true] {
        let mut f = FanOut::new(&config, &TARGETS, state);
        f.scrape(&data);
        let name = if state { "on" } else { "off" };
        g.bench_function(format!("dns_2_targets_state_{name}/{size}"), |b| {
            b.iter(|| black_box(f.scrape(&data)))
        });
    }
    g.throughput(Throughput::Bytes(data.len() as u64));
    for state in [false, true] {
        let mut f = FanOut::new(&config, &TARGETS[..1], state);
        f.scrape(&data);
        let name = if state { "on" } else { "off" };
        g.bench_function(format!("repeat_state_{name}/{size}"), |b| {
            b.iter(|| black_box(f.scrape(&data)))
        });
    }
    g.finish();
}

// The counter group first: it measures RSS, which is only meaningful in a fresh process.
criterion_group!(pipeline, counter_benches, benches);
criterion_main!(pipeline);
