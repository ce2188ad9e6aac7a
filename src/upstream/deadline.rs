//! The deadline of one pass over the upstream, which the requests sharing that pass may move
//! later (never earlier, and never past a cap).
//!
//! Concurrent `/metrics` requests share one scrape. Each request brings its own timeout
//! (Prometheus' `X-Prometheus-Scrape-Timeout-Seconds`), and a short one must not cut the scrape
//! short for the others: the scrape runs until the latest deadline among its waiters, bounded
//! by `--scrape-timeout` from its start. A request that joins later extends the deadline with
//! [`Deadline::extend_to`]; every wait of the upstream request ([`Deadline::run`]) re-reads the
//! deadline when the one it slept towards passes.
//!
//! Once a wait has found the deadline passed, the deadline is *expired*: it can no longer be
//! extended, so a request that arrives a moment too late learns it (and starts a pass of its
//! own) instead of joining a pass whose targets have already timed out.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

/// Set in [`Inner::at`] once a wait found the deadline passed.
const EXPIRED: u64 = 1 << 63;

/// A deadline shared by one upstream pass and the requests waiting for it. Cloning shares it.
#[derive(Debug, Clone)]
pub struct Deadline(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    /// When the pass started; timeouts in messages are counted from here.
    start: Instant,
    /// The latest the deadline may be moved to.
    cap: Instant,
    /// Nanoseconds from `start` to the deadline, with [`EXPIRED`] once it has passed.
    at: AtomicU64,
}

/// The deadline passed before the future completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed;

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos())
        .unwrap_or(EXPIRED - 1)
        .min(EXPIRED - 1)
}

impl Deadline {
    /// A deadline `timeout` from now that cannot be extended.
    pub fn after(timeout: Duration) -> Self {
        let start = Instant::now();
        Self::extendable(start, start + timeout, start + timeout)
    }

    /// A deadline at `at` for a pass started at `start`, which [`Deadline::extend_to`] may move
    /// up to `cap` (an `at` past `cap` is cut to it).
    pub fn extendable(start: Instant, at: Instant, cap: Instant) -> Self {
        let cap = cap.max(start);
        let at = at.min(cap);
        Self(Arc::new(Inner {
            start,
            cap,
            at: AtomicU64::new(nanos(at.saturating_duration_since(start))),
        }))
    }

    /// When the pass must be done, as things stand.
    pub fn at(&self) -> Instant {
        let n = self.0.at.load(Ordering::Acquire) & !EXPIRED;
        self.0.start + Duration::from_nanos(n)
    }

    /// From the start of the pass to its deadline: the timeout that error messages report.
    pub fn timeout(&self) -> Duration {
        self.at().saturating_duration_since(self.0.start)
    }

    /// True once a wait found the deadline passed (it can no longer be extended).
    pub fn is_expired(&self) -> bool {
        self.0.at.load(Ordering::Acquire) & EXPIRED != 0
    }

    /// Moves the deadline to `at` (cut to the cap) if that is later. Returns false, changing
    /// nothing, when the deadline has already passed: a pass that far along cannot serve a new
    /// request's deadline, whatever it is.
    pub fn extend_to(&self, at: Instant) -> bool {
        let want = nanos(at.min(self.0.cap).saturating_duration_since(self.0.start));
        let now = nanos(Instant::now().saturating_duration_since(self.0.start));
        let mut cur = self.0.at.load(Ordering::Acquire);
        loop {
            if cur & EXPIRED != 0 || now >= cur {
                return false;
            }
            if want <= cur {
                return true;
            }
            match self
                .0
                .at
                .compare_exchange_weak(cur, want, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return true,
                Err(actual) => cur = actual,
            }
        }
    }

    /// Marks the deadline expired if it is still `seen` (in nanoseconds); true if it is expired
    /// now, false if it was extended meanwhile.
    fn expire(&self, seen: u64) -> bool {
        match self
            .0
            .at
            .compare_exchange(seen, seen | EXPIRED, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => true,
            Err(actual) => actual & EXPIRED != 0,
        }
    }

    /// Runs `f` until it completes or the deadline passes, following extensions made while it
    /// runs.
    pub async fn run<F: Future>(&self, f: F) -> Result<F::Output, Elapsed> {
        let mut f = std::pin::pin!(f);
        loop {
            let seen = self.0.at.load(Ordering::Acquire);
            if seen & EXPIRED != 0 {
                return Err(Elapsed);
            }
            let at = self.0.start + Duration::from_nanos(seen);
            match tokio::time::timeout_at(at, f.as_mut()).await {
                Ok(v) => return Ok(v),
                Err(_) => {
                    if self.expire(seen) {
                        return Err(Elapsed);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn extensions_are_followed_and_capped() {
        let start = Instant::now();
        let d = Deadline::extendable(start, start + 200 * MS, start + 1500 * MS);
        assert_eq!(d.timeout(), 200 * MS);
        // An earlier deadline changes nothing; a later one is cut to the cap.
        assert!(d.extend_to(start + 50 * MS));
        assert_eq!(d.timeout(), 200 * MS);
        let d2 = d.clone();
        let waiter =
            tokio::spawn(async move { d2.run(tokio::time::sleep(600 * MS)).await.is_ok() });
        tokio::time::sleep(50 * MS).await;
        assert!(d.extend_to(start + Duration::from_secs(60)));
        assert_eq!(d.timeout(), 1500 * MS);
        assert!(
            waiter.await.unwrap(),
            "the extension let the 600 ms wait finish"
        );

        // Past the cap, the wait fails and the deadline can no longer move.
        let r = d.run(tokio::time::sleep(Duration::from_secs(5))).await;
        assert_eq!(r, Err(Elapsed));
        assert!(start.elapsed() < Duration::from_secs(4));
        assert!(d.is_expired());
        assert!(!d.extend_to(Instant::now() + Duration::from_secs(1)));
        assert_eq!(d.run(async {}).await, Err(Elapsed));
    }

    #[tokio::test]
    async fn a_passed_deadline_is_not_extended() {
        let now = Instant::now();
        let d = Deadline::extendable(now, now + 10 * MS, now + Duration::from_secs(10));
        tokio::time::sleep(20 * MS).await;
        // No wait has noticed yet, but the deadline is behind us.
        assert!(!d.is_expired());
        assert!(!d.extend_to(Instant::now() + Duration::from_secs(1)));
        let fixed = Deadline::after(Duration::from_secs(5));
        assert!(fixed.extend_to(Instant::now() + Duration::from_secs(60)));
        assert_eq!(fixed.timeout(), Duration::from_secs(5));
    }
}
