//! How much memory responses may hold, and for how long.
//!
//! A `/metrics` body can be tens of megabytes. A client that asks and then does not read keeps
//! its response's bytes alive until the connection ends, so without bounds a few hundred such
//! clients, each served by a different scrape, would hold a few hundred bodies. Three things
//! bound it:
//!
//! - **Shared bodies.** Every client of one scrape gets the same bytes (see
//!   `server::encoding`); a response body ([`SharedBody`]) hands them to the connection in
//!   64 KiB slices of that one allocation, never a copy.
//! - **At most [`MAX_HELD_RESULTS`] scrapes' results are held by responses still being
//!   written.** A response registers the result it holds ([`HeldResults::hold`]) until its last
//!   slice is taken by the connection. When a response would make it one more, the
//!   connections still holding the oldest result are closed (their clients are the slowest
//!   readers; counted as `metric_gate_http_connections_dropped_total{reason="slow_reader"}`).
//!   A small body is written at once and holds nothing for long; only bodies bigger than the
//!   socket buffers stay held while a client does not read.
//! - **A write timeout per response** (`--web.response-write-timeout`, [`ConnControl`]): from
//!   when the response is ready, the whole of it must be written within the timeout, or the
//!   connection is closed (`reason="response_write_timeout"`). The time spent producing the
//!   response (the scrape) does not count.
//!
//! So the bodies held by unread responses are at most [`MAX_HELD_RESULTS`] scrapes' results,
//! plus per connection what the HTTP layer has queued (a few hundred KiB), and none of it for
//! longer than the write timeout.

use std::convert::Infallible;
use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio::time::{Instant, Sleep};

use super::metrics::SelfMetrics;

/// Scrape results that responses still being written may hold at once.
pub const MAX_HELD_RESULTS: usize = 4;

/// Slices a body is handed to the connection in: the connection asks for the next one only
/// when it has written most of what it has, so a client that stops reading stops the slicing.
const SLICE: usize = 64 << 10;

/// Controls of one connection, shared by the listener (which owns the connection) and the
/// handlers (which find it in the request's extensions).
#[derive(Debug)]
pub struct ConnControl {
    /// `--web.response-write-timeout`.
    write_timeout: Duration,
    /// When the response being written must be done; `None` while no response is pending.
    write_deadline: Mutex<Option<Instant>>,
    /// The write deadline passed: the connection failed its writes.
    timed_out: AtomicBool,
    /// The connection was asked to close (it held an old result).
    evicted: AtomicBool,
    close: Notify,
}

impl ConnControl {
    /// Controls for a new connection whose responses must be written within `write_timeout`.
    pub fn new(write_timeout: Duration) -> Arc<Self> {
        Arc::new(Self {
            write_timeout,
            write_deadline: Mutex::new(None),
            timed_out: AtomicBool::new(false),
            evicted: AtomicBool::new(false),
            close: Notify::new(),
        })
    }

    /// A request is being served: nothing is being written until its response is ready.
    pub fn request_started(&self) {
        *self
            .write_deadline
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// The response is ready: it must be written within the write timeout from now.
    pub fn response_ready(&self) {
        *self
            .write_deadline
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(Instant::now() + self.write_timeout);
    }

    fn write_deadline(&self) -> Option<Instant> {
        *self
            .write_deadline
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// True once a response missed its write deadline.
    pub fn timed_out(&self) -> bool {
        self.timed_out.load(Ordering::Relaxed)
    }

    /// Asks the listener to close the connection.
    pub fn evict(&self) {
        self.evicted.store(true, Ordering::Relaxed);
        self.close.notify_one();
    }

    /// Completes when [`ConnControl::evict`] was called.
    pub async fn evicted(&self) {
        if !self.evicted.load(Ordering::Relaxed) {
            self.close.notified().await;
        }
    }
}

/// The scrape results held by responses that are not written yet, with the connections that
/// hold them; keeps them to [`MAX_HELD_RESULTS`].
#[derive(Debug)]
pub struct HeldResults {
    held: Mutex<Vec<Held>>,
    next_id: AtomicU64,
    metrics: Arc<SelfMetrics>,
}

#[derive(Debug)]
struct Held {
    generation: u64,
    /// Hold ids and their connections (none for a response served without the listener).
    holders: Vec<(u64, Option<Weak<ConnControl>>)>,
    /// The distinct bodies held (address and length): plain and gzip, the default list and
    /// subsets.
    bodies: Vec<(usize, usize)>,
}

impl HeldResults {
    /// Nothing held; the held bytes are reported in `metrics`.
    pub fn new(metrics: Arc<SelfMetrics>) -> Arc<Self> {
        Arc::new(Self {
            held: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(0),
            metrics,
        })
    }

    /// Registers a response that holds `body`, of scrape `generation`, on connection `conn`,
    /// until the returned guard is dropped. When that makes more than [`MAX_HELD_RESULTS`]
    /// results held, the connections holding the oldest other result are closed.
    pub fn hold(
        self: &Arc<Self>,
        generation: u64,
        body: &Bytes,
        conn: Option<&Arc<ConnControl>>,
    ) -> Hold {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let i = match held.iter().position(|h| h.generation == generation) {
            Some(i) => i,
            None => {
                held.push(Held {
                    generation,
                    holders: Vec::new(),
                    bodies: Vec::new(),
                });
                held.len() - 1
            }
        };
        let entry = &mut held[i];
        entry.holders.push((id, conn.map(Arc::downgrade)));
        let key = (body.as_ptr() as usize, body.len());
        if !entry.bodies.contains(&key) {
            entry.bodies.push(key);
        }
        while held.len() > MAX_HELD_RESULTS {
            let Some(oldest) = held
                .iter()
                .enumerate()
                .filter(|(_, h)| h.generation != generation)
                .min_by_key(|(_, h)| h.generation)
                .map(|(i, _)| i)
            else {
                break;
            };
            let gone = held.swap_remove(oldest);
            for conn in gone
                .holders
                .iter()
                .filter_map(|(_, c)| c.as_ref()?.upgrade())
            {
                conn.evict();
            }
            tracing::debug!(
                generation = gone.generation,
                connections = gone.holders.len(),
                "closing connections that still hold an old scrape result"
            );
        }
        self.report(&held);
        Hold {
            results: Arc::clone(self),
            generation,
            id,
        }
    }

    fn release(&self, generation: u64, id: u64) {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(i) = held.iter().position(|h| h.generation == generation) {
            held[i].holders.retain(|(h, _)| *h != id);
            if held[i].holders.is_empty() {
                held.swap_remove(i);
            }
        }
        self.report(&held);
    }

    fn report(&self, held: &[Held]) {
        let bytes: usize = held
            .iter()
            .flat_map(|h| &h.bodies)
            .map(|(_, len)| len)
            .sum();
        self.metrics.response_held_bytes.set(bytes as i64);
    }

    /// Results held now.
    pub fn results(&self) -> usize {
        self.held.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

/// A response's registration in [`HeldResults`]; released when dropped.
#[derive(Debug)]
pub struct Hold {
    results: Arc<HeldResults>,
    generation: u64,
    id: u64,
}

impl Drop for Hold {
    fn drop(&mut self) {
        self.results.release(self.generation, self.id);
    }
}

/// A response body of shared bytes, handed out in slices of the one allocation. Holds its
/// [`Hold`] until the last slice is taken.
#[derive(Debug)]
pub struct SharedBody {
    rest: Bytes,
    hold: Option<Hold>,
}

impl SharedBody {
    /// A body of `bytes`, registered by `hold`.
    pub fn new(bytes: Bytes, hold: Option<Hold>) -> Self {
        Self { rest: bytes, hold }
    }
}

impl Body for SharedBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        if this.rest.is_empty() {
            this.hold = None;
            return Poll::Ready(None);
        }
        let slice = this.rest.split_to(this.rest.len().min(SLICE));
        if this.rest.is_empty() {
            this.hold = None;
        }
        Poll::Ready(Some(Ok(Frame::data(slice))))
    }

    fn is_end_stream(&self) -> bool {
        self.rest.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.rest.len() as u64)
    }
}

/// A connection's stream that fails its writes once the response being written is past its
/// write deadline (see [`ConnControl`]). Reads pass through. It wraps the TCP stream, under
/// TLS when there is TLS, so it sees the bytes that actually go out.
pub struct WriteDeadlineIo<S> {
    inner: S,
    control: Arc<ConnControl>,
    timer: Option<Pin<Box<Sleep>>>,
}

impl<S> WriteDeadlineIo<S> {
    /// Wraps `inner`; `control` says when writes must be done.
    pub fn new(inner: S, control: Arc<ConnControl>) -> Self {
        Self {
            inner,
            control,
            timer: None,
        }
    }

    /// `Ready(Err)` once the write deadline has passed; otherwise arranges to be woken at it.
    fn poll_deadline(&mut self, cx: &mut Context<'_>, pending: bool) -> Poll<io::Result<()>> {
        let Some(deadline) = self.control.write_deadline() else {
            return Poll::Ready(Ok(()));
        };
        let passed = Instant::now() >= deadline
            || (pending && {
                let timer = self
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if timer.deadline() != deadline {
                    timer.as_mut().reset(deadline);
                }
                timer.as_mut().poll(cx).is_ready()
            });
        if passed {
            self.control.timed_out.store(true, Ordering::Relaxed);
            Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "response not written within --web.response-write-timeout",
            )))
        } else {
            Poll::Ready(Ok(()))
        }
    }

    /// Runs one write-side operation under the deadline.
    fn guarded<T>(
        &mut self,
        cx: &mut Context<'_>,
        op: impl FnOnce(Pin<&mut S>, &mut Context<'_>) -> Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>>
    where
        S: Unpin,
    {
        if let Poll::Ready(Err(e)) = self.poll_deadline(cx, false) {
            return Poll::Ready(Err(e));
        }
        match op(Pin::new(&mut self.inner), cx) {
            Poll::Pending => match self.poll_deadline(cx, true) {
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                _ => Poll::Pending,
            },
            done => done,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for WriteDeadlineIo<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteDeadlineIo<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.get_mut().guarded(cx, |s, cx| s.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.get_mut()
            .guarded(cx, |s, cx| s.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    // Flushing is not guarded: the HTTP layer flushes on every turn, also while a connection
    // is idle between requests (when the last response's deadline is stale), and a flush of
    // the plain socket writes nothing. Under TLS, the flush writes through `poll_write` below,
    // which is guarded.
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt as _;

    #[tokio::test]
    async fn bodies_are_slices_of_one_allocation_and_release_their_hold() {
        let results = HeldResults::new(Arc::new(SelfMetrics::new()));
        let bytes = Bytes::from(vec![7u8; 3 * SLICE + 5]);
        let hold = results.hold(1, &bytes, None);
        assert_eq!(results.results(), 1);
        let mut body = SharedBody::new(bytes.clone(), Some(hold));
        assert_eq!(body.size_hint().exact(), Some(bytes.len() as u64));
        let mut frames = 0;
        while let Some(f) = body.frame().await {
            let data = f.unwrap().into_data().unwrap();
            // A slice of the same allocation, not a copy.
            let offset = data.as_ptr() as usize - bytes.as_ptr() as usize;
            assert_eq!(offset, frames * SLICE);
            frames += 1;
        }
        assert_eq!(frames, 4);
        assert_eq!(results.results(), 0, "released with the last slice");
    }

    #[tokio::test]
    async fn a_fifth_result_closes_the_connections_holding_the_oldest() {
        let metrics = Arc::new(SelfMetrics::new());
        let results = HeldResults::new(Arc::clone(&metrics));
        let conns: Vec<_> = (0..6)
            .map(|_| ConnControl::new(Duration::from_secs(60)))
            .collect();
        let bodies: Vec<Bytes> = (0..5u8).map(|i| Bytes::from(vec![i; 1000])).collect();
        let mut holds = Vec::new();
        for g in 0..4u64 {
            holds.push(results.hold(g, &bodies[g as usize], Some(&conns[g as usize])));
        }
        // A second response of result 3 shares its bytes.
        holds.push(results.hold(3, &bodies[3], Some(&conns[5])));
        assert_eq!(metrics.response_held_bytes.get(), 4000);
        assert!(conns.iter().all(|c| !c.evicted.load(Ordering::Relaxed)));
        holds.push(results.hold(4, &bodies[4], Some(&conns[4])));
        assert_eq!(results.results(), MAX_HELD_RESULTS);
        assert!(
            conns[0].evicted.load(Ordering::Relaxed),
            "oldest result's reader closed"
        );
        assert!(!conns[1].evicted.load(Ordering::Relaxed));
        tokio::time::timeout(Duration::from_secs(1), conns[0].evicted())
            .await
            .unwrap();
        assert_eq!(metrics.response_held_bytes.get(), 4000);
        drop(holds);
        assert_eq!(results.results(), 0);
        assert_eq!(metrics.response_held_bytes.get(), 0);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_unread_response_fails_at_its_write_deadline() {
        use tokio::io::AsyncWriteExt as _;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        // A client that connects and never reads.
        let _client = tokio::net::TcpStream::connect(addr).await.unwrap();
        let (stream, _) = listener.accept().await.unwrap();
        let control = ConnControl::new(Duration::from_millis(300));
        let mut io = WriteDeadlineIo::new(stream, Arc::clone(&control));
        // Without a pending response there is no deadline.
        io.write_all(b"x").await.unwrap();
        control.response_ready();
        let t0 = std::time::Instant::now();
        let chunk = vec![0u8; 1 << 20];
        let err = loop {
            if let Err(e) = io.write_all(&chunk).await {
                break e;
            }
        };
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert!(control.timed_out());
        let took = t0.elapsed();
        assert!(
            took >= Duration::from_millis(250) && took < Duration::from_secs(5),
            "{took:?}"
        );
    }
}
