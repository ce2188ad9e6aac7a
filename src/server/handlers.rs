//! HTTP endpoints. Handlers are thin: the work is in [`super::scrape`] and [`crate::upstream`].
//! A handler that fails returns an [`ApiError`], which knows its status and becomes a plain-text
//! response.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use futures_util::TryStreamExt as _;
use serde::Deserialize;
use tokio::time::Instant;

use crate::analyze::Analyzer;
use crate::exposition::render::CONTENT_TYPE_TEXT_004;
use crate::upstream::fetch::{self, scrape_into};
use crate::upstream::{FetchError, ResolveError, Target};

use super::encoding::{accepts_gzip, Rendered};
use super::reload::ReloadError;
use super::scrape::{ScrapeError, TargetFailures};
use super::state::AppState;

type AppStateRef = Arc<AppState>;

const CONTENT_TYPE_OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
const CONTENT_TYPE_PLAIN: &str = "text/plain; charset=utf-8";

/// The router with every endpoint and the request counter.
pub fn router(state: AppStateRef) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/metrics", get(metrics))
        .route("/metrics/{subset}", get(subset))
        .route("/source", get(source))
        .route("/analyze", get(analyze))
        .route("/-/healthy", get(healthy))
        .route("/-/ready", get(ready))
        .route("/-/metrics", get(self_metrics))
        .route("/-/reload", post(reload))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            count_requests,
        ))
        .with_state(state)
}

/// The route a path belongs to, for the `endpoint` label (bounded: never the raw path).
pub(crate) fn endpoint_of(path: &str) -> &'static str {
    match path {
        "/" => "/",
        "/metrics" => "/metrics",
        "/source" => "/source",
        "/analyze" => "/analyze",
        "/-/healthy" => "/-/healthy",
        "/-/ready" => "/-/ready",
        "/-/metrics" => "/-/metrics",
        "/-/reload" => "/-/reload",
        p if p.starts_with("/metrics/") => "/metrics/{subset}",
        _ => "other",
    }
}

async fn count_requests(State(state): State<AppStateRef>, req: Request, next: Next) -> Response {
    let endpoint = endpoint_of(req.uri().path());
    let resp = next.run(req).await;
    state
        .metrics
        .count_request(endpoint, resp.status().as_u16());
    resp
}

fn plain(status: StatusCode, text: impl Into<String>) -> Response {
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
    #[error("unknown subset {name:?}; known subsets: [{}]", .known.join(", "))]
    UnknownSubset {
        /// The name asked for.
        name: String,
        /// The subsets configured now.
        known: Vec<String>,
    },
    /// A subset asked for before any scrape computed it: 503.
    #[error("subset {0:?} has no result yet: subsets are computed by /metrics scrapes, and no scrape has succeeded since start")]
    NoResultYet(String),
    /// Resolving the upstream failed (`/source`, `/analyze`): 502.
    #[error(transparent)]
    Resolve(#[from] ResolveError),
    /// The upstream resolved to no target (`/source`): 400.
    #[error("no targets")]
    NoTargets,
    /// `/source?target=` names none of the current targets: 400.
    #[error("no target {wanted:?}; current targets: [{}]", .current.join(", "))]
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
    /// Every target of `/analyze` failed: 502.
    #[error("upstream {upstream}: {failures}")]
    Analyze {
        /// The upstream as configured.
        upstream: String,
        /// Each target and why it failed.
        failures: TargetFailures,
    },
    /// `POST /-/reload` failed; the previous configuration keeps serving: 500.
    #[error("reload failed, still serving the previous configuration: {0}")]
    Reload(#[from] ReloadError),
}

impl ApiError {
    /// The status the error is answered with.
    fn status(&self) -> StatusCode {
        match self {
            Self::Scrape(_) | Self::Resolve(_) | Self::Fetch { .. } | Self::Analyze { .. } => {
                StatusCode::BAD_GATEWAY
            }
            Self::UnknownSubset { .. } => StatusCode::NOT_FOUND,
            Self::NoResultYet(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::NoTargets | Self::NoSuchTarget { .. } => StatusCode::BAD_REQUEST,
            Self::Reload(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        plain(self.status(), self.to_string())
    }
}

/// A metrics body in text 0.0.4, gzip-compressed when the client accepts it.
async fn metrics_body(headers: &HeaderMap, rendered: &Rendered) -> Response {
    let mut resp = if accepts_gzip(headers) {
        let mut r = Response::new(Body::from(rendered.gzipped().await));
        r.headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        r
    } else {
        Response::new(Body::from(rendered.body.clone()))
    };
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(CONTENT_TYPE_TEXT_004),
    );
    h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    resp
}

/// The upstream timeout for a request: `--scrape-timeout`, or Prometheus' own timeout minus a
/// margin when that is smaller, so the answer arrives before Prometheus gives up.
pub(crate) fn effective_timeout(flag: Duration, headers: &HeaderMap) -> Duration {
    let from_header = headers
        .get("x-prometheus-scrape-timeout-seconds")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(Duration::from_secs_f64);
    match from_header {
        Some(t) => {
            // Leave time for rendering and sending: 10% of the timeout, at most 500 ms.
            let margin = (t / 10).min(Duration::from_millis(500));
            flag.min(t - margin)
        }
        None => flag,
    }
}

async fn index(State(state): State<AppStateRef>) -> Html<String> {
    let mut s = String::from(
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>metric-gate</title></head><body>\n<h1>metric-gate</h1>\n",
    );
    let _ = writeln!(
        s,
        "<p>Upstream: <code>{}</code></p>\n<ul>",
        html_escape(&state.config().upstream.spec.to_string())
    );
    let links = [
        (
            "metrics",
            "relabeled, summed metrics (scrapes the upstream)",
        ),
        ("source", "the upstream response as is"),
        ("analyze", "cardinality report of the upstream response"),
        ("-/metrics", "metric-gate's own metrics"),
        ("-/healthy", "liveness"),
        ("-/ready", "readiness"),
    ];
    for (href, what) in links {
        let _ = writeln!(s, "<li><a href=\"{href}\">/{href}</a>: {what}</li>");
    }
    s.push_str(
        "</ul>\n<p><code>POST /-/reload</code> (or SIGHUP) re-reads the configuration files.</p>\n",
    );
    let subset_names = state.subset_names();
    if !subset_names.is_empty() {
        s.push_str(
            "<p>Subsets (last result of /metrics, with the upstream fetch time):</p>\n<ul>\n",
        );
        for name in &subset_names {
            let href = percent_encode_path(name);
            let _ = writeln!(
                s,
                "<li><a href=\"metrics/{}\">/metrics/{}</a></li>",
                html_escape(&href),
                html_escape(name)
            );
        }
        s.push_str("</ul>\n");
    }
    s.push_str("</body></html>\n");
    Html(s)
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn percent_encode_path(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
    out
}

async fn metrics(
    State(state): State<AppStateRef>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let timeout = effective_timeout(state.config().upstream.scrape_timeout, &headers);
    let outcome = state.scrape(timeout).await;
    match &outcome.result {
        Ok(rendered) => Ok(metrics_body(&headers, rendered).await),
        Err(e) => Err(e.clone().into()),
    }
}

async fn subset(
    State(state): State<AppStateRef>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let known = state.subset_names();
    if !known.contains(&name) {
        return Err(ApiError::UnknownSubset { name, known });
    }
    let snap = state
        .subset_snapshot(&name)
        .ok_or(ApiError::NoResultYet(name))?;
    match &snap.rendered {
        Ok(rendered) => Ok(metrics_body(&headers, rendered).await),
        Err(e) => Err(e.clone().into()),
    }
}

#[derive(Debug, Deserialize)]
struct SourceQuery {
    target: Option<String>,
}

/// Picks the target named by `?target=` (`ip:port`, or just the IP), or the first one.
fn pick_target(targets: Vec<Target>, wanted: Option<&str>) -> Result<Target, ApiError> {
    let Some(w) = wanted.filter(|w| !w.is_empty()) else {
        return targets.into_iter().next().ok_or(ApiError::NoTargets);
    };
    let w = w.trim_matches(['[', ']']);
    let current: Vec<String> = targets.iter().map(|t| t.name.clone()).collect();
    targets
        .into_iter()
        .find(|t| {
            t.name == w
                || t.uri
                    .host()
                    .is_some_and(|h| h.trim_matches(['[', ']']) == w)
        })
        .ok_or_else(|| ApiError::NoSuchTarget {
            wanted: w.to_owned(),
            current,
        })
}

/// Hop-by-hop headers that must not be passed through.
fn is_hop_by_hop(name: &header::HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "transfer-encoding"
            | "te"
            | "trailer"
            | "upgrade"
    )
}

async fn source(
    State(state): State<AppStateRef>,
    Query(q): Query<SourceQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let target = pick_target(state.targets().await?, q.target.as_deref())?;
    let timeout = effective_timeout(state.config().upstream.scrape_timeout, &headers);
    let deadline = Instant::now() + timeout;
    let ae = headers.get(header::ACCEPT_ENCODING);
    let upstream = fetch::send(&state.client(), &target, ae, deadline, timeout)
        .await
        .map_err(|source| ApiError::Fetch {
            target: target.name.clone(),
            source,
        })?;
    if upstream.status().is_success() {
        state.mark_ready();
    }
    let (parts, body) = upstream.into_parts();
    let name = target.name;
    // The body streams through as it arrives, still bounded by the deadline.
    let stream =
        fetch::body_stream(body, deadline, timeout).map_err(move |e| source_body_error(&name, e));
    let mut resp = Response::new(Body::from_stream(stream));
    *resp.status_mut() = parts.status;
    // Content-Length stays valid: the body is passed through byte for byte.
    for (k, v) in &parts.headers {
        if !is_hop_by_hop(k) {
            resp.headers_mut().append(k.clone(), v.clone());
        }
    }
    Ok(resp)
}

/// Logs a `/source` body that failed midway and words the error that ends the response.
fn source_body_error(name: &str, e: FetchError) -> std::io::Error {
    let cause = match e {
        FetchError::Timeout(timeout) => {
            tracing::warn!(target_addr = %name, "source body timed out");
            return std::io::Error::other(format!("/source {name}: timeout after {timeout:?}"));
        }
        FetchError::Body(cause) => cause,
        other => other.to_string(),
    };
    let msg = format!("/source {name}: {cause}");
    tracing::warn!(target_addr = %name, error = %msg, "source body failed");
    std::io::Error::other(msg)
}

async fn analyze(
    State(state): State<AppStateRef>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let targets = state.targets().await?;
    let timeout = effective_timeout(state.config().upstream.scrape_timeout, &headers);
    let mut analyzer = Analyzer::new();
    let mut failed: Vec<(String, FetchError)> = Vec::new();
    let total = targets.len();
    // One report over all targets: the analyzer goes from one body to the next.
    // One deadline for all targets together.
    let opts = state
        .config()
        .limits
        .fetch_options(Instant::now() + timeout, timeout);
    let client = state.client();
    for target in &targets {
        let (a, result) = scrape_into(&client, target, opts, analyzer).await;
        analyzer = a;
        match result {
            Ok(stats) => {
                analyzer.add_bytes(stats.decoded_bytes);
                state.mark_ready();
            }
            Err(e) => {
                tracing::warn!(target_addr = %target, cause = e.kind(), error = %e, "analyze: target failed");
                failed.push((target.name.clone(), e));
            }
        }
    }
    if failed.len() == total {
        return Err(ApiError::Analyze {
            upstream: state.config().upstream.spec.to_string(),
            failures: TargetFailures(failed),
        });
    }
    let mut report = analyzer.report();
    for (t, e) in &failed {
        let _ = writeln!(
            report,
            "# target {t} failed ({e}); the report may include part of its body"
        );
    }
    Ok(plain(StatusCode::OK, report))
}

async fn healthy() -> Response {
    plain(StatusCode::OK, "OK")
}

async fn ready(State(state): State<AppStateRef>) -> Response {
    if state.is_ready() {
        plain(StatusCode::OK, "OK")
    } else {
        plain(
            StatusCode::SERVICE_UNAVAILABLE,
            "not ready: no upstream has answered yet",
        )
    }
}

/// `POST /-/reload`: re-reads `--relabel-file` and the TLS files (see [`super::reload`]).
/// 200 with what changed, or 500 with the error (the previous config keeps serving).
async fn reload(State(state): State<AppStateRef>) -> Result<Response, ApiError> {
    let summary = state.reload().await?;
    Ok(plain(StatusCode::OK, summary))
}

async fn self_metrics(State(state): State<AppStateRef>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static(CONTENT_TYPE_OPENMETRICS),
        )],
        state.metrics.encode(),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }

    #[test]
    fn endpoints_are_bounded() {
        assert_eq!(endpoint_of("/metrics/x"), "/metrics/{subset}");
        assert_eq!(endpoint_of("/nope/../x"), "other");
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
                "subset \"a\" has no result yet: subsets are computed by /metrics scrapes, and no scrape has succeeded since start",
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
                ApiError::Analyze {
                    upstream: "http://a:1/m".into(),
                    failures: TargetFailures(vec![(
                        "a:1".into(),
                        FetchError::Timeout(Duration::from_secs(1)),
                    )]),
                },
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

    #[test]
    fn target_choice() {
        let t = |s: &str| {
            Target::at(
                &http::uri::Scheme::HTTP,
                s.parse().unwrap(),
                "svc",
                &http::uri::PathAndQuery::from_static("/"),
            )
        };
        let ts = vec![t("127.0.0.2:80"), t("127.0.0.3:80")];
        assert_eq!(pick_target(ts.clone(), None).unwrap().name, "127.0.0.2:80");
        assert_eq!(
            pick_target(ts.clone(), Some("127.0.0.3")).unwrap().name,
            "127.0.0.3:80"
        );
        assert_eq!(
            pick_target(ts.clone(), Some("127.0.0.3:80")).unwrap().name,
            "127.0.0.3:80"
        );
        assert!(pick_target(ts, Some("10.0.0.1")).is_err());
    }
}
