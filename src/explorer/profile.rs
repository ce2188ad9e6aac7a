//! The cardinality profile of one input: totals, and per metric its TYPE, series, bytes and
//! labels with their distinct values.
//!
//! [`Profiler`] is a parser [`Sink`], so it reads a body in one streaming pass next to (or
//! instead of) the pipeline. Its memory is bounded whatever the input (see [`ProfileBudget`]):
//! a body with a million metric names or a label with a million values costs at most the budget,
//! and the profile says where it stopped counting exactly (`exact`, `not_listed`).

use foldhash::fast::FixedState;
use hashbrown::{HashMap, HashSet};
use serde::Serialize;

use crate::exposition::{MetaKind, Metadata, Sample, Sink};
use crate::limits::LimitSink;

/// A label's values are listed in the profile when it has at most this many.
pub const LIST_VALUES_UP_TO: usize = 20;

/// Longest listed label value or HELP text kept, in bytes; longer ones are cut (at a character
/// boundary) and end with `…`.
pub const MAX_TEXT_LEN: usize = 256;

/// How much a [`Profiler`] may hold. The defaults keep one profile under roughly 100 MiB even
/// for a hostile input, and never limit a realistic scrape (an ingress controller with 1000
/// Ingresses has ~100 metric names, ~12 label names and at most a few thousand values each).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProfileBudget {
    /// Most metric names profiled; samples of further names count only in the totals
    /// ([`Totals::series_not_listed`]).
    pub metrics: usize,
    /// Most label names profiled per metric; further names are counted in
    /// [`MetricProfile::labels_not_listed`].
    pub labels_per_metric: usize,
    /// Most distinct values counted exactly per (metric, label); beyond it the count is a lower
    /// bound ([`LabelProfile::exact`] is false).
    pub values_per_label: usize,
    /// Most distinct values counted over the whole profile (8 bytes each, as a 64-bit hash).
    pub values_total: usize,
    /// Bytes of names, listed values and HELP texts kept over the whole profile.
    pub text_bytes: usize,
}

impl Default for ProfileBudget {
    fn default() -> Self {
        Self {
            metrics: 20_000,
            labels_per_metric: 128,
            values_per_label: 100_000,
            values_total: 2_000_000,
            text_bytes: 32 << 20,
        }
    }
}

/// The profile of one input (or of several bodies read one after the other).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Profile {
    /// Whole-input counts.
    pub totals: Totals,
    /// Metrics by series count, descending; ties by name.
    pub metrics: Vec<MetricProfile>,
}

/// Whole-input counts.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Totals {
    /// Samples (series) in the input.
    pub series: u64,
    /// Distinct metric names profiled (names beyond the budget are not counted).
    pub metrics: u64,
    /// Input bytes (as read: after gzip decoding, comments and metadata included).
    pub bytes: u64,
    /// Samples of metric names the budget left out of [`Profile::metrics`].
    pub series_not_listed: u64,
}

/// One metric name (a histogram's `x_bucket`, `x_sum` and `x_count` are three metrics of the
/// family `x`).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MetricProfile {
    /// The metric name.
    pub name: String,
    /// The family it belongs to by `# TYPE` (`x` for `x_bucket` under `# TYPE x histogram`);
    /// the name itself when no TYPE claims it.
    pub family: String,
    /// The family's TYPE word as written (`counter`, `gauge`, `histogram`, `summary`,
    /// `untyped`, OpenMetrics types); `untyped` when the input has no TYPE for it, as
    /// Prometheus assumes.
    #[serde(rename = "type")]
    pub typ: String,
    /// The family's HELP text (cut at [`MAX_TEXT_LEN`]), empty when there is none.
    pub help: String,
    /// Samples (series) of this metric.
    pub series: u64,
    /// Bytes of its sample lines: the series text as written (name and label block), the value
    /// as written and the timestamp in milliseconds, with single blanks and `\n`. That is the
    /// lines' own size for the text exporters write, and exact for metric-gate's output.
    /// HELP/TYPE lines are not included.
    pub bytes: u64,
    /// Labels by distinct values, descending; ties by name.
    pub labels: Vec<LabelProfile>,
    /// Label names beyond [`ProfileBudget::labels_per_metric`], not profiled.
    pub labels_not_listed: u64,
}

/// One label of one metric.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct LabelProfile {
    /// The label name.
    pub name: String,
    /// Distinct non-empty values (a lower bound when `exact` is false).
    pub distinct: u64,
    /// False when the budget stopped counting values: `distinct` is then a lower bound.
    pub exact: bool,
    /// Samples of the metric that carry the label with a non-empty value (an empty value is an
    /// absent label).
    pub series: u64,
    /// The values, sorted, when there are at most [`LIST_VALUES_UP_TO`] (each cut at
    /// [`MAX_TEXT_LEN`]); `None` for more, or when the text budget ran out.
    pub values: Option<Vec<String>>,
}

/// Builds a [`Profile`] from parsed samples: a [`Sink`].
#[derive(Debug)]
pub struct Profiler {
    budget: ProfileBudget,
    metrics: Vec<MetricAcc>,
    index: HashMap<String, usize, FixedState>,
    /// The metric of the previous sample (a metric's samples come in a row).
    last: Option<usize>,
    /// TYPE and HELP per family name.
    families: HashMap<String, FamilyMeta, FixedState>,
    series: u64,
    series_not_listed: u64,
    bytes: u64,
    /// Distinct values counted so far over all labels.
    values_total: usize,
    /// Text bytes kept so far.
    text_bytes: usize,
}

#[derive(Debug, Default)]
struct FamilyMeta {
    typ: Option<String>,
    help: Option<String>,
}

#[derive(Debug)]
struct MetricAcc {
    name: String,
    family: String,
    series: u64,
    bytes: u64,
    labels: Vec<LabelAcc>,
    labels_not_listed: u64,
    /// The label layout of the last sample ([`Sample::layout`]) and where each of its labels
    /// sits in `labels` (`usize::MAX`: not profiled): a metric's samples nearly always share
    /// one layout, so a label is found without comparing names.
    layout: u64,
    slots: Vec<usize>,
    /// Label names beyond the budget, so that each is counted once.
    unlisted: HashSet<String, FixedState>,
}

#[derive(Debug)]
struct LabelAcc {
    name: String,
    series: u64,
    hashes: HashSet<u64, FixedState>,
    exact: bool,
    /// The first distinct values (up to one more than listed, to know there are more).
    listed: Vec<String>,
    /// The text budget ran out while listing.
    listed_incomplete: bool,
}

impl Default for Profiler {
    fn default() -> Self {
        Self::new(ProfileBudget::default())
    }
}

impl Profiler {
    /// An empty profile that holds at most `budget`.
    pub fn new(budget: ProfileBudget) -> Self {
        Self {
            budget,
            metrics: Vec::new(),
            index: HashMap::default(),
            last: None,
            families: HashMap::default(),
            series: 0,
            series_not_listed: 0,
            bytes: 0,
            values_total: 0,
            text_bytes: 0,
        }
    }

    /// Records how many input bytes the profile covers (the caller counts them).
    pub fn add_bytes(&mut self, n: u64) {
        self.bytes += n;
    }

    /// Samples seen.
    pub fn series(&self) -> u64 {
        self.series
    }

    /// Takes `n` bytes from the text budget; false when they do not fit.
    fn take_text(&mut self, n: usize) -> bool {
        if self.text_bytes + n > self.budget.text_bytes {
            return false;
        }
        self.text_bytes += n;
        true
    }

    /// The index of `sample`'s metric, created when new; `None` beyond the budget.
    fn metric(&mut self, sample: &Sample<'_>) -> Option<usize> {
        if let Some(i) = self.last {
            if self.metrics[i].name == sample.name {
                return Some(i);
            }
        }
        let i = match self.index.get(sample.name) {
            Some(&i) => i,
            None => {
                if self.metrics.len() >= self.budget.metrics
                    || !self.take_text(sample.name.len() + sample.family.len())
                {
                    return None;
                }
                let i = self.metrics.len();
                self.metrics.push(MetricAcc {
                    name: sample.name.to_owned(),
                    family: sample.family.to_owned(),
                    series: 0,
                    bytes: 0,
                    labels: Vec::new(),
                    labels_not_listed: 0,
                    layout: 0,
                    slots: Vec::new(),
                    unlisted: HashSet::default(),
                });
                self.index.insert(sample.name.to_owned(), i);
                i
            }
        };
        self.last = Some(i);
        Some(i)
    }

    /// Where label `name` of metric `m` is profiled, added when new; `usize::MAX` beyond the
    /// budget.
    fn label_slot(&mut self, m: usize, name: &str) -> usize {
        if let Some(at) = self.metrics[m].labels.iter().position(|l| l.name == name) {
            return at;
        }
        let over = self.metrics[m].labels.len() >= self.budget.labels_per_metric;
        if over || !self.take_text(name.len()) {
            let acc = &mut self.metrics[m];
            if !acc.unlisted.contains(name) && acc.unlisted.len() < self.budget.labels_per_metric {
                acc.unlisted.insert(name.to_owned());
                acc.labels_not_listed += 1;
            }
            return usize::MAX;
        }
        let acc = &mut self.metrics[m];
        acc.labels.push(LabelAcc {
            name: name.to_owned(),
            series: 0,
            hashes: HashSet::default(),
            exact: true,
            listed: Vec::new(),
            listed_incomplete: false,
        });
        acc.labels.len() - 1
    }

    /// Counts one value of label `slot` of metric `m`.
    fn count_value(&mut self, m: usize, slot: usize, value: &str) {
        let values_left = self.values_total < self.budget.values_total;
        let per_label = self.budget.values_per_label;
        let Some(label) = self.metrics[m].labels.get_mut(slot) else {
            return;
        };
        label.series += 1;
        if per_label == 0 {
            // Counting series only.
            label.exact = false;
            return;
        }
        let hash = xxhash_rust::xxh3::xxh3_64(value.as_bytes());
        if label.hashes.contains(&hash) {
            return;
        }
        if !values_left || label.hashes.len() >= per_label {
            label.exact = false;
            return;
        }
        label.hashes.insert(hash);
        self.values_total += 1;
        if label.listed.len() > LIST_VALUES_UP_TO || label.listed_incomplete {
            return;
        }
        let text = cut(value);
        if self.take_text(text.len()) {
            self.metrics[m].labels[slot].listed.push(text);
        } else {
            self.metrics[m].labels[slot].listed_incomplete = true;
        }
    }

    /// Ends the input: the profile, sorted.
    pub fn finish(self) -> Profile {
        let families = self.families;
        let mut metrics: Vec<MetricProfile> = self
            .metrics
            .into_iter()
            .map(|m| {
                let meta = families.get(&m.family);
                let mut labels: Vec<LabelProfile> = m
                    .labels
                    .into_iter()
                    // A name seen only with empty values is an absent label.
                    .filter(|l| l.series > 0)
                    .map(|l| {
                        let distinct = l.hashes.len() as u64;
                        let values = (distinct as usize <= LIST_VALUES_UP_TO
                            && l.exact
                            && !l.listed_incomplete)
                            .then(|| {
                                let mut v = l.listed;
                                v.sort_unstable();
                                v
                            });
                        LabelProfile {
                            name: l.name,
                            distinct,
                            exact: l.exact,
                            series: l.series,
                            values,
                        }
                    })
                    .collect();
                labels.sort_unstable_by(|a, b| {
                    b.distinct
                        .cmp(&a.distinct)
                        .then_with(|| a.name.cmp(&b.name))
                });
                MetricProfile {
                    typ: meta
                        .and_then(|f| f.typ.clone())
                        .unwrap_or_else(|| "untyped".to_owned()),
                    help: meta.and_then(|f| f.help.clone()).unwrap_or_default(),
                    name: m.name,
                    family: m.family,
                    series: m.series,
                    bytes: m.bytes,
                    labels,
                    labels_not_listed: m.labels_not_listed,
                }
            })
            .collect();
        metrics.sort_unstable_by(|a, b| b.series.cmp(&a.series).then_with(|| a.name.cmp(&b.name)));
        Profile {
            totals: Totals {
                series: self.series,
                metrics: metrics.len() as u64,
                bytes: self.bytes,
                series_not_listed: self.series_not_listed,
            },
            metrics,
        }
    }
}

/// `text` cut to at most [`MAX_TEXT_LEN`] bytes at a character boundary, `…` marking a cut.
fn cut(text: &str) -> String {
    if text.len() <= MAX_TEXT_LEN {
        return text.to_owned();
    }
    let mut end = MAX_TEXT_LEN;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// Bytes of the line metric-gate writes for `sample`: `series value[ timestamp]\n`.
pub(crate) fn line_bytes(sample: &Sample<'_>) -> u64 {
    let ts = match sample.timestamp_ms {
        Some(t) => 1 + decimal_len(t),
        None => 0,
    };
    (sample.series_text.len() + 1 + sample.value_text.len() + ts + 1) as u64
}

/// Characters of `n` written in decimal.
fn decimal_len(n: i64) -> usize {
    let mut len = usize::from(n < 0);
    let mut u = n.unsigned_abs();
    loop {
        len += 1;
        u /= 10;
        if u == 0 {
            return len;
        }
    }
}

/// A profile has no limit that stops the input (its budget only stops counting).
impl LimitSink for Profiler {}

impl Sink for Profiler {
    fn metadata(&mut self, meta: &Metadata<'_>) {
        if !matches!(meta.kind, MetaKind::Type | MetaKind::Help) {
            return;
        }
        if !self.families.contains_key(meta.family) {
            if self.families.len() >= self.budget.metrics || !self.take_text(meta.family.len()) {
                return;
            }
            self.families
                .insert(meta.family.to_owned(), FamilyMeta::default());
        }
        let text = cut(meta.text);
        let fits = self.take_text(text.len());
        let Some(f) = self.families.get_mut(meta.family) else {
            return;
        };
        // One HELP and one TYPE per family: the first wins, as in the aggregate.
        let slot = match meta.kind {
            MetaKind::Type => &mut f.typ,
            _ => &mut f.help,
        };
        if slot.is_none() && fits {
            *slot = Some(text);
        }
    }

    fn sample(&mut self, sample: &Sample<'_>) {
        self.series += 1;
        let Some(m) = self.metric(sample) else {
            self.series_not_listed += 1;
            return;
        };
        let bytes = line_bytes(sample);
        {
            let acc = &mut self.metrics[m];
            acc.series += 1;
            acc.bytes += bytes;
        }
        let layout = sample.layout();
        let known = layout != 0
            && self.metrics[m].layout == layout
            && self.metrics[m].slots.len() == sample.label_count();
        if !known {
            let mut slots = std::mem::take(&mut self.metrics[m].slots);
            slots.clear();
            for (name, _) in sample.labels() {
                slots.push(self.label_slot(m, name));
            }
            let acc = &mut self.metrics[m];
            acc.slots = slots;
            acc.layout = layout;
        }
        for i in 0..sample.label_count() {
            let Some((_, value, _)) = sample.label_at(i) else {
                break;
            };
            // An empty value is the same as an absent label.
            let slot = self.metrics[m].slots.get(i).copied().unwrap_or(usize::MAX);
            if value.is_empty() || slot == usize::MAX {
                continue;
            }
            self.count_value(m, slot, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::ParseOptions;
    use crate::pipeline::read_all;

    fn profile(text: &str) -> Profile {
        profile_with(text, ProfileBudget::default())
    }

    fn profile_with(text: &str, budget: ProfileBudget) -> Profile {
        let mut p = Profiler::new(budget);
        let n = read_all(text.as_bytes(), ParseOptions::default(), &mut p).unwrap();
        p.add_bytes(n);
        p.finish()
    }

    const HIST: &str = "\
# HELP req_seconds Request latency.
# TYPE req_seconds histogram
req_seconds_bucket{path=\"/a\",le=\"1\"} 1
req_seconds_bucket{path=\"/a\",le=\"+Inf\"} 2
req_seconds_bucket{path=\"/b\",le=\"1\"} 0
req_seconds_bucket{path=\"/b\",le=\"+Inf\"} 1
req_seconds_sum{path=\"/a\"} 0.5
req_seconds_sum{path=\"/b\"} 2
req_seconds_count{path=\"/a\"} 2
req_seconds_count{path=\"/b\"} 1
up 1 1700000000000
plain{a=\"\",b=\"x\"} 3
";

    #[test]
    fn totals_types_and_families() {
        let p = profile(HIST);
        assert_eq!(p.totals.series, 10);
        assert_eq!(p.totals.metrics, 5);
        assert_eq!(p.totals.bytes, HIST.len() as u64);
        let names: Vec<&str> = p.metrics.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "req_seconds_bucket",
                "req_seconds_count",
                "req_seconds_sum",
                "plain",
                "up"
            ]
        );
        let bucket = &p.metrics[0];
        assert_eq!(bucket.family, "req_seconds");
        assert_eq!(bucket.typ, "histogram");
        assert_eq!(bucket.help, "Request latency.");
        assert_eq!(bucket.series, 4);
        assert_eq!(p.metrics[1].typ, "histogram");
        let up = p.metrics.iter().find(|m| m.name == "up").unwrap();
        assert_eq!((up.typ.as_str(), up.family.as_str()), ("untyped", "up"));
        // Sample lines as written: canonical text, so the bytes are the lines' own.
        assert_eq!(up.bytes, "up 1 1700000000000\n".len() as u64);
        let line_sum: u64 = HIST
            .lines()
            .filter(|l| l.starts_with("req_seconds_bucket"))
            .map(|l| l.len() as u64 + 1)
            .sum();
        assert_eq!(bucket.bytes, line_sum);
    }

    #[test]
    fn labels_distinct_values_and_empty_values() {
        let p = profile(HIST);
        let bucket = &p.metrics[0];
        let labels: Vec<(&str, u64, u64)> = bucket
            .labels
            .iter()
            .map(|l| (l.name.as_str(), l.distinct, l.series))
            .collect();
        assert_eq!(labels, [("le", 2, 4), ("path", 2, 4)]);
        assert_eq!(
            bucket.labels[0].values.as_deref(),
            Some(&["+Inf".to_owned(), "1".to_owned()][..])
        );
        // `a=""` is an absent label.
        let plain = p.metrics.iter().find(|m| m.name == "plain").unwrap();
        assert_eq!(plain.labels.len(), 1);
        assert_eq!(plain.labels[0].name, "b");
    }

    #[test]
    fn many_values_are_counted_not_listed() {
        let mut text = String::new();
        for i in 0..25 {
            text.push_str(&format!("m{{id=\"{i}\",k=\"c\"}} 1\n"));
        }
        let p = profile(&text);
        let m = &p.metrics[0];
        assert_eq!(m.labels[0].name, "id");
        assert_eq!(m.labels[0].distinct, 25);
        assert!(m.labels[0].exact);
        assert_eq!(m.labels[0].values, None);
        assert_eq!(m.labels[1].values.as_deref(), Some(&["c".to_owned()][..]));
        assert_eq!(m.labels[1].series, 25);
    }

    #[test]
    fn layouts_that_change_within_a_metric() {
        // The same metric with label sets in different orders and sizes.
        let p = profile("m{a=\"1\",b=\"2\"} 1\nm{b=\"3\",a=\"1\"} 1\nm{c=\"x\"} 1\nm{a=\"2\"} 1\n");
        let m = &p.metrics[0];
        let got: Vec<(&str, u64, u64)> = m
            .labels
            .iter()
            .map(|l| (l.name.as_str(), l.distinct, l.series))
            .collect();
        assert_eq!(got, [("a", 2, 3), ("b", 2, 2), ("c", 1, 1)]);
    }

    #[test]
    fn budget_bounds_everything() {
        let budget = ProfileBudget {
            metrics: 2,
            labels_per_metric: 1,
            values_per_label: 3,
            values_total: 1000,
            text_bytes: 1 << 20,
        };
        let mut text = String::new();
        for i in 0..10 {
            text.push_str(&format!("a{{x=\"{i}\",y=\"{i}\"}} 1\n"));
        }
        text.push_str("b 1\nc 1\nd 1\n");
        let p = profile_with(&text, budget);
        assert_eq!(p.totals.series, 13);
        assert_eq!(p.totals.metrics, 2);
        assert_eq!(p.totals.series_not_listed, 2);
        let a = &p.metrics[0];
        assert_eq!(a.labels.len(), 1);
        assert_eq!(a.labels_not_listed, 1);
        assert_eq!(a.labels[0].distinct, 3);
        assert!(!a.labels[0].exact);
        assert_eq!(a.labels[0].series, 10);
        assert_eq!(a.labels[0].values, None);
    }

    #[test]
    fn long_texts_are_cut() {
        let long = "v".repeat(MAX_TEXT_LEN + 10);
        let p = profile(&format!("# HELP m {long}\nm{{l=\"{long}\"}} 1\n"));
        let m = &p.metrics[0];
        assert_eq!(m.help.chars().count(), MAX_TEXT_LEN + 1);
        assert!(m.help.ends_with('…'));
        let v = &m.labels[0].values.as_ref().unwrap()[0];
        assert!(v.len() <= MAX_TEXT_LEN + '…'.len_utf8());
        assert_eq!(cut("é".repeat(200).as_str()).chars().count(), 129);
    }

    #[test]
    fn decimal_lengths() {
        for n in [0i64, 9, 10, -1, -10, 1_700_000_000_000, i64::MIN, i64::MAX] {
            assert_eq!(decimal_len(n), n.to_string().len(), "{n}");
        }
    }
}
