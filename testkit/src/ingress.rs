//! A deterministic generator of an ingress-nginx-shaped Prometheus `/metrics` payload, for the
//! benches, the load tests and `examples/gen_ingress.rs` (its command line).
//!
//! Writes Prometheus text format 0.0.4, shaped like the controller's own exposition: six request
//! histograms of 12 buckets for every (ingress, path), the per-path request counter, controller
//! and nginx process gauges, and the usual `go_*` / `process_*` families, each with `# HELP` and
//! `# TYPE`, families contiguous and sorted by name as a Go client library would write them.
//!
//! Properties that tests rely on:
//! - The *set* of series depends only on `ingresses`, `paths`, `pod`, `status_classes`,
//!   `canary` and `paths_per_status`; `seed` changes values only. Several "pods" for fan-out tests are therefore the
//!   same series with a different `controller_pod` (and, with another seed, different values).
//! - By default every ingress has exactly one method and one status, shared by all of its paths,
//!   so `labeldrop: path` sums each ingress' paths into one series: the request families shrink
//!   by the `paths` factor (10x at the default), as they do on a real controller.
//! - With `paths_per_status: n`, each run of `n` consecutive paths of an ingress has a
//!   (method, status) of its own, distinct from the ingress' other runs (for up to 40 runs with
//!   full status codes), so `labeldrop: path` shrinks the request families by `n` only: `n = 2`
//!   is the payload a config that reduces little meets (2x).
//! - Within a (ingress, path), all six histograms and `nginx_ingress_controller_requests` share
//!   the same request count: `_count` == `le="+Inf"` bucket == the counter.
//! - Buckets are cumulative (non-decreasing in `le`).
//! - Numbers are written the way Go's `strconv.FormatFloat(v, 'g', -1, 64)` writes them, like
//!   the real exporter: `1e+06`, `1.234567e+06`, `0.005`, `+Inf`.
//!
//! The output is streamed through a `BufWriter`; memory use does not grow with the size of the
//! payload.

use std::io::{self, BufWriter, Write};

/// The default `controller_pod` label value.
pub const DEFAULT_POD: &str = "ingress-nginx-controller-7d9f8c6b5-x2x9q";
const CONTROLLER_CLASS: &str = "k8s.io/ingress-nginx";
const CONTROLLER_NAMESPACE: &str = "ingress-nginx";
const PREFIX: &str = "nginx_ingress_controller_";

/// What to generate.
#[derive(Debug, Clone)]
pub struct Options {
    /// Number of Ingress objects.
    pub ingresses: u32,
    /// Paths per Ingress.
    pub paths: u32,
    /// PRNG seed for the values; the series set does not depend on it.
    pub seed: u64,
    /// The `controller_pod` label value (no quotes, backslashes or newlines).
    pub pod: String,
    /// `status="2xx"` style labels instead of full codes like `status="200"`.
    pub status_classes: bool,
    /// Also write the empty `canary=""` label, as the real exporter does.
    pub canary: bool,
    /// Consecutive paths of an ingress that share one (method, status); 0: all of its paths
    /// (one method and status per ingress). Decides how much `labeldrop: path` reduces.
    pub paths_per_status: u32,
}

impl Options {
    /// The defaults of `gen_ingress`'s command line, with the given size.
    pub fn sized(ingresses: u32, paths: u32) -> Self {
        Options {
            ingresses,
            paths,
            seed: 1,
            pod: DEFAULT_POD.to_string(),
            status_classes: false,
            canary: false,
            paths_per_status: 0,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Output plumbing

/// Counts bytes and sample lines on top of a buffered writer.
struct Out<W: Write> {
    w: BufWriter<W>,
    bytes: u64,
    series: u64,
    /// Reused scratch space for one line.
    line: Vec<u8>,
}

impl<W: Write> Out<W> {
    fn new(inner: W) -> Self {
        Self {
            w: BufWriter::with_capacity(1 << 20, inner),
            bytes: 0,
            series: 0,
            line: Vec::with_capacity(1024),
        }
    }

    /// Writes the `line` scratch buffer; counts it as a sample unless `meta`.
    fn flush_line(&mut self, meta: bool) -> io::Result<()> {
        self.bytes += self.line.len() as u64;
        if !meta {
            self.series += 1;
        }
        self.w.write_all(&self.line)?;
        self.line.clear();
        Ok(())
    }

    /// `# HELP` and `# TYPE` for one family.
    fn family(&mut self, name: &str, kind: &str, help: &str) -> io::Result<()> {
        let l = &mut self.line;
        l.extend_from_slice(b"# HELP ");
        l.extend_from_slice(name.as_bytes());
        l.push(b' ');
        l.extend_from_slice(help.as_bytes());
        l.extend_from_slice(b"\n# TYPE ");
        l.extend_from_slice(name.as_bytes());
        l.push(b' ');
        l.extend_from_slice(kind.as_bytes());
        l.push(b'\n');
        self.flush_line(true)
    }

    /// One sample: `name{labels} value`, where `labels` is a pre-rendered label list (without
    /// braces) and `value` is already formatted.
    fn sample(&mut self, name: &str, labels: &[u8], value: &[u8]) -> io::Result<()> {
        let l = &mut self.line;
        l.extend_from_slice(name.as_bytes());
        if !labels.is_empty() {
            l.push(b'{');
            l.extend_from_slice(labels);
            l.push(b'}');
        }
        l.push(b' ');
        l.extend_from_slice(value);
        l.push(b'\n');
        self.flush_line(false)
    }

    fn finish(mut self) -> io::Result<(u64, u64)> {
        self.w.flush()?;
        Ok((self.series, self.bytes))
    }
}

/// Appends `name="value"` (preceded by a comma unless `labels` is empty). Values written here
/// never need escaping.
fn push_label(labels: &mut Vec<u8>, name: &str, value: &str) {
    if !labels.is_empty() {
        labels.push(b',');
    }
    labels.extend_from_slice(name.as_bytes());
    labels.extend_from_slice(b"=\"");
    labels.extend_from_slice(value.as_bytes());
    labels.push(b'"');
}

// ---------------------------------------------------------------------------------------------
// Numbers

/// splitmix64: a tiny, well-mixed PRNG; also used as a hash to derive independent streams.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform-ish in `0..n` (`n > 0`); modulo bias is irrelevant here.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A stream of its own for each tuple, so a value never depends on generation order.
fn stream(parts: &[u64]) -> Rng {
    let mut r = Rng(0x6D65_7472_6963_2D67);
    for &p in parts {
        r.0 ^= p;
        r.0 = r.next();
    }
    r
}

/// Appends `mant * 10^-scale` formatted as Go's `strconv.FormatFloat(v, 'g', -1, 64)` does:
/// shortest digits, exponent form when the decimal exponent is < -4 or >= 6
/// (`1e+06`, `1.234567e+06`, `0.005`, `12.5`). Exact for the magnitudes used here
/// (at most 15 significant digits).
fn push_go_float(out: &mut Vec<u8>, mant: u64, scale: u32) {
    if mant == 0 {
        out.push(b'0');
        return;
    }
    let mut buf = [0u8; 20];
    let mut n = mant;
    let mut len = 0;
    while n > 0 {
        buf[len] = b'0' + (n % 10) as u8;
        n /= 10;
        len += 1;
    }
    buf[..len].reverse();
    // Decimal point position: the value is 0.d1d2d3... * 10^dp.
    let dp = len as i32 - scale as i32;
    while len > 1 && buf[len - 1] == b'0' {
        len -= 1;
    }
    let digits = &buf[..len];
    let exp = dp - 1;
    if !(-4..6).contains(&exp) {
        out.push(digits[0]);
        if len > 1 {
            out.push(b'.');
            out.extend_from_slice(&digits[1..]);
        }
        out.push(b'e');
        out.push(if exp < 0 { b'-' } else { b'+' });
        let e = exp.unsigned_abs();
        if e < 10 {
            out.push(b'0');
        }
        push_u64(out, u64::from(e));
    } else if dp <= 0 {
        out.extend_from_slice(b"0.");
        out.resize(out.len() + (-dp) as usize, b'0');
        out.extend_from_slice(digits);
    } else if dp as usize >= len {
        out.extend_from_slice(digits);
        out.resize(out.len() + (dp as usize - len), b'0');
    } else {
        out.extend_from_slice(&digits[..dp as usize]);
        out.push(b'.');
        out.extend_from_slice(&digits[dp as usize..]);
    }
}

/// Appends a non-negative integer value in Go's `'g'` form (so 1234567 is `1.234567e+06`).
fn push_go_int(out: &mut Vec<u8>, v: u64) {
    push_go_float(out, v, 0)
}

fn push_u64(out: &mut Vec<u8>, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

fn go_int(v: u64) -> Vec<u8> {
    let mut s = Vec::new();
    push_go_int(&mut s, v);
    s
}

fn go_float(mant: u64, scale: u32) -> Vec<u8> {
    let mut s = Vec::new();
    push_go_float(&mut s, mant, scale);
    s
}

// ---------------------------------------------------------------------------------------------
// The ingress model

/// Which unit a request histogram measures: decides its buckets and how `_sum` is written.
#[derive(Clone, Copy)]
enum Unit {
    /// Seconds; bounds and observations are kept in integer milliseconds.
    Seconds,
    /// Bytes; bounds and observations are integers.
    Bytes,
}

/// One of the six per-path request histograms.
struct Histogram {
    suffix: &'static str,
    help: &'static str,
    unit: Unit,
    /// 11 finite upper bounds, in ms for seconds and in bytes for sizes; `+Inf` is implied.
    bounds: [u64; 11],
}

/// The default Go client buckets (5 ms .. 10 s), in ms.
const SECONDS_BOUNDS: [u64; 11] = [5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000];

const HISTOGRAMS: [Histogram; 6] = [
    Histogram {
        suffix: "connect_duration_seconds",
        help: "Time spent opening the connection to the upstream, in seconds.",
        unit: Unit::Seconds,
        bounds: SECONDS_BOUNDS,
    },
    Histogram {
        suffix: "header_duration_seconds",
        help: "Time until the upstream sent its response headers, in seconds.",
        unit: Unit::Seconds,
        bounds: SECONDS_BOUNDS,
    },
    Histogram {
        suffix: "request_duration_seconds",
        help: "Time from the first byte read from the client to the last byte sent, in seconds.",
        unit: Unit::Seconds,
        bounds: SECONDS_BOUNDS,
    },
    Histogram {
        suffix: "request_size",
        help: "Size of client requests, including line and headers, in bytes.",
        unit: Unit::Bytes,
        bounds: [10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 25000],
    },
    Histogram {
        suffix: "response_duration_seconds",
        help: "Time spent receiving the response from the upstream, in seconds.",
        unit: Unit::Seconds,
        bounds: SECONDS_BOUNDS,
    },
    Histogram {
        suffix: "response_size",
        help: "Size of responses sent to clients, in bytes.",
        unit: Unit::Bytes,
        // 10 * 4^k: ends in 2.62144e+06 and 1.048576e+07, which exercises exponent forms in `le`.
        bounds: [
            10, 40, 160, 640, 2560, 10240, 40960, 163840, 655360, 2621440, 10485760,
        ],
    },
];

/// Workload names; an Ingress is `<word>-<index>`.
const WORDS: [&str; 10] = [
    "web", "api", "auth", "pay", "search", "media", "cart", "shop", "mail", "docs",
];

const PATHS: [&str; 10] = [
    "/",
    "/api",
    "/api/users",
    "/api/orders",
    "/static",
    "/login",
    "/healthz",
    "/graphql",
    "/images",
    "/ws",
];

const METHODS: [&str; 4] = ["GET", "POST", "PUT", "DELETE"];

/// Full status codes and their classes, weighted towards success by repetition in `pick_status`.
const STATUSES: [&str; 10] = [
    "200", "201", "204", "301", "304", "400", "404", "499", "500", "503",
];

fn path_text(p: u32) -> String {
    match PATHS.get(p as usize) {
        Some(s) => (*s).to_string(),
        None => format!("/api/v1/resource-{p}"),
    }
}

/// Method and status of an (ingress, path): fixed by position only, not by the seed. Run
/// `run` of an ingress' paths (see [`Options::paths_per_status`]; always 0 by default) moves
/// the status on by `run` and the method every 10 runs, so the runs of one ingress differ.
fn pick_method_status(i: u32, run: u32, classes: bool) -> (&'static str, String) {
    let mut r = stream(&[0x6d73, u64::from(i)]);
    let method = match r.below(10) {
        0..=5 => 0,
        6 | 7 => 1,
        8 => 2,
        _ => 3,
    };
    let status = match r.below(20) {
        0..=9 => 0,
        10 | 11 => 1,
        12 => 2,
        13 => 3,
        14 => 4,
        15 => 5,
        16 => 6,
        17 => 7,
        18 => 8,
        _ => 9,
    };
    let len = STATUSES.len() as u32;
    let method = METHODS[((method + run / len) % METHODS.len() as u32) as usize];
    let status = STATUSES[((status + run) % len) as usize];
    let status = if classes {
        format!("{}xx", &status[..1])
    } else {
        status.to_string()
    };
    (method, status)
}

/// Requests served for an (ingress, path): 1 ..< 10^7, log-uniform-ish, so some counts need
/// the `e+06` form.
fn request_count(seed: u64, i: u32, p: u32) -> u64 {
    let mut r = stream(&[seed, 0x636f, u64::from(i), u64::from(p)]);
    let magnitude = 1 + r.below(7) as u32; // 1..=7 digits
    1 + r.below(10u64.pow(magnitude))
}

/// Labels of one (ingress, path) series as the exporter writes them (sorted by name; `le` is
/// appended after these).
fn series_labels(labels: &mut Vec<u8>, args: &Options, i: u32, p: u32, scratch: &mut String) {
    use std::fmt::Write as _;
    labels.clear();
    let word = WORDS[i as usize % WORDS.len()];
    let run = match args.paths_per_status {
        0 => 0,
        n => p / n,
    };
    let (method, status) = pick_method_status(i, run, args.status_classes);
    if args.canary {
        push_label(labels, "canary", "");
    }
    push_label(labels, "controller_class", CONTROLLER_CLASS);
    push_label(labels, "controller_namespace", CONTROLLER_NAMESPACE);
    push_label(labels, "controller_pod", &args.pod);
    scratch.clear();
    let _ = write!(scratch, "{word}-{i}.acme.io");
    push_label(labels, "host", scratch);
    scratch.clear();
    let _ = write!(scratch, "{word}-{i}");
    push_label(labels, "ingress", scratch);
    push_label(labels, "method", method);
    scratch.clear();
    let _ = write!(scratch, "team-{}", i % 50);
    push_label(labels, "namespace", scratch);
    push_label(labels, "path", &path_text(p));
    scratch.clear();
    let _ = write!(scratch, "{word}-{i}");
    push_label(labels, "service", scratch);
    push_label(labels, "status", &status);
}

fn controller_labels(args: &Options) -> Vec<u8> {
    let mut l = Vec::new();
    push_label(&mut l, "controller_class", CONTROLLER_CLASS);
    push_label(&mut l, "controller_namespace", CONTROLLER_NAMESPACE);
    push_label(&mut l, "controller_pod", &args.pod);
    l
}

fn with_label(base: &[u8], name: &str, value: &str) -> Vec<u8> {
    let mut l = base.to_vec();
    push_label(&mut l, name, value);
    l
}

// ---------------------------------------------------------------------------------------------
// Families

/// Writes the whole payload to `inner`; returns (series, bytes).
pub fn generate<W: Write>(args: &Options, inner: W) -> io::Result<(u64, u64)> {
    let mut out = Out::new(inner);
    go_families(&mut out, args.seed)?;
    controller_families(&mut out, args)?;
    process_families(&mut out, args.seed)?;
    out.finish()
}

fn go_families<W: Write>(out: &mut Out<W>, seed: u64) -> io::Result<()> {
    let mut r = stream(&[seed, 0x676f]);
    out.family(
        "go_gc_duration_seconds",
        "summary",
        "Pause times of garbage collection cycles, in seconds.",
    )?;
    // Quantiles in microseconds, non-decreasing.
    let mut q = 20 + r.below(30);
    for quantile in ["0", "0.25", "0.5", "0.75", "1"] {
        out.sample(
            "go_gc_duration_seconds",
            &with_label(&[], "quantile", quantile),
            &go_float(q, 6),
        )?;
        q += r.below(q + 50);
    }
    let gcs = 1000 + r.below(100_000);
    out.sample(
        "go_gc_duration_seconds_sum",
        &[],
        &go_float(gcs * (40 + r.below(40)), 6),
    )?;
    out.sample("go_gc_duration_seconds_count", &[], &go_int(gcs))?;

    out.family("go_goroutines", "gauge", "Goroutines that currently exist.")?;
    out.sample("go_goroutines", &[], &go_int(90 + r.below(60)))?;
    out.family(
        "go_info",
        "gauge",
        "Version of the Go toolchain that built the binary.",
    )?;
    out.sample(
        "go_info",
        &with_label(&[], "version", "go1.22.8"),
        &go_int(1),
    )?;
    let heap = 40_000_000 + r.below(60_000_000);
    let gauges: [(&str, &str, &str, u64); 7] = [
        (
            "go_memstats_alloc_bytes",
            "gauge",
            "Heap bytes allocated and still in use.",
            heap,
        ),
        (
            "go_memstats_alloc_bytes_total",
            "counter",
            "Heap bytes allocated in total, freed or not.",
            heap * (500 + r.below(5000)),
        ),
        (
            "go_memstats_heap_alloc_bytes",
            "gauge",
            "Heap bytes allocated and still in use.",
            heap,
        ),
        (
            "go_memstats_heap_inuse_bytes",
            "gauge",
            "Bytes in heap spans that hold at least one object.",
            heap + r.below(8_000_000),
        ),
        (
            "go_memstats_heap_objects",
            "gauge",
            "Objects allocated on the heap.",
            heap / (40 + r.below(40)),
        ),
        (
            "go_memstats_last_gc_time_seconds",
            "gauge",
            "Time of the last garbage collection, in seconds since the epoch.",
            0, // written below as a float
        ),
        (
            "go_memstats_sys_bytes",
            "gauge",
            "Bytes obtained from the operating system.",
            heap * 2 + r.below(20_000_000),
        ),
    ];
    for (name, kind, help, v) in gauges {
        out.family(name, kind, help)?;
        if name == "go_memstats_last_gc_time_seconds" {
            // Seconds with millisecond digits: written as 1.730900123456e+09, like the real one.
            let ms = 1_730_900_000_000 + r.below(1_000_000_000);
            out.sample(name, &[], &go_float(ms, 3))?;
        } else {
            out.sample(name, &[], &go_int(v))?;
        }
    }
    out.family("go_threads", "gauge", "Operating system threads created.")?;
    out.sample("go_threads", &[], &go_int(10 + r.below(20)))
}

fn controller_families<W: Write>(out: &mut Out<W>, args: &Options) -> io::Result<()> {
    let seed = args.seed;
    let mut r = stream(&[seed, 0x6374]);
    let ctl = controller_labels(args);
    let name = |suffix: &str| format!("{PREFIX}{suffix}");

    let n = name("config_hash");
    out.family(
        &n,
        "gauge",
        "Hash of the nginx configuration that is running.",
    )?;
    out.sample(&n, &ctl, &go_int(r.below(1 << 53)))?;
    let n = name("config_last_reload_successful");
    out.family(
        &n,
        "gauge",
        "Whether the last configuration reload succeeded (1) or not (0).",
    )?;
    out.sample(&n, &ctl, b"1")?;
    let n = name("config_last_reload_successful_timestamp_seconds");
    out.family(
        &n,
        "gauge",
        "When the last successful configuration reload happened, in seconds since the epoch.",
    )?;
    out.sample(&n, &ctl, &go_int(1_730_900_000 + r.below(100_000)))?;

    // Histograms that sort before `leader_election_status`.
    histogram_family(out, args, &HISTOGRAMS[0])?;
    let n = name("errors");
    out.family(
        &n,
        "counter",
        "Errors seen while reloading the configuration.",
    )?;
    out.sample(&n, &ctl, &go_int(r.below(3)))?;
    histogram_family(out, args, &HISTOGRAMS[1])?;

    let n = name("leader_election_status");
    out.family(
        &n,
        "gauge",
        "Whether this controller is the elected leader (1) or not (0).",
    )?;
    out.sample(&n, &with_label(&ctl, "name", "ingress-nginx-leader"), b"1")?;

    nginx_process_families(out, args, &ctl)?;

    histogram_family(out, args, &HISTOGRAMS[2])?;
    histogram_family(out, args, &HISTOGRAMS[3])?;
    requests_family(out, args)?;
    histogram_family(out, args, &HISTOGRAMS[4])?;
    histogram_family(out, args, &HISTOGRAMS[5])?;

    let n = name("ssl_expire_time_seconds");
    out.family(
        &n,
        "gauge",
        "Expiry of the TLS certificate served for a host, in seconds since the epoch.",
    )?;
    let mut labels = Vec::new();
    let mut host = String::new();
    for i in 0..args.ingresses {
        use std::fmt::Write as _;
        let word = WORDS[i as usize % WORDS.len()];
        labels.clear();
        push_label(&mut labels, "class", CONTROLLER_CLASS);
        host.clear();
        let _ = write!(host, "{word}-{i}.acme.io");
        push_label(&mut labels, "host", &host);
        push_label(&mut labels, "namespace", &format!("team-{}", i % 50));
        push_label(&mut labels, "secret_name", &format!("{word}-{i}-tls"));
        let mut rs = stream(&[seed, 0x7373, u64::from(i)]);
        out.sample(&n, &labels, &go_int(1_733_000_000 + rs.below(7_776_000)))?;
    }

    let n = name("success");
    out.family(&n, "counter", "Successful configuration reloads.")?;
    out.sample(&n, &ctl, &go_int(1 + r.below(500)))
}

fn nginx_process_families<W: Write>(
    out: &mut Out<W>,
    args: &Options,
    ctl: &[u8],
) -> io::Result<()> {
    let mut r = stream(&[args.seed, 0x6e70]);
    let name = |suffix: &str| format!("{PREFIX}nginx_process_{suffix}");

    let n = name("connections");
    out.family(&n, "gauge", "Client connections in each state.")?;
    let reading = r.below(20);
    let writing = 1 + r.below(200);
    let waiting = r.below(2000);
    let active = reading + writing + waiting;
    for (state, v) in [
        ("active", active),
        ("reading", reading),
        ("waiting", waiting),
        ("writing", writing),
    ] {
        out.sample(&n, &with_label(ctl, "state", state), &go_int(v))?;
    }
    let n = name("connections_total");
    out.family(&n, "counter", "Client connections accepted and handled.")?;
    let accepted = 1_000_000 + r.below(50_000_000);
    for (state, v) in [("accepted", accepted), ("handled", accepted)] {
        out.sample(&n, &with_label(ctl, "state", state), &go_int(v))?;
    }
    let n = name("cpu_seconds_total");
    out.family(
        &n,
        "counter",
        "CPU time used by nginx, user and system, in seconds.",
    )?;
    out.sample(&n, ctl, &go_float(100_000 + r.below(10_000_000), 2))?;
    let n = name("num_procs");
    out.family(&n, "gauge", "Number of nginx processes.")?;
    out.sample(&n, ctl, &go_int(3 + r.below(8)))?;
    let n = name("oldest_start_time_seconds");
    out.family(
        &n,
        "gauge",
        "Start time of the oldest nginx process, in seconds since the epoch.",
    )?;
    out.sample(&n, ctl, &go_int(1_730_800_000 + r.below(100_000)))?;
    let n = name("read_bytes_total");
    out.family(&n, "counter", "Bytes read from storage by nginx.")?;
    out.sample(&n, ctl, &go_int(r.below(100_000_000)))?;
    let n = name("requests_total");
    out.family(&n, "counter", "Client requests served by nginx.")?;
    out.sample(&n, ctl, &go_int(accepted * (2 + r.below(10))))?;
    let n = name("resident_memory_bytes");
    out.family(&n, "gauge", "Resident memory of nginx, in bytes.")?;
    out.sample(&n, ctl, &go_int(200_000_000 + r.below(800_000_000)))?;
    let n = name("virtual_memory_bytes");
    out.family(&n, "gauge", "Virtual memory of nginx, in bytes.")?;
    out.sample(&n, ctl, &go_int(1_000_000_000 + r.below(2_000_000_000)))?;
    let n = name("write_bytes_total");
    out.family(&n, "counter", "Bytes written to storage by nginx.")?;
    out.sample(&n, ctl, &go_int(r.below(1_000_000_000)))
}

/// One request histogram: for every (ingress, path), 12 cumulative buckets, `_sum`, `_count`.
fn histogram_family<W: Write>(out: &mut Out<W>, args: &Options, h: &Histogram) -> io::Result<()> {
    let family = format!("{PREFIX}{}", h.suffix);
    let bucket = format!("{family}_bucket");
    let sum_name = format!("{family}_sum");
    let count_name = format!("{family}_count");
    out.family(&family, "histogram", h.help)?;

    let le_texts: Vec<Vec<u8>> = h
        .bounds
        .iter()
        .map(|&b| match h.unit {
            Unit::Seconds => go_float(b, 3),
            Unit::Bytes => go_int(b),
        })
        .chain(std::iter::once(b"+Inf".to_vec()))
        .collect();
    let hist_id = h
        .suffix
        .bytes()
        .fold(0u64, |a, b| a.wrapping_mul(31) ^ u64::from(b));

    let mut base = Vec::with_capacity(512);
    let mut labels = Vec::with_capacity(512);
    let mut value = Vec::with_capacity(32);
    let mut scratch = String::new();
    for i in 0..args.ingresses {
        for p in 0..args.paths {
            series_labels(&mut base, args, i, p, &mut scratch);
            let count = request_count(args.seed, i, p);
            let mut r = stream(&[args.seed, hist_id, u64::from(i), u64::from(p)]);

            // Spread `count` observations over the 12 buckets: each finite bucket takes a random
            // part of what is left, the rest lands above the last bound.
            let mut cumulative = 0u64;
            let mut sum = 0u64; // ms or bytes
            let mut lower = 0u64;
            for (k, le) in le_texts.iter().enumerate() {
                let left = count - cumulative;
                let (take, upper) = match h.bounds.get(k) {
                    Some(&b) => (r.below(left / 2 + 1), b),
                    None => (left, lower * 2),
                };
                // One representative observation per bucket, somewhere inside it.
                let obs = lower + r.below(upper - lower) + 1;
                sum += take * obs;
                cumulative += take;
                lower = upper;

                labels.clear();
                labels.extend_from_slice(&base);
                labels.extend_from_slice(b",le=\"");
                labels.extend_from_slice(le);
                labels.push(b'"');
                value.clear();
                push_go_int(&mut value, cumulative);
                out.sample(&bucket, &labels, &value)?;
            }
            value.clear();
            match h.unit {
                Unit::Seconds => push_go_float(&mut value, sum, 3),
                Unit::Bytes => push_go_int(&mut value, sum),
            }
            out.sample(&sum_name, &base, &value)?;
            value.clear();
            push_go_int(&mut value, count);
            out.sample(&count_name, &base, &value)?;
        }
    }
    Ok(())
}

fn requests_family<W: Write>(out: &mut Out<W>, args: &Options) -> io::Result<()> {
    let n = format!("{PREFIX}requests");
    out.family(
        &n,
        "counter",
        "Client requests served, by path, method and status.",
    )?;
    let mut labels = Vec::with_capacity(512);
    let mut value = Vec::with_capacity(32);
    let mut scratch = String::new();
    for i in 0..args.ingresses {
        for p in 0..args.paths {
            series_labels(&mut labels, args, i, p, &mut scratch);
            value.clear();
            push_go_int(&mut value, request_count(args.seed, i, p));
            out.sample(&n, &labels, &value)?;
        }
    }
    Ok(())
}

fn process_families<W: Write>(out: &mut Out<W>, seed: u64) -> io::Result<()> {
    let mut r = stream(&[seed, 0x7072]);
    out.family(
        "process_cpu_seconds_total",
        "counter",
        "User and system CPU time, in seconds.",
    )?;
    out.sample(
        "process_cpu_seconds_total",
        &[],
        &go_float(10_000 + r.below(5_000_000), 2),
    )?;
    out.family(
        "process_max_fds",
        "gauge",
        "Limit on open file descriptors.",
    )?;
    out.sample("process_max_fds", &[], b"1.048576e+06")?;
    out.family("process_open_fds", "gauge", "Open file descriptors.")?;
    out.sample("process_open_fds", &[], &go_int(30 + r.below(200)))?;
    out.family(
        "process_resident_memory_bytes",
        "gauge",
        "Resident memory, in bytes.",
    )?;
    out.sample(
        "process_resident_memory_bytes",
        &[],
        &go_int(50_000_000 + r.below(400_000_000)),
    )?;
    out.family(
        "process_start_time_seconds",
        "gauge",
        "Process start time, in seconds since the epoch.",
    )?;
    out.sample(
        "process_start_time_seconds",
        &[],
        &go_float(173_080_000_000 + r.below(10_000_000), 2),
    )?;
    out.family(
        "process_virtual_memory_bytes",
        "gauge",
        "Virtual memory, in bytes.",
    )?;
    out.sample(
        "process_virtual_memory_bytes",
        &[],
        &go_int(1_000_000_000 + r.below(1_000_000_000)),
    )?;
    out.family(
        "promhttp_metric_handler_requests_in_flight",
        "gauge",
        "Scrapes being served right now.",
    )?;
    out.sample("promhttp_metric_handler_requests_in_flight", &[], b"1")?;
    out.family(
        "promhttp_metric_handler_requests_total",
        "counter",
        "Scrapes served, by HTTP status code.",
    )?;
    let scrapes = 1000 + r.below(100_000);
    for (code, v) in [("200", scrapes), ("500", 0), ("503", 0)] {
        out.sample(
            "promhttp_metric_handler_requests_total",
            &with_label(&[], "code", code),
            &go_int(v),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(mant: u64, scale: u32) -> String {
        String::from_utf8(go_float(mant, scale)).unwrap()
    }

    #[test]
    fn go_g_formatting() {
        assert_eq!(g(0, 0), "0");
        assert_eq!(g(5, 3), "0.005");
        assert_eq!(g(25, 3), "0.025");
        assert_eq!(g(1000, 3), "1");
        assert_eq!(g(2500, 3), "2.5");
        assert_eq!(g(10000, 3), "10");
        assert_eq!(g(999_999, 0), "999999");
        assert_eq!(g(1_000_000, 0), "1e+06");
        assert_eq!(g(1_234_567, 0), "1.234567e+06");
        assert_eq!(g(10_485_760, 0), "1.048576e+07");
        assert_eq!(g(12_345, 3), "12.345");
        assert_eq!(g(5, 5), "5e-05");
        assert_eq!(g(1, 4), "0.0001");
        assert_eq!(g(1_234_567_891, 3), "1.234567891e+06");
    }
}
