//! A small cache of the keys an aggregator looked up last, in front of its key store.

/// Entries of a [`HotKeys`] (a power of two).
const HOT_ENTRIES: usize = 128;
/// Longest key a [`HotKeys`] entry holds; longer keys are never cached.
const HOT_WIDTH: usize = 512;

/// The keys most recently looked up, as plain text, by their table hash: a direct-mapped cache
/// in front of [`KeyStore::get`](crate::key_store::KeyStore::get) and its four-piece
/// comparison. The series that one stretch of input sums into are few (a histogram's buckets
/// for one ingress, say, each hit once per path that was dropped), so most lookups find their
/// key here and compare it with one `memcmp`.
///
/// Guarantee: [`HotKeys::find`] returns a slot only for a key byte for byte equal to the one
/// [`HotKeys::put`] stored with it; the owner clears the cache whenever slots are renumbered or
/// forgotten, so an entry never names a slot that holds another key. About 66 KB, allocated
/// with the first entry.
#[derive(Debug, Clone, Default)]
pub(super) struct HotKeys {
    /// Per entry: `(hash, slot, key length)`; length 0 is an empty entry (keys are never empty
    /// when cached: the empty key is not).
    entries: Vec<(u64, u32, u32)>,
    /// Per entry, [`HOT_WIDTH`] bytes, the key's first.
    bytes: Vec<u8>,
}

impl HotKeys {
    /// The slot cached for `key`, whose table hash is `hash`.
    #[inline]
    pub(super) fn find(&self, hash: u64, key: &[u8]) -> Option<u32> {
        let i = hash as usize & (HOT_ENTRIES - 1);
        let &(h, slot, len) = self.entries.get(i)?;
        let at = i * HOT_WIDTH;
        (h == hash && len as usize == key.len() && self.bytes.get(at..at + key.len())? == key)
            .then_some(slot)
    }

    /// Caches `key` (table hash `hash`) as the key of `slot`, replacing the entry its hash
    /// maps to; a key longer than [`HOT_WIDTH`] or empty is not cached.
    #[inline]
    pub(super) fn put(&mut self, hash: u64, slot: u32, key: &[u8]) {
        if key.is_empty() || key.len() > HOT_WIDTH {
            return;
        }
        if self.entries.is_empty() {
            self.entries = vec![(0, 0, 0); HOT_ENTRIES];
            self.bytes = vec![0; HOT_ENTRIES * HOT_WIDTH];
        }
        let i = hash as usize & (HOT_ENTRIES - 1);
        let at = i * HOT_WIDTH;
        if let (Some(e), Some(b)) = (
            self.entries.get_mut(i),
            self.bytes.get_mut(at..at + key.len()),
        ) {
            b.copy_from_slice(key);
            *e = (hash, slot, key.len() as u32);
        }
    }

    /// Forgets every entry (keeping the memory).
    pub(super) fn clear(&mut self) {
        self.entries.fill((0, 0, 0));
    }

    /// Bytes allocated.
    pub(super) fn bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<(u64, u32, u32)>() + self.bytes.capacity()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hot_keys_answer_only_for_the_exact_key() {
        let mut hot = HotKeys::default();
        assert_eq!(hot.find(7, b"x{a=\"1\"}"), None);
        hot.put(7, 3, b"x{a=\"1\"}");
        assert_eq!(hot.find(7, b"x{a=\"1\"}"), Some(3));
        // Same hash, other bytes or length: no answer.
        assert_eq!(hot.find(7, b"x{a=\"2\"}"), None);
        assert_eq!(hot.find(7, b"x{a=\"1\"} "), None);
        assert_eq!(hot.find(7 + HOT_ENTRIES as u64, b"x{a=\"1\"}"), None);
        // An entry is replaced by the next key of its index.
        hot.put(7 + HOT_ENTRIES as u64, 4, b"y");
        assert_eq!(hot.find(7, b"x{a=\"1\"}"), None);
        assert_eq!(hot.find(7 + HOT_ENTRIES as u64, b"y"), Some(4));
        // Too long to cache, or empty: never answered.
        let long = vec![b'z'; HOT_WIDTH + 1];
        hot.put(9, 5, &long);
        assert_eq!(hot.find(9, &long), None);
        hot.put(10, 6, b"");
        assert_eq!(hot.find(10, b""), None);
        hot.clear();
        assert_eq!(hot.find(7 + HOT_ENTRIES as u64, b"y"), None);
    }
}
