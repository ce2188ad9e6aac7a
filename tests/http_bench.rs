//! Measurements, not assertions: latency of `/metrics` through the metric-gate binary against
//! fetching the upstream directly, the binary's peak RSS, and dns+ fan-out over 4 targets.
//!
//! ```text
//! cargo run --release --example gen_ingress -- --ingresses 1000 --paths 10 --out /tmp/ingress.prom
//! MG_BENCH_PAYLOAD=/tmp/ingress.prom \
//!   cargo test --release --test http_bench -- --ignored --nocapture --test-threads=1
//! ```
//! One test at a time (`--test-threads=1`): each measures, and they would share the cores.
//! Optional: `MG_BENCH_RELABEL=file.yaml` (passed as `--relabel-file`), `MG_BENCH_RUNS=N`.
//!
//! `first_and_repeat_scrape` (same variables) times a sidecar's first scrape and its repeat
//! scrapes of one plain upstream.
//!
//! `fan_out_cpu_per_target` (same variables) compares the binary's CPU time per scrape and per
//! target of `dns+` over 1 and over 4 loopback targets serving the same payload from memory.

use std::net::Ipv4Addr;
use std::process::Child;
use std::time::{Duration, Instant};

use bytes::Bytes;
use testkit::client::*;
use testkit::dns::DnsServer;
use testkit::gate::*;
use testkit::upstream::*;

struct Bin {
    child: Child,
    addr: String,
    logs: std::sync::mpsc::Receiver<String>,
}

impl Bin {
    fn start(extra: &[&str]) -> Self {
        let mut args = vec![
            "--listen-address",
            "127.0.0.1",
            "-p",
            "0",
            "-t",
            "120s",
            "--log-level",
            "debug",
        ];
        args.extend_from_slice(extra);
        let relabel = std::env::var("MG_BENCH_RELABEL").ok();
        if let Some(r) = &relabel {
            args.extend_from_slice(&["--relabel-file", r.as_str()]);
        }
        let (child, rx, addr) = spawn_gate_binary(&args);
        Self {
            child,
            addr,
            logs: rx,
        }
    }

    /// Prints the scrape log lines so far (with MG_BENCH_LOG set).
    fn print_scrape_logs(&self) {
        let lines: Vec<String> = self.logs.try_iter().collect();
        if std::env::var_os("MG_BENCH_LOG").is_some() {
            for l in lines.iter().filter(|l| l.contains("scrape")) {
                println!("    {l}");
            }
        }
    }

    /// The duration the binary logged for its first scrape (the warm-up it runs at start,
    /// before it is ready), in ms; reads the log lines so far.
    fn first_scrape_ms(&self) -> Option<u64> {
        self.logged_scrape_ms().first().copied()
    }

    /// The durations the binary logged for the scrapes finished since the last call, in ms.
    fn logged_scrape_ms(&self) -> Vec<u64> {
        self.logs
            .try_iter()
            .filter_map(|l| {
                let rest = l.split("scrape done").nth(1)?;
                let ms = rest.split("duration_ms=").nth(1)?;
                ms.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
            })
            .collect()
    }

    async fn wait_ready(&self) {
        for _ in 0..600 {
            if get(&format!("http://{}/-/ready", self.addr), &[])
                .await
                .status
                == 200
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("metric-gate never became ready");
    }

    /// CPU time (user + system, all threads) the process used so far, from `/proc/PID/stat`
    /// in clock ticks of 10 ms (Linux' `USER_HZ` of 100).
    fn cpu(&self) -> Duration {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap();
        // Fields after the command name (which may hold blanks) in parentheses.
        let rest = &stat[stat.rfind(')').unwrap() + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks: u64 = f[11].parse::<u64>().unwrap() + f[12].parse::<u64>().unwrap();
        Duration::from_millis(ticks * 10)
    }

    /// Peak resident set size (VmHWM) in MiB.
    fn peak_rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        let kb: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .unwrap()
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .unwrap();
        kb / 1024.0
    }
}

impl Drop for Bin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Times one GET to the end of its body, counted as it arrives ([`get_counted`]: collecting
/// the 276 MB body into one buffer would take longer than the upstream takes to send it, and
/// hide what the gate adds). A gzip body is timed as it arrives, not decompressed.
async fn timed_get(url: &str, headers: &[(&str, &str)]) -> (Duration, usize, u16) {
    let t0 = Instant::now();
    let (status, len) = get_counted(url, headers).await;
    (t0.elapsed(), len, status)
}

/// Medians (and the last body sizes) of `runs` rounds, each fetching the upstream directly
/// (with `direct_headers`), then the gate's `/metrics` as text, then asking for gzip.
struct Rounds {
    direct: Duration,
    via: Duration,
    via_gz: Duration,
    direct_len: usize,
    via_len: usize,
    via_gz_len: usize,
}

impl Rounds {
    async fn time(
        upstream: &str,
        direct_headers: &[(&str, &str)],
        gate: &str,
        runs: usize,
    ) -> Self {
        let (mut direct, mut via, mut via_gz) = (Vec::new(), Vec::new(), Vec::new());
        let (mut direct_len, mut via_len, mut via_gz_len) = (0, 0, 0);
        for _ in 0..runs {
            let (d, n, _) = timed_get(upstream, direct_headers).await;
            direct.push(d);
            direct_len = n;
            let (d, n, s) = timed_get(gate, &[]).await;
            assert_eq!(s, 200);
            via.push(d);
            via_len = n;
            let (d, n, s) = timed_get(gate, &[("Accept-Encoding", "gzip")]).await;
            assert_eq!(s, 200);
            via_gz.push(d);
            via_gz_len = n;
        }
        Rounds {
            direct: median(direct),
            via: median(via),
            via_gz: median(via_gz),
            direct_len,
            via_len,
            via_gz_len,
        }
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// The payload named by `MG_BENCH_PAYLOAD` and the runs `MG_BENCH_RUNS` asks for (5).
fn payload_and_runs() -> (Bytes, usize) {
    let path = std::env::var("MG_BENCH_PAYLOAD").expect("MG_BENCH_PAYLOAD=path to a payload");
    let runs = std::env::var("MG_BENCH_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5);
    (Bytes::from(std::fs::read(&path).unwrap()), runs)
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark; see the file's docs"]
async fn scrape_latency_memory_and_fan_out() {
    let (plain, runs) = payload_and_runs();
    let t0 = Instant::now();
    let gz = Bytes::from(gzip(&plain));
    println!(
        "payload: {} bytes ({} gzip, compressed once in {})",
        plain.len(),
        gz.len(),
        ms(t0.elapsed())
    );

    for (label, gzip_upstream) in [("plain upstream", false), ("gzip upstream", true)] {
        let up = Upstream::start(Behave::Prepared {
            plain: plain.clone(),
            gzip: gzip_upstream.then(|| gz.clone()),
        })
        .await;
        let bin = Bin::start(&["-H", &up.url()]);
        bin.wait_ready().await;
        let gate = format!("http://{}/metrics", bin.addr);
        let ae: &[(&str, &str)] = if gzip_upstream {
            &[("Accept-Encoding", "gzip")]
        } else {
            &[]
        };
        let r = Rounds::time(&up.url(), ae, &gate, runs).await;
        println!(
            "{label}: direct {} ({} B) | via metric-gate {} ({} B) | via metric-gate, gzip to client {} ({} B) | peak RSS {:.0} MiB | median of {runs}",
            ms(r.direct),
            r.direct_len,
            ms(r.via),
            r.via_len,
            ms(r.via_gz),
            r.via_gz_len,
            bin.peak_rss_mib()
        );
        bin.print_scrape_logs();
    }

    // dns+ over 4 targets on 127.0.0.2..5 serving the same payload.
    let (port, ups) = upstreams_on_loopbacks(
        (0..4)
            .map(|_| Behave::Prepared {
                plain: plain.clone(),
                gzip: None,
            })
            .collect(),
    )
    .await;
    let dns = DnsServer::start();
    dns.set_a(
        "ingress.test",
        &(2..6)
            .map(|i| Ipv4Addr::new(127, 0, 0, i))
            .collect::<Vec<_>>(),
    );
    let dns_addr = dns.addr.to_string();
    let upstream = format!("dns+http://ingress.test:{port}/metrics");
    let bin = Bin::start(&["-H", &upstream, "--dns-server", &dns_addr]);
    bin.wait_ready().await;
    let gate = format!("http://{}/metrics", bin.addr);
    let mut direct_one = Vec::new();
    let mut via = Vec::new();
    let mut len = 0;
    for _ in 0..runs {
        let (d, _, _) = timed_get(&ups[0].url(), &[]).await;
        direct_one.push(d);
        let (d, n, s) = timed_get(&gate, &[]).await;
        assert_eq!(s, 200);
        via.push(d);
        len = n;
    }
    println!(
        "dns+ 4 targets: one target direct {} | fan-out via metric-gate {} ({len} B) | peak RSS {:.0} MiB | median of {runs}",
        ms(median(direct_one)),
        ms(median(via)),
        bin.peak_rss_mib()
    );
    bin.print_scrape_logs();
}

/// One plain upstream, as a sidecar: the first scrape (the warm-up the binary runs at start,
/// which relabels and keys every series: the time it logs, and from start to ready), then repeat
/// scrapes (every series known to the series cache), plain and gzip to the client, against the
/// direct fetch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark; see the file's docs"]
async fn first_and_repeat_scrape() {
    let (plain, runs) = payload_and_runs();
    let up = Upstream::start(Behave::Prepared {
        plain: plain.clone(),
        gzip: None,
    })
    .await;
    let t0 = Instant::now();
    let bin = Bin::start(&["-H", &up.url()]);
    bin.wait_ready().await;
    let to_ready = t0.elapsed();
    let first = bin
        .first_scrape_ms()
        .expect("the warm-up scrape's log line");
    let gate = format!("http://{}/metrics", bin.addr);
    let r = Rounds::time(&up.url(), &[], &gate, runs).await;
    // The gate's own time per repeat scrape (fetch, parse, sum, render; not the answer's
    // transfer), as it logs it: with the direct fetch, what a scrape adds.
    let mut logged = bin.logged_scrape_ms();
    assert!(!logged.is_empty(), "the repeat scrapes' log lines");
    logged.sort_unstable();
    let (logged_min, logged) = (logged[0], logged[logged.len() / 2]);
    println!(
        "first and repeat scrape: payload {} B | first {first} ms (start to ready {}) | repeat logged {logged} ms (min {logged_min} ms) | repeat {} ({} B) | repeat, gzip to client {} ({} B) | direct {} | peak RSS {:.0} MiB | median of {runs}",
        plain.len(),
        ms(to_ready),
        ms(r.via),
        r.via_len,
        ms(r.via_gz),
        r.via_gz_len,
        ms(r.direct),
        bin.peak_rss_mib()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "benchmark; see the file's docs"]
async fn fan_out_cpu_per_target() {
    let (plain, runs) = payload_and_runs();
    let runs = u32::try_from(runs).expect("MG_BENCH_RUNS fits a u32");
    for targets in [1u8, 4] {
        let (port, _ups) = upstreams_on_loopbacks(
            (0..targets)
                .map(|_| Behave::Prepared {
                    plain: plain.clone(),
                    gzip: None,
                })
                .collect(),
        )
        .await;
        let dns = DnsServer::start();
        dns.set_a(
            "ingress.test",
            &(0..targets)
                .map(|i| Ipv4Addr::new(127, 0, 0, 2 + i))
                .collect::<Vec<_>>(),
        );
        let dns_addr = dns.addr.to_string();
        let upstream = format!("dns+http://ingress.test:{port}/metrics");
        let bin = Bin::start(&["-H", &upstream, "--dns-server", &dns_addr]);
        bin.wait_ready().await;
        let gate = format!("http://{}/metrics", bin.addr);
        // The first scrape fills the caches; the ones measured are repeat scrapes.
        let (_, _, s) = timed_get(&gate, &[]).await;
        assert_eq!(s, 200);
        let cpu0 = bin.cpu();
        let t0 = Instant::now();
        let mut wall = Vec::new();
        for _ in 0..runs {
            let (d, _, s) = timed_get(&gate, &[]).await;
            assert_eq!(s, 200);
            wall.push(d);
        }
        let (cpu, elapsed) = (bin.cpu() - cpu0, t0.elapsed());
        let per_scrape = cpu / runs;
        println!(
            "dns+ {targets} target(s), repeat scrapes: CPU {} per scrape, {} per target | wall {} median | CPU/wall {:.2} | peak RSS {:.0} MiB | {runs} scrapes",
            ms(per_scrape),
            ms(per_scrape / u32::from(targets)),
            ms(median(wall)),
            cpu.as_secs_f64() / elapsed.as_secs_f64(),
            bin.peak_rss_mib()
        );
    }
}
