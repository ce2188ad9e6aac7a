//! The binary in server mode: flags, startup log, SIGTERM finishes in-flight scrapes and exits 0.

mod http_support;

use std::process::Command;
use std::time::Duration;

use http_support::*;

/// Kills the child if the test fails before it exits by itself.
struct KillOnDrop(Option<std::process::Child>);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(c) = self.0.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[tokio::test]
async fn sigterm_finishes_inflight_scrapes_and_exits_0() {
    let up = Upstream::start(Behave::SlowStart(
        "slow_metric 1\n".into(),
        Duration::from_millis(800),
    ))
    .await;
    let (child, rx, addr) = spawn_gate_binary(&[
        "--listen-address",
        "127.0.0.1",
        "-p",
        "0",
        "-H",
        &up.url(),
        "-t",
        "5s",
    ]);
    let mut guard = KillOnDrop(Some(child));

    // The warm-up scrape makes the process ready once the upstream answers.
    let ready_url = format!("http://{addr}/-/ready");
    let mut ready = false;
    for _ in 0..50 {
        if get(&ready_url, &[]).await.status == 200 {
            ready = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ready, "never became ready");

    let url = format!("http://{addr}/metrics");
    let inflight = tokio::spawn(async move { get(&url, &[]).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let pid = guard.0.as_ref().unwrap().id().to_string();
    let status = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(status.success());

    let r = inflight.await.unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), "slow_metric 1\n");
    let mut child = guard.0.take().unwrap();
    let exit = tokio::task::spawn_blocking(move || child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(exit.success(), "{exit:?}");
    let logs: Vec<String> = rx.try_iter().collect();
    assert!(
        logs.iter().any(|l| l.contains("shutdown requested")),
        "{logs:?}"
    );
}

#[test]
fn invalid_upstream_is_refused_at_startup() {
    let out = Command::new(env!("CARGO_BIN_EXE_metric-gate"))
        .args(["--listen-address", "127.0.0.1", "-p", "0", "-H", "ftp://x/"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("the scheme must be http or https"), "{err}");
}

#[test]
fn dns_upstream_without_scheme_is_explained_at_startup() {
    let out = Command::new(env!("CARGO_BIN_EXE_metric-gate"))
        .args([
            "--listen-address",
            "127.0.0.1",
            "-p",
            "0",
            "-H",
            "dns+localhost:9100/metrics",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("dns+ needs a scheme: dns+http://localhost:9100/metrics"),
        "{err}"
    );
}

/// The default listen address takes IPv6 and IPv4 clients on one socket. This test binds the
/// wildcard address (on a random port, for well under a second), as the default does.
#[tokio::test]
async fn default_listener_takes_both_families() {
    let up = Upstream::start(Behave::Text("up 1\n".into())).await;
    let (child, _rx, addr) = spawn_gate_binary(&["-p", "0", "-H", &up.url()]);
    let _child = KillOnDrop(Some(child));
    assert!(addr.starts_with("[::]:"), "{addr}");
    let port: u16 = addr.rsplit(':').next().unwrap().parse().unwrap();
    for host in ["127.0.0.1", "[::1]"] {
        let r = get(&format!("http://{host}:{port}/-/healthy"), &[]).await;
        assert_eq!(r.status, 200, "{host}");
    }
}
