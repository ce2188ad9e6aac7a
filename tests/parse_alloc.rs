//! The parser allocates nothing per line once warmed up.
//!
//! A counting global allocator wraps `System`; counting is switched on per thread, so the test
//! harness' own threads do not disturb the count.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use metric_gate::exposition::parse::{Format, ParseOptions};
use metric_gate::exposition::{Metadata, Parser, Sample, Sink};

/// Counts allocations made on threads that enabled counting.
struct Counting;

thread_local! {
    /// Counting is on for this thread. `const` and drop-free: reading it never allocates.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

thread_local! {
    /// Allocations counted on this thread: tests run on parallel threads and must not see each
    /// other's allocations.
    static THREAD_ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn note_allocation() {
    if COUNTING.try_with(Cell::get).unwrap_or(false) {
        let _ = THREAD_ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
    }
}

/// Allocations counted so far on the calling thread.
fn thread_allocations() -> u64 {
    THREAD_ALLOCATIONS.with(Cell::get)
}

// SAFETY: every call is forwarded unchanged to `System`; the counter has no effect on memory.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation();
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Reads every field of every event, so nothing is optimised away.
#[derive(Default)]
struct ReadAll {
    samples: u64,
    metadata: u64,
    labels: u64,
    bytes: u64,
    checksum: u64,
}

impl Sink for ReadAll {
    fn metadata(&mut self, m: &Metadata<'_>) {
        self.metadata += 1;
        self.bytes += (m.family.len() + m.text.len()) as u64;
        self.checksum = self.checksum.wrapping_add(m.kind as u64);
    }

    fn sample(&mut self, s: &Sample<'_>) {
        self.samples += 1;
        self.bytes += (s.name.len() + s.family.len() + s.value_text.len()) as u64;
        self.bytes += s.series_text.len() as u64;
        let mut sum = s.value.to_bits() ^ s.line;
        sum = sum.wrapping_add(s.timestamp_ms.unwrap_or(0) as u64);
        sum = sum.wrapping_add(s.series_text.iter().map(|&b| u64::from(b)).sum::<u64>());
        for (name, value) in s.labels() {
            self.labels += 1;
            sum = sum.wrapping_add((name.len() * 31 + value.len()) as u64);
            sum = sum.wrapping_add(value.bytes().map(u64::from).sum::<u64>());
        }
        sum = sum.wrapping_add(s.label_count() as u64);
        if let Some(v) = s.label_value("le") {
            sum = sum.wrapping_add(v.len() as u64);
        }
        self.checksum = self.checksum.wrapping_add(sum);
    }
}

/// A varied input: labels, values that need unescaping, quoted names, `__name__`, comments,
/// metadata, timestamps (milliseconds and float seconds), exemplars, blank lines, `\r\n`.
/// Variable parts cycle with small periods, so the first lines already reach the longest shapes.
fn input(lines: usize) -> Vec<u8> {
    let mut out = String::new();
    let mut i = 0;
    while i < lines {
        let k = i % 97;
        let families = [
            format!("# HELP req_{k} Requests \\\\ with a \\n newline.\n"),
            format!("# TYPE req_{k} histogram\n"),
            format!(
                "req_{k}_bucket{{method=\"GET\",path=\"/api/v{k}/items\",le=\"0.{}\"}} {}\n",
                i % 7,
                i % 1000
            ),
            format!(
                "req_{k}_bucket{{method=\"P\\\"OST\",path=\"C:\\\\dir\\\\{k}\\\\\",le=\"+Inf\"}} {}.5 1395066363000\n",
                i % 1000
            ),
            format!("req_{k}_sum {}e-3\r\n", i % 1000),
            format!("req_{k}_count 17 # {{trace_id=\"abc{k}\"}} 1.0 1520879607.789\n"),
            format!("{{\"my.metric.{k}\", \"label.x\"=\"v{k}\", \"ünï\"=\"ç\\n\"}} -Inf\n"),
            format!("{{__name__=\"late_{k}\",\tz=\"\" , }} NaN 1520879607.5\n"),
            "# just a comment\n".to_string(),
            "\n".to_string(),
            format!("# TYPE \"quoted.{k}\" counter\n"),
            format!("{{\"quoted.{k}_total\"}} {}\n", i % 50),
        ];
        for l in families {
            out.push_str(&l);
            i += 1;
        }
    }
    out.into_bytes()
}

#[test]
fn zero_allocations_per_line_in_steady_state() {
    const LINES: usize = 12_000;
    let data = input(LINES);
    let line_count = data.iter().filter(|&&b| b == b'\n').count();
    assert!(line_count >= 10_000, "{line_count} lines");
    // Chunk sizes that split lines everywhere: 1 byte up to several lines.
    let sizes = [
        1usize, 2, 3, 5, 7, 13, 31, 64, 127, 251, 509, 1021, 4099, 65_536,
    ];
    let mut sink = ReadAll::default();

    let mut parser = Parser::new(ParseOptions {
        format: Format::Auto,
        ..ParseOptions::default()
    });
    // Warm-up: a few hundred whole lines (an input ends with a newline), one byte at a time
    // (the carry buffer sees whole lines).
    let warm_end = data[..data.len() / 20]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |nl| nl + 1);
    let warm = &data[..warm_end];
    for b in warm.chunks(1) {
        parser.feed(b, &mut sink).expect("warm-up parses");
    }
    parser.finish(&mut sink).expect("warm-up finishes");

    COUNTING.with(|c| c.set(true));
    let before = thread_allocations();
    let (samples_before, meta_before) = (sink.samples, sink.metadata);
    // Two whole inputs (the parser is reused, as across scrapes), every chunk size.
    for round in 0..2 {
        let mut pos = 0;
        let mut n = round;
        while pos < data.len() {
            let size = sizes[n % sizes.len()].min(data.len() - pos);
            n += 1;
            if parser.feed(&data[pos..pos + size], &mut sink).is_err() {
                break;
            }
            pos += size;
        }
        if parser.finish(&mut sink).is_err() {
            break;
        }
    }
    let allocations = thread_allocations() - before;
    COUNTING.with(|c| c.set(false));

    let samples = sink.samples - samples_before;
    let metadata = sink.metadata - meta_before;
    // 7 samples and 3 metadata lines per 12-line group.
    assert_eq!(samples, 2 * (LINES as u64) * 7 / 12, "every sample parsed");
    assert_eq!(
        metadata,
        2 * (LINES as u64) * 3 / 12,
        "every metadata line parsed"
    );
    assert!(sink.labels > samples, "labels were read");
    assert!(sink.bytes > 0 && sink.checksum != 0);
    assert_eq!(
        allocations, 0,
        "allocations while parsing {samples} samples"
    );
}

/// The whole pipeline (parse -> labeldrop -> sum) allocates nothing for series it already
/// holds: strings are copied only for new output series, relabel decisions come from caches.
#[test]
fn pipeline_allocates_nothing_for_known_series() {
    use metric_gate::pipeline::Pipeline;
    use metric_gate::relabel::Config;

    let data = input(6_000);
    let config = Config::from_yaml(
        "metric_relabel_configs:\n- action: labeldrop\n  regex: path\n- action: drop\n  source_labels: [method]\n  regex: 'DELETE|PUT'\n",
        "test",
    )
    .expect("valid config");
    let mut pipeline = Pipeline::new(&config);
    let mut parser = Parser::new(ParseOptions::default());
    // First pass: every output series is new (allocations expected), and the parser's carry
    // buffer grows to the longest line split by a chunk border.
    for chunk in data.chunks(4099) {
        parser.feed(chunk, &mut pipeline).expect("parses");
    }
    parser.finish(&mut pipeline).expect("parses");
    let series = pipeline.subsets()[0].aggregator.series_count();
    let samples_first = pipeline.samples();

    COUNTING.with(|c| c.set(true));
    let before = thread_allocations();
    for chunk in data.chunks(4099) {
        parser.feed(chunk, &mut pipeline).expect("parses");
    }
    parser.finish(&mut pipeline).expect("parses");
    let allocations = thread_allocations() - before;
    COUNTING.with(|c| c.set(false));

    assert_eq!(pipeline.samples(), 2 * samples_first, "every sample routed");
    assert_eq!(
        pipeline.subsets()[0].aggregator.series_count(),
        series,
        "second pass sums into the same series"
    );
    assert!(series > 100, "{series} series");
    assert_eq!(
        allocations, 0,
        "allocations while summing {samples_first} known samples"
    );
}
