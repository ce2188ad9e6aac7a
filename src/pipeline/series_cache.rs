//! The cross-scrape series cache: raw series text -> what the pipeline did with it.
//!
//! A sidecar sees the same series every scrape. The pipeline keys each sample by a 128-bit hash
//! of its raw series text (metric name and label block, exactly as the upstream wrote them) and
//! remembers, per subset, the [`Outcome`]: dropped by relabeling, rejected (no name, bad label),
//! or the aggregator slot it sums into, packed into a `u32`. A known series then costs one hash
//! and one lookup: no label copying, no relabeling, no key building.
//!
//! Slots stay valid across scrapes because aggregators keep their series between scrapes
//! ([`crate::aggregate::Aggregator::begin_scrape`]); when an aggregator compacts, the cache is
//! cleared. Entries unseen for [`crate::aggregate::IDLE_SCRAPES`] scrapes are evicted; the
//! number of entries is capped.

use crate::aggregate::{Rejected, IDLE_SCRAPES};

use super::Outcome;

// An outcome is stored as a `u32`: a slot as itself, the other outcomes as the top values, which
// no slot reaches (an outcome that cannot be packed is not remembered).
const DROPPED: u32 = u32::MAX;
const NAMELESS: u32 = u32::MAX - 1;
const INVALID_LABEL: u32 = u32::MAX - 2;

/// The stored form of `outcome`; `None` for what is never remembered: a broken label limit
/// (checked again in every scrape) and a slot too large to store.
#[inline]
fn pack(outcome: Outcome) -> Option<u32> {
    match outcome {
        Outcome::Dropped => Some(DROPPED),
        Outcome::Rejected(Rejected::Nameless) => Some(NAMELESS),
        Outcome::Rejected(Rejected::InvalidLabel) => Some(INVALID_LABEL),
        Outcome::Rejected(Rejected::Limit) => None,
        Outcome::Slot(slot) => (slot < INVALID_LABEL).then_some(slot),
    }
}

/// The outcome stored as `packed`.
#[inline(always)]
fn unpack(packed: u32) -> Outcome {
    match packed {
        DROPPED => Outcome::Dropped,
        NAMELESS => Outcome::Rejected(Rejected::Nameless),
        INVALID_LABEL => Outcome::Rejected(Rejected::InvalidLabel),
        slot => Outcome::Slot(slot),
    }
}

/// The outcomes remembered for one series, one per subset in subset order.
#[derive(Debug, Clone, Copy)]
pub struct Remembered<'a>(&'a [u32]);

impl Remembered<'_> {
    /// Calls `f` with each subset of `subsets` and its remembered outcome, in order.
    // Walking the packed slice here, rather than handing out an `Iterator<Item = Outcome>`,
    // lets the compiler match on the packed values directly: ~10 instructions less per subset
    // on a repeat scrape (callgrind).
    #[inline(always)]
    pub fn for_each<T>(self, subsets: &mut [T], mut f: impl FnMut(&mut T, Outcome)) {
        for (subset, &packed) in subsets.iter_mut().zip(self.0) {
            f(subset, unpack(packed));
        }
    }

    #[cfg(test)]
    fn to_vec(self) -> Vec<Outcome> {
        self.0.iter().map(|&p| unpack(p)).collect()
    }
}

/// Default cap on entries: about 1 GB of upstream text per scrape, at ~50 bytes per entry.
pub const DEFAULT_MAX_ENTRIES: usize = 4_000_000;

/// The table hash of a key: keys are hashes already, so their low bits.
#[inline]
fn low_bits(key: u128) -> u64 {
    key as u64
}

/// Counters of the current scrape.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Samples whose outcome came from the cache.
    pub hits: u64,
    /// Samples that went through relabeling and aggregation.
    pub misses: u64,
    /// Misses that could not be remembered because the cache was full.
    pub full: u64,
}

/// Raw series hash -> outcome per subset.
#[derive(Debug, Clone)]
pub struct SeriesCache {
    /// Entry indices, found by their keys in `keys` (4 bytes per slot where a map of keys would
    /// hold 32: the keys are stored once).
    table: hashbrown::HashTable<u32>,
    /// Per entry: its key. Entries are stored in the order the upstream first sent them, and
    /// upstreams send series in the same order every scrape, so the entry after the last hit
    /// is nearly always the next one asked for: checking it first turns random probes of a
    /// large table into a sequential walk.
    keys: Vec<u128>,
    /// The entry after the last hit or insert.
    cursor: usize,
    /// Per entry: the scrape it was last used in.
    last_seen: Vec<u32>,
    /// Per entry: `stride` packed outcomes, one per subset.
    outcomes: Vec<u32>,
    stride: usize,
    max_entries: usize,
    epoch: u32,
    stats: CacheStats,
}

impl SeriesCache {
    /// A cache for `subsets` outcomes per series, holding at most `max_entries` series.
    pub fn new(subsets: usize, max_entries: usize) -> Self {
        Self {
            table: hashbrown::HashTable::new(),
            keys: Vec::new(),
            cursor: 0,
            last_seen: Vec::new(),
            outcomes: Vec::new(),
            stride: subsets.max(1),
            max_entries,
            epoch: 1,
            stats: CacheStats::default(),
        }
    }

    /// The key of a sample: a 128-bit hash of its raw series text, seeded with the length of the
    /// family it belongs to (the same text can belong to another family when `# TYPE` lines
    /// differ, and a family name is always a prefix of the sample's name) and with `context`,
    /// whatever else the caller's outcome depends on (the pipeline: which label value, if any,
    /// it normalizes under the current `# TYPE`).
    #[inline]
    pub fn key(series_text: &[u8], family_len: usize, context: u32) -> u128 {
        let seed = family_len as u64 | u64::from(context) << 32;
        xxhash_rust::xxh3::xxh3_128_with_seed(series_text, seed)
    }

    /// The outcomes remembered for `key`, one per subset, marking it used in this scrape, and
    /// whether it was already used in this scrape (the same series twice in one response).
    #[inline]
    pub fn lookup_repeat(&mut self, key: u128) -> Option<(Remembered<'_>, bool)> {
        let i = self.find(key)?;
        let repeat = self.last_seen[i] == self.epoch;
        self.last_seen[i] = self.epoch;
        Some((
            Remembered(&self.outcomes[i * self.stride..(i + 1) * self.stride]),
            repeat,
        ))
    }

    /// The outcomes remembered for `key`, one per subset, marking it used in this scrape.
    #[inline]
    pub fn lookup(&mut self, key: u128) -> Option<Remembered<'_>> {
        let i = self.find(key)?;
        self.last_seen[i] = self.epoch;
        Some(Remembered(
            &self.outcomes[i * self.stride..(i + 1) * self.stride],
        ))
    }

    /// The index of `key`, counting the hit or miss.
    #[inline]
    fn find(&mut self, key: u128) -> Option<usize> {
        let i = if self.keys.get(self.cursor) == Some(&key) {
            self.cursor
        } else {
            let keys = &self.keys;
            match self.table.find(low_bits(key), |&i| keys[i as usize] == key) {
                Some(&i) => i as usize,
                None => {
                    self.stats.misses += 1;
                    return None;
                }
            }
        };
        self.stats.hits += 1;
        self.cursor = i + 1;
        Some(i)
    }

    /// Remembers `outcomes` (one per subset) for `key`, unless the cache is full or one of them
    /// is never remembered (see [`Outcome`]).
    pub fn insert(&mut self, key: u128, outcomes: &[Outcome]) {
        debug_assert_eq!(outcomes.len(), self.stride);
        if self.keys.len() >= self.max_entries || outcomes.len() != self.stride {
            self.stats.full += 1;
            return;
        }
        let keys = &self.keys;
        let entry = self.table.entry(
            low_bits(key),
            |&i| keys[i as usize] == key,
            |&i| low_bits(keys[i as usize]),
        );
        if let hashbrown::hash_table::Entry::Vacant(v) = entry {
            let at = self.outcomes.len();
            for &o in outcomes {
                let Some(packed) = pack(o) else {
                    self.outcomes.truncate(at);
                    return;
                };
                self.outcomes.push(packed);
            }
            v.insert(self.keys.len() as u32);
            self.keys.push(key);
            self.last_seen.push(self.epoch);
            self.cursor = self.keys.len();
        }
    }

    /// Starts a scrape: resets the counters and evicts entries idle for more than
    /// [`IDLE_SCRAPES`] scrapes once they are a quarter of all.
    pub fn begin_scrape(&mut self) {
        self.epoch = self.epoch.wrapping_add(1).max(1);
        self.stats = CacheStats::default();
        self.cursor = 0;
        let epoch = self.epoch;
        let idle = |seen: u32| epoch.wrapping_sub(seen) > IDLE_SCRAPES;
        let stale = self.last_seen.iter().filter(|&&s| idle(s)).count();
        if stale == 0 || stale < self.last_seen.len() / 4 {
            return;
        }
        // Rebuild in entry order, keeping the order the upstream sends series in.
        let old_keys = std::mem::take(&mut self.keys);
        let old_seen = std::mem::take(&mut self.last_seen);
        let old_outcomes = std::mem::take(&mut self.outcomes);
        let stride = self.stride;
        self.table.clear();
        for (old, (&key, &seen)) in old_keys.iter().zip(&old_seen).enumerate() {
            if idle(seen) {
                continue;
            }
            let keys = &self.keys;
            self.table
                .insert_unique(low_bits(key), keys.len() as u32, |&i| {
                    low_bits(keys[i as usize])
                });
            self.keys.push(key);
            self.last_seen.push(seen);
            self.outcomes
                .extend_from_slice(&old_outcomes[old * stride..(old + 1) * stride]);
        }
    }

    /// Forgets everything (slots were renumbered, or the configuration changed).
    pub fn clear(&mut self) {
        self.table.clear();
        self.keys.clear();
        self.cursor = 0;
        self.last_seen.clear();
        self.outcomes.clear();
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// True when nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Counters of the current scrape.
    pub fn stats(&self) -> CacheStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcomes(c: &mut SeriesCache, key: u128) -> Option<Vec<Outcome>> {
        c.lookup(key).map(Remembered::to_vec)
    }

    #[test]
    fn remembers_outcomes_and_evicts_idle_entries() {
        let mut c = SeriesCache::new(2, 100);
        let a = SeriesCache::key(b"x{a=\"1\"}", 1, 0);
        let b = SeriesCache::key(b"x{a=\"2\"}", 1, 0);
        assert_ne!(
            a,
            SeriesCache::key(b"x{a=\"1\"}", 2, 0),
            "family is part of the key"
        );
        assert_eq!(outcomes(&mut c, a), None);
        let for_a = [Outcome::Slot(3), Outcome::Dropped];
        let for_b = [Outcome::Rejected(Rejected::InvalidLabel), Outcome::Slot(5)];
        c.insert(a, &for_a);
        c.insert(b, &for_b);
        assert_eq!(outcomes(&mut c, a).as_deref(), Some(&for_a[..]));
        assert_eq!(
            c.stats(),
            CacheStats {
                hits: 1,
                misses: 1,
                full: 0
            }
        );
        for _ in 0..=IDLE_SCRAPES + 1 {
            c.begin_scrape();
            assert!(c.lookup(b).is_some());
        }
        assert_eq!(c.len(), 1, "a was evicted");
        assert_eq!(outcomes(&mut c, b).as_deref(), Some(&for_b[..]));
        assert_eq!(outcomes(&mut c, a), None);
    }

    #[test]
    fn is_bounded() {
        let mut c = SeriesCache::new(1, 2);
        for i in 0..5u8 {
            c.insert(SeriesCache::key(&[i], 1, 0), &[Outcome::Slot(u32::from(i))]);
        }
        assert_eq!(c.len(), 2);
        assert_eq!(c.stats().full, 3);
    }

    #[test]
    fn every_outcome_round_trips_and_limits_are_not_remembered() {
        for o in [
            Outcome::Dropped,
            Outcome::Rejected(Rejected::Nameless),
            Outcome::Rejected(Rejected::InvalidLabel),
            Outcome::Slot(0),
            Outcome::Slot(INVALID_LABEL - 1),
        ] {
            assert_eq!(pack(o).map(unpack), Some(o));
        }
        assert_eq!(pack(Outcome::Slot(INVALID_LABEL)), None);
        let mut c = SeriesCache::new(2, 100);
        let key = SeriesCache::key(b"x", 1, 0);
        c.insert(key, &[Outcome::Slot(1), Outcome::Rejected(Rejected::Limit)]);
        assert!(c.is_empty());
        assert_eq!(outcomes(&mut c, key), None);
    }
}
