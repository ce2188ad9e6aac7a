//! End-to-end: Debian's node_exporter -> the metric-gate binary -> Debian's Prometheus, all on
//! loopback, asserting on what Prometheus stored (via its HTTP API).
//!
//! Needs `prometheus`, `promtool` and `prometheus-node-exporter` in PATH; without them each test
//! prints a SKIPPED message and passes, unless `METRIC_GATE_E2E=require` (as `.ci/run` sets).
//! Run with `cargo test --test e2e -- --nocapture` to see the observed figures.

use std::collections::{BTreeMap, BTreeSet};
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use testkit::dns::DnsServer;
use testkit::e2e::*;

const LO: Ipv4Addr = Ipv4Addr::LOCALHOST;

/// The README's sidecar example: sum over CPUs.
const LABELDROP_CPU: &str = "metric_relabel_configs:\n- action: labeldrop\n  regex: cpu\n";

/// Default list plus two subsets.
const WITH_SUBSETS: &str = "\
metric_relabel_configs:
- action: labeldrop
  regex: cpu
cpu:
- action: keep
  source_labels: [__name__]
  regex: node_cpu_seconds_total
process:
- action: keep
  source_labels: [__name__]
  regex: (process|go)_.*
";

/// Prometheus' synthetic series per target: up, scrape_duration_seconds, scrape_samples_scraped,
/// scrape_samples_post_metric_relabeling, scrape_series_added.
const SYNTHETIC: f64 = 5.0;

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn job<'a>(name: &'a str, metrics_path: &'a str, target: impl ToString) -> Job<'a> {
    Job {
        name,
        metrics_path,
        targets: vec![target.to_string()],
    }
}

fn gate_args(upstream: &str, relabel_file: &Path) -> Vec<String> {
    vec![
        "-H".into(),
        upstream.into(),
        "--relabel-file".into(),
        relabel_file.display().to_string(),
    ]
}

/// deploy/prometheus.yml with each `(from, to)` replaced; every `from` must be in it.
fn deploy_config(replace: &[(&str, &str)]) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy/prometheus.yml");
    let mut text = std::fs::read_to_string(&path).expect("deploy/prometheus.yml");
    for (from, to) in replace {
        assert!(text.contains(from), "{from:?} not in {}", path.display());
        text = text.replace(from, to);
    }
    text
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// Scenario 1: `labeldrop: cpu` through metric-gate stores exactly
/// `sum without(cpu)` of the direct scrape, and the series counts per job are what `--apply`
/// predicts offline on a capture of the same exporter.
#[test]
fn sidecar_aggregation_is_exact() {
    if !tools_present("sidecar_aggregation_is_exact") {
        return;
    }
    let dir = tempdir();
    let ne = NodeExporter::start(dir.path(), LO, free_port(LO));
    let relabel = write(dir.path(), "relabel.yaml", LABELDROP_CPU);
    let gate = GateProc::start(dir.path(), &gate_args(&ne.url(), &relabel));
    // The shipped deploy/prometheus.yml (README, "Try it with Prometheus"), on this test's ports and
    // at a 1 s interval.
    let prom = Prometheus::start(
        dir.path(),
        &deploy_config(&[
            ("127.0.0.1:9100", &ne.addr.to_string()),
            ("127.0.0.1:9101", &gate.addr.to_string()),
            ("scrape_interval: 5s", "scrape_interval: 1s"),
            ("scrape_timeout: 5s", "scrape_timeout: 1s"),
        ]),
    );
    prom.wait_scrapes(&["direct", "gate"], 10);

    // Series counts. node_exporter's series set is stable from one scrape to the next on a
    // quiet machine (same collectors, same devices); if it changed between the capture and
    // Prometheus' scrapes (a network interface or mount appearing), the figures would disagree
    // for one round, so the comparison is retried a few times on a fresh capture.
    let mut last = String::new();
    let counts = (0..5).find_map(|round| {
        if round > 0 {
            std::thread::sleep(Duration::from_millis(1500));
        }
        let capture_text = get_ok(&ne.url());
        let capture = write(dir.path(), "capture.prom", &capture_text);
        let captured = sample_count(&capture_text) as f64;
        let predicted = sample_count(&apply_offline(&capture, &relabel, None)) as f64;
        let scraped_direct = prom.scalar(r#"scrape_samples_scraped{job="direct"}"#);
        let scraped_gate = prom.scalar(r#"scrape_samples_scraped{job="gate"}"#);
        let stored_direct = prom.scalar(r#"count({job="direct"})"#) - SYNTHETIC;
        let stored_gate = prom.scalar(r#"count({job="gate"})"#) - SYNTHETIC;
        let figures = (
            captured,
            predicted,
            scraped_direct,
            scraped_gate,
            stored_direct,
            stored_gate,
        );
        last = format!(
            "capture {captured}, --apply predicts {predicted}; scraped direct {scraped_direct}, \
             gate {scraped_gate}; stored series direct {stored_direct}, gate {stored_gate}"
        );
        eprintln!("scenario 1, round {round}: {last}");
        (captured == scraped_direct
            && captured == stored_direct
            && predicted == scraped_gate
            && predicted == stored_gate)
            .then_some(figures)
    });
    let (captured, predicted, ..) =
        counts.unwrap_or_else(|| panic!("series counts disagree after 5 rounds: {last}"));
    assert!(predicted < captured, "labeldrop cpu must reduce: {last}");

    // No `cpu` label through the gate, one series per mode.
    let with_cpu = prom.query(r#"{job="gate", cpu!=""}"#);
    assert!(
        with_cpu.is_empty(),
        "gate series with a cpu label: {with_cpu:?}"
    );
    let ncpu = prom.scalar(r#"count(node_cpu_seconds_total{job="direct", mode="idle"})"#);
    let modes = prom.scalar(r#"count(count by(mode)(node_cpu_seconds_total{job="direct"}))"#);
    assert_eq!(
        prom.scalar(r#"count(node_cpu_seconds_total{job="gate"})"#),
        modes
    );

    // Values: at every second of the last 8 s, per mode, Prometheus' own
    // sum without(cpu) over the direct scrape vs the gate's series. The two jobs are scraped at
    // different instants (their offsets within the 1 s interval differ), so the values differ
    // by what the CPUs accumulated in between: all modes of all CPUs together advance by at most
    // `ncpu` seconds per wall-clock second, so for one mode
    //   |direct - gate| <= ncpu * (|t_direct - t_gate| + 0.25 s) + 0.01
    // where t_* are the stored sample timestamps (Prometheus' scrape start times), 0.25 s covers
    // the gap between a scrape's start and the moment node_exporter reads /proc/stat (for the
    // gate: Prometheus -> metric-gate -> node_exporter, a few ms on loopback, generously
    // bounded), and 0.01 is node_exporter's resolution (USER_HZ ticks printed with 2 decimals)
    // plus float summation order.
    let end = now().floor();
    let start = end - 8.0;
    let direct = prom.range(
        r#"sum without(cpu, job, instance)(node_cpu_seconds_total{job="direct"})"#,
        start,
        end,
        1.0,
    );
    let gated = prom.range(
        r#"sum without(job, instance)(node_cpu_seconds_total{job="gate"})"#,
        start,
        end,
        1.0,
    );
    let t_direct = prom.range(
        r#"max(timestamp(node_cpu_seconds_total{job="direct", mode="idle"}))"#,
        start,
        end,
        1.0,
    );
    let t_gate = prom.range(
        r#"timestamp(node_cpu_seconds_total{job="gate", mode="idle"})"#,
        start,
        end,
        1.0,
    );
    let at = |s: &Series, t: f64| {
        s.points
            .iter()
            .find(|p| (p.0 - t).abs() < 1e-3)
            .map(|p| p.1)
    };
    let by_mode = |v: &[Series]| -> BTreeMap<String, Series> {
        v.iter()
            .map(|s| (s.labels["mode"].clone(), s.clone()))
            .collect()
    };
    let (direct, gated) = (by_mode(&direct), by_mode(&gated));
    assert_eq!(
        direct.keys().collect::<Vec<_>>(),
        gated.keys().collect::<Vec<_>>()
    );
    let (mut compared, mut exact, mut worst_excess) = (0, 0, f64::MIN);
    let (mut max_skew, mut max_diff, mut max_tolerance) = (0f64, 0f64, 0f64);
    for step in 0..=8 {
        let t = start + step as f64;
        let (Some(td), Some(tg)) = (at(&t_direct[0], t), at(&t_gate[0], t)) else {
            continue;
        };
        let skew = (td - tg).abs();
        let tolerance = ncpu * (skew + 0.25) + 0.01;
        for (mode, d) in &direct {
            let (Some(dv), Some(gv)) = (at(d, t), at(&gated[mode], t)) else {
                continue;
            };
            let diff = (dv - gv).abs();
            compared += 1;
            max_skew = max_skew.max(skew);
            max_diff = max_diff.max(diff);
            max_tolerance = max_tolerance.max(tolerance);
            if diff < 1e-6 * dv.abs().max(1.0) {
                exact += 1;
            }
            worst_excess = worst_excess.max(diff - ncpu * skew);
            assert!(
                diff <= tolerance,
                "mode {mode} at {t}: direct sum {dv} vs gate {gv}: |diff| {diff} > tolerance \
                 {tolerance} (ncpu {ncpu}, skew {skew:.3} s)"
            );
        }
    }
    assert!(
        compared >= 5 * modes as usize,
        "only {compared} comparisons"
    );
    eprintln!(
        "scenario 1: captured {captured} series, gate {predicted}; {ncpu} cpus, {modes} modes; \
         {compared} (mode, instant) pairs within tolerance, {exact} exactly equal; \
         max skew {max_skew:.3} s, max |diff| {max_diff:.3} (tolerance up to \
         {max_tolerance:.3}), worst |diff| - ncpu*skew = {worst_excess:.4}"
    );
    drop(prom);
    drop(gate);
    drop(ne);
}

/// Scenario 2: a subset scraped as its own job stores samples stamped with the upstream fetch
/// time (which follows a scrape of the default list), with no out-of-order or duplicate errors.
#[test]
fn subset_samples_carry_upstream_fetch_time() {
    if !tools_present("subset_samples_carry_upstream_fetch_time") {
        return;
    }
    let dir = tempdir();
    let ne = NodeExporter::start(dir.path(), LO, free_port(LO));
    let relabel = write(dir.path(), "relabel.yaml", WITH_SUBSETS);
    let gate = GateProc::start(dir.path(), &gate_args(&ne.url(), &relabel));
    let prom = Prometheus::start(
        dir.path(),
        &prometheus_config(&[
            job("gate", "/metrics", gate.addr),
            job("gate_cpu", "/metrics/cpu", gate.addr),
        ]),
    );
    prom.wait_scrapes(&["gate", "gate_cpu"], 8);

    let stored = prom.raw(r#"node_cpu_seconds_total{job="gate_cpu", cpu="0", mode="idle"}[20s]"#);
    assert_eq!(stored.len(), 1, "{stored:?}");
    let sample_ts: Vec<f64> = stored[0].points.iter().map(|p| p.0).collect();
    let gate_scrapes: Vec<f64> = prom.raw(r#"up{job="gate"}[20s]"#)[0]
        .points
        .iter()
        .map(|p| p.0)
        .collect();
    let subset_scrapes: Vec<f64> = prom.raw(r#"up{job="gate_cpu"}[20s]"#)[0]
        .points
        .iter()
        .map(|p| p.0)
        .collect();
    // Every stored subset sample's timestamp is an upstream fetch: within 500 ms after a
    // Prometheus scrape of /metrics (which made metric-gate fetch), or the warm-up fetch before
    // the first of them; and never the subset job's own scrape time.
    let first_gate = gate_scrapes[0];
    let mut matched = 0;
    for t in &sample_ts {
        let after_gate_scrape = gate_scrapes
            .iter()
            .any(|g| *t >= *g - 0.001 && *t - *g < 0.5);
        assert!(
            after_gate_scrape || *t < first_gate,
            "subset sample at {t} follows no /metrics scrape {gate_scrapes:?}"
        );
        matched += usize::from(after_gate_scrape);
        assert!(
            !subset_scrapes.iter().any(|s| (s - t).abs() < 0.0005),
            "subset sample at {t} carries the subset scrape time, not the fetch time"
        );
    }
    assert!(
        sample_ts.windows(2).all(|w| w[0] < w[1]),
        "timestamps not increasing: {sample_ts:?}"
    );
    assert!(matched >= 5, "{matched} samples matched a /metrics scrape");
    assert!(
        sample_ts.len() <= gate_scrapes.len() + 1,
        "more distinct subset timestamps ({}) than upstream fetches ({})",
        sample_ts.len(),
        gate_scrapes.len()
    );

    // Prometheus' own counters: the metric names must exist (else the zero proves nothing).
    let own = get_ok(&prom.url("/metrics"));
    let mut errors = BTreeMap::new();
    for name in [
        "prometheus_target_scrapes_sample_out_of_order_total",
        "prometheus_target_scrapes_sample_duplicate_timestamp_total",
        "prometheus_target_scrapes_sample_out_of_bounds_total",
    ] {
        assert!(own.contains(name), "{name} not in Prometheus' /metrics");
        errors.insert(name, prom.self_metric(name));
    }
    assert!(
        errors.values().all(|v| *v == 0.0),
        "Prometheus rejected samples: {errors:?}"
    );
    eprintln!(
        "scenario 2: {} subset samples in 20 s, {matched} stamped 0-500 ms after one of {} \
         /metrics scrapes, none at one of the {} subset scrape times; Prometheus errors {errors:?}",
        sample_ts.len(),
        gate_scrapes.len(),
        subset_scrapes.len()
    );
}

/// Scenario 3: dns+ over three node_exporters on 127.0.0.1-3 (same port) through a DNS server on
/// loopback; health series per target; one exporter stopped shows as 0 while the rest goes on.
#[test]
fn dns_fan_out_over_three_node_exporters() {
    if !tools_present("dns_fan_out_over_three_node_exporters") {
        return;
    }
    let dir = tempdir();
    let ips = [LO, Ipv4Addr::new(127, 0, 0, 2), Ipv4Addr::new(127, 0, 0, 3)];
    let port = free_port_on_all(&ips);
    let mut nes: Vec<NodeExporter> = ips
        .iter()
        .map(|ip| NodeExporter::start(dir.path(), *ip, port))
        .collect();
    let dns = DnsServer::start();
    dns.set_a("exporters.test", &ips);
    let relabel = write(dir.path(), "relabel.yaml", LABELDROP_CPU);
    let mut args = gate_args(
        &format!("dns+http://exporters.test:{port}/metrics"),
        &relabel,
    );
    args.extend(["--dns-server".into(), dns.addr.to_string()]);
    let gate = GateProc::start(dir.path(), &args);
    let prom = Prometheus::start(
        dir.path(),
        &prometheus_config(&[
            job("gate", "/metrics", gate.addr),
            job("direct", "/metrics", nes[0].addr),
        ]),
    );
    prom.wait_scrapes(&["gate", "direct"], 3);

    let targets: BTreeSet<String> = ips.iter().map(|ip| format!("{ip}:{port}")).collect();
    let health = |expect: &BTreeMap<String, f64>| -> Result<(), String> {
        let got: BTreeMap<String, f64> = prom
            .try_query(r#"metric_gate_upstream_up{job="gate"}"#)?
            .into_iter()
            .map(|s| (s.labels["target"].clone(), s.value))
            .collect();
        if &got == expect {
            Ok(())
        } else {
            Err(format!("metric_gate_upstream_up {got:?}"))
        }
    };
    let all_up: BTreeMap<String, f64> = targets.iter().map(|t| (t.clone(), 1.0)).collect();
    wait_for("three targets up", WAIT, || health(&all_up));
    // An info gauge, 1 per exporter: the built-in rule keeps 1 instead of summing to 3.
    assert_eq!(prom.scalar(r#"node_exporter_build_info{job="gate"}"#), 1.0);
    let (ratio_all, diff_all) = compare_to_direct(&prom, 3.0);
    assert!(prom.query(r#"{job="gate", cpu!=""}"#).is_empty());
    promtool_check_metrics("dns+ /metrics", &get_ok(&gate.url("/metrics")));

    // Stop the exporter on 127.0.0.3.
    nes[2].proc.stop();
    let mut one_down = all_up.clone();
    one_down.insert(format!("127.0.0.3:{port}"), 0.0);
    wait_for("127.0.0.3 reported down", WAIT, || health(&one_down));
    assert_eq!(prom.scalar(r#"up{job="gate"}"#), 1.0);
    // The others' series keep coming: fresh samples after the stop.
    let t1 = prom.scalar(r#"timestamp(node_cpu_seconds_total{job="gate", mode="idle"})"#);
    wait_for("fresh gate samples", WAIT, || {
        let t = prom.try_scalar(r#"timestamp(node_cpu_seconds_total{job="gate", mode="idle"})"#)?;
        (t >= t1 + 2.0).then_some(()).ok_or(format!("{t} vs {t1}"))
    });
    assert_eq!(prom.scalar(r#"node_exporter_build_info{job="gate"}"#), 1.0);
    // The stopped exporter's counters are carried (its last value stays in the sum), so the
    // summed counter does not drop when it leaves: more than the two left, and no reset for
    // Prometheus' rate() over the whole run.
    let gate_idle = prom.scalar(r#"node_cpu_seconds_total{job="gate", mode="idle"}"#);
    let direct_idle = prom.scalar(r#"sum(node_cpu_seconds_total{job="direct", mode="idle"})"#);
    let ratio_two = gate_idle / direct_idle;
    assert!(
        ratio_two > 2.0,
        "gate {gate_idle} vs direct {direct_idle} after a stop"
    );
    let resets = prom.scalar(r#"max(resets(node_cpu_seconds_total{job="gate"}[5m]))"#);
    assert_eq!(
        resets, 0.0,
        "the summed counter dropped when an exporter stopped"
    );
    let series = prom.scalar(r#"scrape_samples_scraped{job="gate"}"#);
    // The three exporters run on one machine with one series set: the sum has the series
    // `--apply` predicts for one of them, less the summary quantiles (never summed across
    // inputs: one input each in `--apply`, several in the sum), plus 2 health series per
    // target.
    let capture = write(dir.path(), "capture.prom", &get_ok(&nes[0].url()));
    let applied = apply_offline(&capture, &relabel, None);
    let quantiles = applied
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains("quantile=\""))
        .count();
    let predicted = (sample_count(&applied) - quantiles) as f64;
    assert_eq!(series, predicted + 2.0 * 3.0, "samples per gate scrape");
    eprintln!(
        "scenario 3: targets {targets:?} all up, node_exporter_build_info kept 1, idle cpu \
         seconds {ratio_all:.4} x direct (|diff - 3 x direct| {diff_all:.3}); after stopping \
         127.0.0.3: {one_down:?}, carried sum {ratio_two:.4} x direct, up 1, \
         {series} samples per scrape; counter resets seen by Prometheus in the gate's sum: \
         {resets}"
    );
    for ne in &mut nes[..2] {
        ne.proc.assert_running();
    }

    // Every target down: the gate's scrape fails (502 naming every target), gate job up == 0.
    for ne in &mut nes[..2] {
        ne.proc.stop();
    }
    wait_for("up == 0 with every target down", WAIT, || {
        match prom.try_scalar(r#"up{job="gate"}"#) {
            Ok(0.0) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    });
    let (status, body) = get(&gate.url("/metrics")).unwrap();
    assert_eq!(status, 502, "{body}");
    for t in &targets {
        assert!(
            body.contains(t.as_str()),
            "502 body does not name {t}: {body}"
        );
    }
    eprintln!(
        "scenario 3: all targets stopped -> up 0, 502 {:?}",
        body.trim()
    );
}

/// Scenario 3's value check: all node_exporters read the same /proc/stat, so the gate's idle
/// CPU seconds are `n` times the direct scrape's `sum without(cpu)`, up to what the CPUs
/// accumulated between the scrapes (as in scenario 1, for each of the `n` summands). Returns the
/// ratio and the absolute difference.
fn compare_to_direct(prom: &Prometheus, n: f64) -> (f64, f64) {
    let ncpu = prom.scalar(r#"count(node_cpu_seconds_total{job="direct", mode="idle"})"#);
    wait_for(&format!("gate idle = {n} x direct idle"), WAIT, || {
        let direct =
            prom.try_scalar(r#"sum(node_cpu_seconds_total{job="direct", mode="idle"})"#)?;
        let gate = prom.try_scalar(r#"node_cpu_seconds_total{job="gate", mode="idle"}"#)?;
        let t_direct = prom
            .try_scalar(r#"max(timestamp(node_cpu_seconds_total{job="direct", mode="idle"}))"#)?;
        let t_gate =
            prom.try_scalar(r#"timestamp(node_cpu_seconds_total{job="gate", mode="idle"})"#)?;
        let diff = (gate - n * direct).abs();
        let tolerance = n * (ncpu * ((t_direct - t_gate).abs() + 0.25) + 0.01);
        if diff <= tolerance {
            Ok((gate / direct, diff))
        } else {
            Err(format!(
                "gate {gate} vs {n} x direct {direct}: |diff| {diff} > {tolerance}"
            ))
        }
    })
}

/// Scenario 4: promtool accepts every endpoint's output and Prometheus scrapes every gate job
/// cleanly, with the number of samples `--apply` predicts.
#[test]
fn every_endpoint_is_valid_and_scraped_cleanly() {
    if !tools_present("every_endpoint_is_valid_and_scraped_cleanly") {
        return;
    }
    let dir = tempdir();
    let ne = NodeExporter::start(dir.path(), LO, free_port(LO));
    let relabel = write(dir.path(), "relabel.yaml", WITH_SUBSETS);
    let gate = GateProc::start(dir.path(), &gate_args(&ne.url(), &relabel));
    let jobs = [
        ("gate", "/metrics", None),
        ("gate_cpu", "/metrics/cpu", Some("cpu")),
        ("gate_process", "/metrics/process", Some("process")),
    ];
    for (_, path, _) in jobs {
        promtool_check_metrics(path, &get_ok(&gate.url(path)));
    }
    let prom = Prometheus::start(
        dir.path(),
        &prometheus_config(
            &jobs
                .iter()
                .map(|(name, path, _)| job(name, path, gate.addr))
                .collect::<Vec<_>>(),
        ),
    );
    prom.wait_scrapes(&["gate", "gate_cpu", "gate_process"], 4);
    for (name, path, health, err) in prom.targets() {
        assert_eq!((health.as_str(), err.as_str()), ("up", ""), "{name} {path}");
    }
    let mut figures = vec![];
    for (name, path, subset) in jobs {
        // Every scrape so far succeeded.
        let ups = prom.scalar(&format!("count_over_time(up{{job=\"{name}\"}}[1m])"));
        let oks = prom.scalar(&format!("sum_over_time(up{{job=\"{name}\"}}[1m])"));
        assert_eq!(ups, oks, "{name}: {oks} of {ups} scrapes succeeded");
        let capture = write(dir.path(), "capture.prom", &get_ok(&ne.url()));
        let predicted = sample_count(&apply_offline(&capture, &relabel, subset)) as f64;
        let scraped = prom.scalar(&format!("scrape_samples_scraped{{job=\"{name}\"}}"));
        let kept = prom.scalar(&format!(
            "scrape_samples_post_metric_relabeling{{job=\"{name}\"}}"
        ));
        assert_eq!((scraped, kept), (predicted, predicted), "{name} {path}");
        figures.push(format!(
            "{name} {path}: {oks}/{ups} scrapes up, {scraped} samples"
        ));
    }
    // The self-metrics endpoint is OpenMetrics: Prometheus parses it too.
    let own = get_ok(&gate.url("/-/metrics"));
    assert!(own.contains("metric_gate_http_requests_total"), "{own}");
    eprintln!("scenario 4: {}", figures.join("; "));
}

/// Scenario 5: upstream down -> Prometheus stores up == 0 for the gate, metric-gate answers 502
/// naming the cause and stays up; upstream back -> up == 1 again.
#[test]
fn upstream_down_then_back() {
    if !tools_present("upstream_down_then_back") {
        return;
    }
    let dir = tempdir();
    let port = free_port(LO);
    let mut ne = NodeExporter::start(dir.path(), LO, port);
    let relabel = write(dir.path(), "relabel.yaml", WITH_SUBSETS);
    let mut gate = GateProc::start(dir.path(), &gate_args(&ne.url(), &relabel));
    let prom = Prometheus::start(
        dir.path(),
        &prometheus_config(&[
            job("gate", "/metrics", gate.addr),
            job("gate_cpu", "/metrics/cpu", gate.addr),
        ]),
    );
    prom.wait_scrapes(&["gate", "gate_cpu"], 2);
    let series_up = prom.scalar(r#"scrape_samples_scraped{job="gate"}"#);
    const SUBSET_TS: &str =
        r#"timestamp(node_cpu_seconds_total{job="gate_cpu", cpu="0", mode="idle"})"#;

    let p = &prom;
    let up_is = |want: f64| {
        move || match p.try_scalar(r#"up{job="gate"}"#) {
            Ok(v) if v == want => Ok(()),
            other => Err(format!("up = {other:?}")),
        }
    };
    const SUBSET_SCRAPES: &str = r#"count_over_time(up{job="gate_cpu"}[1m])"#;
    ne.proc.stop();
    let stopped_at = now();
    let subset_scrapes_before = prom.scalar(SUBSET_SCRAPES);
    wait_for("up == 0 for the gate", WAIT, up_is(0.0));
    let (status, body) = get(&gate.url("/metrics")).unwrap();
    assert_eq!(status, 502, "{body}");
    let target = format!("127.0.0.1:{port}");
    assert!(
        body.contains(&target) && body.to_lowercase().contains("connect"),
        "the 502 body names neither the target {target} nor the cause: {body}"
    );
    let last_error = prom
        .targets()
        .into_iter()
        .find(|t| t.0 == "gate")
        .unwrap()
        .3;
    assert!(last_error.contains("502"), "lastError: {last_error}");
    assert_eq!(get(&gate.url("/-/healthy")).unwrap().0, 200);
    gate.proc.assert_running();
    // Documented behaviour: a subset serves the last successful scrape's result, so during the
    // outage its job stays up but stores nothing new (the samples keep their old fetch time, which
    // Prometheus takes as the same samples again, without errors).
    wait_for("2 subset scrapes during the outage", WAIT, || {
        let n = prom.try_scalar(SUBSET_SCRAPES)?;
        (n >= subset_scrapes_before + 2.0)
            .then_some(())
            .ok_or(format!("{n}"))
    });
    assert_eq!(
        prom.scalar(r#"sum_over_time(up{job="gate_cpu"}[1m])"#),
        prom.scalar(SUBSET_SCRAPES)
    );
    let subset_ts_down = prom.scalar(SUBSET_TS);
    assert!(
        subset_ts_down < stopped_at,
        "subset sample at {subset_ts_down}, after the upstream stopped at {stopped_at}"
    );

    let ne = NodeExporter::start(dir.path(), LO, port);
    wait_for("up == 1 again", WAIT, up_is(1.0));
    let series_back = prom.scalar(r#"scrape_samples_scraped{job="gate"}"#);
    assert_eq!(series_back, series_up);
    wait_for("fresh subset samples", WAIT, || {
        let t = prom.try_scalar(SUBSET_TS)?;
        (t > stopped_at).then_some(()).ok_or(format!("{t}"))
    });
    for name in [
        "prometheus_target_scrapes_sample_out_of_order_total",
        "prometheus_target_scrapes_sample_duplicate_timestamp_total",
    ] {
        assert_eq!(prom.self_metric(name), 0.0, "{name}");
    }
    gate.proc.assert_running();
    eprintln!(
        "scenario 5: up 1 ({series_up} samples) -> exporter stopped -> up 0, 502 body {:?}, \
         Prometheus lastError {last_error:?}, subset job still up with its last sample from \
         {:.1} s before the stop -> exporter restarted -> up 1 ({series_back} samples), subset fresh",
        body.trim(),
        stopped_at - subset_ts_down
    );
    drop(ne);
}

/// A relabel rule that adds a label with a UTF-8 name (Prometheus 3 validates names as UTF-8)
/// to `node_cpu_seconds_total`, in the default list and in subset `cpu`.
const ADD_UTF8_LABEL: &str = "\
metric_relabel_configs:
- source_labels: [__name__]
  regex: node_cpu_seconds_total
  target_label: utf-8.label
  replacement: x
cpu:
- action: keep
  source_labels: [__name__]
  regex: node_cpu_seconds_total
- target_label: utf-8.label
  replacement: x
";

/// Scenario 6: a UTF-8 label name reaches Prometheus 2.42, which cannot read one: metric-gate
/// answers its Accept (OpenMetrics first, no `escaping=`) in text 0.0.4 with the name escaped
/// with underscores, so every scrape succeeds and the series are stored as `utf_8_label`, as
/// many as the direct scrape stores.
#[test]
fn utf8_label_reaches_prometheus_2_escaped() {
    if !tools_present("utf8_label_reaches_prometheus_2_escaped") {
        return;
    }
    let dir = tempdir();
    let ne = NodeExporter::start(dir.path(), LO, free_port(LO));
    let relabel = write(dir.path(), "relabel.yaml", ADD_UTF8_LABEL);
    let gate = GateProc::start(dir.path(), &gate_args(&ne.url(), &relabel));
    // A client that names no escaping scheme (curl here, Prometheus 2 below) gets the name
    // escaped, and promtool (2.42's parser) reads it.
    let raw = get_ok(&gate.url("/metrics"));
    assert!(raw.contains("utf_8_label=\"x\""), "{raw}");
    promtool_check_metrics("/metrics", &raw);
    let prom = Prometheus::start(
        dir.path(),
        &prometheus_config(&[
            job("direct", "/metrics", ne.addr),
            job("gate", "/metrics", gate.addr),
            job("gate_cpu", "/metrics/cpu", gate.addr),
        ]),
    );
    prom.wait_scrapes(&["direct", "gate", "gate_cpu"], 4);
    for (name, path, health, err) in prom.targets() {
        assert_eq!((health.as_str(), err.as_str()), ("up", ""), "{name} {path}");
    }
    for job in ["gate", "gate_cpu"] {
        let ups = prom.scalar(&format!("count_over_time(up{{job=\"{job}\"}}[1m])"));
        let oks = prom.scalar(&format!("sum_over_time(up{{job=\"{job}\"}}[1m])"));
        assert_eq!(ups, oks, "{job}: {oks} of {ups} scrapes succeeded");
    }
    let direct = prom.scalar(r#"count(node_cpu_seconds_total{job="direct"})"#);
    for job in ["gate", "gate_cpu"] {
        let escaped = prom.scalar(&format!(
            "count(node_cpu_seconds_total{{job=\"{job}\", utf_8_label=\"x\"}})"
        ));
        assert_eq!(escaped, direct, "{job}");
    }
    // Only node_cpu_seconds_total got the label.
    let labelled = prom.scalar(r#"count({job="gate", utf_8_label="x"})"#);
    assert_eq!(labelled, direct);
    eprintln!("scenario 6: {direct} node_cpu_seconds_total series stored with utf_8_label");
}

/// Scenario 7's pods: `a` restarts before its `RESTART_AT`-th request (its counter drops to a
/// small value and its `process_start_time_seconds` moves), `b` and `c` keep counting. Each body
/// serves `req_total` (a counter: the gate keeps the sum monotonic) and `plain_req` with the
/// same values and no `# TYPE` (untyped: the gate sums it plainly, as without counter state).
/// After the last body the values stay (the sequence repeats its last body).
const RESTART_AT: usize = 6;
const POD_BODIES: usize = 14;

fn pod_value(pod: usize, i: usize) -> f64 {
    let i = i as f64;
    match pod {
        0 if (i as usize) < RESTART_AT => 100.0 + 10.0 * i,
        0 => 4.0 + 10.0 * (i - RESTART_AT as f64),
        1 => 200.0 + 7.0 * i,
        _ => 50.0 + 3.0 * i,
    }
}

fn pod_bodies(pod: usize, started: f64, restarted: f64) -> Vec<String> {
    (0..POD_BODIES)
        .map(|i| {
            let v = pod_value(pod, i);
            let start = if pod == 0 && i >= RESTART_AT {
                restarted
            } else {
                started
            };
            format!(
                "# HELP req_total Requests.\n# TYPE req_total counter\nreq_total{{code=\"200\"}} {v}\n\
                 plain_req{{code=\"200\"}} {v}\n\
                 # TYPE process_start_time_seconds gauge\nprocess_start_time_seconds {start}\n"
            )
        })
        .collect()
}

/// The pods' true increase from their `from`-th body to their last, under Prometheus' reset
/// rule (a fall is a reset: the new value is counted).
fn true_increase(from: usize) -> f64 {
    (0..3)
        .map(|pod| {
            (from + 1..POD_BODIES)
                .map(|i| {
                    let (prev, cur) = (pod_value(pod, i - 1), pod_value(pod, i));
                    if cur < prev {
                        cur
                    } else {
                        cur - prev
                    }
                })
                .sum::<f64>()
        })
        .sum()
}

/// Scenario 7: Prometheus scrapes the `dns+` aggregator over three fake pods while one of them
/// restarts. The summed counter shows no reset to Prometheus (`resets()` is 0), its stored
/// samples grow by exactly the pods' true increase (last - first), and `increase()` over the
/// window is that increase up to Prometheus' extrapolation. The same values without a `# TYPE`
/// (summed plainly, as the gate did before it kept counter state) show the reset and a false
/// increase.
#[test]
fn pod_restart_behind_dns_is_no_reset_for_prometheus() {
    if !tools_installed(
        "e2e test pod_restart_behind_dns_is_no_reset_for_prometheus",
        &["prometheus", "promtool"],
        "`prometheus`",
    ) {
        return;
    }
    let dir = tempdir();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let started = now() - 3600.0;
    let restarted = now();
    let (port, _pods) = rt.block_on(testkit::upstream::upstreams_on_loopbacks(
        (0..3)
            .map(|pod| testkit::upstream::Behave::Sequence(pod_bodies(pod, started, restarted)))
            .collect(),
    ));
    let dns = DnsServer::start();
    let ips: Vec<Ipv4Addr> = (2..5).map(|i| Ipv4Addr::new(127, 0, 0, i)).collect();
    dns.set_a("pods.test", &ips);
    let relabel = write(dir.path(), "relabel.yaml", "metric_relabel_configs: []\n");
    let mut args = gate_args(&format!("dns+http://pods.test:{port}/metrics"), &relabel);
    args.extend([
        "--dns-server".into(),
        dns.addr.to_string(),
        "--no-target-health".into(),
    ]);
    let gate = GateProc::start(dir.path(), &args);
    let prom = Prometheus::start(
        dir.path(),
        &prometheus_config(&[job("gate", "/metrics", gate.addr)]),
    );
    // Every body served, then one more scrape of the last one: the values grow with every
    // body, so two equal samples in a row mean the last body is stored.
    let samples = wait_for(
        "the pods' last bodies stored",
        Duration::from_secs(60),
        || {
            let raw = prom.raw(r#"req_total{job="gate"}[5m]"#);
            let points = raw.first().map(|s| s.points.clone()).unwrap_or_default();
            let frozen =
                points.len() >= 2 && points[points.len() - 1].1 == points[points.len() - 2].1;
            if frozen {
                Ok(points)
            } else {
                Err(format!("{points:?}"))
            }
        },
    );
    let values: Vec<f64> = samples.iter().map(|p| p.1).collect();
    assert!(
        values.windows(2).all(|w| w[1] >= w[0]),
        "the summed counter fell: {values:?}"
    );
    // The first stored sample is the plain sum of some body `from` (before the restart the
    // plain sum grows by 20 per body, so it names the body).
    let first = values[0];
    let from = (0..RESTART_AT)
        .find(|&i| (0..3).map(|p| pod_value(p, i)).sum::<f64>() == first)
        .unwrap_or_else(|| panic!("first stored sample {first} is no body's plain sum"));
    let want = true_increase(from);
    let last = *values.last().unwrap();
    assert_eq!(last - first, want, "stored samples {values:?}");

    let resets = prom.scalar(r#"resets(req_total{job="gate"}[5m])"#);
    assert_eq!(resets, 0.0, "Prometheus saw the summed counter reset");
    // `increase()` extrapolates: by at most half the average interval at each end of the
    // window (less towards the start, where a counter is not extrapolated below zero), i.e. by
    // at most one average interval: (last - first) * n / (n - 1) for n samples. Samples stored
    // after `samples` was read only add frozen values (n grows, the bound shrinks towards it).
    let n = samples.len() as f64;
    let increase = prom.scalar(r#"increase(req_total{job="gate"}[5m])"#);
    assert!(
        increase >= want - 1e-9 && increase <= want * n / (n - 1.0) + 1e-9,
        "increase() {increase}, true increase {want}, {n} samples"
    );

    // Without counter state (the untyped copy is summed plainly), the restart is a reset.
    let plain_resets = prom.scalar(r#"resets(plain_req{job="gate"}[5m])"#);
    let plain_increase = prom.scalar(r#"increase(plain_req{job="gate"}[5m])"#);
    assert!(plain_resets >= 1.0, "the plain sum did not reset");
    assert!(
        plain_increase > want * n / (n - 1.0) + 1.0,
        "plain sum's increase() {plain_increase} vs true increase {want}"
    );
    eprintln!(
        "scenario 7: {n} samples from body {from}: summed counter {first} -> {last}, \
         resets() 0, increase() {increase:.2} (true increase {want}); plain sum: resets() \
         {plain_resets}, increase() {plain_increase:.2}"
    );
}
