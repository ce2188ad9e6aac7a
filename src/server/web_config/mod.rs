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
//!
//! The parts: `schema` (the YAML types and the header checks), `tls` (the rustls server
//! config), `rate_limit` (the request token bucket), `watcher` (reloading on change); basic
//! auth is `server::basic_auth`.

mod rate_limit;
mod schema;
mod tls;
mod watcher;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::http::{HeaderName, HeaderValue};

pub use rate_limit::RateLimiter;
pub use watcher::WebConfigWatcher;

use super::basic_auth::BasicAuth;
use schema::FileConfig;

/// A web config file that could not be loaded: the file and what is wrong, naming the field.
#[derive(Debug, thiserror::Error)]
#[error("--web.config.file {path}: {msg}")]
pub struct WebConfigError {
    path: String,
    msg: String,
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
        let file = FileConfig::parse(text)?;
        let mut files = vec![path.to_path_buf()];
        let tls = match &file.tls_server_config {
            Some(t) => tls::tls_config(t, dir, &mut files)?.map(Arc::new),
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
            Some(h) => schema::response_headers(h)?,
            None => Vec::new(),
        };
        let rate_limit = match &file.rate_limit {
            Some(r) => rate_limit::rate_limiter(r)?.map(Arc::new),
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
