//! The rendered series of carried outputs, kept compactly.
//!
//! A carried output must be servable while none of its inputs is seen, so the state keeps its
//! rendered series (`name{labels}`). On an ingress-shaped payload where `labeldrop: path`
//! halves the series, nearly every output is carried: held as one boxed copy each, these
//! texts (~230 bytes, plus two allocations) were about half of the whole counter state
//! (115 MB of 231 MB for 426k outputs).
//!
//! Consecutive descriptions are mostly series of one family that differ in a label value or
//! two, so a description is stored as its difference to a *base*, an earlier description kept
//! whole: the length of the prefix and of the suffix it shares with the base, and the bytes in
//! between. A base is never itself a difference, so reading a description takes at most two
//! copies. Bytes live in fixed-size blocks that never move (no reallocation copy, no 2x peak).
//!
//! Removing a description only marks it: its bytes may be a base of others. The store is
//! rebuilt by its owner ([`super::CounterState`]) when removed descriptions are the majority.

/// Bytes per block; a description longer than this gets a block of its own size.
const BLOCK: usize = 256 << 10;

/// A description that differs from its base in more bytes than this is stored whole and
/// becomes the base of the ones after it (a family's series share most of their text, so a
/// large difference means another family or a distant part of this one).
const MAX_DIFF: usize = 32;

/// No entry (as a base: the entry is stored whole).
const NONE: u32 = u32::MAX;

/// The id of a stored description.
pub(super) type DescId = u32;

/// One description: its family and where its text is. 24 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    /// The family (an index into the state's family table); [`NONE`] once removed.
    family: u32,
    /// The base it is a difference to, or [`NONE`] when stored whole.
    base: u32,
    /// Bytes shared with the start of the base.
    prefix: u32,
    /// Bytes shared with the end of the base.
    suffix: u32,
    /// The block and offset of its own bytes (the middle, or the whole text).
    block: u32,
    offset: u32,
}

/// Descriptions by [`DescId`]. See the module documentation.
#[derive(Debug, Clone, Default)]
pub(super) struct Descriptions {
    entries: Vec<Entry>,
    /// Length of each entry's own bytes (kept apart so that [`Entry`] stays 24 bytes).
    own_lens: Vec<u32>,
    blocks: Vec<Vec<u8>>,
    /// The entry new descriptions are compared with.
    base: Option<DescId>,
    /// Entries not removed.
    live: usize,
    /// Own bytes of removed entries.
    garbage: usize,
}

impl Descriptions {
    /// Stores `series` of family `family`; returns its id.
    pub(super) fn insert(&mut self, family: u32, series: &[u8]) -> DescId {
        let id = self.entries.len() as u32;
        let diff = self.base.and_then(|b| {
            let base = self.entries[b as usize];
            if base.family != family {
                return None;
            }
            let text = self.own(b);
            let prefix = common_prefix(text, series);
            let suffix = common_suffix(&text[prefix..], &series[prefix..]);
            let middle = series.len() - prefix - suffix;
            (middle <= MAX_DIFF).then_some((b, prefix, suffix))
        });
        let (base, prefix, suffix) = diff.unwrap_or((NONE, 0, 0));
        let own = &series[prefix..series.len() - suffix];
        let (block, offset) = self.place(own);
        self.entries.push(Entry {
            family,
            base,
            prefix: prefix as u32,
            suffix: suffix as u32,
            block,
            offset,
        });
        self.own_lens.push(own.len() as u32);
        if base == NONE {
            self.base = Some(id);
        }
        self.live += 1;
        id
    }

    /// Copies `own` into the last block, or a new one when it does not fit.
    fn place(&mut self, own: &[u8]) -> (u32, u32) {
        let fits = self
            .blocks
            .last()
            .is_some_and(|b| b.capacity() - b.len() >= own.len());
        if !fits {
            self.blocks.push(Vec::with_capacity(BLOCK.max(own.len())));
        }
        let block = self.blocks.len() - 1;
        let b = &mut self.blocks[block];
        let offset = b.len();
        b.extend_from_slice(own);
        (block as u32, offset as u32)
    }

    /// The entry's own bytes.
    fn own(&self, id: DescId) -> &[u8] {
        let e = &self.entries[id as usize];
        let start = e.offset as usize;
        &self.blocks[e.block as usize][start..start + self.own_lens[id as usize] as usize]
    }

    /// Marks `id` removed (its bytes stay until the owner rebuilds the store).
    pub(super) fn remove(&mut self, id: DescId) {
        let e = &mut self.entries[id as usize];
        if e.family != NONE {
            e.family = NONE;
            self.live -= 1;
            self.garbage += self.own_lens[id as usize] as usize;
        }
    }

    /// The family of `id`.
    pub(super) fn family(&self, id: DescId) -> u32 {
        self.entries[id as usize].family
    }

    /// Renumbers the families of the stored descriptions: `remap[old]` is the new id.
    pub(super) fn remap_families(&mut self, remap: &[u32]) {
        for e in self.entries.iter_mut().filter(|e| e.family != NONE) {
            e.family = remap.get(e.family as usize).copied().unwrap_or(NONE);
        }
    }

    /// The families of the descriptions stored, once per description.
    pub(super) fn families(&self) -> impl Iterator<Item = u32> + '_ {
        self.entries.iter().map(|e| e.family).filter(|&f| f != NONE)
    }

    /// Appends the text of `id` to `out`.
    pub(super) fn write_to(&self, id: DescId, out: &mut Vec<u8>) {
        let e = self.entries[id as usize];
        if e.base == NONE {
            out.extend_from_slice(self.own(id));
            return;
        }
        let base = self.own(e.base);
        out.extend_from_slice(&base[..e.prefix as usize]);
        out.extend_from_slice(self.own(id));
        out.extend_from_slice(&base[base.len() - e.suffix as usize..]);
    }

    /// The text of `id`.
    pub(super) fn get(&self, id: DescId) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_to(id, &mut out);
        out
    }

    /// True when removed descriptions hold more than the live ones would need: time for the
    /// owner to rebuild the store from the live descriptions.
    pub(super) fn wants_rebuild(&self) -> bool {
        let removed = self.entries.len() - self.live;
        removed > 1024 && removed > self.live
    }

    /// Bytes held: entries, lengths and blocks (capacity).
    pub(super) fn bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<Entry>()
            + self.own_lens.capacity() * std::mem::size_of::<u32>()
            + self.blocks.iter().map(Vec::capacity).sum::<usize>()
            + self.blocks.capacity() * std::mem::size_of::<Vec<u8>>()
    }

    #[cfg(test)]
    pub(super) fn garbage(&self) -> usize {
        self.garbage
    }
}

fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

fn common_suffix(a: &[u8], b: &[u8]) -> usize {
    a.iter()
        .rev()
        .zip(b.iter().rev())
        .take_while(|(x, y)| x == y)
        .count()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_come_back_exactly() {
        let mut d = Descriptions::default();
        let texts: Vec<Vec<u8>> = vec![
            b"a_bucket{host=\"x\",le=\"0.1\",status=\"200\"}".to_vec(),
            b"a_bucket{host=\"x\",le=\"0.25\",status=\"200\"}".to_vec(),
            b"a_bucket{host=\"x\",le=\"+Inf\",status=\"200\"}".to_vec(),
            b"a_bucket{host=\"x\",le=\"0.1\",status=\"200\"}x".to_vec(),
            b"a_bucket".to_vec(),
            b"".to_vec(),
            b"b_total{z=\"1\"}".to_vec(),
            vec![b'q'; BLOCK + 10],
            b"b_total{z=\"2\"}".to_vec(),
        ];
        let families = [0, 0, 0, 0, 0, 0, 1, 1, 1];
        let ids: Vec<_> = texts
            .iter()
            .zip(families)
            .map(|(t, f)| d.insert(f, t))
            .collect();
        for ((id, t), f) in ids.iter().zip(&texts).zip(families) {
            assert_eq!(&d.get(*id), t);
            assert_eq!(d.family(*id), f);
        }
        // The second is stored as its difference to the first: only `25` (and the quote).
        assert!(d.own_lens[1] <= 3, "{}", d.own_lens[1]);
        // Another family never shares a base.
        assert_eq!(d.entries[6].base, NONE);
        d.remove(ids[0]);
        d.remove(ids[0]);
        assert_eq!(d.live, texts.len() - 1);
        // A removed base still serves the descriptions that refer to it.
        assert_eq!(&d.get(ids[1]), &texts[1]);
        assert_eq!(d.garbage(), texts[0].len());
        assert_eq!(d.families().count(), texts.len() - 1);
        d.remap_families(&[5, 7]);
        assert_eq!(d.family(ids[1]), 5);
        assert_eq!(d.family(ids[8]), 7);
    }

    #[test]
    fn a_family_costs_a_few_bytes_per_series() {
        let mut d = Descriptions::default();
        let mut total = 0;
        let mut ids = Vec::new();
        for host in 0..1000 {
            for le in [
                "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "+Inf",
            ] {
                let t = format!(
                    "nginx_ingress_controller_request_duration_seconds_bucket{{controller_class=\"k8s.io/ingress-nginx\",controller_namespace=\"ingress-nginx\",host=\"h{host}.example\",ingress=\"ing-{host}\",le=\"{le}\",method=\"GET\",namespace=\"team\",service=\"svc-{host}\",status=\"200\"}}"
                );
                total += t.len();
                ids.push((d.insert(3, t.as_bytes()), t));
            }
        }
        for (id, t) in &ids {
            assert_eq!(d.get(*id), t.as_bytes());
        }
        // Per host, one description whole and eight as a few bytes each, plus 28 bytes of
        // bookkeeping per description: well under half of the text.
        let held = d.bytes();
        assert!(
            held * 5 < total * 2,
            "{held} bytes held for {total} bytes of text"
        );
    }
}
