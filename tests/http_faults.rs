//! Misbehaving upstreams, served byte by byte from raw TCP servers on 127.0.0.1, and the limits
//! of `docs/limits.md`. Every test asserts a bounded end: a 502 whose body names the target and
//! the cause, within a generous time bound, and the `cause` the error counter moved for. Tests
//! that stream far more than a limit also assert bounded memory: the upstream could only write a
//! bounded amount before metric-gate hung up, and the heap of this process (counted by the
//! allocator below) never grew by anything near the size of the input.

mod http_support;

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use http_support::*;
use metric_gate::limits::LabelLimits;
use metric_gate::relabel::Config;
use metric_gate::server::ServerConfig;
use tokio::net::TcpListener;

/// Counts live heap bytes and their peak, process-wide.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                let now = LIVE.fetch_add(new_size - layout.size(), Ordering::Relaxed)
                    + (new_size - layout.size());
                PEAK.fetch_max(now, Ordering::Relaxed);
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Tests that stream a lot take turns, so that each one's heap peak is its own.
static HEAVY: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Heap growth allowed while a test streams 100 MB or more at a limit: the limits in these tests
/// are at most 8 MiB, plus the channel of body frames, socket reads and one decoded gzip piece.
const HEAP_BOUND: usize = 32 << 20;

/// Runs `f` and returns how far the heap peak rose above the live heap at the start.
async fn heap_growth<F: std::future::Future<Output = T>, T>(f: F) -> (T, usize) {
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let out = f.await;
    let grew = PEAK.load(Ordering::Relaxed).saturating_sub(base);
    eprintln!("heap peak grew by {} KiB", grew >> 10);
    (out, grew)
}

/// Upper bound for a scrape to end when the limit in play is about a second: generous, so a busy
/// machine never flakes, and still far below "never".
const BOUND: Duration = Duration::from_secs(15);

fn cfg(url: &str) -> ServerConfig {
    config_for(url)
}

/// `/metrics` once: asserts a 502 within [`BOUND`] whose body names `url` and contains every
/// `needles`; then that the error counter moved for `cause`. Returns the body.
async fn expect_502(gate: &Gate, url: &str, needles: &[&str], cause: &str) -> String {
    let t0 = Instant::now();
    let r = tokio::time::timeout(BOUND, gate.get("/metrics"))
        .await
        .unwrap_or_else(|_| panic!("no answer within {BOUND:?}"));
    let took = t0.elapsed();
    let text = r.text();
    assert_eq!(r.status, 502, "{text}");
    assert!(took < BOUND, "{took:?}");
    assert!(text.contains(url), "502 body does not name {url}: {text}");
    for n in needles {
        assert!(text.contains(n), "{n:?} not in {text:?}");
    }
    let m = gate.get("/-/metrics").await.text();
    let counter = format!("cause=\"{cause}\"");
    assert!(
        m.lines()
            .any(|l| l.starts_with("metric_gate_upstream_errors_total{")
                && l.contains(&counter)
                && l.ends_with(" 1")),
        "no error counted with {counter}:\n{m}"
    );
    text
}

const HEAD_TEXT: &str = "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n";

/// A chunk of chunked transfer encoding.
fn chunk(data: &[u8]) -> Vec<u8> {
    let mut c = format!("{:x}\r\n", data.len()).into_bytes();
    c.extend_from_slice(data);
    c.extend_from_slice(b"\r\n");
    c
}

/// A whole response with `Content-Length`.
fn response(head_extra: &str, body: &[u8]) -> Vec<u8> {
    let mut r = format!(
        "{HEAD_TEXT}{head_extra}Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    r.extend_from_slice(body);
    r
}

#[tokio::test]
async fn slow_trickle_hits_the_scrape_timeout() {
    let up = RawUpstream::start(|mut c| async move {
        let _ = c
            .write(format!("{HEAD_TEXT}Content-Length: 10000\r\n\r\n").as_bytes())
            .await;
        for b in b"m{a=\"1\"} 1\n".iter().cycle() {
            if c.write(&[*b]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    })
    .await;
    let mut c = cfg(&up.url());
    c.upstream.scrape_timeout = Duration::from_secs(1);
    let gate = Gate::start(c, &Config::passthrough()).await;
    expect_502(&gate, &up.url(), &["timeout after 1s"], "timeout").await;
    // A few bytes trickled in before the timeout; nothing reached the client or the readiness.
    assert_eq!(gate.get("/-/ready").await.status, 503);
}

#[tokio::test]
async fn connection_reset_mid_body() {
    let up = RawUpstream::start(|mut c| async move {
        let _ = c
            .write(format!("{HEAD_TEXT}Content-Length: 100000\r\n\r\n").as_bytes())
            .await;
        let _ = c.write(b"m{a=\"1\"} 1\nm{a=\"2\"} 2\n").await;
        tokio::time::sleep(Duration::from_millis(100)).await;
        c.reset();
    })
    .await;
    let gate = Gate::start(cfg(&up.url()), &Config::passthrough()).await;
    expect_502(&gate, &up.url(), &["reading the body"], "body").await;
}

#[tokio::test]
async fn truncated_gzip() {
    let text: String = (0..2000).map(|i| format!("m{{i=\"{i}\"}} {i}\n")).collect();
    let z = gzip(text.as_bytes());
    // The deflate stream and its 8-byte trailer (CRC, size) are cut short; HTTP itself is fine.
    let cut = z[..z.len() - 6].to_vec();
    let up = RawUpstream::start(move |mut c| {
        let cut = cut.clone();
        async move {
            let _ = c.write(&response("Content-Encoding: gzip\r\n", &cut)).await;
        }
    })
    .await;
    let gate = Gate::start(cfg(&up.url()), &Config::passthrough()).await;
    expect_502(&gate, &up.url(), &["decoding the body: gzip"], "decode").await;
}

#[tokio::test]
async fn gzip_bomb_stops_at_the_body_limit() {
    let _heavy = HEAVY.lock().await;
    // One gzip member of 4 MiB of comment lines compresses to a few KiB; the body is that
    // member again and again (gzip allows concatenated members), forever.
    let line = format!("# {}\n", "a".repeat(97));
    let member = {
        use std::io::Write as _;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(line.repeat((4 << 20) / line.len()).as_bytes())
            .unwrap();
        e.finish().unwrap()
    };
    assert!(member.len() < 64 << 10, "{}", member.len());
    let m = member.clone();
    let up = RawUpstream::start(move |mut c| {
        let m = m.clone();
        async move {
            let head =
                format!("{HEAD_TEXT}Content-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n");
            if c.write(head.as_bytes()).await.is_err() {
                return;
            }
            while c.write(&chunk(&m)).await.is_ok() {}
        }
    })
    .await;
    let mut c = cfg(&up.url());
    c.limits.max_body = 8 << 20;
    let gate = Gate::start(c, &Config::passthrough()).await;
    let (_, grew) = heap_growth(expect_502(
        &gate,
        &up.url(),
        &["body larger than the limit of 8388608 bytes (--max-body-size)"],
        "too_large",
    ))
    .await;
    assert!(grew < HEAP_BOUND, "heap grew by {grew} bytes");
    // The bomb stopped being read: far fewer compressed bytes than 1 GiB decoded would need.
    let written = up.written();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after = up.written();
    assert!(after < 64 << 20, "{after}");
    // Nothing more is read once the gate hung up (allow what was in flight).
    assert!(after - written < 8 << 20, "{written} -> {after}");
}

#[tokio::test]
async fn endless_body_stops_at_the_body_limit_or_the_timeout() {
    let _heavy = HEAVY.lock().await;
    // Fast and endless: the body limit.
    let up = RawUpstream::start(|mut c| async move {
        let head = format!("{HEAD_TEXT}Transfer-Encoding: chunked\r\n\r\n");
        if c.write(head.as_bytes()).await.is_err() {
            return;
        }
        let block = chunk(&"m{a=\"1\"} 1\n".repeat(6000).into_bytes());
        while c.write(&block).await.is_ok() {}
    })
    .await;
    let mut c = cfg(&up.url());
    c.limits.max_body = 8 << 20;
    // The body limit must be reached before the scrape timeout, also in a debug build on a
    // busy machine (5 s was not always enough for 8 MiB under a load of 12 on 2 cores).
    c.upstream.scrape_timeout = Duration::from_secs(12);
    let gate = Gate::start(c, &Config::passthrough()).await;
    let (_, grew) = heap_growth(expect_502(
        &gate,
        &up.url(),
        &["body larger than the limit of 8388608 bytes"],
        "too_large",
    ))
    .await;
    assert!(grew < HEAP_BOUND, "heap grew by {grew} bytes");
    assert!(up.written() < 64 << 20, "{}", up.written());

    // Slow and endless: the timeout.
    let up = RawUpstream::start(|mut c| async move {
        let head = format!("{HEAD_TEXT}Transfer-Encoding: chunked\r\n\r\n");
        if c.write(head.as_bytes()).await.is_err() {
            return;
        }
        while c.write(&chunk(b"m{a=\"1\"} 1\n")).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    let mut c = cfg(&up.url());
    c.upstream.scrape_timeout = Duration::from_secs(1);
    let gate = Gate::start(c, &Config::passthrough()).await;
    expect_502(&gate, &up.url(), &["timeout after 1s"], "timeout").await;
}

#[tokio::test]
async fn a_100_mb_line_hits_the_line_limit_without_being_buffered() {
    let _heavy = HEAVY.lock().await;
    const LINE: usize = 100 << 20;
    let up = RawUpstream::start(|mut c| async move {
        let head = format!("{HEAD_TEXT}Content-Length: {}\r\n\r\n", LINE + 1);
        if c.write(head.as_bytes()).await.is_err() {
            return;
        }
        let _ = c.write(b"m{a=\"").await;
        let block = vec![b'x'; 64 << 10];
        let mut sent = 5;
        while sent < LINE {
            if c.write(&block).await.is_err() {
                return;
            }
            sent += block.len();
        }
        let _ = c.write(b"\n").await;
    })
    .await;
    let gate = Gate::start(cfg(&up.url()), &Config::passthrough()).await;
    let (_, grew) = heap_growth(expect_502(
        &gate,
        &up.url(),
        &["line 1, col 1048577: line longer than the limit of 1048576 bytes (--max-line-length)"],
        "line_too_long",
    ))
    .await;
    assert!(grew < HEAP_BOUND, "heap grew by {grew} bytes");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let written = up.written();
    assert!(
        written < (LINE as u64) / 4,
        "{written} bytes of the line were sent"
    );
}

#[tokio::test]
async fn max_line_length_flag_applies_to_upstreams() {
    let body = format!("short 1\nlong{{a=\"{}\"}} 1\n", "x".repeat(200));
    let up = RawUpstream::start(move |mut c| {
        let body = body.clone();
        async move {
            let _ = c.write(&response("", body.as_bytes())).await;
        }
    })
    .await;
    let mut c = cfg(&up.url());
    c.limits.max_line = 100;
    let gate = Gate::start(c, &Config::passthrough()).await;
    expect_502(
        &gate,
        &up.url(),
        &["line 2, col 101: line longer than the limit of 100 bytes (--max-line-length)"],
        "line_too_long",
    )
    .await;
}

/// A raw upstream answering every request with `body` as text 0.0.4.
async fn serving(body: Vec<u8>) -> RawUpstream {
    RawUpstream::start(move |mut c| {
        let body = body.clone();
        async move {
            let _ = c.write(&response("", &body)).await;
        }
    })
    .await
}

#[tokio::test]
async fn invalid_utf8_is_rejected_with_its_position() {
    let up = serving(b"ok 1\nm{a=\"ab\xffc\"} 1\n".to_vec()).await;
    let gate = Gate::start(cfg(&up.url()), &Config::passthrough()).await;
    expect_502(&gate, &up.url(), &["line 2, col 8: invalid UTF-8"], "parse").await;
}

#[tokio::test]
async fn nul_bytes_pass_in_label_values_and_fail_elsewhere() {
    // NUL is valid UTF-8: Prometheus (and promtool) accept it in a label value, so it is kept.
    let up = serving(b"m{a=\"x\x00y\"} 1\n".to_vec()).await;
    let gate = Gate::start(cfg(&up.url()), &Config::passthrough()).await;
    let r = gate.get("/metrics").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(&r.body[..], b"m{a=\"x\x00y\"} 1\n");

    // Outside a quoted string it is a syntax error.
    let up = serving(b"m\x00 1\n".to_vec()).await;
    let gate = Gate::start(cfg(&up.url()), &Config::passthrough()).await;
    expect_502(&gate, &up.url(), &["line 1, col 2"], "parse").await;
}

#[tokio::test]
async fn duplicate_label_names_are_502() {
    let up = serving(b"m{a=\"1\",b=\"2\",a=\"3\"} 1\n".to_vec()).await;
    let gate = Gate::start(cfg(&up.url()), &Config::passthrough()).await;
    expect_502(
        &gate,
        &up.url(),
        &["line 1, col 15: duplicate label name \"a\""],
        "parse",
    )
    .await;
}

#[tokio::test]
async fn error_statuses_are_502() {
    for (status, reason) in [(500, "Internal Server Error"), (404, "Not Found")] {
        let up = RawUpstream::start(move |mut c| async move {
            let _ = c
                .write(
                    format!("HTTP/1.1 {status} {reason}\r\nContent-Length: 5\r\n\r\nnope\n")
                        .as_bytes(),
                )
                .await;
        })
        .await;
        let gate = Gate::start(cfg(&up.url()), &Config::passthrough()).await;
        expect_502(
            &gate,
            &up.url(),
            &[&format!("upstream answered {status} {reason}")],
            "status",
        )
        .await;
    }
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let up = RawUpstream::start(|mut c| async move {
        let answer = if c.path() == "/metrics" {
            "HTTP/1.1 302 Found\r\nLocation: /other\r\nContent-Length: 0\r\n\r\n".to_owned()
        } else {
            String::from_utf8(response("", b"other 1\n")).unwrap()
        };
        let _ = c.write(answer.as_bytes()).await;
    })
    .await;
    let gate = Gate::start(cfg(&up.url()), &Config::passthrough()).await;
    expect_502(
        &gate,
        &up.url(),
        &[
            "upstream answered 302 Found redirecting to \"/other\"",
            "redirects are not followed",
        ],
        "redirect",
    )
    .await;
    assert_eq!(*up.paths.lock().unwrap(), vec!["/metrics".to_owned()]);
}

#[tokio::test]
async fn protobuf_is_refused_with_a_clear_message() {
    let up = RawUpstream::start(|mut c| async move {
        // A length-delimited MetricFamily: binary, not text.
        let body = b"\x1a\n\x04name\x12\x04help\x18\x00\"\x06\x12\x04\x09\x00\x00\x00\x00\x00\x00\xf0?";
        let head = "HTTP/1.1 200 OK\r\nContent-Type: application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited\r\n";
        let mut r = format!("{head}Content-Length: {}\r\n\r\n", body.len()).into_bytes();
        r.extend_from_slice(body);
        let _ = c.write(&r).await;
    })
    .await;
    let gate = Gate::start(cfg(&up.url()), &Config::passthrough()).await;
    expect_502(
        &gate,
        &up.url(),
        &[
            "protobuf exposition format",
            "Accept: text/plain;version=0.0.4",
        ],
        "content_type",
    )
    .await;
}

#[tokio::test]
async fn the_gate_asks_for_text() {
    let up = serving(b"m 1\n".to_vec()).await;
    let seen = up.paths.clone();
    let gate = Gate::start(cfg(&up.url()), &Config::passthrough()).await;
    assert_eq!(gate.get("/metrics").await.status, 200);
    assert_eq!(seen.lock().unwrap().len(), 1);
    // The Accept header is checked in http_proxy.rs; here: no protobuf in it at all.
    let accept = metric_gate::upstream::fetch::ACCEPT_UPSTREAM;
    assert!(accept.starts_with("text/plain;version=0.0.4"), "{accept}");
    assert!(!accept.contains("protobuf"), "{accept}");
}

/// Binds `n` listeners on 127.0.0.2.. with one port.
async fn loopback_listeners(n: usize) -> (u16, Vec<TcpListener>) {
    'retry: for _ in 0..20 {
        let first = TcpListener::bind("127.0.0.2:0").await.expect("bind");
        let port = first.local_addr().unwrap().port();
        let mut ls = vec![first];
        for i in 1..n {
            let ip = Ipv4Addr::new(127, 0, 0, 2 + i as u8);
            match TcpListener::bind(SocketAddr::from((ip, port))).await {
                Ok(l) => ls.push(l),
                Err(_) => continue 'retry,
            }
        }
        return (port, ls);
    }
    panic!("no free port on every loopback address");
}

#[tokio::test]
async fn fan_out_leaves_the_bad_targets_out_and_reports_them() {
    let good = |v: u32| format!("# TYPE reqs counter\nreqs{{code=\"200\"}} {v}\n").into_bytes();
    let (port, mut ls) = loopback_listeners(4).await;
    let bad_line = ls.pop().unwrap();
    let bad_reset = ls.pop().unwrap();
    let good_b = ls.pop().unwrap();
    let good_a = ls.pop().unwrap();
    let serve_body = |body: Vec<u8>| {
        move |mut c: RawConn| {
            let body = body.clone();
            async move {
                let _ = c.write(&response("", &body)).await;
            }
        }
    };
    let _a = RawUpstream::serve_on(good_a, serve_body(good(10)));
    let _b = RawUpstream::serve_on(good_b, serve_body(good(20)));
    // Half a body, then a reset.
    let _r = RawUpstream::serve_on(bad_reset, |mut c| async move {
        let _ = c
            .write(
                format!("{HEAD_TEXT}Content-Length: 1000\r\n\r\nreqs{{code=\"200\"}} 500\n")
                    .as_bytes(),
            )
            .await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        c.reset();
    });
    // A valid line, then an endless one.
    let _l = RawUpstream::serve_on(bad_line, |mut c| async move {
        let head = format!("{HEAD_TEXT}Transfer-Encoding: chunked\r\n\r\n");
        let _ = c.write(head.as_bytes()).await;
        let _ = c
            .write(&chunk(b"reqs{code=\"200\"} 7000\nreqs{code=\""))
            .await;
        let block = chunk(&[b'x'; 64 << 10]);
        while c.write(&block).await.is_ok() {}
    });
    let dns = DnsServer::start().await;
    let ips: Vec<Ipv4Addr> = (2..6).map(|i| Ipv4Addr::new(127, 0, 0, i)).collect();
    dns.set_a("pods.test", &ips);
    let mut c = cfg(&format!("dns+http://pods.test:{port}/metrics"));
    c.upstream.dns_server = Some(dns.addr);
    let gate = Gate::start(c, &Config::passthrough()).await;
    let r = tokio::time::timeout(BOUND, gate.get("/metrics"))
        .await
        .expect("bounded");
    assert_eq!(r.status, 200, "{}", r.text());
    let text = r.text();
    let s = samples(&text);
    assert!(s.contains(&"reqs{code=\"200\"} 30".to_owned()), "{text}");
    for (i, up) in [(2, 1), (3, 1), (4, 0), (5, 0)] {
        let line = format!("metric_gate_upstream_up{{target=\"127.0.0.{i}:{port}\"}} {up}");
        assert!(s.contains(&line), "{line} not in\n{text}");
    }
    let m = gate.get("/-/metrics").await.text();
    for (i, cause) in [(4, "body"), (5, "line_too_long")] {
        let want = format!(
            "metric_gate_upstream_errors_total{{target=\"127.0.0.{i}:{port}\",cause=\"{cause}\"}} 1"
        );
        assert!(m.contains(&want), "{want} not in\n{m}");
    }
}

#[tokio::test]
async fn sample_limit_fails_the_list_that_exceeds_it() {
    let body = "a{x=\"1\"} 1\na{x=\"2\"} 1\na{x=\"3\"} 1\nb 1\n"
        .as_bytes()
        .to_vec();
    let up = serving(body).await;
    let relabel = Config::from_yaml(
        "metric_relabel_configs: []\n\
         small:\n  - action: keep\n    source_labels: [__name__]\n    regex: b\n\
         summed:\n  - action: labeldrop\n    regex: x\n",
        "test",
    )
    .unwrap();
    let mut c = cfg(&up.url());
    c.limits.sample_limit = 2;
    let gate = Gate::start(c, &relabel).await;
    let text = expect_sample_limit(&gate, "/metrics").await;
    assert!(
        text.contains("sample limit exceeded: 4 series > limit 2 (--sample-limit)"),
        "{text}"
    );
    assert!(text.contains(&up.url()), "{text}");
    // Subsets under the limit are served; `summed` has a{} and b: 2 series.
    let r = gate.get("/metrics/small").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = gate.get("/metrics/summed").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let m = gate.get("/-/metrics").await.text();
    assert_eq!(
        metric_value(
            &m,
            "metric_gate_sample_limit_exceeded_total{subset=\"(default)\"}"
        ),
        1.0
    );
    // The lists under the limit have their counter too, at 0.
    assert_eq!(
        metric_value(
            &m,
            "metric_gate_sample_limit_exceeded_total{subset=\"small\"}"
        ),
        0.0
    );

    // A subset over the limit answers 502 on its own path, from the last scrape.
    let relabel = Config::from_yaml(
        "metric_relabel_configs:\n- action: labeldrop\n  regex: x\nall: []\n",
        "test",
    )
    .unwrap();
    let mut c = cfg(&up.url());
    c.limits.sample_limit = 3;
    let gate = Gate::start(c, &relabel).await;
    assert_eq!(gate.get("/metrics").await.status, 200);
    let text = expect_sample_limit(&gate, "/metrics/all").await;
    assert!(text.contains("subset \"all\""), "{text}");
    assert!(text.contains("4 series > limit 3"), "{text}");
}

async fn expect_sample_limit(gate: &Gate, path: &str) -> String {
    let r = gate.get(path).await;
    assert_eq!(r.status, 502, "{}", r.text());
    r.text()
}

#[tokio::test]
async fn label_limits_apply_after_relabeling() {
    let labels: String = (0..10).map(|i| format!("l{i}=\"v\",")).collect();
    let body = format!("wide{{{labels}}} 1\n").into_bytes();
    let up = serving(body).await;
    let mut c = cfg(&up.url());
    c.limits.labels = LabelLimits {
        labels: 5,
        ..LabelLimits::DEFAULT
    };
    let gate = Gate::start(c.clone(), &Config::passthrough()).await;
    expect_502(
        &gate,
        &up.url(),
        &["line 1: label limit exceeded: series \"wide\" has 11 labels (with __name__) > limit 5 (--label-limit)"],
        "label_limit",
    )
    .await;
    // Relabeled down to 4 labels, the same series passes: the limit is on the output.
    let relabel = Config::from_yaml(
        "metric_relabel_configs:\n- action: labeldrop\n  regex: l[0-6]\n",
        "test",
    )
    .unwrap();
    let gate = Gate::start(c, &relabel).await;
    let r = gate.get("/metrics").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), "wide{l7=\"v\",l8=\"v\",l9=\"v\"} 1\n");
}

#[tokio::test]
async fn label_length_limits_over_http() {
    let body = format!("m{{a=\"{}\"}} 1\n", "v".repeat(100)).into_bytes();
    let up = serving(body).await;
    let mut c = cfg(&up.url());
    c.limits.labels = LabelLimits {
        value_length: 64,
        ..LabelLimits::DEFAULT
    };
    let gate = Gate::start(c, &Config::passthrough()).await;
    expect_502(
        &gate,
        &up.url(),
        &["value of label \"a\" is 100 bytes > limit 64 (--label-value-length-limit)"],
        "label_value_length_limit",
    )
    .await;

    let body = format!("m{{{}=\"v\"}} 1\n", "n".repeat(100)).into_bytes();
    let up = serving(body).await;
    let mut c = cfg(&up.url());
    c.limits.labels = LabelLimits {
        name_length: 64,
        ..LabelLimits::DEFAULT
    };
    let gate = Gate::start(c, &Config::passthrough()).await;
    expect_502(
        &gate,
        &up.url(),
        &["is 100 bytes > limit 64 (--label-name-length-limit)"],
        "label_name_length_limit",
    )
    .await;
}

#[tokio::test]
async fn limit_errors_are_logged_by_the_binary() {
    let labels: String = (0..10).map(|i| format!("l{i}=\"v\",")).collect();
    let up = serving(format!("wide{{{labels}}} 1\n").into_bytes()).await;
    let url = up.url();
    let (mut child, lines, addr) = spawn_gate_binary(&[
        "--listen-address",
        "127.0.0.1",
        "-p",
        "0",
        "-H",
        &url,
        "--label-limit",
        "5",
    ]);
    let r = get(&format!("http://{addr}/metrics"), &[]).await;
    assert_eq!(r.status, 502, "{}", r.text());
    let mut logged = Vec::new();
    let found = loop {
        match lines.recv_timeout(Duration::from_secs(10)) {
            Ok(l) if l.contains("target failed") && l.contains("cause=\"label_limit\"") => {
                break Some(l)
            }
            Ok(l) => logged.push(l),
            Err(_) => break None,
        }
    };
    let _ = child.kill();
    let _ = child.wait();
    let line = found.unwrap_or_else(|| panic!("no log line of the limit in {logged:#?}"));
    assert!(line.contains("label limit exceeded"), "{line}");
    assert!(line.contains(&up.addr.to_string()), "{line}");
}

#[tokio::test]
async fn unknown_content_encoding_is_502() {
    let up = RawUpstream::start(|mut c| async move {
        let _ = c
            .write(&response(
                "Content-Encoding: br\r\n",
                b"\x0b\x01\x80m 1\n\x03",
            ))
            .await;
    })
    .await;
    let gate = Gate::start(cfg(&up.url()), &Config::passthrough()).await;
    expect_502(
        &gate,
        &up.url(),
        &["decoding the body: unsupported Content-Encoding \"br\""],
        "decode",
    )
    .await;
}

#[tokio::test]
async fn an_html_page_says_the_path_is_wrong() {
    // `-H host:port` without `/metrics`: many exporters answer their landing page.
    let up = RawUpstream::start(|mut c| async move {
        let page = b"<html><body><a href=\"/metrics\">Metrics</a></body></html>\n";
        let head = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\r\n",
            page.len()
        );
        let _ = c.write(head.as_bytes()).await;
        let _ = c.write(page).await;
    })
    .await;
    let gate = Gate::start(cfg(&up.url()), &Config::passthrough()).await;
    let text = expect_502(
        &gate,
        &up.url(),
        &["upstream answered text/html: is the path /metrics?"],
        "content_type",
    )
    .await;
    assert!(!text.contains("expected"), "{text}");
}
