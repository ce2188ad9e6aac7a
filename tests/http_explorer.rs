//! `GET /analyze` and `GET /` over HTTP: content negotiation (the text report stays
//! byte-identical for `curl` and scripts; browsers get the explorer), what-ifs through the real
//! pipeline on shared single-flight passes, the listener's authentication, the entry page.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use metric_gate::analyze::Analyzer;
use metric_gate::exposition::ParseOptions;
use metric_gate::pipeline::read_all;
use metric_gate::relabel::Config;
use metric_gate::server::web_config::WebConfigWatcher;
use metric_gate::server::ListenerConfig;

use testkit::client::*;
use testkit::gate::*;
use testkit::upstream::*;

const SAMPLE: &str = include_str!("../testdata/ingress_small.prom");
/// What Chromium and Firefox send for a page.
const BROWSER: &str =
    "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8";

/// The text report as `/analyze` has always written it: the analyzer over the body.
fn text_report(body: &str) -> String {
    let mut a = Analyzer::new();
    let n = read_all(body.as_bytes(), ParseOptions::default(), &mut a).unwrap();
    a.add_bytes(n);
    a.report()
}

/// Series lines of `--file SAMPLE --apply --relabel-file labeldrop_path.yaml`.
fn apply_count() -> u64 {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_metric-gate"))
        .args([
            "--file",
            concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/ingress_small.prom"),
            "--apply",
            "--relabel-file",
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/testdata/relabel/labeldrop_path.yaml"
            ),
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .count() as u64
}

fn json(r: &Resp) -> serde_json::Value {
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{e}: {}", r.text()))
}

#[tokio::test]
async fn analyze_answers_text_to_scripts_and_the_explorer_to_browsers() {
    let up = Upstream::start(Behave::Text(SAMPLE.into())).await;
    let gate = Gate::start(config_for(&up.url()), &Config::passthrough()).await;
    let expected = text_report(SAMPLE);
    let url = gate.url("/analyze");

    // curl (`*/*`), no Accept at all, plain text, or a lower weight for HTML: the text report,
    // byte for byte.
    for accept in [
        None,
        Some("*/*"),
        Some("text/plain"),
        Some("text/html;q=0.5, text/plain"),
        Some("text/html;q=0"),
    ] {
        let headers: Vec<(&str, &str)> = accept.iter().map(|a| ("accept", *a)).collect();
        let r = get(&url, &headers).await;
        assert_eq!(r.status, 200, "{accept:?}");
        assert_eq!(
            r.header("content-type"),
            Some("text/plain; charset=utf-8"),
            "{accept:?}"
        );
        assert_eq!(r.text(), expected, "{accept:?}");
        assert_eq!(r.header("vary"), Some("Accept"));
    }

    // A browser: the page, self-contained, with its data and a CSP header.
    let r = get(&url, &[("accept", BROWSER)]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    let page = r.text();
    assert!(page.starts_with("<!DOCTYPE html>"), "{}", &page[..100]);
    assert!(page.contains("\"nginx_ingress_controller_request_duration_seconds_bucket\""));
    let csp = r.header("content-security-policy").unwrap();
    assert!(csp.starts_with("default-src 'none'"), "{csp}");
    assert!(csp.ends_with("frame-ancestors 'none'"), "{csp}");
    assert_eq!(r.header("cache-control"), Some("no-store"));
    // `format=text` wins over a browser's Accept.
    let r = get(&gate.url("/analyze?format=text"), &[("accept", BROWSER)]).await;
    assert_eq!(r.text(), expected);

    // JSON, by Accept or by format=.
    for (path, accept) in [
        ("/analyze", "application/json"),
        ("/analyze?format=json", "*/*"),
    ] {
        let r = get(&gate.url(path), &[("accept", accept)]).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some("application/json"));
        let v = json(&r);
        assert_eq!(v["mode"], "server");
        assert_eq!(v["source"], up.url());
        assert_eq!(v["profile"]["totals"]["series"], 136);
        assert_eq!(v["profile"]["totals"]["bytes"], SAMPLE.len());
        assert!(v["whatif"].is_null());
    }
}

#[tokio::test]
async fn what_ifs_run_the_real_pipeline() {
    let up = Upstream::start(Behave::Text(SAMPLE.into())).await;
    let gate = Gate::start(config_for(&up.url()), &Config::passthrough()).await;
    let expected = apply_count();

    let r = gate.get("/analyze?drop=path&format=json").await;
    assert_eq!(r.status, 200, "{}", r.text());
    let v = json(&r);
    assert_eq!(v["query"]["drop"][0], "path");
    assert_eq!(v["whatif"]["totals"]["series_before"], 136);
    assert_eq!(v["whatif"]["totals"]["series_after"], expected);
    assert_eq!(
        v["whatif"]["config"],
        "metric_relabel_configs:\n  - action: labeldrop\n    regex: path\n"
    );

    // The same what-if for curl: its text form.
    let r = gate.get("/analyze?drop=path").await;
    assert_eq!(r.status, 200);
    assert!(
        r.text()
            .starts_with(&format!("what-if: 136 -> {expected} series, ")),
        "{}",
        r.text()
    );

    // A pasted configuration (URL-encoded YAML) runs like a file would.
    let yaml = "metric_relabel_configs:%0A-+action:+labeldrop%0A++regex:+path%0A";
    let v = json(
        &gate
            .get(&format!("/analyze?relabel={yaml}&format=json"))
            .await,
    );
    assert_eq!(v["whatif"]["totals"]["series_after"], expected);

    // A configuration that does not load: 400 with its line; the profile is still there.
    let bad = "metric_relabel_configs:%0A-+action:+keep%0A++regex:+a%0A-+action:+hashmod%0A";
    let r = gate
        .get(&format!("/analyze?relabel={bad}&format=json"))
        .await;
    assert_eq!(r.status, 400);
    let v = json(&r);
    assert_eq!(v["error"]["kind"], "config");
    assert_eq!(v["error"]["line"], 4);
    assert_eq!(v["profile"]["totals"]["series"], 136);
    let r = gate.get(&format!("/analyze?relabel={bad}")).await;
    assert_eq!(r.status, 400);
    assert!(r.text().starts_with("what-if: "), "{}", r.text());
    // The running configuration is untouched.
    let m = gate.get("/metrics").await;
    assert_eq!(samples(&m.text()).len(), 136);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn passes_are_shared_and_another_what_if_waits_for_the_next() {
    // The upstream answers after 2 s, so that on a loaded machine every request below is in
    // before the first pass ends.
    let up = Upstream::start(Behave::SlowStart(SAMPLE.into(), Duration::from_secs(2))).await;
    let gate = Arc::new(Gate::start(config_for(&up.url()), &Config::passthrough()).await);
    let ask = |path: &'static str, accept: &'static str| {
        let url = gate.url(path);
        tokio::spawn(async move { get(&url, &[("accept", accept)]).await })
    };
    // The drop=path pass starts; the text report and the same what-if share it; a different
    // what-if waits for it to end, then runs its own pass.
    let first = ask("/analyze?drop=path", "application/json");
    tokio::time::sleep(Duration::from_millis(150)).await;
    let same = ask("/analyze?drop=path", "application/json");
    let text = ask("/analyze", "*/*");
    let page = ask("/analyze", BROWSER);
    let other = ask("/analyze?drop=method", "application/json");
    let (first, same, text, page, other) = (
        first.await.unwrap(),
        same.await.unwrap(),
        text.await.unwrap(),
        page.await.unwrap(),
        other.await.unwrap(),
    );
    for r in [&first, &same, &text, &page, &other] {
        assert_eq!(r.status, 200, "{}", r.text());
    }
    assert_eq!(up.request_count(), 2, "one pass per what-if");
    assert_eq!(text.text(), text_report(SAMPLE));
    let (first, same, other) = (json(&first), json(&same), json(&other));
    assert_eq!(first, same);
    assert_eq!(other["query"]["drop"][0], "method");
    assert_eq!(other["whatif"]["drop"][0], "method");
    assert_ne!(
        other["whatif"]["totals"]["series_after"],
        first["whatif"]["totals"]["series_after"]
    );
    let m = gate.get("/-/metrics").await.text();
    assert!(
        m.contains("metric_gate_http_requests_total{endpoint=\"/analyze\",code=\"200\"} 5"),
        "{m}"
    );

    // A text-only pass does not profile (it costs what it always did): a page arriving during
    // it waits for the next pass, which the page's JSON, arriving later, shares.
    let text = ask("/analyze", "*/*");
    tokio::time::sleep(Duration::from_millis(150)).await;
    let page = ask("/analyze", BROWSER);
    tokio::time::sleep(Duration::from_millis(150)).await;
    let json_page = ask("/analyze", "application/json");
    let (text, page, json_page) = (
        text.await.unwrap(),
        page.await.unwrap(),
        json_page.await.unwrap(),
    );
    assert_eq!(text.text(), text_report(SAMPLE));
    assert_eq!(page.status, 200);
    assert_eq!(json(&json_page)["profile"]["totals"]["series"], 136);
    assert_eq!(up.request_count(), 4);
}

#[tokio::test]
async fn the_explorer_is_behind_the_listeners_authentication() {
    let up = Upstream::start(Behave::Text(SAMPLE.into())).await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("web.yml");
    let hash = bcrypt::hash("pw", 4).unwrap();
    std::fs::write(&path, format!("basic_auth_users:\n  prom: {hash}\n")).unwrap();
    let listener = ListenerConfig {
        web: Some(Arc::new(WebConfigWatcher::load(&path).unwrap())),
        ..ListenerConfig::default()
    };
    let gate = Gate::start_with(config_for(&up.url()), &Config::passthrough(), listener).await;
    for path in ["/analyze", "/analyze?drop=path&format=json", "/"] {
        let r = get(&gate.url(path), &[("accept", BROWSER)]).await;
        assert_eq!(r.status, 401, "{path}");
    }
    assert_eq!(up.request_count(), 0, "no fetch without credentials");
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("prom:pw")
    );
    let r = get(
        &gate.url("/analyze?drop=path"),
        &[("accept", BROWSER), ("authorization", &auth)],
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
}

#[tokio::test]
async fn the_entry_page_shows_the_last_scrape() {
    let up = Upstream::start(Behave::Text(SAMPLE.into())).await;
    let relabel = Config::from_yaml(
        "metric_relabel_configs: []\nno_path:\n  - action: labeldrop\n    regex: path\n",
        "test",
    )
    .unwrap();
    let gate = Gate::start(config_for(&up.url()), &relabel).await;

    // Before any scrape: the upstream and the lists, as plain text for scripts.
    let r = gate.get("/").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
    let text = r.text();
    assert!(
        text.contains(&format!("upstream: {}\n", up.url())),
        "{text}"
    );
    assert!(
        text.contains("last scrape: none yet (GET /metrics scrapes)\n"),
        "{text}"
    );
    assert!(
        text.contains("lists:\n  /metrics\n  /metrics/no_path\n"),
        "{text}"
    );
    assert!(text.contains("  /analyze: "), "{text}");
    assert_eq!(up.request_count(), 0, "the entry page does not scrape");

    assert_eq!(gate.get("/metrics").await.status, 200);
    let text = gate.get("/").await.text();
    assert!(text.contains("last scrape: "), "{text}");
    assert!(text.contains(" ms\n"), "{text}");
    assert!(
        text.contains(&format!("targets:\n  {} up\n", up.addr)),
        "{text}"
    );
    let after = apply_count();
    assert!(
        text.contains(&format!(
            "lists:\n  /metrics 136 series\n  /metrics/no_path {after} series\n"
        )),
        "{text}"
    );

    // A browser gets the same as HTML.
    let r = get(&gate.url("/"), &[("accept", BROWSER)]).await;
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
    assert!(r
        .header("content-security-policy")
        .unwrap()
        .starts_with("default-src 'none'"));
    let html = r.text();
    for needle in [
        "<a href=\"analyze\"><b>Cardinality explorer</b></a>".to_owned(),
        format!("<tr><td><code>{}</code></td><td><span class=\"up\">up</span></td></tr>", up.addr),
        "<tr><td><a href=\"metrics\">/metrics</a></td><td class=\"n\">136</td></tr>".to_owned(),
        format!("<tr><td><a href=\"metrics/no_path\">/metrics/no_path</a></td><td class=\"n\">{after}</td></tr>"),
    ] {
        assert!(html.contains(&needle), "{needle}\n{html}");
    }
}

#[tokio::test]
async fn the_entry_page_shows_a_failed_target() {
    let up = Upstream::start(Behave::Status(500)).await;
    let gate = Gate::start(config_for(&up.url()), &Config::passthrough()).await;
    assert_eq!(gate.get("/metrics").await.status, 502);
    let text = gate.get("/").await.text();
    assert!(
        text.contains(&format!("targets:\n  {} down: ", up.addr)),
        "{text}"
    );
    assert!(text.contains("  failed: upstream "), "{text}");
    let html = get(&gate.url("/"), &[("accept", BROWSER)]).await.text();
    assert!(
        html.contains("<span class=\"down\">down</span>: "),
        "{html}"
    );
    // /analyze of a failing upstream: 502, as text or in the page.
    assert_eq!(gate.get("/analyze").await.status, 502);
    let r = get(&gate.url("/analyze"), &[("accept", BROWSER)]).await;
    assert_eq!(r.status, 502);
    assert_eq!(r.header("content-type"), Some("text/html; charset=utf-8"));
}
