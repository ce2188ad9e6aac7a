//! What the fan-out merge compares and keeps, against upstreams on 127.0.0.2, 127.0.0.3, ...
//! resolved through a DNS server on loopback: relabeling sees `le`/`quantile` as the upstream
//! wrote them in every mode, bounds are compared by value only to merge targets, a bound is
//! written as the targets wrote it unless they disagree; and the exemplar a merged series
//! keeps.

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

use metric_gate::relabel::Config;
use testkit::client::*;
use testkit::dns::DnsServer;
use testkit::gate::*;
use testkit::upstream::*;

fn lo(i: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, i)
}

/// A histogram as Go's client writes its bounds (`1`, not `1.0`), a summary, a gauge.
const GO_STYLE: &str = "\
# HELP rpc_seconds RPC latency.
# TYPE rpc_seconds histogram
rpc_seconds_bucket{le=\"0.5\"} 1
rpc_seconds_bucket{le=\"1\"} 2
rpc_seconds_bucket{le=\"10\"} 3
rpc_seconds_bucket{le=\"+Inf\"} 4
rpc_seconds_sum 7.5
rpc_seconds_count 4
# TYPE gc_seconds summary
gc_seconds{quantile=\"0.5\"} 0.1
gc_seconds{quantile=\"1\"} 0.2
gc_seconds_sum 3
gc_seconds_count 20
# TYPE queue gauge
queue 5
";

/// Drops the buckets `1` and `10` by their text, as Prometheus 2's `metric_relabel_configs`
/// would. (The summary's quantiles are served as the highest input's, so that they exist in
/// both modes: by default a quantile of two inputs is not served.)
const DROP_BY_LE: &str = "
metric_relabel_configs:
  - action: drop
    source_labels: [le]
    regex: '1|10'
aggregation:
  - {match: gc_seconds, op: max}
";

/// Keeps everything.
const KEEP_ALL: &str = "
metric_relabel_configs: []
aggregation:
  - {match: gc_seconds, op: max}
";

/// Series (name and labels) of a body, without metric-gate's per-target health series.
fn series_of(text: &str) -> BTreeSet<String> {
    samples(text)
        .into_iter()
        .filter(|l| !l.starts_with("metric_gate_"))
        .map(|l| l.rsplit_once(' ').map_or(l.clone(), |(s, _)| s.to_owned()))
        .collect()
}

/// A gate on `upstream` resolved by `dns`, with `relabel`.
async fn dns_gate(dns: &DnsServer, upstream: &str, relabel: &Config) -> Gate {
    let mut cfg = config_for(upstream);
    cfg.upstream.dns_server = Some(dns.addr);
    Gate::start(cfg, relabel).await
}

#[tokio::test]
async fn the_same_config_gives_the_same_series_in_static_and_dns_mode() {
    for yaml in [DROP_BY_LE, KEEP_ALL] {
        let relabel = Config::from_yaml(yaml, "test.yaml").unwrap();
        let single = Upstream::start(Behave::Text(GO_STYLE.into())).await;
        let static_gate = Gate::start(config_for(&single.url()), &relabel).await;
        let static_text = static_gate.get("/metrics").await.text();

        let (port, _ups) = upstreams_on_loopbacks(vec![
            Behave::Text(GO_STYLE.into()),
            Behave::Text(GO_STYLE.into()),
        ])
        .await;
        let dns = DnsServer::start();
        dns.set_a("pods.test", &[lo(2), lo(3)]);
        let fan_out = dns_gate(
            &dns,
            &format!("dns+http://pods.test:{port}/metrics"),
            &relabel,
        )
        .await;
        let r = fan_out.get("/metrics").await;
        assert_eq!(r.status, 200, "{}", r.text());
        let fan_out_text = r.text();

        // The same series, spelled as the upstream spells them; only the sums differ.
        assert_eq!(
            series_of(&static_text),
            series_of(&fan_out_text),
            "{yaml}\nstatic:\n{static_text}\ndns+:\n{fan_out_text}"
        );
        let s = samples(&fan_out_text);
        assert!(
            s.contains(&"rpc_seconds_bucket{le=\"0.5\"} 2".to_owned()),
            "{fan_out_text}"
        );
        assert!(
            s.contains(&"rpc_seconds_count 8".to_owned()),
            "{fan_out_text}"
        );
        if yaml == DROP_BY_LE {
            // The rule sees `1` and `10` as written, in both modes: both buckets are gone.
            for text in [&static_text, &fan_out_text] {
                assert!(
                    !text.contains("{le=\"1\"") && !text.contains("{le=\"10\""),
                    "{text}"
                );
                assert!(!text.contains("{le=\"1.0\""), "{text}");
                assert!(text.contains("rpc_seconds_bucket{le=\"+Inf\"}"), "{text}");
                assert!(text.contains("gc_seconds{quantile=\"1\"} 0.2\n"), "{text}");
            }
        } else {
            assert!(
                s.contains(&"rpc_seconds_bucket{le=\"1\"} 4".to_owned()),
                "{fan_out_text}"
            );
            assert!(fan_out_text.contains("gc_seconds_sum 6"), "{fan_out_text}");
        }
        static_gate.stop().await;
        fan_out.stop().await;
    }
}

#[tokio::test]
async fn targets_that_spell_a_bound_differently_are_summed_by_value() {
    // One pod writes Go-style bounds, the other Prometheus 3 style (`1.0`, `10.0`).
    let canonical = GO_STYLE
        .replace("le=\"1\"", "le=\"1.0\"")
        .replace("le=\"10\"", "le=\"10.0\"");
    let (port, _ups) = upstreams_on_loopbacks(vec![
        Behave::Text(GO_STYLE.into()),
        Behave::Text(canonical.clone()),
    ])
    .await;
    let dns = DnsServer::start();
    dns.set_a("mixed.test", &[lo(2), lo(3)]);
    let gate = dns_gate(
        &dns,
        &format!("dns+http://mixed.test:{port}/metrics"),
        &Config::passthrough(),
    )
    .await;
    // Twice: the second scrape goes through the series caches and the counter state, which
    // must see one output per bound whatever its spelling.
    for scrape in 0..2 {
        let r = gate.get("/metrics").await;
        assert_eq!(r.status, 200, "{}", r.text());
        let text = r.text();
        let s = samples(&text);
        for line in [
            // Disagreeing family: one series per bound, in Prometheus 3's form.
            "rpc_seconds_bucket{le=\"0.5\"} 2",
            "rpc_seconds_bucket{le=\"1.0\"} 4",
            "rpc_seconds_bucket{le=\"10.0\"} 6",
            "rpc_seconds_bucket{le=\"+Inf\"} 8",
            "rpc_seconds_count 8",
            "queue 10",
        ] {
            assert!(
                s.contains(&line.to_owned()),
                "scrape {scrape}: {line} not in\n{text}"
            );
        }
        assert!(!text.contains("{le=\"1\""), "{text}");
        assert_eq!(text.matches("rpc_seconds_bucket{").count(), 4, "{text}");
        // The summary family agrees (`0.5`, `1` in both): written as written. Its quantiles
        // have two inputs each, so they are not served; `_sum` and `_count` are.
        assert!(!text.contains("gc_seconds{"), "{text}");
        assert!(s.contains(&"gc_seconds_count 40".to_owned()), "{text}");
    }
    gate.stop().await;
}

/// The same counter and bucket on two OpenMetrics pods, with exemplars of different ages.
fn om_pod(trace: &str, ts: &str) -> String {
    format!(
        "# TYPE jobs counter\njobs_total 1 # {{trace_id=\"{trace}\"}} 1 {ts}\n# TYPE lat histogram\nlat_bucket{{le=\"1\"}} 1 # {{trace_id=\"{trace}\"}} 0.5 {ts}\nlat_bucket{{le=\"+Inf\"}} 1\nlat_sum 0.5\nlat_count 1\n# EOF\n"
    )
}

#[tokio::test]
async fn a_merged_series_keeps_the_newest_exemplar() {
    let (port, _ups) = upstreams_on_loopbacks(vec![
        Behave::OpenMetrics(om_pod("older", "1700000000.5")),
        Behave::OpenMetrics(om_pod("newer", "1700000009")),
        Behave::OpenMetrics(om_pod("oldest", "1600000000")),
    ])
    .await;
    let dns = DnsServer::start();
    dns.set_a("om.test", &[lo(2), lo(3), lo(4)]);
    let relabel = Config::from_yaml("metric_relabel_configs: []\ns: []\n", "test.yaml").unwrap();
    let gate = dns_gate(
        &dns,
        &format!("dns+http://om.test:{port}/metrics"),
        &relabel,
    )
    .await;
    let accept = [("accept", "application/openmetrics-text;version=1.0.0")];
    for path in ["/metrics", "/metrics/s"] {
        let r = get(&gate.url(path), &accept).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let om = r.text();
        // (The subset's samples carry the fetch time; the exemplars keep their own.)
        let line = |start: &str| om.lines().find(|l| l.starts_with(start)).unwrap_or("");
        assert!(
            line("jobs_total 3").ends_with(" # {trace_id=\"newer\"} 1 1700000009"),
            "{om}"
        );
        assert!(
            line("lat_bucket{le=\"1\"} 3").ends_with(" # {trace_id=\"newer\"} 0.5 1700000009"),
            "{om}"
        );
        assert_eq!(om.matches(" # {").count(), 2, "{om}");
        assert!(om.ends_with("# EOF\n"), "{om}");
    }
    gate.stop().await;
}
