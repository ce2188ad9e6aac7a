//! Test helpers: fake upstreams on loopback, an in-process metric-gate, a loopback DNS server and
//! a tiny HTTP client. Everything binds 127.0.0.x with random ports and stops when dropped or
//! stopped.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::Router;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use metric_gate::relabel::Config;
use metric_gate::server::ListenerConfig;
use metric_gate::server::{
    serve, AppState, RelabelConfig, ScrapeLimits, ServerConfig, UpstreamConfig,
};
use metric_gate::upstream::UpstreamSpec;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// What a fake upstream answers.
#[derive(Clone, Debug)]
pub enum Behave {
    /// 200 with this text (gzip-compressed when the request accepts gzip).
    Text(String),
    /// 200 with this text, never compressed.
    Plain(String),
    /// This status with a short body.
    Status(u16),
    /// The first half of the text, then a pause, then the rest.
    SlowMidBody(String, Duration),
    /// Waits before answering with the text.
    SlowStart(String, Duration),
    /// `counter N` where N counts requests, after a pause (to make scrapes overlap).
    Counter(Duration),
    /// The bodies in turn, one per request (the last one repeats).
    Sequence(Vec<String>),
    /// Prepared bodies (for big payloads): the gzip one when the request accepts gzip and one
    /// is given, else the plain one.
    Prepared { plain: Bytes, gzip: Option<Bytes> },
}

/// A fake upstream HTTP server.
pub struct Upstream {
    pub addr: SocketAddr,
    pub requests: Arc<AtomicUsize>,
    pub seen_headers: Arc<Mutex<Vec<HeaderMap>>>,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

impl Upstream {
    /// Serves `behave` on `ip` at a random port.
    pub async fn start(behave: Behave) -> Self {
        Self::start_at(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0), behave).await
    }

    /// Serves `behave` on `addr` (port 0 for a random one).
    pub async fn start_at(addr: SocketAddr, behave: Behave) -> Self {
        let listener = TcpListener::bind(addr).await.expect("bind upstream");
        Self::serve_on(listener, behave)
    }

    fn serve_on(listener: TcpListener, behave: Behave) -> Self {
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(AtomicUsize::new(0));
        let seen_headers = Arc::new(Mutex::new(Vec::new()));
        let (stop, stopped) = oneshot::channel::<()>();
        let (r, s) = (requests.clone(), seen_headers.clone());
        let app = Router::new().fallback(move |headers: HeaderMap| {
            let behave = behave.clone();
            let n = r.fetch_add(1, Ordering::SeqCst) + 1;
            s.lock().unwrap().push(headers.clone());
            async move { answer(behave, n, &headers).await }
        });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Self {
            addr,
            requests,
            seen_headers,
            stop: Some(stop),
            task,
        }
    }

    /// `http://addr/metrics`
    pub fn url(&self) -> String {
        format!("http://{}/metrics", self.addr)
    }

    pub fn request_count(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        self.task.abort();
    }
}

/// Several upstreams on 127.0.0.2, 127.0.0.3, ... all on one port (dns+ scrapes one port).
pub async fn upstreams_on_loopbacks(behaviours: Vec<Behave>) -> (u16, Vec<Upstream>) {
    'retry: for _ in 0..20 {
        let first = TcpListener::bind("127.0.0.2:0")
            .await
            .expect("bind 127.0.0.2");
        let port = first.local_addr().unwrap().port();
        let mut listeners = vec![first];
        for i in 1..behaviours.len() {
            let ip = Ipv4Addr::new(127, 0, 0, 2 + i as u8);
            match TcpListener::bind(SocketAddr::new(IpAddr::V4(ip), port)).await {
                Ok(l) => listeners.push(l),
                Err(_) => continue 'retry,
            }
        }
        let ups = listeners
            .into_iter()
            .zip(behaviours)
            .map(|(l, b)| Upstream::serve_on(l, b))
            .collect();
        return (port, ups);
    }
    panic!("no free port on every loopback address");
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn accepts_gzip(h: &HeaderMap) -> bool {
    h.get("accept-encoding")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("gzip"))
}

async fn answer(behave: Behave, n: usize, headers: &HeaderMap) -> Response {
    let text_response = |body: Body| {
        let mut r = Response::new(body);
        r.headers_mut().insert(
            "content-type",
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        );
        r
    };
    match behave {
        Behave::Text(t) => {
            if accepts_gzip(headers) {
                let mut r = text_response(Body::from(gzip(t.as_bytes())));
                r.headers_mut()
                    .insert("content-encoding", HeaderValue::from_static("gzip"));
                r
            } else {
                text_response(Body::from(t))
            }
        }
        Behave::Plain(t) => text_response(Body::from(t)),
        Behave::Status(code) => {
            let mut r = Response::new(Body::from("nope\n"));
            *r.status_mut() = StatusCode::from_u16(code).unwrap();
            r
        }
        Behave::SlowMidBody(t, pause) => {
            let half = t.len() / 2;
            let (a, b) = (
                Bytes::copy_from_slice(&t.as_bytes()[..half]),
                Bytes::copy_from_slice(&t.as_bytes()[half..]),
            );
            let stream = futures_util::stream::unfold(0u8, move |step| {
                let (a, b) = (a.clone(), b.clone());
                async move {
                    match step {
                        0 => Some((Ok::<Bytes, std::io::Error>(a), 1)),
                        1 => {
                            tokio::time::sleep(pause).await;
                            Some((Ok(b), 2))
                        }
                        _ => None,
                    }
                }
            });
            text_response(Body::from_stream(stream))
        }
        Behave::SlowStart(t, pause) => {
            tokio::time::sleep(pause).await;
            text_response(Body::from(t))
        }
        Behave::Prepared { plain, gzip } => match gzip {
            Some(z) if accepts_gzip(headers) => {
                let mut r = text_response(Body::from(z));
                r.headers_mut()
                    .insert("content-encoding", HeaderValue::from_static("gzip"));
                r
            }
            _ => text_response(Body::from(plain)),
        },
        Behave::Counter(pause) => {
            tokio::time::sleep(pause).await;
            text_response(Body::from(format!("# TYPE counter counter\ncounter {n}\n")))
        }
        Behave::Sequence(bodies) => {
            let i = n.saturating_sub(1).min(bodies.len().saturating_sub(1));
            text_response(Body::from(bodies.get(i).cloned().unwrap_or_default()))
        }
    }
}

/// A metric-gate server running in this process.
pub struct Gate {
    pub addr: SocketAddr,
    pub state: Arc<AppState>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

/// Settings for tests: 5 s timeout, no warm-up scrape, health series on.
pub fn config_for(upstream: &str) -> ServerConfig {
    ServerConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        listener: ListenerConfig::default(),
        upstream: UpstreamConfig {
            spec: UpstreamSpec::parse(upstream).expect("upstream spec"),
            client: Default::default(),
            dns_server: None,
            ip_family: Default::default(),
            require_all: false,
            scrape_timeout: Duration::from_secs(5),
        },
        limits: ScrapeLimits {
            max_body: 512 << 20,
            max_line: 1 << 20,
            labels: metric_gate::limits::LabelLimits::DEFAULT,
            sample_limit: 0,
        },
        target_health: true,
        warm_up: false,
        remote_write: None,
        staleness_window: metric_gate::server::config::DEFAULT_STALENESS_WINDOW,
    }
}

impl Gate {
    pub async fn start(cfg: ServerConfig, relabel: &Config) -> Self {
        Self::start_with(cfg, relabel, ListenerConfig::default()).await
    }

    /// As `start`, with listener settings (web config, connection cap, timeouts).
    pub async fn start_with(
        mut cfg: ServerConfig,
        relabel: &Config,
        listener_cfg: ListenerConfig,
    ) -> Self {
        cfg.listener = listener_cfg;
        Self::start_relabel(cfg, RelabelConfig::fixed(relabel.clone())).await
    }

    /// As `start`, with the relabel configuration and its source (a file is read again on
    /// reload).
    pub async fn start_relabel(cfg: ServerConfig, relabel: RelabelConfig) -> Self {
        let state = AppState::new(cfg, relabel).expect("state");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, state.clone(), async {
            let _ = stopped.await;
        }));
        Self {
            addr,
            state,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn get(&self, path: &str) -> Resp {
        get(&self.url(path), &[]).await
    }

    /// Stops accepting, waits for in-flight requests.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap().unwrap();
        }
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

/// A response, body read whole.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Resp {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The body, gunzipped if it says it is gzip.
    pub fn decoded(&self) -> String {
        if self.header("content-encoding") == Some("gzip") {
            let mut d = flate2::read::GzDecoder::new(&self.body[..]);
            let mut s = String::new();
            std::io::Read::read_to_string(&mut d, &mut s).unwrap();
            s
        } else {
            self.text()
        }
    }
}

/// GET with extra headers; the body is read whole.
pub async fn get(url: &str, headers: &[(&str, &str)]) -> Resp {
    let client: Client<_, Empty<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let mut req = http::Request::get(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = client
        .request(req.body(Empty::new()).unwrap())
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.expect("body").to_bytes();
    Resp {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body,
    }
}

/// POST with an empty body; the response body is read whole.
pub async fn post(url: &str) -> Resp {
    let client: Client<_, Empty<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let req = http::Request::post(url).body(Empty::new()).unwrap();
    let resp = client
        .request(req)
        .await
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.expect("body").to_bytes();
    Resp {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body,
    }
}

/// Sample lines (not comments) of a text body, sorted.
pub fn samples(text: &str) -> Vec<String> {
    let mut v: Vec<String> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(str::to_owned)
        .collect();
    v.sort();
    v
}

/// A DNS server on 127.0.0.1 (random UDP port) answering from a table that tests may change
/// between queries: A and AAAA records for names, SRV records for service names. Every answer
/// has TTL 300 s, so a resolver that caches would be caught by a test that changes the table.
/// SRV table: service name -> (target host, port).
type SrvTable = Arc<Mutex<HashMap<String, Vec<(String, u16)>>>>;

pub struct DnsServer {
    pub addr: SocketAddr,
    pub a: Arc<Mutex<HashMap<String, Vec<Ipv4Addr>>>>,
    pub aaaa: Arc<Mutex<HashMap<String, Vec<std::net::Ipv6Addr>>>>,
    pub srv: SrvTable,
    pub queries: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl DnsServer {
    pub async fn start() -> Self {
        use hickory_proto::op::{Message, MessageType, ResponseCode};
        use hickory_proto::rr::rdata::{A, AAAA, SRV};
        use hickory_proto::rr::{Name, RData, Record, RecordType};

        let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = sock.local_addr().unwrap();
        let a: Arc<Mutex<HashMap<String, Vec<Ipv4Addr>>>> = Arc::default();
        let aaaa: Arc<Mutex<HashMap<String, Vec<std::net::Ipv6Addr>>>> = Arc::default();
        let srv: SrvTable = Arc::default();
        let queries = Arc::new(AtomicUsize::new(0));
        let (ta, ts, tq) = (a.clone(), srv.clone(), queries.clone());
        let t6 = aaaa.clone();
        let task = tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            loop {
                let Ok((n, peer)) = sock.recv_from(&mut buf).await else {
                    return;
                };
                let Ok(q) = Message::from_vec(&buf[..n]) else {
                    continue;
                };
                tq.fetch_add(1, Ordering::SeqCst);
                // Names under `blackhole.` never get an answer (a DNS server that hangs).
                if q.queries()
                    .iter()
                    .any(|q| q.name().to_utf8().starts_with("blackhole."))
                {
                    continue;
                }
                let mut resp = Message::new();
                resp.set_id(q.id())
                    .set_message_type(MessageType::Response)
                    .set_op_code(q.op_code())
                    .set_recursion_desired(q.recursion_desired())
                    .set_recursion_available(true)
                    .set_authoritative(true);
                resp.add_queries(q.queries().to_vec());
                let mut found_name = false;
                for query in q.queries() {
                    let name = query.name().to_utf8();
                    let key = name.trim_end_matches('.').to_ascii_lowercase();
                    match query.query_type() {
                        RecordType::A => {
                            if let Some(ips) = ta.lock().unwrap().get(&key) {
                                found_name = true;
                                for ip in ips {
                                    resp.add_answer(Record::from_rdata(
                                        query.name().clone(),
                                        300,
                                        RData::A(A(*ip)),
                                    ));
                                }
                            } else {
                                // The name may exist with AAAA records only.
                                found_name = t6.lock().unwrap().contains_key(&key);
                            }
                        }
                        RecordType::AAAA => {
                            if let Some(ips) = t6.lock().unwrap().get(&key) {
                                found_name = true;
                                for ip in ips {
                                    resp.add_answer(Record::from_rdata(
                                        query.name().clone(),
                                        300,
                                        RData::AAAA(AAAA(*ip)),
                                    ));
                                }
                            } else {
                                // The name may exist with A records only: NOERROR, no answer.
                                found_name = ta.lock().unwrap().contains_key(&key);
                            }
                        }
                        RecordType::SRV => {
                            if let Some(list) = ts.lock().unwrap().get(&key) {
                                found_name = true;
                                for (target, port) in list {
                                    resp.add_answer(Record::from_rdata(
                                        query.name().clone(),
                                        300,
                                        RData::SRV(SRV::new(
                                            0,
                                            0,
                                            *port,
                                            Name::from_ascii(format!("{target}.")).unwrap(),
                                        )),
                                    ));
                                }
                            }
                        }
                        _ => {
                            found_name = ta.lock().unwrap().contains_key(&key)
                                || t6.lock().unwrap().contains_key(&key);
                        }
                    }
                }
                if !found_name {
                    resp.set_response_code(ResponseCode::NXDomain);
                }
                if let Ok(bytes) = resp.to_vec() {
                    let _ = sock.send_to(&bytes, peer).await;
                }
            }
        });
        Self {
            addr,
            a,
            aaaa,
            srv,
            queries,
            task,
        }
    }

    pub fn set_a(&self, name: &str, ips: &[Ipv4Addr]) {
        self.a.lock().unwrap().insert(name.to_owned(), ips.to_vec());
    }

    pub fn set_aaaa(&self, name: &str, ips: &[std::net::Ipv6Addr]) {
        self.aaaa
            .lock()
            .unwrap()
            .insert(name.to_owned(), ips.to_vec());
    }

    pub fn set_srv(&self, name: &str, targets: &[(&str, u16)]) {
        self.srv.lock().unwrap().insert(
            name.to_owned(),
            targets.iter().map(|(t, p)| (t.to_string(), *p)).collect(),
        );
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts the metric-gate binary with `args` (stderr piped, stdout discarded) and waits for its
/// `listening addr=...` log line. Returns the process, a receiver of its stderr lines and the
/// address it listens on.
pub fn spawn_gate_binary(
    args: &[&str],
) -> (
    std::process::Child,
    std::sync::mpsc::Receiver<String>,
    String,
) {
    let (child, rx, addr, _) = spawn_gate_binary_logged(args, &[]);
    (child, rx, addr)
}

/// As [`spawn_gate_binary`], with extra environment variables `env`, and also returns the log
/// lines up to and including `listening`.
pub fn spawn_gate_binary_logged(
    args: &[&str],
    env: &[(&str, &str)],
) -> (
    std::process::Child,
    std::sync::mpsc::Receiver<String>,
    String,
    Vec<String>,
) {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_metric-gate"))
        .args(args)
        .envs(env.iter().copied())
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn metric-gate");
    let stderr = child.stderr.take().expect("piped stderr");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut startup = Vec::new();
    let addr = loop {
        let line = match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(line) => line,
            Err(e) => {
                let _ = child.kill();
                panic!("no 'listening' log line from metric-gate: {e}; logs: {startup:?}");
            }
        };
        startup.push(line.clone());
        if let Some(rest) = line.split("addr=").nth(1) {
            break rest
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned();
        }
    };
    (child, rx, addr, startup)
}

/// One connection to a [`RawUpstream`]: the request head has been read; the handler writes
/// whatever bytes it wants.
pub struct RawConn {
    pub stream: tokio::net::TcpStream,
    /// The request head (request line and headers).
    pub request: String,
    written: Arc<std::sync::atomic::AtomicU64>,
}

impl RawConn {
    /// Writes `bytes` and counts them; an error means the client went away.
    pub async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        use tokio::io::AsyncWriteExt as _;
        self.stream.write_all(bytes).await?;
        self.written.fetch_add(bytes.len() as u64, Ordering::SeqCst);
        Ok(())
    }

    /// The request path.
    pub fn path(&self) -> &str {
        self.request.split(' ').nth(1).unwrap_or("")
    }

    /// Ends the connection with a TCP reset instead of a clean close.
    pub fn reset(self) {
        // Deprecated because a non-zero linger blocks on drop; a zero linger never does.
        #[allow(deprecated)]
        let _ = self.stream.set_linger(Some(Duration::ZERO));
        drop(self.stream);
    }
}

/// A fake upstream that speaks raw bytes, for misbehaving servers: every connection's request
/// head is read, then the handler answers (or not) byte by byte. Counts bytes written.
pub struct RawUpstream {
    pub addr: SocketAddr,
    /// Body and header bytes written to all connections.
    pub written: Arc<std::sync::atomic::AtomicU64>,
    /// Requests received, by path.
    pub paths: Arc<Mutex<Vec<String>>>,
    task: JoinHandle<()>,
}

impl RawUpstream {
    /// Listens on 127.0.0.1 at a random port.
    pub async fn start<F, Fut>(handler: F) -> Self
    where
        F: Fn(RawConn) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        Self::serve_on(listener, handler)
    }

    /// Serves on `listener`.
    pub fn serve_on<F, Fut>(listener: TcpListener, handler: F) -> Self
    where
        F: Fn(RawConn) -> Fut + Send + Sync + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        use tokio::io::AsyncReadExt as _;
        let addr = listener.local_addr().unwrap();
        let written = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let paths: Arc<Mutex<Vec<String>>> = Arc::default();
        let handler = Arc::new(handler);
        let (w, p) = (written.clone(), paths.clone());
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((mut stream, _)) = listener.accept().await else {
                    return;
                };
                let (handler, w, p) = (handler.clone(), w.clone(), p.clone());
                conns.spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|x| x == b"\r\n\r\n") {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let request = String::from_utf8_lossy(&head).into_owned();
                    let conn = RawConn {
                        stream,
                        request,
                        written: w,
                    };
                    p.lock().unwrap().push(conn.path().to_owned());
                    handler(conn).await;
                });
            }
        });
        Self {
            addr,
            written,
            paths,
            task,
        }
    }

    /// `http://addr/metrics`
    pub fn url(&self) -> String {
        format!("http://{}/metrics", self.addr)
    }

    /// Bytes written so far.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::SeqCst)
    }
}

impl Drop for RawUpstream {
    fn drop(&mut self) {
        // Aborting the accept loop drops its JoinSet, which aborts every connection.
        self.task.abort();
    }
}

/// The value of the first sample of `name` (with its labels, e.g. `x_total{a="b"}`) in a text
/// body.
pub fn metric_value(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("{name} not in\n{text}"))
        .split(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}
