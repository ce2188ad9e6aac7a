//! `--file --apply` on several threads ([`metric_gate::pipeline::parallel`]) against one pass:
//! the test payloads split every way, generated ingress payloads, and the binary on a file
//! large enough to be split (output, summary line and errors).

use std::path::{Path, PathBuf};
use std::process::Command;

use metric_gate::aggregate::RenderOptions;
use metric_gate::exposition::ParseOptions;
use metric_gate::limits::LabelLimits;
use metric_gate::pipeline::parallel::{self, ParallelOptions, Parts, MIN_PARALLEL_BYTES};
use metric_gate::pipeline::{read_all, Pipeline};
use metric_gate::relabel::Config;
use testkit::ingress::{generate, Options};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn config(name: &str) -> Config {
    let path = root().join("testdata/relabel").join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    Config::from_yaml(&text, name).unwrap()
}

fn options(threads: usize) -> ParallelOptions {
    ParallelOptions {
        threads,
        parse: ParseOptions::default(),
        labels: LabelLimits::UNLIMITED,
    }
}

/// Every list's output text and counters.
fn result(p: &Parts) -> Vec<String> {
    let mut all = vec![format!(
        "{} samples, {} duplicates",
        p.samples(),
        p.duplicates()
    )];
    for i in 0..p.pipelines()[0].subsets().len() {
        let mut out = Vec::new();
        let opts = RenderOptions {
            now_ms: Some(0),
            ..RenderOptions::default()
        };
        p.render(i, &mut out, &opts);
        all.push(String::from_utf8(out).unwrap());
        all.push(format!(
            "{:?} dropped {} series {}",
            p.stats(i),
            p.dropped_by_relabel(i),
            p.series_count(i)
        ));
    }
    all
}

fn one_pass(input: &[u8], config: &Config) -> Parts {
    let mut p = Pipeline::new(config);
    read_all(input, ParseOptions::default(), &mut p).unwrap();
    Parts::from(p)
}

const CONFIGS: [&str; 3] = ["labeldrop_path.yaml", "subsets.yaml", "rule_mix.yaml"];

#[test]
fn test_payloads_split_at_every_line() {
    for payload in ["ingress_small.prom", "escapes.prom"] {
        let input = std::fs::read(root().join("testdata").join(payload)).unwrap();
        for name in CONFIGS {
            let config = config(name);
            let want = result(&one_pass(&input, &config));
            let lines: Vec<u64> = input
                .iter()
                .enumerate()
                .filter(|&(i, &b)| b == b'\n' && i + 1 < input.len())
                .map(|(i, _)| i as u64 + 1)
                .collect();
            for (n, &at) in lines.iter().enumerate() {
                let got = parallel::apply_ranges(&input[..], &config, &options(2), &[0, at])
                    .unwrap_or_else(|e| panic!("{payload} {name} split at {at}: {e}"));
                assert_eq!(result(&got), want, "{payload} {name} split at {at}");
                // And three ranges.
                if let Some(&more) = lines.get(n + 7) {
                    let got =
                        parallel::apply_ranges(&input[..], &config, &options(3), &[0, at, more])
                            .unwrap();
                    assert_eq!(result(&got), want, "{payload} {name} split at {at}, {more}");
                }
            }
        }
    }
}

#[test]
fn openmetrics_input_falls_back() {
    let input = std::fs::read(root().join("testdata/openmetrics.txt")).unwrap();
    let config = config(CONFIGS[0]);
    let at = input.len() as u64 / 2;
    let starts = [0, at + memchr_nl(&input[at as usize..]) + 1];
    let got = parallel::apply_ranges(&input[..], &config, &options(2), &starts);
    assert!(got.is_err());
}

fn memchr_nl(b: &[u8]) -> u64 {
    b.iter().position(|&c| c == b'\n').unwrap() as u64
}

/// Ingress payloads of both shapes (`labeldrop: path` reducing 10x and 2x).
#[test]
fn generated_ingress_payloads() {
    for paths_per_status in [0, 2] {
        let mut opts = Options::sized(12, 10);
        opts.paths_per_status = paths_per_status;
        let mut input = Vec::new();
        generate(&opts, &mut input).unwrap();
        for name in CONFIGS {
            let config = config(name);
            let want = result(&one_pass(&input, &config));
            for threads in 2..6 {
                let got = parallel::apply(&input[..], &config, &options(threads)).unwrap();
                assert_eq!(result(&got), want, "{name}, {threads} threads");
            }
        }
    }
}

fn write_payload(dir: &Path, ingresses: u32, paths_per_status: u32) -> PathBuf {
    let mut opts = Options::sized(ingresses, 10);
    opts.paths_per_status = paths_per_status;
    let path = dir.join(format!("p{paths_per_status}.prom"));
    let file = std::fs::File::create(&path).unwrap();
    generate(&opts, file).unwrap();
    assert!(std::fs::metadata(&path).unwrap().len() >= MIN_PARALLEL_BYTES);
    path
}

fn apply(path: &Path, threads: &str, debug: bool) -> (Vec<u8>, String, bool) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_metric-gate"));
    cmd.current_dir(root()).args([
        "--file",
        path.to_str().unwrap(),
        "--apply",
        "--relabel-file",
        "testdata/relabel/labeldrop_path.yaml",
        "--threads",
        threads,
    ]);
    if debug {
        cmd.args(["--log-level", "debug"]);
    }
    let o = cmd.output().unwrap();
    (
        o.stdout,
        String::from_utf8_lossy(&o.stderr).into_owned(),
        o.status.success(),
    )
}

/// `--file -` (one pass, no second read) of `input`.
fn apply_stdin(input: &[u8]) -> (Vec<u8>, String, bool) {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_metric-gate"))
        .current_dir(root())
        .args(["--file", "-", "--apply", "--relabel-file"])
        .arg("testdata/relabel/labeldrop_path.yaml")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let feeder = std::thread::spawn(move || stdin.write_all(&input));
    let o = child.wait_with_output().unwrap();
    feeder.join().unwrap().unwrap();
    (
        o.stdout,
        String::from_utf8_lossy(&o.stderr).into_owned(),
        o.status.success(),
    )
}

/// The binary on files large enough to split: the same output and summary line with one
/// thread and with several, and the same error for a bad line near the end.
#[test]
fn binary_output_does_not_depend_on_threads() {
    let dir = tempfile::tempdir().unwrap();
    for paths_per_status in [0, 2] {
        let path = write_payload(dir.path(), 40, paths_per_status);
        let one = apply(&path, "1", false);
        assert!(one.2, "{}", one.1);
        assert!(one.1.starts_with("series in: "), "{}", one.1);
        for threads in ["3", "0"] {
            assert_eq!(apply(&path, threads, false), one, "--threads {threads}");
        }
        let debug = apply(&path, "2", true).1;
        assert!(debug.contains("read in parallel"), "{debug}");

        // A bad line in the last range: the error of one pass, where it is.
        let mut text = std::fs::read(&path).unwrap();
        let at = text.len() - 200;
        let nl = at + memchr_nl(&text[at..]) as usize + 1;
        text.splice(nl..nl, b"bad{path=\"x\" 1\n".iter().copied());
        std::fs::write(&path, &text).unwrap();
        let one = apply(&path, "1", false);
        assert!(!one.2 && one.1.contains("line "), "{}", one.1);
        assert_eq!(apply(&path, "2", false), one);
    }
}

/// A series repeated in a range (each range checks its series only when it ends), in the
/// first range or in the last: both give way to one pass, whose output and summary line (the
/// repeat not summed) the binary prints. (Repeats across ranges: the unit tests.)
#[test]
fn binary_repeated_series_give_way_to_one_pass() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_payload(dir.path(), 40, 0);
    let clean = std::fs::read(&path).unwrap();
    for from in [clean.len() / 4, 3 * clean.len() / 4] {
        // The first sample line after `from`, repeated right after itself (same family).
        let mut at = from + memchr_nl(&clean[from..]) as usize + 1;
        while clean[at] == b'#' {
            at += memchr_nl(&clean[at..]) as usize + 1;
        }
        let end = at + memchr_nl(&clean[at..]) as usize + 1;
        let mut text = clean.clone();
        text.splice(end..end, clean[at..end].iter().copied());
        std::fs::write(&path, &text).unwrap();
        let one = apply(&path, "1", false);
        assert!(one.2, "{}", one.1);
        // One thread looks for repeats at the end too, then reads the file again; stdin, which
        // cannot be read again, checks every series as it comes: the same answer.
        let again = apply(&path, "1", true);
        assert!(again.1.contains("reading the input again"), "{}", again.1);
        assert_eq!((&again.0, again.2), (&one.0, one.2));
        assert_eq!(apply_stdin(&text), one);
        let two = apply(&path, "2", true);
        assert_eq!((&two.0, two.2), (&one.0, one.2));
        assert!(two.1.ends_with(&one.1), "{}\n{}", two.1, one.1);
        assert!(
            two.1.contains("gave way to one pass") && two.1.contains("a repeated series"),
            "{}",
            two.1
        );
    }
}
