//! `--web.config.file`: TLS, client certificates and basic auth, with certificates made by
//! rcgen in a temporary directory, a rustls client, and curl when the machine has it.

mod http_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use metric_gate::relabel::Config;
use metric_gate::server::web_config::WebConfigWatcher;
use metric_gate::server::ListenerConfig;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::net::TcpStream;

use http_support::*;

const BODY: &str = "# TYPE up gauge\nup 1\n";

/// A CA, a server certificate for 127.0.0.1/localhost, a client certificate from the CA and
/// one from another CA, written as PEM files into a temporary directory.
struct Pki {
    dir: tempfile::TempDir,
    ca: Issuer<'static, KeyPair>,
}

fn ca(name: &str) -> (String, Issuer<'static, KeyPair>) {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.distinguished_name.push(DnType::CommonName, name);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    let key = KeyPair::generate().unwrap();
    let cert = p.self_signed(&key).unwrap();
    (cert.pem(), Issuer::new(p, key))
}

fn leaf(issuer: &Issuer<'static, KeyPair>, cn: &str, server: bool) -> (String, String) {
    let sans = if server {
        vec!["localhost".to_owned(), "127.0.0.1".to_owned()]
    } else {
        vec![format!("{cn}.clients.test")]
    };
    let mut p = CertificateParams::new(sans).unwrap();
    p.distinguished_name.push(DnType::CommonName, cn);
    p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    p.extended_key_usages = vec![if server {
        ExtendedKeyUsagePurpose::ServerAuth
    } else {
        ExtendedKeyUsagePurpose::ClientAuth
    }];
    let key = KeyPair::generate().unwrap();
    let cert = p.signed_by(&key, issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

impl Pki {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (ca_pem, issuer) = ca("metric-gate test CA");
        let (other_pem, other) = ca("some other CA");
        let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
        write("ca.crt", &ca_pem);
        write("other-ca.crt", &other_pem);
        let (c, k) = leaf(&issuer, "metric-gate", true);
        write("server.crt", &c);
        write("server.key", &k);
        let (c, k) = leaf(&issuer, "prometheus", false);
        write("client.crt", &c);
        write("client.key", &k);
        let (c, k) = leaf(&other, "stranger", false);
        write("stranger.crt", &c);
        write("stranger.key", &k);
        Self { dir, ca: issuer }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes `web.yml` (relative file names resolve against the temporary directory).
    fn web_config(&self, yaml: &str) -> PathBuf {
        let p = self.path("web.yml");
        std::fs::write(&p, yaml).unwrap();
        p
    }

    /// A new server certificate and key over the old files (a rotation).
    fn rotate_server_cert(&self, cn: &str) -> Vec<u8> {
        let (c, k) = leaf(&self.ca, cn, true);
        std::fs::write(self.path("server.key"), &k).unwrap();
        std::fs::write(self.path("server.crt"), &c).unwrap();
        CertificateDer::from_pem_slice(c.as_bytes())
            .unwrap()
            .to_vec()
    }
}

/// A response over TLS, with the certificate the server presented.
struct TlsResp {
    status: u16,
    www_authenticate: Option<String>,
    body: String,
    server_cert: Vec<u8>,
}

/// GET `path` over TLS trusting `ca`, with an optional client certificate and basic auth.
async fn tls_get(
    addr: std::net::SocketAddr,
    path: &str,
    ca: &Path,
    client: Option<(&Path, &Path)>,
    auth: Option<(&str, &str)>,
) -> Result<TlsResp, String> {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let cfg = match client {
        Some((cert, key)) => {
            let certs = CertificateDer::pem_file_iter(cert)
                .unwrap()
                .collect::<Result<Vec<_>, _>>()
                .unwrap();
            let key = PrivateKeyDer::from_pem_file(key).unwrap();
            builder.with_client_auth_cert(certs, key).unwrap()
        }
        None => builder.with_no_client_auth(),
    };
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(name, tcp)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let server_cert = tls
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c| c.to_vec())
        .unwrap_or_default();
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .map_err(|e| format!("http handshake: {e}"))?;
    tokio::spawn(conn);
    let mut req = http::Request::get(path).header("host", "127.0.0.1");
    if let Some((u, p)) = auth {
        let b = base64::engine::general_purpose::STANDARD.encode(format!("{u}:{p}"));
        req = req.header("authorization", format!("Basic {b}"));
    }
    let resp = send
        .send_request(req.body(Empty::<Bytes>::new()).unwrap())
        .await
        .map_err(|e| format!("request: {e}"))?;
    let status = resp.status().as_u16();
    let www_authenticate = resp
        .headers()
        .get("www-authenticate")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("body: {e}"))?
        .to_bytes();
    Ok(TlsResp {
        status,
        www_authenticate,
        body: String::from_utf8_lossy(&body).into_owned(),
        server_cert,
    })
}

async fn gate_with_web_config(up: &Upstream, web: &Path) -> Gate {
    gate_with_timeout(up, web, ListenerConfig::default().header_read_timeout).await
}

async fn gate_with_timeout(up: &Upstream, web: &Path, header_read_timeout: Duration) -> Gate {
    let watcher = WebConfigWatcher::load(web).unwrap_or_else(|e| panic!("{e}"));
    let listener = ListenerConfig {
        web: Some(Arc::new(watcher)),
        header_read_timeout,
        ..ListenerConfig::default()
    };
    Gate::start_with(config_for(&up.url()), &Config::passthrough(), listener).await
}

#[tokio::test]
async fn tls_serves_metrics_and_plain_http_gets_400() {
    let pki = Pki::new();
    let up = Upstream::start(Behave::Plain(BODY.into())).await;
    let web =
        pki.web_config("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n");
    let gate = gate_with_web_config(&up, &web).await;

    let r = tls_get(gate.addr, "/metrics", &pki.path("ca.crt"), None, None)
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.body, BODY);

    // Not trusting the server's CA: the client refuses.
    let e = tls_get(gate.addr, "/metrics", &pki.path("other-ca.crt"), None, None)
        .await
        .err()
        .expect("a client that does not trust the CA must fail");
    assert!(e.contains("handshake"), "{e}");

    // Plain HTTP on the TLS port: a 400 that says why, not a hang.
    let plain = get(&gate.url("/metrics"), &[]).await;
    assert_eq!(plain.status, 400);
    assert!(
        plain.text().contains("HTTP request to an HTTPS server"),
        "{}",
        plain.text()
    );
    let m = gate.state.metrics.encode();
    assert!(
        m.contains("metric_gate_http_connections_dropped_total{reason=\"plain_http_on_tls\"} 1"),
        "{m}"
    );
}

#[tokio::test]
async fn stalled_tls_handshakes_are_closed_after_the_timeout() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let pki = Pki::new();
    let up = Upstream::start(Behave::Plain(BODY.into())).await;
    let web =
        pki.web_config("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n");
    let gate = gate_with_timeout(&up, &web, Duration::from_secs(1)).await;

    // A port check: connect and close without a byte. Not a refusal, not counted.
    drop(TcpStream::connect(gate.addr).await.unwrap());
    // Connected and silent, and one that sends the first bytes of a TLS record and stalls.
    let mut silent = TcpStream::connect(gate.addr).await.unwrap();
    let mut partial = TcpStream::connect(gate.addr).await.unwrap();
    partial.write_all(&[0x16, 0x03, 0x01, 0x02]).await.unwrap();
    // Meanwhile a real client is served.
    let r = tls_get(gate.addr, "/metrics", &pki.path("ca.crt"), None, None)
        .await
        .unwrap();
    assert_eq!(r.status, 200);
    let mut buf = [0u8; 64];
    for s in [&mut silent, &mut partial] {
        let got = tokio::time::timeout(Duration::from_secs(10), s.read(&mut buf))
            .await
            .expect("closed after the 1 s handshake timeout");
        assert!(matches!(got, Ok(0) | Err(_)), "{got:?}");
    }
    let m = gate.state.metrics.encode();
    assert!(
        m.contains(
            "metric_gate_http_connections_dropped_total{reason=\"tls_handshake_timeout\"} 2"
        ),
        "{m}"
    );
    // Counted by reason from 0: no handshake failed otherwise.
    assert!(
        m.contains(
            "metric_gate_http_connections_dropped_total{reason=\"tls_handshake_error\"} 0\n"
        ),
        "{m}"
    );
}

#[tokio::test]
async fn client_certificate_required() {
    let pki = Pki::new();
    let up = Upstream::start(Behave::Plain(BODY.into())).await;
    let web = pki.web_config(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_ca_file: ca.crt\n  client_auth_type: RequireAndVerifyClientCert\n",
    );
    let gate = gate_with_web_config(&up, &web).await;
    let ca = pki.path("ca.crt");

    // Without a certificate: the server aborts the handshake (with TLS 1.3 the client sees
    // it at its first read, so the request fails either way).
    assert!(tls_get(gate.addr, "/metrics", &ca, None, None)
        .await
        .is_err());
    // With one from another CA: refused as well.
    let stranger = (pki.path("stranger.crt"), pki.path("stranger.key"));
    assert!(tls_get(
        gate.addr,
        "/metrics",
        &ca,
        Some((&stranger.0, &stranger.1)),
        None
    )
    .await
    .is_err());
    // With the CA's client certificate: served.
    let client = (pki.path("client.crt"), pki.path("client.key"));
    let r = tls_get(
        gate.addr,
        "/metrics",
        &ca,
        Some((&client.0, &client.1)),
        None,
    )
    .await
    .unwrap();
    assert_eq!(r.status, 200);
    assert_eq!(r.body, BODY);
    let m = gate.state.metrics.encode();
    assert!(
        m.contains("metric_gate_http_connections_dropped_total{reason=\"tls_handshake_error\"} 2"),
        "{m}"
    );
}

fn auth_config(pki: &Pki, tls: bool) -> PathBuf {
    let hash = bcrypt::hash("correct horse", 4).unwrap();
    let tls = if tls {
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n"
    } else {
        ""
    };
    pki.web_config(&format!(
        "{tls}basic_auth_users:\n  prometheus: {hash}\nhttp_server_config:\n  headers:\n    X-Content-Type-Options: nosniff\n"
    ))
}

#[tokio::test]
async fn basic_auth_over_tls() {
    let pki = Pki::new();
    let up = Upstream::start(Behave::Plain(BODY.into())).await;
    let gate = gate_with_web_config(&up, &auth_config(&pki, true)).await;
    let ca = pki.path("ca.crt");

    let r = tls_get(gate.addr, "/metrics", &ca, None, None)
        .await
        .unwrap();
    assert_eq!(r.status, 401);
    assert_eq!(r.www_authenticate.as_deref(), Some("Basic"));
    let r = tls_get(
        gate.addr,
        "/metrics",
        &ca,
        None,
        Some(("prometheus", "wrong")),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 401);
    let r = tls_get(
        gate.addr,
        "/metrics",
        &ca,
        None,
        Some(("nobody", "correct horse")),
    )
    .await
    .unwrap();
    assert_eq!(r.status, 401);
    for _ in 0..3 {
        let r = tls_get(
            gate.addr,
            "/metrics",
            &ca,
            None,
            Some(("prometheus", "correct horse")),
        )
        .await
        .unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.body, BODY);
    }
    // Every endpoint is protected, health included (as the exporter toolkit does).
    let r = tls_get(gate.addr, "/-/healthy", &ca, None, None)
        .await
        .unwrap();
    assert_eq!(r.status, 401);
    let m = gate.state.metrics.encode();
    assert!(
        m.contains("metric_gate_http_requests_total{endpoint=\"/metrics\",code=\"401\"} 3"),
        "{m}"
    );
}

#[tokio::test]
async fn basic_auth_without_tls_and_configured_headers() {
    let pki = Pki::new();
    let up = Upstream::start(Behave::Plain(BODY.into())).await;
    let gate = gate_with_web_config(&up, &auth_config(&pki, false)).await;
    let r = gate.get("/metrics").await;
    assert_eq!(r.status, 401);
    assert_eq!(r.header("www-authenticate"), Some("Basic"));
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
    let b = base64::engine::general_purpose::STANDARD.encode("prometheus:correct horse");
    let r = get(
        &gate.url("/metrics"),
        &[("authorization", &format!("Basic {b}"))],
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.text(), BODY);
    assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
}

#[tokio::test]
async fn rotated_certificate_is_served_to_new_connections() {
    let pki = Pki::new();
    let up = Upstream::start(Behave::Plain(BODY.into())).await;
    let web =
        pki.web_config("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n");
    let gate = gate_with_web_config(&up, &web).await;
    let ca = pki.path("ca.crt");
    let before = tls_get(gate.addr, "/metrics", &ca, None, None)
        .await
        .unwrap();

    let new_der = pki.rotate_server_cert("metric-gate-rotated");
    let after = tls_get(gate.addr, "/metrics", &ca, None, None)
        .await
        .unwrap();
    assert_eq!(after.status, 200);
    assert_ne!(before.server_cert, after.server_cert);
    assert_eq!(after.server_cert, new_der);

    // A broken key file: the last good certificate stays in force, the failure is counted.
    std::fs::write(pki.path("server.key"), "not a key\n").unwrap();
    let still = tls_get(gate.addr, "/metrics", &ca, None, None)
        .await
        .unwrap();
    assert_eq!(still.status, 200);
    assert_eq!(still.server_cert, new_der);
    let m = gate.state.metrics.encode();
    assert!(
        m.contains("metric_gate_web_config_reloads_total{result=\"failure\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("metric_gate_web_config_last_reload_successful 0"),
        "{m}"
    );
}

/// Runs the binary until it exits (killing it after 10 s) and returns (success, stderr).
fn run_binary_to_exit(args: &[&str]) -> (bool, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_metric-gate"))
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
            return (status.success(), err);
        }
        if start.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("metric-gate {args:?} kept running; expected a startup error");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn invalid_web_config_stops_startup_naming_file_and_field() {
    let pki = Pki::new();
    let cases: &[(&str, &str)] = &[
        (
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth: RequireAndVerifyClientCert\n",
            "unknown field `client_auth`",
        ),
        (
            "tls_server_config:\n  cert_file: missing.crt\n  key_file: server.key\n",
            "tls_server_config.cert_file",
        ),
        ("basic_auth_users:\n  alice: hunter2\n", "basic_auth_users.alice: not a bcrypt hash"),
        (
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_ca_file: ca.crt\n",
            "without a client_auth_type",
        ),
        (
            "tls_server_config:\n  cert_file: server.crt\n  key_file: client.key\n",
            "tls_server_config.cert_file",
        ),
    ];
    for (yaml, expected) in cases {
        let web = pki.web_config(yaml);
        let (ok, err) = run_binary_to_exit(&[
            "--listen-address",
            "127.0.0.1",
            "-p",
            "0",
            "--web.config.file",
            web.to_str().unwrap(),
        ]);
        assert!(!ok, "{yaml}: started anyway");
        assert!(err.contains(web.to_str().unwrap()), "{yaml}: {err}");
        assert!(
            err.contains(expected),
            "{yaml}: expected {expected:?} in {err}"
        );
    }
    let (ok, err) = run_binary_to_exit(&["-p", "0", "--web.config.file", "/nonexistent/web.yml"]);
    assert!(!ok);
    assert!(err.contains("/nonexistent/web.yml"), "{err}");
}

/// curl, when installed: TLS with a client certificate and basic auth, as an outside client.
#[tokio::test]
async fn curl_with_client_certificate_and_basic_auth() {
    if Command::new("curl").arg("--version").output().is_err() {
        eprintln!("curl not installed: skipping");
        return;
    }
    let pki = Pki::new();
    let up = Upstream::start(Behave::Plain(BODY.into())).await;
    let hash = bcrypt::hash("pw", 4).unwrap();
    let web = pki.web_config(&format!(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_ca_file: ca.crt\n  client_auth_type: RequireAndVerifyClientCert\n  min_version: TLS12\nbasic_auth_users:\n  prom: {hash}\n"
    ));
    let gate = gate_with_web_config(&up, &web).await;
    let url = format!("https://127.0.0.1:{}/metrics", gate.addr.port());
    let ca = pki.path("ca.crt");
    let (cert, key) = (pki.path("client.crt"), pki.path("client.key"));
    let curl = |extra: Vec<String>| {
        let url = url.clone();
        let ca = ca.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let mut args = vec![
                    "-sS".to_owned(),
                    "--max-time".to_owned(),
                    "10".to_owned(),
                    "--cacert".to_owned(),
                    ca.display().to_string(),
                    "-w".to_owned(),
                    "\n%{http_code}".to_owned(),
                ];
                args.extend(extra);
                args.push(url);
                Command::new("curl").args(&args).output().unwrap()
            })
            .await
            .unwrap()
        }
    };
    let with_cert = vec![
        "--cert".to_owned(),
        cert.display().to_string(),
        "--key".to_owned(),
        key.display().to_string(),
    ];

    let mut args = with_cert.clone();
    args.extend(["-u".to_owned(), "prom:pw".to_owned()]);
    let out = curl(args).await;
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(text, format!("{BODY}\n200"));

    let out = curl(with_cert.clone()).await;
    assert!(String::from_utf8_lossy(&out.stdout).ends_with("401"));

    let out = curl(vec!["-u".to_owned(), "prom:pw".to_owned()]).await;
    assert!(!out.status.success(), "no client certificate must fail");
}
