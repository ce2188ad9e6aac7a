//! Prometheus remote write, both ways: pushing metric-gate's lists to any number of endpoints,
//! and (later wired as `POST /api/v1/write`) forwarding received writes to them.
//!
//! ```text
//!  push loop: rendered list text ──Scrape::from_text──┐
//!  receiver:  request body ──receiver::decode──────────┤
//!                                                      ▼  per endpoint
//!       Encoder (external_labels, write_relabel_configs, stale markers, metadata, batches)
//!                         ──▶ Queue (bounded; drop-oldest or refuse) ──▶ sender task (HTTP)
//! ```
//!
//! - [`wire`]: the 1.0 and 2.0 protobuf messages, snappy block compression;
//! - [`convert`]: the version-neutral [`Series`] queues hold, and conversions to and from both
//!   versions (symbols table, metadata);
//! - [`config`]: `--remote-write.config-file`, Prometheus' `remote_write` fields;
//! - [`encode`]: scrape results and received data to an endpoint's batches;
//! - [`queue`], [`sender`]: one bounded queue and one sender task per endpoint;
//! - [`receiver`]: decoding and validating a received request;
//! - [`metrics`]: the `metric_gate_remote_write_*` self-metrics.
//!
//! [`RemoteWrite`] holds the endpoints of one configuration; a slow or dead endpoint only fills
//! its own queue and never delays the others or the caller.
//!
//! # How long an endpoint may be down before forwarded writes are refused
//! Forwarded data is refused (503) when it does not fit the endpoint's queue. With
//! `queue_config.capacity` C samples and an incoming write rate of R samples/s, an endpoint
//! may be unreachable for about C / R seconds (default C = 10000: 10 s at 1000 samples/s)
//! before senders see 503 and keep the data themselves. Raise `capacity` to ride out longer
//! outages (memory: roughly 100-200 bytes per queued sample, labels included).

pub mod config;
pub mod convert;
pub mod encode;
pub mod metrics;
pub mod queue;
pub mod receiver;
pub mod sender;
pub mod wire;

use std::time::Duration;

use futures_util::FutureExt as _;
use tokio::time::Instant;

pub use config::{EndpointConfig, RemoteWriteConfig};
pub use convert::{Series, SeriesMetadata};
pub use encode::{Batch, Scrape};
pub use metrics::RemoteWriteMetrics;
pub use receiver::{decode, Decoded, Reject};
pub use sender::{Endpoint, PushStats};
pub use wire::Protocol;

/// A forwarded write that some endpoint's queue cannot take now: answer 503 with
/// `Retry-After`, the sender keeps the data and retries.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("remote write endpoint {endpoint} is not keeping up (its queue is full); retry later")]
pub struct Refused {
    /// The endpoint whose queue is full.
    pub endpoint: String,
    /// What to answer in `Retry-After`.
    pub retry_after: Duration,
}

/// The endpoints of one remote-write configuration, each with its queue and sender task.
#[derive(Debug)]
pub struct RemoteWrite {
    interval: Duration,
    endpoints: Vec<Endpoint>,
}

impl RemoteWrite {
    /// Starts every endpoint of `config` (inside a tokio runtime). Logs the configuration's
    /// warnings. Fails when an endpoint's TLS files or credentials cannot be read.
    pub fn start(config: &RemoteWriteConfig, metrics: &RemoteWriteMetrics) -> Result<Self, String> {
        for w in &config.warnings {
            tracing::warn!("remote write configuration: {w}");
        }
        let endpoints = config
            .endpoints
            .iter()
            .map(|e| Endpoint::start(e.clone(), &config.external_labels, metrics))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(RemoteWrite {
            interval: config.interval,
            endpoints,
        })
    }

    /// How often the push loop should scrape and push.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// The endpoints, in configuration order.
    pub fn endpoints(&self) -> &[Endpoint] {
        &self.endpoints
    }

    /// The lists the endpoints push (`None`: the default list), each once.
    pub fn lists(&self) -> Vec<Option<&str>> {
        let mut out: Vec<Option<&str>> = Vec::new();
        for e in &self.endpoints {
            let l = e.config().subset.as_deref();
            if !out.contains(&l) {
                out.push(l);
            }
        }
        out
    }

    /// Queues one scrape of `list` (`None`: the default list) for every endpoint pushing it.
    pub fn push(&self, list: Option<&str>, scrape: &Scrape) -> Vec<(String, PushStats)> {
        self.endpoints
            .iter()
            .filter(|e| e.config().subset.as_deref() == list)
            .map(|e| (e.label().to_owned(), e.push_scrape(scrape)))
            .collect()
    }

    /// Queues a received write for every endpoint, or refuses it when one of them cannot take
    /// it. The check comes first, so a refused write is normally queued nowhere; two writes
    /// racing for the last room may leave one queued at some endpoints and refused overall,
    /// and the sender's retry then repeats samples there (receivers ignore an identical
    /// sample at the same timestamp).
    pub fn forward(&self, decoded: Decoded) -> Result<(), Refused> {
        let weight = usize::try_from(decoded.samples + decoded.histograms).unwrap_or(usize::MAX);
        let refused = |e: &Endpoint| Refused {
            endpoint: e.label().to_owned(),
            retry_after: e
                .config()
                .queue
                .batch_send_deadline
                .max(Duration::from_secs(1)),
        };
        if let Some(e) = self.endpoints.iter().find(|e| !e.has_room_for(weight)) {
            return Err(refused(e));
        }
        let n = self.endpoints.len();
        let Decoded {
            series, metadata, ..
        } = decoded;
        let mut series = Some(series);
        for (i, e) in self.endpoints.iter().enumerate() {
            let s = if i + 1 == n {
                series.take().unwrap_or_default()
            } else {
                series.clone().unwrap_or_default()
            };
            e.forward(s, metadata.clone()).map_err(|_| refused(e))?;
        }
        Ok(())
    }

    /// Hands over to `next`, the configuration a reload swaps in: an endpoint `next` keeps
    /// (same `name`, or same URL when unnamed) gives its live series to its successor and
    /// delivers its queue without stale markers; an endpoint `next` lacks is flushed (stale
    /// markers for its live series, then its queue). All at once, until `deadline`. Returns
    /// the labels of the endpoints that are gone (to forget their self-metrics).
    ///
    /// Call it before anything is pushed to `next`, and push nothing to `next` until it
    /// returns: an endpoint's old and new queues then reach it in order.
    pub async fn hand_over(&self, next: &RemoteWrite, deadline: Instant) -> Vec<String> {
        let mut gone = Vec::new();
        let mut work = Vec::new();
        for old in &self.endpoints {
            match next.endpoints.iter().find(|e| e.label() == old.label()) {
                Some(new) => {
                    new.adopt_series(old);
                    work.push(old.drain(deadline).boxed());
                }
                None => {
                    gone.push(old.label().to_owned());
                    work.push(old.flush(deadline).boxed());
                }
            }
        }
        futures_util::future::join_all(work).await;
        gone
    }

    /// Flushes every endpoint at once (stale markers for every live series, then what is
    /// queued) until `deadline`.
    pub async fn flush(&self, deadline: Instant) {
        futures_util::future::join_all(self.endpoints.iter().map(|e| e.flush(deadline))).await;
    }
}
