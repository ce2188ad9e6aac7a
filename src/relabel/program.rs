//! Compiled relabel rules: [`Program::apply`] runs one rule list over one series, in place.
//!
//! Processing follows Prometheus' `relabel.Process`: the rules run in order, each reading the
//! labels as the previous rules left them, and the first rule that drops the series ends it.
//! Each action is one arm of the `match` in `Rule::apply`, to be read against the Prometheus
//! docs.
//!
//! Speed: `apply` is the hot path (hundreds of thousands of series per scrape) and allocates
//! nothing in steady state. Regex decisions and `hashmod`'s md5 are cached per rule by their
//! input — the joined source values for `keep`/`drop`/`replace`/`hashmod`, the label name for
//! `labeldrop`/`labelkeep`/`labelmap` — in bounded caches (the policy is documented in the
//! private `cache` module: when full, stop storing; clear after a capacity's worth of misses).
//! Patterns that are plain string tests (`foo`, `a|b`, `foo.*`, `.*foo`, `.*foo.*`) skip the
//! regex and the cache altogether (private `matcher` module).
//! Scratch strings are reused across calls.

use std::collections::HashMap;

use md5::{Digest, Md5};
use regex::CaptureLocations;

use super::budget::LoadOptions;
use super::cache::{self, DecisionCache};
use super::case;
use super::config::{check_regex_len, invalid_regex, Action, ConfigError, RelabelConfig};
use super::matcher::{Groups, Matcher};
use super::names::NameValidation;
use super::template::Template;
use crate::labels::{LabelBuf, METRIC_NAME};

/// Default bound on the entries of each rule's decision cache.
pub const DEFAULT_CACHE_CAPACITY: usize = cache::DEFAULT_CAPACITY;

/// A compiled list of relabel rules with its decision caches and scratch buffers.
///
/// A `Program` is used by one thread at a time (`apply` takes `&mut self` to update its
/// caches); clone it for each worker. The default program has no rules and passes every series
/// through unchanged.
#[derive(Debug, Clone, Default)]
pub struct Program {
    rules: Vec<Rule>,
    scratch: Scratch,
    names: NameValidation,
}

/// Compiles the rules of one configuration: checks them under its [`LoadOptions`], and
/// compiles each distinct regex once, within [`super::Limits::max_regex_bytes`]. Rules with the
/// same pattern share the compiled regex, so aliasing one rule many times costs no extra
/// regex memory.
pub(crate) struct Compiler {
    options: LoadOptions,
    matchers: HashMap<Box<str>, Matcher>,
}

impl Compiler {
    pub(crate) fn new(options: &LoadOptions) -> Self {
        Compiler {
            options: *options,
            matchers: HashMap::new(),
        }
    }

    /// The compiled `pattern`, shared with earlier rules that have the same one.
    fn matcher(&mut self, pattern: &str) -> Result<Matcher, String> {
        if let Some(matcher) = self.matchers.get(pattern) {
            return Ok(matcher.clone());
        }
        check_regex_len(pattern, &self.options.limits)?;
        let matcher = Matcher::new(pattern).map_err(|e| invalid_regex(pattern, &e))?;
        self.matchers.insert(pattern.into(), matcher.clone());
        Ok(matcher)
    }
}

/// Buffers reused by every call to `apply`, so that it does not allocate.
#[derive(Debug, Clone, Default)]
struct Scratch {
    /// The joined source values, when there are several source labels.
    join: String,
    /// An expanded `target_label`, or a `labelmap` target name.
    target: String,
    /// An expanded `replacement`, or a case-mapped value.
    value: String,
    /// `labelmap`'s copies, applied after its scan of the labels.
    pending: LabelBuf,
}

/// One compiled rule.
#[derive(Debug, Clone)]
struct Rule {
    sources: Box<[Box<str>]>,
    separator: Box<str>,
    op: Op,
}

impl Rule {
    /// Whether the rule's only source label is `__name__`.
    fn is_name_only(&self) -> bool {
        matches!(&*self.sources, [only] if &**only == METRIC_NAME)
    }
}

/// What a rule does, with its compiled parts.
#[derive(Debug, Clone)]
enum Op {
    Keep(Decision),
    Drop(Decision),
    KeepEqual {
        target: Box<str>,
    },
    DropEqual {
        target: Box<str>,
    },
    Replace(Box<Replace>),
    HashMod {
        target: Box<str>,
        modulus: u64,
        /// Joined source values -> hash modulo `modulus` (md5 costs more than a lookup).
        cache: DecisionCache<u64>,
    },
    LabelMap(Box<LabelMap>),
    LabelDrop(Decision),
    LabelKeep(Decision),
    Lowercase {
        target: Box<str>,
    },
    Uppercase {
        target: Box<str>,
    },
}

/// Does the regex match? The core of `keep`, `drop`, `labeldrop`, `labelkeep`.
#[derive(Debug, Clone)]
struct Decision {
    matcher: Matcher,
    cache: DecisionCache<bool>,
}

impl Decision {
    #[inline]
    fn is_match(&mut self, input: &str) -> bool {
        if let Some(matched) = self.matcher.fast_match(input) {
            return matched;
        }
        if let Some(&matched) = self.cache.get(input) {
            return matched;
        }
        let matched = self.matcher.regex().is_match(input);
        self.cache.insert_with(input, || matched);
        matched
    }
}

/// The `replace` action.
#[derive(Debug, Clone)]
struct Replace {
    matcher: Matcher,
    rewrite: Rewrite,
    /// Whether the templates reference groups (else a plain match decides).
    uses_groups: bool,
    locs: CaptureLocations,
    /// Joined source values -> what to write.
    cache: DecisionCache<Outcome>,
}

/// `replace`'s templates.
#[derive(Debug, Clone)]
struct Rewrite {
    target: Target,
    replacement: Template,
    /// Decides whether an expanded target is a label name.
    names: NameValidation,
}

/// `replace`'s `target_label`, resolved as far as it can be before seeing a match.
#[derive(Debug, Clone)]
enum Target {
    /// No group references, and a valid label name under the scheme.
    Fixed(Box<str>),
    /// No group references, and not a valid label name (e.g. `${missing}`, which expands to
    /// nothing): never written.
    Never,
    /// Expanded per match, then checked.
    Expand(Template),
}

/// A cached `replace` decision.
#[derive(Debug, Clone)]
enum Outcome {
    /// No match, or the expanded target is not a valid label name.
    NoChange,
    /// Set the target to the value (deleting it when the value is empty). `None` stands for
    /// the fixed target or the literal replacement, which are not copied into the cache.
    Write {
        target: Option<Box<str>>,
        value: Option<Box<str>>,
    },
}

impl Rewrite {
    /// The label to write and its value for a match whose groups are `groups`, or `None` when
    /// the expanded target is not a valid label name under the scheme (Prometheus then leaves
    /// the series unchanged). Expansions go to the two buffers.
    fn resolve<'a>(
        &'a self,
        input: &str,
        groups: &Groups<'_>,
        target_buf: &'a mut String,
        value_buf: &'a mut String,
    ) -> Option<(&'a str, &'a str)> {
        let target: &'a str = match &self.target {
            Target::Fixed(target) => target,
            Target::Never => return None,
            Target::Expand(template) => {
                target_buf.clear();
                template.expand(input, |i| groups.get(i), target_buf);
                if !self.names.is_valid_label_name(target_buf) {
                    return None;
                }
                target_buf
            }
        };
        let value: &'a str = match self.replacement.as_literal() {
            Some(value) => value,
            None => {
                value_buf.clear();
                self.replacement.expand(input, |i| groups.get(i), value_buf);
                value_buf
            }
        };
        Some((target, value))
    }

    /// The cache entry for a resolved write: only what is not fixed is copied.
    fn outcome(&self, resolved: Option<(&str, &str)>) -> Outcome {
        match resolved {
            None => Outcome::NoChange,
            Some((target, value)) => Outcome::Write {
                target: matches!(self.target, Target::Expand(_)).then(|| target.into()),
                value: self
                    .replacement
                    .as_literal()
                    .is_none()
                    .then(|| value.into()),
            },
        }
    }

    /// Reads a cached write back.
    fn cached<'a>(
        &'a self,
        target: &'a Option<Box<str>>,
        value: &'a Option<Box<str>>,
    ) -> Option<(&'a str, &'a str)> {
        let target = match (target, &self.target) {
            (Some(target), _) => target,
            (None, Target::Fixed(target)) => target,
            (None, _) => return None,
        };
        let value = match value {
            Some(value) => value,
            None => self.replacement.as_literal()?,
        };
        Some((target, value))
    }
}

/// The `labelmap` action.
#[derive(Debug, Clone)]
struct LabelMap {
    matcher: Matcher,
    replacement: Template,
    locs: CaptureLocations,
    /// Label name -> new name, `None` when the regex does not match the name.
    cache: DecisionCache<Option<Box<str>>>,
}

impl Program {
    /// Validates and compiles `rules` with the default [`LoadOptions`] (UTF-8 names, default
    /// limits). `list` names the rule list in errors: the subset name, or
    /// `metric_relabel_configs` for the default list.
    pub fn compile(list: &str, rules: &[RelabelConfig]) -> Result<Program, ConfigError> {
        Program::compile_with(list, rules, &LoadOptions::default())
    }

    /// [`Program::compile`] under `options`: the name validation scheme and the regex limit.
    pub fn compile_with(
        list: &str,
        rules: &[RelabelConfig],
        options: &LoadOptions,
    ) -> Result<Program, ConfigError> {
        Program::compile_in(&mut Compiler::new(options), list, rules)
    }

    /// [`Program::compile`] with the regexes of the whole configuration shared.
    pub(crate) fn compile_in(
        compiler: &mut Compiler,
        list: &str,
        rules: &[RelabelConfig],
    ) -> Result<Program, ConfigError> {
        let compiled = rules
            .iter()
            .enumerate()
            .map(|(i, rule)| {
                Rule::compile(rule, compiler)
                    .map_err(|message| ConfigError::in_rule(list, i, rule.action, message))
            })
            .collect::<Result<_, _>>()?;
        Ok(Program {
            rules: compiled,
            names: compiler.options.names,
            ..Program::default()
        })
    }

    /// The name validation scheme the rules were checked with, which also decides what
    /// `replace` writes.
    pub fn name_validation(&self) -> NameValidation {
        self.names
    }

    /// Applies the rules in order to `labels`, in place. Returns false when a rule dropped the
    /// series; `labels` is then partly relabeled and should be discarded.
    ///
    /// Labels may come in any order. Labels a rule adds are appended at the end, so sort
    /// afterwards if the order matters. The result may lack `__name__` (`labelkeep`, or a
    /// `replace` that empties it) or carry a name that is not valid under the scheme
    /// (`labelmap` writes whatever its replacement expands to, even an empty name, and any
    /// rule may write any value to `__name__`, as in Prometheus, whose scrape then fails):
    /// callers must check.
    pub fn apply(&mut self, labels: &mut LabelBuf) -> bool {
        let Program { rules, scratch, .. } = self;
        rules.iter_mut().all(|rule| rule.apply(labels, scratch))
    }

    /// True when the program has rules and each is `labeldrop`, `labelkeep`, or a `keep` /
    /// `drop` whose only source label is `__name__`: such a program drops a series by its metric
    /// name alone ([`Program::keeps_series_named`]) and removes labels by their names alone
    /// ([`Program::keeps_label`]), so it can run without building a label set.
    pub fn is_label_filter(&self) -> bool {
        !self.rules.is_empty()
            && self.rules.iter().all(|r| match &r.op {
                Op::LabelDrop(_) | Op::LabelKeep(_) => true,
                Op::Keep(_) | Op::Drop(_) => r.is_name_only(),
                _ => false,
            })
    }

    /// True when some rule is a `keep` or `drop` (of a [`Program::is_label_filter`] program:
    /// one on `__name__`), so [`Program::keeps_series_named`] must be asked.
    pub fn filters_names(&self) -> bool {
        self.rules
            .iter()
            .any(|r| matches!(r.op, Op::Keep(_) | Op::Drop(_)))
    }

    /// For a program of [`Program::is_label_filter`]: whether a series named `name` passes its
    /// `keep` / `drop` rules. A `labeldrop`/`labelkeep` that removes `__name__` leaves later
    /// rules an empty name, as applying the rules to a label set would.
    pub fn keeps_series_named(&mut self, name: &str) -> bool {
        let mut value = name;
        for rule in &mut self.rules {
            let op = &mut rule.op;
            let (drop_series, drop_name) = match op {
                Op::Keep(d) => (!d.is_match(value), false),
                Op::Drop(d) => (d.is_match(value), false),
                Op::LabelDrop(d) => (false, d.is_match(METRIC_NAME)),
                Op::LabelKeep(d) => (false, !d.is_match(METRIC_NAME)),
                _ => (false, false),
            };
            if drop_series {
                return false;
            }
            if drop_name {
                value = "";
            }
        }
        true
    }

    /// For a program of [`Program::is_label_filter`]: whether a label named `name` survives
    /// every rule. (Other rules are ignored here.)
    #[inline]
    pub fn keeps_label(&mut self, name: &str) -> bool {
        for rule in &mut self.rules {
            let keep = match &mut rule.op {
                Op::LabelDrop(d) => !d.is_match(name),
                Op::LabelKeep(d) => d.is_match(name),
                _ => true,
            };
            if !keep {
                return false;
            }
        }
        true
    }

    /// True when the program has no rules (pass-through).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Total entries in the rules' decision caches (a self-metric).
    pub fn cache_entries(&self) -> usize {
        self.rules.iter().map(Rule::cache_entries).sum()
    }

    /// Changes the bound on each rule's decision cache and empties the caches. 0 disables
    /// caching (every regex decision runs the regex).
    pub fn set_cache_capacity(&mut self, per_rule: usize) {
        for rule in &mut self.rules {
            rule.reset_cache(per_rule);
        }
    }
}

impl Rule {
    /// Checks `cfg` as [`RelabelConfig::validate`] does, in the same order, compiling its
    /// regex through `compiler`.
    fn compile(cfg: &RelabelConfig, compiler: &mut Compiler) -> Result<Rule, String> {
        let names = compiler.options.names;
        cfg.check_source_labels(names)?;
        let matcher = compiler.matcher(&cfg.regex)?;
        cfg.check_fields(names)?;
        let cache_capacity = DEFAULT_CACHE_CAPACITY;
        let decision = |matcher: Matcher| Decision {
            matcher,
            cache: DecisionCache::new(cache_capacity),
        };
        let target = || Box::<str>::from(cfg.target_label.as_str());
        let op = match cfg.action {
            Action::Keep => Op::Keep(decision(matcher)),
            Action::Drop => Op::Drop(decision(matcher)),
            Action::KeepEqual => Op::KeepEqual { target: target() },
            Action::DropEqual => Op::DropEqual { target: target() },
            Action::HashMod => Op::HashMod {
                target: target(),
                modulus: cfg.modulus,
                cache: DecisionCache::new(cache_capacity),
            },
            Action::LabelDrop => Op::LabelDrop(decision(matcher)),
            Action::LabelKeep => Op::LabelKeep(decision(matcher)),
            Action::Lowercase => Op::Lowercase { target: target() },
            Action::Uppercase => Op::Uppercase { target: target() },
            Action::Replace => {
                let groups: Vec<Option<&str>> = matcher.regex().capture_names().collect();
                let target = Template::parse(&cfg.target_label, &groups);
                let target = match target.as_literal() {
                    Some(name) if names.is_valid_label_name(name) => Target::Fixed(name.into()),
                    Some(_) => Target::Never,
                    None => Target::Expand(target),
                };
                let replacement = Template::parse(&cfg.replacement, &groups);
                let uses_groups =
                    matches!(target, Target::Expand(_)) || replacement.as_literal().is_none();
                Op::Replace(Box::new(Replace {
                    locs: matcher.regex().capture_locations(),
                    matcher,
                    rewrite: Rewrite {
                        target,
                        replacement,
                        names,
                    },
                    uses_groups,
                    cache: DecisionCache::new(cache_capacity),
                }))
            }
            Action::LabelMap => {
                let groups: Vec<Option<&str>> = matcher.regex().capture_names().collect();
                Op::LabelMap(Box::new(LabelMap {
                    replacement: Template::parse(&cfg.replacement, &groups),
                    locs: matcher.regex().capture_locations(),
                    matcher,
                    cache: DecisionCache::new(cache_capacity),
                }))
            }
        };
        Ok(Rule {
            sources: cfg
                .source_labels()
                .iter()
                .map(|s| s.as_str().into())
                .collect(),
            separator: cfg.separator.as_str().into(),
            op,
        })
    }

    /// Runs the rule; false when it drops the series.
    #[inline]
    fn apply(&mut self, labels: &mut LabelBuf, scratch: &mut Scratch) -> bool {
        let Rule {
            sources,
            separator,
            op,
        } = self;
        let Scratch {
            join,
            target: target_buf,
            value: value_buf,
            pending,
        } = scratch;
        match op {
            Op::Keep(decision) => decision.is_match(source_value(sources, separator, labels, join)),
            Op::Drop(decision) => {
                !decision.is_match(source_value(sources, separator, labels, join))
            }
            Op::KeepEqual { target } => {
                source_value(sources, separator, labels, join) == labels.get_or_empty(target)
            }
            Op::DropEqual { target } => {
                source_value(sources, separator, labels, join) != labels.get_or_empty(target)
            }
            Op::Replace(replace) => {
                replace.apply(sources, separator, labels, join, target_buf, value_buf);
                true
            }
            Op::HashMod {
                target,
                modulus,
                cache,
            } => {
                let input = source_value(sources, separator, labels, join);
                let shard = match cache.get(input) {
                    Some(&shard) => shard,
                    None => {
                        let shard = hash_mod(input, *modulus);
                        cache.insert_with(input, || shard);
                        shard
                    }
                };
                let mut digits = [0u8; 20];
                labels.set(target, decimal(shard, &mut digits));
                true
            }
            Op::LabelMap(map) => {
                map.apply(labels, target_buf, pending);
                true
            }
            Op::LabelDrop(decision) => {
                labels.retain(|l| !decision.is_match(&l.name));
                true
            }
            Op::LabelKeep(decision) => {
                labels.retain(|l| decision.is_match(&l.name));
                true
            }
            Op::Lowercase { target } => {
                let input = source_value(sources, separator, labels, join);
                value_buf.clear();
                case::push_lower(input, value_buf);
                labels.set(target, value_buf);
                true
            }
            Op::Uppercase { target } => {
                let input = source_value(sources, separator, labels, join);
                value_buf.clear();
                case::push_upper(input, value_buf);
                labels.set(target, value_buf);
                true
            }
        }
    }

    fn cache_entries(&self) -> usize {
        match &self.op {
            Op::Keep(d) | Op::Drop(d) | Op::LabelDrop(d) | Op::LabelKeep(d) => d.cache.len(),
            Op::Replace(r) => r.cache.len(),
            Op::LabelMap(m) => m.cache.len(),
            Op::HashMod { cache, .. } => cache.len(),
            _ => 0,
        }
    }

    fn reset_cache(&mut self, capacity: usize) {
        match &mut self.op {
            Op::Keep(d) | Op::Drop(d) | Op::LabelDrop(d) | Op::LabelKeep(d) => {
                d.cache.reset(capacity)
            }
            Op::Replace(r) => r.cache.reset(capacity),
            Op::LabelMap(m) => m.cache.reset(capacity),
            Op::HashMod { cache, .. } => cache.reset(capacity),
            _ => {}
        }
    }
}

impl Replace {
    /// `replace`. The input borrows `labels`; every path below stops using it before writing
    /// to `labels`, which is why the input is computed here rather than passed in.
    #[inline]
    fn apply(
        &mut self,
        sources: &[Box<str>],
        separator: &str,
        labels: &mut LabelBuf,
        join: &mut String,
        target_buf: &mut String,
        value_buf: &mut String,
    ) {
        let input = source_value(sources, separator, labels, join);
        // Fast pattern: every group is the whole input, no regex and no cache needed.
        if let Some(groups) = self.matcher.fast_groups(input) {
            if let Some(groups) = groups {
                if let Some((target, value)) =
                    self.rewrite.resolve(input, &groups, target_buf, value_buf)
                {
                    labels.set(target, value);
                }
            }
            return;
        }
        if let Some(outcome) = self.cache.get(input) {
            if let Outcome::Write { target, value } = outcome {
                if let Some((target, value)) = self.rewrite.cached(target, value) {
                    labels.set(target, value);
                }
            }
            return;
        }
        let regex = self.matcher.regex();
        let groups = if self.uses_groups {
            regex
                .captures_read(&mut self.locs, input)
                .map(|_| Groups::Regex(&self.locs))
        } else {
            regex.is_match(input).then_some(Groups::Whole {
                len: input.len(),
                count: 0,
            })
        };
        let resolved = groups.and_then(|g| self.rewrite.resolve(input, &g, target_buf, value_buf));
        self.cache
            .insert_with(input, || self.rewrite.outcome(resolved));
        if let Some((target, value)) = resolved {
            labels.set(target, value);
        }
    }
}

impl LabelMap {
    /// Copies every label whose name matches to its mapped name. Like Prometheus, it scans a
    /// snapshot: copies are collected first, then written in scan order (the last of several
    /// copies to the same name wins), so a copy is never itself mapped again.
    fn apply(&mut self, labels: &mut LabelBuf, name_buf: &mut String, pending: &mut LabelBuf) {
        pending.clear();
        for (name, value) in labels.iter() {
            if let Some(groups) = self.matcher.fast_groups(name) {
                if let Some(groups) = groups {
                    name_buf.clear();
                    self.replacement.expand(name, |i| groups.get(i), name_buf);
                    pending.push(name_buf, value);
                }
                continue;
            }
            if let Some(mapped) = self.cache.get(name) {
                if let Some(mapped) = mapped {
                    pending.push(mapped, value);
                }
                continue;
            }
            let matched = self
                .matcher
                .regex()
                .captures_read(&mut self.locs, name)
                .is_some();
            if matched {
                name_buf.clear();
                let locs = &self.locs;
                self.replacement.expand(name, |i| locs.get(i), name_buf);
                pending.push(name_buf, value);
            }
            self.cache
                .insert_with(name, || matched.then(|| name_buf.as_str().into()));
        }
        for (name, value) in pending.iter() {
            labels.set(name, value);
        }
    }
}

/// The rule's input: the source label values joined with the separator (an absent label reads
/// as the empty string). Borrows the single value directly; joins several into `join`.
#[inline]
fn source_value<'a>(
    sources: &[Box<str>],
    separator: &str,
    labels: &'a LabelBuf,
    join: &'a mut String,
) -> &'a str {
    match sources {
        [] => "",
        [only] => labels.get_or_empty(only),
        [first, rest @ ..] => {
            join.clear();
            join.push_str(labels.get_or_empty(first));
            for name in rest {
                join.push_str(separator);
                join.push_str(labels.get_or_empty(name));
            }
            join
        }
    }
}

/// Prometheus' `hashmod`: md5 of the input, its last 8 bytes as a big-endian integer, modulo
/// `modulus` (non-zero, checked when the rule is loaded).
fn hash_mod(input: &str, modulus: u64) -> u64 {
    let digest = Md5::digest(input.as_bytes());
    let mut tail = [0u8; 8];
    tail.copy_from_slice(&digest[8..]);
    u64::from_be_bytes(tail) % modulus
}

/// Formats `n` in decimal into `buf`, without allocating.
fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &str {
    let mut start = buf.len();
    loop {
        start -= 1;
        buf[start] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    std::str::from_utf8(&buf[start..]).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(yaml: &str) -> Vec<RelabelConfig> {
        serde_yaml_ng::from_str(yaml).unwrap_or_else(|e| panic!("{yaml}: {e}"))
    }

    fn labels(pairs: &[(&str, &str)]) -> LabelBuf {
        let mut buf = LabelBuf::new();
        for (name, value) in pairs {
            buf.push(name, value);
        }
        buf
    }

    fn sorted(buf: &LabelBuf) -> Vec<(String, String)> {
        let mut v: Vec<_> = buf
            .iter()
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect();
        v.sort();
        v
    }

    /// Runs the rules over the labels three times with the same program (a cold run, then
    /// runs that hit the caches) and checks the runs agree. `None` means dropped.
    fn run_program(program: &mut Program, input: &[(&str, &str)]) -> Option<Vec<(String, String)>> {
        let mut results = Vec::new();
        for _ in 0..3 {
            let mut buf = labels(input);
            let kept = program.apply(&mut buf);
            results.push(kept.then(|| sorted(&buf)));
        }
        assert_eq!(results[0], results[1], "cached run differs");
        assert_eq!(results[0], results[2], "cached run differs");
        results.pop().flatten()
    }

    fn run(yaml: &str, input: &[(&str, &str)]) -> Option<Vec<(String, String)>> {
        run_with(NameValidation::Utf8, yaml, input)
    }

    /// [`run`] with the rules compiled under `names`.
    fn run_with(
        names: NameValidation,
        yaml: &str,
        input: &[(&str, &str)],
    ) -> Option<Vec<(String, String)>> {
        let options = LoadOptions {
            names,
            ..LoadOptions::default()
        };
        let mut program = Program::compile_with("test", &rules(yaml), &options).unwrap();
        assert_eq!(program.name_validation(), names);
        let cached = run_program(&mut program, input);
        // Without caches the answer must be the same.
        program.set_cache_capacity(0);
        assert_eq!(
            run_program(&mut program, input),
            cached,
            "uncached run differs"
        );
        cached
    }

    fn expect(pairs: &[(&str, &str)]) -> Option<Vec<(String, String)>> {
        Some(sorted(&labels(pairs)))
    }

    const SERIES: &[(&str, &str)] = &[
        ("__name__", "http_requests_total"),
        ("job", "api"),
        ("code", "200"),
        ("path", "/users/1"),
    ];

    #[test]
    fn empty_program_passes_through() {
        let mut p = Program::default();
        assert!(p.is_empty());
        assert_eq!(p.len(), 0);
        let mut buf = labels(SERIES);
        assert!(p.apply(&mut buf));
        assert_eq!(sorted(&buf), sorted(&labels(SERIES)));
    }

    #[test]
    fn replace_defaults_copy_the_source() {
        let out = run("- {source_labels: [job], target_label: service}", SERIES);
        assert_eq!(
            out,
            expect(&[
                SERIES[0],
                SERIES[1],
                SERIES[2],
                SERIES[3],
                ("service", "api")
            ])
        );
    }

    #[test]
    fn replace_joins_with_separator() {
        let out = run("- {source_labels: [job, code], target_label: x}", SERIES);
        assert!(out.unwrap().contains(&("x".into(), "api;200".into())));
        let out = run(
            "- {source_labels: [job, code], separator: '', target_label: x}",
            SERIES,
        );
        assert!(out.unwrap().contains(&("x".into(), "api200".into())));
        let out = run(
            "- {source_labels: [job, missing, code], separator: '-', target_label: x}",
            SERIES,
        );
        assert!(out.unwrap().contains(&("x".into(), "api--200".into())));
    }

    #[test]
    fn replace_with_groups() {
        let yaml = r#"
- source_labels: [path]
  regex: '/(\w+)/(\d+)'
  target_label: route
  replacement: '${1}_by_id/$2'
"#;
        let out = run(yaml, SERIES).unwrap();
        assert!(out.contains(&("route".into(), "users_by_id/1".into())));
    }

    #[test]
    fn replace_without_match_changes_nothing() {
        let yaml = "- {source_labels: [code], regex: '5..', target_label: error, replacement: yes}";
        assert_eq!(run(yaml, SERIES), expect(SERIES));
        let yaml = "- {source_labels: [code], regex: '2', target_label: code, replacement: two}";
        assert_eq!(
            run(yaml, SERIES),
            expect(SERIES),
            "anchored: '2' does not match '200'"
        );
    }

    #[test]
    fn replace_empty_result_deletes_the_target() {
        let yaml = "- {source_labels: [missing], target_label: path}";
        let out = run(yaml, SERIES).unwrap();
        assert!(!out.iter().any(|(n, _)| n == "path"));
        let yaml = "- {source_labels: [job], target_label: job, replacement: ''}";
        assert!(!run(yaml, SERIES).unwrap().iter().any(|(n, _)| n == "job"));
        // Deleting the name leaves a nameless series: the caller must catch it.
        let yaml = "- {target_label: __name__, replacement: ''}";
        assert!(!run(yaml, SERIES)
            .unwrap()
            .iter()
            .any(|(n, _)| n == "__name__"));
    }

    #[test]
    fn replace_literal_and_dollar_replacements() {
        let yaml = "- {target_label: env, replacement: prod}";
        assert!(run(yaml, SERIES)
            .unwrap()
            .contains(&("env".into(), "prod".into())));
        let yaml = "- {source_labels: [code], target_label: price, replacement: '$$$1'}";
        assert!(run(yaml, SERIES)
            .unwrap()
            .contains(&("price".into(), "$200".into())));
        // $1x is the group named "1x": empty, so the target is deleted.
        let yaml = "- {source_labels: [code], target_label: code, replacement: '$1x'}";
        assert!(!run(yaml, SERIES).unwrap().iter().any(|(n, _)| n == "code"));
        let yaml = "- {source_labels: [code], target_label: code, replacement: '${1}x'}";
        assert!(run(yaml, SERIES)
            .unwrap()
            .contains(&("code".into(), "200x".into())));
        let yaml = "- {source_labels: [path], regex: '/(?P<kind>[a-z]+)/.*', target_label: kind, replacement: '${kind}'}";
        assert!(run(yaml, SERIES)
            .unwrap()
            .contains(&("kind".into(), "users".into())));
    }

    #[test]
    fn replace_fast_and_literal_paths() {
        // `(api|web)` is a fast pattern whose group 1 is the whole input.
        let yaml =
            "- {source_labels: [job], regex: '(api|web)', target_label: x, replacement: 'svc_$1'}";
        assert!(run(yaml, SERIES)
            .unwrap()
            .contains(&("x".into(), "svc_api".into())));
        // A regex with literal templates only needs to know whether it matches.
        let yaml =
            "- {source_labels: [code], regex: '2\\d\\d', target_label: ok, replacement: 'yes'}";
        assert!(run(yaml, SERIES)
            .unwrap()
            .contains(&("ok".into(), "yes".into())));
        // Values may hold newlines: Prometheus' `(?s:...)` lets `.` match them.
        let input = &[("__name__", "m"), ("msg", "line1\nline2")];
        let yaml = "- {source_labels: [msg], regex: 'line1.(.*)', target_label: rest}";
        assert!(run(yaml, input)
            .unwrap()
            .contains(&("rest".into(), "line2".into())));
    }

    #[test]
    fn replace_expands_the_target_label() {
        let yaml = "- {source_labels: [job, code], regex: '(.+);(.+)', target_label: '${1}_$2', replacement: here}";
        assert!(run(yaml, SERIES)
            .unwrap()
            .contains(&("api_200".into(), "here".into())));
        // The expanded target "x_" + "/users/1" is a UTF-8 label name, not a legacy one: under
        // the legacy scheme the series is left unchanged, as Prometheus leaves it.
        let yaml = "- {source_labels: [path], target_label: 'x_$1'}";
        let mut written = SERIES.to_vec();
        written.push(("x_/users/1", "/users/1"));
        assert_eq!(run(yaml, SERIES), expect(&written));
        assert_eq!(
            run_with(NameValidation::Legacy, yaml, SERIES),
            expect(SERIES)
        );
        // A target that expands to nothing is not a label name under either scheme.
        for names in [NameValidation::Utf8, NameValidation::Legacy] {
            let yaml = "- {source_labels: [missing], target_label: '$1'}";
            assert_eq!(run_with(names, yaml, SERIES), expect(SERIES));
            let yaml = "- {source_labels: [code], regex: '(\\d+)', target_label: '${nope}', replacement: x}";
            assert_eq!(run_with(names, yaml, SERIES), expect(SERIES));
        }
    }

    /// The UTF-8 cases of Prometheus' relabel tests (`TestRelabel`), applied.
    #[test]
    fn utf8_names_in_every_field() {
        let input = &[("a", "line1\nline2"), ("b", "bar"), ("c", "baz")];
        // Replace on a source label with UTF-8 characters.
        let utf8_source = &[("utf-8.label", "line1\nline2"), ("b", "bar"), ("c", "baz")];
        let yaml = "- {source_labels: [utf-8.label], regex: 'line1.*line2', target_label: d, separator: ';', replacement: 'match${1}'}";
        let mut want = utf8_source.to_vec();
        want.push(("d", "match"));
        assert_eq!(run(yaml, utf8_source), expect(&want));
        // A UTF-8 target label, plain and with a `${1}` (of a group that does not exist, so
        // it expands to nothing).
        let mut want = input.to_vec();
        want.push(("utf-8.label", "match"));
        for target in ["utf-8.label", "'utf-8.label${1}'"] {
            let yaml = format!("- {{source_labels: [a], regex: 'line1.*line2', target_label: {target}, separator: ';', replacement: 'match${{1}}'}}");
            assert_eq!(run(&yaml, input), expect(&want), "{target}");
        }
        // Various `$` styles in the target and the replacement.
        let yaml = "
- {source_labels: [a], regex: '(line1).*(?<second>line2)', target_label: 'label1_${1}', replacement: 'val_${second}'}
- {source_labels: [a], regex: '(line1).*(?<second>line2)', target_label: 'label2_$1', replacement: 'val_$second'}
";
        let mut want = input.to_vec();
        want.extend([("label1_line1", "val_line2"), ("label2_line1", "val_line2")]);
        assert_eq!(run(yaml, input), expect(&want));
        // `${1}` expanding to a UTF-8 name.
        let yaml = "- {source_labels: [a], regex: '(.+)', target_label: '${1}', replacement: x}";
        let dotted = &[("__name__", "m"), ("a", "my.label")];
        assert_eq!(
            run(yaml, dotted),
            expect(&[("__name__", "m"), ("a", "my.label"), ("my.label", "x")])
        );
        assert_eq!(
            run_with(NameValidation::Legacy, yaml, dotted),
            expect(dotted)
        );
        // Literal UTF-8 targets of the other actions.
        let yaml = "
- {action: lowercase, source_labels: [b], target_label: 'lower.b'}
- {action: hashmod, source_labels: [b], modulus: 10, target_label: 'shard.n'}
- {action: labelmap, regex: '(b|c)', replacement: 'copy.$1'}
";
        let out = run(yaml, input).unwrap();
        for pair in [("lower.b", "bar"), ("copy.b", "bar"), ("copy.c", "baz")] {
            assert!(
                out.contains(&(pair.0.into(), pair.1.into())),
                "{pair:?} {out:?}"
            );
        }
        assert!(out.iter().any(|(n, _)| n == "shard.n"), "{out:?}");
    }

    /// Prometheus' `labelmap` writes whatever its replacement expands to, under either scheme
    /// (the scrape then fails on a name the scheme refuses): the caller checks the result.
    #[test]
    fn labelmap_writes_any_expansion() {
        let yaml = "- {action: labelmap, regex: 'x_(.*)', replacement: '$1'}";
        let input = &[("__name__", "m"), ("x_1a", "v")];
        let want = expect(&[("__name__", "m"), ("x_1a", "v"), ("1a", "v")]);
        assert_eq!(run_with(NameValidation::Legacy, yaml, input), want);
        assert_eq!(run(yaml, input), want);
    }

    #[test]
    fn replace_explicit_empty_regex() {
        // `regex: ''` matches only the empty string.
        let yaml = "- {source_labels: [job], regex: '', target_label: x, replacement: empty}";
        assert_eq!(run(yaml, SERIES), expect(SERIES));
        let yaml = "- {source_labels: [missing], regex: '', target_label: x, replacement: empty}";
        assert!(run(yaml, SERIES)
            .unwrap()
            .contains(&("x".into(), "empty".into())));
    }

    #[test]
    fn replace_on_name() {
        let yaml = "- {source_labels: [__name__], regex: '(.*)_total', target_label: __name__, replacement: '${1}_count'}";
        assert!(run(yaml, SERIES)
            .unwrap()
            .contains(&("__name__".into(), "http_requests_count".into())));
    }

    #[test]
    fn keep_and_drop() {
        let keep = "- {action: keep, source_labels: [__name__], regex: 'http_.*'}";
        assert_eq!(run(keep, SERIES), expect(SERIES));
        let keep = "- {action: keep, source_labels: [__name__], regex: 'http'}";
        assert_eq!(run(keep, SERIES), None, "anchored");
        let drop = "- {action: drop, source_labels: [code], regex: '2..'}";
        assert_eq!(run(drop, SERIES), None);
        let drop = "- {action: drop, source_labels: [code], regex: '5\\d\\d'}";
        assert_eq!(run(drop, SERIES), expect(SERIES));
        // Joined sources; an absent label reads as empty.
        let keep = "- {action: keep, source_labels: [job, code], regex: 'api;2.*'}";
        assert_eq!(run(keep, SERIES), expect(SERIES));
        let drop = "- {action: drop, source_labels: [missing], regex: ''}";
        assert_eq!(run(drop, SERIES), None);
        // No source labels: the input is "", and the default regex matches it.
        assert_eq!(run("- {action: keep}", SERIES), expect(SERIES));
        assert_eq!(run("- {action: drop}", SERIES), None);
    }

    #[test]
    fn a_drop_stops_the_rules() {
        let yaml = "
- {action: drop, source_labels: [job], regex: api}
- {target_label: never, replacement: x}
";
        let mut p = Program::compile("t", &rules(yaml)).unwrap();
        let mut buf = labels(SERIES);
        assert!(!p.apply(&mut buf));
        assert_eq!(buf.get("never"), None);
    }

    #[test]
    fn rules_see_earlier_rules_output() {
        let yaml = "
- {source_labels: [code], regex: '(\\d)..', target_label: class, replacement: '${1}xx'}
- {action: keep, source_labels: [class], regex: 2xx}
- {action: labeldrop, regex: code}
";
        let out = run(yaml, SERIES);
        assert_eq!(
            out,
            expect(&[SERIES[0], SERIES[1], SERIES[3], ("class", "2xx")])
        );
    }

    #[test]
    fn keepequal_and_dropequal() {
        let input = &[("__name__", "m"), ("a", "x"), ("b", "x"), ("c", "y")];
        assert_eq!(
            run(
                "- {action: keepequal, source_labels: [a], target_label: b}",
                input
            ),
            expect(input)
        );
        assert_eq!(
            run(
                "- {action: keepequal, source_labels: [a], target_label: c}",
                input
            ),
            None
        );
        assert_eq!(
            run(
                "- {action: dropequal, source_labels: [a], target_label: b}",
                input
            ),
            None
        );
        assert_eq!(
            run(
                "- {action: dropequal, source_labels: [a], target_label: c}",
                input
            ),
            expect(input)
        );
        // Absent target reads as "", like an absent source.
        assert_eq!(
            run(
                "- {action: keepequal, source_labels: [nope], target_label: none}",
                input
            ),
            expect(input)
        );
        assert_eq!(
            run(
                "- {action: keepequal, source_labels: [a, b], target_label: c}",
                input
            ),
            None
        );
    }

    #[test]
    fn hashmod_matches_prometheus() {
        // Expected values computed independently:
        //   python3 -c "import hashlib; print(int.from_bytes(hashlib.md5(b'foo').digest()[8:], 'big') % 10)"
        for (input, modulus, want) in [
            ("foo", 10, "6"),
            ("foo", 1000, "696"),
            ("10.0.0.1:9100", 4, "1"),
            ("", 7, "1"),
            ("api;200", 1 << 40, "617510133298"),
            ("ünïcödé", u64::MAX, "2997226461651032856"),
        ] {
            let yaml = format!("- {{action: hashmod, source_labels: [a], modulus: {modulus}, target_label: shard}}");
            let out = run(&yaml, &[("__name__", "m"), ("a", input)]).unwrap();
            assert!(
                out.contains(&("shard".into(), want.into())),
                "{input:?} % {modulus}: {out:?}"
            );
        }
        let yaml = "- {action: hashmod, source_labels: [job, code], modulus: 1099511627776, target_label: shard}";
        assert!(run(yaml, SERIES)
            .unwrap()
            .contains(&("shard".into(), "617510133298".into())));
    }

    #[test]
    fn labelmap() {
        let input = &[
            ("__name__", "m"),
            ("__meta_pod_label_app", "web"),
            ("__meta_pod_label_team", "x"),
            ("other", "o"),
        ];
        let yaml = "- {action: labelmap, regex: '__meta_pod_label_(.+)'}";
        assert_eq!(
            run(yaml, input),
            expect(&[
                input[0],
                input[1],
                input[2],
                input[3],
                ("app", "web"),
                ("team", "x")
            ])
        );
        let yaml = "- {action: labelmap, regex: '__meta_pod_label_(.+)', replacement: 'pod_${1}'}";
        assert_eq!(
            run(yaml, input),
            expect(&[
                input[0],
                input[1],
                input[2],
                input[3],
                ("pod_app", "web"),
                ("pod_team", "x")
            ])
        );
        // Fast path: the whole name as group 1.
        let yaml = "- {action: labelmap, regex: '(.*)', replacement: 'copy_$1'}";
        let out = run(yaml, &[("__name__", "m"), ("a", "1")]);
        assert_eq!(
            out,
            expect(&[
                ("__name__", "m"),
                ("a", "1"),
                ("copy___name__", "m"),
                ("copy_a", "1")
            ])
        );
        // A literal replacement: the last matching label wins.
        let yaml = "- {action: labelmap, regex: 'a|b', replacement: c}";
        assert_eq!(
            run(yaml, &[("a", "1"), ("b", "2")]),
            expect(&[("a", "1"), ("b", "2"), ("c", "2")])
        );
    }

    #[test]
    fn labelmap_scans_a_snapshot() {
        // a -> b and b -> c: c gets b's original value, and the new b is not mapped again.
        let yaml = "- {action: labelmap, regex: '(a|b)', replacement: '${1}x'}";
        let out = run(yaml, &[("a", "1"), ("ax", "0")]);
        assert_eq!(out, expect(&[("a", "1"), ("ax", "1")]));
        let yaml = r#"- {action: labelmap, regex: '([ab])', replacement: 'b'}"#;
        let out = run(yaml, &[("a", "1"), ("b", "2")]);
        assert_eq!(
            out,
            expect(&[("a", "1"), ("b", "2")]),
            "b <- a's 1, then b <- b's original 2"
        );
    }

    #[test]
    fn labeldrop_and_labelkeep() {
        let out = run("- {action: labeldrop, regex: path}", SERIES);
        assert_eq!(out, expect(&SERIES[..3]));
        let out = run("- {action: labeldrop, regex: 'pat'}", SERIES);
        assert_eq!(out, expect(SERIES), "anchored");
        let out = run("- {action: labeldrop, regex: '[cp].*'}", SERIES);
        assert_eq!(out, expect(&SERIES[..2]));
        let out = run("- {action: labelkeep, regex: '__name__|job'}", SERIES);
        assert_eq!(out, expect(&SERIES[..2]));
        // labelkeep removes __name__ unless the regex keeps it.
        let out = run("- {action: labelkeep, regex: 'job|code'}", SERIES);
        assert_eq!(out, expect(&[("job", "api"), ("code", "200")]));
        // Default regex (.*) keeps everything; labeldrop with it drops everything.
        assert_eq!(run("- {action: labelkeep}", SERIES), expect(SERIES));
        assert_eq!(run("- {action: labeldrop}", SERIES), expect(&[]));
    }

    #[test]
    fn lowercase_and_uppercase() {
        let input = &[
            ("__name__", "m"),
            ("method", "GeT"),
            ("city", "straße"),
            ("tr", "İZMİR"),
        ];
        let out = run(
            "- {action: lowercase, source_labels: [method], target_label: method}",
            input,
        )
        .unwrap();
        assert!(out.contains(&("method".into(), "get".into())));
        let out = run(
            "- {action: uppercase, source_labels: [city], target_label: up}",
            input,
        )
        .unwrap();
        assert!(out.contains(&("up".into(), "STRAßE".into())));
        let out = run(
            "- {action: lowercase, source_labels: [tr], target_label: tr}",
            input,
        )
        .unwrap();
        assert!(out.contains(&("tr".into(), "izmir".into())));
        let out = run(
            "- {action: uppercase, source_labels: [method, city], separator: '/', target_label: x}",
            input,
        )
        .unwrap();
        assert!(out.contains(&("x".into(), "GET/STRAßE".into())));
        // An empty result deletes the target.
        let out = run(
            "- {action: lowercase, source_labels: [nope], target_label: method}",
            input,
        )
        .unwrap();
        assert!(!out.iter().any(|(n, _)| n == "method"));
    }

    #[test]
    fn ascii_perl_classes_in_rules() {
        let input = &[("__name__", "m"), ("n", "٣")];
        assert_eq!(
            run(r"- {action: drop, source_labels: [n], regex: '\d'}", input),
            expect(input)
        );
        assert_eq!(
            run(r"- {action: keep, source_labels: [n], regex: '\D'}", input),
            expect(input)
        );
        assert_eq!(
            run(r"- {action: drop, source_labels: [n], regex: '\w+'}", input),
            expect(input)
        );
    }

    #[test]
    fn errors_name_list_rule_and_action() {
        let err = Program::compile(
            "requests",
            &rules("- {action: keep}\n- {action: hashmod, target_label: x}"),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "requests[1] (action hashmod): relabel configuration for hashmod requires non-zero modulus"
        );
        let err = Program::compile(
            "metric_relabel_configs",
            &rules("- {action: drop, regex: '(a'}"),
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            r#"metric_relabel_configs[0] (action drop): invalid regex "(a": unclosed group"#
        );
    }

    #[test]
    fn caches_fill_and_stay_bounded() {
        let yaml = "
- {action: drop, source_labels: [id], regex: '\\d+x'}
- {source_labels: [id], regex: '(\\d)(.*)', target_label: first, replacement: '$1'}
- {action: labeldrop, regex: 'tmp_\\d'}
- {action: labelmap, regex: 'l_(\\d)', replacement: 'x$1'}
- {action: keep, regex: 'keep.*|'}
";
        let mut p = Program::compile("t", &rules(yaml)).unwrap();
        p.set_cache_capacity(10);
        for i in 0..1000 {
            let id = i.to_string();
            let mut buf = labels(&[("__name__", "m"), ("id", &id), ("tmp_1", "t"), ("l_1", "v")]);
            assert!(p.apply(&mut buf));
            assert_eq!(buf.get("first"), Some(&id[..1]));
            assert_eq!(buf.get("tmp_1"), None);
            assert_eq!(buf.get("x1"), Some("v"));
            // drop, replace: bounded by 10; labeldrop: one entry per name it sees (the four
            // input names and `first`); labelmap: four names; keep's `keep.*|` is a fast
            // path without a cache.
            assert!(
                p.cache_entries() <= 10 + 10 + 5 + 4,
                "{}",
                p.cache_entries()
            );
        }
        assert!(p.cache_entries() >= 8);
        p.set_cache_capacity(0);
        assert_eq!(p.cache_entries(), 0);
    }

    #[test]
    fn fast_paths_fill_no_cache() {
        let yaml = "
- {action: keep, source_labels: [__name__], regex: 'http_.*|up'}
- {action: labeldrop, regex: 'path'}
- {source_labels: [job], target_label: service}
- {action: labelmap, regex: '(.*)', replacement: 'x_$1'}
";
        let mut p = Program::compile("t", &rules(yaml)).unwrap();
        assert_eq!(run_program(&mut p, SERIES).map(|v| v.len()), Some(8));
        assert_eq!(p.cache_entries(), 0);
    }

    #[test]
    fn rules_with_one_pattern_share_its_compilation() {
        fn matcher(rule: &Rule) -> &Matcher {
            match &rule.op {
                Op::Keep(d) | Op::Drop(d) | Op::LabelDrop(d) | Op::LabelKeep(d) => &d.matcher,
                Op::Replace(r) => &r.matcher,
                Op::LabelMap(m) => &m.matcher,
                _ => unreachable!("a rule without a matcher"),
            }
        }
        let mut compiler = Compiler::new(&LoadOptions::default());
        let yaml = "
- {action: keep, regex: 'a.*b'}
- {action: drop, source_labels: [x], regex: 'a.*b'}
- {action: labeldrop, regex: 'c.*d'}
";
        let first = Program::compile_in(&mut compiler, "a", &rules(yaml)).unwrap();
        let second = Program::compile_in(&mut compiler, "b", &rules(yaml)).unwrap();
        let (a, b) = (&first.rules, &second.rules);
        assert!(matcher(&a[0]).shares_compilation_with(matcher(&a[1])));
        assert!(matcher(&a[0]).shares_compilation_with(matcher(&b[1])));
        assert!(matcher(&a[2]).shares_compilation_with(matcher(&b[2])));
        assert!(!matcher(&a[0]).shares_compilation_with(matcher(&a[2])));
        // A separate compilation compiles again.
        let other = Program::compile("c", &rules(yaml)).unwrap();
        assert!(!matcher(&a[0]).shares_compilation_with(matcher(&other.rules[0])));
    }

    #[test]
    fn programs_can_move_between_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Program>();
    }

    #[test]
    fn decimal_formatting() {
        let mut buf = [0u8; 20];
        assert_eq!(decimal(0, &mut buf), "0");
        assert_eq!(decimal(7, &mut buf), "7");
        assert_eq!(decimal(1234567890, &mut buf), "1234567890");
        assert_eq!(decimal(u64::MAX, &mut buf), "18446744073709551615");
    }
}
