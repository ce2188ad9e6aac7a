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
//! Label names are validated with a [`NameValidation`] scheme, as Prometheus 3 does: any
//! non-empty UTF-8 name by default, `[a-zA-Z_][a-zA-Z0-9_]*` under the legacy scheme.
//!
//! Rules are read by hand rather than with `#[derive(Deserialize)]` so that a whole document
//! can count what its rules hold while they are read (see the `load` module).

use std::fmt;

use serde::de::{DeserializeSeed, Error as _, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use super::budget::{Budget, Limits, LoadOptions, Nullable, Text, TextList};
use super::case;
use super::goregex;
use super::names::NameValidation;
use super::quote::{Backticked, Quoted};

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
                    .ok_or_else(|| E::custom(format!("unknown relabel action {}", Quoted(name))))
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
#[derive(Debug, Clone, PartialEq, Eq)]
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

    /// Checks the rule as Prometheus does when it loads it, with the default [`LoadOptions`]
    /// (UTF-8 names, default regex size limit); the error is Prometheus' message.
    pub fn validate(&self) -> Result<(), String> {
        self.validate_with(&LoadOptions::default())
    }

    /// [`RelabelConfig::validate`] under the name validation scheme and regex size limit of
    /// `options`.
    ///
    /// Order: source label names and the regex first (Prometheus rejects those while reading
    /// the YAML), then the checks of Prometheus' `Config.Validate`, in its order.
    pub fn validate_with(&self, options: &LoadOptions) -> Result<(), String> {
        self.check_source_labels(options.names)?;
        check_regex_len(&self.regex, &options.limits)?;
        goregex::compile_anchored(&self.regex).map_err(|e| invalid_regex(&self.regex, &e))?;
        self.check_fields(options.names)
    }

    /// The first check of [`RelabelConfig::validate`]: every source label is a valid name.
    ///
    /// Under the legacy scheme a UTF-8 name is refused, as Prometheus 2 refuses it. (Prometheus
    /// 3 reads `source_labels` with its process-wide scheme, which it keeps at UTF-8 even when
    /// `metric_name_validation_scheme` is `legacy`; metric-gate's legacy scheme is Prometheus
    /// 2's rule throughout.)
    pub(crate) fn check_source_labels(&self, names: NameValidation) -> Result<(), String> {
        match self
            .source_labels()
            .iter()
            .find(|n| !names.is_valid_label_name(n))
        {
            Some(bad) => Err(format!("{} is not a valid label name", Quoted(bad))),
            None => Ok(()),
        }
    }

    /// The checks of [`RelabelConfig::validate`] after the regex: Prometheus'
    /// `Config.Validate`.
    pub(crate) fn check_fields(&self, names: NameValidation) -> Result<(), String> {
        let action = self.action;
        let invalid_target = || {
            Err(format!(
                "{} is invalid 'target_label' for {action} action",
                Quoted(&self.target_label)
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
                names.is_valid_label_template(&self.target_label)
            } else {
                names.is_valid_label_name(&self.target_label)
            };
            if !valid {
                return invalid_target();
            }
        }
        let writes_literal_target = matches!(
            action,
            Action::Lowercase | Action::Uppercase | Action::KeepEqual | Action::DropEqual
        );
        if writes_literal_target && !names.is_valid_label_name(&self.target_label) {
            return invalid_target();
        }
        if writes_literal_target && self.replacement != DEFAULT_REPLACEMENT {
            return Err(format!("'replacement' can not be set for {action} action"));
        }
        if action == Action::LabelMap && !names.is_valid_label_template(&self.replacement) {
            return Err(format!(
                "{} is invalid 'replacement' for {action} action",
                Quoted(&self.replacement)
            ));
        }
        if action == Action::HashMod && !names.is_valid_label_name(&self.target_label) {
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

/// Refuses a regex pattern longer than [`Limits::max_regex_bytes`], before it is translated
/// or compiled (a 10 MB pattern would take seconds and gigabytes to be refused otherwise).
pub(crate) fn check_regex_len(pattern: &str, limits: &Limits) -> Result<(), String> {
    if pattern.len() > limits.max_regex_bytes {
        return Err(format!(
            "invalid regex {}: longer than the limit of {} bytes",
            Quoted(pattern),
            limits.max_regex_bytes
        ));
    }
    Ok(())
}

/// The message for a regex that does not compile.
pub(crate) fn invalid_regex(pattern: &str, error: &str) -> String {
    format!("invalid regex {}: {error}", Quoted(pattern))
}

/// The YAML shape of a rule. Each field is `None` when absent and `Some(None)` when null, so
/// that absent keys get defaults and null keys get zero values (see the module docs).
#[derive(Default)]
struct RawRelabelConfig {
    source_labels: Option<Option<Vec<String>>>,
    separator: Option<Option<String>>,
    regex: Option<Option<String>>,
    modulus: Option<Option<u64>>,
    target_label: Option<Option<String>>,
    replacement: Option<Option<String>>,
    action: Option<Option<Action>>,
}

/// The keys of a rule, for "unknown field" errors.
const FIELDS: &[&str] = &[
    "source_labels",
    "separator",
    "regex",
    "modulus",
    "target_label",
    "replacement",
    "action",
];

impl<'de> Deserialize<'de> for RelabelConfig {
    /// Reads one rule without limits; a whole configuration is read with
    /// [`super::Config::load`], which counts what its rules hold.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        RuleSeed(&Budget::new(Limits::none())).deserialize(deserializer)
    }
}

/// Reads one rule, counting its strings against the document's [`Budget`].
pub(crate) struct RuleSeed<'b>(pub(crate) &'b Budget);

impl<'de> DeserializeSeed<'de> for RuleSeed<'_> {
    type Value = RelabelConfig;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<RelabelConfig, D::Error> {
        deserializer.deserialize_struct("RelabelConfig", FIELDS, self)
    }
}

impl<'de> Visitor<'de> for RuleSeed<'_> {
    type Value = RelabelConfig;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a relabel rule (a map)")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RelabelConfig, A::Error> {
        /// Stores a field read once; a second time is an error.
        fn set<T, E: serde::de::Error>(
            slot: &mut Option<Option<T>>,
            value: Option<T>,
            name: &'static str,
        ) -> Result<(), E> {
            if slot.is_some() {
                return Err(E::duplicate_field(name));
            }
            *slot = Some(value);
            Ok(())
        }

        let budget = self.0;
        let mut raw = RawRelabelConfig::default();
        while let Some(key) = map.next_key_seed(FieldName)? {
            match key {
                "source_labels" => {
                    let v = map.next_value_seed(Nullable(TextList(budget)))?;
                    set(&mut raw.source_labels, v, key)?
                }
                "separator" => set(
                    &mut raw.separator,
                    map.next_value_seed(Nullable(Text(budget)))?,
                    key,
                )?,
                "regex" => set(
                    &mut raw.regex,
                    map.next_value_seed(Nullable(Text(budget)))?,
                    key,
                )?,
                "modulus" => set(&mut raw.modulus, map.next_value()?, key)?,
                "target_label" => {
                    let v = map.next_value_seed(Nullable(Text(budget)))?;
                    set(&mut raw.target_label, v, key)?
                }
                "replacement" => {
                    let v = map.next_value_seed(Nullable(Text(budget)))?;
                    set(&mut raw.replacement, v, key)?
                }
                "action" => set(&mut raw.action, map.next_value()?, key)?,
                other => return Err(A::Error::unknown_field(other, FIELDS)),
            }
        }
        RelabelConfig::try_from(raw).map_err(A::Error::custom)
    }
}

/// A rule's key: one of [`FIELDS`].
struct FieldName;

impl<'de> DeserializeSeed<'de> for FieldName {
    type Value = &'static str;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<&'static str, D::Error> {
        deserializer.deserialize_identifier(self)
    }
}

impl<'de> Visitor<'de> for FieldName {
    type Value = &'static str;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a relabel rule field name")
    }

    fn visit_str<E: serde::de::Error>(self, key: &str) -> Result<&'static str, E> {
        FIELDS.iter().find(|f| **f == key).copied().ok_or_else(|| {
            let expected = FIELDS.iter().map(|f| format!("`{f}`")).collect::<Vec<_>>();
            E::custom(format!(
                "unknown field {}, expected one of {}",
                Backticked(key),
                expected.join(", ")
            ))
        })
    }
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

    /// Validates under the legacy scheme (Prometheus 2's names).
    fn check(yaml: &str) -> Result<(), String> {
        check_with(yaml, NameValidation::Legacy)
    }

    fn check_with(yaml: &str, names: NameValidation) -> Result<(), String> {
        let options = LoadOptions {
            names,
            ..LoadOptions::default()
        };
        rule(yaml)?.validate_with(&options)
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

    /// Prometheus 3's UTF-8 names (its relabel tests' cases), which the legacy scheme refuses
    /// with the errors above.
    #[test]
    fn utf8_names_are_valid_by_default() {
        let cases: &[(&str, &str)] = &[
            // Source label with UTF-8 characters.
            ("{source_labels: [utf-8.label], regex: 'line1.*line2', target_label: d, replacement: 'match${1}'}",
             r#""utf-8.label" is not a valid label name"#),
            // Target label with UTF-8 characters, plain and with a reference.
            ("{source_labels: [a], regex: 'line1.*line2', target_label: utf-8.label, replacement: 'match${1}'}",
             r#""utf-8.label" is invalid 'target_label' for replace action"#),
            ("{source_labels: [a], regex: 'line1.*line2', target_label: 'utf-8.label${1}', replacement: 'match${1}'}",
             r#""utf-8.label${1}" is invalid 'target_label' for replace action"#),
            ("{source_labels: [a], regex: 'some-([^-]+)-([^,]+)', target_label: '0${3}'}",
             r#""0${3}" is invalid 'target_label' for replace action"#),
            ("{source_labels: [a], regex: 'some-([^-]+)-([^,]+)', target_label: '-${3}'}",
             r#""-${3}" is invalid 'target_label' for replace action"#),
            ("{action: replace, target_label: '$'}", r#""$" is invalid 'target_label' for replace action"#),
            ("{action: lowercase, target_label: '${3}'}", r#""${3}" is invalid 'target_label' for lowercase action"#),
            ("{action: uppercase, target_label: 'ünï'}", r#""ünï" is invalid 'target_label' for uppercase action"#),
            ("{action: keepequal, target_label: a.b}", r#""a.b" is invalid 'target_label' for keepequal action"#),
            ("{action: dropequal, target_label: a.b}", r#""a.b" is invalid 'target_label' for dropequal action"#),
            ("{action: hashmod, modulus: 2, target_label: 'shard.n'}", r#""shard.n" is invalid 'target_label' for hashmod action"#),
            ("{action: labelmap, regex: 'k8s_(.+)', replacement: 'app.kubernetes.io/$1'}",
             r#""app.kubernetes.io/$1" is invalid 'replacement' for labelmap action"#),
        ];
        for (yaml, legacy_error) in cases {
            assert_eq!(check_with(yaml, NameValidation::Utf8), Ok(()), "{yaml}");
            assert_eq!(check(yaml).unwrap_err(), *legacy_error, "{yaml}");
        }
        // Empty names are invalid under both schemes.
        for names in [NameValidation::Utf8, NameValidation::Legacy] {
            for (yaml, message) in [
                (
                    "{source_labels: [''], target_label: x}",
                    r#""" is not a valid label name"#,
                ),
                (
                    "{action: labelmap, replacement: ''}",
                    r#""" is invalid 'replacement' for labelmap action"#,
                ),
                (
                    "{action: replace, target_label: ''}",
                    "relabel configuration for replace action requires 'target_label' value",
                ),
            ] {
                assert_eq!(
                    check_with(yaml, names).unwrap_err(),
                    message,
                    "{names} {yaml}"
                );
            }
        }
    }

    #[test]
    fn errors_quote_at_most_a_few_hundred_bytes() {
        let long = "x.".repeat(5_000);
        for yaml in [
            format!("{{source_labels: ['{long}'], target_label: x}}"),
            format!("{{target_label: '{long}'}}"),
            format!("{{action: labelmap, replacement: '-{long}'}}"),
        ] {
            let err = check(&yaml).unwrap_err();
            assert!(err.len() < 400, "{} bytes: {err}", err.len());
            assert!(err.contains("bytes) is"), "{err}");
        }
        let err = rule(&format!("action: {}", "k".repeat(100_000))).unwrap_err();
        assert!(err.len() < 400, "{err}");
        assert!(err.contains("unknown relabel action \"kkk"), "{err}");
        assert!(err.contains("…\" (100000 bytes)"), "{err}");
        // (A longer plain key than 1024 bytes is not a key in YAML.)
        let err = rule(&format!("{}: 1", "z".repeat(1000))).unwrap_err();
        assert!(err.len() < 600, "{err}");
        assert!(err.contains("unknown field `zzz"), "{err}");
        assert!(
            err.contains("…` (1000 bytes), expected one of `source_labels`"),
            "{err}"
        );
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
