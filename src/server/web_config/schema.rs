//! The file as written: the exporter toolkit's YAML types, and the checks of the sections that
//! need no other module (`http_server_config.headers`).
//!
//! Every level refuses unknown fields, as the toolkit does, so a typo is an error naming the
//! field instead of a setting silently not applied.

use std::collections::BTreeMap;

use axum::http::{HeaderName, HeaderValue};
use serde::Deserialize;

/// The whole file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FileConfig {
    pub tls_server_config: Option<TlsFile>,
    pub http_server_config: Option<HttpFile>,
    pub basic_auth_users: Option<BTreeMap<String, String>>,
    pub rate_limit: Option<RateLimitFile>,
}

impl FileConfig {
    /// Parses the file's text. An empty file (or only comments) is an empty config: plain HTTP,
    /// no auth.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        Ok(serde_yaml_ng::from_str::<Option<Self>>(text)
            .map_err(|e| e.to_string())?
            .unwrap_or_default())
    }
}

/// `tls_server_config`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct TlsFile {
    pub cert: Option<String>,
    pub key: Option<String>,
    pub client_ca: Option<String>,
    pub cert_file: Option<String>,
    pub key_file: Option<String>,
    pub client_auth_type: Option<String>,
    pub client_ca_file: Option<String>,
    pub client_allowed_sans: Option<Vec<String>>,
    pub min_version: Option<String>,
    pub max_version: Option<String>,
    pub cipher_suites: Option<Vec<String>>,
    pub prefer_server_cipher_suites: Option<bool>,
    pub curve_preferences: Option<Vec<String>>,
}

/// `http_server_config`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HttpFile {
    /// Accepted for compatibility; metric-gate speaks HTTP/1.1 only.
    #[allow(dead_code)]
    pub http2: Option<bool>,
    pub headers: Option<BTreeMap<String, String>>,
}

/// `rate_limit`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RateLimitFile {
    pub interval: Option<String>,
    pub burst: Option<u32>,
}

/// Empty strings mean "not set", as in the toolkit.
pub(super) fn set(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|s| !s.is_empty())
}

/// Headers the toolkit allows, with their allowed values (`None`: any value).
const ALLOWED_HEADERS: &[(&str, Option<&[&str]>)] = &[
    ("Strict-Transport-Security", None),
    ("X-Content-Type-Options", Some(&["nosniff"])),
    ("X-Frame-Options", Some(&["deny", "sameorigin"])),
    ("X-XSS-Protection", None),
    ("Content-Security-Policy", None),
];

/// `http_server_config.headers`, checked against the toolkit's list; empty values are skipped.
pub(super) fn response_headers(
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
