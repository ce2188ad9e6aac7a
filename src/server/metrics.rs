//! metric-gate's own metrics, served on `/-/metrics` (OpenMetrics text from `prometheus-client`;
//! never spliced into the proxied 0.0.4 output).

use std::sync::atomic::AtomicU64;
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

/// The `subset` label value of the default relabel list (`/metrics`).
pub const DEFAULT_SUBSET_LABEL: &str = "(default)";

/// Labels of HTTP requests served.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// Route pattern: `/metrics`, `/metrics/{subset}`, `/source`, ...
    pub endpoint: &'static str,
    /// HTTP status code.
    pub code: String,
}

/// Labels of per-target upstream metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TargetLabels {
    /// `ip:port` in fan-out mode, the URL's authority otherwise.
    pub target: String,
}

/// Labels of upstream errors.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// As in [`TargetLabels`].
    pub target: String,
    /// `connect`, `tls`, `auth`, `timeout`, `status`, `redirect`, `content_type`, `body`,
    /// `decode`, `too_large`, `line_too_long`, `parse`, `label_limit`, `label_name_length_limit`,
    /// `label_value_length_limit` or `resolve`.
    pub cause: &'static str,
}

/// Labels of connections the listener closed without serving them to the end.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DroppedLabels {
    /// `max_connections`, `tls_handshake_timeout`, `tls_handshake_error`, `plain_http_on_tls`,
    /// `header_read_timeout`, `response_write_timeout` or `slow_reader` (closed because it
    /// still held an old scrape result, see `server::responses`).
    pub reason: &'static str,
}

/// Labels of web config reloads.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReloadLabels {
    /// `success` or `failure`.
    pub result: &'static str,
}

/// Labels of per-subset metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SubsetLabels {
    /// The subset's name, or [`DEFAULT_SUBSET_LABEL`].
    pub subset: String,
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn duration_histogram() -> Histogram {
    // 5 ms .. ~82 s: loopback sidecars answer in milliseconds, big fan-outs in tens of seconds.
    Histogram::new(exponential_buckets(0.005, 2.0, 15))
}

/// Every self-metric, registered once.
#[derive(Debug)]
pub struct SelfMetrics {
    registry: Registry,
    /// HTTP requests served, by endpoint and status.
    pub requests: Family<RequestLabels, Counter>,
    /// `/metrics` requests that joined a scrape already in flight instead of starting one.
    pub scrapes_shared: Counter,
    /// Upstream request duration (request sent to body parsed), by target.
    pub upstream_duration: HistogramFamily<TargetLabels>,
    /// Upstream requests that failed, by target and cause.
    pub upstream_errors: Family<ErrorLabels, Counter>,
    /// Decoded body bytes read from upstreams.
    pub bytes_read: Counter,
    /// Body bytes received on the wire (compressed when upstreams used gzip).
    pub wire_bytes_read: Counter,
    /// Samples parsed from upstreams.
    pub series_read: Counter,
    /// Upstream bodies that failed to parse (the parser stops at the first bad line).
    pub parse_errors: Counter,
    /// Series written by the last scrape, by subset.
    pub series_written: Family<SubsetLabels, Gauge>,
    /// Samples dropped by relabel rules, by subset.
    pub dropped_by_relabel: Family<SubsetLabels, Counter>,
    /// Samples dropped because relabeling left them without a metric name, by subset.
    pub dropped_nameless: Family<SubsetLabels, Counter>,
    /// Targets found by the last resolution (1 in static mode).
    pub targets: Gauge,
    /// Targets of the last scrape that contributed their series.
    pub targets_up: Gauge,
    /// Targets whose relabel programs and aggregation buffers are kept between scrapes.
    pub cached_targets: Gauge,
    /// Entries in the relabel decision caches, over all targets and subsets.
    pub relabel_cache_entries: Gauge,
    /// Raw series remembered by the cross-scrape series cache, over all targets.
    pub series_cache_entries: Gauge,
    /// Samples whose outcome came from the series cache.
    pub series_cache_hits: Counter,
    /// Samples relabeled and aggregated in full (not in the series cache).
    pub series_cache_misses: Counter,
    /// Bytes held by the aggregated output of the last scrape, by subset.
    pub aggregate_bytes: Family<SubsetLabels, Gauge>,
    /// 1 if the last configuration reload succeeded (or none was tried since start), else 0.
    pub config_last_reload_successful: Gauge,
    /// When the configuration was last loaded successfully (start or reload), Unix seconds.
    pub config_last_reload_success_timestamp: Gauge<f64, AtomicU64>,
    /// Scrapes whose output of a list had more series than `--sample-limit`, by subset.
    pub sample_limit_exceeded: Family<SubsetLabels, Counter>,
    /// TCP connections accepted (and given a connection slot).
    pub connections_accepted: Counter,
    /// Connections open now (TLS handshake or HTTP).
    pub connections_open: Gauge,
    /// Connections closed early, by reason.
    pub connections_dropped: Family<DroppedLabels, Counter>,
    /// Web config reloads after a file changed, by result.
    pub web_config_reloads: Family<ReloadLabels, Counter>,
    /// 1 if the last web config reload succeeded (or none was needed), 0 if it failed.
    pub web_config_last_reload_successful: Gauge,
    /// Bytes of scrape results held by responses not yet written (see `server::responses`).
    pub response_held_bytes: Gauge,
    /// Basic-auth checks refused at once because the bcrypt queue was full (answered 503).
    pub basic_auth_checks_refused: Counter,
}

impl SelfMetrics {
    /// Registers every metric under the `metric_gate_` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("metric_gate");
        let m = Self {
            requests: Family::default(),
            scrapes_shared: Counter::default(),
            upstream_duration: Family::new_with_constructor(duration_histogram),
            upstream_errors: Family::default(),
            bytes_read: Counter::default(),
            wire_bytes_read: Counter::default(),
            series_read: Counter::default(),
            parse_errors: Counter::default(),
            series_written: Family::default(),
            dropped_by_relabel: Family::default(),
            dropped_nameless: Family::default(),
            targets: Gauge::default(),
            targets_up: Gauge::default(),
            cached_targets: Gauge::default(),
            relabel_cache_entries: Gauge::default(),
            series_cache_entries: Gauge::default(),
            series_cache_hits: Counter::default(),
            series_cache_misses: Counter::default(),
            aggregate_bytes: Family::default(),
            config_last_reload_successful: Gauge::default(),
            config_last_reload_success_timestamp: Gauge::default(),
            sample_limit_exceeded: Family::default(),
            connections_accepted: Counter::default(),
            connections_open: Gauge::default(),
            connections_dropped: Family::default(),
            web_config_reloads: Family::default(),
            web_config_last_reload_successful: Gauge::default(),
            response_held_bytes: Gauge::default(),
            basic_auth_checks_refused: Counter::default(),
            registry: Registry::default(),
        };
        let r = &mut registry;
        r.register(
            "http_requests",
            "HTTP requests served, by endpoint and status code",
            m.requests.clone(),
        );
        r.register(
            "scrapes_shared",
            "/metrics requests that shared a scrape already in flight",
            m.scrapes_shared.clone(),
        );
        r.register(
            "upstream_request_duration_seconds",
            "Upstream request duration, from request to parsed body, by target",
            m.upstream_duration.clone(),
        );
        r.register(
            "upstream_errors",
            "Failed upstream requests, by target and cause",
            m.upstream_errors.clone(),
        );
        r.register(
            "upstream_read_bytes",
            "Decoded bytes read from upstream bodies",
            m.bytes_read.clone(),
        );
        r.register(
            "upstream_wire_bytes",
            "Bytes received from upstreams on the wire (compressed if gzip)",
            m.wire_bytes_read.clone(),
        );
        r.register(
            "series_read",
            "Samples parsed from upstream bodies",
            m.series_read.clone(),
        );
        r.register(
            "parse_errors",
            "Upstream bodies that failed to parse",
            m.parse_errors.clone(),
        );
        r.register(
            "series_written",
            "Series in the last scrape's output, by subset",
            m.series_written.clone(),
        );
        r.register(
            "series_dropped_by_relabel",
            "Samples dropped by relabel rules, by subset",
            m.dropped_by_relabel.clone(),
        );
        r.register(
            "series_dropped_nameless",
            "Samples dropped because relabeling removed their metric name or emptied a label name, by subset",
            m.dropped_nameless.clone(),
        );
        r.register(
            "upstream_targets",
            "Targets found by the last resolution",
            m.targets.clone(),
        );
        r.register(
            "upstream_targets_up",
            "Targets that contributed to the last scrape",
            m.targets_up.clone(),
        );
        r.register(
            "cached_targets",
            "Targets whose relabel caches and buffers are kept between scrapes",
            m.cached_targets.clone(),
        );
        r.register(
            "relabel_cache_entries",
            "Entries in the relabel decision caches, over all targets and subsets",
            m.relabel_cache_entries.clone(),
        );
        r.register(
            "series_cache_entries",
            "Raw series remembered by the cross-scrape series cache, over all targets",
            m.series_cache_entries.clone(),
        );
        r.register(
            "series_cache_hits",
            "Samples whose relabel and aggregation outcome came from the series cache",
            m.series_cache_hits.clone(),
        );
        r.register(
            "series_cache_misses",
            "Samples relabeled and aggregated in full because the series cache did not know them",
            m.series_cache_misses.clone(),
        );
        r.register(
            "aggregate_bytes",
            "Bytes of series keys and values held by the last scrape's output, by subset",
            m.aggregate_bytes.clone(),
        );
        r.register(
            "config_last_reload_successful",
            "1 if the last configuration reload succeeded (1 at start), 0 if it failed",
            m.config_last_reload_successful.clone(),
        );
        r.register(
            "config_last_reload_success_timestamp_seconds",
            "Time of the last successful configuration load (start or reload), Unix seconds",
            m.config_last_reload_success_timestamp.clone(),
        );
        r.register(
            "sample_limit_exceeded",
            "Scrapes whose output of a list had more series than --sample-limit (answered with a 502), by subset",
            m.sample_limit_exceeded.clone(),
        );
        r.register(
            "http_connections_accepted",
            "TCP connections accepted by the listener",
            m.connections_accepted.clone(),
        );
        r.register(
            "http_connections_open",
            "Connections open now, in TLS handshake or HTTP",
            m.connections_open.clone(),
        );
        r.register(
            "http_connections_dropped",
            "Connections closed by the listener before or between requests, by reason",
            m.connections_dropped.clone(),
        );
        r.register(
            "web_config_reloads",
            "Loads of the web config file after it or a file it names changed, by result",
            m.web_config_reloads.clone(),
        );
        r.register(
            "web_config_last_reload_successful",
            "1 if the last web config reload succeeded or none was needed, 0 if it failed",
            m.web_config_last_reload_successful.clone(),
        );
        r.register(
            "http_response_held_bytes",
            "Bytes of scrape results held by responses that are not fully written yet",
            m.response_held_bytes.clone(),
        );
        r.register(
            "basic_auth_checks_refused",
            "Basic-auth checks refused at once (503) because the bcrypt queue was full",
            m.basic_auth_checks_refused.clone(),
        );
        m.web_config_last_reload_successful.set(1);
        Self { registry, ..m }
    }

    /// Records a configuration load (start or reload): sets the success gauge, and on success
    /// the timestamp.
    pub fn record_reload(&self, ok: bool) {
        self.config_last_reload_successful.set(i64::from(ok));
        if ok {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0.0, |d| d.as_secs_f64());
            self.config_last_reload_success_timestamp.set(now);
        }
    }

    /// Forgets the per-subset series of a subset that a reload removed, so its last values do
    /// not linger on `/-/metrics`.
    pub fn forget_subset(&self, name: &str) {
        let label = SubsetLabels {
            subset: name.to_owned(),
        };
        self.series_written.remove(&label);
        self.dropped_by_relabel.remove(&label);
        self.dropped_nameless.remove(&label);
        self.aggregate_bytes.remove(&label);
    }

    /// Forgets the per-target series of `target` (its request durations and its errors of the
    /// `causes` it had), so a target gone for the staleness window leaves `/-/metrics`.
    pub fn forget_target(&self, target: &str, causes: &[&'static str]) {
        self.upstream_duration.remove(&TargetLabels {
            target: target.to_owned(),
        });
        for &cause in causes {
            self.upstream_errors.remove(&ErrorLabels {
                target: target.to_owned(),
                cause,
            });
        }
    }

    /// The OpenMetrics text of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }

    /// Counts one HTTP request.
    pub fn count_request(&self, endpoint: &'static str, code: u16) {
        self.requests
            .get_or_create(&RequestLabels {
                endpoint,
                code: code.to_string(),
            })
            .inc();
    }
}

impl SelfMetrics {
    /// Counts a connection the listener closed early.
    pub fn count_dropped(&self, reason: &'static str) {
        self.connections_dropped
            .get_or_create(&DroppedLabels { reason })
            .inc();
    }

    /// Counts a web config reload.
    pub fn web_config_reloaded(&self, ok: bool) {
        let result = if ok { "success" } else { "failure" };
        self.web_config_reloads
            .get_or_create(&ReloadLabels { result })
            .inc();
        self.web_config_last_reload_successful.set(i64::from(ok));
    }
}

impl Default for SelfMetrics {
    fn default() -> Self {
        Self::new()
    }
}
