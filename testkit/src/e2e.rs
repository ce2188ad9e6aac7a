//! End-to-end helpers: real processes (Debian's `prometheus`, `promtool`,
//! `prometheus-node-exporter` and the metric-gate binary) on 127.0.0.x loopback with random free
//! ports and temporary directories, and a blocking HTTP client for Prometheus' API (the DNS
//! server is [`crate::dns::DnsServer`]). Every process is killed when its guard is dropped, also
//! when an assertion failed; then the tail of its log is printed to help the diagnosis.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::gate::binary;

/// Debian's name of the node_exporter binary.
pub const NODE_EXPORTER: &str = "prometheus-node-exporter";

/// Default bound for every wait.
pub const WAIT: Duration = Duration::from_secs(30);

/// True when the tools are there. When one is missing: a skip message and false, or a panic when
/// `METRIC_GATE_E2E=require` (CI sets it, so CI can never skip silently).
pub fn tools_present(test: &str) -> bool {
    tools_installed(
        &format!("e2e test {test}"),
        &["prometheus", "promtool", NODE_EXPORTER],
        "`prometheus` and `prometheus-node-exporter`",
    )
}

/// True when every one of `tools` is in `PATH`. Otherwise, for `what`: a skip message naming
/// the missing tools and the Debian `packages` that have them, and false; or a panic when
/// `METRIC_GATE_E2E=require`.
pub fn tools_installed(what: &str, tools: &[&str], packages: &str) -> bool {
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| which(t).is_none())
        .collect();
    if missing.is_empty() {
        return true;
    }
    missing_tool(&format!(
        "{what}: {} not found in PATH (Debian packages {packages})",
        missing.join(", ")
    ));
    false
}

/// The one rule for a missing tool: a failure under `METRIC_GATE_E2E=require` (CI), a visible
/// skip otherwise.
fn missing_tool(msg: &str) {
    if std::env::var("METRIC_GATE_E2E").as_deref() == Ok("require") {
        panic!("{msg}; METRIC_GATE_E2E=require makes this a failure");
    }
    // Straight to the process' stderr, not through the test harness' capture, so the skip is
    // visible in a plain `cargo test` run.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {msg}; set METRIC_GATE_E2E=require to make this a failure"
    );
}

/// Runs the Python `script` (which imports `prometheus_client`'s OpenMetrics parser) on
/// `text` from its stdin: its stdout, or the parser's complaint (stderr) when it exits with an
/// error. `Ok(None)` when python3 or `prometheus_client` is missing and that may be skipped (the
/// rule of [`tools_installed`]: under `METRIC_GATE_E2E=require` it is a failure).
pub fn python_openmetrics(what: &str, script: &str, text: &[u8]) -> Result<Option<String>, String> {
    let Ok(mut child) = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        missing_tool(&format!("{what}: python3 not found in PATH"));
        return Ok(None);
    };
    child.stdin.take().unwrap().write_all(text).unwrap();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    if err.contains("No module named 'prometheus_client'") {
        missing_tool(&format!(
            "{what}: Python prometheus_client not installed (pip install prometheus-client)"
        ));
        return Ok(None);
    }
    if !out.status.success() {
        return Err(err);
    }
    Ok(Some(String::from_utf8_lossy(&out.stdout).into_owned()))
}

fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(tool))
        .find(|p| p.is_file())
}

/// A port that was free on `ip` a moment ago.
pub fn free_port(ip: Ipv4Addr) -> u16 {
    TcpListener::bind((ip, 0))
        .expect("bind for a free port")
        .local_addr()
        .unwrap()
        .port()
}

/// A port that is free on every one of `ips` (for dns+, whose targets share one port).
pub fn free_port_on_all(ips: &[Ipv4Addr]) -> u16 {
    for _ in 0..50 {
        let port = free_port(ips[0]);
        if ips[1..]
            .iter()
            .all(|ip| TcpListener::bind((*ip, port)).is_ok())
        {
            return port;
        }
    }
    panic!("no port free on all of {ips:?}");
}

/// Polls `f` every 200 ms until it returns `Some`, at most `limit`; panics naming `what` and the
/// last observation otherwise.
pub fn wait_for<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        match f() {
            Ok(v) => return v,
            Err(last) => {
                if Instant::now() >= deadline {
                    panic!("timed out after {limit:?} waiting for {what}; last: {last}");
                }
            }
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// A child process, killed (and its log tail printed if the test is failing) on drop.
pub struct Proc {
    pub name: String,
    child: Option<Child>,
    pub log: PathBuf,
}

impl Proc {
    /// Starts `program` with `args`, stdout and stderr into `log`; `name` names it in messages.
    pub fn spawn(name: &str, program: impl AsRef<Path>, args: &[String], log: PathBuf) -> Self {
        let program = program.as_ref();
        let out = File::create(&log).expect("log file");
        let err = out.try_clone().unwrap();
        let child = Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", program.display()));
        Self {
            name: name.to_owned(),
            child: Some(child),
            log,
        }
    }

    /// Kills the process and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Panics if the process has exited.
    pub fn assert_running(&mut self) {
        if let Some(c) = self.child.as_mut() {
            if let Ok(Some(status)) = c.try_wait() {
                panic!(
                    "{} exited with {status}; log:\n{}",
                    self.name,
                    log_tail(&self.log)
                );
            }
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!(
                "---- log of {} ({}):\n{}",
                self.name,
                self.log.display(),
                log_tail(&self.log)
            );
        }
    }
}

fn log_tail(p: &Path) -> String {
    let text = std::fs::read_to_string(p).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// A plain GET: status and body (also for 4xx/5xx).
pub fn get(url: &str) -> Result<(u16, String), String> {
    let agent = ureq::AgentBuilder::new()
        .timeout(Duration::from_secs(10))
        .build();
    match agent.get(url).call() {
        Ok(r) => {
            let s = r.status();
            Ok((s, r.into_string().map_err(|e| e.to_string())?))
        }
        Err(ureq::Error::Status(s, r)) => Ok((s, r.into_string().unwrap_or_default())),
        Err(e) => Err(format!("GET {url}: {e}")),
    }
}

/// GET that must answer 200.
pub fn get_ok(url: &str) -> String {
    match get(url) {
        Ok((200, body)) => body,
        Ok((s, body)) => panic!("GET {url}: {s}: {body}"),
        Err(e) => panic!("{e}"),
    }
}

fn wait_http_ok(what: &str, url: &str) {
    wait_for(what, WAIT, || match get(url) {
        Ok((200, _)) => Ok(()),
        Ok((s, b)) => Err(format!("{s} {b}")),
        Err(e) => Err(e),
    });
}

/// A temporary directory for logs, configs and Prometheus' storage.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("metric-gate-e2e-")
        .tempdir()
        .expect("tempdir")
}

/// Debian's node_exporter on `ip:port`.
pub struct NodeExporter {
    pub addr: SocketAddr,
    pub proc: Proc,
}

impl NodeExporter {
    pub fn start(dir: &Path, ip: Ipv4Addr, port: u16) -> Self {
        let addr = SocketAddr::from((ip, port));
        let proc = Proc::spawn(
            &format!("node_exporter {addr}"),
            NODE_EXPORTER,
            &[format!("--web.listen-address={addr}")],
            dir.join(format!("node_exporter-{ip}.log")),
        );
        let ne = Self { addr, proc };
        wait_http_ok("node_exporter to answer", &ne.url());
        ne
    }

    pub fn url(&self) -> String {
        format!("http://{}/metrics", self.addr)
    }
}

/// The metric-gate binary in server mode on 127.0.0.1.
pub struct GateProc {
    pub addr: SocketAddr,
    pub proc: Proc,
}

impl GateProc {
    /// `args` are the flags besides `--listen-address`/`--port`.
    pub fn start(dir: &Path, args: &[String]) -> Self {
        let port = free_port(Ipv4Addr::LOCALHOST);
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let mut all = vec![
            "--listen-address".to_owned(),
            "127.0.0.1".to_owned(),
            "-p".to_owned(),
            port.to_string(),
        ];
        all.extend_from_slice(args);
        let proc = Proc::spawn("metric-gate", binary(), &all, dir.join("metric-gate.log"));
        let g = Self { addr, proc };
        wait_http_ok("metric-gate to be healthy", &g.url("/-/healthy"));
        g
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

/// Prometheus (Debian's) with the given config on 127.0.0.1, storage in `dir`.
pub struct Prometheus {
    pub addr: SocketAddr,
    pub proc: Proc,
}

/// One scrape job for [`prometheus_config`].
pub struct Job<'a> {
    pub name: &'a str,
    pub metrics_path: &'a str,
    pub targets: Vec<String>,
}

/// A Prometheus config: every job at a 1 s interval, 1 s timeout.
pub fn prometheus_config(jobs: &[Job]) -> String {
    let mut s =
        String::from("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n");
    for j in jobs {
        let targets: Vec<String> = j.targets.iter().map(|t| format!("'{t}'")).collect();
        s.push_str(&format!(
            "- job_name: {}\n  metrics_path: {}\n  static_configs:\n  - targets: [{}]\n",
            j.name,
            j.metrics_path,
            targets.join(", ")
        ));
    }
    s
}

impl Prometheus {
    pub fn start(dir: &Path, config: &str) -> Self {
        let cfg = dir.join("prometheus.yml");
        std::fs::write(&cfg, config).unwrap();
        let check = Command::new("promtool")
            .args(["check", "config"])
            .arg(&cfg)
            .output()
            .expect("promtool check config");
        assert!(
            check.status.success(),
            "promtool check config:\n{config}\n{}{}",
            String::from_utf8_lossy(&check.stdout),
            String::from_utf8_lossy(&check.stderr)
        );
        let data = dir.join("prom-data");
        let port = free_port(Ipv4Addr::LOCALHOST);
        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
        let proc = Proc::spawn(
            "prometheus",
            "prometheus",
            &[
                format!("--config.file={}", cfg.display()),
                format!("--storage.tsdb.path={}", data.display()),
                format!("--web.listen-address={addr}"),
                "--log.level=warn".to_owned(),
            ],
            dir.join("prometheus.log"),
        );
        let p = Self { addr, proc };
        wait_http_ok("Prometheus to be ready", &p.url("/-/ready"));
        p
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn api(&self, path: &str, params: &[(&str, &str)]) -> Result<serde_json::Value, String> {
        let mut req = ureq::get(&self.url(path)).timeout(Duration::from_secs(10));
        for (k, v) in params {
            req = req.query(k, v);
        }
        let body = match req.call() {
            Ok(r) => r.into_string().map_err(|e| e.to_string())?,
            Err(ureq::Error::Status(s, r)) => {
                return Err(format!(
                    "{path} {params:?}: {s}: {}",
                    r.into_string().unwrap_or_default()
                ))
            }
            Err(e) => return Err(format!("{path}: {e}")),
        };
        let v: serde_json::Value = serde_json::from_str(&body).map_err(|e| e.to_string())?;
        if v["status"] != "success" {
            return Err(format!("{path} {params:?}: {body}"));
        }
        Ok(v["data"].clone())
    }

    /// An instant query returning a vector: (labels, value) per series.
    pub fn query(&self, expr: &str) -> Vec<Sample> {
        self.try_query(expr).unwrap_or_else(|e| panic!("{e}"))
    }

    pub fn try_query(&self, expr: &str) -> Result<Vec<Sample>, String> {
        let d = self.api("/api/v1/query", &[("query", expr)])?;
        if d["resultType"] != "vector" {
            return Err(format!("{expr}: not a vector: {d}"));
        }
        Ok(d["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| Sample {
                labels: labels(&s["metric"]),
                ts: s["value"][0].as_f64().unwrap(),
                value: s["value"][1].as_str().unwrap().parse().unwrap(),
            })
            .collect())
    }

    /// The only sample of an instant query, or an error describing what came back.
    pub fn try_scalar(&self, expr: &str) -> Result<f64, String> {
        let v = self.try_query(expr)?;
        match v.as_slice() {
            [one] => Ok(one.value),
            _ => Err(format!("{expr}: {} samples: {v:?}", v.len())),
        }
    }

    pub fn scalar(&self, expr: &str) -> f64 {
        self.try_scalar(expr).unwrap_or_else(|e| panic!("{e}"))
    }

    /// An instant query of a range selector (`x[30s]`): the raw stored samples per series.
    pub fn raw(&self, expr: &str) -> Vec<Series> {
        let d = self
            .api("/api/v1/query", &[("query", expr)])
            .unwrap_or_else(|e| panic!("{e}"));
        matrix(expr, &d)
    }

    /// `/api/v1/query_range` from `start` to `end` (Unix seconds) every `step` seconds.
    pub fn range(&self, expr: &str, start: f64, end: f64, step: f64) -> Vec<Series> {
        let (start, end, step) = (start.to_string(), end.to_string(), step.to_string());
        let d = self
            .api(
                "/api/v1/query_range",
                &[
                    ("query", expr),
                    ("start", &start),
                    ("end", &end),
                    ("step", &step),
                ],
            )
            .unwrap_or_else(|e| panic!("{e}"));
        matrix(expr, &d)
    }

    /// `/api/v1/targets`: (job, scrapeUrl, health, lastError) of every active target.
    pub fn targets(&self) -> Vec<(String, String, String, String)> {
        let d = self
            .api("/api/v1/targets", &[])
            .unwrap_or_else(|e| panic!("{e}"));
        d["activeTargets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                let s = |k: &str| t[k].as_str().unwrap_or_default().to_owned();
                (
                    t["labels"]["job"].as_str().unwrap_or_default().to_owned(),
                    s("scrapeUrl"),
                    s("health"),
                    s("lastError"),
                )
            })
            .collect()
    }

    /// Waits until every job in `jobs` has stored at least `n` scrapes with `up == 1`.
    pub fn wait_scrapes(&self, jobs: &[&str], n: usize) {
        for job in jobs {
            wait_for(
                &format!("{n} successful scrapes of job {job}"),
                WAIT,
                || {
                    let q = format!("sum_over_time(up{{job=\"{job}\"}}[1m])");
                    match self.try_scalar(&q) {
                        Ok(v) if v >= n as f64 => Ok(()),
                        Ok(v) => Err(format!("{q} = {v}; targets: {:?}", self.targets())),
                        Err(e) => Err(format!("{e}; targets: {:?}", self.targets())),
                    }
                },
            );
        }
    }

    /// A value of Prometheus' own /metrics (0 when the series is absent).
    pub fn self_metric(&self, name: &str) -> f64 {
        let text = get_ok(&self.url("/metrics"));
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.strip_prefix(name))
            .filter(|rest| rest.starts_with(' ') || rest.starts_with('{'))
            .map(|rest| rest.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
            .sum()
    }
}

#[derive(Debug, Clone)]
pub struct Sample {
    pub labels: BTreeMap<String, String>,
    pub ts: f64,
    pub value: f64,
}

#[derive(Debug, Clone)]
pub struct Series {
    pub labels: BTreeMap<String, String>,
    pub points: Vec<(f64, f64)>,
}

fn matrix(expr: &str, d: &serde_json::Value) -> Vec<Series> {
    assert_eq!(d["resultType"], "matrix", "{expr}: {d}");
    d["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| Series {
            labels: labels(&s["metric"]),
            points: s["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    (
                        p[0].as_f64().unwrap(),
                        p[1].as_str().unwrap().parse().unwrap(),
                    )
                })
                .collect(),
        })
        .collect()
}

fn labels(v: &serde_json::Value) -> BTreeMap<String, String> {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                .collect()
        })
        .unwrap_or_default()
}

/// Sample lines of an exposition text.
pub fn sample_count(text: &str) -> usize {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .count()
}

/// `metric-gate --file FILE --apply --relabel-file CONFIG [--subset NAME]`: the output.
pub fn apply_offline(capture: &Path, relabel_file: &Path, subset: Option<&str>) -> String {
    let mut cmd = Command::new(binary());
    cmd.arg("--file")
        .arg(capture)
        .arg("--apply")
        .arg("--relabel-file")
        .arg(relabel_file);
    if let Some(s) = subset {
        cmd.args(["--subset", s]);
    }
    let out = cmd.output().expect("metric-gate --apply");
    assert!(
        out.status.success(),
        "metric-gate --apply: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// [`promtool_check_metrics`] when promtool is installed; otherwise skipped as
/// [`tools_installed`] says (a failure under `METRIC_GATE_E2E=require`).
pub fn promtool_check_if_installed(what: &str, text: &str) {
    if tools_installed(
        &format!("promtool check of {what}"),
        &["promtool"],
        "`prometheus`",
    ) {
        promtool_check_metrics(what, text);
    }
}

/// `promtool check metrics` on `text`: parse errors fail (exit 1), lint findings (exit 3, e.g.
/// node_exporter's camelCase names) are the exporter's style and pass.
pub fn promtool_check_metrics(what: &str, text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let msg = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let code = out.status.code();
    assert!(
        matches!(code, Some(0) | Some(3)) && !msg.contains("error while linting"),
        "promtool check metrics rejected {what} (exit {code:?}):\n{msg}"
    );
}
