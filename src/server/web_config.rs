//! `--web.config.file`: TLS, client certificates, basic auth, response headers and a request
//! rate limit, in the file format of the Prometheus exporter toolkit, so a file written for
//! node_exporter and friends works here unchanged.
//!
//! The file is checked whole at startup (an invalid file stops the process with an error naming
//! the file and the field). While serving, [`WebConfigWatcher`] looks at the modification time,
//! size and inode of the file and of every file it names before each new connection, and loads
//! the new version when one changed, so rotated certificates (Kubernetes rewrites mounted
//! secrets in place) are picked up without a restart. A new version that does not load is
//! logged and counted, and the last good version stays in force.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use axum::http::{HeaderName, HeaderValue};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::server::WebPkiClientVerifier;
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};
use serde::Deserialize;

use super::basic_auth::BasicAuth;
use super::metrics::SelfMetrics;
use crate::units::parse_go_duration;

/// A web config file that could not be loaded: the file and what is wrong, naming the field.
#[derive(Debug, thiserror::Error)]
#[error("--web.config.file {path}: {msg}")]
pub struct WebConfigError {
    path: String,
    msg: String,
}

/// The file as written. Every level refuses unknown fields, as the toolkit does.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    tls_server_config: Option<TlsFile>,
    http_server_config: Option<HttpFile>,
    basic_auth_users: Option<BTreeMap<String, String>>,
    rate_limit: Option<RateLimitFile>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct TlsFile {
    cert: Option<String>,
    key: Option<String>,
    client_ca: Option<String>,
    cert_file: Option<String>,
    key_file: Option<String>,
    client_auth_type: Option<String>,
    client_ca_file: Option<String>,
    client_allowed_sans: Option<Vec<String>>,
    min_version: Option<String>,
    max_version: Option<String>,
    cipher_suites: Option<Vec<String>>,
    prefer_server_cipher_suites: Option<bool>,
    curve_preferences: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct HttpFile {
    /// Accepted for compatibility; metric-gate speaks HTTP/1.1 only.
    #[allow(dead_code)]
    http2: Option<bool>,
    headers: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RateLimitFile {
    interval: Option<String>,
    burst: Option<u32>,
}

/// A loaded web config: what the listener applies to each connection and request.
#[derive(Debug, Default)]
pub struct WebConfig {
    /// TLS settings; `None` serves plain HTTP.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Basic auth users; `None` lets every request through.
    pub auth: Option<Arc<BasicAuth>>,
    /// Headers added to every response (`http_server_config.headers`).
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// `rate_limit`: per authenticated user with basic auth, else over all requests (see
    /// [`RateLimiter`]); `None` is unlimited.
    pub rate_limit: Option<Arc<RateLimiter>>,
    /// Files whose change makes the watcher load the config again (the file itself first).
    files: Vec<PathBuf>,
}

/// Empty strings mean "not set", as in the toolkit.
fn set(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|s| !s.is_empty())
}

impl WebConfig {
    /// Reads and checks `path`; relative paths inside are relative to the file's directory.
    pub fn load(path: &Path) -> Result<Self, WebConfigError> {
        let err = |msg: String| WebConfigError {
            path: path.display().to_string(),
            msg,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        Self::from_yaml(&text, dir, path).map_err(err)
    }

    fn from_yaml(text: &str, dir: &Path, path: &Path) -> Result<Self, String> {
        // An empty file (or only comments) is an empty config: plain HTTP, no auth.
        let file: FileConfig = if text.trim().is_empty() {
            FileConfig::default()
        } else {
            serde_yaml_ng::from_str::<Option<FileConfig>>(text)
                .map_err(|e| e.to_string())?
                .unwrap_or_default()
        };
        let mut files = vec![path.to_path_buf()];
        let tls = match &file.tls_server_config {
            Some(t) => tls_config(t, dir, &mut files)?.map(Arc::new),
            None => None,
        };
        let auth = match &file.basic_auth_users {
            Some(users) if !users.is_empty() => Some(Arc::new(BasicAuth::new(users)?)),
            _ => None,
        };
        let headers = match file
            .http_server_config
            .as_ref()
            .and_then(|h| h.headers.as_ref())
        {
            Some(h) => response_headers(h)?,
            None => Vec::new(),
        };
        let rate_limit = match &file.rate_limit {
            Some(r) => rate_limiter(r)?.map(Arc::new),
            None => None,
        };
        Ok(Self {
            tls,
            auth,
            headers,
            rate_limit,
            files,
        })
    }
}

/// Headers the toolkit allows, with their allowed values (`None`: any value).
const ALLOWED_HEADERS: &[(&str, Option<&[&str]>)] = &[
    ("Strict-Transport-Security", None),
    ("X-Content-Type-Options", Some(&["nosniff"])),
    ("X-Frame-Options", Some(&["deny", "sameorigin"])),
    ("X-XSS-Protection", None),
    ("Content-Security-Policy", None),
];

fn response_headers(
    h: &BTreeMap<String, String>,
) -> Result<Vec<(HeaderName, HeaderValue)>, String> {
    let mut out = Vec::new();
    for (name, value) in h {
        let field = format!("http_server_config.headers.{name}");
        let Some((_, allowed)) = ALLOWED_HEADERS.iter().find(|(n, _)| n == name) else {
            let names: Vec<&str> = ALLOWED_HEADERS.iter().map(|(n, _)| *n).collect();
            return Err(format!(
                "{field}: this header can not be set; allowed: {}",
                names.join(", ")
            ));
        };
        if value.is_empty() {
            continue;
        }
        if let Some(values) = allowed {
            if !values.contains(&value.as_str()) {
                return Err(format!(
                    "{field}: invalid value {value:?}, expected one of {values:?}"
                ));
            }
        }
        let n = HeaderName::from_bytes(name.as_bytes()).map_err(|e| format!("{field}: {e}"))?;
        let v = HeaderValue::from_str(value).map_err(|e| format!("{field}: {e}"))?;
        out.push((n, v));
    }
    Ok(out)
}

fn rate_limiter(r: &RateLimitFile) -> Result<Option<RateLimiter>, String> {
    let interval = match set(&r.interval) {
        Some(s) => parse_go_duration(s).map_err(|e| format!("rate_limit.interval: {e}"))?,
        None => Duration::ZERO,
    };
    if interval.is_zero() {
        return Ok(None);
    }
    let burst = r.burst.unwrap_or(0);
    if burst == 0 {
        return Err("rate_limit.burst: must be at least 1 when rate_limit.interval is set".into());
    }
    Ok(Some(RateLimiter::new(interval, burst)))
}

/// Token buckets: one token every `interval`, at most `burst` saved up. With basic auth, each
/// authenticated user has a bucket of its own and requests that fail authentication take no
/// token (so a flood without credentials cannot use up Prometheus' requests); without basic
/// auth, one bucket counts every request, as in the exporter toolkit. The buckets are at most
/// one per configured user, plus the shared one.
#[derive(Debug)]
pub struct RateLimiter {
    interval: Duration,
    burst: f64,
    /// Per user (`None`: every request, without basic auth): tokens available and when they
    /// were counted.
    buckets: Mutex<std::collections::HashMap<Option<String>, (f64, std::time::Instant)>>,
}

impl RateLimiter {
    fn new(interval: Duration, burst: u32) -> Self {
        Self {
            interval,
            burst: f64::from(burst),
            buckets: Mutex::new(std::collections::HashMap::new()),
        }
    }

    /// Takes a token from `user`'s bucket (`None`: the shared one) if one is available.
    pub fn allow(&self, user: Option<&str>) -> bool {
        let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
        let now = std::time::Instant::now();
        let s = buckets
            .entry(user.map(str::to_owned))
            .or_insert((self.burst, now));
        let refill = now.duration_since(s.1).as_secs_f64() / self.interval.as_secs_f64();
        s.0 = (s.0 + refill).min(self.burst);
        s.1 = now;
        if s.0 >= 1.0 {
            s.0 -= 1.0;
            true
        } else {
            false
        }
    }
}

/// How the server asks for client certificates (`client_auth_type`, Go's `tls.ClientAuthType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClientAuth {
    /// Never asks.
    No,
    /// Asks; any certificate or none is accepted, nothing is verified.
    Request,
    /// Asks and requires one; it is not verified.
    RequireAny,
    /// Asks; one that is sent must chain to the client CA.
    VerifyIfGiven,
    /// Requires one that chains to the client CA.
    RequireAndVerify,
}

fn client_auth(s: Option<&str>) -> Result<ClientAuth, String> {
    Ok(match s.unwrap_or("") {
        "" | "NoClientCert" => ClientAuth::No,
        "RequestClientCert" => ClientAuth::Request,
        // `RequireClientCert` is the toolkit's older spelling.
        "RequireAnyClientCert" | "RequireClientCert" => ClientAuth::RequireAny,
        "VerifyClientCertIfGiven" => ClientAuth::VerifyIfGiven,
        "RequireAndVerifyClientCert" => ClientAuth::RequireAndVerify,
        other => {
            return Err(format!(
                "tls_server_config.client_auth_type: invalid value {other:?}; expected NoClientCert, RequestClientCert, RequireAnyClientCert, VerifyClientCertIfGiven or RequireAndVerifyClientCert"
            ))
        }
    })
}

fn tls_version(field: &str, v: &str) -> Result<&'static rustls::SupportedProtocolVersion, String> {
    match v {
        "TLS12" => Ok(&rustls::version::TLS12),
        "TLS13" => Ok(&rustls::version::TLS13),
        "TLS10" | "TLS11" => Err(format!(
            "tls_server_config.{field}: {v} is not supported (TLS12 or TLS13)"
        )),
        _ => Err(format!(
            "tls_server_config.{field}: invalid value {v:?}; expected TLS12 or TLS13"
        )),
    }
}

/// PEM text from the inline field or the file field (exactly one may be set).
fn pem_source(
    inline: Option<&str>,
    file: Option<&str>,
    inline_name: &str,
    file_name: &str,
    dir: &Path,
    files: &mut Vec<PathBuf>,
) -> Result<Option<(String, Vec<u8>)>, String> {
    match (inline, file) {
        (Some(_), Some(_)) => Err(format!(
            "tls_server_config: set only one of {inline_name} and {file_name}"
        )),
        (Some(text), None) => Ok(Some((
            format!("tls_server_config.{inline_name}"),
            text.as_bytes().to_vec(),
        ))),
        (None, Some(f)) => {
            let p = dir.join(f);
            files.push(p.clone());
            let field = format!("tls_server_config.{file_name} {}", p.display());
            let bytes = std::fs::read(&p).map_err(|e| format!("{field}: {e}"))?;
            Ok(Some((field, bytes)))
        }
        (None, None) => Ok(None),
    }
}

fn certificates(field: &str, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{field}: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{field}: no PEM certificate found"));
    }
    Ok(certs)
}

/// Builds the rustls server config, or `None` when the section sets nothing TLS-related.
fn tls_config(
    t: &TlsFile,
    dir: &Path,
    files: &mut Vec<PathBuf>,
) -> Result<Option<rustls::ServerConfig>, String> {
    let enabled = [
        &t.cert,
        &t.key,
        &t.client_ca,
        &t.cert_file,
        &t.key_file,
        &t.client_ca_file,
        &t.client_auth_type,
    ]
    .iter()
    .any(|f| set(f).is_some());
    if !enabled {
        return Ok(None);
    }
    if t.client_allowed_sans
        .as_ref()
        .is_some_and(|s| !s.is_empty())
    {
        return Err("tls_server_config.client_allowed_sans: not supported by metric-gate; give the allowed clients their own client CA instead".into());
    }
    // Settings first, files after: a typo is reported before a missing file.
    let auth = client_auth(set(&t.client_auth_type))?;
    let min = tls_version("min_version", set(&t.min_version).unwrap_or("TLS12"))?;
    let max = tls_version("max_version", set(&t.max_version).unwrap_or("TLS13"))?;
    let cert = pem_source(
        set(&t.cert),
        set(&t.cert_file),
        "cert",
        "cert_file",
        dir,
        files,
    )?
    .ok_or("tls_server_config: missing one of cert or cert_file")?;
    let key = pem_source(set(&t.key), set(&t.key_file), "key", "key_file", dir, files)?
        .ok_or("tls_server_config: missing one of key or key_file")?;
    let ca = pem_source(
        set(&t.client_ca),
        set(&t.client_ca_file),
        "client_ca",
        "client_ca_file",
        dir,
        files,
    )?;
    let certs = certificates(&cert.0, &cert.1)?;
    let key_der = PrivateKeyDer::from_pem_slice(&key.1).map_err(|e| format!("{}: {e}", key.0))?;

    let mut provider = rustls::crypto::ring::default_provider();
    if let Some(names) = t.cipher_suites.as_ref().filter(|c| !c.is_empty()) {
        provider.cipher_suites = cipher_suites(&provider, names)?;
    }
    if let Some(names) = t.curve_preferences.as_ref().filter(|c| !c.is_empty()) {
        provider.kx_groups = curves(&provider, names)?;
    }
    let provider = Arc::new(provider);

    let versions: Vec<&'static rustls::SupportedProtocolVersion> =
        [&rustls::version::TLS12, &rustls::version::TLS13]
            .into_iter()
            .filter(|v| u16::from(v.version) >= u16::from(min.version))
            .filter(|v| u16::from(v.version) <= u16::from(max.version))
            .collect();
    if versions.is_empty() {
        return Err("tls_server_config: min_version is above max_version".into());
    }

    let verifier: Arc<dyn ClientCertVerifier> = match (auth, ca) {
        (ClientAuth::No, Some(_)) => {
            return Err("tls_server_config: client CA's have been configured without a client_auth_type (use RequireAndVerifyClientCert)".into())
        }
        (ClientAuth::No, None) => WebPkiClientVerifier::no_client_auth(),
        (ClientAuth::Request | ClientAuth::RequireAny, _) => Arc::new(AnyClientCert {
            mandatory: auth == ClientAuth::RequireAny,
            algorithms: provider.signature_verification_algorithms,
        }),
        (ClientAuth::VerifyIfGiven | ClientAuth::RequireAndVerify, None) => {
            return Err(format!(
                "tls_server_config.client_auth_type: {} needs client_ca_file (or client_ca)",
                set(&t.client_auth_type).unwrap_or_default()
            ))
        }
        (ClientAuth::VerifyIfGiven | ClientAuth::RequireAndVerify, Some((field, pem))) => {
            let mut roots = RootCertStore::empty();
            for c in certificates(&field, &pem)? {
                roots.add(c).map_err(|e| format!("{field}: {e}"))?;
            }
            let mut b =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider));
            if auth == ClientAuth::VerifyIfGiven {
                b = b.allow_unauthenticated();
            }
            b.build().map_err(|e| format!("{field}: {e}"))?
        }
    };

    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(|e| format!("tls_server_config: {e}"))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key_der)
        .map_err(|e| format!("{} and {}: {e}", cert.0, key.0))?;
    // metric-gate serves HTTP/1.1 only (`http_server_config.http2` is accepted and ignored).
    cfg.alpn_protocols = vec![b"http/1.1".to_vec()];
    cfg.ignore_client_order = t.prefer_server_cipher_suites.unwrap_or(true);
    Ok(Some(cfg))
}

/// TLS 1.3 suites always stay (Go does not let them be chosen either); TLS 1.2 suites are the
/// listed ones, in the listed order.
fn cipher_suites(
    provider: &CryptoProvider,
    names: &[String],
) -> Result<Vec<rustls::SupportedCipherSuite>, String> {
    let mut out: Vec<_> = provider
        .cipher_suites
        .iter()
        .filter(|s| s.version() == &rustls::version::TLS13)
        .copied()
        .collect();
    for name in names {
        let found = provider
            .cipher_suites
            .iter()
            .find(|s| s.suite().as_str() == Some(name.as_str()))
            .ok_or_else(|| {
                let known: Vec<&str> = provider
                    .cipher_suites
                    .iter()
                    .filter(|s| s.version() == &rustls::version::TLS12)
                    .filter_map(|s| s.suite().as_str())
                    .collect();
                format!(
                    "tls_server_config.cipher_suites: {name:?} is not supported; supported: {}",
                    known.join(", ")
                )
            })?;
        if found.version() == &rustls::version::TLS12 && !out.contains(found) {
            out.push(*found);
        }
    }
    Ok(out)
}

fn curves(
    provider: &CryptoProvider,
    names: &[String],
) -> Result<Vec<&'static dyn rustls::crypto::SupportedKxGroup>, String> {
    use rustls::NamedGroup;
    let mut out = Vec::new();
    for name in names {
        let group = match name.as_str() {
            "X25519" => NamedGroup::X25519,
            "CurveP256" => NamedGroup::secp256r1,
            "CurveP384" => NamedGroup::secp384r1,
            "CurveP521" => {
                return Err("tls_server_config.curve_preferences: CurveP521 is not supported; use X25519, CurveP256 or CurveP384".into())
            }
            other => {
                return Err(format!(
                "tls_server_config.curve_preferences: unknown curve {other:?}; expected X25519, CurveP256 or CurveP384"
            ))
            }
        };
        if let Some(g) = provider.kx_groups.iter().find(|g| g.name() == group) {
            out.push(*g);
        }
    }
    Ok(out)
}

/// `RequestClientCert` / `RequireAnyClientCert`: asks for a client certificate and checks only
/// that the client holds its key (the handshake signature), not who issued it, as Go does.
#[derive(Debug)]
struct AnyClientCert {
    mandatory: bool,
    algorithms: WebPkiSupportedAlgorithms,
}

impl ClientCertVerifier for AnyClientCert {
    fn client_auth_mandatory(&self) -> bool {
        self.mandatory
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        Ok(ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// What identifies one version of a file: modification time, size and (on Unix) inode, so a
/// rewrite in place and a swapped symlink are both seen.
type FileStamp = Option<(SystemTime, u64, u64)>;

fn stamp(path: &Path) -> FileStamp {
    let m = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let ino = std::os::unix::fs::MetadataExt::ino(&m);
    #[cfg(not(unix))]
    let ino = 0;
    Some((m.modified().ok()?, m.len(), ino))
}

/// The web config in force, loaded again when its file or a file it names changes.
#[derive(Debug)]
pub struct WebConfigWatcher {
    path: PathBuf,
    current: ArcSwap<WebConfig>,
    /// The stamps of the files at the last load attempt, good or bad: a broken version is
    /// tried once, not at every connection.
    last_attempt: Mutex<Vec<FileStamp>>,
}

impl WebConfigWatcher {
    /// Loads `path`; an error here is a startup error.
    pub fn load(path: &Path) -> Result<Self, WebConfigError> {
        // Stamps taken before reading: a change during the read is seen at the next check.
        let cfg = WebConfig::load(path)?;
        let stamps = cfg.files.iter().map(|f| stamp(f)).collect();
        Ok(Self {
            path: path.to_path_buf(),
            current: ArcSwap::from_pointee(cfg),
            last_attempt: Mutex::new(stamps),
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The config in force, without looking for changes.
    pub fn get(&self) -> Arc<WebConfig> {
        self.current.load_full()
    }

    /// The config for a new connection: loads the file again first if it or a file it names
    /// changed since the last attempt. A failed load is logged and counted; the previous
    /// config stays.
    pub fn current(&self, metrics: &SelfMetrics) -> Arc<WebConfig> {
        let cfg = self.current.load_full();
        let mut last = self.last_attempt.lock().unwrap_or_else(|e| e.into_inner());
        let now: Vec<FileStamp> = cfg.files.iter().map(|f| stamp(f)).collect();
        if now == *last {
            return cfg;
        }
        match WebConfig::load(&self.path) {
            Ok(new) => {
                *last = new.files.iter().map(|f| stamp(f)).collect();
                let new = Arc::new(new);
                self.current.store(Arc::clone(&new));
                metrics.web_config_reloaded(true);
                tracing::info!(file = %self.path.display(), "web config reloaded");
                new
            }
            Err(e) => {
                *last = now;
                metrics.web_config_reloaded(false);
                tracing::error!(error = %e, "web config reload failed; keeping the previous one");
                cfg
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<WebConfig, String> {
        WebConfig::from_yaml(text, Path::new("/nonexistent"), Path::new("/x/web.yml"))
    }

    #[test]
    fn empty_file_is_plain_http_without_auth() {
        for text in ["", "# nothing\n", "{}", "tls_server_config: {}\n"] {
            let c = load(text).unwrap();
            assert!(
                c.tls.is_none() && c.auth.is_none() && c.headers.is_empty(),
                "{text:?}"
            );
        }
    }

    #[test]
    fn unknown_fields_are_named() {
        let e = load("tls_server_config:\n  cert_fil: a.crt\n").unwrap_err();
        assert!(e.contains("cert_fil"), "{e}");
        let e = load("basic_auth:\n  a: b\n").unwrap_err();
        assert!(e.contains("basic_auth"), "{e}");
        let e = load("http_server_config:\n  headers:\n    X-Powered-By: me\n").unwrap_err();
        assert!(e.contains("http_server_config.headers.X-Powered-By"), "{e}");
    }

    #[test]
    fn tls_settings_are_checked() {
        let e = load("tls_server_config:\n  key_file: k\n").unwrap_err();
        assert!(e.contains("missing one of cert or cert_file"), "{e}");
        let e = load("tls_server_config:\n  cert_file: c\n  key_file: k\n").unwrap_err();
        assert!(
            e.contains("tls_server_config.cert_file /nonexistent/c"),
            "{e}"
        );
        let e = load("tls_server_config:\n  cert: x\n  cert_file: c\n  key: k\n").unwrap_err();
        assert!(e.contains("only one of cert and cert_file"), "{e}");
        let e = load("tls_server_config:\n  cert: x\n  key: k\n  client_auth_type: Sometimes\n")
            .unwrap_err();
        assert!(e.contains("client_auth_type"), "{e}");
        let e = load("tls_server_config:\n  cert: x\n  key: k\n").unwrap_err();
        assert!(e.contains("tls_server_config.cert"), "{e}");
    }

    #[test]
    fn headers_and_rate_limit() {
        let c = load(
            "http_server_config:\n  http2: false\n  headers:\n    X-Frame-Options: deny\n    Strict-Transport-Security: max-age=31536000\nrate_limit:\n  interval: 1s\n  burst: 2\n",
        )
        .unwrap();
        assert_eq!(c.headers.len(), 2);
        let r = c.rate_limit.unwrap();
        assert!(r.allow(None) && r.allow(None));
        assert!(
            !r.allow(None),
            "third request within the interval is refused"
        );
        // Each user has a bucket of its own.
        assert!(r.allow(Some("a")) && r.allow(Some("a")) && !r.allow(Some("a")));
        assert!(r.allow(Some("b")));
        let e = load("http_server_config:\n  headers:\n    X-Frame-Options: allow\n").unwrap_err();
        assert!(e.contains("X-Frame-Options"), "{e}");
        let c = load("rate_limit:\n  interval: 0s\n  burst: 0\n").unwrap();
        assert!(c.rate_limit.is_none());
    }

    #[test]
    fn bad_bcrypt_hash_names_the_user() {
        let e = load("basic_auth_users:\n  alice: secret\n").unwrap_err();
        assert!(e.contains("basic_auth_users.alice"), "{e}");
    }
}
