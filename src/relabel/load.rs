//! Reading a configuration document: the top-level map of lists and each list's rules, with
//! every value counted against the [`Budget`] as it is read (see [`super::budget`]).

use std::fmt;

use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};

use super::budget::{Budget, Nullable, Text};
use super::config::{RelabelConfig, RuleSeed};
use super::quote::Quoted;
use super::DEFAULT_LIST;

/// The top-level map, lists in file order (a null list is an empty list), and the value of the
/// reserved `aggregation:` key ([`crate::relabel::aggregation::RESERVED_KEY`]), read by the aggregation
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
            if name == crate::relabel::aggregation::RESERVED_KEY {
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
