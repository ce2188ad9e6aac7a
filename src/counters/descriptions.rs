//! The rendered series of carried outputs, kept compactly.
//!
//! A carried output must be servable while none of its inputs is seen, so the state keeps its
//! rendered series (`name{labels}`). On an ingress-shaped payload where `labeldrop: path`
//! halves the series, nearly every output is carried: held as one boxed copy each, these
//! texts (~230 bytes, plus two allocations) were about half of the whole counter state
//! (115 MB of 231 MB for 426k outputs).
//!
//! The texts live in a [`KeyStore`], the aggregator's compact key storage: a metric name is
//! stored once, and a series as its difference to an earlier one of its family (see
//! [`crate::key_store`]). A description is its family and where its text is: 12 bytes. On the
//! 2x ingress payload (425k descriptions) a store of its own, which kept whole names and 28
//! bytes of bookkeeping per text, held 33.8 MB; with this one the whole counter state went
//! from 97.8 MB to 82.4 MB (`metric_gate_carry_state_bytes`).
//!
//! Removing a description only marks it: its bytes may be what later ones are stored relative
//! to. The store is rebuilt by its owner ([`super::CounterState`]) when removed descriptions are
//! the majority.

use crate::key_store::{Addr, BaseSlot, KeyStore};

/// No family: the entry was removed.
const NONE: u32 = u32::MAX;

/// The id of a stored description.
pub(super) type DescId = u32;

/// One description: its family and where its text is. 12 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    /// The family (an index into the state's family table); [`NONE`] once removed.
    family: u32,
    at: Addr,
}

/// Descriptions by [`DescId`]. See the module documentation.
#[derive(Debug, Clone, Default)]
pub(super) struct Descriptions {
    entries: Vec<Entry>,
    texts: KeyStore,
    /// Per family id: what its next text is stored relative to.
    bases: Vec<BaseSlot>,
    /// Entries not removed.
    live: usize,
}

impl Descriptions {
    /// Stores `series` of family `family`; returns its id.
    pub(super) fn insert(&mut self, family: u32, series: &[u8]) -> DescId {
        let id = self.entries.len() as u32;
        let f = family as usize;
        if self.bases.len() <= f {
            self.bases.resize(f + 1, BaseSlot::default());
        }
        let at = self.texts.insert(series, &mut self.bases[f]);
        self.entries.push(Entry { family, at });
        self.live += 1;
        id
    }

    /// Marks `id` removed (its bytes stay until the owner rebuilds the store).
    pub(super) fn remove(&mut self, id: DescId) {
        let e = &mut self.entries[id as usize];
        if e.family != NONE {
            e.family = NONE;
            self.live -= 1;
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
        // The next text of a family starts a difference chain of its own.
        self.bases.clear();
    }

    /// The families of the descriptions stored, once per description.
    pub(super) fn families(&self) -> impl Iterator<Item = u32> + '_ {
        self.entries.iter().map(|e| e.family).filter(|&f| f != NONE)
    }

    /// Appends the text of `id` to `out`.
    pub(super) fn write_to(&self, id: DescId, out: &mut Vec<u8>) {
        self.texts.get(self.entries[id as usize].at).write_to(out);
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

    /// Bytes held: entries, family slots and the texts' store (capacity).
    pub(super) fn bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<Entry>()
            + self.bases.capacity() * std::mem::size_of::<BaseSlot>()
            + self.texts.bytes()
    }
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
            vec![b'q'; 300 << 10],
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
        d.remove(ids[0]);
        d.remove(ids[0]);
        assert_eq!(d.live, texts.len() - 1);
        // A removed text still serves the ones stored relative to it.
        assert_eq!(&d.get(ids[1]), &texts[1]);
        assert_eq!(d.families().count(), texts.len() - 1);
        d.remap_families(&[5, 7]);
        assert_eq!(d.family(ids[1]), 5);
        assert_eq!(d.family(ids[8]), 7);
        // Families renumbered: later texts of a family are stored and read back as well.
        let more = b"a_bucket{host=\"y\",le=\"0.1\",status=\"200\"}";
        let id = d.insert(5, more);
        assert_eq!(d.get(id), more);
        assert_eq!(&d.get(ids[2]), &texts[2]);
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
        // The name once, per host one label block whole and eight as a few bytes each, plus
        // 12 bytes of bookkeeping per description: under a quarter of the text (a store that
        // kept whole names and 28 bytes per description held two fifths).
        let held = d.bytes();
        assert!(
            held * 4 < total,
            "{held} bytes held for {total} bytes of text"
        );
    }
}
