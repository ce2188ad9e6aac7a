//! Remote write wired into the server, on loopback: the push loop (sharing scrapes with
//! `/metrics`), `POST /api/v1/write` (1.0 and 2.0, bad bodies, full queues, auth), reloading
//! the remote-write file, and the flush with stale markers at SIGTERM (the binary).
//!
//! The receiving end is a mock remote-write receiver in this file.

mod http_support;

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post as post_route;
use axum::Router;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use prost::Message;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use http_support::*;
use metric_gate::remote_write::wire::{is_stale_nan, v1, v2};
use metric_gate::server::{RelabelConfig, RemoteWriteSettings, ServerConfig};

// ---- the mock receiver -------------------------------------------------------------------

/// One sample the mock received: `name{a="x"}`, value, timestamp.
#[derive(Clone, Debug, PartialEq)]
struct Seen {
    series: String,
    value: f64,
    ts: i64,
}

#[derive(Clone, Debug)]
struct Got {
    headers: HeaderMap,
    samples: Vec<Seen>,
    metadata: usize,
}

#[derive(Default)]
struct MockState {
    got: Mutex<Vec<Got>>,
    /// When set, every request waits for a permit (a hanging receiver).
    gate: Option<Arc<Semaphore>>,
}

struct Mock {
    state: Arc<MockState>,
    addr: SocketAddr,
}

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

async fn receive(State(st): State<Arc<MockState>>, headers: HeaderMap, body: Bytes) -> Response {
    let raw = snap::raw::Decoder::new()
        .decompress_vec(&body)
        .expect("snappy block");
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let mut samples = Vec::new();
    let mut metadata = 0;
    let v2 = ct.contains("io.prometheus.write.v2.Request");
    if v2 {
        let r = v2::Request::decode(&raw[..]).expect("valid 2.0");
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
                samples.push(Seen {
                    series: k.clone(),
                    value: s.value,
                    ts: s.timestamp,
                });
            }
        }
    } else {
        let r = v1::WriteRequest::decode(&raw[..]).expect("valid 1.0");
        metadata = r.metadata.len();
        for ts in &r.timeseries {
            let k = key(ts
                .labels
                .iter()
                .map(|l| (l.name.clone(), l.value.clone()))
                .collect());
            for s in &ts.samples {
                samples.push(Seen {
                    series: k.clone(),
                    value: s.value,
                    ts: s.timestamp,
                });
            }
        }
    }
    let n = samples.len();
    st.got.lock().unwrap().push(Got {
        headers,
        samples,
        metadata,
    });
    if let Some(gate) = &st.gate {
        let _permit = gate.acquire().await;
    }
    let mut resp = StatusCode::NO_CONTENT.into_response();
    if v2 {
        let h = resp.headers_mut();
        h.insert(
            "x-prometheus-remote-write-samples-written",
            n.to_string().parse().unwrap(),
        );
        h.insert(
            "x-prometheus-remote-write-histograms-written",
            "0".parse().unwrap(),
        );
        h.insert(
            "x-prometheus-remote-write-exemplars-written",
            "0".parse().unwrap(),
        );
    }
    resp
}

impl Mock {
    async fn start(gate: Option<Arc<Semaphore>>) -> Mock {
        let state = Arc::new(MockState {
            gate,
            ..MockState::default()
        });
        let app = Router::new()
            .route("/write", post_route(receive))
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

    fn samples(&self) -> Vec<Seen> {
        self.got().into_iter().flat_map(|g| g.samples).collect()
    }

    /// Waits until `ok` holds for the samples received so far.
    async fn wait_until(&self, what: &str, ok: impl Fn(&[Seen]) -> bool) -> Vec<Seen> {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let s = self.samples();
            if ok(&s) {
                return s;
            }
            assert!(Instant::now() < deadline, "waiting for {what}; got {s:#?}");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

// ---- helpers -----------------------------------------------------------------------------

fn settings(dir: &Path, yaml: &str) -> RemoteWriteSettings {
    let path = dir.join("remote-write.yaml");
    std::fs::write(&path, yaml).unwrap();
    RemoteWriteSettings::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

fn config_with(upstream: &str, rw: RemoteWriteSettings) -> ServerConfig {
    ServerConfig {
        remote_write: Some(rw),
        ..config_for(upstream)
    }
}

async fn gate_rw(upstream: &str, relabel: RelabelConfig, rw: RemoteWriteSettings) -> Gate {
    Gate::start_relabel(config_with(upstream, rw), relabel).await
}

/// POST `body` with `headers`: status, headers, text.
async fn post_body(url: &str, headers: &[(&str, &str)], body: Vec<u8>) -> (u16, HeaderMap, String) {
    let client: Client<_, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut req = http::Request::post(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = client
        .request(req.body(Full::new(Bytes::from(body))).unwrap())
        .await
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    (
        parts.status.as_u16(),
        parts.headers,
        String::from_utf8_lossy(&body).into_owned(),
    )
}

const V1_CT: &str = "application/x-protobuf";
const V2_CT: &str = "application/x-protobuf;proto=io.prometheus.write.v2.Request";

/// One series of a 1.0 request: name, labels, value, timestamp.
type V1Series<'a> = (&'a str, &'a [(&'a str, &'a str)], f64, i64);

fn v1_body(series: &[V1Series]) -> Vec<u8> {
    let req = v1::WriteRequest {
        timeseries: series
            .iter()
            .map(|(name, labels, value, ts)| {
                let mut l = vec![v1::Label::new("__name__", *name)];
                l.extend(labels.iter().map(|(n, v)| v1::Label::new(*n, *v)));
                v1::TimeSeries {
                    labels: l,
                    samples: vec![v1::Sample {
                        value: *value,
                        timestamp: *ts,
                    }],
                    ..Default::default()
                }
            })
            .collect(),
        ..Default::default()
    };
    snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .unwrap()
}

fn v2_body(name: &str, job: &str, values: &[(f64, i64)]) -> Vec<u8> {
    let req = v2::Request {
        symbols: vec![
            String::new(),
            "__name__".into(),
            name.into(),
            "job".into(),
            job.into(),
        ],
        timeseries: vec![v2::TimeSeries {
            labels_refs: vec![1, 2, 3, 4],
            samples: values
                .iter()
                .map(|(v, t)| v2::Sample {
                    value: *v,
                    timestamp: *t,
                    start_timestamp: 0,
                })
                .collect(),
            ..Default::default()
        }],
    };
    snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .unwrap()
}

/// A self-metric's value: the line that starts with `prefix` (name and labels).
fn metric(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

// ---- the push loop -----------------------------------------------------------------------

const BODY: &str = "# HELP reqs Requests.\n# TYPE reqs counter\nreqs{code=\"200\",path=\"/a\"} 1\nreqs{code=\"200\",path=\"/b\"} 2\nreqs{code=\"500\",path=\"/a\"} 4\n";

/// The default list and a subset, each pushed to its own endpoint, every interval; pulls of
/// `/metrics` that arrive while a push's scrape is in flight share it (the upstream sees one
/// request per push); a subset is pushed without the fetch time of `/metrics/<subset>`.
#[tokio::test]
async fn pushes_every_interval_and_shares_scrapes_with_pulls() {
    // Each upstream answer takes 400 ms: a pull made while the upstream holds a request joins
    // that scrape.
    let up = Upstream::start(Behave::SlowStart(BODY.into(), Duration::from_millis(400))).await;
    let all = Mock::start(None).await;
    let codes = Mock::start(None).await;
    let dir = tempfile::tempdir().unwrap();
    let rw = settings(
        dir.path(),
        &format!(
            "interval: 1s\nexternal_labels: {{replica: a}}\nremote_write:\n- url: {}\n  name: all\n- url: {}\n  name: codes\n  subset: codes\n  protobuf_message: io.prometheus.write.v2.Request\n",
            all.url(),
            codes.url()
        ),
    );
    let relabel = RelabelConfig::from_text(
        "metric_relabel_configs: []\ncodes:\n- action: labeldrop\n  regex: path\n",
        "test",
        &Default::default(),
    )
    .unwrap();
    let gate = gate_rw(&up.url(), relabel, rw).await;
    let started = Instant::now();

    // Three pushes of the default list, about 1 s apart.
    let seen = all
        .wait_until("3 pushes", |s| {
            s.iter()
                .filter(|x| x.series == "reqs{code=\"200\",path=\"/a\",replica=\"a\"}")
                .count()
                >= 3
        })
        .await;
    let ts: Vec<i64> = seen
        .iter()
        .filter(|x| x.series == "reqs{code=\"200\",path=\"/a\",replica=\"a\"}")
        .map(|x| x.ts)
        .collect();
    for w in ts.windows(2) {
        let gap = w[1] - w[0];
        assert!((700..=2000).contains(&gap), "push timestamps {ts:?}");
    }
    assert!(started.elapsed() >= Duration::from_millis(1500));
    let got = all.got();
    assert_eq!(got[0].headers["content-type"], "application/x-protobuf");
    assert!(got.iter().any(|g| g.metadata > 0), "1.0 metadata was sent");

    // The subset went to the other endpoint, summed, as 2.0, stamped with the fetch time.
    let subset = codes.wait_until("subset pushes", |s| s.len() >= 2).await;
    assert!(
        subset
            .iter()
            .any(|x| x.series == "reqs{code=\"200\",replica=\"a\"}" && x.value == 3.0),
        "{subset:?}"
    );
    assert!(subset.iter().all(|x| !x.series.contains("path")));
    assert!(codes.got()[0].headers["content-type"]
        .to_str()
        .unwrap()
        .contains("v2"));
    let snapshot = gate.get("/metrics/codes").await.text();
    assert!(
        snapshot.contains("reqs{code=\"200\"} 3 "),
        "/metrics/codes still carries the fetch time: {snapshot}"
    );

    // Pulls during a push's scrape share it: wait until the upstream holds a request, pull.
    for _ in 0..2 {
        let before = up.request_count();
        let deadline = Instant::now() + Duration::from_secs(5);
        while up.request_count() == before {
            assert!(Instant::now() < deadline, "no push scrape");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let in_flight = up.request_count();
        let r = gate.get("/metrics").await;
        assert_eq!(r.status, 200);
        assert_eq!(samples(&r.text()), samples(BODY));
        assert_eq!(
            up.request_count(),
            in_flight,
            "the pull added an upstream request"
        );
    }
    let own = gate.get("/-/metrics").await.text();
    assert!(
        metric(&own, "metric_gate_scrapes_shared_total").unwrap() >= 2.0,
        "{own}"
    );
    assert!(
        metric(
            &own,
            "metric_gate_remote_write_samples_sent_total{endpoint=\"all\"}"
        )
        .unwrap()
            >= 9.0,
        "{own}"
    );
}

/// A failed upstream scrape ends every pushed series with a stale marker at the fetch time;
/// series come back when the upstream does.
#[tokio::test]
async fn failed_scrape_pushes_stale_markers() {
    let up = Upstream::start(Behave::Sequence(vec![
        "up_metric 1\n".into(),
        "not valid {\n".into(),
        "up_metric 2\n".into(),
    ]))
    .await;
    let mock = Mock::start(None).await;
    let dir = tempfile::tempdir().unwrap();
    let rw = settings(
        dir.path(),
        &format!("interval: 300ms\nremote_write:\n- url: {}\n", mock.url()),
    );
    let _gate = gate_rw(&up.url(), RelabelConfig::passthrough(), rw).await;
    let seen = mock
        .wait_until("value, stale marker, value", |s| {
            s.iter().any(|x| x.value == 2.0)
        })
        .await;
    let values: Vec<String> = seen
        .iter()
        .filter(|x| x.series == "up_metric{}")
        .map(|x| {
            if is_stale_nan(x.value) {
                "stale".to_owned()
            } else {
                x.value.to_string()
            }
        })
        .collect();
    assert_eq!(values[..3], ["1", "stale", "2"], "{seen:?}");
    let ts: Vec<i64> = seen.iter().map(|x| x.ts).collect();
    assert!(ts.windows(2).all(|w| w[0] < w[1]), "{ts:?}");
}

// ---- the receiver ------------------------------------------------------------------------

fn receiver_settings(dir: &Path, mock: &Mock, queue: &str) -> RemoteWriteSettings {
    let mut s = settings(
        dir,
        &format!(
            "interval: 1h\nremote_write:\n- url: {}\n  name: mock\n  write_relabel_configs:\n  - {{action: drop, source_labels: [__name__], regex: up_metric}}\n{queue}",
            mock.url()
        ),
    );
    s.receiver = true;
    s.receiver_max_body = 4096;
    s
}

#[tokio::test]
async fn receiver_forwards_v1_and_v2_and_refuses_bad_requests() {
    let up = Upstream::start(Behave::Plain("up_metric 1\n".into())).await;
    let mock = Mock::start(None).await;
    let dir = tempfile::tempdir().unwrap();
    let gate = gate_rw(
        &up.url(),
        RelabelConfig::passthrough(),
        receiver_settings(dir.path(), &mock, ""),
    )
    .await;
    let url = gate.url("/api/v1/write");
    let t = now_ms();

    // 1.0.
    let (status, _, text) = post_body(
        &url,
        &[
            ("content-type", V1_CT),
            ("content-encoding", "snappy"),
            ("x-prometheus-remote-write-version", "0.1.0"),
        ],
        v1_body(&[("written_total", &[("job", "a")], 5.0, t)]),
    )
    .await;
    assert_eq!(status, 204, "{text}");
    // 2.0: the written-headers come from the decoded counts.
    let (status, headers, text) = post_body(
        &url,
        &[("content-type", V2_CT), ("content-encoding", "snappy")],
        v2_body("written_total", "b", &[(1.0, t), (2.0, t + 1)]),
    )
    .await;
    assert_eq!(status, 204, "{text}");
    assert_eq!(headers["x-prometheus-remote-write-samples-written"], "2");
    assert_eq!(headers["x-prometheus-remote-write-histograms-written"], "0");
    assert_eq!(headers["x-prometheus-remote-write-exemplars-written"], "0");
    let seen = mock.wait_until("forwarded samples", |s| s.len() >= 3).await;
    let mut got: Vec<(String, f64, i64)> = seen
        .iter()
        .map(|x| (x.series.clone(), x.value, x.ts))
        .collect();
    got.sort_by(|a, b| a.partial_cmp(b).unwrap());
    assert_eq!(
        got,
        [
            ("written_total{job=\"a\"}".into(), 5.0, t),
            ("written_total{job=\"b\"}".into(), 1.0, t),
            ("written_total{job=\"b\"}".into(), 2.0, t + 1),
        ]
    );

    // Bad bodies: 400 with the reason; a wrong content type: 415; over the limit: 413.
    let (status, _, text) = post_body(
        &url,
        &[("content-type", V1_CT), ("content-encoding", "snappy")],
        {
            // A snappy block cut short.
            let mut b = v1_body(&[("cut_total", &[], 1.0, t)]);
            b.truncate(b.len() - 3);
            b
        },
    )
    .await;
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("snappy"), "{text}");
    let (status, _, text) = post_body(
        &url,
        &[("content-type", V1_CT), ("content-encoding", "snappy")],
        snap::raw::Encoder::new()
            .compress_vec(b"\x0a\x05garbage-protobuf")
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400, "{text}");
    let (status, _, text) = post_body(
        &url,
        &[("content-type", "application/json")],
        b"{}".to_vec(),
    )
    .await;
    assert_eq!(status, 415, "{text}");
    let (status, _, text) = post_body(
        &url,
        &[("content-type", V1_CT), ("content-encoding", "snappy")],
        vec![0u8; 5000],
    )
    .await;
    assert_eq!(status, 413, "{text}");
    assert!(
        text.contains("--remote-write.receiver.max-body-size"),
        "{text}"
    );

    // Nothing of the refused requests was forwarded; every request was counted.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(mock.samples().len(), 3);
    let own = gate.get("/-/metrics").await.text();
    for (result, n) in [
        ("accepted", 2.0),
        ("snappy", 1.0),
        ("protobuf", 1.0),
        ("content_type", 1.0),
        ("too_large", 1.0),
    ] {
        assert_eq!(
            metric(
                &own,
                &format!("metric_gate_remote_write_received_requests_total{{result=\"{result}\"}}")
            ),
            Some(n),
            "{result}: {own}"
        );
    }
    assert_eq!(
        metric(
            &own,
            "metric_gate_http_requests_total{endpoint=\"/api/v1/write\",code=\"204\"}"
        ),
        Some(2.0),
        "{own}"
    );
}

#[tokio::test]
async fn receiver_answers_503_with_retry_after_when_a_queue_is_full() {
    let up = Upstream::start(Behave::Plain("up_metric 1\n".into())).await;
    // The endpoint hangs: the first request stays in flight, the next write waits in the queue.
    let hang = Arc::new(Semaphore::new(0));
    let mock = Mock::start(Some(hang.clone())).await;
    let dir = tempfile::tempdir().unwrap();
    let gate = gate_rw(
        &up.url(),
        RelabelConfig::passthrough(),
        receiver_settings(
            dir.path(),
            &mock,
            "  queue_config: {capacity: 10, max_samples_per_send: 8, batch_send_deadline: 5s}\n",
        ),
    )
    .await;
    let url = gate.url("/api/v1/write");
    let t = now_ms();
    let write = |job: &'static str| {
        let series: Vec<V1Series> = (0..8)
            .map(|i| {
                let labels: &[(&str, &str)] = match job {
                    "a" => &[("job", "a")],
                    "b" => &[("job", "b")],
                    _ => &[("job", "c")],
                };
                ("w_total", labels, 1.0, t + i)
            })
            .collect();
        v1_body(&series)
    };
    let h = [("content-type", V1_CT), ("content-encoding", "snappy")];
    assert_eq!(post_body(&url, &h, write("a")).await.0, 204);
    // The sender took it and hangs in the request.
    while mock.got().is_empty() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(post_body(&url, &h, write("b")).await.0, 204);
    let (status, headers, text) = post_body(&url, &h, write("c")).await;
    assert_eq!(status, 503, "{text}");
    assert_eq!(headers["retry-after"], "5");
    assert!(text.contains("mock"), "{text}");
    let own = gate.get("/-/metrics").await.text();
    assert_eq!(
        metric(
            &own,
            "metric_gate_remote_write_received_requests_total{result=\"queue_full\"}"
        ),
        Some(1.0)
    );
    // Released: both accepted writes arrive, the refused one never.
    hang.add_permits(100);
    let seen = mock.wait_until("16 samples", |s| s.len() >= 16).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(mock.samples().len(), 16);
    assert!(seen.iter().all(|x| !x.series.contains("\"c\"")));
}

#[tokio::test]
async fn receiver_is_behind_basic_auth_and_off_by_default() {
    use base64::Engine as _;
    let up = Upstream::start(Behave::Plain("up_metric 1\n".into())).await;
    let mock = Mock::start(None).await;
    let dir = tempfile::tempdir().unwrap();
    let hash = bcrypt::hash("pw", 4).unwrap();
    let web = dir.path().join("web.yaml");
    std::fs::write(&web, format!("basic_auth_users:\n  writer: {hash}\n")).unwrap();
    let watcher = metric_gate::server::web_config::WebConfigWatcher::load(&web)
        .unwrap_or_else(|e| panic!("{e}"));
    let mut cfg = config_with(&up.url(), receiver_settings(dir.path(), &mock, ""));
    cfg.listener.web = Some(Arc::new(watcher));
    let gate = Gate::start_relabel(cfg, RelabelConfig::passthrough()).await;
    let body = v1_body(&[("auth_total", &[], 1.0, now_ms())]);
    let url = gate.url("/api/v1/write");
    let (status, _, _) = post_body(&url, &[("content-type", V1_CT)], body.clone()).await;
    assert_eq!(status, 401);
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("writer:pw")
    );
    let (status, _, text) = post_body(
        &url,
        &[("content-type", V1_CT), ("authorization", &auth)],
        body.clone(),
    )
    .await;
    assert_eq!(status, 204, "{text}");
    mock.wait_until("the write", |s| s.len() == 1).await;

    // Without --remote-write.receiver there is no such route.
    let mut off = receiver_settings(dir.path(), &mock, "");
    off.receiver = false;
    let plain_gate = gate_rw(&up.url(), RelabelConfig::passthrough(), off).await;
    let (status, _, _) = post_body(
        &plain_gate.url("/api/v1/write"),
        &[("content-type", V1_CT)],
        body,
    )
    .await;
    assert_eq!(status, 404);
}

// ---- reload ------------------------------------------------------------------------------

#[tokio::test]
async fn reload_swaps_endpoints_and_keeps_the_old_config_when_invalid() {
    let up = Upstream::start(Behave::Plain("g 1\n".into())).await;
    let first = Mock::start(None).await;
    let second = Mock::start(None).await;
    let dir = tempfile::tempdir().unwrap();
    let relabel_file = dir.path().join("relabel.yaml");
    std::fs::write(&relabel_file, "metric_relabel_configs: []\nsub: []\n").unwrap();
    let yaml = |url: String, name: &str| {
        format!("interval: 200ms\nremote_write:\n- url: {url}\n  name: {name}\n  subset: sub\n")
    };
    let rw = settings(dir.path(), &yaml(first.url(), "first"));
    let path = rw.path.clone();
    let gate = gate_rw(
        &up.url(),
        RelabelConfig::from_file(&relabel_file, &Default::default()).unwrap(),
        rw,
    )
    .await;
    first
        .wait_until("pushes to the first endpoint", |s| s.len() >= 2)
        .await;

    // Same text: nothing changes.
    let r = post(&gate.url("/-/reload")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.text().contains("remote write config unchanged"),
        "{}",
        r.text()
    );

    // Another endpoint: the first one ends its series with a stale marker, the second takes
    // over.
    std::fs::write(&path, yaml(second.url(), "second")).unwrap();
    let r = post(&gate.url("/-/reload")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("1 removed"), "{}", r.text());
    let ended = first.samples();
    assert!(is_stale_nan(ended.last().unwrap().value), "{ended:?}");
    second
        .wait_until("pushes to the second endpoint", |s| s.len() >= 2)
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        first.samples().len(),
        ended.len(),
        "the removed endpoint still gets pushes"
    );
    let own = gate.get("/-/metrics").await.text();
    assert!(!own.contains("endpoint=\"first\"}"), "{own}");

    // Invalid: an unknown field. Refused, naming the file and field; the second keeps going.
    std::fs::write(&path, format!("{}  bogus: 1\n", yaml(first.url(), "first"))).unwrap();
    let r = post(&gate.url("/-/reload")).await;
    assert_eq!(r.status, 500);
    assert!(
        r.text().contains("remote-write.yaml") && r.text().contains("bogus"),
        "{}",
        r.text()
    );
    // A relabel file without the pushed subset is refused too (both files are kept).
    std::fs::write(&path, yaml(second.url(), "second")).unwrap();
    std::fs::write(&relabel_file, "metric_relabel_configs: []\n").unwrap();
    let r = post(&gate.url("/-/reload")).await;
    assert_eq!(r.status, 500);
    assert!(r.text().contains("subset"), "{}", r.text());
    assert_eq!(gate.state.subset_names(), ["sub"]);
    let n = second.samples().len();
    second
        .wait_until("pushes after the failed reloads", |s| s.len() >= n + 2)
        .await;
    assert!(first.samples().len() == ended.len());
}

/// Reloading an endpoint with the same name keeps its series going: no stale markers, and a
/// series the new rules drop gets one.
#[tokio::test]
async fn reload_of_a_kept_endpoint_ends_only_the_series_it_drops() {
    let up = Upstream::start(Behave::Plain("a 1\nb 2\n".into())).await;
    let mock = Mock::start(None).await;
    let dir = tempfile::tempdir().unwrap();
    let rw = settings(
        dir.path(),
        &format!(
            "interval: 200ms\nremote_write:\n- url: {}\n  name: m\n",
            mock.url()
        ),
    );
    let path = rw.path.clone();
    let gate = gate_rw(&up.url(), RelabelConfig::passthrough(), rw).await;
    mock.wait_until("both series", |s| s.len() >= 4).await;
    std::fs::write(
        &path,
        format!(
            "interval: 200ms\nremote_write:\n- url: {}\n  name: m\n  write_relabel_configs:\n  - {{action: drop, source_labels: [__name__], regex: b}}\n",
            mock.url()
        ),
    )
    .unwrap();
    let at_reload = mock.samples().len();
    let r = post(&gate.url("/-/reload")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = mock
        .wait_until("a pushed twice after the reload", |s| {
            s[at_reload..].iter().filter(|x| x.series == "a{}").count() >= 2
        })
        .await;
    let after = &seen[at_reload..];
    assert!(
        !after
            .iter()
            .any(|x| x.series == "a{}" && is_stale_nan(x.value)),
        "{after:?}"
    );
    let b: Vec<&Seen> = after.iter().filter(|x| x.series == "b{}").collect();
    assert_eq!(b.len(), 1, "{after:?}");
    assert!(is_stale_nan(b[0].value));
}

// ---- SIGTERM -----------------------------------------------------------------------------

#[tokio::test]
async fn sigterm_flushes_with_stale_markers() {
    let up = Upstream::start(Behave::Plain("x{k=\"1\"} 1\nx{k=\"2\"} 2\n".into())).await;
    let mock = Mock::start(None).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rw.yaml");
    std::fs::write(
        &path,
        format!("interval: 1h\nremote_write:\n- url: {}\n", mock.url()),
    )
    .unwrap();
    let (child, rx, _addr) = spawn_gate_binary(&[
        "--listen-address",
        "127.0.0.1",
        "-p",
        "0",
        "-H",
        &up.url(),
        "--remote-write.config-file",
        path.to_str().unwrap(),
    ]);
    struct Kill(Option<std::process::Child>);
    impl Drop for Kill {
        fn drop(&mut self) {
            if let Some(c) = self.0.as_mut() {
                let _ = c.kill();
                let _ = c.wait();
            }
        }
    }
    let mut guard = Kill(Some(child));
    mock.wait_until("the first push", |s| s.len() == 2).await;
    let pid = guard.0.as_ref().unwrap().id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let mut child = guard.0.take().unwrap();
    let exit = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(exit.success(), "{exit:?}");
    let seen = mock.samples();
    let stale: Vec<&Seen> = seen.iter().filter(|x| is_stale_nan(x.value)).collect();
    let mut series: Vec<&str> = stale.iter().map(|x| x.series.as_str()).collect();
    series.sort();
    assert_eq!(series, ["x{k=\"1\"}", "x{k=\"2\"}"], "{seen:?}");
    assert!(stale.iter().all(|x| x.ts > seen[0].ts));
    let logs: Vec<String> = rx.try_iter().collect();
    assert!(logs.iter().any(|l| l.contains("flushing")), "{logs:?}");
}

#[test]
fn invalid_remote_write_files_are_refused_at_startup() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rw.yaml");
    let run = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_metric-gate"))
            .args(["--listen-address", "127.0.0.1", "-p", "0"])
            .args(extra)
            .output()
            .unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    std::fs::write(
        &path,
        "remote_write:\n- url: http://127.0.0.1:1/write\n  queue_config: {capacity: -1}\n",
    )
    .unwrap();
    let err = run(&["--remote-write.config-file", path.to_str().unwrap()]);
    assert!(err.contains("queue_config.capacity"), "{err}");
    std::fs::write(
        &path,
        "remote_write:\n- url: http://127.0.0.1:1/write\n  subset: nope\n",
    )
    .unwrap();
    let err = run(&["--remote-write.config-file", path.to_str().unwrap()]);
    assert!(err.contains("subset") && err.contains("nope"), "{err}");
    let err = run(&["--remote-write.receiver"]);
    assert!(err.contains("--remote-write.config-file"), "{err}");
}
