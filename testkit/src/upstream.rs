//! Fake upstreams on loopback: [`Upstream`] answers as a [`Behave`] says, [`RawUpstream`] writes
//! whatever bytes its handler wants (for misbehaving servers). Both bind 127.0.0.x with random
//! ports and stop when dropped.

use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::Router;
use bytes::Bytes;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// What a fake upstream answers.
#[derive(Clone, Debug)]
pub enum Behave {
    /// 200 with this text (gzip-compressed when the request accepts gzip).
    Text(String),
    /// 200 with this text, never compressed.
    Plain(String),
    /// 200 with this OpenMetrics text (`Content-Type: application/openmetrics-text`).
    OpenMetrics(String),
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
        Behave::OpenMetrics(t) => {
            let mut r = Response::new(Body::from(t));
            r.headers_mut().insert(
                "content-type",
                HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            );
            r
        }
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

/// One connection to a [`RawUpstream`]: the request head has been read; the handler writes
/// whatever bytes it wants.
pub struct RawConn {
    pub stream: tokio::net::TcpStream,
    /// The request head (request line and headers).
    pub request: String,
    written: Arc<AtomicU64>,
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
    pub written: Arc<AtomicU64>,
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
        let written = Arc::new(AtomicU64::new(0));
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
