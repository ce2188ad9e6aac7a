//! The one-pass pipeline: parsed samples -> relabel (per subset) -> aggregate.
//!
//! [`Pipeline`] is a parser [`Sink`]: the CLI feeds it from a file with [`read_all`], the server
//! from an HTTP body chunk by chunk. Every subset (the default list and each named one) sees
//! every sample of the same input, so one upstream response serves all of them.

use std::io::Read;

use crate::aggregate::{AggregateStats, Aggregator, Rejected};
use crate::exposition::{MetaKind, Metadata, ParseError, ParseOptions, Parser, Sample, Sink};
use crate::labels::{LabelBuf, METRIC_NAME};
use crate::limits::{LabelLimits, LimitHit, LimitSink};
use crate::relabel::{Config, Program};
use crate::series_cache::{SeriesCache, DROPPED, INVALID_LABEL, MAX_SLOT, NAMELESS};

/// Outcome of a sample that broke a label limit (never a slot: [`Pipeline::route`] maps the slot
/// `MAX_SLOT` itself to `DROPPED`). Never stored in the series cache.
const LIMIT_HIT: u32 = MAX_SLOT;

/// Size of the buffer [`read_all`] reads into.
pub const READ_CHUNK: usize = 1 << 20;

/// One relabel list and the aggregate it feeds.
#[derive(Debug, Clone)]
pub struct Subset {
    /// `None` for the default list (`metric_relabel_configs`), else the subset's name.
    pub name: Option<String>,
    /// The compiled rules, with their caches.
    pub program: Program,
    /// The summed output.
    pub aggregator: Aggregator,
    /// Samples the rules dropped.
    pub dropped_by_relabel: u64,
}

impl Subset {
    /// A subset with an empty aggregate.
    pub fn new(name: Option<String>, program: Program) -> Self {
        Self {
            name,
            program,
            aggregator: Aggregator::new(),
            dropped_by_relabel: 0,
        }
    }

    /// The aggregate's counters.
    pub fn stats(&self) -> AggregateStats {
        self.aggregator.stats()
    }
}

/// Relabels and aggregates parsed samples into every subset.
#[derive(Debug, Clone)]
pub struct Pipeline {
    subsets: Vec<Subset>,
    input: LabelBuf,
    work: LabelBuf,
    samples: u64,
    /// Rewrite `le`/`quantile` values to Prometheus 3's canonical float text (see
    /// [`Pipeline::normalize_float_labels`]).
    normalize: Option<FloatLabelNormalizer>,
    /// The family of the last `# TYPE` line and whether its `le`/`quantile` is a float label.
    typed_family: String,
    typed_label: Option<&'static str>,
    /// Outcome per subset of a series (see [`crate::series_cache`]), when caching across
    /// scrapes.
    cache: Option<SeriesCache>,
    /// Scratch: the outcomes of the sample being routed.
    outcomes: Vec<u32>,
    /// One subset whose rules only drop labels by name (`labeldrop`/`labelkeep`): samples go
    /// to the aggregate without being copied into a label set.
    label_filter: bool,
    /// The label filter's decisions per label layout.
    plans: LayoutPlans,
    /// Series key buffer of the label-filter fast path.
    key: Vec<u8>,
    /// The label filter's `keep`/`drop` decision for the last metric name (the samples of a
    /// family come in a row).
    last_name: String,
    last_name_kept: bool,
    /// The first label limit a sample broke in this input; the input is then abandoned (later
    /// samples are ignored) and the reader reports it.
    limit_hit: Option<LimitHit>,
}

/// What the label-filter fast path decided for one label layout ([`Sample::layout`]): which
/// labels survive, in label-name order. Decided once per layout instead of per sample, since it
/// depends on the names only.
#[derive(Debug, Clone, Copy)]
struct LayoutPlan {
    layout: u64,
    /// Whether the metric name survives (else every sample is nameless).
    keeps_name: bool,
    len: u8,
    /// Indices (input order) of the kept labels, sorted by name.
    order: [u8; Pipeline::FILTER_MAX_LABELS],
    /// `order` cut into runs of consecutive input indices, as `(from, to)` ranges: when the
    /// input has its labels sorted, dropping one label leaves two runs, each of which can be
    /// copied from the line into the series key at once (see [`Sample::raw_labels`]).
    runs: [(u8, u8); Pipeline::FILTER_MAX_LABELS],
    nruns: u8,
}

impl LayoutPlan {
    /// Writes the series key of `sample` from the runs of kept labels as they stand in the
    /// input; false (with `key` undefined) when some run does not stand there as it renders.
    #[inline]
    fn write_raw_key(&self, key: &mut Vec<u8>, sample: &Sample<'_>) -> bool {
        key.clear();
        key.extend_from_slice(sample.name.as_bytes());
        let mut sep = b'{';
        for &(from, to) in &self.runs[..usize::from(self.nruns)] {
            let Some(raw) = sample.raw_labels(usize::from(from), usize::from(to)) else {
                return false;
            };
            key.push(sep);
            sep = b',';
            key.extend_from_slice(raw);
        }
        if sep == b',' {
            key.push(b'}');
        }
        true
    }
}

/// The most recent [`LayoutPlan`]s (a family alternates between a few layouts).
#[derive(Debug, Clone)]
struct LayoutPlans {
    plans: [LayoutPlan; 8],
    next: usize,
}

impl Default for LayoutPlans {
    fn default() -> Self {
        Self {
            plans: [LayoutPlan {
                layout: 0,
                keeps_name: false,
                len: 0,
                order: [0; Pipeline::FILTER_MAX_LABELS],
                runs: [(0, 0); Pipeline::FILTER_MAX_LABELS],
                nruns: 0,
            }; 8],
            next: 0,
        }
    }
}

impl LayoutPlans {
    /// The plan of `sample`'s layout (nonzero) under `program`, a label filter; `None` when the
    /// sample has too many labels for a plan.
    #[inline]
    fn get(&mut self, program: &mut Program, sample: &Sample<'_>) -> Option<&LayoutPlan> {
        let layout = sample.layout();
        let found = self.plans.iter().position(|p| p.layout == layout);
        let at = match found {
            Some(at) => at,
            None => self.build(program, sample)?,
        };
        self.plans.get(at)
    }

    #[cold]
    fn build(&mut self, program: &mut Program, sample: &Sample<'_>) -> Option<usize> {
        let n = sample.label_count();
        if n > Pipeline::FILTER_MAX_LABELS {
            return None;
        }
        let mut plan = LayoutPlan {
            layout: sample.layout(),
            keeps_name: program.keeps_label(METRIC_NAME),
            len: 0,
            order: [0; Pipeline::FILTER_MAX_LABELS],
            runs: [(0, 0); Pipeline::FILTER_MAX_LABELS],
            nruns: 0,
        };
        let name = |i: u8| sample.label_at(usize::from(i)).map_or("", |l| l.0);
        for i in 0..n as u8 {
            if program.keeps_label(name(i)) {
                plan.order[usize::from(plan.len)] = i;
                plan.len += 1;
            }
        }
        plan.order[..usize::from(plan.len)].sort_unstable_by(|&a, &b| name(a).cmp(name(b)));
        for &i in &plan.order[..usize::from(plan.len)] {
            match plan.nruns.checked_sub(1) {
                Some(last) if plan.runs[usize::from(last)].1 == i => {
                    plan.runs[usize::from(last)].1 = i + 1
                }
                _ => {
                    plan.runs[usize::from(plan.nruns)] = (i, i + 1);
                    plan.nruns += 1;
                }
            }
        }
        let at = self.next;
        self.next = (at + 1) % self.plans.len();
        *self.plans.get_mut(at)? = plan;
        Some(at)
    }
}

impl Pipeline {
    /// A pipeline for the default list and every subset of `config` (programs are cloned, so
    /// their caches start from the config's state).
    pub fn new(config: &Config) -> Self {
        let mut subsets = vec![Subset::new(None, config.default.clone())];
        subsets.extend(
            config
                .subsets
                .iter()
                .map(|(n, p)| Subset::new(Some(n.clone()), p.clone())),
        );
        Self::from_subsets(subsets)
    }

    /// A pipeline over prepared subsets; the first is the default list.
    pub fn from_subsets(subsets: Vec<Subset>) -> Self {
        let label_filter = subsets.len() == 1 && subsets[0].program.is_label_filter();
        Self {
            label_filter,
            subsets,
            input: LabelBuf::new(),
            work: LabelBuf::new(),
            samples: 0,
            normalize: None,
            typed_family: String::new(),
            typed_label: None,
            cache: None,
            outcomes: Vec::new(),
            plans: LayoutPlans::default(),
            key: Vec::new(),
            last_name: String::new(),
            last_name_kept: false,
            limit_hit: None,
        }
    }

    /// Refuse output series that break `limits` (see [`crate::limits`]): the first one stops
    /// the input, and [`LimitSink::limit_hit`] reports it.
    pub fn with_label_limits(mut self, limits: LabelLimits) -> Self {
        for sub in &mut self.subsets {
            let agg = std::mem::take(&mut sub.aggregator);
            sub.aggregator = agg.with_label_limits(limits);
        }
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

    /// Starts a new input (the next scrape): counters reset, aggregates emptied of live series
    /// while keeping what they learned (slots, capacity), and the series cache stays valid
    /// unless an aggregate compacted.
    pub fn begin_scrape(&mut self) {
        self.samples = 0;
        self.limit_hit = None;
        self.typed_family.clear();
        self.typed_label = None;
        let mut compacted = false;
        for sub in &mut self.subsets {
            sub.dropped_by_relabel = 0;
            compacted |= sub.aggregator.begin_scrape();
        }
        if let Some(cache) = &mut self.cache {
            if compacted {
                cache.clear();
            }
            cache.begin_scrape();
        }
    }

    /// Compare histogram `le` and summary `quantile` labels by float value, not by text: their
    /// values are rewritten the way Prometheus 3 stores them (`le="1"` becomes `le="1.0"`,
    /// `le="0.250"` becomes `le="0.25"`). Needed when summing series of several targets, whose
    /// exporters may spell the same bound differently; a single upstream's text is kept as is
    /// otherwise.
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

    /// Ends the pass and hands out the subsets (default list first).
    pub fn into_subsets(self) -> Vec<Subset> {
        self.subsets
    }

    /// Runs one subset's rules on `labels` and adds the survivor to its aggregate; returns the
    /// outcome as the series cache stores it.
    #[inline]
    fn route(sub: &mut Subset, labels: &mut LabelBuf, sample: &Sample<'_>) -> u32 {
        if !sub.program.is_empty() && !sub.program.apply(labels) {
            sub.dropped_by_relabel += 1;
            return DROPPED;
        }
        labels.sort();
        // A renamed series leaves its family: it joins the family of its new name.
        let family = match labels.get(METRIC_NAME) {
            Some(n) if n == sample.name => sample.family,
            Some(n) => n,
            None => sample.family,
        };
        match sub.aggregator.add_slot(
            family,
            labels,
            sample.value,
            sample.value_text,
            sample.timestamp_ms,
        ) {
            Ok(slot) if slot < MAX_SLOT => slot,
            // Too many series to remember by slot: correct, just never cached.
            Ok(_) => DROPPED,
            Err(Rejected::Nameless) => NAMELESS,
            Err(Rejected::InvalidLabel) => INVALID_LABEL,
            Err(Rejected::Limit) => LIMIT_HIT,
        }
    }

    /// Most labels a series may have for [`Pipeline::filter_labels`]; more take the general path.
    const FILTER_MAX_LABELS: usize = 32;

    /// The label-filter fast path: the kept labels are collected as borrowed pairs on the stack,
    /// sorted, and keyed directly. Same result as relabeling a copied label set; `None` when the
    /// series has too many labels for it.
    #[inline]
    fn filter_labels(
        sub: &mut Subset,
        plans: &mut LayoutPlans,
        key: &mut Vec<u8>,
        sample: &Sample<'_>,
    ) -> Option<u32> {
        if sample.layout() != 0 {
            if let Some(plan) = plans.get(&mut sub.program, sample) {
                if !plan.keeps_name {
                    sub.aggregator.count_rejected(Rejected::Nameless);
                    return Some(NAMELESS);
                }
                let labels = plan.order[..usize::from(plan.len)]
                    .iter()
                    .filter_map(|&i| sample.label_at(usize::from(i)));
                let slot = if sample.plain_name() && plan.write_raw_key(key, sample) {
                    sub.aggregator.add_written(
                        sample.family,
                        key,
                        sample.name,
                        labels,
                        sample.value,
                        sample.value_text,
                        sample.timestamp_ms,
                    )
                } else {
                    sub.aggregator.add_checked(
                        sample.family,
                        sample.name,
                        sample.plain_name(),
                        labels,
                        sample.value,
                        sample.value_text,
                        sample.timestamp_ms,
                    )
                };
                return Some(match slot {
                    Ok(slot) if slot < MAX_SLOT => slot,
                    Ok(_) => DROPPED,
                    Err(_) => LIMIT_HIT,
                });
            }
        }
        if !sub.program.keeps_label(METRIC_NAME) {
            sub.aggregator.count_rejected(Rejected::Nameless);
            return Some(NAMELESS);
        }
        let mut kept = [("", ""); Self::FILTER_MAX_LABELS];
        let mut n = 0;
        for (name, value) in sample.labels() {
            // An empty label value is the same as an absent label.
            if value.is_empty() || !sub.program.keeps_label(name) {
                continue;
            }
            *kept.get_mut(n)? = (name, value);
            n += 1;
        }
        let kept = &mut kept[..n];
        if !kept.is_sorted_by(|a, b| a.0 < b.0) {
            kept.sort_unstable_by(|a, b| a.0.cmp(b.0));
        }
        let slot = sub.aggregator.add_named(
            sample.family,
            sample.name,
            kept,
            sample.value,
            sample.value_text,
            sample.timestamp_ms,
        );
        Some(match slot {
            Ok(slot) if slot < MAX_SLOT => slot,
            Ok(_) => DROPPED,
            Err(_) => LIMIT_HIT,
        })
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

    /// Replays remembered outcomes for a known series.
    #[inline]
    fn replay(subsets: &mut [Subset], outcomes: &[u32], sample: &Sample<'_>) {
        for (sub, &o) in subsets.iter_mut().zip(outcomes) {
            match o {
                DROPPED => sub.dropped_by_relabel += 1,
                NAMELESS => sub.aggregator.count_rejected(Rejected::Nameless),
                INVALID_LABEL => sub.aggregator.count_rejected(Rejected::InvalidLabel),
                slot => sub.aggregator.add_to_slot(
                    slot,
                    sample.value,
                    sample.value_text,
                    sample.timestamp_ms,
                ),
            }
        }
    }
}

impl LimitSink for Pipeline {
    fn limit_hit(&self) -> Option<&LimitHit> {
        self.limit_hit.as_ref()
    }
}

impl Sink for Pipeline {
    fn metadata(&mut self, meta: &Metadata<'_>) {
        if meta.kind == MetaKind::Type {
            self.typed_family.clear();
            self.typed_family.push_str(meta.family);
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
                // Text 0.0.4 has no UNIT line; Prometheus ignores it there.
                MetaKind::Unit => {}
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
        // The label whose value is normalized, when the sample's family is the one the last
        // `# TYPE` made a histogram or summary. The same series text is treated differently
        // outside that family's TYPE block, so the series cache keys on it too.
        let normalized = match self.typed_label {
            Some(label) if self.normalize.is_some() && sample.family == self.typed_family => {
                Some(label)
            }
            _ => None,
        };
        let cache_key = match &mut self.cache {
            Some(cache) => {
                let context = match normalized {
                    None => 0,
                    Some("le") => 1,
                    Some(_) => 2,
                };
                let key = SeriesCache::key(sample.series_text, sample.family.len(), context);
                if let Some(outcomes) = cache.lookup(key) {
                    Self::replay(&mut self.subsets, outcomes, sample);
                    return;
                }
                Some(key)
            }
            None => None,
        };
        let float_label = normalized.and_then(|label| Some((self.normalize.as_mut()?, label)));
        // The fast path keeps label values as written; samples whose `le`/`quantile` must be
        // rewritten take the general path.
        if self.label_filter && float_label.is_none() {
            let sub = &mut self.subsets[0];
            if sub.program.filters_names() {
                if sample.name != self.last_name {
                    self.last_name.clear();
                    self.last_name.push_str(sample.name);
                    self.last_name_kept = sub.program.keeps_series_named(sample.name);
                }
                if !self.last_name_kept {
                    sub.dropped_by_relabel += 1;
                    if let (Some(cache), Some(key)) = (&mut self.cache, cache_key) {
                        cache.insert(key, &[DROPPED]);
                    }
                    return;
                }
            }
            if let Some(outcome) = Self::filter_labels(sub, &mut self.plans, &mut self.key, sample)
            {
                if outcome == LIMIT_HIT {
                    self.record_limit_hit(sample.line);
                    return;
                }
                if let (Some(cache), Some(key)) = (&mut self.cache, cache_key) {
                    cache.insert(key, &[outcome]);
                }
                return;
            }
        }
        self.input.clear();
        self.input.push(METRIC_NAME, sample.name);
        match float_label {
            None => {
                for (n, v) in sample.labels() {
                    // An empty label value is the same as an absent label.
                    if !v.is_empty() {
                        self.input.push(n, v);
                    }
                }
            }
            Some((norm, label)) => {
                for (n, v) in sample.labels() {
                    if !v.is_empty() {
                        let v = if n == label { norm.normalize(v) } else { v };
                        self.input.push(n, v);
                    }
                }
            }
        }
        // Prometheus relabels sorted label sets; order decides e.g. which of two labelmap
        // sources wins. Exporters nearly always write sorted labels, making this a linear check.
        self.input.sort();
        let Some((last, rest)) = self.subsets.split_last_mut() else {
            return;
        };
        self.outcomes.clear();
        for sub in rest {
            self.work.copy_from(&self.input);
            self.outcomes.push(Self::route(sub, &mut self.work, sample));
        }
        // The last subset may consume the input labels: no copy in the common single-list case.
        self.outcomes
            .push(Self::route(last, &mut self.input, sample));
        if self.outcomes.contains(&LIMIT_HIT) {
            self.record_limit_hit(sample.line);
            return;
        }
        if let (Some(cache), Some(key)) = (&mut self.cache, cache_key) {
            cache.insert(key, &self.outcomes);
        }
    }
}

/// Rewrites float label values to Prometheus 3's canonical text, with a bounded memo: a scrape
/// has a handful of distinct bucket bounds, so this is a lookup per sample.
#[derive(Debug, Clone, Default)]
struct FloatLabelNormalizer {
    memo: hashbrown::HashMap<String, String, foldhash::fast::FixedState>,
}

impl FloatLabelNormalizer {
    const MEMO_CAP: usize = 4096;

    fn normalize<'a>(&'a mut self, v: &'a str) -> &'a str {
        if self.memo.contains_key(v) {
            return self.memo.get(v).map(String::as_str).unwrap_or(v);
        }
        let Some(canonical) = canonical_float_text(v) else {
            return v;
        };
        if self.memo.len() >= Self::MEMO_CAP {
            self.memo.clear();
        }
        self.memo.entry(v.to_owned()).or_insert(canonical)
    }
}

/// Prometheus 3's float label text (`formatOpenMetricsFloat`): Go's shortest `%g`, with `.0`
/// added when that has neither `.` nor `e`; `NaN`, `+Inf`, `-Inf` as such. `None` when `v` is
/// not a float.
pub fn canonical_float_text(v: &str) -> Option<String> {
    let f: f64 = crate::exposition::parse_go_float(v)?;
    let mut out = Vec::with_capacity(24);
    crate::exposition::float::write_go_float(&mut out, f);
    if f.is_finite() && !out.iter().any(|&b| b == b'.' || b == b'e') {
        out.extend_from_slice(b".0");
    }
    String::from_utf8(out).ok()
}

/// Reading input failed: an I/O error or a parse error.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The reader failed.
    #[error("read error: {0}")]
    Io(#[from] std::io::Error),
    /// The input is not valid exposition text.
    #[error("{0}")]
    Parse(#[from] ParseError),
    /// A series broke a label limit.
    #[error("{0}")]
    Limit(#[from] LimitHit),
}

/// Parses everything `reader` yields into `sink`; returns the number of bytes read.
pub fn read_all<R: Read, S: LimitSink>(
    mut reader: R,
    opts: ParseOptions,
    sink: &mut S,
) -> Result<u64, InputError> {
    let mut parser = Parser::new(opts);
    let mut buf = vec![0u8; READ_CHUNK];
    let mut total = 0u64;
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        };
        total += n as u64;
        parser.feed(&buf[..n], sink)?;
        if let Some(hit) = sink.limit_hit() {
            return Err(hit.clone().into());
        }
    }
    parser.finish(sink)?;
    if let Some(hit) = sink.limit_hit() {
        return Err(hit.clone().into());
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(p: &mut Pipeline, text: &str) -> Result<u64, InputError> {
        read_all(text.as_bytes(), ParseOptions::default(), p)
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

    #[test]
    fn canonical_float_labels() {
        for (input, want) in [
            ("1", "1.0"),
            ("0.250", "0.25"),
            ("10", "10.0"),
            ("+Inf", "+Inf"),
            ("Inf", "+Inf"),
            ("1e6", "1e+06"),
            ("0.0001", "0.0001"),
            ("-0", "0.0"),
        ] {
            assert_eq!(
                canonical_float_text(input).as_deref(),
                Some(want),
                "{input}"
            );
        }
        assert_eq!(canonical_float_text("abc"), None);
    }
}
