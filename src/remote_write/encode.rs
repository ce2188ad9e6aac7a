//! From one scrape result of a list (or one received request) to the batches of one endpoint.
//!
//! The push loop hands every endpoint the rendered text 0.0.4 of its list, parsed once into a
//! [`Scrape`]: series with their sorted labels, value and explicit timestamp (if any), and the
//! family metadata (HELP, TYPE, UNIT). Each endpoint's [`Encoder`] then, per series:
//! 1. adds the `external_labels` the series does not carry (its own label wins, as in
//!    Prometheus),
//! 2. applies the endpoint's `write_relabel_configs`,
//! 3. drops empty values, sorts, and drops a series left without a `__name__` (counted),
//! 4. stamps the sample with the fetch time when it has no timestamp of its own,
//!
//! and cuts the result into [`Batch`]es of at most `max_samples_per_send` samples. Names are
//! escaped for 1.0 when a request is encoded, not here: a queued batch may still be sent as
//! either version.
//!
//! # Stale markers
//! A series the endpoint received in the previous scrape and not in this one gets one sample
//! with the stale NaN (`0x7ff0000000000002`) at this scrape's time; [`Encoder::stale_all`]
//! ends every live series (at shutdown). As the specifications ask, series with explicit
//! timestamps get none: their end cannot be told from their timestamps.
//!
//! # Metadata
//! 2.0 carries each series' family metadata in the series (through the symbols table). 1.0
//! carries it in requests of its own: [`Encoder::encode`] emits them, before the samples, on
//! the first scrape, every `metadata_config.send_interval`, and whenever the set of families
//! sent or their text changes.

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use super::config::MetadataConfig;
use super::convert::{canonicalize_labels, Series, SeriesMetadata};
use super::wire::{stale_nan, v1, v2, Protocol};
use crate::exposition::{
    Format, MetaKind, Metadata, ParseError, ParseOptions, Parser, Sample, Sink,
};
use crate::labels::{LabelBuf, METRIC_NAME};
use crate::relabel::Program;

/// One series of a scrape result, before the endpoint's rules.
#[derive(Debug, Clone, PartialEq)]
pub struct ScrapedSeries {
    /// Labels with `__name__`, sorted by name, no empty value.
    pub labels: Vec<v1::Label>,
    /// The value.
    pub value: f64,
    /// The sample's own timestamp in milliseconds, if the text gave one.
    pub timestamp_ms: Option<i64>,
    /// Index into [`Scrape::families`], when the series' family has metadata.
    pub family: Option<usize>,
}

/// One list's scrape result, version-neutral: what every endpoint pushing that list encodes.
#[derive(Debug, Clone, Default)]
pub struct Scrape {
    /// The series, in the order of the text.
    pub series: Vec<ScrapedSeries>,
    /// Family metadata, in the order the text introduced the families.
    pub families: Vec<Arc<SeriesMetadata>>,
    /// When the upstream was fetched (Unix milliseconds): the timestamp of samples that have
    /// none, and of stale markers.
    pub timestamp_ms: i64,
}

impl Scrape {
    /// Parses rendered text 0.0.4 (the output of a list). `timestamp_ms` is the fetch time.
    pub fn from_text(text: &[u8], timestamp_ms: i64) -> Result<Scrape, ParseError> {
        let mut sink = Collect::default();
        let mut parser = Parser::new(ParseOptions {
            max_line_len: usize::MAX,
            format: Format::Text,
        });
        parser.feed(text, &mut sink)?;
        parser.finish(&mut sink)?;
        Ok(Scrape {
            series: sink.series,
            families: sink
                .families
                .into_iter()
                .map(|(m, _)| Arc::new(m))
                .collect(),
            timestamp_ms,
        })
    }

    /// Number of series.
    pub fn len(&self) -> usize {
        self.series.len()
    }

    /// True when the scrape has no series.
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }
}

/// The parser sink behind [`Scrape::from_text`].
#[derive(Default)]
struct Collect {
    series: Vec<ScrapedSeries>,
    /// Metadata and whether the family has any (HELP, TYPE or UNIT seen).
    families: Vec<(SeriesMetadata, bool)>,
    by_name: HashMap<String, usize>,
}

impl Collect {
    fn family(&mut self, name: &str) -> usize {
        if let Some(&i) = self.by_name.get(name) {
            return i;
        }
        let i = self.families.len();
        self.families.push((
            SeriesMetadata {
                family: name.to_owned(),
                ..SeriesMetadata::default()
            },
            false,
        ));
        self.by_name.insert(name.to_owned(), i);
        i
    }
}

impl Sink for Collect {
    fn metadata(&mut self, meta: &Metadata<'_>) {
        let i = self.family(meta.family);
        let (m, seen) = &mut self.families[i];
        *seen = true;
        match meta.kind {
            MetaKind::Help => m.help = meta.text.to_owned(),
            MetaKind::Type => m.kind = v1::MetricType::from_type_word(meta.text),
            MetaKind::Unit => m.unit = meta.text.to_owned(),
        }
    }

    fn sample(&mut self, s: &Sample<'_>) {
        let mut labels = Vec::with_capacity(s.label_count() + 1);
        labels.push(v1::Label::new(METRIC_NAME, s.name));
        labels.extend(s.labels().map(|(n, v)| v1::Label::new(n, v)));
        if !canonicalize_labels(&mut labels) {
            return;
        }
        let family = self
            .by_name
            .get(s.family)
            .copied()
            .filter(|&i| self.families[i].1);
        self.series.push(ScrapedSeries {
            labels,
            value: s.value,
            timestamp_ms: s.timestamp_ms,
            family,
        });
    }
}

/// What an endpoint's queue holds: samples of series, or (1.0 only) metadata.
#[derive(Debug, Clone, PartialEq)]
pub enum Batch {
    /// Series with their samples, histograms and exemplars.
    Series(Vec<Series>),
    /// Family metadata, sent by 1.0 in requests of its own.
    Metadata(Vec<Arc<SeriesMetadata>>),
}

impl Batch {
    /// Samples (and histogram samples) in a series batch; entries in a metadata batch. This is
    /// what queue capacity and `max_samples_per_send` count.
    pub fn weight(&self) -> usize {
        match self {
            Batch::Series(s) => s.iter().map(Series::sample_count).sum(),
            Batch::Metadata(m) => m.len(),
        }
    }
}

/// What one call of the encoder produced and left out.
#[derive(Debug, Default)]
pub struct Encoded {
    /// Batches in send order: 1.0 metadata first, then samples, then stale markers.
    pub batches: Vec<Batch>,
    /// Series that relabeling dropped.
    pub dropped_by_relabel: u64,
    /// Series left without a metric name (or with an empty label name) after relabeling.
    pub dropped_nameless: u64,
    /// Stale markers among the batches.
    pub stale_markers: u64,
}

/// A series sent in the previous scrape (for stale markers).
#[derive(Debug, Clone)]
struct Live {
    labels: Vec<v1::Label>,
    metadata: Option<Arc<SeriesMetadata>>,
}

/// One endpoint's encoder: rules, staleness and metadata state across scrapes.
#[derive(Debug)]
pub struct Encoder {
    external_labels: Vec<(String, String)>,
    relabel: Program,
    max_samples: usize,
    metadata: MetadataConfig,
    /// Series without explicit timestamps sent by the last scrape, by label hash.
    live: HashMap<u128, Live>,
    /// 1.0 metadata last sent: hash of the set and when (Unix ms); `None` forces a send.
    last_metadata: Option<(u64, i64)>,
    scratch: LabelBuf,
    key: Vec<u8>,
}

impl Encoder {
    /// An encoder for an endpoint with these rules and limits.
    pub fn new(
        external_labels: Vec<(String, String)>,
        relabel: Program,
        max_samples_per_send: usize,
        metadata: MetadataConfig,
    ) -> Self {
        Encoder {
            external_labels,
            relabel,
            max_samples: max_samples_per_send.max(1),
            metadata,
            live: HashMap::new(),
            last_metadata: None,
            scratch: LabelBuf::new(),
            key: Vec::new(),
        }
    }

    /// Takes the live series of `previous` (the same endpoint's encoder before a reload), so
    /// that those the next scrape lacks get their stale markers; `previous` forgets them.
    pub fn take_live_from(&mut self, previous: &mut Encoder) {
        self.live = std::mem::take(&mut previous.live);
    }

    /// Series sent by the last scrape that would get a stale marker if they disappeared.
    pub fn live_series(&self) -> usize {
        self.live.len()
    }

    /// Applies external labels and the write relabel rules to `labels` (sorted, non-empty
    /// values); returns the endpoint's canonical label set, or why it was dropped.
    fn relabel(&mut self, labels: &[v1::Label]) -> Result<Vec<v1::Label>, Dropped> {
        let buf = &mut self.scratch;
        buf.clear();
        for l in labels {
            buf.push(&l.name, &l.value);
        }
        for (n, v) in &self.external_labels {
            if buf.get(n).is_none_or(str::is_empty) {
                buf.set(n, v);
            }
        }
        if !self.relabel.is_empty() {
            buf.sort();
            if !self.relabel.apply(buf) {
                return Err(Dropped::Relabel);
            }
        }
        let mut out: Vec<v1::Label> = buf.iter().map(|(n, v)| v1::Label::new(n, v)).collect();
        if !canonicalize_labels(&mut out)
            || !out
                .iter()
                .any(|l| l.name == METRIC_NAME && !l.value.is_empty())
        {
            return Err(Dropped::Nameless);
        }
        Ok(out)
    }

    fn hash(key: &mut Vec<u8>, labels: &[v1::Label]) -> u128 {
        key.clear();
        for l in labels {
            key.extend_from_slice(l.name.as_bytes());
            key.push(0xff);
            key.extend_from_slice(l.value.as_bytes());
            key.push(0xff);
        }
        xxhash_rust::xxh3::xxh3_128(key)
    }

    /// Encodes one scrape for an endpoint currently speaking `protocol`.
    pub fn encode(&mut self, scrape: &Scrape, protocol: Protocol) -> Encoded {
        let mut out = Encoded::default();
        let mut series = Vec::with_capacity(scrape.series.len());
        let mut live = HashMap::with_capacity(self.live.len());
        let mut families: Vec<usize> = Vec::new();
        let mut family_seen = HashSet::new();
        for s in &scrape.series {
            let labels = match self.relabel(&s.labels) {
                Ok(l) => l,
                Err(Dropped::Relabel) => {
                    out.dropped_by_relabel += 1;
                    continue;
                }
                Err(Dropped::Nameless) => {
                    out.dropped_nameless += 1;
                    continue;
                }
            };
            let metadata = if self.metadata.send {
                s.family.and_then(|i| {
                    if family_seen.insert(i) {
                        families.push(i);
                    }
                    scrape.families.get(i).cloned()
                })
            } else {
                None
            };
            if s.timestamp_ms.is_none() {
                let h = Self::hash(&mut self.key, &labels);
                live.insert(
                    h,
                    Live {
                        labels: labels.clone(),
                        metadata: metadata.clone(),
                    },
                );
            }
            series.push(Series {
                labels,
                samples: vec![v2::Sample {
                    value: s.value,
                    timestamp: s.timestamp_ms.unwrap_or(scrape.timestamp_ms),
                    start_timestamp: 0,
                }],
                histograms: Vec::new(),
                exemplars: Vec::new(),
                metadata: if protocol == Protocol::V2 {
                    metadata
                } else {
                    None
                },
            });
        }
        let previous = std::mem::replace(&mut self.live, live);
        for (h, gone) in previous {
            if !self.live.contains_key(&h) {
                out.stale_markers += 1;
                series.push(stale_marker(gone, scrape.timestamp_ms, protocol));
            }
        }
        if protocol == Protocol::V1 && self.metadata.send {
            let metas: Vec<Arc<SeriesMetadata>> = families
                .iter()
                .filter_map(|&i| scrape.families.get(i).cloned())
                .collect();
            out.batches
                .extend(self.metadata_batches(metas, scrape.timestamp_ms));
        } else {
            // Sent per series, or not at all; a later fallback to 1.0 sends it at once.
            self.last_metadata = None;
        }
        self.cut(series, &mut out.batches);
        out
    }

    /// The 1.0 metadata batches due now (`now_ms`): all of `metas` when they changed since the
    /// last send or `send_interval` has passed, none otherwise.
    fn metadata_batches(&mut self, metas: Vec<Arc<SeriesMetadata>>, now_ms: i64) -> Vec<Batch> {
        if metas.is_empty() {
            return Vec::new();
        }
        let mut h = std::collections::hash_map::DefaultHasher::new();
        metas.hash(&mut h);
        let sig = h.finish();
        let interval = i64::try_from(self.metadata.send_interval.as_millis()).unwrap_or(i64::MAX);
        let due = match self.last_metadata {
            None => true,
            Some((last_sig, at)) => last_sig != sig || now_ms.saturating_sub(at) >= interval,
        };
        if !due {
            return Vec::new();
        }
        self.last_metadata = Some((sig, now_ms));
        metas
            .chunks(self.metadata.max_samples_per_send.max(1))
            .map(|c| Batch::Metadata(c.to_vec()))
            .collect()
    }

    /// Stale markers for every live series (at shutdown), stamped `timestamp_ms`; forgets them.
    pub fn stale_all(&mut self, timestamp_ms: i64, protocol: Protocol) -> Encoded {
        let mut out = Encoded::default();
        let series: Vec<Series> = std::mem::take(&mut self.live)
            .into_values()
            .map(|l| stale_marker(l, timestamp_ms, protocol))
            .collect();
        out.stale_markers = series.len() as u64;
        self.cut(series, &mut out.batches);
        out
    }

    /// Encodes received data for forwarding: external labels and write relabeling, no stale
    /// tracking (the data carries its own timestamps). `metadata` is 1.0 metadata of the
    /// request; a 1.0 endpoint gets it (or, for data received as 2.0, the series' metadata)
    /// in a metadata batch before the samples.
    pub fn forward(
        &mut self,
        input: Vec<Series>,
        metadata: Vec<Arc<SeriesMetadata>>,
        protocol: Protocol,
    ) -> Encoded {
        let mut out = Encoded::default();
        let mut series = Vec::with_capacity(input.len());
        let mut metas = metadata;
        let mut seen: HashSet<String> = metas.iter().map(|m| m.family.clone()).collect();
        for mut s in input {
            s.labels = match self.relabel(&s.labels) {
                Ok(l) => l,
                Err(Dropped::Relabel) => {
                    out.dropped_by_relabel += 1;
                    continue;
                }
                Err(Dropped::Nameless) => {
                    out.dropped_nameless += 1;
                    continue;
                }
            };
            if !self.metadata.send {
                s.metadata = None;
            } else if protocol == Protocol::V1 {
                if let Some(m) = s.metadata.take() {
                    if seen.insert(m.family.clone()) {
                        metas.push(m);
                    }
                }
            }
            series.push(s);
        }
        if protocol == Protocol::V1 && self.metadata.send && !metas.is_empty() {
            out.batches.extend(
                metas
                    .chunks(self.metadata.max_samples_per_send.max(1))
                    .map(|c| Batch::Metadata(c.to_vec())),
            );
        }
        self.cut(series, &mut out.batches);
        out
    }

    /// Cuts series into batches of at most `max_samples` samples (a single series with more
    /// samples than that goes alone, whole: its samples stay in order in one request).
    fn cut(&self, series: Vec<Series>, batches: &mut Vec<Batch>) {
        let mut cur: Vec<Series> = Vec::new();
        let mut n = 0;
        for s in series {
            let w = s.sample_count();
            if n > 0 && n + w > self.max_samples {
                batches.push(Batch::Series(std::mem::take(&mut cur)));
                n = 0;
            }
            n += w;
            cur.push(s);
        }
        if !cur.is_empty() {
            batches.push(Batch::Series(cur));
        }
    }
}

enum Dropped {
    Relabel,
    Nameless,
}

fn stale_marker(l: Live, timestamp_ms: i64, protocol: Protocol) -> Series {
    Series {
        labels: l.labels,
        samples: vec![v2::Sample {
            value: stale_nan(),
            timestamp: timestamp_ms,
            start_timestamp: 0,
        }],
        histograms: Vec::new(),
        exemplars: Vec::new(),
        metadata: if protocol == Protocol::V2 {
            l.metadata
        } else {
            None
        },
    }
}

#[cfg(test)]
mod tests {
    use super::super::wire::is_stale_nan;
    use super::*;
    use crate::relabel::RelabelConfig;

    const TEXT: &str = "# HELP req_total Requests.\n# TYPE req_total counter\nreq_total{code=\"200\",path=\"/a\"} 3\nreq_total{code=\"500\",path=\"/a\"} 1\n# HELP lat Latency.\n# TYPE lat histogram\nlat_bucket{le=\"1\"} 2\nlat_bucket{le=\"+Inf\"} 3\nlat_sum 1.5\nlat_count 3\nno_meta{\"odd.label\"=\"x\"} 7 1234\n";

    fn program(yaml: &str) -> Program {
        let rules: Vec<RelabelConfig> = serde_yaml_ng::from_str(yaml).unwrap();
        Program::compile("test", &rules).unwrap()
    }

    fn names(b: &Batch) -> Vec<String> {
        match b {
            Batch::Series(s) => s
                .iter()
                .map(|s| {
                    s.labels
                        .iter()
                        .map(|l| format!("{}={}", l.name, l.value))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .collect(),
            Batch::Metadata(m) => m.iter().map(|m| m.family.clone()).collect(),
        }
    }

    #[test]
    fn scrape_from_text() {
        let s = Scrape::from_text(TEXT.as_bytes(), 1000).unwrap();
        assert_eq!(s.len(), 7);
        assert_eq!(s.families.len(), 2);
        assert_eq!(s.families[1].kind, v1::MetricType::Histogram);
        assert_eq!(s.families[0].help, "Requests.");
        assert_eq!(s.series[2].family, Some(1), "lat_bucket belongs to lat");
        assert_eq!(s.series[6].family, None);
        assert_eq!(s.series[6].timestamp_ms, Some(1234));
        assert_eq!(s.series[6].labels[0].name, "__name__");
        assert_eq!(s.series[6].labels[1].name, "odd.label");
    }

    #[test]
    fn external_labels_relabel_sort_and_stamp() {
        let s = Scrape::from_text(TEXT.as_bytes(), 1000).unwrap();
        let mut e = Encoder::new(
            vec![("code".into(), "ext".into()), ("replica".into(), "a".into())],
            program("- {action: labeldrop, regex: path}\n- {action: drop, source_labels: [__name__], regex: lat_sum}"),
            3,
            MetadataConfig::default(),
        );
        let out = e.encode(&s, Protocol::V2);
        assert_eq!(out.dropped_by_relabel, 1);
        assert!(out.batches.iter().all(|b| b.weight() <= 3));
        let all: Vec<String> = out.batches.iter().flat_map(names).collect();
        assert_eq!(
            all[0], "__name__=req_total,code=200,replica=a",
            "the series' own code wins, path dropped, sorted"
        );
        assert!(
            all.contains(&"__name__=no_meta,code=ext,odd.label=x,replica=a".to_string()),
            "an external label the series lacks is added: {all:?}"
        );
        let Batch::Series(first) = &out.batches[0] else {
            panic!()
        };
        assert_eq!(first[0].samples[0].timestamp, 1000);
        assert_eq!(first[0].metadata.as_ref().unwrap().help, "Requests.");
        let last = out.batches.last().unwrap();
        let Batch::Series(last) = last else { panic!() };
        assert_eq!(last.last().unwrap().samples[0].timestamp, 1234);
        // 2.0: no metadata batches.
        assert!(out.batches.iter().all(|b| matches!(b, Batch::Series(_))));
    }

    #[test]
    fn stale_markers_once_for_vanished_series() {
        let mut e = Encoder::new(vec![], Program::default(), 100, MetadataConfig::default());
        let first = Scrape::from_text(b"a 1\nb 2\nc{x=\"1\"} 3 5000\n", 1000).unwrap();
        let out = e.encode(&first, Protocol::V1);
        assert_eq!(out.stale_markers, 0);
        assert_eq!(e.live_series(), 2, "explicit timestamps are not tracked");
        let second = Scrape::from_text(b"a 1\n", 2000).unwrap();
        let out = e.encode(&second, Protocol::V1);
        assert_eq!(out.stale_markers, 1);
        let Batch::Series(s) = &out.batches[0] else {
            panic!()
        };
        assert_eq!(s[1].name(), "b");
        assert!(is_stale_nan(s[1].samples[0].value));
        assert_eq!(s[1].samples[0].timestamp, 2000);
        let out = e.encode(&Scrape::from_text(b"a 1\n", 3000).unwrap(), Protocol::V1);
        assert_eq!(out.stale_markers, 0, "once");
        let out = e.stale_all(4000, Protocol::V1);
        assert_eq!(out.stale_markers, 1);
        assert_eq!(e.live_series(), 0);
    }

    #[test]
    fn v1_metadata_first_then_on_interval_or_change() {
        let md = MetadataConfig {
            send: true,
            send_interval: std::time::Duration::from_secs(60),
            max_samples_per_send: 1,
        };
        let mut e = Encoder::new(vec![], Program::default(), 100, md);
        let s = Scrape::from_text(TEXT.as_bytes(), 1000).unwrap();
        let out = e.encode(&s, Protocol::V1);
        assert_eq!(names(&out.batches[0]), ["req_total"]);
        assert_eq!(names(&out.batches[1]), ["lat"]);
        assert!(matches!(out.batches[2], Batch::Series(_)));
        let Batch::Series(series) = &out.batches[2] else {
            panic!()
        };
        assert!(series[0].metadata.is_none(), "1.0 series carry none");
        // Unchanged, within the interval: none.
        let s2 = Scrape {
            timestamp_ms: 30_000,
            ..s.clone()
        };
        assert_eq!(e.encode(&s2, Protocol::V1).batches.len(), 1);
        // Interval passed.
        let s3 = Scrape {
            timestamp_ms: 61_000,
            ..s.clone()
        };
        assert_eq!(e.encode(&s3, Protocol::V1).batches.len(), 3);
        // Changed help.
        let changed = TEXT.replace("Latency.", "Latency in seconds.");
        let s4 = Scrape::from_text(changed.as_bytes(), 62_000).unwrap();
        assert_eq!(e.encode(&s4, Protocol::V1).batches.len(), 3);
        // Off.
        let mut off = Encoder::new(
            vec![],
            Program::default(),
            100,
            MetadataConfig { send: false, ..md },
        );
        assert_eq!(off.encode(&s, Protocol::V1).batches.len(), 1);
        let out = off.encode(&s, Protocol::V2);
        let Batch::Series(series) = &out.batches[0] else {
            panic!()
        };
        assert!(series.iter().all(|s| s.metadata.is_none()));
    }

    #[test]
    fn nameless_series_are_dropped_and_counted() {
        let mut e = Encoder::new(
            vec![],
            program("- {action: labeldrop, regex: __name__}"),
            100,
            MetadataConfig::default(),
        );
        let out = e.encode(&Scrape::from_text(b"a 1\n", 1).unwrap(), Protocol::V1);
        assert_eq!(out.dropped_nameless, 1);
        assert!(out.batches.iter().all(|b| !matches!(b, Batch::Series(_))));
    }

    #[test]
    fn forward_relabels_and_moves_metadata_for_v1() {
        let meta = Arc::new(SeriesMetadata {
            family: "up".into(),
            kind: v1::MetricType::Gauge,
            help: "Up.".into(),
            unit: String::new(),
        });
        let series = vec![Series {
            labels: vec![
                v1::Label::new("__name__", "up"),
                v1::Label::new("path", "/"),
            ],
            samples: vec![v2::Sample {
                value: 1.0,
                timestamp: 5,
                start_timestamp: 0,
            }],
            metadata: Some(meta),
            ..Default::default()
        }];
        let mut e = Encoder::new(
            vec![("dc".into(), "x".into())],
            program("- {action: labeldrop, regex: path}"),
            100,
            MetadataConfig::default(),
        );
        let out = e.forward(series.clone(), vec![], Protocol::V1);
        assert_eq!(names(&out.batches[0]), ["up"]);
        assert_eq!(names(&out.batches[1]), ["__name__=up,dc=x"]);
        let out = e.forward(series, vec![], Protocol::V2);
        assert_eq!(out.batches.len(), 1);
        let Batch::Series(s) = &out.batches[0] else {
            panic!()
        };
        assert_eq!(s[0].metadata.as_ref().unwrap().help, "Up.");
        assert_eq!(s[0].samples[0].timestamp, 5);
    }
}
