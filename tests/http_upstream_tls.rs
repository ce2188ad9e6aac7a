//! https upstreams: certificates generated with rcgen, upstreams served by tokio-rustls on
//! loopback. Verified, unknown CA, name mismatch, expired, insecure, client certificates,
//! bearer token rotation, basic auth, and dns+https with --upstream.server-name.

mod http_support;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use http_support::*;
use metric_gate::relabel::Config;
use metric_gate::server::{AppState, RelabelConfig, ServerConfig};
use metric_gate::upstream::ClientOptions;
use rcgen::{
    date_time_ymd, BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

const BODY: &str = "# TYPE reqs counter\nreqs{code=\"200\"} 7\n";

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A CA that signs server and client certificates; PEM files in a temp dir.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
    dir: tempfile::TempDir,
}

/// A certificate with its key, as rustls wants them and as PEM files.
struct Issued {
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    cert_file: PathBuf,
    key_file: PathBuf,
}

impl Ca {
    fn new(name: &str) -> Self {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), issuer.pem()).unwrap();
        Self { issuer, dir }
    }

    fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// A leaf certificate for `names` (DNS names or IPs), written as `<file>.crt`/`<file>.key`.
    fn issue(&self, file: &str, names: &[&str], expired: bool) -> Issued {
        let mut params =
            CertificateParams::new(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.distinguished_name.push(DnType::CommonName, file);
        if expired {
            params.not_before = date_time_ymd(2000, 1, 1);
            params.not_after = date_time_ymd(2001, 1, 1);
        }
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let cert_file = self.dir.path().join(format!("{file}.crt"));
        let key_file = self.dir.path().join(format!("{file}.key"));
        std::fs::write(&cert_file, cert.pem()).unwrap();
        std::fs::write(&key_file, key.serialize_pem()).unwrap();
        Issued {
            chain: vec![cert.der().clone()],
            key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
            cert_file,
            key_file,
        }
    }

    fn roots(&self) -> rustls::RootCertStore {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.issuer.der().clone()).unwrap();
        roots
    }
}

/// Server config with `cert`; when `client_ca` is given, a client certificate signed by it is
/// required.
fn server_config(cert: &Issued, client_ca: Option<&Ca>) -> Arc<rustls::ServerConfig> {
    let b = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .unwrap();
    let b = match client_ca {
        None => b.with_no_client_auth(),
        Some(ca) => b.with_client_cert_verifier(
            rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(ca.roots()),
                provider(),
            )
            .build()
            .unwrap(),
        ),
    };
    Arc::new(
        b.with_single_cert(cert.chain.clone(), cert.key.clone_key())
            .unwrap(),
    )
}

/// An https upstream: answers every request with `BODY` and `Connection: close`, records each
/// request head and each failed handshake.
struct TlsUpstream {
    addr: SocketAddr,
    heads: Arc<Mutex<Vec<String>>>,
    handshake_errors: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

impl Drop for TlsUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl TlsUpstream {
    async fn start(config: Arc<rustls::ServerConfig>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Self::serve(listener, config)
    }

    fn serve(listener: TcpListener, config: Arc<rustls::ServerConfig>) -> Self {
        let addr = listener.local_addr().unwrap();
        let heads: Arc<Mutex<Vec<String>>> = Arc::default();
        let handshake_errors: Arc<Mutex<Vec<String>>> = Arc::default();
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let (h, e) = (heads.clone(), handshake_errors.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let (acceptor, h, e) = (acceptor.clone(), h.clone(), e.clone());
                tokio::spawn(async move {
                    let mut tls = match acceptor.accept(tcp).await {
                        Ok(s) => s,
                        Err(err) => {
                            e.lock().unwrap().push(err.to_string());
                            return;
                        }
                    };
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match tls.read(&mut buf).await {
                            Ok(0) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                            Err(err) => {
                                e.lock().unwrap().push(err.to_string());
                                return;
                            }
                        }
                    }
                    h.lock()
                        .unwrap()
                        .push(String::from_utf8_lossy(&head).into_owned());
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{BODY}",
                        BODY.len()
                    );
                    let _ = tls.write_all(resp.as_bytes()).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        Self {
            addr,
            heads,
            handshake_errors,
            task,
        }
    }

    fn url(&self) -> String {
        format!("https://{}/metrics", self.addr)
    }

    /// The value of header `name` in each request received, in order.
    fn header_values(&self, name: &str) -> Vec<Option<String>> {
        self.heads
            .lock()
            .unwrap()
            .iter()
            .map(|head| {
                head.lines().find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
                })
            })
            .collect()
    }
}

fn cfg_with(url: &str, client: ClientOptions) -> ServerConfig {
    let mut cfg = config_for(url);
    cfg.upstream.client = client;
    cfg
}

fn with_ca(ca: &Ca) -> ClientOptions {
    ClientOptions {
        ca_file: Some(ca.ca_file()),
        ..ClientOptions::default()
    }
}

/// The `metric_gate_upstream_errors_total` value for `cause`, summed over targets.
async fn errors_with_cause(gate: &Gate, cause: &str) -> f64 {
    let text = gate.get("/-/metrics").await.text();
    text.lines()
        .filter(|l| {
            l.starts_with("metric_gate_upstream_errors_total{")
                && l.contains(&format!("cause=\"{cause}\""))
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn verified_https_upstream() {
    let ca = Ca::new("test CA");
    let cert = ca.issue("server", &["localhost", "127.0.0.1"], false);
    let up = TlsUpstream::start(server_config(&cert, None)).await;
    let gate = Gate::start(cfg_with(&up.url(), with_ca(&ca)), &Config::passthrough()).await;

    let r = gate.get("/metrics").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(samples(&r.text()), vec!["reqs{code=\"200\"} 7".to_owned()]);
    // /source and /analyze go through the same client.
    let s = gate.get("/source").await;
    assert_eq!(s.status, 200, "{}", s.text());
    assert_eq!(s.text(), BODY);
    assert_eq!(gate.get("/analyze").await.status, 200);
    // By IP and by name, the name the URL carries is verified.
    let by_name = format!("https://localhost:{}/metrics", up.addr.port());
    let gate2 = Gate::start(cfg_with(&by_name, with_ca(&ca)), &Config::passthrough()).await;
    assert_eq!(gate2.get("/metrics").await.status, 200);
    assert!(up.handshake_errors.lock().unwrap().is_empty());
}

#[tokio::test]
async fn certificate_failures_are_502s_naming_the_cause() {
    let ca = Ca::new("test CA");
    let other_ca = Ca::new("some other CA");
    let cert = ca.issue("server", &["localhost", "127.0.0.1"], false);
    let up = TlsUpstream::start(server_config(&cert, None)).await;

    // Unknown CA.
    let gate = Gate::start(
        cfg_with(&up.url(), with_ca(&other_ca)),
        &Config::passthrough(),
    )
    .await;
    let r = gate.get("/metrics").await;
    assert_eq!(r.status, 502);
    let text = r.text();
    assert!(
        text.starts_with(&format!("upstream {}: ", up.url())),
        "{text}"
    );
    assert!(text.contains("UnknownIssuer"), "{text}");
    assert!(text.contains("--upstream.ca-file"), "{text}");
    assert_eq!(errors_with_cause(&gate, "tls").await, 1.0);
    // The upstream was never asked anything.
    assert!(up.heads.lock().unwrap().is_empty());

    // Name mismatch: the certificate names localhost and 127.0.0.1, not this name.
    let gate = Gate::start(
        cfg_with(
            &up.url(),
            ClientOptions {
                server_name: Some("metrics.example".into()),
                ..with_ca(&ca)
            },
        ),
        &Config::passthrough(),
    )
    .await;
    let r = gate.get("/metrics").await;
    assert_eq!(r.status, 502);
    assert!(r.text().contains("--upstream.server-name"), "{}", r.text());
    assert!(r.text().contains("metrics.example"), "{}", r.text());

    // Expired.
    let old = ca.issue("old", &["127.0.0.1"], true);
    let expired = TlsUpstream::start(server_config(&old, None)).await;
    let gate = Gate::start(
        cfg_with(&expired.url(), with_ca(&ca)),
        &Config::passthrough(),
    )
    .await;
    let r = gate.get("/metrics").await;
    assert_eq!(r.status, 502);
    assert!(r.text().to_lowercase().contains("expired"), "{}", r.text());

    // A plain http server behind an https URL.
    let plain = Upstream::start(Behave::Plain(BODY.into())).await;
    let url = format!("https://{}/metrics", plain.addr);
    let gate = Gate::start(cfg_with(&url, with_ca(&ca)), &Config::passthrough()).await;
    let r = gate.get("/metrics").await;
    assert_eq!(r.status, 502);
    assert!(r.text().contains("TLS"), "{}", r.text());
}

#[tokio::test]
async fn insecure_skip_verify_accepts_any_certificate() {
    let ca = Ca::new("unknown CA");
    let cert = ca.issue("server", &["somewhere.else"], false);
    let up = TlsUpstream::start(server_config(&cert, None)).await;
    let gate = Gate::start(
        cfg_with(
            &up.url(),
            ClientOptions {
                insecure_skip_verify: true,
                ..ClientOptions::default()
            },
        ),
        &Config::passthrough(),
    )
    .await;
    let r = gate.get("/metrics").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(samples(&r.text()), vec!["reqs{code=\"200\"} 7".to_owned()]);
}

#[tokio::test]
async fn client_certificate_when_the_upstream_requires_one() {
    let ca = Ca::new("test CA");
    let server = ca.issue("server", &["127.0.0.1"], false);
    let client = ca.issue("client", &["metric-gate"], false);
    let up = TlsUpstream::start(server_config(&server, Some(&ca))).await;

    let without = Gate::start(cfg_with(&up.url(), with_ca(&ca)), &Config::passthrough()).await;
    let r = without.get("/metrics").await;
    assert_eq!(r.status, 502);
    assert!(r.text().contains(&up.url()), "{}", r.text());
    assert!(
        r.text().contains("CertificateRequired") && r.text().contains("--upstream.cert-file"),
        "{}",
        r.text()
    );
    assert!(up.heads.lock().unwrap().is_empty());

    let with = Gate::start(
        cfg_with(
            &up.url(),
            ClientOptions {
                cert_file: Some(client.cert_file.clone()),
                key_file: Some(client.key_file.clone()),
                ..with_ca(&ca)
            },
        ),
        &Config::passthrough(),
    )
    .await;
    let r = with.get("/metrics").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(up.heads.lock().unwrap().len(), 1);

    // A client certificate from a CA the upstream does not trust is rejected too.
    let stranger_ca = Ca::new("stranger CA");
    let stranger = stranger_ca.issue("client", &["metric-gate"], false);
    let wrong = Gate::start(
        cfg_with(
            &up.url(),
            ClientOptions {
                cert_file: Some(stranger.cert_file.clone()),
                key_file: Some(stranger.key_file.clone()),
                ..with_ca(&ca)
            },
        ),
        &Config::passthrough(),
    )
    .await;
    let r = wrong.get("/metrics").await;
    assert_eq!(r.status, 502);
    assert!(r.text().contains("TLS"), "{}", r.text());
}

#[tokio::test]
async fn bearer_token_is_sent_and_reread_after_rotation() {
    let ca = Ca::new("test CA");
    let cert = ca.issue("server", &["127.0.0.1"], false);
    let up = TlsUpstream::start(server_config(&cert, None)).await;
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "first-token\n").unwrap();
    let gate = Gate::start(
        cfg_with(
            &up.url(),
            ClientOptions {
                bearer_token_file: Some(token.clone()),
                ..with_ca(&ca)
            },
        ),
        &Config::passthrough(),
    )
    .await;

    assert_eq!(gate.get("/metrics").await.status, 200);
    // Rotated the way Kubernetes does: a new file renamed over the old one.
    let tmp = dir.path().join("token.new");
    std::fs::write(&tmp, "second-token").unwrap();
    std::fs::rename(&tmp, &token).unwrap();
    assert_eq!(gate.get("/metrics").await.status, 200);
    // Rewritten in place.
    std::fs::write(&token, "third-token\n").unwrap();
    assert_eq!(gate.get("/source").await.status, 200);
    assert_eq!(
        up.header_values("authorization"),
        vec![
            Some("Bearer first-token".to_owned()),
            Some("Bearer second-token".to_owned()),
            Some("Bearer third-token".to_owned()),
        ]
    );

    // Unreadable: the scrape fails naming the file; no request goes out without a token.
    std::fs::remove_file(&token).unwrap();
    let r = gate.get("/metrics").await;
    assert_eq!(r.status, 502);
    assert!(
        r.text().contains("--upstream.bearer-token-file") && r.text().contains("token"),
        "{}",
        r.text()
    );
    assert_eq!(up.heads.lock().unwrap().len(), 3);
    assert_eq!(errors_with_cause(&gate, "auth").await, 1.0);
    // Back again: the next scrape works.
    std::fs::write(&token, "fourth-token").unwrap();
    assert_eq!(gate.get("/metrics").await.status, 200);
    assert_eq!(
        up.header_values("authorization").last().cloned().flatten(),
        Some("Bearer fourth-token".to_owned())
    );
}

#[tokio::test]
async fn basic_auth_is_sent() {
    let ca = Ca::new("test CA");
    let cert = ca.issue("server", &["127.0.0.1"], false);
    let up = TlsUpstream::start(server_config(&cert, None)).await;
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("password");
    std::fs::write(&pw, "s3cret\n").unwrap();
    let gate = Gate::start(
        cfg_with(
            &up.url(),
            ClientOptions {
                basic_auth_user: Some("prometheus".into()),
                basic_auth_password_file: Some(pw),
                ..with_ca(&ca)
            },
        ),
        &Config::passthrough(),
    )
    .await;
    assert_eq!(gate.get("/metrics").await.status, 200);
    // base64("prometheus:s3cret")
    assert_eq!(
        up.header_values("authorization"),
        vec![Some("Basic cHJvbWV0aGV1czpzM2NyZXQ=".to_owned())]
    );
}

#[tokio::test]
async fn unusable_tls_or_credential_files_fail_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let bad_ca = dir.path().join("ca.pem");
    std::fs::write(&bad_ca, "not PEM at all\n").unwrap();
    let ca = Ca::new("test CA");
    let one = ca.issue("one", &["a"], false);
    let two = ca.issue("two", &["b"], false);
    let cases: Vec<(ClientOptions, &str)> = vec![
        (
            // A certificate with somebody else's key.
            ClientOptions {
                cert_file: Some(one.cert_file.clone()),
                key_file: Some(two.key_file.clone()),
                insecure_skip_verify: true,
                ..ClientOptions::default()
            },
            "--upstream.cert-file/--upstream.key-file",
        ),
        (
            ClientOptions {
                ca_file: Some(bad_ca.clone()),
                ..ClientOptions::default()
            },
            "--upstream.ca-file",
        ),
        (
            ClientOptions {
                ca_file: Some(dir.path().join("missing.pem")),
                ..ClientOptions::default()
            },
            "missing.pem",
        ),
        (
            ClientOptions {
                bearer_token_file: Some(dir.path().join("no-token")),
                insecure_skip_verify: true,
                ..ClientOptions::default()
            },
            "--upstream.bearer-token-file",
        ),
        (
            ClientOptions {
                server_name: Some("not a name!".into()),
                insecure_skip_verify: true,
                ..ClientOptions::default()
            },
            "--upstream.server-name",
        ),
    ];
    for (opts, needle) in cases {
        let e = AppState::new(
            cfg_with("https://127.0.0.1:1/metrics", opts),
            RelabelConfig::passthrough(),
        )
        .unwrap_err();
        let e = e.to_string();
        assert!(e.contains(needle), "{needle}: {e}");
    }
}

/// Two https upstreams on 127.0.0.2 and 127.0.0.3 (one port), each with a certificate that
/// names only the Service, not the pod IPs.
async fn tls_pods(config: Arc<rustls::ServerConfig>) -> (u16, Vec<TlsUpstream>) {
    'retry: for _ in 0..20 {
        let first = TcpListener::bind("127.0.0.2:0").await.unwrap();
        let port = first.local_addr().unwrap().port();
        let second = match TcpListener::bind(SocketAddr::new(
            IpAddr::V4(Ipv4Addr::new(127, 0, 0, 3)),
            port,
        ))
        .await
        {
            Ok(l) => l,
            Err(_) => continue 'retry,
        };
        return (
            port,
            vec![
                TlsUpstream::serve(first, config.clone()),
                TlsUpstream::serve(second, config),
            ],
        );
    }
    panic!("no free port on 127.0.0.2 and 127.0.0.3");
}

#[tokio::test]
async fn dns_https_verifies_the_service_name() {
    let ca = Ca::new("cluster CA");
    let cert = ca.issue("pod", &["metrics.ingress.svc"], false);
    let (port, pods) = tls_pods(server_config(&cert, None)).await;
    let dns = DnsServer::start().await;
    dns.set_a(
        "pods.test",
        &[Ipv4Addr::new(127, 0, 0, 2), Ipv4Addr::new(127, 0, 0, 3)],
    );
    let url = format!("dns+https://pods.test:{port}/metrics");
    let passthrough = Config::passthrough();
    let start = |client: ClientOptions| {
        let mut cfg = cfg_with(&url, client);
        cfg.upstream.dns_server = Some(dns.addr);
        Gate::start(cfg, &passthrough)
    };

    // Default server name: the DNS name of the URL, which the certificate does not carry.
    let gate = start(with_ca(&ca)).await;
    let r = gate.get("/metrics").await;
    assert_eq!(r.status, 502);
    let text = r.text();
    assert!(text.contains("all 2 targets failed"), "{text}");
    assert!(text.contains("pods.test"), "{text}");
    assert!(text.contains(&format!("127.0.0.2:{port}: TLS")), "{text}");

    let gate = start(ClientOptions {
        server_name: Some("metrics.ingress.svc".into()),
        ..with_ca(&ca)
    })
    .await;
    let r = gate.get("/metrics").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        samples(&r.text()).contains(&"reqs{code=\"200\"} 14".to_owned()),
        "{}",
        r.text()
    );
    for pod in &pods {
        // The Host header keeps the URL's name, as for dns+http.
        assert_eq!(
            pod.header_values("host").last().cloned().flatten(),
            Some(format!("pods.test:{port}"))
        );
    }
}

#[tokio::test]
async fn binary_flags_and_the_insecure_warning() {
    let ca = Ca::new("test CA");
    let cert = ca.issue("server", &["127.0.0.1"], false);
    let up = TlsUpstream::start(server_config(&cert, None)).await;
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    std::fs::write(&token, "from-binary\n").unwrap();
    let token_s = token.display().to_string();
    let ca_s = ca.ca_file().display().to_string();
    let url = up.url();
    let run = |extra: &[&str], env: &[(&str, &str)]| {
        let mut args = vec![
            "--listen-address",
            "127.0.0.1",
            "-p",
            "0",
            "-H",
            &url,
            "--upstream.bearer-token-file",
            &token_s,
        ];
        args.extend_from_slice(extra);
        spawn_gate_binary_logged(&args, env)
    };

    let (mut child, _rx, addr, startup) = run(&["--upstream.ca-file", &ca_s], &[]);
    let r = get(&format!("http://{addr}/metrics"), &[]).await;
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(up
        .header_values("authorization")
        .contains(&Some("Bearer from-binary".to_owned())));
    assert!(
        !startup.iter().any(|l| l.contains("NOT verified")),
        "{startup:?}"
    );

    let (mut child, _rx, addr, startup) = run(&["--upstream.insecure-skip-verify"], &[]);
    let r = get(&format!("http://{addr}/metrics"), &[]).await;
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        startup
            .iter()
            .any(|l| l.contains("WARN") && l.contains("--upstream.insecure-skip-verify")),
        "{startup:?}"
    );

    // Without --upstream.ca-file the system trust store is used; rustls-native-certs reads
    // SSL_CERT_FILE instead of the platform's store when it is set.
    let (mut child, _rx, addr, _) = run(&[], &[("SSL_CERT_FILE", &ca_s)]);
    let r = get(&format!("http://{addr}/metrics"), &[]).await;
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(r.status, 200, "{}", r.text());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_metric-gate"))
        .args(["--listen-address", "127.0.0.1", "-p", "0", "-H", &url])
        .env("SSL_CERT_FILE", "/nonexistent/bundle.pem")
        .env("SSL_CERT_DIR", "/nonexistent")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no system CA certificates found") && err.contains("--upstream.ca-file"),
        "{err}"
    );

    // A bad CA file stops the binary at start with the file named.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_metric-gate"))
        .args(["--listen-address", "127.0.0.1", "-p", "0", "-H", &url])
        .args(["--upstream.ca-file", "/nonexistent/ca.pem"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--upstream.ca-file /nonexistent/ca.pem"),
        "{err}"
    );
}

#[tokio::test]
async fn reload_picks_up_changed_tls_files() {
    let old_ca = Ca::new("old CA");
    let new_ca = Ca::new("new CA");
    // The upstream already has a certificate from the new CA; metric-gate trusts the old one.
    let cert = new_ca.issue("server", &["127.0.0.1"], false);
    let up = TlsUpstream::start(server_config(&cert, None)).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::copy(old_ca.ca_file(), &ca_file).unwrap();
    let gate = Gate::start(
        cfg_with(
            &up.url(),
            ClientOptions {
                ca_file: Some(ca_file.clone()),
                ..ClientOptions::default()
            },
        ),
        &Config::passthrough(),
    )
    .await;
    assert_eq!(gate.get("/metrics").await.status, 502);

    std::fs::copy(new_ca.ca_file(), &ca_file).unwrap();
    let r = post(&gate.url("/-/reload")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("upstream TLS files"), "{}", r.text());
    assert_eq!(gate.get("/metrics").await.status, 200);

    // A broken CA file is refused; the client built from the good one keeps working.
    std::fs::write(&ca_file, "-----BEGIN CERTIFICATE-----\nnot base64!\n").unwrap();
    let r = post(&gate.url("/-/reload")).await;
    assert_eq!(r.status, 500);
    assert!(r.text().contains("--upstream.ca-file"), "{}", r.text());
    assert_eq!(gate.get("/metrics").await.status, 200);
}
