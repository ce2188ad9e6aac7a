//! Decoding and validating a received remote-write request (the `POST /api/v1/write` body),
//! before it is forwarded.
//!
//! [`decode`] picks the message by `Content-Type` as the 2.0 specification says
//! (`application/x-protobuf` without `proto=`, or with `proto=prometheus.WriteRequest`, is
//! 1.0; `proto=io.prometheus.write.v2.Request` is 2.0; anything else is 415), accepts only
//! snappy (or no) `Content-Encoding` (415 otherwise), refuses a body whose compressed or
//! announced decoded size is over the limit (413) before decompressing it, and answers 400 for
//! a body that is not a valid message or holds invalid series: a bad request never gets a
//! retryable 5xx.
//!
//! Series are checked and put in canonical form: labels sorted, empty values dropped (an
//! empty value is an absent label); an empty label name, a repeated name, a missing
//! `__name__`, or a 2.0 series with both samples and histograms make the request invalid. A
//! series with no samples and no histograms carries nothing to store and is left out.

use std::sync::Arc;

use http::StatusCode;

use super::convert::{series_from_v1, series_from_v2, Series, SeriesMetadata};
use super::wire::{decode_v1, decode_v2, decompress, Protocol, WireError, PROTO_V1, PROTO_V2};

/// A request that decoded and validated.
#[derive(Debug, Clone, Default)]
pub struct Decoded {
    /// The message it came as.
    pub protocol: Option<Protocol>,
    /// The series, labels in canonical form.
    pub series: Vec<Series>,
    /// 1.0 metadata of the request (2.0 metadata is in the series).
    pub metadata: Vec<Arc<SeriesMetadata>>,
    /// Float samples in the request (for `X-Prometheus-Remote-Write-Samples-Written`).
    pub samples: u64,
    /// Histogram samples.
    pub histograms: u64,
    /// Exemplars.
    pub exemplars: u64,
}

/// Why a request was refused: the status to answer and a message for the body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct Reject {
    /// 400, 413 or 415.
    pub status: StatusCode,
    /// A fixed word for the self-metric: `content_type`, `content_encoding`, `too_large`,
    /// `snappy`, `protobuf`, `invalid`.
    pub kind: &'static str,
    /// What is wrong, for the answer's body and the log.
    pub reason: String,
}

fn reject(status: StatusCode, kind: &'static str, reason: impl Into<String>) -> Reject {
    Reject {
        status,
        kind,
        reason: reason.into(),
    }
}

/// The message a `Content-Type` announces (absent: 1.0, as Prometheus reads it).
pub fn protocol_of(content_type: Option<&str>) -> Result<Protocol, Reject> {
    let ct = content_type.unwrap_or("application/x-protobuf").trim();
    let mut parts = ct.split(';');
    let media = parts.next().unwrap_or("").trim();
    if !media.eq_ignore_ascii_case("application/x-protobuf") {
        return Err(reject(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "content_type",
            format!("unsupported Content-Type {ct:?}: expected application/x-protobuf"),
        ));
    }
    for p in parts {
        let Some((k, v)) = p.split_once('=') else {
            return Err(reject(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "content_type",
                format!("malformed Content-Type parameter {p:?}"),
            ));
        };
        if k.trim().eq_ignore_ascii_case("proto") {
            return match v.trim().trim_matches('"') {
                PROTO_V1 => Ok(Protocol::V1),
                PROTO_V2 => Ok(Protocol::V2),
                other => Err(reject(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "content_type",
                    format!("unsupported proto={other:?}: expected {PROTO_V1} or {PROTO_V2}"),
                )),
            };
        }
    }
    Ok(Protocol::V1)
}

/// Decodes and validates one request body (see the module documentation). `limit` bounds both
/// the body and its decompressed size, in bytes.
pub fn decode(
    content_type: Option<&str>,
    content_encoding: Option<&str>,
    body: &[u8],
    limit: usize,
) -> Result<Decoded, Reject> {
    let protocol = protocol_of(content_type)?;
    match content_encoding.map(str::trim) {
        None | Some("") => {}
        Some(e) if e.eq_ignore_ascii_case("snappy") => {}
        Some(e) => {
            return Err(reject(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "content_encoding",
                format!("unsupported Content-Encoding {e:?}: only snappy is accepted"),
            ))
        }
    }
    if body.len() > limit {
        return Err(reject(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!(
                "body of {} bytes exceeds the limit of {limit} bytes",
                body.len()
            ),
        ));
    }
    let raw = decompress(body, limit).map_err(|e| match e {
        WireError::TooLarge { .. } => {
            reject(StatusCode::PAYLOAD_TOO_LARGE, "too_large", e.to_string())
        }
        _ => reject(StatusCode::BAD_REQUEST, "snappy", e.to_string()),
    })?;
    let bad =
        |kind: &'static str, e: WireError| reject(StatusCode::BAD_REQUEST, kind, e.to_string());
    let (series, metadata) = match protocol {
        Protocol::V1 => {
            let req = decode_v1(&raw).map_err(|e| bad("protobuf", e))?;
            let (series, md) = series_from_v1(req);
            let md = md
                .iter()
                .map(|m| Arc::new(SeriesMetadata::from_v1(m)))
                .collect();
            (series, md)
        }
        Protocol::V2 => {
            let req = decode_v2(&raw).map_err(|e| bad("protobuf", e))?;
            if req.symbols.first().is_some_and(|s| !s.is_empty()) {
                return Err(reject(
                    StatusCode::BAD_REQUEST,
                    "invalid",
                    "symbols[0] must be the empty string",
                ));
            }
            if let Some(i) = req
                .timeseries
                .iter()
                .position(|t| !t.samples.is_empty() && !t.histograms.is_empty())
            {
                return Err(reject(
                    StatusCode::BAD_REQUEST,
                    "invalid",
                    format!("timeseries[{i}] has both samples and histograms"),
                ));
            }
            (
                series_from_v2(req).map_err(|e| bad("invalid", e))?,
                Vec::new(),
            )
        }
    };
    let mut out = Decoded {
        protocol: Some(protocol),
        metadata,
        ..Decoded::default()
    };
    out.series.reserve(series.len());
    for (i, mut s) in series.into_iter().enumerate() {
        check_labels(&mut s.labels).map_err(|why| {
            reject(
                StatusCode::BAD_REQUEST,
                "invalid",
                format!("timeseries[{i}]: {why}"),
            )
        })?;
        if s.samples.is_empty() && s.histograms.is_empty() {
            continue;
        }
        out.samples += s.samples.len() as u64;
        out.histograms += s.histograms.len() as u64;
        out.exemplars += s.exemplars.len() as u64;
        out.series.push(s);
    }
    Ok(out)
}

/// Sorts `labels`, drops empty values, and refuses empty or repeated names and a missing name.
fn check_labels(labels: &mut Vec<super::wire::v1::Label>) -> Result<(), String> {
    labels.retain(|l| !l.value.is_empty());
    if labels.iter().any(|l| l.name.is_empty()) {
        return Err("empty label name".into());
    }
    labels.sort_by(|a, b| a.name.cmp(&b.name));
    if let Some(w) = labels.windows(2).find(|w| w[0].name == w[1].name) {
        return Err(format!("label {:?} appears more than once", w[0].name));
    }
    if !labels.iter().any(|l| l.name == "__name__") {
        return Err(format!(
            "no metric name (__name__) in {{{}}}",
            labels
                .iter()
                .map(|l| format!("{}={:?}", l.name, l.value))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::convert::series_to_v2;
    use super::super::wire::{compress, v1, v2, CONTENT_TYPE_V1, CONTENT_TYPE_V2};
    use super::*;
    use prost::Message;

    fn v1_body(ts: Vec<v1::TimeSeries>, md: Vec<v1::MetricMetadata>) -> Vec<u8> {
        compress(
            &v1::WriteRequest {
                timeseries: ts,
                metadata: md,
            }
            .encode_to_vec(),
        )
        .to_vec()
    }

    fn ts(labels: &[(&str, &str)]) -> v1::TimeSeries {
        v1::TimeSeries {
            labels: labels.iter().map(|(n, v)| v1::Label::new(*n, *v)).collect(),
            samples: vec![v1::Sample {
                value: 1.0,
                timestamp: 1,
            }],
            ..Default::default()
        }
    }

    #[test]
    fn content_types() {
        assert_eq!(protocol_of(None), Ok(Protocol::V1));
        assert_eq!(protocol_of(Some(CONTENT_TYPE_V1)), Ok(Protocol::V1));
        assert_eq!(
            protocol_of(Some(
                "application/x-protobuf; proto=prometheus.WriteRequest"
            )),
            Ok(Protocol::V1)
        );
        assert_eq!(protocol_of(Some(CONTENT_TYPE_V2)), Ok(Protocol::V2));
        for bad in [
            "application/json",
            "application/x-protobuf;proto=foo.Bar",
            "application/x-protobuf;garbage",
        ] {
            let e = protocol_of(Some(bad)).unwrap_err();
            assert_eq!(e.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{bad}");
        }
    }

    #[test]
    fn decodes_v1_with_metadata() {
        let body = v1_body(
            vec![ts(&[("job", "a"), ("__name__", "up"), ("empty", "")])],
            vec![v1::MetricMetadata {
                r#type: v1::MetricType::Gauge as i32,
                metric_family_name: "up".into(),
                help: "Up.".into(),
                unit: String::new(),
            }],
        );
        let d = decode(Some(CONTENT_TYPE_V1), Some("snappy"), &body, 1 << 20).unwrap();
        assert_eq!(d.protocol, Some(Protocol::V1));
        assert_eq!(d.samples, 1);
        let names: Vec<&str> = d.series[0].labels.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["__name__", "job"], "sorted, empty value dropped");
        assert_eq!(d.metadata[0].help, "Up.");
        assert_eq!(d.series[0].metadata.as_ref().unwrap().help, "Up.");
    }

    #[test]
    fn decodes_v2() {
        let series = vec![Series {
            labels: vec![v1::Label::new("__name__", "up")],
            samples: vec![v2::Sample {
                value: 1.0,
                timestamp: 2,
                start_timestamp: 1,
            }],
            exemplars: vec![v1::Exemplar {
                labels: vec![],
                value: 1.0,
                timestamp: 2,
            }],
            ..Default::default()
        }];
        let body = compress(&series_to_v2(&series).encode_to_vec());
        let d = decode(Some(CONTENT_TYPE_V2), None, &body, 1 << 20).unwrap();
        assert_eq!(d.series, series);
        assert_eq!((d.samples, d.histograms, d.exemplars), (1, 0, 1));
    }

    #[test]
    fn bad_input_gets_a_clear_4xx() {
        let ok = v1_body(vec![ts(&[("__name__", "up")])], vec![]);
        let e = decode(Some(CONTENT_TYPE_V1), Some("gzip"), &ok, 1 << 20).unwrap_err();
        assert_eq!(
            (e.status, e.kind),
            (StatusCode::UNSUPPORTED_MEDIA_TYPE, "content_encoding")
        );
        let e = decode(Some(CONTENT_TYPE_V1), None, &ok, 4).unwrap_err();
        assert_eq!(
            (e.status, e.kind),
            (StatusCode::PAYLOAD_TOO_LARGE, "too_large")
        );
        // Small on the wire, large decoded: refused from the header.
        let big = compress(&vec![0u8; 100_000]);
        let e = decode(Some(CONTENT_TYPE_V1), None, &big, 50_000).unwrap_err();
        assert_eq!(
            (e.status, e.kind),
            (StatusCode::PAYLOAD_TOO_LARGE, "too_large")
        );
        let e = decode(Some(CONTENT_TYPE_V1), None, b"\x10not snappy", 1 << 20).unwrap_err();
        assert_eq!((e.status, e.kind), (StatusCode::BAD_REQUEST, "snappy"));
        let junk = compress(b"\xff\xff\xff\xff");
        let e = decode(Some(CONTENT_TYPE_V1), None, &junk, 1 << 20).unwrap_err();
        assert_eq!((e.status, e.kind), (StatusCode::BAD_REQUEST, "protobuf"));
        for (labels, want) in [
            (vec![("job", "a")], "no metric name"),
            (vec![("__name__", "x"), ("", "v")], "empty label name"),
            (
                vec![("__name__", "x"), ("a", "1"), ("a", "2")],
                "appears more than once",
            ),
        ] {
            let body = v1_body(vec![ts(&labels)], vec![]);
            let e = decode(None, None, &body, 1 << 20).unwrap_err();
            assert_eq!(e.status, StatusCode::BAD_REQUEST);
            assert!(e.reason.contains(want), "{}", e.reason);
            assert!(e.reason.starts_with("timeseries[0]: "), "{}", e.reason);
        }
        let bad_ref = v2::Request {
            symbols: vec!["".into(), "__name__".into()],
            timeseries: vec![v2::TimeSeries {
                labels_refs: vec![1, 5],
                samples: vec![v2::Sample::default()],
                ..Default::default()
            }],
        };
        let e = decode(
            Some(CONTENT_TYPE_V2),
            None,
            &compress(&bad_ref.encode_to_vec()),
            1 << 20,
        )
        .unwrap_err();
        assert_eq!((e.status, e.kind), (StatusCode::BAD_REQUEST, "invalid"));
        let no_empty = v2::Request {
            symbols: vec!["x".into()],
            timeseries: vec![],
        };
        let e = decode(
            Some(CONTENT_TYPE_V2),
            None,
            &compress(&no_empty.encode_to_vec()),
            1 << 20,
        )
        .unwrap_err();
        assert!(e.reason.contains("symbols[0]"), "{}", e.reason);
        let both = v2::Request {
            symbols: vec!["".into(), "__name__".into(), "x".into()],
            timeseries: vec![v2::TimeSeries {
                labels_refs: vec![1, 2],
                samples: vec![v2::Sample::default()],
                histograms: vec![super::super::wire::Histogram::default()],
                ..Default::default()
            }],
        };
        let e = decode(
            Some(CONTENT_TYPE_V2),
            None,
            &compress(&both.encode_to_vec()),
            1 << 20,
        )
        .unwrap_err();
        assert!(
            e.reason.contains("both samples and histograms"),
            "{}",
            e.reason
        );
    }
}
