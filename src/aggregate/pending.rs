//! Metadata of families that have no series yet, kept for one scrape only.
//!
//! A `# HELP`, `# TYPE` or `# UNIT` line names a family before its samples, but a family exists
//! in the aggregate only once a sample lands in it: an upstream that writes metadata for names
//! it never samples, or whose samples the rules drop, must not leave a family behind (each one
//! would be kept forever). So metadata of a family the aggregate does not hold waits here until
//! a sample creates the family, which then takes it; the store is emptied when the next scrape
//! begins, and its buffers are freed then when one scrape made them large. Its size is bounded
//! by one input (the body size limit) and counted in [`super::Aggregator::family_bytes`].

use hashbrown::HashTable;

/// Bytes of metadata text (and entries) the store keeps allocated between scrapes; a scrape
/// that needed more frees them when the next one begins.
const KEEP_BYTES: usize = 256 << 10;

/// A span of [`PendingMeta::text`].
type Span = (usize, usize);

/// One family's pending metadata; the first line of each kind in a scrape wins.
#[derive(Debug, Clone, Copy)]
struct Entry {
    hash: u64,
    name: Span,
    help: Option<Span>,
    /// The TYPE for text output and as the input wrote it (see `Aggregator::set_type`).
    typ: Option<(&'static str, Option<&'static str>)>,
    unit: Option<Span>,
}

/// What a family takes when its first series is created.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Meta<'a> {
    pub help: Option<&'a str>,
    pub typ: Option<(&'static str, Option<&'static str>)>,
    pub unit: Option<&'a str>,
}

/// The store: entries by family name (hashed by the caller with the aggregate's hasher), their
/// texts in one buffer.
#[derive(Debug, Clone, Default)]
pub(super) struct PendingMeta {
    entries: Vec<Entry>,
    table: HashTable<u32>,
    text: String,
}

impl PendingMeta {
    /// True when nothing is pending (the usual case once an upstream's families are known).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Forgets everything; frees the buffers when they grew past [`KEEP_BYTES`].
    pub fn clear(&mut self) {
        if self.bytes() > KEEP_BYTES {
            *self = PendingMeta::default();
        } else {
            self.entries.clear();
            self.table.clear();
            self.text.clear();
        }
    }

    /// Bytes allocated.
    pub fn bytes(&self) -> usize {
        self.entries.capacity() * std::mem::size_of::<Entry>()
            + self.table.allocation_size()
            + self.text.capacity()
    }

    fn str(&self, (from, to): Span) -> &str {
        &self.text[from..to]
    }

    fn push_text(&mut self, s: &str) -> Span {
        let from = self.text.len();
        self.text.push_str(s);
        (from, self.text.len())
    }

    /// The entry of `name`, created empty when there is none.
    fn entry(&mut self, hash: u64, name: &str) -> &mut Entry {
        let (entries, text) = (&self.entries, &self.text);
        let found = self.table.find(hash, |&i| {
            let e = &entries[i as usize];
            e.hash == hash && &text[e.name.0..e.name.1] == name
        });
        let i = match found {
            Some(&i) => i as usize,
            None => {
                let name = self.push_text(name);
                let i = self.entries.len();
                self.entries.push(Entry {
                    hash,
                    name,
                    help: None,
                    typ: None,
                    unit: None,
                });
                let entries = &self.entries;
                self.table
                    .insert_unique(hash, i as u32, |&j| entries[j as usize].hash);
                i
            }
        };
        &mut self.entries[i]
    }

    /// Records a HELP text unless the family has one in this scrape.
    pub fn set_help(&mut self, hash: u64, name: &str, help: &str) {
        if self.entry(hash, name).help.is_none() {
            let span = self.push_text(help);
            self.entry(hash, name).help = Some(span);
        }
    }

    /// Records a TYPE (text word, input word) unless the family has one in this scrape.
    pub fn set_type(&mut self, hash: u64, name: &str, typ: (&'static str, Option<&'static str>)) {
        let e = self.entry(hash, name);
        if e.typ.is_none() {
            e.typ = Some(typ);
        }
    }

    /// Records a UNIT text unless the family has one in this scrape.
    pub fn set_unit(&mut self, hash: u64, name: &str, unit: &str) {
        if self.entry(hash, name).unit.is_none() {
            let span = self.push_text(unit);
            self.entry(hash, name).unit = Some(span);
        }
    }

    /// Every family's pending metadata, as `(name, metadata)`, in the order the families were
    /// first named.
    pub fn iter(&self) -> impl Iterator<Item = (&str, Meta<'_>)> {
        self.entries.iter().map(|e| {
            (
                self.str(e.name),
                Meta {
                    help: e.help.map(|s| self.str(s)),
                    typ: e.typ,
                    unit: e.unit.map(|s| self.str(s)),
                },
            )
        })
    }

    /// The metadata pending for `name`, if any.
    pub fn get(&self, hash: u64, name: &str) -> Option<Meta<'_>> {
        let &i = self.table.find(hash, |&i| {
            let e = &self.entries[i as usize];
            e.hash == hash && self.str(e.name) == name
        })?;
        let e = &self.entries[i as usize];
        Some(Meta {
            help: e.help.map(|s| self.str(s)),
            typ: e.typ,
            unit: e.unit.map(|s| self.str(s)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_line_of_each_kind_wins_and_clear_frees_large_buffers() {
        let mut p = PendingMeta::default();
        p.set_help(1, "a", "A.");
        p.set_help(1, "a", "Later.");
        p.set_type(1, "a", ("counter", Some("counter")));
        p.set_type(1, "a", ("gauge", Some("gauge")));
        p.set_unit(2, "b", "seconds");
        let a = p.get(1, "a").unwrap();
        assert_eq!(a.help, Some("A."));
        assert_eq!(a.typ, Some(("counter", Some("counter"))));
        assert_eq!(a.unit, None);
        assert_eq!(p.get(2, "b").unwrap().unit, Some("seconds"));
        assert!(p.get(1, "b").is_none());
        p.clear();
        assert!(p.is_empty() && p.get(1, "a").is_none());
        for i in 0..20_000u64 {
            p.set_help(i, &format!("name_{i}"), "Some help text.");
        }
        assert!(p.bytes() > KEEP_BYTES);
        p.clear();
        assert_eq!(p.bytes(), 0);
    }
}
