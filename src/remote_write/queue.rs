//! One endpoint's bounded queue of batches.
//!
//! The bound is `queue_config.capacity`, counted in samples (metadata entries count as
//! samples), like Prometheus' queue. Two ways in:
//! - [`Queue::push_drop_oldest`] for metric-gate's own scrapes: when full, the **oldest**
//!   batches are dropped to make room. Scraped values are cumulative, so the newest scrape
//!   supersedes what it pushes out; the dropped samples are counted. Only batches queued by
//!   earlier pushes are dropped: one scrape is queued whole even when it alone is larger than
//!   the capacity (its own first batches, the metadata among them, superseded by nothing,
//!   would otherwise be dropped by its last ones, on every push, with a healthy endpoint).
//! - [`Queue::push_or_refuse`] for forwarded writes, which are not cumulative: when the batches
//!   do not fit, nothing is queued and the caller refuses the write (the receiver answers 503
//!   and its sender retries), so nothing accepted is lost.
//!
//! An empty queue accepts any batch, even one larger than the capacity: otherwise such a batch
//! could never be queued at all.
//!
//! One sender task consumes the queue ([`Queue::pop`]); it waits on a [`tokio::sync::Notify`].

use std::collections::VecDeque;
use std::sync::Mutex;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::encode::Batch;

/// A queued batch.
#[derive(Debug)]
pub struct Queued {
    /// The data.
    pub batch: Batch,
    /// When it was queued (a partial batch of forwarded data waits at most
    /// `batch_send_deadline` from here for more).
    pub queued_at: Instant,
    /// Send without waiting for more data (the scrape encoder's batches are complete).
    pub complete: bool,
}

/// Samples and metadata entries a push dropped to make room.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dropped {
    /// Samples (and histogram samples) dropped.
    pub samples: u64,
    /// Metadata entries dropped.
    pub metadata: u64,
}

/// The batches do not fit (forwarded data); nothing was queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("queue full: {queued} of {capacity} samples queued, {incoming} more do not fit")]
pub struct QueueFull {
    /// Samples queued now.
    pub queued: usize,
    /// The capacity.
    pub capacity: usize,
    /// Samples that were offered.
    pub incoming: usize,
}

#[derive(Debug, Default)]
struct State {
    items: VecDeque<Queued>,
    weight: usize,
    closed: bool,
}

/// The queue (see the module documentation).
#[derive(Debug)]
pub struct Queue {
    state: Mutex<State>,
    notify: Notify,
    capacity: usize,
}

impl Queue {
    /// A queue holding at most `capacity` samples.
    pub fn new(capacity: usize) -> Self {
        Queue {
            state: Mutex::new(State::default()),
            notify: Notify::new(),
            capacity: capacity.max(1),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock leaves consistent data (every update is one
        // push/pop plus a counter); keep going.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The capacity in samples.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Samples (and metadata entries) queued now.
    pub fn len(&self) -> usize {
        self.lock().weight
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.lock().items.is_empty()
    }

    /// Queues `batches` (one scrape), dropping the oldest batches of earlier pushes while they
    /// do not fit. The batches of this push are never dropped here, so the queue may hold
    /// more than the capacity by up to one push.
    pub fn push_drop_oldest(&self, batches: Vec<Batch>) -> Dropped {
        let mut dropped = Dropped::default();
        {
            let mut st = self.lock();
            let now = Instant::now();
            // Batches at the front that earlier pushes queued: the only ones to drop.
            let mut older = st.items.len();
            for batch in batches {
                let w = batch.weight();
                while older > 0 && st.weight + w > self.capacity {
                    let Some(old) = st.items.pop_front() else {
                        break;
                    };
                    older -= 1;
                    st.weight -= old.batch.weight();
                    match old.batch {
                        Batch::Series(_) => dropped.samples += old.batch.weight() as u64,
                        Batch::Metadata(m) => dropped.metadata += m.len() as u64,
                    }
                }
                st.weight += w;
                st.items.push_back(Queued {
                    batch,
                    queued_at: now,
                    complete: true,
                });
            }
        }
        self.notify.notify_one();
        dropped
    }

    /// Queues all of `batches`, or none when they do not fit.
    pub fn push_or_refuse(&self, batches: Vec<Batch>) -> Result<(), QueueFull> {
        {
            let mut st = self.lock();
            let incoming: usize = batches.iter().map(Batch::weight).sum();
            if !st.items.is_empty() && st.weight + incoming > self.capacity {
                return Err(QueueFull {
                    queued: st.weight,
                    capacity: self.capacity,
                    incoming,
                });
            }
            let now = Instant::now();
            let n = batches.len();
            for (i, batch) in batches.into_iter().enumerate() {
                st.weight += batch.weight();
                st.items.push_back(Queued {
                    batch,
                    queued_at: now,
                    // Metadata goes at once; the last batch of a request may wait for more.
                    complete: i + 1 < n,
                });
            }
        }
        self.notify.notify_one();
        Ok(())
    }

    /// Takes the oldest batch, if any.
    pub fn try_pop(&self) -> Option<Queued> {
        let mut st = self.lock();
        let q = st.items.pop_front()?;
        st.weight -= q.batch.weight();
        Some(q)
    }

    /// Takes the oldest batch when it is a series batch of at most `max_weight` samples (to
    /// merge it into a request being filled).
    pub fn pop_series_fitting(&self, max_weight: usize) -> Option<Queued> {
        let mut st = self.lock();
        let front = st.items.front()?;
        if !matches!(front.batch, Batch::Series(_)) || front.batch.weight() > max_weight {
            return None;
        }
        let q = st.items.pop_front()?;
        st.weight -= q.batch.weight();
        Some(q)
    }

    /// Waits for the oldest batch; `None` once the queue is closed and empty.
    pub async fn pop(&self) -> Option<Queued> {
        loop {
            let notified = self.notify.notified();
            {
                let mut st = self.lock();
                if let Some(q) = st.items.pop_front() {
                    st.weight -= q.batch.weight();
                    return Some(q);
                }
                if st.closed {
                    return None;
                }
            }
            notified.await;
        }
    }

    /// Waits until something is pushed or the queue is closed (or `deadline` passes).
    pub async fn wait_until(&self, deadline: Instant) {
        let notified = self.notify.notified();
        if self.is_closed() || !self.is_empty() {
            return;
        }
        let _ = tokio::time::timeout_at(deadline, notified).await;
    }

    /// Closes the queue: [`Queue::pop`] returns `None` once it is empty. Pushes still work (a
    /// flush queues stale markers first, then closes).
    pub fn close(&self) {
        self.lock().closed = true;
        self.notify.notify_one();
    }

    /// True once [`Queue::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Empties the queue (a flush that ran out of time), returning what was in it.
    pub fn drain(&self) -> Dropped {
        let mut st = self.lock();
        let mut d = Dropped::default();
        for q in st.items.drain(..) {
            match q.batch {
                Batch::Series(_) => d.samples += q.batch.weight() as u64,
                Batch::Metadata(m) => d.metadata += m.len() as u64,
            }
        }
        st.weight = 0;
        d
    }
}

#[cfg(test)]
mod tests {
    use super::super::convert::Series;
    use super::super::wire::{v1, v2};
    use super::*;

    fn batch(name: &str, samples: usize) -> Batch {
        Batch::Series(vec![Series {
            labels: vec![v1::Label::new("__name__", name)],
            samples: vec![v2::Sample::default(); samples],
            ..Default::default()
        }])
    }

    fn name(q: &Queued) -> String {
        match &q.batch {
            Batch::Series(s) => s[0].name().to_owned(),
            Batch::Metadata(_) => "meta".into(),
        }
    }

    #[test]
    fn full_queue_drops_oldest_and_counts() {
        let q = Queue::new(10);
        assert_eq!(
            q.push_drop_oldest(vec![batch("a", 4), batch("b", 4)]),
            Dropped::default()
        );
        assert_eq!(q.len(), 8);
        let d = q.push_drop_oldest(vec![batch("c", 4)]);
        assert_eq!(d.samples, 4);
        assert_eq!(q.len(), 8);
        assert_eq!(name(&q.try_pop().unwrap()), "b");
        assert_eq!(name(&q.try_pop().unwrap()), "c");
        assert!(q.try_pop().is_none());
        // A batch bigger than the capacity still goes into an empty queue.
        assert_eq!(q.push_drop_oldest(vec![batch("big", 25)]).samples, 0);
        assert_eq!(q.push_drop_oldest(vec![batch("d", 1)]).samples, 25);
    }

    #[test]
    fn one_push_larger_than_the_capacity_is_queued_whole() {
        let q = Queue::new(10);
        q.push_drop_oldest(vec![batch("old", 4)]);
        // 3 x 4 samples: the older batch goes, none of this push's own.
        let d = q.push_drop_oldest(vec![batch("a", 4), batch("b", 4), batch("c", 4)]);
        assert_eq!(d.samples, 4);
        assert_eq!(q.len(), 12);
        // The next push drops the whole previous one, as far as it needs room.
        let d = q.push_drop_oldest(vec![batch("d", 4), batch("e", 4)]);
        assert_eq!(d.samples, 12);
        let names: Vec<String> = std::iter::from_fn(|| q.try_pop())
            .map(|b| name(&b))
            .collect();
        assert_eq!(names, ["d", "e"]);
    }

    #[test]
    fn forwarded_data_is_refused_whole() {
        let q = Queue::new(10);
        q.push_or_refuse(vec![batch("a", 6)]).unwrap();
        let e = q
            .push_or_refuse(vec![batch("b", 3), batch("c", 3)])
            .unwrap_err();
        assert_eq!(e.queued, 6);
        assert_eq!(e.incoming, 6);
        assert_eq!(q.len(), 6, "nothing of the refused write was queued");
        q.push_or_refuse(vec![batch("b", 4)]).unwrap();
        assert_eq!(q.len(), 10);
        assert_eq!(q.drain().samples, 10);
        // Empty: anything fits.
        q.push_or_refuse(vec![batch("huge", 50)]).unwrap();
    }

    #[tokio::test]
    async fn pop_waits_and_ends_after_close() {
        let q = std::sync::Arc::new(Queue::new(10));
        let q2 = q.clone();
        let t = tokio::spawn(async move { q2.pop().await.map(|b| name(&b)) });
        tokio::task::yield_now().await;
        q.push_drop_oldest(vec![batch("x", 1)]);
        assert_eq!(t.await.unwrap().as_deref(), Some("x"));
        q.close();
        assert!(q.pop().await.is_none());
    }
}
