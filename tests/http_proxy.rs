//! HTTP behaviour of the proxy with a static upstream: pass-through, gzip, subsets, error paths,
//! limits, timeouts, concurrency, and the auxiliary endpoints.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use metric_gate::relabel::{Config, Program};
use metric_gate::server::ServerConfig;
use testkit::client::*;
use testkit::e2e::python_openmetrics;
use testkit::gate::*;
use testkit::upstream::*;

const BODY: &str = "\
# HELP http_requests_total Requests.
# TYPE http_requests_total counter
http_requests_total{code=\"200\",path=\"/a\"} 3
http_requests_total{code=\"500\",path=\"/a\"} 1
http_requests_total{code=\"200\",path=\"/b\"} 5 1700000000000
# TYPE temperature gauge
temperature 21.5
";

/// A config with named pass-through subsets.
fn with_subsets(names: &[&str]) -> Config {
    Config {
        default: Program::default(),
        subsets: names
            .iter()
            .map(|n| (n.to_string(), Program::default()))
            .collect(),
        ..Config::default()
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

#[tokio::test]
async fn passes_metrics_through() {
    let up = Upstream::start(Behave::Plain(BODY.into())).await;
    let gate = Gate::start(config_for(&up.url()), &Config::passthrough()).await;
    let r = gate.get("/metrics").await;
    assert_eq!(r.status, 200, "{}", r.text());
    // No Accept: text 0.0.4, legacy names (escaped with underscores had there been others).
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8; escaping=underscores")
    );
    assert_eq!(samples(&r.text()), samples(BODY));
    assert!(r.text().contains("# TYPE http_requests_total counter\n"));
    assert!(r.text().contains("# HELP http_requests_total Requests.\n"));
    // The upstream was asked for what metric-gate reads (OpenMetrics first, then text) and
    // gzip, not for what the client asked.
    let seen = up.seen_headers.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    let accept = seen[0].get("accept").unwrap().to_str().unwrap();
    assert!(
        accept.starts_with("application/openmetrics-text;version=1.0.0"),
        "{accept}"
    );
    assert!(accept.contains("text/plain;version=0.0.4"), "{accept}");
    assert_eq!(seen[0].get("accept-encoding").unwrap(), "gzip");
    gate.stop().await;
}

#[tokio::test]
async fn sums_identical_series() {
    // The same series twice in one body: the first sample counts (as Prometheus keeps it), the
    // repeat is ignored and counted.
    let body = "x{a=\"1\"} 1\nx{a=\"1\"} 2.5\nx{a=\"2\"} 4\n";
    let up = Upstream::start(Behave::Plain(body.into())).await;
    let gate = Gate::start(config_for(&up.url()), &Config::passthrough()).await;
    let r = gate.get("/metrics").await;
    assert_eq!(samples(&r.text()), vec!["x{a=\"1\"} 1", "x{a=\"2\"} 4"]);
    let m = gate.get("/-/metrics").await.text();
    assert_eq!(
        metric_value(&m, "metric_gate_duplicate_samples_total"),
        1.0,
        "{m}"
    );
}

#[tokio::test]
async fn labeldrop_aggregates() {
    let up = Upstream::start(Behave::Plain(BODY.into())).await;
    let relabel = Config::from_yaml(
        "metric_relabel_configs:\n  - action: labeldrop\n    regex: path\n",
        "test",
    )
    .unwrap();
    let gate = Gate::start(config_for(&up.url()), &relabel).await;
    let r = gate.get("/metrics").await;
    assert_eq!(
        samples(&r.text()),
        vec![
            // One input has no timestamp ("now"): the sum is not stamped in the past.
            "http_requests_total{code=\"200\"} 8",
            "http_requests_total{code=\"500\"} 1",
            "temperature 21.5",
        ]
    );
}

#[tokio::test]
async fn gzip_both_ways() {
    let up = Upstream::start(Behave::Text(BODY.into())).await;
    let gate = Gate::start(config_for(&up.url()), &Config::passthrough()).await;
    let r = get(&gate.url("/metrics"), &[("Accept-Encoding", "gzip")]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert_eq!(samples(&r.decoded()), samples(BODY));
    // The upstream answered gzip (it does when asked); metric-gate decoded it.
    let r = get(&gate.url("/metrics"), &[]).await;
    assert_eq!(r.header("content-encoding"), None);
    assert_eq!(samples(&r.text()), samples(BODY));
    let m = gate.get("/-/metrics").await.text();
    let wire: f64 = metric_value(&m, "metric_gate_upstream_wire_bytes_total");
    let read: f64 = metric_value(&m, "metric_gate_upstream_read_bytes_total");
    assert!(wire < read, "wire {wire} read {read}");
}

/// `/metrics/all` answers a plain client the text and a gzip client the same text compressed.
async fn assert_subset_all_answers_plain_and_gzip(gate: &Gate) {
    let plain = get(&gate.url("/metrics/all"), &[]).await;
    assert_eq!(plain.status, 200);
    assert_eq!(plain.header("content-encoding"), None);
    assert!(
        plain.text().contains("\ntemperature 21.5 "),
        "{}",
        plain.text()
    );
    let gz = get(&gate.url("/metrics/all"), &[("Accept-Encoding", "gzip")]).await;
    assert_eq!(gz.header("content-encoding"), Some("gzip"));
    assert_eq!(gz.decoded(), plain.text());
}

/// A scrape started by a client that accepts gzip keeps every list only in gzip form; clients
/// of that result that do not accept gzip get the same text, decompressed.
#[tokio::test]
async fn a_result_kept_as_gzip_answers_plain_clients() {
    let up = Upstream::start(Behave::Text(BODY.into())).await;
    let gate = Gate::start(config_for(&up.url()), &with_subsets(&["all"])).await;
    let r = get(&gate.url("/metrics"), &[("Accept-Encoding", "gzip")]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert_eq!(samples(&r.decoded()), samples(BODY));
    assert_subset_all_answers_plain_and_gzip(&gate).await;
}

/// The scrape at startup, which no client starts, keeps its lists as gzip (Prometheus asks
/// for it); a plain client of that result gets the text, and a gzip client the same text.
#[tokio::test]
async fn the_warm_up_result_answers_plain_and_gzip_clients() {
    let up = Upstream::start(Behave::Text(BODY.into())).await;
    let cfg = ServerConfig {
        warm_up: true,
        ..config_for(&up.url())
    };
    let gate = Gate::start(cfg, &with_subsets(&["all"])).await;
    // Ready once the warm-up scrape succeeded.
    let mut tries = 0;
    while gate.get("/-/ready").await.status != 200 {
        tries += 1;
        assert!(tries < 100, "the warm-up scrape did not finish");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Served from the warm-up scrape's result: no client has asked for /metrics yet.
    assert_subset_all_answers_plain_and_gzip(&gate).await;
    // A plain client's own scrape, and the next one, still answer both.
    let r = get(&gate.url("/metrics"), &[]).await;
    assert_eq!(samples(&r.text()), samples(BODY));
    let r = get(&gate.url("/metrics"), &[("Accept-Encoding", "gzip")]).await;
    assert_eq!(samples(&r.decoded()), samples(BODY));
}

fn metric_value(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("{name} not in\n{text}"))
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn subsets_carry_the_fetch_timestamp() {
    let up = Upstream::start(Behave::Text(BODY.into())).await;
    let gate = Gate::start(config_for(&up.url()), &with_subsets(&["all", "copy"])).await;

    let r = gate.get("/metrics/nope").await;
    assert_eq!(r.status, 404);
    assert!(
        r.text().contains("known subsets: [all, copy]"),
        "{}",
        r.text()
    );

    let r = gate.get("/metrics/all").await;
    assert_eq!(r.status, 503);
    assert!(r.text().contains("no result yet"), "{}", r.text());

    let before = now_ms();
    let r = gate.get("/metrics").await;
    let after = now_ms();
    assert_eq!(r.status, 200);
    // The default list has no added timestamps.
    assert!(r.text().contains("\ntemperature 21.5\n"), "{}", r.text());

    let r = get(&gate.url("/metrics/all"), &[("Accept-Encoding", "gzip")]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    let text = r.decoded();
    let ts: i64 = text
        .lines()
        .find_map(|l| l.strip_prefix("temperature 21.5 "))
        .unwrap_or_else(|| panic!("{text}"))
        .parse()
        .unwrap();
    assert!(before <= ts && ts <= after, "{before} <= {ts} <= {after}");
    // A sample with its own timestamp keeps it.
    assert!(text.contains("http_requests_total{code=\"200\",path=\"/b\"} 5 1700000000000\n"));
    assert!(text.contains(&format!(
        "http_requests_total{{code=\"200\",path=\"/a\"}} 3 {ts}\n"
    )));
    // Serving a subset does not scrape again.
    let n = up.request_count();
    assert_eq!(gate.get("/metrics/copy").await.status, 200);
    assert_eq!(up.request_count(), n);
    // The index lists them (the HTML one: a browser's Accept).
    let index = get(&gate.url("/"), &[("accept", "text/html")]).await.text();
    assert!(index.contains("href=\"metrics/all\""), "{index}");
    assert!(index.contains("href=\"metrics/copy\""), "{index}");
}

#[tokio::test]
async fn upstream_errors_are_502() {
    // Non-2xx status.
    let up = Upstream::start(Behave::Status(500)).await;
    let gate = Gate::start(config_for(&up.url()), &Config::passthrough()).await;
    let r = gate.get("/metrics").await;
    assert_eq!(r.status, 502);
    assert_eq!(
        r.text(),
        format!(
            "upstream {}: upstream answered 500 Internal Server Error\n",
            up.url()
        )
    );
    assert_eq!(gate.get("/-/ready").await.status, 503);

    // Connection refused: bind a port, then free it.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/metrics", free.local_addr().unwrap());
    drop(free);
    let gate = Gate::start(config_for(&url), &Config::passthrough()).await;
    let r = gate.get("/metrics").await;
    assert_eq!(r.status, 502);
    assert!(r.text().contains("request failed"), "{}", r.text());

    // A body that is not metrics text.
    let up = Upstream::start(Behave::Plain("ok 1\nthis is { not metrics\n".into())).await;
    let gate = Gate::start(config_for(&up.url()), &Config::passthrough()).await;
    let r = gate.get("/metrics").await;
    assert_eq!(r.status, 502);
    assert!(r.text().contains("line 2"), "{}", r.text());
    let m = gate.get("/-/metrics").await.text();
    assert_eq!(metric_value(&m, "metric_gate_parse_errors_total"), 1.0);
    assert!(m.contains("cause=\"parse\"} 1\n"), "{m}");
}

#[tokio::test]
async fn body_limit_is_an_error_not_an_oom() {
    let big: String = (0..2000).map(|i| format!("m{{i=\"{i}\"}} 1\n")).collect();
    let up = Upstream::start(Behave::Text(big)).await;
    let mut cfg = config_for(&up.url());
    cfg.limits.max_body = 10_000;
    let gate = Gate::start(cfg, &Config::passthrough()).await;
    let r = gate.get("/metrics").await;
    assert_eq!(r.status, 502);
    assert!(
        r.text().contains("larger than the limit of 10000 bytes"),
        "{}",
        r.text()
    );
}

#[tokio::test]
async fn timeouts() {
    let up = Upstream::start(Behave::SlowMidBody(BODY.into(), Duration::from_secs(3))).await;
    let mut cfg = config_for(&up.url());
    cfg.upstream.scrape_timeout = Duration::from_millis(300);
    let gate = Gate::start(cfg, &Config::passthrough()).await;
    let t0 = std::time::Instant::now();
    let r = gate.get("/metrics").await;
    assert_eq!(r.status, 502);
    assert!(r.text().contains("timeout after 300ms"), "{}", r.text());
    assert!(t0.elapsed() < Duration::from_secs(2));

    // Prometheus' header wins when smaller (minus a 10% margin here).
    let up = Upstream::start(Behave::SlowStart(BODY.into(), Duration::from_secs(3))).await;
    let gate = Gate::start(config_for(&up.url()), &Config::passthrough()).await;
    let t0 = std::time::Instant::now();
    let r = get(
        &gate.url("/metrics"),
        &[("X-Prometheus-Scrape-Timeout-Seconds", "0.5")],
    )
    .await;
    assert_eq!(r.status, 502);
    assert!(r.text().contains("timeout after 450ms"), "{}", r.text());
    assert!(t0.elapsed() < Duration::from_secs(2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_scrapes_share_consistent_results() {
    let up = Upstream::start(Behave::Counter(Duration::from_millis(100))).await;
    let gate = Gate::start(config_for(&up.url()), &with_subsets(&["s"])).await;
    let url = gate.url("/metrics");
    let mut tasks = Vec::new();
    for i in 0..50 {
        let url = url.clone();
        let surl = gate.url("/metrics/s");
        tasks.push(tokio::spawn(async move {
            // Stagger a little so some requests join a scrape in flight and others start one.
            tokio::time::sleep(Duration::from_millis((i % 10) * 30)).await;
            let r = get(&url, &[("Accept-Encoding", "gzip")]).await;
            let s = get(&surl, &[]).await;
            (r.status, r.decoded(), s.status, s.text())
        }));
    }
    let mut values = HashSet::new();
    for t in tasks {
        let (status, body, sstatus, stext) = t.await.unwrap();
        assert_eq!(status, 200);
        assert_eq!(sstatus, 200);
        let lines = samples(&body);
        assert_eq!(lines.len(), 1, "{body}");
        let n: usize = lines[0].strip_prefix("counter ").unwrap().parse().unwrap();
        values.insert(n);
        assert_eq!(samples(&stext).len(), 1, "{stext}");
        assert!(
            stext.starts_with("# TYPE counter counter\ncounter "),
            "{stext}"
        );
    }
    let scrapes = up.request_count();
    assert!(scrapes < 50, "{scrapes} upstream requests for 50 scrapes");
    // Every answer is one whole upstream response.
    assert!(values.iter().all(|&n| n >= 1 && n <= scrapes), "{values:?}");
    let m = gate.get("/-/metrics").await.text();
    assert!(
        metric_value(&m, "metric_gate_scrapes_shared_total") >= 1.0,
        "{m}"
    );
}

#[tokio::test]
async fn source_analyze_health_and_self_metrics() {
    let up = Upstream::start(Behave::Text(BODY.into())).await;
    let gate = Gate::start(config_for(&up.url()), &Config::passthrough()).await;
    assert_eq!(gate.get("/-/healthy").await.status, 200);
    assert_eq!(gate.get("/-/ready").await.status, 503);

    // /source passes the body as is, with the upstream's headers; gzip only if asked.
    let r = gate.get("/source").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), BODY);
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let r = get(&gate.url("/source"), &[("Accept-Encoding", "gzip")]).await;
    assert_eq!(r.header("content-encoding"), Some("gzip"));
    assert_eq!(r.decoded(), BODY);
    let r = gate.get("/source?target=10.1.2.3").await;
    assert_eq!(r.status, 400);

    let r = gate.get("/analyze").await;
    assert_eq!(r.status, 200);
    let report = r.text();
    assert!(
        report.starts_with(&format!(
            "total: 4 series, 2 metrics, {} bytes\n",
            BODY.len()
        )),
        "{report}"
    );
    assert!(report.contains("3 http_requests_total\n"), "{report}");
    assert_eq!(gate.get("/-/ready").await.status, 200);

    gate.get("/metrics").await;
    let r = get(
        &gate.url("/-/metrics"),
        &[("accept", "application/openmetrics-text;version=1.0.0")],
    )
    .await;
    assert!(r
        .header("content-type")
        .unwrap()
        .starts_with("application/openmetrics-text"));
    let m = r.text();
    for needle in [
        "metric_gate_http_requests_total{endpoint=\"/metrics\",code=\"200\"} 1",
        "metric_gate_http_requests_total{endpoint=\"/source\",code=\"400\"} 1",
        "metric_gate_upstream_request_duration_seconds_count{target=",
        "metric_gate_series_read_total 4",
        "metric_gate_series_written{subset=\"(default)\"} 4",
        "metric_gate_series_dropped_by_relabel_total{subset=\"(default)\"} 0",
        "# EOF",
    ] {
        assert!(m.contains(needle), "{needle} not in\n{m}");
    }
    assert_eq!(gate.get("/nope").await.status, 404);
}

#[tokio::test]
async fn yaml_subsets_are_served() {
    let up = Upstream::start(Behave::Text(BODY.into())).await;
    let relabel = Config::from_yaml(
        "metric_relabel_configs:\n  - action: labeldrop\n    regex: (path|code)\n\
         temps:\n  - action: keep\n    source_labels: [__name__]\n    regex: temp.*\n",
        "test",
    )
    .unwrap();
    let gate = Gate::start(config_for(&up.url()), &relabel).await;
    let r = gate.get("/metrics").await;
    assert_eq!(
        samples(&r.text()),
        vec!["http_requests_total 9", "temperature 21.5"]
    );
    let t = gate.get("/metrics/temps").await.text();
    assert_eq!(samples(&t).len(), 1, "{t}");
    assert!(
        t.starts_with("# TYPE temperature gauge\ntemperature 21.5 "),
        "{t}"
    );
    let m = gate.get("/-/metrics").await.text();
    assert!(
        m.contains("metric_gate_series_dropped_by_relabel_total{subset=\"temps\"} 3"),
        "{m}"
    );
}

/// The relabel configs shipped in deploy/ load.
#[test]
fn deploy_relabel_configs_load() {
    for (file, subsets) in [
        (
            "deploy/sidecar/metric-gate-config.yaml",
            vec!["process", "requests_by_ingress"],
        ),
        (
            "deploy/aggregator/metric-gate-aggregator.yaml",
            vec!["controller"],
        ),
    ] {
        let text = std::fs::read_to_string(file).unwrap();
        let mut found = false;
        for doc in serde_yaml_ng::Deserializer::from_str(&text) {
            let v: serde_yaml_ng::Value = serde::Deserialize::deserialize(doc).unwrap();
            if let Some(cfg) = v
                .get("data")
                .and_then(|d| d.get("relabel.yaml"))
                .and_then(|c| c.as_str())
            {
                let c = Config::from_yaml(cfg, file).unwrap_or_else(|e| panic!("{file}: {e}"));
                let names: Vec<&str> = c.subsets.iter().map(|(n, _)| n.as_str()).collect();
                assert_eq!(names, subsets, "{file}");
                found = true;
            }
        }
        assert!(found, "{file} has no relabel.yaml");
    }
}

/// A minimal HTTP/1.1 upstream that counts TCP connections and keeps them open.
async fn counting_upstream(body: &'static str) -> (String, Arc<AtomicUsize>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let conns = Arc::new(AtomicUsize::new(0));
    let c = conns.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            c.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    let Ok(n) = sock.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        buf.drain(..end + 4);
                        let resp = format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if sock.write_all(resp.as_bytes()).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    (format!("http://{addr}/metrics"), conns)
}

#[tokio::test]
async fn upstream_connections_are_kept_alive() {
    let (url, conns) = counting_upstream("up 1\n").await;
    let gate = Gate::start(config_for(&url), &Config::passthrough()).await;
    for _ in 0..5 {
        let r = gate.get("/metrics").await;
        assert_eq!(r.text(), "up 1\n");
    }
    assert_eq!(conns.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn openmetrics_upstreams_are_read() {
    let body = "# TYPE req counter\n# HELP req Requests.\nreq_total{code=\"200\"} 3 1700000000.5\nreq_created{code=\"200\"} 1600000000\n# TYPE t gauge\n# UNIT t celsius\nt 21.5\n# EOF\n";
    let up = Upstream::start(Behave::Plain(body.into())).await;
    let gate = Gate::start(config_for(&up.url()), &Config::passthrough()).await;
    let r = gate.get("/metrics").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let t = r.text();
    assert!(
        t.contains("req_total{code=\"200\"} 3 1700000000500\n"),
        "{t}"
    );
    assert!(t.contains("t 21.5\n"), "{t}");
    assert!(!t.contains("EOF"), "{t}");
}

/// Repeat scrapes go through the series cache; series that change value, vanish or appear are
/// answered exactly, and the cache's hits show in the self-metrics.
#[tokio::test]
async fn repeat_scrapes_use_the_series_cache_and_stay_exact() {
    let bodies = vec![
        "# TYPE r counter\nr{code=\"200\",path=\"/a\"} 1\nr{code=\"200\",path=\"/b\"} 2\nr{code=\"500\",path=\"/a\"} 3\n".to_owned(),
        "# TYPE r counter\nr{code=\"200\",path=\"/a\"} 10\nr{code=\"200\",path=\"/b\"} 20\n".to_owned(),
        "# TYPE r counter\nr{code=\"200\",path=\"/b\"} 5\nr{code=\"404\",path=\"/c\"} 7\nr{code=\"500\",path=\"/a\"} 4\n".to_owned(),
    ];
    let up = Upstream::start(Behave::Sequence(bodies)).await;
    let relabel = Config::from_yaml(
        "metric_relabel_configs:\n  - action: labeldrop\n    regex: path\n",
        "test",
    )
    .unwrap();
    let gate = Gate::start(config_for(&up.url()), &relabel).await;
    let expect = [
        vec!["r{code=\"200\"} 3", "r{code=\"500\"} 3"],
        vec!["r{code=\"200\"} 30"],
        // /a left and /b fell from 20 to 5 (a reset): the carried total grows by 5, never
        // falls; 500 has had one input and passes through.
        vec![
            "r{code=\"200\"} 35",
            "r{code=\"404\"} 7",
            "r{code=\"500\"} 4",
        ],
    ];
    for (i, want) in expect.iter().enumerate() {
        let r = gate.get("/metrics").await;
        assert_eq!(r.status, 200);
        let mut got = samples(&r.text());
        got.sort();
        assert_eq!(&got, want, "scrape {i}");
    }
    let m = gate.get("/-/metrics").await.text();
    let hits = metric_value(&m, "metric_gate_series_cache_hits_total");
    // Scrape 2 knows 2 series of scrape 1; scrape 3 knows 2 (/b and 500 /a).
    assert_eq!(hits, 4.0, "{m}");
}

/// True when a missing tool must fail the test instead of skipping it (CI sets these).
fn tools_required() -> bool {
    std::env::var_os("CI").is_some()
        || std::env::var("METRIC_GATE_E2E").is_ok_and(|v| v == "require")
}

/// Runs `cmd` with `input` on stdin; `None` when the program is not installed.
fn run_with_stdin(cmd: &mut std::process::Command, input: &str) -> Option<std::process::Output> {
    use std::io::Write as _;
    use std::process::Stdio;
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    child
        .stdin
        .take()
        .expect("piped stdin")
        .write_all(input.as_bytes())
        .expect("write stdin");
    Some(child.wait_with_output().expect("wait"))
}

/// OpenMetrics parser of Python's `prometheus_client` (the reference implementation's).
const PARSE_OPENMETRICS: &str = "
import sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
names = [f.name for f in text_string_to_metric_families(sys.stdin.read())]
print(len(names))
";

#[tokio::test]
async fn self_metrics_are_negotiated_and_valid_in_both_formats() {
    let up = Upstream::start(Behave::Text(BODY.into())).await;
    let gate = Gate::start(config_for(&up.url()), &with_subsets(&["temps"])).await;
    assert_eq!(gate.get("/metrics").await.status, 200);

    // Without Accept (curl, promtool): text 0.0.4, every family with HELP and TYPE.
    let r = gate.get("/-/metrics").await;
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    assert_eq!(r.header("vary"), Some("Accept"));
    let text = r.text();
    assert!(
        !text.contains("# EOF") && !text.contains("# UNIT"),
        "{text}"
    );
    for line in [
        "# HELP metric_gate_http_requests_total ",
        "# TYPE metric_gate_http_requests_total counter\n",
        "# TYPE metric_gate_upstream_request_duration_seconds histogram\n",
        // Labelled counters exist before their first event.
        "metric_gate_upstream_errors_total{target=",
        "cause=\"timeout\"} 0\n",
        "metric_gate_sample_limit_exceeded_total{subset=\"temps\"} 0\n",
        "metric_gate_http_connections_dropped_total{reason=\"max_connections\"} 0\n",
        "metric_gate_last_successful_scrape_timestamp_seconds{subset=\"(default)\"} ",
        "metric_gate_last_successful_scrape_timestamp_seconds{subset=\"temps\"} ",
        "# TYPE metric_gate_build_info gauge\n",
    ] {
        assert!(text.contains(line), "{line:?} not in\n{text}");
    }
    #[cfg(target_os = "linux")]
    for name in [
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_virtual_memory_bytes",
        "process_open_fds",
        "process_max_fds",
        "process_start_time_seconds",
    ] {
        assert!(
            text.contains(&format!("\n# HELP {name} ")),
            "{name} not in\n{text}"
        );
    }
    // Every sample's family has a HELP line.
    let helped: HashSet<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# HELP "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    for sample in text.lines().filter(|l| !l.starts_with('#')) {
        let name = sample.split(['{', ' ']).next().unwrap();
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|f| helped.contains(f)))
            .unwrap_or(name);
        assert!(helped.contains(family), "no HELP for {name}");
    }
    match run_with_stdin(
        std::process::Command::new("promtool").args(["check", "metrics"]),
        &text,
    ) {
        Some(out) => assert!(
            out.status.success(),
            "promtool check metrics: {}{}\n{text}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
        None if tools_required() => panic!("promtool is not installed"),
        None => eprintln!("promtool not installed: skipping `promtool check metrics`"),
    }

    // Prometheus asks for OpenMetrics first: it gets OpenMetrics.
    let r = get(
        &gate.url("/-/metrics"),
        &[(
            "accept",
            "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
        )],
    )
    .await;
    assert_eq!(
        r.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
    );
    let om = r.text();
    assert!(om.ends_with("# EOF\n"), "{om}");
    let parsed = python_openmetrics("/-/metrics", PARSE_OPENMETRICS, om.as_bytes())
        .unwrap_or_else(|err| panic!("OpenMetrics parser rejected /-/metrics: {err}\n{om}"));
    if let Some(out) = parsed {
        let families: usize = out.trim().parse().unwrap();
        assert_eq!(families, helped.len(), "{om}");
    }
}

/// An upstream text whose summed output is well over the size that is rendered on several
/// threads: three families, `path` summed away two inputs to one.
fn large_body() -> String {
    let mut body = String::new();
    for (family, n) in [
        ("a_requests_total", 30_000),
        ("b_bytes_total", 50_000),
        ("c_up", 3),
    ] {
        body.push_str(&format!(
            "# HELP {family} Help of {family}.\n# TYPE {family} counter\n"
        ));
        for i in 0..n {
            for path in ["/x", "/y"] {
                body.push_str(&format!(
                    "{family}{{ingress=\"ingress-number-{i}\",namespace=\"team-{}\",path=\"{path}\"}} {}\n",
                    i % 17,
                    i * 3 + path.len()
                ));
            }
        }
    }
    body
}

/// A large output is rendered and compressed on several threads, each a share of the series;
/// plain and gzip clients get exactly the text one thread renders (one gzip member).
#[tokio::test]
async fn a_large_output_rendered_on_several_threads_is_the_one_thread_text() {
    let up = Upstream::start(Behave::Plain(large_body())).await;
    let relabel = Config::from_yaml(
        "metric_relabel_configs:\n  - action: labeldrop\n    regex: path\n",
        "test",
    )
    .unwrap();
    let with_threads = |threads| ServerConfig {
        threads,
        ..config_for(&up.url())
    };
    let one = Gate::start(with_threads(1), &relabel).await;
    let want = one.get("/metrics").await.text();
    assert!(
        want.len() > 5 << 20,
        "{} bytes: too small to be split",
        want.len()
    );
    assert_eq!(want.matches("# TYPE").count(), 3);
    assert!(want.contains(
        "\nb_bytes_total{ingress=\"ingress-number-49999\",namespace=\"team-2\"} 299998\n"
    ));
    for threads in [2, 3] {
        // A plain client's scrape keeps text (one thread), a gzip client's keeps gzip.
        let plain_first = Gate::start(with_threads(threads), &relabel).await;
        assert_eq!(
            plain_first.get("/metrics").await.text(),
            want,
            "{threads} threads, text"
        );
        let gzip_first = Gate::start(with_threads(threads), &relabel).await;
        let gz = get(&gzip_first.url("/metrics"), &[("Accept-Encoding", "gzip")]).await;
        assert_eq!(gz.header("content-encoding"), Some("gzip"));
        assert!(
            gz.body.len() < want.len() / 4,
            "compressed: {}",
            gz.body.len()
        );
        assert_eq!(gz.decoded(), want, "{threads} threads, gzip");
    }
}

/// `--upstream.compression`: `auto` asks a loopback upstream for no gzip (its exporter would
/// spend more compressing than loopback saves), `gzip` asks for it, `none` never does; the
/// answer is the same text either way.
#[tokio::test]
async fn upstream_compression_decides_whether_gzip_is_asked() {
    use metric_gate::upstream::Compression;
    let up = Upstream::start(Behave::Text(BODY.into())).await;
    for (mode, asked) in [
        (Compression::Auto, false),
        (Compression::Gzip, true),
        (Compression::None, false),
    ] {
        let mut cfg = config_for(&up.url());
        cfg.upstream.client.compression = mode;
        let gate = Gate::start(cfg, &with_subsets(&[])).await;
        let r = gate.get("/metrics").await;
        assert_eq!(r.status, 200, "{mode:?}");
        assert_eq!(samples(&r.text()), samples(BODY), "{mode:?}");
        let seen = up.seen_headers.lock().unwrap().last().cloned().unwrap();
        let gzip = seen
            .get("accept-encoding")
            .is_some_and(|v| v.to_str().unwrap_or("").contains("gzip"));
        assert_eq!(gzip, asked, "{mode:?}: {seen:?}");
    }
}
