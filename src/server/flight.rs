//! Single-flight passes over the upstream, with a deadline per waiting request.
//!
//! A request that arrives while a pass (a `/metrics` scrape, an `/analyze` fetch) is in flight
//! waits for that pass instead of starting another, so N concurrent requests cost one upstream
//! fetch. Each request brings its own timeout ([`Patience`], from Prometheus'
//! `X-Prometheus-Scrape-Timeout-Seconds`):
//!
//! - the pass runs until the **latest** deadline among its waiters, never past the cap
//!   (`--scrape-timeout` from the pass's start): joining extends the pass's [`Deadline`], and a
//!   short deadline never shortens it for the others;
//! - each request stops waiting at its **own** deadline ([`FlightError::GaveUp`], answered
//!   `504`), while the pass goes on for the others;
//! - a request that arrives after the pass's deadline has passed (its targets have timed out
//!   or are about to) starts a new pass rather than share a result it could not have asked for.
//!
//! The pass runs in its own task, so it finishes (and gives back what it holds, such as the
//! scrape engine) even when every waiter has gone.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::{BoxFuture, FutureExt, Shared};
use tokio::time::Instant;

use crate::upstream::Deadline;

/// How long one request is prepared to wait for an upstream pass.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Patience {
    /// When the request arrived.
    pub arrived: Instant,
    /// The upstream work it needs must be done this long after it arrived.
    pub work: Duration,
    /// It stops waiting this long after it arrived (a little after `work`: merging, rendering
    /// and sending take time too).
    pub wait: Duration,
}

impl Patience {
    /// Patience for upstream work bounded by `work` from now, waiting a margin longer: 10% of
    /// `work`, at most 500 ms.
    pub fn from_now(work: Duration) -> Self {
        Self {
            arrived: Instant::now(),
            work,
            wait: work + (work / 10).min(Duration::from_millis(500)),
        }
    }
}

/// Why a request got no result from its pass.
#[derive(Debug, Clone, thiserror::Error)]
pub enum FlightError {
    /// The request's own deadline passed first; the pass goes on for the other waiters.
    #[error(
        "no result within this request's timeout of {0:?} (X-Prometheus-Scrape-Timeout-Seconds minus a margin, or --scrape-timeout); the upstream pass goes on for other requests"
    )]
    GaveUp(Duration),
    /// The pass's task ended without a result (it panicked).
    #[error("{0}")]
    Task(String),
}

type Outcome<T> = Result<Arc<T>, String>;

/// The pass in flight.
struct InFlight<T> {
    generation: u64,
    deadline: Deadline,
    result: Shared<BoxFuture<'static, Outcome<T>>>,
}

/// At most one pass of a kind at a time; later requests share it.
pub(crate) struct SingleFlight<T> {
    slot: Mutex<Option<InFlight<T>>>,
    /// Numbers the passes, from 0.
    generation: AtomicU64,
}

/// A request's result, and whether it joined a pass started by another request.
pub(crate) struct Joined<T> {
    /// The pass's result.
    pub value: Arc<T>,
    /// True when the request shared a pass already in flight.
    pub shared: bool,
}

impl<T: Send + Sync + 'static> SingleFlight<T> {
    /// No pass yet.
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            slot: Mutex::new(None),
            generation: AtomicU64::new(0),
        })
    }

    /// The result of the pass in flight (its deadline extended to this request's), or of a new
    /// one: `start(generation, deadline)` with a deadline of this request's `patience.work`,
    /// which later requests may extend up to `cap` from the pass's start (this request's
    /// arrival). Waits at most
    /// `patience.wait` from the request's arrival.
    pub(crate) async fn run<F, Fut>(
        self: &Arc<Self>,
        patience: Patience,
        cap: Duration,
        start: F,
    ) -> Result<Joined<T>, FlightError>
    where
        F: FnOnce(u64, Deadline) -> Fut,
        Fut: Future<Output = T> + Send + 'static,
    {
        let (result, shared) = self.join_or_start(patience, cap, start);
        match tokio::time::timeout_at(patience.arrived + patience.wait, result).await {
            Ok(Ok(value)) => Ok(Joined { value, shared }),
            Ok(Err(e)) => Err(FlightError::Task(e)),
            Err(_) => Err(FlightError::GaveUp(patience.wait)),
        }
    }

    /// The pass in flight, if any (to wait for it without joining it).
    pub(crate) fn current(&self) -> Option<Shared<BoxFuture<'static, Outcome<T>>>> {
        let slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        slot.as_ref().map(|f| f.result.clone())
    }

    /// Joins the pass in flight (extending its deadline to this request's) or starts one, as
    /// [`SingleFlight::run`] does, without waiting: the pass is in the slot when this returns.
    /// Also says whether the pass was already in flight.
    pub(crate) fn join_or_start<F, Fut>(
        self: &Arc<Self>,
        patience: Patience,
        cap: Duration,
        start: F,
    ) -> (Shared<BoxFuture<'static, Outcome<T>>>, bool)
    where
        F: FnOnce(u64, Deadline) -> Fut,
        Fut: Future<Output = T> + Send + 'static,
    {
        let work_by = patience.arrived + patience.work;
        {
            let mut slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
            match &*slot {
                Some(f) if f.deadline.extend_to(work_by) => (f.result.clone(), true),
                _ => {
                    let generation = self.generation.fetch_add(1, Ordering::Relaxed);
                    // The pass starts with this request: its timeout is the pass's, to the
                    // nanosecond, in messages.
                    let began = patience.arrived;
                    let deadline = Deadline::extendable(began, work_by, began + cap);
                    let pass = start(generation, deadline.clone());
                    let this = Arc::clone(self);
                    let task = tokio::spawn(async move {
                        // Later requests start a new pass rather than reuse this result; the
                        // guard also frees the slot if the pass panics.
                        let _clear = ClearSlot { this, generation };
                        pass.await
                    });
                    let result = task
                        .map(|r| r.map(Arc::new).map_err(|e| e.to_string()))
                        .boxed()
                        .shared();
                    *slot = Some(InFlight {
                        generation,
                        deadline,
                        result: result.clone(),
                    });
                    (result, false)
                }
            }
        }
    }
}

/// Empties the slot when a pass's task ends, however it ends.
struct ClearSlot<T> {
    this: Arc<SingleFlight<T>>,
    generation: u64,
}

impl<T> Drop for ClearSlot<T> {
    fn drop(&mut self) {
        let mut slot = self.this.slot.lock().unwrap_or_else(|e| e.into_inner());
        if slot
            .as_ref()
            .is_some_and(|f| f.generation == self.generation)
        {
            *slot = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// A pass that waits `took` upstream unless its deadline passes first, then 300 ms more
    /// (rendering); counts passes started.
    fn pass(
        started: &Arc<AtomicUsize>,
        took: Duration,
    ) -> impl FnOnce(u64, Deadline) -> BoxFuture<'static, Result<u64, Duration>> {
        let started = Arc::clone(started);
        move |generation, deadline| {
            started.fetch_add(1, Ordering::SeqCst);
            async move {
                let upstream = deadline.run(tokio::time::sleep(took)).await;
                tokio::time::sleep(Duration::from_millis(300)).await;
                upstream
                    .map(|()| generation)
                    .map_err(|_| deadline.timeout())
            }
            .boxed()
        }
    }

    fn patience(work_ms: u64) -> Patience {
        Patience::from_now(Duration::from_millis(work_ms))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_short_deadline_never_shortens_a_longer_one() {
        let flight = SingleFlight::<Result<u64, Duration>>::new();
        let started = Arc::new(AtomicUsize::new(0));
        let cap = Duration::from_secs(15);
        // The impatient request starts the pass; the patient one joins it 10 ms later.
        let f1 = Arc::clone(&flight);
        let s1 = Arc::clone(&started);
        let short = tokio::spawn(async move {
            f1.run(patience(300), cap, pass(&s1, Duration::from_millis(800)))
                .await
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        let long = flight
            .run(
                patience(9500),
                cap,
                pass(&started, Duration::from_millis(800)),
            )
            .await
            .unwrap();
        assert!(long.shared);
        assert_eq!(*long.value, Ok(0), "the pass ran to its end");
        match short.await.unwrap() {
            Err(FlightError::GaveUp(d)) => assert_eq!(d, Duration::from_millis(330)),
            other => panic!("{:?}", other.map(|j| j.value)),
        }
        assert_eq!(started.load(Ordering::SeqCst), 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_cap_bounds_the_pass_and_a_late_request_starts_anew() {
        let flight = SingleFlight::<Result<u64, Duration>>::new();
        let started = Arc::new(AtomicUsize::new(0));
        let cap = Duration::from_millis(500);
        let r = flight
            .run(
                patience(30_000),
                cap,
                pass(&started, Duration::from_secs(5)),
            )
            .await
            .unwrap();
        assert_eq!(*r.value, Err(cap), "cut to the cap");

        // A pass whose deadline has passed (rendering what it has) is not joined.
        let f1 = Arc::clone(&flight);
        let s1 = Arc::clone(&started);
        let first = tokio::spawn(async move {
            f1.run(patience(100), cap, pass(&s1, Duration::from_secs(5)))
                .await
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        let second = flight
            .run(
                patience(1000),
                cap,
                pass(&started, Duration::from_millis(50)),
            )
            .await
            .unwrap();
        assert!(!second.shared);
        assert_eq!(*second.value, Ok(2));
        assert!(matches!(first.await.unwrap(), Err(FlightError::GaveUp(_))));
        assert_eq!(started.load(Ordering::SeqCst), 3);
    }
}
