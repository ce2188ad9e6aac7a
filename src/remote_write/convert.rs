//! The version-neutral form of queued data ([`Series`]) and the conversions between it and
//! both wire versions: 1.0 (labels spelled out, metadata in `WriteRequest.metadata`) and 2.0
//! (strings interned in a symbols table, metadata per series).
//!
//! Queues hold [`Series`], not encoded requests, because an endpoint may fall back from 2.0 to
//! 1.0 between two attempts of the same batch: the batch is then encoded again in the other
//! version. `Series` is a superset of both versions (2.0's start timestamps, 1.0's family names
//! of metadata), so forwarding keeps everything a sender wrote, except what the target
//! version cannot carry (start timestamps in 1.0).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;

use super::wire::{v1, v2, Histogram, WireError};

/// The metadata of a series' family.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct SeriesMetadata {
    /// The family name (1.0's `metric_family_name`): `x` for `x_bucket`.
    pub family: String,
    /// The family's type.
    pub kind: v1::MetricType,
    /// HELP text, empty when none.
    pub help: String,
    /// Unit, empty when none.
    pub unit: String,
}

impl SeriesMetadata {
    /// The 1.0 message of this metadata.
    pub fn to_v1(&self) -> v1::MetricMetadata {
        v1::MetricMetadata {
            r#type: self.kind as i32,
            metric_family_name: self.family.clone(),
            help: self.help.clone(),
            unit: self.unit.clone(),
        }
    }

    /// From a 1.0 message (an unknown type number reads as unknown).
    pub fn from_v1(m: &v1::MetricMetadata) -> Self {
        SeriesMetadata {
            family: m.metric_family_name.clone(),
            kind: v1::MetricType::try_from(m.r#type).unwrap_or_default(),
            help: m.help.clone(),
            unit: m.unit.clone(),
        }
    }
}

/// One series with its data, as queued for an endpoint.
///
/// Invariant kept by every constructor in this module and by the encoder: labels are sorted by
/// name, names are unique and non-empty, values are non-empty.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Series {
    /// The labels, `__name__` included.
    pub labels: Vec<v1::Label>,
    /// Float samples in timestamp order (2.0 form: with start timestamps).
    pub samples: Vec<v2::Sample>,
    /// Native histogram samples in timestamp order.
    pub histograms: Vec<Histogram>,
    /// Exemplars.
    pub exemplars: Vec<v1::Exemplar>,
    /// The family metadata, shared by the series of a family.
    pub metadata: Option<Arc<SeriesMetadata>>,
}

impl Series {
    /// The metric name (`__name__`), empty when missing.
    pub fn name(&self) -> &str {
        self.labels
            .iter()
            .find(|l| l.name == "__name__")
            .map_or("", |l| l.value.as_str())
    }

    /// Samples plus histogram samples: what counts against `max_samples_per_send`.
    pub fn sample_count(&self) -> usize {
        self.samples.len() + self.histograms.len()
    }
}

/// The family a series name belongs to, by the suffixes of its type (`x_bucket` -> `x` for a
/// histogram). Used to match 1.0 metadata, which is keyed by family, to series.
fn family_candidates(name: &str) -> impl Iterator<Item = &str> {
    const SUFFIXES: [&str; 8] = [
        "_bucket", "_sum", "_count", "_total", "_created", "_info", "_gcount", "_gsum",
    ];
    std::iter::once(name).chain(SUFFIXES.iter().filter_map(move |s| name.strip_suffix(s)))
}

/// The family name of a series with metadata type `kind` (for 2.0 -> 1.0, where 2.0 metadata
/// has no family name): histogram and summary suffixes are removed.
fn family_of(name: &str, kind: v1::MetricType) -> &str {
    use v1::MetricType as T;
    let suffixes: &[&str] = match kind {
        T::Histogram => &["_bucket", "_sum", "_count", "_created"],
        T::Gaugehistogram => &["_bucket", "_gsum", "_gcount"],
        T::Summary => &["_sum", "_count", "_created"],
        _ => &[],
    };
    suffixes
        .iter()
        .find_map(|s| name.strip_suffix(s))
        .unwrap_or(name)
}

/// Puts labels in the wire's canonical form: empty values dropped (an empty value is an absent
/// label), sorted by name, later duplicates of a name dropped. Returns false when a name is
/// empty.
pub fn canonicalize_labels(labels: &mut Vec<v1::Label>) -> bool {
    labels.retain(|l| !l.value.is_empty());
    if labels.iter().any(|l| l.name.is_empty()) {
        return false;
    }
    labels.sort_by(|a, b| a.name.cmp(&b.name));
    labels.dedup_by(|b, a| a.name == b.name);
    true
}

/// Converts a 1.0 request into series, attaching each family's metadata from the same request
/// to its series; returns the metadata list too (for 1.0 endpoints, which get it as is).
pub fn series_from_v1(req: v1::WriteRequest) -> (Vec<Series>, Vec<v1::MetricMetadata>) {
    let by_family: HashMap<&str, Arc<SeriesMetadata>> = req
        .metadata
        .iter()
        .map(|m| {
            (
                m.metric_family_name.as_str(),
                Arc::new(SeriesMetadata::from_v1(m)),
            )
        })
        .collect();
    let series = req
        .timeseries
        .into_iter()
        .map(|ts| {
            let mut s = Series {
                labels: ts.labels,
                samples: ts
                    .samples
                    .into_iter()
                    .map(|x| v2::Sample {
                        value: x.value,
                        timestamp: x.timestamp,
                        start_timestamp: 0,
                    })
                    .collect(),
                histograms: ts.histograms,
                exemplars: ts.exemplars,
                metadata: None,
            };
            let meta = family_candidates(s.name()).find_map(|f| by_family.get(f).cloned());
            s.metadata = meta;
            s
        })
        .collect();
    (series, req.metadata)
}

/// Resolves a 2.0 request's symbol references into series. Fails on a reference outside the
/// symbols table or an odd-length `labels_refs` (the request is then not forwardable).
pub fn series_from_v2(req: v2::Request) -> Result<Vec<Series>, WireError> {
    let symbols = req.symbols;
    let sym = |r: u32, what: &str| -> Result<String, WireError> {
        symbols.get(r as usize).cloned().ok_or_else(|| {
            WireError::Invalid(format!(
                "{what} references symbol {r}, but the table has {} symbols",
                symbols.len()
            ))
        })
    };
    let pairs = |refs: &[u32], what: &str| -> Result<Vec<v1::Label>, WireError> {
        if !refs.len().is_multiple_of(2) {
            return Err(WireError::Invalid(format!(
                "{what} has an odd number of label references ({})",
                refs.len()
            )));
        }
        refs.chunks_exact(2)
            .map(|p| Ok(v1::Label::new(sym(p[0], what)?, sym(p[1], what)?)))
            .collect()
    };
    let mut metas: HashMap<(String, v2::Metadata), Arc<SeriesMetadata>> = HashMap::new();
    let mut out = Vec::with_capacity(req.timeseries.len());
    for ts in req.timeseries {
        let labels = pairs(&ts.labels_refs, "a series")?;
        let exemplars = ts
            .exemplars
            .iter()
            .map(|e| {
                Ok(v1::Exemplar {
                    labels: pairs(&e.labels_refs, "an exemplar")?,
                    value: e.value,
                    timestamp: e.timestamp,
                })
            })
            .collect::<Result<Vec<_>, WireError>>()?;
        let mut s = Series {
            labels,
            samples: ts.samples,
            histograms: ts.histograms,
            exemplars,
            metadata: None,
        };
        if let Some(m) = ts.metadata {
            let kind = v1::MetricType::try_from(m.r#type).unwrap_or_default();
            let help = sym(m.help_ref, "metadata help")?;
            let unit = sym(m.unit_ref, "metadata unit")?;
            if kind != v1::MetricType::Unknown || !help.is_empty() || !unit.is_empty() {
                let family = family_of(s.name(), kind).to_owned();
                let meta = metas
                    .entry((family.clone(), m))
                    .or_insert_with(|| {
                        Arc::new(SeriesMetadata {
                            family,
                            kind,
                            help,
                            unit,
                        })
                    })
                    .clone();
                s.metadata = Some(meta);
            }
        }
        out.push(s);
    }
    Ok(out)
}

/// How 1.0 requests spell names that are not legacy Prometheus names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NameEscaping {
    /// Every character not allowed in a legacy name becomes `_` (Prometheus' `underscores`
    /// escaping scheme), so 1.0 receivers that validate names accept the series.
    #[default]
    Underscores,
    /// Names are sent as they are.
    None,
}

/// The legacy form of a metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`): each other character (and a
/// leading digit) becomes `_`.
pub fn escape_metric_name(name: &str) -> Cow<'_, str> {
    escape(name, true)
}

/// The legacy form of a label name (`[a-zA-Z_][a-zA-Z0-9_]*`).
pub fn escape_label_name(name: &str) -> Cow<'_, str> {
    escape(name, false)
}

fn escape(name: &str, colon: bool) -> Cow<'_, str> {
    let ok = |i: usize, c: char| {
        c.is_ascii_alphabetic() || c == '_' || (colon && c == ':') || (i > 0 && c.is_ascii_digit())
    };
    if name.char_indices().all(|(i, c)| ok(i, c)) {
        return Cow::Borrowed(name);
    }
    Cow::Owned(
        name.char_indices()
            .map(|(i, c)| if ok(i, c) { c } else { '_' })
            .collect(),
    )
}

/// The labels of `s` as a 1.0 request spells them: escaped when asked, then canonical again
/// (escaping may reorder names or make two equal; the first one wins).
fn v1_labels(labels: &[v1::Label], escaping: NameEscaping) -> Vec<v1::Label> {
    if escaping == NameEscaping::None {
        return labels.to_vec();
    }
    let mut changed = false;
    let mut out: Vec<v1::Label> = labels
        .iter()
        .map(|l| {
            let name = if l.name == "__name__" {
                l.name.clone()
            } else {
                escape_label_name(&l.name).into_owned()
            };
            let value = if l.name == "__name__" {
                escape_metric_name(&l.value).into_owned()
            } else {
                l.value.clone()
            };
            changed |= name != l.name || value != l.value;
            v1::Label { name, value }
        })
        .collect();
    if changed {
        out.sort_by(|a, b| a.name.cmp(&b.name));
        out.dedup_by(|b, a| a.name == b.name);
    }
    out
}

/// The 1.0 request of `series` (samples, histograms and exemplars; start timestamps are
/// dropped, 1.0 has no field for them). Metadata is not included: 1.0 sends it in requests of
/// its own ([`metadata_to_v1`]).
pub fn series_to_v1(series: &[Series], escaping: NameEscaping) -> v1::WriteRequest {
    v1::WriteRequest {
        timeseries: series
            .iter()
            .map(|s| v1::TimeSeries {
                labels: v1_labels(&s.labels, escaping),
                samples: s
                    .samples
                    .iter()
                    .map(|x| v1::Sample {
                        value: x.value,
                        timestamp: x.timestamp,
                    })
                    .collect(),
                exemplars: s.exemplars.clone(),
                histograms: s
                    .histograms
                    .iter()
                    .map(|h| Histogram {
                        start_timestamp: 0,
                        ..h.clone()
                    })
                    .collect(),
            })
            .collect(),
        metadata: Vec::new(),
    }
}

/// The distinct family metadata of `series`, in first-seen order, as 1.0 messages (family
/// names escaped like metric names when asked).
pub fn metadata_to_v1(series: &[Series], escaping: NameEscaping) -> Vec<v1::MetricMetadata> {
    metadata_list_to_v1(
        series.iter().filter_map(|s| s.metadata.as_deref()),
        escaping,
    )
}

/// 1.0 messages of the distinct families in `metas`, in first-seen order.
pub fn metadata_list_to_v1<'m>(
    metas: impl IntoIterator<Item = &'m SeriesMetadata>,
    escaping: NameEscaping,
) -> Vec<v1::MetricMetadata> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for m in metas {
        if seen.insert(m.family.as_str()) {
            let mut mm = m.to_v1();
            if escaping == NameEscaping::Underscores {
                mm.metric_family_name = escape_metric_name(&m.family).into_owned();
            }
            out.push(mm);
        }
    }
    out
}

/// The symbols table of a 2.0 request: `symbols[0]` is `""`, every string appears once.
#[derive(Debug)]
pub struct Symbols {
    table: Vec<String>,
    index: HashMap<String, u32>,
}

impl Default for Symbols {
    fn default() -> Self {
        Self::new()
    }
}

impl Symbols {
    /// A table holding only the empty string (reference 0).
    pub fn new() -> Self {
        let mut index = HashMap::new();
        index.insert(String::new(), 0);
        Symbols {
            table: vec![String::new()],
            index,
        }
    }

    /// The reference of `s`, adding it when new.
    pub fn intern(&mut self, s: &str) -> u32 {
        if let Some(&r) = self.index.get(s) {
            return r;
        }
        let r = u32::try_from(self.table.len()).unwrap_or(u32::MAX);
        self.table.push(s.to_owned());
        self.index.insert(s.to_owned(), r);
        r
    }

    /// The table, for `Request.symbols`.
    pub fn into_table(self) -> Vec<String> {
        self.table
    }
}

/// The 2.0 request of `series`, with per-series metadata through the symbols table.
pub fn series_to_v2(series: &[Series]) -> v2::Request {
    let mut sym = Symbols::new();
    let refs = |labels: &[v1::Label], sym: &mut Symbols| -> Vec<u32> {
        let mut r = Vec::with_capacity(labels.len() * 2);
        for l in labels {
            r.push(sym.intern(&l.name));
            r.push(sym.intern(&l.value));
        }
        r
    };
    let timeseries = series
        .iter()
        .map(|s| v2::TimeSeries {
            labels_refs: refs(&s.labels, &mut sym),
            samples: s.samples.clone(),
            histograms: s.histograms.clone(),
            exemplars: s
                .exemplars
                .iter()
                .map(|e| v2::Exemplar {
                    labels_refs: refs(&e.labels, &mut sym),
                    value: e.value,
                    timestamp: e.timestamp,
                })
                .collect(),
            metadata: s.metadata.as_deref().map(|m| v2::Metadata {
                r#type: m.kind as i32,
                help_ref: sym.intern(&m.help),
                unit_ref: sym.intern(&m.unit),
            }),
        })
        .collect();
    v2::Request {
        symbols: sym.into_table(),
        timeseries,
    }
}

/// Converts a 1.0 request to 2.0: metadata of the request moves onto the series of its family
/// (1.0 metadata whose family has no series in the request has no place in 2.0).
pub fn v1_to_v2(req: &v1::WriteRequest) -> v2::Request {
    series_to_v2(&series_from_v1(req.clone()).0)
}

/// Converts a 2.0 request to 1.0: series as they are (start timestamps dropped), per-series
/// metadata gathered into `metadata`, one entry per family. Names are left as they are.
pub fn v2_to_v1(req: &v2::Request) -> Result<v1::WriteRequest, WireError> {
    let series = series_from_v2(req.clone())?;
    let mut out = series_to_v1(&series, NameEscaping::None);
    out.metadata = metadata_to_v1(&series, NameEscaping::None);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::super::wire::{histogram, stale_nan, BucketSpan};
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Vec<v1::Label> {
        pairs.iter().map(|(n, v)| v1::Label::new(*n, *v)).collect()
    }

    fn native() -> Histogram {
        Histogram {
            count: Some(histogram::Count::CountInt(3)),
            sum: 2.5,
            schema: 0,
            positive_spans: vec![BucketSpan {
                offset: 0,
                length: 2,
            }],
            positive_deltas: vec![1, 1],
            timestamp: 20,
            ..Default::default()
        }
    }

    fn v1_request() -> v1::WriteRequest {
        v1::WriteRequest {
            timeseries: vec![
                v1::TimeSeries {
                    labels: labels(&[("__name__", "req_duration_bucket"), ("le", "0.5")]),
                    samples: vec![
                        v1::Sample {
                            value: 4.0,
                            timestamp: 10,
                        },
                        v1::Sample {
                            value: stale_nan(),
                            timestamp: 20,
                        },
                    ],
                    exemplars: vec![v1::Exemplar {
                        labels: labels(&[("trace_id", "t1")]),
                        value: 0.3,
                        timestamp: 10,
                    }],
                    histograms: vec![],
                },
                v1::TimeSeries {
                    labels: labels(&[("__name__", "lat"), ("job", "a")]),
                    samples: vec![],
                    exemplars: vec![],
                    histograms: vec![native()],
                },
            ],
            metadata: vec![v1::MetricMetadata {
                r#type: v1::MetricType::Histogram as i32,
                metric_family_name: "req_duration".into(),
                help: "Request duration.".into(),
                unit: "seconds".into(),
            }],
        }
    }

    #[test]
    fn v1_to_v2_and_back() {
        let req = v1_request();
        let v2req = v1_to_v2(&req);
        assert_eq!(v2req.symbols[0], "");
        let mut uniq = v2req.symbols.clone();
        uniq.sort();
        uniq.dedup();
        assert_eq!(uniq.len(), v2req.symbols.len(), "symbols are deduplicated");
        let ts = &v2req.timeseries[0];
        let m = ts.metadata.unwrap();
        assert_eq!(m.r#type, v1::MetricType::Histogram as i32);
        assert_eq!(v2req.symbols[m.help_ref as usize], "Request duration.");
        assert_eq!(v2req.symbols[m.unit_ref as usize], "seconds");
        assert!(v2req.timeseries[1].metadata.is_none());
        assert_eq!(v2req.timeseries[1].histograms, vec![native()]);
        assert_eq!(v2req.symbols[ts.exemplars[0].labels_refs[1] as usize], "t1");

        let back = v2_to_v1(&v2req).unwrap();
        // NaN != NaN: compare bits of the stale marker, the rest structurally.
        let mut want = req.clone();
        let mut got = back.clone();
        assert_eq!(
            got.timeseries[0].samples[1].value.to_bits(),
            want.timeseries[0].samples[1].value.to_bits()
        );
        got.timeseries[0].samples[1].value = 0.0;
        want.timeseries[0].samples[1].value = 0.0;
        assert_eq!(got, want);
    }

    #[test]
    fn v2_start_timestamps_survive_v2_but_not_v1() {
        let mut h = native();
        h.start_timestamp = 7;
        let series = vec![Series {
            labels: labels(&[("__name__", "c_total")]),
            samples: vec![v2::Sample {
                value: 1.0,
                timestamp: 10,
                start_timestamp: 5,
            }],
            histograms: vec![h],
            exemplars: vec![],
            metadata: None,
        }];
        let req = series_to_v2(&series);
        assert_eq!(series_from_v2(req).unwrap(), series);
        let v1req = series_to_v1(&series, NameEscaping::None);
        assert_eq!(v1req.timeseries[0].histograms[0].start_timestamp, 0);
    }

    #[test]
    fn bad_symbol_references_are_errors() {
        let req = v2::Request {
            symbols: vec!["".into(), "__name__".into()],
            timeseries: vec![v2::TimeSeries {
                labels_refs: vec![1, 9],
                ..Default::default()
            }],
        };
        let e = series_from_v2(req).unwrap_err();
        assert!(e.to_string().contains("references symbol 9"), "{e}");
        let odd = v2::Request {
            symbols: vec!["".into(), "__name__".into()],
            timeseries: vec![v2::TimeSeries {
                labels_refs: vec![1],
                ..Default::default()
            }],
        };
        assert!(series_from_v2(odd).unwrap_err().to_string().contains("odd"));
    }

    #[test]
    fn escaping_for_v1() {
        assert_eq!(escape_metric_name("http.requests"), "http_requests");
        assert_eq!(escape_metric_name("a:b_c9"), "a:b_c9");
        assert_eq!(escape_metric_name("9lives"), "_lives");
        assert_eq!(escape_metric_name("größe"), "gr__e");
        assert_eq!(escape_label_name("a:b"), "a_b");
        let mut s = Series {
            labels: labels(&[
                ("__name__", "my.metric"),
                ("a_b", "first"),
                ("a.b", "second"),
                ("zone", "x.y"),
            ]),
            ..Default::default()
        };
        assert!(canonicalize_labels(&mut s.labels));
        let req = series_to_v1(&[s.clone()], NameEscaping::Underscores);
        let got: Vec<(&str, &str)> = req.timeseries[0]
            .labels
            .iter()
            .map(|l| (l.name.as_str(), l.value.as_str()))
            .collect();
        // Sorted again after escaping; of two names that escape alike, the first in sorted input
        // order (`a.b` < `a_b`) wins.
        assert_eq!(
            got,
            [
                ("__name__", "my_metric"),
                ("a_b", "second"),
                ("zone", "x.y")
            ]
        );
        let raw = series_to_v1(&[s], NameEscaping::None);
        assert_eq!(raw.timeseries[0].labels[0].value, "my.metric");
    }

    #[test]
    fn canonical_labels() {
        let mut l = labels(&[("b", "2"), ("a", ""), ("__name__", "x"), ("b", "3")]);
        assert!(canonicalize_labels(&mut l));
        assert_eq!(l, labels(&[("__name__", "x"), ("b", "2")]));
        let mut bad = labels(&[("", "v")]);
        assert!(!canonicalize_labels(&mut bad));
    }

    #[test]
    fn symbols_start_empty_and_dedupe() {
        let mut s = Symbols::new();
        assert_eq!(s.intern(""), 0);
        assert_eq!(s.intern("a"), 1);
        assert_eq!(s.intern("b"), 2);
        assert_eq!(s.intern("a"), 1);
        assert_eq!(s.into_table(), ["", "a", "b"]);
    }

    #[test]
    fn metadata_families_for_v1() {
        let meta = Arc::new(SeriesMetadata {
            family: "my.hist".into(),
            kind: v1::MetricType::Histogram,
            help: "h".into(),
            unit: String::new(),
        });
        let series: Vec<Series> = ["my.hist_bucket", "my.hist_sum"]
            .iter()
            .map(|n| Series {
                labels: labels(&[("__name__", n)]),
                metadata: Some(meta.clone()),
                ..Default::default()
            })
            .collect();
        let md = metadata_to_v1(&series, NameEscaping::Underscores);
        assert_eq!(md.len(), 1);
        assert_eq!(md[0].metric_family_name, "my_hist");
        assert_eq!(family_of("x_bucket", v1::MetricType::Histogram), "x");
        assert_eq!(family_of("x_total", v1::MetricType::Counter), "x_total");
    }
}
