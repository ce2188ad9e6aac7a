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
            self.set_meta(name, meta.help, meta.typ, meta.unit);
        }
    }

    /// True when `next`, the aggregate of the input that follows those of `earlier` (in input
    /// order, each holding families no other holds), can stay an aggregate of its own
    /// ([`Aggregator::follow`]): every series of `next` that an earlier aggregate holds is in
    /// a family that same aggregate holds (where `follow` moves it). Otherwise one pass would
    /// have summed it into another family's series, and only
    /// [`Aggregator::append_following`] gives what one pass gives. One probe per series with
    /// its stored hash (all aggregates hash with the same seed); a key is rebuilt only when a
    /// hash matches.
    pub fn can_follow(earlier: &[&Aggregator], next: &Aggregator) -> bool {
        let mut key = Vec::new();
        next.families.iter().all(|f| {
            let owner = earlier.iter().position(|a| a.find_family(&f.name).is_ok());
            f.series.iter().filter(|&&id| next.is_live(id)).all(|&id| {
                let s = &next.series[id as usize];
                let probe = TableEntry::new(id, s.hash);
                earlier.iter().enumerate().all(|(j, a)| {
                    Some(j) == owner
                        || !a.table.iter_hash(probe.table_hash()).any(|e| {
                            let mine = &a.series[e.slot as usize];
                            e.hash == probe.hash && mine.hash == s.hash && {
                                key.clear();
                                next.keys.get(s.key).write_to(&mut key);
                                a.keys.get(mine.key).eq(&key)
                            }
                        })
                })
            })
        })
    }

    /// Makes `next` (see [`Aggregator::can_follow`], which must be true) an aggregate that,
    /// rendered after `earlier`, writes what one aggregate of all their inputs would: the
    /// series of each family an earlier aggregate holds move into it (appended, or summed into
    /// the series it holds, as in [`Aggregator::append_following`]) and are no longer served
    /// by `next`; metadata `next` has for those families goes to them (the first of each kind
    /// wins); and the families left in `next` take the metadata the earlier aggregates kept
    /// pending for them (a HELP in one input, the family's first series in the next). The
    /// counters of all of them add up to one pass's.
    pub fn follow(earlier: &mut [&mut Aggregator], next: &mut Aggregator) {
        for fi in 0..next.families.len() {
            let name = next.families[fi].name.as_str();
            if let Some(a) = earlier.iter_mut().find(|a| a.find_family(name).is_ok()) {
                a.take_family(next, fi);
            }
        }
        for (name, meta) in next.pending.iter() {
            if let Some(a) = earlier.iter_mut().find(|a| a.find_family(name).is_ok()) {
                a.set_meta(name, meta.help, meta.typ, meta.unit);
            }
        }
        // Nearest first, so that the first input's metadata is written last and wins.
        for a in earlier.iter().rev() {
            for (name, meta) in a.pending.iter() {
                let Ok(id) = next.find_family(name) else {
                    continue;
                };
                let f = &mut next.families[id as usize];
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
    }

    /// Records metadata the first of each kind wins (see [`Aggregator::set_help`]).
    fn set_meta(
        &mut self,
        name: &str,
        help: Option<&str>,
        typ: Option<(&'static str, Option<&'static str>)>,
        unit: Option<&str>,
    ) {
        if let Some(help) = help {
            self.set_help(name, help);
        }
        if let Some(words) = typ {
            match self.family_meta(name) {
                Ok(f) => {
                    if f.typ.is_none() {
                        (f.typ, f.om_type) = (Some(words.0), words.1);
                    }
                }
                Err(hash) => self.pending.set_type(hash, name, words),
            }
        }
        if let Some(unit) = unit {
            self.set_unit(name, unit);
        }
    }

    /// Moves the live series of family `fi` of `next` (a family `self` holds) into `self`, as
    /// one pass over `self`'s input and then `next`'s would have added them; they are no longer
    /// live in `next`. The samples stay counted in `next`; `self` counts, as one pass would,
    /// the first sample of `next` of each series it already held as summed.
    fn take_family(&mut self, next: &mut Aggregator, fi: usize) {
        let before = self.stats;
        let mut key = Vec::new();
        let f = &next.families[fi];
        let epoch = next.epoch;
        self.set_meta(
            &f.name,
            (f.has_help && f.meta_epoch == epoch).then_some(f.help.as_str()),
            f.typ
                .filter(|_| f.meta_epoch == epoch)
                .map(|t| (t, f.om_type)),
            (f.has_unit && f.meta_epoch == epoch).then_some(f.unit.as_str()),
        );
        let mut summed = 0u64;
        for &id in &f.series {
            if !next.is_live(id) {
                continue;
            }
            let (part, action) = next.as_part(id, &mut key);
            let held = self.series.len();
            if let Ok(slot) = self.slot_for(&f.name, &key, || Ok(()), || action) {
                summed += u64::from(self.series.len() == held);
                self.contribute(slot, part);
                if let Some((text, ts)) = next.exemplars.get(id) {
                    self.exemplars.offer(slot, text, ts);
                }
            }
        }
        self.stats = before;
        self.stats.samples_merged += summed;
        let gone = epoch.wrapping_sub(1);
        for &id in &next.families[fi].series {
            let s = &mut next.series[id as usize];
            if s.epoch != epoch {
                continue;
            }
            next.live -= 1;
            next.unserved -= usize::from(s.count > 1 && s.action.hidden_when_combined());
            s.epoch = gone;
        }
        next.uncommon_buckets.take();
    }

    /// [`Aggregator::merge_from`], with each series of `other` summed into the series whose
    /// key `merge_key` writes into its buffer instead of its own key, when it writes one (then
    /// true; see [`Aggregator::merge_targets`]). A merged series keeps the counter identity of
    /// its source.
    pub(super) fn merge_with(&mut self, other: &Aggregator, merge_key: &mut MergeKey<'_>) {
        let before = self.stats;
        let mut buf = Vec::new();
        let mut key = Vec::new();
        // Metadata first, without creating families: a family is created by its first series
        // created below, and takes its metadata from what is pending then.
        for f in &other.families {
            if f.meta_epoch != other.epoch || !f.series.iter().any(|&id| other.is_live(id)) {
                continue;
            }
            if f.has_help {
                self.set_help(&f.name, &f.help);
            }
            if let Some(typ) = f.om_type.or(f.typ) {
                self.set_type(&f.name, typ);
            }
            if f.has_unit {
                self.set_unit(&f.name, &f.unit);
            }
        }
        // Series in the order `other` created them, which is the order their inputs first
        // came in: a family `self` does not hold is created where one pass would create it,
        // by the first of its series that `self` does not hold either. (Family by family, a
        // family whose first series sum into another family's, a `_count` gauge into a
        // histogram's `_count`, would be created before families one pass puts first.)
        for (id, &fi) in other.family_of.iter().enumerate() {
            let id = id as u32;
            if !other.is_live(id) {
                continue;
            }
            let f = &other.families[fi as usize];
            // Merged series were checked when their source aggregate created them, and keep
            // the action it gave them.
            let (part, action) = other.as_part(id, &mut key);
            // The counter identity of a respelled key is its source's: both are computed with
            // the bound in canonical form (`float_spelling::output_of`).
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
        // The counters tell what happened to samples: the sources' counts, not the merge's.
        self.stats = AggregateStats {
            samples_in: before.samples_in + other.stats.samples_in,
            samples_merged: before.samples_merged + other.stats.samples_merged,
            dropped_nameless: before.dropped_nameless + other.stats.dropped_nameless,
            dropped_invalid: before.dropped_invalid + other.stats.dropped_invalid,
        };
    }
}

impl Aggregator {
    /// The series at `id` as a contribution to another aggregate (its value or sum, the value
    /// text it kept, its timestamp and input count), with the action it was created with; its
    /// key is written into `key` (cleared first).
    fn as_part<'a>(&'a self, id: u32, key: &mut Vec<u8>) -> (Part<'a>, Action) {
        let s = &self.series[id as usize];
        key.clear();
        self.keys.get(s.key).write_to(key);
        let part = Part {
            value: s.value,
            comp: s.comp,
            text: self
                .raw_text(s)
                .and_then(|r| std::str::from_utf8(r).ok())
                .unwrap_or(""),
            timestamp_ms: s.timestamp_ms,
            any_now: s.any_now,
            count: s.count,
        };
        (part, s.action)
    }
}
