//! HTTP endpoints. Handlers are thin: the work is in [`super::scrape`] and [`crate::upstream`].

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
use crate::upstream::fetch::{self, scrape_into, FetchOptions};
use crate::upstream::{FetchError, Target};

use super::encoding::{accepts_gzip, Rendered};
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

async fn metrics(State(state): State<AppStateRef>, headers: HeaderMap) -> Response {
    let timeout = effective_timeout(state.config().upstream.scrape_timeout, &headers);
    let outcome = state.scrape(timeout).await;
    match &outcome.result {
        Ok(rendered) => metrics_body(&headers, rendered).await,
        Err(e) => plain(StatusCode::BAD_GATEWAY, e.to_string()),
    }
}

async fn subset(
    State(state): State<AppStateRef>,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Response {
    let subset_names = state.subset_names();
    if !subset_names.contains(&name) {
        return plain(
            StatusCode::NOT_FOUND,
            format!(
                "unknown subset {name:?}; known subsets: [{}]",
                subset_names.join(", ")
            ),
        );
    }
    match state.subset_snapshot(&name) {
        Some(snap) => match &snap.rendered {
            Ok(rendered) => metrics_body(&headers, rendered).await,
            Err(e) => plain(StatusCode::BAD_GATEWAY, e.to_string()),
        },
        None => plain(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "subset {name:?} has no result yet: subsets are computed by /metrics scrapes, and no scrape has succeeded since start"
            ),
        ),
    }
}

#[derive(Debug, Deserialize)]
struct SourceQuery {
    target: Option<String>,
}

/// Picks the target named by `?target=` (`ip:port`, or just the IP), or the first one.
fn pick_target(targets: Vec<Target>, wanted: Option<&str>) -> Result<Target, String> {
    let Some(w) = wanted.filter(|w| !w.is_empty()) else {
        return targets
            .into_iter()
            .next()
            .ok_or_else(|| "no targets".to_owned());
    };
    let w = w.trim_matches(['[', ']']);
    let names: Vec<String> = targets.iter().map(|t| t.name.clone()).collect();
    targets
        .into_iter()
        .find(|t| {
            t.name == w
                || t.uri
                    .host()
                    .is_some_and(|h| h.trim_matches(['[', ']']) == w)
        })
        .ok_or_else(|| format!("no target {w:?}; current targets: [{}]", names.join(", ")))
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
) -> Response {
    let targets = match state.targets().await {
        Ok(t) => t,
        Err(e) => return plain(StatusCode::BAD_GATEWAY, e.to_string()),
    };
    let target = match pick_target(targets, q.target.as_deref()) {
        Ok(t) => t,
        Err(e) => return plain(StatusCode::BAD_REQUEST, e),
    };
    let timeout = effective_timeout(state.config().upstream.scrape_timeout, &headers);
    let deadline = Instant::now() + timeout;
    let ae = headers.get(header::ACCEPT_ENCODING);
    let upstream = match fetch::send(&state.client(), &target, ae, deadline, timeout).await {
        Ok(r) => r,
        Err(e) => return plain(StatusCode::BAD_GATEWAY, format!("upstream {target}: {e}")),
    };
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
    resp
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

async fn analyze(State(state): State<AppStateRef>, headers: HeaderMap) -> Response {
    let targets = match state.targets().await {
        Ok(t) => t,
        Err(e) => return plain(StatusCode::BAD_GATEWAY, e.to_string()),
    };
    let timeout = effective_timeout(state.config().upstream.scrape_timeout, &headers);
    let deadline = Instant::now() + timeout;
    let mut analyzer = Analyzer::new();
    let mut failed: Vec<(String, FetchError)> = Vec::new();
    let total = targets.len();
    // One report over all targets: the analyzer goes from one body to the next.
    // One deadline for all targets together.
    let opts = FetchOptions {
        deadline,
        timeout,
        max_body: state.config().limits.max_body,
        max_line: state.config().limits.max_line,
    };
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
        let causes: Vec<String> = failed.iter().map(|(t, e)| format!("{t}: {e}")).collect();
        return plain(
            StatusCode::BAD_GATEWAY,
            format!(
                "upstream {}: {}",
                state.config().upstream.spec,
                causes.join("; ")
            ),
        );
    }
    let mut report = analyzer.report();
    for (t, e) in &failed {
        let _ = writeln!(
            report,
            "# target {t} failed ({e}); the report may include part of its body"
        );
    }
    plain(StatusCode::OK, report)
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
async fn reload(State(state): State<AppStateRef>) -> Response {
    match state.reload().await {
        Ok(msg) => plain(StatusCode::OK, msg),
        Err(e) => plain(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("reload failed, still serving the previous configuration: {e}"),
        ),
    }
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
