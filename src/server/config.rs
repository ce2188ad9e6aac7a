//! The server's configuration as plain values, complete before anything starts: the CLI builds
//! it from its flags, tests build it directly, and every component of the server is built from
//! its part of it. Nothing in the server reads the command line.
//!
//! The files the configuration names are read here, once, before the server starts: the relabel
//! file ([`RelabelConfig::from_file`]) and the web config (loaded into
//! [`ListenerConfig::web`]). A reload reads the relabel file again through the same function.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::limits::LabelLimits;
use crate::relabel::{Config, ConfigError, LoadOptions};
use crate::remote_write::config::ConfigError as RemoteWriteConfigError;
use crate::remote_write::RemoteWriteConfig;
use crate::upstream::{ClientOptions, Deadline, FetchOptions, IpFamily, UpstreamSpec};

use super::web_config::WebConfigWatcher;

/// Everything the server needs, checked and loaded.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// The address to listen on (`--listen-address`, `--port`). `[::]` listens on both
    /// families (IPv4 too, through IPv4-mapped addresses), or on `0.0.0.0` where the host has
    /// no IPv6: see `listener::bind`.
    pub listen: SocketAddr,
    /// How connections are accepted and served.
    pub listener: ListenerConfig,
    /// Where metrics come from and how they are requested.
    pub upstream: UpstreamConfig,
    /// Bounds on what one scrape reads and writes.
    pub limits: ScrapeLimits,
    /// Append per-target health series in fan-out mode (`--no-target-health` turns it off).
    pub target_health: bool,
    /// Scrape once at startup (and retry until one succeeds) so `/-/ready` turns ready and the
    /// subsets are filled before the first Prometheus scrape. The binary does; tests may not.
    pub warm_up: bool,
    /// `--remote-write.*`: push to remote-write endpoints, and receive writes to forward.
    pub remote_write: Option<RemoteWriteSettings>,
    /// `--staleness-window`: the program's one staleness window. What is kept per input (a
    /// target's self-metric series now; families and counter state as the aggregation grows) is
    /// forgotten once its input has not been seen for this long.
    pub staleness_window: Duration,
    /// `--state-file`: where the counter state is kept across restarts (read at start, written
    /// every [`STATE_FILE_INTERVAL`] and at shutdown); `None`: in memory only.
    pub state_file: Option<PathBuf>,
    /// `--threads`: threads that render and gzip-compress one large list at once, and (fan-out)
    /// sum the targets while the counter state is updated (0: every core the process may
    /// use, at most 8).
    pub threads: usize,
}

/// How often the counter state is written to `--state-file` (and once more at shutdown): a
/// crash loses at most this much of what the totals absorbed.
pub const STATE_FILE_INTERVAL: Duration = Duration::from_secs(60);

/// Default `--remote-write.receiver.max-body-size`: VictoriaMetrics' default request limit,
/// far above what a Prometheus sends in one request (2000 samples, some hundred KiB).
pub const DEFAULT_RECEIVER_MAX_BODY: usize = 32 << 20;
/// Default `--remote-write.flush-deadline`.
pub const DEFAULT_FLUSH_DEADLINE: Duration = Duration::from_secs(10);

/// Remote write (`server::push`): the `--remote-write.config-file` loaded and checked, and the
/// receiver's settings.
#[derive(Debug, Clone)]
pub struct RemoteWriteSettings {
    /// The file, read again on every reload.
    pub path: PathBuf,
    /// Its text when it was loaded: a reload that finds the same text keeps the endpoints,
    /// their queues and their series.
    pub text: String,
    /// The configuration parsed from `text`.
    pub config: RemoteWriteConfig,
    /// `--remote-write.receiver`: serve `POST /api/v1/write` and forward what it receives.
    pub receiver: bool,
    /// `--remote-write.receiver.max-body-size`: largest accepted request body, compressed and
    /// decompressed alike.
    pub receiver_max_body: usize,
    /// `--remote-write.flush-deadline`: how long delivering the queues may take at shutdown.
    pub flush_deadline: Duration,
}

impl RemoteWriteSettings {
    /// Reads and checks `path` (every field; the lists the endpoints push are checked against
    /// the relabel configuration when the server starts). The receiver is off and the limits
    /// are the defaults.
    pub fn load(path: &Path) -> Result<Self, RemoteWriteConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| {
            RemoteWriteConfigError(format!(
                "--remote-write.config-file {}: {e}",
                path.display()
            ))
        })?;
        let config =
            RemoteWriteConfig::from_yaml(&text, &path.display().to_string(), path.parent())?;
        Ok(Self {
            path: path.to_path_buf(),
            text,
            config,
            receiver: false,
            receiver_max_body: DEFAULT_RECEIVER_MAX_BODY,
            flush_deadline: DEFAULT_FLUSH_DEADLINE,
        })
    }
}

/// Default `--staleness-window`: Prometheus' own lookback (a series unseen for 5 minutes is
/// gone from queries).
pub const DEFAULT_STALENESS_WINDOW: Duration = Duration::from_secs(5 * 60);

/// Default `--web.max-connections`.
pub const DEFAULT_MAX_CONNECTIONS: usize = 512;
/// Default `--web.header-read-timeout`.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Default `--web.response-write-timeout`: generous for a slow link (a 30 MB body at 1 MB/s),
/// short enough that a client that never reads frees its response within a minute.
pub const DEFAULT_RESPONSE_WRITE_TIMEOUT: Duration = Duration::from_secs(60);

/// How the listener treats connections (`server::listener`).
#[derive(Debug, Clone)]
pub struct ListenerConfig {
    /// `--web.config.file`, loaded.
    pub web: Option<Arc<WebConfigWatcher>>,
    /// `--web.max-connections`: connections open at once.
    pub max_connections: usize,
    /// `--web.header-read-timeout`: bound on reading a request's headers and on the TLS
    /// handshake.
    pub header_read_timeout: Duration,
    /// `--web.response-write-timeout`: bound on writing a response, from when it is ready
    /// (`server::responses`).
    pub response_write_timeout: Duration,
}

impl Default for ListenerConfig {
    /// Plain HTTP without auth, and the default cap and timeout.
    fn default() -> Self {
        Self {
            web: None,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            response_write_timeout: DEFAULT_RESPONSE_WRITE_TIMEOUT,
        }
    }
}

/// The upstream and how to reach it.
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    /// Where metrics come from (`--upstream`).
    pub spec: UpstreamSpec,
    /// The `--upstream.*` TLS and authorization settings.
    pub client: ClientOptions,
    /// `--dns-server`: the DNS server of fan-out upstreams, instead of the system's.
    pub dns_server: Option<SocketAddr>,
    /// `--dns.ip-family`: which addresses of a `dns+` name are targets.
    pub ip_family: IpFamily,
    /// `--fan-out.require-all`: in fan-out mode, answer 502 unless every target answered in
    /// full, instead of the sum of those that did.
    pub require_all: bool,
    /// `-t/--scrape-timeout`: bound on each upstream request (Prometheus' own timeout may
    /// shorten it per request).
    pub scrape_timeout: Duration,
}

/// Bounds on one scrape: what is read from each target and what each list may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScrapeLimits {
    /// `--max-body-size`: largest decoded upstream body.
    pub max_body: u64,
    /// `--max-line-length`: longest upstream line.
    pub max_line: usize,
    /// `--label-limit`, `--label-name-length-limit`, `--label-value-length-limit`.
    pub labels: LabelLimits,
    /// `--sample-limit`: most series one list may write (0: unlimited).
    pub sample_limit: usize,
}

impl ScrapeLimits {
    /// The options of one upstream request that must be done by `deadline`.
    pub fn fetch_options(&self, deadline: Deadline) -> FetchOptions {
        FetchOptions {
            deadline,
            max_body: self.max_body,
            max_line: self.max_line,
        }
    }
}

/// The relabel configuration, parsed and checked, and where it came from.
#[derive(Debug, Clone)]
pub struct RelabelConfig {
    /// The default list and the named subsets.
    pub config: Config,
    /// What a reload can read again.
    pub source: RelabelSource,
}

/// Where a relabel configuration came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RelabelSource {
    /// `--relabel-file`, read again on every reload. `text` is what the configuration was parsed
    /// from: a reload that finds the same text keeps the engine and its caches.
    File {
        /// The file.
        path: PathBuf,
        /// Its contents when it was read.
        text: String,
        /// How it is read (`--metric-name-validation-scheme`, limits), again on reload.
        options: LoadOptions,
    },
    /// Given inline (`--relabel`) or not at all (pass-through): a reload keeps it.
    Fixed,
}

/// The relabel configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum RelabelError {
    /// `--relabel-file` could not be read.
    #[error("--relabel-file {}: {source}", .path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why it could not be read.
        source: std::io::Error,
    },
    /// The configuration is invalid; the message names its origin (the file, or the flag), the
    /// rule and the line where known.
    #[error(transparent)]
    Invalid(#[from] ConfigError),
}

impl RelabelConfig {
    /// Reads and checks a relabel file (`--relabel-file`) under `options`, keeping its text
    /// (and the options) for reloads.
    pub fn from_file(path: &Path, options: &LoadOptions) -> Result<Self, RelabelError> {
        Self::parse_file(path, read_file(path, options)?, options)
    }

    fn parse_file(path: &Path, text: String, options: &LoadOptions) -> Result<Self, RelabelError> {
        let config = Config::load(&text, &path.display().to_string(), options)?;
        Ok(Self {
            config,
            source: RelabelSource::File {
                path: path.to_path_buf(),
                text,
                options: *options,
            },
        })
    }

    /// Parses and checks relabel YAML given inline under `options`; `origin` names it in
    /// errors (the flag).
    pub fn from_text(
        text: &str,
        origin: &str,
        options: &LoadOptions,
    ) -> Result<Self, RelabelError> {
        Ok(Self::fixed(Config::load(text, origin, options)?))
    }

    /// A configuration that a reload keeps as it is.
    pub fn fixed(config: Config) -> Self {
        Self {
            config,
            source: RelabelSource::Fixed,
        }
    }

    /// No relabeling: every series passes unchanged, and there are no subsets.
    pub fn passthrough() -> Self {
        Self::fixed(Config::passthrough())
    }
}

impl RelabelSource {
    /// What a reload finds: the configuration parsed anew when the file's text changed;
    /// `None` when it is unchanged (nothing is parsed then) or when the source is fixed.
    pub fn reread(&self) -> Result<Option<RelabelConfig>, RelabelError> {
        let Self::File {
            path,
            text,
            options,
        } = self
        else {
            return Ok(None);
        };
        let new = read_file(path, options)?;
        if new == *text {
            return Ok(None);
        }
        RelabelConfig::parse_file(path, new, options).map(Some)
    }
}

/// Reads the file, no further than the configuration size limit.
fn read_file(path: &Path, options: &LoadOptions) -> Result<String, RelabelError> {
    crate::relabel::read_file(path, &options.limits).map_err(|source| RelabelError::Read {
        path: path.to_path_buf(),
        source,
    })
}
