//! One endpoint: its encoder, its queue and the tokio task that sends the queue.
//!
//! # Delivery
//! The sender task takes the oldest batch (merging the series batches queued right behind it
//! into one request of at most `max_samples_per_send` samples), and sends it until it is
//! accepted, refused for good, or the endpoint shuts down:
//! - 2xx: done. For a 2.0 request, a 2xx **without** any `X-Prometheus-Remote-Write-*-Written`
//!   header means a 1.0 receiver decoded the request as an empty 1.0 message and stored
//!   nothing: the endpoint falls back to 1.0 (logged once) and the same batch is sent again as
//!   1.0. So does a 415 to a 2.0 request.
//! - 5xx, connection and TLS errors, timeouts (`remote_timeout`): retried after a jittered
//!   exponential backoff from `min_backoff` doubling to `max_backoff`.
//! - 429: retried only with `retry_on_http_429`, after `Retry-After` (seconds or an HTTP date)
//!   when the answer has one, else after the backoff.
//! - Any other 4xx: dropped (counted as `rejected`), never retried; the answer's body, cut to
//!   200 bytes, is logged.
//!
//! **Ordering**: there is one request in flight per endpoint, and a batch is retried before any
//! later batch is sent, so the samples of a series reach the endpoint in the order they were
//! queued, across retries and fallbacks. One connection per endpoint carries a few thousand
//! samples per request; a slow endpoint only fills its own queue.
//!
//! Failures are logged with the endpoint and the cause, at most once per 10 s per endpoint (with
//! the number of failures in between).

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use bytes::Bytes;
use http::header::{
    HeaderName, HeaderValue, AUTHORIZATION, CONTENT_ENCODING, CONTENT_TYPE, RETRY_AFTER, USER_AGENT,
};
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::{FixedServerNameResolver, HttpsConnector};
use hyper_util::client::legacy::connect::proxy::Tunnel;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use prost::Message as _;
use rustls::pki_types::ServerName;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::config::{Auth, EndpointConfig, Secret};
use super::convert::{
    metadata_list_to_v1, series_to_v1, series_to_v2, NameEscaping, Series, SeriesMetadata,
};
use super::encode::{Batch, Encoded, Encoder, Scrape};
use super::metrics::{DropLabels, EndpointLabel, RemoteWriteMetrics, RequestLabels};
use super::queue::{Dropped, Queue, QueueFull};
use super::wire::{compress, v1, Protocol};
use crate::upstream::fetch::error_chain;
use crate::upstream::tls::{client_config, describe_tls_error, find_tls_error};
use crate::upstream::{ClientOptions, TlsFiles};

/// `User-Agent` of every request.
pub const USER_AGENT_VALUE: &str = concat!("metric-gate/", env!("CARGO_PKG_VERSION"));
/// The header naming the protocol version of a request.
pub const VERSION_HEADER: &str = "x-prometheus-remote-write-version";
/// The 2.0 response headers counting what the receiver wrote.
pub const WRITTEN_HEADERS: [&str; 3] = [
    "x-prometheus-remote-write-samples-written",
    "x-prometheus-remote-write-histograms-written",
    "x-prometheus-remote-write-exemplars-written",
];
/// Most bytes of an error answer's body that are logged.
const ERROR_BODY_LOG: usize = 200;
/// Most bytes of an answer's body read (the rest is not waited for).
const BODY_READ_LIMIT: usize = 64 << 10;
/// At most one failure log line per endpoint this often.
const LOG_EVERY: Duration = Duration::from_secs(10);

type Body = Full<Bytes>;

/// The HTTP client of one endpoint: direct, or through an HTTP proxy with `CONNECT`.
#[derive(Clone)]
enum HttpClient {
    Direct(Client<HttpsConnector<HttpConnector>, Body>),
    Proxied(Client<HttpsConnector<Tunnel<HttpConnector>>, Body>),
}

impl HttpClient {
    async fn request(
        &self,
        req: Request<Body>,
    ) -> Result<http::Response<hyper::body::Incoming>, hyper_util::client::legacy::Error> {
        match self {
            HttpClient::Direct(c) => c.request(req).await,
            HttpClient::Proxied(c) => c.request(req).await,
        }
    }
}

/// The upstream TLS code names its flags; here the same settings are `tls_config` fields.
fn tls_field_names(e: String) -> String {
    e.replace("--upstream.ca-file", "tls_config.ca_file")
        .replace("--upstream.cert-file", "tls_config.cert_file")
        .replace("--upstream.key-file", "tls_config.key_file")
        .replace("--upstream.server-name", "tls_config.server_name")
}

fn build_client(cfg: &EndpointConfig) -> Result<HttpClient, String> {
    let https = cfg.url.scheme_str() == Some("https");
    let opts = ClientOptions {
        ca_file: cfg.tls.ca_file.clone(),
        cert_file: cfg.tls.cert_file.clone(),
        key_file: cfg.tls.key_file.clone(),
        server_name: cfg.tls.server_name.clone(),
        insecure_skip_verify: cfg.tls.insecure_skip_verify,
        ..ClientOptions::default()
    };
    let files = TlsFiles::read(&opts).map_err(tls_field_names)?;
    let tls = client_config(&opts, &files, https).map_err(tls_field_names)?;
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    http.enforce_http(false);
    http.set_keepalive(Some(Duration::from_secs(60)));
    http.set_connect_timeout(Some(cfg.remote_timeout));
    let builder = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http();
    let builder = match &cfg.tls.server_name {
        Some(name) => {
            let sn = ServerName::try_from(name.clone())
                .map_err(|e| format!("tls_config.server_name {name:?}: {e}"))?;
            builder.with_server_name_resolver(FixedServerNameResolver::new(sn))
        }
        None => builder,
    };
    let builder = builder.enable_http1();
    let pool = |b: &mut hyper_util::client::legacy::Builder| {
        b.pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(2);
    };
    let mut cb = Client::builder(TokioExecutor::new());
    pool(&mut cb);
    Ok(match &cfg.proxy_url {
        None => HttpClient::Direct(cb.build(builder.wrap_connector(http))),
        Some(proxy) => {
            HttpClient::Proxied(cb.build(builder.wrap_connector(Tunnel::new(proxy.clone(), http))))
        }
    })
}

fn read_secret(s: &Secret, field: &str) -> Result<String, String> {
    match s {
        Secret::Inline(v) => Ok(v.clone()),
        Secret::File(p) => {
            let text =
                std::fs::read_to_string(p).map_err(|e| format!("{field} {}: {e}", p.display()))?;
            let t = text.trim();
            if t.is_empty() {
                return Err(format!("{field} {}: the file is empty", p.display()));
            }
            Ok(t.to_owned())
        }
    }
}

/// The `Authorization` header of a request, credentials read from their files now (so a
/// rotated token is used by the next request).
fn auth_header(auth: &Auth) -> Result<Option<HeaderValue>, String> {
    let value = match auth {
        Auth::Basic { username, password } => {
            let user = read_secret(username, "basic_auth.username_file")?;
            let pw = password
                .as_ref()
                .map(|p| read_secret(p, "basic_auth.password_file"))
                .transpose()?
                .unwrap_or_default();
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pw}"))
            )
        }
        Auth::Authorization { kind, credentials } => {
            let Some(c) = credentials else {
                return Ok(None);
            };
            format!(
                "{kind} {}",
                read_secret(c, "authorization.credentials_file")?
            )
        }
    };
    let mut v = HeaderValue::from_str(&value)
        .map_err(|_| "the credential contains characters not allowed in an HTTP header")?;
    v.set_sensitive(true);
    Ok(Some(v))
}

/// The serialized, snappy-compressed body of `batch` in `protocol`.
pub fn encode_body(batch: &Batch, protocol: Protocol, escaping: NameEscaping) -> Bytes {
    let raw = match (batch, protocol) {
        (Batch::Series(s), Protocol::V1) => series_to_v1(s, escaping).encode_to_vec(),
        (Batch::Series(s), Protocol::V2) => series_to_v2(s).encode_to_vec(),
        (Batch::Metadata(m), _) => v1::WriteRequest {
            timeseries: Vec::new(),
            metadata: metadata_list_to_v1(m.iter().map(|m| &**m), escaping),
        }
        .encode_to_vec(),
    };
    compress(&raw)
}

/// `Retry-After` as a delay: delay-seconds or an HTTP date. `None` when absent, unreadable or
/// not in the future.
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return (secs > 0).then(|| Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(v).ok()?;
    at.duration_since(SystemTime::now())
        .ok()
        .filter(|d| !d.is_zero())
}

/// What one attempt came to.
#[derive(Debug)]
enum Outcome {
    /// Accepted.
    Sent,
    /// Send the same batch again as 1.0.
    FallBack(String),
    /// Try again later (`after`: the receiver's `Retry-After`).
    Retry {
        cause: String,
        after: Option<Duration>,
    },
    /// Refused for good.
    Reject(String),
}

/// Rate-limited failure logging.
#[derive(Debug, Default)]
struct LogLimit {
    last: Option<Instant>,
    suppressed: u64,
}

impl LogLimit {
    fn log(&mut self, endpoint: &str, message: &str) {
        let now = Instant::now();
        if self.last.is_some_and(|t| now.duration_since(t) < LOG_EVERY) {
            self.suppressed += 1;
            return;
        }
        if self.suppressed > 0 {
            tracing::warn!(
                endpoint,
                suppressed = self.suppressed,
                "remote write: {message} ({} more failures since the last message)",
                self.suppressed
            );
        } else {
            tracing::warn!(endpoint, "remote write: {message}");
        }
        self.last = Some(now);
        self.suppressed = 0;
    }
}

/// State shared by the endpoint handle and its sender task.
struct Shared {
    label: String,
    config: EndpointConfig,
    queue: Queue,
    /// 1 or 2: the protocol in use (a 2.0 endpoint may fall back to 1.0, never forward).
    protocol: AtomicU8,
    metrics: RemoteWriteMetrics,
}

impl Shared {
    fn protocol(&self) -> Protocol {
        if self.protocol.load(Ordering::Relaxed) == 2 {
            Protocol::V2
        } else {
            Protocol::V1
        }
    }

    fn endpoint_label(&self) -> EndpointLabel {
        EndpointLabel {
            endpoint: self.label.clone(),
        }
    }

    fn update_queue_gauge(&self) {
        self.metrics
            .queue_length
            .get_or_create(&self.endpoint_label())
            .set(self.queue.len() as i64);
    }

    fn count_dropped(&self, d: Dropped, reason: &'static str) {
        let l = DropLabels {
            endpoint: self.label.clone(),
            reason,
        };
        if d.samples > 0 {
            self.metrics
                .samples_dropped
                .get_or_create(&l)
                .inc_by(d.samples);
        }
        if d.metadata > 0 {
            self.metrics
                .metadata_dropped
                .get_or_create(&l)
                .inc_by(d.metadata);
        }
    }
}

/// One configured endpoint (see the module documentation). Dropping it stops its sender at
/// once; call [`Endpoint::flush`] first to deliver what is queued.
pub struct Endpoint {
    shared: Arc<Shared>,
    encoder: Mutex<Encoder>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("endpoint", &self.shared.label)
            .field("protocol", &self.shared.protocol())
            .field("queued", &self.shared.queue.len())
            .finish()
    }
}

/// What pushing one scrape to an endpoint did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PushStats {
    /// Samples queued (stale markers included).
    pub queued: u64,
    /// Stale markers among them.
    pub stale_markers: u64,
    /// Series dropped by `write_relabel_configs`.
    pub dropped_by_relabel: u64,
    /// Series left without a metric name by relabeling.
    pub dropped_nameless: u64,
    /// Older queued samples dropped to make room.
    pub dropped_from_queue: u64,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl Endpoint {
    /// Builds the endpoint's client (reading its TLS files now, so bad ones fail at start) and
    /// starts its sender task. Must run inside a tokio runtime.
    pub fn start(
        config: EndpointConfig,
        external_labels: &[(String, String)],
        metrics: &RemoteWriteMetrics,
    ) -> Result<Endpoint, String> {
        let label = config.label();
        let client = build_client(&config).map_err(|e| format!("remote_write {label}: {e}"))?;
        if let Some(auth) = &config.auth {
            auth_header(auth).map_err(|e| format!("remote_write {label}: {e}"))?;
        }
        let encoder = Encoder::new(
            external_labels.to_vec(),
            config.write_relabel.clone(),
            config.queue.max_samples_per_send,
            config.metadata,
        );
        let protocol = match config.protocol {
            Protocol::V1 => 1,
            Protocol::V2 => 2,
        };
        let shared = Arc::new(Shared {
            queue: Queue::new(config.queue.capacity),
            label,
            config,
            protocol: AtomicU8::new(protocol),
            metrics: metrics.clone(),
        });
        let l = shared.endpoint_label();
        metrics
            .queue_capacity
            .get_or_create(&l)
            .set(shared.queue.capacity() as i64);
        metrics.queue_length.get_or_create(&l).set(0);
        metrics.protocol.get_or_create(&l).set(i64::from(protocol));
        let task = SenderTask {
            shared: shared.clone(),
            client,
            log: LogLimit::default(),
        };
        let handle = tokio::spawn(task.run());
        Ok(Endpoint {
            shared,
            encoder: Mutex::new(encoder),
            task: Mutex::new(Some(handle)),
        })
    }

    /// The `endpoint` label: name, or URL when unnamed.
    pub fn label(&self) -> &str {
        &self.shared.label
    }

    /// The endpoint's configuration.
    pub fn config(&self) -> &EndpointConfig {
        &self.shared.config
    }

    /// The protocol in use now.
    pub fn protocol(&self) -> Protocol {
        self.shared.protocol()
    }

    /// Samples (and metadata entries) queued now.
    pub fn queued(&self) -> usize {
        self.shared.queue.len()
    }

    fn encoder(&self) -> std::sync::MutexGuard<'_, Encoder> {
        self.encoder.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn enqueue_dropping_oldest(&self, enc: Encoded) -> PushStats {
        let queued: usize = enc.batches.iter().map(Batch::weight).sum();
        let dropped = self.shared.queue.push_drop_oldest(enc.batches);
        self.shared.count_dropped(dropped, "queue_full");
        if dropped.samples + dropped.metadata > 0 {
            tracing::warn!(
                endpoint = %self.shared.label,
                samples = dropped.samples,
                "remote write: queue full, dropped the oldest {} samples (the endpoint is slower than the scrapes)",
                dropped.samples
            );
        }
        self.shared.update_queue_gauge();
        PushStats {
            queued: queued as u64,
            stale_markers: enc.stale_markers,
            dropped_by_relabel: enc.dropped_by_relabel,
            dropped_nameless: enc.dropped_nameless,
            dropped_from_queue: dropped.samples,
        }
    }

    /// Encodes one scrape of the endpoint's list and queues it, dropping the oldest queued
    /// batches when full. CPU work proportional to the scrape: call it off the async workers
    /// for large ones.
    pub fn push_scrape(&self, scrape: &Scrape) -> PushStats {
        let enc = self.encoder().encode(scrape, self.protocol());
        self.enqueue_dropping_oldest(enc)
    }

    /// Relabels received data and queues it whole, or refuses it when the queue cannot take
    /// it (the receiver then answers 503: forwarded data is never dropped once accepted).
    pub fn forward(
        &self,
        series: Vec<Series>,
        metadata: Vec<Arc<SeriesMetadata>>,
    ) -> Result<PushStats, QueueFull> {
        let enc = self.encoder().forward(series, metadata, self.protocol());
        let queued: usize = enc.batches.iter().map(Batch::weight).sum();
        self.shared.queue.push_or_refuse(enc.batches)?;
        self.shared.update_queue_gauge();
        Ok(PushStats {
            queued: queued as u64,
            dropped_by_relabel: enc.dropped_by_relabel,
            dropped_nameless: enc.dropped_nameless,
            ..PushStats::default()
        })
    }

    /// Takes over the live series of `previous`, this endpoint as configured before a reload:
    /// the reload itself then ends no series, and a series the new configuration no longer
    /// sends gets its stale marker at the next push. Call before the first push.
    pub fn adopt_series(&self, previous: &Endpoint) {
        let mut prev = previous.encoder();
        self.encoder().take_live_from(&mut prev);
    }

    /// Whether `n` more forwarded samples would be accepted now.
    pub fn has_room_for(&self, n: usize) -> bool {
        let q = &self.shared.queue;
        q.is_empty() || q.len() + n <= q.capacity()
    }

    /// Queues stale markers for every live series, then delivers what is queued until
    /// `deadline`; what is left then is dropped (counted as `shutdown`). The endpoint sends
    /// nothing afterwards.
    pub async fn flush(&self, deadline: Instant) {
        let enc = self.encoder().stale_all(now_ms(), self.protocol());
        self.enqueue_dropping_oldest(enc);
        self.drain(deadline).await;
    }

    /// Delivers what is queued until `deadline`, without stale markers (a reload that keeps
    /// the endpoint: its series go on in the new one, see [`Endpoint::adopt_series`]); what
    /// is left then is dropped (counted as `shutdown`). The endpoint sends nothing afterwards.
    pub async fn drain(&self, deadline: Instant) {
        self.shared.queue.close();
        let handle = self.task.lock().unwrap_or_else(|p| p.into_inner()).take();
        let Some(mut handle) = handle else {
            return;
        };
        if tokio::time::timeout_at(deadline, &mut handle)
            .await
            .is_err()
        {
            handle.abort();
            let left = self.shared.queue.drain();
            self.shared.count_dropped(left, "shutdown");
            self.shared.update_queue_gauge();
            tracing::warn!(
                endpoint = %self.shared.label,
                samples = left.samples,
                "remote write: flush deadline passed; {} queued samples (and the request in flight) not delivered",
                left.samples
            );
        }
    }
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        if let Some(h) = self.task.lock().unwrap_or_else(|p| p.into_inner()).take() {
            h.abort();
        }
    }
}

/// The sender task of one endpoint.
struct SenderTask {
    shared: Arc<Shared>,
    client: HttpClient,
    log: LogLimit,
}

impl SenderTask {
    async fn run(mut self) {
        while let Some(batch) = self.next_batch().await {
            self.shared.update_queue_gauge();
            self.send(batch).await;
        }
    }

    /// The next request's batch: the oldest batch, with the series batches queued right behind
    /// it merged in up to `max_samples_per_send`. A partial batch of forwarded data waits up
    /// to `batch_send_deadline` (from when it was queued) for more.
    async fn next_batch(&self) -> Option<Batch> {
        let q = &self.shared.queue;
        let first = q.pop().await?;
        let max = self.shared.config.queue.max_samples_per_send;
        let deadline = first.queued_at + self.shared.config.queue.batch_send_deadline;
        let mut complete = first.complete;
        let Batch::Series(mut series) = first.batch else {
            return Some(first.batch);
        };
        let mut n: usize = series.iter().map(Series::sample_count).sum();
        loop {
            while n < max {
                let Some(next) = q.pop_series_fitting(max - n) else {
                    break;
                };
                n += next.batch.weight();
                complete = next.complete;
                if let Batch::Series(s) = next.batch {
                    series.extend(s);
                }
            }
            if n >= max || complete || q.is_closed() || !q.is_empty() || Instant::now() >= deadline
            {
                break;
            }
            q.wait_until(deadline).await;
        }
        Some(Batch::Series(series))
    }

    fn set_protocol(&self, p: Protocol) {
        let v = if p == Protocol::V2 { 2 } else { 1 };
        self.shared.protocol.store(v, Ordering::Relaxed);
        self.shared
            .metrics
            .protocol
            .get_or_create(&self.shared.endpoint_label())
            .set(i64::from(v));
    }

    /// Sends `batch` until it is accepted or refused for good (see the module documentation).
    async fn send(&mut self, batch: Batch) {
        let cfg = &self.shared.config;
        let (min_backoff, max_backoff) = (cfg.queue.min_backoff, cfg.queue.max_backoff);
        let escaping = cfg.name_escaping;
        let weight = batch.weight() as u64;
        let is_metadata = matches!(batch, Batch::Metadata(_));
        let mut backoff = min_backoff;
        let mut attempt: u32 = 0;
        let mut body: Option<(Protocol, Bytes)> = None;
        loop {
            let protocol = self.shared.protocol();
            if is_metadata && protocol == Protocol::V2 {
                // 2.0 carries metadata in the series; nothing to send.
                return;
            }
            let bytes = match &body {
                Some((p, b)) if *p == protocol => b.clone(),
                _ => {
                    let b = encode_body(&batch, protocol, escaping);
                    body = Some((protocol, b.clone()));
                    b
                }
            };
            let outcome = self.attempt(bytes, protocol, attempt).await;
            let label = self.shared.endpoint_label();
            let m = &self.shared.metrics;
            match outcome {
                Outcome::Sent => {
                    if is_metadata {
                        m.metadata_sent.get_or_create(&label).inc_by(weight);
                    } else {
                        m.samples_sent.get_or_create(&label).inc_by(weight);
                    }
                    let now = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .map_or(0.0, |d| d.as_secs_f64());
                    m.last_send_timestamp.get_or_create(&label).set(now);
                    return;
                }
                Outcome::FallBack(why) if protocol == Protocol::V2 => {
                    tracing::warn!(
                        endpoint = %self.shared.label,
                        "remote write: the endpoint does not take remote write 2.0 ({why}); falling back to 1.0 (prometheus.WriteRequest) and sending the same data again"
                    );
                    m.fallbacks.get_or_create(&label).inc();
                    self.set_protocol(Protocol::V1);
                    attempt = 0;
                    backoff = min_backoff;
                }
                Outcome::FallBack(why) | Outcome::Reject(why) => {
                    self.shared.count_dropped(
                        if is_metadata {
                            Dropped {
                                samples: 0,
                                metadata: weight,
                            }
                        } else {
                            Dropped {
                                samples: weight,
                                metadata: 0,
                            }
                        },
                        "rejected",
                    );
                    self.log.log(
                        &self.shared.label,
                        &format!("request refused, {weight} samples dropped (not retried): {why}"),
                    );
                    return;
                }
                Outcome::Retry { cause, after } => {
                    let sleep = after.unwrap_or_else(|| jitter(backoff, min_backoff));
                    self.log.log(
                        &self.shared.label,
                        &format!("request failed, retrying in {sleep:?}: {cause}"),
                    );
                    tokio::time::sleep(sleep).await;
                    if !is_metadata {
                        m.samples_retried.get_or_create(&label).inc_by(weight);
                    }
                    backoff = (backoff * 2).min(max_backoff);
                    attempt += 1;
                }
            }
        }
    }

    /// One HTTP request of `body` as `protocol`; `attempt` counts earlier failed tries.
    async fn attempt(&self, body: Bytes, protocol: Protocol, attempt: u32) -> Outcome {
        let cfg = &self.shared.config;
        let mut req = Request::post(cfg.url.clone());
        if let Some(h) = req.headers_mut() {
            for (n, v) in &cfg.headers {
                h.insert(n.clone(), v.clone());
            }
            // The protocol's own headers last: nothing configured can replace them.
            h.insert(CONTENT_ENCODING, HeaderValue::from_static("snappy"));
            h.insert(
                CONTENT_TYPE,
                HeaderValue::from_static(protocol.content_type()),
            );
            h.insert(
                HeaderName::from_static(VERSION_HEADER),
                HeaderValue::from_static(protocol.version()),
            );
            h.insert(USER_AGENT, HeaderValue::from_static(USER_AGENT_VALUE));
            if attempt > 0 {
                h.insert(HeaderName::from_static("retry-attempt"), attempt.into());
            }
            if let Some(auth) = &cfg.auth {
                match auth_header(auth) {
                    Ok(Some(v)) => {
                        h.insert(AUTHORIZATION, v);
                    }
                    Ok(None) => {}
                    Err(e) => {
                        return Outcome::Retry {
                            cause: e,
                            after: None,
                        }
                    }
                }
            }
        }
        let req = match req.body(Full::new(body)) {
            Ok(r) => r,
            Err(e) => return Outcome::Reject(format!("building the request: {e}")),
        };
        let started = Instant::now();
        let client = self.client.clone();
        let exchange = async move {
            let resp = client.request(req).await?;
            let (parts, body) = resp.into_parts();
            // Read (a bounded part of) the body so the connection can be reused.
            let bytes = Limited::new(body, BODY_READ_LIMIT)
                .collect()
                .await
                .map(|c| c.to_bytes())
                .unwrap_or_default();
            Ok::<_, hyper_util::client::legacy::Error>((parts, bytes))
        };
        let result = tokio::time::timeout(cfg.remote_timeout, exchange).await;
        let label = self.shared.endpoint_label();
        self.shared
            .metrics
            .send_duration
            .get_or_create(&label)
            .observe(started.elapsed().as_secs_f64());
        let count = |code: String| {
            self.shared
                .metrics
                .requests
                .get_or_create(&RequestLabels {
                    endpoint: self.shared.label.clone(),
                    code,
                })
                .inc();
        };
        let (parts, resp_body) = match result {
            Err(_) => {
                count("error".into());
                return Outcome::Retry {
                    cause: format!("no answer within remote_timeout ({:?})", cfg.remote_timeout),
                    after: None,
                };
            }
            Ok(Err(e)) => {
                count("error".into());
                let cause = match find_tls_error(&e) {
                    Some(t) => tls_field_names(describe_tls_error(t)),
                    None => error_chain(&e),
                };
                return Outcome::Retry { cause, after: None };
            }
            Ok(Ok(r)) => r,
        };
        count(parts.status.as_u16().to_string());
        classify(
            parts.status,
            &parts.headers,
            &resp_body,
            protocol,
            cfg.queue.retry_on_http_429,
        )
    }
}

/// The first `ERROR_BODY_LOG` bytes of an answer's body, as text.
fn body_excerpt(body: &[u8]) -> String {
    let cut = &body[..body.len().min(ERROR_BODY_LOG)];
    let mut s = String::from_utf8_lossy(cut).trim().replace('\n', " ");
    if body.len() > ERROR_BODY_LOG {
        s.push_str("...");
    }
    s
}

fn classify(
    status: StatusCode,
    headers: &http::HeaderMap,
    body: &[u8],
    protocol: Protocol,
    retry_429: bool,
) -> Outcome {
    let what = |s: StatusCode| {
        let text = body_excerpt(body);
        if text.is_empty() {
            format!("server answered {s}")
        } else {
            format!("server answered {s}: {text}")
        }
    };
    if status.is_success() {
        if protocol == Protocol::V2 && !WRITTEN_HEADERS.iter().any(|h| headers.contains_key(*h)) {
            return Outcome::FallBack(format!(
                "it answered {status} without X-Prometheus-Remote-Write-Samples-Written"
            ));
        }
        return Outcome::Sent;
    }
    if status == StatusCode::UNSUPPORTED_MEDIA_TYPE {
        return Outcome::FallBack(what(status));
    }
    let retry_after = || {
        headers
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after)
    };
    if status.is_server_error() {
        return Outcome::Retry {
            cause: what(status),
            after: retry_after(),
        };
    }
    if status == StatusCode::TOO_MANY_REQUESTS && retry_429 {
        return Outcome::Retry {
            cause: what(status),
            after: retry_after(),
        };
    }
    Outcome::Reject(what(status))
}

/// A retry delay around `backoff`: uniformly in `[backoff/2, backoff]`, never below `min`, so
/// endpoints failing together do not retry in lockstep.
fn jitter(backoff: Duration, min: Duration) -> Duration {
    backoff.mul_f64(0.5 + fastrand::f64() * 0.5).max(min)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("3"), Some(Duration::from_secs(3)));
        assert_eq!(parse_retry_after(" 0 "), None);
        assert_eq!(parse_retry_after("soon"), None);
        let later = SystemTime::now() + Duration::from_secs(120);
        let d = parse_retry_after(&httpdate::fmt_http_date(later)).unwrap();
        assert!(
            d > Duration::from_secs(100) && d <= Duration::from_secs(120),
            "{d:?}"
        );
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }

    #[test]
    fn classification() {
        let h = http::HeaderMap::new();
        let mut written = http::HeaderMap::new();
        written.insert(WRITTEN_HEADERS[0], HeaderValue::from_static("3"));
        use Protocol::*;
        assert!(matches!(
            classify(StatusCode::NO_CONTENT, &h, b"", V1, false),
            Outcome::Sent
        ));
        assert!(matches!(
            classify(StatusCode::NO_CONTENT, &written, b"", V2, false),
            Outcome::Sent
        ));
        assert!(matches!(
            classify(StatusCode::NO_CONTENT, &h, b"", V2, false),
            Outcome::FallBack(_)
        ));
        assert!(matches!(
            classify(StatusCode::UNSUPPORTED_MEDIA_TYPE, &h, b"", V2, false),
            Outcome::FallBack(_)
        ));
        assert!(matches!(
            classify(StatusCode::SERVICE_UNAVAILABLE, &h, b"", V1, false),
            Outcome::Retry { .. }
        ));
        assert!(matches!(
            classify(StatusCode::TOO_MANY_REQUESTS, &h, b"", V1, false),
            Outcome::Reject(_)
        ));
        let mut ra = http::HeaderMap::new();
        ra.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        match classify(StatusCode::TOO_MANY_REQUESTS, &ra, b"", V1, true) {
            Outcome::Retry { after, .. } => assert_eq!(after, Some(Duration::from_secs(7))),
            o => panic!("{o:?}"),
        }
        let long = vec![b'x'; 500];
        match classify(StatusCode::BAD_REQUEST, &h, &long, V1, true) {
            Outcome::Reject(m) => {
                assert!(m.starts_with("server answered 400 Bad Request: xxx"), "{m}");
                assert!(m.len() < 260 && m.ends_with("..."), "{m}");
            }
            o => panic!("{o:?}"),
        }
    }

    #[test]
    fn jitter_stays_in_range() {
        for _ in 0..100 {
            let d = jitter(Duration::from_millis(400), Duration::from_millis(30));
            assert!(d >= Duration::from_millis(200) && d <= Duration::from_millis(400));
        }
        assert_eq!(
            jitter(Duration::from_millis(30), Duration::from_millis(30)),
            Duration::from_millis(30)
        );
    }

    #[test]
    fn auth_headers() {
        let dir = tempfile::tempdir().unwrap();
        let pw = dir.path().join("pw");
        std::fs::write(&pw, "open sesame\n").unwrap();
        let basic = Auth::Basic {
            username: Secret::Inline("ali".into()),
            password: Some(Secret::File(pw)),
        };
        assert_eq!(
            auth_header(&basic).unwrap().unwrap(),
            "Basic YWxpOm9wZW4gc2VzYW1l"
        );
        let bearer = Auth::Authorization {
            kind: "Bearer".into(),
            credentials: Some(Secret::Inline("t0k".into())),
        };
        assert_eq!(auth_header(&bearer).unwrap().unwrap(), "Bearer t0k");
        let missing = Auth::Authorization {
            kind: "Bearer".into(),
            credentials: Some(Secret::File(dir.path().join("nope"))),
        };
        assert!(auth_header(&missing)
            .unwrap_err()
            .starts_with("authorization.credentials_file "));
    }
}
