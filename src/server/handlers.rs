//! HTTP endpoints. Handlers are thin: the work is in [`super::scrape`] and [`crate::upstream`].
//! A handler that fails returns an [`ApiError`], which knows its status and becomes a plain-text
//! response.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Extension, Path, Query, RawQuery, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use futures_util::TryStreamExt as _;
use serde::Deserialize;

use crate::exposition::escape::Escaping;
use crate::upstream::fetch;
use crate::upstream::{Deadline, FetchError, ResolveError, Target};

use super::encoding::{accepts_gzip, negotiate_encoding, Encoding, Negotiated, Rendered};
use super::metrics_format::SelfMetricsFormat;
use super::request::{clip, effective_timeout, plain, request_patience, ApiError};
use super::responses::{ConnControl, SharedBody};
use super::state::{AppState, MAX_SOURCE_REQUESTS};

type AppStateRef = Arc<AppState>;

/// The router with every endpoint and the request counter.
pub fn router(state: AppStateRef) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/metrics", get(metrics))
        .route("/metrics/{subset}", get(subset))
        .route("/source", get(source))
        .route("/analyze", get(super::analyze::analyze))
        .route("/-/healthy", get(healthy))
        .route("/-/ready", get(ready))
        .route("/-/metrics", get(self_metrics))
        .route("/-/reload", post(reload))
        .merge(super::push::routes(&state))
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
        super::push::RECEIVER_PATH => super::push::RECEIVER_PATH,
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

/// The request's `Accept` header; several are joined with `,`, as one list.
fn accept_header(headers: &HeaderMap) -> Option<String> {
    let values: Vec<&str> = headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    (!values.is_empty()).then(|| values.join(","))
}

/// A metrics body in the format and escaping the client's `Accept` asks for
/// ([`Negotiated::for_metrics`]: the upstream's own format when the client accepts it),
/// gzip-compressed when the client accepts it, with a
/// `Content-Type` that says exactly which. The bytes are the scrape's own, or their escaped
/// form made once per scrape (shared with every client of that scrape); the response holds
/// them through `conn`'s [`super::responses::HeldResults`] registration until they are written.
async fn metrics_body(
    state: &AppState,
    conn: Option<&Arc<ConnControl>>,
    headers: &HeaderMap,
    rendered: &Rendered,
) -> Result<Response, ApiError> {
    let negotiated =
        Negotiated::for_metrics(accept_header(headers).as_deref(), rendered.is_openmetrics());
    let escaping = negotiated.escaping;
    let rendered = rendered
        .variant(negotiated, |stats| {
            if escaping == Escaping::AllowUtf8 {
                return;
            }
            if stats.merged + stats.dropped > 0 {
                tracing::warn!(
                    escaping = escaping.as_str(),
                    merged = stats.merged,
                    dropped = stats.dropped,
                    "escaping names made series collide"
                );
            }
            state.metrics.record_escaping(escaping, stats);
        })
        .await
        .map_err(|e| ApiError::Escape(e.to_string()))?;
    let encoding = negotiate_encoding(headers);
    let bytes = rendered.encoded(encoding).await;
    let hold = state.held.hold(rendered.generation, &bytes, conn);
    let mut resp = Response::new(Body::new(SharedBody::new(bytes, Some(hold))));
    if encoding == Encoding::Gzip {
        resp.headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(negotiated.content_type()),
    );
    h.insert(
        header::VARY,
        HeaderValue::from_static("Accept, Accept-Encoding"),
    );
    Ok(resp)
}

/// The endpoints the entry page links to, with what they answer.
const ENDPOINTS: [(&str, &str); 6] = [
    (
        "metrics",
        "relabeled, summed metrics (scrapes the upstream)",
    ),
    (
        "analyze",
        "cardinality explorer (browsers) or report (text), with what-ifs: ?drop=label",
    ),
    ("source", "the upstream response as is"),
    ("-/metrics", "metric-gate's own metrics"),
    ("-/healthy", "liveness"),
    ("-/ready", "readiness"),
];

/// The entry page's style: system fonts, light and dark themes, nothing fetched.
const INDEX_STYLE: &str = "body{font:15px/1.45 system-ui,sans-serif;margin:2em auto;max-width:60em;padding:0 1em;color:#1d2330;background:#fff}\
code{font:13px ui-monospace,monospace}table{border-collapse:collapse;margin:.3em 0 1em}\
td,th{padding:.2em .8em .2em 0;text-align:left;vertical-align:top}th{font-weight:600}\
td.n{text-align:right;font-variant-numeric:tabular-nums}.up{color:#18794e}.down{color:#c62a2f}\
a{color:#2557b8}.muted{color:#667}\
@media (prefers-color-scheme:dark){body{color:#dde2ea;background:#14171c}a{color:#7fa8ff}.up{color:#4cc38a}.down{color:#ff6369}.muted{color:#99a}}";

/// `GET /`: the entry page. Browsers (`Accept` preferring `text/html`) get HTML; anything else
/// a short plain-text index. Both show the upstream, the last scrape (time, duration, each
/// target's health, each list's series) and the endpoints; neither scrapes.
async fn index(
    State(state): State<AppStateRef>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let query = crate::explorer::AnalyzeQuery::parse(raw.as_deref().unwrap_or(""));
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let html = crate::explorer::negotiate(&query, accept) == crate::explorer::ResponseFormat::Html;
    let view = IndexView::of(&state);
    let mut r = if html {
        let mut r = Html(view.html()).into_response();
        r.headers_mut().insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(
                "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            ),
        );
        r
    } else {
        plain(StatusCode::OK, view.text())
    };
    r.headers_mut()
        .insert(header::VARY, HeaderValue::from_static("Accept"));
    r
}

/// What the entry page shows.
struct IndexView {
    upstream: String,
    last: Option<Arc<super::LastScrape>>,
    /// Every configured list: `None` for the default one.
    lists: Vec<Option<String>>,
    receiver: bool,
}

impl IndexView {
    fn of(state: &AppState) -> Self {
        let mut lists = vec![None];
        lists.extend(state.subset_names().into_iter().map(Some));
        Self {
            upstream: state.config().upstream.spec.to_string(),
            last: state.last_scrape(),
            lists,
            receiver: state.remote_write.as_ref().is_some_and(|rw| rw.receiver()),
        }
    }

    /// A list's path and its series in the last scrape (or the error, or nothing yet).
    fn list_rows(&self) -> Vec<(String, Option<Result<usize, String>>)> {
        self.lists
            .iter()
            .map(|name| {
                let path = match name {
                    None => "/metrics".to_owned(),
                    Some(n) => format!("/metrics/{n}"),
                };
                let found = self.last.as_ref().and_then(|l| {
                    l.lists
                        .iter()
                        .find(|(n, _)| n == name)
                        .map(|(_, r)| r.clone())
                });
                (path, found)
            })
            .collect()
    }

    /// `Sun, 29 Nov 2026 07:00:00 GMT (3 s ago), took 12 ms`.
    fn last_line(last: &super::LastScrape) -> String {
        let at = std::time::UNIX_EPOCH
            + Duration::from_millis(u64::try_from(last.fetched_at_ms).unwrap_or(0));
        let ago = std::time::SystemTime::now()
            .duration_since(at)
            .map(|d| format!(" ({} s ago)", d.as_secs()))
            .unwrap_or_default();
        format!(
            "{}{ago}, took {} ms",
            httpdate::fmt_http_date(at),
            last.duration.as_millis()
        )
    }

    fn text(&self) -> String {
        let mut s = format!(
            "metric-gate {}\nupstream: {}\n",
            env!("CARGO_PKG_VERSION"),
            self.upstream
        );
        match &self.last {
            None => s.push_str("last scrape: none yet (GET /metrics scrapes)\n"),
            Some(l) => {
                let _ = writeln!(s, "last scrape: {}", Self::last_line(l));
                if let Some(e) = &l.error {
                    let _ = writeln!(s, "  failed: {e}");
                }
                if !l.targets.is_empty() {
                    s.push_str("targets:\n");
                }
                for (t, e) in &l.targets {
                    match e {
                        None => {
                            let _ = writeln!(s, "  {t} up");
                        }
                        Some(e) => {
                            let _ = writeln!(s, "  {t} down: {e}");
                        }
                    }
                }
            }
        }
        s.push_str("lists:\n");
        for (path, found) in self.list_rows() {
            let _ = match found {
                Some(Ok(n)) => writeln!(s, "  {path} {n} series"),
                Some(Err(e)) => writeln!(s, "  {path} failed: {e}"),
                None => writeln!(s, "  {path}"),
            };
        }
        s.push_str("endpoints:\n");
        for (href, what) in ENDPOINTS {
            let _ = writeln!(s, "  /{href}: {what}");
        }
        if self.receiver {
            let _ = writeln!(
                s,
                "  POST {}: remote-write receiver",
                super::push::RECEIVER_PATH
            );
        }
        s.push_str("  POST /-/reload (or SIGHUP): re-read the configuration files\n");
        s
    }

    fn html(&self) -> String {
        let mut s = format!(
            "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
             <meta name=\"color-scheme\" content=\"light dark\">\
             <title>metric-gate</title><style>{INDEX_STYLE}</style></head><body>\n\
             <h1>metric-gate</h1>\n<p>Upstream: <code>{}</code> \
             <span class=\"muted\">(version {})</span></p>\n",
            html_escape(&self.upstream),
            env!("CARGO_PKG_VERSION")
        );
        s.push_str("<p><a href=\"analyze\"><b>Cardinality explorer</b></a>: series per metric and label, and what dropping labels would leave.</p>\n");
        match &self.last {
            None => s.push_str(
                "<p id=\"last-scrape\">Last scrape: none yet (<a href=\"metrics\">/metrics</a> scrapes).</p>\n",
            ),
            Some(l) => {
                let _ = writeln!(
                    s,
                    "<p id=\"last-scrape\">Last scrape: {}</p>",
                    html_escape(&Self::last_line(l))
                );
                if let Some(e) = &l.error {
                    let _ = writeln!(s, "<p class=\"down\">Failed: {}</p>", html_escape(e));
                }
                if !l.targets.is_empty() {
                    s.push_str("<h2>Targets</h2>\n<table id=\"targets\"><tr><th>target</th><th>health</th></tr>\n");
                    for (t, e) in &l.targets {
                        let health = match e {
                            None => "<span class=\"up\">up</span>".to_owned(),
                            Some(e) => format!("<span class=\"down\">down</span>: {}", html_escape(e)),
                        };
                        let _ = writeln!(
                            s,
                            "<tr><td><code>{}</code></td><td>{health}</td></tr>",
                            html_escape(t)
                        );
                    }
                    s.push_str("</table>\n");
                }
            }
        }
        s.push_str(
            "<h2>Lists</h2>\n<table id=\"lists\"><tr><th>endpoint</th><th>series</th></tr>\n",
        );
        for (path, found) in self.list_rows() {
            let href = match path.strip_prefix("/metrics/") {
                Some(name) => format!("metrics/{}", percent_encode_path(name)),
                None => "metrics".to_owned(),
            };
            let cell = match found {
                Some(Ok(n)) => format!("<td class=\"n\">{n}</td>"),
                Some(Err(e)) => format!("<td class=\"down\">{}</td>", html_escape(&e)),
                None => "<td class=\"muted\">not scraped yet</td>".to_owned(),
            };
            let _ = writeln!(
                s,
                "<tr><td><a href=\"{}\">{}</a></td>{cell}</tr>",
                html_escape(&href),
                html_escape(&path)
            );
        }
        s.push_str("</table>\n<h2>Endpoints</h2>\n<ul>\n");
        for (href, what) in ENDPOINTS {
            let _ = writeln!(
                s,
                "<li><a href=\"{href}\">/{href}</a>: {}</li>",
                html_escape(what)
            );
        }
        if self.receiver {
            let _ = writeln!(
                s,
                "<li><code>POST {}</code>: remote-write receiver</li>",
                super::push::RECEIVER_PATH
            );
        }
        s.push_str("<li><code>POST /-/reload</code> (or SIGHUP): re-read the configuration files</li>\n</ul>\n</body></html>\n");
        s
    }
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

/// The connection's controls, which the listener puts in every request's extensions.
type Conn = Option<Extension<Arc<ConnControl>>>;

async fn metrics(
    State(state): State<AppStateRef>,
    conn: Conn,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let patience = request_patience(state.config().upstream.scrape_timeout, &headers);
    let outcome = state.scrape(patience, accepts_gzip(&headers)).await?;
    match &outcome.result {
        Ok(rendered) => metrics_body(&state, conn.as_deref(), &headers, rendered).await,
        Err(e) => Err(e.clone().into()),
    }
}

async fn subset(
    State(state): State<AppStateRef>,
    conn: Conn,
    Path(name): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let known = state.subset_names();
    if !known.contains(&name) {
        return Err(ApiError::UnknownSubset { name, known });
    }
    let snap = match state.subset_snapshot(&name) {
        Some(snap) => snap,
        None => {
            // Not computed yet (just after start, or added by a reload): the scrape in flight,
            // if any, brings it.
            state.wait_for_scrape().await;
            state
                .subset_snapshot(&name)
                .ok_or(ApiError::NoResultYet(name))?
        }
    };
    match &snap.rendered {
        Ok(rendered) => metrics_body(&state, conn.as_deref(), &headers, rendered).await,
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

/// The upstream response headers `/source` passes on: those that describe the body. Anything
/// else (`Set-Cookie`, `Location`, caching and connection headers...) is the upstream's
/// business, not its client's.
fn source_headers(upstream: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    for name in [header::CONTENT_TYPE, header::CONTENT_ENCODING] {
        if let Some(v) = upstream.get(&name) {
            out.insert(name, v.clone());
        }
    }
    // Content-Length stays valid: the body is passed through byte for byte. Only a single,
    // well-formed length is passed; otherwise the body is sent chunked.
    let mut lengths = upstream.get_all(header::CONTENT_LENGTH).iter();
    if let (Some(v), None) = (lengths.next(), lengths.next()) {
        if v.to_str().is_ok_and(|s| s.parse::<u64>().is_ok()) {
            out.insert(header::CONTENT_LENGTH, v.clone());
        }
    }
    out
}

/// `/source`: the body of one target as the upstream sent it. The status is metric-gate's own:
/// 200 when the upstream answered 2xx; any other upstream status (1xx such as
/// `101 Switching Protocols`, redirects, errors) is a 502 naming it, never passed on. At most
/// [`MAX_SOURCE_REQUESTS`] run at once; more are answered 503 at once.
async fn source(
    State(state): State<AppStateRef>,
    Query(q): Query<SourceQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Ok(slot) = Arc::clone(&state.source_slots).try_acquire_owned() else {
        return Err(ApiError::Busy {
            what: "/source",
            limit: MAX_SOURCE_REQUESTS,
        });
    };
    let timeout = effective_timeout(state.config().upstream.scrape_timeout, &headers);
    let deadline = Deadline::after(timeout);
    let targets = match deadline.run(state.targets()).await {
        Ok(t) => t?,
        Err(_) => {
            return Err(ApiError::Resolve(ResolveError::Lookup {
                name: state.config().upstream.spec.to_string(),
                cause: format!("timeout after {timeout:?}"),
            }))
        }
    };
    let target = pick_target(targets, q.target.as_deref())?;
    let ae = headers.get(header::ACCEPT_ENCODING);
    let fetch_error = |target: &Target, source| ApiError::Fetch {
        target: target.name.clone(),
        source,
    };
    let upstream = fetch::send(&state.client(), &target, ae, &deadline)
        .await
        .map_err(|e| fetch_error(&target, e))?;
    let status = upstream.status();
    if status.is_redirection() {
        let location = upstream
            .headers()
            .get(header::LOCATION)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_default();
        return Err(fetch_error(
            &target,
            FetchError::Redirect(status, clip(&location)),
        ));
    }
    if !status.is_success() {
        return Err(fetch_error(&target, FetchError::Status(status)));
    }
    state.mark_ready();
    let (parts, body) = upstream.into_parts();
    let name = target.name;
    // The body streams through as it arrives, still bounded by the deadline; the slot is held
    // until the body is done.
    let stream = fetch::body_stream(body, deadline).map_err(move |e| {
        let _slot = &slot;
        source_body_error(&name, e)
    });
    let mut resp = Response::new(Body::from_stream(stream));
    *resp.headers_mut() = source_headers(&parts.headers);
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

/// `GET /-/metrics`: OpenMetrics when the client asks for it, text 0.0.4 otherwise.
async fn self_metrics(State(state): State<AppStateRef>, headers: HeaderMap) -> Response {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let format = SelfMetricsFormat::negotiate(accept);
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(format.content_type()),
            ),
            (header::VARY, HeaderValue::from_static("Accept")),
        ],
        state.metrics.encode_as(format),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

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
