//! Parses a file with a sink that reads every field and prints the throughput: the parser
//! alone, as `benches/pipeline.rs` measures it, in a process small enough for `perf` or
//! `valgrind --tool=callgrind`.
//!
//!     cargo run --release --example parse_file -- PAYLOAD [ROUNDS]

use std::time::Instant;

use metric_gate::exposition::{Metadata, ParseOptions, Parser, Sample, Sink};

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

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(path) = args.next() else {
        eprintln!("usage: parse_file PAYLOAD [ROUNDS]");
        std::process::exit(2);
    };
    let rounds: u32 = args.next().and_then(|r| r.parse().ok()).unwrap_or(1);
    let data = match std::fs::read(&path) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("{path}: {e}");
            std::process::exit(1);
        }
    };
    for _ in 0..rounds {
        let start = Instant::now();
        let mut touch = Touch::default();
        let mut parser = Parser::new(ParseOptions::default());
        let parsed = data
            .chunks(1 << 20)
            .try_for_each(|chunk| parser.feed(chunk, &mut touch))
            .and_then(|()| parser.finish(&mut touch));
        if let Err(e) = parsed {
            eprintln!("{path}:{e}");
            std::process::exit(1);
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{} bytes in {:.1} ms: {:.0} MB/s (checksum {})",
            data.len(),
            secs * 1e3,
            data.len() as f64 / secs / 1e6,
            touch.acc
        );
    }
}
