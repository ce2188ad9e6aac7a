//! One `relabel_config` rule as Prometheus reads it: the serde type, its defaults, its validation.
//!
//! Held against Prometheus' `model/relabel/relabel.go`: [`RelabelConfig`] owns its defaults
//! ([`Default`], applied to absent keys while deserializing) and its checks
//! ([`RelabelConfig::validate`], the same checks in the same order as Prometheus'
//! `Config.Validate`, with the same messages).
//!
//! Two YAML details follow Prometheus (which reads YAML with go-yaml v2):
//! - an *absent* key takes the default, while a key that is present but *null* (`regex:` or
//!   `separator: ~`) is the zero value: the empty string, `0`, no source labels. So `regex:` is
//!   the empty regex (matching only the empty string), not `(.*)`.
//! - scalars are read as their source text: `regex: 200`, `replacement: 1`, `separator: 0` are
//!   the strings `"200"`, `"1"`, `"0"`. (That is why no `#[serde(flatten)]`/untagged enum is used
//!   here: those buffer values as typed YAML scalars and lose the text.)
//!
//! Label names are validated with the legacy rule `[a-zA-Z_][a-zA-Z0-9_]*` (Prometheus 2 and
//! Prometheus 3 with `metric_name_validation_scheme: legacy`), because the rendered 0.0.4 text
//! format can carry only those names unquoted.

use std::fmt;
use std::sync::LazyLock;

use regex::Regex;
use serde::{Deserialize, Deserializer};

use super::case;
use super::goregex;

/// Default `separator`: joins the values of `source_labels`.
pub const DEFAULT_SEPARATOR: &str = ";";
/// Default `regex`: matches anything and captures it as group 1.
pub const DEFAULT_REGEX: &str = "(.*)";
/// Default `replacement`: group 1 of the match.
pub const DEFAULT_REPLACEMENT: &str = "$1";

/// A relabel action. Names are matched case-insensitively when read from YAML.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Action {
    /// `replace`: write `replacement`, expanded against the regex match of the joined source
    /// values, to the (expanded) `target_label`. No match, no change.
    #[default]
    Replace,
    /// `keep`: drop the series unless the regex matches the joined source values.
    Keep,
    /// `drop`: drop the series when the regex matches the joined source values.
    Drop,
    /// `keepequal`: drop the series unless the joined source values equal `target_label`'s value.
    KeepEqual,
    /// `dropequal`: drop the series when the joined source values equal `target_label`'s value.
    DropEqual,
    /// `hashmod`: write md5(joined source values) modulo `modulus` to `target_label`.
    HashMod,
    /// `labelmap`: copy every label whose *name* matches the regex to the name `replacement`
    /// expanded against that name.
    LabelMap,
    /// `labeldrop`: remove every label whose name matches the regex.
    LabelDrop,
    /// `labelkeep`: remove every label whose name does not match the regex.
    LabelKeep,
    /// `lowercase`: write the lower-cased joined source values to `target_label`.
    Lowercase,
    /// `uppercase`: write the upper-cased joined source values to `target_label`.
    Uppercase,
}

impl Action {
    /// Every action, in the order Prometheus documents them.
    pub const ALL: [Action; 11] = [
        Action::Replace,
        Action::Keep,
        Action::Drop,
        Action::KeepEqual,
        Action::DropEqual,
        Action::HashMod,
        Action::LabelMap,
        Action::LabelDrop,
        Action::LabelKeep,
        Action::Lowercase,
        Action::Uppercase,
    ];

    /// The configuration name, e.g. `hashmod`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Replace => "replace",
            Action::Keep => "keep",
            Action::Drop => "drop",
            Action::KeepEqual => "keepequal",
            Action::DropEqual => "dropequal",
            Action::HashMod => "hashmod",
            Action::LabelMap => "labelmap",
            Action::LabelDrop => "labeldrop",
            Action::LabelKeep => "labelkeep",
            Action::Lowercase => "lowercase",
            Action::Uppercase => "uppercase",
        }
    }

    /// Looks an action up by name, case-insensitively as Prometheus does (it lower-cases the
    /// name with Go's `strings.ToLower` first).
    pub fn from_name(name: &str) -> Option<Action> {
        let mut lower = String::with_capacity(name.len());
        case::push_lower(name, &mut lower);
        Action::ALL.into_iter().find(|a| a.as_str() == lower)
    }

    /// Actions that write to `target_label` and so require it.
    fn needs_target_label(self) -> bool {
        matches!(
            self,
            Action::Replace
                | Action::HashMod
                | Action::Lowercase
                | Action::Uppercase
                | Action::KeepEqual
                | Action::DropEqual
        )
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Action {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        // A visitor rather than `String::deserialize` + check: an error raised inside the
        // deserializer gets the YAML line and column attached.
        struct ActionVisitor;

        impl serde::de::Visitor<'_> for ActionVisitor {
            type Value = Action;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a relabel action name")
            }

            fn visit_str<E: serde::de::Error>(self, name: &str) -> Result<Action, E> {
                Action::from_name(name)
                    .ok_or_else(|| E::custom(format!("unknown relabel action {name:?}")))
            }
        }

        deserializer.deserialize_str(ActionVisitor)
    }
}

/// One relabel rule, with Prometheus' defaults applied to absent fields.
///
/// Deserializing checks only the YAML shape (unknown keys, types, action names); the semantic
/// checks are in [`RelabelConfig::validate`], which [`super::Program::compile`] runs so it can
/// say which rule failed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "RawRelabelConfig")]
pub struct RelabelConfig {
    /// Labels whose values are joined with `separator` into the rule's input. `None` when the
    /// key is absent or null; `Some(vec![])` for an explicit `[]`, which `labeldrop` and
    /// `labelkeep` reject, as in Prometheus.
    pub source_labels: Option<Vec<String>>,
    /// Joins the source values. Default `;`; an explicit empty string joins with nothing.
    pub separator: String,
    /// RE2 regex, fully anchored when compiled. Default `(.*)`; the empty regex matches only
    /// the empty string.
    pub regex: String,
    /// Divisor for `hashmod`; 0 means unset.
    pub modulus: u64,
    /// Label written by `replace` (may contain `$1`-style references), `hashmod`,
    /// `lowercase`, `uppercase`; compared by `keepequal`/`dropequal`.
    pub target_label: String,
    /// Template for `replace` and `labelmap`. Default `$1`; an explicit empty string writes
    /// the empty value, which deletes the target label.
    pub replacement: String,
    /// What the rule does. Default `replace`.
    pub action: Action,
}

impl Default for RelabelConfig {
    fn default() -> Self {
        RelabelConfig {
            source_labels: None,
            separator: DEFAULT_SEPARATOR.to_owned(),
            regex: DEFAULT_REGEX.to_owned(),
            modulus: 0,
            target_label: String::new(),
            replacement: DEFAULT_REPLACEMENT.to_owned(),
            action: Action::Replace,
        }
    }
}

impl RelabelConfig {
    /// The configured source label names (none when unset).
    pub fn source_labels(&self) -> &[String] {
        self.source_labels.as_deref().unwrap_or(&[])
    }

    /// Checks the rule as Prometheus does when it loads it; the error is Prometheus' message.
    ///
    /// Order: source label names and the regex first (Prometheus rejects those while reading
    /// the YAML), then the checks of Prometheus' `Config.Validate`, in its order.
    pub fn validate(&self) -> Result<(), String> {
        if let Some(bad) = self
            .source_labels()
            .iter()
            .find(|n| !is_valid_label_name(n))
        {
            return Err(format!("{bad:?} is not a valid label name"));
        }
        goregex::compile_anchored(&self.regex)
            .map_err(|e| format!("invalid regex {:?}: {e}", self.regex))?;

        let action = self.action;
        let invalid_target = || {
            Err(format!(
                "{:?} is invalid 'target_label' for {action} action",
                self.target_label
            ))
        };
        if action == Action::HashMod && self.modulus == 0 {
            return Err("relabel configuration for hashmod requires non-zero modulus".to_owned());
        }
        if action.needs_target_label() && self.target_label.is_empty() {
            return Err(format!(
                "relabel configuration for {action} action requires 'target_label' value"
            ));
        }
        if action == Action::Replace {
            let valid = if self.target_label.contains('$') {
                is_valid_label_template(&self.target_label)
            } else {
                is_valid_label_name(&self.target_label)
            };
            if !valid {
                return invalid_target();
            }
        }
        let writes_literal_target = matches!(
            action,
            Action::Lowercase | Action::Uppercase | Action::KeepEqual | Action::DropEqual
        );
        if writes_literal_target && !is_valid_label_name(&self.target_label) {
            return invalid_target();
        }
        if writes_literal_target && self.replacement != DEFAULT_REPLACEMENT {
            return Err(format!("'replacement' can not be set for {action} action"));
        }
        if action == Action::LabelMap && !is_valid_label_template(&self.replacement) {
            return Err(format!(
                "{:?} is invalid 'replacement' for {action} action",
                self.replacement
            ));
        }
        if action == Action::HashMod && !is_valid_label_name(&self.target_label) {
            return invalid_target();
        }
        if matches!(action, Action::KeepEqual | Action::DropEqual)
            && (self.regex != DEFAULT_REGEX
                || self.modulus != 0
                || self.separator != DEFAULT_SEPARATOR
                || self.replacement != DEFAULT_REPLACEMENT)
        {
            return Err(format!(
                "{action} action requires only 'source_labels' and `target_label`, and no other fields"
            ));
        }
        if matches!(action, Action::LabelDrop | Action::LabelKeep)
            && (self.source_labels.is_some()
                || !self.target_label.is_empty()
                || self.modulus != 0
                || self.separator != DEFAULT_SEPARATOR
                || self.replacement != DEFAULT_REPLACEMENT)
        {
            return Err(format!(
                "{action} action requires only 'regex', and no other fields"
            ));
        }
        Ok(())
    }
}

/// The YAML shape of a rule. Each field is `None` when absent and `Some(None)` when null, so
/// that absent keys get defaults and null keys get zero values (see the module docs).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRelabelConfig {
    #[serde(default, deserialize_with = "present")]
    source_labels: Option<Option<Vec<String>>>,
    #[serde(default, deserialize_with = "present")]
    separator: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    regex: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    modulus: Option<Option<u64>>,
    #[serde(default, deserialize_with = "present")]
    target_label: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    replacement: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    action: Option<Option<Action>>,
}

/// Reads a key that is present: `Some(None)` for null, `Some(Some(v))` otherwise. Absent keys
/// never reach this function and stay `None` through `#[serde(default)]`.
fn present<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(deserializer).map(Some)
}

/// Absent: the default. Null: the zero value. Present: the value.
fn field<T: Default>(raw: Option<Option<T>>, default: impl FnOnce() -> T) -> T {
    match raw {
        None => default(),
        Some(value) => value.unwrap_or_default(),
    }
}

impl TryFrom<RawRelabelConfig> for RelabelConfig {
    type Error = String;

    fn try_from(raw: RawRelabelConfig) -> Result<Self, String> {
        let defaults = RelabelConfig::default();
        let action = match raw.action {
            None => defaults.action,
            Some(Some(action)) => action,
            Some(None) => return Err("relabel action cannot be empty".to_owned()),
        };
        Ok(RelabelConfig {
            source_labels: raw.source_labels.flatten(),
            separator: field(raw.separator, || defaults.separator),
            regex: field(raw.regex, || defaults.regex),
            modulus: field(raw.modulus, || defaults.modulus),
            target_label: field(raw.target_label, || defaults.target_label),
            replacement: field(raw.replacement, || defaults.replacement),
            action,
        })
    }
}

/// True for a legacy Prometheus label name, `[a-zA-Z_][a-zA-Z0-9_]*`.
pub(crate) fn is_valid_label_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    matches!(bytes.next(), Some(b'a'..=b'z' | b'A'..=b'Z' | b'_'))
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Prometheus' `relabelTargetLegacy`: a label name that may contain `$name` / `${name}`
/// references, for templated `target_label` (replace) and `replacement` (labelmap).
fn is_valid_label_template(template: &str) -> bool {
    // Go's `\w` is ASCII, spelled out here.
    static TEMPLATE: LazyLock<Option<Regex>> = LazyLock::new(|| {
        Regex::new(r"^(?:(?:[a-zA-Z_]|\$(?:\{[0-9A-Za-z_]+\}|[0-9A-Za-z_]+))+[0-9A-Za-z_]*)+$").ok()
    });
    TEMPLATE.as_ref().is_some_and(|re| re.is_match(template))
}

/// A configuration that cannot be loaded: bad YAML, a rule that fails validation, or a bad
/// document layout.
///
/// Displays as `<origin>: <list>[<index>] (action <action>): <message>`, where `<list>` is
/// `metric_relabel_configs` or the subset name and `<index>` counts rules from 0 — the same
/// path notation serde_yaml_ng uses in its syntax errors (`requests[2].modulus: ...`), so both
/// kinds of error point at rules the same way. Parts that do not apply are left out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    origin: Option<String>,
    rule: Option<RulePath>,
    message: String,
}

/// Which rule an error is about.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RulePath {
    list: String,
    index: usize,
    action: Action,
}

impl ConfigError {
    /// An error about the whole document or value, with no rule to point at.
    pub fn new(message: impl Into<String>) -> Self {
        ConfigError {
            origin: None,
            rule: None,
            message: message.into(),
        }
    }

    /// An error about rule `index` (0-based) of list `list`.
    pub(crate) fn in_rule(list: &str, index: usize, action: Action, message: String) -> Self {
        ConfigError {
            origin: None,
            rule: Some(RulePath {
                list: list.to_owned(),
                index,
                action,
            }),
            message,
        }
    }

    /// Names where the configuration came from (a file path, `--relabel`).
    pub fn with_origin(mut self, origin: &str) -> Self {
        self.origin = Some(origin.to_owned());
        self
    }

    /// Where the configuration came from, when known.
    pub fn origin(&self) -> Option<&str> {
        self.origin.as_deref()
    }

    /// The failing rule as (list name, 0-based index), when the error is about one rule.
    pub fn rule(&self) -> Option<(&str, usize)> {
        self.rule.as_ref().map(|r| (r.list.as_str(), r.index))
    }

    /// The message without origin and rule.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(origin) = &self.origin {
            write!(f, "{origin}: ")?;
        }
        if let Some(rule) = &self.rule {
            write!(
                f,
                "{}[{}] (action {}): ",
                rule.list, rule.index, rule.action
            )?;
        }
        f.write_str(&self.message)
    }
}

impl std::error::Error for ConfigError {}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(yaml: &str) -> Result<RelabelConfig, String> {
        serde_yaml_ng::from_str(yaml).map_err(|e| e.to_string())
    }

    fn check(yaml: &str) -> Result<(), String> {
        rule(yaml)?.validate()
    }

    #[test]
    fn absent_fields_take_prometheus_defaults() {
        let r = rule("target_label: x").unwrap();
        assert_eq!(r.action, Action::Replace);
        assert_eq!(r.separator, ";");
        assert_eq!(r.regex, "(.*)");
        assert_eq!(r.replacement, "$1");
        assert_eq!(r.modulus, 0);
        assert_eq!(r.source_labels, None);
        assert_eq!(
            r,
            RelabelConfig {
                target_label: "x".into(),
                ..Default::default()
            }
        );
    }

    #[test]
    fn explicit_empty_and_null_fields_are_not_defaults() {
        let r = rule("{separator: '', regex: '', replacement: '', target_label: x}").unwrap();
        assert_eq!(
            (
                r.separator.as_str(),
                r.regex.as_str(),
                r.replacement.as_str()
            ),
            ("", "", "")
        );
        // go-yaml v2 sets a null key to the zero value; Prometheus then reads a nil regex as "".
        let r =
            rule("separator:\nregex: ~\nreplacement: null\nsource_labels:\nmodulus:\n").unwrap();
        assert_eq!(
            (
                r.separator.as_str(),
                r.regex.as_str(),
                r.replacement.as_str()
            ),
            ("", "", "")
        );
        assert_eq!((r.source_labels, r.modulus), (None, 0));
        let r = rule("source_labels: []").unwrap();
        assert_eq!(r.source_labels, Some(vec![]));
    }

    #[test]
    fn scalars_are_read_as_their_text() {
        let r = rule("{regex: 200, replacement: 1, separator: 0, target_label: x}").unwrap();
        assert_eq!(
            (
                r.regex.as_str(),
                r.replacement.as_str(),
                r.separator.as_str()
            ),
            ("200", "1", "0")
        );
        let r = rule("{regex: 1.50, replacement: true, separator: 0x1F}").unwrap();
        assert_eq!(
            (
                r.regex.as_str(),
                r.replacement.as_str(),
                r.separator.as_str()
            ),
            ("1.50", "true", "0x1F")
        );
        let r = rule("{regex: 'null', replacement: \"~\"}").unwrap();
        assert_eq!((r.regex.as_str(), r.replacement.as_str()), ("null", "~"));
        let r = rule("{source_labels: [__name__, code], modulus: 8}").unwrap();
        assert_eq!(r.source_labels(), ["__name__", "code"]);
        assert_eq!(r.modulus, 8);
    }

    #[test]
    fn modulus_must_be_an_integer() {
        let err = rule("modulus: '8'").unwrap_err();
        assert!(err.contains("modulus: invalid type: string \"8\""), "{err}");
        assert!(rule("modulus: -1").is_err());
    }

    #[test]
    fn action_names_are_case_insensitive() {
        for (text, action) in [
            ("Replace", Action::Replace),
            ("KEEP", Action::Keep),
            ("dropEqual", Action::DropEqual),
            ("HashMod", Action::HashMod),
            ("LabelMap", Action::LabelMap),
            // Go's strings.ToLower maps the Kelvin sign to k, so Prometheus accepts this too.
            ("\u{212A}eep", Action::Keep),
        ] {
            assert_eq!(
                rule(&format!("action: {text}")).unwrap().action,
                action,
                "{text}"
            );
        }
        for action in Action::ALL {
            assert_eq!(Action::from_name(action.as_str()), Some(action));
        }
    }

    #[test]
    fn unknown_and_empty_actions_are_errors() {
        let err = rule("action: explode").unwrap_err();
        assert!(err.contains("unknown relabel action \"explode\""), "{err}");
        assert!(err.contains("line 1 column 9"), "{err}");
        let err = rule("action: ''").unwrap_err();
        assert!(err.contains("unknown relabel action \"\""), "{err}");
        let err = rule("action:").unwrap_err();
        assert!(err.contains("relabel action cannot be empty"), "{err}");
    }

    #[test]
    fn unknown_keys_are_errors() {
        let err = rule("action: keep\nregexp: foo").unwrap_err();
        assert!(err.contains("unknown field `regexp`"), "{err}");
        assert!(err.contains("line 2 column 1"), "{err}");
    }

    #[test]
    fn label_name_rules() {
        for ok in ["a", "_", "__name__", "A_1", "job"] {
            assert!(is_valid_label_name(ok), "{ok}");
        }
        for bad in ["", "1a", "a-b", "a.b", "é", "a b", "$1"] {
            assert!(!is_valid_label_name(bad), "{bad}");
        }
        for ok in [
            "$1", "${1}", "${1}_x", "a_$1", "$name", "x${a}y$2", "${1}${2}",
        ] {
            assert!(is_valid_label_template(ok), "{ok}");
        }
        for bad in ["", "$", "${}", "$-", "a-$1", "1$1", "${1", "$$", "a$"] {
            assert!(!is_valid_label_template(bad), "{bad}");
        }
    }

    /// Every validation error, with Prometheus' message.
    #[test]
    fn validation_errors() {
        let cases: &[(&str, &str)] = &[
            ("source_labels: [a-b]", r#""a-b" is not a valid label name"#),
            ("{action: keep, regex: '[a'}", r#"invalid regex "[a": missing closing ]: `[a`"#),
            ("{action: keep, regex: 'a{1001}'}", r#"invalid regex "a{1001}": invalid repeat count: `{1001}`"#),
            ("{action: keep, regex: '(a'}", r#"invalid regex "(a": unclosed group"#),
            ("{action: hashmod, target_label: x}", "relabel configuration for hashmod requires non-zero modulus"),
            ("{action: hashmod, modulus: 0, target_label: x}", "relabel configuration for hashmod requires non-zero modulus"),
            ("action: replace", "relabel configuration for replace action requires 'target_label' value"),
            ("{action: hashmod, modulus: 2}", "relabel configuration for hashmod action requires 'target_label' value"),
            ("action: lowercase", "relabel configuration for lowercase action requires 'target_label' value"),
            ("action: uppercase", "relabel configuration for uppercase action requires 'target_label' value"),
            ("action: keepequal", "relabel configuration for keepequal action requires 'target_label' value"),
            ("action: dropequal", "relabel configuration for dropequal action requires 'target_label' value"),
            ("{action: replace, target_label: a-b}", r#""a-b" is invalid 'target_label' for replace action"#),
            ("{action: replace, target_label: 'a-$1'}", r#""a-$1" is invalid 'target_label' for replace action"#),
            ("{action: replace, target_label: '$'}", r#""$" is invalid 'target_label' for replace action"#),
            ("{action: lowercase, target_label: '1x'}", r#""1x" is invalid 'target_label' for lowercase action"#),
            ("{action: uppercase, target_label: '$1'}", r#""$1" is invalid 'target_label' for uppercase action"#),
            ("{action: keepequal, target_label: a.b}", r#""a.b" is invalid 'target_label' for keepequal action"#),
            ("{action: dropequal, target_label: a.b}", r#""a.b" is invalid 'target_label' for dropequal action"#),
            ("{action: hashmod, modulus: 2, target_label: 'a$1'}", r#""a$1" is invalid 'target_label' for hashmod action"#),
            ("{action: lowercase, target_label: x, replacement: y}", "'replacement' can not be set for lowercase action"),
            ("{action: uppercase, target_label: x, replacement: ''}", "'replacement' can not be set for uppercase action"),
            ("{action: keepequal, target_label: x, replacement: y}", "'replacement' can not be set for keepequal action"),
            ("{action: dropequal, target_label: x, replacement: y}", "'replacement' can not be set for dropequal action"),
            ("{action: labelmap, replacement: 'a-$1'}", r#""a-$1" is invalid 'replacement' for labelmap action"#),
            ("{action: labelmap, replacement: ''}", r#""" is invalid 'replacement' for labelmap action"#),
            ("{action: keepequal, target_label: x, regex: a}", "keepequal action requires only 'source_labels' and `target_label`, and no other fields"),
            ("{action: keepequal, target_label: x, separator: ','}", "keepequal action requires only 'source_labels' and `target_label`, and no other fields"),
            ("{action: dropequal, target_label: x, modulus: 3}", "dropequal action requires only 'source_labels' and `target_label`, and no other fields"),
            ("{action: labeldrop, regex: a, source_labels: [a]}", "labeldrop action requires only 'regex', and no other fields"),
            ("{action: labeldrop, regex: a, source_labels: []}", "labeldrop action requires only 'regex', and no other fields"),
            ("{action: labelkeep, regex: a, target_label: a}", "labelkeep action requires only 'regex', and no other fields"),
            ("{action: labelkeep, regex: a, modulus: 1}", "labelkeep action requires only 'regex', and no other fields"),
            ("{action: labeldrop, regex: a, separator: ''}", "labeldrop action requires only 'regex', and no other fields"),
            ("{action: labelkeep, regex: a, replacement: x}", "labelkeep action requires only 'regex', and no other fields"),
        ];
        for (yaml, message) in cases {
            assert_eq!(check(yaml).unwrap_err(), *message, "{yaml}");
        }
    }

    #[test]
    fn valid_rules_pass() {
        for yaml in [
            "{action: replace, target_label: 'x_${1}', source_labels: [a]}",
            "{action: replace, target_label: '$1'}",
            "{action: keep, source_labels: [__name__], regex: 'up|go_.*'}",
            "{action: hashmod, modulus: 8, target_label: shard, source_labels: [instance]}",
            "{action: labelmap, regex: 'foo_(.+)', replacement: 'bar_$1'}",
            "{action: labeldrop, regex: 'path|url'}",
            "{action: labelkeep, regex: '__name__|job'}",
            "{action: lowercase, target_label: x, replacement: $1}",
            "{action: keepequal, source_labels: [a], target_label: b, regex: '(.*)'}",
            "{action: drop, regex: ''}",
        ] {
            assert_eq!(check(yaml), Ok(()), "{yaml}");
        }
    }

    #[test]
    fn error_display_names_origin_list_and_rule() {
        let err = ConfigError::in_rule("requests", 2, Action::HashMod, "boom".into());
        assert_eq!(err.to_string(), "requests[2] (action hashmod): boom");
        let err = err.with_origin("--relabel");
        assert_eq!(
            err.to_string(),
            "--relabel: requests[2] (action hashmod): boom"
        );
        assert_eq!(err.rule(), Some(("requests", 2)));
        assert_eq!(err.origin(), Some("--relabel"));
        assert_eq!(err.message(), "boom");
        assert_eq!(
            ConfigError::new("x").with_origin("f.yaml").to_string(),
            "f.yaml: x"
        );
    }
}
