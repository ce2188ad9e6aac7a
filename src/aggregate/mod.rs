//! Sum aggregation: series that became identical after relabeling are summed.
//!
//! This is the Go original's behaviour (`sum without(<dropped labels>)` at scrape time), with
//! deterministic output: families in first-seen order with their HELP/TYPE, series in first-seen
//! order within their family.
//!
//! # Adding a sample
//! A sample arrives as a [`Point`] (value, its text, timestamp) and goes either to the series
//! its key names ([`Aggregator::add`]) or, when the caller remembers where that series is, to its
//! slot ([`Aggregator::add_to_slot`]). Both end in one place, `Aggregator::contribute`, which
//! folds a contribution into a series.
//!
//! # What a series holds
//! Each output series carries an [`Action`], decided once when it is created (by the caller,
//! from the family's `# TYPE` and the [`crate::relabel::aggregation`] rules): a counter-like series is
//! summed (compensated, see [`crate::sum`]) and may be served from the counter state instead
//! ([`Aggregator::apply_counters`]); a gauge is combined by its op (`sum`, `max`, `min`, `avg`,
//! `count`, `last`, `drop`); a summary quantile that two or more inputs fall into is not served.
//! One input is always served as written. Timestamps follow [`crate::relabel::aggregation::Stamp`]: a sample
//! without one is "now", so a combination is never older than an input.
//!
//! # Keys
//! A series' key is its rendered text `name{a="x",b="y"}` with labels sorted by name: that is
//! both the canonical form to compare on and exactly what the renderer writes, so rendering the
//! output is a few copies. The key is built in a reused buffer ([`key`]) and looked up by hash
//! in a [`hashbrown::HashTable`], comparing every byte; it is stored ([`crate::key_store`])
//! only when a new output series is created, in blocks that never move, as its difference to an
//! earlier key of its family (an output series costs about 100 bytes in all on an ingress
//! payload, its ~230-byte key included).
//!
//! # Across scrapes
//! An aggregator can serve many scrapes ([`Aggregator::begin_scrape`]): its series, keys and
//! their positions ("slots") stay, and only the series that receive a sample in the current
//! scrape are live and rendered. A slot therefore names the same output series scrape after
//! scrape, which is what the pipeline's series cache stores. Series idle for
//! [`IDLE_SCRAPES`] scrapes are evicted by a compaction that renumbers slots.
//!
//! # Families
//! A family is created with its first series, never by metadata alone: `# HELP`/`# TYPE`/
//! `# UNIT` lines of a family the aggregator does not hold wait in a per-scrape store
//! (`pending`) until a sample creates it. A compaction drops the families it leaves without
//! series, so families expire with their series, and an upstream that writes new names every
//! scrape holds only those of the last few ([`Aggregator::family_bytes`] shows what they hold).

use foldhash::fast::FixedState;
use hashbrown::HashTable;
use std::hash::BuildHasher;

use crate::counters::{CounterState, Kind, Served};
use crate::exposition::escape::series_has_quoted_name;
use crate::exposition::render::{
    write_help, write_timestamp_line_end, write_type, write_value_line_end,
};
use crate::limits::{LabelLimits, LimitError};
use crate::relabel::aggregation::{Action, Op};
use crate::sum::Sum;

use crate::key_store::{Addr, BaseSlot, KeyStore};
use hot_keys::HotKeys;

mod exemplars;
mod families;
mod float_spelling;
mod histogram_bounds;
mod hot_keys;
pub mod key;
mod merge;
mod openmetrics;
mod pending;
mod render;

pub use float_spelling::{canonical_float_text, float_label, label_value_span};
pub use key::{KeyBuf, SeriesKey};
pub use render::RenderShare;

/// A fixed hasher seed: output order never depends on hashing, so determinism across processes
/// is not needed, but a fixed seed keeps benchmark runs comparable.
const SEED: u64 = 0x6d65_7472_6963_6761;

/// About how many bytes [`Aggregator::render_to`] gathers before writing them out: large
/// enough that a write costs little per line, small enough to stay in the cache.
pub const RENDER_CHUNK: usize = 64 << 10;

/// [`Series::raw_start`] of a series without an original value text.
const NO_RAW: u32 = u32::MAX;

/// Scrapes a series may go without a sample before a compaction may evict it.
pub const IDLE_SCRAPES: u32 = 5;

/// One metric family of the output: metadata plus its series in first-seen order.
#[derive(Debug, Clone)]
struct Family {
    name: String,
    /// HELP text; meaningful when `has_help`. Kept as a String for reuse across scrapes.
    help: String,
    has_help: bool,
    typ: Option<&'static str>,
    /// The TYPE as the input wrote it (OpenMetrics types included), for OpenMetrics output.
    om_type: Option<&'static str>,
    /// UNIT text (OpenMetrics input); meaningful when `has_unit`.
    unit: String,
    has_unit: bool,
    /// The scrape whose metadata `help`/`typ`/`unit` hold.
    meta_epoch: u32,
    series: Vec<u32>,
    /// The stored key its next new series' key is stored relative to.
    key_base: BaseSlot,
}

/// One output series (64 bytes: there is one per output series, so its size counts). Its key
/// (rendered series text) is in the key store at `key`; the original value text of its only
/// sample this scrape, if any, in `raw` at `raw_start`, after a byte that gives its length.
#[derive(Debug, Clone, Copy)]
struct Series {
    hash: u64,
    key: Addr,
    /// [`NO_RAW`] when there is no original value text (or it was summed).
    raw_start: u32,
    /// Served from the counter state: `value` holds the carried total.
    carried: bool,
    /// Some input of this scrape had no timestamp ("now"); for `last`, the chosen one had none.
    any_now: bool,
    /// The scrape this series last received a sample in; live when equal to the current one.
    epoch: u32,
    count: u32,
    /// How its inputs are combined, decided when the series was created.
    action: Action,
    /// `sum`, `avg`, `drop` and counter-like series: the plain running sum (with `comp`, a
    /// [`Sum`]); `max`/`min`: the extreme; `last`: the newest input's value.
    value: f64,
    /// The compensation of the running sum (see [`Sum::to_parts`]).
    comp: f64,
    /// The latest explicit timestamp of the inputs (`last`: the chosen input's).
    timestamp_ms: Option<i64>,
}

/// An entry of the series table: a slot and the low half of its key's hash. Finding a slot
/// compares that half before reading the series record, and growing the table rehashes from
/// the entries alone: no random read of the records (on the 2x ingress payload, where half the
/// samples create a series, the growth's rehash took ~2% of a `--file --apply` run).
#[derive(Debug, Clone, Copy)]
struct TableEntry {
    slot: u32,
    hash: u32,
}

impl TableEntry {
    #[inline]
    fn new(slot: u32, hash: u64) -> Self {
        TableEntry {
            slot,
            hash: hash as u32,
        }
    }

    /// The hash the table files the entry under: the low half twice (the table takes a bucket
    /// from the low bits and a tag from the top seven).
    #[inline]
    fn table_hash(&self) -> u64 {
        u64::from(self.hash) | u64::from(self.hash) << 32
    }
}

/// What a contribution brings to a series: one sample, or a series of another aggregate.
#[derive(Debug, Clone, Copy)]
struct Part<'a> {
    value: f64,
    comp: f64,
    text: &'a str,
    timestamp_ms: Option<i64>,
    any_now: bool,
    count: u32,
}

/// Writes the key a series of a merged aggregate's family is summed into, when it is not the
/// series' own key: `(family, key, buffer) -> written` ([`Aggregator::merge_targets`]).
type MergeKey<'a> = dyn FnMut(&Family, &[u8], &mut Vec<u8>) -> bool + 'a;

/// Counters of one aggregator's work (in the current scrape).
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

/// Live series not served in the current scrape because several inputs fell into them
/// ([`Aggregator::summed_drops`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SummedDrops {
    /// Summary quantile series (a quantile of several inputs cannot be computed).
    pub quantiles: u64,
    /// Series of a `drop` rule.
    pub by_rule: u64,
    /// Histogram buckets whose bound not every input of their histogram has (see
    /// `histogram_bounds`: only the bounds common to all inputs are served).
    pub buckets: u64,
}

/// One sample's value as it travels to an output series.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point<'a> {
    /// The value, parsed.
    pub value: f64,
    /// The value exactly as written in the input: rendered as is while nothing is summed into
    /// the series, so an unchanged value keeps its spelling (`1e6`, `+Inf`).
    pub text: &'a str,
    /// Timestamp in milliseconds, if the sample has one; a sum carries the latest.
    pub timestamp_ms: Option<i64>,
}

/// Why a sample could not be added to an output series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rejected {
    /// No `__name__`, or an empty one.
    Nameless,
    /// A label with an empty name.
    InvalidLabel,
    /// A new output series broke a label limit ([`Aggregator::with_label_limits`]); the error
    /// is in [`Aggregator::take_limit_error`]. The sample was not added.
    Limit,
}

/// Options for [`Aggregator::render`].
#[derive(Debug, Clone, Copy, Default)]
pub struct RenderOptions {
    /// Timestamp (ms) written on every sample that has none: subsets carry the upstream fetch
    /// time so that Prometheus stores them at the moment they were scraped.
    pub default_timestamp_ms: Option<i64>,
    /// The scrape's time (ms), "now" for combined samples (see [`crate::relabel::aggregation::Stamp`]);
    /// `None`: the wall clock when rendering.
    pub now_ms: Option<i64>,
}

/// Sums samples by label set; renders the result.
#[derive(Debug, Clone)]
pub struct Aggregator {
    families: Vec<Family>,
    family_table: HashTable<u32>,
    /// Most recently used family: consecutive samples nearly always share one.
    last_family: Option<u32>,
    series: Vec<Series>,
    /// Finds a series by its key's hash ([`TableEntry`]).
    table: HashTable<TableEntry>,
    /// The keys of `series`.
    keys: KeyStore,
    /// The keys looked up last, as plain text (cleared whenever slots change).
    hot: HotKeys,
    /// [`output_hash`] of the key of the series at each slot when it is counter-like (the
    /// counter state's key), 0 else. Computed when the counter hooks first ask
    /// ([`Aggregator::carry`], [`Aggregator::apply_counters`]), so an aggregator whose
    /// counters no one tracks spends neither the time nor the 16 bytes per series; holds a
    /// prefix of the slots.
    outputs: Vec<u128>,
    /// The family of the series at each slot (what `outputs` needs to find a bound label).
    family_of: Vec<u32>,
    /// Scratch: one key read back whole.
    key_scratch: Vec<u8>,
    /// Value texts of the current scrape.
    raw: Vec<u8>,
    hasher: FixedState,
    stats: AggregateStats,
    /// The current scrape (starts at 1, so that 0 never counts as live).
    epoch: u32,
    /// Series live in the current scrape.
    live: usize,
    /// Live series that are not served because several inputs fell into them under a `drop`
    /// action (or a summary quantile): [`Aggregator::series_count`] leaves them out.
    unserved: usize,
    /// Checked when an output series is created.
    label_limits: LabelLimits,
    /// The last limit a new series broke.
    limit_error: Option<LimitError>,
    /// Some series held has a name written quoted (outside the legacy character set).
    quoted_names: bool,
    /// Live buckets not common to all inputs of their histogram, found when first asked for
    /// after the last contribution ([`histogram_bounds`]).
    uncommon_buckets: std::sync::OnceLock<Box<[u32]>>,
    /// Exemplars of the current scrape, by slot (OpenMetrics input).
    exemplars: exemplars::Exemplars,
    /// Metadata of families not held yet, for the current scrape (see [`pending`]).
    pending: pending::PendingMeta,
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
            keys: KeyStore::default(),
            hot: HotKeys::default(),
            outputs: Vec::new(),
            family_of: Vec::new(),
            key_scratch: Vec::new(),
            raw: Vec::new(),
            hasher: FixedState::with_seed(SEED),
            stats: AggregateStats::default(),
            epoch: 1,
            live: 0,
            unserved: 0,
            label_limits: LabelLimits::UNLIMITED,
            limit_error: None,
            quoted_names: false,
            uncommon_buckets: std::sync::OnceLock::new(),
            exemplars: exemplars::Exemplars::default(),
            pending: pending::PendingMeta::default(),
        }
    }

    /// Refuse new output series that break `limits` (see [`crate::limits`]): such a sample is
    /// rejected with [`Rejected::Limit`]. Series already held are not checked again.
    pub fn with_label_limits(mut self, limits: LabelLimits) -> Self {
        self.label_limits = limits;
        self
    }

    /// The limit the last rejected series broke, taken out.
    pub fn take_limit_error(&mut self) -> Option<LimitError> {
        self.limit_error.take()
    }

    /// Forgets all series and families but keeps allocated capacity. Slots handed out before are
    /// invalid afterwards.
    pub fn clear(&mut self) {
        self.families.clear();
        self.family_table.clear();
        self.last_family = None;
        self.series.clear();
        self.table.clear();
        self.keys.clear();
        self.hot.clear();
        self.outputs.clear();
        self.family_of.clear();
        self.raw.clear();
        self.stats = AggregateStats::default();
        self.epoch = 1;
        self.live = 0;
        self.unserved = 0;
        self.quoted_names = false;
        self.uncommon_buckets.take();
        self.exemplars.clear();
        self.pending.clear();
    }

    /// Starts a new scrape: no series is live until it receives a sample, but every series and
    /// its slot stays. Series idle for more than [`IDLE_SCRAPES`] scrapes are evicted when they
    /// are at least a quarter of all, with the families they leave empty; that renumbers
    /// slots, and the return value is then true. Metadata of the last scrape that found no
    /// family is forgotten.
    pub fn begin_scrape(&mut self) -> bool {
        self.epoch = self.epoch.wrapping_add(1).max(1);
        self.pending.clear();
        self.raw.clear();
        self.exemplars.clear();
        self.stats = AggregateStats::default();
        self.live = 0;
        self.unserved = 0;
        self.uncommon_buckets.take();
        let epoch = self.epoch;
        let idle = |s: &Series| epoch.wrapping_sub(s.epoch) > IDLE_SCRAPES;
        let stale = self.series.iter().filter(|s| idle(s)).count();
        if stale == 0 || stale < self.series.len() / 4 {
            return false;
        }
        self.compact(idle);
        self.compact_families();
        true
    }

    /// Rebuilds the store without the series `drop` selects; slots are renumbered.
    fn compact(&mut self, drop: impl Fn(&Series) -> bool) {
        let old = std::mem::take(&mut self.series);
        let old_keys = std::mem::take(&mut self.keys);
        let old_outputs = std::mem::take(&mut self.outputs);
        let family_of = std::mem::take(&mut self.family_of);
        self.table.clear();
        self.hot.clear();
        for f in self.families.iter_mut() {
            f.key_base = BaseSlot::default();
        }
        let mut remap = vec![u32::MAX; old.len()];
        for (i, s) in old.iter().enumerate() {
            if drop(s) {
                continue;
            }
            let mut n = *s;
            self.key_scratch.clear();
            old_keys.get(s.key).write_to(&mut self.key_scratch);
            let base = &mut self.families[family_of[i] as usize].key_base;
            n.key = self.keys.insert(&self.key_scratch, base);
            remap[i] = self.series.len() as u32;
            self.series.push(n);
            self.family_of.push(family_of[i]);
            // Kept slots stay in order, so the known outputs stay a prefix.
            if let Some(&o) = old_outputs.get(i) {
                self.outputs.push(o);
            }
        }
        for (i, s) in self.series.iter().enumerate() {
            let e = TableEntry::new(i as u32, s.hash);
            self.table
                .insert_unique(e.table_hash(), e, TableEntry::table_hash);
        }
        for f in &mut self.families {
            f.series.retain_mut(|id| {
                *id = remap[*id as usize];
                *id != u32::MAX
            });
        }
    }

    /// Number of output series of the current scrape: the live series that are served.
    pub fn series_count(&self) -> usize {
        self.live - self.unserved - self.uncommon_bucket_count()
    }

    /// Number of series held, live or idle (slots in use).
    pub fn slots(&self) -> usize {
        self.series.len()
    }

    /// Work counters of the current scrape.
    pub fn stats(&self) -> AggregateStats {
        self.stats
    }

    /// True when some series held (live or idle) has its metric name or a label name written
    /// quoted: a client that cannot read UTF-8 names needs the output escaped
    /// ([`crate::exposition::escape`]). False means the rendered text is the same under every
    /// escaping scheme. Tracked when series are created, so it costs nothing per scrape.
    pub fn has_quoted_names(&self) -> bool {
        self.quoted_names
    }

    /// Bytes held for series keys and value texts.
    pub fn arena_bytes(&self) -> usize {
        self.keys.bytes() + self.raw.len()
    }

    /// Bytes held per output series: the series records, their keys, value texts and the
    /// table that finds them (a figure for the docs and benches; 0 with no series).
    pub fn bytes_per_series(&self) -> usize {
        let held = self.series.capacity() * std::mem::size_of::<Series>()
            + self.table.capacity() * (std::mem::size_of::<TableEntry>() + 1)
            + self.outputs.capacity() * std::mem::size_of::<u128>()
            + self.family_of.capacity() * std::mem::size_of::<u32>()
            + self.arena_bytes();
        held / self.series.len().max(1)
    }

    /// About how many bytes [`Aggregator::render`] writes for the series held: a capacity
    /// hint for a caller that renders into a `Vec`.
    pub fn render_size_hint(&self) -> usize {
        self.keys.text_bytes() + self.series.len() * 24 + self.families.len() * 128
    }

    /// Number of families held (each has at least one series, live or idle).
    pub fn family_count(&self) -> usize {
        self.families.len()
    }

    /// Bytes allocated for families and their metadata (names, HELP and UNIT texts, series
    /// lists, the name table), and for metadata waiting for its family in this scrape.
    pub fn family_bytes(&self) -> usize {
        let texts: usize = self
            .families
            .iter()
            .map(|f| {
                f.name.capacity()
                    + f.help.capacity()
                    + f.unit.capacity()
                    + f.series.capacity() * std::mem::size_of::<u32>()
            })
            .sum();
        self.families.capacity() * std::mem::size_of::<Family>()
            + self.family_table.allocation_size()
            + texts
            + self.pending.bytes()
    }

    /// Bytes allocated by the aggregator, approximately: series keys, value texts, series
    /// records and their table and side tables, exemplars, families and their metadata.
    pub fn memory_bytes(&self) -> usize {
        self.keys.bytes()
            + self.hot.bytes()
            + self.raw.capacity()
            + self.series.capacity() * std::mem::size_of::<Series>()
            + self.table.allocation_size()
            + self.outputs.capacity() * std::mem::size_of::<u128>()
            + self.family_of.capacity() * std::mem::size_of::<u32>()
            + self.exemplars.bytes()
            + self.family_bytes()
    }

    /// Adds one sample to the output series `series` names, creating the series (in `family`,
    /// see [`crate::exposition::Sample::family`]) when the aggregator does not hold it yet.
    /// Returns its slot: later samples of the same series can go straight there with
    /// [`Aggregator::add_to_slot`], in this or a later scrape, until
    /// [`Aggregator::begin_scrape`] reports a compaction.
    ///
    /// A new series that breaks the label limits ([`Aggregator::with_label_limits`]) is not
    /// created and the sample is rejected with [`Rejected::Limit`]; the error is kept for
    /// [`Aggregator::take_limit_error`].
    ///
    /// `decide` gives a new series its [`Action`]; it is called only when the series is
    /// created, so the series keeps the action of its first sample.
    #[inline]
    pub fn add<'a, L>(
        &mut self,
        family: &str,
        series: SeriesKey<'a, L>,
        point: Point<'_>,
        decide: impl FnOnce(&SeriesKey<'a, L>) -> Action,
    ) -> Result<u32, Rejected>
    where
        L: Iterator<Item = (&'a str, &'a str)> + Clone,
    {
        let limits = self.label_limits;
        let slot = self.slot_for(
            family,
            series.as_bytes(),
            || series.check(&limits),
            || decide(&series),
        )?;
        self.contribute(slot, Part::of(point));
        Ok(slot)
    }

    /// Adds one sample to the series at `slot` (from [`Aggregator::add`]): how a sample of a
    /// series the pipeline's series cache knows is added, without building its key.
    #[inline]
    pub fn add_to_slot(&mut self, slot: u32, point: Point<'_>) {
        self.contribute(slot, Part::of(point));
    }

    /// The counter kind and [`output_hash`] of the series at `slot` when it is counter-like
    /// (its samples go to the counter state); `None` otherwise.
    #[inline]
    pub fn carry(&mut self, slot: u32) -> Option<(Kind, u128)> {
        let Action::Carry(kind) = self.series.get(slot as usize)?.action else {
            return None;
        };
        if self.outputs.len() <= slot as usize {
            self.fill_outputs();
        }
        Some((kind, self.outputs[slot as usize]))
    }

    /// Computes the outputs not known yet (see `outputs`), up to the last slot.
    /// A bound (`le`, `quantile`) counts by value: targets spelling it differently feed one
    /// counter ([`float_spelling::output_of`]).
    fn fill_outputs(&mut self) {
        for (s, &family) in self.series[self.outputs.len()..]
            .iter()
            .zip(&self.family_of[self.outputs.len()..])
        {
            let output = match s.action {
                Action::Carry(_) => {
                    self.key_scratch.clear();
                    self.keys.get(s.key).write_to(&mut self.key_scratch);
                    let f = &self.families[family as usize];
                    float_spelling::output_of(f.om_type.or(f.typ), &self.key_scratch)
                }
                _ => 0,
            };
            self.outputs.push(output);
        }
    }

    /// Counts a sample the pipeline found it cannot add for `why` (it has no name or an empty
    /// label name: [`KeyBuf::label_set`] says so, or the series cache remembers it).
    pub fn count_rejected(&mut self, why: Rejected) {
        match why {
            Rejected::Nameless => self.stats.dropped_nameless += 1,
            Rejected::InvalidLabel => self.stats.dropped_invalid += 1,
            // The scrape fails; nothing to count per sample.
            Rejected::Limit => {}
        }
    }

    /// Folds a contribution (one sample, or a series of another aggregate when merging) into
    /// the series at `slot` by the series' action. Every sample that reaches an output series
    /// goes through here: the first contribution of a scrape replaces what the series held from
    /// earlier scrapes, later ones are combined with it.
    #[inline]
    fn contribute(&mut self, slot: u32, part: Part<'_>) {
        let count = part.count;
        self.uncommon_buckets.take();
        self.stats.samples_in += u64::from(count);
        let epoch = self.epoch;
        let s = &mut self.series[slot as usize];
        if s.epoch != epoch {
            s.epoch = epoch;
            s.value = part.value;
            s.comp = part.comp;
            s.count = count;
            s.timestamp_ms = part.timestamp_ms;
            s.any_now = part.any_now;
            s.carried = false;
            let raw = part.text;
            // Values longer than 255 bytes are not real-world numbers; they are formatted instead.
            s.raw_start = NO_RAW;
            if count == 1 && !raw.is_empty() && raw.len() <= usize::from(u8::MAX) {
                s.raw_start = self.raw.len() as u32;
                self.raw.push(raw.len() as u8);
                self.raw.extend_from_slice(raw.as_bytes());
            }
            let hidden = count > 1 && s.action.hidden_when_combined();
            self.live += 1;
            self.unserved += usize::from(hidden);
            return;
        }
        if s.count <= 1 && s.action.hidden_when_combined() {
            // Its second input: from now on it is not served.
            self.unserved += 1;
        }
        s.count = s.count.saturating_add(count);
        self.stats.samples_merged += u64::from(count);
        let op = s.action.op();
        if op == Op::Last {
            // The newest input wins: one without a timestamp is "now"; on a tie, the later.
            let newer = part.any_now || (!s.any_now && part.timestamp_ms >= s.timestamp_ms);
            if newer {
                s.value = part.value;
                s.timestamp_ms = part.timestamp_ms;
                s.any_now = part.any_now;
            }
            return;
        }
        s.timestamp_ms = match (s.timestamp_ms, part.timestamp_ms) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        s.any_now |= part.any_now;
        match op {
            Op::Sum | Op::Avg | Op::Drop => {
                let mut sum = Sum::from_parts(s.value, s.comp);
                sum.merge(&Sum::from_parts(part.value, part.comp));
                (s.value, s.comp) = sum.to_parts();
            }
            // NaN inputs are ignored unless all are NaN, as PromQL's max and min.
            Op::Max => {
                if s.value.is_nan() || part.value > s.value {
                    s.value = part.value;
                }
            }
            Op::Min => {
                if s.value.is_nan() || part.value < s.value {
                    s.value = part.value;
                }
            }
            Op::Count | Op::Last => {}
        }
    }

    /// The slot of the series whose key is `key`; a series not held yet is created in
    /// `family` once `check` passes (a failed check rejects it with [`Rejected::Limit`] and
    /// keeps the error).
    #[inline]
    fn slot_for(
        &mut self,
        family: &str,
        key: &[u8],
        check: impl FnOnce() -> Result<(), LimitError>,
        decide: impl FnOnce() -> Action,
    ) -> Result<u32, Rejected> {
        let hash = self.hasher.hash_one(key);
        if let Some(slot) = self.hot.find(hash, key) {
            return Ok(slot);
        }
        let keys = &self.keys;
        let series = &self.series;
        let probe = TableEntry::new(0, hash);
        let found = self.table.find(probe.table_hash(), |e| {
            e.hash == probe.hash && keys.get(series[e.slot as usize].key).eq(key)
        });
        if let Some(&TableEntry { slot, .. }) = found {
            self.hot.put(hash, slot, key);
            return Ok(slot);
        }
        if let Err(e) = check() {
            self.limit_error = Some(e);
            return Err(Rejected::Limit);
        }
        let family = self.family_id(family);
        let id = self.series.len() as u32;
        self.quoted_names |= series_has_quoted_name(key);
        let at = self
            .keys
            .insert(key, &mut self.families[family as usize].key_base);
        let action = decide();
        self.family_of.push(family);
        self.series.push(Series {
            hash,
            key: at,
            raw_start: NO_RAW,
            carried: false,
            any_now: false,
            // Not live yet: `contribute` makes it live.
            epoch: self.epoch.wrapping_sub(1),
            count: 0,
            action,
            value: 0.0,
            comp: 0.0,
            timestamp_ms: None,
        });
        let e = TableEntry::new(id, hash);
        self.table
            .insert_unique(e.table_hash(), e, TableEntry::table_hash);
        self.families[family as usize].series.push(id);
        self.hot.put(hash, id, key);
        Ok(id)
    }

    /// True when the series at `id` received a sample in the current scrape.
    #[inline]
    fn is_live(&self, id: u32) -> bool {
        self.series[id as usize].epoch == self.epoch
    }

    /// The original value text of a live series nothing was summed into.
    fn raw_text(&self, s: &Series) -> Option<&[u8]> {
        if s.count != 1 || s.raw_start == NO_RAW || s.carried {
            return None;
        }
        let at = s.raw_start as usize;
        let len = usize::from(*self.raw.get(at)?);
        self.raw.get(at + 1..at + 1 + len)
    }

    /// True when the live series at `id` is served: every one but those that several inputs
    /// fell into under `drop` (or that are summary quantiles).
    #[inline]
    fn is_served(&self, id: u32) -> bool {
        let s = &self.series[id as usize];
        s.epoch == self.epoch
            && !(s.count > 1 && s.action.hidden_when_combined())
            && !self.is_uncommon_bucket(id)
    }

    /// Live series not served because several inputs fell into them.
    pub fn summed_drops(&self) -> SummedDrops {
        let mut d = SummedDrops::default();
        for s in self
            .series
            .iter()
            .filter(|s| s.epoch == self.epoch && s.count > 1)
        {
            match s.action {
                Action::DropQuantile => d.quantiles += 1,
                Action::Combine(Op::Drop) => d.by_rule += 1,
                _ => {}
            }
        }
        d.buckets = self.uncommon_bucket_count() as u64;
        d
    }

    /// Serves the counter-like live series from `state` (one list's counter state, just
    /// applied): carried outputs get their carried total, pass-through ones keep their value.
    /// Describes the outputs in `needs_description` to the state, and adds the carried outputs
    /// none of whose inputs was seen in this scrape ([`CounterState::absent`]) as live series.
    pub fn apply_counters(&mut self, state: &mut CounterState, needs_description: &[u128]) {
        // Looked up once per counter-like series: sorted, so a first scrape that describes
        // every output costs n log n, not n^2.
        let mut needs_description = needs_description.to_vec();
        needs_description.sort_unstable();
        let epoch = self.epoch;
        self.fill_outputs();
        for f in &self.families {
            for &id in &f.series {
                let s = &mut self.series[id as usize];
                if s.epoch != epoch || !matches!(s.action, Action::Carry(_)) {
                    continue;
                }
                let output = self.outputs[id as usize];
                if let Some(Served::Carried(v)) = state.served(output) {
                    s.value = v;
                    s.comp = 0.0;
                    s.carried = true;
                    // Departed inputs within the window count as inputs (histogram bounds).
                    s.count = s.count.max(state.tracked_inputs(output).unwrap_or(0));
                }
                if needs_description.binary_search(&output).is_ok() {
                    self.key_scratch.clear();
                    self.keys.get(s.key).write_to(&mut self.key_scratch);
                    let key = &self.key_scratch[..];
                    let typ = if f.meta_epoch == epoch { f.typ } else { None };
                    let help = if f.meta_epoch == epoch && f.has_help {
                        f.help.as_str()
                    } else {
                        ""
                    };
                    state.describe(output, &f.name, typ.unwrap_or("counter"), help, key);
                }
            }
        }
        let absent: Vec<(String, String, String, Vec<u8>, f64, u32)> = state
            .absent()
            .map(|a| {
                (
                    a.family.to_owned(),
                    a.typ.to_owned(),
                    a.help.to_owned(),
                    a.series.to_vec(),
                    a.value,
                    state.tracked_inputs(a.output).unwrap_or(1),
                )
            })
            .collect();
        for (family, typ, help, series, value, inputs) in absent {
            if !help.is_empty() {
                self.set_help(&family, &help);
            }
            self.set_type(&family, &typ);
            let kind = histogram_bounds::carried_kind(&typ, &series);
            let Ok(slot) = self.slot_for(&family, &series, || Ok(()), || Action::Carry(kind))
            else {
                continue;
            };
            self.contribute(
                slot,
                Part {
                    value,
                    comp: 0.0,
                    text: "",
                    timestamp_ms: None,
                    any_now: true,
                    count: 1,
                },
            );
            let s = &mut self.series[slot as usize];
            s.carried = true;
            s.value = value;
            s.count = inputs.max(1);
        }
    }
}

impl<'a> Part<'a> {
    /// One sample.
    #[inline]
    fn of(point: Point<'a>) -> Part<'a> {
        Part {
            value: point.value,
            comp: 0.0,
            text: point.text,
            timestamp_ms: point.timestamp_ms,
            any_now: point.timestamp_ms.is_none(),
            count: 1,
        }
    }
}

/// A `# TYPE` word as text 0.0.4 writes it (OpenMetrics-only types are `untyped`), and as the
/// input wrote it, for OpenMetrics output (`None` for a word neither format knows).
fn type_words(typ: &str) -> (&'static str, Option<&'static str>) {
    let om = match typ {
        "counter" => Some("counter"),
        "gauge" => Some("gauge"),
        "histogram" => Some("histogram"),
        "summary" => Some("summary"),
        "untyped" => Some("untyped"),
        "unknown" => Some("unknown"),
        "info" => Some("info"),
        "stateset" => Some("stateset"),
        "gaugehistogram" => Some("gaugehistogram"),
        _ => None,
    };
    let text = match typ {
        "counter" => "counter",
        "gauge" => "gauge",
        "histogram" => "histogram",
        "summary" => "summary",
        _ => "untyped",
    };
    (text, om)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::labels::LabelBuf;

    fn labels(pairs: &[(&str, &str)]) -> LabelBuf {
        let mut b = LabelBuf::new();
        for (n, v) in pairs {
            b.push(n, v);
        }
        b.sort();
        b
    }

    fn pt(value: f64, text: &str, timestamp_ms: Option<i64>) -> Point<'_> {
        Point {
            value,
            text,
            timestamp_ms,
        }
    }

    /// Adds a sample given as a label set, as the pipeline's general path does.
    fn add(
        a: &mut Aggregator,
        family: &str,
        labels: &LabelBuf,
        value: f64,
        text: &str,
        timestamp_ms: Option<i64>,
    ) -> Result<u32, Rejected> {
        let mut key = KeyBuf::new();
        let added = match key.label_set(labels) {
            Ok(series) => a.add(family, series, pt(value, text, timestamp_ms), |_| {
                Action::Combine(Op::Sum)
            }),
            Err(why) => {
                a.count_rejected(why);
                Err(why)
            }
        };
        added
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
        add(
            &mut a,
            "req",
            &labels(&[("__name__", "req"), ("code", "200")]),
            1.0,
            "1",
            None,
        )
        .unwrap();
        add(
            &mut a,
            "req",
            &labels(&[("__name__", "req"), ("code", "500")]),
            2.0,
            "2",
            None,
        )
        .unwrap();
        add(
            &mut a,
            "req",
            &labels(&[("code", "200"), ("__name__", "req")]),
            3.5,
            "3.5",
            None,
        )
        .unwrap();
        add(&mut a, "up", &labels(&[("__name__", "up")]), 1.0, "1", None).unwrap();
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
        add(
            &mut a,
            "x",
            &labels(&[("__name__", "x")]),
            1e6,
            "1000000",
            None,
        )
        .unwrap();
        add(
            &mut a,
            "y",
            &labels(&[("__name__", "y")]),
            f64::INFINITY,
            "Inf",
            None,
        )
        .unwrap();
        assert_eq!(render(&a), "x 1000000\ny Inf\n");
    }

    #[test]
    fn latest_timestamp_wins_and_nan_propagates() {
        let mut a = Aggregator::new();
        let l = labels(&[("__name__", "x")]);
        add(&mut a, "x", &l, 1.0, "1", Some(2000)).unwrap();
        add(&mut a, "x", &l, f64::NAN, "NaN", Some(1000)).unwrap();
        add(&mut a, "x", &l, 1.0, "1", None).unwrap();
        // An input without a timestamp is "now": the sum is not stamped in 1970.
        assert_eq!(render(&a), "x NaN\n");
    }

    #[test]
    fn default_timestamp_only_where_missing() {
        let mut a = Aggregator::new();
        add(
            &mut a,
            "x",
            &labels(&[("__name__", "x")]),
            1.0,
            "1",
            Some(5),
        )
        .unwrap();
        add(&mut a, "y", &labels(&[("__name__", "y")]), 1.0, "1", None).unwrap();
        let mut out = Vec::new();
        a.render(
            &mut out,
            &RenderOptions {
                default_timestamp_ms: Some(99),
                now_ms: None,
            },
        );
        assert_eq!(String::from_utf8(out).unwrap(), "x 1 5\ny 1 99\n");
    }

    #[test]
    fn nameless_series_are_dropped_and_counted() {
        let mut a = Aggregator::new();
        assert_eq!(
            add(&mut a, "x", &labels(&[("a", "b")]), 1.0, "1", None),
            Err(Rejected::Nameless)
        );
        assert_eq!(a.stats().dropped_nameless, 1);
        assert_eq!(render(&a), "");
    }

    #[test]
    fn families_without_series_are_not_rendered() {
        let mut a = Aggregator::new();
        a.set_help("gone", "All dropped.");
        a.set_type("gone", "gauge");
        a.set_type("om", "stateset");
        add(&mut a, "om", &labels(&[("__name__", "om")]), 1.0, "1", None).unwrap();
        assert_eq!(render(&a), "# TYPE om untyped\nom 1\n");
    }

    #[test]
    fn merge_sums_across_aggregates() {
        let mut a = Aggregator::new();
        a.set_type("x", "counter");
        add(
            &mut a,
            "x",
            &labels(&[("__name__", "x"), ("p", "1")]),
            1.0,
            "1",
            None,
        )
        .unwrap();
        let mut b = Aggregator::new();
        b.set_help("x", "X.");
        add(
            &mut b,
            "x",
            &labels(&[("__name__", "x"), ("p", "1")]),
            2.0,
            "2",
            Some(7),
        )
        .unwrap();
        add(
            &mut b,
            "x",
            &labels(&[("__name__", "x"), ("p", "2")]),
            5.0,
            "5.0",
            None,
        )
        .unwrap();
        add(&mut b, "y", &labels(&[("__name__", "y")]), 3.0, "3", None).unwrap();
        add(&mut b, "y", &labels(&[("__name__", "y")]), 4.0, "4", None).unwrap();
        a.merge_from(&b);
        assert_eq!(
            render(&a),
            "# HELP x X.\n# TYPE x counter\nx{p=\"1\"} 3\nx{p=\"2\"} 5.0\ny 7\n"
        );
    }

    #[test]
    fn scrapes_keep_slots_and_render_only_live_series() {
        let mut a = Aggregator::new();
        a.set_type("x", "gauge");
        let s1 = add(
            &mut a,
            "x",
            &labels(&[("__name__", "x"), ("p", "1")]),
            1.0,
            "1",
            None,
        )
        .unwrap();
        let s2 = add(
            &mut a,
            "x",
            &labels(&[("__name__", "x"), ("p", "2")]),
            2.0,
            "2",
            None,
        )
        .unwrap();
        a.add_to_slot(s1, pt(3.0, "3", None));
        assert_eq!(render(&a), "# TYPE x gauge\nx{p=\"1\"} 4\nx{p=\"2\"} 2\n");

        assert!(!a.begin_scrape());
        assert_eq!(render(&a), "", "nothing is live in a new scrape");
        a.set_help("x", "Now with help.");
        a.add_to_slot(s2, pt(7.0, "7.0", Some(5)));
        assert_eq!(a.series_count(), 1);
        assert_eq!(
            render(&a),
            "# HELP x Now with help.\nx{p=\"2\"} 7.0 5\n",
            "values and metadata are the new scrape's; the old TYPE is gone"
        );
        assert_eq!(
            add(
                &mut a,
                "x",
                &labels(&[("__name__", "x"), ("p", "1")]),
                1.0,
                "1",
                None
            ),
            Ok(s1),
            "a known series keeps its slot"
        );
    }

    #[test]
    fn idle_series_are_evicted_by_compaction() {
        let mut a = Aggregator::new();
        for i in 0..8 {
            let v = i.to_string();
            add(
                &mut a,
                "x",
                &labels(&[("__name__", "x"), ("i", &v)]),
                1.0,
                "1",
                None,
            )
            .unwrap();
        }
        let keep = labels(&[("__name__", "x"), ("i", "7")]);
        let mut compacted = false;
        for _ in 0..=IDLE_SCRAPES + 1 {
            compacted |= a.begin_scrape();
            add(&mut a, "x", &keep, 2.0, "2", None).unwrap();
        }
        assert!(compacted);
        assert_eq!(a.slots(), 1);
        assert_eq!(render(&a), "x{i=\"7\"} 2\n");
        assert_eq!(add(&mut a, "x", &keep, 1.0, "1", None), Ok(0));
        assert_eq!(render(&a), "x{i=\"7\"} 3\n");
    }

    /// An aggregate of `n` series in a few families, some summed, some with timestamps.
    fn filled(n: usize, seed: u64) -> Aggregator {
        let mut a = Aggregator::new();
        for i in 0..n {
            // Pairs of samples sum into one series.
            let fam = format!("f{}", ((i as u64 / 2) ^ seed) % 7);
            let va = (i / 2).to_string();
            let vb = ((i as u64 / 2).wrapping_mul(seed | 1) % 97).to_string();
            let l = labels(&[("__name__", &fam), ("a", &va), ("b", &vb)]);
            let ts = (i % 3 == 0).then_some(i as i64);
            add(&mut a, &fam, &l, i as f64, &i.to_string(), ts).unwrap();
        }
        a
    }

    #[test]
    fn streamed_output_is_the_vec_output() {
        let a = filled(20_000, 3);
        let opts = RenderOptions {
            default_timestamp_ms: Some(7),
            now_ms: Some(1),
        };
        let mut whole = Vec::new();
        a.render(&mut whole, &opts);
        assert!(whole.len() > 3 * RENDER_CHUNK, "spills several times");
        let mut streamed = Vec::new();
        a.render_to(&mut streamed, &opts).unwrap();
        assert_eq!(streamed, whole);
        // Every spill ends a line.
        let mut spills = Vec::new();
        let mut buf = Vec::new();
        a.render_chunked(&mut buf, &opts, 1, |b| {
            spills.push(std::mem::take(b));
            Ok(())
        })
        .unwrap();
        assert!(buf.is_empty());
        assert!(spills.iter().all(|s| s.ends_with(b"\n")));
        assert_eq!(spills.concat(), whole);
    }

    #[test]
    fn a_failed_write_is_reported() {
        struct Full;
        impl std::io::Write for Full {
            fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
                Err(std::io::Error::other("full"))
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let a = filled(10, 1);
        assert!(a.render_to(&mut Full, &RenderOptions::default()).is_err());
    }

    /// The shares' texts in order, rendered one by one and on threads, against the whole.
    fn assert_shares_make_the_whole(a: &Aggregator, opts: &RenderOptions, n: usize) {
        let mut whole = Vec::new();
        a.render(&mut whole, opts);
        let shares = a.render_shares(n);
        assert!(!shares.is_empty() && shares.len() <= n.max(1), "{shares:?}");
        let mut joined = Vec::new();
        for share in &shares {
            a.render_share_to(*share, &mut joined, opts).unwrap();
        }
        assert_eq!(
            String::from_utf8_lossy(&joined),
            String::from_utf8_lossy(&whole),
            "{n} shares"
        );
        let mut writers = vec![Vec::new(); n];
        a.render_parallel(opts, &mut writers).unwrap();
        assert_eq!(writers.concat(), whole, "{n} threads");
    }

    #[test]
    fn shares_cut_inside_families_and_skip_idle_series() {
        let mut a = filled(5_000, 11);
        // A second scrape where only every third series comes back: the others are idle and
        // not served, and a family may be idle as a whole.
        a.begin_scrape();
        for i in (0..5_000usize).step_by(3) {
            let fam = format!("f{}", ((i as u64 / 2) ^ 11) % 7);
            if fam == "f2" {
                continue;
            }
            let (va, vb) = (
                (i / 2).to_string(),
                ((i as u64 / 2).wrapping_mul(11) % 97).to_string(),
            );
            let l = labels(&[("__name__", &fam), ("a", &va), ("b", &vb)]);
            add(&mut a, &fam, &l, 1.0, "1", None).unwrap();
        }
        let opts = RenderOptions {
            default_timestamp_ms: None,
            now_ms: Some(9),
        };
        for n in [1, 2, 3, 4, 7, 8, 64, 5_000, 20_000] {
            assert_shares_make_the_whole(&a, &opts, n);
        }
        assert_shares_make_the_whole(&Aggregator::new(), &opts, 4);
    }

    proptest::proptest! {
        #[test]
        fn shares_make_the_whole_for_any_aggregate(n in 0usize..2000, seed in proptest::prelude::any::<u64>(), threads in 1usize..6) {
            let a = filled(n, seed);
            assert_shares_make_the_whole(&a, &RenderOptions { default_timestamp_ms: Some(3), now_ms: Some(5) }, threads);
        }

        #[test]
        fn streamed_equals_vec_for_any_aggregate(n in 0usize..3000, seed in proptest::prelude::any::<u64>()) {
            let a = filled(n, seed);
            let opts = RenderOptions { default_timestamp_ms: None, now_ms: Some(5) };
            let mut whole = Vec::new();
            a.render(&mut whole, &opts);
            let mut streamed = Vec::new();
            a.render_to(&mut streamed, &opts).unwrap();
            proptest::prop_assert_eq!(streamed, whole);
        }
    }

    #[test]
    fn a_series_record_is_64_bytes() {
        assert!(
            std::mem::size_of::<Series>() <= 64,
            "{}",
            std::mem::size_of::<Series>()
        );
    }

    #[test]
    fn ingress_shaped_keys_are_stored_small_and_read_back_exactly() {
        let mut a = Aggregator::new();
        let mut want = Vec::new();
        for i in 0..300 {
            let ingress = format!("web-{i}");
            let host = format!("web-{i}.acme.io");
            let ns = format!("team-{}", i % 50);
            for status in ["200", "404"] {
                for (name, le) in [
                    ("h_bucket", "0.005"),
                    ("h_bucket", "0.01"),
                    ("h_bucket", "0.25"),
                    ("h_bucket", "+Inf"),
                    ("h_sum", ""),
                    ("h_count", ""),
                ] {
                    let l = labels(&[
                        ("__name__", name),
                        ("controller_class", "k8s.io/ingress-nginx"),
                        ("controller_namespace", "ingress-nginx"),
                        ("controller_pod", "ingress-nginx-controller-7d9f8c6b5-x2x9q"),
                        ("host", &host),
                        ("ingress", &ingress),
                        ("le", le),
                        ("method", "GET"),
                        ("namespace", &ns),
                        ("service", &ingress),
                        ("status", status),
                    ]);
                    add(&mut a, "h", &l, 1.0, "1", None).unwrap();
                    let mut k = KeyBuf::new();
                    want.push(k.label_set(&l).unwrap().as_bytes().to_vec());
                }
            }
        }
        for (slot, k) in want.iter().enumerate() {
            let mut got = Vec::new();
            a.keys.get(a.series[slot].key).write_to(&mut got);
            assert_eq!(&got, k);
        }
        let text: usize = want.iter().map(Vec::len).sum();
        // Blocks are reserved 64 KiB at a time: compare what they hold at this size loosely.
        assert!(a.keys.bytes() * 4 < text, "{} of {text}", a.keys.bytes());
        assert_eq!(a.keys.text_bytes(), text);
    }

    #[test]
    fn metadata_alone_makes_no_family_and_waits_one_scrape_for_a_sample() {
        let mut a = Aggregator::new();
        for i in 0..10_000 {
            a.set_help(&format!("only_help_{i}"), "Never sampled.");
            a.set_type(&format!("only_help_{i}"), "counter");
        }
        a.set_help("x_bytes", "X.");
        a.set_type("x_bytes", "gauge");
        a.set_unit("x_bytes", "bytes");
        a.set_type("s", "stateset");
        assert_eq!(a.family_count(), 0);
        // A sample later in the same scrape creates the family with its metadata.
        let x = labels(&[("__name__", "x_bytes")]);
        add(&mut a, "x_bytes", &x, 1.0, "1", None).unwrap();
        add(
            &mut a,
            "s",
            &labels(&[("__name__", "s"), ("s", "a")]),
            1.0,
            "1",
            None,
        )
        .unwrap();
        assert_eq!(a.family_count(), 2);
        assert_eq!(
            render(&a),
            "# HELP x_bytes X.\n# TYPE x_bytes gauge\nx_bytes 1\n# TYPE s untyped\ns{s=\"a\"} 1\n"
        );
        let mut om = Vec::new();
        a.render_openmetrics(&mut om, &RenderOptions::default());
        let om = String::from_utf8(om).unwrap();
        assert!(om.contains("# UNIT x_bytes bytes\n"), "{om}");
        assert!(om.contains("# TYPE s stateset\n"), "{om}");
        // The pending metadata is gone with the next scrape: it never reaches a later sample.
        let before = a.family_bytes();
        a.begin_scrape();
        assert!(
            a.family_bytes() < before,
            "{} >= {before}",
            a.family_bytes()
        );
        a.set_help("y", "Y.");
        a.begin_scrape();
        add(&mut a, "y", &labels(&[("__name__", "y")]), 2.0, "2", None).unwrap();
        assert_eq!(render(&a), "y 2\n");
    }

    /// The counter identity of a bucket is computed from its slot's family (its `le` by value),
    /// also after a compaction dropped families before it and renumbered the rest.
    #[test]
    fn counter_identity_follows_family_compaction() {
        let mut a = Aggregator::new();
        let bucket = |a: &mut Aggregator, le: &str| {
            let mut key = KeyBuf::new();
            let l = labels(&[("__name__", "h_bucket"), ("le", le)]);
            let series = key.label_set(&l).unwrap();
            a.add("h", series, pt(1.0, "1", None), |_| {
                Action::Carry(Kind::Bucket)
            })
            .unwrap()
        };
        let mut first = 0;
        for scrape in 0..20 {
            a.begin_scrape();
            for i in 0..10 {
                let name = format!("gone_{scrape}_{i}");
                add(
                    &mut a,
                    &name,
                    &labels(&[("__name__", &name)]),
                    1.0,
                    "1",
                    None,
                )
                .unwrap();
            }
            a.set_type("h", "histogram");
            first = bucket(&mut a, "1");
        }
        // Created in the first scrape, after ten families the compactions dropped since.
        assert!(a.family_count() < 20 * 10);
        let late = bucket(&mut a, "10");
        let (_, output) = a.carry(first).unwrap();
        assert_eq!(
            output,
            crate::counters::output_hash(b"h_bucket{le=\"1.0\"}")
        );
        let (_, output) = a.carry(late).unwrap();
        assert_eq!(
            output,
            crate::counters::output_hash(b"h_bucket{le=\"10.0\"}")
        );
    }

    #[test]
    fn families_expire_with_their_series() {
        let mut a = Aggregator::new();
        for scrape in 0..40 {
            a.begin_scrape();
            for i in 0..100 {
                let name = format!("churn_{scrape}_{i}");
                a.set_help(&name, "Seen once.");
                add(
                    &mut a,
                    &name,
                    &labels(&[("__name__", &name)]),
                    1.0,
                    "1",
                    None,
                )
                .unwrap();
            }
            add(&mut a, "up", &labels(&[("__name__", "up")]), 1.0, "1", None).unwrap();
        }
        // Series idle for IDLE_SCRAPES go once they are a quarter of all; their families too.
        assert!(
            a.family_count() <= 100 * (IDLE_SCRAPES as usize + 3) + 1,
            "{}",
            a.family_count()
        );
        assert_eq!(a.family_count(), a.slots());
        // First-seen order stays: `up` came after the first scrape's names.
        assert!(render(&a).starts_with("up 1\n# HELP churn_39_0 Seen once.\nchurn_39_0 1\n"));
        // A family that comes back is created again, last.
        add(
            &mut a,
            "churn_0_0",
            &labels(&[("__name__", "churn_0_0")]),
            5.0,
            "5",
            None,
        )
        .unwrap();
        assert!(render(&a).ends_with("churn_39_99 1\nchurn_0_0 5\n"));
    }

    #[test]
    fn clear_resets() {
        let mut a = Aggregator::new();
        add(&mut a, "x", &labels(&[("__name__", "x")]), 1.0, "1", None).unwrap();
        a.clear();
        assert_eq!(a.series_count(), 0);
        add(&mut a, "x", &labels(&[("__name__", "x")]), 2.0, "2", None).unwrap();
        assert_eq!(render(&a), "x 2\n");
    }
}
