//! Remote write in the server: the push loop, the `POST /api/v1/write` receiver, reloading the
//! remote-write file, and the flush at shutdown. The protocol itself (encoding, queues, retries)
//! is [`crate::remote_write`]'s; this module wires it to the server's scrapes and routes.
//!
//! # The push loop
//! Every `interval` (the file's top-level `interval`, default 15 s) the loop takes the
//! server's single-flight scrape, the same one `/metrics` uses: a pull and a push that overlap
//! cost one upstream request, and the pushed values come from the same pipeline and counter
//! state as the pulled ones. Without any Prometheus pulling, the loop is what scrapes. Each list
//! an endpoint pushes is taken as rendered text 0.0.4 **without** the fetch time that subsets
//! served on `/metrics/<subset>` carry (the push stamps samples with the fetch time itself, and
//! only samples without a timestamp of their own get stale markers), parsed once
//! ([`Scrape::from_text`]) and queued for every endpoint pushing that list, on a blocking
//! thread. A scrape that failed (or a list over `--sample-limit`) is pushed as an empty scrape
//! stamped with the fetch time: every series of the list ends with a stale marker, as
//! Prometheus does for a failed target.
//!
//! # The receiver
//! With `--remote-write.receiver`, `POST /api/v1/write` (behind the listener's TLS, basic auth
//! and rate limit) reads the body up to `--remote-write.receiver.max-body-size`, decodes and
//! validates it ([`crate::remote_write::receiver`]), and queues it for every endpoint. Answers:
//! 204 (with the 2.0 written-headers for a 2.0 request); 400, 413 or 415 with the reason for a
//! request that will never succeed; 503 with `Retry-After` when an endpoint's queue cannot take
//! it (nothing accepted is ever dropped, so the sender keeps it and retries). Every request is
//! counted in `metric_gate_remote_write_received_requests_total{result}`.
//!
//! # Reload
//! A reload reads the file again. Same text: nothing changes (queues and series are kept).
//! New text: it is parsed and checked in full (with the relabel configuration the reload swaps
//! in: an endpoint's `subset` must exist), and the new endpoints are started; any error keeps
//! the running configuration, like a bad relabel file. Then the new endpoints are swapped in
//! and the old ones hand over ([`RemoteWrite::hand_over`]): an endpoint that stays (same
//! `name`, or same URL when unnamed) passes its live series on and delivers its queue without
//! stale markers; a removed endpoint ends its series with stale markers. Pushes and forwarded
//! writes wait for the hand-over (at most [`RELOAD_FLUSH_DEADLINE`]), so an endpoint never
//! receives new samples before its old queue; `/metrics` never waits.
//!
//! # Shutdown
//! After the listener stopped, every endpoint is flushed: stale markers for every live series,
//! then the queues are delivered, within `--remote-write.flush-deadline`.

pub(crate) mod endpoints;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use bytes::Bytes;
use tokio::time::Instant;

use crate::remote_write::metrics::ReceivedLabels;
use crate::remote_write::sender::WRITTEN_HEADERS;
use crate::remote_write::{decode, Protocol, Refused, Reject, RemoteWrite, Scrape};

use super::flight::Patience;
use super::state::{AppState, ScrapeOutcome};

use endpoints::RemoteWriteState;

/// The receiver's route.
pub const RECEIVER_PATH: &str = "/api/v1/write";

/// Scrapes and pushes every `interval` until aborted (see the module documentation). Ticks
/// keep their cadence; a push that took longer than the interval is followed by the next one
/// at once.
pub(crate) async fn push_loop(state: Arc<AppState>) {
    let Some(rw) = state.remote_write.as_ref() else {
        return;
    };
    let mut next = Instant::now();
    loop {
        tokio::time::sleep_until(next).await;
        let interval = rw.schedule().interval;
        push_once(&state, rw, interval).await;
        next += interval;
        let now = Instant::now();
        if next < now {
            next = now;
        }
    }
}

/// One tick: the shared scrape, then every pushed list queued for its endpoints.
async fn push_once(state: &Arc<AppState>, rw: &RemoteWriteState, interval: Duration) {
    let timeout = state.config().upstream.scrape_timeout.min(interval);
    // Text: the push parses the default list's text.
    let outcome = match state.scrape(Patience::from_now(timeout), false).await {
        Ok(outcome) => outcome,
        Err(e) => {
            // No result at all (the scrape task failed, or outlived its deadline): nothing is
            // queued this tick; the next tick scrapes again.
            tracing::error!(error = %e, "remote write: no scrape result to push");
            return;
        }
    };
    // The text of a scrape another client started with gzip is decompressed once, here.
    let default_text = match &outcome.result {
        Ok(r) => Some(r.text().await),
        Err(_) => None,
    };
    let current = Arc::clone(&rw.current).read_owned().await;
    let pushed = tokio::task::spawn_blocking(move || {
        push_lists(&current.rw, &outcome, default_text.as_ref())
    })
    .await;
    if let Err(e) = pushed {
        tracing::error!(error = %e, "remote write: the push task failed");
    }
}

/// Parses each pushed list of `outcome` and queues it for its endpoints.
fn push_lists(rw: &RemoteWrite, outcome: &ScrapeOutcome, default_text: Option<&Bytes>) {
    let at = outcome.fetched_at_ms;
    for list in rw.lists() {
        let text: Option<&Bytes> = match list {
            None => default_text,
            Some(name) => outcome.untimed.get(name),
        };
        let scrape = match text {
            Some(text) => match Scrape::from_text(text, at) {
                Ok(s) => s,
                Err(e) => {
                    // Our own rendering: not expected. Pushing nothing keeps the series alive
                    // until the next push, where an empty scrape would end them all.
                    tracing::error!(list = list.unwrap_or("(default)"), error = %e, "remote write: the rendered list does not parse; not pushed");
                    continue;
                }
            },
            // The scrape (or this list) failed: end every series, as for a failed target.
            None => Scrape {
                timestamp_ms: at,
                ..Scrape::default()
            },
        };
        for (endpoint, stats) in rw.push(list, &scrape) {
            tracing::debug!(
                endpoint = %endpoint,
                list = list.unwrap_or("(default)"),
                queued = stats.queued,
                stale_markers = stats.stale_markers,
                dropped_by_relabel = stats.dropped_by_relabel,
                dropped_from_queue = stats.dropped_from_queue,
                "remote write: scrape queued"
            );
        }
    }
}

/// The receiver's route when `--remote-write.receiver` is on; no route otherwise.
pub(super) fn routes(state: &AppState) -> Router<Arc<AppState>> {
    let on = state.remote_write.as_ref().is_some_and(|r| r.receiver());
    if on {
        Router::new().route(RECEIVER_PATH, post(receive))
    } else {
        Router::new()
    }
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
            HeaderValue::from_static("text/plain; charset=utf-8"),
        )],
        text,
    )
        .into_response()
}

fn header_str(headers: &HeaderMap, name: header::HeaderName) -> Option<&str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// What forwarding a decoded request came to.
enum Forwarded {
    /// Queued everywhere: the counts for the 2.0 written-headers.
    Accepted {
        protocol: Option<Protocol>,
        written: [u64; 3],
    },
    Rejected(Reject),
    Refused(Refused),
}

/// `POST /api/v1/write` (see the module documentation).
async fn receive(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let Some(rw) = state.remote_write.as_ref() else {
        return plain(StatusCode::NOT_FOUND, "remote write receiver not enabled");
    };
    let count = |result: &'static str| {
        rw.metrics
            .received
            .get_or_create(&ReceivedLabels { result })
            .inc();
    };
    let limit = rw.settings.receiver_max_body;
    let headers = req.headers().clone();
    let announced =
        header_str(&headers, header::CONTENT_LENGTH).and_then(|v| v.parse::<u64>().ok());
    let too_large = |what: String| {
        count("too_large");
        plain(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("{what} exceeds --remote-write.receiver.max-body-size ({limit} bytes)"),
        )
    };
    if let Some(n) = announced.filter(|&n| n > limit as u64) {
        return too_large(format!("body of {n} bytes"));
    }
    let body = match axum::body::to_bytes(req.into_body(), limit).await {
        Ok(b) => b,
        Err(e) => {
            let over = std::error::Error::source(&e)
                .is_some_and(|s| s.is::<http_body_util::LengthLimitError>())
                || e.to_string().contains("length limit");
            if over {
                return too_large("the body".to_owned());
            }
            count("body");
            return plain(StatusCode::BAD_REQUEST, format!("reading the body: {e}"));
        }
    };
    let current = Arc::clone(&rw.current).read_owned().await;
    let work = tokio::task::spawn_blocking(move || {
        let ct = header_str(&headers, header::CONTENT_TYPE);
        let ce = header_str(&headers, header::CONTENT_ENCODING);
        let decoded = match decode(ct, ce, &body, limit) {
            Ok(d) => d,
            Err(r) => return Forwarded::Rejected(r),
        };
        let protocol = decoded.protocol;
        let written = [decoded.samples, decoded.histograms, decoded.exemplars];
        match current.rw.forward(decoded) {
            Ok(()) => Forwarded::Accepted { protocol, written },
            Err(r) => Forwarded::Refused(r),
        }
    })
    .await;
    match work {
        Ok(Forwarded::Accepted { protocol, written }) => {
            count("accepted");
            let mut resp = StatusCode::NO_CONTENT.into_response();
            if protocol == Some(Protocol::V2) {
                for (name, n) in WRITTEN_HEADERS.iter().zip(written) {
                    resp.headers_mut()
                        .insert(HeaderName::from_static(name), HeaderValue::from(n));
                }
            }
            resp
        }
        Ok(Forwarded::Rejected(r)) => {
            count(r.kind);
            tracing::debug!(status = r.status.as_u16(), reason = %r.reason, "remote write: request refused");
            plain(r.status, r.reason)
        }
        Ok(Forwarded::Refused(r)) => {
            count("queue_full");
            let secs = r.retry_after.as_secs() + u64::from(r.retry_after.subsec_nanos() > 0);
            let mut resp = plain(StatusCode::SERVICE_UNAVAILABLE, r.to_string());
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs.max(1)));
            resp
        }
        Err(e) => {
            count("internal");
            tracing::error!(error = %e, "remote write: the receive task failed");
            plain(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }
}
