//! A bounded map from a rule's input string to its decision, so that a repeated input costs one
//! hash lookup instead of a regex run.
//!
//! Policy (what happens when the cache is full): new inputs are no longer stored — a miss then
//! runs the regex and allocates nothing — and the misses are counted. Once as many misses have
//! been seen while full as the cache holds entries, the cache is cleared and refills from the
//! inputs seen next. So:
//! - a working set that fits is stored once and then only hit, with no churn;
//! - when the inputs drift (pods come and go), stale entries are replaced within about one
//!   capacity's worth of misses;
//! - a high-cardinality input (a label unique per series) cannot grow memory past the
//!   capacity, and at worst half of its misses allocate an entry.
//!
//! Memory stays below `capacity` entries; the hash table keeps its allocation when cleared.

use std::fmt;

use hashbrown::HashMap;

/// Default maximum number of entries of one rule's cache.
pub(crate) const DEFAULT_CAPACITY: usize = 16_384;

/// A bounded input → decision cache (see the module docs for the policy).
#[derive(Clone)]
pub(crate) struct DecisionCache<V> {
    map: HashMap<Box<str>, V, foldhash::fast::RandomState>,
    capacity: usize,
    misses_while_full: usize,
}

impl<V> DecisionCache<V> {
    /// An empty cache holding at most `capacity` entries; 0 disables caching.
    pub(crate) fn new(capacity: usize) -> Self {
        DecisionCache {
            map: HashMap::with_hasher(foldhash::fast::RandomState::default()),
            capacity,
            misses_while_full: 0,
        }
    }

    /// The cached decision for `key`. Does not allocate.
    #[inline]
    pub(crate) fn get(&self, key: &str) -> Option<&V> {
        self.map.get(key)
    }

    /// Stores the decision for `key`, a miss, if the policy admits it; `value` is only built
    /// when it does. Returns whether it was stored.
    pub(crate) fn insert_with(&mut self, key: &str, value: impl FnOnce() -> V) -> bool {
        if self.capacity == 0 {
            return false;
        }
        if self.map.len() >= self.capacity {
            self.misses_while_full += 1;
            if self.misses_while_full < self.capacity {
                return false;
            }
            self.map.clear();
            self.misses_while_full = 0;
        }
        self.map.insert(key.into(), value());
        true
    }

    /// Number of stored decisions.
    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// Changes the bound and empties the cache.
    pub(crate) fn reset(&mut self, capacity: usize) {
        self.map = HashMap::with_hasher(foldhash::fast::RandomState::default());
        self.capacity = capacity;
        self.misses_while_full = 0;
    }
}

impl<V> fmt::Debug for DecisionCache<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DecisionCache")
            .field("len", &self.map.len())
            .field("capacity", &self.capacity)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_until_full_then_stops() {
        let mut c = DecisionCache::new(3);
        for k in ["a", "b", "c"] {
            assert!(c.insert_with(k, || k.len()));
        }
        assert_eq!(c.len(), 3);
        assert!(!c.insert_with("d", || unreachable!("not built when not stored")));
        assert_eq!(c.get("a"), Some(&1));
        assert_eq!(c.get("d"), None);
        assert_eq!(c.len(), 3);
    }

    #[test]
    fn clears_after_a_capacity_of_misses_while_full() {
        let mut c = DecisionCache::new(4);
        for k in ["a", "b", "c", "d"] {
            c.insert_with(k, || ());
        }
        // Three misses are turned away; the fourth clears the cache and is stored.
        for k in ["e", "f", "g"] {
            assert!(!c.insert_with(k, || ()));
        }
        assert!(c.insert_with("h", || ()));
        assert_eq!(c.len(), 1);
        assert!(c.get("h").is_some() && c.get("a").is_none());
    }

    #[test]
    fn never_exceeds_capacity() {
        let mut c = DecisionCache::new(100);
        for i in 0..10_000 {
            let key = format!("series-{i}");
            if c.get(&key).is_none() {
                c.insert_with(&key, || i);
            }
            assert!(c.len() <= 100);
        }
    }

    #[test]
    fn zero_capacity_disables() {
        let mut c = DecisionCache::new(0);
        assert!(!c.insert_with("a", || ()));
        assert_eq!(c.len(), 0);
        c.reset(1);
        assert!(c.insert_with("a", || ()));
    }
}
