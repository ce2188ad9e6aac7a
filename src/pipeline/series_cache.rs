//! The cross-scrape series cache: raw series text -> what the pipeline did with it.
//!
//! A sidecar sees the same series every scrape. The pipeline keys each sample by a 128-bit hash
//! of its raw series text (metric name and label block, exactly as the upstream wrote them) and
//! remembers, per subset, the [`Outcome`]: dropped by relabeling, rejected (no name, bad label),
//! or the aggregator slot it sums into, packed into a `u32`. A known series then costs one hash
//! and one lookup: no label copying, no relabeling, no key building.
//!
//! Each entry also keeps the length of its series text, so that the parser can take a line whose
//! series is the one expected next without parsing its label block: [`SeriesCache::expected_len`]
//! and [`SeriesCache::lookup_known`] serve that path (see `replay.rs`).
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

/// What [`SeriesCache::lookup_known`] returns when no group hash was remembered for an entry.
pub const NO_GROUP: u64 = u64::MAX;

/// The seed of a key's hash ([`SeriesCache::key`]): the family's length and the context.
#[inline]
fn seed(family_len: usize, context: u32) -> u64 {
    family_len as u64 | u64::from(context) << 32
}

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
    /// Per entry: the length of its series text (what the parser takes as the series of a line
    /// expected to repeat it).
    lens: Vec<u32>,
    /// Per entry, when `keep_groups`: the hash of the input group the series belongs to (for
    /// the counter records), or [`NO_GROUP`]. Empty otherwise.
    groups: Vec<u64>,
    keep_groups: bool,
    stride: usize,
    max_entries: usize,
    epoch: u32,
    stats: CacheStats,
    /// xxh3's secret for the seed of the last long text keyed ([`SeriesCache::key_of`]).
    secret: SeedSecret,
}

/// The secret xxh3 derives from a seed to hash a text longer than 240 bytes, kept for the
/// last seed: xxh3 derives it again for every such text hashed with a seed, and consecutive
/// series share their family, so their seed.
#[derive(Debug, Clone)]
struct SeedSecret {
    seed: u64,
    /// xxh3's default secret size (192 bytes).
    secret: [u8; 192],
}

impl SeedSecret {
    fn new() -> Self {
        Self {
            seed: 0,
            secret: xxhash_rust::const_xxh3::const_custom_default_secret(0),
        }
    }

    /// `xxh3_128_with_seed(text, seed)` of a text longer than [`SeedSecret::LONG`] bytes.
    #[inline]
    fn hash_long(&mut self, text: &[u8], seed: u64) -> u128 {
        if seed != self.seed {
            self.secret = xxhash_rust::const_xxh3::const_custom_default_secret(seed);
            self.seed = seed;
        }
        xxhash_rust::xxh3::xxh3_128_with_secret(text, &self.secret)
    }

    /// Texts up to this many bytes are hashed with the seed itself, not a derived secret.
    const LONG: usize = 240;
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
            lens: Vec::new(),
            groups: Vec::new(),
            keep_groups: false,
            stride: subsets.max(1),
            max_entries,
            epoch: 1,
            stats: CacheStats::default(),
            secret: SeedSecret::new(),
        }
    }

    /// Also remember a group hash per entry (given to [`SeriesCache::insert`]), handed back by
    /// [`SeriesCache::lookup_known`]: 8 bytes per entry, for callers that need the group of a
    /// series they did not parse. Forgets every entry.
    pub fn keep_groups(&mut self) {
        self.clear();
        self.keep_groups = true;
    }

    /// Whether entries keep their group hash ([`SeriesCache::keep_groups`]).
    pub fn keeps_groups(&self) -> bool {
        self.keep_groups
    }

    /// The key of a sample: a 128-bit hash of its raw series text, seeded with the length of the
    /// family it belongs to (the same text can belong to another family when `# TYPE` lines
    /// differ, and a family name is always a prefix of the sample's name) and with `context`,
    /// whatever else the caller's outcome depends on (the pipeline: which label value, if any,
    /// it normalizes under the current `# TYPE`).
    #[inline]
    pub fn key(series_text: &[u8], family_len: usize, context: u32) -> u128 {
        let seed = seed(family_len, context);
        xxhash_rust::xxh3::xxh3_128_with_seed(series_text, seed)
    }

    /// [`SeriesCache::key`] of the same arguments, the same value, computed with the secret
    /// derived for the last seed when the text is long (most series: deriving it for each one
    /// was ~3% of a repeat scrape's instructions, by callgrind).
    #[inline]
    pub fn key_of(&mut self, series_text: &[u8], family_len: usize, context: u32) -> u128 {
        if series_text.len() <= SeedSecret::LONG {
            return Self::key(series_text, family_len, context);
        }
        let seed = seed(family_len, context);
        self.secret.hash_long(series_text, seed)
    }

    /// A 64-bit key of the same arguments as [`SeriesCache::key`], for checks that tolerate a
    /// rare false match ([`SeenSeries::deferred`]). Cheaper: the text is hashed with xxh3's
    /// default secret (a seed makes xxh3 derive a secret for each text longer than 240 bytes,
    /// as most series are), and the seed, multiplied by an odd constant (so that two seeds
    /// never give the same word), is mixed in afterwards.
    #[inline]
    pub fn short_key(series_text: &[u8], family_len: usize, context: u32) -> u64 {
        let seed = seed(family_len, context);
        xxhash_rust::xxh3::xxh3_64(series_text) ^ seed.wrapping_mul(0x9e37_79b9_7f4a_7c15)
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

    /// The length of the series text of the entry after the last hit: the series the upstream
    /// most likely sends next (it sends them in the same order every scrape). `None` when the
    /// last lookup was not a hit, or hit the last entry.
    #[inline]
    pub fn expected_len(&self) -> Option<usize> {
        self.lens.get(self.cursor).map(|&len| len as usize)
    }

    /// Like [`SeriesCache::lookup_repeat`], for a series whose text the caller did not parse
    /// (`replay.rs`): a miss is not counted (the caller then parses the line and looks it up
    /// again). Also returns the entry's group hash ([`NO_GROUP`] if none was remembered).
    #[inline]
    pub fn lookup_known(&mut self, key: u128) -> Option<(Remembered<'_>, bool, u64)> {
        let i = self.index_of(key)?;
        self.stats.hits += 1;
        self.cursor = i + 1;
        let repeat = self.last_seen[i] == self.epoch;
        self.last_seen[i] = self.epoch;
        let group = self.groups.get(i).copied().unwrap_or(NO_GROUP);
        Some((
            Remembered(&self.outcomes[i * self.stride..(i + 1) * self.stride]),
            repeat,
            group,
        ))
    }

    /// The index of `key`, counting the hit or miss.
    #[inline]
    fn find(&mut self, key: u128) -> Option<usize> {
        let Some(i) = self.index_of(key) else {
            self.stats.misses += 1;
            return None;
        };
        self.stats.hits += 1;
        self.cursor = i + 1;
        Some(i)
    }

    /// The index of `key`: the entry at the cursor, or found in the table.
    #[inline]
    fn index_of(&self, key: u128) -> Option<usize> {
        if self.keys.get(self.cursor) == Some(&key) {
            return Some(self.cursor);
        }
        let keys = &self.keys;
        self.table
            .find(low_bits(key), |&i| keys[i as usize] == key)
            .map(|&i| i as usize)
    }

    /// Remembers `outcomes` (one per subset) for `key`, the hash of a series text of `len`
    /// bytes, with its `group` hash (kept only when asked: [`SeriesCache::keep_groups`]),
    /// unless the cache is full or one of the outcomes is never remembered (see [`Outcome`]).
    pub fn insert(&mut self, key: u128, len: usize, group: u64, outcomes: &[Outcome]) {
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
            // A series text longer than a `u32` (beyond the parser's line limit) is never
            // expected: the parser rejects a length that does not fit its line.
            self.lens.push(u32::try_from(len).unwrap_or(u32::MAX));
            if self.keep_groups {
                self.groups.push(group);
            }
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
        let old_lens = std::mem::take(&mut self.lens);
        let old_groups = std::mem::take(&mut self.groups);
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
            self.lens.push(old_lens[old]);
            if let Some(&group) = old_groups.get(old) {
                self.groups.push(group);
            }
        }
    }

    /// Forgets everything (slots were renumbered, or the configuration changed).
    pub fn clear(&mut self) {
        self.table.clear();
        self.keys.clear();
        self.cursor = 0;
        self.last_seen.clear();
        self.outcomes.clear();
        self.lens.clear();
        self.groups.clear();
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

/// The series of one input, by their [`SeriesCache::key`]: how a pipeline without a series
/// cache finds a series the input repeats (a cache entry remembers that itself).
///
/// Two ways, decided when the set is made:
/// - **exact** (the default): a hash table answers, for every series, whether it came before.
///   Keys are hashes already, so the table takes their low bits as its hash instead of hashing
///   them again, and growing it rehashes nothing.
/// - **deferred** ([`SeenSeries::deferred`]): for a reader that can read its input again.
///   Each key is appended to a list and taken as new; [`SeenSeries::settle`] then sorts the
///   list and tells whether any key came twice, and if one did, the reader must discard what
///   it built and read the input again with an exact set. The list holds 64-bit keys
///   ([`SeriesCache::short_key`], cheaper than the 128-bit one): two series whose keys
///   coincide (about one chance in 10^8 for a million series) look like a repeat and cost
///   that second read, never a wrong answer. Repeated series are rare and an append costs no
///   random memory access: on the 851k-series ingress payload the table's probes took 29% of
///   a one-thread `--file --apply` run (0.86 s of CPU with them, 0.61 s without), sorting the
///   lists about 4% of a two-thread run (perf).
#[derive(Debug, Clone, Default)]
pub struct SeenSeries {
    /// Exact: the [`SeriesCache::key`] of every series offered.
    table: hashbrown::HashTable<u128>,
    /// Deferred: the [`SeriesCache::short_key`] of every series offered, in input order until
    /// [`SeenSeries::settle`] sorts them.
    list: Vec<u64>,
    deferred: bool,
}

impl SeenSeries {
    /// A set that defers the check to [`SeenSeries::settle`] (see the type's documentation).
    pub fn deferred() -> Self {
        SeenSeries {
            deferred: true,
            ..SeenSeries::default()
        }
    }

    /// True the first time the series is offered since [`SeenSeries::clear`], false for a
    /// repeat; always true when deferred. The arguments are those of [`SeriesCache::key`].
    #[inline]
    pub fn first(&mut self, series_text: &[u8], family_len: usize, context: u32) -> bool {
        if self.deferred {
            self.list
                .push(SeriesCache::short_key(series_text, family_len, context));
            return true;
        }
        self.first_key(SeriesCache::key(series_text, family_len, context))
    }

    /// Exact: true the first time `key` is offered.
    #[inline]
    fn first_key(&mut self, key: u128) -> bool {
        match self
            .table
            .entry(low_bits(key), |&k| k == key, |&k| low_bits(k))
        {
            hashbrown::hash_table::Entry::Occupied(_) => false,
            hashbrown::hash_table::Entry::Vacant(v) => {
                v.insert(key);
                true
            }
        }
    }

    /// Deferred: sorts the keys offered so far and returns true when none came twice, i.e.
    /// when every [`SeenSeries::first`] answered right (false also, very rarely, for two
    /// series whose 64-bit keys coincide). Exact: always true.
    pub fn settle(&mut self) -> bool {
        if !self.deferred {
            return true;
        }
        self.list.sort_unstable();
        self.list.windows(2).all(|w| w[0] != w[1])
    }

    /// Forgets every key (keeping the memory for the next input).
    pub fn clear(&mut self) {
        self.table.clear();
        self.list.clear();
    }

    /// True when no series is in both `self` and `other`, two sets of the same kind. Deferred
    /// sets must be [settled](SeenSeries::settle) first, and a false answer may be a
    /// coincidence of their 64-bit keys; two exact sets walk the smaller table. Sets of two
    /// kinds hold keys that cannot be compared: false.
    pub fn is_disjoint(&self, other: &SeenSeries) -> bool {
        match (self.deferred, other.deferred) {
            (true, true) => sorted_disjoint(&self.list, &other.list),
            (false, false) => {
                let (small, large) = if self.table.len() <= other.table.len() {
                    (self, other)
                } else {
                    (other, self)
                };
                small
                    .table
                    .iter()
                    .all(|&key| large.table.find(low_bits(key), |&k| k == key).is_none())
            }
            _ => false,
        }
    }
}

/// True when the ascending lists `a` and `b` share no element (one walk over both).
fn sorted_disjoint(a: &[u64], b: &[u64]) -> bool {
    let (mut i, mut j) = (0, 0);
    while let (Some(x), Some(y)) = (a.get(i), b.get(j)) {
        match x.cmp(y) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcomes(c: &mut SeriesCache, key: u128) -> Option<Vec<Outcome>> {
        c.lookup(key).map(Remembered::to_vec)
    }

    #[test]
    fn key_of_is_key_for_every_length_and_seed() {
        let mut c = SeriesCache::new(1, 100);
        let text: Vec<u8> = (0..700u32).map(|i| b'a' + (i * 7 % 26) as u8).collect();
        // Seeds change from text to text (and come back), so the kept secret is replaced.
        let seeds = [
            (1, 0),
            (300, 0),
            (300, 1),
            (1, 0),
            (u32::MAX as usize, u32::MAX),
        ];
        for len in (0..=text.len()).step_by(3).chain([240, 241, 256]) {
            for &(family_len, context) in &seeds {
                let t = &text[..len];
                assert_eq!(
                    c.key_of(t, family_len, context),
                    SeriesCache::key(t, family_len, context),
                    "len {len}, family_len {family_len}, context {context}"
                );
            }
        }
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
        c.insert(a, 8, NO_GROUP, &for_a);
        c.insert(b, 8, NO_GROUP, &for_b);
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
    fn seen_series_disjointness_looks_at_every_key() {
        let mut a = SeenSeries::default();
        let mut b = SeenSeries::default();
        assert!(a.is_disjoint(&b));
        for k in 0..100u128 {
            assert!(a.first_key(k << 70 | k));
        }
        for k in 100..103u128 {
            assert!(b.first_key(k << 70 | k));
        }
        assert!(a.is_disjoint(&b) && b.is_disjoint(&a));
        assert!(b.first_key(57 << 70 | 57));
        assert!(!a.is_disjoint(&b) && !b.is_disjoint(&a));
    }

    #[test]
    fn is_bounded() {
        let mut c = SeriesCache::new(1, 2);
        for i in 0..5u8 {
            c.insert(
                SeriesCache::key(&[i], 1, 0),
                1,
                NO_GROUP,
                &[Outcome::Slot(u32::from(i))],
            );
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
        c.insert(
            key,
            1,
            NO_GROUP,
            &[Outcome::Slot(1), Outcome::Rejected(Rejected::Limit)],
        );
        assert!(c.is_empty());
        assert_eq!(outcomes(&mut c, key), None);
    }

    #[test]
    fn deferred_seen_series_reports_repeats_when_settled() {
        let texts: Vec<String> = (0..5_000).map(|i| format!("m{{i=\"{i}\"}}")).collect();
        let offer = |seen: &mut SeenSeries, t: &String| seen.first(t.as_bytes(), 1, 0);
        let mut a = SeenSeries::deferred();
        assert!(texts[..3000].iter().all(|t| offer(&mut a, t)));
        assert!(a.settle(), "no series came twice");
        let mut b = SeenSeries::deferred();
        assert!(texts[3000..].iter().all(|t| offer(&mut b, t)));
        assert!(b.settle());
        assert!(a.is_disjoint(&b) && b.is_disjoint(&a));
        // The same text in another family or context is another series.
        assert!(b.first(texts[7].as_bytes(), 2, 0) && b.first(texts[8].as_bytes(), 1, 1));
        assert!(b.settle() && a.is_disjoint(&b));
        // A series of `a` again: only settling tells.
        assert!(offer(&mut b, &texts[1234]));
        assert!(b.settle(), "b alone repeats nothing");
        assert!(!a.is_disjoint(&b) && !b.is_disjoint(&a));
        assert!(
            offer(&mut a, &texts[2999]),
            "deferred: every series is taken as new"
        );
        assert!(!a.settle());
        a.clear();
        assert!(offer(&mut a, &texts[0]) && a.settle());
        // Keys that coincide are taken as a repeat (the reader then reads again, exactly).
        a.list.push(a.list[0]);
        assert!(!a.settle());
        // Sets of two kinds are never called disjoint.
        let mut exact = SeenSeries::default();
        assert!(offer(&mut exact, &texts[4999]));
        assert!(!exact.is_disjoint(&a) && !a.is_disjoint(&exact));
    }

    #[test]
    fn sorted_lists_share_an_element_anywhere() {
        assert!(sorted_disjoint(&[], &[1]));
        assert!(sorted_disjoint(&[1, 3, 5], &[0, 2, 4, 6]));
        for (a, b) in [
            (&[1, 3, 5][..], &[5][..]),
            (&[7], &[1, 2, 7]),
            (&[2, 4], &[1, 4, 9]),
        ] {
            assert!(
                !sorted_disjoint(a, b) && !sorted_disjoint(b, a),
                "{a:?} {b:?}"
            );
        }
    }

    #[test]
    fn seen_series_reports_repeats_only() {
        let mut seen = SeenSeries::default();
        let keys: Vec<u128> = (0..10_000u128)
            .map(|i| i.wrapping_mul(0x9e37_79b9_7f4a_7c15))
            .collect();
        assert!(keys.iter().all(|&k| seen.first_key(k)));
        assert!(keys.iter().all(|&k| !seen.first_key(k)));
        // Same low bits, another key: not a repeat.
        assert!(seen.first_key(keys[3] | 1 << 100));
        seen.clear();
        assert!(seen.first_key(keys[3]));
        assert!(seen.first(b"x", 1, 0) && !seen.first(b"x", 1, 0) && seen.first(b"x", 2, 0));
    }
}
