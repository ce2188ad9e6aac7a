//! `tls_server_config`: the rustls server configuration, with Go's names for client
//! authentication, versions, cipher suites and curves.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::server::danger::ClientCertVerifier;
use rustls::server::WebPkiClientVerifier;

use super::schema::{set, TlsFile};
use crate::tls::pem;
use crate::tls::verify::AcceptAnyCertificate;

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

/// PEM text from the inline field or the file field (exactly one may be set), with the name
/// errors about it start with. A file is recorded in `files`, for the watcher.
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

/// Builds the rustls server config, or `None` when the section sets nothing TLS-related.
/// Relative file names are relative to `dir`; every file read is pushed onto `files`.
pub(super) fn tls_config(
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
    let certs = pem::certificates(&cert.1).map_err(|e| format!("{}: {e}", cert.0))?;
    let key_der = pem::private_key(&key.1).map_err(|e| format!("{}: {e}", key.0))?;

    let mut provider = crate::tls::provider();
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
        (ClientAuth::Request | ClientAuth::RequireAny, _) => {
            AcceptAnyCertificate::client(&provider, auth == ClientAuth::RequireAny)
        }
        (ClientAuth::VerifyIfGiven | ClientAuth::RequireAndVerify, None) => {
            return Err(format!(
                "tls_server_config.client_auth_type: {} needs client_ca_file (or client_ca)",
                set(&t.client_auth_type).unwrap_or_default()
            ))
        }
        (ClientAuth::VerifyIfGiven | ClientAuth::RequireAndVerify, Some((field, text))) => {
            let roots = pem::root_store(&text).map_err(|e| format!("{field}: {e}"))?;
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
