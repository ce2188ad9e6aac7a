//! Command-line flags, compatible with the Go original's (`-f/--file`, `--log-level`,
//! `-p/--port`, `--relabel`, `--relabel-file`, `-t/--scrape-timeout`, `-H/--upstream`,
//! `-v/--version`), and the offline modes `--file` (analyze), `--file --apply` and
//! `--file --html` (the explorer as a file).

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use clap::{ArgAction, Parser as ClapParser};

use crate::aggregate::{Aggregator, RenderOptions, RENDER_CHUNK};
use crate::analyze::Analyzer;
use crate::exposition::ParseOptions;
use crate::limits::{check_sample_limit, LabelLimits, SampleLimitError};
use crate::pipeline::parallel::Parts;
use crate::pipeline::{read_all, InputError, Pipeline};
use crate::relabel::Config;
use crate::server::config::{
    ListenerConfig, DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_MAX_CONNECTIONS,
    DEFAULT_RESPONSE_WRITE_TIMEOUT, DEFAULT_STALENESS_WINDOW,
};
use crate::server::web_config::{WebConfigError, WebConfigWatcher};
use crate::server::{
    RelabelConfig, RelabelError, RemoteWriteSettings, ScrapeLimits, ServerConfig, UpstreamConfig,
};
use crate::units::{parse_byte_size, parse_go_duration};
use crate::upstream::{ClientOptions, Compression, IpFamily, SpecError, UpstreamSpec};

/// Default upstream: ingress-nginx's metrics port in the same pod.
pub const DEFAULT_UPSTREAM: &str = "http://localhost:10254/metrics";

/// metric-gate: filter, relabel and sum Prometheus metrics at the source.
///
/// Without --file it is a proxy server: Prometheus scrapes metric-gate, metric-gate scrapes the
/// upstream, relabels, sums and answers. With --file it works on a file and exits.
#[derive(Debug, Clone, ClapParser)]
#[command(
    name = "metric-gate",
    version,
    disable_version_flag = true,
    after_help = "`--help` lists every flag (limits, TLS and authentication, the listener) with details.",
    after_long_help = "Server endpoints, logs and self-metrics: docs/server.md."
)]
pub struct Args {
    /// Print the cardinality report of a metrics file and exit ("-": stdin).
    ///
    /// Text format 0.0.4 or OpenMetrics; gzip is detected and decompressed. With
    /// --relabel/--relabel-file, the report is of the relabeled output; with --apply, the
    /// relabeled, summed result is printed instead.
    #[arg(short = 'f', long = "file", value_name = "PATH", help_heading = HELP_OFFLINE)]
    pub file: Option<String>,

    /// Log level: info or debug (also error, warn, trace).
    #[arg(long = "log-level", default_value = "info", value_parser = ["error", "warn", "info", "debug", "trace"])]
    pub log_level: String,

    /// Port to listen on.
    #[arg(short = 'p', long = "port", default_value_t = 8080, help_heading = HELP_SERVER)]
    pub port: u16,

    /// Relabel configuration as YAML text.
    ///
    /// `metric_relabel_configs:` (the default list) and named subsets. The value may start
    /// with `-` (a `---` document marker).
    #[arg(
        long = "relabel",
        value_name = "YAML",
        conflicts_with = "relabel_file",
        allow_hyphen_values = true,
        help_heading = HELP_RELABEL
    )]
    pub relabel: Option<String>,

    /// Relabel configuration file (YAML).
    #[arg(long = "relabel-file", value_name = "PATH", help_heading = HELP_RELABEL)]
    pub relabel_file: Option<PathBuf>,

    /// Label names relabel rules may use and write: utf8 or legacy.
    ///
    /// utf8: any UTF-8 name, Prometheus 3's default; legacy: [a-zA-Z_][a-zA-Z0-9_]*, as
    /// Prometheus 2.
    #[arg(
        long = "metric-name-validation-scheme",
        default_value = "utf8",
        value_name = "utf8|legacy",
        help_heading = HELP_RELABEL,
        hide_short_help = true
    )]
    pub metric_name_validation_scheme: crate::relabel::NameValidation,

    /// Upstream scrape timeout (Go duration: `15s`, `1m30s`, `500ms`).
    ///
    /// Bounds each upstream request (connect, headers, the whole body); Prometheus' own
    /// timeout shortens it when smaller. Must be above zero: there is no "no timeout".
    #[arg(short = 't', long = "scrape-timeout", value_name = "DURATION", default_value = "15s", value_parser = parse_scrape_timeout, help_heading = HELP_UPSTREAM)]
    pub scrape_timeout: Duration,

    /// Upstream URL; `dns+http://name:port/path` sums over every pod.
    ///
    /// `http://` or `https://`; a bare `host:port/path` gets `http://`.
    /// `dns+http(s)://name:port/path` fans out to every address the name resolves to (see
    /// --dns.ip-family), `dnssrv+http(s)://_port._proto.name/path` to every SRV target.
    #[arg(short = 'H', long = "upstream", value_name = "URL", default_value = DEFAULT_UPSTREAM, help_heading = HELP_UPSTREAM)]
    pub upstream: String,

    /// With --file: print the relabeled, summed output instead of the report.
    #[arg(long = "apply", requires = "file", help_heading = HELP_OFFLINE)]
    pub apply: bool,

    /// With --file: use this named subset instead of the default list.
    ///
    /// For --apply, or for the report of the relabeled output.
    #[arg(long = "subset", value_name = "NAME", requires = "file", help_heading = HELP_OFFLINE)]
    pub subset: Option<String>,

    /// Threads for one large job, each a share of it: reading one file (--file --apply),
    /// compressing one scrape's output for gzip clients, or (dns+) summing the targets while
    /// the counter state is updated (0: every core the process may use, at most 8).
    ///
    /// The output is the same as with --threads 1. Only a regular file of 8 MiB or more is
    /// split (stdin, pipes and gzip input are read in one pass), and only an output of 4 MiB
    /// or more.
    #[arg(long = "threads", value_name = "N", default_value_t = 0, help_heading = HELP_RELABEL)]
    pub threads: usize,

    /// With --file: write the cardinality explorer to this HTML file.
    #[arg(
        long = "html",
        value_name = "OUT.html",
        requires = "file",
        conflicts_with_all = ["apply", "subset", "relabel", "relabel_file"],
        long_help = crate::explorer::HTML_FLAG_HELP,
        help_heading = HELP_OFFLINE
    )]
    pub html: Option<PathBuf>,

    /// Print version.
    #[arg(short = 'v', long = "version", action = ArgAction::Version)]
    pub version: Option<bool>,

    /// Address to listen on (with --port).
    ///
    /// The default `::` listens on IPv6 and IPv4 (one dual-stack socket), or on IPv4 only
    /// where the host has no IPv6.
    #[arg(long = "listen-address", default_value = "::", value_name = "IP", help_heading = HELP_SERVER)]
    pub listen_address: std::net::IpAddr,

    /// DNS server for `dns+`/`dnssrv+` upstreams instead of the system's.
    ///
    /// `10.96.0.10`, `10.96.0.10:5353`, `[fd00::10]:53`; the port defaults to 53. /etc/hosts
    /// is still read.
    #[arg(long = "dns-server", value_name = "IP[:PORT]", value_parser = parse_dns_server, help_heading = HELP_UPSTREAM, hide_short_help = true)]
    pub dns_server: Option<std::net::SocketAddr>,

    /// Whether scrapes ask the upstream for gzip: `auto`, `gzip` or `none`.
    ///
    /// `auto`: gzip, except from a loopback address (`localhost`, 127.0.0.0/8, `::1`), where
    /// the exporter would spend more CPU compressing than the bytes are worth (a Go exporter
    /// compresses at gzip's default level).
    #[arg(long = "upstream.compression", value_name = "MODE", default_value = "auto", value_parser = parse_compression, help_heading = HELP_UPSTREAM, hide_short_help = true)]
    pub upstream_compression: Compression,

    /// Which addresses of a `dns+` name are targets.
    ///
    /// `auto`: IPv4 when the name has A records, else IPv6 (one address per pod of a
    /// dual-stack Service); `ipv4`; `ipv6`; `both`: every A and AAAA address (a dual-stack pod
    /// is then scraped and summed twice).
    #[arg(long = "dns.ip-family", value_name = "FAMILY", default_value = "auto", value_parser = parse_ip_family, help_heading = HELP_UPSTREAM, hide_short_help = true)]
    pub dns_ip_family: IpFamily,

    /// dns+/dnssrv+: answer 502 unless every target answered.
    ///
    /// Without it, the targets that answered in full are summed and the others are left out
    /// (see metric_gate_upstream_up); a 502 comes only when every target failed.
    #[arg(long = "fan-out.require-all", help_heading = HELP_UPSTREAM)]
    pub fan_out_require_all: bool,

    /// Largest accepted upstream body after decoding (`512MiB`, `64MB`, `1000000`); a larger
    /// body fails the scrape of that target instead of exhausting memory. Also bounds the input
    /// of --file (a file, or stdin: reading stops at the limit).
    #[arg(long = "max-body-size", default_value = "512MiB", value_parser = parse_byte_size, value_name = "SIZE", help_heading = HELP_LIMITS, hide_short_help = true)]
    pub max_body_size: u64,

    /// Longest accepted line of upstream (or --file) input (`1MiB`, `64KB`, `1000000`); a
    /// longer line fails the scrape of that target, before the line is buffered whole.
    #[arg(long = "max-line-length", default_value = "1MiB", value_parser = parse_line_size, value_name = "SIZE", help_heading = HELP_LIMITS, hide_short_help = true)]
    pub max_line_length: usize,

    /// Most labels (`__name__` included) an output series may have, after relabeling; a series
    /// with more fails the scrape (Prometheus' `label_limit`). 0: unlimited.
    #[arg(long = "label-limit", default_value_t = crate::limits::DEFAULT_LABEL_LIMIT, value_name = "N", help_heading = HELP_LIMITS, hide_short_help = true)]
    pub label_limit: usize,

    /// Longest label name (bytes) of an output series, after relabeling; a longer one fails the
    /// scrape (Prometheus' `label_name_length_limit`). 0: unlimited.
    #[arg(long = "label-name-length-limit", default_value_t = crate::limits::DEFAULT_LABEL_NAME_LENGTH_LIMIT, value_name = "BYTES", help_heading = HELP_LIMITS, hide_short_help = true)]
    pub label_name_length_limit: usize,

    /// Longest label value (bytes, the metric name included) of an output series, after
    /// relabeling; a longer one fails the scrape (Prometheus' `label_value_length_limit`).
    /// 0: unlimited.
    #[arg(long = "label-value-length-limit", default_value_t = crate::limits::DEFAULT_LABEL_VALUE_LENGTH_LIMIT, value_name = "BYTES", help_heading = HELP_LIMITS, hide_short_help = true)]
    pub label_value_length_limit: usize,

    /// Most series the output of one list (the default list or a subset) may have, after
    /// relabeling and summing; a bigger output fails with a 502 (Prometheus' `sample_limit`).
    /// 0: unlimited.
    #[arg(long = "sample-limit", default_value_t = 0, value_name = "N", help_heading = HELP_LIMITS, hide_short_help = true)]
    pub sample_limit: usize,

    /// In dns+ mode, do not append the per-target `metric_gate_upstream_up` and
    /// `metric_gate_upstream_scrape_duration_seconds` series to `/metrics`.
    #[arg(long = "no-target-health", help_heading = HELP_UPSTREAM, hide_short_help = true)]
    pub no_target_health: bool,

    /// CA bundle (PEM) verifying https upstreams, instead of the system's.
    #[arg(long = "upstream.ca-file", value_name = "PATH", help_heading = HELP_TLS)]
    pub upstream_ca_file: Option<PathBuf>,

    /// Client certificate (PEM, chain allowed) presented to https upstreams; with
    /// --upstream.key-file.
    #[arg(
        long = "upstream.cert-file",
        value_name = "PATH",
        requires = "upstream_key_file",
        help_heading = HELP_TLS,
        hide_short_help = true
    )]
    pub upstream_cert_file: Option<PathBuf>,

    /// Private key (PEM) of --upstream.cert-file.
    #[arg(
        long = "upstream.key-file",
        value_name = "PATH",
        requires = "upstream_cert_file",
        help_heading = HELP_TLS,
        hide_short_help = true
    )]
    pub upstream_key_file: Option<PathBuf>,

    /// Name the upstream's certificate must carry. Default: the URL's host; for dns+ the DNS
    /// name (targets are dialled by IP); for dnssrv+ the SRV name without `_port._proto.`.
    #[arg(long = "upstream.server-name", value_name = "NAME", help_heading = HELP_TLS, hide_short_help = true)]
    pub upstream_server_name: Option<String>,

    /// Do not verify the upstream's certificate (logs a warning at start).
    #[arg(long = "upstream.insecure-skip-verify", help_heading = HELP_TLS, hide_short_help = true)]
    pub upstream_insecure_skip_verify: bool,

    /// Send `Authorization: Bearer <token>` to the upstream, the token read from this file on
    /// every request (rotated tokens are picked up at the next scrape).
    #[arg(
        long = "upstream.bearer-token-file",
        value_name = "PATH",
        conflicts_with = "upstream_basic_auth_user",
        help_heading = HELP_TLS,
        hide_short_help = true
    )]
    pub upstream_bearer_token_file: Option<PathBuf>,

    /// Send basic auth to the upstream with this user name and the password from
    /// --upstream.basic-auth-password-file.
    #[arg(
        long = "upstream.basic-auth-user",
        value_name = "USER",
        requires = "upstream_basic_auth_password_file",
        help_heading = HELP_TLS,
        hide_short_help = true
    )]
    pub upstream_basic_auth_user: Option<String>,

    /// File holding the basic-auth password, read on every request.
    #[arg(
        long = "upstream.basic-auth-password-file",
        value_name = "PATH",
        requires = "upstream_basic_auth_user",
        help_heading = HELP_TLS,
        hide_short_help = true
    )]
    pub upstream_basic_auth_password_file: Option<PathBuf>,
    /// TLS, client certificates and basic auth for the listener.
    ///
    /// The Prometheus exporter-toolkit web config format (see docs/security.md).
    #[arg(long = "web.config.file", value_name = "PATH", help_heading = HELP_TLS)]
    pub web_config_file: Option<PathBuf>,

    /// Connections open at once; more are closed as soon as they are accepted.
    #[arg(long = "web.max-connections", value_name = "N", default_value_t = DEFAULT_MAX_CONNECTIONS, value_parser = parse_max_connections, help_heading = HELP_SERVER, hide_short_help = true)]
    pub web_max_connections: usize,

    /// Time a client has to complete the TLS handshake, and to send a request's headers
    /// (counted from when the server waits for them, so it also closes idle keep-alive
    /// connections). Go duration syntax.
    #[arg(long = "web.header-read-timeout", value_name = "D", default_value = HEADER_READ_TIMEOUT_TEXT.as_str(), value_parser = parse_positive_duration, help_heading = HELP_SERVER, hide_short_help = true)]
    pub web_header_read_timeout: Duration,

    /// Push the lists to Prometheus remote-write endpoints: a YAML file with Prometheus'
    /// `remote_write` section (plus `interval`, `external_labels` and per endpoint `subset`).
    /// metric-gate then scrapes its upstream every `interval` by itself.
    #[arg(long = "remote-write.config-file", value_name = "PATH", help_heading = HELP_REMOTE_WRITE)]
    pub remote_write_config_file: Option<PathBuf>,

    /// Serve `POST /api/v1/write` (remote write 1.0 and 2.0) and forward what it receives to
    /// the endpoints of --remote-write.config-file.
    #[arg(long = "remote-write.receiver", requires = "remote_write_config_file", help_heading = HELP_REMOTE_WRITE, hide_short_help = true)]
    pub remote_write_receiver: bool,

    /// Largest remote-write request body accepted by the receiver, compressed or not.
    #[arg(long = "remote-write.receiver.max-body-size", value_name = "SIZE", default_value = "32MiB", value_parser = parse_receiver_body_size, help_heading = HELP_REMOTE_WRITE, hide_short_help = true)]
    pub remote_write_receiver_max_body_size: usize,

    /// At shutdown, how long delivering the remote-write queues (and the stale markers that
    /// end every pushed series) may take. Go duration syntax.
    #[arg(long = "remote-write.flush-deadline", value_name = "D", default_value = "10s", value_parser = parse_go_duration, help_heading = HELP_REMOTE_WRITE, hide_short_help = true)]
    pub remote_write_flush_deadline: Duration,

    /// Time to write a response, from when it is ready (the scrape does not count): a client
    /// that does not read its response within it is disconnected, freeing what the response
    /// holds. Go duration syntax.
    #[arg(long = "web.response-write-timeout", value_name = "D", default_value = RESPONSE_WRITE_TIMEOUT_TEXT.as_str(), value_parser = parse_positive_duration, help_heading = HELP_SERVER, hide_short_help = true)]
    pub web_response_write_timeout: Duration,

    /// The program's staleness window: a summed counter's departed inputs, the outputs whose
    /// inputs are all gone (and their families), and per-target self-metric series are
    /// forgotten once gone this long. Go duration syntax.
    #[arg(long = "staleness-window", value_name = "D", default_value = STALENESS_WINDOW_TEXT.as_str(), value_parser = parse_positive_duration, help_heading = HELP_SERVER, hide_short_help = true)]
    pub staleness_window: Duration,

    /// Keep the counter state (the totals of summed counters) in this file across restarts:
    /// read at start, written every minute and at shutdown (atomically). A missing or unreadable
    /// file starts the state empty (with a warning for an unreadable one).
    #[arg(long = "state-file", value_name = "PATH", help_heading = HELP_SERVER, hide_short_help = true)]
    pub state_file: Option<PathBuf>,
}

/// Parses `--remote-write.receiver.max-body-size`: a byte size that fits in memory.
fn parse_receiver_body_size(s: &str) -> Result<usize, String> {
    let n = parse_byte_size(s)?;
    usize::try_from(n).map_err(|_| format!("size {s:?} too large"))
}

// Help headings: `-h` shows the common flags of each mode under these; `--help` shows every
// flag (the others are `hide_short_help`). A new flag needs a heading, and `hide_short_help`
// unless a first-time user needs it.
const HELP_OFFLINE: &str = "Offline mode (--file)";
const HELP_RELABEL: &str = "Relabeling (both modes)";
const HELP_SERVER: &str = "Server mode (without --file)";
const HELP_UPSTREAM: &str = "Upstream (server mode)";
const HELP_LIMITS: &str = "Limits";
const HELP_TLS: &str = "TLS and authentication (server mode)";
const HELP_REMOTE_WRITE: &str = "Remote write (server mode)";

/// Parses `-t/--scrape-timeout`: a Go duration above zero.
fn parse_scrape_timeout(s: &str) -> Result<Duration, String> {
    let d = parse_go_duration(s)?;
    if d.is_zero() {
        return Err(format!(
            "scrape timeout {s:?} must be above zero: every scrape would fail at once (there is no \"no timeout\")"
        ));
    }
    Ok(d)
}

/// Parses `--dns-server`: `IP:PORT`, or an IP alone (also `[v6]`) for port 53.
fn parse_dns_server(s: &str) -> Result<SocketAddr, String> {
    let s = s.trim();
    if let Ok(addr) = s.parse::<SocketAddr>() {
        return Ok(addr);
    }
    let ip = s
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(s);
    ip.parse::<IpAddr>()
        .map(|ip| SocketAddr::new(ip, 53))
        .map_err(|_| {
            format!("invalid DNS server {s:?}: expected IP or IP:PORT (10.96.0.10, 10.96.0.10:53, [fd00::10]:53)")
        })
}

/// Parses `--upstream.compression`.
fn parse_compression(s: &str) -> Result<Compression, String> {
    s.parse()
}

/// Parses `--dns.ip-family`.
fn parse_ip_family(s: &str) -> Result<IpFamily, String> {
    s.parse()
}

/// The default response write timeout as the flag spells it.
static RESPONSE_WRITE_TIMEOUT_TEXT: LazyLock<String> =
    LazyLock::new(|| go_duration_text(DEFAULT_RESPONSE_WRITE_TIMEOUT));

/// The default staleness window as the flag spells it.
static STALENESS_WINDOW_TEXT: LazyLock<String> =
    LazyLock::new(|| go_duration_text(DEFAULT_STALENESS_WINDOW));

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
    /// True when a relabel configuration or a subset was given: `--file` then reports on the
    /// relabeled output ([`run_analyze_relabeled`]).
    pub fn relabels_file(&self) -> bool {
        self.relabel.is_some() || self.relabel_file.is_some() || self.subset.is_some()
    }

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
            compression: self.upstream_compression,
        }
    }

    /// The limits of `--file --apply`.
    pub fn apply_limits(&self) -> ApplyLimits {
        ApplyLimits {
            parse: self.parse_options(),
            labels: self.label_limits(),
            sample_limit: self.sample_limit,
            max_body: self.max_body_size,
            threads: self.threads,
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
                response_write_timeout: self.web_response_write_timeout,
            },
            upstream: UpstreamConfig {
                spec,
                client: self.client_options(),
                dns_server: self.dns_server,
                ip_family: self.dns_ip_family,
                require_all: self.fan_out_require_all,
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
            remote_write: self.remote_write_settings()?,
            staleness_window: self.staleness_window,
            state_file: self.state_file.clone(),
            threads: self.threads,
        })
    }

    /// `--remote-write.*`: the file loaded and checked (its `subset`s are checked against the
    /// relabel configuration when the server starts).
    pub fn remote_write_settings(&self) -> Result<Option<RemoteWriteSettings>, ConfigError> {
        let Some(path) = &self.remote_write_config_file else {
            return Ok(None);
        };
        Ok(Some(RemoteWriteSettings {
            receiver: self.remote_write_receiver,
            receiver_max_body: self.remote_write_receiver_max_body_size,
            flush_deadline: self.remote_write_flush_deadline,
            ..RemoteWriteSettings::load(path)?
        }))
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
    /// `--remote-write.config-file` could not be read or is invalid.
    #[error(transparent)]
    RemoteWrite(#[from] crate::remote_write::config::ConfigError),
}

/// Adds `http://` to an upstream given without a scheme (`localhost:10254/metrics`). A `dns+` or
/// `dnssrv+` upstream is left as it is: without its scheme it is refused by
/// [`UpstreamSpec::parse`], with a message that shows the scheme's place.
pub fn normalize_upstream(upstream: &str) -> String {
    if upstream.contains("://") || upstream.starts_with("dns+") || upstream.starts_with("dnssrv+") {
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
    let input: Box<dyn Read> = if path == "-" {
        Box::new(io::stdin().lock())
    } else {
        let file = File::open(path).map_err(|source| RunError::Open {
            path: path.to_owned(),
            source,
        })?;
        Box::new(file)
    };
    gunzip_if_gzip(input).map_err(|source| RunError::Open {
        path: path.to_owned(),
        source,
    })
}

/// The gzip magic bytes (RFC 1952).
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// `input`, decompressed as it is read when it starts with the gzip magic bytes (whatever the
/// file is named: `x.prom.gz`, or a compressed stream on stdin), else as it is. Exposition text
/// never starts with these bytes (0x8b is not valid UTF-8 after 0x1f).
fn gunzip_if_gzip(mut input: Box<dyn Read>) -> io::Result<Box<dyn Read>> {
    let mut head = [0u8; 2];
    let mut n = 0;
    while n < head.len() {
        match input.read(&mut head[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let whole = io::Cursor::new(head[..n].to_vec()).chain(input);
    if head[..n] == GZIP_MAGIC {
        Ok(Box::new(GzipErrors(flate2::read::MultiGzDecoder::new(
            whole,
        ))))
    } else {
        Ok(Box::new(whole))
    }
}

/// Says `gzip:` in front of a decoding error, so a corrupt or truncated file reads as such.
struct GzipErrors<R>(R);

impl<R: Read> Read for GzipErrors<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0
            .read(buf)
            .map_err(|e| io::Error::new(e.kind(), format!("gzip: {e}")))
    }
}

/// The input of `--file` was larger than `--max-body-size`.
#[derive(Debug, thiserror::Error)]
#[error("input larger than the limit of {0} bytes (--max-body-size)")]
struct InputTooLarge(u64);

/// A reader that yields at most `limit` bytes and then fails with [`InputTooLarge`] if the
/// input has more: memory and time stay bounded even on endless stdin.
struct Capped<R> {
    inner: R,
    left: u64,
    limit: u64,
}

impl<R: Read> Capped<R> {
    fn new(inner: R, limit: u64) -> Self {
        Self {
            inner,
            left: limit,
            limit,
        }
    }
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        if self.left == 0 {
            // One byte more tells an input of exactly the limit from a bigger one.
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(io::Error::other(InputTooLarge(self.limit))),
            };
        }
        let max = usize::try_from(self.left)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let n = self.inner.read(&mut buf[..max])?;
        self.left -= n as u64;
        Ok(n)
    }
}

/// The error of reading `--file` input: [`RunError::TooLarge`] when the limit stopped it.
fn input_error(path: &str, source: InputError) -> RunError {
    if let InputError::Io(e) = &source {
        if let Some(InputTooLarge(limit)) = e.get_ref().and_then(|e| e.downcast_ref()) {
            return RunError::TooLarge {
                input: input_name(path),
                limit: *limit,
            };
        }
    }
    RunError::Input {
        input: input_name(path),
        source,
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
    /// The input is larger than `--max-body-size`; reading stopped at the limit.
    #[error("{input}: input larger than the limit of {limit} bytes (--max-body-size); reading stopped there")]
    TooLarge {
        /// The file, or `<stdin>`.
        input: String,
        /// `--max-body-size`.
        limit: u64,
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
    /// `--file --html`: the input could not be read or profiled, or the page not written.
    #[error("{input}: {source}")]
    Explorer {
        /// The file, or `<stdin>`.
        input: String,
        /// What went wrong.
        source: crate::explorer::ExplorerError,
    },
    /// `--html`'s output file could not be created.
    #[error("{}: {source}", .path.display())]
    CreateOutput {
        /// The path given to `--html`.
        path: PathBuf,
        /// Why it could not be created.
        source: io::Error,
    },
    /// Writing the report of `--file` failed.
    #[error("writing report: {0}")]
    WriteReport(#[source] io::Error),
    /// Writing the output of `--file --apply` failed.
    #[error("writing output: {0}")]
    WriteOutput(#[source] io::Error),
}

/// `--file PATH`: prints the cardinality report to `out`; reads at most `max_body` bytes
/// (`--max-body-size`).
pub fn run_analyze(
    path: &str,
    opts: ParseOptions,
    max_body: u64,
    out: &mut dyn Write,
) -> Result<(), RunError> {
    let input = Capped::new(open_input(path)?, max_body);
    let mut analyzer = Analyzer::new();
    let bytes = read_all(input, opts, &mut analyzer).map_err(|source| input_error(path, source))?;
    analyzer.add_bytes(bytes);
    out.write_all(analyzer.report().as_bytes())
        .map_err(RunError::WriteReport)
}

/// `--file PATH --html OUT`: writes the explorer page of the input to `html` (the profile,
/// and the what-if of dropping each label computed by the pipeline; see
/// [`crate::explorer::write_html`]), then a summary line to `summary`. Reads at most
/// `limits.max_body` bytes; a partly written page is left behind only when writing it failed.
pub fn run_html(
    path: &str,
    html: &std::path::Path,
    limits: &ApplyLimits,
    summary: &mut dyn Write,
) -> Result<(), RunError> {
    use crate::explorer::{write_html, HtmlOptions, WhatIfOptions};
    let input = open_input(path)?;
    let opts = HtmlOptions {
        source: input_name(path),
        what_if: WhatIfOptions {
            parse: limits.parse.clone(),
            max_body_bytes: limits.max_body,
            ..WhatIfOptions::default()
        },
        ..HtmlOptions::default()
    };
    // The page is built whole before the file is created, so a bad input leaves no file.
    let mut page = Vec::new();
    let written = write_html(input, &opts, &mut page).map_err(|source| RunError::Explorer {
        input: input_name(path),
        source,
    })?;
    std::fs::write(html, &page).map_err(|source| RunError::CreateOutput {
        path: html.to_path_buf(),
        source,
    })?;
    let _ = writeln!(
        summary,
        "wrote {}: {} series, {} metrics, {} label drops precomputed{}, {} bytes",
        html.display(),
        written.series,
        written.metrics,
        written.labels,
        if written.skipped > 0 {
            format!(" ({} labels not precomputed)", written.skipped)
        } else {
            String::new()
        },
        written.bytes
    );
    Ok(())
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
    /// Most input bytes (`--max-body-size`).
    pub max_body: u64,
    /// Threads that read one regular file at once (`--threads`; 0: every core the process may
    /// use, at most 8; at most one per 4 MiB; see [`crate::pipeline::parallel`]). The result does not depend on it.
    pub threads: usize,
}

impl Default for ApplyLimits {
    /// No label, sample or size limit; the parser's default line limit.
    fn default() -> Self {
        Self {
            parse: ParseOptions::default(),
            labels: LabelLimits::UNLIMITED,
            sample_limit: 0,
            max_body: u64::MAX,
            threads: 0,
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
    let applied = apply_file(path, config, subset, limits)?;
    // Written as it is rendered: the output is never held whole.
    let mut w = BufWriter::with_capacity(RENDER_CHUNK, out);
    applied
        .parts
        .render_to(applied.index, &mut w, &render_options())
        .and_then(|_| w.flush())
        .map_err(RunError::WriteOutput)?;
    let _ = writeln!(summary, "{}", applied.summary);
    Ok(())
}

/// `--file PATH --relabel... [--subset NAME]` without `--apply`: prints the cardinality report
/// of the relabeled, summed output (the default list, or `subset`) to `out`, so a config can be
/// judged by what it leaves; the `--apply` summary line goes to `summary`.
pub fn run_analyze_relabeled(
    path: &str,
    config: &Config,
    subset: Option<&str>,
    limits: &ApplyLimits,
    out: &mut dyn Write,
    summary: &mut dyn Write,
) -> Result<(), RunError> {
    let applied = apply_file(path, config, subset, limits)?;
    let hint = applied.parts.aggregators(applied.index);
    let mut text = Vec::with_capacity(hint.map(Aggregator::render_size_hint).sum());
    applied
        .parts
        .render(applied.index, &mut text, &render_options());
    let mut analyzer = Analyzer::new();
    let parse = ParseOptions {
        // The output's lines are the input's, relabeled; a longer one cannot be refused now.
        max_line_len: usize::MAX,
        ..limits.parse.clone()
    };
    let bytes = read_all(&text[..], parse, &mut analyzer).map_err(|source| RunError::Input {
        input: format!("{} (relabeled)", input_name(path)),
        source,
    })?;
    analyzer.add_bytes(bytes);
    out.write_all(analyzer.report().as_bytes())
        .map_err(RunError::WriteReport)?;
    let list = subset.map_or_else(
        || "the default list".to_owned(),
        |s| format!("subset {s:?}"),
    );
    let _ = writeln!(
        summary,
        "report of the relabeled output of {list}; {}",
        applied.summary
    );
    Ok(())
}

/// A file relabeled and summed: the pipeline (in parts when read in parallel), which of its
/// lists to write, and the summary line.
struct Applied {
    parts: Parts,
    index: usize,
    summary: String,
}

/// How `--file --apply` renders: one "now" for every part (combined samples without a
/// timestamp are not older than it).
fn render_options() -> RenderOptions {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    RenderOptions {
        now_ms: Some(now),
        ..RenderOptions::default()
    }
}

/// Runs `config` over the file at `path` with several threads ([`crate::pipeline::parallel`])
/// when that may pay: a regular, uncompressed file of at least
/// [`MIN_PARALLEL_BYTES`](crate::pipeline::parallel::MIN_PARALLEL_BYTES) within
/// `--max-body-size`, in a format whose state a split can carry, and more than one thread.
/// `None`: read it in one pass, which gives the same result (and reports any error in it).
fn apply_parallel(path: &str, config: &Config, limits: &ApplyLimits) -> Option<Parts> {
    use crate::exposition::Format;
    use crate::pipeline::parallel::{
        self, threads_for, ParallelOptions, Source as _, MIN_PARALLEL_BYTES, MIN_RANGE_BYTES,
    };
    let threads = threads_for(limits.threads);
    if threads < 2
        || path == "-"
        || limits.parse.format == Format::OpenMetrics
        || limits.parse.interrupt.is_some()
    {
        return None;
    }
    let file = File::open(path).ok()?;
    let len = file.metadata().ok().filter(|m| m.is_file())?.len();
    if len < MIN_PARALLEL_BYTES || len > limits.max_body {
        return None;
    }
    let threads = threads.min(usize::try_from(len / MIN_RANGE_BYTES).unwrap_or(usize::MAX));
    let mut head = [0u8; 2];
    if file.read_at(&mut head, 0).ok()? < 2 || head == GZIP_MAGIC {
        return None;
    }
    let opts = ParallelOptions {
        threads,
        parse: limits.parse.clone(),
        labels: limits.labels,
    };
    match parallel::apply(&file, config, &opts) {
        Ok(parts) => {
            let parts_n = parts.pipelines().len();
            tracing::debug!(threads, parts = parts_n, "read in parallel");
            Some(parts)
        }
        Err(why) => {
            tracing::debug!(%why, threads, "parallel read gave way to one pass");
            None
        }
    }
}

/// Runs `config` over the file at `path`; the caller renders the default list, or `subset`.
fn apply_file(
    path: &str,
    config: &Config,
    subset: Option<&str>,
    limits: &ApplyLimits,
) -> Result<Applied, RunError> {
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
    let parts = match apply_parallel(path, config, limits) {
        Some(parts) => parts,
        None => {
            let one_pass = |defer: bool| -> Result<Pipeline, RunError> {
                let input = Capped::new(open_input(path)?, limits.max_body);
                let mut pipeline = Pipeline::new(config).with_label_limits(limits.labels);
                if defer {
                    pipeline.defer_repeat_check();
                }
                read_all(input, limits.parse.clone(), &mut pipeline)
                    .map_err(|source| input_error(path, source))?;
                Ok(pipeline)
            };
            // A file (not stdin) can be read again, so repeated series are looked for at the
            // end; in the rare input that has one, it is read again checking every series.
            let mut pipeline = one_pass(path != "-")?;
            if !pipeline.check_repeats() {
                tracing::debug!("a repeated series: reading the input again");
                pipeline = one_pass(false)?;
            }
            Parts::from(pipeline)
        }
    };
    let samples = parts.samples();
    let series_out = parts.series_count(index);
    check_sample_limit(series_out, limits.sample_limit).map_err(|source| {
        RunError::SampleLimit {
            input: input_name(path),
            source,
        }
    })?;
    let st = parts.stats(index);
    let series_out = series_out as u64;
    let ratio = if series_out == 0 {
        0.0
    } else {
        samples as f64 / series_out as f64
    };
    let summary = format!(
        "series in: {samples}, series out: {series_out}, dropped by relabel: {}, dropped without name: {}, dropped with empty label name: {}, summed: {}, reduction: {ratio:.1}x",
        parts.dropped_by_relabel(index), st.dropped_nameless, st.dropped_invalid, st.samples_merged
    );
    Ok(Applied {
        parts,
        index,
        summary,
    })
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
        assert_eq!(d.listen_address.to_string(), "::");
    }

    #[test]
    fn dns_server_port_defaults_to_53() {
        for (given, want) in [
            ("127.0.0.1", "127.0.0.1:53"),
            ("127.0.0.1:5353", "127.0.0.1:5353"),
            ("::1", "[::1]:53"),
            ("[::1]", "[::1]:53"),
            ("[fd00::10]:5353", "[fd00::10]:5353"),
        ] {
            let a = Args::try_parse_from(["metric-gate", "--dns-server", given]).unwrap();
            assert_eq!(a.dns_server.unwrap().to_string(), want, "{given}");
        }
        let e = Args::try_parse_from(["metric-gate", "--dns-server", "kube-dns"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("expected IP or IP:PORT"), "{e}");
    }

    #[test]
    fn fan_out_flags() {
        let d = Args::try_parse_from(["metric-gate"]).unwrap();
        let c = d.server_config().unwrap();
        assert_eq!(c.upstream.ip_family, IpFamily::Auto);
        assert!(!c.upstream.require_all);
        let a = Args::try_parse_from([
            "metric-gate",
            "--dns.ip-family",
            "both",
            "--fan-out.require-all",
        ])
        .unwrap();
        let c = a.server_config().unwrap();
        assert_eq!(c.upstream.ip_family, IpFamily::Both);
        assert!(c.upstream.require_all);
        let e = Args::try_parse_from(["metric-gate", "--dns.ip-family", "dual"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("expected one of auto, ipv4, ipv6, both"), "{e}");
    }

    #[test]
    fn zero_scrape_timeout_is_refused() {
        for zero in ["0s", "0", "0ms"] {
            let e = Args::try_parse_from(["metric-gate", "-t", zero])
                .unwrap_err()
                .to_string();
            assert!(e.contains("must be above zero"), "{zero}: {e}");
        }
        let a = Args::try_parse_from(["metric-gate", "-t", "1ms"]).unwrap();
        assert_eq!(a.scrape_timeout, Duration::from_millis(1));
    }

    #[test]
    fn relabel_values_may_start_with_a_hyphen() {
        let yaml = "---\nmetric_relabel_configs:\n- action: labeldrop\n  regex: path\n";
        let a = Args::try_parse_from(["metric-gate", "--relabel", yaml]).unwrap();
        assert_eq!(a.relabel.as_deref(), Some(yaml));
        assert!(a.relabel_config().is_ok());
        let eq = Args::try_parse_from(["metric-gate", &format!("--relabel={yaml}")]).unwrap();
        assert_eq!(eq.relabel.as_deref(), Some(yaml));
    }

    #[test]
    fn dns_upstreams_need_a_scheme() {
        let a = Args::try_parse_from(["metric-gate", "-H", "dns+localhost:9100/metrics"]).unwrap();
        let e = a.server_config().unwrap_err().to_string();
        assert!(
            e.contains("dns+ needs a scheme: dns+http://localhost:9100/metrics"),
            "{e}"
        );
    }

    #[test]
    fn short_help_is_grouped_and_long_help_is_complete() {
        use clap::CommandFactory as _;
        let mut cmd = Args::command();
        let short = cmd.render_help().to_string();
        let long = cmd.render_long_help().to_string();
        for heading in [
            HELP_OFFLINE,
            HELP_RELABEL,
            HELP_SERVER,
            HELP_UPSTREAM,
            HELP_TLS,
        ] {
            assert!(short.contains(&format!("{heading}:")), "{heading}\n{short}");
        }
        assert!(short.lines().count() < 45, "{short}");
        assert!(!short.contains("--label-name-length-limit"), "{short}");
        for arg in cmd.get_arguments() {
            if let Some(l) = arg.get_long() {
                assert!(long.contains(&format!("--{l}")), "--{l} not in --help");
            }
            // Every flag is filed under a mode (the built-in help and version flags aside).
            if !matches!(arg.get_id().as_str(), "help" | "version" | "log_level") {
                assert!(
                    arg.get_help_heading().is_some(),
                    "{} has no heading",
                    arg.get_id()
                );
            }
        }
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
    fn write_timeout_and_staleness_window_flags() {
        assert_eq!(RESPONSE_WRITE_TIMEOUT_TEXT.as_str(), "60s");
        assert_eq!(STALENESS_WINDOW_TEXT.as_str(), "300s");
        let d = Args::try_parse_from(["metric-gate"]).unwrap();
        let c = d.server_config().unwrap();
        assert_eq!(
            c.listener.response_write_timeout,
            DEFAULT_RESPONSE_WRITE_TIMEOUT
        );
        assert_eq!(c.staleness_window, DEFAULT_STALENESS_WINDOW);
        let a = Args::try_parse_from([
            "metric-gate",
            "--web.response-write-timeout",
            "5s",
            "--staleness-window",
            "1m30s",
        ])
        .unwrap();
        let c = a.server_config().unwrap();
        assert_eq!(c.listener.response_write_timeout, Duration::from_secs(5));
        assert_eq!(c.staleness_window, Duration::from_secs(90));
        for bad in ["0s", "soon"] {
            assert!(Args::try_parse_from(["metric-gate", "--staleness-window", bad]).is_err());
        }
    }

    #[test]
    fn capped_input_stops_at_the_limit() {
        let read = |input: &[u8], limit: u64| {
            let mut out = Vec::new();
            Capped::new(input, limit)
                .read_to_end(&mut out)
                .map(|_| out)
                .map_err(|e| e.to_string())
        };
        assert_eq!(read(b"abc", 3), Ok(b"abc".to_vec()));
        assert_eq!(read(b"abc", 10), Ok(b"abc".to_vec()));
        assert_eq!(
            read(b"abcd", 3),
            Err("input larger than the limit of 3 bytes (--max-body-size)".into())
        );
        let e = input_error("-", InputError::Io(io::Error::other(InputTooLarge(3))));
        assert_eq!(
            e.to_string(),
            "<stdin>: input larger than the limit of 3 bytes (--max-body-size); reading stopped there"
        );
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
        // Left for UpstreamSpec::parse to explain.
        assert_eq!(normalize_upstream("dns+svc:1/m"), "dns+svc:1/m");
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
