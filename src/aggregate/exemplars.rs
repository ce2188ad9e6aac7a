//! Exemplars of the current scrape, beside the series they belong to.
//!
//! Exemplars are rare (a few series of a few families carry one), so they are kept in a side
//! table keyed by slot rather than in every series record, and only OpenMetrics output reads
//! them ([`Aggregator::render_openmetrics`]); text 0.0.4 has none. A series that several
//! inputs fall into (summed samples, or targets merged) keeps one exemplar: the newest by its
//! timestamp, an exemplar with a timestamp counting as newer than one without, the first one
//! on a tie. An exemplar still shows a real event of that series: the observation of a
//! bucket, the increment of a counter.
//!
//! The table holds one scrape: [`Aggregator::begin_scrape`] and [`Aggregator::clear`] empty it.

use hashbrown::HashMap;

use crate::exposition::Exemplar;

use super::Aggregator;

/// One kept exemplar: its text in [`Exemplars::text`].
#[derive(Debug, Clone, Copy)]
struct Kept {
    start: usize,
    len: usize,
    timestamp: Option<f64>,
}

/// The exemplars of the current scrape, by slot.
#[derive(Debug, Clone, Default)]
pub(super) struct Exemplars {
    by_slot: HashMap<u32, Kept>,
    /// The texts, one after the other (a replaced exemplar's text stays until the next scrape).
    text: String,
}

impl Exemplars {
    /// Forgets every exemplar, keeping the storage.
    pub(super) fn clear(&mut self) {
        self.by_slot.clear();
        self.text.clear();
    }

    /// Bytes allocated: the table by slot and the texts.
    pub(super) fn bytes(&self) -> usize {
        self.by_slot.capacity() * (std::mem::size_of::<(u32, Kept)>() + 1) + self.text.capacity()
    }

    /// Keeps `text` (timestamp `timestamp`) for `slot` unless the slot has a newer one.
    pub(super) fn offer(&mut self, slot: u32, text: &str, timestamp: Option<f64>) {
        if let Some(kept) = self.by_slot.get(&slot) {
            let newer = match (timestamp, kept.timestamp) {
                (Some(t), Some(k)) => t > k,
                (Some(_), None) => true,
                (None, _) => false,
            };
            if !newer {
                return;
            }
        }
        let start = self.text.len();
        self.text.push_str(text);
        self.by_slot.insert(
            slot,
            Kept {
                start,
                len: text.len(),
                timestamp,
            },
        );
    }

    /// The exemplar of `slot`: its text and timestamp.
    pub(super) fn get(&self, slot: u32) -> Option<(&str, Option<f64>)> {
        let k = self.by_slot.get(&slot)?;
        Some((self.text.get(k.start..k.start + k.len)?, k.timestamp))
    }

    /// True when no exemplar is held.
    pub(super) fn is_empty(&self) -> bool {
        self.by_slot.is_empty()
    }
}

impl Aggregator {
    /// Attaches `exemplar` to the series at `slot` (from [`Aggregator::add`]) for the current
    /// scrape, unless that series already has a newer one (see the module documentation).
    pub fn add_exemplar(&mut self, slot: u32, exemplar: &Exemplar<'_>) {
        if (slot as usize) < self.series.len() {
            self.exemplars
                .offer(slot, exemplar.text, exemplar.timestamp);
        }
    }

    /// The exemplar text (`{labels} value [timestamp]`) of the series at `slot` in the current
    /// scrape, if it has one.
    pub fn exemplar(&self, slot: u32) -> Option<&str> {
        self.exemplars.get(slot).map(|(text, _)| text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_exemplar_wins() {
        let mut e = Exemplars::default();
        e.offer(1, "{a=\"first\"} 1", None);
        e.offer(1, "{a=\"second\"} 1", None);
        assert_eq!(e.get(1), Some(("{a=\"first\"} 1", None)));
        e.offer(1, "{a=\"t5\"} 1 5", Some(5.0));
        e.offer(1, "{a=\"t4\"} 1 4", Some(4.0));
        e.offer(1, "{a=\"none\"} 1", None);
        assert_eq!(e.get(1), Some(("{a=\"t5\"} 1 5", Some(5.0))));
        e.offer(1, "{a=\"t6\"} 1 6", Some(6.0));
        assert_eq!(e.get(1).map(|x| x.0), Some("{a=\"t6\"} 1 6"));
        assert_eq!(e.get(2), None);
        e.clear();
        assert!(e.is_empty());
    }
}
