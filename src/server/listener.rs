//! The accept loop: TCP, optional TLS, HTTP/1.1, with the limits that keep slow or too many
//! clients from starving Prometheus.
//!
//! - **Connection cap** (`--web.max-connections`): each connection holds a slot from accept to
//!   close. A connection that arrives when every slot is taken is accepted and closed at once
//!   (counted as `metric_gate_http_connections_dropped_total{reason="max_connections"}`): the
//!   client learns immediately and can retry, instead of waiting unseen in the kernel backlog.
//! - **Header-read timeout** (`--web.header-read-timeout`): a request's headers must arrive
//!   whole within it, counted from when the server starts waiting for them, so a client that
//!   trickles a request line (slowloris) or sits idle on a keep-alive connection is closed.
//! - **TLS handshake timeout**: the same duration bounds the TLS handshake.
//! - **Response write timeout** (`--web.response-write-timeout`) and the bound on scrape
//!   results held by unread responses: see [`super::responses`]. Each connection's
//!   [`ConnControl`] is put in its requests' extensions for the handlers.
//!
//! With `--web.config.file`, each connection is served with the web config in force when it
//! was accepted (TLS settings, basic auth users, response headers); see
//! [`super::web_config`].

use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{header, HeaderValue, Request, Response, StatusCode};
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::AsyncWriteExt as _;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tower::ServiceExt as _;

use super::basic_auth::AuthOutcome;
use super::config::ListenerConfig;
use super::handlers::endpoint_of;
use super::metrics::SelfMetrics;
use super::responses::{ConnControl, WriteDeadlineIo};
use super::web_config::WebConfig;

/// Logs "connections refused at the cap" at most once per this interval, with a count.
const CAP_WARN_INTERVAL: Duration = Duration::from_secs(10);

/// Serves `router` on `listener` until `shutdown` completes; then stops accepting, lets every
/// request in flight finish, closes idle connections and returns. Connections and the requests
/// the listener answers itself (rate limit, basic auth) are counted in `metrics`.
pub(crate) async fn serve_connections(
    listener: TcpListener,
    router: Router,
    metrics: Arc<SelfMetrics>,
    cfg: ListenerConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let slots = Arc::new(Semaphore::new(cfg.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let refused = CapWarnings::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, _peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(s) => s,
                Err(e) => {
                    if !is_connection_error(&e) {
                        // Out of file descriptors and the like: wait instead of spinning.
                        tracing::error!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(500)).await;
                    }
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            metrics.count_dropped("max_connections");
            refused.note(cfg.max_connections);
            drop(stream);
            continue;
        };
        metrics.connections_accepted.inc();
        let web = cfg.web.as_ref().map(|w| w.current(&metrics));
        let conn = Connection {
            router: router.clone(),
            metrics: Arc::clone(&metrics),
            web,
            header_read_timeout: cfg.header_read_timeout,
            control: ConnControl::new(cfg.response_write_timeout),
            _open: OpenGuard::new(Arc::clone(&metrics), slot),
        };
        let watcher = graceful.watcher();
        tokio::spawn(conn.serve(stream, watcher));
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Errors of `accept` that concern one connection only (the next accept is fine).
fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}

/// Rate-limited warning about connections refused at the cap.
struct CapWarnings {
    since_last: AtomicU64,
    last: std::sync::Mutex<Option<Instant>>,
}

impl CapWarnings {
    fn new() -> Self {
        Self {
            since_last: AtomicU64::new(0),
            last: std::sync::Mutex::new(None),
        }
    }

    fn note(&self, max: usize) {
        let n = self.since_last.fetch_add(1, Ordering::Relaxed) + 1;
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if last.is_none_or(|t| t.elapsed() >= CAP_WARN_INTERVAL) {
            *last = Some(Instant::now());
            self.since_last.store(0, Ordering::Relaxed);
            tracing::warn!(
                max_connections = max,
                refused = n,
                "connection limit reached: closing new connections (--web.max-connections)"
            );
        }
    }
}

/// Holds a connection slot and the open-connections gauge for the connection's lifetime.
struct OpenGuard {
    metrics: Arc<SelfMetrics>,
    _slot: OwnedSemaphorePermit,
}

impl OpenGuard {
    fn new(metrics: Arc<SelfMetrics>, slot: OwnedSemaphorePermit) -> Self {
        metrics.connections_open.inc();
        Self {
            metrics,
            _slot: slot,
        }
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.metrics.connections_open.dec();
    }
}

/// One accepted connection.
struct Connection {
    router: Router,
    metrics: Arc<SelfMetrics>,
    web: Option<Arc<WebConfig>>,
    header_read_timeout: Duration,
    control: Arc<ConnControl>,
    _open: OpenGuard,
}

/// The answer to a plain HTTP request on a TLS port (as Go's servers give).
const PLAIN_HTTP_ON_TLS: &[u8] = b"HTTP/1.0 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\nClient sent an HTTP request to an HTTPS server.\n";

impl Connection {
    async fn serve(self, stream: TcpStream, watcher: Watcher) {
        let _ = stream.set_nodelay(true);
        let tls = self.web.as_ref().and_then(|w| w.tls.clone());
        match tls {
            None => {
                let io = WriteDeadlineIo::new(stream, Arc::clone(&self.control));
                self.serve_http(TokioIo::new(io), watcher).await
            }
            Some(tls) => {
                let deadline = tokio::time::Instant::now() + self.header_read_timeout;
                let dropped = |reason: &'static str| self.metrics.count_dropped(reason);
                // A TLS client starts with a handshake record (0x16); a letter is an HTTP
                // request line sent to the TLS port by mistake: say so, as Go servers do.
                let mut first = [0u8; 1];
                match tokio::time::timeout_at(deadline, stream.peek(&mut first)).await {
                    Err(_) => return dropped("tls_handshake_timeout"),
                    // Closed by the client before a byte (a port check, a load tool's
                    // pre-flight connect): nothing was refused, nothing to count.
                    Ok(Ok(0)) => return,
                    Ok(Err(_)) => return dropped("tls_handshake_error"),
                    Ok(Ok(_)) => {}
                }
                if first[0].is_ascii_alphabetic() {
                    dropped("plain_http_on_tls");
                    tracing::debug!("plain HTTP request on the TLS port");
                    let mut stream = stream;
                    let _ = tokio::time::timeout_at(deadline, async {
                        let _ = stream.write_all(PLAIN_HTTP_ON_TLS).await;
                        let _ = stream.shutdown().await;
                    })
                    .await;
                    return;
                }
                let io = WriteDeadlineIo::new(stream, Arc::clone(&self.control));
                let accept = tokio_rustls::TlsAcceptor::from(tls).accept(io);
                match tokio::time::timeout_at(deadline, accept).await {
                    Ok(Ok(tls_stream)) => self.serve_http(TokioIo::new(tls_stream), watcher).await,
                    Ok(Err(e)) => {
                        dropped("tls_handshake_error");
                        tracing::debug!(error = %e, "TLS handshake failed");
                    }
                    Err(_) => {
                        dropped("tls_handshake_timeout");
                        tracing::debug!("TLS handshake timed out");
                    }
                }
            }
        }
    }

    async fn serve_http<I>(self, io: TokioIo<I>, watcher: Watcher)
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let router = self.router.clone();
        let web = self.web.clone();
        let metrics = Arc::clone(&self.metrics);
        let control = Arc::clone(&self.control);
        let svc = service_fn(move |mut req: Request<Incoming>| {
            let router = router.clone();
            let web = web.clone();
            let metrics = Arc::clone(&metrics);
            let control = Arc::clone(&control);
            async move {
                control.request_started();
                req.extensions_mut().insert(Arc::clone(&control));
                let resp = handle(req, router, web.as_deref(), &metrics).await;
                control.response_ready();
                Ok::<_, Infallible>(resp)
            }
        });
        let mut builder = http1::Builder::new();
        builder
            .timer(TokioTimer::new())
            .header_read_timeout(self.header_read_timeout)
            .keep_alive(true);
        let conn = builder.serve_connection(io, svc);
        let result = tokio::select! {
            r = watcher.watch(conn) => r,
            () = self.control.evicted() => {
                // Dropping the connection closes it and frees what its response held.
                self.metrics.count_dropped("slow_reader");
                tracing::debug!("closed a connection holding an old scrape result (slow reader)");
                return;
            }
        };
        if let Err(e) = result {
            if self.control.timed_out() {
                self.metrics.count_dropped("response_write_timeout");
                tracing::debug!("response not written in time: connection closed");
            } else if e.is_timeout() {
                self.metrics.count_dropped("header_read_timeout");
                tracing::debug!("request headers not received in time: connection closed");
            } else {
                tracing::debug!(error = %e, "connection error");
            }
        }
    }
}

/// Basic auth, rate limit and configured headers around the router.
///
/// Authentication comes first, so that the rate limit counts authenticated requests only,
/// per user (see [`super::web_config::RateLimiter`]): a flood without valid credentials gets
/// 401s (or 503s when the bcrypt queue is full) and never uses up the requests of a
/// legitimate scraper. Without basic auth, the rate limit counts every request.
async fn handle(
    req: Request<Incoming>,
    router: Router,
    web: Option<&WebConfig>,
    metrics: &SelfMetrics,
) -> Response<Body> {
    let Some(web) = web else {
        return router.oneshot(req).await.unwrap_or_else(|e| match e {});
    };
    let endpoint = endpoint_of(req.uri().path());
    let user = match &web.auth {
        None => Ok(None),
        Some(auth) => match auth.check(req.headers().get(header::AUTHORIZATION)).await {
            AuthOutcome::Allowed(user) => Ok(Some(user)),
            AuthOutcome::Denied => {
                metrics.count_request(endpoint, 401);
                let mut r = status_response(StatusCode::UNAUTHORIZED);
                r.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic"));
                Err(r)
            }
            AuthOutcome::Busy => {
                metrics.count_request(endpoint, 503);
                metrics.basic_auth_checks_refused.inc();
                let mut r = status_response(StatusCode::SERVICE_UNAVAILABLE);
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                Err(r)
            }
        },
    };
    let mut resp = match user {
        Err(refused) => refused,
        Ok(user)
            if web
                .rate_limit
                .as_ref()
                .is_some_and(|r| !r.allow(user.as_deref())) =>
        {
            metrics.count_request(endpoint, 429);
            status_response(StatusCode::TOO_MANY_REQUESTS)
        }
        Ok(_) => router.oneshot(req).await.unwrap_or_else(|e| match e {}),
    };
    for (name, value) in &web.headers {
        resp.headers_mut().insert(name.clone(), value.clone());
    }
    resp
}

fn status_response(status: StatusCode) -> Response<Body> {
    let text = format!("{}\n", status.canonical_reason().unwrap_or("error"));
    let mut r = Response::new(Body::from(text));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}
