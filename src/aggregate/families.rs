//! The families of the output: found by name (the last one used first), created by their
//! first series with the metadata waiting for them in this scrape ([`super::pending`]), given
//! HELP, TYPE and UNIT, and dropped once a compaction leaves them without series.

use super::*;

impl Aggregator {
    /// The family named `name`, or the hash to create it with.
    pub(super) fn find_family(&self, name: &str) -> Result<u32, u64> {
        if let Some(id) = self.last_family {
            if self.families[id as usize].name == name {
                return Ok(id);
            }
        }
        let hash = self.hasher.hash_one(name);
        let families = &self.families;
        self.family_table
            .find(hash, |&i| families[i as usize].name == name)
            .copied()
            .ok_or(hash)
    }

    /// The family named `name`, created (with the metadata pending for it in this scrape)
    /// when it is not held: only a new series creates a family.
    pub(super) fn family_id(&mut self, name: &str) -> u32 {
        let id = match self.find_family(name) {
            Ok(id) => id,
            Err(hash) => self.new_family(hash, name),
        };
        self.last_family = Some(id);
        id
    }

    #[cold]
    fn new_family(&mut self, hash: u64, name: &str) -> u32 {
        let id = self.families.len() as u32;
        let mut f = Family {
            name: name.to_owned(),
            help: String::new(),
            has_help: false,
            typ: None,
            om_type: None,
            unit: String::new(),
            has_unit: false,
            meta_epoch: self.epoch,
            series: Vec::new(),
            key_base: BaseSlot::default(),
        };
        let meta = (!self.pending.is_empty())
            .then(|| self.pending.get(hash, name))
            .flatten();
        if let Some(meta) = meta {
            if let Some(help) = meta.help {
                f.has_help = true;
                f.help.push_str(help);
            }
            if let Some((typ, om_type)) = meta.typ {
                f.typ = Some(typ);
                f.om_type = om_type;
            }
            if let Some(unit) = meta.unit {
                f.has_unit = true;
                f.unit.push_str(unit);
            }
        }
        self.families.push(f);
        let families = &self.families;
        let hasher = &self.hasher;
        self.family_table.insert_unique(hash, id, |&i| {
            hasher.hash_one(families[i as usize].name.as_str())
        });
        id
    }

    /// The family's metadata, reset when it belongs to an earlier scrape (an upstream may
    /// change its HELP between scrapes); the hash of its name when it is not held.
    pub(super) fn family_meta(&mut self, family: &str) -> Result<&mut Family, u64> {
        let id = self.find_family(family)? as usize;
        self.last_family = Some(id as u32);
        let epoch = self.epoch;
        let f = &mut self.families[id];
        if f.meta_epoch != epoch {
            f.meta_epoch = epoch;
            f.has_help = false;
            f.typ = None;
            f.om_type = None;
            f.has_unit = false;
        }
        Ok(f)
    }

    /// Records a family's HELP text; the first one of a scrape wins, as a family has one HELP.
    /// A family not held yet gets it when its first series is created in this scrape.
    pub fn set_help(&mut self, family: &str, text: &str) {
        match self.family_meta(family) {
            Ok(f) => {
                if !f.has_help {
                    f.has_help = true;
                    f.help.clear();
                    f.help.push_str(text);
                }
            }
            Err(hash) => self.pending.set_help(hash, family, text),
        }
    }

    /// Records a family's TYPE; the first one of a scrape wins. OpenMetrics-only types are
    /// written as `untyped` in text 0.0.4 ([`Aggregator::render`]) and as they are in
    /// OpenMetrics ([`Aggregator::render_openmetrics`]).
    pub fn set_type(&mut self, family: &str, typ: &str) {
        let words = type_words(typ);
        match self.family_meta(family) {
            Ok(f) => {
                if f.typ.is_none() {
                    (f.typ, f.om_type) = (Some(words.0), words.1);
                }
            }
            Err(hash) => self.pending.set_type(hash, family, words),
        }
    }

    /// Records a family's UNIT (OpenMetrics input); the first one of a scrape wins. Written
    /// only in OpenMetrics output.
    pub fn set_unit(&mut self, family: &str, unit: &str) {
        match self.family_meta(family) {
            Ok(f) => {
                if !f.has_unit {
                    f.has_unit = true;
                    f.unit.clear();
                    f.unit.push_str(unit);
                }
            }
            Err(hash) => self.pending.set_unit(hash, family, unit),
        }
    }

    /// Drops the families a compaction left without series (their metadata goes with them; a
    /// family that comes back is created again with its next sample). Family ids are only
    /// positions in `families`, held nowhere else, so renumbering them is free.
    pub(super) fn compact_families(&mut self) {
        if self.families.iter().all(|f| !f.series.is_empty()) {
            return;
        }
        // Families keep their order: a kept family's new id is the number of kept ones before
        // it. Every series belongs to a kept family (it is in that family's list).
        let mut kept = 0u32;
        let remap: Vec<u32> = self
            .families
            .iter()
            .map(|f| {
                let id = kept;
                kept += u32::from(!f.series.is_empty());
                id
            })
            .collect();
        for family in &mut self.family_of {
            *family = remap[*family as usize];
        }
        self.families.retain(|f| !f.series.is_empty());
        if self.families.capacity() > 2 * self.families.len() + 64 {
            self.families.shrink_to_fit();
        }
        let hasher = &self.hasher;
        let families = &self.families;
        let mut table = HashTable::with_capacity(families.len());
        for (i, f) in families.iter().enumerate() {
            table.insert_unique(hasher.hash_one(f.name.as_str()), i as u32, |&j| {
                hasher.hash_one(families[j as usize].name.as_str())
            });
        }
        self.family_table = table;
        self.last_family = None;
    }
}
