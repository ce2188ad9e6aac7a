//! What-if: run a relabel configuration through the real [`Pipeline`] over a body and compare
//! series and bytes per metric before and after.
//!
//! Nothing here changes a running configuration: a what-if compiles its own rules and feeds its
//! own pipeline, built exactly as `--file --apply` builds one (`Config::load`, then
//! [`Pipeline`]), and measures the text that pipeline renders.

use std::time::Instant;

use serde::Serialize;

use crate::aggregate::RenderOptions;
use crate::exposition::{Metadata, ParseOptions, Parser, Sample, Sink};
use crate::limits::LimitSink;
use crate::pipeline::{ListName, Pipeline, Subset};
use crate::relabel::{Config, ConfigError, LoadOptions, DEFAULT_LIST};

use super::profile::{Profile, ProfileBudget, Profiler};
use super::ExplorerError;

/// The rules to try.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rules {
    /// Drop these labels from every series (`labeldrop`), summing the series that become equal;
    /// see [`drop_config_yaml`].
    Drop(Vec<String>),
    /// A configuration in the `--relabel-file` format (`metric_relabel_configs:` and named
    /// subsets).
    Yaml(String),
}

/// One what-if: rules, and which of their lists to measure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WhatIfRequest {
    /// The rules.
    pub rules: Rules,
    /// The named subset of a [`Rules::Yaml`] configuration to measure; `None` for the default
    /// list (`metric_relabel_configs`).
    pub subset: Option<String>,
}

impl WhatIfRequest {
    /// Dropping `labels` (blank names are ignored, duplicates kept once, order kept).
    pub fn drop<I, S>(labels: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut names: Vec<String> = Vec::new();
        for l in labels {
            let l = l.as_ref().trim();
            if !l.is_empty() && !names.iter().any(|n| n == l) {
                names.push(l.to_owned());
            }
        }
        Self {
            rules: Rules::Drop(names),
            subset: None,
        }
    }

    /// A pasted configuration, measuring its default list.
    pub fn yaml(text: impl Into<String>) -> Self {
        Self {
            rules: Rules::Yaml(text.into()),
            subset: None,
        }
    }

    /// The configuration this request runs, as YAML (generated for [`Rules::Drop`]).
    pub fn config_yaml(&self) -> String {
        match &self.rules {
            Rules::Drop(labels) => drop_config_yaml(labels),
            Rules::Yaml(text) => text.clone(),
        }
    }

    /// True when there is nothing to try (no label to drop).
    pub fn is_empty(&self) -> bool {
        matches!(&self.rules, Rules::Drop(l) if l.is_empty())
    }
}

/// The configuration that drops `labels`: one `labeldrop` rule whose regex is the names,
/// escaped, joined with `|`:
///
/// ```yaml
/// metric_relabel_configs:
///   - action: labeldrop
///     regex: path|method
/// ```
///
/// The regex is written bare when it is a plain word list that YAML cannot read as anything but
/// a string, else as a double-quoted (JSON) string. The explorer page builds the same text for
/// its copy button.
pub fn drop_config_yaml(labels: &[String]) -> String {
    let regex = labels
        .iter()
        .map(|l| regex::escape(l))
        .collect::<Vec<_>>()
        .join("|");
    let bare = regex
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && regex
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'|')
        && !matches!(
            regex.to_ascii_lowercase().as_str(),
            "null" | "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n"
        );
    let value = if bare {
        regex
    } else {
        serde_json::to_string(&regex).unwrap_or_else(|_| "\"\"".to_owned())
    };
    format!("{DEFAULT_LIST}:\n  - action: labeldrop\n    regex: {value}\n")
}

/// Limits and settings of a what-if run.
#[derive(Debug, Clone)]
pub struct WhatIfOptions {
    /// Parser settings for the body (the server's `--max-line-length` and the upstream's
    /// format).
    pub parse: ParseOptions,
    /// Compare `le`/`quantile` by value, as the server does when summing several targets
    /// ([`Pipeline::normalize_float_labels`]).
    pub normalize_float_labels: bool,
    /// Largest body accepted by [`what_if`] and [`analyze_bodies`] (all bodies together).
    pub max_body_bytes: u64,
    /// Give up (with [`ExplorerError::Timeout`]) when the work is not done by then; checked
    /// between chunks of about 1 MiB.
    pub deadline: Option<Instant>,
    /// How much the profiles may hold.
    pub budget: ProfileBudget,
    /// How the configuration is read: the server's `--metric-name-validation-scheme` and
    /// configuration limits, so a what-if accepts what a reload would.
    pub relabel: LoadOptions,
}

impl Default for WhatIfOptions {
    /// Default parser settings, no normalization, 512 MiB (the server's default
    /// `--max-body-size`), no deadline, the default budget and relabel load options.
    fn default() -> Self {
        Self {
            parse: ParseOptions::default(),
            normalize_float_labels: false,
            max_body_bytes: 512 << 20,
            deadline: None,
            budget: ProfileBudget::default(),
            relabel: LoadOptions::default(),
        }
    }
}

/// The result of a what-if.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct WhatIf {
    /// The configuration that ran (generated for a drop list: the text to copy).
    pub config: String,
    /// The dropped labels, for a drop list.
    pub drop: Option<Vec<String>>,
    /// The measured subset, when not the default list.
    pub subset: Option<String>,
    /// Whole-body numbers.
    pub totals: WhatIfTotals,
    /// Per metric name, by series before (descending), then name; metrics that only exist
    /// after (renamed by the rules) come with zero before.
    pub metrics: Vec<MetricChange>,
}

impl WhatIf {
    /// A plain-text form for `curl` (`/analyze?drop=path` without a browser's `Accept`):
    ///
    /// ```text
    /// what-if: 136 -> 80 series, 41054 -> 21608 bytes, 56 summed, 0 dropped
    /// 40 -> 20 nginx_ingress_controller_request_duration_seconds_bucket
    /// # config:
    /// # metric_relabel_configs:
    /// # ...
    /// ```
    ///
    /// Metrics in the order of [`WhatIf::metrics`]; the configuration as comment lines.
    pub fn to_text(&self) -> String {
        use std::fmt::Write as _;
        let t = &self.totals;
        let mut out = String::new();
        let _ = writeln!(
            out,
            "what-if: {} -> {} series, {} -> {} bytes, {} summed, {} dropped",
            t.series_before,
            t.series_after,
            t.bytes_before,
            t.bytes_after,
            t.summed,
            t.dropped_by_relabel + t.dropped_nameless + t.dropped_invalid
        );
        for m in &self.metrics {
            let _ = writeln!(out, "{} -> {} {}", m.series_before, m.series_after, m.name);
        }
        out.push_str("# config:\n");
        for line in self.config.lines() {
            let _ = writeln!(out, "# {line}");
        }
        out
    }
}

/// Whole-body numbers of a what-if.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct WhatIfTotals {
    /// Samples in the input.
    pub series_before: u64,
    /// Series metric-gate would serve.
    pub series_after: u64,
    /// Input bytes.
    pub bytes_before: u64,
    /// Bytes of the text metric-gate would serve (HELP and TYPE included, uncompressed).
    pub bytes_after: u64,
    /// Samples added into a series that already had one (the sums at the source).
    pub summed: u64,
    /// Samples the rules dropped (`keep`/`drop` actions).
    pub dropped_by_relabel: u64,
    /// Samples dropped because the rules left them without a metric name.
    pub dropped_nameless: u64,
    /// Samples dropped because the rules left them with an empty label name.
    pub dropped_invalid: u64,
}

/// Before and after for one metric name.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct MetricChange {
    /// The metric name.
    pub name: String,
    /// Samples in the input.
    pub series_before: u64,
    /// Series served.
    pub series_after: u64,
    /// Bytes of its input sample lines (see [`super::MetricProfile::bytes`]).
    pub bytes_before: u64,
    /// Bytes of its served sample lines.
    pub bytes_after: u64,
}

/// A relabel configuration that does not load, with where it fails when that is known.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ConfigProblem {
    /// The loader's message (with the failing rule's list and index when it is about a rule).
    pub message: String,
    /// 1-based line in the YAML text.
    pub line: Option<u64>,
    /// 1-based column in the YAML text.
    pub column: Option<u64>,
}

impl ConfigProblem {
    /// The problem of `error`, found in `yaml`: the position the YAML reader reported, or for
    /// a rule that fails validation, the line of that rule.
    pub fn new(error: &ConfigError, yaml: &str) -> Self {
        let mut message = error.to_string();
        let position = match yaml_position(&message) {
            Some((at, line, column)) => {
                // The position is kept in `line`/`column`, not repeated in the text.
                message.truncate(at);
                Some((line, column))
            }
            None => error
                .rule()
                .and_then(|(list, index)| locate_rule(yaml, list, index)),
        };
        Self {
            message,
            line: position.map(|p| p.0),
            column: position.map(|p| p.1),
        }
    }
}

/// The ` at line N column M` that ends a YAML reader message: where it starts, N and M.
fn yaml_position(message: &str) -> Option<(usize, u64, u64)> {
    let at = message.rfind(" at line ")?;
    let rest = &message[at + " at line ".len()..];
    let (line, column) = rest.split_once(" column ")?;
    Some((at, line.parse().ok()?, column.trim_end().parse().ok()?))
}

/// The line and column of rule `index` of list `list` in a block-style YAML document (for a
/// flow-style list, the line of its key).
fn locate_rule(yaml: &str, list: &str, index: usize) -> Option<(u64, u64)> {
    let indent = |l: &str| l.len() - l.trim_start().len();
    let meaningful = |l: &str| {
        let t = l.trim();
        !t.is_empty() && !t.starts_with('#')
    };
    let mut lines = yaml.lines().enumerate();
    let key_forms = [
        format!("{list}:"),
        format!("\"{list}\":"),
        format!("'{list}':"),
    ];
    let (key_no, key_line) = lines.by_ref().find(|(_, l)| {
        let t = l.trim_start();
        key_forms.iter().any(|k| t.starts_with(k.as_str()))
    })?;
    let after_key = key_line.trim_start().split_once(':')?.1.trim();
    if !after_key.is_empty() && !after_key.starts_with('#') {
        return Some((key_no as u64 + 1, indent(key_line) as u64 + 1));
    }
    let mut item_indent = None;
    let mut seen = 0usize;
    for (no, l) in lines {
        if !meaningful(l) {
            continue;
        }
        let i = indent(l);
        let is_item = l.trim_start().starts_with('-');
        match item_indent {
            None if is_item && i >= indent(key_line) => item_indent = Some(i),
            None => return None,
            Some(ii) if i < ii || (i == ii && !is_item) => return None,
            Some(_) => {}
        }
        if is_item && Some(i) == item_indent {
            if seen == index {
                return Some((no as u64 + 1, i as u64 + 1));
            }
            seen += 1;
        }
    }
    None
}

/// A what-if in progress: the pipeline, fed as a [`Sink`].
#[derive(Debug)]
pub(crate) struct Trial {
    pipeline: Pipeline,
    config: String,
    drop: Option<Vec<String>>,
    subset: Option<String>,
}

/// What a finished [`Trial`] served.
#[derive(Debug, Clone, Default)]
pub(crate) struct Outcome {
    pub series: u64,
    pub bytes: u64,
    pub summed: u64,
    pub dropped_by_relabel: u64,
    pub dropped_nameless: u64,
    pub dropped_invalid: u64,
    /// The profile of the served text.
    pub profile: Profile,
}

impl Trial {
    /// Loads the request's configuration (the whole document, so every error shows) and builds
    /// a pipeline for the measured list. Label limits are not applied: a what-if predicts
    /// counts, and a limit would stop it part way.
    pub(crate) fn new(
        request: &WhatIfRequest,
        opts: &WhatIfOptions,
    ) -> Result<Self, ExplorerError> {
        let config = request.config_yaml();
        let loaded = Config::load(&config, "relabel config", &opts.relabel)
            .map_err(|e| ExplorerError::Config(ConfigProblem::new(&e, &config)))?;
        let program = match &request.subset {
            None => loaded.default,
            Some(name) => loaded
                .subsets
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, p)| p.clone())
                .ok_or_else(|| {
                    let known: Vec<&str> = loaded.subsets.iter().map(|(n, _)| n.as_str()).collect();
                    ExplorerError::Config(ConfigProblem {
                        message: format!(
                            "unknown subset {name:?}; known subsets: [{}]",
                            known.join(", ")
                        ),
                        line: None,
                        column: None,
                    })
                })?,
        };
        let pipeline = Pipeline::from_subsets(vec![Subset::new(ListName::Default, program)])
            .normalize_float_labels(opts.normalize_float_labels);
        Ok(Self {
            pipeline,
            config,
            drop: match &request.rules {
                Rules::Drop(l) => Some(l.clone()),
                Rules::Yaml(_) => None,
            },
            subset: request.subset.clone(),
        })
    }

    /// Renders what the pipeline would serve and profiles that text.
    pub(crate) fn finish(self, budget: ProfileBudget) -> Result<Outcome, ExplorerError> {
        let Some(sub) = self.pipeline.subsets().first() else {
            return Ok(Outcome::default());
        };
        let mut text = Vec::with_capacity(sub.aggregator.render_size_hint());
        sub.aggregator.render(&mut text, &RenderOptions::default());
        let stats = sub.stats();
        // Only series and bytes per metric are compared: no values counted.
        let mut profiler = Profiler::new(ProfileBudget {
            values_per_label: 0,
            ..budget
        });
        // Our own rendering: lines as long as the relabeled series made them.
        let parse = ParseOptions {
            max_line_len: usize::MAX,
            ..ParseOptions::default()
        };
        feed(&[&text], &parse, None, &mut profiler).map_err(|e| match e {
            ExplorerError::Input(m) => ExplorerError::Input(format!("rendered output: {m}")),
            e => e,
        })?;
        profiler.add_bytes(text.len() as u64);
        Ok(Outcome {
            series: sub.aggregator.series_count() as u64,
            bytes: text.len() as u64,
            summed: stats.samples_merged,
            dropped_by_relabel: sub.dropped_by_relabel,
            dropped_nameless: stats.dropped_nameless,
            dropped_invalid: stats.dropped_invalid,
            profile: profiler.finish(),
        })
    }

    /// The what-if of this trial's outcome against the input's profile.
    pub(crate) fn compare(
        config: String,
        drop: Option<Vec<String>>,
        subset: Option<String>,
        before: &Profile,
        after: &Outcome,
    ) -> WhatIf {
        let mut metrics: Vec<MetricChange> = before
            .metrics
            .iter()
            .map(|m| MetricChange {
                name: m.name.clone(),
                series_before: m.series,
                series_after: 0,
                bytes_before: m.bytes,
                bytes_after: 0,
            })
            .collect();
        let mut at: hashbrown::HashMap<&str, usize, foldhash::fast::FixedState> =
            hashbrown::HashMap::default();
        for (i, m) in before.metrics.iter().enumerate() {
            at.insert(m.name.as_str(), i);
        }
        let mut added = Vec::new();
        for m in &after.profile.metrics {
            match at.get(m.name.as_str()) {
                Some(&i) => {
                    metrics[i].series_after = m.series;
                    metrics[i].bytes_after = m.bytes;
                }
                None => added.push(MetricChange {
                    name: m.name.clone(),
                    series_before: 0,
                    series_after: m.series,
                    bytes_before: 0,
                    bytes_after: m.bytes,
                }),
            }
        }
        added.sort_unstable_by(|a, b| {
            b.series_after
                .cmp(&a.series_after)
                .then_with(|| a.name.cmp(&b.name))
        });
        metrics.extend(added);
        WhatIf {
            config,
            drop,
            subset,
            totals: WhatIfTotals {
                series_before: before.totals.series,
                series_after: after.series,
                bytes_before: before.totals.bytes,
                bytes_after: after.bytes,
                summed: after.summed,
                dropped_by_relabel: after.dropped_by_relabel,
                dropped_nameless: after.dropped_nameless,
                dropped_invalid: after.dropped_invalid,
            },
            metrics,
        }
    }
}

impl Sink for Trial {
    fn metadata(&mut self, meta: &Metadata<'_>) {
        self.pipeline.metadata(meta);
    }

    fn sample(&mut self, sample: &Sample<'_>) {
        self.pipeline.sample(sample);
    }
}

/// One streaming pass over a body (or several, e.g. one per target): the input's profile and,
/// when asked, a what-if, from the same parse. A [`Sink`]: the server can feed it straight from
/// the upstream response, so the body is never held; [`Analysis::finish`] then gives the
/// [`Report`].
#[derive(Debug)]
pub struct Analysis {
    profiler: Profiler,
    trial: Option<Trial>,
    budget: ProfileBudget,
}

/// What [`Analysis::finish`] found.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Report {
    /// The input's cardinality profile.
    pub profile: Profile,
    /// The what-if, when one was asked for.
    pub whatif: Option<WhatIf>,
}

impl Analysis {
    /// Profiles the input and, with a `request`, runs its rules too (an empty drop list runs
    /// the pass-through configuration). Fails before any input is read when the request's
    /// configuration does not load, so a server can answer 400 without fetching.
    pub fn new(
        request: Option<&WhatIfRequest>,
        opts: &WhatIfOptions,
    ) -> Result<Self, ExplorerError> {
        let mut analysis = Self::profile_only(opts);
        if let Some(r) = request {
            analysis.trial = Some(Trial::new(r, opts)?);
        }
        Ok(analysis)
    }

    /// Only profiles the input (cannot fail).
    pub fn profile_only(opts: &WhatIfOptions) -> Self {
        Self {
            profiler: Profiler::new(opts.budget),
            trial: None,
            budget: opts.budget,
        }
    }

    /// Records how many input bytes were read (the caller counts them).
    pub fn add_bytes(&mut self, n: u64) {
        self.profiler.add_bytes(n);
    }

    /// Ends the input.
    pub fn finish(self) -> Result<Report, ExplorerError> {
        let profile = self.profiler.finish();
        let whatif = match self.trial {
            None => None,
            Some(trial) => {
                let (config, drop, subset) = (
                    trial.config.clone(),
                    trial.drop.clone(),
                    trial.subset.clone(),
                );
                let outcome = trial.finish(self.budget)?;
                Some(Trial::compare(config, drop, subset, &profile, &outcome))
            }
        };
        Ok(Report { profile, whatif })
    }
}

/// No label limit applies in an analysis (see [`Trial::new`]): it never stops the input.
impl LimitSink for Analysis {}

impl Sink for Analysis {
    fn metadata(&mut self, meta: &Metadata<'_>) {
        self.profiler.metadata(meta);
        if let Some(t) = &mut self.trial {
            t.metadata(meta);
        }
    }

    fn sample(&mut self, sample: &Sample<'_>) {
        self.profiler.sample(sample);
        if let Some(t) = &mut self.trial {
            t.sample(sample);
        }
    }
}

/// Size of the pieces bodies are parsed in (the deadline is checked between them).
const CHUNK: usize = 1 << 20;

/// Parses `bodies` into `sink`, each as its own input; returns the bytes read.
pub(crate) fn feed<S: Sink>(
    bodies: &[&[u8]],
    parse: &ParseOptions,
    deadline: Option<Instant>,
    sink: &mut S,
) -> Result<u64, ExplorerError> {
    let mut parser = Parser::new(parse.clone());
    let mut total = 0u64;
    for (i, body) in bodies.iter().enumerate() {
        let input_error = |e: crate::exposition::ParseError| {
            if bodies.len() == 1 {
                ExplorerError::Input(e.to_string())
            } else {
                ExplorerError::Input(format!("body {}: {e}", i + 1))
            }
        };
        for chunk in body.chunks(CHUNK) {
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(ExplorerError::Timeout);
            }
            parser.feed(chunk, sink).map_err(input_error)?;
        }
        parser.finish(sink).map_err(input_error)?;
        total += body.len() as u64;
    }
    Ok(total)
}

/// Checks the bodies' total size against the options.
pub(crate) fn check_size(bodies: &[&[u8]], opts: &WhatIfOptions) -> Result<(), ExplorerError> {
    let size: u64 = bodies.iter().map(|b| b.len() as u64).sum();
    if size > opts.max_body_bytes {
        return Err(ExplorerError::TooLarge {
            size,
            limit: opts.max_body_bytes,
        });
    }
    Ok(())
}

/// The profile of `bodies` (read one after the other, e.g. one per target) and, with a
/// `request`, its what-if, in one pass.
pub fn analyze_bodies(
    bodies: &[&[u8]],
    request: Option<&WhatIfRequest>,
    opts: &WhatIfOptions,
) -> Result<Report, ExplorerError> {
    check_size(bodies, opts)?;
    let mut analysis = Analysis::new(request, opts)?;
    let n = feed(bodies, &opts.parse, opts.deadline, &mut analysis)?;
    analysis.add_bytes(n);
    analysis.finish()
}

/// Runs `request` over `body` through the real pipeline: series and bytes per metric before and
/// after, the summed and dropped samples. An empty drop list measures the pass-through
/// configuration (nothing dropped; identical series still summed).
pub fn what_if(
    body: &[u8],
    request: &WhatIfRequest,
    opts: &WhatIfOptions,
) -> Result<WhatIf, ExplorerError> {
    let report = analyze_bodies(&[body], Some(request), opts)?;
    // `Analysis` runs the trial whenever a request is given.
    report.whatif.ok_or(ExplorerError::Timeout)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SMALL: &[u8] = include_bytes!("../../testdata/ingress_small.prom");

    fn drop(labels: &[&str]) -> WhatIf {
        what_if(
            SMALL,
            &WhatIfRequest::drop(labels),
            &WhatIfOptions::default(),
        )
        .unwrap()
    }

    #[test]
    fn drop_config_text() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            drop_config_yaml(&names(&["path", "method"])),
            "metric_relabel_configs:\n  - action: labeldrop\n    regex: path|method\n"
        );
        // Names YAML would read as something else, or that need escaping, are quoted.
        assert!(drop_config_yaml(&names(&["true"])).ends_with("regex: \"true\"\n"));
        assert!(drop_config_yaml(&names(&["a.b"])).ends_with("regex: \"a\\\\.b\"\n"));
        for labels in [&["path"][..], &["true", "a.b", "x\"y", "é"], &["_x", "no"]] {
            let yaml = drop_config_yaml(&names(labels));
            let config = Config::from_yaml(&yaml, "t").unwrap();
            for l in labels {
                let mut p = config.default.clone();
                assert!(!p.keeps_label(l), "{l} in {yaml}");
                assert!(p.keeps_label(&format!("{l}x")), "{l}x in {yaml}");
            }
        }
        assert_eq!(
            WhatIfRequest::drop([" path", "path", "", "method"]).rules,
            Rules::Drop(vec!["path".into(), "method".into()])
        );
    }

    /// The what-if's count is `--file --apply`'s: the same pipeline, run the way `run_apply`
    /// runs it, over the same file.
    #[test]
    fn drop_path_matches_apply() {
        let w = drop(&["path"]);
        let yaml = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/testdata/relabel/labeldrop_path.yaml"
        ))
        .unwrap();
        let config = Config::from_yaml(&yaml, "t").unwrap();
        let mut out = Vec::new();
        let mut summary = Vec::new();
        crate::cli::run_apply(
            concat!(env!("CARGO_MANIFEST_DIR"), "/testdata/ingress_small.prom"),
            &config,
            None,
            &crate::cli::ApplyLimits::default(),
            &mut out,
            &mut summary,
        )
        .unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines = text.lines().filter(|l| !l.starts_with('#')).count() as u64;
        assert_eq!(w.totals.series_after, lines);
        assert_eq!(w.totals.bytes_after, text.len() as u64);
        let summary = String::from_utf8(summary).unwrap();
        assert!(
            summary.contains(&format!("series out: {lines},"))
                && summary.contains(&format!("summed: {},", w.totals.summed)),
            "{summary}"
        );
        let text = w.to_text();
        assert!(
            text.starts_with(&format!("what-if: 136 -> {lines} series, ")),
            "{text}"
        );
        assert!(text.contains("\n8 -> 4 nginx_ingress_controller_requests\n"));
        assert!(text.ends_with(
            "# config:\n# metric_relabel_configs:\n#   - action: labeldrop\n#     regex: path\n"
        ));
        // The file's own comment: 8 request series become 4.
        let req = w
            .metrics
            .iter()
            .find(|m| m.name == "nginx_ingress_controller_requests")
            .unwrap();
        assert_eq!((req.series_before, req.series_after), (8, 4));
        assert!(req.bytes_after < req.bytes_before);
        assert_eq!(w.totals.series_before, 136);
        assert_eq!(w.totals.bytes_before, SMALL.len() as u64);
        // Per-metric numbers add up to the totals (sample lines; HELP/TYPE are the rest).
        let after: u64 = w.metrics.iter().map(|m| m.series_after).sum();
        assert_eq!(after, w.totals.series_after);
        assert_eq!(
            w.totals.summed,
            w.totals.series_before - w.totals.series_after
        );
    }

    #[test]
    fn passthrough_changes_nothing() {
        let w = drop(&[]);
        assert_eq!(w.totals.series_after, w.totals.series_before);
        for m in &w.metrics {
            assert_eq!(m.series_after, m.series_before, "{}", m.name);
            // The ingress lines carry `canary=""`, which is not written (an empty value is an
            // absent label).
            assert!(m.bytes_after <= m.bytes_before, "{}", m.name);
        }
        // For canonical text, bytes before are exactly the bytes written.
        let text =
            b"# TYPE a counter\na{x=\"1\",y=\"2\"} 1 1700000000000\nb 2.5\nc{z=\"q\\\"\"} -1e+06\n";
        let w = what_if(
            text,
            &WhatIfRequest::drop(["nothing"]),
            &WhatIfOptions::default(),
        )
        .unwrap();
        for m in &w.metrics {
            assert_eq!(m.bytes_after, m.bytes_before, "{}", m.name);
        }
        let lines: u64 = w.metrics.iter().map(|m| m.bytes_before).sum();
        assert_eq!(lines, text.len() as u64 - "# TYPE a counter\n".len() as u64);
        assert_eq!(w.totals.bytes_after, text.len() as u64);
    }

    #[test]
    fn yaml_rules_rename_and_drop() {
        let yaml = "\
metric_relabel_configs:
  - action: drop
    source_labels: [__name__]
    regex: go_.*
  - action: replace
    source_labels: [__name__]
    regex: nginx_ingress_controller_requests
    target_label: __name__
    replacement: requests_total
";
        let w = what_if(SMALL, &WhatIfRequest::yaml(yaml), &WhatIfOptions::default()).unwrap();
        assert_eq!(w.config, yaml);
        assert_eq!(w.drop, None);
        assert!(w.totals.dropped_by_relabel > 0);
        let go = w
            .metrics
            .iter()
            .find(|m| m.name == "go_goroutines")
            .unwrap();
        assert_eq!((go.series_before, go.series_after), (1, 0));
        let old = w
            .metrics
            .iter()
            .find(|m| m.name == "nginx_ingress_controller_requests")
            .unwrap();
        assert_eq!((old.series_before, old.series_after), (8, 0));
        let new = w
            .metrics
            .iter()
            .find(|m| m.name == "requests_total")
            .unwrap();
        assert_eq!((new.series_before, new.series_after), (0, 8));
        assert_eq!(w.metrics.last().unwrap().name, "requests_total");
    }

    #[test]
    fn config_errors_carry_their_position() {
        let opts = WhatIfOptions::default();
        let err = |yaml: &str| match what_if(SMALL, &WhatIfRequest::yaml(yaml), &opts) {
            Err(ExplorerError::Config(p)) => p,
            other => panic!("{yaml}: {other:?}"),
        };
        // The YAML reader's position.
        let p = err("metric_relabel_configs:\n  - action: explode\n");
        assert!(p.message.contains("unknown relabel action"), "{p:?}");
        assert!(!p.message.contains(" at line "), "{p:?}");
        assert_eq!((p.line, p.column), (Some(2), Some(13)));
        let e = ExplorerError::Config(p);
        assert!(e.to_string().ends_with("(line 2, column 13)"), "{e}");
        // A rule that reads but fails validation: the line of that rule.
        let p = err("# c\nmetric_relabel_configs:\n- action: keep\n  regex: a\n- action: hashmod\n  source_labels: [a]\n  target_label: b\n");
        assert!(p.message.contains("metric_relabel_configs[1]"), "{p:?}");
        assert_eq!((p.line, p.column), (Some(5), Some(1)));
        let p = err("metric_relabel_configs:\n  - action: keep\n    regex: a\nsub:\n  - action: keep\n  - action: labeldrop\n    regex: '('\n");
        assert!(p.message.contains("sub[1]"), "{p:?}");
        assert_eq!((p.line, p.column), (Some(6), Some(3)));
        // Unknown subset.
        let mut r = WhatIfRequest::yaml("metric_relabel_configs: []\na: []\n");
        r.subset = Some("b".into());
        match what_if(SMALL, &r, &opts) {
            Err(ExplorerError::Config(p)) => assert!(p.message.contains("known subsets: [a]")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn subsets_and_normalization() {
        let yaml = "metric_relabel_configs: []\nonly_requests:\n  - action: keep\n    source_labels: [__name__]\n    regex: nginx_ingress_controller_requests\n";
        let mut r = WhatIfRequest::yaml(yaml);
        r.subset = Some("only_requests".into());
        let opts = WhatIfOptions {
            normalize_float_labels: true,
            ..WhatIfOptions::default()
        };
        let w = what_if(SMALL, &r, &opts).unwrap();
        assert_eq!(w.totals.series_after, 8);
        assert_eq!(w.subset.as_deref(), Some("only_requests"));
    }

    #[test]
    fn limits_and_input_errors() {
        let small = WhatIfOptions {
            max_body_bytes: 10,
            ..WhatIfOptions::default()
        };
        let r = WhatIfRequest::drop(["path"]);
        assert!(matches!(
            what_if(SMALL, &r, &small),
            Err(ExplorerError::TooLarge { limit: 10, .. })
        ));
        let past = WhatIfOptions {
            deadline: Some(Instant::now()),
            ..WhatIfOptions::default()
        };
        assert!(matches!(
            what_if(SMALL, &r, &past),
            Err(ExplorerError::Timeout)
        ));
        match what_if(b"ok 1\nbad{ 1\n", &r, &WhatIfOptions::default()) {
            Err(ExplorerError::Input(m)) => assert!(m.starts_with("line 2, col"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    /// The server streams an upstream body into the analysis on another task
    /// (`upstream::scrape_into` takes a `LimitSink + Send + 'static`).
    #[test]
    fn analysis_can_be_sent_to_the_fetch_task() {
        fn sendable<T: LimitSink + Send + 'static>() {}
        sendable::<Analysis>();
    }

    #[test]
    fn analysis_over_several_bodies_sums_them() {
        let r = WhatIfRequest::drop(["controller_pod"]);
        let report = analyze_bodies(&[SMALL, SMALL], Some(&r), &WhatIfOptions::default()).unwrap();
        assert_eq!(report.profile.totals.series, 2 * 136);
        assert_eq!(report.profile.totals.bytes, 2 * SMALL.len() as u64);
        let w = report.whatif.unwrap();
        // Two copies of the same series are one series served, with the values summed.
        assert_eq!(
            w.totals.series_after,
            drop(&["controller_pod"]).totals.series_after
        );
        let none = analyze_bodies(&[SMALL], None, &WhatIfOptions::default()).unwrap();
        assert!(none.whatif.is_none());
        assert_eq!(none.profile.totals.series, 136);
    }
}
