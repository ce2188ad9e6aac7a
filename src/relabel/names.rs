//! Which label and metric names a configuration may use and a rule may write: Prometheus'
//! name validation schemes (`metric_name_validation_scheme`).
//!
//! Prometheus 3 validates names as UTF-8 by default: any non-empty UTF-8 string is a name, and
//! a name outside the legacy character set is written quoted (`{"my.label"="x"}`). The legacy
//! scheme is Prometheus 2's: `[a-zA-Z_][a-zA-Z0-9_]*` for label names,
//! `[a-zA-Z_:][a-zA-Z0-9_:]*` for metric names. A Rust `&str` is always valid UTF-8, so under
//! [`NameValidation::Utf8`] the only invalid name is the empty one.

use std::fmt;
use std::str::FromStr;
use std::sync::LazyLock;

use regex::Regex;

/// A name validation scheme, as Prometheus' `metric_name_validation_scheme`.
///
/// It decides which names a relabel configuration may use (`source_labels`, `target_label`,
/// `labelmap`'s `replacement`) and which expanded `target_label` a `replace` rule writes (one
/// that is not a valid name leaves the series unchanged, as in Prometheus).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum NameValidation {
    /// Any non-empty UTF-8 name (Prometheus 3's default).
    #[default]
    Utf8,
    /// `[a-zA-Z_][a-zA-Z0-9_]*` label names and `[a-zA-Z_:][a-zA-Z0-9_:]*` metric names
    /// (Prometheus 2, and Prometheus 3 with `metric_name_validation_scheme: legacy`).
    Legacy,
}

impl NameValidation {
    /// The scheme's name, as Prometheus spells it: `utf8` or `legacy`.
    pub fn as_str(self) -> &'static str {
        match self {
            NameValidation::Utf8 => "utf8",
            NameValidation::Legacy => "legacy",
        }
    }

    /// Whether `name` is a valid label name under this scheme (Prometheus'
    /// `ValidationScheme.IsValidLabelName`).
    pub fn is_valid_label_name(self, name: &str) -> bool {
        match self {
            NameValidation::Utf8 => !name.is_empty(),
            NameValidation::Legacy => is_legacy_label_name(name),
        }
    }

    /// Whether `name` is a valid metric name under this scheme (Prometheus'
    /// `ValidationScheme.IsValidMetricName`).
    pub fn is_valid_metric_name(self, name: &str) -> bool {
        match self {
            NameValidation::Utf8 => !name.is_empty(),
            NameValidation::Legacy => {
                let mut bytes = name.bytes();
                matches!(bytes.next(), Some(b'a'..=b'z' | b'A'..=b'Z' | b'_' | b':'))
                    && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
            }
        }
    }

    /// Whether `template`, a label name that may hold `$1` / `${name}` references, is
    /// acceptable as `replace`'s `target_label` or `labelmap`'s `replacement`.
    ///
    /// Under UTF-8 this is any non-empty string (a `$` is a valid name character too); under
    /// the legacy scheme it is Prometheus' `relabelTargetLegacy`: legacy name characters and
    /// references, not starting with a digit.
    pub(crate) fn is_valid_label_template(self, template: &str) -> bool {
        match self {
            NameValidation::Utf8 => !template.is_empty(),
            NameValidation::Legacy => {
                // Go's `\w` is ASCII, spelled out here.
                static TEMPLATE: LazyLock<Option<Regex>> = LazyLock::new(|| {
                    Regex::new(
                        r"^(?:(?:[a-zA-Z_]|\$(?:\{[0-9A-Za-z_]+\}|[0-9A-Za-z_]+))+[0-9A-Za-z_]*)+$",
                    )
                    .ok()
                });
                TEMPLATE.as_ref().is_some_and(|re| re.is_match(template))
            }
        }
    }
}

/// True for a legacy label name, `[a-zA-Z_][a-zA-Z0-9_]*`.
fn is_legacy_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z' | b'A'..=b'Z' | b'_'))
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

impl fmt::Display for NameValidation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for NameValidation {
    type Err = String;

    /// Reads `utf8` or `legacy` (Prometheus' spellings).
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "utf8" => Ok(NameValidation::Utf8),
            "legacy" => Ok(NameValidation::Legacy),
            other => Err(format!(
                "unknown name validation scheme {}: expected utf8 or legacy",
                super::quote::Quoted(other)
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::NameValidation::{Legacy, Utf8};
    use super::*;

    #[test]
    fn label_names() {
        for ok in ["a", "_", "__name__", "A_1", "job"] {
            assert!(Legacy.is_valid_label_name(ok), "{ok}");
            assert!(Utf8.is_valid_label_name(ok), "{ok}");
        }
        for utf8_only in [
            "1a",
            "a-b",
            "a.b",
            "utf-8.label",
            "é",
            "a b",
            "$1",
            "a:b",
            "\n",
        ] {
            assert!(!Legacy.is_valid_label_name(utf8_only), "{utf8_only}");
            assert!(Utf8.is_valid_label_name(utf8_only), "{utf8_only}");
        }
        assert!(!Legacy.is_valid_label_name(""));
        assert!(!Utf8.is_valid_label_name(""));
    }

    #[test]
    fn metric_names() {
        for ok in ["up", "a:b", ":x", "_1", "http_requests_total"] {
            assert!(Legacy.is_valid_metric_name(ok), "{ok}");
            assert!(Utf8.is_valid_metric_name(ok), "{ok}");
        }
        for utf8_only in ["1a", "my.metric", "a-b", "ü"] {
            assert!(!Legacy.is_valid_metric_name(utf8_only), "{utf8_only}");
            assert!(Utf8.is_valid_metric_name(utf8_only), "{utf8_only}");
        }
        assert!(!Legacy.is_valid_metric_name(""));
        assert!(!Utf8.is_valid_metric_name(""));
    }

    /// Prometheus' `TestTargetLabelLegacyValidity` cases, and the same under UTF-8.
    #[test]
    fn label_templates() {
        for (template, legacy) in [
            ("-label", false),
            ("label", true),
            ("label${1}", true),
            ("${1}label", true),
            ("${1}", true),
            ("${", false),
            ("$", false),
            ("${}", false),
            ("foo${", false),
            ("$1", true),
            ("asd$2asd", true),
            ("-foo${1}bar-", false),
            ("bar.foo${1}bar", false),
            ("_${1}_", true),
            ("foo${bar}foo", true),
            ("x${a}y$2", true),
            ("${1}_x", true),
            ("a_$1", true),
            ("$name", true),
            ("${1}${2}", true),
            ("a-$1", false),
            ("1$1", false),
            ("$$", false),
            ("$-", false),
            ("${1", false),
            ("a$", false),
            ("utf-8.label${1}", false),
        ] {
            assert_eq!(
                Legacy.is_valid_label_template(template),
                legacy,
                "{template}"
            );
            assert!(Utf8.is_valid_label_template(template), "{template}");
        }
        assert!(!Legacy.is_valid_label_template(""));
        assert!(!Utf8.is_valid_label_template(""));
    }

    #[test]
    fn parses_prometheus_spellings() {
        assert_eq!("utf8".parse(), Ok(Utf8));
        assert_eq!("legacy".parse(), Ok(Legacy));
        assert_eq!(NameValidation::default(), Utf8);
        assert_eq!(Legacy.to_string(), "legacy");
        let err = "UTF-8".parse::<NameValidation>().unwrap_err();
        assert_eq!(
            err,
            "unknown name validation scheme \"UTF-8\": expected utf8 or legacy"
        );
    }
}
