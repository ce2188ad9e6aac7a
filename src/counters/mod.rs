//! Counter state across scrapes: summed counters that survive restarts, departures and timeouts.
//!
//! When several input series sum into one output series (pods behind a `dns+` upstream, or
//! series that a `labeldrop` merges), a plain sum of the current values drops whenever one
//! input restarts or goes away, and Prometheus' `rate()` reads every drop as a counter reset.
//! [`CounterState`] remembers each input's last value and carries a total per output that
//! grows the way Prometheus itself would count each input:
//!
//! - an input that rose adds the difference; one that fell (or whose process restarted) was
//!   reset and adds its whole new value;
//! - an input that is missing (its target failed, timed out, left the DNS answer, or the series
//!   vanished) keeps its last value in the total; when it comes back, only its rise is added;
//! - inputs unseen for the staleness window are forgotten (what they contributed stays), and
//!   an output whose inputs are all forgotten expires.
//!
//! An output that has only ever had one input within the window is not carried: it passes
//! that input's value through, so a restart shows as the same reset Prometheus would see
//! scraping the input directly. It becomes carried when a second input appears, starting from
//! the plain sum of its inputs' values, so before any reset or departure a carried output
//! equals the plain sum.
//!
//! The state is pure data: no I/O, no parsing, no clocks. Each scrape has two phases. While
//! targets are read (in parallel, without the state), every sample of a counter-like family
//! is recorded into that target's [`TargetScrape`]. Then [`CounterState::apply`], under the
//! caller's lock, resolves restarts and resets with every observation in hand (a target's
//! `process_start_time_seconds`, a histogram's `_count`, may come after the samples they
//! decide) and updates the totals; [`CounterState::served`] and [`CounterState::absent`] tell
//! what to serve.
//!
//! Keys are 128-bit hashes: an input is identified by its target and the hash of its raw
//! series text, an output by [`output_hash`] of its rendered series. Neither depends on slots,
//! caches or relabel rules, so the state survives a series-cache compaction, an aggregator
//! renumbering, a configuration reload (outputs that still exist keep their totals) and, with
//! [`CounterState::serialize`], a restart.
//!
//! Memory: an input costs one 32-byte [`InputRecord`] plus its index-table slot (about 40
//! bytes in all; see `memory_per_input` in the tests); output key text is stored only for
//! outputs that are carried and so may have to be served while none of their inputs is seen.

use std::borrow::Borrow;
use std::collections::VecDeque;

use hashbrown::{HashMap, HashTable};

use crate::sum::Sum;

mod descriptions;
mod encoding;
pub mod state_file;
mod target_scrape;

use descriptions::{DescId, Descriptions};
pub use encoding::{StateError, FORMAT_VERSION};
use target_scrape::Observation;
pub use target_scrape::TargetScrape;

/// The staleness window's default: five minutes, as Prometheus' own lookback delta.
pub const DEFAULT_STALENESS_MS: u64 = 5 * 60 * 1000;

/// A process start time that moved by more than this many seconds means the target restarted.
/// Exporters that derive the start time from the uptime may jitter by rounding; a restart
/// moves it by at least the time between two scrapes.
pub const START_TIME_TOLERANCE_S: f64 = 1.0;

/// The hash that identifies an output series: the series as rendered (`name{sorted labels}`,
/// the aggregator's key). Deterministic across processes, so it can be stored.
///
/// Keep one [`CounterState`] per rule list: the same series text in two lists is two outputs.
pub fn output_hash(series: &[u8]) -> u128 {
    xxhash_rust::xxh3::xxh3_128_with_seed(series, 0x6f75_7470_7574)
}

/// The hash that identifies a target (its name, e.g. `10.0.0.5:10254`).
pub fn target_hash(target: &str) -> u128 {
    xxhash_rust::xxh3::xxh3_128_with_seed(target.as_bytes(), 0x7461_7267_6574)
}

/// What an observed sample is; it decides how a reset is detected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Kind {
    /// A counter sample (`x_total`, or a 0.0.4 counter). Reset when its value falls or its
    /// target restarted.
    Counter = 0,
    /// A histogram `_bucket`. Reset with its group, or when its own value falls.
    Bucket = 1,
    /// A histogram's or summary's `_count`. It decides its group's reset: fell, or its target
    /// restarted.
    Count = 2,
    /// A histogram's or summary's `_sum`. Reset only with its group (a `_sum` falls without a
    /// reset when observations are negative); by its own value only when its group's `_count`
    /// was not observed.
    Sum = 3,
}

impl Kind {
    fn from_bits(bits: u64) -> Kind {
        match bits & 3 {
            0 => Kind::Counter,
            1 => Kind::Bucket,
            2 => Kind::Count,
            _ => Kind::Sum,
        }
    }
}

/// Per input series: 32 bytes, no label text.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InputRecord {
    /// Target hash XOR series hash.
    key: u128,
    /// The last finite value observed.
    last: f64,
    /// The scrape ([`CounterState`] epoch) it was last observed in.
    seen: u32,
    /// Index of its output in `outputs`.
    output: u32,
}

/// A family's metadata, for serving carried outputs none of whose inputs was seen.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Family {
    name: Box<str>,
    typ: Box<str>,
    help: Box<str>,
}

/// Per output series: 64 bytes. The hash is kept as two words so the record is aligned to 8
/// bytes, not 16; the scrape being applied adds its contributions straight to `total` (an
/// output that stays passed through has it set to its value afterwards), and an output's
/// newness in that scrape is a flag, not the epoch that created it.
#[derive(Debug, Clone, PartialEq)]
struct OutputRecord {
    /// Its [`output_hash`], low word first (see [`OutputRecord::hash`]).
    hash_words: [u64; 2],
    /// Carried: the total. Not carried: the single input's last finite value (so that
    /// becoming carried continues from what was served). During [`CounterState::apply`] it
    /// also takes the scrape's contributions.
    total: Sum,
    /// The latest value observed from any of its inputs (served when not carried).
    raw: f64,
    /// Number of tracked inputs (seen within the window) that sum into it.
    inputs: u32,
    /// The scrape it was last observed in.
    seen: u32,
    /// The last scrape in which it had two or more tracked inputs.
    multi: u32,
    /// Created by the scrape being applied (cleared when that scrape's outputs are settled).
    new: bool,
    carried: bool,
    /// False for a free slot.
    alive: bool,
    /// Its rendered series and family, in [`CounterState::descriptions`].
    description: Option<DescId>,
}

impl OutputRecord {
    /// A record for output `hash`; `new` when the scrape being applied creates it.
    fn new(hash: u128, new: bool) -> OutputRecord {
        OutputRecord {
            hash_words: [hash as u64, (hash >> 64) as u64],
            total: Sum::new(),
            raw: 0.0,
            inputs: 0,
            seen: 0,
            multi: 0,
            new,
            carried: false,
            alive: true,
            description: None,
        }
    }

    /// Its [`output_hash`].
    #[inline]
    fn hash(&self) -> u128 {
        u128::from(self.hash_words[0]) | u128::from(self.hash_words[1]) << 64
    }
}

/// Per target.
#[derive(Debug, Clone, Copy, PartialEq)]
struct TargetRecord {
    /// Its `process_start_time_seconds`, when it has one.
    start: Option<f64>,
    /// The scrape it was last seen in.
    seen: u32,
    /// The scrape in which a restart was last detected (0: never).
    restart: u32,
}

/// Counters for self-metrics. Gauges are the current sizes; the rest count since the state
/// was created (or loaded).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CounterStats {
    /// Input series tracked (seen within the staleness window).
    pub inputs_tracked: usize,
    /// Output series tracked.
    pub outputs_tracked: usize,
    /// Outputs currently carried (summing two or more inputs within the window).
    pub outputs_carried: usize,
    /// Inputs found reset (value fell, group `_count` fell, or target restarted).
    pub resets: u64,
    /// Targets whose `process_start_time_seconds` changed.
    pub target_restarts: u64,
    /// Inputs forgotten after the staleness window.
    pub inputs_expired: u64,
    /// Outputs that expired (all inputs gone for the window).
    pub outputs_expired: u64,
    /// New inputs whose first value was not counted (see [`CounterState::apply`]).
    pub first_samples_skipped: u64,
    /// Observations with a NaN or infinite value, which leave the totals unchanged.
    pub non_finite: u64,
    /// [`CounterState::apply`] calls refused because their sequence number was not newer.
    pub scrapes_refused: u64,
}

/// What to serve for an output.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Served {
    /// One input within the window: its value as observed (serve the input's own text).
    PassThrough(f64),
    /// The carried total.
    Carried(f64),
}

impl Served {
    /// The value, either way.
    pub fn value(self) -> f64 {
        match self {
            Served::PassThrough(v) | Served::Carried(v) => v,
        }
    }
}

/// A carried output that none of its inputs fed in the last scrape, to be served anyway.
#[derive(Debug, Clone, PartialEq)]
pub struct Absent<'a> {
    /// Its [`output_hash`].
    pub output: u128,
    /// The family name, `# TYPE` word and `# HELP` text given by [`CounterState::describe`].
    pub family: &'a str,
    /// The family's `# TYPE` word.
    pub typ: &'a str,
    /// The family's `# HELP` text (unescaped; may be empty).
    pub help: &'a str,
    /// The rendered series (`name{labels}`), read back from the state's compact store.
    pub series: Vec<u8>,
    /// The carried total.
    pub value: f64,
}

/// What one [`CounterState::apply`] did, beyond the values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// Outputs that expired in this scrape: stop serving them (and forget their hashes).
    pub expired: Vec<u128>,
    /// Carried outputs without a description: pass each one to [`CounterState::describe`]
    /// (they were observed in this scrape, so their series is at hand), so they can be served
    /// when none of their inputs is seen.
    pub needs_description: Vec<u128>,
    /// Inputs found reset in this scrape.
    pub resets: u64,
}

/// [`CounterState::apply`] refused a scrape that is not newer than the last one applied: a
/// response that finished late, or the same one twice. The state is unchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("scrape {seq} refused: scrape {last} was already applied")]
pub struct Refused {
    /// The refused sequence number.
    pub seq: u64,
    /// The last applied one.
    pub last: u64,
}

/// Reset-safe, failure-safe counter state for the outputs of one rule list. See the module
/// documentation for the rules.
///
/// Not thread-safe by itself: keep it behind the lock that serializes scrapes.
#[derive(Debug, Clone)]
pub struct CounterState {
    staleness_ms: u64,
    inputs: Vec<InputRecord>,
    /// Indices into `inputs`, by `key`.
    input_index: HashTable<u32>,
    /// The input after the last one found: upstreams send series in the same order every
    /// scrape, so checking it first turns most lookups into a sequential walk.
    cursor: usize,
    /// No input has `seen` below this (a lower bound): the sweep is skipped until the cutoff
    /// passes it.
    min_seen: u32,
    outputs: Vec<OutputRecord>,
    output_index: HashTable<u32>,
    free_outputs: Vec<u32>,
    /// Outputs that may have no input left (a reload moved their inputs away).
    orphans: bool,
    families: Vec<Family>,
    family_index: HashMap<Box<str>, u32>,
    /// The rendered series of described outputs.
    descriptions: Descriptions,
    targets: HashMap<u128, TargetRecord>,
    /// Scrapes applied so far; the `seen` of everything.
    epoch: u32,
    /// (epoch, time) of the scrapes within the window, oldest first.
    times: VecDeque<(u32, i64)>,
    last_seq: Option<u64>,
    last_now_ms: Option<i64>,
    stats: CounterStats,
    /// Scratch: group -> reset, per scrape.
    groups: HashMap<(u32, u64), bool>,
    /// Scratch: outputs observed in the scrape being applied.
    touched: Vec<u32>,
}

/// The table hash of a key that is already a hash.
#[inline]
fn low_bits(key: u128) -> u64 {
    key as u64
}

impl Default for CounterState {
    fn default() -> Self {
        CounterState::new(DEFAULT_STALENESS_MS)
    }
}

impl CounterState {
    /// An empty state whose inputs are forgotten after `staleness_ms` without being seen.
    pub fn new(staleness_ms: u64) -> CounterState {
        CounterState {
            staleness_ms,
            inputs: Vec::new(),
            input_index: HashTable::new(),
            cursor: 0,
            min_seen: 0,
            outputs: Vec::new(),
            output_index: HashTable::new(),
            free_outputs: Vec::new(),
            orphans: false,
            families: Vec::new(),
            family_index: HashMap::new(),
            descriptions: Descriptions::default(),
            targets: HashMap::new(),
            epoch: 0,
            times: VecDeque::new(),
            last_seq: None,
            last_now_ms: None,
            stats: CounterStats::default(),
            groups: HashMap::new(),
            touched: Vec::new(),
        }
    }

    /// The staleness window in milliseconds.
    pub fn staleness_ms(&self) -> u64 {
        self.staleness_ms
    }

    /// Changes the staleness window (a reload); it applies from the next scrape.
    pub fn set_staleness_ms(&mut self, staleness_ms: u64) {
        self.staleness_ms = staleness_ms;
    }

    /// Self-metric counters.
    pub fn stats(&self) -> CounterStats {
        CounterStats {
            inputs_tracked: self.inputs.len(),
            outputs_tracked: self.outputs.len() - self.free_outputs.len(),
            ..self.stats
        }
    }

    /// Bytes held for inputs: the records' and the index table's allocations (capacity, not
    /// length).
    pub fn input_bytes(&self) -> usize {
        self.inputs.capacity() * std::mem::size_of::<InputRecord>()
            + self.input_index.allocation_size()
    }

    /// Bytes held in all (inputs, outputs, descriptions, targets), approximately.
    pub fn memory_bytes(&self) -> usize {
        self.input_bytes()
            + self.outputs.capacity() * std::mem::size_of::<OutputRecord>()
            + self.output_index.allocation_size()
            + self.descriptions.bytes()
            + self.targets.allocation_size()
            + self.family_bytes()
    }

    /// Bytes held by the families of described outputs: records, texts and the name index
    /// (whose keys repeat the names).
    fn family_bytes(&self) -> usize {
        let texts: usize = self
            .families
            .iter()
            .map(|f| 2 * f.name.len() + f.typ.len() + f.help.len())
            .sum();
        self.families.capacity() * std::mem::size_of::<Family>()
            + self.family_index.allocation_size()
            + texts
    }

    /// Families described (see [`CounterState::describe`]) and still referred to by a carried
    /// output, or not yet pruned.
    pub fn family_count(&self) -> usize {
        self.families.len()
    }

    /// Applies one scrape: every target that answered in full, each once. `seq` orders
    /// scrapes: it must be greater than the last applied one, or the scrape is refused and
    /// nothing changes, so a response that finished late, or the same one twice, is never
    /// applied (sequence numbers belong to one process: a state just loaded accepts any).
    /// `now_ms` is the scrape's time (wall clock, ms); a time before the last one counts as
    /// the last one.
    ///
    /// Per observed input, under Prometheus' reset rule:
    /// - reset when its target's process start time changed (or changed while the input was
    ///   not seen), when its histogram's or summary's `_count` fell (buckets, `_sum` and
    ///   `_count` of that group together), or when its own value fell (buckets and counters;
    ///   a `_sum` only when its `_count` is not observed): the output grows by the new value;
    /// - otherwise the output grows by the difference from the input's last value;
    /// - a new input counts in full when its output is new in this scrape (so outputs start as
    ///   the plain sum), when its target was seen within the window (a new series of a running
    ///   process), or when its target's process started after the previous scrape (a new
    ///   pod); otherwise (a target not seen within the window, whose process is older than the
    ///   previous scrape or unknown, e.g. one that was failing) it counts from its second
    ///   sample, so a long-running target that comes back does not add its whole history.
    ///
    /// Then inputs unseen for the window are forgotten and outputs left without inputs for
    /// the window expire.
    pub fn apply<T: Borrow<TargetScrape>>(
        &mut self,
        seq: u64,
        now_ms: i64,
        scrapes: &[T],
    ) -> Result<ApplyReport, Refused> {
        if let Some(last) = self.last_seq {
            if seq <= last {
                self.stats.scrapes_refused += 1;
                return Err(Refused { seq, last });
            }
        }
        self.last_seq = Some(seq);
        let prev_now_ms = self.last_now_ms;
        let now_ms = prev_now_ms.map_or(now_ms, |p| now_ms.max(p));
        self.last_now_ms = Some(now_ms);
        self.epoch = self.epoch.saturating_add(1);
        let epoch = self.epoch;
        self.times.push_back((epoch, now_ms));
        let mut report = ApplyReport::default();

        // Targets: restarts, and whether a new input of theirs counts in full.
        let mut target_info = Vec::with_capacity(scrapes.len());
        for ts in scrapes.iter().map(Borrow::borrow) {
            let started_since = match (ts.process_start, prev_now_ms) {
                (Some(s), Some(prev)) => s * 1000.0 > prev as f64,
                _ => false,
            };
            let (known, restarted, restart_epoch) = match self.targets.get_mut(&ts.target) {
                Some(rec) => {
                    let restarted = match (rec.start, ts.process_start) {
                        (Some(old), Some(new)) => (new - old).abs() > START_TIME_TOLERANCE_S,
                        _ => false,
                    };
                    if restarted {
                        rec.restart = epoch;
                        self.stats.target_restarts += 1;
                    }
                    if ts.process_start.is_some() {
                        rec.start = ts.process_start;
                    }
                    rec.seen = epoch;
                    (true, restarted, rec.restart)
                }
                None => {
                    self.targets.insert(
                        ts.target,
                        TargetRecord {
                            start: ts.process_start,
                            seen: epoch,
                            restart: 0,
                        },
                    );
                    (false, false, 0)
                }
            };
            target_info.push(TargetInfo {
                restarted,
                restart_epoch,
                count_first: known || started_since,
            });
        }

        // Groups: a histogram or summary resets as a whole, decided by its `_count`.
        self.groups.clear();
        for (t, ts) in scrapes.iter().map(Borrow::borrow).enumerate() {
            let info = target_info[t];
            for o in &ts.observations {
                if o.kind() != Kind::Count || !o.value.is_finite() {
                    continue;
                }
                let key = ts.target ^ o.series;
                let reset = info.restarted
                    || self.find_input(key).is_some_and(|i| {
                        let rec = &self.inputs[i];
                        rec.seen < info.restart_epoch || o.value < rec.last
                    });
                self.groups.insert((t as u32, o.group()), reset);
            }
        }

        // Observations.
        self.touched.clear();
        self.touched
            .reserve(self.outputs.len() - self.free_outputs.len());
        for (t, ts) in scrapes.iter().map(Borrow::borrow).enumerate() {
            let info = target_info[t];
            for o in &ts.observations {
                self.observe(t as u32, ts.target, info, o, &mut report);
            }
        }

        // Outputs: carried or not, and their new totals.
        let cutoff = self.cutoff(now_ms);
        for &idx in &self.touched {
            let out = &mut self.outputs[idx as usize];
            if out.inputs >= 2 {
                out.multi = epoch;
                if !out.carried {
                    out.carried = true;
                    self.stats.outputs_carried += 1;
                }
            }
            out.new = false;
            if out.carried {
                // Back to passing through only where that does not change what is served.
                if out.inputs == 1 && out.multi < cutoff && out.total.value() == out.raw {
                    out.carried = false;
                    if let Some(d) = out.description.take() {
                        self.descriptions.remove(d);
                    }
                    self.stats.outputs_carried -= 1;
                } else if out.description.is_none() {
                    report.needs_description.push(out.hash());
                }
            } else if out.raw.is_finite() {
                out.total = Sum::from(out.raw);
            }
        }

        self.sweep(cutoff, &mut report);
        if self.descriptions.wants_rebuild() {
            self.rebuild_descriptions();
        }
        self.trim();
        Ok(report)
    }

    /// Gives back the capacity that growth by doubling left unused: a state built in one
    /// scrape (851k inputs, 426k outputs on the 2x ingress payload) would otherwise hold
    /// records for 1M and 524k. A little headroom stays so a slowly growing state is not
    /// copied every scrape; large buffers live in their own mappings, so shrinking them moves
    /// no bytes. (The unused tail was never touched, so this lowers the address space and
    /// [`CounterState::memory_bytes`] rather than the resident set.)
    fn trim(&mut self) {
        fn trim_vec<T>(v: &mut Vec<T>) {
            let keep = v.len() + v.len() / 32;
            if v.capacity() > keep + v.len() / 32 {
                v.shrink_to(keep);
            }
        }
        trim_vec(&mut self.inputs);
        trim_vec(&mut self.outputs);
        trim_vec(&mut self.free_outputs);
        // Scratch of one scrape: the next one reserves what it needs at once.
        self.touched = Vec::new();
    }

    /// Applies one observation.
    #[inline]
    fn observe(
        &mut self,
        t: u32,
        target: u128,
        info: TargetInfo,
        o: &Observation,
        report: &mut ApplyReport,
    ) {
        let epoch = self.epoch;
        let key = target ^ o.series;
        let kind = o.kind();
        let input = self.find_input(key);
        if let Some(i) = input {
            self.cursor = i + 1;
        }
        // The output: usually the one the input already sums into.
        let out_idx = match input {
            Some(i) if self.outputs[self.inputs[i].output as usize].hash() == o.output => {
                self.inputs[i].output
            }
            _ => self.output_for(o.output),
        };
        let output_is_new = self.outputs[out_idx as usize].new;
        let value = o.value;
        let finite = value.is_finite();
        if !finite {
            self.stats.non_finite += 1;
        }
        let contribution = match input {
            Some(i) => {
                let rec = self.inputs[i];
                let moved = rec.output != out_idx;
                if moved {
                    // A reload sent the input to another output: it leaves the old one
                    // (whose total keeps what it contributed) and joins the new one.
                    let old = &mut self.outputs[rec.output as usize];
                    old.inputs -= 1;
                    if old.inputs == 0 {
                        self.orphans = true;
                        // Every input went to another output (a reload changed the rules): the
                        // old output no longer exists, so it expires now instead of being
                        // served without inputs for the window.
                        if old.seen != epoch {
                            old.seen = 0;
                        }
                    }
                    self.outputs[out_idx as usize].inputs += 1;
                    self.inputs[i].output = out_idx;
                }
                self.inputs[i].seen = epoch;
                if !finite {
                    0.0
                } else if moved {
                    self.inputs[i].last = value;
                    if output_is_new {
                        value
                    } else {
                        self.stats.first_samples_skipped += 1;
                        0.0
                    }
                } else {
                    let fell = value < rec.last;
                    let group_reset = || self.groups.get(&(t, o.group())).copied();
                    let reset = info.restarted
                        || rec.seen < info.restart_epoch
                        || match kind {
                            Kind::Counter => fell,
                            Kind::Bucket => fell || group_reset() == Some(true),
                            Kind::Count => fell,
                            Kind::Sum => group_reset().unwrap_or(fell),
                        };
                    self.inputs[i].last = value;
                    if reset {
                        self.stats.resets += 1;
                        report.resets += 1;
                        if kind == Kind::Sum {
                            value
                        } else {
                            // A counter is never negative; a broken one must not lower a total.
                            value.max(0.0)
                        }
                    } else {
                        value - rec.last
                    }
                }
            }
            None => {
                let rec = InputRecord {
                    key,
                    last: if finite { value } else { 0.0 },
                    seen: epoch,
                    output: out_idx,
                };
                self.insert_input(rec);
                self.cursor = self.inputs.len();
                self.outputs[out_idx as usize].inputs += 1;
                if !finite {
                    0.0
                } else if output_is_new || info.count_first {
                    value
                } else {
                    self.stats.first_samples_skipped += 1;
                    0.0
                }
            }
        };
        let out = &mut self.outputs[out_idx as usize];
        out.total.add(contribution);
        out.raw = value;
        if out.seen != epoch {
            out.seen = epoch;
            self.touched.push(out_idx);
        }
    }

    /// The index of input `key`, checking the one after the last hit first.
    #[inline]
    fn find_input(&self, key: u128) -> Option<usize> {
        if self.inputs.get(self.cursor).is_some_and(|r| r.key == key) {
            return Some(self.cursor);
        }
        let inputs = &self.inputs;
        self.input_index
            .find(low_bits(key), |&i| inputs[i as usize].key == key)
            .map(|&i| i as usize)
    }

    fn insert_input(&mut self, rec: InputRecord) {
        let id = self.inputs.len() as u32;
        self.inputs.push(rec);
        let inputs = &self.inputs;
        self.input_index
            .insert_unique(low_bits(rec.key), id, |&i| low_bits(inputs[i as usize].key));
    }

    /// The index of output `hash`, created when it is not tracked.
    fn output_for(&mut self, hash: u128) -> u32 {
        let outputs = &self.outputs;
        if let Some(&i) = self
            .output_index
            .find(low_bits(hash), |&i| outputs[i as usize].hash() == hash)
        {
            return i;
        }
        let rec = OutputRecord::new(hash, true);
        let idx = match self.free_outputs.pop() {
            Some(i) => {
                self.outputs[i as usize] = rec;
                i
            }
            None => {
                self.outputs.push(rec);
                (self.outputs.len() - 1) as u32
            }
        };
        let outputs = &self.outputs;
        self.output_index.insert_unique(low_bits(hash), idx, |&i| {
            low_bits(outputs[i as usize].hash())
        });
        idx
    }

    /// The oldest epoch still within the window at `now_ms` (dropping older scrape times).
    fn cutoff(&mut self, now_ms: i64) -> u32 {
        let horizon = now_ms.saturating_sub(i64::try_from(self.staleness_ms).unwrap_or(i64::MAX));
        while self.times.front().is_some_and(|&(_, t)| t < horizon) && self.times.len() > 1 {
            self.times.pop_front();
        }
        match self.times.front() {
            Some(&(e, t)) if t >= horizon => e,
            // Only the current scrape is left, and even it is outside a zero window.
            _ => self.epoch,
        }
    }

    /// Forgets inputs and targets not seen since before `cutoff`; expires outputs left
    /// without inputs and not seen since before `cutoff`.
    fn sweep(&mut self, cutoff: u32, report: &mut ApplyReport) {
        self.targets.retain(|_, t| t.seen >= cutoff);
        let mut swept = false;
        if cutoff > self.min_seen {
            swept = true;
            let mut min_seen = self.epoch;
            let mut i = 0;
            while i < self.inputs.len() {
                let rec = self.inputs[i];
                if rec.seen >= cutoff {
                    min_seen = min_seen.min(rec.seen);
                    i += 1;
                    continue;
                }
                self.stats.inputs_expired += 1;
                self.outputs[rec.output as usize].inputs -= 1;
                self.remove_input(i);
            }
            self.min_seen = min_seen;
            self.cursor = 0;
        }
        if swept || self.orphans {
            self.orphans = false;
            for idx in 0..self.outputs.len() {
                let out = &self.outputs[idx];
                if !out.alive || out.inputs > 0 {
                    continue;
                }
                if out.seen >= cutoff {
                    self.orphans = true;
                    continue;
                }
                let hash = out.hash();
                if out.carried {
                    self.stats.outputs_carried -= 1;
                }
                self.stats.outputs_expired += 1;
                report.expired.push(hash);
                if let Ok(entry) = self
                    .output_index
                    .find_entry(low_bits(hash), |&i| i as usize == idx)
                {
                    entry.remove();
                }
                if let Some(d) = self.outputs[idx].description {
                    self.descriptions.remove(d);
                }
                self.outputs[idx] = OutputRecord {
                    alive: false,
                    ..OutputRecord::new(0, false)
                };
                self.free_outputs.push(idx as u32);
            }
            self.prune_families();
        }
    }

    /// Forgets the families no output's description refers to any more (their outputs expired
    /// or pass through again), once they are a quarter of all, so the family table follows
    /// the outputs' staleness window instead of growing with every name ever carried.
    /// Family ids are renumbered.
    fn prune_families(&mut self) {
        let mut used = vec![false; self.families.len()];
        for family in self.descriptions.families() {
            if let Some(u) = used.get_mut(family as usize) {
                *u = true;
            }
        }
        let unused = used.iter().filter(|&&u| !u).count();
        if unused == 0 || unused < self.families.len() / 4 {
            return;
        }
        let mut remap = vec![u32::MAX; used.len()];
        let old = std::mem::take(&mut self.families);
        self.family_index = HashMap::with_capacity(old.len() - unused);
        for (i, f) in old.into_iter().enumerate() {
            if used[i] {
                remap[i] = self.families.len() as u32;
                self.family_index
                    .insert(f.name.clone(), self.families.len() as u32);
                self.families.push(f);
            }
        }
        self.descriptions.remap_families(&remap);
    }

    /// Stores the live descriptions again, without the bytes of removed ones.
    fn rebuild_descriptions(&mut self) {
        let old = std::mem::take(&mut self.descriptions);
        let mut text = Vec::new();
        for o in &mut self.outputs {
            if let Some(d) = o.description {
                text.clear();
                old.write_to(d, &mut text);
                o.description = Some(self.descriptions.insert(old.family(d), &text));
            }
        }
    }

    /// Removes input `i`, moving the last input into its place.
    fn remove_input(&mut self, i: usize) {
        let key = self.inputs[i].key;
        if let Ok(entry) = self
            .input_index
            .find_entry(low_bits(key), |&j| j as usize == i)
        {
            entry.remove();
        }
        let last = self.inputs.len() - 1;
        if i != last {
            let moved_key = self.inputs[last].key;
            if let Some(slot) = self
                .input_index
                .find_mut(low_bits(moved_key), |&j| j as usize == last)
            {
                *slot = i as u32;
            }
        }
        self.inputs.swap_remove(i);
    }

    /// What to serve for output `hash`: its pass-through value or carried total. `None` when
    /// it is not tracked (never observed, or expired).
    pub fn served(&self, hash: u128) -> Option<Served> {
        let outputs = &self.outputs;
        let &i = self
            .output_index
            .find(low_bits(hash), |&i| outputs[i as usize].hash() == hash)?;
        let out = &self.outputs[i as usize];
        Some(if out.carried {
            Served::Carried(out.total.value())
        } else {
            Served::PassThrough(out.raw)
        })
    }

    /// Number of inputs output `hash` has within the staleness window: those seen in the last
    /// scrape and those departed but not yet forgotten (their last values are in its total).
    /// `None` when the output is not tracked.
    pub fn tracked_inputs(&self, hash: u128) -> Option<u32> {
        let outputs = &self.outputs;
        let &i = self
            .output_index
            .find(low_bits(hash), |&i| outputs[i as usize].hash() == hash)?;
        Some(self.outputs[i as usize].inputs)
    }

    /// Carried outputs that no input fed in the last applied scrape but that are still within
    /// the window: serve them with their carried total. Outputs that were never described
    /// ([`ApplyReport::needs_description`]) cannot be listed. Outputs that pass through are
    /// not listed: like a directly scraped series, they are absent while their input is.
    pub fn absent(&self) -> impl Iterator<Item = Absent<'_>> + '_ {
        let epoch = self.epoch;
        self.outputs
            .iter()
            .filter(move |o| o.alive && o.carried && o.seen != epoch)
            .filter_map(|o| {
                let d = o.description?;
                let f = self.families.get(self.descriptions.family(d) as usize)?;
                Some(Absent {
                    output: o.hash(),
                    family: &f.name,
                    typ: &f.typ,
                    help: &f.help,
                    series: self.descriptions.get(d),
                    value: o.total.value(),
                })
            })
    }

    /// Tells the state how output `hash` is rendered, so it can be served while none of its
    /// inputs is seen: `series` is the rendered series (`name{labels}`), `family` its family's
    /// name, `typ` the `# TYPE` word and `help` the `# HELP` text (the latest description of a
    /// family wins). Returns false when the output is not tracked.
    pub fn describe(
        &mut self,
        hash: u128,
        family: &str,
        typ: &str,
        help: &str,
        series: &[u8],
    ) -> bool {
        let outputs = &self.outputs;
        let Some(&i) = self
            .output_index
            .find(low_bits(hash), |&i| outputs[i as usize].hash() == hash)
        else {
            return false;
        };
        let family = self.intern_family(family, typ, help);
        let id = self.descriptions.insert(family, series);
        if let Some(old) = self.outputs[i as usize].description.replace(id) {
            self.descriptions.remove(old);
        }
        true
    }

    fn intern_family(&mut self, name: &str, typ: &str, help: &str) -> u32 {
        if let Some(&i) = self.family_index.get(name) {
            let f = &mut self.families[i as usize];
            if &*f.typ != typ {
                f.typ = typ.into();
            }
            if &*f.help != help {
                f.help = help.into();
            }
            return i;
        }
        let i = self.families.len() as u32;
        self.families.push(Family {
            name: name.into(),
            typ: typ.into(),
            help: help.into(),
        });
        self.family_index.insert(name.into(), i);
        i
    }
}

/// Per target, for one scrape.
#[derive(Debug, Clone, Copy)]
struct TargetInfo {
    restarted: bool,
    restart_epoch: u32,
    count_first: bool,
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod model_tests;
