//! Reloading `--relabel-file`: `POST /-/reload` in process and SIGHUP through the binary.
//! A valid file changes the next scrape; an invalid one is refused and the old config serves.

mod http_support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use http_support::*;
use metric_gate::relabel::Config;
use metric_gate::server::RelabelConfig;

const BODY: &str = "# TYPE reqs counter\nreqs{code=\"200\",path=\"/a\"} 1\nreqs{code=\"200\",path=\"/b\"} 2\nreqs{code=\"500\",path=\"/a\"} 4\n";

const KEEP_ALL: &str = "metric_relabel_configs: []\nall: []\n";
const DROP_PATH: &str =
    "metric_relabel_configs:\n  - action: labeldrop\n    regex: path\nall: []\n";

fn write(path: &Path, text: &str) {
    std::fs::write(path, text).unwrap();
}

async fn gate_with_file(upstream: &str, file: &Path) -> Gate {
    let relabel = RelabelConfig::from_file(file, &Default::default()).unwrap();
    Gate::start_relabel(config_for(upstream), relabel).await
}

/// A self-metric's value (the first line starting with `name` followed by a space or `{`).
fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| {
            l.strip_prefix(name)
                .is_some_and(|r| r.starts_with(' ') || r.starts_with('{'))
        })
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
}

async fn reload_gauges(gate: &Gate) -> (f64, f64) {
    let text = gate.get("/-/metrics").await.text();
    (
        metric(&text, "metric_gate_config_last_reload_successful").expect("success gauge"),
        metric(
            &text,
            "metric_gate_config_last_reload_success_timestamp_seconds",
        )
        .expect("timestamp gauge"),
    )
}

fn unsummed() -> Vec<String> {
    vec![
        "reqs{code=\"200\",path=\"/a\"} 1".to_owned(),
        "reqs{code=\"200\",path=\"/b\"} 2".to_owned(),
        "reqs{code=\"500\",path=\"/a\"} 4".to_owned(),
    ]
}

fn summed() -> Vec<String> {
    vec![
        "reqs{code=\"200\"} 3".to_owned(),
        "reqs{code=\"500\"} 4".to_owned(),
    ]
}

#[tokio::test]
async fn valid_reload_changes_the_next_scrape_and_invalid_keeps_the_old_config() {
    let up = Upstream::start(Behave::Plain(BODY.into())).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("relabel.yaml");
    write(&file, KEEP_ALL);
    let gate = gate_with_file(&up.url(), &file).await;

    let (ok, started_at) = reload_gauges(&gate).await;
    assert_eq!(ok, 1.0);
    assert!(started_at > 1.6e9, "{started_at}");
    assert_eq!(samples(&gate.get("/metrics").await.text()), unsummed());
    // A second scrape fills the series cache with the old rules' outcomes.
    assert_eq!(samples(&gate.get("/metrics").await.text()), unsummed());

    write(&file, DROP_PATH);
    let r = post(&gate.url("/-/reload")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("reloaded"), "{}", r.text());
    assert_eq!(samples(&gate.get("/metrics").await.text()), summed());
    let (ok, first_reload) = reload_gauges(&gate).await;
    assert_eq!(ok, 1.0);
    assert!(first_reload >= started_at);

    // Invalid: a bad regex in rule 0. Refused with the file and rule named; old config serves.
    write(
        &file,
        "metric_relabel_configs:\n  - action: labeldrop\n    regex: '(unclosed'\n",
    );
    let r = post(&gate.url("/-/reload")).await;
    assert_eq!(r.status, 500);
    let text = r.text();
    assert!(text.contains(&file.display().to_string()), "{text}");
    assert!(
        text.contains("metric_relabel_configs[0]") && text.contains("still serving"),
        "{text}"
    );
    assert_eq!(samples(&gate.get("/metrics").await.text()), summed());
    assert_eq!(reload_gauges(&gate).await, (0.0, first_reload));

    // Invalid YAML: the error names the line.
    write(
        &file,
        "metric_relabel_configs:\n  - action: labeldrop\n  regex: [\n",
    );
    let r = post(&gate.url("/-/reload")).await;
    assert_eq!(r.status, 500);
    assert!(r.text().contains("line"), "{}", r.text());
    // A missing file too.
    std::fs::remove_file(&file).unwrap();
    let r = post(&gate.url("/-/reload")).await;
    assert_eq!(r.status, 500);
    assert!(r.text().contains("--relabel-file"), "{}", r.text());
    assert_eq!(samples(&gate.get("/metrics").await.text()), summed());

    // Valid again: back to 1, and the output follows.
    write(&file, KEEP_ALL);
    let r = post(&gate.url("/-/reload")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let (ok, last) = reload_gauges(&gate).await;
    assert_eq!(ok, 1.0);
    assert!(last >= first_reload);
    assert_eq!(samples(&gate.get("/metrics").await.text()), unsummed());

    // Same file again: nothing to do, caches kept, still a success.
    let r = post(&gate.url("/-/reload")).await;
    assert_eq!(r.status, 200);
    assert!(r.text().contains("unchanged"), "{}", r.text());
    assert_eq!(reload_gauges(&gate).await.0, 1.0);
}

#[tokio::test]
async fn subsets_come_and_go_with_the_file() {
    let up = Upstream::start(Behave::Plain(BODY.into())).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("relabel.yaml");
    write(
        &file,
        "metric_relabel_configs: []\nold_subset:\n  - action: labeldrop\n    regex: code\n",
    );
    let gate = gate_with_file(&up.url(), &file).await;
    assert_eq!(gate.get("/metrics").await.status, 200);
    assert_eq!(gate.get("/metrics/old_subset").await.status, 200);
    let selfm = gate.get("/-/metrics").await.text();
    assert!(
        selfm.contains("metric_gate_series_written{subset=\"old_subset\"}"),
        "{selfm}"
    );

    write(&file, "metric_relabel_configs: []\nnew_subset:\n  - action: keep\n    source_labels: [code]\n    regex: '500'\n");
    let r = post(&gate.url("/-/reload")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let gone = gate.get("/metrics/old_subset").await;
    assert_eq!(gone.status, 404);
    assert!(gone.text().contains("new_subset"), "{}", gone.text());
    // The reload started a scrape for the new subset: it is served at once, without waiting
    // for the next /metrics (the request waits for that scrape if it is still running).
    let r = gate.get("/metrics/new_subset").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        up.request_count(),
        2,
        "the test's /metrics, then the reload's scrape"
    );
    assert!(gate.get("/").await.text().contains("/metrics/new_subset"));
    assert!(!gate.get("/").await.text().contains("old_subset"));
    let s = samples(&r.text());
    assert_eq!(s.len(), 1, "{s:?}");
    assert!(
        s[0].starts_with("reqs{code=\"500\",path=\"/a\"} 4 "),
        "{s:?}"
    );
    // The removed subset's self-metrics are gone too; the new one's counters start at 0.
    let selfm = gate.get("/-/metrics").await.text();
    assert!(!selfm.contains("subset=\"old_subset\""), "{selfm}");
    for line in [
        "metric_gate_series_written{subset=\"new_subset\"} 1",
        "metric_gate_sample_limit_exceeded_total{subset=\"new_subset\"} 0",
        "metric_gate_last_successful_scrape_timestamp_seconds{subset=\"new_subset\"} ",
    ] {
        assert!(selfm.contains(line), "{line} not in\n{selfm}");
    }
}

#[tokio::test]
async fn only_post_reloads_and_an_inline_config_is_kept() {
    let up = Upstream::start(Behave::Plain(BODY.into())).await;
    let config = Config::from_yaml(DROP_PATH, "--relabel").unwrap();
    let gate = Gate::start(config_for(&up.url()), &config).await;
    let r = gate.get("/-/reload").await;
    assert_eq!(r.status, 405);
    let r = post(&gate.url("/-/reload")).await;
    assert_eq!(r.status, 200);
    assert!(r.text().contains("no --relabel-file"), "{}", r.text());
    assert_eq!(samples(&gate.get("/metrics").await.text()), summed());
    let selfm = gate.get("/-/metrics").await.text();
    assert!(
        selfm.contains("metric_gate_http_requests_total{endpoint=\"/-/reload\",code=\"405\"} 1"),
        "{selfm}"
    );
}

#[tokio::test]
async fn a_reload_during_a_scrape_leaves_that_scrape_alone() {
    // The upstream sends half its body, waits 2 s, sends the rest.
    let up = Upstream::start(Behave::SlowMidBody(BODY.into(), Duration::from_secs(2))).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("relabel.yaml");
    write(&file, KEEP_ALL);
    let gate = gate_with_file(&up.url(), &file).await;

    let url = gate.url("/metrics");
    let inflight = tokio::spawn(async move { get(&url, &[]).await });
    for _ in 0..100 {
        if up.request_count() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        up.request_count(),
        1,
        "the scrape never reached the upstream"
    );

    write(&file, DROP_PATH);
    let r = post(&gate.url("/-/reload")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    // The reload did not wait for the scrape (which needs up to 2 s more).
    assert!(!inflight.is_finished());

    let r = inflight.await.unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        samples(&r.text()),
        unsummed(),
        "the in-flight scrape keeps the old rules"
    );
    let r = gate.get("/metrics").await;
    assert_eq!(
        samples(&r.text()),
        summed(),
        "the next scrape uses the new ones"
    );
}

/// Waits up to 10 s for a log line containing `needle`.
fn wait_for_log(rx: &std::sync::mpsc::Receiver<String>, needle: &str) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(line) if line.contains(needle) => return line,
            Ok(_) => {}
            Err(_) => break,
        }
    }
    panic!("no log line with {needle:?} within 10 s");
}

fn signal(child: &std::process::Child, sig: &str) {
    let status = Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

// Multi-threaded: waiting for log lines blocks a thread while the upstream keeps serving.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_reloads_the_binary() {
    let up = Upstream::start(Behave::Plain(BODY.into())).await;
    let dir = tempfile::tempdir().unwrap();
    let file: PathBuf = dir.path().join("relabel.yaml");
    write(&file, KEEP_ALL);
    let file_s = file.display().to_string();
    let (child, rx, addr) = spawn_gate_binary(&[
        "--listen-address",
        "127.0.0.1",
        "-p",
        "0",
        "-H",
        &up.url(),
        "--relabel-file",
        &file_s,
    ]);
    let child = KillOnDrop(child);
    let metrics_url = format!("http://{addr}/metrics");
    assert_eq!(samples(&get(&metrics_url, &[]).await.text()), unsummed());

    // The file as loaded at start: nothing to do.
    signal(&child.0, "-HUP");
    let line = wait_for_log(&rx, "configuration reloaded");
    assert!(line.contains("configuration unchanged"), "{line}");

    write(&file, DROP_PATH);
    signal(&child.0, "-HUP");
    let line = wait_for_log(&rx, "configuration reloaded");
    assert!(
        line.contains("INFO") && line.contains("caches cleared"),
        "{line}"
    );
    assert_eq!(samples(&get(&metrics_url, &[]).await.text()), summed());

    write(&file, "metric_relabel_configs: [{action: nonsense}]\n");
    signal(&child.0, "-HUP");
    let line = wait_for_log(&rx, "reload failed");
    assert!(line.contains("ERROR") && line.contains(&file_s), "{line}");
    assert_eq!(samples(&get(&metrics_url, &[]).await.text()), summed());
    let selfm = get(&format!("http://{addr}/-/metrics"), &[]).await.text();
    assert_eq!(
        metric(&selfm, "metric_gate_config_last_reload_successful"),
        Some(0.0)
    );

    // Still alive after both signals, and still stops cleanly.
    let mut child = child;
    signal(&child.0, "-TERM");
    let status = child.0.wait().unwrap();
    assert!(status.success(), "{status:?}");
}
