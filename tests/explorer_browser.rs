//! The explorer page in a real browser: Debian's `chromium`, headless, started by the test.
//!
//! The offline page (`--file --html`, written by the binary) of `testdata/ingress_small.prom`
//! is loaded with `--dump-dom`: the top metric and its series count must be on the page, and
//! the what-if in the URL (`#drop=path`) must predict exactly what `--file --apply` with
//! `labeldrop: path` serves. A screenshot is taken too. Then the real server's `/analyze` (the
//! binary, in front of a loopback upstream serving the same body) is loaded the same way, with
//! the what-if in the query (computed by the server and embedded) and in the fragment (asked
//! for with `fetch`, as after a click).
//!
//! Without chromium the browser tests are skipped with a message, unless `CI` is set (`.ci/run`
//! installs chromium), where its absence fails them. `METRIC_GATE_EXPLORER_OUT=DIR` keeps the
//! page and light and dark screenshots in DIR (how `docs/explorer.png` is made).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use metric_gate::explorer::{drop_config_yaml, what_if, WhatIfOptions, WhatIfRequest};

const SAMPLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/ingress_small.prom");
const LABELDROP_PATH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/testdata/relabel/labeldrop_path.yaml"
);

/// Series lines `--file SAMPLE --apply --relabel-file labeldrop_path.yaml` prints.
fn apply_count() -> u64 {
    let out = Command::new(env!("CARGO_BIN_EXE_metric-gate"))
        .args([
            "--file",
            SAMPLE,
            "--apply",
            "--relabel-file",
            LABELDROP_PATH,
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .count() as u64
}

/// The library's what-if and the binary's `--apply` agree (no browser needed).
#[test]
fn what_if_matches_the_apply_binary() {
    let body = std::fs::read(SAMPLE).unwrap();
    let w = what_if(
        &body,
        &WhatIfRequest::drop(["path"]),
        &WhatIfOptions::default(),
    )
    .unwrap();
    assert_eq!(w.totals.series_after, apply_count());
    assert!(w.totals.series_after < w.totals.series_before);
}

/// `--html` goes with `--file` alone, and a bad input leaves no page behind.
#[test]
fn html_flag_checks_its_company_and_its_input() {
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("out.html");
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_metric-gate"))
            .args(args)
            .arg("--html")
            .arg(&page)
            .output()
            .unwrap()
    };
    for other in [
        &["--file", SAMPLE, "--apply"][..],
        &["--file", SAMPLE, "--relabel", "x: []"],
        &[],
    ] {
        let out = run(other);
        assert_eq!(out.status.code(), Some(2), "{other:?}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("--html"),
            "{other:?}"
        );
    }
    let bad = dir.path().join("bad.prom");
    std::fs::write(&bad, "metric{ 1\n").unwrap();
    let out = run(&["--file", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.prom: line 1"), "{err}");
    assert!(!page.exists(), "no page for a bad input");
}

/// The chromium binary, or `None` (after saying why) when the browser tests should be skipped.
fn chromium() -> Option<PathBuf> {
    let found = ["chromium", "chromium-browser"].iter().find_map(|name| {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(name))
                .find(|p| p.is_file())
        })
    });
    match found {
        Some(p) => Some(p),
        None if std::env::var_os("CI").is_some() => {
            panic!("chromium is not installed, and CI is set: the browser tests must run (.ci/run installs it)")
        }
        None => {
            // Straight to the process' stderr, not through the harness' capture, so the skip
            // shows in a plain `cargo test` run.
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED explorer browser test: chromium not found in PATH (Debian package \
                 `chromium`); set CI to make this a failure"
            );
            None
        }
    }
}

/// Runs headless chromium with `args` and returns its stdout; fails after 90 s.
fn run_chromium(chromium: &Path, profile: &Path, args: &[String]) -> String {
    let mut cmd = Command::new(chromium);
    cmd.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
    ])
    .arg(format!("--user-data-dir={}", profile.display()))
    .args(args)
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    // Read the pipes on threads, so a chatty chromium never blocks on a full pipe.
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut s).map(|_| s)
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stderr, &mut s);
        s
    });
    let deadline = Instant::now() + Duration::from_secs(90);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within 90 s: {args:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let stdout = out.join().unwrap().unwrap();
    let stderr = err.join().unwrap();
    assert!(status.success(), "chromium {args:?}: {status}\n{stderr}");
    stdout
}

/// The value of attribute `attr` in the start tag that holds `marker` (e.g. `id="x"`).
fn attr_near(dom: &str, marker: &str, attr: &str) -> Option<String> {
    let at = dom.find(marker)?;
    let tag_start = dom[..at].rfind('<')?;
    let tag_end = at + dom[at..].find('>')?;
    let tag = &dom[tag_start..tag_end];
    let key = format!("{attr}=\"");
    let v = tag.find(&key)? + key.len();
    Some(tag[v..v + tag[v..].find('"')?].to_owned())
}

/// The text content of the element whose start tag holds `marker` (no nested elements).
fn text_of(dom: &str, marker: &str) -> Option<String> {
    let at = dom.find(marker)?;
    let start = at + dom[at..].find('>')? + 1;
    let end = start + dom[start..].find('<')?;
    Some(
        dom[start..end]
            .replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&amp;", "&"),
    )
}

#[test]
fn explorer_page_in_chromium() {
    let Some(chromium) = chromium() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let page = dir.path().join("explorer.html");
    // The binary writes the page: `--file --html`, from the repository root so the page names
    // the file as the docs' screenshot does.
    let out = Command::new(env!("CARGO_BIN_EXE_metric-gate"))
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args(["--file", "testdata/ingress_small.prom", "--html"])
        .arg(&page)
        .output()
        .unwrap();
    let summary = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{summary}");
    assert!(
        summary.starts_with(&format!(
            "wrote {}: 136 series, 23 metrics, ",
            page.display()
        )),
        "{summary}"
    );
    let url = format!("file://{}", page.display());
    let body = std::fs::read(SAMPLE).unwrap();
    let run = |labels: &[&str]| {
        what_if(
            &body,
            &WhatIfRequest::drop(labels),
            &WhatIfOptions::default(),
        )
        .unwrap()
    };
    let nothing = run(&[]);
    let top = &nothing.metrics[0];

    // The page as loaded: the top metric and its series count.
    let profile = tempfile::tempdir().unwrap();
    let dom = run_chromium(
        &chromium,
        profile.path(),
        &["--dump-dom".into(), url.clone()],
    );
    let marker = format!("data-metric=\"{}\"", top.name);
    assert!(
        dom.contains(&marker),
        "top metric {} not on the page",
        top.name
    );
    let first_row = &dom[dom.find("id=\"metric-list\"").unwrap()..];
    let first_row = &first_row[first_row.find("data-metric=").unwrap()..];
    assert!(
        first_row.starts_with(&marker),
        "the first row is not the top metric"
    );
    assert_eq!(
        attr_near(first_row, "class=\"before\"", "data-value").as_deref(),
        Some(top.series_before.to_string().as_str())
    );
    assert_eq!(
        attr_near(&dom, "id=\"total-series\"", "data-value"),
        Some(nothing.totals.series_before.to_string())
    );
    assert_eq!(
        attr_near(&dom, "id=\"whatif-series-after\"", "data-value").as_deref(),
        Some(""),
        "no what-if without one in the URL"
    );

    // A what-if URL: drop `path`. The prediction is `--file --apply`'s count.
    let expected = apply_count();
    let dom = run_chromium(
        &chromium,
        profile.path(),
        &["--dump-dom".into(), format!("{url}#drop=path")],
    );
    assert_eq!(
        attr_near(&dom, "id=\"whatif-series-after\"", "data-value"),
        Some(expected.to_string()),
        "predicted series after dropping path"
    );
    let path = run(&["path"]);
    assert_eq!(path.totals.series_after, expected);
    assert_eq!(
        attr_near(&dom, "id=\"whatif-bytes-after\"", "data-value"),
        Some(path.totals.bytes_after.to_string())
    );
    assert_eq!(
        text_of(&dom, "id=\"whatif-config\""),
        Some(drop_config_yaml(&["path".to_owned()]))
    );

    // Labels that never meet in one metric combine exactly on the page.
    let both = run(&["quantile", "path"]);
    let dom = run_chromium(
        &chromium,
        profile.path(),
        &["--dump-dom".into(), format!("{url}#drop=quantile,path")],
    );
    assert_eq!(
        attr_near(&dom, "id=\"whatif-series-after\"", "data-value"),
        Some(both.totals.series_after.to_string())
    );
    assert_eq!(
        attr_near(&dom, "id=\"whatif-bytes-after\"", "data-value"),
        Some(both.totals.bytes_after.to_string())
    );
    assert_eq!(
        text_of(&dom, "id=\"whatif-config\""),
        Some(drop_config_yaml(&["quantile".into(), "path".into()]))
    );

    // Labels that meet in a metric cannot be combined from single runs: the page says so.
    let dom = run_chromium(
        &chromium,
        profile.path(),
        &["--dump-dom".into(), format!("{url}#drop=path,method")],
    );
    assert_eq!(
        attr_near(&dom, "id=\"whatif-series-after\"", "data-value").as_deref(),
        Some("")
    );
    assert!(
        text_of(&dom, "id=\"whatif-status\"")
            .unwrap()
            .contains("Run with the server for combinations"),
        "status"
    );

    // The page writes the same config as the library, escapes and quoting included.
    let odd = ["true", "a.b", "x~y", "é"];
    let dom = run_chromium(
        &chromium,
        profile.path(),
        &["--dump-dom".into(), format!("{url}#drop={}", odd.join(","))],
    );
    let odd: Vec<String> = odd.iter().map(|s| s.to_string()).collect();
    assert_eq!(
        text_of(&dom, "id=\"whatif-config\""),
        Some(drop_config_yaml(&odd))
    );
    // Labels the body does not have change nothing.
    assert_eq!(
        attr_near(&dom, "id=\"whatif-series-after\"", "data-value"),
        Some(nothing.totals.series_after.to_string())
    );

    // A screenshot of the what-if.
    let keep = std::env::var_os("METRIC_GATE_EXPLORER_OUT").map(PathBuf::from);
    let shots = keep.clone().unwrap_or_else(|| dir.path().to_owned());
    std::fs::create_dir_all(&shots).unwrap();
    for (name, extra) in [
        ("explorer.png", None),
        ("explorer-dark.png", Some("--force-dark-mode")),
    ] {
        let shot = shots.join(name);
        let mut args = vec![
            format!("--screenshot={}", shot.display()),
            "--window-size=1280,900".into(),
        ];
        args.extend(extra.map(str::to_owned));
        args.push(format!("{url}#drop=path"));
        run_chromium(&chromium, profile.path(), &args);
        let png = std::fs::read(&shot).unwrap();
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "{name} is not a PNG");
        assert!(png.len() > 10_000, "{name} looks empty");
    }
    if let Some(keep) = keep {
        std::fs::copy(&page, keep.join("explorer.html")).unwrap();
    }
}

/// A loopback upstream that answers every request with `body` as text 0.0.4.
fn upstream(body: Vec<u8>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
            }
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = conn.write_all(head.as_bytes());
            let _ = conn.write_all(&body);
        }
    });
    format!("http://{addr}/metrics")
}

/// The metric-gate binary serving in front of an upstream; killed when dropped.
struct Server {
    child: Child,
    addr: String,
}

impl Server {
    /// Starts `metric-gate -H upstream` on a random loopback port and waits for its
    /// `listening addr=...` log line.
    fn start(upstream: &str) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_metric-gate"))
            .args(["-H", upstream, "--listen-address", "127.0.0.1", "-p", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut server = Self {
            child,
            addr: String::new(),
        };
        while server.addr.is_empty() {
            let line = rx
                .recv_timeout(Duration::from_secs(20))
                .expect("a 'listening' log line from metric-gate");
            if let Some(rest) = line.split("addr=").nth(1) {
                server.addr = rest.split_whitespace().next().unwrap_or("").to_owned();
            }
        }
        server
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A plain `GET` to the server with an `Accept` header; returns the status line and body.
fn http_get(addr: &str, path: &str, accept: &str) -> (String, String) {
    let mut conn = std::net::TcpStream::connect(addr).unwrap();
    write!(
        conn,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: {accept}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    let status = answer.lines().next().unwrap_or("").to_owned();
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// The server's page: the what-if of the URL shown on load, computed by the server and
/// embedded (`?drop=path`) or asked for with `fetch` (`#drop=path`), equal to `--file --apply`;
/// a bad config's error with its line. The text report for `curl` is unchanged.
#[test]
fn server_page_in_chromium() {
    let Some(chromium) = chromium() else {
        return;
    };
    let body = std::fs::read(SAMPLE).unwrap();
    let expected = apply_count();
    let server = Server::start(&upstream(body));
    let profile = tempfile::tempdir().unwrap();

    // The page as loaded: the top metric and its series count.
    let dom = run_chromium(
        &chromium,
        profile.path(),
        &[
            "--dump-dom".into(),
            "--virtual-time-budget=10000".into(),
            server.url("/analyze"),
        ],
    );
    let top = "nginx_ingress_controller_request_duration_seconds_bucket";
    let first_row = &dom[dom.find("id=\"metric-list\"").unwrap()..];
    let first_row = &first_row[first_row.find("data-metric=").unwrap()..];
    assert!(
        first_row.starts_with(&format!("data-metric=\"{top}\"")),
        "the first row is not the top metric"
    );
    assert_eq!(
        attr_near(first_row, "class=\"before\"", "data-value").as_deref(),
        Some("40")
    );
    assert_eq!(
        attr_near(&dom, "id=\"total-series\"", "data-value").as_deref(),
        Some("136")
    );

    for path in ["/analyze?drop=path", "/analyze#drop=path"] {
        let dom = run_chromium(
            &chromium,
            profile.path(),
            &[
                "--dump-dom".into(),
                "--virtual-time-budget=10000".into(),
                server.url(path),
            ],
        );
        assert_eq!(
            attr_near(&dom, "id=\"whatif-series-after\"", "data-value"),
            Some(expected.to_string()),
            "{path}: predicted series after dropping path"
        );
        assert_eq!(
            text_of(&dom, "id=\"whatif-config\""),
            Some(drop_config_yaml(&["path".to_owned()])),
            "{path}"
        );
    }
    // A pasted config that does not load: the error and its line.
    let yaml = "metric_relabel_configs:%0A- action: keep%0A  regex: a%0A- action: hashmod%0A";
    let dom = run_chromium(
        &chromium,
        profile.path(),
        &[
            "--dump-dom".into(),
            server.url(&format!("/analyze?relabel={yaml}")),
        ],
    );
    let status = text_of(&dom, "id=\"whatif-status\"").unwrap();
    assert!(status.starts_with("line 4, column 1: "), "{status}");
    assert!(status.contains("metric_relabel_configs[1]"), "{status}");
    // The profile is still shown.
    assert!(dom.contains(&format!("data-metric=\"{top}\"")));

    // `curl` still gets the text report.
    let (status, text) = http_get(&server.addr, "/analyze", "*/*");
    assert!(status.contains(" 200 "), "{status}");
    assert!(
        text.starts_with("total: 136 series, 23 metrics, "),
        "{text}"
    );

    if let Some(keep) = std::env::var_os("METRIC_GATE_EXPLORER_OUT").map(PathBuf::from) {
        std::fs::create_dir_all(&keep).unwrap();
        for (name, path) in [
            ("server.png", "/analyze?drop=path".to_owned()),
            ("server-error.png", format!("/analyze?relabel={yaml}")),
            ("index.png", "/".to_owned()),
        ] {
            run_chromium(
                &chromium,
                profile.path(),
                &[
                    format!("--screenshot={}", keep.join(name).display()),
                    "--window-size=1280,900".into(),
                    server.url(&path),
                ],
            );
        }
    }
}
