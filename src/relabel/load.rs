//! Reading a configuration document within [`Limits`].
//!
//! YAML aliases make a small file expand into a large configuration: a 27 KB file that
//! aliases a list of 200 rules into 2,000 subsets is 400,000 rules, each with compiled
//! regexes. Prometheus sets no limits here (its configuration is trusted and loaded once);
//! metric-gate reloads its configuration while serving, so a mistake must fail fast and
//! small instead of taking the process down. The limits are counted *while* the YAML is read,
//! alias expansions included, so reading stops at the first value past a limit:
//!
//! - the text itself ([`Limits::max_bytes`]; files are read no further than that);
//! - rules in all lists together ([`Limits::max_rules`]) and subsets ([`Limits::max_subsets`]);
//! - the text of every value read, aliases expanded ([`Limits::max_expanded_bytes`]): an alias
//!   to a long string or to a long `source_labels` list costs its size each time it is used;
//! - each regex pattern ([`Limits::max_regex_bytes`], checked before it is translated or
//!   compiled). A pattern used by many rules is compiled once and shared, so aliases add no
//!   regex memory, and all distinct patterns together are no longer than the text.
//!
//! serde_yaml_ng has a limit of its own (alias jumps at most 100 per YAML event), which does
//! not bound the expanded size: one jump can copy a whole list.

use std::cell::Cell;
use std::fmt;
use std::io::{self, Read};
use std::path::Path;

use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};

use super::config::{RelabelConfig, RuleSeed};
use super::names::NameValidation;
use super::quote::Quoted;
use super::DEFAULT_LIST;

/// Limits on a relabel configuration, checked while it is read and compiled (see the module
/// docs for why each exists). [`Limits::default`] holds the documented values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most bytes of configuration text (a `--relabel` value, or a `--relabel-file`, which is
    /// read no further). Default 1 MiB, what a Kubernetes ConfigMap holds: reading the YAML
    /// of a 1 MiB file of tiny values takes about 100 MB before a single rule is checked.
    pub max_bytes: usize,
    /// Most rules in all lists together, each use of a YAML alias counted. Default 10,000.
    pub max_rules: usize,
    /// Most named subsets (lists besides `metric_relabel_configs`). Default 1,000.
    pub max_subsets: usize,
    /// Most bytes of values read, YAML aliases expanded: each string (a list name, a field, a
    /// source label) counts its length plus [`VALUE_OVERHEAD`]. Default 16 MiB.
    pub max_expanded_bytes: usize,
    /// Longest regex pattern, in bytes. Default 64 KiB (an alternation of some 1,500 metric
    /// names; compiling it takes about 15 MB and 0.1 s).
    pub max_regex_bytes: usize,
}

/// What a value costs in [`Limits::max_expanded_bytes`] besides its text: about what holding
/// it costs, so that aliasing a list of empty strings is not free.
pub const VALUE_OVERHEAD: usize = 24;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: 1 << 20,
            max_rules: 10_000,
            max_subsets: 1_000,
            max_expanded_bytes: 16 << 20,
            max_regex_bytes: 64 << 10,
        }
    }
}

impl Limits {
    /// No limits (for trusted, programmatic input).
    pub fn none() -> Self {
        Limits {
            max_bytes: usize::MAX,
            max_rules: usize::MAX,
            max_subsets: usize::MAX,
            max_expanded_bytes: usize::MAX,
            max_regex_bytes: usize::MAX,
        }
    }
}

/// How a configuration is read: the name validation scheme and the limits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// Which label names rules may use and write (`--metric-name-validation-scheme`).
    pub names: NameValidation,
    /// Size limits.
    pub limits: Limits,
}

/// Reads a configuration file, no further than `limits.max_bytes`: a larger file (or an
/// endless one, such as a FIFO) is an `InvalidData` error without being read whole, and so is
/// text that is not UTF-8.
pub fn read_file(path: &Path, limits: &Limits) -> io::Result<String> {
    let invalid = |message: String| io::Error::new(io::ErrorKind::InvalidData, message);
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(limits.max_bytes.saturating_add(1) as u64)
        .read_to_end(&mut bytes)?;
    if bytes.len() > limits.max_bytes {
        return Err(invalid(too_large(limits.max_bytes)));
    }
    String::from_utf8(bytes).map_err(|e| invalid(format!("not UTF-8 text: {e}")))
}

/// The message for text over [`Limits::max_bytes`].
pub(crate) fn too_large(max_bytes: usize) -> String {
    format!("the configuration is larger than the limit of {max_bytes} bytes")
}

/// What has been read so far, against the limits. Shared by the seeds of one document.
pub(crate) struct Budget {
    limits: Limits,
    rules: Cell<usize>,
    subsets: Cell<usize>,
    expanded: Cell<usize>,
}

impl Budget {
    pub(crate) fn new(limits: Limits) -> Self {
        Budget {
            limits,
            rules: Cell::new(0),
            subsets: Cell::new(0),
            expanded: Cell::new(0),
        }
    }

    /// Counts a value of `len` bytes, before it is copied.
    pub(crate) fn value(&self, len: usize) -> Result<(), String> {
        let total = self
            .expanded
            .get()
            .saturating_add(len)
            .saturating_add(VALUE_OVERHEAD);
        self.expanded.set(total);
        if total > self.limits.max_expanded_bytes {
            return Err(format!(
                "the configuration holds more than {} bytes of values once YAML aliases are expanded",
                self.limits.max_expanded_bytes
            ));
        }
        Ok(())
    }

    fn rule(&self) -> Result<(), String> {
        let total = self.rules.get() + 1;
        self.rules.set(total);
        if total > self.limits.max_rules {
            return Err(format!(
                "more than {} relabel rules (all lists together, each use of a YAML alias counted)",
                self.limits.max_rules
            ));
        }
        Ok(())
    }

    fn subset(&self) -> Result<(), String> {
        let total = self.subsets.get() + 1;
        self.subsets.set(total);
        if total > self.limits.max_subsets {
            return Err(format!("more than {} subsets", self.limits.max_subsets));
        }
        Ok(())
    }
}

/// The top-level map, lists in file order (a null list is an empty list), and the value of the
/// reserved `aggregation:` key ([`crate::agg_rules::RESERVED_KEY`]), read by the aggregation
/// rules.
pub(crate) struct Document(
    pub(crate) Vec<(String, Vec<RelabelConfig>)>,
    pub(crate) Option<serde_yaml_ng::Value>,
);

/// Reads `text` as a document; `None` for an empty one (no text, only comments, or `null`).
pub(crate) fn parse_document(
    text: &str,
    budget: &Budget,
) -> Result<Option<Document>, serde_yaml_ng::Error> {
    Nullable(DocumentSeed(budget)).deserialize(serde_yaml_ng::Deserializer::from_str(text))
}

struct DocumentSeed<'b>(&'b Budget);

impl<'de> DeserializeSeed<'de> for DocumentSeed<'_> {
    type Value = Document;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Document, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for DocumentSeed<'_> {
    type Value = Document;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "a map of relabel rule lists ({DEFAULT_LIST} and named subsets)"
        )
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Document, A::Error> {
        let budget = self.0;
        let mut lists: Vec<(String, Vec<RelabelConfig>)> = Vec::new();
        let mut aggregation = None;
        while let Some(name) = map.next_key_seed(Text(budget))? {
            if name == crate::agg_rules::RESERVED_KEY {
                if aggregation.is_some() {
                    return Err(A::Error::custom(format!("duplicate key {}", Quoted(&name))));
                }
                aggregation = Some(map.next_value::<serde_yaml_ng::Value>()?);
                continue;
            }
            if lists.iter().any(|(n, _)| *n == name) {
                return Err(A::Error::custom(format!(
                    "duplicate rule list {}",
                    Quoted(&name)
                )));
            }
            if name != DEFAULT_LIST {
                budget.subset().map_err(A::Error::custom)?;
            }
            let rules = map.next_value_seed(Nullable(RuleList(budget)))?;
            lists.push((name, rules.unwrap_or_default()));
        }
        Ok(Document(lists, aggregation))
    }
}

/// A list of rules, each counted against [`Limits::max_rules`].
struct RuleList<'b>(&'b Budget);

impl<'de> DeserializeSeed<'de> for RuleList<'_> {
    type Value = Vec<RelabelConfig>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for RuleList<'_> {
    type Value = Vec<RelabelConfig>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a sequence of relabel rules")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut rules = Vec::new();
        while let Some(rule) = seq.next_element_seed(RuleSeed(self.0))? {
            self.0.rule().map_err(A::Error::custom)?;
            rules.push(rule);
        }
        Ok(rules)
    }
}

/// A string value (any scalar, read as its text: `200` is `"200"`), counted against
/// [`Limits::max_expanded_bytes`] before it is copied.
pub(crate) struct Text<'b>(pub(crate) &'b Budget);

impl<'de> DeserializeSeed<'de> for Text<'_> {
    type Value = String;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<String, D::Error> {
        deserializer.deserialize_string(self)
    }
}

impl<'de> Visitor<'de> for Text<'_> {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<String, E> {
        self.0.value(v.len()).map_err(E::custom)?;
        Ok(v.to_owned())
    }

    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<String, E> {
        self.0.value(v.len()).map_err(E::custom)?;
        Ok(v)
    }
}

/// A sequence of strings (`source_labels`), each counted as a [`Text`].
pub(crate) struct TextList<'b>(pub(crate) &'b Budget);

impl<'de> DeserializeSeed<'de> for TextList<'_> {
    type Value = Vec<String>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Vec<String>, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for TextList<'_> {
    type Value = Vec<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a sequence of strings")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<String>, A::Error> {
        let mut out = Vec::new();
        while let Some(s) = seq.next_element_seed(Text(self.0))? {
            out.push(s);
        }
        Ok(out)
    }
}

/// `S`, or `None` for a YAML null (`~`, `null`, or nothing).
pub(crate) struct Nullable<S>(pub(crate) S);

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Nullable<S> {
    type Value = Option<S::Value>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de, S: DeserializeSeed<'de>> Visitor<'de> for Nullable<S> {
    type Value = Option<S::Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a value or null")
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        self.0.deserialize(deserializer).map(Some)
    }
}
