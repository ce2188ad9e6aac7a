//! Fan-out: the aggregates of several targets summed into one. Each series of a source keeps
//! the action and counts its source gave it; the family metadata already set wins.

use super::*;

impl Aggregator {
    /// Sums every live series of `other` into `self` (fan-out: one aggregate per target, merged
    /// once all targets answered). Family metadata already set in `self` wins. Keys are copied
    /// only for series `self` does not have yet.
    pub fn merge_from(&mut self, other: &Aggregator) {
        self.merge_with(other, &mut |_, _, _| false);
    }

    /// Appends `next`, the aggregate of the input that directly follows this one's (the next
    /// byte range of one file, read by another thread), so that the result is what one pass
    /// over both inputs gives: families and series in first-seen order (the new ones of `next`
    /// after all of `self`'s, in `next`'s order), the first HELP, TYPE and UNIT of each family
    /// (including metadata of families `next` holds no series of, which `merge_from` leaves
    /// out), and the counters as one pass counts them: a series both hold received its first
    /// sample of `next` as a summed one.
    ///
    /// Sums over both inputs are the two partial compensated sums merged ([`Sum::merge`]):
    /// exact, so equal to one pass, whenever the inputs' sums are exact (integers below 2^53,
    /// and dyadic fractions that fit), and otherwise within the compensated sum's error of it.
    pub fn append_following(&mut self, next: &Aggregator) {
        let before = self.series.len();
        self.merge_from(next);
        let created = self.series.len() - before;
        self.stats.samples_merged += next.live.saturating_sub(created) as u64;
        for (name, meta) in next.pending.iter() {
            if let Some(help) = meta.help {
                self.set_help(name, help);
            }
            if let Some(words) = meta.typ {
                match self.family_meta(name) {
                    Ok(f) => {
                        if f.typ.is_none() {
                            (f.typ, f.om_type) = (Some(words.0), words.1);
                        }
                    }
                    Err(hash) => self.pending.set_type(hash, name, words),
                }
            }
            if let Some(unit) = meta.unit {
                self.set_unit(name, unit);
            }
        }
    }

    /// True when rendering `self` and then `next` (the aggregate of the input right after this
    /// one's) writes what one aggregate of both inputs would: `next` holds no family `self`
    /// holds, no series `self` holds (a series stays in the family it was first seen in), and
    /// no metadata pending for a family `self` holds (one pass would have given it to that
    /// family). Each series of `next` costs one probe with its stored hash (all aggregates hash
    /// with the same seed), no key is rebuilt unless the hashes match.
    pub fn can_precede(&self, next: &Aggregator) -> bool {
        let families = next.families.iter().map(|f| f.name.as_str());
        let pending = next.pending.iter().map(|(name, _)| name);
        if families
            .chain(pending)
            .any(|name| self.find_family(name).is_ok())
        {
            return false;
        }
        let mut key = Vec::new();
        !next
            .series
            .iter()
            .filter(|s| s.epoch == next.epoch)
            .any(|s| {
                self.table.iter_hash(s.hash).any(|&i| {
                    let mine = &self.series[i as usize];
                    mine.hash == s.hash && {
                        // Rare: the same hash; compare the keys.
                        key.clear();
                        next.keys.get(s.key).write_to(&mut key);
                        self.keys.get(mine.key).eq(&key)
                    }
                })
            })
    }

    /// Gives the families of `self` the metadata that `earlier` kept pending for them: one pass
    /// over `earlier`'s input and then this one's would have given it to them, as the first of
    /// its kind. For an `earlier` that [can precede](Aggregator::can_precede) `self`; with
    /// several earlier aggregates, call it from the nearest to the first, so the first wins.
    pub fn adopt_pending_from(&mut self, earlier: &Aggregator) {
        for (name, meta) in earlier.pending.iter() {
            let Ok(id) = self.find_family(name) else {
                continue;
            };
            let f = &mut self.families[id as usize];
            if let Some(help) = meta.help {
                f.has_help = true;
                f.help.clear();
                f.help.push_str(help);
            }
            if let Some((typ, om_type)) = meta.typ {
                (f.typ, f.om_type) = (Some(typ), om_type);
            }
            if let Some(unit) = meta.unit {
                f.has_unit = true;
                f.unit.clear();
                f.unit.push_str(unit);
            }
        }
    }

    /// [`Aggregator::merge_from`], with each series of `other` summed into the series whose
    /// key `merge_key` writes into its buffer instead of its own key, when it writes one (then
    /// true; see [`Aggregator::merge_targets`]). A merged series keeps the counter identity of
    /// its source.
    pub(super) fn merge_with(&mut self, other: &Aggregator, merge_key: &mut MergeKey<'_>) {
        let before = self.stats;
        let mut buf = Vec::new();
        let mut key = Vec::new();
        for f in &other.families {
            if !f.series.iter().any(|&id| other.is_live(id)) {
                continue;
            }
            // It gets a series below: create it now, so its metadata need not wait (pending).
            self.family_id(&f.name);
            if f.has_help && f.meta_epoch == other.epoch {
                self.set_help(&f.name, &f.help);
            }
            if let (Some(typ), true) = (f.om_type.or(f.typ), f.meta_epoch == other.epoch) {
                self.set_type(&f.name, typ);
            }
            if f.has_unit && f.meta_epoch == other.epoch {
                self.set_unit(&f.name, &f.unit);
            }
            for &id in &f.series {
                if !other.is_live(id) {
                    continue;
                }
                let s = &other.series[id as usize];
                key.clear();
                other.keys.get(s.key).write_to(&mut key);
                let part = Part {
                    value: s.value,
                    comp: s.comp,
                    text: other
                        .raw_text(s)
                        .and_then(|r| std::str::from_utf8(r).ok())
                        .unwrap_or(""),
                    timestamp_ms: s.timestamp_ms,
                    any_now: s.any_now,
                    count: s.count,
                };
                // Merged series were checked when their source aggregate created them, and
                // keep the action it gave them.
                let action = s.action;
                // The counter identity of a respelled key is its source's: both are computed
                // with the bound in canonical form (`float_spelling::output_of`).
                let key = if merge_key(f, &key, &mut buf) {
                    &buf
                } else {
                    &key
                };
                if let Ok(slot) = self.slot_for(&f.name, key, || Ok(()), || action) {
                    self.contribute(slot, part);
                    if let Some((text, ts)) = other.exemplars.get(id) {
                        self.exemplars.offer(slot, text, ts);
                    }
                }
            }
        }
        // The counters tell what happened to samples: the sources' counts, not the merge's.
        self.stats = AggregateStats {
            samples_in: before.samples_in + other.stats.samples_in,
            samples_merged: before.samples_merged + other.stats.samples_merged,
            dropped_nameless: before.dropped_nameless + other.stats.dropped_nameless,
            dropped_invalid: before.dropped_invalid + other.stats.dropped_invalid,
        };
    }
}
