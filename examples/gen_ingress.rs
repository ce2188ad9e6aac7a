//! Deterministic generator of an ingress-nginx-shaped Prometheus `/metrics` payload.
//!
//! ```text
//! cargo run --release --example gen_ingress -- --ingresses 1000 --paths 10 \
//!     [--out FILE] [--seed N] [--pod NAME] [--status-classes] [--canary] \
//!     [--paths-per-status N]
//! ```
//!
//! `labeldrop: path` reduces the default payload 10x (one method and status per ingress);
//! `--paths-per-status 2` gives every two paths of an ingress a method and status of their own,
//! so the same rule halves it (the "2x" shape of the benchmarks).
//!
//! The generator itself, with the properties tests rely on, is `testkit::ingress` (the benches
//! call it in-process); this is its command line.
//!
//! Memory use does not grow with the size of the payload. A one-line summary (series, bytes,
//! time) goes to stderr.

use std::fs::File;
use std::io;
use std::process::ExitCode;
use std::time::Instant;

use testkit::ingress::{generate, Options};

const USAGE: &str = "\
usage: gen_ingress [--ingresses N] [--paths N] [--out FILE] [--seed N] [--pod NAME]
                   [--status-classes] [--canary] [--paths-per-status N]

  --ingresses N      number of Ingress objects (default 1000)
  --paths N          paths per Ingress (default 10)
  --out FILE         write to FILE instead of stdout
  --seed N           PRNG seed for the values (default 1); the series set does not depend on it
  --pod NAME         controller_pod label value (default ingress-nginx-controller-7d9f8c6b5-x2x9q)
  --status-classes   status=\"2xx\" style labels instead of full codes like status=\"200\"
  --canary           also write the empty canary=\"\" label, as the real exporter does
                     (adds about 8.5 MB at 1000 x 10)
  --paths-per-status N
                     every N consecutive paths of an ingress share a method and status of
                     their own (default: all paths of an ingress share one); 2 makes
                     `labeldrop: path` halve the series instead of dividing them by --paths";

/// The command line: what to generate, and where to.
struct Args {
    gen: Options,
    out: Option<String>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        gen: Options::sized(1000, 10),
        out: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        // Accept both `--flag value` and `--flag=value`.
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        if flag == "-h" || flag == "--help" {
            return Err(String::new());
        }
        if flag == "--status-classes" {
            args.gen.status_classes = true;
            continue;
        }
        if flag == "--canary" {
            args.gen.canary = true;
            continue;
        }
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| format!("{flag} needs a value"))
        };
        match flag.as_str() {
            "--ingresses" => args.gen.ingresses = parse_num(&flag, &value()?)?,
            "--paths" => args.gen.paths = parse_num(&flag, &value()?)?,
            "--seed" => args.gen.seed = parse_num(&flag, &value()?)?,
            "--out" => args.out = Some(value()?),
            "--pod" => args.gen.pod = value()?,
            "--paths-per-status" => args.gen.paths_per_status = parse_num(&flag, &value()?)?,
            _ => return Err(format!("unknown argument {arg:?}")),
        }
    }
    if args.gen.pod.contains(['"', '\\', '\n']) {
        return Err("--pod must not contain quotes, backslashes or newlines".to_string());
    }
    Ok(args)
}

fn parse_num<T: std::str::FromStr>(flag: &str, text: &str) -> Result<T, String> {
    text.parse()
        .map_err(|_| format!("{flag}: {text:?} is not a non-negative integer"))
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(msg) if msg.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(msg) => {
            eprintln!("gen_ingress: {msg}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let started = Instant::now();
    let result = match &args.out {
        Some(path) => File::create(path).and_then(|f| generate(&args.gen, f)),
        None => generate(&args.gen, io::stdout().lock()),
    };
    match result {
        Ok((series, bytes)) => {
            eprintln!(
                "gen_ingress: {} ingresses x {} paths{}, pod={}, seed={}: {series} series, {bytes} bytes ({:.1} MB) in {:.2}s -> {}",
                args.gen.ingresses,
                args.gen.paths,
                match args.gen.paths_per_status {
                    0 => String::new(),
                    n => format!(" ({n} per method/status)"),
                },
                args.gen.pod,
                args.gen.seed,
                bytes as f64 / 1e6,
                started.elapsed().as_secs_f64(),
                args.out.as_deref().unwrap_or("stdout"),
            );
            ExitCode::SUCCESS
        }
        // A closed pipe (`| head`) is not worth a complaint.
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gen_ingress: {e}");
            ExitCode::FAILURE
        }
    }
}
