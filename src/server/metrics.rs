//! metric-gate's own metrics, served on `/-/metrics` (OpenMetrics text from `prometheus-client`,
//! or text 0.0.4 converted from it: see [`super::metrics_format`]; never spliced into the
//! proxied output).
//!
//! Counters with labels start at 0 for every label value known in advance (error causes per
//! target, sample-limit hits per list, dropped-connection reasons), so an alert on `increase()`
//! has a series before the first event. `process_*` metrics come from `/proc/self` (Linux) at
//! each scrape of `/-/metrics`.

use std::sync::atomic::AtomicU64;
use std::time::{SystemTime, UNIX_EPOCH};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use crate::upstream::FetchError;

use super::metrics_format::{openmetrics_to_text, SelfMetricsFormat};

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
    /// `decode`, `too_large`, `line_too_long`, `truncated`, `parse`, `label_limit`,
    /// `label_name_length_limit`, `label_value_length_limit` or `resolve`.
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

/// Labels of the name-escaping counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct EscapingLabels {
    /// The scheme a client asked for: `underscores`, `dots` or `values`.
    pub escaping: &'static str,
}

/// Labels of `metric_gate_build_info`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BuildLabels {
    /// The crate version.
    pub version: &'static str,
    /// The CPU architecture the binary was built for (`x86_64`, `aarch64`, ...).
    pub arch: &'static str,
    /// The operating system the binary was built for.
    pub os: &'static str,
}

/// Every `cause` of `metric_gate_upstream_errors_total`: the fetch errors' kinds, and
/// `resolve` (a fan-out name that could not be resolved; its `target` is the upstream).
pub fn error_causes() -> impl Iterator<Item = &'static str> {
    FetchError::KINDS.into_iter().chain(["resolve"])
}

/// Every `reason` of `metric_gate_http_connections_dropped_total`.
pub const DROP_REASONS: [&str; 5] = [
    "max_connections",
    "tls_handshake_timeout",
    "tls_handshake_error",
    "plain_http_on_tls",
    "header_read_timeout",
];

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
    /// Samples that repeated a series already read in the same upstream body (ignored).
    pub duplicate_samples: Counter,
    /// Input series whose last value the counter state remembers, by subset.
    pub counter_inputs: Family<SubsetLabels, Gauge>,
    /// Output series carried by the counter state (summing two or more inputs), by subset.
    pub counter_outputs_carried: Family<SubsetLabels, Gauge>,
    /// Inputs found reset (value fell, histogram `_count` fell, or target restarted), by subset.
    pub counter_resets: Family<SubsetLabels, Counter>,
    /// Targets whose `process_start_time_seconds` changed, by subset.
    pub counter_target_restarts: Family<SubsetLabels, Counter>,
    /// Inputs forgotten after the staleness window, by subset.
    pub counter_inputs_expired: Family<SubsetLabels, Counter>,
    /// Output series forgotten because all their inputs were gone for the window, by subset.
    pub counter_outputs_expired: Family<SubsetLabels, Counter>,
    /// New inputs counted from their second sample, by subset.
    pub counter_first_samples_skipped: Family<SubsetLabels, Counter>,
    /// Summary quantile series not served because several inputs fell into them, by subset.
    pub quantile_series_dropped: Family<SubsetLabels, Counter>,
    /// Series not served because a `drop` rule applies and several inputs fell into them.
    pub summed_series_dropped: Family<SubsetLabels, Counter>,
    /// Histogram buckets not served because not every input of their histogram has the bound.
    pub uncommon_buckets_dropped: Family<SubsetLabels, Counter>,
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
    /// Bytes held by the aggregates of a list across scrapes (over all targets): series keys
    /// and values, series records, families and their metadata, by subset.
    pub aggregate_bytes: Family<SubsetLabels, Gauge>,
    /// Families held by the aggregates of a list (over all targets), by subset.
    pub aggregate_families: Family<SubsetLabels, Gauge>,
    /// Bytes held by a list's counter state (inputs, outputs, descriptions, families), by
    /// subset.
    pub carry_state_bytes: Family<SubsetLabels, Gauge>,
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
    /// When the upstream fetch of the last scrape that rendered a list started, Unix seconds,
    /// by subset: a subset job can alert on its staleness.
    pub last_successful_scrape: Family<SubsetLabels, Gauge<f64, AtomicU64>>,
    /// 1, with the build's version in labels.
    pub build_info: Family<BuildLabels, Gauge>,
    /// `process_*` metrics, without the `metric_gate_` prefix.
    process: Registry,
    /// Bytes of scrape results held by responses not yet written (see `server::responses`).
    pub response_held_bytes: Gauge,
    /// Basic-auth checks refused at once because the bcrypt queue was full (answered 503).
    pub basic_auth_checks_refused: Counter,
    /// Output series summed into another one because name escaping made them identical, by
    /// scheme (counted once per scrape result and scheme).
    pub escaping_merged: Family<EscapingLabels, Counter>,
    /// Output series left out because two of their label names became one under escaping.
    pub escaping_dropped: Family<EscapingLabels, Counter>,
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
            duplicate_samples: Counter::default(),
            counter_inputs: Family::default(),
            counter_outputs_carried: Family::default(),
            counter_resets: Family::default(),
            counter_target_restarts: Family::default(),
            counter_inputs_expired: Family::default(),
            counter_outputs_expired: Family::default(),
            counter_first_samples_skipped: Family::default(),
            quantile_series_dropped: Family::default(),
            summed_series_dropped: Family::default(),
            uncommon_buckets_dropped: Family::default(),
            targets: Gauge::default(),
            targets_up: Gauge::default(),
            cached_targets: Gauge::default(),
            relabel_cache_entries: Gauge::default(),
            series_cache_entries: Gauge::default(),
            series_cache_hits: Counter::default(),
            series_cache_misses: Counter::default(),
            aggregate_bytes: Family::default(),
            aggregate_families: Family::default(),
            carry_state_bytes: Family::default(),
            config_last_reload_successful: Gauge::default(),
            config_last_reload_success_timestamp: Gauge::default(),
            sample_limit_exceeded: Family::default(),
            connections_accepted: Counter::default(),
            connections_open: Gauge::default(),
            connections_dropped: Family::default(),
            web_config_reloads: Family::default(),
            web_config_last_reload_successful: Gauge::default(),
            last_successful_scrape: Family::default(),
            build_info: Family::default(),
            process: Registry::default(),
            response_held_bytes: Gauge::default(),
            basic_auth_checks_refused: Counter::default(),
            escaping_merged: Family::default(),
            escaping_dropped: Family::default(),
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
            "duplicate_samples",
            "Samples that repeated a series already read in the same upstream body; the first is kept, as Prometheus does",
            m.duplicate_samples.clone(),
        );
        r.register(
            "carry_inputs",
            "Input series whose last value the counter state remembers, by subset",
            m.counter_inputs.clone(),
        );
        r.register(
            "carry_outputs",
            "Output series served from a carried total (two or more inputs within the staleness window), by subset",
            m.counter_outputs_carried.clone(),
        );
        r.register(
            "carry_resets",
            "Inputs of summed counters found reset, by subset",
            m.counter_resets.clone(),
        );
        r.register(
            "carry_target_restarts",
            "Targets whose process_start_time_seconds changed, by subset",
            m.counter_target_restarts.clone(),
        );
        r.register(
            "carry_inputs_expired",
            "Counter inputs forgotten after the staleness window, by subset",
            m.counter_inputs_expired.clone(),
        );
        r.register(
            "carry_outputs_expired",
            "Summed counter series no longer served because all their inputs were gone for the staleness window, by subset",
            m.counter_outputs_expired.clone(),
        );
        r.register(
            "carry_first_samples_skipped",
            "New counter inputs counted from their second sample, by subset",
            m.counter_first_samples_skipped.clone(),
        );
        r.register(
            "quantile_series_dropped",
            "Summary quantile series not served because several inputs fell into them, by subset",
            m.quantile_series_dropped.clone(),
        );
        r.register(
            "summed_series_dropped",
            "Series not served because a drop aggregation rule applies and several inputs fell into them, by subset",
            m.summed_series_dropped.clone(),
        );
        r.register(
            "uncommon_buckets_dropped",
            "Bucket series not served because not every input of their histogram has their bound (only common bounds are summed), by subset",
            m.uncommon_buckets_dropped.clone(),
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
            "Bytes held by a list's aggregates across scrapes, over all targets: series keys and values, series records, families and their metadata, by subset",
            m.aggregate_bytes.clone(),
        );
        r.register(
            "aggregate_families",
            "Metric families held by a list's aggregates, over all targets (each has a series seen within the last scrapes), by subset",
            m.aggregate_families.clone(),
        );
        r.register(
            "carry_state_bytes",
            "Bytes held by a list's counter state: inputs, outputs, their descriptions and families, by subset",
            m.carry_state_bytes.clone(),
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
        r.register(
            "last_successful_scrape_timestamp_seconds",
            "Start of the upstream fetch of the last scrape that rendered this list, Unix seconds, by subset",
            m.last_successful_scrape.clone(),
        );
        r.register(
            "build_info",
            "Always 1; the labels say which build of metric-gate runs",
            m.build_info.clone(),
        );
        m.build_info
            .get_or_create(&BuildLabels {
                version: env!("CARGO_PKG_VERSION"),
                arch: std::env::consts::ARCH,
                os: std::env::consts::OS,
            })
            .set(1);
        r.register(
            "escaping_merged_series",
            "Output series summed into another because escaping their names (for a client that cannot read UTF-8 names) made them identical, by escaping scheme",
            m.escaping_merged.clone(),
        );
        r.register(
            "escaping_dropped_series",
            "Output series left out because escaping made two of their label names one, by escaping scheme",
            m.escaping_dropped.clone(),
        );
        for escaping in ["underscores", "dots", "values"] {
            let _ = m
                .escaping_merged
                .get_or_create(&EscapingLabels { escaping });
            let _ = m
                .escaping_dropped
                .get_or_create(&EscapingLabels { escaping });
        }
        for reason in DROP_REASONS {
            // Created at 0; the guard is not needed.
            let _ = m
                .connections_dropped
                .get_or_create(&DroppedLabels { reason });
        }
        let mut process = Registry::default();
        process.register_collector(Box::new(ProcessCollector));
        Self {
            registry,
            process,
            ..m
        }
    }

    /// Starts every error counter of `target` at 0 (every cause of [`error_causes`] but
    /// `resolve`, which belongs to the upstream: see [`SelfMetrics::init_upstream`]).
    pub fn init_target(&self, target: &str) {
        for cause in FetchError::KINDS {
            let _ = self.upstream_errors.get_or_create(&ErrorLabels {
                target: target.to_owned(),
                cause,
            });
        }
    }

    /// Starts the `resolve` error counter of a fan-out upstream at 0.
    pub fn init_upstream(&self, upstream: &str) {
        let _ = self.upstream_errors.get_or_create(&ErrorLabels {
            target: upstream.to_owned(),
            cause: "resolve",
        });
    }

    /// Starts the per-list counters of the default list and of `subsets` at 0.
    pub fn init_subsets<'a>(&self, subsets: impl IntoIterator<Item = &'a str>) {
        for name in [DEFAULT_SUBSET_LABEL].into_iter().chain(subsets) {
            let _ = self.sample_limit_exceeded.get_or_create(&SubsetLabels {
                subset: name.to_owned(),
            });
        }
    }

    /// Records that a scrape rendered list `label`, from an upstream fetch that started at
    /// `fetched_at_ms` (ms since the epoch).
    pub fn record_list_success(&self, label: &SubsetLabels, fetched_at_ms: i64) {
        self.last_successful_scrape
            .get_or_create(label)
            .set(fetched_at_ms as f64 / 1000.0);
    }

    /// Records what escaping one scrape result's names under `escaping` did.
    pub fn record_escaping(
        &self,
        escaping: crate::exposition::escape::Escaping,
        stats: crate::exposition::escape::EscapeStats,
    ) {
        let label = EscapingLabels {
            escaping: escaping.as_str(),
        };
        self.escaping_merged
            .get_or_create(&label)
            .inc_by(stats.merged);
        self.escaping_dropped
            .get_or_create(&label)
            .inc_by(stats.dropped);
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
        self.counter_inputs.remove(&label);
        self.counter_outputs_carried.remove(&label);
        self.counter_resets.remove(&label);
        self.counter_target_restarts.remove(&label);
        self.counter_inputs_expired.remove(&label);
        self.counter_outputs_expired.remove(&label);
        self.counter_first_samples_skipped.remove(&label);
        self.quantile_series_dropped.remove(&label);
        self.summed_series_dropped.remove(&label);
        self.uncommon_buckets_dropped.remove(&label);
        self.aggregate_bytes.remove(&label);
        self.aggregate_families.remove(&label);
        self.carry_state_bytes.remove(&label);
        self.sample_limit_exceeded.remove(&label);
        self.last_successful_scrape.remove(&label);
    }

    /// The registry, to register more metrics into (remote write's
    /// `RemoteWriteMetrics::new`) before the metrics are shared.
    pub fn registry_mut(&mut self) -> &mut Registry {
        &mut self.registry
    }

    /// Forgets the per-target series of `target` (its request durations, and its error
    /// counters of every cause: they are all created at 0 by [`SelfMetrics::init_target`]), so
    /// a target gone for the staleness window leaves `/-/metrics`.
    pub fn forget_target(&self, target: &str) {
        self.upstream_duration.remove(&TargetLabels {
            target: target.to_owned(),
        });
        for cause in FetchError::KINDS {
            self.upstream_errors.remove(&ErrorLabels {
                target: target.to_owned(),
                cause,
            });
        }
    }

    /// The OpenMetrics text of every metric.
    pub fn encode(&self) -> String {
        use prometheus_client::encoding::text::{encode_eof, encode_registry};
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode_registry(&mut out, &self.registry);
        let _ = encode_registry(&mut out, &self.process);
        let _ = encode_eof(&mut out);
        out
    }

    /// Every metric in `format`.
    pub fn encode_as(&self, format: SelfMetricsFormat) -> String {
        match format {
            SelfMetricsFormat::OpenMetrics => self.encode(),
            SelfMetricsFormat::Text => openmetrics_to_text(&self.encode()),
        }
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

/// The `process_*` metrics Prometheus' client libraries export, read from `/proc/self` when
/// `/-/metrics` is scraped. Where `/proc` cannot be read (not Linux), none are written.
#[derive(Debug)]
struct ProcessCollector;

impl Collector for ProcessCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(p) = ProcessStats::read() else {
            return Ok(());
        };
        let cpu = ConstCounter::new(p.cpu_seconds);
        cpu.encode(encoder.encode_descriptor(
            "process_cpu_seconds",
            "Total user and system CPU time spent in seconds",
            None,
            cpu.metric_type(),
        )?)?;
        let gauges = [
            (
                "process_resident_memory_bytes",
                "Resident memory size in bytes",
                Some(p.resident_bytes),
            ),
            (
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes",
                Some(p.virtual_bytes),
            ),
            (
                "process_open_fds",
                "Number of open file descriptors",
                Some(p.open_fds),
            ),
            (
                "process_max_fds",
                "Maximum number of open file descriptors (the soft limit)",
                p.max_fds,
            ),
            (
                "process_start_time_seconds",
                "Start time of the process since the Unix epoch in seconds",
                Some(p.start_time_seconds),
            ),
        ];
        for (name, help, value) in gauges {
            let Some(value) = value else { continue };
            let g = ConstGauge::new(value);
            g.encode(encoder.encode_descriptor(name, help, None, g.metric_type())?)?;
        }
        Ok(())
    }
}

/// What the `process_*` metrics report.
#[derive(Debug, Clone, PartialEq)]
struct ProcessStats {
    cpu_seconds: f64,
    resident_bytes: f64,
    virtual_bytes: f64,
    open_fds: f64,
    /// `None` when unlimited.
    max_fds: Option<f64>,
    start_time_seconds: f64,
}

/// Clock ticks per second of `/proc` times (`USER_HZ`): fixed at 100 by the kernel's ABI on the
/// architectures metric-gate runs on (reading it needs `sysconf`, i.e. `unsafe` FFI).
const USER_HZ: f64 = 100.0;

impl ProcessStats {
    fn read() -> Option<Self> {
        let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
        let status = std::fs::read_to_string("/proc/self/status").ok()?;
        let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
        let system = std::fs::read_to_string("/proc/stat").ok()?;
        let open_fds = std::fs::read_dir("/proc/self/fd").ok()?.count();
        Self::parse(&stat, &status, &limits, &system, open_fds)
    }

    /// From the texts of `/proc/self/stat`, `/proc/self/status`, `/proc/self/limits` and
    /// `/proc/stat`, and the count of `/proc/self/fd`.
    fn parse(
        stat: &str,
        status: &str,
        limits: &str,
        system: &str,
        open_fds: usize,
    ) -> Option<Self> {
        // Fields after the command name, which is in parentheses and may hold anything;
        // `fields[0]` is field 3 (state) of proc(5).
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        let field = |n: usize| fields.get(n - 3)?.parse::<f64>().ok();
        let cpu_seconds = (field(14)? + field(15)?) / USER_HZ;
        let start_ticks = field(22)?;
        let boot_time = system
            .lines()
            .find_map(|l| l.strip_prefix("btime "))?
            .trim()
            .parse::<f64>()
            .ok()?;
        let kib = |key: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(key))?
                .split_whitespace()
                .next()?
                .parse::<f64>()
                .ok()
                .map(|k| k * 1024.0)
        };
        let max_fds = limits
            .lines()
            .find_map(|l| l.strip_prefix("Max open files"))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|soft| soft.parse::<f64>().ok());
        Some(Self {
            cpu_seconds,
            resident_bytes: kib("VmRSS:")?,
            virtual_bytes: kib("VmSize:")?,
            open_fds: open_fds as f64,
            max_fds,
            start_time_seconds: boot_time + start_ticks / USER_HZ,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_stats_from_proc_texts() {
        let stat = "4242 (metric gate) x) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0 12300 1000000 500 18446744073709551615";
        let status = "Name:\tmetric-gate\nVmSize:\t  204800 kB\nVmRSS:\t   10240 kB\n";
        let limits = "Limit                     Soft Limit           Hard Limit           Units\nMax open files            1024                 1048576              files\n";
        let system = "cpu  1 2 3\nbtime 1700000000\nprocesses 9\n";
        let p = ProcessStats::parse(stat, status, limits, system, 7).unwrap();
        assert_eq!(
            p,
            ProcessStats {
                cpu_seconds: 3.0,
                resident_bytes: 10240.0 * 1024.0,
                virtual_bytes: 204800.0 * 1024.0,
                open_fds: 7.0,
                max_fds: Some(1024.0),
                start_time_seconds: 1_700_000_123.0,
            }
        );
        let unlimited = limits.replace("1024                 1048576", "unlimited unlimited");
        let p = ProcessStats::parse(stat, status, &unlimited, system, 7).unwrap();
        assert_eq!(p.max_fds, None);
        assert!(ProcessStats::parse("garbage", status, limits, system, 7).is_none());
    }

    #[test]
    fn labelled_counters_start_at_zero() {
        let m = SelfMetrics::new();
        m.init_target("10.0.0.5:10254");
        m.init_upstream("dns+http://svc:10254/metrics");
        m.init_subsets(["cpu"]);
        let text = m.encode_as(SelfMetricsFormat::Text);
        for cause in FetchError::KINDS {
            let line = format!(
                "metric_gate_upstream_errors_total{{target=\"10.0.0.5:10254\",cause=\"{cause}\"}} 0\n"
            );
            assert!(text.contains(&line), "{line} not in\n{text}");
        }
        for line in [
            "metric_gate_upstream_errors_total{target=\"dns+http://svc:10254/metrics\",cause=\"resolve\"} 0\n",
            "metric_gate_sample_limit_exceeded_total{subset=\"(default)\"} 0\n",
            "metric_gate_sample_limit_exceeded_total{subset=\"cpu\"} 0\n",
            "metric_gate_http_connections_dropped_total{reason=\"header_read_timeout\"} 0\n",
            "# TYPE metric_gate_build_info gauge\n",
        ] {
            assert!(text.contains(line), "{line} not in\n{text}");
        }
        assert!(text.contains(&format!(
            "metric_gate_build_info{{version=\"{}\",",
            env!("CARGO_PKG_VERSION")
        )));
        #[cfg(target_os = "linux")]
        for name in [
            "process_cpu_seconds_total ",
            "process_resident_memory_bytes ",
            "process_open_fds ",
            "process_start_time_seconds ",
        ] {
            assert!(text.contains(&format!("\n{name}")), "{name} not in\n{text}");
        }
        let label = SubsetLabels {
            subset: "cpu".into(),
        };
        m.record_list_success(&label, 1_700_000_000_500);
        let om = m.encode_as(SelfMetricsFormat::OpenMetrics);
        assert!(
            om.contains("metric_gate_last_successful_scrape_timestamp_seconds{subset=\"cpu\"} 1700000000.5\n"),
            "{om}"
        );
        assert!(om.ends_with("# EOF\n"));
        m.forget_subset("cpu");
        let text = m.encode_as(SelfMetricsFormat::Text);
        assert!(!text.contains("subset=\"cpu\""), "{text}");
    }
}
