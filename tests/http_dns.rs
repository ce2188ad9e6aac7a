//! dns+ and dnssrv+ fan-out against upstreams on 127.0.0.2, 127.0.0.3, ... (and ::1) resolved
//! through a DNS server on loopback (`--dns-server`).

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use metric_gate::relabel::{Config, Program};
use metric_gate::upstream::IpFamily;
use testkit::client::*;
use testkit::dns::DnsServer;
use testkit::gate::*;
use testkit::upstream::*;

fn body(value: u32) -> String {
    format!(
        "# HELP reqs Requests.\n# TYPE reqs counter\nreqs{{code=\"200\"}} {value}\nreqs{{code=\"500\"}} 1\n"
    )
}

fn lo(i: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, i)
}

async fn gate_for(dns: &DnsServer, upstream: &str, timeout: Duration) -> Gate {
    let mut cfg = config_for(upstream);
    cfg.upstream.dns_server = Some(dns.addr);
    cfg.upstream.scrape_timeout = timeout;
    let relabel = Config {
        default: Program::default(),
        subsets: vec![("all".into(), Program::default())],
        ..Config::default()
    };
    Gate::start(cfg, &relabel).await
}

#[tokio::test]
async fn fans_out_and_leaves_failed_targets_out_whole() {
    let (port, ups) = upstreams_on_loopbacks(vec![
        Behave::Text(body(10)),
        Behave::Plain(body(20)),
        // Half a body, then too slow: must contribute nothing.
        Behave::SlowMidBody(body(1000), Duration::from_secs(5)),
        // Valid first line, garbage after: must contribute nothing.
        Behave::Plain(format!("{}garbage {{{{\n", body(3000))),
    ])
    .await;
    let dns = DnsServer::start();
    dns.set_a("pods.test", &[lo(2), lo(3), lo(4), lo(5)]);
    let gate = gate_for(
        &dns,
        &format!("dns+http://pods.test:{port}/metrics"),
        Duration::from_millis(700),
    )
    .await;

    let t0 = std::time::Instant::now();
    let r = gate.get("/metrics").await;
    let took = t0.elapsed();
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(took < Duration::from_secs(3), "{took:?}");
    let text = r.text();
    let s = samples(&text);
    assert!(s.contains(&"reqs{code=\"200\"} 30".to_owned()), "{text}");
    assert!(s.contains(&"reqs{code=\"500\"} 2".to_owned()), "{text}");
    for (i, up) in [(2, "1"), (3, "1"), (4, "0"), (5, "0")] {
        let line = format!("metric_gate_upstream_up{{target=\"127.0.0.{i}:{port}\"}} {up}");
        assert!(s.contains(&line), "{line} not in\n{text}");
    }
    assert_eq!(
        text.matches("metric_gate_upstream_scrape_duration_seconds{target=")
            .count(),
        4,
        "{text}"
    );
    // Every target got the original Host header.
    for up in &ups {
        let seen = up.seen_headers.lock().unwrap();
        assert_eq!(
            seen[0].get("host").unwrap().to_str().unwrap(),
            format!("pods.test:{port}")
        );
    }
    // The subset is the same partial sum, without health series.
    let sub = gate.get("/metrics/all").await.text();
    assert!(sub.contains("reqs{code=\"200\"} 30 "), "{sub}");
    assert!(!sub.contains("metric_gate_upstream_up"), "{sub}");

    // /analyze covers the targets together; /source picks one.
    let r = gate.get(&format!("/source?target=127.0.0.3:{port}")).await;
    assert_eq!(r.text(), body(20));
    let r = gate.get("/source?target=127.0.0.2").await;
    assert_eq!(r.text(), body(10));
}

#[tokio::test]
async fn all_targets_failed_is_502_and_health_can_be_turned_off() {
    let (port, _ups) =
        upstreams_on_loopbacks(vec![Behave::Status(503), Behave::Plain("{{{\n".into())]).await;
    let dns = DnsServer::start();
    dns.set_a("bad.test", &[lo(2), lo(3)]);
    let gate = gate_for(
        &dns,
        &format!("dns+http://bad.test:{port}/metrics"),
        Duration::from_secs(2),
    )
    .await;
    let r = gate.get("/metrics").await;
    assert_eq!(r.status, 502);
    let t = r.text();
    assert!(t.contains("all 2 targets failed"), "{t}");
    assert!(
        t.contains(&format!("127.0.0.2:{port}: upstream answered 503")),
        "{t}"
    );
    assert!(
        t.contains(&format!("127.0.0.3:{port}: invalid metrics text")),
        "{t}"
    );

    // Unknown name.
    let gate = gate_for(
        &dns,
        &format!("dns+http://nothing.test:{port}/metrics"),
        Duration::from_secs(2),
    )
    .await;
    let r = gate.get("/metrics").await;
    assert_eq!(r.status, 502);
    assert!(r.text().contains("resolving nothing.test"), "{}", r.text());

    let (port, _ups) = upstreams_on_loopbacks(vec![Behave::Plain(body(1))]).await;
    dns.set_a("one.test", &[lo(2)]);
    let mut cfg = config_for(&format!("dns+http://one.test:{port}/metrics"));
    cfg.upstream.dns_server = Some(dns.addr);
    cfg.target_health = false;
    let gate = Gate::start(cfg, &Config::passthrough()).await;
    let t = gate.get("/metrics").await.text();
    assert!(!t.contains("metric_gate_upstream"), "{t}");
    assert!(t.contains("reqs{code=\"200\"} 1\n"), "{t}");
}

#[tokio::test]
async fn resolves_again_on_every_scrape() {
    let (port, ups) = upstreams_on_loopbacks(vec![
        Behave::Plain(body(1)),
        Behave::Plain(body(2)),
        Behave::Plain(body(4)),
    ])
    .await;
    let dns = DnsServer::start();
    dns.set_a("churn.test", &[lo(2), lo(3)]);
    let gate = gate_for(
        &dns,
        &format!("dns+http://churn.test:{port}/metrics"),
        Duration::from_secs(2),
    )
    .await;
    let t = gate.get("/metrics").await.text();
    assert!(t.contains("reqs{code=\"200\"} 3\n"), "{t}");
    // The DNS answers had a 300 s TTL; the next scrape must still see the change.
    dns.set_a("churn.test", &[lo(3), lo(4)]);
    // 127.0.0.2 left: its last value stays in the summed counter. 127.0.0.4 is a target never
    // seen before, with no process start time: it counts from its second sample, so the total
    // does not jump by its whole history.
    let t = gate.get("/metrics").await.text();
    assert!(t.contains("reqs{code=\"200\"} 3\n"), "{t}");
    assert!(!t.contains(&format!("127.0.0.2:{port}")), "{t}");
    assert_eq!(ups[0].request_count(), 1);
    assert_eq!(ups[2].request_count(), 1);
    let m = gate.get("/-/metrics").await.text();
    // Only the targets of the last resolution keep their caches.
    assert!(m.contains("metric_gate_cached_targets 2\n"), "{m}");
}

#[tokio::test]
async fn dnssrv_gives_hosts_and_ports() {
    let (port, _ups) =
        upstreams_on_loopbacks(vec![Behave::Plain(body(5)), Behave::Text(body(7))]).await;
    let dns = DnsServer::start();
    dns.set_a("a.pods.test", &[lo(2)]);
    dns.set_a("b.pods.test", &[lo(3)]);
    dns.set_srv(
        "_metrics._tcp.pods.test",
        &[("a.pods.test", port), ("b.pods.test", port)],
    );
    let gate = gate_for(
        &dns,
        "dnssrv+http://_metrics._tcp.pods.test/metrics",
        Duration::from_secs(2),
    )
    .await;
    let r = gate.get("/metrics").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let t = r.text();
    assert!(t.contains("reqs{code=\"200\"} 12\n"), "{t}");
    assert!(
        t.contains(&format!(
            "metric_gate_upstream_up{{target=\"127.0.0.3:{port}\"}} 1"
        )),
        "{t}"
    );
    // /analyze covers both targets in one report.
    let report = gate.get("/analyze").await.text();
    assert!(
        report.starts_with(&format!(
            "total: 4 series, 1 metrics, {} bytes\n",
            body(5).len() + body(7).len()
        )),
        "{report}"
    );
}

#[tokio::test]
async fn a_hanging_dns_server_counts_against_the_timeout() {
    let dns = DnsServer::start();
    let gate = gate_for(
        &dns,
        "dns+http://blackhole.test:80/metrics",
        Duration::from_millis(400),
    )
    .await;
    let t0 = std::time::Instant::now();
    let r = gate.get("/metrics").await;
    assert_eq!(r.status, 502);
    assert!(r.text().contains("timeout after 400ms"), "{}", r.text());
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
}

/// One dual-stack "pod": the same exporter on 127.0.0.2 and on ::1, one port.
async fn dual_stack_pod(text: &str) -> (u16, Upstream, Upstream) {
    for _ in 0..20 {
        let v4 =
            Upstream::start_at("127.0.0.2:0".parse().unwrap(), Behave::Plain(text.into())).await;
        let port = v4.addr.port();
        let v6_addr = std::net::SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, port));
        // Probe first: `start_at` panics when the port is taken on ::1.
        if tokio::net::TcpListener::bind(v6_addr).await.is_err() {
            continue;
        }
        let v6 = Upstream::start_at(v6_addr, Behave::Plain(text.into())).await;
        return (port, v4, v6);
    }
    panic!("no port free on both 127.0.0.2 and ::1");
}

async fn gate_with_family(dns: &DnsServer, upstream: &str, family: IpFamily) -> Gate {
    let mut cfg = config_for(upstream);
    cfg.upstream.dns_server = Some(dns.addr);
    cfg.upstream.ip_family = family;
    Gate::start(cfg, &Config::passthrough()).await
}

#[tokio::test]
async fn a_dual_stack_pod_is_scraped_once() {
    let (port, v4, v6) = dual_stack_pod(&body(10)).await;
    let dns = DnsServer::start();
    dns.set_a("pod.test", &[lo(2)]);
    dns.set_aaaa("pod.test", &[Ipv6Addr::LOCALHOST]);
    let url = format!("dns+http://pod.test:{port}/metrics");

    // Default: the IPv4 address only, so the pod counts once.
    let gate = gate_with_family(&dns, &url, IpFamily::default()).await;
    let r = gate.get("/metrics").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let t = r.text();
    assert!(t.contains("reqs{code=\"200\"} 10\n"), "{t}");
    assert_eq!(t.matches("metric_gate_upstream_up{").count(), 1, "{t}");
    assert!(
        t.contains(&format!(
            "metric_gate_upstream_up{{target=\"127.0.0.2:{port}\"}} 1"
        )),
        "{t}"
    );
    assert_eq!((v4.request_count(), v6.request_count()), (1, 0));

    // `both`: every address, so the same pod is summed twice (what --dns.ip-family=both means).
    let gate = gate_with_family(&dns, &url, IpFamily::Both).await;
    let t = gate.get("/metrics").await.text();
    assert!(t.contains("reqs{code=\"200\"} 20\n"), "{t}");
    assert!(
        t.contains(&format!(
            "metric_gate_upstream_up{{target=\"[::1]:{port}\"}} 1"
        )),
        "{t}"
    );
    assert_eq!((v4.request_count(), v6.request_count()), (2, 1));

    // `ipv6`: the AAAA address only.
    let gate = gate_with_family(&dns, &url, IpFamily::Ipv6).await;
    let t = gate.get("/metrics").await.text();
    assert!(t.contains("reqs{code=\"200\"} 10\n"), "{t}");
    assert_eq!((v4.request_count(), v6.request_count()), (2, 2));

    // `auto` on a name with AAAA records only: IPv6.
    dns.set_aaaa("v6only.test", &[Ipv6Addr::LOCALHOST]);
    let gate = gate_with_family(
        &dns,
        &format!("dns+http://v6only.test:{port}/metrics"),
        IpFamily::Auto,
    )
    .await;
    let t = gate.get("/metrics").await.text();
    assert!(t.contains("reqs{code=\"200\"} 10\n"), "{t}");
    assert!(t.contains(&format!("target=\"[::1]:{port}\"")), "{t}");
    assert_eq!((v4.request_count(), v6.request_count()), (2, 3));
}

#[tokio::test]
async fn require_all_answers_502_when_a_target_failed() {
    let (port, _ups) = upstreams_on_loopbacks(vec![
        Behave::Plain(body(1)),
        Behave::Status(503),
        Behave::Plain(body(2)),
    ])
    .await;
    let dns = DnsServer::start();
    dns.set_a("some.test", &[lo(2), lo(3), lo(4)]);
    dns.set_a("good.test", &[lo(2), lo(4)]);
    let gate_for_name = |name: &str, require_all: bool| {
        let mut cfg = config_for(&format!("dns+http://{name}:{port}/metrics"));
        cfg.upstream.dns_server = Some(dns.addr);
        cfg.upstream.require_all = require_all;
        cfg
    };
    let relabel = Config {
        default: Program::default(),
        subsets: vec![("all".into(), Program::default())],
        ..Config::default()
    };

    // Default: the partial sum.
    let gate = Gate::start(gate_for_name("some.test", false), &relabel).await;
    let r = gate.get("/metrics").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("reqs{code=\"200\"} 3\n"), "{}", r.text());

    // --fan-out.require-all: one target failed, so no sum at all.
    let gate = Gate::start(gate_for_name("some.test", true), &relabel).await;
    let r = gate.get("/metrics").await;
    assert_eq!(r.status, 502);
    assert_eq!(
        r.text(),
        format!(
            "upstream dns+http://some.test:{port}/metrics: 1 of 3 targets failed (--fan-out.require-all): 127.0.0.3:{port}: upstream answered 503 Service Unavailable\n"
        )
    );
    // Subsets were not computed from the partial scrape either.
    assert_eq!(gate.get("/metrics/all").await.status, 503);
    assert_eq!(gate.get("/-/ready").await.status, 503);
    let m = gate.get("/-/metrics").await.text();
    assert!(m.contains("metric_gate_upstream_targets_up 2\n"), "{m}");

    // Every target answered: the sum, as without the flag.
    let gate = Gate::start(gate_for_name("good.test", true), &relabel).await;
    let r = gate.get("/metrics").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("reqs{code=\"200\"} 3\n"), "{}", r.text());
    assert!(gate
        .get("/metrics/all")
        .await
        .text()
        .contains("reqs{code=\"200\"} 3 "));
}
