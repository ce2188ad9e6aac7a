//! Format and escaping negotiation of `/metrics` and `/metrics/{subset}`: the exact `Accept`
//! headers of Prometheus 2.42 and Prometheus 3 (with and without `escaping=`), the
//! `Content-Type` of each answer, names escaped for clients that cannot read UTF-8 names, and
//! series that escaping makes one summed and counted.

use std::collections::BTreeSet;

use metric_gate::relabel::Config;
use testkit::client::*;
use testkit::e2e::{promtool_check_if_installed, python_openmetrics};
use testkit::gate::*;
use testkit::upstream::*;

/// Prometheus 2.42's `Accept`.
const PROMETHEUS_2_42: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
/// Prometheus 3's `Accept` with its default scrape protocols and UTF-8 names.
const PROMETHEUS_3: &str = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
/// Prometheus 3 with `metric_name_escaping_scheme: underscores`.
const PROMETHEUS_3_UNDERSCORES: &str = "application/openmetrics-text;version=1.0.0;escaping=underscores;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=underscores;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
/// Prometheus 3 with `scrape_protocols: [PrometheusText0.0.4]`: no `escaping=`.
const PROMETHEUS_3_TEXT_004: &str = "text/plain;version=0.0.4;q=0.6,*/*;q=0.5";

/// A text 0.0.4 upstream whose names are all legacy.
const LEGACY: &str = "\
# HELP http_requests_total Requests.
# TYPE http_requests_total counter
http_requests_total{code=\"200\"} 3
http_requests_total{code=\"500\"} 1
# TYPE temperature gauge
temperature 21.5
";

/// A text upstream (Prometheus 3's quoted form) with a UTF-8 metric name that escapes to a
/// name the upstream also has.
const UTF8: &str = "\
# HELP \"rpc.calls\" Calls.
# TYPE \"rpc.calls\" counter
{\"rpc.calls\",method=\"get\"} 2
# TYPE rpc_calls counter
rpc_calls{method=\"get\"} 5
rpc_calls{method=\"put\"} 1
";

/// Adds `utf-8.label="x"` to every series, in the default list and in subset `s`.
const ADD_UTF8_LABEL: &str = "
metric_relabel_configs:
  - target_label: utf-8.label
    replacement: x
s:
  - target_label: utf-8.label
    replacement: x
";

async fn get_with(gate: &Gate, path: &str, accept: Option<&str>) -> Resp {
    let headers: Vec<(&str, &str)> = accept.map(|a| ("accept", a)).into_iter().collect();
    get(&gate.url(path), &headers).await
}

fn series_set(text: &str) -> BTreeSet<String> {
    samples(text).into_iter().collect()
}

#[tokio::test]
async fn legacy_names_are_served_as_is_to_every_prometheus() {
    let up = Upstream::start(Behave::Text(LEGACY.into())).await;
    let gate = Gate::start(config_for(&up.url()), &Config::passthrough()).await;
    let plain = get_with(&gate, "/metrics", None).await;
    assert_eq!(plain.status, 200);
    for (accept, content_type) in [
        (
            PROMETHEUS_2_42,
            "text/plain; version=0.0.4; charset=utf-8; escaping=underscores",
        ),
        (
            PROMETHEUS_3,
            "text/plain; version=1.0.0; charset=utf-8; escaping=allow-utf-8",
        ),
        (
            PROMETHEUS_3_UNDERSCORES,
            "text/plain; version=1.0.0; charset=utf-8; escaping=underscores",
        ),
        (
            PROMETHEUS_3_TEXT_004,
            "text/plain; version=0.0.4; charset=utf-8; escaping=underscores",
        ),
    ] {
        let r = get_with(&gate, "/metrics", Some(accept)).await;
        assert_eq!(r.status, 200, "{accept}");
        assert_eq!(r.header("content-type"), Some(content_type), "{accept}");
        assert_eq!(r.header("vary"), Some("Accept, Accept-Encoding"));
        // A 0.0.4 upstream is answered in its own format, never OpenMetrics: the same series
        // as the upstream (no `_created`, no renamed counters), the same bytes for everyone.
        assert_eq!(r.text(), plain.text(), "{accept}");
        assert_eq!(series_set(&r.text()), series_set(LEGACY), "{accept}");
        assert!(!r.text().contains("# EOF"), "{accept}");
    }
    promtool_check_if_installed("text 0.0.4 for Prometheus 2.42", &plain.text());
    gate.stop().await;
}

#[tokio::test]
async fn utf8_names_are_escaped_for_clients_that_need_it() {
    let up = Upstream::start(Behave::Text(UTF8.into())).await;
    let relabel = Config::from_yaml(ADD_UTF8_LABEL, "test.yaml").unwrap();
    let gate = Gate::start(config_for(&up.url()), &relabel).await;

    // Prometheus 3 reads UTF-8 names: it gets them quoted, in text 1.0.0.
    let r = get_with(&gate, "/metrics", Some(PROMETHEUS_3)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=1.0.0; charset=utf-8; escaping=allow-utf-8")
    );
    let utf8 = r.text();
    for line in [
        "# HELP \"rpc.calls\" Calls.\n",
        "{\"rpc.calls\",method=\"get\",\"utf-8.label\"=\"x\"} 2\n",
        "rpc_calls{method=\"get\",\"utf-8.label\"=\"x\"} 5\n",
    ] {
        assert!(utf8.contains(line), "{line:?} not in\n{utf8}");
    }

    // Prometheus 2.42 names no scheme: underscores. `rpc.calls` becomes `rpc_calls`, which the
    // upstream has too: the two series are summed, and the families joined.
    let r = get_with(&gate, "/metrics", Some(PROMETHEUS_2_42)).await;
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8; escaping=underscores")
    );
    let want = "\
# HELP rpc_calls Calls.
# TYPE rpc_calls counter
rpc_calls{method=\"get\",utf_8_label=\"x\"} 7
rpc_calls{method=\"put\",utf_8_label=\"x\"} 1
";
    assert!(r.text().starts_with(want), "{}", r.text());
    assert!(!r.text().contains("{\"") && !r.text().contains(",\""));
    promtool_check_if_installed("the answer", &r.text());
    // The same, gzip-compressed.
    let z = get(
        &gate.url("/metrics"),
        &[("accept", PROMETHEUS_2_42), ("accept-encoding", "gzip")],
    )
    .await;
    assert_eq!(z.header("content-encoding"), Some("gzip"));
    assert_eq!(z.decoded(), r.text());

    // Prometheus 3 asking for underscores gets them, in text 1.0.0.
    let r = get_with(&gate, "/metrics", Some(PROMETHEUS_3_UNDERSCORES)).await;
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=1.0.0; charset=utf-8; escaping=underscores")
    );
    assert!(r.text().starts_with(want), "{}", r.text());

    // The other schemes.
    let r = get_with(
        &gate,
        "/metrics",
        Some("text/plain;version=1.0.0;escaping=dots"),
    )
    .await;
    assert_eq!(
        r.header("content-type"),
        Some("text/plain; version=1.0.0; charset=utf-8; escaping=dots")
    );
    assert!(
        r.text()
            .contains("rpc_dot_calls{method=\"get\",utf__8_dot_label=\"x\"} 2\n"),
        "{}",
        r.text()
    );
    let r = get_with(
        &gate,
        "/metrics",
        Some("text/plain;version=0.0.4;escaping=values"),
    )
    .await;
    assert!(
        r.text()
            .contains("U__rpc_2e_calls{U__utf_2d_8_2e_label=\"x\",method=\"get\"} 2\n"),
        "{}",
        r.text()
    );

    // Subsets are escaped too, and keep the upstream fetch time on every sample.
    let r = get_with(&gate, "/metrics/s", Some(PROMETHEUS_2_42)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let line = r
        .text()
        .lines()
        .find(|l| l.starts_with("rpc_calls{method=\"get\""))
        .unwrap_or_default()
        .to_owned();
    let fields: Vec<&str> = line.split(' ').collect();
    assert_eq!(fields.len(), 3, "{line}");
    assert_eq!(
        fields[..2],
        ["rpc_calls{method=\"get\",utf_8_label=\"x\"}", "7"]
    );
    assert!(
        fields[2].parse::<i64>().unwrap() > 1_600_000_000_000,
        "{line}"
    );

    // A merge is counted once per scrape result and scheme: each /metrics request above was a
    // scrape of its own (three under underscores), and /metrics/s served the last one's subset.
    let m = gate.get("/-/metrics").await.text();
    assert_eq!(
        metric_value(
            &m,
            "metric_gate_escaping_merged_series_total{escaping=\"underscores\"}"
        ),
        4.0,
        "{m}"
    );
    assert_eq!(
        metric_value(
            &m,
            "metric_gate_escaping_merged_series_total{escaping=\"dots\"}"
        ),
        0.0
    );
    gate.stop().await;
}

#[tokio::test]
async fn clients_without_a_format_of_ours_get_text_0_0_4() {
    let up = Upstream::start(Behave::Text(UTF8.into())).await;
    let gate = Gate::start(config_for(&up.url()), &Config::passthrough()).await;
    for accept in [
        "application/openmetrics-text;version=2.0.0",
        "application/json",
        "*/*;q=2",
        ";;;,",
    ] {
        let r = get_with(&gate, "/metrics", Some(accept)).await;
        assert_eq!(r.status, 200, "{accept}");
        assert_eq!(
            r.header("content-type"),
            Some("text/plain; version=0.0.4; charset=utf-8; escaping=underscores"),
            "{accept}"
        );
        assert!(
            r.text().contains("rpc_calls{method=\"get\"} 7\n"),
            "{accept}"
        );
    }
    gate.stop().await;
}

/// An OpenMetrics upstream: a counter with `# UNIT` and `_created`, an exemplar, `info`,
/// `stateset`, and a UTF-8 name.
const OPENMETRICS: &str = "\
# HELP rpc_seconds Time \\\"spent\\\".
# TYPE rpc_seconds counter
# UNIT rpc_seconds seconds
rpc_seconds_total{a=\"1\"} 2 1700000000.5 # {trace_id=\"x\"} 1
rpc_seconds_created{a=\"1\"} 1700000000 1700000000.5
# HELP build Build.
# TYPE build info
build_info{v=\"1\"} 1
# TYPE s stateset
s{s=\"a\"} 1
s{s=\"b\"} 0
# TYPE \"http.requests\" counter
{\"http.requests_total\",code=\"200\"} 3
# EOF
";

/// Python `prometheus_client`'s OpenMetrics parser (the reference implementation's) accepts
/// `text`; returns the sample names it read. Skipped (None) without python3 or the module.
fn python_openmetrics_samples(text: &str) -> Option<BTreeSet<String>> {
    const SCRIPT: &str = "
import sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
for f in text_string_to_metric_families(sys.stdin.read()):
    for s in f.samples:
        print(s.name)
";
    let out =
        python_openmetrics("OpenMetrics parse", SCRIPT, text.as_bytes()).unwrap_or_else(|err| {
            panic!(
                "OpenMetrics parser: {err}
{text}"
            )
        })?;
    Some(out.lines().map(str::to_owned).collect())
}

fn names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split(['{', ' ']).next().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn an_openmetrics_upstream_reaches_openmetrics_clients_whole() {
    let up = Upstream::start(Behave::OpenMetrics(OPENMETRICS.into())).await;
    let gate = Gate::start(config_for(&up.url()), &with_subset_s()).await;

    // Prometheus 2.42 asks OpenMetrics first: it gets the upstream's OpenMetrics, names
    // escaped with underscores, `# UNIT`, `_created`, `info`, `stateset`, the exemplar and
    // `# EOF` intact.
    let r = get_with(&gate, "/metrics", Some(PROMETHEUS_2_42)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=underscores")
    );
    let om = r.text();
    assert_eq!(
        om,
        "\
# HELP rpc_seconds Time \\\"spent\\\".
# TYPE rpc_seconds counter
# UNIT rpc_seconds seconds
rpc_seconds_total{a=\"1\"} 2 1700000000.5 # {trace_id=\"x\"} 1
rpc_seconds_created{a=\"1\"} 1700000000 1700000000.5
# HELP build Build.
# TYPE build info
build_info{v=\"1\"} 1
# TYPE s stateset
s{s=\"a\"} 1
s{s=\"b\"} 0
# TYPE http_requests counter
http_requests_total{code=\"200\"} 3
# EOF
"
    );
    if let Some(read) = python_openmetrics_samples(&om) {
        assert_eq!(read, names(&om));
    }

    // Prometheus 3 reads UTF-8 names: the upstream's text.
    let r = get_with(&gate, "/metrics", Some(PROMETHEUS_3)).await;
    assert_eq!(
        r.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=allow-utf-8")
    );
    assert_eq!(r.text(), OPENMETRICS);

    // A client that does not accept OpenMetrics gets text with the same series: `_created`
    // stays a series, `info` and `stateset` are untyped, timestamps are milliseconds.
    for accept in [None, Some(PROMETHEUS_3_TEXT_004)] {
        let r = get_with(&gate, "/metrics", accept).await;
        assert_eq!(
            r.header("content-type"),
            Some("text/plain; version=0.0.4; charset=utf-8; escaping=underscores")
        );
        let text = r.text();
        assert_eq!(names(&text), names(&om), "{text}");
        assert!(
            text.contains("rpc_seconds_total{a=\"1\"} 2 1700000000500\n"),
            "{text}"
        );
        assert!(text.contains("# TYPE build untyped\n"), "{text}");
        assert!(
            !text.contains("# EOF") && !text.contains("# UNIT"),
            "{text}"
        );
        promtool_check_if_installed("the escaped answer", &text);
    }

    // Subsets keep their timestamps, in seconds.
    let r = get_with(&gate, "/metrics/s", Some(PROMETHEUS_2_42)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let om = r.text();
    assert!(
        om.contains("rpc_seconds_total{a=\"1\"} 2 1700000000.5 # {trace_id=\"x\"} 1\n"),
        "{om}"
    );
    let line = om.lines().find(|l| l.starts_with("build_info")).unwrap();
    let ts: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(ts > 1.6e9 && ts < 1e11, "{line}");
    assert!(om.ends_with("# EOF\n"), "{om}");
    if let Some(read) = python_openmetrics_samples(&om) {
        assert_eq!(read, names(&om));
    }
    gate.stop().await;
}

/// An OpenMetrics upstream with exemplars on a histogram's buckets and a counter, as the Go and
/// Python clients write them (one with a timestamp, one with two labels).
const EXEMPLARS: &str = "\
# HELP request_seconds Request latency.
# TYPE request_seconds histogram
# UNIT request_seconds seconds
request_seconds_bucket{le=\"0.1\",path=\"/a\"} 3 # {trace_id=\"4bf92f3577b34da6\"} 0.043 1700000000.123
request_seconds_bucket{le=\"1.0\",path=\"/a\"} 5 # {trace_id=\"00f067aa0ba902b7\",span=\"7\"} 0.5
request_seconds_bucket{le=\"+Inf\",path=\"/a\"} 6
request_seconds_sum{path=\"/a\"} 2.75
request_seconds_count{path=\"/a\"} 6
request_seconds_created{path=\"/a\"} 1700000000
# TYPE jobs counter
jobs_total 7 # {trace_id=\"x\"} 1.0 1.6e9
jobs_created 1700000000
# TYPE queue gauge
queue 2
# EOF
";

/// Python `prometheus_client` reads `text` as OpenMetrics: each sample with an exemplar, as
/// `name labels -> exemplar labels value timestamp`. Skipped (None) without python3 or the
/// module.
fn python_openmetrics_exemplars(text: &str) -> Option<BTreeSet<String>> {
    const SCRIPT: &str = "
import sys
from prometheus_client.openmetrics.parser import text_string_to_metric_families
for f in text_string_to_metric_families(sys.stdin.read()):
    for s in f.samples:
        if s.exemplar:
            e = s.exemplar
            print(s.name, sorted(s.labels.items()), '->', sorted(e.labels.items()), e.value, e.timestamp)
";
    let out =
        python_openmetrics("OpenMetrics parse", SCRIPT, text.as_bytes()).unwrap_or_else(|err| {
            panic!(
                "OpenMetrics parser: {err}
{text}"
            )
        })?;
    Some(out.lines().map(str::to_owned).collect())
}

#[tokio::test]
async fn exemplars_of_an_openmetrics_upstream_come_out_intact() {
    let up = Upstream::start(Behave::OpenMetrics(EXEMPLARS.into())).await;
    let gate = Gate::start(config_for(&up.url()), &with_subset_s()).await;
    // Both Prometheus generations ask OpenMetrics first; the names are legacy, so both get the
    // upstream's text, exemplars and all.
    for accept in [PROMETHEUS_3, PROMETHEUS_2_42, PROMETHEUS_3_UNDERSCORES] {
        let r = get_with(&gate, "/metrics", Some(accept)).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(
            r.header("content-type")
                .is_some_and(|c| c.starts_with("application/openmetrics-text; version=1.0.0;")),
            "{accept}: {:?}",
            r.header("content-type")
        );
        assert_eq!(r.text(), EXEMPLARS, "{accept}");
    }
    // The reference parser reads the same exemplars from the answer as from the upstream.
    let r = get_with(&gate, "/metrics", Some(PROMETHEUS_3)).await;
    if let Some(read) = python_openmetrics_exemplars(&r.text()) {
        assert_eq!(read.len(), 3, "{read:?}");
        assert_eq!(Some(read), python_openmetrics_exemplars(EXEMPLARS));
    }
    // A subset too (its samples get the fetch time; exemplars keep their own).
    let r = get_with(&gate, "/metrics/s", Some(PROMETHEUS_3)).await;
    let om = r.text();
    assert!(
        om.contains(" # {trace_id=\"4bf92f3577b34da6\"} 0.043 1700000000.123\n"),
        "{om}"
    );
    if let Some(read) = python_openmetrics_exemplars(&om) {
        assert_eq!(read.len(), 3, "{read:?}");
    }
    // Text 0.0.4 has no exemplars: they are left out, and promtool reads the rest.
    for accept in [None, Some(PROMETHEUS_3_TEXT_004)] {
        let r = get_with(&gate, "/metrics", accept).await;
        let text = r.text();
        assert!(!text.contains("trace_id"), "{text}");
        assert!(
            text.contains("request_seconds_bucket{le=\"0.1\",path=\"/a\"} 3\n"),
            "{text}"
        );
        promtool_check_if_installed("text without exemplars", &text);
    }
    gate.stop().await;
}

/// A subset `s` that keeps everything.
fn with_subset_s() -> Config {
    Config::from_yaml("metric_relabel_configs: []\ns: []\n", "test.yaml").unwrap()
}

#[tokio::test]
async fn a_text_upstream_is_converted_only_for_openmetrics_only_clients() {
    let body = "\
# HELP nginx_ingress_controller_requests Requests.
# TYPE nginx_ingress_controller_requests counter
nginx_ingress_controller_requests{status=\"200\"} 5
# TYPE http_requests_total counter
http_requests_total{code=\"200\"} 3
# TYPE temperature gauge
temperature 21.5
# TYPE u untyped
u 1
";
    let up = Upstream::start(Behave::Text(body.into())).await;
    let gate = Gate::start(config_for(&up.url()), &with_subset_s()).await;
    let r = get_with(
        &gate,
        "/metrics",
        Some("application/openmetrics-text;version=1.0.0"),
    )
    .await;
    assert_eq!(
        r.header("content-type"),
        Some("application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=underscores")
    );
    // The counter without `_total` is retyped, not renamed: the same series names.
    assert_eq!(
        r.text(),
        "\
# HELP nginx_ingress_controller_requests Requests.
# TYPE nginx_ingress_controller_requests unknown
nginx_ingress_controller_requests{status=\"200\"} 5
# TYPE http_requests counter
http_requests_total{code=\"200\"} 3
# TYPE temperature gauge
temperature 21.5
# TYPE u unknown
u 1
# EOF
"
    );
    assert_eq!(names(&r.text()), names(body));
    if let Some(read) = python_openmetrics_samples(&r.text()) {
        assert_eq!(read, names(body));
    }
    // The subset's timestamps become seconds.
    let r = get_with(&gate, "/metrics/s", Some("application/openmetrics-text")).await;
    let line = r
        .text()
        .lines()
        .find(|l| l.starts_with("u "))
        .unwrap()
        .to_owned();
    let ts: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(ts > 1.6e9 && ts < 1e11, "{line}");
    // Prometheus (either version) accepts text: it gets the text, unconverted.
    let r = get_with(&gate, "/metrics", Some(PROMETHEUS_2_42)).await;
    assert_eq!(series_set(&r.text()), series_set(body));
    gate.stop().await;
}
