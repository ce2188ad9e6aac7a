//! Family membership: which family a sample belongs to, following the last `# TYPE` (the
//! rule is in the `parse` module's documentation, under "Families"; the suffixes each type
//! claims are in [`FamilyType::suffixes`]).
//!
//! Guarantee: only the *last* `# TYPE` claims samples, and a `# HELP` or `# UNIT` for another
//! name ends its claim (that comment starts a new, untyped family), so a stale TYPE never
//! claims later samples of a family that merely shares its prefix. Samples of unrelated names
//! do not end the claim. The output groups series under their family's `# HELP` and `# TYPE`
//! by this answer, which keeps a histogram's `_bucket`, `_sum` and `_count` together.

/// Types named by `# TYPE`, as far as family membership goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum FamilyType {
    /// No `# TYPE` currently claims samples (or the type claims only its own name).
    #[default]
    Plain,
    Counter,
    Histogram,
    Summary,
    GaugeHistogram,
    Info,
}

impl FamilyType {
    /// Suffixes whose samples belong to a family of this type, besides the family name itself.
    fn suffixes(self) -> &'static [&'static str] {
        match self {
            FamilyType::Plain => &[],
            FamilyType::Counter => &["_total", "_created"],
            FamilyType::Histogram => &["_bucket", "_sum", "_count", "_created"],
            FamilyType::Summary => &["_sum", "_count", "_created"],
            FamilyType::GaugeHistogram => &["_bucket", "_gcount", "_gsum"],
            FamilyType::Info => &["_info"],
        }
    }

    /// The `# TYPE` words, with what they mean for family membership; `None` for an unknown
    /// word.
    fn from_word(word: &str) -> Option<FamilyType> {
        Some(match word {
            "counter" => FamilyType::Counter,
            "histogram" => FamilyType::Histogram,
            "summary" => FamilyType::Summary,
            "gaugehistogram" => FamilyType::GaugeHistogram,
            "info" => FamilyType::Info,
            "gauge" | "untyped" | "unknown" | "stateset" => FamilyType::Plain,
            _ => return None,
        })
    }
}

/// The claim of the last `# TYPE` line on the samples that follow it.
#[derive(Debug, Default)]
pub(super) struct Families {
    /// Family named by the last `# TYPE` (empty: none).
    family: String,
    /// Its type.
    kind: FamilyType,
}

impl Families {
    /// Forgets the claim, for a new input (keeps the buffer).
    pub(super) fn reset(&mut self) {
        self.family.clear();
        self.kind = FamilyType::Plain;
    }

    /// `# TYPE family word`: `family` claims the samples that follow. `false`, and nothing
    /// changes, when `word` names no known type.
    pub(super) fn typed(&mut self, family: &str, word: &str) -> bool {
        let Some(kind) = FamilyType::from_word(word) else {
            return false;
        };
        self.family.clear();
        self.family.push_str(family);
        self.kind = kind;
        true
    }

    /// `# HELP` or `# UNIT` for `family`: about another name, it ends the current claim.
    pub(super) fn described(&mut self, family: &str) {
        if family != self.family {
            self.reset();
        }
    }

    /// The family `name` belongs to under the current claim: the claiming family, or `name`
    /// itself.
    #[inline]
    pub(super) fn family_of<'n>(&'n self, name: &'n str) -> &'n str {
        if self.family.is_empty() {
            return name;
        }
        let fam = self.family.as_str();
        match name.strip_prefix(fam) {
            Some("") => fam,
            Some(suffix) if self.kind.suffixes().contains(&suffix) => fam,
            _ => name,
        }
    }
}
