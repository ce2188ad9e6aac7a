//! Series keys (`name{a="x",...}`) stored compactly, in blocks that never move: the aggregator
//! keeps its output series' keys here, and the counter state the series of the outputs it may
//! have to serve on its own.
//!
//! # Blocks
//! Bytes are appended to fixed-size blocks ([`Blocks`]). A full block is left as it is and a new
//! one started, so storing a key never reallocates and copies what is stored (a growing `Vec`
//! doubles: twice the bytes at its peak, and the page faults of copying them). An item never
//! spans two blocks; one larger than a block gets a block of its own.
//!
//! # Keys as differences
//! A key (`name{a="x",b="y"}`, see [`super::key`]) is split into its *head*, the bytes before
//! the first `{` (the metric name; stored once per distinct head), and its *label block*, the
//! rest. The series of one family mostly differ in a label value or two (a histogram's `le`, a
//! path), so a label block is stored as its difference to a *base*, an earlier label block of
//! the same family that is stored whole: the base's first `prefix` bytes, then `mid` (bytes of
//! its own), then the base's last `suffix` bytes. A block that shares too little with its
//! family's base ([`needs_new_base`]) is stored whole and becomes the family's base. On an
//! ingress-shaped payload this stores a ~230-byte key in ~20 bytes.
//!
//! Any bytes make a valid key: the split and the choice of base only decide how small a key is
//! stored, never what it reads back as. Comparisons are exact ([`StoredKey::eq`]).

use foldhash::fast::FixedState;
use hashbrown::HashTable;
use std::hash::BuildHasher;

/// Bytes per block (a larger item gets a block of its own size).
const BLOCK: usize = 64 << 10;

/// Where an item starts in [`Blocks`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Addr {
    block: u32,
    offset: u32,
}

/// Append-only storage in fixed-size blocks. Guarantees: an item's bytes are contiguous and
/// stay where they were put until [`Blocks::clear`]; appending never moves stored bytes.
#[derive(Debug, Clone, Default)]
pub(crate) struct Blocks {
    blocks: Vec<Vec<u8>>,
}

impl Blocks {
    /// Stores `parts` one after the other as one item; returns where it starts.
    fn push(&mut self, parts: &[&[u8]]) -> Addr {
        let len: usize = parts.iter().map(|p| p.len()).sum();
        let fits = self
            .blocks
            .last()
            .is_some_and(|b| b.capacity() - b.len() >= len);
        if !fits {
            // `Vec::with_capacity` gives at least this much, and a block is never grown past
            // it, so its bytes never move.
            self.blocks.push(Vec::with_capacity(len.max(BLOCK)));
        }
        let block = self.blocks.len() - 1;
        let b = &mut self.blocks[block];
        let offset = b.len();
        for p in parts {
            b.extend_from_slice(p);
        }
        Addr {
            block: block as u32,
            offset: offset as u32,
        }
    }

    /// The bytes from `addr` to the end of its block (the item there and whatever follows).
    #[inline]
    fn from(&self, addr: Addr) -> &[u8] {
        &self.blocks[addr.block as usize][addr.offset as usize..]
    }

    /// Bytes reserved (whole blocks, used or not).
    fn reserved(&self) -> usize {
        self.blocks.iter().map(|b| b.capacity()).sum()
    }

    /// Forgets every item; keeps the first block for reuse.
    fn clear(&mut self) {
        self.blocks.truncate(1);
        if let Some(b) = self.blocks.first_mut() {
            b.clear();
        }
    }
}

/// A stored item's location and length.
#[derive(Debug, Clone, Copy)]
struct Span {
    at: Addr,
    len: u32,
}

/// Where a family's next label blocks are stored relative to: the index of its current base
/// ([`KeyStore::insert`] keeps it). A new family starts with `BaseSlot::default()`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct BaseSlot(Option<u32>);

/// A key read back from a [`KeyStore`], in its four pieces; the key is their concatenation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct StoredKey<'a> {
    head: &'a [u8],
    before: &'a [u8],
    mid: &'a [u8],
    after: &'a [u8],
}

impl StoredKey<'_> {
    /// Length of the key in bytes.
    #[inline]
    pub(crate) fn len(&self) -> usize {
        self.head.len() + self.before.len() + self.mid.len() + self.after.len()
    }

    /// True when the key is exactly `key`.
    #[inline]
    pub(crate) fn eq(&self, key: &[u8]) -> bool {
        if key.len() != self.len() {
            return false;
        }
        let (h, rest) = key.split_at(self.head.len());
        let (b, rest) = rest.split_at(self.before.len());
        let (m, a) = rest.split_at(self.mid.len());
        h == self.head && b == self.before && m == self.mid && a == self.after
    }

    /// Appends the key to `out`.
    #[inline]
    pub(crate) fn write_to(&self, out: &mut Vec<u8>) {
        out.reserve(self.len());
        out.extend_from_slice(self.head);
        out.extend_from_slice(self.before);
        out.extend_from_slice(self.mid);
        out.extend_from_slice(self.after);
    }
}

/// Keys (see the module docs), e.g. an aggregator's series. Guarantees: [`KeyStore::get`]
/// returns exactly the bytes [`KeyStore::insert`] was given, for as long as the store is not
/// cleared; inserting never moves what is stored.
#[derive(Debug, Clone)]
pub(crate) struct KeyStore {
    blocks: Blocks,
    /// Distinct heads, and a table to find them by their bytes.
    heads: Vec<Span>,
    head_table: HashTable<u32>,
    /// Label blocks stored whole. Base 0 is the empty block (of keys without labels).
    bases: Vec<Span>,
    hasher: FixedState,
    /// Scratch for a record being written.
    record: Vec<u8>,
    /// The keys' length as text, summed.
    text_bytes: usize,
}

impl Default for KeyStore {
    fn default() -> Self {
        let mut s = Self {
            blocks: Blocks::default(),
            heads: Vec::new(),
            head_table: HashTable::new(),
            bases: Vec::new(),
            hasher: FixedState::with_seed(0x6b65_7973),
            record: Vec::new(),
            text_bytes: 0,
        };
        s.clear();
        s
    }
}

impl KeyStore {
    /// Forgets every key; keeps some of the memory for reuse.
    pub(crate) fn clear(&mut self) {
        self.blocks.clear();
        self.heads.clear();
        self.head_table.clear();
        self.bases.clear();
        self.text_bytes = 0;
        self.bases.push(Span {
            at: Addr::default(),
            len: 0,
        });
    }

    /// Bytes reserved for keys.
    pub(crate) fn bytes(&self) -> usize {
        self.blocks.reserved()
            + self.heads.capacity() * std::mem::size_of::<Span>()
            + self.head_table.capacity() * std::mem::size_of::<u32>()
            + self.bases.capacity() * std::mem::size_of::<Span>()
    }

    /// The stored keys' length as text, summed (what writing them all out takes).
    pub(crate) fn text_bytes(&self) -> usize {
        self.text_bytes
    }

    /// Stores `key`, a key of the family whose base is `base` (updated when the key becomes the
    /// family's new base); returns where it is, for [`KeyStore::get`].
    pub(crate) fn insert(&mut self, key: &[u8], base: &mut BaseSlot) -> Addr {
        self.text_bytes += key.len();
        let split = memchr::memchr(b'{', key).unwrap_or(key.len());
        let (head, block) = key.split_at(split);
        let head = self.head_id(head);
        let (base_id, prefix, mid, suffix) = match base.0 {
            _ if block.is_empty() => (0, 0, &block[..0], 0),
            Some(id) => {
                let b = self.base_bytes(id);
                let prefix = common_prefix(block, b);
                let suffix = common_suffix(&block[prefix..], &b[prefix..]);
                let mid = &block[prefix..block.len() - suffix];
                if needs_new_base(block.len(), mid.len()) {
                    self.new_base(block, base)
                } else {
                    (id, prefix, mid, suffix)
                }
            }
            None => self.new_base(block, base),
        };
        let mut record = std::mem::take(&mut self.record);
        record.clear();
        for n in [
            head,
            base_id,
            prefix as u32,
            suffix as u32,
            mid.len() as u32,
        ] {
            push_varint(&mut record, n);
        }
        let at = self.blocks.push(&[&record, mid]);
        self.record = record;
        at
    }

    /// The key stored at `at`.
    #[inline]
    pub(crate) fn get(&self, at: Addr) -> StoredKey<'_> {
        let mut r = self.blocks.from(at);
        let head = read_varint(&mut r) as usize;
        let base = read_varint(&mut r) as usize;
        let prefix = read_varint(&mut r) as usize;
        let suffix = read_varint(&mut r) as usize;
        let mid_len = read_varint(&mut r) as usize;
        let head = self.span(self.heads[head]);
        let base = self.span(self.bases[base]);
        StoredKey {
            head,
            before: &base[..prefix],
            mid: &r[..mid_len],
            after: &base[base.len() - suffix..],
        }
    }

    /// Stores `block` whole as the family's new base; the record then takes all of it.
    fn new_base<'b>(
        &mut self,
        block: &'b [u8],
        base: &mut BaseSlot,
    ) -> (u32, usize, &'b [u8], usize) {
        let id = self.bases.len() as u32;
        let at = self.blocks.push(&[block]);
        self.bases.push(Span {
            at,
            len: block.len() as u32,
        });
        base.0 = Some(id);
        (id, block.len(), &block[..0], 0)
    }

    fn base_bytes(&self, id: u32) -> &[u8] {
        self.span(self.bases[id as usize])
    }

    #[inline]
    fn span(&self, s: Span) -> &[u8] {
        &self.blocks.from(s.at)[..s.len as usize]
    }

    /// The id of `head`, stored now if it is new.
    fn head_id(&mut self, head: &[u8]) -> u32 {
        let hash = self.hasher.hash_one(head);
        let Self {
            blocks,
            heads,
            head_table,
            hasher,
            ..
        } = self;
        let bytes = |s: &Span| &blocks.from(s.at)[..s.len as usize];
        if let Some(&id) = head_table.find(hash, |&i| bytes(&heads[i as usize]) == head) {
            return id;
        }
        let id = heads.len() as u32;
        let at = blocks.push(&[head]);
        heads.push(Span {
            at,
            len: head.len() as u32,
        });
        let (heads, blocks) = (&*heads, &*blocks);
        head_table.insert_unique(hash, id, |&i| {
            let s = heads[i as usize];
            hasher.hash_one(&blocks.from(s.at)[..s.len as usize])
        });
        id
    }
}

/// True when a label block whose difference to its family's base is `mid_len` bytes is better
/// stored whole, as the family's new base: the base no longer resembles the series that come.
fn needs_new_base(block_len: usize, mid_len: usize) -> bool {
    mid_len > 24 && mid_len * 4 > block_len
}

/// The number of leading bytes `a` and `b` share. Compares eight bytes at a time: a label block
/// is ~200 bytes, and a byte loop took ~2,000 instructions per new series (callgrind).
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let mut n = 0;
    for (x, y) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        let diff = word(x) ^ word(y);
        if diff != 0 {
            // Little-endian: the first differing byte is the lowest nonzero one.
            return n + (diff.trailing_zeros() / 8) as usize;
        }
        n += 8;
    }
    n + a[n..]
        .iter()
        .zip(&b[n..])
        .take_while(|(x, y)| x == y)
        .count()
}

/// The number of trailing bytes `a` and `b` share (eight at a time, as [`common_prefix`]).
fn common_suffix(a: &[u8], b: &[u8]) -> usize {
    let mut n = 0;
    for (x, y) in a.rchunks_exact(8).zip(b.rchunks_exact(8)) {
        let diff = word(x) ^ word(y);
        if diff != 0 {
            // Little-endian: the last differing byte is the highest nonzero one.
            return n + (diff.leading_zeros() / 8) as usize;
        }
        n += 8;
    }
    n + a[..a.len() - n]
        .iter()
        .rev()
        .zip(b[..b.len() - n].iter().rev())
        .take_while(|(x, y)| x == y)
        .count()
}

/// The first eight bytes of `chunk` (a whole chunk from `chunks_exact(8)`) as a little-endian
/// word.
#[inline(always)]
fn word(chunk: &[u8]) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&chunk[..8]);
    u64::from_le_bytes(w)
}

/// LEB128: 7 bits a byte, low bits first.
fn push_varint(out: &mut Vec<u8>, mut n: u32) {
    while n >= 0x80 {
        out.push(n as u8 | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Reads a [`push_varint`] number and advances `r` past it. Only reads what `push_varint`
/// wrote (the store's own records), so a short slice cannot happen.
#[inline]
fn read_varint(r: &mut &[u8]) -> u32 {
    let mut n = 0u32;
    let mut shift = 0;
    for (i, &b) in r.iter().enumerate() {
        n |= u32::from(b & 0x7f) << shift;
        if b < 0x80 {
            *r = &r[i + 1..];
            return n;
        }
        shift += 7;
    }
    *r = &[];
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &StoredKey<'_>) -> Vec<u8> {
        let mut v = Vec::new();
        k.write_to(&mut v);
        v
    }

    #[test]
    fn keys_read_back_exactly_and_compare_exactly() {
        let keys: Vec<&[u8]> = vec![
            b"up",
            b"",
            b"x_bucket{a=\"1\",le=\"0.5\",z=\"9\"}",
            b"x_bucket{a=\"1\",le=\"1\",z=\"9\"}",
            b"x_sum{a=\"1\",z=\"9\"}",
            b"x_count{a=\"1\",z=\"9\"}",
            b"x_bucket{a=\"2222222222222222222222222222222222222\",le=\"0.5\",z=\"9\"}",
            b"{\"my.metric\",\"a.b\"=\"c\"}",
            b"x{a=\"1\"}x{",
            b"x_sum{a=\"1\",z=\"9\"}",
        ];
        let mut s = KeyStore::default();
        let mut base = BaseSlot::default();
        let at: Vec<Addr> = keys.iter().map(|k| s.insert(k, &mut base)).collect();
        for (k, &a) in keys.iter().zip(&at) {
            let got = s.get(a);
            assert_eq!(key(&got), *k);
            assert!(got.eq(k));
            assert_eq!(got.len(), k.len());
            for other in &keys {
                assert_eq!(got.eq(other), other == k, "{other:?} vs {k:?}");
            }
        }
    }

    #[test]
    fn similar_keys_are_stored_small_and_never_move() {
        let mut s = KeyStore::default();
        let mut base = BaseSlot::default();
        let mut stored = Vec::new();
        let mut plain = 0;
        for i in 0..20_000 {
            let k = format!(
                "h_bucket{{host=\"web-{}.example.com\",le=\"{}\",method=\"GET\",pod=\"p-7d9f8c6b5-x2x9q\"}}",
                i / 14,
                i % 14
            );
            plain += k.len();
            stored.push((s.insert(k.as_bytes(), &mut base), k));
        }
        for (a, k) in &stored {
            assert!(s.get(*a).eq(k.as_bytes()), "{k}");
        }
        assert!(s.bytes() * 2 < plain, "{} of {plain}", s.bytes());
    }

    #[test]
    fn a_key_larger_than_a_block_gets_its_own() {
        let mut s = KeyStore::default();
        let mut base = BaseSlot::default();
        let big = format!("big{{v=\"{}\"}}", "x".repeat(3 * BLOCK));
        let a = s.insert(b"small{a=\"1\"}", &mut base);
        let b = s.insert(big.as_bytes(), &mut base);
        let c = s.insert(b"small{a=\"2\"}", &mut base);
        assert!(s.get(a).eq(b"small{a=\"1\"}"));
        assert!(s.get(b).eq(big.as_bytes()));
        assert!(s.get(c).eq(b"small{a=\"2\"}"));
    }

    #[test]
    fn varints_round_trip() {
        for n in [0, 1, 127, 128, 300, 1 << 20, u32::MAX] {
            let mut v = Vec::new();
            push_varint(&mut v, n);
            let mut r = &v[..];
            assert_eq!(read_varint(&mut r), n);
            assert!(r.is_empty());
        }
    }

    #[test]
    fn common_prefix_and_suffix_match_a_byte_loop() {
        let byte_prefix = |a: &[u8], b: &[u8]| a.iter().zip(b).take_while(|(x, y)| x == y).count();
        let byte_suffix = |a: &[u8], b: &[u8]| {
            let (mut a, mut b) = (a.to_vec(), b.to_vec());
            a.reverse();
            b.reverse();
            byte_prefix(&a, &b)
        };
        let base = b"controller_class=\"k8s.io/ingress-nginx\",host=\"api-1.acme.io\",le=\"0.25\"";
        for len in 0..base.len() {
            for at in 0..=len {
                let a = &base[..len];
                let mut b = base[..len].to_vec();
                if at < len {
                    b[at] ^= 0x20;
                }
                for (x, y) in [(a, &b[..]), (a, &base[..]), (&base[len / 2..], a)] {
                    assert_eq!(common_prefix(x, y), byte_prefix(x, y), "{x:?} {y:?}");
                    assert_eq!(common_suffix(x, y), byte_suffix(x, y), "{x:?} {y:?}");
                }
            }
        }
    }
}
