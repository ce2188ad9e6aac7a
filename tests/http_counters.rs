//! Summed counters over several `dns+` targets stay counters: a pod that restarts, leaves the
//! DNS answer, comes back or joins never makes the sum fall, and the sum grows by what the pods
//! really counted (docs/aggregation.md, "Example"). A single input passes through unchanged.

use std::net::Ipv4Addr;
use std::time::{SystemTime, UNIX_EPOCH};

use metric_gate::relabel::Config;
use testkit::dns::DnsServer;
use testkit::gate::*;
use testkit::upstream::*;

fn lo(i: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, i)
}

/// A pod's body: its request counter and its process start time.
fn pod(requests: u32, started: f64) -> String {
    format!(
        "# HELP req_total Requests.\n# TYPE req_total counter\nreq_total{{code=\"200\"}} {requests}\n\
         # TYPE process_start_time_seconds gauge\nprocess_start_time_seconds {started}\n"
    )
}

fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .and_then(|v| v.split(' ').next()?.parse().ok())
}

#[tokio::test]
async fn restarts_departures_and_new_pods_never_lower_the_sum() {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let old = now - 3600.0;
    // One body per request each pod gets. Pod a restarts before its third scrape (t2); pod b
    // is out of the DNS answer at t4; pod c starts before t6.
    let a = [10, 15, 2, 6, 9, 12, 14];
    let a_start = [
        old,
        old,
        now - 5.0,
        now - 5.0,
        now - 5.0,
        now - 5.0,
        now - 5.0,
    ];
    let b = [20, 25, 30, 35, 44, 46];
    let (port, _ups) = upstreams_on_loopbacks(vec![
        Behave::Sequence(a.iter().zip(a_start).map(|(&v, s)| pod(v, s)).collect()),
        Behave::Sequence(b.iter().map(|&v| pod(v, old)).collect()),
        // Pod c's process starts after the t5 scrape (which is sooner than 5 s from now):
        // its first value counts in full.
        Behave::Sequence(vec![pod(3, now + 5.0)]),
    ])
    .await;
    let dns = DnsServer::start();
    let mut cfg = config_for(&format!("dns+http://pods.test:{port}/metrics"));
    cfg.upstream.dns_server = Some(dns.addr);
    cfg.target_health = false;
    let gate = Gate::start(cfg, &Config::passthrough()).await;

    let answers: [&[Ipv4Addr]; 7] = [
        &[lo(2), lo(3)],
        &[lo(2), lo(3)],
        &[lo(2), lo(3)],
        &[lo(2), lo(3)],
        &[lo(2)],
        &[lo(2), lo(3)],
        &[lo(2), lo(3), lo(4)],
    ];
    let plain_sums = [30.0, 40.0, 32.0, 41.0, 9.0, 56.0, 63.0];
    let want = [30.0, 40.0, 47.0, 56.0, 59.0, 71.0, 78.0];
    let mut served = Vec::new();
    for (i, ips) in answers.iter().enumerate() {
        if i == 6 {
            let wait = now + 5.5
                - SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap()
                    .as_secs_f64();
            assert!(wait > 0.0, "t5 was not scraped within 5 s");
            tokio::time::sleep(std::time::Duration::from_secs_f64(wait)).await;
        }
        dns.set_a("pods.test", ips);
        let r = gate.get("/metrics").await;
        assert_eq!(r.status, 200, "scrape t{i}: {}", r.text());
        let t = r.text();
        let v = value(&t, "req_total{code=\"200\"}").unwrap_or_else(|| panic!("t{i}: {t}"));
        served.push(v);
        // The start times are not summed (the 2077 problem): the newest one is served.
        let start = value(&t, "process_start_time_seconds").unwrap();
        assert!(start <= now + 6.0, "t{i}: {t}");
    }
    eprintln!("plain sums {plain_sums:?}, served {served:?}");
    assert_eq!(served, want);
    assert!(served.windows(2).all(|w| w[1] >= w[0]), "{served:?}");
    // The pods' true increase over t0 -> t6: a 5+2+4+3+3+2, b 5+5+5+9+2, c 3.
    assert_eq!(served[6] - served[0], 48.0);

    let m = gate.get("/-/metrics").await.text();
    let per_list = |name: &str| value(&m, &format!("{name}{{subset=\"(default)\"}}"));
    assert!(
        per_list("metric_gate_carry_resets_total") >= Some(1.0),
        "{m}"
    );
    assert!(
        per_list("metric_gate_carry_target_restarts_total") >= Some(1.0),
        "{m}"
    );
    gate.stop().await;
}

/// A sidecar without `labeldrop`: every output has one input, so a restart shows as the same
/// reset Prometheus would see scraping the target directly, and values keep their text.
#[tokio::test]
async fn a_single_input_passes_through() {
    let up = Upstream::start(Behave::Sequence(vec![
        "# TYPE x_total counter\nx_total 1e3\n".to_owned(),
        "# TYPE x_total counter\nx_total 2\n".to_owned(),
    ]))
    .await;
    let gate = Gate::start(config_for(&up.url()), &Config::passthrough()).await;
    assert!(gate.get("/metrics").await.text().contains("x_total 1e3\n"));
    assert!(gate.get("/metrics").await.text().contains("x_total 2\n"));
    gate.stop().await;
}

/// A histogram body with the given bounds and cumulative counts (the last is `+Inf`).
fn histogram(bounds: &[(&str, u32)]) -> String {
    let mut s = String::from("# HELP lat Latency.\n# TYPE lat histogram\n");
    for (le, n) in bounds {
        s.push_str(&format!("lat_bucket{{le=\"{le}\"}} {n}\n"));
    }
    let count = bounds.last().map_or(0, |b| b.1);
    s.push_str(&format!("lat_sum 1.5\nlat_count {count}\n"));
    s
}

/// Pods whose histograms have different bounds: only the bounds every pod has are served (the
/// others would count only some pods' observations), counted in a self-metric. A pod that
/// leaves still counts while its histogram is carried, so the bounds served do not change.
#[tokio::test]
async fn histograms_with_different_bounds_serve_the_common_ones() {
    let (port, _ups) = upstreams_on_loopbacks(vec![
        Behave::Text(histogram(&[("0.1", 1), ("1", 3), ("+Inf", 4)])),
        // Written `1.0`: compared by value across targets.
        Behave::Text(histogram(&[
            ("0.1", 2),
            ("0.5", 5),
            ("1.0", 5),
            ("+Inf", 6),
        ])),
        Behave::Text(histogram(&[("0.1", 0), ("0.5", 1), ("+Inf", 1)])),
    ])
    .await;
    let dns = DnsServer::start();
    let mut cfg = config_for(&format!("dns+http://pods.test:{port}/metrics"));
    cfg.upstream.dns_server = Some(dns.addr);
    cfg.target_health = false;
    let gate = Gate::start(cfg, &Config::passthrough()).await;

    dns.set_a("pods.test", &[lo(2), lo(3)]);
    let t = gate.get("/metrics").await.text();
    let buckets: Vec<&str> = t.lines().filter(|l| l.starts_with("lat_bucket")).collect();
    assert_eq!(
        buckets,
        [
            "lat_bucket{le=\"0.1\"} 3",
            "lat_bucket{le=\"1.0\"} 8",
            "lat_bucket{le=\"+Inf\"} 10"
        ],
        "{t}"
    );
    assert_eq!(value(&t, "lat_count"), Some(10.0));

    // A third pod joins (without a start time, its first sample is not counted: see
    // docs/aggregation.md), without bound `1.0`.
    dns.set_a("pods.test", &[lo(2), lo(3), lo(4)]);
    let t = gate.get("/metrics").await.text();
    let buckets: Vec<&str> = t.lines().filter(|l| l.starts_with("lat_bucket")).collect();
    assert_eq!(
        buckets,
        ["lat_bucket{le=\"0.1\"} 3", "lat_bucket{le=\"+Inf\"} 10"],
        "{t}"
    );

    // Pod 127.0.0.4 leaves: its histogram is carried (within the staleness window), so `1.0`,
    // which it does not have, stays hidden.
    dns.set_a("pods.test", &[lo(2), lo(3)]);
    let t = gate.get("/metrics").await.text();
    let buckets: Vec<&str> = t.lines().filter(|l| l.starts_with("lat_bucket")).collect();
    assert_eq!(
        buckets,
        ["lat_bucket{le=\"0.1\"} 3", "lat_bucket{le=\"+Inf\"} 10"],
        "{t}"
    );

    let m = gate.get("/-/metrics").await.text();
    let dropped = value(
        &m,
        "metric_gate_uncommon_buckets_dropped_total{subset=\"(default)\"}",
    );
    // 0.5 in the first scrape; 0.5 and 1.0 in the second and third.
    assert_eq!(dropped, Some(5.0), "{m}");
    gate.stop().await;
}

/// The metric-gate binary with `--state-file`, killed when dropped.
struct StatefulGate {
    child: Option<std::process::Child>,
    addr: String,
    startup: Vec<String>,
}

impl StatefulGate {
    fn start(upstream: &str, dns: &DnsServer, state_file: &std::path::Path) -> StatefulGate {
        let dns_addr = dns.addr.to_string();
        let state_file = state_file.display().to_string();
        let (child, _rx, addr, startup) = spawn_gate_binary_logged(
            &[
                "--listen-address",
                "127.0.0.1",
                "-p",
                "0",
                "-H",
                upstream,
                "--dns-server",
                &dns_addr,
                "--no-target-health",
                "--state-file",
                &state_file,
            ],
            &[],
        );
        StatefulGate {
            child: Some(child),
            addr,
            startup,
        }
    }

    /// Waits for the warm-up scrape (it reads one body of every pod), then scrapes once.
    async fn scrape_after_warm_up(&self) -> String {
        let ready = format!("http://{}/-/ready", self.addr);
        for _ in 0..100 {
            if testkit::client::get(&ready, &[]).await.status == 200 {
                let r = testkit::client::get(&format!("http://{}/metrics", self.addr), &[]).await;
                assert_eq!(r.status, 200);
                return String::from_utf8(r.body.to_vec()).unwrap();
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("metric-gate never became ready");
    }

    /// SIGTERM (the state is written at shutdown), then the exit, which must be 0.
    fn terminate(&mut self) {
        let mut child = self.child.take().expect("running");
        let ok = std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok);
        assert!(child.wait().unwrap().success());
    }
}

impl Drop for StatefulGate {
    fn drop(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `--state-file`: after a SIGTERM and a restart with the same file, a summed counter that had
/// absorbed a pod's restart continues from its total instead of starting again from the plain
/// sum (which would be a false reset for Prometheus); a file that is not a state file is
/// reported by name and the gate starts from the plain sum.
#[tokio::test]
async fn state_file_keeps_the_totals_across_a_restart() {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    // One body per request; every gate start reads one (its warm-up scrape) before ours.
    let a = [10, 2, 4, 5, 6, 7];
    let a_start = [
        now - 3600.0,
        now - 5.0,
        now - 5.0,
        now - 5.0,
        now - 5.0,
        now - 5.0,
    ];
    let b = [20, 25, 26, 27, 28, 29];
    let (port, _ups) = upstreams_on_loopbacks(vec![
        Behave::Sequence(a.iter().zip(a_start).map(|(&v, s)| pod(v, s)).collect()),
        Behave::Sequence(b.iter().map(|&v| pod(v, now - 3600.0)).collect()),
    ])
    .await;
    let dns = DnsServer::start();
    dns.set_a("pods.test", &[lo(2), lo(3)]);
    let upstream = format!("dns+http://pods.test:{port}/metrics");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("counters.state");
    let req = |t: &str| value(t, "req_total{code=\"200\"}").unwrap_or_else(|| panic!("{t}"));

    // Run 1: warm-up 10 + 20 = 30; then pod a restarts (2): 30 + 2 + 5 = 37 (plain sum 27).
    let mut gate = StatefulGate::start(&upstream, &dns, &file);
    assert!(
        gate.startup
            .iter()
            .any(|l| l.contains("no counter state file yet")),
        "{:?}",
        gate.startup
    );
    assert_eq!(req(&gate.scrape_after_warm_up().await), 37.0);
    gate.terminate();
    assert!(file.exists());

    // Run 2, same file: warm-up (4, 26) adds 2 + 1 = 40; ours (5, 27) 42. Without the file it
    // would serve the plain sums 30 and 32: a fall from 37, a reset for Prometheus.
    let mut gate = StatefulGate::start(&upstream, &dns, &file);
    assert!(
        gate.startup
            .iter()
            .any(|l| l.contains("counter state loaded")),
        "{:?}",
        gate.startup
    );
    assert_eq!(req(&gate.scrape_after_warm_up().await), 42.0);
    gate.terminate();

    // Run 3, a file that is not a state file: a warning naming it, then the plain sum
    // (warm-up 6 + 28, ours 7 + 29 = 36).
    std::fs::write(&file, b"not a state file").unwrap();
    let mut gate = StatefulGate::start(&upstream, &dns, &file);
    assert!(
        gate.startup.iter().any(|l| l.contains("WARN")
            && l.contains("counter state not loaded")
            && l.contains(&file.display().to_string())),
        "{:?}",
        gate.startup
    );
    assert_eq!(req(&gate.scrape_after_warm_up().await), 36.0);
    gate.terminate();
    // The shutdown wrote a valid file again.
    assert!(std::fs::read(&file).unwrap().starts_with(b"MGSTATE\0"));
}
