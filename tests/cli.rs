//! Whole-binary tests of the offline modes: `--file` (analyze) and `--file --apply`, against
//! golden files in `testdata/golden/`. Set `UPDATE_GOLDEN=1` to rewrite the goldens after a
//! deliberate change, then review the diff.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_metric-gate"))
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn run(args: &[&str]) -> Output {
    bin()
        .current_dir(root())
        .args(args)
        .output()
        .expect("binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("utf-8 output")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Compares `actual` with `testdata/golden/<name>`, or rewrites it under `UPDATE_GOLDEN=1`.
fn golden(name: &str, actual: &str) {
    let path = root().join("testdata/golden").join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).expect("write golden");
        return;
    }
    let want = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (run with UPDATE_GOLDEN=1)", path.display()));
    assert_eq!(actual, want, "output differs from {}", path.display());
}

/// Runs `promtool check metrics` on `text` when promtool is installed (CI installs it). Lint
/// findings (exit 3) are accepted only for the naming rules the upstream itself breaks.
fn promtool_accepts(text: &str) {
    let Ok(mut child) = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        eprintln!("promtool not installed: skipping the promtool check");
        return;
    };
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("piped stdin");
        stdin.write_all(text.as_bytes()).expect("write to promtool");
    }
    let out = child.wait_with_output().expect("promtool runs");
    let report = format!("{}{}", stdout(&out), stderr(&out));
    match out.status.code() {
        Some(0) => {}
        Some(3) => {
            for line in report.lines().filter(|l| !l.trim().is_empty()) {
                assert!(
                    line.contains("should have \"_total\" suffix")
                        || line.contains("non-histogram and non-summary metrics should not have")
                        || line.contains("counter metrics should have")
                        || line.contains("metric names should be written in 'snake_case'"),
                    "promtool lint beyond naming: {line}\n{text}"
                );
            }
        }
        _ => panic!("promtool rejected the output:\n{report}\n--- output ---\n{text}"),
    }
}

#[test]
fn analyze_report_is_golden() {
    let o = run(&["--file", "testdata/ingress_small.prom"]);
    assert!(o.status.success(), "{}", stderr(&o));
    golden("ingress_small.analyze.txt", &stdout(&o));
}

#[test]
fn analyze_reads_stdin() {
    let data = std::fs::read(root().join("testdata/ingress_small.prom")).unwrap();
    let mut child = bin()
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(&data).unwrap();
    }
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success());
    let from_file = stdout(&run(&["--file", "testdata/ingress_small.prom"]));
    assert_eq!(stdout(&o), from_file);
}

#[test]
fn apply_labeldrop_path_sums_collisions() {
    let o = run(&[
        "--file",
        "testdata/ingress_small.prom",
        "--apply",
        "--relabel-file",
        "testdata/relabel/labeldrop_path.yaml",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(!text.contains("path=\""), "path label must be gone");
    golden("ingress_small.labeldrop_path.prom", &text);
    let summary = stderr(&o);
    assert!(summary.contains("series in: "), "{summary}");
    promtool_accepts(&text);
}

#[test]
fn apply_named_subset() {
    for subset in ["requests", "process"] {
        let o = run(&[
            "--file",
            "testdata/ingress_small.prom",
            "--apply",
            "--relabel-file",
            "testdata/relabel/subsets.yaml",
            "--subset",
            subset,
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        let text = stdout(&o);
        golden(&format!("ingress_small.subset_{subset}.prom"), &text);
        promtool_accepts(&text);
    }
    let o = run(&[
        "--file",
        "testdata/ingress_small.prom",
        "--apply",
        "--relabel-file",
        "testdata/relabel/subsets.yaml",
        "--subset",
        "nope",
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("requests"), "{}", stderr(&o));
}

#[test]
fn apply_passthrough_of_edge_cases() {
    let o = run(&["--file", "testdata/escapes.prom", "--apply"]);
    assert!(o.status.success(), "{}", stderr(&o));
    golden("escapes.passthrough.prom", &stdout(&o));
    let o = run(&["--file", "testdata/openmetrics.txt", "--apply"]);
    assert!(o.status.success(), "{}", stderr(&o));
    golden("openmetrics.passthrough.prom", &stdout(&o));
}

#[test]
fn relabel_inline_in_kubernetes_args_form() {
    let o = run(&[
        "--file",
        "testdata/ingress_small.prom",
        "--apply",
        "--relabel=\n  metric_relabel_configs:\n  - action: labeldrop\n    regex: path\n",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    golden("ingress_small.labeldrop_path.prom", &stdout(&o));
}

#[test]
fn invalid_configs_refuse_to_start() {
    for (file, needle) in [
        ("testdata/relabel/invalid_action.yaml", "frobnicate"),
        (
            "testdata/relabel/subsets_without_default.yaml",
            "metric_relabel_configs",
        ),
    ] {
        let o = run(&[
            "--file",
            "testdata/ingress_small.prom",
            "--apply",
            "--relabel-file",
            file,
        ]);
        assert!(!o.status.success(), "{file} must be refused");
        let err = stderr(&o);
        assert!(err.contains(needle), "{file}: {err}");
        assert!(err.contains(file), "error must name the file: {err}");
        assert!(o.stdout.is_empty());
    }
}

#[test]
fn malformed_input_names_file_line_and_column() {
    let dir = root().join("testdata/bad");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("prom") {
            continue;
        }
        seen += 1;
        let rel = path
            .strip_prefix(root())
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        let expected_line = expected_bad_line(&path);
        for mode in [
            &["--file", rel.as_str()][..],
            &["--file", rel.as_str(), "--apply"],
        ] {
            let o = run(mode);
            assert!(!o.status.success(), "{rel} must fail");
            let err = stderr(&o);
            assert!(err.contains(&rel), "error must name the file: {err}");
            assert!(
                err.contains(&format!("line {expected_line}, col ")),
                "{rel}: expected an error on line {expected_line}: {err}"
            );
        }
    }
    assert!(seen >= 7, "expected the bad fixtures, found {seen}");
}

/// The line each bad fixture fails on, from `testdata/bad/README.md`.
fn expected_bad_line(path: &Path) -> u64 {
    let readme = std::fs::read_to_string(path.parent().unwrap().join("README.md")).unwrap();
    let name = path.file_name().unwrap().to_str().unwrap();
    let row = readme
        .lines()
        .find(|l| l.contains(name))
        .unwrap_or_else(|| panic!("{name} not in bad/README.md"));
    row.split(|c: char| !c.is_ascii_digit())
        .find(|s| !s.is_empty())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no line number for {name}: {row}"))
}

#[test]
fn version_flag() {
    let o = run(&["-v"]);
    assert!(o.status.success());
    assert!(stdout(&o).contains(env!("CARGO_PKG_VERSION")));
}

/// Runs the binary with `input` on stdin.
fn run_stdin(args: &[&str], input: &[u8]) -> Output {
    let mut child = bin()
        .current_dir(root())
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary runs");
    {
        use std::io::Write;
        // The binary may stop reading early (that is what limits do): ignore a broken pipe.
        let _ = child.stdin.take().expect("piped stdin").write_all(input);
    }
    child.wait_with_output().expect("binary runs")
}

/// A series `name` with `n` labels `l0..`, each valued `value`.
fn wide_series(name: &str, n: usize, value: &str) -> String {
    let labels: Vec<String> = (0..n).map(|i| format!("l{i:03}=\"{value}\"")).collect();
    format!("{name}{{{}}} 1\n", labels.join(","))
}

#[test]
fn max_line_length_flag() {
    let input = format!("short 1\nlong{{a=\"{}\"}} 1\n", "x".repeat(200));
    for mode in [&["-f", "-"][..], &["-f", "-", "--apply"]] {
        let o = run_stdin(mode, input.as_bytes());
        assert!(o.status.success(), "{}", stderr(&o));
        let args = [mode, &["--max-line-length", "100"]].concat();
        let o = run_stdin(&args, input.as_bytes());
        assert!(!o.status.success());
        assert!(
            stderr(&o).contains(
                "<stdin>: line 2, col 101: line longer than the limit of 100 bytes (--max-line-length)"
            ),
            "{}",
            stderr(&o)
        );
        assert!(o.stdout.is_empty());
    }
    for bad in ["0", "3GiB", "lots"] {
        let o = run(&["-f", "-", "--max-line-length", bad]);
        assert!(!o.status.success(), "{bad} must be refused");
        assert!(stderr(&o).contains("--max-line-length"), "{}", stderr(&o));
    }
}

#[test]
fn label_limit_flag_counts_labels_after_relabeling() {
    let input = format!("ok 1\n{}", wide_series("wide", 10, "v"));
    let o = run_stdin(
        &["-f", "-", "--apply", "--label-limit", "5"],
        input.as_bytes(),
    );
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("<stdin>: line 2: label limit exceeded: series \"wide\" has 11 labels (with __name__) > limit 5 (--label-limit)"),
        "{err}"
    );
    // Dropped down to 5 labels with the name, it passes: the limit is on the output.
    let o = run_stdin(
        &[
            "-f",
            "-",
            "--apply",
            "--label-limit",
            "5",
            "--relabel",
            "metric_relabel_configs: [{action: labeldrop, regex: 'l00[0-5]'}]",
        ],
        input.as_bytes(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    // 0 is unlimited; the default (256) takes 255 labels besides the name, not 256.
    let huge = wide_series("huge", 300, "v");
    let o = run_stdin(
        &["-f", "-", "--apply", "--label-limit", "0"],
        huge.as_bytes(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run_stdin(
        &["-f", "-", "--apply"],
        wide_series("m", 255, "v").as_bytes(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = run_stdin(
        &["-f", "-", "--apply"],
        wide_series("m", 256, "v").as_bytes(),
    );
    assert!(
        stderr(&o).contains("257 labels (with __name__) > limit 256"),
        "{}",
        stderr(&o)
    );
    // The analysis reports the input as it is: label limits are about the output.
    let o = run_stdin(&["-f", "-", "--label-limit", "5"], input.as_bytes());
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn label_length_limit_flags() {
    let long_value = wide_series("m", 1, &"v".repeat(100));
    let o = run_stdin(
        &["-f", "-", "--apply", "--label-value-length-limit", "64"],
        long_value.as_bytes(),
    );
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("<stdin>: line 1: label value length limit exceeded: series \"m\", value of label \"l000\" is 100 bytes > limit 64 (--label-value-length-limit)"),
        "{}",
        stderr(&o)
    );
    // The metric name is the value of __name__.
    let long_name = format!("{} 1\n", "m".repeat(100));
    let o = run_stdin(
        &["-f", "-", "--apply", "--label-value-length-limit", "64"],
        long_name.as_bytes(),
    );
    assert!(
        stderr(&o).contains("value of label \"__name__\" is 100 bytes"),
        "{}",
        stderr(&o)
    );
    let o = run_stdin(
        &["-f", "-", "--apply", "--label-value-length-limit", "0"],
        long_value.as_bytes(),
    );
    assert!(o.status.success(), "{}", stderr(&o));

    let long_label = format!("m{{{}=\"v\"}} 1\n", "n".repeat(100));
    let o = run_stdin(
        &["-f", "-", "--apply", "--label-name-length-limit", "64"],
        long_label.as_bytes(),
    );
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("label name length limit exceeded: series \"m\", label name \"nnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnnn...\" is 100 bytes > limit 64 (--label-name-length-limit)"),
        "{}",
        stderr(&o)
    );
    // A relabel rule that renames the label to something short makes it pass.
    let o = run_stdin(
        &[
            "-f",
            "-",
            "--apply",
            "--label-name-length-limit",
            "64",
            "--relabel",
            "metric_relabel_configs: [{action: labelmap, regex: 'n+', replacement: short}, {action: labeldrop, regex: 'n+'}]",
        ],
        long_label.as_bytes(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "m{short=\"v\"} 1\n");
}

#[test]
fn sample_limit_flag_in_file_mode() {
    let input = "a{x=\"1\"} 1\na{x=\"2\"} 1\nb 1\n";
    let o = run_stdin(
        &["-f", "-", "--apply", "--sample-limit", "2"],
        input.as_bytes(),
    );
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("<stdin>: sample limit exceeded: 3 series > limit 2 (--sample-limit)"),
        "{}",
        stderr(&o)
    );
    assert!(o.stdout.is_empty());
    // After summing there are 2.
    let o = run_stdin(
        &[
            "-f",
            "-",
            "--apply",
            "--sample-limit",
            "2",
            "--relabel",
            "metric_relabel_configs: [{action: labeldrop, regex: x}]",
        ],
        input.as_bytes(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
}

fn gzipped(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

#[test]
fn gzip_input_is_read_by_its_magic_bytes() {
    let plain = std::fs::read(root().join("testdata/ingress_small.prom")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let gz = dir.path().join("ingress_small.prom.gz");
    std::fs::write(&gz, gzipped(&plain)).unwrap();
    // The same name without `.gz` is read the same way: the bytes decide, not the name.
    let disguised = dir.path().join("ingress_small.prom");
    std::fs::copy(&gz, &disguised).unwrap();

    let want = stdout(&run(&["--file", "testdata/ingress_small.prom"]));
    for path in [&gz, &disguised] {
        let o = run(&["--file", path.to_str().unwrap()]);
        assert!(o.status.success(), "{}", stderr(&o));
        assert_eq!(stdout(&o), want, "{}", path.display());
    }
    let o = run_stdin(
        &[
            "--file",
            "-",
            "--apply",
            "--relabel-file",
            "testdata/relabel/labeldrop_path.yaml",
        ],
        &gzipped(&plain),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    golden("ingress_small.labeldrop_path.prom", &stdout(&o));

    // A truncated gzip file is an error that says so.
    let z = gzipped(&plain);
    let cut = dir.path().join("cut.prom.gz");
    std::fs::write(&cut, &z[..z.len() / 2]).unwrap();
    let o = run(&["--file", cut.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("gzip"), "{}", stderr(&o));
}

#[test]
fn analyze_with_a_relabel_config_reports_the_relabeled_output() {
    let o = run(&[
        "--file",
        "testdata/ingress_small.prom",
        "--relabel-file",
        "testdata/relabel/labeldrop_path.yaml",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report = stdout(&o);
    // The report of what `--apply` would print, not of the input.
    let applied = stdout(&run(&[
        "--file",
        "testdata/ingress_small.prom",
        "--apply",
        "--relabel-file",
        "testdata/relabel/labeldrop_path.yaml",
    ]));
    let series = applied
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .count();
    assert!(
        report.starts_with(&format!("total: {series} series, ")),
        "{report}"
    );
    assert!(!report.contains(" path"), "{report}");
    assert_ne!(
        report,
        stdout(&run(&["--file", "testdata/ingress_small.prom"]))
    );
    let err = stderr(&o);
    assert!(
        err.starts_with("report of the relabeled output of the default list; series in: 136, "),
        "{err}"
    );

    // A subset, without --apply.
    let o = run(&[
        "--file",
        "testdata/ingress_small.prom",
        "--relabel-file",
        "testdata/relabel/subsets.yaml",
        "--subset",
        "process",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let report = stdout(&o);
    assert!(
        !report.contains("nginx_ingress_controller_request"),
        "{report}"
    );
    assert!(stderr(&o).contains("subset \"process\""), "{}", stderr(&o));
    let o = run(&["--file", "testdata/ingress_small.prom", "--subset", "nope"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("unknown subset \"nope\""),
        "{}",
        stderr(&o)
    );
}

#[test]
fn relabel_value_may_start_with_a_document_marker() {
    let o = run(&[
        "--file",
        "testdata/ingress_small.prom",
        "--apply",
        "--relabel",
        "---\nmetric_relabel_configs:\n- action: labeldrop\n  regex: path\n",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    golden("ingress_small.labeldrop_path.prom", &stdout(&o));
}

#[test]
fn short_and_long_help() {
    let short = run(&["-h"]);
    assert!(short.status.success());
    let short = stdout(&short);
    for heading in [
        "Offline mode (--file):",
        "Server mode (without --file):",
        "Upstream (server mode):",
        "TLS and authentication (server mode):",
    ] {
        assert!(short.contains(heading), "{heading} not in\n{short}");
    }
    assert!(short.lines().count() < 45, "{short}");
    assert!(!short.contains("--label-value-length-limit"), "{short}");
    let long = run(&["--help"]);
    assert!(long.status.success());
    let long = stdout(&long);
    for flag in [
        "--label-value-length-limit",
        "--upstream.basic-auth-password-file",
        "--web.header-read-timeout",
        "--dns.ip-family",
        "--fan-out.require-all",
        "--sample-limit",
    ] {
        assert!(long.contains(flag), "{flag} not in --help");
    }
    assert!(long.lines().count() > 2 * short.lines().count());
}

#[test]
fn zero_scrape_timeout_is_refused_at_start() {
    let o = run(&["-t", "0s", "--listen-address", "127.0.0.1", "-p", "0"]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(err.contains("must be above zero"), "{err}");
}

#[test]
fn max_body_size_bounds_files_and_stdin() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.txt");
    let text: String = (0..100_000)
        .map(|i| format!("m{{i=\"{i}\"}} 1\n"))
        .collect();
    std::fs::write(&big, &text).unwrap();
    let path = big.to_str().unwrap();
    for apply in [false, true] {
        let mode: &[&str] = if apply { &["--apply"] } else { &[] };
        let o = run(&[&["-f", path, "--max-body-size", "1MB"][..], mode].concat());
        assert!(!o.status.success());
        assert!(
            stderr(&o).contains(&format!(
                "{path}: input larger than the limit of 1000000 bytes (--max-body-size)"
            )),
            "{}",
            stderr(&o)
        );
        assert!(o.stdout.is_empty());
        // Within the limit, and exactly at it, the input is read whole.
        let o = run(&[&["-f", path, "--max-body-size", "2MB"][..], mode].concat());
        assert!(o.status.success(), "{}", stderr(&o));
        let exact = text.len().to_string();
        let o = run(&[&["-f", path, "--max-body-size", exact.as_str()][..], mode].concat());
        assert!(o.status.success(), "{}", stderr(&o));
    }

    // Endless stdin: reading stops at the limit and the process exits.
    let mut child = bin()
        .args(["-f", "-", "--apply", "--max-body-size", "1MB"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("binary runs");
    let mut stdin = child.stdin.take().expect("piped stdin");
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        let line = b"endless{a=\"b\"} 1\n".repeat(1000);
        let mut written = 0usize;
        // Stops at the broken pipe, when metric-gate has exited.
        while stdin.write_all(&line).is_ok() {
            written += line.len();
            if written > 500 << 20 {
                break;
            }
        }
        written
    });
    let o = child.wait_with_output().expect("binary runs");
    let written = writer.join().unwrap();
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("<stdin>: input larger than the limit of 1000000 bytes (--max-body-size); reading stopped there"),
        "{}",
        stderr(&o)
    );
    assert!(
        written < 100 << 20,
        "{written} bytes written before metric-gate stopped reading"
    );
}
