//! What one target contributed to one scrape, recorded while its body is read and applied to
//! the state once every target is done.

use super::*;

/// The bits of an observation's group key that hold its [`Kind`].
pub(super) const KIND_SHIFT: u32 = 62;

/// One sample of a counter-like family, as [`TargetScrape::observe`] recorded it. 48 bytes.
#[derive(Debug, Clone, Copy)]
pub(super) struct Observation {
    /// Hash of the raw series text (the series cache's key).
    pub(super) series: u128,
    /// [`output_hash`] of the output it sums into.
    pub(super) output: u128,
    pub(super) value: f64,
    /// The group key (62 bits) and the [`Kind`] (top 2 bits).
    pub(super) group_kind: u64,
}

impl Observation {
    pub(super) fn kind(&self) -> Kind {
        Kind::from_bits(self.group_kind >> KIND_SHIFT)
    }

    pub(super) fn group(&self) -> u64 {
        self.group_kind & ((1 << KIND_SHIFT) - 1)
    }
}

/// What one target contributed to one scrape: filled while its body is read, without the
/// state; handed to [`CounterState::apply`] when every target is done. Reuse it with
/// [`TargetScrape::reset`] to keep its buffer.
///
/// Pass only targets whose whole body was read: a target left out of a scrape (failed, timed
/// out) is simply not passed, and its inputs keep their last values.
#[derive(Debug, Clone)]
pub struct TargetScrape {
    pub(super) target: u128,
    pub(super) process_start: Option<f64>,
    pub(super) observations: Vec<Observation>,
    /// Observations of the last scrape whose buffer [`TargetScrape::release`] freed: the next
    /// scrape reserves that many at once.
    released: usize,
}

impl TargetScrape {
    /// An empty record for the target named `target` (its address, e.g. `10.0.0.5:10254`, or
    /// the upstream URL of a single-target proxy).
    pub fn new(target: &str) -> TargetScrape {
        TargetScrape {
            target: target_hash(target),
            process_start: None,
            observations: Vec::new(),
            released: 0,
        }
    }

    /// Empties the record for the next scrape of `target`, keeping its buffer (or reserving
    /// one as large as the last scrape needed, after [`TargetScrape::release`]).
    pub fn reset(&mut self, target: &str) {
        self.target = target_hash(target);
        self.clear();
    }

    /// Frees the buffer once the record was applied: it is only needed from the body's first
    /// sample to [`super::CounterState::apply`], and at 48 bytes per counter-like input series
    /// it is a large part of a sidecar's memory between scrapes (41 MB on the 2x ingress
    /// payload). The next scrape reserves it again in one allocation.
    pub fn release(&mut self) {
        self.released = self.released.max(self.observations.len());
        self.observations = Vec::new();
    }

    /// Sets the target's `process_start_time_seconds` (the unlabeled series, as the upstream
    /// wrote it, before relabeling). A value that differs from the one seen before by more
    /// than [`START_TIME_TOLERANCE_S`] means the target restarted: every counter of it was
    /// reset, even one that has already climbed past its old value. Non-finite values are
    /// ignored.
    pub fn set_process_start(&mut self, seconds: f64) {
        if seconds.is_finite() {
            self.process_start = Some(seconds);
        }
    }

    /// Records one sample of a counter-like family.
    ///
    /// - `series`: the hash of the raw series text as the upstream wrote it (the series
    ///   cache's key); the target is added by the state.
    /// - `output`: [`output_hash`] of the output series it sums into.
    /// - `group`: for histogram and summary samples (`Bucket`, `Count`, `Sum`), a hash of the
    ///   input's family and labels without `le` (one histogram series of one target: its
    ///   buckets, `_sum` and `_count` share it); ignored for `Counter`. Only its low 62 bits
    ///   are used.
    ///
    /// Record each input series once per scrape (Prometheus keeps the first of duplicate
    /// samples; so should the caller).
    #[inline]
    pub fn observe(&mut self, series: u128, output: u128, kind: Kind, group: u64, value: f64) {
        let group = if kind == Kind::Counter { 0 } else { group };
        self.observations.push(Observation {
            series,
            output,
            value,
            group_kind: (group & ((1 << KIND_SHIFT) - 1)) | (kind as u64) << KIND_SHIFT,
        });
    }

    /// Empties the record for the next scrape of the same target, keeping its buffer.
    pub fn clear(&mut self) {
        self.process_start = None;
        self.observations.clear();
        if self.released > 0 {
            // A little more than last time, so a slowly growing target is not copied at the end.
            let n = self.released + self.released / 16;
            self.observations.reserve_exact(n);
            self.released = 0;
        }
    }

    /// Number of recorded samples.
    pub fn len(&self) -> usize {
        self.observations.len()
    }

    /// True when nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.observations.is_empty()
    }

    /// Bytes held by the record's buffer.
    pub fn capacity_bytes(&self) -> usize {
        self.observations.capacity() * std::mem::size_of::<Observation>()
    }
}
