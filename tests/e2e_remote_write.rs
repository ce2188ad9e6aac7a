//! End-to-end remote write with real servers from Debian's packages, all on loopback:
//! node_exporter -> the metric-gate binary -> Prometheus 2.42 (`--web.enable-remote-write-
//! receiver`) and VictoriaMetrics (`victoria-metrics`), and the other way round, a Prometheus
//! whose `remote_write` points at metric-gate's `/api/v1/write`, forwarded to both.
//!
//! Needs `prometheus`, `promtool`, `prometheus-node-exporter` and `victoria-metrics` in PATH;
//! without them each test prints a SKIPPED message and passes, unless
//! `METRIC_GATE_E2E=require` (as `.ci/run` sets). Run with
//! `cargo test --test e2e_remote_write -- --nocapture` to see the observed figures.

use std::collections::{BTreeMap, BTreeSet};
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use testkit::e2e::*;

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;

type Labels = BTreeMap<String, String>;

/// True when every tool is there; otherwise as `tools_present` (skip, or fail under
/// `METRIC_GATE_E2E=require`).
fn tools(test: &str) -> bool {
    if !tools_present(test) {
        return false;
    }
    tools_installed(
        &format!("e2e test {test}"),
        &["victoria-metrics"],
        "`victoria-metrics`",
    )
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// `deploy/<name>` with each `(from, to)` replaced; every `from` must be in it.
fn deploy_file(name: &str, replace: &[(&str, &str)]) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(name);
    let mut text = std::fs::read_to_string(&path).expect("deploy file");
    for (from, to) in replace {
        assert!(text.contains(from), "{from:?} not in {}", path.display());
        text = text.replace(from, to);
    }
    text
}

fn wait_ok(what: &str, url: &str) {
    wait_for(what, WAIT, || match get(url) {
        Ok((200, _)) => Ok(()),
        Ok((s, b)) => Err(format!("{s} {b}")),
        Err(e) => Err(e),
    });
}

/// Prometheus with its remote-write receiver on (and `config`'s scrape jobs, if any).
fn prometheus_receiver(dir: &Path, name: &str, config: &str) -> Prometheus {
    let cfg = write(dir, &format!("{name}.yml"), config);
    let check = Command::new("promtool")
        .args(["check", "config"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "promtool check config:\n{config}\n{}",
        String::from_utf8_lossy(&check.stderr)
    );
    let addr = SocketAddr::from((LO, free_port(LO)));
    let proc = Proc::spawn(
        name,
        "prometheus",
        &[
            format!("--config.file={}", cfg.display()),
            format!(
                "--storage.tsdb.path={}",
                dir.join(format!("{name}-data")).display()
            ),
            format!("--web.listen-address={addr}"),
            "--web.enable-remote-write-receiver".to_owned(),
            "--log.level=warn".to_owned(),
        ],
        dir.join(format!("{name}.log")),
    );
    let p = Prometheus { addr, proc };
    wait_ok("Prometheus to be ready", &p.url("/-/ready"));
    p
}

/// VictoriaMetrics' single-node server.
struct Victoria {
    addr: SocketAddr,
    _proc: Proc,
}

/// One series as VictoriaMetrics exports it.
struct Exported {
    labels: Labels,
    points: BTreeMap<i64, Option<f64>>,
}

impl Victoria {
    fn start(dir: &Path) -> Self {
        let addr = SocketAddr::from((LO, free_port(LO)));
        let proc = Proc::spawn(
            "victoria-metrics",
            "victoria-metrics",
            &[
                format!("-httpListenAddr={addr}"),
                format!("-storageDataPath={}", dir.join("vm-data").display()),
                "-loggerLevel=WARN".to_owned(),
                "-search.disableCache".to_owned(),
            ],
            dir.join("victoria-metrics.log"),
        );
        wait_ok(
            "VictoriaMetrics to be healthy",
            &format!("http://{addr}/health"),
        );
        Self { addr, _proc: proc }
    }

    fn write_url(&self) -> String {
        format!("http://{}/api/v1/write", self.addr)
    }

    /// `/api/v1/export` of `selector` after `/internal/force_flush` (stale markers are `None`).
    fn export(&self, selector: &str) -> Result<Vec<Exported>, String> {
        get(&format!("http://{}/internal/force_flush", self.addr))?;
        let resp = ureq::get(&format!("http://{}/api/v1/export", self.addr))
            .query("match[]", selector)
            .timeout(Duration::from_secs(10))
            .call()
            .map_err(|e| e.to_string())?
            .into_string()
            .map_err(|e| e.to_string())?;
        resp.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let v: serde_json::Value = serde_json::from_str(l).map_err(|e| e.to_string())?;
                let labels = v["metric"]
                    .as_object()
                    .ok_or("no metric")?
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                    .collect();
                let ts = v["timestamps"].as_array().ok_or("no timestamps")?;
                let vals = v["values"].as_array().ok_or("no values")?;
                let points = ts
                    .iter()
                    .zip(vals)
                    .map(|(t, v)| (t.as_i64().unwrap_or_default(), v.as_f64()))
                    .collect();
                Ok(Exported { labels, points })
            })
            .collect()
    }
}

/// The metric-gate binary, stopped with SIGTERM (its flush is part of what is tested).
struct Gate {
    addr: SocketAddr,
    child: Option<std::process::Child>,
    log: PathBuf,
}

impl Gate {
    fn start(dir: &Path, args: &[String]) -> Self {
        let addr = SocketAddr::from((LO, free_port(LO)));
        let log = dir.join("metric-gate.log");
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(testkit::gate::binary())
            .args([
                "--listen-address",
                "127.0.0.1",
                "-p",
                &addr.port().to_string(),
            ])
            .args(args)
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .expect("metric-gate");
        let g = Self {
            addr,
            child: Some(child),
            log,
        };
        wait_ok("metric-gate to be healthy", &g.url("/-/healthy"));
        g
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// SIGTERM, then waits for the exit; panics unless it exits 0.
    fn terminate(&mut self) {
        let mut child = self.child.take().expect("running");
        let ok = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok);
        let status = child.wait().unwrap();
        assert!(status.success(), "metric-gate exited with {status}");
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if std::thread::panicking() {
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            eprintln!(
                "---- log of metric-gate:\n{}",
                lines[lines.len().saturating_sub(30)..].join("\n")
            );
        }
    }
}

/// One sample line of exposition text: labels (with `__name__`), value, timestamp.
fn parse_line(line: &str) -> Option<(Labels, f64, Option<i64>)> {
    let mut labels = Labels::new();
    let (name, rest) = match line.find(['{', ' ']) {
        Some(i) => (&line[..i], &line[i..]),
        None => return None,
    };
    labels.insert("__name__".into(), name.to_owned());
    let mut rest = rest;
    if let Some(body) = rest.strip_prefix('{') {
        let mut chars = body.char_indices().peekable();
        let mut end = 0;
        loop {
            // name="value"
            let start = chars.peek()?.0;
            let mut eq = start;
            for (i, c) in chars.by_ref() {
                if c == '=' {
                    eq = i;
                    break;
                }
                if c == '}' {
                    end = i;
                    break;
                }
            }
            if end > 0 {
                break;
            }
            let lname = body[start..eq].trim_start_matches(',').to_owned();
            chars.next(); // the opening quote
            let mut value = String::new();
            while let Some((_, c)) = chars.next() {
                match c {
                    '\\' => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        other => value.push(other),
                    },
                    '"' => break,
                    c => value.push(c),
                }
            }
            labels.insert(lname, value);
            match chars.next()? {
                (i, '}') => {
                    end = i;
                    break;
                }
                (_, ',') => {
                    if chars.peek().is_some_and(|(_, c)| *c == '}') {
                        end = chars.next()?.0;
                        break;
                    }
                }
                _ => return None,
            }
        }
        rest = &body[end + 1..];
    }
    let mut parts = rest.split_whitespace();
    let value = match parts.next()? {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    let ts = parts.next().and_then(|t| t.parse().ok());
    Some((labels, value, ts))
}

fn sample_lines(text: &str) -> Vec<(Labels, f64, Option<i64>)> {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| parse_line(l).unwrap_or_else(|| panic!("unparsable line {l:?}")))
        .collect()
}

/// Every stored sample of the series matching `selector` in the last `window`, by series,
/// timestamp in ms.
fn prometheus_points(
    prom: &Prometheus,
    selector: &str,
    window: &str,
) -> BTreeMap<Labels, BTreeMap<i64, f64>> {
    prom.raw(&format!("{selector}[{window}]"))
        .into_iter()
        .map(|s| {
            let points = s
                .points
                .iter()
                .map(|(t, v)| ((t * 1000.0).round() as i64, *v))
                .collect();
            (s.labels, points)
        })
        .collect()
}

fn same(a: f64, b: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan())
}

/// VictoriaMetrics keeps about 12 significant decimal digits.
fn close(a: f64, b: f64) -> bool {
    same(a, b) || (a - b).abs() <= 1e-11 * a.abs().max(b.abs())
}

/// Push: node_exporter summed over CPUs, pushed every second to Prometheus (asked for 2.0
/// first: 2.42 answers it with 204 and no written-headers, so metric-gate falls back to 1.0 and
/// sends the same data again) and to VictoriaMetrics, with deploy/remote-write.yml (the
/// README's config). Both store exactly what `/metrics/<subset>` served for the same scrape
/// (same fetch time); the series are those of `/metrics`; SIGTERM ends them with stale markers.
#[test]
fn push_to_prometheus_and_victoria_metrics() {
    if !tools("push_to_prometheus_and_victoria_metrics") {
        return;
    }
    let dir = tempdir();
    let ne = NodeExporter::start(dir.path(), LO, free_port(LO));
    let prom = prometheus_receiver(dir.path(), "prometheus", "scrape_configs: []\n");
    let vm = Victoria::start(dir.path());
    let rw = write(
        dir.path(),
        "remote-write.yml",
        &deploy_file(
            "remote-write.yml",
            &[
                ("interval: 5s", "interval: 1s"),
                (
                    "http://127.0.0.1:9090/api/v1/write",
                    &format!(
                        "{}\n  protobuf_message: io.prometheus.write.v2.Request",
                        prom.url("/api/v1/write")
                    ),
                ),
                ("http://127.0.0.1:8428/api/v1/write", &vm.write_url()),
            ],
        ),
    );
    // The default list and an identical subset: `/metrics/all` serves the last scrape's result
    // with its fetch time, which is what the push of that scrape carried.
    let relabel = write(
        dir.path(),
        "relabel.yaml",
        "metric_relabel_configs:\n- action: labeldrop\n  regex: cpu\nall:\n- action: labeldrop\n  regex: cpu\n",
    );
    let mut gate = Gate::start(
        dir.path(),
        &[
            "-H".into(),
            ne.url(),
            "--relabel-file".into(),
            relabel.display().to_string(),
            "--remote-write.config-file".into(),
            rw.display().to_string(),
        ],
    );
    let selector = r#"{pushed_by="metric-gate"}"#;

    // A scrape both backends hold: its fetch time T is on every line of /metrics/all.
    let (snapshot, t) = wait_for("a pushed scrape stored by both backends", WAIT, || {
        let (status, text) = get(&gate.url("/metrics/all"))?;
        if status != 200 {
            return Err(format!("/metrics/all: {status}"));
        }
        let lines = sample_lines(&text);
        let t = lines.first().and_then(|l| l.2).ok_or("no timestamp")?;
        let stored_prom = prometheus_points(&prom, selector, "30s");
        let at_t = stored_prom.values().filter(|p| p.contains_key(&t)).count();
        let stored_vm = vm.export(selector)?;
        let vm_at_t = stored_vm
            .iter()
            .filter(|s| s.points.contains_key(&t))
            .count();
        if at_t >= lines.len() && vm_at_t > 0 {
            Ok((lines, t))
        } else {
            Err(format!(
                "{} lines at {t}: Prometheus holds {at_t}, VictoriaMetrics {vm_at_t}",
                lines.len()
            ))
        }
    });
    assert!(snapshot.iter().all(|l| l.2 == Some(t)));
    let expected: BTreeMap<Labels, f64> = snapshot
        .iter()
        .map(|(labels, v, _)| {
            let mut l = labels.clone();
            l.insert("pushed_by".into(), "metric-gate".into());
            (l, *v)
        })
        .collect();

    // Prometheus: every series, exactly the value served, at the same timestamp.
    let stored = prometheus_points(&prom, selector, "30s");
    let mut compared = 0;
    for (labels, want) in &expected {
        let got = stored
            .get(labels)
            .and_then(|p| p.get(&t))
            .unwrap_or_else(|| panic!("Prometheus lacks {labels:?} at {t}"));
        assert!(same(*got, *want), "{labels:?}: stored {got}, served {want}");
        compared += 1;
    }
    let stored_at_t: BTreeSet<&Labels> = stored
        .iter()
        .filter(|(_, p)| p.contains_key(&t))
        .map(|(l, _)| l)
        .collect();
    assert_eq!(stored_at_t, expected.keys().collect::<BTreeSet<_>>());

    // VictoriaMetrics: the same (NaN samples are not stored by it), to its precision.
    let exported = wait_for("VictoriaMetrics to hold every series at T", WAIT, || {
        let e = vm.export(selector)?;
        let n = e.iter().filter(|s| s.points.contains_key(&t)).count();
        let want = expected.values().filter(|v| !v.is_nan()).count();
        (n >= want).then_some(e).ok_or(format!("{n} of {want}"))
    });
    let mut vm_compared = 0;
    for s in &exported {
        let Some(Some(got)) = s.points.get(&t) else {
            continue;
        };
        let want = expected
            .get(&s.labels)
            .unwrap_or_else(|| panic!("VictoriaMetrics holds an unexpected series {:?}", s.labels));
        assert!(
            close(*got, *want),
            "{:?}: stored {got}, served {want}",
            s.labels
        );
        vm_compared += 1;
    }

    // /metrics (the default list, a fresh scrape) has the same series.
    let pulled: BTreeSet<Labels> = sample_lines(&get_ok(&gate.url("/metrics")))
        .into_iter()
        .map(|(mut l, ..)| {
            l.insert("pushed_by".into(), "metric-gate".into());
            l
        })
        .collect();
    assert_eq!(
        pulled.iter().collect::<BTreeSet<_>>(),
        expected.keys().collect()
    );

    // The fallback from 2.0 to 1.0 happened for Prometheus only.
    let own = get_ok(&gate.url("/-/metrics"));
    let line = |prefix: &str| {
        own.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
    };
    assert_eq!(
        line(r#"metric_gate_remote_write_fallbacks_total{endpoint="prometheus"}"#),
        Some(1.0),
        "{own}"
    );
    assert_eq!(
        line(r#"metric_gate_remote_write_protocol_version{endpoint="prometheus"}"#),
        Some(1.0)
    );
    let series = prom.scalar(&format!("count({selector})"));
    assert_eq!(series, expected.len() as f64);

    // SIGTERM: stale markers end every series; Prometheus then returns none of them.
    gate.terminate();
    let gone = prom.query(&format!("count({selector})"));
    assert!(
        gone.is_empty(),
        "series still live after the flush: {gone:?}"
    );
    let (ended, total) = wait_for("stale markers in VictoriaMetrics", WAIT, || {
        let e = vm.export(selector)?;
        let ended = e
            .iter()
            .filter(|s| s.points.values().last() == Some(&None))
            .count();
        (ended == e.len() && ended > 0)
            .then_some((ended, e.len()))
            .ok_or(format!(
                "{ended} of {} series end with a stale marker",
                e.len()
            ))
    });
    eprintln!(
        "push: {} series at fetch time {t}: Prometheus (after 2.0 -> 1.0 fallback) equal on \
         {compared}, VictoriaMetrics within 1e-11 on {vm_compared}; /metrics has the same \
         series; after SIGTERM Prometheus has 0 live series, VictoriaMetrics shows a stale \
         marker last on {ended} of {total}",
        expected.len(),
    );
    drop(ne);
}

/// Receive: a Prometheus scraping node_exporter every second, its `remote_write` pointed at
/// metric-gate's `/api/v1/write`; metric-gate forwards to a second Prometheus and to
/// VictoriaMetrics. Both hold the scraping Prometheus' own samples, value for value.
#[test]
fn forward_from_prometheus_to_prometheus_and_victoria_metrics() {
    if !tools("forward_from_prometheus_to_prometheus_and_victoria_metrics") {
        return;
    }
    let dir = tempdir();
    let ne = NodeExporter::start(dir.path(), LO, free_port(LO));
    let store = prometheus_receiver(dir.path(), "store", "scrape_configs: []\n");
    let vm = Victoria::start(dir.path());
    let rw = write(
        dir.path(),
        "rw.yml",
        &format!(
            "interval: 1h\nremote_write:\n- url: {}\n  name: prometheus\n- url: {}\n  name: victoria\n",
            store.url("/api/v1/write"),
            vm.write_url()
        ),
    );
    // The push loop's own scrape (once, at start) is kept apart from the forwarded data by the
    // `job` label it lacks.
    let gate = Gate::start(
        dir.path(),
        &[
            "-H".into(),
            ne.url(),
            "--remote-write.config-file".into(),
            rw.display().to_string(),
            "--remote-write.receiver".into(),
        ],
    );
    let scraper = prometheus_receiver(
        dir.path(),
        "scraper",
        &format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n- job_name: node\n  static_configs:\n  - targets: ['{}']\nremote_write:\n- url: {}\n  queue_config:\n    batch_send_deadline: 1s\n",
            ne.addr,
            gate.url("/api/v1/write")
        ),
    );
    scraper.wait_scrapes(&["node"], 5);

    let selector = r#"node_cpu_seconds_total{job="node"}"#;
    let (own, stored, exported) = wait_for("forwarded samples in both stores", WAIT, || {
        let own = prometheus_points(&scraper, selector, "1m");
        let stored = prometheus_points(&store, selector, "1m");
        let exported = vm.export(selector)?;
        let ts = |p: &BTreeMap<i64, f64>| p.keys().copied().collect::<BTreeSet<i64>>();
        let common = own
            .iter()
            .filter(|(l, p)| {
                stored
                    .get(*l)
                    .is_some_and(|q| ts(p).intersection(&ts(q)).count() >= 3)
            })
            .count();
        if !own.is_empty() && common == own.len() && exported.len() >= own.len() {
            Ok((own, stored, exported))
        } else {
            Err(format!(
                "{} series scraped, {common} forwarded to Prometheus with 3 samples, {} in VictoriaMetrics",
                own.len(),
                exported.len()
            ))
        }
    });
    let mut compared = (0, 0);
    for (labels, points) in &own {
        for (t, want) in points {
            if let Some(got) = stored[labels].get(t) {
                assert!(same(*got, *want), "{labels:?} at {t}: {got} vs {want}");
                compared.0 += 1;
            }
        }
        let e = exported
            .iter()
            .find(|e| &e.labels == labels)
            .unwrap_or_else(|| panic!("VictoriaMetrics lacks {labels:?}"));
        for (t, want) in points {
            if let Some(Some(got)) = e.points.get(t) {
                assert!(close(*got, *want), "{labels:?} at {t}: {got} vs {want}");
                compared.1 += 1;
            }
        }
    }
    assert!(
        compared.0 >= 3 * own.len() && compared.1 >= 3 * own.len(),
        "{compared:?}"
    );
    // Everything Prometheus writes (node_exporter's series and its own up/scrape_* series):
    // the same series count in both stores.
    let all = r#"{job="node"}"#;
    wait_for("every series forwarded", WAIT, || {
        let a = scraper.try_scalar(&format!("count({all})"))?;
        let b = store.try_scalar(&format!("count({all})"))?;
        let c = vm.export(all)?.len() as f64;
        (a == b && b == c)
            .then_some(())
            .ok_or(format!("scraper {a}, store {b}, vm {c}"))
    });
    let text = get_ok(&gate.url("/-/metrics"));
    let accepted = text
        .lines()
        .find(|l| {
            l.starts_with(r#"metric_gate_remote_write_received_requests_total{result="accepted"}"#)
        })
        .unwrap_or_else(|| panic!("{text}"))
        .to_owned();
    eprintln!(
        "forward: {} series of {selector}; equal in the second Prometheus on {} samples, in \
         VictoriaMetrics on {}; {accepted}",
        own.len(),
        compared.0,
        compared.1
    );
}
