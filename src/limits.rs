//! Limits on what one scrape may produce, and the errors they raise.
//!
//! # Where the limits apply
//! The label limits (`--label-limit`, `--label-name-length-limit`,
//! `--label-value-length-limit`) apply to **output** series, after relabeling, as Prometheus'
//! `label_limit`, `label_name_length_limit` and `label_value_length_limit` apply after
//! `metric_relabel_configs`: an exporter whose series carry 300 labels, relabeled down to 10,
//! is what metric-gate is for and must not fail. They are checked when an output series is
//! created ([`LabelLimits::check_labels`] from [`crate::aggregate::Aggregator`]): a series
//! already known (this scrape or, through the series cache, an earlier one) passed the check
//! when it was created, and limits are fixed for the life of the process. So the check costs
//! nothing per sample, and the parser, which is the hot path, is not touched.
//!
//! What they protect: the aggregated output is what metric-gate holds between scrapes and what
//! Prometheus stores; each label and byte of it is a cost in both. The input side is bounded
//! separately: one line is at most `--max-line-length` bytes (the parser holds at most one line
//! and the labels in it) and the body at most `--max-body-size`.
//!
//! `--sample-limit` bounds the number of series one list (the default list or a subset) writes,
//! as Prometheus' `sample_limit` bounds the samples of a scrape after relabeling; it is
//! checked on the rendered result (after the fan-out sum), see `server::scrape`.
//!
//! A hit fails the whole scrape of the target (as in Prometheus, where the scrape fails): a
//! partial result would silently lose series.

use std::fmt;

use crate::exposition::Sink;

/// Label limits for output series; 0 means unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LabelLimits {
    /// Most labels per series, `__name__` included (as Prometheus counts).
    pub labels: usize,
    /// Longest label name, in bytes.
    pub name_length: usize,
    /// Longest label value, in bytes (the metric name counts as the value of `__name__`).
    pub value_length: usize,
}

/// Default of `--label-limit`.
pub const DEFAULT_LABEL_LIMIT: usize = 256;
/// Default of `--label-name-length-limit`.
pub const DEFAULT_LABEL_NAME_LENGTH_LIMIT: usize = 1024;
/// Default of `--label-value-length-limit`.
pub const DEFAULT_LABEL_VALUE_LENGTH_LIMIT: usize = 64 << 10;

impl LabelLimits {
    /// No limit at all.
    pub const UNLIMITED: LabelLimits = LabelLimits {
        labels: 0,
        name_length: 0,
        value_length: 0,
    };

    /// The defaults of the command line.
    pub const DEFAULT: LabelLimits = LabelLimits {
        labels: DEFAULT_LABEL_LIMIT,
        name_length: DEFAULT_LABEL_NAME_LENGTH_LIMIT,
        value_length: DEFAULT_LABEL_VALUE_LENGTH_LIMIT,
    };

    /// True when no limit is set.
    pub fn is_unlimited(&self) -> bool {
        *self == Self::UNLIMITED
    }

    /// Checks a series given as its metric name and its `others` other labels (`__name__`
    /// excluded).
    pub fn check_labels<'a>(
        &self,
        metric: &'a str,
        others: usize,
        labels: impl Iterator<Item = (&'a str, &'a str)>,
    ) -> Result<(), LimitError> {
        let count = others + 1;
        if self.labels > 0 && count > self.labels {
            return Err(LimitError::Labels {
                metric: clip(metric),
                count,
                limit: self.labels,
            });
        }
        let names = std::iter::once(("__name__", metric)).chain(labels);
        for (name, value) in names {
            if self.name_length > 0 && name.len() > self.name_length {
                return Err(LimitError::NameLength {
                    metric: clip(metric),
                    name: clip(name),
                    length: name.len(),
                    limit: self.name_length,
                });
            }
            if self.value_length > 0 && value.len() > self.value_length {
                return Err(LimitError::ValueLength {
                    metric: clip(metric),
                    name: clip(name),
                    length: value.len(),
                    limit: self.value_length,
                });
            }
        }
        Ok(())
    }
}

/// The first 50 characters of `s`, for messages (a limit is often hit by huge strings).
fn clip(s: &str) -> String {
    match s.char_indices().nth(50) {
        Some((at, _)) => format!("{}...", &s[..at]),
        None => s.to_owned(),
    }
}

/// A limit was hit; the scrape (or the file) fails.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    /// A series has more labels than `--label-limit`.
    #[error("label limit exceeded: series {metric:?} has {count} labels (with __name__) > limit {limit} (--label-limit)")]
    Labels {
        /// Metric name (clipped to 50 characters).
        metric: String,
        /// Labels of the series, `__name__` included.
        count: usize,
        /// The limit.
        limit: usize,
    },
    /// A label name is longer than `--label-name-length-limit`.
    #[error("label name length limit exceeded: series {metric:?}, label name {name:?} is {length} bytes > limit {limit} (--label-name-length-limit)")]
    NameLength {
        /// Metric name (clipped).
        metric: String,
        /// The label name (clipped).
        name: String,
        /// Its length in bytes.
        length: usize,
        /// The limit.
        limit: usize,
    },
    /// A label value is longer than `--label-value-length-limit`.
    #[error("label value length limit exceeded: series {metric:?}, value of label {name:?} is {length} bytes > limit {limit} (--label-value-length-limit)")]
    ValueLength {
        /// Metric name (clipped).
        metric: String,
        /// The label whose value is too long (clipped).
        name: String,
        /// The value's length in bytes.
        length: usize,
        /// The limit.
        limit: usize,
    },
}

impl LimitError {
    /// A short, fixed name of the limit, for the `cause` label of the error counter.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Labels { .. } => "label_limit",
            Self::NameLength { .. } => "label_name_length_limit",
            Self::ValueLength { .. } => "label_value_length_limit",
        }
    }
}

/// A [`LimitError`] with the input line of the sample that hit it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitHit {
    /// 1-based line of the input.
    pub line: u64,
    /// The limit and the series.
    pub error: LimitError,
}

impl fmt::Display for LimitHit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.error)
    }
}

impl std::error::Error for LimitHit {}

/// A parser [`Sink`] that may hit a label limit: it keeps the [`LimitHit`], answers
/// [`Sink::should_stop`] from then on, and whoever feeds it reports the hit as the input's
/// error. The parser itself knows only that it should stop, not why: limits live here.
pub trait LimitSink: Sink {
    /// The limit this sink hit, if any; while it is `Some`, [`Sink::should_stop`] is true.
    /// Asked between chunks, never per line. The default is for sinks without limits.
    fn limit_hit(&self) -> Option<&LimitHit> {
        None
    }
}

/// The output of a list has more series than `--sample-limit`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("sample limit exceeded: {series} series > limit {limit} (--sample-limit)")]
pub struct SampleLimitError {
    /// Output series.
    pub series: usize,
    /// The limit.
    pub limit: usize,
}

/// Checks a list's output series count against `limit` (0: unlimited).
pub fn check_sample_limit(series: usize, limit: usize) -> Result<(), SampleLimitError> {
    if limit > 0 && series > limit {
        Err(SampleLimitError { series, limit })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_count_includes_the_name() {
        let l = LabelLimits {
            labels: 3,
            ..LabelLimits::UNLIMITED
        };
        let two = [("a", "1"), ("b", "2")];
        assert_eq!(l.check_labels("m", 2, two.iter().copied()), Ok(()));
        let three = [("a", "1"), ("b", "2"), ("c", "3")];
        let e = l.check_labels("m", 3, three.iter().copied()).unwrap_err();
        assert_eq!(e.kind(), "label_limit");
        assert!(e.to_string().contains("4 labels"), "{e}");
    }

    #[test]
    fn lengths_are_bytes_and_cover_the_metric_name() {
        let l = LabelLimits {
            labels: 0,
            // `__name__` itself is 8 bytes long.
            name_length: 8,
            value_length: 5,
        };
        assert_eq!(
            l.check_labels("mmmmm", 1, [("abcdefgh", "ééa")].into_iter()),
            Ok(())
        );
        let e = l
            .check_labels("m", 1, [("abcdefghi", "v")].into_iter())
            .unwrap_err();
        assert_eq!(e.kind(), "label_name_length_limit");
        let e = l
            .check_labels("m", 1, [("a", "ééé")].into_iter())
            .unwrap_err();
        assert_eq!(e.kind(), "label_value_length_limit");
        assert!(e.to_string().contains("6 bytes > limit 5"), "{e}");
        // The metric name is the value of __name__.
        let e = l.check_labels("mmmmmm", 0, std::iter::empty()).unwrap_err();
        assert_eq!(e.kind(), "label_value_length_limit");
        // Unlimited checks nothing.
        assert!(LabelLimits::UNLIMITED
            .check_labels(&"x".repeat(1 << 20), 0, std::iter::empty())
            .is_ok());
    }

    #[test]
    fn long_strings_are_clipped_in_messages() {
        let l = LabelLimits {
            labels: 0,
            name_length: 0,
            value_length: 10,
        };
        let long = "v".repeat(10_000);
        let e = l
            .check_labels("m", 1, [("a", long.as_str())].into_iter())
            .unwrap_err();
        assert!(e.to_string().len() < 300, "{e}");
    }

    #[test]
    fn sample_limit() {
        assert!(check_sample_limit(10, 0).is_ok());
        assert!(check_sample_limit(10, 10).is_ok());
        let e = check_sample_limit(11, 10).unwrap_err();
        assert_eq!(
            e.to_string(),
            "sample limit exceeded: 11 series > limit 10 (--sample-limit)"
        );
    }
}
