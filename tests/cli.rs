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
