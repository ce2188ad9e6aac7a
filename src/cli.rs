//! Command-line flags, compatible with the Go original's (`-f/--file`, `--log-level`,
//! `-p/--port`, `--relabel`, `--relabel-file`, `-t/--scrape-timeout`, `-H/--upstream`,
//! `-v/--version`), and the offline modes `--file` (analyze) and `--file --apply`.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use clap::{ArgAction, Parser as ClapParser};

use crate::aggregate::RenderOptions;
use crate::analyze::Analyzer;
use crate::exposition::ParseOptions;
use crate::limits::{check_sample_limit, LabelLimits, SampleLimitError};
use crate::pipeline::{read_all, InputError, Pipeline};
use crate::relabel::Config;
use crate::server::config::{ListenerConfig, DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_MAX_CONNECTIONS};
use crate::server::web_config::{WebConfigError, WebConfigWatcher};
use crate::server::{RelabelConfig, RelabelError, ScrapeLimits, ServerConfig, UpstreamConfig};
use crate::units::{parse_byte_size, parse_go_duration};
use crate::upstream::{ClientOptions, SpecError, UpstreamSpec};

/// Default upstream: ingress-nginx's metrics port in the same pod.
pub const DEFAULT_UPSTREAM: &str = "http://localhost:10254/metrics";

/// metric-gate: filter, relabel and sum Prometheus metrics at the source.
#[derive(Debug, Clone, ClapParser)]
#[command(name = "metric-gate", version, disable_version_flag = true)]
pub struct Args {
    /// Analyze a file of metrics in text format and exit ("-" reads stdin). With --apply,
    /// print the relabeled, summed result instead.
    #[arg(short = 'f', long = "file", value_name = "PATH")]
    pub file: Option<String>,

    /// Log level: info or debug (also error, warn, trace).
    #[arg(long = "log-level", default_value = "info", value_parser = ["error", "warn", "info", "debug", "trace"])]
    pub log_level: String,

    /// Port to listen on.
    #[arg(short = 'p', long = "port", default_value_t = 8080)]
    pub port: u16,

    /// Relabel configuration as YAML text (`metric_relabel_configs:` and named subsets).
    #[arg(long = "relabel", value_name = "YAML", conflicts_with = "relabel_file")]
    pub relabel: Option<String>,

    /// Relabel configuration file (YAML).
    #[arg(long = "relabel-file", value_name = "PATH")]
    pub relabel_file: Option<PathBuf>,

    /// Label names relabel rules may use and write: utf8 (any UTF-8 name, Prometheus 3's
    /// default) or legacy ([a-zA-Z_][a-zA-Z0-9_]*, Prometheus 2).
    #[arg(
        long = "metric-name-validation-scheme",
        default_value = "utf8",
        value_name = "utf8|legacy"
    )]
    pub metric_name_validation_scheme: crate::relabel::NameValidation,

    /// Upstream scrape timeout, Go duration syntax (`15s`, `1m30s`, `500ms`).
    #[arg(short = 't', long = "scrape-timeout", default_value = "15s", value_parser = parse_go_duration)]
    pub scrape_timeout: Duration,

    /// Upstream URL (`http://` or `https://`); `dns+http://name:port/path` fans out to every
    /// address the name resolves to. A bare `host:port/path` gets `http://`.
    #[arg(short = 'H', long = "upstream", default_value = DEFAULT_UPSTREAM)]
    pub upstream: String,

    /// With --file: apply the relabel config and print the result instead of the analysis.
    #[arg(long = "apply", requires = "file")]
    pub apply: bool,

    /// With --file --apply: print this named subset instead of the default list.
    #[arg(long = "subset", value_name = "NAME", requires = "apply")]
    pub subset: Option<String>,

    /// Print version.
    #[arg(short = 'v', long = "version", action = ArgAction::Version)]
    pub version: Option<bool>,

    /// Address to listen on (with --port).
    #[arg(long = "listen-address", default_value = "0.0.0.0", value_name = "IP")]
    pub listen_address: std::net::IpAddr,

    /// DNS server (`ip:port`) for `dns+`/`dnssrv+` upstreams instead of the system resolver
    /// configuration; /etc/hosts is still read.
    #[arg(long = "dns-server", value_name = "IP:PORT")]
    pub dns_server: Option<std::net::SocketAddr>,

    /// Largest accepted upstream body after decoding (`512MiB`, `64MB`, `1000000`); a larger
    /// body fails the scrape of that target instead of exhausting memory.
    #[arg(long = "max-body-size", default_value = "512MiB", value_parser = parse_byte_size, value_name = "SIZE")]
    pub max_body_size: u64,

    /// Longest accepted line of upstream (or --file) input (`1MiB`, `64KB`, `1000000`); a
    /// longer line fails the scrape of that target, before the line is buffered whole.
    #[arg(long = "max-line-length", default_value = "1MiB", value_parser = parse_line_size, value_name = "SIZE")]
    pub max_line_length: usize,

    /// Most labels (`__name__` included) an output series may have, after relabeling; a series
    /// with more fails the scrape (Prometheus' `label_limit`). 0: unlimited.
    #[arg(long = "label-limit", default_value_t = crate::limits::DEFAULT_LABEL_LIMIT, value_name = "N")]
    pub label_limit: usize,

    /// Longest label name (bytes) of an output series, after relabeling; a longer one fails the
    /// scrape (Prometheus' `label_name_length_limit`). 0: unlimited.
    #[arg(long = "label-name-length-limit", default_value_t = crate::limits::DEFAULT_LABEL_NAME_LENGTH_LIMIT, value_name = "BYTES")]
    pub label_name_length_limit: usize,

    /// Longest label value (bytes, the metric name included) of an output series, after
    /// relabeling; a longer one fails the scrape (Prometheus' `label_value_length_limit`).
    /// 0: unlimited.
    #[arg(long = "label-value-length-limit", default_value_t = crate::limits::DEFAULT_LABEL_VALUE_LENGTH_LIMIT, value_name = "BYTES")]
    pub label_value_length_limit: usize,

    /// Most series the output of one list (the default list or a subset) may have, after
    /// relabeling and summing; a bigger output fails with a 502 (Prometheus' `sample_limit`).
    /// 0: unlimited.
    #[arg(long = "sample-limit", default_value_t = 0, value_name = "N")]
    pub sample_limit: usize,

    /// In dns+ mode, do not append the per-target `metric_gate_upstream_up` and
    /// `metric_gate_upstream_scrape_duration_seconds` series to `/metrics`.
    #[arg(long = "no-target-health")]
    pub no_target_health: bool,

    /// CA bundle (PEM) that verifies https upstreams, instead of the system's trust store.
    #[arg(long = "upstream.ca-file", value_name = "PATH")]
    pub upstream_ca_file: Option<PathBuf>,

    /// Client certificate (PEM, chain allowed) presented to https upstreams; with
    /// --upstream.key-file.
    #[arg(
        long = "upstream.cert-file",
        value_name = "PATH",
        requires = "upstream_key_file"
    )]
    pub upstream_cert_file: Option<PathBuf>,

    /// Private key (PEM) of --upstream.cert-file.
    #[arg(
        long = "upstream.key-file",
        value_name = "PATH",
        requires = "upstream_cert_file"
    )]
    pub upstream_key_file: Option<PathBuf>,

    /// Name the upstream's certificate must carry. Default: the URL's host; for dns+ the DNS
    /// name (targets are dialled by IP); for dnssrv+ the SRV name without `_port._proto.`.
    #[arg(long = "upstream.server-name", value_name = "NAME")]
    pub upstream_server_name: Option<String>,

    /// Do not verify the upstream's certificate (logs a warning at start).
    #[arg(long = "upstream.insecure-skip-verify")]
    pub upstream_insecure_skip_verify: bool,

    /// Send `Authorization: Bearer <token>` to the upstream, the token read from this file on
    /// every request (rotated tokens are picked up at the next scrape).
    #[arg(
        long = "upstream.bearer-token-file",
        value_name = "PATH",
        conflicts_with = "upstream_basic_auth_user"
    )]
    pub upstream_bearer_token_file: Option<PathBuf>,

    /// Send basic auth to the upstream with this user name and the password from
    /// --upstream.basic-auth-password-file.
    #[arg(
        long = "upstream.basic-auth-user",
        value_name = "USER",
        requires = "upstream_basic_auth_password_file"
    )]
    pub upstream_basic_auth_user: Option<String>,

    /// File holding the basic-auth password, read on every request.
    #[arg(
        long = "upstream.basic-auth-password-file",
        value_name = "PATH",
        requires = "upstream_basic_auth_user"
    )]
    pub upstream_basic_auth_password_file: Option<PathBuf>,
    /// TLS, client certificates and basic auth for the listener, in the Prometheus
    /// exporter-toolkit web config format (see docs/security.md).
    #[arg(long = "web.config.file", value_name = "PATH")]
    pub web_config_file: Option<PathBuf>,

    /// Connections open at once; more are closed as soon as they are accepted.
    #[arg(long = "web.max-connections", value_name = "N", default_value_t = DEFAULT_MAX_CONNECTIONS, value_parser = parse_max_connections)]
    pub web_max_connections: usize,

    /// Time a client has to complete the TLS handshake, and to send a request's headers
    /// (counted from when the server waits for them, so it also closes idle keep-alive
    /// connections). Go duration syntax.
    #[arg(long = "web.header-read-timeout", value_name = "D", default_value = HEADER_READ_TIMEOUT_TEXT.as_str(), value_parser = parse_positive_duration)]
    pub web_header_read_timeout: Duration,
}

/// The listener's default header-read timeout as the flag spells it (for `--help`), so the
/// default is defined once, by the listener.
static HEADER_READ_TIMEOUT_TEXT: LazyLock<String> =
    LazyLock::new(|| go_duration_text(DEFAULT_HEADER_READ_TIMEOUT));

/// A duration in Go syntax that [`parse_go_duration`] reads back: whole seconds (`10s`),
/// else whole milliseconds (`1500ms`), else nanoseconds.
fn go_duration_text(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else if d.subsec_nanos().is_multiple_of(1_000_000) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{}ns", d.as_nanos())
    }
}

/// A connection count of at least 1.
fn parse_max_connections(s: &str) -> Result<usize, String> {
    match s.trim().parse::<usize>() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!(
            "invalid connection count {s:?}: expected a number of at least 1"
        )),
    }
}

/// A Go duration above zero.
fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    let d = parse_go_duration(s)?;
    if d.is_zero() {
        return Err(format!("invalid duration {s:?}: must be above zero"));
    }
    Ok(d)
}

impl Args {
    /// The label limits of the command line.
    pub fn label_limits(&self) -> LabelLimits {
        LabelLimits {
            labels: self.label_limit,
            name_length: self.label_name_length_limit,
            value_length: self.label_value_length_limit,
        }
    }

    /// Parser settings of the command line.
    pub fn parse_options(&self) -> ParseOptions {
        ParseOptions {
            max_line_len: self.max_line_length,
            ..ParseOptions::default()
        }
    }

    /// The upstream URL with `http://` added when it has no scheme.
    pub fn upstream_url(&self) -> String {
        normalize_upstream(&self.upstream)
    }

    /// The `--upstream.*` TLS and authorization settings.
    pub fn client_options(&self) -> ClientOptions {
        ClientOptions {
            ca_file: self.upstream_ca_file.clone(),
            cert_file: self.upstream_cert_file.clone(),
            key_file: self.upstream_key_file.clone(),
            server_name: self.upstream_server_name.clone(),
            insecure_skip_verify: self.upstream_insecure_skip_verify,
            bearer_token_file: self.upstream_bearer_token_file.clone(),
            basic_auth_user: self.upstream_basic_auth_user.clone(),
            basic_auth_password_file: self.upstream_basic_auth_password_file.clone(),
        }
    }

    /// The limits of `--file --apply`.
    pub fn apply_limits(&self) -> ApplyLimits {
        ApplyLimits {
            parse: self.parse_options(),
            labels: self.label_limits(),
            sample_limit: self.sample_limit,
        }
    }

    /// The relabel configuration of `--relabel` or `--relabel-file` (the file is read here, once,
    /// and handed to the server with its text), or pass-through when neither is given.
    pub fn relabel_config(&self) -> Result<RelabelConfig, RelabelError> {
        let options = crate::relabel::LoadOptions {
            names: self.metric_name_validation_scheme,
            ..Default::default()
        };
        if let Some(text) = &self.relabel {
            return RelabelConfig::from_text(text, "--relabel", &options);
        }
        if let Some(path) = &self.relabel_file {
            return RelabelConfig::from_file(path, &options);
        }
        Ok(RelabelConfig::passthrough())
    }

    /// The server's configuration: the flags checked and `--web.config.file` loaded, before
    /// anything binds.
    pub fn server_config(&self) -> Result<ServerConfig, ConfigError> {
        let spec = UpstreamSpec::parse(&self.upstream_url())?;
        let web = match &self.web_config_file {
            Some(path) => Some(Arc::new(WebConfigWatcher::load(path)?)),
            None => None,
        };
        Ok(ServerConfig {
            listen: SocketAddr::new(self.listen_address, self.port),
            listener: ListenerConfig {
                web,
                max_connections: self.web_max_connections,
                header_read_timeout: self.web_header_read_timeout,
            },
            upstream: UpstreamConfig {
                spec,
                client: self.client_options(),
                dns_server: self.dns_server,
                scrape_timeout: self.scrape_timeout,
            },
            limits: ScrapeLimits {
                max_body: self.max_body_size,
                max_line: self.max_line_length,
                labels: self.label_limits(),
                sample_limit: self.sample_limit,
            },
            target_health: !self.no_target_health,
            warm_up: true,
        })
    }
}

/// The server's flags do not make a configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// `--upstream` is not a URL metric-gate can fetch.
    #[error(transparent)]
    Upstream(#[from] SpecError),
    /// `--web.config.file` could not be loaded.
    #[error(transparent)]
    WebConfig(#[from] WebConfigError),
}

/// Adds `http://` to an upstream given without a scheme (`localhost:10254/metrics`).
pub fn normalize_upstream(upstream: &str) -> String {
    if upstream.contains("://") {
        upstream.to_owned()
    } else {
        format!("http://{upstream}")
    }
}

/// Parses `--max-line-length`: a byte size that fits the parser's line offsets (below 2 GiB).
fn parse_line_size(s: &str) -> Result<usize, String> {
    let n = parse_byte_size(s)?;
    if n > i32::MAX as u64 {
        return Err(format!("line length {s:?} too large: at most 2GiB - 1"));
    }
    Ok(n as usize)
}

/// Opens `--file`: a path, or `-` for stdin.
fn open_input(path: &str) -> Result<Box<dyn Read>, RunError> {
    if path == "-" {
        Ok(Box::new(io::stdin().lock()))
    } else {
        let file = File::open(path).map_err(|source| RunError::Open {
            path: path.to_owned(),
            source,
        })?;
        Ok(Box::new(file))
    }
}

/// How `--file` is named in messages.
fn input_name(path: &str) -> String {
    if path == "-" { "<stdin>" } else { path }.to_owned()
}

/// An offline mode (`--file`, `--file --apply`) failed. Messages name the input.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// `--file` could not be opened.
    #[error("{path}: {source}")]
    Open {
        /// The path as given.
        path: String,
        /// Why it could not be opened.
        source: io::Error,
    },
    /// The input could not be read, is not valid exposition text, or broke a label limit.
    #[error("{input}: {source}")]
    Input {
        /// The file, or `<stdin>`.
        input: String,
        /// What went wrong, where.
        source: InputError,
    },
    /// `--subset` names no subset of the relabel configuration.
    #[error("unknown subset {name:?}; known subsets: [{}]", .known.join(", "))]
    UnknownSubset {
        /// The name given.
        name: String,
        /// The configured subsets.
        known: Vec<String>,
    },
    /// The output had more series than `--sample-limit`.
    #[error("{input}: {source}")]
    SampleLimit {
        /// The file, or `<stdin>`.
        input: String,
        /// Series and limit.
        source: SampleLimitError,
    },
    /// Writing the report of `--file` failed.
    #[error("writing report: {0}")]
    WriteReport(#[source] io::Error),
    /// Writing the output of `--file --apply` failed.
    #[error("writing output: {0}")]
    WriteOutput(#[source] io::Error),
}

/// `--file PATH`: prints the cardinality report to `out`.
pub fn run_analyze(path: &str, opts: ParseOptions, out: &mut dyn Write) -> Result<(), RunError> {
    let input = open_input(path)?;
    let mut analyzer = Analyzer::new();
    let bytes = read_all(input, opts, &mut analyzer).map_err(|source| RunError::Input {
        input: input_name(path),
        source,
    })?;
    analyzer.add_bytes(bytes);
    out.write_all(analyzer.report().as_bytes())
        .map_err(RunError::WriteReport)
}

/// Limits of `--file --apply`.
#[derive(Debug, Clone)]
pub struct ApplyLimits {
    /// Parser settings (`--max-line-length`).
    pub parse: ParseOptions,
    /// Label limits of output series.
    pub labels: LabelLimits,
    /// Most output series (0: unlimited).
    pub sample_limit: usize,
}

impl Default for ApplyLimits {
    /// No label or sample limit; the parser's default line limit.
    fn default() -> Self {
        Self {
            parse: ParseOptions::default(),
            labels: LabelLimits::UNLIMITED,
            sample_limit: 0,
        }
    }
}

/// `--file PATH --apply [--subset NAME]`: prints the relabeled, summed text to `out` and a
/// summary line to `summary`.
pub fn run_apply(
    path: &str,
    config: &Config,
    subset: Option<&str>,
    limits: &ApplyLimits,
    out: &mut dyn Write,
    summary: &mut dyn Write,
) -> Result<(), RunError> {
    let index = match subset {
        None => 0,
        Some(name) => {
            1 + config
                .subsets
                .iter()
                .position(|(n, _)| n == name)
                .ok_or_else(|| RunError::UnknownSubset {
                    name: name.to_owned(),
                    known: config.subsets.iter().map(|(n, _)| n.clone()).collect(),
                })?
        }
    };
    let input = open_input(path)?;
    let mut pipeline = Pipeline::new(config).with_label_limits(limits.labels);
    read_all(input, limits.parse.clone(), &mut pipeline).map_err(|source| RunError::Input {
        input: input_name(path),
        source,
    })?;
    let samples = pipeline.samples();
    let sub = &pipeline.subsets()[index];
    check_sample_limit(sub.aggregator.series_count(), limits.sample_limit).map_err(|source| {
        RunError::SampleLimit {
            input: input_name(path),
            source,
        }
    })?;
    let mut text = Vec::with_capacity(sub.aggregator.arena_bytes() + (1 << 16));
    sub.aggregator.render(&mut text, &RenderOptions::default());
    let mut w = BufWriter::new(out);
    w.write_all(&text)
        .and_then(|_| w.flush())
        .map_err(RunError::WriteOutput)?;
    let st = sub.stats();
    let series_out = sub.aggregator.series_count() as u64;
    let ratio = if series_out == 0 {
        0.0
    } else {
        samples as f64 / series_out as f64
    };
    let _ = writeln!(
        summary,
        "series in: {samples}, series out: {series_out}, dropped by relabel: {}, dropped without name: {}, dropped with empty label name: {}, summed: {}, reduction: {ratio:.1}x",
        sub.dropped_by_relabel, st.dropped_nameless, st.dropped_invalid, st.samples_merged
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::server::RelabelSource;

    #[test]
    fn server_flags() {
        let a = Args::try_parse_from([
            "metric-gate",
            "--listen-address",
            "127.0.0.1",
            "--dns-server",
            "127.0.0.1:5353",
            "--max-body-size",
            "1MiB",
            "--no-target-health",
        ])
        .unwrap();
        assert_eq!(a.listen_address.to_string(), "127.0.0.1");
        assert_eq!(a.dns_server.unwrap().port(), 5353);
        assert_eq!(a.max_body_size, 1 << 20);
        assert!(a.no_target_health);
        let d = Args::try_parse_from(["metric-gate"]).unwrap();
        assert_eq!(d.max_body_size, 512 << 20);
        assert!(!d.no_target_health);
        assert_eq!(d.max_line_length, 1 << 20);
        assert_eq!(d.label_limits(), LabelLimits::DEFAULT);
        assert_eq!(d.sample_limit, 0);
        let l = Args::try_parse_from([
            "metric-gate",
            "--max-line-length",
            "64KiB",
            "--label-limit",
            "0",
            "--label-name-length-limit",
            "100",
            "--label-value-length-limit",
            "1000",
            "--sample-limit",
            "50000",
        ])
        .unwrap();
        assert_eq!(l.parse_options().max_line_len, 64 << 10);
        assert_eq!(
            l.label_limits(),
            LabelLimits {
                labels: 0,
                name_length: 100,
                value_length: 1000
            }
        );
        assert_eq!(l.apply_limits().sample_limit, 50000);
        assert_eq!(d.listen_address.to_string(), "0.0.0.0");
    }

    #[test]
    fn upstream_tls_flags() {
        let a = Args::try_parse_from([
            "metric-gate",
            "-H",
            "dns+https://pods.ns.svc:10254/metrics",
            "--upstream.ca-file",
            "/ca.pem",
            "--upstream.cert-file",
            "/c.pem",
            "--upstream.key-file",
            "/k.pem",
            "--upstream.server-name",
            "ingress.ns.svc",
            "--upstream.bearer-token-file",
            "/token",
        ])
        .unwrap();
        let o = a.client_options();
        assert_eq!(o.ca_file.as_deref(), Some(std::path::Path::new("/ca.pem")));
        assert_eq!(o.server_name.as_deref(), Some("ingress.ns.svc"));
        assert_eq!(
            o.bearer_token_file.as_deref(),
            Some(std::path::Path::new("/token"))
        );
        assert!(!o.insecure_skip_verify);
        // A certificate without its key, a token together with basic auth, a user without a
        // password file: refused by the flag parser.
        for bad in [
            &["--upstream.cert-file", "/c.pem"][..],
            &[
                "--upstream.bearer-token-file",
                "/t",
                "--upstream.basic-auth-user",
                "u",
                "--upstream.basic-auth-password-file",
                "/p",
            ],
            &["--upstream.basic-auth-user", "u"],
        ] {
            let mut argv = vec!["metric-gate"];
            argv.extend_from_slice(bad);
            assert!(Args::try_parse_from(&argv).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn server_config_from_flags() {
        let a = Args::try_parse_from([
            "metric-gate",
            "-p",
            "9090",
            "--listen-address",
            "127.0.0.1",
            "-H",
            "dns+http://svc:10254/metrics",
            "--max-body-size",
            "1MiB",
            "--sample-limit",
            "7",
            "--no-target-health",
            "--web.max-connections",
            "3",
        ])
        .unwrap();
        let c = a.server_config().unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:9090");
        assert!(c.upstream.spec.is_fan_out());
        assert_eq!(c.upstream.scrape_timeout, Duration::from_secs(15));
        assert_eq!(c.limits.max_body, 1 << 20);
        assert_eq!(c.limits.sample_limit, 7);
        assert_eq!(c.limits.labels, LabelLimits::DEFAULT);
        assert!(!c.target_health && c.warm_up);
        assert!(c.listener.web.is_none());
        assert_eq!(c.listener.max_connections, 3);
        assert_eq!(c.listener.header_read_timeout, DEFAULT_HEADER_READ_TIMEOUT);
        let bad = Args::try_parse_from(["metric-gate", "-H", "ftp://x/"]).unwrap();
        assert!(matches!(bad.server_config(), Err(ConfigError::Upstream(_))));
    }

    #[test]
    fn header_read_timeout_default_comes_from_the_listener() {
        assert_eq!(HEADER_READ_TIMEOUT_TEXT.as_str(), "10s");
        let d = Args::try_parse_from(["metric-gate"]).unwrap();
        assert_eq!(d.web_header_read_timeout, DEFAULT_HEADER_READ_TIMEOUT);
        for d in [
            Duration::from_secs(90),
            Duration::from_millis(1500),
            Duration::from_nanos(7),
        ] {
            assert_eq!(parse_go_duration(&go_duration_text(d)), Ok(d));
        }
    }

    #[test]
    fn relabel_config_sources() {
        let none = Args::try_parse_from(["metric-gate"]).unwrap();
        let r = none.relabel_config().unwrap();
        assert_eq!(r.source, RelabelSource::Fixed);
        assert!(r.config.subsets.is_empty());
        let inline = Args::try_parse_from(["metric-gate", "--relabel", "x: [\n"]).unwrap();
        let e = inline.relabel_config().unwrap_err().to_string();
        assert!(e.contains("--relabel"), "{e}");
        let missing =
            Args::try_parse_from(["metric-gate", "--relabel-file", "/nonexistent/r.yaml"]).unwrap();
        let e = missing.relabel_config().unwrap_err().to_string();
        assert!(e.starts_with("--relabel-file /nonexistent/r.yaml: "), "{e}");
    }

    #[test]
    fn upstream_gets_scheme() {
        assert_eq!(
            normalize_upstream("localhost:10254/metrics"),
            "http://localhost:10254/metrics"
        );
        assert_eq!(
            normalize_upstream("dns+http://svc:1/m"),
            "dns+http://svc:1/m"
        );
    }

    #[test]
    fn flags_of_the_go_original() {
        let a = Args::try_parse_from([
            "metric-gate",
            "-p",
            "9090",
            "-t",
            "10s",
            "-H",
            "localhost:9100/metrics",
            "--log-level",
            "debug",
        ])
        .unwrap();
        assert_eq!(a.port, 9090);
        assert_eq!(a.scrape_timeout, Duration::from_secs(10));
        assert_eq!(a.upstream_url(), "http://localhost:9100/metrics");
        assert_eq!(a.log_level, "debug");
        let d = Args::try_parse_from(["metric-gate"]).unwrap();
        assert_eq!(d.port, 8080);
        assert_eq!(d.scrape_timeout, Duration::from_secs(15));
        assert_eq!(d.upstream, DEFAULT_UPSTREAM);
        assert!(
            Args::try_parse_from(["metric-gate", "--relabel", "x", "--relabel-file", "y"]).is_err()
        );
        let v = Args::try_parse_from(["metric-gate", "-v"]).unwrap_err();
        assert_eq!(v.kind(), clap::error::ErrorKind::DisplayVersion);
    }
}
