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

mod cache;
mod case;
pub mod config;
mod goregex;
mod matcher;
pub mod program;
mod template;

use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

pub use config::{Action, ConfigError, RelabelConfig};
pub use program::Program;

/// The key of the default rule list.
pub const DEFAULT_LIST: &str = "metric_relabel_configs";

/// A loaded metric-gate relabel configuration: the default list and the named subsets.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// The `metric_relabel_configs` list, served at `/metrics`.
    pub default: Program,
    /// Named subsets in file order, served at `/metrics/<name>`.
    pub subsets: Vec<(String, Program)>,
}

impl Config {
    /// No rules: every series passes unchanged (and identical series are still summed).
    pub fn passthrough() -> Self {
        Self::default()
    }

    /// Parses and validates a YAML document. `origin` names where it came from (a file path, or
    /// `--relabel`) for error messages.
    ///
    /// An empty document (empty string, only comments, or `null`) is the pass-through
    /// configuration. The document may be indented as a whole, as the value of a
    /// `--relabel=` argument written as a YAML block in a Kubernetes manifest is.
    pub fn from_yaml(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let document: Option<Document> = serde_yaml_ng::from_str(text)
            .map_err(|e| ConfigError::new(e.to_string()).with_origin(origin))?;
        let Some(Document(lists)) = document else {
            return Ok(Config::passthrough());
        };
        let mut default = None;
        let mut subsets = Vec::with_capacity(lists.len());
        for (name, rules) in lists {
            let program = Program::compile(&name, &rules).map_err(|e| e.with_origin(origin))?;
            if name == DEFAULT_LIST {
                default = Some(program);
            } else {
                check_subset_name(&name).map_err(|e| e.with_origin(origin))?;
                subsets.push((name, program));
            }
        }
        let default = match default {
            Some(default) => default,
            None if subsets.is_empty() => Program::default(),
            None => {
                return Err(ConfigError::new(format!(
                    "subsets are defined but the default list {DEFAULT_LIST:?} is missing"
                ))
                .with_origin(origin))
            }
        };
        Ok(Config { default, subsets })
    }
}

/// A subset name is a URL path segment (`/metrics/<name>`): `[A-Za-z0-9_.-]+`, and not `.` or
/// `..`, which HTTP clients and proxies rewrite.
fn check_subset_name(name: &str) -> Result<(), ConfigError> {
    let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-');
    if name.is_empty() || !name.bytes().all(allowed) || name == "." || name == ".." {
        return Err(ConfigError::new(format!(
            "subset name {name:?} cannot be used in a URL path: use only [A-Za-z0-9_.-]"
        )));
    }
    Ok(())
}

/// The top-level map, keys in file order. A null list is an empty list.
struct Document(Vec<(String, Vec<RelabelConfig>)>);

impl<'de> Deserialize<'de> for Document {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DocumentVisitor;

        impl<'de> Visitor<'de> for DocumentVisitor {
            type Value = Document;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(
                    f,
                    "a map of relabel rule lists ({DEFAULT_LIST} and named subsets)"
                )
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Document, A::Error> {
                let mut lists: Vec<(String, Vec<RelabelConfig>)> = Vec::new();
                while let Some(name) = map.next_key::<String>()? {
                    if lists.iter().any(|(n, _)| *n == name) {
                        return Err(serde::de::Error::custom(format!(
                            "duplicate rule list {name:?}"
                        )));
                    }
                    let rules: Option<Vec<RelabelConfig>> = map.next_value()?;
                    lists.push((name, rules.unwrap_or_default()));
                }
                Ok(Document(lists))
            }
        }

        deserializer.deserialize_map(DocumentVisitor)
    }
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
}
