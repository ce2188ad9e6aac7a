//! TLS and authorization for upstream requests: the `--upstream.*` flags, named after the
//! fields of a Prometheus scrape config's `tls_config` (`ca_file`, `cert_file`, `key_file`,
//! `server_name`, `insecure_skip_verify`), `authorization` (`credentials_file`, here
//! `--upstream.bearer-token-file`) and `basic_auth` (`username`, `password_file`).
//!
//! # Trust roots
//! Without `--upstream.ca-file`, upstream certificates are verified against the system's trust
//! store (`rustls-native-certs`: `/etc/ssl/certs` and friends, or `SSL_CERT_FILE` /
//! `SSL_CERT_DIR`), not against a list compiled into the binary (`webpki-roots`). The image's
//! `ca-certificates` is what operators already extend and patch; a compiled-in list can neither
//! learn an internal CA nor be updated without a rebuild. In-cluster upstreams are usually
//! signed by a cluster CA that is in neither, which is what `--upstream.ca-file` is for; as in
//! Prometheus, that file then replaces the system roots. The system store is read only when an
//! `https` upstream needs it, so plain `http` setups never touch it.
//!
//! # Credentials are read per request
//! The bearer token and the basic-auth password are read from their files on **every**
//! upstream request (a few hundred bytes; a stat-and-compare would save nothing measurable and
//! could miss a rewrite within one mtime tick). Kubernetes rotates projected service-account
//! tokens by swapping a symlink, so a reader never sees half a file, and the next scrape after a
//! rotation sends the new token. A file that cannot be read (or is empty) fails that request with
//! an error naming the file: sending an old token would hide the problem until it expires.

use std::error::Error as StdError;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::Engine as _;
use http::HeaderValue;
use hyper_rustls::{FixedServerNameResolver, HttpsConnector};
use hyper_util::client::legacy::connect::HttpConnector;
use rustls::pki_types::ServerName;
use rustls::{AlertDescription, CertificateError};

use super::UpstreamSpec;
use crate::tls::pem;
use crate::tls::verify::AcceptAnyCertificate;

/// The `--upstream.*` TLS, authorization and compression flags.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientOptions {
    /// `--upstream.ca-file`: PEM CA bundle that replaces the system roots.
    pub ca_file: Option<PathBuf>,
    /// `--upstream.cert-file`: PEM client certificate chain (with `key_file`).
    pub cert_file: Option<PathBuf>,
    /// `--upstream.key-file`: PEM private key of `cert_file`.
    pub key_file: Option<PathBuf>,
    /// `--upstream.server-name`: the name the upstream's certificate must carry, instead of the
    /// default ([`UpstreamSpec::default_server_name`]).
    pub server_name: Option<String>,
    /// `--upstream.insecure-skip-verify`: accept any upstream certificate.
    pub insecure_skip_verify: bool,
    /// `--upstream.bearer-token-file`: sends `Authorization: Bearer <file contents>`.
    pub bearer_token_file: Option<PathBuf>,
    /// `--upstream.basic-auth-user`: sends basic auth with the password from `basic_auth_password_file`.
    pub basic_auth_user: Option<String>,
    /// `--upstream.basic-auth-password-file`.
    pub basic_auth_password_file: Option<PathBuf>,
    /// `--upstream.compression`: whether scrapes ask for gzip.
    pub compression: super::Compression,
}

impl ClientOptions {
    /// True when any TLS flag is set (they only matter for `https` upstreams).
    pub fn has_tls_settings(&self) -> bool {
        self.ca_file.is_some()
            || self.cert_file.is_some()
            || self.key_file.is_some()
            || self.server_name.is_some()
            || self.insecure_skip_verify
    }

    /// The `Authorization` source, if any flag asks for one.
    pub fn authorization(&self) -> Result<Option<Authorization>, String> {
        match (
            &self.bearer_token_file,
            &self.basic_auth_user,
            &self.basic_auth_password_file,
        ) {
            (None, None, None) => Ok(None),
            (Some(token), None, None) => Ok(Some(Authorization::Bearer {
                token_file: token.clone(),
            })),
            (None, Some(user), Some(password)) => Ok(Some(Authorization::Basic {
                user: user.clone(),
                password_file: password.clone(),
            })),
            (Some(_), _, _) => Err(
                "--upstream.bearer-token-file and --upstream.basic-auth-* cannot be used together"
                    .to_owned(),
            ),
            (None, _, _) => Err(
                "--upstream.basic-auth-user and --upstream.basic-auth-password-file go together"
                    .to_owned(),
            ),
        }
    }
}

/// The contents of the TLS files, read at start and on every reload. A reload compares them
/// with the current ones: unchanged files keep the client and its pooled connections.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct TlsFiles {
    ca: Option<Vec<u8>>,
    cert: Option<Vec<u8>>,
    key: Option<Vec<u8>>,
}

impl fmt::Debug for TlsFiles {
    // Never print key material.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsFiles")
            .field("ca_bytes", &self.ca.as_ref().map(Vec::len))
            .field("cert_bytes", &self.cert.as_ref().map(Vec::len))
            .field("has_key", &self.key.is_some())
            .finish()
    }
}

fn read_file(flag: &str, path: &Path) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("{flag} {}: {e}", path.display()))
}

impl TlsFiles {
    /// Reads the files the options name (none for options without TLS files).
    pub fn read(opts: &ClientOptions) -> Result<Self, String> {
        let read = |flag: &str, p: &Option<PathBuf>| p.as_deref().map(|p| read_file(flag, p));
        Ok(Self {
            ca: read("--upstream.ca-file", &opts.ca_file).transpose()?,
            cert: read("--upstream.cert-file", &opts.cert_file).transpose()?,
            key: read("--upstream.key-file", &opts.key_file).transpose()?,
        })
    }
}

/// `path` for an error message (empty when the flag is not set).
fn display(path: Option<&Path>) -> String {
    path.map(|p| p.display().to_string()).unwrap_or_default()
}

/// The root store for verifying upstream certificates: the CA file, or the system's roots.
fn root_store(opts: &ClientOptions, files: &TlsFiles) -> Result<rustls::RootCertStore, String> {
    if let Some(text) = &files.ca {
        return pem::root_store(text).map_err(|e| {
            format!(
                "--upstream.ca-file {}: {e}",
                display(opts.ca_file.as_deref())
            )
        });
    }
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    for e in &found.errors {
        tracing::warn!(error = %e, "reading the system CA certificates");
    }
    let (added, _ignored) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        return Err(
            "no system CA certificates found to verify the https upstream; install ca-certificates, set SSL_CERT_FILE, or pass --upstream.ca-file"
                .to_owned(),
        );
    }
    tracing::debug!(certificates = added, "loaded the system CA certificates");
    Ok(roots)
}

/// The rustls configuration of upstream connections. `https` says whether the upstream uses
/// TLS at all: an `http` upstream gets an empty trust store and never reads the system's.
pub fn client_config(
    opts: &ClientOptions,
    files: &TlsFiles,
    https: bool,
) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(crate::tls::provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?;
    let builder = if opts.insecure_skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(AcceptAnyCertificate::server(&provider))
    } else if https {
        builder.with_root_certificates(root_store(opts, files)?)
    } else {
        builder.with_root_certificates(rustls::RootCertStore::empty())
    };
    // No ALPN here: hyper-rustls sets it from the HTTP versions enabled (and refuses a preset).
    let config = match (&files.cert, &files.key) {
        (Some(cert), Some(key)) => {
            let chain = pem::certificates(cert).map_err(|e| {
                format!(
                    "--upstream.cert-file {}: {e}",
                    display(opts.cert_file.as_deref())
                )
            })?;
            let key = pem::private_key(key).map_err(|e| {
                format!(
                    "--upstream.key-file {}: {e}",
                    display(opts.key_file.as_deref())
                )
            })?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| format!("--upstream.cert-file/--upstream.key-file: {e}"))?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => {
            return Err(
                "--upstream.cert-file and --upstream.key-file must be given together".to_owned(),
            )
        }
    };
    Ok(config)
}

/// The connector of the upstream client: TCP as before, TLS for `https` targets, verified
/// against `--upstream.server-name` or the spec's default name.
pub fn https_connector(
    opts: &ClientOptions,
    files: &TlsFiles,
    spec: &UpstreamSpec,
    http: HttpConnector,
) -> Result<HttpsConnector<HttpConnector>, String> {
    let config = client_config(opts, files, spec.is_https())?;
    let name = opts
        .server_name
        .clone()
        .unwrap_or_else(|| spec.default_server_name());
    let server_name = ServerName::try_from(name.clone()).map_err(|e| {
        if opts.server_name.is_some() {
            format!("--upstream.server-name {name:?}: {e}")
        } else {
            format!("upstream {spec}: no usable TLS server name in the URL ({e}); set --upstream.server-name")
        }
    });
    let builder = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(config)
        .https_or_http();
    if !spec.is_https() {
        return Ok(builder.enable_http1().wrap_connector(http));
    }
    Ok(builder
        .with_server_name_resolver(FixedServerNameResolver::new(server_name?))
        .enable_http1()
        .wrap_connector(http))
}

/// Where the `Authorization` header comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authorization {
    /// `Bearer <token>`, the token read from the file on every request.
    Bearer {
        /// `--upstream.bearer-token-file`.
        token_file: PathBuf,
    },
    /// `Basic base64(user:password)`, the password read from the file on every request.
    Basic {
        /// `--upstream.basic-auth-user`.
        user: String,
        /// `--upstream.basic-auth-password-file`.
        password_file: PathBuf,
    },
}

/// Reads a credential file: surrounding whitespace (a trailing newline) is not part of it, and
/// an empty file is an error rather than an empty credential.
fn read_secret(flag: &str, path: &Path) -> Result<String, String> {
    let bytes = read_file(flag, path)?;
    let text = String::from_utf8(bytes)
        .map_err(|_| format!("{flag} {}: not UTF-8 text", path.display()))?;
    let secret = text.trim();
    if secret.is_empty() {
        return Err(format!("{flag} {}: the file is empty", path.display()));
    }
    Ok(secret.to_owned())
}

impl Authorization {
    /// The header value, with the credential read from its file now.
    pub fn header_value(&self) -> Result<HeaderValue, String> {
        let (value, flag, path) = match self {
            Self::Bearer { token_file } => {
                let flag = "--upstream.bearer-token-file";
                let token = read_secret(flag, token_file)?;
                (format!("Bearer {token}"), flag, token_file)
            }
            Self::Basic {
                user,
                password_file,
            } => {
                let flag = "--upstream.basic-auth-password-file";
                let password = read_secret(flag, password_file)?;
                let encoded =
                    base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
                (format!("Basic {encoded}"), flag, password_file)
            }
        };
        let mut v = HeaderValue::from_str(&value).map_err(|_| {
            format!(
                "{flag} {}: the credential contains characters not allowed in an HTTP header",
                path.display()
            )
        })?;
        v.set_sensitive(true);
        Ok(v)
    }
}

/// The rustls error somewhere in `e`'s chain, looking inside `io::Error`s too (their
/// `source()` skips the error they wrap).
pub fn find_tls_error<'a>(e: &'a (dyn StdError + 'static)) -> Option<&'a rustls::Error> {
    if let Some(r) = e.downcast_ref::<rustls::Error>() {
        return Some(r);
    }
    if let Some(inner) = e
        .downcast_ref::<std::io::Error>()
        .and_then(std::io::Error::get_ref)
    {
        if let Some(r) = find_tls_error(inner) {
            return Some(r);
        }
    }
    e.source().and_then(find_tls_error)
}

/// A TLS failure in words, with the flag that usually fixes it.
pub fn describe_tls_error(e: &rustls::Error) -> String {
    use rustls::Error as E;
    let hint = match e {
        E::InvalidCertificate(CertificateError::UnknownIssuer) => {
            " (the certificate is not signed by a trusted CA; give the upstream's CA with --upstream.ca-file)"
        }
        E::InvalidCertificate(
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
        ) => " (the certificate does not name the server; see --upstream.server-name)",
        E::InvalidCertificate(
            CertificateError::Expired | CertificateError::ExpiredContext { .. },
        ) => " (the upstream's certificate has expired)",
        E::InvalidCertificate(
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. },
        ) => " (the upstream's certificate is not valid yet; check the clocks)",
        E::AlertReceived(AlertDescription::CertificateRequired) => {
            " (the upstream requires a client certificate: --upstream.cert-file and --upstream.key-file)"
        }
        E::AlertReceived(AlertDescription::UnknownCA | AlertDescription::BadCertificate) => {
            " (the upstream rejected our client certificate)"
        }
        E::InvalidMessage(_) => " (is the upstream speaking TLS? use http:// for a plain upstream)",
        _ => "",
    };
    format!("TLS: {e}{hint}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn credentials_are_read_and_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let token = write(dir.path(), "token", "abc.def\n");
        let auth = Authorization::Bearer {
            token_file: token.clone(),
        };
        assert_eq!(auth.header_value().unwrap(), "Bearer abc.def");
        assert!(auth.header_value().unwrap().is_sensitive());
        std::fs::write(&token, "  \n").unwrap();
        let e = auth.header_value().unwrap_err();
        assert!(e.contains("is empty") && e.contains("token"), "{e}");
        std::fs::remove_file(&token).unwrap();
        let e = auth.header_value().unwrap_err();
        assert!(e.starts_with("--upstream.bearer-token-file "), "{e}");

        let pw = write(dir.path(), "pw", "open sesame\n");
        let basic = Authorization::Basic {
            user: "ali".into(),
            password_file: pw,
        };
        // base64("ali:open sesame")
        assert_eq!(basic.header_value().unwrap(), "Basic YWxpOm9wZW4gc2VzYW1l");
    }

    #[test]
    fn authorization_flags_combine_sensibly() {
        let mut o = ClientOptions::default();
        assert_eq!(o.authorization(), Ok(None));
        o.basic_auth_user = Some("u".into());
        assert!(o.authorization().is_err());
        o.basic_auth_password_file = Some("p".into());
        assert!(matches!(
            o.authorization(),
            Ok(Some(Authorization::Basic { .. }))
        ));
        o.bearer_token_file = Some("t".into());
        assert!(o.authorization().is_err());
    }

    #[test]
    fn bad_tls_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let opts = ClientOptions {
            ca_file: Some(write(dir.path(), "ca.pem", "not a certificate\n")),
            ..ClientOptions::default()
        };
        let files = TlsFiles::read(&opts).unwrap();
        let e = client_config(&opts, &files, true).unwrap_err();
        assert!(
            e.contains("--upstream.ca-file") && e.contains("ca.pem"),
            "{e}"
        );

        let missing = ClientOptions {
            cert_file: Some(dir.path().join("nope.pem")),
            ..ClientOptions::default()
        };
        let e = TlsFiles::read(&missing).unwrap_err();
        assert!(
            e.starts_with("--upstream.cert-file ") && e.contains("nope.pem"),
            "{e}"
        );

        let half = ClientOptions {
            cert_file: Some(write(dir.path(), "c.pem", "x")),
            ..ClientOptions::default()
        };
        let files = TlsFiles::read(&half).unwrap();
        assert!(client_config(&half, &files, true).is_err());
    }

    #[test]
    fn tls_errors_are_found_inside_io_errors() {
        let tls = rustls::Error::InvalidCertificate(CertificateError::UnknownIssuer);
        let wrapped = std::io::Error::other(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            tls.clone(),
        ));
        assert_eq!(find_tls_error(&wrapped), Some(&tls));
        let msg = describe_tls_error(&tls);
        assert!(
            msg.contains("UnknownIssuer") && msg.contains("--upstream.ca-file"),
            "{msg}"
        );
        assert!(find_tls_error(&std::io::Error::other("plain")).is_none());
    }
}
