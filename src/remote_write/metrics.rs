//! Self-metrics of remote write, per endpoint, registered into the server's registry (whose
//! `metric_gate` prefix makes them `metric_gate_remote_write_*`).

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// The `endpoint` label: the endpoint's `name`, or its URL when unnamed.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EndpointLabel {
    /// The endpoint.
    pub endpoint: String,
}

/// Labels of sent requests.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// The endpoint.
    pub endpoint: String,
    /// The HTTP status code, or `error` when no response came (connection, TLS, timeout).
    pub code: String,
}

/// Labels of dropped samples.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DropLabels {
    /// The endpoint.
    pub endpoint: String,
    /// `queue_full` (the oldest batches made room for newer ones), `rejected` (a 4xx that is
    /// not retried), or `shutdown` (the flush deadline passed).
    pub reason: &'static str,
}

/// Labels of received remote-write requests.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReceivedLabels {
    /// `accepted`, or why the request was refused (see `receiver::Reject::kind`).
    pub result: &'static str,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn send_histogram() -> Histogram {
    // 5 ms .. ~82 s: a loopback receiver answers in milliseconds, a remote one under load in
    // seconds, and remote_timeout defaults to 30 s.
    Histogram::new(exponential_buckets(0.005, 2.0, 15))
}

/// Every remote-write metric. Cloning shares the series.
#[derive(Debug, Clone)]
pub struct RemoteWriteMetrics {
    /// Requests sent, by endpoint and status code.
    pub requests: Family<RequestLabels, Counter>,
    /// Samples (and histogram samples) the endpoint accepted.
    pub samples_sent: Family<EndpointLabel, Counter>,
    /// Metadata entries the endpoint accepted (1.0 metadata requests).
    pub metadata_sent: Family<EndpointLabel, Counter>,
    /// Samples sent again after a retryable failure.
    pub samples_retried: Family<EndpointLabel, Counter>,
    /// Samples dropped, by endpoint and reason.
    pub samples_dropped: Family<DropLabels, Counter>,
    /// Metadata entries dropped, by endpoint and reason.
    pub metadata_dropped: Family<DropLabels, Counter>,
    /// Samples (and metadata entries) queued now.
    pub queue_length: Family<EndpointLabel, Gauge>,
    /// The queue's capacity in samples.
    pub queue_capacity: Family<EndpointLabel, Gauge>,
    /// Unix time of the last successful request.
    pub last_send_timestamp: Family<EndpointLabel, Gauge<f64, AtomicU64>>,
    /// Duration of each request (including failed ones).
    pub send_duration: HistogramFamily<EndpointLabel>,
    /// The protocol version in use now (1 or 2).
    pub protocol: Family<EndpointLabel, Gauge>,
    /// Falls back from 2.0 to 1.0.
    pub fallbacks: Family<EndpointLabel, Counter>,
    /// Remote-write requests received, by result.
    pub received: Family<ReceivedLabels, Counter>,
}

impl RemoteWriteMetrics {
    /// Creates the metrics and registers them into `registry` (names under `remote_write_`).
    pub fn new(registry: &mut Registry) -> Self {
        let m = RemoteWriteMetrics {
            requests: Family::default(),
            samples_sent: Family::default(),
            metadata_sent: Family::default(),
            samples_retried: Family::default(),
            samples_dropped: Family::default(),
            metadata_dropped: Family::default(),
            queue_length: Family::default(),
            queue_capacity: Family::default(),
            last_send_timestamp: Family::default(),
            send_duration: Family::new_with_constructor(send_histogram),
            protocol: Family::default(),
            fallbacks: Family::default(),
            received: Family::default(),
        };
        let r = registry;
        r.register(
            "remote_write_requests",
            "Remote-write requests sent, by endpoint and HTTP status code (error: no response)",
            m.requests.clone(),
        );
        r.register(
            "remote_write_samples_sent",
            "Samples accepted by the remote-write endpoint",
            m.samples_sent.clone(),
        );
        r.register(
            "remote_write_metadata_sent",
            "Metadata entries accepted by the remote-write endpoint (1.0 metadata requests)",
            m.metadata_sent.clone(),
        );
        r.register(
            "remote_write_samples_retried",
            "Samples sent again after a retryable failure",
            m.samples_retried.clone(),
        );
        r.register(
            "remote_write_samples_dropped",
            "Samples dropped, by endpoint and reason (queue_full, rejected, shutdown)",
            m.samples_dropped.clone(),
        );
        r.register(
            "remote_write_metadata_dropped",
            "Metadata entries dropped, by endpoint and reason",
            m.metadata_dropped.clone(),
        );
        r.register(
            "remote_write_queue_length",
            "Samples queued for the endpoint now",
            m.queue_length.clone(),
        );
        r.register(
            "remote_write_queue_capacity",
            "Capacity of the endpoint's queue, in samples",
            m.queue_capacity.clone(),
        );
        r.register(
            "remote_write_last_send_timestamp_seconds",
            "Unix time of the last successful request to the endpoint",
            m.last_send_timestamp.clone(),
        );
        r.register(
            "remote_write_send_duration_seconds",
            "Duration of remote-write requests, by endpoint",
            m.send_duration.clone(),
        );
        r.register(
            "remote_write_protocol_version",
            "Remote-write protocol version in use for the endpoint (1 or 2)",
            m.protocol.clone(),
        );
        r.register(
            "remote_write_fallbacks",
            "Falls back from remote write 2.0 to 1.0 (415, or 2xx without written-headers)",
            m.fallbacks.clone(),
        );
        r.register(
            "remote_write_received_requests",
            "Remote-write requests received, by result",
            m.received.clone(),
        );
        m
    }

    /// Removes the series of an endpoint that a reload removed.
    pub fn forget(&self, endpoint: &str) {
        let l = EndpointLabel {
            endpoint: endpoint.to_owned(),
        };
        self.samples_sent.remove(&l);
        self.metadata_sent.remove(&l);
        self.samples_retried.remove(&l);
        self.queue_length.remove(&l);
        self.queue_capacity.remove(&l);
        self.last_send_timestamp.remove(&l);
        self.send_duration.remove(&l);
        self.protocol.remove(&l);
        self.fallbacks.remove(&l);
    }
}
