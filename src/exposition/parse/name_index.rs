//! [`NameIndex`]: the label names of a block by hash, for the duplicate check of long blocks.

/// The label names of the current block by hash, for the duplicate check of blocks with many
/// names that do not arrive sorted: (hash of the name, index in `spans`). Reused across lines;
/// seeded per parser, so that no input can choose names that collide.
#[derive(Default)]
pub(super) struct NameIndex {
    table: hashbrown::HashTable<(u64, u32)>,
    hasher: foldhash::quality::RandomState,
}

impl std::fmt::Debug for NameIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NameIndex")
            .field("len", &self.table.len())
            .finish()
    }
}

impl NameIndex {
    /// Forgets the names of the previous block (keeps the table's memory).
    pub(super) fn clear(&mut self) {
        self.table.clear();
    }

    /// True if the table holds a name for which `eq` (given its index) is true, among those
    /// with the hash of `name`.
    pub(super) fn contains(&self, name: &[u8], mut eq: impl FnMut(usize) -> bool) -> bool {
        use std::hash::BuildHasher as _;
        let hash = self.hasher.hash_one(name);
        self.table
            .find(hash, |&(h, k)| h == hash && eq(k as usize))
            .is_some()
    }

    /// Adds `name` as the label at `index`.
    pub(super) fn insert(&mut self, name: &[u8], index: usize) {
        use std::hash::BuildHasher as _;
        let hash = self.hasher.hash_one(name);
        // A line is shorter than 2^31 bytes, so it holds fewer labels than that.
        let index = u32::try_from(index).unwrap_or(u32::MAX);
        self.table.insert_unique(hash, (hash, index), |&(h, _)| h);
    }
}
