//! Type-aware aggregation: what an output series that several inputs fall into serves.
//!
//! A plain sum is right for counters (with [`crate::counters`] keeping them monotonic) and for
//! many gauges (connections in flight), and wrong for the rest: two pods'
//! `process_start_time_seconds` summed is a date in 2077, a summed `_created` is no creation
//! time, summed summary quantiles are no quantile, and a summed `*_build_info` is no longer 1.
//!
//! Three steps decide an output series' [`Action`], once per output series (never per
//! sample), so the caller caches it with the series:
//! 1. [`sample_kind`]: the kind of sample, from the family's `# TYPE` (as the upstream wrote
//!    it) and the sample name's suffix;
//! 2. [`Rules::rule_for`]: the first user rule (the reserved `aggregation:` key of the relabel
//!    configuration) that selects the series, by metric name or relabel-style
//!    `source_labels`/`regex`; otherwise the first [`DEFAULT_RULES`] entry, which applies to
//!    gauges and untyped series only;
//! 3. the kind's own default ([`Rules::action`]).
//!
//! [`Combine`] then folds a series' inputs (and merges per-target partial results) by the
//! action's [`Op`], and [`Stamp`] decides the timestamp of the result.

use super::config::{Action as RelabelAction, ConfigError, RelabelConfig};
use super::program::Program;
use crate::counters::Kind;
use crate::labels::{LabelBuf, METRIC_NAME};
use crate::sum::Sum;

use serde_yaml_ng::Value;

/// The top-level key of the relabel configuration that holds the aggregation rules. It is not a
/// subset name: a configuration whose `aggregation:` list holds relabel rules is refused with
/// [`reserved_key_message`].
pub const RESERVED_KEY: &str = "aggregation";

/// What a sample is, for aggregation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampleKind {
    /// A counter, a histogram's `_bucket`/`_sum`/`_count`, a summary's `_sum`/`_count`:
    /// summed and kept monotonic by [`crate::counters`].
    CounterLike(Kind),
    /// An OpenMetrics `_created` sample: a creation time. Never summed; the earliest.
    Created,
    /// A gauge, or a gauge histogram's `_bucket`/`_gcount`/`_gsum`.
    Gauge,
    /// A summary's quantile series: cannot be summed.
    Quantile,
    /// An `info` or `stateset` sample (value 0 or 1 per series): not summed.
    Info,
    /// No type, `untyped` or `unknown`: summed plainly, as a gauge (a counter without
    /// `# TYPE counter` is not known to be one, so it is not kept monotonic).
    Untyped,
}

/// The kind of a sample of a family whose `# TYPE` word is `family_type` (`None` without a
/// `# TYPE` line), where `suffix` is the sample name minus the family name (`""`, `_total`,
/// `_bucket`, `_sum`, `_count`, `_created`, `_gcount`, `_gsum`, `_info`).
///
/// Text 0.0.4 counters are often their own family (`# TYPE x_total counter`, sample `x_total`:
/// suffix `""`); OpenMetrics names the family `x` and the sample `x_total`. Both are counters.
/// A suffix that does not belong to the type (which the parser does not produce) is untyped.
pub fn sample_kind(family_type: Option<&str>, suffix: &str) -> SampleKind {
    let Some(typ) = family_type else {
        return SampleKind::Untyped;
    };
    match (typ, suffix) {
        (_, "_created") if matches!(typ, "counter" | "histogram" | "summary") => {
            SampleKind::Created
        }
        ("counter", "" | "_total") => SampleKind::CounterLike(Kind::Counter),
        ("histogram", "_bucket") => SampleKind::CounterLike(Kind::Bucket),
        ("histogram" | "summary", "_sum") => SampleKind::CounterLike(Kind::Sum),
        ("histogram" | "summary", "_count") => SampleKind::CounterLike(Kind::Count),
        ("summary", "") => SampleKind::Quantile,
        ("gauge", "") | ("gaugehistogram", "_bucket" | "_gcount" | "_gsum") => SampleKind::Gauge,
        ("info", "" | "_info") | ("stateset", "") => SampleKind::Info,
        _ => SampleKind::Untyped,
    }
}

/// How the inputs of one output series are combined in one scrape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// The sum (compensated, see [`crate::sum`]). The default for gauges and untyped series.
    Sum,
    /// The largest value. `NaN` inputs are ignored unless every input is `NaN` (as PromQL's
    /// `max`).
    Max,
    /// The smallest value, `NaN` as for `max`.
    Min,
    /// The mean of the inputs present in this scrape: their sum divided by their number. An
    /// input that is missing from the scrape (its target failed) does not count.
    Avg,
    /// How many inputs are present in this scrape (the values do not matter).
    Count,
    /// The value of the newest input: the latest timestamp, where a sample without one is
    /// "now"; among equally new inputs, the one read last (later in the body, later target).
    Last,
    /// Not served when two or more inputs fall into it in one scrape; one input passes.
    Drop,
}

impl Op {
    /// Every op, in the order the documentation lists them.
    pub const ALL: [Op; 7] = [
        Op::Sum,
        Op::Max,
        Op::Min,
        Op::Avg,
        Op::Count,
        Op::Last,
        Op::Drop,
    ];

    /// The name used in the configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Op::Sum => "sum",
            Op::Max => "max",
            Op::Min => "min",
            Op::Avg => "avg",
            Op::Count => "count",
            Op::Last => "last",
            Op::Drop => "drop",
        }
    }

    /// The op named `name` (exact, lower case), as written in the configuration.
    pub fn from_name(name: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|op| op.as_str() == name)
    }
}

/// What the aggregator does with an output series: decided once per output series by
/// [`Rules::action`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// A counter-like sample summed and kept monotonic across scrapes: record it into a
    /// [`crate::counters::TargetScrape`] with this kind and serve what the counter state says.
    Carry(Kind),
    /// Combine the inputs of this scrape with the op ([`Combine`]).
    Combine(Op),
    /// A summary quantile series that several inputs fall into: not served (a quantile of
    /// several inputs cannot be computed from theirs); counted in the quantile-drop
    /// self-metric and logged once. One input passes through.
    DropQuantile,
}

impl Action {
    /// The op [`Combine`] folds with (`Carry` sums; a dropped quantile drops).
    pub fn op(self) -> Op {
        match self {
            Action::Carry(_) => Op::Sum,
            Action::Combine(op) => op,
            Action::DropQuantile => Op::Drop,
        }
    }

    /// True when a series with this action is not served once two or more inputs fell into
    /// it: a `drop` rule, or a summary quantile.
    #[inline]
    pub fn hidden_when_combined(self) -> bool {
        matches!(self, Action::DropQuantile | Action::Combine(Op::Drop))
    }
}

/// Built-in rules for well-known per-process series that make no sense summed across pods.
/// They apply to gauges and untyped series only (counters, histograms and summaries are never
/// selected by them), after the user's rules; a user rule that selects the same series wins.
/// Patterns are anchored regexes on the metric name.
pub const DEFAULT_RULES: &[(&str, Op)] = &[
    // The newest start: `changes()` sees every pod's restart, `time() - x` is the youngest
    // pod's uptime.
    ("process_start_time_seconds", Op::Max),
    // Per-process limits: the limit of one process, not a sum of limits.
    ("process_max_fds|process_virtual_memory_max_bytes", Op::Max),
    // Info-style gauges (`*_build_info`, `go_info`): value 1 per label set; keep 1.
    (".+_info", Op::Max),
    // Creation times exposed as gauges (text 0.0.4 clients): the earliest.
    (".+_created", Op::Min),
    // 0/1 success flags of the last configuration reload: 1 only when every pod succeeded.
    (".*_last_reload_successful|.*_reload_success", Op::Min),
    // Configuration hashes: one of them (equal when the pods agree).
    (".*config_hash.*", Op::Max),
    // Leader election status: 1 when some pod leads.
    (".*leader.*", Op::Max),
    // Timestamps (`*_timestamp_seconds`, `*_time_seconds`): the latest.
    (".+_(timestamp|time)_seconds", Op::Max),
];

/// One compiled rule.
#[derive(Debug, Clone)]
struct Rule {
    /// A `keep` program: the series is selected when the program keeps it.
    program: Program,
    /// True when the rule reads only `__name__` ([`Program::keeps_series_named`] decides).
    by_name: bool,
    op: Op,
}

impl Rule {
    fn selects(&mut self, name: &str, labels: &[(&str, &str)], scratch: &mut LabelBuf) -> bool {
        if self.by_name {
            return self.program.keeps_series_named(name);
        }
        scratch.clear();
        scratch.push(METRIC_NAME, name);
        for &(n, v) in labels {
            if n != METRIC_NAME && !v.is_empty() {
                scratch.push(n, v);
            }
        }
        self.program.apply(scratch)
    }
}

/// The aggregation rules of a configuration: the user's (in order), then [`DEFAULT_RULES`].
///
/// `Rules::default()` has the built-in rules only (no `aggregation:` key). Matching updates
/// small caches, hence `&mut self`; clone the rules per worker.
#[derive(Debug, Clone)]
pub struct Rules {
    user: Vec<Rule>,
    defaults: Vec<Rule>,
    scratch: LabelBuf,
}

/// The built-in rules, compiled once per process: every list of every pipeline starts from a
/// copy (building a pipeline must not compile regexes).
static DEFAULTS: std::sync::LazyLock<Vec<Rule>> = std::sync::LazyLock::new(|| {
    DEFAULT_RULES
        .iter()
        .filter_map(|&(pattern, op)| {
            // The patterns are tested to compile; one that did not would only lose its rule.
            name_rule(pattern).ok().map(|program| Rule {
                program,
                by_name: true,
                op,
            })
        })
        .collect()
});

impl Default for Rules {
    fn default() -> Self {
        Rules {
            user: Vec::new(),
            defaults: DEFAULTS.clone(),
            scratch: LabelBuf::new(),
        }
    }
}

/// A `keep` program on `__name__` with `pattern`.
fn name_rule(pattern: &str) -> Result<Program, String> {
    keep_program(
        vec![METRIC_NAME.to_owned()],
        ";".to_owned(),
        pattern.to_owned(),
    )
}

fn keep_program(
    source_labels: Vec<String>,
    separator: String,
    regex: String,
) -> Result<Program, String> {
    let config = RelabelConfig {
        source_labels: Some(source_labels),
        separator,
        regex,
        action: RelabelAction::Keep,
        ..RelabelConfig::default()
    };
    config.validate()?;
    Program::compile(RESERVED_KEY, &[config]).map_err(|e| e.message().to_owned())
}

/// The message for an `aggregation:` list that holds relabel rules: a subset of that name.
pub fn reserved_key_message(index: usize, field: &str) -> String {
    format!(
        "{RESERVED_KEY}[{index}]: {RESERVED_KEY:?} is reserved for aggregation rules and cannot \
         name a subset (this entry has the relabel field {field:?}); rename the subset"
    )
}

/// Fields of a relabel rule that an aggregation rule does not have: an entry with one of them
/// is a relabel rule in a subset named `aggregation`.
const RELABEL_ONLY_FIELDS: [&str; 4] = ["action", "target_label", "replacement", "modulus"];

impl Rules {
    /// Parses and validates the value of the `aggregation:` key (a list of rules; null is an
    /// empty list):
    ///
    /// ```yaml
    /// aggregation:
    /// - match: process_start_time_seconds      # anchored regex on the metric name
    ///   op: min
    /// - source_labels: [__name__, job]         # or relabel-style selection
    ///   separator: ";"                         # default ";"
    ///   regex: "app_connections;api"           # default "(.*)"
    ///   op: max
    /// ```
    ///
    /// Errors name the rule and field the way relabel errors do (`aggregation[1].op: ...`);
    /// add the origin with [`ConfigError::with_origin`].
    pub fn parse(value: &Value) -> Result<Rules, ConfigError> {
        let mut rules = Rules::default();
        let items = match value {
            Value::Null => return Ok(rules),
            Value::Sequence(items) => items,
            other => {
                return Err(ConfigError::new(format!(
                    "{RESERVED_KEY}: expected a list of rules, got {}",
                    describe(other)
                )))
            }
        };
        for (i, item) in items.iter().enumerate() {
            let rule = parse_rule(i, item).map_err(ConfigError::new)?;
            rules.user.push(rule);
        }
        Ok(rules)
    }

    /// Number of user rules.
    pub fn len(&self) -> usize {
        self.user.len()
    }

    /// True when there is no user rule (the built-in rules still apply).
    pub fn is_empty(&self) -> bool {
        self.user.is_empty()
    }

    /// True when some user rule reads labels other than the metric name: then decisions must
    /// be cached per output series; otherwise per metric name suffices.
    pub fn uses_labels(&self) -> bool {
        self.user.iter().any(|r| !r.by_name)
    }

    /// The op of the first user rule that selects the output series `name{labels}` (after
    /// relabeling: the series as served), if any. Labels may come in any order; `__name__`
    /// among them is ignored (`name` is the name).
    pub fn rule_for(&mut self, name: &str, labels: &[(&str, &str)]) -> Option<Op> {
        let Rules { user, scratch, .. } = self;
        user.iter_mut()
            .find_map(|r| r.selects(name, labels, scratch).then_some(r.op))
    }

    /// The op of the first [`DEFAULT_RULES`] entry that selects metric `name`, if any.
    pub fn default_for(&mut self, name: &str) -> Option<Op> {
        self.defaults
            .iter_mut()
            .find_map(|r| r.program.keeps_series_named(name).then_some(r.op))
    }

    /// What to do with the output series `name{labels}` whose samples are of `kind`.
    ///
    /// | kind | no rule | rule `op` |
    /// |---|---|---|
    /// | counter-like | carried sum | `sum`: carried sum; other ops: combined per scrape, not carried |
    /// | `_created` | `min` | `sum` is refused (`min`); other ops as given |
    /// | quantile | dropped when summed | `sum` is refused (dropped when summed); other ops as given |
    /// | info, stateset | `max` (keep 1) | as given |
    /// | gauge, untyped | built-in rule, else `sum` | as given |
    pub fn action(&mut self, kind: SampleKind, name: &str, labels: &[(&str, &str)]) -> Action {
        let user = self.rule_for(name, labels);
        match (kind, user) {
            (SampleKind::CounterLike(k), None | Some(Op::Sum)) => Action::Carry(k),
            (SampleKind::Created, None | Some(Op::Sum)) => Action::Combine(Op::Min),
            (SampleKind::Quantile, None | Some(Op::Sum)) => Action::DropQuantile,
            (SampleKind::Info, None) => Action::Combine(Op::Max),
            (SampleKind::Gauge | SampleKind::Untyped, None) => {
                Action::Combine(self.default_for(name).unwrap_or(Op::Sum))
            }
            (_, Some(op)) => Action::Combine(op),
        }
    }
}

/// A YAML value's kind, for error messages.
fn describe(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a map",
        Value::Tagged(_) => "a tagged value",
    }
}

/// A string field: YAML strings, and numbers and booleans as their text (a regex `200` or
/// `true` is meant as text, as serde reads relabel rules).
fn string_field(i: usize, field: &str, value: &Value) -> Result<String, String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(n.to_string()),
        Value::Bool(b) => Ok(b.to_string()),
        other => Err(format!(
            "{RESERVED_KEY}[{i}].{field}: expected a string, got {}",
            describe(other)
        )),
    }
}

fn parse_rule(i: usize, item: &Value) -> Result<Rule, String> {
    let Value::Mapping(map) = item else {
        return Err(format!(
            "{RESERVED_KEY}[{i}]: expected a rule (a map with \"op\" and \"match\" or \
             \"source_labels\"), got {}",
            describe(item)
        ));
    };
    let mut matcher: Option<String> = None;
    let mut source_labels: Option<Vec<String>> = None;
    let mut separator: Option<String> = None;
    let mut regex: Option<String> = None;
    let mut op: Option<Op> = None;
    // Relabel fields first: a relabel rule is a subset named like the key, whatever else it has.
    for (key, _) in map {
        if let Some(f) = key.as_str().filter(|k| RELABEL_ONLY_FIELDS.contains(k)) {
            return Err(reserved_key_message(i, f));
        }
    }
    for (key, value) in map {
        let Some(key) = key.as_str() else {
            return Err(format!(
                "{RESERVED_KEY}[{i}]: field names must be strings, got {}",
                describe(key)
            ));
        };
        match key {
            "match" => matcher = Some(string_field(i, key, value)?),
            "separator" => separator = Some(string_field(i, key, value)?),
            "regex" => regex = Some(string_field(i, key, value)?),
            "source_labels" => {
                let Value::Sequence(names) = value else {
                    return Err(format!(
                        "{RESERVED_KEY}[{i}].source_labels: expected a list of label names, got {}",
                        describe(value)
                    ));
                };
                let names = names
                    .iter()
                    .map(|n| string_field(i, key, n))
                    .collect::<Result<Vec<_>, _>>()?;
                source_labels = Some(names);
            }
            "op" => {
                let name = string_field(i, key, value)?;
                op = Some(Op::from_name(&name).ok_or_else(|| {
                    format!(
                        "{RESERVED_KEY}[{i}].op: unknown op {name:?}: expected one of {}",
                        Op::ALL.map(Op::as_str).join(", ")
                    )
                })?);
            }
            other => {
                return Err(format!(
                    "{RESERVED_KEY}[{i}]: unknown field {other:?} (a rule has match, \
                     source_labels, separator, regex and op)"
                ))
            }
        }
    }
    let Some(op) = op else {
        return Err(format!("{RESERVED_KEY}[{i}]: missing field \"op\""));
    };
    let (program, by_name) = match (matcher, source_labels) {
        (Some(_), Some(_)) => {
            return Err(format!(
                "{RESERVED_KEY}[{i}]: \"match\" and \"source_labels\" cannot both be set"
            ))
        }
        (None, None) => {
            return Err(format!(
                "{RESERVED_KEY}[{i}]: set \"match\" (a metric name regex) or \"source_labels\" \
                 (with \"regex\")"
            ))
        }
        (Some(pattern), None) => {
            for (field, set) in [
                ("regex", regex.is_some()),
                ("separator", separator.is_some()),
            ] {
                if set {
                    return Err(format!(
                        "{RESERVED_KEY}[{i}].{field}: only with \"source_labels\" (\"match\" is \
                         the metric name regex)"
                    ));
                }
            }
            let program =
                name_rule(&pattern).map_err(|e| format!("{RESERVED_KEY}[{i}].match: {e}"))?;
            (program, true)
        }
        (None, Some(labels)) => {
            if labels.is_empty() {
                return Err(format!(
                    "{RESERVED_KEY}[{i}].source_labels: must name at least one label"
                ));
            }
            let by_name = labels.iter().all(|l| l == METRIC_NAME) && labels.len() == 1;
            let program = keep_program(
                labels,
                separator.unwrap_or_else(|| ";".to_owned()),
                regex.unwrap_or_else(|| "(.*)".to_owned()),
            )
            .map_err(|e| {
                let field = if e.contains("label name") {
                    "source_labels"
                } else {
                    "regex"
                };
                format!("{RESERVED_KEY}[{i}].{field}: {e}")
            })?;
            (program, by_name)
        }
    };
    Ok(Rule {
        program,
        by_name,
        op,
    })
}

/// No timestamp, in the compact fields of [`Stamp`] and [`Combine`]. Parsed timestamps are
/// milliseconds; this one is 292 million years before 1970.
const NO_TS: i64 = i64::MIN;

/// The timestamp of a combined sample.
///
/// A sample without a timestamp means "now" (the scrape's time). The combination carries:
/// - the latest timestamp, when every input has one;
/// - no timestamp ("now") when some input has none, unless an input's timestamp is later than
///   now (a clock ahead), then that one.
///
/// So the result is never older than any input it combines (`m{a="1"} 1 1000` plus
/// `m{a="2"} 2` is `m 3` at the scrape's time, not in 1970).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stamp {
    /// The latest explicit timestamp, [`NO_TS`] for none.
    latest: i64,
    /// Some input had no timestamp.
    any_now: bool,
}

impl Default for Stamp {
    fn default() -> Self {
        Stamp {
            latest: NO_TS,
            any_now: false,
        }
    }
}

impl Stamp {
    /// Adds an input's timestamp (`None`: it has none).
    #[inline]
    pub fn add(&mut self, timestamp_ms: Option<i64>) {
        match timestamp_ms {
            Some(t) => self.latest = self.latest.max(t),
            None => self.any_now = true,
        }
    }

    /// Adds every input of `other`.
    #[inline]
    pub fn merge(&mut self, other: &Stamp) {
        self.latest = self.latest.max(other.latest);
        self.any_now |= other.any_now;
    }

    /// The timestamp to write, with the scrape's time `now_ms`: `None` for "none" (the sample
    /// is served as of now).
    pub fn resolve(&self, now_ms: i64) -> Option<i64> {
        if self.latest == NO_TS || (self.any_now && self.latest <= now_ms) {
            None
        } else {
            Some(self.latest)
        }
    }
}

/// The timestamp of the combination of samples with `timestamps` at the scrape time `now_ms`
/// (see [`Stamp`]).
pub fn combined_timestamp(
    timestamps: impl IntoIterator<Item = Option<i64>>,
    now_ms: i64,
) -> Option<i64> {
    let mut s = Stamp::default();
    timestamps.into_iter().for_each(|t| s.add(t));
    s.resolve(now_ms)
}

/// The running combination of one output series' inputs under an [`Op`], mergeable across
/// targets (each target folds its own, then the partial results are merged in target order).
/// 56 bytes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Combine {
    /// The sum (`sum`, `avg`, `drop`).
    sum: Sum,
    /// `max`/`min`: the extreme so far (NaN until a number is seen); `last`: the value of the
    /// newest input that has a timestamp.
    value: f64,
    /// `last`: the value of the last input read without a timestamp ("now").
    now_value: f64,
    /// `last`: the timestamp of `value`'s input, [`NO_TS`] for none.
    value_ts: i64,
    /// The [`Stamp`] of all inputs, flattened to save its padding: latest timestamp.
    latest: i64,
    /// Number of inputs.
    count: u32,
    op: Op,
    /// The [`Stamp`]: some input had no timestamp.
    any_now: bool,
    /// `last`: `now_value` is set.
    has_now_value: bool,
}

impl Combine {
    /// No input yet.
    pub fn new(op: Op) -> Combine {
        Combine {
            sum: Sum::new(),
            value: f64::NAN,
            now_value: f64::NAN,
            value_ts: NO_TS,
            latest: NO_TS,
            count: 0,
            op,
            any_now: false,
            has_now_value: false,
        }
    }

    /// The op.
    pub fn op(&self) -> Op {
        self.op
    }

    /// Number of inputs folded in.
    pub fn count(&self) -> u32 {
        self.count
    }

    fn stamp(&self) -> Stamp {
        Stamp {
            latest: self.latest,
            any_now: self.any_now,
        }
    }

    fn set_stamp(&mut self, s: Stamp) {
        self.latest = s.latest;
        self.any_now = s.any_now;
    }

    /// Folds in one input sample.
    #[inline]
    pub fn add(&mut self, value: f64, timestamp_ms: Option<i64>) {
        self.count = self.count.saturating_add(1);
        let mut stamp = self.stamp();
        stamp.add(timestamp_ms);
        self.set_stamp(stamp);
        match self.op {
            Op::Sum | Op::Avg | Op::Drop => self.sum.add(value),
            Op::Max => {
                if self.value.is_nan() || value > self.value {
                    self.value = value;
                }
            }
            Op::Min => {
                if self.value.is_nan() || value < self.value {
                    self.value = value;
                }
            }
            Op::Last => match timestamp_ms {
                None => {
                    self.now_value = value;
                    self.has_now_value = true;
                }
                Some(t) => {
                    if t >= self.value_ts {
                        self.value = value;
                        self.value_ts = t;
                    }
                }
            },
            Op::Count => {}
        }
    }

    /// Folds in every input of `other` (read after `self`'s: on equal timestamps, `last`
    /// takes `other`'s).
    pub fn merge(&mut self, other: &Combine) {
        if other.count == 0 {
            return;
        }
        if self.count == 0 {
            *self = *other;
            return;
        }
        self.count = self.count.saturating_add(other.count);
        let mut stamp = self.stamp();
        stamp.merge(&other.stamp());
        self.set_stamp(stamp);
        match self.op {
            Op::Sum | Op::Avg | Op::Drop => self.sum.merge(&other.sum),
            Op::Max => {
                if self.value.is_nan() || other.value > self.value {
                    self.value = other.value;
                }
            }
            Op::Min => {
                if self.value.is_nan() || other.value < self.value {
                    self.value = other.value;
                }
            }
            Op::Last => {
                if other.value_ts != NO_TS && other.value_ts >= self.value_ts {
                    self.value = other.value;
                    self.value_ts = other.value_ts;
                }
                if other.has_now_value {
                    self.now_value = other.now_value;
                    self.has_now_value = true;
                }
            }
            Op::Count => {}
        }
    }

    /// The value to serve and its timestamp (see [`Stamp`]; `now_ms` is the scrape's time),
    /// or `None` when the series is not served: no input, or `drop` with two or more.
    pub fn result(&self, now_ms: i64) -> Option<(f64, Option<i64>)> {
        if self.count == 0 {
            return None;
        }
        if self.op == Op::Last {
            // The newest input's own sample, with its own time: a sample without a timestamp
            // is "now", newer than any timestamp up to now.
            let explicit = (self.value_ts != NO_TS).then_some(self.value_ts);
            return Some(match explicit {
                Some(t) if !self.has_now_value || t > now_ms => (self.value, Some(t)),
                _ => (self.now_value, None),
            });
        }
        let value = match self.op {
            Op::Drop if self.count > 1 => return None,
            Op::Sum | Op::Drop => self.sum.value(),
            Op::Avg => self.sum.value() / f64::from(self.count),
            Op::Count => f64::from(self.count),
            Op::Max | Op::Min | Op::Last => self.value,
        };
        Some((value, self.stamp().resolve(now_ms)))
    }
}

#[cfg(test)]
mod tests;
