//! Every input saved under `testdata/fuzz/<target>/` (crashes the fuzzers found, minimized, and
//! hand-picked edge cases) goes through the same checks as the fuzz target of that name
//! (`testkit::checks`), so a fixed crash stays fixed without the fuzzing toolchain.
//! The bundled test data is checked too: it is the fuzzers' seed corpus.

use std::path::{Path, PathBuf};

use testkit::checks;

fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.is_file() && p.file_name().is_some_and(|n| n != "README.md"))
        .collect();
    out.sort();
    out
}

fn run_all(target: &str, check: fn(&[u8])) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/fuzz")
        .join(target);
    let inputs = files(&dir);
    for path in &inputs {
        let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let outcome = std::panic::catch_unwind(|| check(&data));
        assert!(outcome.is_ok(), "{target}: {} fails", path.display());
    }
    inputs.len()
}

#[test]
fn saved_parse_inputs() {
    assert!(run_all("parse", checks::check_parse) > 0);
}

#[test]
fn saved_relabel_config_inputs() {
    assert!(run_all("relabel_config", checks::check_relabel_config) > 0);
}

#[test]
fn saved_pipeline_inputs() {
    assert!(run_all("pipeline", checks::check_pipeline) > 0);
}

#[test]
fn seed_corpus_passes_every_check() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let mut expositions = files(&root);
    expositions.extend(files(&root.join("golden")));
    expositions.extend(files(&root.join("bad")));
    expositions.retain(|p| p.extension().is_some_and(|e| e == "prom" || e == "txt"));
    assert!(expositions.len() >= 10, "seed expositions: {expositions:?}");
    for path in &expositions {
        let data = std::fs::read(path).expect("readable");
        checks::check_parse(&data);
        for pick in 0..checks::CONFIGS.len() as u8 {
            let mut input = vec![pick];
            input.extend_from_slice(&data);
            checks::check_pipeline(&input);
        }
    }
    for path in files(&root.join("relabel")) {
        checks::check_relabel_config(&std::fs::read(&path).expect("readable"));
    }
}
