//! Remote-write protocol tests against a mock receiver on 127.0.0.1: headers, snappy block,
//! label rules, metadata (1.0 and 2.0), symbols, ordering, stale markers, retries, fallbacks,
//! a full queue, and an endpoint that hangs while another keeps receiving.
//!
//! Self-contained: the mock receiver is an axum router in this file.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use prometheus_client::registry::Registry;
use prost::Message;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use metric_gate::remote_write::wire::{self, is_stale_nan, v1, v2};
use metric_gate::remote_write::{RemoteWrite, RemoteWriteConfig, RemoteWriteMetrics, Scrape};

/// What the mock answers to one request.
#[derive(Clone, Debug)]
struct Reply {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: &'static str,
    /// Add the 2.0 written-headers to a 2xx answer to a 2.0 request.
    written: bool,
}

impl Reply {
    fn ok() -> Self {
        Reply {
            status: 204,
            headers: vec![],
            body: "",
            written: true,
        }
    }
    fn status(status: u16) -> Self {
        Reply {
            status,
            ..Reply::ok()
        }
    }
}

/// One received request, decoded.
#[derive(Clone, Debug)]
struct Got {
    at: Instant,
    headers: HeaderMap,
    body: Vec<u8>,
    v1: Option<v1::WriteRequest>,
    v2: Option<v2::Request>,
}

/// A sample as seen by the receiver: `name{a="x",...}`, value bits, timestamp.
#[derive(Clone, Debug, PartialEq)]
struct Seen {
    series: String,
    value: f64,
    ts: i64,
}

impl Got {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    fn is_v2(&self) -> bool {
        self.v2.is_some()
    }

    fn samples(&self) -> Vec<Seen> {
        fn key(pairs: Vec<(String, String)>) -> String {
            let name = pairs
                .iter()
                .find(|(n, _)| n == "__name__")
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            let rest: Vec<String> = pairs
                .iter()
                .filter(|(n, _)| n != "__name__")
                .map(|(n, v)| format!("{n}={v:?}"))
                .collect();
            format!("{name}{{{}}}", rest.join(","))
        }
        let mut out = Vec::new();
        if let Some(r) = &self.v1 {
            for ts in &r.timeseries {
                let k = key(ts
                    .labels
                    .iter()
                    .map(|l| (l.name.clone(), l.value.clone()))
                    .collect());
                for s in &ts.samples {
                    out.push(Seen {
                        series: k.clone(),
                        value: s.value,
                        ts: s.timestamp,
                    });
                }
            }
        }
        if let Some(r) = &self.v2 {
            for ts in &r.timeseries {
                let pairs = ts
                    .labels_refs
                    .chunks(2)
                    .map(|p| {
                        (
                            r.symbols[p[0] as usize].clone(),
                            r.symbols[p[1] as usize].clone(),
                        )
                    })
                    .collect();
                let k = key(pairs);
                for s in &ts.samples {
                    out.push(Seen {
                        series: k.clone(),
                        value: s.value,
                        ts: s.timestamp,
                    });
                }
            }
        }
        out
    }

    fn metadata(&self) -> Vec<v1::MetricMetadata> {
        self.v1
            .as_ref()
            .map(|r| r.metadata.clone())
            .unwrap_or_default()
    }
}

#[derive(Default)]
struct MockState {
    got: Mutex<Vec<Got>>,
    script: Mutex<VecDeque<Reply>>,
    /// When set, every request waits for a permit (a hanging receiver until released).
    gate: Option<Arc<Semaphore>>,
}

#[derive(Clone)]
struct Mock {
    state: Arc<MockState>,
    addr: SocketAddr,
}

async fn receive(State(st): State<Arc<MockState>>, headers: HeaderMap, body: Bytes) -> Response {
    let raw = snap::raw::Decoder::new()
        .decompress_vec(&body)
        .expect("the body is a snappy block");
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let (v1r, v2r) = if ct.contains("io.prometheus.write.v2.Request") {
        (
            None,
            Some(v2::Request::decode(&raw[..]).expect("valid 2.0")),
        )
    } else {
        (
            Some(v1::WriteRequest::decode(&raw[..]).expect("valid 1.0")),
            None,
        )
    };
    let samples = v2r
        .as_ref()
        .map(|r| r.timeseries.iter().map(|t| t.samples.len()).sum::<usize>())
        .unwrap_or(0);
    let is_v2 = v2r.is_some();
    st.got.lock().unwrap().push(Got {
        at: Instant::now(),
        headers,
        body: body.to_vec(),
        v1: v1r,
        v2: v2r,
    });
    if let Some(gate) = &st.gate {
        let _permit = gate.acquire().await;
    }
    let reply = st
        .script
        .lock()
        .unwrap()
        .pop_front()
        .unwrap_or_else(Reply::ok);
    let mut resp = (StatusCode::from_u16(reply.status).unwrap(), reply.body).into_response();
    for (n, v) in &reply.headers {
        resp.headers_mut().insert(*n, v.parse().unwrap());
    }
    if is_v2 && reply.written && reply.status < 300 {
        resp.headers_mut().insert(
            "x-prometheus-remote-write-samples-written",
            samples.to_string().parse().unwrap(),
        );
        resp.headers_mut().insert(
            "x-prometheus-remote-write-histograms-written",
            "0".parse().unwrap(),
        );
        resp.headers_mut().insert(
            "x-prometheus-remote-write-exemplars-written",
            "0".parse().unwrap(),
        );
    }
    resp
}

impl Mock {
    async fn start(script: Vec<Reply>, gate: Option<Arc<Semaphore>>) -> Mock {
        let state = Arc::new(MockState {
            script: Mutex::new(script.into()),
            gate,
            ..MockState::default()
        });
        let app = Router::new()
            .route("/write", post(receive))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        Mock { state, addr }
    }

    fn url(&self) -> String {
        format!("http://{}/write", self.addr)
    }

    fn got(&self) -> Vec<Got> {
        self.state.got.lock().unwrap().clone()
    }

    async fn wait_for(&self, n: usize) -> Vec<Got> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let got = self.got();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < deadline,
                "expected {n} requests, got {}: {got:#?}",
                got.len()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

struct Setup {
    rw: RemoteWrite,
    registry: Registry,
}

impl Setup {
    fn new(yaml: &str) -> Setup {
        let cfg = RemoteWriteConfig::from_yaml(yaml, "test.yaml", None).unwrap();
        let mut registry = Registry::with_prefix("metric_gate");
        let metrics = RemoteWriteMetrics::new(&mut registry);
        let rw = RemoteWrite::start(&cfg, &metrics).unwrap();
        Setup { rw, registry }
    }

    fn push(&self, text: &str, ts: i64) {
        let scrape = Scrape::from_text(text.as_bytes(), ts).unwrap();
        self.rw.push(None, &scrape);
    }

    fn metrics(&self) -> String {
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry).unwrap();
        out
    }

    fn metric(&self, line_start: &str) -> f64 {
        let text = self.metrics();
        text.lines()
            .find(|l| l.starts_with(line_start))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {line_start} in\n{text}"))
    }
}

const FAST: &str = "queue_config: {min_backoff: 10ms, max_backoff: 40ms}";

const TEXT: &str = "# HELP http_requests_total Requests served.\n# TYPE http_requests_total counter\nhttp_requests_total{code=\"200\",path=\"/a\"} 10\nhttp_requests_total{code=\"500\",path=\"/a\"} 2\n# HELP temp_celsius Temperature.\n# TYPE temp_celsius gauge\ntemp_celsius 21.5\n";

#[tokio::test]
async fn v1_headers_snappy_metadata_and_label_rules() {
    let mock = Mock::start(vec![], None).await;
    let s = Setup::new(&format!(
        "external_labels: {{replica: r1, code: ext}}\nremote_write:\n- url: {}\n  name: mock\n  headers: {{X-Scope-OrgID: team-a}}\n  write_relabel_configs:\n  - {{action: labeldrop, regex: path}}\n  {FAST}\n",
        mock.url()
    ));
    s.push(TEXT, 1_700_000_000_000);
    let got = mock.wait_for(2).await;
    for g in &got {
        assert_eq!(g.header("content-encoding"), "snappy");
        assert_eq!(g.header("content-type"), "application/x-protobuf");
        assert_eq!(g.header("x-prometheus-remote-write-version"), "0.1.0");
        assert_eq!(
            g.header("user-agent"),
            concat!("metric-gate/", env!("CARGO_PKG_VERSION"))
        );
        assert_eq!(g.header("x-scope-orgid"), "team-a");
        assert!(g.header("retry-attempt").is_empty());
        // Block format: the body starts with the decoded length, no stream identifier.
        assert_ne!(g.body[0], 0xff);
        assert_eq!(
            snap::raw::decompress_len(&g.body).unwrap(),
            snap::raw::Decoder::new()
                .decompress_vec(&g.body)
                .unwrap()
                .len()
        );
    }
    // Metadata first, in a request of its own.
    let md = got[0].metadata();
    assert!(got[0].samples().is_empty());
    assert_eq!(md.len(), 2);
    assert_eq!(md[0].metric_family_name, "http_requests_total");
    assert_eq!(md[0].r#type, v1::MetricType::Counter as i32);
    assert_eq!(md[0].help, "Requests served.");
    assert_eq!(md[1].r#type, v1::MetricType::Gauge as i32);
    // Then the samples: labels sorted, unique, non-empty, external labels where absent.
    let req = got[1].v1.as_ref().unwrap();
    assert!(req.metadata.is_empty());
    for ts in &req.timeseries {
        let names: Vec<&str> = ts.labels.iter().map(|l| l.name.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(names, sorted, "sorted and unique");
        assert!(ts.labels.iter().all(|l| !l.value.is_empty()));
        assert_eq!(names[0], "__name__");
    }
    let samples = got[1].samples();
    assert_eq!(
        samples,
        vec![
            Seen {
                series: "http_requests_total{code=\"200\",replica=\"r1\"}".into(),
                value: 10.0,
                ts: 1_700_000_000_000
            },
            Seen {
                series: "http_requests_total{code=\"500\",replica=\"r1\"}".into(),
                value: 2.0,
                ts: 1_700_000_000_000
            },
            Seen {
                series: "temp_celsius{code=\"ext\",replica=\"r1\"}".into(),
                value: 21.5,
                ts: 1_700_000_000_000
            },
        ]
    );
    assert_eq!(
        s.metric("metric_gate_remote_write_samples_sent_total{endpoint=\"mock\"}"),
        3.0
    );
    assert_eq!(
        s.metric("metric_gate_remote_write_metadata_sent_total{endpoint=\"mock\"}"),
        2.0
    );
    assert_eq!(
        s.metric("metric_gate_remote_write_requests_total{endpoint=\"mock\",code=\"204\"}"),
        2.0
    );
    assert_eq!(
        s.metric("metric_gate_remote_write_queue_capacity{endpoint=\"mock\"}"),
        10000.0
    );
    assert!(
        s.metric("metric_gate_remote_write_last_send_timestamp_seconds{endpoint=\"mock\"}") > 1e9
    );
    assert!(s
        .metrics()
        .contains("metric_gate_remote_write_send_duration_seconds_count{endpoint=\"mock\"} 2"));
}

#[tokio::test]
async fn v2_symbols_and_per_series_metadata() {
    let mock = Mock::start(vec![], None).await;
    let s = Setup::new(&format!(
        "remote_write:\n- url: {}\n  protobuf_message: io.prometheus.write.v2.Request\n  {FAST}\n",
        mock.url()
    ));
    s.push(
        &format!("{TEXT}# TYPE \"my.metric\" gauge\n{{\"my.metric\",\"a.b\"=\"x\"}} 1\n"),
        1000,
    );
    let got = mock.wait_for(1).await;
    assert_eq!(got.len(), 1, "2.0 sends no metadata requests");
    let g = &got[0];
    assert_eq!(
        g.header("content-type"),
        "application/x-protobuf;proto=io.prometheus.write.v2.Request"
    );
    assert_eq!(g.header("x-prometheus-remote-write-version"), "2.0.0");
    assert_eq!(g.header("content-encoding"), "snappy");
    let req = g.v2.as_ref().unwrap();
    assert_eq!(req.symbols[0], "");
    let mut uniq = req.symbols.clone();
    uniq.sort();
    uniq.dedup();
    assert_eq!(uniq.len(), req.symbols.len(), "deduplicated");
    let first = &req.timeseries[0];
    let md = first.metadata.unwrap();
    assert_eq!(md.r#type, v1::MetricType::Counter as i32);
    assert_eq!(req.symbols[md.help_ref as usize], "Requests served.");
    assert_eq!(md.unit_ref, 0, "no unit: the empty symbol");
    // UTF-8 names go unescaped in 2.0.
    let seen = g.samples();
    assert_eq!(seen.last().unwrap().series, "my.metric{a.b=\"x\"}");
    assert_eq!(seen.len(), 4);
}

#[tokio::test]
async fn v1_escapes_utf8_names_unless_told_not_to() {
    let mock = Mock::start(vec![], None).await;
    let text = "# TYPE \"my.metric\" gauge\n{\"my.metric\",\"a.b\"=\"x\"} 1\n";
    let s = Setup::new(&format!("remote_write:\n- url: {}\n  {FAST}\n", mock.url()));
    s.push(text, 1000);
    let got = mock.wait_for(2).await;
    assert_eq!(got[0].metadata()[0].metric_family_name, "my_metric");
    assert_eq!(got[1].samples()[0].series, "my_metric{a_b=\"x\"}");

    let raw = Mock::start(vec![], None).await;
    let s2 = Setup::new(&format!(
        "remote_write:\n- url: {}\n  metric_name_escaping: none\n  {FAST}\n",
        raw.url()
    ));
    s2.push(text, 1000);
    let got = raw.wait_for(2).await;
    assert_eq!(got[1].samples()[0].series, "my.metric{a.b=\"x\"}");
}

#[tokio::test]
async fn stale_markers_for_vanished_series_and_at_flush() {
    let mock = Mock::start(vec![], None).await;
    let s = Setup::new(&format!(
        "remote_write:\n- url: {}\n  metadata_config: {{send: false}}\n  {FAST}\n",
        mock.url()
    ));
    s.push("a 1\nb 2\n", 1000);
    s.push("a 3\n", 2000);
    s.push("a 4\n", 3000);
    // Queued batches may be merged into fewer requests: count samples.
    let all = wait_samples(&mock, 5).await;
    let b: Vec<&Seen> = all.iter().filter(|x| x.series == "b{}").collect();
    assert_eq!(b.len(), 2, "one sample, then one stale marker: {all:?}");
    assert!(is_stale_nan(b[1].value));
    assert_eq!(b[1].ts, 2000);
    assert_eq!(b[1].value.to_bits(), wire::STALE_NAN_BITS);
    s.rw.flush(Instant::now() + Duration::from_secs(5)).await;
    let got = mock.got();
    let last = got.last().unwrap().samples();
    assert_eq!(last.len(), 1);
    assert_eq!(last[0].series, "a{}");
    assert!(is_stale_nan(last[0].value), "flush ends every live series");
}

#[tokio::test]
async fn retries_5xx_with_the_same_samples() {
    let mock = Mock::start(
        vec![
            Reply {
                body: "try later",
                ..Reply::status(500)
            },
            Reply::status(503),
        ],
        None,
    )
    .await;
    let s = Setup::new(&format!(
        "remote_write:\n- url: {}\n  name: m\n  metadata_config: {{send: false}}\n  {FAST}\n",
        mock.url()
    ));
    s.push("a 1\nb 2\n", 1000);
    let got = mock.wait_for(3).await;
    assert_eq!(got[0].body, got[1].body, "the same request again");
    assert_eq!(got[1].body, got[2].body);
    assert_eq!(got[0].header("retry-attempt"), "");
    assert_eq!(got[1].header("retry-attempt"), "1");
    assert_eq!(got[2].header("retry-attempt"), "2");
    assert!(got[1].at.duration_since(got[0].at) >= Duration::from_millis(10));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(
        s.metric("metric_gate_remote_write_samples_retried_total{endpoint=\"m\"}"),
        4.0
    );
    assert_eq!(
        s.metric("metric_gate_remote_write_samples_sent_total{endpoint=\"m\"}"),
        2.0
    );
    assert_eq!(
        s.metric("metric_gate_remote_write_requests_total{endpoint=\"m\",code=\"500\"}"),
        1.0
    );
}

#[tokio::test]
async fn no_retry_on_400_and_429_without_the_option() {
    let mock = Mock::start(
        vec![
            Reply {
                body: "out of order sample",
                ..Reply::status(400)
            },
            Reply::status(429),
        ],
        None,
    )
    .await;
    let s = Setup::new(&format!(
        "remote_write:\n- url: {}\n  name: m\n  metadata_config: {{send: false}}\n  {FAST}\n",
        mock.url()
    ));
    s.push("a 1\n", 1000);
    mock.wait_for(1).await;
    s.push("a 2\n", 2000);
    mock.wait_for(2).await;
    s.push("a 3\n", 3000);
    let got = mock.wait_for(3).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let got_after = mock.got();
    assert_eq!(got_after.len(), 3, "nothing retried");
    let values: Vec<f64> = got
        .iter()
        .flat_map(|g| g.samples())
        .map(|x| x.value)
        .collect();
    assert_eq!(values, [1.0, 2.0, 3.0]);
    assert_eq!(
        s.metric(
            "metric_gate_remote_write_samples_dropped_total{endpoint=\"m\",reason=\"rejected\"}"
        ),
        2.0
    );
}

#[tokio::test]
async fn retries_429_after_retry_after_when_asked() {
    let mock = Mock::start(
        vec![Reply {
            headers: vec![("retry-after", "1".into())],
            ..Reply::status(429)
        }],
        None,
    )
    .await;
    let s = Setup::new(&format!(
        "remote_write:\n- url: {}\n  metadata_config: {{send: false}}\n  queue_config: {{min_backoff: 10ms, max_backoff: 20ms, retry_on_http_429: true}}\n",
        mock.url()
    ));
    s.push("a 1\n", 1000);
    let got = mock.wait_for(2).await;
    let gap = got[1].at.duration_since(got[0].at);
    assert!(
        gap >= Duration::from_millis(950),
        "Retry-After: 1 honoured, not the 10ms backoff: {gap:?}"
    );
    assert_eq!(got[0].body, got[1].body);
}

#[tokio::test]
async fn falls_back_to_v1_on_415() {
    let mock = Mock::start(vec![Reply::status(415)], None).await;
    let s = Setup::new(&format!(
        "remote_write:\n- url: {}\n  name: m\n  protobuf_message: io.prometheus.write.v2.Request\n  {FAST}\n",
        mock.url()
    ));
    s.push(TEXT, 1000);
    let got = mock.wait_for(2).await;
    assert!(got[0].is_v2());
    assert!(!got[1].is_v2());
    assert_eq!(got[1].header("x-prometheus-remote-write-version"), "0.1.0");
    assert_eq!(got[0].samples(), got[1].samples(), "the same batch, as 1.0");
    assert_eq!(s.rw.endpoints()[0].protocol(), wire::Protocol::V1);
    // Later scrapes go as 1.0, with 1.0 metadata requests.
    s.push(TEXT, 2000);
    let got = mock.wait_for(4).await;
    assert!(!got[2].is_v2() && !got[2].metadata().is_empty());
    assert!(!got[3].is_v2() && got[3].samples().len() == 3);
    assert_eq!(
        s.metric("metric_gate_remote_write_fallbacks_total{endpoint=\"m\"}"),
        1.0
    );
    assert_eq!(
        s.metric("metric_gate_remote_write_protocol_version{endpoint=\"m\"}"),
        1.0
    );
}

#[tokio::test]
async fn falls_back_to_v1_on_2xx_without_written_headers() {
    // A 1.0 receiver (like Prometheus 2.42) answers 204 to a 2.0 body it read as empty.
    let mock = Mock::start(
        vec![Reply {
            written: false,
            ..Reply::ok()
        }],
        None,
    )
    .await;
    let s = Setup::new(&format!(
        "remote_write:\n- url: {}\n  protobuf_message: io.prometheus.write.v2.Request\n  metadata_config: {{send: false}}\n  {FAST}\n",
        mock.url()
    ));
    s.push("a 1\nb 2\n", 1000);
    let got = mock.wait_for(2).await;
    assert!(got[0].is_v2() && !got[1].is_v2());
    assert_eq!(got[0].samples(), got[1].samples());
}

#[tokio::test]
async fn samples_of_a_series_stay_in_order_across_retries() {
    let mock = Mock::start(
        vec![
            Reply::status(503),
            Reply::ok(),
            Reply::status(500),
            Reply::status(502),
        ],
        None,
    )
    .await;
    let s = Setup::new(&format!(
        "remote_write:\n- url: {}\n  metadata_config: {{send: false}}\n  queue_config: {{max_samples_per_send: 2, min_backoff: 5ms, max_backoff: 10ms}}\n",
        mock.url()
    ));
    for i in 0..5 {
        s.push("a 1\nb 1\nc 1\n", 1000 + i);
    }
    // 5 scrapes x 3 series = 15 samples in batches of 2, plus 3 failed attempts.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let accepted: usize = accepted_samples(&mock.got()).len();
        if accepted >= 15 || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let seen = accepted_samples(&mock.got());
    assert_eq!(seen.len(), 15);
    for name in ["a{}", "b{}", "c{}"] {
        let ts: Vec<i64> = seen
            .iter()
            .filter(|x| x.series == name)
            .map(|x| x.ts)
            .collect();
        assert_eq!(ts, [1000, 1001, 1002, 1003, 1004], "{name}");
    }
    let got = mock.got();
    assert!(
        got.iter().all(|g| g.samples().len() <= 2),
        "max_samples_per_send"
    );
}

/// Waits until the mock received `n` samples in all; returns them in arrival order.
async fn wait_samples(mock: &Mock, n: usize) -> Vec<Seen> {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let all: Vec<Seen> = mock.got().iter().flat_map(Got::samples).collect();
        if all.len() >= n {
            return all;
        }
        assert!(
            Instant::now() < deadline,
            "expected {n} samples, got {all:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Samples of the requests the mock accepted (the script's failures are the 1st, 3rd and 4th).
fn accepted_samples(got: &[Got]) -> Vec<Seen> {
    got.iter()
        .enumerate()
        .filter(|(i, _)| ![0, 2, 3].contains(i))
        .flat_map(|(_, g)| g.samples())
        .collect()
}

#[tokio::test]
async fn full_queue_drops_the_oldest_batches() {
    let gate = Arc::new(Semaphore::new(0));
    let mock = Mock::start(vec![], Some(gate.clone())).await;
    let s = Setup::new(&format!(
        "remote_write:\n- url: {}\n  name: m\n  metadata_config: {{send: false}}\n  queue_config: {{capacity: 3, max_samples_per_send: 3}}\n",
        mock.url()
    ));
    s.push("a 1\nb 1\nc 1\n", 1000);
    mock.wait_for(1).await; // in flight, held by the gate
    for i in 2..=5 {
        s.push(&format!("a {i}\nb {i}\nc {i}\n"), 1000 * i);
    }
    assert_eq!(
        s.metric(
            "metric_gate_remote_write_samples_dropped_total{endpoint=\"m\",reason=\"queue_full\"}"
        ),
        9.0,
        "scrapes 2, 3 and 4 made room for 5"
    );
    assert_eq!(
        s.metric("metric_gate_remote_write_queue_length{endpoint=\"m\"}"),
        3.0
    );
    gate.add_permits(100);
    let got = mock.wait_for(2).await;
    let values: Vec<f64> = got[1].samples().iter().map(|x| x.value).collect();
    assert_eq!(values, [5.0, 5.0, 5.0], "the newest scrape, not the oldest");
}

#[tokio::test]
async fn a_hanging_endpoint_does_not_delay_another() {
    let gate = Arc::new(Semaphore::new(0));
    let hanging = Mock::start(vec![], Some(gate.clone())).await;
    let healthy = Mock::start(vec![], None).await;
    let s = Setup::new(&format!(
        "remote_write:\n- url: {}\n  name: hang\n  remote_timeout: 1m\n  metadata_config: {{send: false}}\n- url: {}\n  name: ok\n  metadata_config: {{send: false}}\n",
        hanging.url(),
        healthy.url()
    ));
    let started = Instant::now();
    for i in 1..=5 {
        s.push(&format!("a {i}\n"), 1000 * i);
        healthy.wait_for(i as usize).await;
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(
        hanging.got().len(),
        1,
        "one request in flight, the rest queued"
    );
    assert_eq!(
        s.metric("metric_gate_remote_write_queue_length{endpoint=\"hang\"}"),
        4.0
    );
    // A flush with a deadline returns on time even though one endpoint never answers.
    let t = Instant::now();
    s.rw.flush(Instant::now() + Duration::from_millis(300))
        .await;
    assert!(t.elapsed() < Duration::from_secs(2));
    assert!(
        s.metric(
            "metric_gate_remote_write_samples_dropped_total{endpoint=\"hang\",reason=\"shutdown\"}"
        ) >= 4.0
    );
    let last = healthy.got();
    assert!(is_stale_nan(last.last().unwrap().samples()[0].value));
    gate.add_permits(100);
}

#[tokio::test]
async fn forwarded_writes_are_refused_when_a_queue_is_full() {
    let gate = Arc::new(Semaphore::new(0));
    let mock = Mock::start(vec![], Some(gate.clone())).await;
    let other = Mock::start(vec![], None).await;
    let s = Setup::new(&format!(
        "remote_write:\n- url: {}\n  name: slow\n  queue_config: {{capacity: 4, batch_send_deadline: 10ms}}\n- url: {}\n  name: fast\n  protobuf_message: io.prometheus.write.v2.Request\n",
        mock.url(),
        other.url()
    ));
    let body = |v: f64| {
        let req = v1::WriteRequest {
            timeseries: vec![v1::TimeSeries {
                labels: vec![v1::Label::new("__name__", "up"), v1::Label::new("job", "x")],
                samples: vec![v1::Sample {
                    value: v,
                    timestamp: 5,
                }],
                ..Default::default()
            }],
            metadata: vec![v1::MetricMetadata {
                r#type: v1::MetricType::Gauge as i32,
                metric_family_name: "up".into(),
                help: "Up.".into(),
                unit: String::new(),
            }],
        };
        wire::compress(&req.encode_to_vec())
    };
    let decode = |v: f64| {
        metric_gate::remote_write::decode(
            Some("application/x-protobuf"),
            Some("snappy"),
            &body(v),
            1 << 20,
        )
        .unwrap()
    };
    // 1.0: a metadata batch and a series batch per write (2 of the 4 samples of capacity).
    s.rw.forward(decode(1.0)).unwrap();
    mock.wait_for(1).await; // the metadata request is in flight, held
    s.rw.forward(decode(2.0)).unwrap();
    let e = s.rw.forward(decode(3.0)).unwrap_err();
    assert_eq!(e.endpoint, "slow");
    assert!(e.retry_after >= Duration::from_secs(1));
    // The healthy 2.0 endpoint got the accepted writes, metadata in the series.
    let got = other.wait_for(1).await;
    let req = got[0].v2.as_ref().unwrap();
    let md = req.timeseries[0].metadata.unwrap();
    assert_eq!(req.symbols[md.help_ref as usize], "Up.");
    gate.add_permits(100);
}

/// A minimal HTTP `CONNECT` proxy on 127.0.0.1 counting the tunnels it opened.
async fn connect_proxy() -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut client, _)) = listener.accept().await else {
                return;
            };
            let log = log.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if client.read(&mut byte).await.unwrap_or(0) == 0 {
                        return;
                    }
                    head.push(byte[0]);
                }
                let text = String::from_utf8_lossy(&head).to_string();
                let target = text.split_whitespace().nth(1).unwrap_or("").to_owned();
                log.lock()
                    .unwrap()
                    .push(text.lines().next().unwrap_or("").to_owned());
                let Ok(mut upstream) = tokio::net::TcpStream::connect(&target).await else {
                    return;
                };
                let _ = client
                    .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    .await;
                let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
            });
        }
    });
    (addr, seen)
}

#[tokio::test]
async fn proxy_url_tunnels_with_connect() {
    let mock = Mock::start(vec![], None).await;
    let (proxy, seen) = connect_proxy().await;
    let s = Setup::new(&format!(
        "remote_write:\n- url: {}\n  proxy_url: http://{proxy}\n  metadata_config: {{send: false}}\n  {FAST}\n",
        mock.url()
    ));
    s.push("a 1\n", 1000);
    let got = mock.wait_for(1).await;
    assert_eq!(got[0].samples()[0].value, 1.0);
    let lines = seen.lock().unwrap().clone();
    assert_eq!(lines, [format!("CONNECT {} HTTP/1.1", mock.addr)]);
}

#[path = "../examples/gen_ingress.rs"]
#[allow(dead_code)]
mod gen_ingress;

/// Bytes on the wire per sample for the 100x10 ingress payload after `labeldrop: path`, in
/// 1.0 and 2.0 requests of 2000 samples. Run with `--ignored --nocapture`.
#[test]
#[ignore]
fn bytes_per_sample_100x10() {
    use metric_gate::aggregate::RenderOptions;
    use metric_gate::exposition::{ParseOptions, Parser};
    use metric_gate::pipeline::Pipeline;
    use metric_gate::relabel::{Config, Program};
    use metric_gate::remote_write::config::MetadataConfig;
    use metric_gate::remote_write::convert::NameEscaping;
    use metric_gate::remote_write::encode::{Batch, Encoder};
    use metric_gate::remote_write::sender::encode_body;
    use metric_gate::remote_write::Protocol;

    let mut payload = Vec::new();
    gen_ingress::generate(&gen_ingress::Args::sized(100, 10), &mut payload).unwrap();
    let config = Config::from_yaml(
        "metric_relabel_configs:\n- action: labeldrop\n  regex: path\n",
        "bench",
    )
    .unwrap();
    let mut p = Pipeline::new(&config);
    let mut parser = Parser::new(ParseOptions::default());
    for chunk in payload.chunks(1 << 20) {
        parser.feed(chunk, &mut p).unwrap();
    }
    parser.finish(&mut p).unwrap();
    let mut text = Vec::new();
    p.subsets()[0]
        .aggregator
        .render(&mut text, &RenderOptions::default());
    let scrape = Scrape::from_text(&text, 1_700_000_000_000).unwrap();
    for protocol in [Protocol::V1, Protocol::V2] {
        let mut enc = Encoder::new(vec![], Program::default(), 2000, MetadataConfig::default());
        let out = enc.encode(&scrape, protocol);
        let (mut samples, mut bytes, mut raw, mut md_bytes) = (0usize, 0usize, 0usize, 0usize);
        for b in &out.batches {
            let body = encode_body(b, protocol, NameEscaping::Underscores);
            match b {
                Batch::Series(_) => {
                    samples += b.weight();
                    bytes += body.len();
                    raw += snap::raw::decompress_len(&body).unwrap();
                }
                Batch::Metadata(_) => md_bytes += body.len(),
            }
        }
        println!(
            "{protocol:?}: payload {} bytes -> {} series after labeldrop path; {} requests; {bytes} bytes snappy ({raw} protobuf) = {:.2} bytes/sample on the wire ({:.2} before snappy); metadata {md_bytes} bytes",
            payload.len(),
            scrape.len(),
            out.batches.len(),
            bytes as f64 / samples as f64,
            raw as f64 / samples as f64,
        );
        assert_eq!(samples, scrape.len());
    }
}

/// Samples per second through the push path on one core, for the 100x10 ingress payload
/// after `labeldrop: path`: the list's rendered text parsed (`Scrape::from_text`), encoded by
/// one endpoint (stale tracking, batches of 2000) and serialized (protobuf + snappy), 1.0 and
/// 2.0; and the receiver's decoding of the same samples in 2000-sample 1.0 requests. Run with
/// `cargo test --release --test remote_write -- --ignored --nocapture push_throughput`.
#[test]
#[ignore]
fn push_throughput_100x10() {
    use metric_gate::aggregate::RenderOptions;
    use metric_gate::exposition::{ParseOptions, Parser};
    use metric_gate::pipeline::Pipeline;
    use metric_gate::relabel::{Config, Program};
    use metric_gate::remote_write::config::MetadataConfig;
    use metric_gate::remote_write::convert::NameEscaping;
    use metric_gate::remote_write::encode::{Batch, Encoder};
    use metric_gate::remote_write::sender::encode_body;
    use metric_gate::remote_write::{decode, Protocol};

    let mut payload = Vec::new();
    gen_ingress::generate(&gen_ingress::Args::sized(100, 10), &mut payload).unwrap();
    let config = Config::from_yaml(
        "metric_relabel_configs:\n- action: labeldrop\n  regex: path\n",
        "bench",
    )
    .unwrap();
    let mut p = Pipeline::new(&config);
    let mut parser = Parser::new(ParseOptions::default());
    for chunk in payload.chunks(1 << 20) {
        parser.feed(chunk, &mut p).unwrap();
    }
    parser.finish(&mut p).unwrap();
    let mut text = Vec::new();
    p.subsets()[0]
        .aggregator
        .render(&mut text, &RenderOptions::default());
    let series = Scrape::from_text(&text, 0).unwrap().len();

    let run = |label: &str, mut step: Box<dyn FnMut(i64) -> usize>| {
        // Warm-up round, then as many rounds as fit in 2 s.
        step(1);
        let start = std::time::Instant::now();
        let (mut rounds, mut samples) = (0i64, 0usize);
        while start.elapsed() < Duration::from_secs(2) {
            rounds += 1;
            samples += step(rounds + 1);
        }
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{label}: {series} series per scrape, {rounds} rounds in {secs:.2} s: {:.0} samples/s, {:.2} ms per scrape",
            samples as f64 / secs,
            secs * 1000.0 / rounds as f64
        );
    };
    for protocol in [Protocol::V1, Protocol::V2] {
        let mut enc = Encoder::new(vec![], Program::default(), 2000, MetadataConfig::default());
        let text = text.clone();
        run(
            &format!("push {protocol:?} (parse + encode + protobuf + snappy)"),
            Box::new(move |round| {
                let scrape = Scrape::from_text(&text, 1_700_000_000_000 + round * 15_000).unwrap();
                let out = enc.encode(&scrape, protocol);
                let mut n = 0;
                for b in &out.batches {
                    let body = encode_body(b, protocol, NameEscaping::Underscores);
                    assert!(!body.is_empty());
                    if let Batch::Series(_) = b {
                        n += b.weight();
                    }
                }
                n
            }),
        );
    }
    // The receiver: the same samples as 1.0 requests of 2000 samples, decoded and validated.
    let mut enc = Encoder::new(vec![], Program::default(), 2000, MetadataConfig::default());
    let bodies: Vec<(usize, bytes::Bytes)> = enc
        .encode(
            &Scrape::from_text(&text, 1_700_000_000_000).unwrap(),
            Protocol::V1,
        )
        .batches
        .iter()
        .filter(|b| matches!(b, Batch::Series(_)))
        .map(|b| {
            (
                b.weight(),
                encode_body(b, Protocol::V1, NameEscaping::Underscores),
            )
        })
        .collect();
    run(
        "receive 1.0 (snappy + protobuf + validation)",
        Box::new(move |_| {
            let mut n = 0;
            for (w, body) in &bodies {
                let d = decode(
                    Some("application/x-protobuf"),
                    Some("snappy"),
                    body,
                    32 << 20,
                )
                .unwrap();
                assert_eq!(d.samples as usize, *w);
                n += w;
            }
            n
        }),
    );
}
