//! `--remote-write.config-file`: where and how to push.
//!
//! ```yaml
//! interval: 15s                 # metric-gate: how often to scrape the upstream and push
//! external_labels:              # Prometheus' global.external_labels: added to every series
//!   replica: a
//! remote_write:                 # Prometheus' remote_write section, field for field
//! - url: http://mimir:8080/api/v1/push
//!   name: mimir
//!   headers: {X-Scope-OrgID: team-a}
//!   basic_auth: {username: u, password_file: /etc/secret/pw}
//!   queue_config: {capacity: 10000, max_samples_per_send: 2000}
//!   write_relabel_configs:
//!   - {action: drop, source_labels: [__name__], regex: go_.*}
//!   subset: requests            # metric-gate: which relabel list to push (default list when absent)
//!   metric_name_escaping: none  # metric-gate: send non-legacy names unescaped to a 1.0 endpoint
//! ```
//!
//! Field names, defaults and checks are Prometheus' own (`config/config.go` and the common
//! HTTP client config), so a pasted `remote_write` section loads. Prometheus keys metric-gate
//! does not implement (sharding, cloud auth, `send_exemplars`, ...) are accepted and reported in
//! [`RemoteWriteConfig::warnings`]; any other key, and any invalid value, is an error naming
//! the endpoint (`remote_write[1] (name "mimir")`, or its URL when unnamed) and the field.
//! Relative file paths are relative to the configuration file's directory, as in Prometheus.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use http::header::{HeaderName, HeaderValue};
use http::uri::{Scheme, Uri};
use serde_yaml_ng::{Mapping, Value};

use super::convert::NameEscaping;
use super::wire::{Protocol, PROTO_V1, PROTO_V2};
use crate::relabel::{Program, RelabelConfig};
use crate::units::parse_go_duration;

/// Headers a user may not set: the remote-write protocol's own and hop-by-hop ones
/// (Prometheus' list; `Authorization` is refused separately, with a pointer to the auth fields).
pub const RESERVED_HEADERS: [&str; 17] = [
    "host",
    "content-encoding",
    "content-length",
    "content-type",
    "user-agent",
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "www-authenticate",
    "accept-encoding",
    "x-prometheus-remote-write-version",
    "x-prometheus-remote-read-version",
    "x-amz-date",
    "x-amz-security-token",
    "x-amz-content-sha256",
    "retry-attempt",
];

/// The default push interval.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(15);

/// The whole file, validated.
#[derive(Debug, Clone)]
pub struct RemoteWriteConfig {
    /// How often metric-gate scrapes its upstream and pushes (`interval`, default 15 s).
    pub interval: Duration,
    /// `external_labels`, sorted by name; empty values are left out.
    pub external_labels: Vec<(String, String)>,
    /// The endpoints, in file order.
    pub endpoints: Vec<EndpointConfig>,
    /// Accepted Prometheus keys that metric-gate ignores, one message each, to log at load.
    pub warnings: Vec<String>,
}

/// One `remote_write` entry.
#[derive(Debug, Clone)]
pub struct EndpointConfig {
    /// Position in the list (0-based), for messages.
    pub index: usize,
    /// `name`, empty when not set.
    pub name: String,
    /// `url`.
    pub url: Uri,
    /// `remote_timeout` (default 30 s): the limit of one HTTP request.
    pub remote_timeout: Duration,
    /// `headers`, none of them reserved.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// `basic_auth`, `authorization` (or the older `bearer_token`, `bearer_token_file`).
    pub auth: Option<Auth>,
    /// `tls_config`.
    pub tls: TlsConfig,
    /// `proxy_url`: requests go through this HTTP proxy (with `CONNECT`).
    pub proxy_url: Option<Uri>,
    /// `protobuf_message`: the version to start with (default 1.0).
    pub protocol: Protocol,
    /// `queue_config`.
    pub queue: QueueConfig,
    /// `metadata_config`.
    pub metadata: MetadataConfig,
    /// `write_relabel_configs`, compiled.
    pub write_relabel: Program,
    /// metric-gate's `subset`: the relabel list whose output is pushed; `None` is the default list.
    pub subset: Option<String>,
    /// metric-gate's `metric_name_escaping`: `underscores` (default) or `none`; applies to
    /// 1.0 requests only, 2.0 carries UTF-8 names.
    pub name_escaping: NameEscaping,
}

impl EndpointConfig {
    /// The `endpoint` label of self-metrics and logs: the name, or the URL when unnamed.
    pub fn label(&self) -> String {
        if self.name.is_empty() {
            self.url.to_string()
        } else {
            self.name.clone()
        }
    }
}

/// A credential given inline or read from a file on every request.
#[derive(Clone, PartialEq, Eq)]
pub enum Secret {
    /// Given in the configuration.
    Inline(String),
    /// Read from this file on every request (trimmed), so a rotated file is picked up.
    File(PathBuf),
}

impl fmt::Debug for Secret {
    // Never print a credential.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Secret::Inline(_) => f.write_str("Inline(<secret>)"),
            Secret::File(p) => write!(f, "File({})", p.display()),
        }
    }
}

/// How requests are authorized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Auth {
    /// `basic_auth`.
    Basic {
        /// `username` or `username_file`.
        username: Secret,
        /// `password` or `password_file` (may be empty, as in Prometheus).
        password: Option<Secret>,
    },
    /// `authorization` (`type` default `Bearer`), or `bearer_token(_file)`.
    Authorization {
        /// The scheme word.
        kind: String,
        /// `credentials` or `credentials_file`.
        credentials: Option<Secret>,
    },
}

/// `tls_config`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsConfig {
    /// `ca_file`: replaces the system roots.
    pub ca_file: Option<PathBuf>,
    /// `cert_file`: client certificate (with `key_file`).
    pub cert_file: Option<PathBuf>,
    /// `key_file`.
    pub key_file: Option<PathBuf>,
    /// `server_name`: the name the server's certificate must carry (default: the URL's host).
    pub server_name: Option<String>,
    /// `insecure_skip_verify`.
    pub insecure_skip_verify: bool,
}

/// `queue_config`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueConfig {
    /// Samples the queue holds (default 10000).
    pub capacity: usize,
    /// Most samples in one request (default 2000).
    pub max_samples_per_send: usize,
    /// How long a partial batch of forwarded data waits for more (default 5 s).
    pub batch_send_deadline: Duration,
    /// First retry delay (default 30 ms).
    pub min_backoff: Duration,
    /// Longest retry delay (default 5 s).
    pub max_backoff: Duration,
    /// Retry 429 answers (default false).
    pub retry_on_http_429: bool,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            capacity: 10_000,
            max_samples_per_send: 2000,
            batch_send_deadline: Duration::from_secs(5),
            min_backoff: Duration::from_millis(30),
            max_backoff: Duration::from_secs(5),
            retry_on_http_429: false,
        }
    }
}

/// `metadata_config`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MetadataConfig {
    /// Send metadata at all (default true).
    pub send: bool,
    /// 1.0: resend every family's metadata this often (default 1 m), and after a change.
    pub send_interval: Duration,
    /// 1.0: most metadata entries in one request (default 2000).
    pub max_samples_per_send: usize,
}

impl Default for MetadataConfig {
    fn default() -> Self {
        MetadataConfig {
            send: true,
            send_interval: Duration::from_secs(60),
            max_samples_per_send: 2000,
        }
    }
}

/// A configuration that cannot be used; the message names the file, endpoint and field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

/// Where in the file a value is, for messages: `remote_write[0] (name "a"): queue_config.capacity`.
#[derive(Clone)]
struct At {
    endpoint: String,
    path: String,
}

impl At {
    fn field(&self, key: &str) -> At {
        At {
            endpoint: self.endpoint.clone(),
            path: if self.path.is_empty() {
                key.to_owned()
            } else {
                format!("{}.{key}", self.path)
            },
        }
    }

    fn err(&self, msg: impl fmt::Display) -> String {
        match (self.endpoint.is_empty(), self.path.is_empty()) {
            (true, true) => msg.to_string(),
            (true, false) => format!("{}: {msg}", self.path),
            (false, true) => format!("{}: {msg}", self.endpoint),
            (false, false) => format!("{}: {}: {msg}", self.endpoint, self.path),
        }
    }
}

type Res<T> = Result<T, String>;

fn string(v: &Value, at: &At) -> Res<String> {
    match v {
        Value::String(s) => Ok(s.clone()),
        // YAML reads `password: 1234` as a number; Go's YAML decoder takes it as text.
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        Value::Null => Ok(String::new()),
        _ => Err(at.err("expected a string")),
    }
}

fn boolean(v: &Value, at: &At) -> Res<bool> {
    match v {
        Value::Bool(b) => Ok(*b),
        Value::Null => Ok(false),
        _ => Err(at.err("expected true or false")),
    }
}

fn positive(v: &Value, at: &At) -> Res<usize> {
    match v.as_u64().and_then(|n| usize::try_from(n).ok()) {
        Some(n) if n > 0 => Ok(n),
        _ => Err(at.err(format!("must be a positive integer, got {}", value_text(v)))),
    }
}

fn duration(v: &Value, at: &At) -> Res<Duration> {
    let text = string(v, at)?;
    parse_go_duration(&text).map_err(|e| at.err(e))
}

fn path(v: &Value, at: &At, base: Option<&Path>) -> Res<Option<PathBuf>> {
    let s = string(v, at)?;
    if s.is_empty() {
        return Ok(None);
    }
    let p = PathBuf::from(s);
    Ok(Some(match base {
        Some(dir) if p.is_relative() => dir.join(p),
        _ => p,
    }))
}

fn value_text(v: &Value) -> String {
    serde_yaml_ng::to_string(v)
        .map(|s| s.trim_end().to_owned())
        .unwrap_or_else(|_| "?".into())
}

fn mapping<'v>(v: &'v Value, at: &At) -> Res<Option<&'v Mapping>> {
    match v {
        Value::Mapping(m) => Ok(Some(m)),
        Value::Null => Ok(None),
        _ => Err(at.err("expected a map")),
    }
}

/// Iterates a map's string keys with their values; a non-string key is an error.
fn entries<'v>(m: &'v Mapping, at: &At) -> Res<Vec<(&'v str, &'v Value)>> {
    m.iter()
        .map(|(k, v)| match k {
            Value::String(s) => Ok((s.as_str(), v)),
            other => Err(at.err(format!("key {} is not a string", value_text(other)))),
        })
        .collect()
}

/// Prometheus keys metric-gate accepts and ignores, per section.
const IGNORED_ENDPOINT: &[&str] = &[
    "send_exemplars",
    "send_native_histograms",
    "round_robin_dns",
    "failed_request_logging",
    "sigv4",
    "azuread",
    "google_iam",
    "oauth2",
    "follow_redirects",
    "enable_http2",
    "no_proxy",
    "proxy_from_environment",
    "proxy_connect_header",
    "http_headers",
];
const IGNORED_QUEUE: &[&str] = &["max_shards", "min_shards", "sample_age_limit"];
const IGNORED_TLS: &[&str] = &[
    "ca",
    "cert",
    "key",
    "ca_ref",
    "cert_ref",
    "key_ref",
    "min_version",
    "max_version",
];
const IGNORED_BASIC: &[&str] = &["username_ref", "password_ref"];
const IGNORED_AUTHZ: &[&str] = &["credentials_ref"];

fn unknown(at: &At, key: &str, known: &[&str]) -> String {
    at.field(key)
        .err(format!("unknown field (known: {})", known.join(", ")))
}

fn ignored(warnings: &mut Vec<String>, at: &At, key: &str) {
    warnings.push(at.field(key).err(
        "accepted for compatibility with Prometheus, but not implemented by metric-gate: ignored",
    ));
}

impl RemoteWriteConfig {
    /// Reads and validates the file at `path` (relative paths in it are relative to its
    /// directory).
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError(format!("{}: {e}", path.display())))?;
        Self::from_yaml(&text, &path.display().to_string(), path.parent())
    }

    /// Parses and validates a document. `origin` prefixes every message; `base` resolves
    /// relative file paths.
    pub fn from_yaml(text: &str, origin: &str, base: Option<&Path>) -> Result<Self, ConfigError> {
        let fail = |m: String| ConfigError(format!("{origin}: {m}"));
        let doc: Value = serde_yaml_ng::from_str(text).map_err(|e| fail(e.to_string()))?;
        let top = At {
            endpoint: String::new(),
            path: String::new(),
        };
        let mut cfg = RemoteWriteConfig {
            interval: DEFAULT_INTERVAL,
            external_labels: Vec::new(),
            endpoints: Vec::new(),
            warnings: Vec::new(),
        };
        let Some(map) = mapping(&doc, &top).map_err(fail)? else {
            return Err(fail(
                "the file is empty: expected a remote_write list".into(),
            ));
        };
        let mut list = None;
        for (key, v) in entries(map, &top).map_err(fail)? {
            let at = top.field(key);
            match key {
                "interval" => {
                    cfg.interval = duration(v, &at).map_err(fail)?;
                    if cfg.interval.is_zero() {
                        return Err(fail(at.err("must be greater than 0")));
                    }
                }
                "external_labels" => {
                    cfg.external_labels = external_labels(v, &at).map_err(fail)?;
                }
                "remote_write" => list = Some(v),
                other => {
                    return Err(fail(unknown(
                        &top,
                        other,
                        &["remote_write", "external_labels", "interval"],
                    )))
                }
            }
        }
        let items = match list {
            Some(Value::Sequence(items)) => items,
            Some(Value::Null) | None => {
                return Err(fail("no remote_write endpoints configured".into()))
            }
            Some(_) => return Err(fail(top.field("remote_write").err("expected a list"))),
        };
        for (i, item) in items.iter().enumerate() {
            let ep = endpoint(i, item, base, &mut cfg.warnings).map_err(fail)?;
            cfg.endpoints.push(ep);
        }
        if cfg.endpoints.is_empty() {
            return Err(fail("no remote_write endpoints configured".into()));
        }
        for (i, a) in cfg.endpoints.iter().enumerate() {
            if let Some(b) = cfg.endpoints[..i].iter().find(|b| b.label() == a.label()) {
                let what = if a.name.is_empty() {
                    "have the same url; give them distinct names"
                } else {
                    "have the same name"
                };
                return Err(fail(format!(
                    "remote_write[{}] and remote_write[{}] {what} ({:?})",
                    b.index,
                    a.index,
                    a.label()
                )));
            }
        }
        Ok(cfg)
    }

    /// Checks that every endpoint's `subset` names a list of the relabel configuration.
    pub fn check_subsets(&self, relabel: &crate::relabel::Config) -> Result<(), ConfigError> {
        self.check_lists(|s| relabel.subsets.iter().any(|(name, _)| name == s))
    }

    /// Checks that every endpoint's `subset` is a list for which `exists` is true (a reload
    /// checks against the subset names of the relabel configuration it swaps in).
    pub fn check_lists(&self, exists: impl Fn(&str) -> bool) -> Result<(), ConfigError> {
        for ep in &self.endpoints {
            if let Some(s) = &ep.subset {
                if !exists(s) {
                    return Err(ConfigError(format!(
                        "{}: subset: no relabel list named {s:?}",
                        endpoint_name(ep.index, &ep.name, &ep.url.to_string())
                    )));
                }
            }
        }
        Ok(())
    }
}

fn external_labels(v: &Value, at: &At) -> Res<Vec<(String, String)>> {
    let mut out = Vec::new();
    if let Some(m) = mapping(v, at)? {
        for (name, value) in entries(m, at)? {
            let value = string(value, &at.field(name))?;
            if name.is_empty() || name.starts_with("__") {
                return Err(at.err(format!(
                    "{name:?} cannot be an external label name (empty, or reserved with a leading __)"
                )));
            }
            if !value.is_empty() {
                out.push((name.to_owned(), value));
            }
        }
    }
    out.sort();
    Ok(out)
}

fn endpoint_name(i: usize, name: &str, url: &str) -> String {
    if name.is_empty() {
        format!("remote_write[{i}] (url {url})")
    } else {
        format!("remote_write[{i}] (name {name:?})")
    }
}

fn endpoint(
    index: usize,
    item: &Value,
    base: Option<&Path>,
    warnings: &mut Vec<String>,
) -> Res<EndpointConfig> {
    let bare = At {
        endpoint: format!("remote_write[{index}]"),
        path: String::new(),
    };
    let Some(map) = mapping(item, &bare)? else {
        return Err(bare.err("empty or null remote write config section"));
    };
    let fields = entries(map, &bare)?;
    // Name the endpoint in every later message: by name, or by URL when unnamed.
    let find = |k: &str| fields.iter().find(|(n, _)| *n == k).map(|(_, v)| *v);
    let name = find("name")
        .map(|v| string(v, &bare.field("name")))
        .transpose()?
        .unwrap_or_default();
    let url_text = find("url")
        .map(|v| string(v, &bare.field("url")))
        .transpose()?
        .unwrap_or_default();
    let at = At {
        endpoint: endpoint_name(index, &name, &url_text),
        path: String::new(),
    };
    if url_text.is_empty() {
        return Err(at.err("url for remote_write is empty"));
    }
    let url = parse_url(&url_text, &at.field("url"))?;
    let mut ep = EndpointConfig {
        index,
        name,
        url,
        remote_timeout: Duration::from_secs(30),
        headers: Vec::new(),
        auth: None,
        tls: TlsConfig::default(),
        proxy_url: None,
        protocol: Protocol::V1,
        queue: QueueConfig::default(),
        metadata: MetadataConfig::default(),
        write_relabel: Program::default(),
        subset: None,
        name_escaping: NameEscaping::Underscores,
    };
    let mut auths: Vec<&str> = Vec::new();
    let mut bearer: Option<Secret> = None;
    const KNOWN: &[&str] = &[
        "url",
        "name",
        "remote_timeout",
        "headers",
        "basic_auth",
        "authorization",
        "bearer_token",
        "bearer_token_file",
        "tls_config",
        "proxy_url",
        "protobuf_message",
        "queue_config",
        "metadata_config",
        "write_relabel_configs",
        "subset",
        "metric_name_escaping",
    ];
    for (key, v) in fields.iter().copied() {
        let f = at.field(key);
        match key {
            "url" | "name" => {}
            "remote_timeout" => {
                ep.remote_timeout = duration(v, &f)?;
                if ep.remote_timeout.is_zero() {
                    return Err(f.err("must be greater than 0"));
                }
            }
            "headers" => ep.headers = headers(v, &f)?,
            "basic_auth" => {
                if let Some(a) = basic_auth(v, &f, base, warnings)? {
                    auths.push("basic_auth");
                    ep.auth = Some(a);
                }
            }
            "authorization" => {
                if let Some(a) = authorization(v, &f, base, warnings)? {
                    auths.push("authorization");
                    ep.auth = Some(a);
                }
            }
            "bearer_token" => {
                let s = string(v, &f)?;
                if !s.is_empty() {
                    auths.push("bearer_token");
                    bearer = Some(Secret::Inline(s));
                }
            }
            "bearer_token_file" => {
                if let Some(p) = path(v, &f, base)? {
                    auths.push("bearer_token_file");
                    bearer = Some(Secret::File(p));
                }
            }
            "tls_config" => ep.tls = tls_config(v, &f, base, warnings)?,
            "proxy_url" => {
                let s = string(v, &f)?;
                if !s.is_empty() {
                    ep.proxy_url = Some(parse_proxy_url(&s, &f)?);
                }
            }
            "protobuf_message" => {
                ep.protocol = match string(v, &f)?.as_str() {
                    "" | PROTO_V1 => Protocol::V1,
                    PROTO_V2 => Protocol::V2,
                    other => {
                        return Err(f.err(format!(
                            "invalid protobuf_message value {other:?}: expected {PROTO_V1:?} or {PROTO_V2:?}"
                        )))
                    }
                }
            }
            "queue_config" => ep.queue = queue_config(v, &f, warnings)?,
            "metadata_config" => ep.metadata = metadata_config(v, &f)?,
            "write_relabel_configs" => ep.write_relabel = write_relabel(v, &f)?,
            "subset" => {
                let s = string(v, &f)?;
                ep.subset = (!s.is_empty() && s != crate::relabel::DEFAULT_LIST).then_some(s);
            }
            "metric_name_escaping" => {
                ep.name_escaping = match string(v, &f)?.as_str() {
                    "underscores" => NameEscaping::Underscores,
                    "none" => NameEscaping::None,
                    other => {
                        return Err(f.err(format!(
                            "{other:?} is not a name escaping: use underscores (the default) or none"
                        )))
                    }
                }
            }
            k if IGNORED_ENDPOINT.contains(&k) => ignored(warnings, &at, k),
            other => return Err(unknown(&at, other, KNOWN)),
        }
    }
    if auths.len() > 1 {
        return Err(at.err(format!(
            "at most one of basic_auth, authorization, bearer_token and bearer_token_file may be configured; configured: {}",
            auths.join(", ")
        )));
    }
    if let Some(token) = bearer {
        ep.auth = Some(Auth::Authorization {
            kind: "Bearer".into(),
            credentials: Some(token),
        });
    }
    Ok(ep)
}

fn parse_url(text: &str, at: &At) -> Res<Uri> {
    let uri: Uri = text
        .parse()
        .map_err(|e| at.err(format!("invalid URL {text:?}: {e}")))?;
    match uri.scheme() {
        Some(s) if *s == Scheme::HTTP || *s == Scheme::HTTPS => {}
        _ => return Err(at.err(format!("{text:?}: the scheme must be http or https"))),
    }
    let Some(authority) = uri.authority() else {
        return Err(at.err(format!("{text:?}: no host in the URL")));
    };
    if authority.as_str().contains('@') {
        return Err(at.err("user info in the URL is not supported: use basic_auth"));
    }
    if authority.host().is_empty() {
        return Err(at.err(format!("{text:?}: no host in the URL")));
    }
    Ok(uri)
}

fn parse_proxy_url(text: &str, at: &At) -> Res<Uri> {
    let uri = parse_url(text, at)?;
    if uri.scheme() != Some(&Scheme::HTTP) {
        return Err(at.err("only http:// proxies are supported"));
    }
    Ok(uri)
}

fn headers(v: &Value, at: &At) -> Res<Vec<(HeaderName, HeaderValue)>> {
    let mut out = Vec::new();
    let Some(m) = mapping(v, at)? else {
        return Ok(out);
    };
    for (name, value) in entries(m, at)? {
        let f = at.field(name);
        let lower = name.to_ascii_lowercase();
        if lower == "authorization" {
            return Err(f.err(
                "authorization header must be changed via the basic_auth or authorization parameter",
            ));
        }
        if RESERVED_HEADERS.contains(&lower.as_str()) {
            return Err(f.err(format!(
                "{name} is a reserved header. It must not be changed"
            )));
        }
        let hn = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| f.err("not a valid HTTP header name"))?;
        let hv = HeaderValue::from_str(&string(value, &f)?)
            .map_err(|_| f.err("the value contains characters not allowed in an HTTP header"))?;
        out.push((hn, hv));
    }
    Ok(out)
}

fn basic_auth(
    v: &Value,
    at: &At,
    base: Option<&Path>,
    warnings: &mut Vec<String>,
) -> Res<Option<Auth>> {
    let Some(m) = mapping(v, at)? else {
        return Ok(None);
    };
    let (mut user, mut user_file, mut pw, mut pw_file) = (None, None, None, None);
    for (key, v) in entries(m, at)? {
        let f = at.field(key);
        match key {
            "username" => user = Some(string(v, &f)?).filter(|s| !s.is_empty()),
            "username_file" => user_file = path(v, &f, base)?,
            "password" => pw = Some(string(v, &f)?).filter(|s| !s.is_empty()),
            "password_file" => pw_file = path(v, &f, base)?,
            k if IGNORED_BASIC.contains(&k) => ignored(warnings, at, k),
            other => {
                return Err(unknown(
                    at,
                    other,
                    &["username", "username_file", "password", "password_file"],
                ))
            }
        }
    }
    let username = match (user, user_file) {
        (Some(_), Some(_)) => {
            return Err(at.err("at most one of username and username_file must be configured"))
        }
        (Some(u), None) => Secret::Inline(u),
        (None, Some(p)) => Secret::File(p),
        (None, None) => Secret::Inline(String::new()),
    };
    let password = match (pw, pw_file) {
        (Some(_), Some(_)) => {
            return Err(at.err("at most one of password and password_file must be configured"))
        }
        (Some(p), None) => Some(Secret::Inline(p)),
        (None, Some(p)) => Some(Secret::File(p)),
        (None, None) => None,
    };
    Ok(Some(Auth::Basic { username, password }))
}

fn authorization(
    v: &Value,
    at: &At,
    base: Option<&Path>,
    warnings: &mut Vec<String>,
) -> Res<Option<Auth>> {
    let Some(m) = mapping(v, at)? else {
        return Ok(None);
    };
    let (mut kind, mut cred, mut cred_file) = (String::new(), None, None);
    for (key, v) in entries(m, at)? {
        let f = at.field(key);
        match key {
            "type" => kind = string(v, &f)?,
            "credentials" => cred = Some(string(v, &f)?).filter(|s| !s.is_empty()),
            "credentials_file" => cred_file = path(v, &f, base)?,
            k if IGNORED_AUTHZ.contains(&k) => ignored(warnings, at, k),
            other => {
                return Err(unknown(
                    at,
                    other,
                    &["type", "credentials", "credentials_file"],
                ))
            }
        }
    }
    if kind.trim().is_empty() {
        kind = "Bearer".into();
    }
    if kind.eq_ignore_ascii_case("basic") {
        return Err(at
            .field("type")
            .err("authorization type cannot be set to \"basic\", use \"basic_auth\" instead"));
    }
    if HeaderValue::from_str(&kind).is_err() || kind.contains(' ') {
        return Err(at.field("type").err("not a valid authorization scheme"));
    }
    let credentials = match (cred, cred_file) {
        (Some(_), Some(_)) => {
            return Err(at.err("at most one of credentials and credentials_file must be configured"))
        }
        (Some(c), None) => Some(Secret::Inline(c)),
        (None, Some(p)) => Some(Secret::File(p)),
        (None, None) => None,
    };
    Ok(Some(Auth::Authorization { kind, credentials }))
}

fn tls_config(
    v: &Value,
    at: &At,
    base: Option<&Path>,
    warnings: &mut Vec<String>,
) -> Res<TlsConfig> {
    let mut t = TlsConfig::default();
    let Some(m) = mapping(v, at)? else {
        return Ok(t);
    };
    for (key, v) in entries(m, at)? {
        let f = at.field(key);
        match key {
            "ca_file" => t.ca_file = path(v, &f, base)?,
            "cert_file" => t.cert_file = path(v, &f, base)?,
            "key_file" => t.key_file = path(v, &f, base)?,
            "server_name" => t.server_name = Some(string(v, &f)?).filter(|s| !s.is_empty()),
            "insecure_skip_verify" => t.insecure_skip_verify = boolean(v, &f)?,
            k if IGNORED_TLS.contains(&k) => ignored(warnings, at, k),
            other => {
                return Err(unknown(
                    at,
                    other,
                    &[
                        "ca_file",
                        "cert_file",
                        "key_file",
                        "server_name",
                        "insecure_skip_verify",
                    ],
                ))
            }
        }
    }
    if t.cert_file.is_some() != t.key_file.is_some() {
        return Err(at.err("cert_file and key_file must be configured together"));
    }
    Ok(t)
}

fn queue_config(v: &Value, at: &At, warnings: &mut Vec<String>) -> Res<QueueConfig> {
    let mut q = QueueConfig::default();
    let Some(m) = mapping(v, at)? else {
        return Ok(q);
    };
    for (key, v) in entries(m, at)? {
        let f = at.field(key);
        match key {
            "capacity" => q.capacity = positive(v, &f)?,
            "max_samples_per_send" => q.max_samples_per_send = positive(v, &f)?,
            "batch_send_deadline" => q.batch_send_deadline = duration(v, &f)?,
            "min_backoff" => q.min_backoff = duration(v, &f)?,
            "max_backoff" => q.max_backoff = duration(v, &f)?,
            "retry_on_http_429" => q.retry_on_http_429 = boolean(v, &f)?,
            k if IGNORED_QUEUE.contains(&k) => ignored(warnings, at, k),
            other => {
                return Err(unknown(
                    at,
                    other,
                    &[
                        "capacity",
                        "max_samples_per_send",
                        "batch_send_deadline",
                        "min_backoff",
                        "max_backoff",
                        "retry_on_http_429",
                    ],
                ))
            }
        }
    }
    if q.max_backoff < q.min_backoff {
        return Err(at.err("max_backoff must not be less than min_backoff"));
    }
    Ok(q)
}

fn metadata_config(v: &Value, at: &At) -> Res<MetadataConfig> {
    let mut md = MetadataConfig::default();
    let Some(m) = mapping(v, at)? else {
        return Ok(md);
    };
    for (key, v) in entries(m, at)? {
        let f = at.field(key);
        match key {
            "send" => md.send = boolean(v, &f)?,
            "send_interval" => {
                md.send_interval = duration(v, &f)?;
                if md.send_interval.is_zero() {
                    return Err(f.err("must be greater than 0"));
                }
            }
            "max_samples_per_send" => md.max_samples_per_send = positive(v, &f)?,
            other => {
                return Err(unknown(
                    at,
                    other,
                    &["send", "send_interval", "max_samples_per_send"],
                ))
            }
        }
    }
    Ok(md)
}

fn write_relabel(v: &Value, at: &At) -> Res<Program> {
    if v.is_null() {
        return Ok(Program::default());
    }
    if let Value::Sequence(items) = v {
        if let Some(i) = items.iter().position(Value::is_null) {
            return Err(at.err(format!(
                "[{i}]: empty or null relabeling rule in remote write config"
            )));
        }
    }
    // Through YAML text so scalars read as the relabel loader reads them (`regex: 200`).
    let text = serde_yaml_ng::to_string(v).map_err(|e| at.err(e))?;
    let rules: Vec<RelabelConfig> = serde_yaml_ng::from_str(&text).map_err(|e| at.err(e))?;
    let endpoint = At {
        endpoint: at.endpoint.clone(),
        path: String::new(),
    };
    Program::compile("write_relabel_configs", &rules).map_err(|e| endpoint.err(e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<RemoteWriteConfig, String> {
        RemoteWriteConfig::from_yaml(text, "rw.yaml", Some(Path::new("/etc/mg"))).map_err(|e| e.0)
    }

    #[test]
    fn defaults_are_prometheus_defaults() {
        let c = load("remote_write:\n- url: http://localhost:9090/api/v1/write\n").unwrap();
        assert_eq!(c.interval, Duration::from_secs(15));
        assert!(c.warnings.is_empty() && c.external_labels.is_empty());
        let e = &c.endpoints[0];
        assert_eq!(e.remote_timeout, Duration::from_secs(30));
        assert_eq!(e.protocol, Protocol::V1);
        assert_eq!(e.queue, QueueConfig::default());
        assert_eq!(e.queue.capacity, 10_000);
        assert_eq!(e.queue.max_samples_per_send, 2000);
        assert_eq!(e.queue.batch_send_deadline, Duration::from_secs(5));
        assert_eq!(e.queue.min_backoff, Duration::from_millis(30));
        assert_eq!(e.queue.max_backoff, Duration::from_secs(5));
        assert!(!e.queue.retry_on_http_429);
        assert!(e.metadata.send);
        assert_eq!(e.metadata.send_interval, Duration::from_secs(60));
        assert_eq!(e.label(), "http://localhost:9090/api/v1/write");
        assert_eq!(e.name_escaping, NameEscaping::Underscores);
        assert!(e.write_relabel.is_empty() && e.subset.is_none() && e.auth.is_none());
    }

    #[test]
    fn a_full_prometheus_section_loads() {
        let c = load(
            r#"
interval: 30s
external_labels: {replica: a, cluster: eu, empty: ""}
remote_write:
- url: https://mimir.example/api/v1/push
  name: mimir
  remote_timeout: 10s
  headers: {X-Scope-OrgID: team-a}
  basic_auth: {username: u, password_file: secrets/pw}
  tls_config: {ca_file: ca.pem, server_name: mimir.internal, insecure_skip_verify: false}
  proxy_url: http://proxy:3128
  protobuf_message: io.prometheus.write.v2.Request
  queue_config: {capacity: 500, max_samples_per_send: 100, batch_send_deadline: 1s,
                 min_backoff: 10ms, max_backoff: 1s, retry_on_http_429: true,
                 max_shards: 50, min_shards: 1}
  metadata_config: {send: false, send_interval: 2m}
  write_relabel_configs:
  - {action: labeldrop, regex: path}
  - {source_labels: [code], regex: 200, target_label: ok, replacement: 1}
  send_exemplars: true
  sigv4: {region: eu-west-1}
  subset: requests
  metric_name_escaping: none
- url: http://vm:8428/api/v1/write
  authorization: {credentials_file: /run/token}
"#,
        )
        .unwrap();
        assert_eq!(c.interval, Duration::from_secs(30));
        assert_eq!(
            c.external_labels,
            [
                ("cluster".into(), "eu".into()),
                ("replica".into(), "a".into())
            ]
        );
        let e = &c.endpoints[0];
        assert_eq!(e.label(), "mimir");
        assert_eq!(e.protocol, Protocol::V2);
        assert_eq!(e.headers[0].0.as_str(), "x-scope-orgid");
        assert_eq!(
            e.auth,
            Some(Auth::Basic {
                username: Secret::Inline("u".into()),
                password: Some(Secret::File("/etc/mg/secrets/pw".into()))
            })
        );
        assert_eq!(e.tls.ca_file.as_deref(), Some(Path::new("/etc/mg/ca.pem")));
        assert_eq!(e.tls.server_name.as_deref(), Some("mimir.internal"));
        assert_eq!(
            e.proxy_url.as_ref().unwrap().to_string(),
            "http://proxy:3128/"
        );
        assert_eq!(e.queue.capacity, 500);
        assert!(e.queue.retry_on_http_429);
        assert!(!e.metadata.send);
        assert_eq!(e.write_relabel.len(), 2);
        assert_eq!(e.subset.as_deref(), Some("requests"));
        assert_eq!(e.name_escaping, NameEscaping::None);
        assert_eq!(c.warnings.len(), 4, "{:?}", c.warnings);
        assert!(c.warnings.iter().any(|w| w
            == "remote_write[0] (name \"mimir\"): queue_config.max_shards: accepted for compatibility with Prometheus, but not implemented by metric-gate: ignored"));
        assert!(c.warnings.iter().any(|w| w.contains(": sigv4: ")));
        assert_eq!(
            c.endpoints[1].auth,
            Some(Auth::Authorization {
                kind: "Bearer".into(),
                credentials: Some(Secret::File("/run/token".into()))
            })
        );
    }

    #[test]
    fn errors_name_the_endpoint_and_field() {
        let cases = [
            (
                "remote_write:\n- url: http://a/\n  queue_config: {capacity: 0}\n",
                "rw.yaml: remote_write[0] (url http://a/): queue_config.capacity: must be a positive integer, got 0",
            ),
            (
                "remote_write:\n- url: http://a/\n  name: x\n  queue_config: {capasity: 5}\n",
                "rw.yaml: remote_write[0] (name \"x\"): queue_config.capasity: unknown field",
            ),
            (
                "remote_write:\n- url: http://a/\n  frobnicate: 1\n",
                "rw.yaml: remote_write[0] (url http://a/): frobnicate: unknown field",
            ),
            (
                "remote_write:\n- url: http://a/\n  remote_timeout: soon\n",
                "rw.yaml: remote_write[0] (url http://a/): remote_timeout: invalid duration \"soon\"",
            ),
            (
                "remote_write:\n- url: http://a/\n  headers: {User-Agent: x}\n",
                "rw.yaml: remote_write[0] (url http://a/): headers.User-Agent: User-Agent is a reserved header. It must not be changed",
            ),
            (
                "remote_write:\n- url: http://a/\n  headers: {authorization: x}\n",
                "headers.authorization: authorization header must be changed via the basic_auth or authorization parameter",
            ),
            (
                "remote_write:\n- url: http://a/\n  headers: {X-Prometheus-Remote-Write-Version: 9}\n",
                "is a reserved header",
            ),
            (
                "remote_write:\n- url: http://a/\n  protobuf_message: foo\n",
                "protobuf_message: invalid protobuf_message value \"foo\"",
            ),
            (
                "remote_write:\n- url: http://a/\n  queue_config: {min_backoff: 2s, max_backoff: 1s}\n",
                "queue_config: max_backoff must not be less than min_backoff",
            ),
            (
                "remote_write:\n- url: ftp://a/\n",
                "rw.yaml: remote_write[0] (url ftp://a/): url: \"ftp://a/\": the scheme must be http or https",
            ),
            ("remote_write:\n- name: a\n", "rw.yaml: remote_write[0] (name \"a\"): url for remote_write is empty"),
            (
                "remote_write:\n- url: http://a/\n  basic_auth: {username: u}\n  authorization: {credentials: t}\n",
                "at most one of basic_auth, authorization",
            ),
            (
                "remote_write:\n- url: http://a/\n  authorization: {type: Basic}\n",
                "authorization.type: authorization type cannot be set to \"basic\"",
            ),
            (
                "remote_write:\n- url: http://a/\n  basic_auth: {password: a, password_file: b}\n",
                "basic_auth: at most one of password and password_file",
            ),
            (
                "remote_write:\n- url: http://a/\n  tls_config: {cert_file: c.pem}\n",
                "tls_config: cert_file and key_file must be configured together",
            ),
            (
                "remote_write:\n- url: http://a/\n  write_relabel_configs:\n  - action: hashmod\n    target_label: x\n",
                "rw.yaml: remote_write[0] (url http://a/): write_relabel_configs[0] (action hashmod): relabel configuration for hashmod requires non-zero modulus",
            ),
            (
                "remote_write:\n- url: http://a/\n  write_relabel_configs:\n  - action: keep\n    regexp: x\n",
                "write_relabel_configs: ",
            ),
            (
                "remote_write:\n- url: http://a/\n  metric_name_escaping: dots\n",
                "metric_name_escaping: \"dots\" is not a name escaping",
            ),
            (
                "remote_write:\n- url: http://a/\n- url: http://a/\n",
                "remote_write[0] and remote_write[1] have the same url",
            ),
            ("interval: 0s\nremote_write:\n- url: http://a/\n", "interval: must be greater than 0"),
            ("remote_write: []\n", "no remote_write endpoints configured"),
            ("global: {}\nremote_write:\n- url: http://a/\n", "global: unknown field"),
            ("external_labels: {__name__: x}\nremote_write:\n- url: http://a/\n", "cannot be an external label name"),
            ("remote_write:\n- url: http://u:p@a/\n", "user info in the URL is not supported"),
            ("remote_write:\n- url: http://a/\n  proxy_url: https://p/\n", "proxy_url: only http:// proxies"),
            ("remote_write:\n- ~\n", "remote_write[0]: empty or null remote write config section"),
        ];
        for (text, want) in cases {
            let e = load(text).unwrap_err();
            assert!(e.contains(want), "{text}\n got: {e}\nwant: {want}");
        }
    }

    #[test]
    fn subsets_must_exist() {
        let c = load("remote_write:\n- url: http://a/\n  subset: nope\n").unwrap();
        let relabel = crate::relabel::Config::from_yaml(
            "metric_relabel_configs: []\nrequests: []\n",
            "r.yaml",
        )
        .unwrap();
        let e = c.check_subsets(&relabel).unwrap_err();
        assert_eq!(
            e.0,
            "remote_write[0] (url http://a/): subset: no relabel list named \"nope\""
        );
        let ok = load("remote_write:\n- url: http://a/\n  subset: requests\n").unwrap();
        assert!(ok.check_subsets(&relabel).is_ok());
    }
}
