//! metric-gate binary: offline modes (`--file`) and, without `--file`, the proxy server.

use std::error::Error;
use std::io::{self, IsTerminal as _};
use std::process::ExitCode;

use clap::Parser as _;
use metric_gate::cli::{run_analyze, run_analyze_relabeled, run_apply, run_html, Args};
use metric_gate::server::{self, RelabelConfig};

fn main() -> ExitCode {
    let args = Args::parse();
    init_logging(&args.log_level);
    let relabel = match args.relabel_config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("metric-gate: invalid relabel config: {e}");
            return ExitCode::from(2);
        }
    };
    match run(&args, relabel) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("metric-gate: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the mode the flags ask for: `--file --html`, `--file --apply`, `--file` (on the
/// relabeled output when a relabel config is given), or the server.
fn run(args: &Args, relabel: RelabelConfig) -> Result<(), Box<dyn Error>> {
    if let (Some(path), Some(html)) = (&args.file, &args.html) {
        return Ok(run_html(
            path,
            html,
            &args.apply_limits(),
            &mut io::stderr().lock(),
        )?);
    }
    match &args.file {
        Some(path) if args.apply => run_apply(
            path,
            &relabel.config,
            args.subset.as_deref(),
            &args.apply_limits(),
            &mut io::stdout().lock(),
            &mut io::stderr().lock(),
        )?,
        Some(path) if args.relabels_file() => run_analyze_relabeled(
            path,
            &relabel.config,
            args.subset.as_deref(),
            &args.apply_limits(),
            &mut io::stdout().lock(),
            &mut io::stderr().lock(),
        )?,
        Some(path) => run_analyze(
            path,
            args.parse_options(),
            args.max_body_size,
            &mut io::stdout().lock(),
        )?,
        None => server::run(args.server_config()?, relabel)?,
    }
    Ok(())
}

/// Logs go to stderr, one line per event with key=value fields; colors only on a terminal (log
/// collectors and tests read plain `key=value`).
fn init_logging(level: &str) {
    // rustls warns at every connection whose client sends an IP address as SNI (OpenSSL-based
    // clients do); harmless, so below debug only its errors are logged.
    let rustls = if matches!(level, "debug" | "trace") {
        level
    } else {
        "error"
    };
    let filter = tracing_subscriber::EnvFilter::try_new(format!(
        "metric_gate={level},rustls={rustls},{level}"
    ))
    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .with_ansi(io::stderr().is_terminal())
        .with_target(false)
        .init();
}
