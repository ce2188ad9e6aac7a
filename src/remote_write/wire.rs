//! The remote-write wire format: hand-written protobuf messages of Remote-Write 1.0
//! (`prometheus.WriteRequest`) and 2.0 (`io.prometheus.write.v2.Request`), and snappy block
//! compression.
//!
//! Field numbers and types follow `prompb/types.proto`, `prompb/remote.proto` and
//! `prompb/io/prometheus/write/v2/types.proto` of the Prometheus repository (2.0 as of rc.4,
//! with `start_timestamp` on samples and histograms). The messages are written by hand with
//! `prost`'s derive, so the build needs no `protoc`. Exemplars, native histograms (spans,
//! deltas, float counts, custom bucket bounds) and metadata are all present, so whatever a
//! sender wrote survives a decode and re-encode.
//!
//! The native [`Histogram`] and [`BucketSpan`] are one type for both versions: the messages are
//! identical except for 2.0's `start_timestamp` (field 17), which 1.0 encoding leaves at zero
//! (a zero field is not written at all).
//!
//! # Snappy
//! Remote write uses the snappy **block** format (never the framed format). [`decompress`]
//! reads the decoded length from the block's header and refuses a block that would exceed the
//! caller's limit *before* allocating or decoding anything, so a small body cannot expand into
//! an arbitrarily large buffer.

use bytes::Bytes;

/// Content type of a 1.0 request, as senders should send it to 1.x receivers.
pub const CONTENT_TYPE_V1: &str = "application/x-protobuf";
/// Content type of a 2.0 request.
pub const CONTENT_TYPE_V2: &str = "application/x-protobuf;proto=io.prometheus.write.v2.Request";
/// `X-Prometheus-Remote-Write-Version` of a 1.0 request.
pub const VERSION_V1: &str = "0.1.0";
/// `X-Prometheus-Remote-Write-Version` of a 2.0 request.
pub const VERSION_V2: &str = "2.0.0";
/// The fully qualified name of the 1.0 message (`protobuf_message`, `proto=` parameter).
pub const PROTO_V1: &str = "prometheus.WriteRequest";
/// The fully qualified name of the 2.0 message.
pub const PROTO_V2: &str = "io.prometheus.write.v2.Request";
/// The NaN Prometheus uses as a stale marker; no other value may carry these bits.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;

/// The stale marker value.
pub fn stale_nan() -> f64 {
    f64::from_bits(STALE_NAN_BITS)
}

/// True when `v` is exactly the stale marker (not any other NaN).
pub fn is_stale_nan(v: f64) -> bool {
    v.to_bits() == STALE_NAN_BITS
}

/// Which message a request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// Remote-Write 1.0, `prometheus.WriteRequest`.
    V1,
    /// Remote-Write 2.0, `io.prometheus.write.v2.Request`.
    V2,
}

impl Protocol {
    /// The request's `Content-Type`.
    pub fn content_type(self) -> &'static str {
        match self {
            Protocol::V1 => CONTENT_TYPE_V1,
            Protocol::V2 => CONTENT_TYPE_V2,
        }
    }

    /// The request's `X-Prometheus-Remote-Write-Version`.
    pub fn version(self) -> &'static str {
        match self {
            Protocol::V1 => VERSION_V1,
            Protocol::V2 => VERSION_V2,
        }
    }

    /// The message name, as in `protobuf_message` and the `proto=` parameter.
    pub fn message_name(self) -> &'static str {
        match self {
            Protocol::V1 => PROTO_V1,
            Protocol::V2 => PROTO_V2,
        }
    }
}

/// A native histogram sample (both versions; see the module documentation).
#[derive(Clone, PartialEq, ::prost::Message)]
pub struct Histogram {
    /// Count of observations: integer or float.
    #[prost(oneof = "histogram::Count", tags = "1, 2")]
    pub count: Option<histogram::Count>,
    /// Sum of observations.
    #[prost(double, tag = "3")]
    pub sum: f64,
    /// Bucket schema: -4..=8 exponential, -53 custom bounds.
    #[prost(sint32, tag = "4")]
    pub schema: i32,
    /// Breadth of the zero bucket.
    #[prost(double, tag = "5")]
    pub zero_threshold: f64,
    /// Count in the zero bucket: integer or float.
    #[prost(oneof = "histogram::ZeroCount", tags = "6, 7")]
    pub zero_count: Option<histogram::ZeroCount>,
    /// Spans of the negative buckets.
    #[prost(message, repeated, tag = "8")]
    pub negative_spans: Vec<BucketSpan>,
    /// Integer histograms: each negative bucket's count as a delta to the previous one.
    #[prost(sint64, repeated, tag = "9")]
    pub negative_deltas: Vec<i64>,
    /// Float histograms: absolute negative bucket counts.
    #[prost(double, repeated, tag = "10")]
    pub negative_counts: Vec<f64>,
    /// Spans of the positive buckets.
    #[prost(message, repeated, tag = "11")]
    pub positive_spans: Vec<BucketSpan>,
    /// Integer histograms: each positive bucket's count as a delta to the previous one.
    #[prost(sint64, repeated, tag = "12")]
    pub positive_deltas: Vec<i64>,
    /// Float histograms: absolute positive bucket counts.
    #[prost(double, repeated, tag = "13")]
    pub positive_counts: Vec<f64>,
    /// Counter-reset hint ([`histogram::ResetHint`]).
    #[prost(enumeration = "histogram::ResetHint", tag = "14")]
    pub reset_hint: i32,
    /// Timestamp in milliseconds.
    #[prost(int64, tag = "15")]
    pub timestamp: i64,
    /// Upper bounds of custom buckets (schema -53).
    #[prost(double, repeated, tag = "16")]
    pub custom_values: Vec<f64>,
    /// 2.0 only: when the histogram started counting, in milliseconds; 0 is unset.
    #[prost(int64, tag = "17")]
    pub start_timestamp: i64,
}

/// The oneofs and enum of [`Histogram`].
pub mod histogram {
    /// Count of observations.
    #[derive(Clone, Copy, PartialEq, ::prost::Oneof)]
    pub enum Count {
        /// Integer histogram.
        #[prost(uint64, tag = "1")]
        CountInt(u64),
        /// Float histogram.
        #[prost(double, tag = "2")]
        CountFloat(f64),
    }

    /// Count in the zero bucket.
    #[derive(Clone, Copy, PartialEq, ::prost::Oneof)]
    pub enum ZeroCount {
        /// Integer histogram.
        #[prost(uint64, tag = "6")]
        ZeroCountInt(u64),
        /// Float histogram.
        #[prost(double, tag = "7")]
        ZeroCountFloat(f64),
    }

    /// Whether a counter reset happened (same numbers in 1.0 and 2.0).
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::prost::Enumeration)]
    #[repr(i32)]
    pub enum ResetHint {
        /// Needs to be checked.
        Unknown = 0,
        /// First histogram after a reset.
        Yes = 1,
        /// No reset since the previous histogram.
        No = 2,
        /// A gauge histogram: resets do not apply.
        Gauge = 3,
    }
}

/// A run of consecutive buckets.
#[derive(Clone, Copy, PartialEq, ::prost::Message)]
pub struct BucketSpan {
    /// Gap to the previous span (or start of the first span).
    #[prost(sint32, tag = "1")]
    pub offset: i32,
    /// Number of consecutive buckets.
    #[prost(uint32, tag = "2")]
    pub length: u32,
}

/// Remote-Write 1.0 messages (`package prometheus`).
pub mod v1 {
    pub use super::{BucketSpan, Histogram};

    /// `prometheus.WriteRequest`: series, and (in requests of their own) metadata.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct WriteRequest {
        /// The series with their samples, exemplars and histograms.
        #[prost(message, repeated, tag = "1")]
        pub timeseries: Vec<TimeSeries>,
        /// Metric family metadata (field 2 is reserved for Cortex).
        #[prost(message, repeated, tag = "3")]
        pub metadata: Vec<MetricMetadata>,
    }

    /// One series.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct TimeSeries {
        /// Sorted by name, unique, non-empty names and values, `__name__` included.
        #[prost(message, repeated, tag = "1")]
        pub labels: Vec<Label>,
        /// Float samples in timestamp order.
        #[prost(message, repeated, tag = "2")]
        pub samples: Vec<Sample>,
        /// Exemplars of the series.
        #[prost(message, repeated, tag = "3")]
        pub exemplars: Vec<Exemplar>,
        /// Native histogram samples in timestamp order.
        #[prost(message, repeated, tag = "4")]
        pub histograms: Vec<Histogram>,
    }

    /// A label.
    #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, ::prost::Message)]
    pub struct Label {
        /// Label name.
        #[prost(string, tag = "1")]
        pub name: String,
        /// Label value.
        #[prost(string, tag = "2")]
        pub value: String,
    }

    impl Label {
        /// A label from its name and value.
        pub fn new(name: impl Into<String>, value: impl Into<String>) -> Self {
            Label {
                name: name.into(),
                value: value.into(),
            }
        }
    }

    /// A float sample.
    #[derive(Clone, Copy, PartialEq, ::prost::Message)]
    pub struct Sample {
        /// The value.
        #[prost(double, tag = "1")]
        pub value: f64,
        /// Milliseconds since the Unix epoch.
        #[prost(int64, tag = "2")]
        pub timestamp: i64,
    }

    /// An exemplar with its labels spelled out.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct Exemplar {
        /// Exemplar labels (e.g. `trace_id`); may be empty.
        #[prost(message, repeated, tag = "1")]
        pub labels: Vec<Label>,
        /// The example value.
        #[prost(double, tag = "2")]
        pub value: f64,
        /// Milliseconds since the Unix epoch.
        #[prost(int64, tag = "3")]
        pub timestamp: i64,
    }

    /// Metadata of one metric family.
    #[derive(Clone, PartialEq, Eq, Hash, ::prost::Message)]
    pub struct MetricMetadata {
        /// The family's type ([`MetricType`]).
        #[prost(enumeration = "MetricType", tag = "1")]
        pub r#type: i32,
        /// The family name (`x` for `x_bucket`, `x_sum`, `x_count`).
        #[prost(string, tag = "2")]
        pub metric_family_name: String,
        /// The HELP text.
        #[prost(string, tag = "4")]
        pub help: String,
        /// The unit (OpenMetrics `# UNIT`).
        #[prost(string, tag = "5")]
        pub unit: String,
    }

    /// Metric types; 2.0's `Metadata.MetricType` has the same numbers.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, ::prost::Enumeration)]
    #[repr(i32)]
    pub enum MetricType {
        /// No or unknown type (`untyped`, `unknown`).
        Unknown = 0,
        /// `counter`
        Counter = 1,
        /// `gauge`
        Gauge = 2,
        /// `histogram`
        Histogram = 3,
        /// `gaugehistogram`
        Gaugehistogram = 4,
        /// `summary`
        Summary = 5,
        /// `info`
        Info = 6,
        /// `stateset`
        Stateset = 7,
    }

    impl MetricType {
        /// The type of a `# TYPE` word (`untyped` and anything unknown are [`MetricType::Unknown`]).
        pub fn from_type_word(word: &str) -> MetricType {
            match word {
                "counter" => MetricType::Counter,
                "gauge" => MetricType::Gauge,
                "histogram" => MetricType::Histogram,
                "gaugehistogram" => MetricType::Gaugehistogram,
                "summary" => MetricType::Summary,
                "info" => MetricType::Info,
                "stateset" => MetricType::Stateset,
                _ => MetricType::Unknown,
            }
        }
    }
}

/// Remote-Write 2.0 messages (`package io.prometheus.write.v2`).
pub mod v2 {
    pub use super::{BucketSpan, Histogram};

    /// `io.prometheus.write.v2.Request` (fields 1 to 3 are reserved).
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct Request {
        /// Deduplicated strings; `symbols[0]` is the empty string.
        #[prost(string, repeated, tag = "4")]
        pub symbols: Vec<String>,
        /// The series.
        #[prost(message, repeated, tag = "5")]
        pub timeseries: Vec<TimeSeries>,
    }

    /// One series (field 6 is reserved).
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct TimeSeries {
        /// Label name and value pairs as indexes into `symbols`, sorted by name.
        #[prost(uint32, repeated, tag = "1")]
        pub labels_refs: Vec<u32>,
        /// Float samples in timestamp order (never together with `histograms`).
        #[prost(message, repeated, tag = "2")]
        pub samples: Vec<Sample>,
        /// Native histogram samples in timestamp order.
        #[prost(message, repeated, tag = "3")]
        pub histograms: Vec<Histogram>,
        /// Exemplars of the series.
        #[prost(message, repeated, tag = "4")]
        pub exemplars: Vec<Exemplar>,
        /// Type, help and unit of the series.
        #[prost(message, optional, tag = "5")]
        pub metadata: Option<Metadata>,
    }

    /// An exemplar, labels as symbol references.
    #[derive(Clone, PartialEq, ::prost::Message)]
    pub struct Exemplar {
        /// Label name and value pairs as indexes into `symbols`.
        #[prost(uint32, repeated, tag = "1")]
        pub labels_refs: Vec<u32>,
        /// The example value.
        #[prost(double, tag = "2")]
        pub value: f64,
        /// Milliseconds since the Unix epoch.
        #[prost(int64, tag = "3")]
        pub timestamp: i64,
    }

    /// A float sample.
    #[derive(Clone, Copy, PartialEq, ::prost::Message)]
    pub struct Sample {
        /// The value.
        #[prost(double, tag = "1")]
        pub value: f64,
        /// Milliseconds since the Unix epoch.
        #[prost(int64, tag = "2")]
        pub timestamp: i64,
        /// When a cumulative series started counting, in milliseconds; 0 is unset.
        #[prost(int64, tag = "3")]
        pub start_timestamp: i64,
    }

    /// Per-series metadata.
    #[derive(Clone, Copy, PartialEq, Eq, Hash, ::prost::Message)]
    pub struct Metadata {
        /// The metric type (numbers as [`super::v1::MetricType`]).
        #[prost(enumeration = "super::v1::MetricType", tag = "1")]
        pub r#type: i32,
        /// HELP text as a symbol reference (0: none).
        #[prost(uint32, tag = "3")]
        pub help_ref: u32,
        /// Unit as a symbol reference (0: none).
        #[prost(uint32, tag = "4")]
        pub unit_ref: u32,
    }
}

/// A body that cannot be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The snappy block is corrupt.
    #[error("invalid snappy block: {0}")]
    Snappy(String),
    /// The snappy block would decode to more than the limit.
    #[error("decoded body of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Decoded size announced by the block.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The protobuf is malformed.
    #[error("invalid protobuf: {0}")]
    Protobuf(String),
    /// A 2.0 request is not self-consistent (bad symbol references...).
    #[error("{0}")]
    Invalid(String),
}

/// Snappy block compression of a serialized message.
pub fn compress(raw: &[u8]) -> Bytes {
    match snap::raw::Encoder::new().compress_vec(raw) {
        Ok(v) => Bytes::from(v),
        // Only an input above ~4 GiB fails; requests are capped far below that.
        Err(_) => Bytes::new(),
    }
}

/// Decompresses a snappy block, refusing (before decoding) one whose announced decoded size is
/// above `limit` bytes.
pub fn decompress(body: &[u8], limit: usize) -> Result<Vec<u8>, WireError> {
    let size = snap::raw::decompress_len(body).map_err(|e| WireError::Snappy(e.to_string()))?;
    if size > limit {
        return Err(WireError::TooLarge { size, limit });
    }
    snap::raw::Decoder::new()
        .decompress_vec(body)
        .map_err(|e| WireError::Snappy(e.to_string()))
}

/// Decodes a serialized 1.0 request.
pub fn decode_v1(raw: &[u8]) -> Result<v1::WriteRequest, WireError> {
    <v1::WriteRequest as prost::Message>::decode(raw)
        .map_err(|e| WireError::Protobuf(e.to_string()))
}

/// Decodes a serialized 2.0 request.
pub fn decode_v2(raw: &[u8]) -> Result<v2::Request, WireError> {
    <v2::Request as prost::Message>::decode(raw).map_err(|e| WireError::Protobuf(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    pub(crate) fn sample_histogram() -> Histogram {
        Histogram {
            count: Some(histogram::Count::CountInt(12)),
            sum: 18.4,
            schema: 1,
            zero_threshold: 1e-128,
            zero_count: Some(histogram::ZeroCount::ZeroCountInt(2)),
            negative_spans: vec![BucketSpan {
                offset: 0,
                length: 2,
            }],
            negative_deltas: vec![1, 1],
            negative_counts: vec![],
            positive_spans: vec![
                BucketSpan {
                    offset: -2,
                    length: 1,
                },
                BucketSpan {
                    offset: 2,
                    length: 3,
                },
            ],
            positive_deltas: vec![1, 2, -1, -1],
            positive_counts: vec![],
            reset_hint: histogram::ResetHint::No as i32,
            timestamp: 1_700_000_000_123,
            custom_values: vec![],
            start_timestamp: 0,
        }
    }

    #[test]
    fn v1_round_trip_keeps_exemplars_histograms_and_metadata() {
        let req = v1::WriteRequest {
            timeseries: vec![v1::TimeSeries {
                labels: vec![
                    v1::Label::new("__name__", "http_requests_total"),
                    v1::Label::new("code", "200"),
                ],
                samples: vec![
                    v1::Sample {
                        value: 1.5,
                        timestamp: 1,
                    },
                    v1::Sample {
                        value: stale_nan(),
                        timestamp: 2,
                    },
                ],
                exemplars: vec![v1::Exemplar {
                    labels: vec![v1::Label::new("trace_id", "abc")],
                    value: 0.25,
                    timestamp: 1,
                }],
                histograms: vec![sample_histogram()],
            }],
            metadata: vec![v1::MetricMetadata {
                r#type: v1::MetricType::Counter as i32,
                metric_family_name: "http_requests_total".into(),
                help: "Requests.".into(),
                unit: "requests".into(),
            }],
        };
        let bytes = req.encode_to_vec();
        let back = decode_v1(&bytes).unwrap();
        // NaN != NaN: compare the re-encoded bytes, and the stale marker's bits.
        assert_eq!(back.encode_to_vec(), bytes);
        assert_eq!(back.timeseries[0].histograms, req.timeseries[0].histograms);
        assert_eq!(back.metadata, req.metadata);
        assert!(is_stale_nan(back.timeseries[0].samples[1].value));
        assert!(!is_stale_nan(f64::NAN));
    }

    #[test]
    fn v2_round_trip_keeps_start_timestamps_and_float_histograms() {
        let mut h = sample_histogram();
        h.count = Some(histogram::Count::CountFloat(3.5));
        h.zero_count = Some(histogram::ZeroCount::ZeroCountFloat(0.5));
        h.positive_deltas.clear();
        h.negative_deltas.clear();
        h.positive_counts = vec![1.0, 0.5, 1.5, 0.0];
        h.negative_counts = vec![0.25, 0.25];
        h.schema = -53;
        h.custom_values = vec![0.1, 0.5, 1.0];
        h.start_timestamp = 1_600_000_000_000;
        let req = v2::Request {
            symbols: vec!["".into(), "__name__".into(), "up".into(), "help".into()],
            timeseries: vec![
                v2::TimeSeries {
                    labels_refs: vec![1, 2],
                    samples: vec![v2::Sample {
                        value: 1.0,
                        timestamp: 10,
                        start_timestamp: 5,
                    }],
                    histograms: vec![],
                    exemplars: vec![v2::Exemplar {
                        labels_refs: vec![],
                        value: 2.0,
                        timestamp: 10,
                    }],
                    metadata: Some(v2::Metadata {
                        r#type: v1::MetricType::Gauge as i32,
                        help_ref: 3,
                        unit_ref: 0,
                    }),
                },
                v2::TimeSeries {
                    labels_refs: vec![1, 2],
                    histograms: vec![h],
                    ..Default::default()
                },
            ],
        };
        let back = decode_v2(&req.encode_to_vec()).unwrap();
        assert_eq!(back, req);
    }

    /// The reserved fields make each message read as empty under the other's schema, as the
    /// 2.0 specification promises (this is what the 2xx-without-written-headers fallback
    /// detects on 1.0 receivers).
    #[test]
    fn wrong_schema_reads_as_empty() {
        let v2req = v2::Request {
            symbols: vec!["".into(), "a".into()],
            timeseries: vec![v2::TimeSeries {
                labels_refs: vec![1, 1],
                ..Default::default()
            }],
        };
        let as_v1 = decode_v1(&v2req.encode_to_vec()).unwrap();
        assert!(as_v1.timeseries.is_empty() && as_v1.metadata.is_empty());
        let v1req = v1::WriteRequest {
            timeseries: vec![v1::TimeSeries {
                labels: vec![v1::Label::new("__name__", "x")],
                ..Default::default()
            }],
            metadata: vec![],
        };
        let as_v2 = decode_v2(&v1req.encode_to_vec()).unwrap();
        assert!(as_v2.timeseries.is_empty() && as_v2.symbols.is_empty());
    }

    #[test]
    fn field_numbers_on_the_wire() {
        // Sample{value=1.0, timestamp=2}: tag 1 fixed64, tag 2 varint.
        let s = v1::Sample {
            value: 1.0,
            timestamp: 2,
        };
        assert_eq!(
            s.encode_to_vec(),
            [0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0x10, 0x02]
        );
        // Histogram schema is sint32 (zigzag): -1 -> 1 under tag 4.
        let h = Histogram {
            schema: -1,
            ..Default::default()
        };
        assert_eq!(h.encode_to_vec(), [0x20, 0x01]);
        // start_timestamp is field 17 (two-byte tag 0x88 0x01).
        let h = Histogram {
            start_timestamp: 1,
            ..Default::default()
        };
        assert_eq!(h.encode_to_vec(), [0x88, 0x01, 0x01]);
        // Metadata help_ref is field 3, unit_ref field 4.
        let m = v2::Metadata {
            r#type: 1,
            help_ref: 2,
            unit_ref: 3,
        };
        assert_eq!(m.encode_to_vec(), [0x08, 1, 0x18, 2, 0x20, 3]);
        // labels_refs are packed.
        let ts = v2::TimeSeries {
            labels_refs: vec![1, 2],
            ..Default::default()
        };
        assert_eq!(ts.encode_to_vec(), [0x0a, 0x02, 1, 2]);
        // MetricMetadata: help is field 4, unit field 5.
        let md = v1::MetricMetadata {
            r#type: 0,
            metric_family_name: "a".into(),
            help: "b".into(),
            unit: "c".into(),
        };
        assert_eq!(
            md.encode_to_vec(),
            [0x12, 1, b'a', 0x22, 1, b'b', 0x2a, 1, b'c']
        );
    }

    #[test]
    fn snappy_block_with_limit_checked_first() {
        let raw: Vec<u8> = (0..10_000u32).flat_map(|i| (i % 7).to_le_bytes()).collect();
        let c = compress(&raw);
        // Block format: starts with the varint decoded length, no stream identifier chunk.
        assert_ne!(c[0], 0xff, "framed format stream identifier");
        assert_eq!(snap::raw::decompress_len(&c).unwrap(), raw.len());
        assert_eq!(decompress(&c, raw.len()).unwrap(), raw);
        assert_eq!(
            decompress(&c, raw.len() - 1),
            Err(WireError::TooLarge {
                size: raw.len(),
                limit: raw.len() - 1
            })
        );
        // A tiny body announcing 4 GiB is refused from its header alone.
        let bomb = [0x80, 0x80, 0x80, 0x80, 0x0f, 0x00];
        assert!(matches!(
            decompress(&bomb, 32 << 20),
            Err(WireError::TooLarge { .. })
        ));
        assert!(matches!(
            decompress(b"\x05garbage", 1 << 20),
            Err(WireError::Snappy(_))
        ));
    }
}
