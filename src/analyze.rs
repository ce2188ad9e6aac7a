//! The cardinality report: series per metric and distinct values per label.
//!
//! Served at `/analyze` and printed by `--file`, so users find which labels to aggregate away.
//! Memory grows with distinct metric names and label values, never with the number of lines.

use foldhash::fast::FixedState;
use hashbrown::{HashMap, HashSet};
use std::fmt::Write as _;

use crate::exposition::{Metadata, Sample, Sink};

/// How many distinct values a label may have and still get them listed in the report.
pub const LIST_VALUES_UP_TO: usize = 5;

#[derive(Debug, Default)]
struct MetricStats {
    series: u64,
    labels: HashMap<String, HashSet<String, FixedState>, FixedState>,
}

/// Collects the cardinality report from parsed samples (a [`Sink`]).
#[derive(Debug, Default)]
pub struct Analyzer {
    metrics: HashMap<String, MetricStats, FixedState>,
    series: u64,
    bytes: u64,
}

impl Analyzer {
    /// An empty report.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records how many input bytes the report covers (the caller counts them).
    pub fn add_bytes(&mut self, n: u64) {
        self.bytes += n;
    }

    /// Total samples seen.
    pub fn series(&self) -> u64 {
        self.series
    }

    /// Writes the report:
    ///
    /// ```text
    /// total: 1234 series, 12 metrics, 56789 bytes
    /// 109632 nginx_ingress_controller_response_duration_seconds_bucket
    ///   1313 ingress
    ///   5 status [1xx, 2xx, 3xx, 4xx, 5xx]
    /// ```
    ///
    /// Metrics by series count, descending; labels by distinct values, descending; ties by name.
    /// Values are listed (sorted) when there are at most [`LIST_VALUES_UP_TO`] of them.
    pub fn report(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "total: {} series, {} metrics, {} bytes",
            self.series,
            self.metrics.len(),
            self.bytes
        );
        let mut metrics: Vec<(&String, &MetricStats)> = self.metrics.iter().collect();
        metrics.sort_unstable_by(|a, b| b.1.series.cmp(&a.1.series).then(a.0.cmp(b.0)));
        for (name, m) in metrics {
            let _ = writeln!(out, "{} {}", m.series, name);
            let mut labels: Vec<(&String, &HashSet<String, FixedState>)> =
                m.labels.iter().collect();
            labels.sort_unstable_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(b.0)));
            for (label, values) in labels {
                let _ = write!(out, "  {} {}", values.len(), label);
                if values.len() <= LIST_VALUES_UP_TO {
                    let mut v: Vec<&str> = values.iter().map(String::as_str).collect();
                    v.sort_unstable();
                    let _ = write!(out, " [{}]", v.join(", "));
                }
                out.push('\n');
            }
        }
        out
    }
}

/// The analyzer counts and never hits a limit.
impl crate::limits::LimitSink for Analyzer {}

impl Sink for Analyzer {
    fn metadata(&mut self, _meta: &Metadata<'_>) {}

    fn sample(&mut self, sample: &Sample<'_>) {
        self.series += 1;
        let m = match self.metrics.get_mut(sample.name) {
            Some(m) => m,
            None => self.metrics.entry(sample.name.to_owned()).or_default(),
        };
        m.series += 1;
        for (name, value) in sample.labels() {
            // An empty value is the same as an absent label.
            if value.is_empty() {
                continue;
            }
            let values = match m.labels.get_mut(name) {
                Some(v) => v,
                None => m.labels.entry(name.to_owned()).or_default(),
            };
            if !values.contains(value) {
                values.insert(value.to_owned());
            }
        }
    }
}
