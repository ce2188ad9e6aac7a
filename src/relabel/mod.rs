//! Prometheus `relabel_config` semantics: configuration, validation and compiled programs.
//!
//! A configuration file (or `--relabel` value) is a YAML map of rule lists, in the format of
//! the original Go tool:
//!
//! ```yaml
//! metric_relabel_configs:     # the default list, served at /metrics
//! - action: labeldrop
//!   regex: path
//! requests:                   # a named subset, served at /metrics/requests
//! - action: keep
//!   source_labels: [__name__]
//!   regex: nginx_ingress_controller_request_.*
//! ```
//!
//! Each list is compiled into a [`Program`]; [`Program::apply`] relabels one series. The rules
//! behave exactly as Prometheus' `metric_relabel_configs` do (see [`config`] for reading and
//! validating a rule, [`program`] for applying it).
//!
//! The document's reserved `aggregation:` key is not a list: it holds the rules that decide how
//! series that several inputs fall into are combined ([`aggregation`]), for every list.

pub mod aggregation;
mod budget;
mod cache;
mod case;
pub mod config;
mod goregex;
mod load;
mod matcher;
mod names;
pub mod program;
mod quote;
mod template;

pub use budget::{read_file, Limits, LoadOptions, VALUE_OVERHEAD};
pub use config::{Action, ConfigError, RelabelConfig};
pub use names::NameValidation;
pub use program::Program;
pub use quote::{Quoted, QUOTE_LIMIT};

use budget::Budget;
use load::{parse_document, Document};
use program::Compiler;
use quote::shorten;

/// The key of the default rule list.
pub const DEFAULT_LIST: &str = "metric_relabel_configs";

/// A loaded metric-gate relabel configuration: the default list and the named subsets.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// The `metric_relabel_configs` list, served at `/metrics`.
    pub default: Program,
    /// Named subsets in file order, served at `/metrics/<name>`.
    pub subsets: Vec<(String, Program)>,
    /// The reserved `aggregation:` key: how summed series are combined, for every list (the
    /// built-in rules only when the key is absent).
    pub aggregation: crate::relabel::aggregation::Rules,
}

impl Config {
    /// No rules: every series passes unchanged (and identical series are still summed).
    pub fn passthrough() -> Self {
        Self::default()
    }

    /// [`Config::load`] with the default options: UTF-8 names, the default [`Limits`].
    pub fn from_yaml(text: &str, origin: &str) -> Result<Self, ConfigError> {
        Config::load(text, origin, &LoadOptions::default())
    }

    /// Parses and validates a YAML document under `options`. `origin` names where it came
    /// from (a file path, or `--relabel`) for error messages.
    ///
    /// An empty document (empty string, only comments, or `null`) is the pass-through
    /// configuration. The document may be indented as a whole, as the value of a
    /// `--relabel=` argument written as a YAML block in a Kubernetes manifest is.
    ///
    /// The [`Limits`] are checked while the text is read (YAML aliases counted each time they
    /// are used) and while regexes are compiled, so an oversized configuration fails fast,
    /// without being expanded in memory. Errors quote at most [`QUOTE_LIMIT`] bytes of any
    /// input.
    pub fn load(text: &str, origin: &str, options: &LoadOptions) -> Result<Self, ConfigError> {
        if text.len() > options.limits.max_bytes {
            return Err(
                ConfigError::new(budget::too_large(options.limits.max_bytes)).with_origin(origin),
            );
        }
        let budget = Budget::new(options.limits);
        let document = parse_document(text, &budget)
            .map_err(|e| ConfigError::new(shorten(&e.to_string())).with_origin(origin))?;
        let empty = || Program::compile_with(DEFAULT_LIST, &[], options);
        let Some(Document(lists, aggregation)) = document else {
            return Ok(Config {
                default: empty()?,
                subsets: Vec::new(),
                aggregation: crate::relabel::aggregation::Rules::default(),
            });
        };
        let aggregation = match &aggregation {
            Some(value) => crate::relabel::aggregation::Rules::parse(value)
                .map_err(|e| e.with_origin(origin))?,
            None => crate::relabel::aggregation::Rules::default(),
        };
        let mut compiler = Compiler::new(options);
        let mut default = None;
        let mut subsets = Vec::with_capacity(lists.len());
        for (name, rules) in lists {
            let program = Program::compile_in(&mut compiler, &name, &rules)
                .map_err(|e| e.with_origin(origin))?;
            if name == DEFAULT_LIST {
                default = Some(program);
            } else {
                check_subset_name(&name).map_err(|e| e.with_origin(origin))?;
                subsets.push((name, program));
            }
        }
        let default = match default {
            Some(default) => default,
            None if subsets.is_empty() => empty()?,
            None => {
                return Err(ConfigError::new(format!(
                    "subsets are defined but the default list {DEFAULT_LIST:?} is missing"
                ))
                .with_origin(origin))
            }
        };
        Ok(Config {
            default,
            subsets,
            aggregation,
        })
    }
}

/// A subset name is a URL path segment (`/metrics/<name>`): `[A-Za-z0-9_.-]+`, and not `.` or
/// `..`, which HTTP clients and proxies rewrite.
fn check_subset_name(name: &str) -> Result<(), ConfigError> {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-');
    if name.is_empty() || !name.bytes().all(allowed) || name == "." || name == ".." {
        return Err(ConfigError::new(format!(
            "subset name {} cannot be used in a URL path: use only [A-Za-z0-9_.-]",
            Quoted(name)
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::labels::LabelBuf;

    fn load(text: &str) -> Result<Config, String> {
        Config::from_yaml(text, "test.yaml").map_err(|e| e.to_string())
    }

    fn apply(program: &mut Program, pairs: &[(&str, &str)]) -> Option<Vec<(String, String)>> {
        let mut buf = LabelBuf::new();
        for (n, v) in pairs {
            buf.push(n, v);
        }
        program.apply(&mut buf).then(|| {
            buf.sort();
            buf.iter()
                .map(|(n, v)| (n.to_owned(), v.to_owned()))
                .collect()
        })
    }

    const ORIGINAL_EXAMPLE: &str = "
metric_relabel_configs:
- action: labeldrop
  regex: path
requests:
- action: keep
  source_labels: [__name__]
  regex: nginx_ingress_controller_request_.*
";

    #[test]
    fn loads_the_original_tool_format() {
        let mut config = load(ORIGINAL_EXAMPLE).unwrap();
        assert_eq!(config.default.len(), 1);
        assert_eq!(config.subsets.len(), 1);
        assert_eq!(config.subsets[0].0, "requests");
        let series = [
            ("__name__", "nginx_ingress_controller_request_size"),
            ("path", "/"),
        ];
        let out = apply(&mut config.default, &series).unwrap();
        assert_eq!(out, [("__name__".to_owned(), series[0].1.to_owned())]);
        let requests = &mut config.subsets[0].1;
        assert!(apply(requests, &series).is_some());
        assert!(apply(requests, &[("__name__", "up")]).is_none());
    }

    #[test]
    fn empty_documents_pass_through() {
        for text in [
            "",
            "\n",
            "   \n",
            "# only a comment\n",
            "~",
            "null",
            "---\n",
            "{}",
        ] {
            let config = load(text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
            assert!(
                config.default.is_empty() && config.subsets.is_empty(),
                "{text:?}"
            );
        }
        // A default list alone, even empty or null, is fine.
        assert!(load("metric_relabel_configs: []")
            .unwrap()
            .default
            .is_empty());
        assert!(load("metric_relabel_configs:").unwrap().default.is_empty());
    }

    /// The Kubernetes form of the original tool:
    /// ```yaml
    ///         args:
    ///         - |
    ///           --relabel=
    ///             metric_relabel_configs:
    ///             - action: labeldrop
    ///               regex: path
    /// ```
    /// makes the value a leading newline and then uniformly indented YAML.
    #[test]
    fn loads_the_indented_relabel_argument() {
        let value = "\n  metric_relabel_configs:\n  - action: labeldrop\n    regex: path\n  requests:\n  - action: keep\n    source_labels: [__name__]\n    regex: up\n";
        let config = load(value).unwrap();
        assert_eq!(config.default.len(), 1);
        assert_eq!(config.subsets[0].0, "requests");
        let deeper = ORIGINAL_EXAMPLE.replace('\n', "\n      ");
        let config = load(&deeper).unwrap();
        assert_eq!((config.default.len(), config.subsets.len()), (1, 1));
    }

    #[test]
    fn subsets_keep_file_order() {
        let text = "
zeta: []
metric_relabel_configs: []
alpha:
- {action: drop, regex: x}
mid.dle-1_x:
";
        let config = load(text).unwrap();
        let names: Vec<_> = config.subsets.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["zeta", "alpha", "mid.dle-1_x"]);
        assert_eq!(config.subsets[1].1.len(), 1);
    }

    #[test]
    fn subsets_need_the_default_list() {
        let err = load("requests:\n- action: keep\n").unwrap_err();
        assert_eq!(
            err,
            "test.yaml: subsets are defined but the default list \"metric_relabel_configs\" is missing"
        );
    }

    #[test]
    fn subset_names_must_fit_a_url_path() {
        for bad in ["a b", "a/b", "..", ".", "ü", "a?b", "''"] {
            let err = load(&format!("metric_relabel_configs: []\n{bad}: []\n")).unwrap_err();
            assert!(err.contains("cannot be used in a URL path"), "{bad}: {err}");
        }
        let err = load("metric_relabel_configs: []\n'a b': []\n").unwrap_err();
        assert_eq!(
            err,
            "test.yaml: subset name \"a b\" cannot be used in a URL path: use only [A-Za-z0-9_.-]"
        );
        // A numeric key is read as its text.
        assert_eq!(
            load("metric_relabel_configs: []\n200: []\n")
                .unwrap()
                .subsets[0]
                .0,
            "200"
        );
    }

    #[test]
    fn duplicate_lists_are_errors() {
        let err = load("metric_relabel_configs: []\na: []\na: []\n").unwrap_err();
        assert!(err.contains("duplicate rule list \"a\""), "{err}");
    }

    #[test]
    fn rule_errors_name_origin_list_and_index() {
        let text = "
metric_relabel_configs: []
requests:
- action: keep
  regex: a
- action: drop
  regex: b
- action: hashmod
  target_label: shard
";
        let err = Config::from_yaml(text, "--relabel").unwrap_err();
        assert_eq!(
            err.to_string(),
            "--relabel: requests[2] (action hashmod): relabel configuration for hashmod requires non-zero modulus"
        );
        assert_eq!(err.rule(), Some(("requests", 2)));
        let err = load("metric_relabel_configs:\n- action: replace\n").unwrap_err();
        assert_eq!(
            err,
            "test.yaml: metric_relabel_configs[0] (action replace): relabel configuration for replace action requires 'target_label' value"
        );
    }

    #[test]
    fn yaml_errors_keep_line_and_column() {
        let err = load("metric_relabel_configs:\n- action: keep\n  regexp: x\n").unwrap_err();
        assert!(
            err.starts_with("test.yaml: metric_relabel_configs[0]: unknown field `regexp`"),
            "{err}"
        );
        assert!(err.contains("line 3 column 3"), "{err}");
        let err = load("metric_relabel_configs:\n- action: keep\n  regex: [x\n").unwrap_err();
        assert!(err.starts_with("test.yaml: "), "{err}");
        assert!(err.contains("line 3 column 10"), "{err}");
        let err = load("metric_relabel_configs:\n- action: frobnicate\n").unwrap_err();
        assert!(
            err.contains("unknown relabel action \"frobnicate\""),
            "{err}"
        );
        assert!(err.contains("line 2 column 11"), "{err}");
        let err = load("- action: keep\n").unwrap_err();
        assert!(
            err.contains("expected a map of relabel rule lists"),
            "{err}"
        );
        let err = load("metric_relabel_configs: keep\n").unwrap_err();
        assert!(
            err.contains("invalid type: string \"keep\", expected a sequence"),
            "{err}"
        );
        let err = load("metric_relabel_configs:\n- action:\n").unwrap_err();
        assert!(err.contains("relabel action cannot be empty"), "{err}");
    }

    #[test]
    fn numeric_values_are_strings() {
        let text = "
metric_relabel_configs:
- source_labels: [code]
  regex: 200
  target_label: ok
  replacement: 1
- source_labels: [a, b]
  separator: 0
  target_label: joined
";
        let mut config = load(text).unwrap();
        let out = apply(
            &mut config.default,
            &[("__name__", "m"), ("code", "200"), ("a", "x"), ("b", "y")],
        )
        .unwrap();
        assert!(out.contains(&("ok".into(), "1".into())), "{out:?}");
        assert!(out.contains(&("joined".into(), "x0y".into())), "{out:?}");
    }

    fn load_with(text: &str, limits: Limits) -> Result<Config, String> {
        let options = LoadOptions {
            limits,
            ..LoadOptions::default()
        };
        Config::load(text, "test.yaml", &options).map_err(|e| e.to_string())
    }

    #[test]
    fn limits_have_the_documented_defaults() {
        let l = Limits::default();
        assert_eq!(
            (l.max_bytes, l.max_rules, l.max_subsets),
            (1 << 20, 10_000, 1_000)
        );
        assert_eq!(
            (l.max_expanded_bytes, l.max_regex_bytes),
            (16 << 20, 64 << 10)
        );
        assert_eq!(LoadOptions::default().names, NameValidation::Utf8);
    }

    #[test]
    fn text_larger_than_the_limit_is_refused() {
        let padding = format!("# {}\n", "x".repeat(1 << 20));
        let err = load(&format!("{padding}metric_relabel_configs: []\n")).unwrap_err();
        assert_eq!(
            err,
            "test.yaml: the configuration is larger than the limit of 1048576 bytes"
        );
        let limits = Limits {
            max_bytes: 30,
            ..Limits::default()
        };
        assert!(load_with("metric_relabel_configs: []   \n", limits).is_ok());
        assert!(load_with("metric_relabel_configs: []    \n", limits).is_err());
    }

    #[test]
    fn files_are_read_no_further_than_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("relabel.yaml");
        std::fs::write(&path, "metric_relabel_configs: []\n").unwrap();
        let limits = Limits {
            max_bytes: 27,
            ..Limits::default()
        };
        assert_eq!(
            read_file(&path, &limits).unwrap(),
            "metric_relabel_configs: []\n"
        );
        let limits = Limits {
            max_bytes: 26,
            ..Limits::default()
        };
        let err = read_file(&path, &limits).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the configuration is larger than the limit of 26 bytes"
        );
        assert_eq!(err.kind(), std::io::ErrorKind::InvalidData);
        std::fs::write(&path, b"\xff\xfe").unwrap();
        let err = read_file(&path, &Limits::default()).unwrap_err();
        assert!(err.to_string().contains("not UTF-8 text"), "{err}");
        let err = read_file(&dir.path().join("missing"), &Limits::default()).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
    }

    /// The amplification of the issue: a list of rules aliased into many subsets.
    #[test]
    fn rules_aliased_past_the_limit_are_refused_while_reading() {
        let mut text = String::from("metric_relabel_configs: &rules\n");
        for i in 0..100 {
            text.push_str(&format!("- {{action: labeldrop, regex: l{i}}}\n"));
        }
        for i in 0..99 {
            text.push_str(&format!("s{i}: *rules\n"));
        }
        // 100 lists of 100 rules: exactly the limit.
        let config = load(&text).unwrap();
        assert_eq!(config.subsets.len(), 99);
        assert_eq!(config.subsets[98].1.len(), 100);
        text.push_str("one_more: [{action: keep}]\n");
        let err = load(&text).unwrap_err();
        assert!(
            err.starts_with("test.yaml: one_more: more than 10000 relabel rules (all lists together, each use of a YAML alias counted)"),
            "{err}"
        );
        assert!(err.contains("line 201"), "{err}");
    }

    #[test]
    fn subsets_past_the_limit_are_refused() {
        let mut text = String::from("metric_relabel_configs: []\n");
        for i in 0..1000 {
            text.push_str(&format!("s{i}: []\n"));
        }
        assert_eq!(load(&text).unwrap().subsets.len(), 1000);
        text.push_str("s1000: []\n");
        let err = load(&text).unwrap_err();
        assert!(
            err.starts_with("test.yaml: more than 1000 subsets"),
            "{err}"
        );
    }

    #[test]
    fn values_aliased_past_the_limit_are_refused() {
        // A 512 KiB replacement used 32 times is more than 16 MiB of values.
        let big = "x".repeat(512 << 10);
        let mut text =
            format!("metric_relabel_configs:\n- {{target_label: x, replacement: &big '{big}'}}\n");
        for _ in 0..30 {
            text.push_str("- {target_label: x, replacement: *big}\n");
        }
        assert_eq!(load(&text).unwrap().default.len(), 31);
        text.push_str("- {target_label: x, replacement: *big}\n");
        let err = load(&text).unwrap_err();
        assert!(
            err.starts_with("test.yaml: metric_relabel_configs[31].replacement: the configuration holds more than 16777216 bytes of values once YAML aliases are expanded"),
            "{err}"
        );
        // A long source label list costs its length each time, even of empty names.
        let names = vec!["''"; 5_000].join(",");
        let mut text = format!(
            "metric_relabel_configs:\n- {{action: keep, source_labels: &names [{names}]}}\n"
        );
        for _ in 0..200 {
            text.push_str("- {action: keep, source_labels: *names}\n");
        }
        let err = load(&text).unwrap_err();
        assert!(
            err.contains("bytes of values once YAML aliases are expanded"),
            "{err}"
        );
    }

    #[test]
    fn regexes_longer_than_the_limit_are_refused_before_compiling() {
        let pattern = "a".repeat((64 << 10) + 1);
        let err = load(&format!(
            "metric_relabel_configs:\n- {{action: keep, regex: '{pattern}'}}\n"
        ))
        .unwrap_err();
        assert_eq!(
            err,
            format!(
                "test.yaml: metric_relabel_configs[0] (action keep): invalid regex \"{}…\" (65537 bytes): longer than the limit of 65536 bytes",
                "a".repeat(QUOTE_LIMIT)
            )
        );
        let limits = Limits {
            max_regex_bytes: 3,
            ..Limits::default()
        };
        assert!(load_with(
            "metric_relabel_configs: [{action: keep, regex: abc}]",
            limits
        )
        .is_ok());
        assert!(load_with(
            "metric_relabel_configs: [{action: keep, regex: abcd}]",
            limits
        )
        .is_err());
    }

    #[test]
    fn errors_quote_at_most_a_few_hundred_bytes_of_input() {
        let long = "k".repeat(500_000);
        let cases = [
            // The YAML reader's own message quotes the value.
            format!("metric_relabel_configs: '{long}'\n"),
            format!("metric_relabel_configs:\n- {{action: '{long}'}}\n"),
            // (A key longer than 1024 bytes is a YAML syntax error, which quotes nothing.)
            format!("metric_relabel_configs: []\n'{}': []\n", "k ".repeat(500)),
            format!("metric_relabel_configs:\n- {{action: hashmod, target_label: x, modulus: '{long}'}}\n"),
            // A regex error quotes the regex, and Go's message quotes part of it again.
            format!("metric_relabel_configs:\n- {{action: keep, regex: '[{}'}}\n", "k".repeat(60_000)),
        ];
        for text in &cases {
            let err = load(text).unwrap_err();
            assert!(
                err.len() < 700,
                "{} bytes: {}",
                err.len(),
                &err[..1000.min(err.len())]
            );
            assert!(err.contains("bytes"), "{err}");
        }
        let err = load(&cases[4]).unwrap_err();
        assert!(
            err.ends_with(&format!(
                "missing closing ]: `[{}…` (60001 bytes)",
                "k".repeat(199)
            )),
            "{err}"
        );
    }

    #[test]
    fn legacy_names_refuse_what_utf8_accepts() {
        let text = "
metric_relabel_configs:
- {source_labels: [utf-8.label], regex: 'line1.*line2', target_label: d, replacement: 'match${1}'}
- {source_labels: [a], target_label: utf-8.label}
- {source_labels: [a], target_label: 'utf-8.label${1}'}
";
        let mut config = load(text).unwrap();
        assert_eq!(config.default.name_validation(), NameValidation::Utf8);
        let out = apply(
            &mut config.default,
            &[
                ("__name__", "m"),
                ("utf-8.label", "line1\nline2"),
                ("a", "v"),
            ],
        )
        .unwrap();
        assert!(out.contains(&("d".into(), "match".into())), "{out:?}");
        assert!(out.contains(&("utf-8.label".into(), "v".into())), "{out:?}");
        let legacy = LoadOptions {
            names: NameValidation::Legacy,
            ..LoadOptions::default()
        };
        let err = Config::load(text, "test.yaml", &legacy).unwrap_err();
        assert_eq!(
            err.to_string(),
            "test.yaml: metric_relabel_configs[0] (action replace): \"utf-8.label\" is not a valid label name"
        );
        let only_targets = text.replace("utf-8.label], regex", "a], regex");
        let err = Config::load(&only_targets, "test.yaml", &legacy).unwrap_err();
        assert_eq!(
            err.to_string(),
            "test.yaml: metric_relabel_configs[1] (action replace): \"utf-8.label\" is invalid 'target_label' for replace action"
        );
        let err = Config::load(
            "metric_relabel_configs: [{source_labels: [a], target_label: 'utf-8.label${1}'}]",
            "test.yaml",
            &legacy,
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .ends_with("\"utf-8.label${1}\" is invalid 'target_label' for replace action"),
            "{err}"
        );
        // Every program of a legacy config, the empty default too, carries the scheme.
        let config = Config::load("s: []\nmetric_relabel_configs: []", "t", &legacy).unwrap();
        assert_eq!(
            config.subsets[0].1.name_validation(),
            NameValidation::Legacy
        );
        let config = Config::load("", "t", &legacy).unwrap();
        assert_eq!(config.default.name_validation(), NameValidation::Legacy);
    }
}
