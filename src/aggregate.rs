//! Sum aggregation: series that became identical after relabeling are summed.
//!
//! This is the Go original's behaviour (`sum without(<dropped labels>)` at scrape time), with
//! deterministic output: families in first-seen order with their HELP/TYPE, series in first-seen
//! order within their family.
//!
//! # Keys
//! A series' key is its rendered text `name{a="x",b="y"}` with labels sorted by name: that is
//! both the canonical form to compare on and exactly what the renderer writes, so rendering the
//! output is a copy. The key is built in a reused scratch buffer and looked up by hash in a
//! [`hashbrown::HashTable`]; bytes are copied into the arena only when a new output series is
//! inserted.

use foldhash::fast::FixedState;
use hashbrown::HashTable;
use std::hash::BuildHasher;

use crate::exposition::render::{
    write_help, write_series, write_timestamp_line_end, write_type, write_value_line_end,
};
use crate::labels::{LabelBuf, METRIC_NAME};

/// A fixed hasher seed: output order never depends on hashing, so determinism across processes
/// is not needed, but a fixed seed keeps benchmark runs comparable.
const SEED: u64 = 0x6d65_7472_6963_6761;

/// One metric family of the output: metadata plus its series in first-seen order.
#[derive(Debug, Clone)]
struct Family {
    name: String,
    help: Option<String>,
    typ: Option<String>,
    series: Vec<u32>,
}

/// One output series. Its key (rendered series text) and, while nothing was summed into it, the
/// original value text live in the arena at `start`.
#[derive(Debug, Clone, Copy)]
struct Series {
    hash: u64,
    start: usize,
    key_len: u32,
    /// Length of the original value text after the key; only meaningful while `count == 1`.
    raw_len: u16,
    count: u32,
    value: f64,
    timestamp_ms: Option<i64>,
}

/// Counters of one aggregator's work.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AggregateStats {
    /// Samples added (after relabeling kept them).
    pub samples_in: u64,
    /// Samples summed into an existing output series.
    pub samples_merged: u64,
    /// Samples dropped because relabeling left them without a metric name.
    pub dropped_nameless: u64,
    /// Samples dropped because relabeling left them with an empty label name.
    pub dropped_invalid: u64,
}

/// Options for [`Aggregator::render`].
#[derive(Debug, Clone, Copy, Default)]
pub struct RenderOptions {
    /// Timestamp (ms) written on every sample that has none: subsets carry the upstream fetch
    /// time so that Prometheus stores them at the moment they were scraped.
    pub default_timestamp_ms: Option<i64>,
}

/// Sums samples by label set; renders the result.
#[derive(Debug, Clone)]
pub struct Aggregator {
    families: Vec<Family>,
    family_table: HashTable<u32>,
    /// Most recently used family: consecutive samples nearly always share one.
    last_family: Option<u32>,
    series: Vec<Series>,
    table: HashTable<u32>,
    arena: Vec<u8>,
    key: Vec<u8>,
    hasher: FixedState,
    stats: AggregateStats,
}

impl Default for Aggregator {
    fn default() -> Self {
        Self::new()
    }
}

impl Aggregator {
    /// An empty aggregator.
    pub fn new() -> Self {
        Self {
            families: Vec::new(),
            family_table: HashTable::new(),
            last_family: None,
            series: Vec::new(),
            table: HashTable::new(),
            arena: Vec::new(),
            key: Vec::with_capacity(512),
            hasher: FixedState::with_seed(SEED),
            stats: AggregateStats::default(),
        }
    }

    /// Forgets all series and families but keeps allocated capacity for the next scrape.
    pub fn clear(&mut self) {
        self.families.clear();
        self.family_table.clear();
        self.last_family = None;
        self.series.clear();
        self.table.clear();
        self.arena.clear();
        self.stats = AggregateStats::default();
    }

    /// Number of output series.
    pub fn series_count(&self) -> usize {
        self.series.len()
    }

    /// Work counters.
    pub fn stats(&self) -> AggregateStats {
        self.stats
    }

    /// Bytes held for series keys and value texts.
    pub fn arena_bytes(&self) -> usize {
        self.arena.len()
    }

    fn family_id(&mut self, name: &str) -> u32 {
        if let Some(id) = self.last_family {
            if self.families[id as usize].name == name {
                return id;
            }
        }
        let hash = self.hasher.hash_one(name);
        let families = &self.families;
        let id = match self
            .family_table
            .find(hash, |&i| families[i as usize].name == name)
        {
            Some(&id) => id,
            None => {
                let id = self.families.len() as u32;
                self.families.push(Family {
                    name: name.to_owned(),
                    help: None,
                    typ: None,
                    series: Vec::new(),
                });
                let families = &self.families;
                let hasher = &self.hasher;
                self.family_table.insert_unique(hash, id, |&i| {
                    hasher.hash_one(families[i as usize].name.as_str())
                });
                id
            }
        };
        self.last_family = Some(id);
        id
    }

    /// Records a family's HELP text; the first one wins, as a family has one HELP.
    pub fn set_help(&mut self, family: &str, text: &str) {
        let id = self.family_id(family) as usize;
        let f = &mut self.families[id];
        if f.help.is_none() {
            f.help = Some(text.to_owned());
        }
    }

    /// Records a family's TYPE; the first one wins. OpenMetrics-only types are written as
    /// `untyped`, since the output is text 0.0.4.
    pub fn set_type(&mut self, family: &str, typ: &str) {
        let id = self.family_id(family) as usize;
        let f = &mut self.families[id];
        if f.typ.is_none() {
            let t = match typ {
                "counter" | "gauge" | "histogram" | "summary" | "untyped" => typ,
                _ => "untyped",
            };
            f.typ = Some(t.to_owned());
        }
    }

    /// Adds one sample. `labels` must be sorted by name and hold `__name__`; `family` is the
    /// family it belongs to (see [`crate::exposition::Sample::family`]). `raw` is the value as
    /// written in the input, kept for output while nothing is summed into the series.
    ///
    /// Returns false when the series was dropped for having no metric name or an empty label
    /// name (both counted in [`AggregateStats`]).
    pub fn add(
        &mut self,
        family: &str,
        labels: &LabelBuf,
        value: f64,
        raw: &str,
        timestamp_ms: Option<i64>,
    ) -> bool {
        let all = labels.as_slice();
        let name_at = match labels.position(METRIC_NAME) {
            Some(i) if !all[i].value.is_empty() => i,
            _ => {
                self.stats.dropped_nameless += 1;
                return false;
            }
        };
        let name = all[name_at].value.as_str();
        // `labelmap` can produce an empty label name, which no exposition format can carry.
        if labels.iter().any(|(n, _)| n.is_empty()) {
            self.stats.dropped_invalid += 1;
            return false;
        }
        self.stats.samples_in += 1;
        let mut key = std::mem::take(&mut self.key);
        key.clear();
        write_series(
            &mut key,
            name,
            all.iter()
                .enumerate()
                .filter(|&(i, _)| i != name_at)
                .map(|(_, l)| (l.name.as_str(), l.value.as_str())),
        );
        self.add_key(family, &key, value, raw, timestamp_ms);
        self.key = key;
        true
    }

    /// Adds one sample whose series key (`name{sorted labels}`, as [`write_series`] renders it)
    /// is already built.
    pub fn add_key(
        &mut self,
        family: &str,
        key: &[u8],
        value: f64,
        raw: &str,
        timestamp_ms: Option<i64>,
    ) {
        self.add_key_counted(family, key, value, raw, timestamp_ms, 1);
    }

    /// [`Aggregator::add_key`] for a value that is already the sum of `count` samples.
    fn add_key_counted(
        &mut self,
        family: &str,
        key: &[u8],
        value: f64,
        raw: &str,
        timestamp_ms: Option<i64>,
        count: u32,
    ) {
        let hash = self.hasher.hash_one(key);
        let arena = &self.arena;
        let series = &self.series;
        let found = self.table.find(hash, |&i| {
            let s = &series[i as usize];
            s.hash == hash && &arena[s.start..s.start + s.key_len as usize] == key
        });
        if let Some(&i) = found {
            let s = &mut self.series[i as usize];
            s.value += value;
            s.count += count;
            s.timestamp_ms = match (s.timestamp_ms, timestamp_ms) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
            self.stats.samples_merged += 1;
            return;
        }
        let family = self.family_id(family);
        let id = self.series.len() as u32;
        let start = self.arena.len();
        self.arena.extend_from_slice(key);
        // Values longer than u16 are not real-world numbers; keep them by formatting instead.
        let raw_len = if count == 1 && raw.len() <= u16::MAX as usize {
            self.arena.extend_from_slice(raw.as_bytes());
            raw.len() as u16
        } else {
            0
        };
        self.series.push(Series {
            hash,
            start,
            key_len: key.len() as u32,
            raw_len,
            count,
            value,
            timestamp_ms,
        });
        let series = &self.series;
        self.table
            .insert_unique(hash, id, |&i| series[i as usize].hash);
        self.families[family as usize].series.push(id);
    }

    /// Sums every series of `other` into `self` (fan-out: one aggregate per target, merged once
    /// all targets answered). Family metadata already set in `self` wins. Keys are copied only for
    /// series `self` does not have yet.
    pub fn merge_from(&mut self, other: &Aggregator) {
        for f in &other.families {
            if f.series.is_empty() {
                continue;
            }
            if let Some(help) = &f.help {
                self.set_help(&f.name, help);
            }
            if let Some(typ) = &f.typ {
                self.set_type(&f.name, typ);
            }
            for &id in &f.series {
                let s = &other.series[id as usize];
                let key_end = s.start + s.key_len as usize;
                let key = &other.arena[s.start..key_end];
                let raw = if s.count == 1 && s.raw_len > 0 {
                    std::str::from_utf8(&other.arena[key_end..key_end + s.raw_len as usize])
                        .unwrap_or("")
                } else {
                    ""
                };
                self.add_key_counted(&f.name, key, s.value, raw, s.timestamp_ms, s.count);
            }
        }
        self.stats.samples_in += other.stats.samples_in;
        self.stats.samples_merged += other.stats.samples_merged;
        self.stats.dropped_nameless += other.stats.dropped_nameless;
        self.stats.dropped_invalid += other.stats.dropped_invalid;
    }

    /// Renders every family that has series: `# HELP`, `# TYPE`, then its samples.
    pub fn render(&self, out: &mut Vec<u8>, opts: &RenderOptions) {
        for f in &self.families {
            if f.series.is_empty() {
                continue;
            }
            if let Some(help) = &f.help {
                write_help(out, &f.name, help);
            }
            if let Some(typ) = &f.typ {
                write_type(out, &f.name, typ);
            }
            for &id in &f.series {
                let s = &self.series[id as usize];
                let key_end = s.start + s.key_len as usize;
                out.extend_from_slice(&self.arena[s.start..key_end]);
                let ts = s.timestamp_ms.or(opts.default_timestamp_ms);
                if s.count == 1 && s.raw_len > 0 {
                    out.push(b' ');
                    out.extend_from_slice(&self.arena[key_end..key_end + s.raw_len as usize]);
                    write_timestamp_line_end(out, ts);
                } else {
                    write_value_line_end(out, s.value, ts);
                }
            }
        }
    }

    /// Iterates over output series as `(key text, value)` in output order, for tests and
    /// reports.
    pub fn iter(&self) -> impl Iterator<Item = (&str, f64)> + '_ {
        self.families.iter().flat_map(move |f| {
            f.series.iter().map(move |&id| {
                let s = &self.series[id as usize];
                let key = &self.arena[s.start..s.start + s.key_len as usize];
                (std::str::from_utf8(key).unwrap_or(""), s.value)
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> LabelBuf {
        let mut b = LabelBuf::new();
        for (n, v) in pairs {
            b.push(n, v);
        }
        b.sort();
        b
    }

    fn render(a: &Aggregator) -> String {
        let mut out = Vec::new();
        a.render(&mut out, &RenderOptions::default());
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn sums_identical_series_and_keeps_first_seen_order() {
        let mut a = Aggregator::new();
        a.set_help("req", "Requests.");
        a.set_type("req", "counter");
        a.add(
            "req",
            &labels(&[("__name__", "req"), ("code", "200")]),
            1.0,
            "1",
            None,
        );
        a.add(
            "req",
            &labels(&[("__name__", "req"), ("code", "500")]),
            2.0,
            "2",
            None,
        );
        a.add(
            "req",
            &labels(&[("code", "200"), ("__name__", "req")]),
            3.5,
            "3.5",
            None,
        );
        a.add("up", &labels(&[("__name__", "up")]), 1.0, "1", None);
        assert_eq!(
            render(&a),
            "# HELP req Requests.\n# TYPE req counter\nreq{code=\"200\"} 4.5\nreq{code=\"500\"} 2\nup 1\n"
        );
        assert_eq!(a.stats().samples_merged, 1);
        assert_eq!(a.series_count(), 3);
    }

    #[test]
    fn unsummed_series_keep_raw_value_text() {
        let mut a = Aggregator::new();
        a.add("x", &labels(&[("__name__", "x")]), 1e6, "1000000", None);
        a.add(
            "y",
            &labels(&[("__name__", "y")]),
            f64::INFINITY,
            "Inf",
            None,
        );
        assert_eq!(render(&a), "x 1000000\ny Inf\n");
    }

    #[test]
    fn latest_timestamp_wins_and_nan_propagates() {
        let mut a = Aggregator::new();
        let l = labels(&[("__name__", "x")]);
        a.add("x", &l, 1.0, "1", Some(2000));
        a.add("x", &l, f64::NAN, "NaN", Some(1000));
        a.add("x", &l, 1.0, "1", None);
        assert_eq!(render(&a), "x NaN 2000\n");
    }

    #[test]
    fn default_timestamp_only_where_missing() {
        let mut a = Aggregator::new();
        a.add("x", &labels(&[("__name__", "x")]), 1.0, "1", Some(5));
        a.add("y", &labels(&[("__name__", "y")]), 1.0, "1", None);
        let mut out = Vec::new();
        a.render(
            &mut out,
            &RenderOptions {
                default_timestamp_ms: Some(99),
            },
        );
        assert_eq!(String::from_utf8(out).unwrap(), "x 1 5\ny 1 99\n");
    }

    #[test]
    fn nameless_series_are_dropped_and_counted() {
        let mut a = Aggregator::new();
        assert!(!a.add("x", &labels(&[("a", "b")]), 1.0, "1", None));
        assert_eq!(a.stats().dropped_nameless, 1);
        assert_eq!(render(&a), "");
    }

    #[test]
    fn families_without_series_are_not_rendered() {
        let mut a = Aggregator::new();
        a.set_help("gone", "All dropped.");
        a.set_type("gone", "gauge");
        a.set_type("om", "stateset");
        a.add("om", &labels(&[("__name__", "om")]), 1.0, "1", None);
        assert_eq!(render(&a), "# TYPE om untyped\nom 1\n");
    }

    #[test]
    fn merge_sums_across_aggregates() {
        let mut a = Aggregator::new();
        a.set_type("x", "counter");
        a.add(
            "x",
            &labels(&[("__name__", "x"), ("p", "1")]),
            1.0,
            "1",
            None,
        );
        let mut b = Aggregator::new();
        b.set_help("x", "X.");
        b.add(
            "x",
            &labels(&[("__name__", "x"), ("p", "1")]),
            2.0,
            "2",
            Some(7),
        );
        b.add(
            "x",
            &labels(&[("__name__", "x"), ("p", "2")]),
            5.0,
            "5.0",
            None,
        );
        b.add("y", &labels(&[("__name__", "y")]), 3.0, "3", None);
        b.add("y", &labels(&[("__name__", "y")]), 4.0, "4", None);
        a.merge_from(&b);
        assert_eq!(
            render(&a),
            "# HELP x X.\n# TYPE x counter\nx{p=\"1\"} 3 7\nx{p=\"2\"} 5.0\ny 7\n"
        );
    }

    #[test]
    fn clear_resets() {
        let mut a = Aggregator::new();
        a.add("x", &labels(&[("__name__", "x")]), 1.0, "1", None);
        a.clear();
        assert_eq!(a.series_count(), 0);
        a.add("x", &labels(&[("__name__", "x")]), 2.0, "2", None);
        assert_eq!(render(&a), "x 2\n");
    }
}
