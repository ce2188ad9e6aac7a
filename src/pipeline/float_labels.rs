//! `le` and `quantile` keyed by value in one pipeline that reads several targets' bodies
//! (see [`super::Pipeline::normalize_float_labels`]). The server merges targets' aggregates
//! instead, and compares bounds there ([`crate::aggregate::Aggregator::merge_targets`]).

pub use crate::aggregate::canonical_float_text;

/// Gives float label values their canonical text, with a bounded memo: a scrape has a handful
/// of distinct bucket bounds, so this is a lookup per sample.
#[derive(Debug, Clone, Default)]
pub(super) struct FloatLabelNormalizer {
    /// Value text -> its canonical text, or `None` when it is canonical already or no float.
    memo: hashbrown::HashMap<String, Option<String>, foldhash::fast::FixedState>,
}

impl FloatLabelNormalizer {
    const MEMO_CAP: usize = 4096;

    /// The canonical text of `v` when it differs from `v`; `None` when `v` is canonical
    /// already, or not a float.
    pub(super) fn canonical(&mut self, v: &str) -> Option<&str> {
        if !self.memo.contains_key(v) {
            if self.memo.len() >= Self::MEMO_CAP {
                self.memo.clear();
            }
            let canonical = canonical_float_text(v).filter(|c| c != v);
            self.memo.insert(v.to_owned(), canonical);
        }
        self.memo.get(v)?.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_only_when_different() {
        let mut n = FloatLabelNormalizer::default();
        assert_eq!(n.canonical("1"), Some("1.0"));
        assert_eq!(n.canonical("1.0"), None);
        assert_eq!(n.canonical("0.250"), Some("0.25"));
        assert_eq!(n.canonical("x"), None);
    }
}
