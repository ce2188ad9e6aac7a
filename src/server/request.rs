//! What every endpoint shares about a request: how long it may wait for the upstream
//! ([`request_patience`], from `--scrape-timeout` and Prometheus' timeout header) and how its
//! failure is answered ([`ApiError`], each kind with its HTTP status, as a plain-text body).

use std::time::Duration;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::upstream::{FetchError, ResolveError};

use super::analysis::AnalyzeFailure;
use super::flight::{FlightError, Patience};
use super::reload::ReloadError;
use super::scrape::ScrapeError;

/// The `Content-Type` of plain-text answers (errors, `/-/healthy`, the text report).
pub(crate) const CONTENT_TYPE_PLAIN: &str = "text/plain; charset=utf-8";

/// A plain-text answer; a final newline is added when `text` lacks one.
pub(crate) fn plain(status: StatusCode, text: impl Into<String>) -> Response {
    let mut text = text.into();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(CONTENT_TYPE_PLAIN),
        )],
        text,
    )
        .into_response()
}

/// Why a request failed. Each kind knows the status it is answered with; the message is the
/// plain-text body.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    /// The scrape behind `/metrics`, or the one that computed a subset, failed: 502.
    #[error(transparent)]
    Scrape(#[from] ScrapeError),
    /// `/metrics/{subset}` names no configured subset: 404.
    #[error("unknown subset {:?}; known subsets: [{}]", clip(.name), .known.join(", "))]
    UnknownSubset {
        /// The name asked for.
        name: String,
        /// The subsets configured now.
        known: Vec<String>,
    },
    /// A subset asked for before any scrape computed it: 503.
    #[error("subset {0:?} has no result yet: subsets are computed by scrapes (of /metrics, at start and at reload), and none has succeeded since it was configured")]
    NoResultYet(String),
    /// Resolving the upstream failed (`/source`, `/analyze`): 502.
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    /// The upstream resolved to no target (`/source`): 400.
    #[error("no targets")]
    NoTargets,
    /// `/source?target=` names none of the current targets: 400.
    #[error("no target {:?}; current targets: [{}]", clip(.wanted), .current.join(", "))]
    NoSuchTarget {
        /// The target asked for.
        wanted: String,
        /// The targets now.
        current: Vec<String>,
    },
    /// The request to the target of `/source` failed: 502.
    #[error("upstream {target}: {source}")]
    Fetch {
        /// The target's name.
        target: String,
        /// Why the request failed.
        source: FetchError,
    },
    /// `/analyze` could not resolve the upstream, or every target failed: 502.
    #[error(transparent)]
    Analyze(#[from] AnalyzeFailure),
    /// The request's own deadline passed before the shared upstream pass finished; the pass
    /// goes on for the other requests: 504.
    #[error("{0}")]
    GaveUp(FlightError),
    /// As many requests of this kind as allowed at once are being served: 503 with
    /// `Retry-After: 1`, at once.
    #[error("{limit} {what} requests are in progress, the most allowed at once; retry later")]
    Busy {
        /// The endpoint.
        what: &'static str,
        /// Requests allowed at once.
        limit: usize,
    },
    /// `POST /-/reload` failed; the previous configuration keeps serving: 500.
    #[error("reload failed, still serving the previous configuration: {0}")]
    Reload(#[from] ReloadError),
    /// Escaping the names of a rendered result failed (its text did not parse, which is a bug
    /// in metric-gate): 500.
    #[error("escaping names for this client failed: {0}")]
    Escape(String),
}

impl ApiError {
    /// The status the error is answered with.
    fn status(&self) -> StatusCode {
        match self {
            Self::Scrape(_) | Self::Resolve(_) | Self::Fetch { .. } | Self::Analyze(_) => {
                StatusCode::BAD_GATEWAY
            }
            Self::GaveUp(_) => StatusCode::GATEWAY_TIMEOUT,
            Self::UnknownSubset { .. } => StatusCode::NOT_FOUND,
            Self::NoResultYet(_) | Self::Busy { .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::NoTargets | Self::NoSuchTarget { .. } => StatusCode::BAD_REQUEST,
            Self::Reload(_) | Self::Escape(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<FlightError> for ApiError {
    fn from(e: FlightError) -> Self {
        match e {
            FlightError::Task(msg) => Self::Scrape(ScrapeError::Task(msg)),
            gave_up @ FlightError::GaveUp(_) => Self::GaveUp(gave_up),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = plain(self.status(), self.to_string());
        if matches!(self, Self::Busy { .. }) {
            r.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        r
    }
}

/// At most this many bytes of a request's own input are quoted in an error message.
const QUOTE_MAX: usize = 200;

/// `s`, cut to [`QUOTE_MAX`] bytes (at a character boundary) with `…` when longer.
pub(crate) fn clip(s: &str) -> String {
    if s.len() <= QUOTE_MAX {
        return s.to_owned();
    }
    let mut end = QUOTE_MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

/// `X-Prometheus-Scrape-Timeout-Seconds` values above this many seconds (a year) are taken as
/// this: they mean "no hurry", and `--scrape-timeout` bounds the wait anyway.
const MAX_HEADER_TIMEOUT_SECS: f64 = 365.0 * 24.0 * 3600.0;

/// How long a request waits for its upstream pass: see [`effective_timeout`].
pub(crate) fn request_patience(flag: Duration, headers: &HeaderMap) -> Patience {
    Patience::from_now(effective_timeout(flag, headers))
}

/// The upstream timeout for a request: `--scrape-timeout`, or Prometheus' own timeout minus a
/// margin when that is smaller, so the answer arrives before Prometheus gives up. Any header
/// value is safe: a positive number of seconds is used (values above a year are taken as a
/// year); anything else (negative, zero, `NaN`, `inf`, not a number, not ASCII) is ignored with
/// a debug log, and the flag applies.
pub(crate) fn effective_timeout(flag: Duration, headers: &HeaderMap) -> Duration {
    let Some(raw) = headers.get("x-prometheus-scrape-timeout-seconds") else {
        return flag;
    };
    let secs = raw
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0);
    let Some(t) =
        secs.and_then(|s| Duration::try_from_secs_f64(s.min(MAX_HEADER_TIMEOUT_SECS)).ok())
    else {
        tracing::debug!(
            value = %clip(&String::from_utf8_lossy(raw.as_bytes())),
            "ignoring an invalid X-Prometheus-Scrape-Timeout-Seconds header"
        );
        return flag;
    };
    // Leave time for rendering and sending: 10% of the timeout, at most 500 ms.
    let margin = (t / 10).min(Duration::from_millis(500));
    flag.min(t - margin)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::server::scrape::TargetFailures;

    #[test]
    fn timeout_from_prometheus_header() {
        let mut h = HeaderMap::new();
        let flag = Duration::from_secs(15);
        assert_eq!(effective_timeout(flag, &h), flag);
        h.insert(
            "X-Prometheus-Scrape-Timeout-Seconds",
            HeaderValue::from_static("10"),
        );
        assert_eq!(effective_timeout(flag, &h), Duration::from_millis(9500));
        h.insert(
            "X-Prometheus-Scrape-Timeout-Seconds",
            HeaderValue::from_static("1"),
        );
        assert_eq!(effective_timeout(flag, &h), Duration::from_millis(900));
        h.insert(
            "X-Prometheus-Scrape-Timeout-Seconds",
            HeaderValue::from_static("60"),
        );
        assert_eq!(effective_timeout(flag, &h), flag);
        h.insert(
            "X-Prometheus-Scrape-Timeout-Seconds",
            HeaderValue::from_static("junk"),
        );
        assert_eq!(effective_timeout(flag, &h), flag);
        // Absurd values are clamped, invalid ones ignored: never a panic.
        for v in [
            "1e20",
            "1e300",
            "18446744073709551616",
            "-1",
            "0",
            "NaN",
            "inf",
            "-inf",
            "",
            "1e",
        ] {
            h.insert(
                "X-Prometheus-Scrape-Timeout-Seconds",
                HeaderValue::from_static(v),
            );
            assert_eq!(effective_timeout(flag, &h), flag, "{v}");
        }
        h.insert(
            "X-Prometheus-Scrape-Timeout-Seconds",
            HeaderValue::from_bytes(b"\xff").unwrap(),
        );
        assert_eq!(effective_timeout(flag, &h), flag);
        h.insert(
            "X-Prometheus-Scrape-Timeout-Seconds",
            HeaderValue::from_static("1e-300"),
        );
        assert_eq!(effective_timeout(flag, &h), Duration::ZERO);
    }

    #[test]
    fn errors_know_their_status_and_say_what_is_wrong() {
        let cases = [
            (
                ApiError::UnknownSubset {
                    name: "x".into(),
                    known: vec!["a".into(), "b".into()],
                },
                404,
                "unknown subset \"x\"; known subsets: [a, b]",
            ),
            (
                ApiError::NoResultYet("a".into()),
                503,
                "subset \"a\" has no result yet: subsets are computed by scrapes (of /metrics, at start and at reload), and none has succeeded since it was configured",
            ),
            (ApiError::NoTargets, 400, "no targets"),
            (
                ApiError::NoSuchTarget {
                    wanted: "10.0.0.1".into(),
                    current: vec!["10.0.0.2:80".into()],
                },
                400,
                "no target \"10.0.0.1\"; current targets: [10.0.0.2:80]",
            ),
            (
                ApiError::Resolve(ResolveError::Empty { name: "svc".into() }),
                502,
                "resolving svc: no addresses",
            ),
            (
                ApiError::Fetch {
                    target: "a:1".into(),
                    source: FetchError::Timeout(Duration::from_secs(1)),
                },
                502,
                "upstream a:1: timeout after 1s",
            ),
            (
                ApiError::Analyze(AnalyzeFailure::AllTargets {
                    upstream: "http://a:1/m".into(),
                    failures: TargetFailures(vec![(
                        "a:1".into(),
                        FetchError::Timeout(Duration::from_secs(1)),
                    )]),
                }),
                502,
                "upstream http://a:1/m: a:1: timeout after 1s",
            ),
            (
                ApiError::Scrape(ScrapeError::Task("panicked".into())),
                502,
                "scrape task failed: panicked",
            ),
        ];
        for (e, status, text) in cases {
            assert_eq!(e.status().as_u16(), status, "{e}");
            assert_eq!(e.to_string(), text);
        }
    }
}
