//! Listener limits: slow clients (slowloris) are closed after the header-read timeout without
//! holding up other clients, and connections over `--web.max-connections` are closed at once.

mod http_support;

use std::time::{Duration, Instant};

use metric_gate::relabel::Config;
use metric_gate::server::ListenerConfig;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use http_support::*;

const BODY: &str = "# TYPE up gauge\nup 1\n";

async fn gate(up: &Upstream, max_connections: usize, header_read_timeout: Duration) -> Gate {
    let listener = ListenerConfig {
        web: None,
        max_connections,
        header_read_timeout,
        ..ListenerConfig::default()
    };
    Gate::start_with(config_for(&up.url()), &Config::passthrough(), listener).await
}

/// Waits until the server closes `s` (EOF or reset); gives up after `limit`.
async fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
    let mut buf = [0u8; 1024];
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, s.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            // A response (e.g. hyper's 408) before the close is fine: keep reading.
            Ok(Ok(_)) => continue,
        }
    }
}

fn metric_value(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn slowloris_connections_do_not_block_others_and_are_closed() {
    let up = Upstream::start(Behave::Plain(BODY.into())).await;
    let gate = gate(&up, 512, Duration::from_secs(1)).await;

    // 100 connections that send half a request line and then nothing.
    let mut slow = Vec::new();
    for _ in 0..100 {
        let mut s = TcpStream::connect(gate.addr).await.unwrap();
        s.write_all(b"GET /metrics HT").await.unwrap();
        slow.push(s);
    }
    // A normal client is answered meanwhile (bound far above the expected milliseconds).
    let started = Instant::now();
    let r = tokio::time::timeout(Duration::from_secs(5), gate.get("/metrics"))
        .await
        .expect("a normal client must not wait for the slow ones");
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), BODY);
    assert!(started.elapsed() < Duration::from_secs(5));

    // Each slow connection is closed after the 1 s header-read timeout (allow 10 s).
    for s in &mut slow {
        assert!(
            closed_within(s, Duration::from_secs(10)).await,
            "slow connection still open"
        );
    }
    let m = gate.state.metrics.encode();
    assert!(
        metric_value(
            &m,
            "metric_gate_http_connections_dropped_total{reason=\"header_read_timeout\"}"
        ) >= 100.0,
        "{m}"
    );
}

#[tokio::test]
async fn idle_connections_are_closed_after_the_header_read_timeout() {
    let up = Upstream::start(Behave::Plain(BODY.into())).await;
    let gate = gate(&up, 512, Duration::from_secs(1)).await;

    // Connected, nothing sent.
    let mut silent = TcpStream::connect(gate.addr).await.unwrap();
    // One request on a keep-alive connection, then idle.
    let mut kept = TcpStream::connect(gate.addr).await.unwrap();
    kept.write_all(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = kept.read(&mut buf).await.unwrap();
    assert!(
        String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
    assert!(closed_within(&mut silent, Duration::from_secs(10)).await);
    assert!(closed_within(&mut kept, Duration::from_secs(10)).await);

    // The open-connections gauge comes back to zero once they are gone.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let m = gate.state.metrics.encode();
        if metric_value(&m, "metric_gate_http_connections_open") == 0.0 {
            break;
        }
        assert!(Instant::now() < deadline, "{m}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn connections_over_the_cap_are_closed_at_once() {
    let up = Upstream::start(Behave::Plain(BODY.into())).await;
    // A long header timeout: only the cap acts here.
    let gate = gate(&up, 4, Duration::from_secs(60)).await;

    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(TcpStream::connect(gate.addr).await.unwrap());
    }
    // Let the server accept the four and take their slots.
    let deadline = Instant::now() + Duration::from_secs(5);
    while metric_value(
        &gate.state.metrics.encode(),
        "metric_gate_http_connections_open",
    ) < 4.0
    {
        assert!(
            Instant::now() < deadline,
            "the four connections were not accepted"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // The fifth is accepted by the kernel, then closed by metric-gate without an answer.
    let mut fifth = TcpStream::connect(gate.addr).await.unwrap();
    let _ = fifth
        .write_all(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let mut buf = [0u8; 64];
    let got = tokio::time::timeout(Duration::from_secs(5), fifth.read(&mut buf))
        .await
        .expect("the fifth connection must be closed at once, not left waiting");
    assert!(matches!(got, Ok(0) | Err(_)), "{got:?}");
    let m = gate.state.metrics.encode();
    assert!(
        metric_value(
            &m,
            "metric_gate_http_connections_dropped_total{reason=\"max_connections\"}"
        ) >= 1.0,
        "{m}"
    );

    // Slots free up when the held connections go away.
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut s = TcpStream::connect(gate.addr).await.unwrap();
        let _ = s
            .write_all(b"GET /-/healthy HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await;
        let mut out = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
        if out.starts_with(b"HTTP/1.1 200") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "never served again after the cap"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
