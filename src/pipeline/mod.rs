//! The one-pass pipeline: parsed samples -> relabel (per list) -> aggregate.
//!
//! [`Pipeline`] is a parser [`Sink`]: the CLI feeds it from a file with [`read_all`], the server
//! from an HTTP body chunk by chunk. Every list (the default list and each named subset) sees
//! every sample of the same input, so one upstream response serves all of them.
//!
//! # One sample's way
//! [`Pipeline`]'s `Sink::sample` makes one cheap decision per sample and hands it to one of
//! three strategies, each in its own file:
//!
//! - `replay.rs`: the [`series_cache`] knows the series (a repeat scrape): each list gets the
//!   outcome it got before, with no relabeling and no key. When the series is the one the cache
//!   expects next, the parser does not even parse its labels ([`Sink::known_sample`]);
//! - `filter.rs`: the only list just filters labels by name: the key is written straight from
//!   the parsed line;
//! - `general.rs`: anything else: the labels are copied into a label set and every list runs
//!   its rules on it.
//!
//! Each strategy speaks the same vocabulary: the sample's value travels as a [`Point`], the
//! output series is named by a key from [`KeyBuf`], the aggregate takes it with
//! [`Aggregator::add`] (or `add_to_slot` for a replayed slot), and what happened in each list is
//! an [`Outcome`], which the series cache remembers.

use std::hash::{BuildHasher, Hasher};

use crate::aggregate::{AggregateStats, Aggregator, KeyBuf, Point, Rejected, SeriesKey};
use crate::counters::{Kind, TargetScrape};
use crate::exposition::{Exemplar, KnownSample, MetaKind, Metadata, Sample, Sink};
use crate::limits::{LabelLimits, LimitHit, LimitSink};
use crate::relabel::aggregation::{sample_kind, Action, Rules, SampleKind};
use crate::relabel::{Config, Program};

mod filter;
mod float_labels;
mod general;
mod input;
pub mod parallel;
mod replay;
pub mod series_cache;

pub use float_labels::canonical_float_text;
pub use input::{read_all, InputError, READ_CHUNK};

use filter::LabelFilter;
use float_labels::FloatLabelNormalizer;
use general::General;
use series_cache::{SeenSeries, SeriesCache, NO_GROUP};

/// What one list did with one sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The list's rules dropped the sample (counted in [`Subset::dropped_by_relabel`]).
    Dropped,
    /// The aggregate could not take it (counted in its [`AggregateStats`], except a broken
    /// label limit, which stops the input).
    Rejected(Rejected),
    /// Summed into the output series at this slot of the list's aggregate.
    Slot(u32),
}

/// Which relabel list a [`Subset`] runs.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ListName {
    /// The default list (`metric_relabel_configs`), served at `/metrics`.
    Default,
    /// A named subset, served at `/metrics/<name>`.
    Named(String),
}

impl ListName {
    /// The subset's name; `None` for the default list.
    pub fn as_named(&self) -> Option<&str> {
        match self {
            ListName::Default => None,
            ListName::Named(name) => Some(name),
        }
    }
}

/// A subset's name, or `(default)` for the default list (as the self-metrics label it).
impl std::fmt::Display for ListName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_named().unwrap_or("(default)"))
    }
}

/// One relabel list and the aggregate it feeds.
#[derive(Debug, Clone)]
pub struct Subset {
    /// Which list this is.
    pub name: ListName,
    /// The compiled rules, with their caches.
    pub program: Program,
    /// The summed output.
    pub aggregator: Aggregator,
    /// Samples the rules dropped.
    pub dropped_by_relabel: u64,
    /// How series that several inputs fall into are combined (the configuration's
    /// `aggregation:` rules, the same for every list).
    pub rules: Rules,
    /// The samples of counter-like series of this input, for the counter state (when the
    /// pipeline tracks counters: [`Pipeline::track_counters`]).
    pub counters: Option<TargetScrape>,
}

impl Subset {
    /// A subset with an empty aggregate.
    pub fn new(name: ListName, program: Program) -> Self {
        Self {
            name,
            program,
            aggregator: Aggregator::new(),
            dropped_by_relabel: 0,
            rules: Rules::default(),
            counters: None,
        }
    }

    /// The aggregate's counters.
    pub fn stats(&self) -> AggregateStats {
        self.aggregator.stats()
    }

    /// Counts a sample the rules dropped.
    #[inline]
    fn drop_sample(&mut self) -> Outcome {
        self.dropped_by_relabel += 1;
        Outcome::Dropped
    }

    /// Counts a sample the aggregate cannot take.
    #[inline]
    fn reject(&mut self, why: Rejected) -> Outcome {
        self.aggregator.count_rejected(why);
        Outcome::Rejected(why)
    }

    /// Adds a sample of `kind` to the output series `series` names; a new output series gets
    /// the action the rules give it.
    #[inline]
    fn add<'a, L>(
        &mut self,
        family: &str,
        series: SeriesKey<'a, L>,
        point: Point<'_>,
        kind: SampleKind,
    ) -> Outcome
    where
        L: Iterator<Item = (&'a str, &'a str)> + Clone,
    {
        let rules = &mut self.rules;
        match self
            .aggregator
            .add(family, series, point, |key| decide(rules, kind, key))
        {
            Ok(slot) => Outcome::Slot(slot),
            Err(why) => Outcome::Rejected(why),
        }
    }
}

/// The action of a new output series `key` whose samples are of `kind`.
fn decide<'a, L>(rules: &mut Rules, kind: SampleKind, key: &SeriesKey<'a, L>) -> Action
where
    L: Iterator<Item = (&'a str, &'a str)> + Clone,
{
    if rules.uses_labels() {
        let labels: Vec<(&str, &str)> = key.labels().collect();
        rules.action(kind, key.name(), &labels)
    } else {
        rules.action(kind, key.name(), &[])
    }
}

/// The hash that groups one input histogram's or summary's samples (its buckets, quantiles,
/// `_sum` and `_count`): its family and its labels but `le` and `quantile`. Never
/// [`NO_GROUP`].
fn group_of(sample: &Sample<'_>) -> u64 {
    let mut h = foldhash::fast::FixedState::with_seed(0x0067_726f_7570).build_hasher();
    h.write(sample.family.as_bytes());
    for (n, v) in sample.labels() {
        if n == "le" || n == "quantile" {
            continue;
        }
        h.write_u8(0xff);
        h.write(n.as_bytes());
        h.write_u8(0xfe);
        h.write(v.as_bytes());
    }
    h.finish().min(NO_GROUP - 1)
}

/// Records a sample of `value` (series cache key `key`) into the counter record of `sub` when
/// `outcome` sends it to a counter-like output series. `group` gives the sample's input group
/// (see [`group_of`]), asked only for histogram and summary series.
#[inline]
fn observe(sub: &mut Subset, key: u128, outcome: Outcome, value: f64, group: impl FnOnce() -> u64) {
    let (Some(record), Outcome::Slot(slot)) = (&mut sub.counters, outcome) else {
        return;
    };
    let Some((kind, output)) = sub.aggregator.carry(slot) else {
        return;
    };
    let g = match kind {
        Kind::Counter => 0,
        _ => group(),
    };
    record.observe(key, output, kind, g, value);
}

/// Relabels and aggregates parsed samples into every subset.
#[derive(Debug, Clone)]
pub struct Pipeline {
    subsets: Vec<Subset>,
    samples: u64,
    /// Outcome per subset of a series (see [`series_cache`]), when caching across scrapes.
    cache: Option<SeriesCache>,
    /// One subset whose rules only filter labels by name: [`filter`] takes its samples.
    label_filter: Option<LabelFilter>,
    general: General,
    /// The series key of the sample being routed.
    key: KeyBuf,
    /// Scratch: the outcomes of the sample being routed by the general path.
    outcomes: Vec<Outcome>,
    /// Key `le`/`quantile` values in Prometheus 3's canonical float text after relabeling (see
    /// [`Pipeline::normalize_float_labels`]).
    normalize: Option<FloatLabelNormalizer>,
    /// The family of the last `# TYPE` line and whether its `le`/`quantile` is a float label.
    typed_family: String,
    typed_label: Option<&'static str>,
    /// The first label limit a sample broke in this input; the input is then abandoned (later
    /// samples are ignored) and the reader reports it.
    limit_hit: Option<LimitHit>,
    /// `--label-limit` when no list has a rule, so input and output series have the same
    /// labels and the parser may count them ([`LimitSink::input_label_limit`]); else 0.
    input_label_limit: usize,
    /// The `# TYPE` word of `typed_family`.
    family_type: Option<&'static str>,
    /// Series keys of this input, to find repeated series when there is no series cache.
    seen: SeenSeries,
    /// Samples of this input that repeated a series already read (ignored, as Prometheus does).
    duplicates: u64,
    /// The input's unlabeled `process_start_time_seconds`, when counters are tracked.
    process_start: Option<f64>,
}

impl Pipeline {
    /// A pipeline for the default list and every subset of `config` (programs are cloned, so
    /// their caches start from the config's state).
    pub fn new(config: &Config) -> Self {
        let mut subsets = vec![Subset::new(ListName::Default, config.default.clone())];
        subsets.extend(
            config
                .subsets
                .iter()
                .map(|(n, p)| Subset::new(ListName::Named(n.clone()), p.clone())),
        );
        Self::from_subsets(subsets).with_rules(&config.aggregation)
    }

    /// A pipeline over prepared subsets; the first is the default list.
    pub fn from_subsets(subsets: Vec<Subset>) -> Self {
        let label_filter = matches!(&subsets[..], [only] if only.program.is_label_filter());
        debug_assert!(!subsets.is_empty());
        Self {
            label_filter: label_filter.then(LabelFilter::default),
            subsets,
            samples: 0,
            cache: None,
            general: General::default(),
            key: KeyBuf::new(),
            outcomes: Vec::new(),
            normalize: None,
            typed_family: String::new(),
            typed_label: None,
            limit_hit: None,
            input_label_limit: 0,
            family_type: None,
            seen: SeenSeries::default(),
            duplicates: 0,
            process_start: None,
        }
    }

    /// Uses `rules` (the configuration's `aggregation:` key) in every list.
    pub fn with_rules(mut self, rules: &Rules) -> Self {
        for sub in &mut self.subsets {
            sub.rules = rules.clone();
        }
        self
    }

    /// Records the samples of counter-like output series per list ([`Subset::counters`]), for
    /// a [`crate::counters::CounterState`] that serves reset-safe totals. Needs the series
    /// cache (the inputs are keyed by its hash).
    pub fn track_counters(mut self) -> Self {
        if let Some(cache) = &mut self.cache {
            // Histogram and summary samples are recorded with their group, which replaying a
            // series whose labels were not parsed takes from the cache.
            cache.keep_groups();
            for sub in &mut self.subsets {
                sub.counters = Some(TargetScrape::new(""));
            }
        }
        self
    }

    /// Names the target whose body this input is (for the counter records), emptying them.
    pub fn set_target(&mut self, target: &str) {
        for sub in &mut self.subsets {
            if let Some(c) = &mut sub.counters {
                c.reset(target);
            }
        }
    }

    /// Samples of this input that repeated a series already read in it, and were ignored.
    pub fn duplicates(&self) -> u64 {
        self.duplicates
    }

    /// The input's unlabeled `process_start_time_seconds`, when counters are tracked.
    pub fn process_start(&self) -> Option<f64> {
        self.process_start
    }

    /// Refuse output series that break `limits` (see [`crate::limits`]): the first one stops
    /// the input, and [`LimitSink::limit_hit`] reports it.
    pub fn with_label_limits(mut self, limits: LabelLimits) -> Self {
        for sub in &mut self.subsets {
            let agg = std::mem::take(&mut sub.aggregator);
            sub.aggregator = agg.with_label_limits(limits);
        }
        let unchanged = self.subsets.iter().all(|s| s.program.is_empty());
        self.input_label_limit = if unchanged { limits.labels } else { 0 };
        self
    }

    /// Remember per raw series what the subsets did with it, across scrapes, for up to
    /// `max_entries` series: a series seen before then costs a hash and a lookup instead of
    /// relabeling and key building. For a pipeline that serves many scrapes through
    /// [`Pipeline::begin_scrape`].
    pub fn with_series_cache(mut self, max_entries: usize) -> Self {
        self.cache = Some(SeriesCache::new(self.subsets.len(), max_entries));
        self
    }

    /// The series cache, if enabled.
    pub fn series_cache(&self) -> Option<&SeriesCache> {
        self.cache.as_ref()
    }

    /// Defers the check for repeated series (a pipeline without a series cache) to
    /// [`Pipeline::check_repeats`], for a reader that can read its input again: every series
    /// is taken as new while reading, which spares a hash-table probe per series (29% of a
    /// one-thread `--file --apply` on an 851k-series payload).
    pub fn defer_repeat_check(&mut self) {
        self.seen = SeenSeries::deferred();
    }

    /// After an input read with [`Pipeline::defer_repeat_check`]: true when no series repeated,
    /// so the result stands; false when one may have (a repeat was summed as a new series):
    /// discard this pipeline and read the input again with a new one. Always true otherwise.
    pub fn check_repeats(&mut self) -> bool {
        self.seen.settle()
    }

    /// Starts a new input (the next scrape): counters reset, aggregates emptied of live series
    /// while keeping what they learned (slots, capacity), and the series cache stays valid
    /// unless an aggregate compacted.
    pub fn begin_scrape(&mut self) {
        self.samples = 0;
        self.limit_hit = None;
        self.typed_family.clear();
        self.typed_label = None;
        self.family_type = None;
        self.seen.clear();
        self.duplicates = 0;
        self.process_start = None;
        let mut compacted = false;
        for sub in &mut self.subsets {
            sub.dropped_by_relabel = 0;
            if let Some(c) = &mut sub.counters {
                c.clear();
            }
            compacted |= sub.aggregator.begin_scrape();
        }
        if let Some(cache) = &mut self.cache {
            if compacted {
                cache.clear();
            }
            cache.begin_scrape();
        }
    }

    /// Key histogram `le` and summary `quantile` labels by float value, not by text, for a
    /// pipeline that reads several targets' bodies one after the other (the explorer's what-if
    /// of a fan-out upstream): after relabeling (the rules still see the upstream's text), the
    /// value is written the way Prometheus 3 stores it (`le="1"` becomes `le="1.0"`,
    /// `le="0.250"` becomes `le="0.25"`). The server does not use this: each target keeps its
    /// text and the merge compares bounds ([`crate::aggregate::Aggregator::merge_targets`]).
    pub fn normalize_float_labels(mut self, on: bool) -> Self {
        self.normalize = on.then(FloatLabelNormalizer::default);
        self
    }

    /// Samples seen.
    pub fn samples(&self) -> u64 {
        self.samples
    }

    /// The subsets, default list first.
    pub fn subsets(&self) -> &[Subset] {
        &self.subsets
    }

    /// The subsets, default list first, to serve their aggregates (e.g. from the counter
    /// state).
    pub fn subsets_mut(&mut self) -> &mut [Subset] {
        &mut self.subsets
    }

    /// The label whose value is normalized in samples of `family`: it is the one the last
    /// `# TYPE` made a histogram or summary, and normalization is on.
    #[inline]
    fn float_label(&self, family: &str) -> Option<&'static str> {
        match self.typed_label {
            Some(label) if self.normalize.is_some() && family == self.typed_family => Some(label),
            _ => None,
        }
    }

    /// The aggregation kind of `sample`, from its family's `# TYPE` and its name's suffix.
    #[inline]
    fn kind_of(&self, sample: &Sample<'_>) -> SampleKind {
        let typ = self
            .family_type
            .filter(|_| sample.family == self.typed_family);
        let suffix = sample.name.strip_prefix(sample.family).unwrap_or("");
        sample_kind(typ, suffix)
    }

    /// Ends a sample that was routed afresh: a broken label limit stops the input, any other
    /// outcomes are remembered for the series when caching (and recorded for the counters).
    #[inline]
    fn settle(&mut self, cache_key: Option<u128>, outcomes: &[Outcome], sample: &Sample<'_>) {
        if outcomes.contains(&Outcome::Rejected(Rejected::Limit)) {
            self.record_limit_hit(sample.line);
            return;
        }
        if let Some(exemplar) = &sample.exemplar {
            for (sub, &o) in self.subsets.iter_mut().zip(outcomes) {
                keep_exemplar(sub, o, exemplar);
            }
        }
        if let (Some(cache), Some(key)) = (&mut self.cache, cache_key) {
            // With counters tracked every entry keeps its group, so that a replay without
            // parsed labels (`replay::replay_known`) always has it.
            let group = if cache.keeps_groups() {
                group_of(sample)
            } else {
                NO_GROUP
            };
            cache.insert(key, sample.series_text.len(), group, outcomes);
            for (sub, &o) in self.subsets.iter_mut().zip(outcomes) {
                observe(sub, key, o, sample.value, || group);
            }
        }
    }

    /// Records the limit the current sample broke in one of the subsets.
    #[cold]
    fn record_limit_hit(&mut self, line: u64) {
        // Take every subset's error, so that none is left to be reported for a later sample.
        let mut first = None;
        for sub in &mut self.subsets {
            let e = sub.aggregator.take_limit_error();
            first = first.or(e);
        }
        if let Some(error) = first {
            self.limit_hit = Some(LimitHit { line, error });
        }
    }
}

/// Attaches a sample's exemplar to the output series it went to in `sub` (OpenMetrics output
/// writes it; exemplars are rare, so this is off the common path).
#[cold]
fn keep_exemplar(sub: &mut Subset, outcome: Outcome, exemplar: &Exemplar<'_>) {
    if let Outcome::Slot(slot) = outcome {
        sub.aggregator.add_exemplar(slot, exemplar);
    }
}

/// The value of `sample` as it travels to an output series.
#[inline(always)]
fn point<'a>(sample: &Sample<'a>) -> Point<'a> {
    Point {
        value: sample.value,
        text: sample.value_text,
        timestamp_ms: sample.timestamp_ms,
    }
}

/// The series whose change means the target restarted.
const PROCESS_START: &str = "process_start_time_seconds";

impl Pipeline {
    #[cold]
    fn note_process_start(&mut self, seconds: f64) {
        self.process_start = Some(seconds);
        for sub in &mut self.subsets {
            if let Some(c) = &mut sub.counters {
                c.set_process_start(seconds);
            }
        }
    }
}

impl LimitSink for Pipeline {
    fn limit_hit(&self) -> Option<&LimitHit> {
        self.limit_hit.as_ref()
    }

    fn input_label_limit(&self) -> usize {
        self.input_label_limit
    }
}

impl Sink for Pipeline {
    fn metadata(&mut self, meta: &Metadata<'_>) {
        if meta.kind == MetaKind::Type {
            self.typed_family.clear();
            self.typed_family.push_str(meta.family);
            self.family_type = match meta.text {
                "counter" => Some("counter"),
                "gauge" => Some("gauge"),
                "histogram" => Some("histogram"),
                "summary" => Some("summary"),
                "gaugehistogram" => Some("gaugehistogram"),
                "info" => Some("info"),
                "stateset" => Some("stateset"),
                "untyped" => Some("untyped"),
                _ => Some("unknown"),
            };
            self.typed_label = match meta.text {
                "histogram" | "gaugehistogram" => Some("le"),
                "summary" => Some("quantile"),
                _ => None,
            };
        }
        for sub in &mut self.subsets {
            match meta.kind {
                MetaKind::Help => sub.aggregator.set_help(meta.family, meta.text),
                MetaKind::Type => sub.aggregator.set_type(meta.family, meta.text),
                // Kept for OpenMetrics output; text 0.0.4 has no UNIT line.
                MetaKind::Unit => sub.aggregator.set_unit(meta.family, meta.text),
            }
        }
    }

    fn should_stop(&self) -> bool {
        self.limit_hit.is_some()
    }

    fn sample(&mut self, sample: &Sample<'_>) {
        if self.limit_hit.is_some() {
            return;
        }
        self.samples += 1;
        if sample.name.len() == PROCESS_START.len()
            && sample.name == PROCESS_START
            && sample.label_count() == 0
            && self.subsets[0].counters.is_some()
        {
            self.note_process_start(sample.value);
        }
        let float_label = self.float_label(sample.family);
        let cache_key = match &mut self.cache {
            Some(cache) => {
                let key = replay::cache_key(cache, sample.series_text, sample.family, float_label);
                if let Some((outcomes, repeat)) = cache.lookup_repeat(key) {
                    if repeat {
                        // Prometheus keeps the first sample of a series and ignores the rest.
                        self.duplicates += 1;
                        return;
                    }
                    replay::replay(&mut self.subsets, outcomes, sample, key);
                    if let Some(exemplar) = &sample.exemplar {
                        outcomes
                            .for_each(&mut self.subsets, |sub, o| keep_exemplar(sub, o, exemplar));
                    }
                    return;
                }
                Some(key)
            }
            None => {
                let (text, family) = (sample.series_text, sample.family.len());
                if !self.seen.first(text, family, replay::context(float_label)) {
                    self.duplicates += 1;
                    return;
                }
                None
            }
        };
        let kind = self.kind_of(sample);
        // The label filter keeps label values as written; samples whose `le`/`quantile` must be
        // keyed in canonical form take the general path.
        if let (Some(filter), None, [sub]) =
            (&mut self.label_filter, float_label, &mut self.subsets[..])
        {
            if let Some(outcome) = filter.route(sub, &mut self.key, sample, point(sample), kind) {
                self.settle(cache_key, &[outcome], sample);
                return;
            }
        }
        let mut outcomes = std::mem::take(&mut self.outcomes);
        outcomes.clear();
        let float_label = float_label.and_then(|label| Some((self.normalize.as_mut()?, label)));
        self.general.route(
            &mut self.subsets,
            &mut self.key,
            sample,
            point(sample),
            kind,
            float_label,
            &mut outcomes,
        );
        self.settle(cache_key, &outcomes, sample);
        self.outcomes = outcomes;
    }

    fn expected_series_len(&self) -> Option<usize> {
        match &self.cache {
            Some(cache) if self.limit_hit.is_none() => cache.expected_len(),
            _ => None,
        }
    }

    /// The repeat scrape's fast path (see `replay.rs`): a series the cache knows, recognized
    /// by its raw text alone. Every check of its labels (syntax, the input label limit,
    /// duplicate names) ran when it was first parsed, on exactly these bytes; a label limit of
    /// the output is never remembered, so such a series never gets here. Refused (parsed in
    /// full) when the cache does not know it, and for `process_start_time_seconds`, which the
    /// counters read with its labels.
    fn known_sample(&mut self, sample: &KnownSample<'_>) -> bool {
        // A line with an exemplar takes the full path, which carries the exemplar to the
        // output (exemplars are rare).
        if self.limit_hit.is_some() || sample.name == PROCESS_START || sample.exemplar.is_some() {
            return false;
        }
        let float_label = self.float_label(sample.family);
        let Some(cache) = &mut self.cache else {
            return false;
        };
        let key = replay::cache_key(cache, sample.series_text, sample.family, float_label);
        let Some((outcomes, repeat, group)) = cache.lookup_known(key) else {
            return false;
        };
        self.samples += 1;
        if repeat {
            // Prometheus keeps the first sample of a series and ignores the rest.
            self.duplicates += 1;
            return true;
        }
        replay::replay_known(&mut self.subsets, outcomes, sample, key, group);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::ParseOptions;

    fn feed(p: &mut Pipeline, text: &str) -> Result<u64, InputError> {
        read_all(text.as_bytes(), ParseOptions::default(), p)
    }

    #[test]
    fn list_names() {
        let config = Config::from_yaml(
            "metric_relabel_configs: []\nrequests: [{action: labeldrop, regex: path}]",
            "test",
        )
        .unwrap();
        let p = Pipeline::new(&config);
        let names: Vec<_> = p.subsets().iter().map(|s| s.name.clone()).collect();
        assert_eq!(
            names,
            [ListName::Default, ListName::Named("requests".into())]
        );
        assert_eq!(names[0].as_named(), None);
        assert_eq!(names[1].as_named(), Some("requests"));
        assert_eq!(format!("{} {}", names[0], names[1]), "(default) requests");
    }

    #[test]
    fn label_limits_on_both_paths_and_never_cached() {
        let limits = LabelLimits {
            labels: 3,
            ..LabelLimits::UNLIMITED
        };
        let input = "ok{a=\"1\"} 1\nwide{a=\"1\",b=\"2\",c=\"3\"} 1\n";
        for yaml in [
            // General path (a rule that is not a label filter) and the label-filter fast path.
            "metric_relabel_configs: [{action: replace, target_label: z, replacement: ''}]",
            "metric_relabel_configs: [{action: labeldrop, regex: zzz}]",
        ] {
            let config = Config::from_yaml(yaml, "test").unwrap();
            let mut p = Pipeline::new(&config)
                .with_label_limits(limits)
                .with_series_cache(1000);
            let e = feed(&mut p, input).unwrap_err();
            assert!(
                e.to_string()
                    .starts_with("line 2: label limit exceeded: series \"wide\" has 4 labels"),
                "{yaml}: {e}"
            );
            // The next scrape checks again: the outcome was not cached.
            p.begin_scrape();
            assert!(feed(&mut p, input).is_err(), "{yaml}");
            // Dropping a label brings it under the limit.
            p.begin_scrape();
            assert!(feed(&mut p, "wide{a=\"1\",b=\"2\"} 1\n").is_ok(), "{yaml}");
        }
    }
}
