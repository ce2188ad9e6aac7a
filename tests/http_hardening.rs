//! Hardening: what one client (or a crowd of them) does must not hurt the others, nor grow
//! memory without bound. Per-request deadlines on shared scrapes, hostile header and parameter
//! values, shared `/analyze` passes and bounded `/source`, `/source`'s header filter, unread
//! responses, per-target self-metrics of vanished targets, the bcrypt queue and the rate limit
//! per user. Everything listens on loopback.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use metric_gate::relabel::Config;
use metric_gate::server::responses::MAX_HELD_RESULTS;
use metric_gate::server::web_config::WebConfigWatcher;
use metric_gate::server::ListenerConfig;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use testkit::client::*;
use testkit::dns::DnsServer;
use testkit::gate::*;
use testkit::upstream::*;

const BODY: &str = "# TYPE up gauge\nup 1\n";

/// Kills the child if the test fails before it exits by itself.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A field of `/proc/<pid>/status` in KiB (`VmRSS`, `VmHWM`).
fn proc_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in {status}"))
}

/// Sends `request` as raw bytes and returns the status code of the answer, or `None` when the
/// connection closed without one.
async fn raw_status(addr: SocketAddr, request: &[u8]) -> Option<u16> {
    let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
    s.write_all(request).await.ok()?;
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    let read = tokio::time::timeout(Duration::from_secs(10), async {
        while !head.windows(2).any(|w| w == b"\r\n") {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => head.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    read.ok()?;
    let line = String::from_utf8_lossy(&head);
    line.split(' ').nth(1)?.parse().ok()
}

/// Item 1: a client that sends a tiny `X-Prometheus-Scrape-Timeout-Seconds` in a loop gets its
/// own 504s, and never fails the normal scrapes that share its scrapes.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_short_client_deadline_never_fails_other_scrapes() {
    let up = Upstream::start(Behave::SlowStart(BODY.into(), Duration::from_millis(400))).await;
    let gate = Gate::start(config_for(&up.url()), &Config::passthrough()).await;
    let url = gate.url("/metrics");
    let stop = Arc::new(AtomicBool::new(false));
    let impatient = {
        let (url, stop) = (url.clone(), Arc::clone(&stop));
        tokio::spawn(async move {
            let mut statuses = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let r = get(&url, &[("X-Prometheus-Scrape-Timeout-Seconds", "0.15")]).await;
                if r.status == 504 {
                    assert!(r.text().contains("no result within"), "{}", r.text());
                }
                statuses.push(r.status);
            }
            statuses
        })
    };
    let mut normal = Vec::new();
    for round in 0..6 {
        let tasks: Vec<_> = (0..3)
            .map(|i| {
                let url = url.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_millis(37 * i + 11 * round)).await;
                    get(&url, &[("X-Prometheus-Scrape-Timeout-Seconds", "10")]).await
                })
            })
            .collect();
        for t in tasks {
            normal.push(t.await.unwrap());
        }
    }
    stop.store(true, Ordering::Relaxed);
    let impatient = impatient.await.unwrap();
    for r in &normal {
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.text(), BODY);
    }
    // Its own answers: 504 when it stopped waiting, 502 when a scrape it started alone timed
    // out at its deadline, 200 when it joined a scrape about to finish.
    assert!(
        impatient.iter().all(|&s| [200, 502, 504].contains(&s)),
        "{impatient:?}"
    );
    assert!(impatient.contains(&504), "{impatient:?}");
    let m = gate.get("/-/metrics").await.text();
    assert!(m.contains("endpoint=\"/metrics\",code=\"504\""), "{m}");
}

/// Item 4: every header and parameter metric-gate reads, with hostile values: no panic, no
/// 500, and the process still serves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_headers_and_parameters_never_panic() {
    let up = Upstream::start(Behave::Text(BODY.into())).await;
    let relabel_yaml = "metric_relabel_configs: []\ns: []\n";
    let dir = tempfile::tempdir().unwrap();
    let relabel_file = dir.path().join("relabel.yaml");
    std::fs::write(&relabel_file, relabel_yaml).unwrap();
    let url = up.url();
    let (child, lines, addr) = spawn_gate_binary(&[
        "--listen-address",
        "127.0.0.1",
        "-p",
        "0",
        "-H",
        &url,
        "--relabel-file",
        relabel_file.to_str().unwrap(),
        "--log-level",
        "debug",
    ]);
    let _child = KillOnDrop(child);
    let addr: SocketAddr = addr.parse().unwrap();

    let long = "9".repeat(10_000);
    let timeouts: Vec<&[u8]> = vec![
        b"1e20",
        b"1e300",
        b"18446744073709551616",
        b"-1",
        b"0",
        b"-0",
        b"NaN",
        b"nan",
        b"inf",
        b"-inf",
        b"+Inf",
        b"1e-300",
        b"0.0000000001",
        b"garbage",
        b"",
        b" 5 ",
        b"0x10",
        b"1_000",
        b"1e",
        b"\xff\xfe",
        long.as_bytes(),
    ];
    let long_accept = format!("text/plain;q=0.5,{}", "x/y;q=1,".repeat(2000));
    let others: Vec<(&str, Vec<u8>)> = vec![
        ("Accept", b"*/*;q=2".to_vec()),
        ("Accept", b";;;,,,q=".to_vec()),
        (
            "Accept",
            b"application/openmetrics-text;version=999;escaping=\xff".to_vec(),
        ),
        ("Accept", long_accept.clone().into_bytes()),
        ("Accept-Encoding", b"gzip;q=NaN".to_vec()),
        ("Accept-Encoding", b"gzip;q=1e400, *;q=-1".to_vec()),
        ("Accept-Encoding", b"\xff\xfe;q=".to_vec()),
        ("Accept-Encoding", long_accept.into_bytes()),
        ("Authorization", b"Basic !!!!".to_vec()),
        ("Authorization", b"Basic bm9jb2xvbg==".to_vec()),
        ("Authorization", b"Basic".to_vec()),
        (
            "Authorization",
            format!("Basic {}", "A".repeat(20_000)).into_bytes(),
        ),
        ("Authorization", b"\xff\xff".to_vec()),
    ];
    let long_name = "a".repeat(8000);
    let paths: Vec<String> = vec![
        "/metrics".into(),
        "/metrics/s".into(),
        "/metrics/..".into(),
        "/metrics/%2e%2e".into(),
        "/metrics/%2e%2e%2f%2e%2e".into(),
        "/metrics/%00".into(),
        "/metrics/%ff".into(),
        "/metrics/%".into(),
        "/metrics/a%2Fb".into(),
        format!("/metrics/{long_name}"),
        "/metrics?%00=%ff".into(),
        "/source?target=%00".into(),
        "/source?target=%ff".into(),
        "/source?target=[".into(),
        "/source?target=[::1]:99999".into(),
        format!("/source?target={long_name}"),
        "/source?target=a&target=b".into(),
        "/analyze?x=%zz&&&=".into(),
        "/-/metrics?%".into(),
        "/%2e%2e/%2e%2e/etc/passwd".into(),
    ];

    let request = |path: &str, headers: &[(&str, &[u8])]| {
        let mut r = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n").into_bytes();
        for (k, v) in headers {
            r.extend_from_slice(k.as_bytes());
            r.extend_from_slice(b": ");
            r.extend_from_slice(v);
            r.extend_from_slice(b"\r\n");
        }
        r.extend_from_slice(b"\r\n");
        r
    };
    let mut answered = 0;
    for path in &paths {
        let mut cases: Vec<Vec<(&str, &[u8])>> = vec![vec![]];
        for t in &timeouts {
            cases.push(vec![("X-Prometheus-Scrape-Timeout-Seconds", t)]);
        }
        for (k, v) in &others {
            cases.push(vec![(k, v.as_slice())]);
        }
        for headers in cases {
            let status = raw_status(addr, &request(path, &headers)).await;
            let shown: Vec<String> = headers
                .iter()
                .map(|(k, v)| format!("{k}: {}", String::from_utf8_lossy(&v[..v.len().min(40)])))
                .collect();
            let status = status.unwrap_or_else(|| {
                panic!(
                    "no answer to GET {} with {shown:?}",
                    &path[..path.len().min(60)]
                )
            });
            assert!(
                status < 500 || status == 502 || status == 503 || status == 504,
                "GET {} with {shown:?}: {status}",
                &path[..path.len().min(60)]
            );
            answered += 1;
        }
    }
    assert!(answered > 600, "{answered}");
    // Still serving.
    let r = get(&format!("http://{addr}/metrics"), &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), BODY);
    let r = get(
        &format!("http://{addr}/metrics"),
        &[("X-Prometheus-Scrape-Timeout-Seconds", "1e20")],
    )
    .await;
    assert_eq!(r.status, 200);
    let logs: Vec<String> = lines.try_iter().collect();
    assert!(
        !logs.iter().any(|l| l.contains("panicked")),
        "{:#?}",
        logs.iter()
            .filter(|l| l.contains("panic"))
            .collect::<Vec<_>>()
    );
    assert!(
        logs.iter()
            .any(|l| l.contains("ignoring an invalid X-Prometheus-Scrape-Timeout-Seconds")),
        "the invalid values are logged at debug level"
    );
}

/// Item 6: concurrent `/analyze` requests share one upstream fetch; `/source` runs at most
/// two at once and refuses the rest at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn analyze_and_source_share_and_bound_upstream_fetches() {
    let up = Upstream::start(Behave::SlowStart(BODY.into(), Duration::from_millis(500))).await;
    let gate = Gate::start(config_for(&up.url()), &Config::passthrough()).await;
    let run = |path: &'static str| {
        let url = gate.url(path);
        (0..20)
            .map(move |_| {
                let url = url.clone();
                tokio::spawn(async move { get(&url, &[]).await })
            })
            .collect::<Vec<_>>()
    };
    let mut reports = Vec::new();
    for t in run("/analyze") {
        let r = t.await.unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        reports.push(r.text());
    }
    assert_eq!(
        up.request_count(),
        1,
        "20 concurrent /analyze, one upstream fetch"
    );
    assert!(reports.iter().all(|r| r == &reports[0]));
    assert!(reports[0].contains("up"), "{}", reports[0]);

    let (mut ok, mut busy) = (0, 0);
    for t in run("/source") {
        let r = t.await.unwrap();
        match r.status {
            200 => {
                assert_eq!(r.text(), BODY);
                ok += 1;
            }
            503 => {
                assert_eq!(r.header("retry-after"), Some("1"));
                assert!(
                    r.text().contains("/source requests are in progress"),
                    "{}",
                    r.text()
                );
                busy += 1;
            }
            s => panic!("{s}: {}", r.text()),
        }
    }
    assert!((1..=2).contains(&ok), "{ok} served");
    assert_eq!(ok + busy, 20);
    assert_eq!(
        up.request_count(),
        1 + ok,
        "one upstream fetch per /source served"
    );
}

/// Item 13: `/source` passes the content headers only, and never an upstream status other
/// than success.
#[tokio::test]
async fn source_passes_content_headers_only_and_no_upstream_status() {
    let up = RawUpstream::start(|mut c| async move {
        let answer: &[u8] = match c.path() {
            "/ok" => b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: 5\r\nSet-Cookie: session=stolen\r\nX-Internal: secret\r\nLocation: /elsewhere\r\nConnection: close\r\n\r\nup 1\n",
            "/switch" => b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
            "/moved" => b"HTTP/1.1 302 Found\r\nLocation: http://evil.test/\r\nContent-Length: 0\r\n\r\n",
            _ => b"HTTP/1.1 404 Not Found\r\nSet-Cookie: a=b\r\nContent-Length: 5\r\n\r\nnope\n",
        };
        let _ = c.write(answer).await;
    })
    .await;
    let gate_for = |path: &str| {
        let url = format!("http://{}{path}", up.addr);
        async move { Gate::start(config_for(&url), &Config::passthrough()).await }
    };

    let gate = gate_for("/ok").await;
    let r = gate.get("/source").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "up 1\n");
    assert_eq!(r.header("content-type"), Some("text/plain; version=0.0.4"));
    assert_eq!(r.header("content-length"), Some("5"));
    for name in ["set-cookie", "x-internal", "location"] {
        assert!(r.header(name).is_none(), "{name} passed: {:?}", r.headers);
    }

    let gate = gate_for("/switch").await;
    let r = gate.get("/source").await;
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(r.text().contains("101 Switching Protocols"), "{}", r.text());
    assert!(r.header("upgrade").is_none());

    let gate = gate_for("/moved").await;
    let r = gate.get("/source").await;
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(r.text().contains("http://evil.test/"), "{}", r.text());
    assert!(r.header("location").is_none());

    let gate = gate_for("/missing").await;
    let r = gate.get("/source").await;
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(r.text().contains("404 Not Found"), "{}", r.text());
    assert!(r.header("set-cookie").is_none());
}

/// Item 9: the per-target series of the self-metrics leave once the target has been gone for
/// the staleness window.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vanished_targets_leave_the_self_metrics_after_the_staleness_window() {
    let (port, _ups) = upstreams_on_loopbacks(vec![Behave::Text(BODY.into())]).await;
    let dns = DnsServer::start();
    let mut cfg = config_for(&format!("dns+http://pods.test:{port}/metrics"));
    cfg.upstream.dns_server = Some(dns.addr);
    cfg.upstream.scrape_timeout = Duration::from_secs(2);
    cfg.staleness_window = Duration::from_millis(1200);
    let gate = Gate::start(cfg, &Config::passthrough()).await;
    let churn = |scrape: u8| -> Vec<Ipv4Addr> {
        // Three new pod IPs per scrape, where nothing listens (connection refused).
        (0..3)
            .map(|k| Ipv4Addr::new(127, 0, 1, 10 + 3 * scrape + k))
            .collect()
    };
    for scrape in 0..10u8 {
        let mut ips = vec![Ipv4Addr::new(127, 0, 0, 2)];
        ips.extend(churn(scrape));
        dns.set_a("pods.test", &ips);
        let r = gate.get("/metrics").await;
        assert_eq!(r.status, 200, "{}", r.text());
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let m = gate.get("/-/metrics").await.text();
    let targets: std::collections::BTreeSet<&str> = m
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split("target=\"").nth(1)?.split('"').next())
        .collect();
    // The stable target, and the churned ones of roughly the last 1.2 s (4-5 scrapes).
    assert!(
        targets.contains(format!("127.0.0.2:{port}").as_str()),
        "{m}"
    );
    assert!(
        targets.len() <= 1 + 3 * 6,
        "{} targets: {targets:?}",
        targets.len()
    );
    for gone in churn(0).iter().chain(&churn(3)) {
        let t = format!("{gone}:{port}");
        assert!(!targets.contains(t.as_str()), "{t} still in\n{m}");
    }
    let last = format!("{}:{port}", churn(9)[0]);
    assert!(targets.contains(last.as_str()), "{m}");
    assert!(
        m.contains(&format!(
            "metric_gate_upstream_errors_total{{target=\"{last}\",cause=\"connect\"}} 1"
        )),
        "{m}"
    );
}

fn web_config(yaml: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("web.yml");
    std::fs::write(&path, yaml).unwrap();
    (dir, path)
}

async fn gate_with_web(up: &Upstream, yaml: &str) -> (Gate, tempfile::TempDir) {
    let (dir, path) = web_config(yaml);
    let listener = ListenerConfig {
        web: Some(Arc::new(WebConfigWatcher::load(&path).unwrap())),
        ..ListenerConfig::default()
    };
    let gate = Gate::start_with(config_for(&up.url()), &Config::passthrough(), listener).await;
    (gate, dir)
}

fn basic(user: &str, password: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    )
}

/// Item 10: a flood of wrong passwords is refused at once beyond the bcrypt queue (503,
/// counted), a repeated wrong password is answered from memory, and a legitimate first login
/// then passes at its first try.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_wrong_password_flood_neither_queues_nor_blocks_a_first_login() {
    let up = Upstream::start(Behave::Plain(BODY.into())).await;
    let hash = bcrypt::hash("right", 8).unwrap();
    let (gate, _dir) = gate_with_web(&up, &format!("basic_auth_users:\n  prom: {hash}\n")).await;
    let url = gate.url("/metrics");
    let flood = |password: &'static str, n: usize| {
        let url = url.clone();
        async move {
            let tasks: Vec<_> = (0..n)
                .map(|i| {
                    let url = url.clone();
                    tokio::spawn(async move {
                        let pw = if password.is_empty() {
                            format!("guess{i}")
                        } else {
                            password.to_owned()
                        };
                        get(&url, &[("authorization", &basic("prom", &pw))]).await
                    })
                })
                .collect();
            let mut statuses = Vec::new();
            for t in tasks {
                let r = t.await.unwrap();
                if r.status == 503 {
                    assert_eq!(r.header("retry-after"), Some("1"));
                }
                statuses.push(r.status);
            }
            statuses
        }
    };
    // Every guess different: each let in costs a bcrypt run, the excess is refused at once.
    let statuses = flood("", 60).await;
    let refused = statuses.iter().filter(|&&s| s == 503).count();
    assert!(
        statuses.iter().all(|&s| s == 401 || s == 503),
        "{statuses:?}"
    );
    assert!(refused > 0, "{statuses:?}");
    let m = gate.state.metrics.encode();
    assert!(
        m.contains(&format!(
            "metric_gate_basic_auth_checks_refused_total {refused}"
        )),
        "{refused} refused; {m}"
    );
    // The same wrong password again and again: checked once, then answered from memory.
    let statuses = flood("wrong", 5).await;
    assert!(
        statuses.iter().all(|&s| s == 401 || s == 503),
        "{statuses:?}"
    );
    let statuses = flood("wrong", 60).await;
    assert!(statuses.iter().all(|&s| s == 401), "{statuses:?}");
    // While that flood goes on, a first login is checked at once.
    let (stop, flooder) = {
        let stop = Arc::new(AtomicBool::new(false));
        let (s, url) = (Arc::clone(&stop), url.clone());
        let flooder = tokio::spawn(async move {
            let mut n = 0;
            while !s.load(Ordering::Relaxed) {
                let r = get(&url, &[("authorization", &basic("prom", "wrong"))]).await;
                assert_eq!(r.status, 401);
                n += 1;
            }
            n
        });
        (stop, flooder)
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    let r = get(&url, &[("authorization", &basic("prom", "right"))]).await;
    assert_eq!(r.status, 200, "{}", r.text());
    stop.store(true, Ordering::Relaxed);
    assert!(flooder.await.unwrap() > 0);
}

/// Item 11: requests without valid credentials take nothing from `rate_limit`; each user has
/// a bucket of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unauthenticated_requests_do_not_use_up_the_rate_limit() {
    let up = Upstream::start(Behave::Plain(BODY.into())).await;
    let hash = bcrypt::hash("pw", 4).unwrap();
    let (gate, _dir) = gate_with_web(
        &up,
        &format!(
            "basic_auth_users:\n  prom: {hash}\n  other: {hash}\nrate_limit:\n  interval: 1h\n  burst: 5\n"
        ),
    )
    .await;
    let url = gate.url("/metrics");
    for _ in 0..50 {
        assert_eq!(get(&url, &[]).await.status, 401);
    }
    for _ in 0..5 {
        let r = get(&url, &[("authorization", &basic("prom", "pw"))]).await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    let r = get(&url, &[("authorization", &basic("prom", "pw"))]).await;
    assert_eq!(r.status, 429, "the user's own burst is spent");
    let r = get(&url, &[("authorization", &basic("other", "pw"))]).await;
    assert_eq!(r.status, 200, "another user has a bucket of its own");
    // Without basic auth, one bucket counts every request, as in the exporter toolkit.
    let (gate, _dir) = gate_with_web(&up, "rate_limit:\n  interval: 1h\n  burst: 2\n").await;
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(gate.get("/metrics").await.status);
    }
    assert_eq!(statuses, vec![200, 200, 429]);
}

/// A body of `bytes` (about) in series with 50 KB label values: big, yet quick to parse in a
/// debug build.
fn big_body(bytes: usize) -> Vec<u8> {
    let value = "v".repeat(50_000);
    let mut out = b"# TYPE big gauge\n".to_vec();
    let mut i = 0;
    while out.len() < bytes {
        out.extend_from_slice(format!("big{{i=\"{i}\",v=\"{value}\"}} {i}\n").as_bytes());
        i += 1;
    }
    out
}

/// A raw GET that is never read, on a socket with a small receive buffer.
async fn unread_get(addr: SocketAddr, path: &str) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut s = socket.connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .unwrap();
    s
}

/// Starts the binary on `up` with `extra` flags; returns it with its address.
fn spawn_on(up: &Upstream, extra: &[&str]) -> (KillOnDrop, u32, SocketAddr) {
    spawn_at(&up.url(), extra)
}

/// Starts the binary on the upstream at `url` with `extra` flags; returns it with its address.
fn spawn_at(url: &str, extra: &[&str]) -> (KillOnDrop, u32, SocketAddr) {
    spawn_at_env(url, extra, &[])
}

/// As [`spawn_at`], with environment variables `env`.
fn spawn_at_env(url: &str, extra: &[&str], env: &[(&str, &str)]) -> (KillOnDrop, u32, SocketAddr) {
    let mut args = vec!["--listen-address", "127.0.0.1", "-p", "0", "-H", url];
    args.extend_from_slice(extra);
    let (child, _lines, addr, _) = testkit::gate::spawn_gate_binary_logged(&args, env);
    let pid = child.id();
    (KillOnDrop(child), pid, addr.parse().unwrap())
}

/// Item 2: clients that never read their responses, arriving over 30 scrapes, hold at most
/// [`MAX_HELD_RESULTS`] scrapes' results (it would be 30 without the bound: one per scrape,
/// each kept until the write timeout), and normal scrapes keep working meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unread_responses_hold_at_most_a_few_scrape_results() {
    let body = big_body(8 << 20);
    let body_kib = body.len() as u64 / 1024;
    let up = Upstream::start(Behave::Prepared {
        plain: body.clone().into(),
        gzip: None,
    })
    .await;
    let (_child, pid, addr) = spawn_on(&up, &[]);
    let base = format!("http://{addr}");
    // Two full scrapes: the engine and its buffers are at their working size.
    for _ in 0..2 {
        let r = get(&format!("{base}/metrics"), &[]).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.body.len(), body.len());
    }
    let baseline = proc_kib(pid, "VmRSS");

    // 30 rounds: 4 clients that never read, then a normal scrape (a new scrape each round).
    let mut unread = Vec::new();
    for _ in 0..30 {
        for _ in 0..4 {
            unread.push(unread_get(addr, "/metrics").await);
        }
        let r = get(&format!("{base}/metrics"), &[]).await;
        assert_eq!(r.status, 200);
        assert_eq!(
            r.body.len(),
            body.len(),
            "a normal scrape reads the whole body"
        );
    }
    let peak = proc_kib(pid, "VmHWM");
    let m = get(&format!("{base}/-/metrics"), &[]).await.text();
    let held = metric_value(&m, "metric_gate_http_response_held_bytes");
    assert!(
        held <= (MAX_HELD_RESULTS * body.len()) as f64,
        "{held}\n{m}"
    );
    assert!(
        metric_value(
            &m,
            "metric_gate_http_connections_dropped_total{reason=\"slow_reader\"}"
        ) >= 60.0,
        "{m}"
    );
    // What the program holds is bounded exactly (above); RSS also carries the allocator's
    // per-thread arenas (measured: about 9 bodies above the baseline with the bound, 30 and
    // more without it).
    let grown = peak.saturating_sub(baseline);
    assert!(
        grown < 16 * body_kib,
        "RSS peak grew by {grown} KiB with 120 unread responses of {body_kib} KiB (baseline {baseline} KiB)\n{m}"
    );
    drop(unread);
}

/// Item 2: `--web.response-write-timeout` closes the connections of clients that do not read,
/// and frees what their responses held.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_write_timeout_closes_unread_responses() {
    let up = Upstream::start(Behave::Prepared {
        plain: big_body(8 << 20).into(),
        gzip: None,
    })
    .await;
    let (_child, _pid, addr) = spawn_on(&up, &["--web.response-write-timeout", "1s"]);
    let base = format!("http://{addr}");
    let mut unread = Vec::new();
    for _ in 0..3 {
        unread.push(unread_get(addr, "/metrics").await);
    }
    // The responses are ready once the scrape is done; a normal scrape waits for that.
    assert_eq!(get(&format!("{base}/metrics"), &[]).await.status, 200);
    let m = get(&format!("{base}/-/metrics"), &[]).await.text();
    assert!(
        metric_value(&m, "metric_gate_http_response_held_bytes") > 0.0,
        "{m}"
    );
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let m = get(&format!("{base}/-/metrics"), &[]).await.text();
    assert_eq!(
        metric_value(&m, "metric_gate_http_response_held_bytes"),
        0.0,
        "{m}"
    );
    assert_eq!(
        metric_value(
            &m,
            "metric_gate_http_connections_dropped_total{reason=\"response_write_timeout\"}"
        ),
        3.0,
        "{m}"
    );
    // The server hung up on them: reading ends early, short of the whole body.
    for mut s in unread {
        let mut got = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut got)).await;
        assert!(got.len() < 8 << 20, "{} bytes", got.len());
    }
}

/// One line of 90,000 labels in decreasing name order (0.99 MB): the worst case of a duplicate
/// check that compares names pairwise (8.3 s in a release build before it became linear).
fn huge_label_line() -> Vec<u8> {
    let mut line = String::from("m{");
    for i in (0..90_000).rev() {
        line.push_str(&format!("l{i:05}=\"v\","));
    }
    line.push_str("} 1\n");
    line.into_bytes()
}

#[tokio::test]
async fn a_huge_label_line_is_answered_within_the_scrape_timeout() {
    let body = huge_label_line();
    assert!(body.len() < 1 << 20);
    let up = RawUpstream::start(move |mut c| {
        let body = body.clone();
        async move {
            let mut r = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\n\r\n",
                body.len()
            )
            .into_bytes();
            r.extend_from_slice(&body);
            let _ = c.write(&r).await;
        }
    })
    .await;
    let timeout = Duration::from_secs(3);
    let mut c = config_for(&up.url());
    c.upstream.scrape_timeout = timeout;
    // Pass-through: the parser counts the labels against --label-limit (256): 502 at once.
    let gate = Gate::start(c.clone(), &Config::passthrough()).await;
    let t0 = std::time::Instant::now();
    let r = gate.get("/metrics").await;
    let took = t0.elapsed();
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(
        r.text().contains("line 1, col 2808: label limit exceeded: series \"m\" has 90001 labels (with __name__) > limit 256 (--label-limit)"),
        "{}",
        r.text()
    );
    assert!(took < timeout, "{took:?}");
    let m = gate.get("/-/metrics").await.text();
    assert!(
        m.lines()
            .any(|l| l.starts_with("metric_gate_upstream_errors_total{")
                && l.contains("cause=\"label_limit\"")
                && l.ends_with(" 1")),
        "{m}"
    );
    // Without a limit, and every label dropped by the relabel config, the whole line goes
    // through the pipeline, still well within the scrape timeout.
    c.limits.labels = metric_gate::limits::LabelLimits::UNLIMITED;
    let relabel = Config::from_yaml(
        "metric_relabel_configs:\n- action: labeldrop\n  regex: l.*\n",
        "test",
    )
    .unwrap();
    let gate = Gate::start(c, &relabel).await;
    let t0 = std::time::Instant::now();
    let r = gate.get("/metrics").await;
    let took = t0.elapsed();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), "m 1\n");
    assert!(took < timeout, "{took:?}");
}

/// An upstream whose every answer is `body(n)` for its n-th request (from 0).
async fn churning_upstream(body: fn(usize) -> String) -> RawUpstream {
    let n = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    RawUpstream::start(move |mut c| {
        let text = body(n.fetch_add(1, Ordering::SeqCst));
        async move {
            let mut r = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                text.len()
            )
            .into_bytes();
            r.extend_from_slice(text.as_bytes());
            let _ = c.write(&r).await;
        }
    })
    .await
}

/// New metric names per scrape in the churn tests.
const CHURN_NAMES: usize = 20_000;

/// Scrapes `base` `n` times, each answered 200.
async fn scrape_times(base: &str, n: usize) {
    for _ in 0..n {
        let r = get(&format!("{base}/metrics"), &[]).await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
}

/// Item 3: `# HELP`/`# TYPE` lines of new names every scrape, for families that get no sample
/// or whose samples the configuration drops, leave nothing behind: RSS stays flat and the
/// self-metrics count one family. (Before: each name made a family that was never evicted,
/// about 250 bytes each, 150 MB over these 30 scrapes.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_of_new_names_every_scrape_leaves_nothing_behind() {
    let up = churning_upstream(|scrape| {
        let mut body = String::with_capacity(CHURN_NAMES * 90);
        for i in 0..CHURN_NAMES {
            body.push_str(&format!(
                "# HELP churn_{scrape}_{i} Help of a name seen once.\n# TYPE churn_{scrape}_{i} counter\n"
            ));
            if i % 10 == 0 {
                // A family the configuration drops.
                body.push_str(&format!("churn_{scrape}_{i} 1\n"));
            }
        }
        body.push_str("# HELP up Up.\n# TYPE up gauge\nup 1\n");
        body
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let relabel = dir.path().join("relabel.yaml");
    std::fs::write(
        &relabel,
        "metric_relabel_configs:\n- action: drop\n  source_labels: [__name__]\n  regex: churn_.*\n",
    )
    .unwrap();
    let (_child, pid, addr) = spawn_at(&up.url(), &["--relabel-file", relabel.to_str().unwrap()]);
    let base = format!("http://{addr}");
    scrape_times(&base, 10).await;
    let before = proc_kib(pid, "VmRSS");
    scrape_times(&base, 30).await;
    let after = proc_kib(pid, "VmRSS");
    let grown = after.saturating_sub(before);
    assert!(
        grown < 24 * 1024,
        "RSS grew by {grown} KiB over 30 scrapes of {CHURN_NAMES} new HELP names each ({before} KiB before)"
    );
    let r = get(&format!("{base}/metrics"), &[]).await;
    assert_eq!(r.text(), "# HELP up Up.\n# TYPE up gauge\nup 1\n");
    let m = get(&format!("{base}/-/metrics"), &[]).await.text();
    assert_eq!(
        metric_value(&m, "metric_gate_aggregate_families{subset=\"(default)\"}"),
        1.0,
        "{m}"
    );
}

/// Item 3: new sample names every scrape (no configuration): families expire with their
/// series, so RSS levels off and the self-metrics show what is held. (Before: every family
/// stayed, about 250 bytes each, 150 MB over these 30 scrapes.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_sample_names_every_scrape_expire_with_their_series() {
    let up = churning_upstream(|scrape| {
        let mut body = String::with_capacity(CHURN_NAMES * 40);
        for i in 0..CHURN_NAMES {
            body.push_str(&format!("churn_{scrape}_{i}{{a=\"x\"}} {i}\n"));
        }
        body
    })
    .await;
    // glibc spreads the store, rebuilt by every compaction on whichever thread runs the
    // scrape, over one heap arena per thread, so RSS creeps up to a plateau well above the
    // working set, and reaches it late. One arena keeps the test about what the program holds.
    let (_child, pid, addr) = spawn_at_env(&up.url(), &[], &[("MALLOC_ARENA_MAX", "1")]);
    let base = format!("http://{addr}");
    // Series idle for 5 scrapes are evicted once they are a quarter of all: after 12 scrapes
    // the store is at its working size.
    scrape_times(&base, 12).await;
    let before = proc_kib(pid, "VmRSS");
    scrape_times(&base, 30).await;
    let after = proc_kib(pid, "VmRSS");
    let grown = after.saturating_sub(before);
    assert!(
        grown < 64 * 1024,
        "RSS grew by {grown} KiB over 30 scrapes of {CHURN_NAMES} new sample names each ({before} KiB before)"
    );
    let m = get(&format!("{base}/-/metrics"), &[]).await.text();
    let families = metric_value(&m, "metric_gate_aggregate_families{subset=\"(default)\"}");
    // At most the scrapes a series may stay idle, and the quarter a compaction waits for.
    assert!(
        families <= (CHURN_NAMES * 9) as f64 && families >= CHURN_NAMES as f64,
        "{families}\n{m}"
    );
    // The store's size shows in the self-metrics (about 450 bytes per series and family).
    let bytes = metric_value(&m, "metric_gate_aggregate_bytes{subset=\"(default)\"}");
    assert!(
        bytes >= families * 100.0 && bytes <= families * 2000.0,
        "{bytes} bytes for {families} families\n{m}"
    );
}
