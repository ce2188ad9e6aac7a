//! The deploy/ examples do what their comments say (issue 14).
//!
//! Each relabel config is taken out of its ConfigMap and run with `--file PAYLOAD --apply`
//! (and `--subset NAME` for every subset) on an ingress-nginx-shaped payload generated here:
//! every family the controller exposes (request histograms and counters, the controller's
//! reload, check, admission, leader and certificate metrics, the nginx process metrics, the Go
//! client's `go_*`, `process_*` and `promhttp_*`), with the labels the controller writes. The
//! aggregator's payload holds two controller pods, as its fan-out merge would see them.
//!
//! Then the manifests are held against each other: every list has a scrape job and an
//! operator endpoint, containers mount the ConfigMap they name, selectors select what they
//! should. The scrape configs go through `promtool check config` and the operator objects
//! through `scripts/check_operator_manifests.py` (the operator's CRD schemas, from PyPI); when
//! either tool is missing the test prints SKIPPED and passes, unless `METRIC_GATE_E2E=require`
//! (as `.ci/run` sets).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;
use serde_yaml_ng::Value;

const BIN: &str = env!("CARGO_BIN_EXE_metric-gate");

fn repo(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

// ---------------------------------------------------------------------------------------------
// YAML

/// Every document of a (multi-document) YAML file, empty ones left out.
fn yaml_docs(rel: &str) -> Vec<Value> {
    let path = repo(rel);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{rel}: {e}"));
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).unwrap_or_else(|e| panic!("{rel}: {e}")))
        .filter(|v| !v.is_null())
        .collect()
}

/// The value at a dotted path (`spec.template.metadata.labels`); Null when absent.
fn at<'a>(v: &'a Value, path: &str) -> &'a Value {
    static NULL: Value = Value::Null;
    path.split('.')
        .try_fold(v, |v, key| v.get(key))
        .unwrap_or(&NULL)
}

fn text<'a>(v: &'a Value, path: &str) -> &'a str {
    at(v, path)
        .as_str()
        .unwrap_or_else(|| panic!("{path}: not a string in {v:?}"))
}

fn seq<'a>(v: &'a Value, path: &str) -> &'a [Value] {
    at(v, path).as_sequence().map_or(&[], |s| s.as_slice())
}

/// A string map (labels, selectors, annotations) as a BTreeMap.
fn string_map(v: &Value, path: &str) -> BTreeMap<String, String> {
    at(v, path)
        .as_mapping()
        .map(|m| {
            m.iter()
                .map(|(k, v)| {
                    let value = match v {
                        Value::String(s) => s.clone(),
                        other => panic!("{path}.{k:?}: not a string: {other:?}"),
                    };
                    (k.as_str().unwrap_or_default().to_string(), value)
                })
                .collect()
        })
        .unwrap_or_default()
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| {
            at(d, "kind").as_str() == Some(kind) && at(d, "metadata.name").as_str() == Some(name)
        })
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

fn container<'a>(pod_spec: &'a Value, name: &str) -> &'a Value {
    seq(pod_spec, "containers")
        .iter()
        .find(|c| at(c, "name").as_str() == Some(name))
        .unwrap_or_else(|| panic!("no container {name}"))
}

/// The value of `--flag=value` among a container's args.
fn arg<'a>(container: &'a Value, flag: &str) -> Option<&'a str> {
    seq(container, "args")
        .iter()
        .filter_map(Value::as_str)
        .find_map(|a| a.strip_prefix(flag)?.strip_prefix('='))
}

fn is_subset(small: &BTreeMap<String, String>, big: &BTreeMap<String, String>) -> bool {
    !small.is_empty() && small.iter().all(|(k, v)| big.get(k) == Some(v))
}

/// The relabel config that container `container_name` of `pod_spec` reads: checks that its
/// `--relabel-file` is a key of `configmap`, mounted through a volume, and returns that text.
fn mounted_config(configmap: &Value, pod_spec: &Value, container_name: &str) -> String {
    let c = container(pod_spec, container_name);
    let file = arg(c, "--relabel-file").expect("--relabel-file");
    let (dir, key) = file.rsplit_once('/').expect("an absolute --relabel-file");
    let mount = seq(c, "volumeMounts")
        .iter()
        .find(|m| at(m, "mountPath").as_str() == Some(dir))
        .unwrap_or_else(|| panic!("nothing mounted at {dir}"));
    let volume = seq(pod_spec, "volumes")
        .iter()
        .find(|v| at(v, "name") == at(mount, "name"))
        .expect("the mounted volume");
    assert_eq!(
        at(volume, "configMap.name"),
        at(configmap, "metadata.name"),
        "{file} comes from another ConfigMap"
    );
    // Not through `at`: the key has a dot.
    at(configmap, "data")
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("the ConfigMap has no {key}"))
        .to_string()
}

/// The list names of a relabel config: `""` for the default list, then the subsets.
fn lists(config: &str) -> Vec<String> {
    let v: Value = serde_yaml_ng::from_str(config).expect("relabel YAML");
    let mut names: Vec<String> = v
        .as_mapping()
        .expect("a mapping")
        .keys()
        .map(|k| match k.as_str() {
            Some("metric_relabel_configs") => String::new(),
            Some(name) => name.to_string(),
            None => panic!("a non-string key"),
        })
        .collect();
    names.sort();
    names
}

fn list_path(list: &str) -> String {
    if list.is_empty() {
        "/metrics".to_string()
    } else {
        format!("/metrics/{list}")
    }
}

// ---------------------------------------------------------------------------------------------
// Running metric-gate

#[derive(Clone, Debug, PartialEq)]
struct Series {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

impl Series {
    fn label(&self, name: &str) -> Option<&str> {
        self.labels.get(name).map(String::as_str)
    }
}

/// Parsed text exposition: samples (labels with empty values left out, as Prometheus does) and
/// `# TYPE` per family. Enough for the payload and the output of this file, whose label values
/// hold no escapes.
struct Exposition {
    series: Vec<Series>,
    types: BTreeMap<String, String>,
}

impl Exposition {
    fn parse(text: &str) -> Self {
        let mut series = Vec::new();
        let mut types = BTreeMap::new();
        for line in text.lines().filter(|l| !l.is_empty()) {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("# TYPE name kind");
                types.insert(name.to_string(), kind.to_string());
                continue;
            }
            if line.starts_with('#') {
                continue;
            }
            let (head, value) = match line.find('}') {
                Some(end) => (&line[..=end], line[end + 1..].trim()),
                None => line.split_once(' ').expect("name value"),
            };
            let value = value.split(' ').next().expect("a value");
            let (name, labels) = head.split_once('{').unwrap_or((head, ""));
            let labels = labels
                .trim_end_matches('}')
                .split("\",")
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once("=\"").expect("name=\"value\"");
                    (k.to_string(), v.trim_end_matches('"').to_string())
                })
                .filter(|(_, v)| !v.is_empty())
                .collect();
            let value = match value {
                "+Inf" => f64::INFINITY,
                v => v.parse().unwrap_or_else(|e| panic!("{line}: {e}")),
            };
            series.push(Series {
                name: name.to_string(),
                labels,
                value,
            });
        }
        Exposition { series, types }
    }

    /// The `# TYPE` of the family a sample belongs to (`x_bucket` -> `x`).
    fn kind(&self, sample: &str) -> &str {
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .filter_map(|s| sample.strip_suffix(s))
            .find(|f| self.types.contains_key(*f))
            .unwrap_or(sample);
        self.types.get(family).map_or("untyped", String::as_str)
    }

    fn names(&self) -> BTreeSet<&str> {
        self.series.iter().map(|s| s.name.as_str()).collect()
    }
}

/// `metric-gate --file payload --relabel-file config --apply [--subset list]`.
fn apply(dir: &Path, payload: &str, config: &str, list: &str) -> Exposition {
    let payload_path = dir.join("payload.prom");
    let config_path = dir.join("relabel.yaml");
    std::fs::write(&payload_path, payload).expect("write payload");
    std::fs::write(&config_path, config).expect("write config");
    let mut cmd = Command::new(BIN);
    cmd.arg("--file")
        .arg(&payload_path)
        .arg("--relabel-file")
        .arg(&config_path)
        .arg("--apply");
    if !list.is_empty() {
        cmd.args(["--subset", list]);
    }
    let out = cmd.output().expect("run metric-gate");
    assert!(
        out.status.success(),
        "metric-gate --apply {list:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Exposition::parse(&String::from_utf8(out.stdout).expect("UTF-8 output"))
}

// ---------------------------------------------------------------------------------------------
// The payload: what an ingress-nginx controller pod exposes

const PREFIX: &str = "nginx_ingress_controller_";
/// (namespace, ingress, service, method, status): one method and status per ingress, so that
/// summing without `path` gives one series per ingress.
const INGRESSES: [(&str, &str, &str, &str, &str); 3] = [
    ("team-a", "shop", "shop-web", "GET", "200"),
    ("team-a", "cart", "cart-api", "POST", "201"),
    ("team-b", "blog", "blog", "GET", "404"),
];
const PATHS: [&str; 2] = ["/", "/api"];
const REQUEST_HISTOGRAMS: [&str; 7] = [
    "bytes_sent",
    "connect_duration_seconds",
    "header_duration_seconds",
    "request_duration_seconds",
    "request_size",
    "response_duration_seconds",
    "response_size",
];
/// Families the Go client library writes for every process: per pod, with no label saying so.
const PER_POD_UNLABELLED: [&str; 4] = [
    "go_goroutines",
    "process_start_time_seconds",
    "process_resident_memory_bytes",
    "promhttp_metric_handler_requests_total",
];

/// `requests` of (ingress, path) on the pod of index `pod`: distinct for every combination, so
/// a wrong sum shows.
fn request_count(ingress: usize, path: usize, pod: usize) -> u64 {
    ((ingress as u64 + 1) * 100 + (path as u64 + 1) * 10) * (pod as u64 + 1)
}

struct Payload {
    out: String,
}

impl Payload {
    fn family(&mut self, name: &str, kind: &str) {
        let _ = writeln!(self.out, "# HELP {name} {name} of the test controller.");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: &str) {
        self.out.push_str(name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{v}\"");
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }
}

/// The exposition of the controller pods `pods`, merged family by family (one pod: what a
/// sidecar reads; several: what the aggregator's fan-out adds up). Families sorted by name,
/// label names sorted, as the Go client writes them.
fn payload(pods: &[&'static str]) -> String {
    let mut p = Payload { out: String::new() };
    let ctl = |pod: &'static str| {
        vec![
            ("controller_class", "k8s.io/ingress-nginx"),
            ("controller_namespace", "ingress-nginx"),
            ("controller_pod", pod),
        ]
    };
    let with = |mut l: Vec<(&'static str, &'static str)>, k, v| {
        l.push((k, v));
        l.sort();
        l
    };
    // Label-free per-pod families: the same series once per pod.
    let unlabelled = |p: &mut Payload, name: &str, kind: &str, value: &str| {
        p.family(name, kind);
        for _ in pods {
            p.sample(name, &[], value);
        }
    };

    p.family("go_gc_duration_seconds", "summary");
    for _ in pods {
        for q in ["0", "0.5", "1"] {
            p.sample("go_gc_duration_seconds", &[("quantile", q)], "4e-05");
        }
        p.sample("go_gc_duration_seconds_sum", &[], "0.5");
        p.sample("go_gc_duration_seconds_count", &[], "1000");
    }
    unlabelled(&mut p, "go_goroutines", "gauge", "97");
    p.family("go_info", "gauge");
    for _ in pods {
        p.sample("go_info", &[("version", "go1.22.8")], "1");
    }
    unlabelled(&mut p, "go_memstats_alloc_bytes", "gauge", "4.2e+07");
    unlabelled(&mut p, "go_threads", "gauge", "12");

    let ingress_labels = |pod: &'static str, i: usize| {
        let (ns, ing, ..) = INGRESSES[i];
        let mut l = ctl(pod);
        l.extend([("ingress", ing), ("namespace", ns)]);
        l.sort();
        l
    };
    let request_labels = |pod: &'static str, i: usize, path: usize| {
        let (ns, ing, svc, method, status) = INGRESSES[i];
        let mut l = ctl(pod);
        // The controller writes `canary=""` for requests to a non-canary backend.
        l.extend([
            ("canary", ""),
            ("host", "example.com"),
            ("ingress", ing),
            ("method", method),
            ("namespace", ns),
            ("path", PATHS[path]),
            ("service", svc),
            ("status", status),
        ]);
        l.sort();
        l
    };
    let histogram = |p: &mut Payload, suffix: &str| {
        let name = format!("{PREFIX}{suffix}");
        p.family(&name, "histogram");
        for (k, pod) in pods.iter().enumerate() {
            for i in 0..INGRESSES.len() {
                for path in 0..PATHS.len() {
                    let count = request_count(i, path, k);
                    let labels = request_labels(pod, i, path);
                    for (le, share) in [("0.1", 4), ("1", 2), ("+Inf", 1)] {
                        let mut l = labels.clone();
                        l.push(("le", le));
                        p.sample(&format!("{name}_bucket"), &l, &(count / share).to_string());
                    }
                    p.sample(&format!("{name}_sum"), &labels, &(count * 3).to_string());
                    p.sample(&format!("{name}_count"), &labels, &count.to_string());
                }
            }
        }
    };
    let per_controller = |p: &mut Payload, suffix: &str, kind: &str, value: &str| {
        let name = format!("{PREFIX}{suffix}");
        p.family(&name, kind);
        for pod in pods {
            p.sample(&name, &ctl(pod), value);
        }
    };
    let per_ingress = |p: &mut Payload, suffix: &str, kind: &str| {
        let name = format!("{PREFIX}{suffix}");
        p.family(&name, kind);
        for pod in pods {
            for i in 0..INGRESSES.len() {
                p.sample(&name, &ingress_labels(pod, i), "3");
            }
        }
    };

    for suffix in [
        "admission_config_size",
        "admission_render_duration",
        "admission_render_ingresses",
        "admission_roundtrip_duration",
        "admission_tested_duration",
        "admission_tested_ingresses",
    ] {
        per_controller(&mut p, suffix, "gauge", "2");
    }
    histogram(&mut p, "bytes_sent");
    per_ingress(&mut p, "check_errors", "counter");
    per_ingress(&mut p, "check_success", "counter");
    per_controller(&mut p, "config_hash", "gauge", "1.2345678901e+10");
    per_controller(&mut p, "config_last_reload_successful", "gauge", "1");
    per_controller(
        &mut p,
        "config_last_reload_successful_timestamp_seconds",
        "gauge",
        "1.7309e+09",
    );
    histogram(&mut p, "connect_duration_seconds");
    per_controller(&mut p, "errors", "counter", "0");
    histogram(&mut p, "header_duration_seconds");
    // Deprecated, still written by many controllers: a summary per ingress (quantiles cannot be
    // summed).
    let name = format!("{PREFIX}ingress_upstream_latency_seconds");
    p.family(&name, "summary");
    for pod in pods {
        for (ns, ing, svc, ..) in INGRESSES {
            let mut base = ctl(pod);
            base.extend([
                ("canary", ""),
                ("ingress", ing),
                ("namespace", ns),
                ("service", svc),
            ]);
            base.sort();
            for q in ["0.5", "0.9", "0.99"] {
                p.sample(&name, &with(base.clone(), "quantile", q), "0.01");
            }
            p.sample(&format!("{name}_sum"), &base, "1.5");
            p.sample(&format!("{name}_count"), &base, "150");
        }
    }
    let name = format!("{PREFIX}leader_election_status");
    p.family(&name, "gauge");
    for (k, pod) in pods.iter().enumerate() {
        let leader = if k == 0 { "1" } else { "0" };
        p.sample(
            &name,
            &with(ctl(pod), "name", "ingress-nginx-leader"),
            leader,
        );
    }
    let name = format!("{PREFIX}nginx_process_connections");
    p.family(&name, "gauge");
    for pod in pods {
        for state in ["active", "reading", "waiting", "writing"] {
            p.sample(&name, &with(ctl(pod), "state", state), "10");
        }
    }
    let name = format!("{PREFIX}nginx_process_connections_total");
    p.family(&name, "counter");
    for pod in pods {
        for state in ["accepted", "handled"] {
            p.sample(&name, &with(ctl(pod), "state", state), "5000");
        }
    }
    for (suffix, kind) in [
        ("nginx_process_cpu_seconds_total", "counter"),
        ("nginx_process_num_procs", "gauge"),
        ("nginx_process_oldest_start_time_seconds", "gauge"),
        ("nginx_process_read_bytes_total", "counter"),
        ("nginx_process_requests_total", "counter"),
        ("nginx_process_resident_memory_bytes", "gauge"),
        ("nginx_process_virtual_memory_bytes", "gauge"),
        ("nginx_process_write_bytes_total", "counter"),
    ] {
        per_controller(&mut p, suffix, kind, "7");
    }
    let name = format!("{PREFIX}orphan_ingress");
    p.family(&name, "gauge");
    for pod in pods {
        p.sample(
            &name,
            &with(ingress_labels(pod, 2), "type", "no-service"),
            "1",
        );
    }
    histogram(&mut p, "request_duration_seconds");
    histogram(&mut p, "request_size");
    let name = format!("{PREFIX}requests");
    p.family(&name, "counter");
    for (k, pod) in pods.iter().enumerate() {
        for i in 0..INGRESSES.len() {
            for path in 0..PATHS.len() {
                let count = request_count(i, path, k).to_string();
                p.sample(&name, &request_labels(pod, i, path), &count);
            }
        }
    }
    histogram(&mut p, "response_duration_seconds");
    histogram(&mut p, "response_size");
    // Labelled by the controller's namespace and class, not by its pod: every pod writes the
    // same certificates.
    let name = format!("{PREFIX}ssl_expire_time_seconds");
    p.family(&name, "gauge");
    for _ in pods {
        for (_, ing, ..) in INGRESSES {
            let host = format!("{ing}.example.com");
            let labels = [
                ("class", "k8s.io/ingress-nginx"),
                ("host", host.as_str()),
                ("namespace", "ingress-nginx"),
            ];
            p.sample(&name, &labels, "1.76e+09");
        }
    }
    per_controller(&mut p, "success", "counter", "12");

    unlabelled(&mut p, "process_cpu_seconds_total", "counter", "120.5");
    unlabelled(&mut p, "process_max_fds", "gauge", "1.048576e+06");
    unlabelled(&mut p, "process_open_fds", "gauge", "60");
    unlabelled(&mut p, "process_resident_memory_bytes", "gauge", "1.1e+08");
    unlabelled(&mut p, "process_start_time_seconds", "gauge", "1.73e+09");
    unlabelled(&mut p, "process_virtual_memory_bytes", "gauge", "1.5e+09");
    p.family("promhttp_metric_handler_errors_total", "counter");
    for _ in pods {
        for cause in ["encoding", "gathering"] {
            p.sample(
                "promhttp_metric_handler_errors_total",
                &[("cause", cause)],
                "0",
            );
        }
    }
    unlabelled(
        &mut p,
        "promhttp_metric_handler_requests_in_flight",
        "gauge",
        "1",
    );
    p.family("promhttp_metric_handler_requests_total", "counter");
    for _ in pods {
        for (code, v) in [("200", "5000"), ("500", "0"), ("503", "0")] {
            p.sample(
                "promhttp_metric_handler_requests_total",
                &[("code", code)],
                v,
            );
        }
    }
    p.out
}

fn is_request_metric(name: &str) -> bool {
    let Some(rest) = name.strip_prefix(PREFIX) else {
        return false;
    };
    rest == "requests"
        || REQUEST_HISTOGRAMS.iter().any(|h| {
            ["_bucket", "_sum", "_count"]
                .iter()
                .any(|s| rest == format!("{h}{s}"))
        })
}

/// Requests per ingress in `exposition`, summed over everything else.
fn requests_by_ingress(e: &Exposition) -> BTreeMap<String, f64> {
    let mut out = BTreeMap::new();
    for s in &e.series {
        if s.name == format!("{PREFIX}requests") {
            let ingress = s.label("ingress").expect("ingress label").to_string();
            *out.entry(ingress).or_insert(0.0) += s.value;
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Sidecar

#[test]
fn sidecar_lists_do_what_the_configmap_says() {
    let config_docs = yaml_docs("deploy/sidecar/metric-gate-config.yaml");
    let configmap = find(&config_docs, "ConfigMap", "metric-gate-ingress-nginx");
    let deployment_docs = yaml_docs("deploy/sidecar/ingress-nginx-controller.yaml");
    let deployment = find(&deployment_docs, "Deployment", "ingress-nginx-controller");
    let config = mounted_config(
        configmap,
        at(deployment, "spec.template.spec"),
        "metric-gate",
    );
    assert_eq!(lists(&config), ["", "process", "requests_by_ingress"]);

    let dir = tempfile::tempdir().expect("tempdir");
    let input_text = payload(&["ingress-nginx-controller-7d9f8c6b5-x2x9q"]);
    let input = Exposition::parse(&input_text);
    let default = apply(dir.path(), &input_text, &config, "");
    let process = apply(dir.path(), &input_text, &config, "process");
    let by_ingress = apply(dir.path(), &input_text, &config, "requests_by_ingress");

    // /metrics: the request metrics, summed without `path` and without the controller's
    // identity labels.
    assert!(!default.series.is_empty(), "/metrics is empty");
    for s in &default.series {
        assert!(is_request_metric(&s.name), "/metrics has {}", s.name);
        for label in [
            "path",
            "controller_class",
            "controller_namespace",
            "controller_pod",
        ] {
            assert!(s.label(label).is_none(), "/metrics keeps {label}: {s:?}");
        }
    }
    let request_names: BTreeSet<&str> = input
        .names()
        .into_iter()
        .filter(|n| is_request_metric(n))
        .collect();
    assert_eq!(
        default.names(),
        request_names,
        "request families of /metrics"
    );
    assert_eq!(requests_by_ingress(&default), requests_by_ingress(&input));
    assert_eq!(
        default
            .series
            .iter()
            .filter(|s| s.name == format!("{PREFIX}requests"))
            .count(),
        INGRESSES.len(),
        "one requests series per ingress once `path` is gone"
    );

    // /metrics/process: everything else, unchanged; together the two lists hold every series.
    assert!(!process.series.is_empty(), "/metrics/process is empty");
    for s in &process.series {
        assert!(
            !is_request_metric(&s.name),
            "/metrics/process has {}",
            s.name
        );
        assert!(input.series.contains(s), "/metrics/process changed {s:?}");
    }
    for name in input.names() {
        assert!(
            default.names().contains(name) ^ process.names().contains(name),
            "{name} is in {} of /metrics and /metrics/process",
            if default.names().contains(name) {
                "both"
            } else {
                "neither"
            }
        );
    }
    let other = input
        .series
        .iter()
        .filter(|s| !is_request_metric(&s.name))
        .count();
    assert_eq!(process.series.len(), other, "series of /metrics/process");

    // /metrics/requests_by_ingress: requests and latency by (namespace, ingress, status).
    assert!(
        !by_ingress.series.is_empty(),
        "requests_by_ingress is empty"
    );
    let allowed = ["namespace", "ingress", "status", "le"];
    for s in &by_ingress.series {
        assert!(
            s.name == format!("{PREFIX}requests")
                || s.name
                    .starts_with(&format!("{PREFIX}request_duration_seconds_")),
            "requests_by_ingress has {}",
            s.name
        );
        for label in s.labels.keys() {
            assert!(allowed.contains(&label.as_str()), "{label} in {s:?}");
        }
    }
    assert_eq!(
        requests_by_ingress(&by_ingress),
        requests_by_ingress(&input)
    );

    check_sidecar_scraping(&lists(&config), deployment);
}

/// Every list of the sidecar has a scrape job and a PodMonitor endpoint on the sidecar's port,
/// and the pods carry what those select.
fn check_sidecar_scraping(lists: &[String], deployment: &Value) {
    let pod = at(deployment, "spec.template");
    let gate = container(at(pod, "spec"), "metric-gate");
    let port = seq(gate, "ports")
        .iter()
        .find(|p| at(p, "name").as_str() == Some("gate-metrics"))
        .expect("a gate-metrics port");
    let listen = arg(gate, "--port").unwrap_or("8080");
    assert_eq!(
        at(port, "containerPort")
            .as_u64()
            .map(|p| p.to_string())
            .as_deref(),
        Some(listen)
    );
    let annotations = string_map(pod, "metadata.annotations");
    assert_eq!(
        annotations.get("prometheus.io/scrape").map(String::as_str),
        Some("true")
    );
    assert_eq!(
        annotations.get("prometheus.io/port").map(String::as_str),
        Some(listen)
    );

    // Plain Prometheus: one job per list, on the gate-metrics port of annotated pods.
    let scrape = &yaml_docs("deploy/sidecar/prometheus-scrape-config.yaml")[0];
    let mut paths = BTreeMap::new();
    for job in seq(scrape, "scrape_configs") {
        let name = text(job, "job_name");
        let keeps = |label: &str, regex: &str| {
            seq(job, "relabel_configs").iter().any(|r| {
                at(r, "action").as_str() == Some("keep")
                    && seq(r, "source_labels")
                        .iter()
                        .any(|l| l.as_str() == Some(label))
                    && at(r, "regex").as_str() == Some(regex)
            })
        };
        assert!(
            keeps("__meta_kubernetes_pod_container_port_name", "gate-metrics"),
            "job {name} does not keep the gate-metrics port"
        );
        assert!(
            keeps(
                "__meta_kubernetes_pod_annotation_prometheus_io_scrape",
                "true"
            ),
            "job {name} does not follow prometheus.io/scrape"
        );
        let path = at(job, "metrics_path").as_str().unwrap_or("/metrics");
        assert!(
            paths.insert(path.to_string(), name.to_string()).is_none(),
            "two jobs for {path}"
        );
    }
    let want: BTreeSet<String> = lists.iter().map(|l| list_path(l)).collect();
    assert_eq!(
        paths.keys().cloned().collect::<BTreeSet<_>>(),
        want,
        "scrape jobs"
    );

    // Prometheus Operator: one PodMonitor endpoint per list, each its own job.
    let monitor = &yaml_docs("deploy/sidecar/podmonitor.yaml")[0];
    assert_eq!(text(monitor, "kind"), "PodMonitor");
    assert!(
        is_subset(
            &string_map(monitor, "spec.selector.matchLabels"),
            &string_map(pod, "metadata.labels")
        ),
        "the PodMonitor does not select the controller pods"
    );
    assert_eq!(
        at(monitor, "metadata.namespace"),
        at(deployment, "metadata.namespace")
    );
    check_endpoints(
        seq(monitor, "spec.podMetricsEndpoints"),
        "gate-metrics",
        &want,
    );
}

/// Operator endpoints: one per list path, on `port`, each with its own `job`.
fn check_endpoints(endpoints: &[Value], port: &str, want: &BTreeSet<String>) {
    let mut paths = BTreeSet::new();
    let mut jobs = BTreeSet::new();
    for e in endpoints {
        assert_eq!(text(e, "port"), port);
        assert!(
            paths.insert(text(e, "path").to_string()),
            "two endpoints for a path"
        );
        let job = seq(e, "relabelings")
            .iter()
            .find(|r| at(r, "targetLabel").as_str() == Some("job"))
            .map(|r| text(r, "replacement"))
            .expect("a job per endpoint");
        assert!(jobs.insert(job), "job {job} twice");
    }
    assert_eq!(&paths, want, "operator endpoints");
}

#[test]
fn sidecar_helm_values_match_the_deployment() {
    let values = &yaml_docs("deploy/sidecar/helm-values.yaml")[0];
    let configmap = find(
        &yaml_docs("deploy/sidecar/metric-gate-config.yaml"),
        "ConfigMap",
        "metric-gate-ingress-nginx",
    )
    .clone();
    // The chart's extraContainers / extraVolumes are the pod spec's containers / volumes.
    let mut pod_spec = serde_yaml_ng::Mapping::new();
    pod_spec.insert(
        "containers".into(),
        at(values, "controller.extraContainers").clone(),
    );
    pod_spec.insert(
        "volumes".into(),
        at(values, "controller.extraVolumes").clone(),
    );
    let pod_spec = Value::Mapping(pod_spec);
    let config = mounted_config(&configmap, &pod_spec, "metric-gate");
    assert_eq!(lists(&config), ["", "process", "requests_by_ingress"]);
    let gate = container(&pod_spec, "metric-gate");
    assert_eq!(
        arg(gate, "--upstream"),
        Some("http://localhost:10254/metrics")
    );
    let annotations = string_map(values, "controller.podAnnotations");
    assert_eq!(
        annotations.get("prometheus.io/scrape").map(String::as_str),
        Some("true")
    );
    assert_eq!(
        annotations.get("prometheus.io/port").map(String::as_str),
        Some("8080")
    );
}

// ---------------------------------------------------------------------------------------------
// Aggregator

#[test]
fn aggregator_lists_sum_only_what_sums() {
    let docs = yaml_docs("deploy/aggregator/metric-gate-aggregator.yaml");
    let configmap = find(&docs, "ConfigMap", "metric-gate-aggregator");
    let deployment = find(&docs, "Deployment", "metric-gate-aggregator");
    let config = mounted_config(
        configmap,
        at(deployment, "spec.template.spec"),
        "metric-gate",
    );
    assert_eq!(lists(&config), ["", "controller"]);

    let pods = [
        "ingress-nginx-controller-aaaaa",
        "ingress-nginx-controller-bbbbb",
    ];
    let input_text = payload(&pods);
    let input = Exposition::parse(&input_text);
    let dir = tempfile::tempdir().expect("tempdir");
    let default = apply(dir.path(), &input_text, &config, "");
    let controller = apply(dir.path(), &input_text, &config, "controller");

    // /metrics: request counters and histograms, summed across pods and paths.
    assert!(!default.series.is_empty(), "/metrics is empty");
    for s in &default.series {
        assert!(is_request_metric(&s.name), "/metrics has {}", s.name);
        let kind = default.kind(&s.name);
        assert!(
            kind == "counter" || kind == "histogram",
            "{} is a {kind}: no sum",
            s.name
        );
        assert!(
            s.label("path").is_none() && s.label("controller_pod").is_none(),
            "{s:?}"
        );
    }
    let total = requests_by_ingress(&default);
    assert_eq!(total, requests_by_ingress(&input));
    let (_, shop, ..) = INGRESSES[0];
    let want: u64 = (0..PATHS.len())
        .flat_map(|p| (0..pods.len()).map(move |k| request_count(0, p, k)))
        .sum();
    assert_eq!(
        total.get(shop).copied(),
        Some(want as f64),
        "shop, both pods, both paths"
    );

    // /metrics/controller: only series that name their pod, so nothing is summed across pods.
    assert!(
        !controller.series.is_empty(),
        "/metrics/controller is empty"
    );
    for s in &controller.series {
        assert!(
            s.label("controller_pod").is_some(),
            "summed across pods: {s:?}"
        );
        assert!(
            !is_request_metric(&s.name),
            "/metrics/controller has {}",
            s.name
        );
        assert!(
            input.series.contains(s),
            "/metrics/controller changed {s:?}"
        );
    }
    let seen: BTreeSet<&str> = controller
        .series
        .iter()
        .filter_map(|s| s.label("controller_pod"))
        .collect();
    assert_eq!(
        seen,
        pods.into_iter().collect(),
        "both pods in /metrics/controller"
    );

    // The per-pod series without a pod label (the comment names them) are in no list.
    for name in PER_POD_UNLABELLED
        .iter()
        .copied()
        .chain([format!("{PREFIX}ssl_expire_time_seconds").as_str()])
    {
        assert!(input.names().contains(name), "the payload lacks {name}");
        for (list, out) in [("/metrics", &default), ("/metrics/controller", &controller)] {
            assert!(
                !out.names().contains(name),
                "{list} sums the per-pod {name}"
            );
        }
    }

    check_aggregator_scraping(&docs, &lists(&config), deployment);
}

/// The aggregator scrapes the headless Service over the controller pods, is selected by its own
/// Service, and every list has a scrape job and a ServiceMonitor endpoint.
fn check_aggregator_scraping(docs: &[Value], lists: &[String], deployment: &Value) {
    let gate = container(at(deployment, "spec.template.spec"), "metric-gate");
    let upstream = arg(gate, "--upstream").expect("--upstream");
    let headless = find(docs, "Service", "ingress-nginx-controller-metrics-headless");
    assert_eq!(text(headless, "spec.clusterIP"), "None");
    let port = at(&seq(headless, "spec.ports")[0], "port")
        .as_u64()
        .expect("a port");
    assert_eq!(
        upstream,
        format!(
            "dns+http://{}.{}.svc.cluster.local:{port}/metrics",
            text(headless, "metadata.name"),
            text(headless, "metadata.namespace")
        )
    );
    // Its own Service selects its pods and names the container's `http` port.
    let service = find(docs, "Service", "metric-gate-aggregator");
    let pod_labels = string_map(deployment, "spec.template.metadata.labels");
    assert!(is_subset(
        &string_map(service, "spec.selector"),
        &pod_labels
    ));
    assert!(seq(gate, "ports")
        .iter()
        .any(|p| at(p, "name").as_str() == Some("http")));
    assert!(seq(service, "spec.ports")
        .iter()
        .any(|p| at(p, "name").as_str() == Some("http")
            && at(p, "targetPort").as_str() == Some("http")));

    let want: BTreeSet<String> = lists.iter().map(|l| list_path(l)).collect();
    let scrape = &yaml_docs("deploy/aggregator/prometheus-scrape-config.yaml")[0];
    let mut paths = BTreeSet::new();
    for job in seq(scrape, "scrape_configs") {
        let keeps = |label: &str, regex: &str| {
            seq(job, "relabel_configs").iter().any(|r| {
                at(r, "action").as_str() == Some("keep")
                    && seq(r, "source_labels")
                        .iter()
                        .any(|l| l.as_str() == Some(label))
                    && at(r, "regex").as_str() == Some(regex)
            })
        };
        assert!(keeps(
            "__meta_kubernetes_service_name",
            "metric-gate-aggregator"
        ));
        assert!(keeps("__meta_kubernetes_endpoint_port_name", "http"));
        paths.insert(
            at(job, "metrics_path")
                .as_str()
                .unwrap_or("/metrics")
                .to_string(),
        );
    }
    assert_eq!(paths, want, "scrape jobs");

    let monitor = &yaml_docs("deploy/aggregator/servicemonitor.yaml")[0];
    assert_eq!(text(monitor, "kind"), "ServiceMonitor");
    let selector = string_map(monitor, "spec.selector.matchLabels");
    assert!(is_subset(
        &selector,
        &string_map(service, "metadata.labels")
    ));
    assert!(
        !is_subset(&selector, &string_map(headless, "metadata.labels")),
        "the ServiceMonitor would scrape the controller pods directly too"
    );
    check_endpoints(seq(monitor, "spec.endpoints"), "http", &want);
}

// ---------------------------------------------------------------------------------------------
// External checkers

/// True when `tool` runs; otherwise [`missing`].
fn tool_present(test: &str, tool: &str, args: &[&str], hint: &str) -> bool {
    let ok = Command::new(tool)
        .args(args)
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        missing(test, hint);
    }
    ok
}

/// A checker this test needs is not installed: a SKIPPED note on stderr, or a panic under
/// `METRIC_GATE_E2E=require` (CI sets it, so CI never skips silently).
fn missing(test: &str, what: &str) {
    let msg = format!("{test}: {what}");
    if std::env::var("METRIC_GATE_E2E").as_deref() == Ok("require") {
        panic!("{msg}; METRIC_GATE_E2E=require makes this a failure");
    }
    eprintln!("SKIPPED {msg}; set METRIC_GATE_E2E=require to make this a failure");
}

/// The scrape configs are valid Prometheus configuration. Debian's promtool has no Kubernetes
/// service discovery, so it is swapped for a static target; everything else is checked as is.
#[test]
fn scrape_configs_pass_promtool() {
    if !tool_present(
        "scrape_configs_pass_promtool",
        "promtool",
        &["--version"],
        "promtool not found (Debian package `prometheus`)",
    ) {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    for rel in [
        "deploy/sidecar/prometheus-scrape-config.yaml",
        "deploy/aggregator/prometheus-scrape-config.yaml",
        "deploy/prometheus.yml",
    ] {
        let mut config = yaml_docs(rel).remove(0);
        for job in config
            .get_mut("scrape_configs")
            .and_then(Value::as_sequence_mut)
            .expect("scrape_configs")
        {
            let job = job.as_mapping_mut().expect("a job");
            if job.remove("kubernetes_sd_configs").is_some() {
                let targets: Value = serde_yaml_ng::from_str("[{targets: ['127.0.0.1:8080']}]")
                    .expect("static_configs");
                job.insert("static_configs".into(), targets);
            }
        }
        let path = dir.path().join("prometheus.yml");
        std::fs::write(&path, serde_yaml_ng::to_string(&config).expect("YAML")).expect("write");
        let out = Command::new("promtool")
            .args(["check", "config"])
            .arg(&path)
            .output()
            .expect("promtool");
        assert!(
            out.status.success(),
            "{rel}: promtool check config: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// The PodMonitor and ServiceMonitor use only fields the operator's CRDs define, with valid
/// values (scripts/check_operator_manifests.py, with the CRD models from PyPI; it exits with 3
/// when they are not installed).
#[test]
fn operator_manifests_match_the_crd_schemas() {
    let test = "operator_manifests_match_the_crd_schemas";
    if !tool_present(test, "python3", &["--version"], "python3 not found") {
        return;
    }
    let out = Command::new("python3")
        .arg(repo("scripts/check_operator_manifests.py"))
        .arg(repo("deploy/sidecar/podmonitor.yaml"))
        .arg(repo("deploy/aggregator/servicemonitor.yaml"))
        .output()
        .expect("python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    if out.status.code() == Some(3) {
        missing(test, stdout.trim());
        return;
    }
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("ok (2 objects)"), "{stdout}");
}
