//! The key of an output series: its rendered text, built from whichever form the labels are in.
//!
//! A series' key is `name{a="x",b="y"}` with its labels sorted by name, exactly as
//! [`write_series`] renders it: the canonical form to compare on and the bytes the output needs.
//! The pipeline holds a sample's labels in one of three forms, and each has its own way to the
//! same key; all of them live here, so that "what is a series key" has one answer:
//!
//! - a relabeled [`LabelBuf`] (the general path): [`KeyBuf::label_set`];
//! - the metric name and borrowed `(name, value)` pairs (the label filter without a layout
//!   plan): [`KeyBuf::pairs`];
//! - the labels of a parsed [`Sample`] chosen by a layout plan (the label filter): runs of
//!   labels are copied from the line at once when they stand there as they render, else
//!   written with the checks the parser already did skipped: [`KeyBuf::planned`].

use crate::exposition::render::{write_series, write_series_checked};
use crate::exposition::Sample;
use crate::labels::{LabelBuf, METRIC_NAME};
use crate::limits::{LabelLimits, LimitError};

use super::Rejected;

/// A reused buffer in which the key of one series at a time is built. Building a key allocates
/// only while the buffer grows to the longest key seen.
#[derive(Debug, Clone, Default)]
pub struct KeyBuf {
    bytes: Vec<u8>,
}

/// An output series as [`super::Aggregator::add`] takes it: its key, and its labels for the
/// label limits, which are read only when the key names a series the aggregator does not hold
/// yet.
#[derive(Debug, Clone)]
pub struct SeriesKey<'a, L> {
    bytes: &'a [u8],
    name: &'a str,
    /// The labels other than `__name__`, none with an empty value.
    labels: L,
}

impl<'a, L> SeriesKey<'a, L>
where
    L: Iterator<Item = (&'a str, &'a str)> + Clone,
{
    /// The rendered series text.
    #[inline]
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The metric name.
    #[inline]
    pub fn name(&self) -> &'a str {
        self.name
    }

    /// The labels other than `__name__`, none with an empty value.
    #[inline]
    pub fn labels(&self) -> L {
        self.labels.clone()
    }

    /// Checks the series against `limits` (done once, when its output series is created).
    pub(super) fn check(&self, limits: &LabelLimits) -> Result<(), LimitError> {
        if limits.is_unlimited() || self.too_short_to_break(limits) {
            return Ok(());
        }
        let count = self.labels.clone().count();
        limits.check_labels(self.name, count, self.labels.clone())
    }
}

impl<L> SeriesKey<'_, L> {
    /// True when the key is too short for the series to break `limits`, so that checking it
    /// need not walk its labels (with the default limits, every real series): each name and
    /// value is written in the key, none shorter than it is (escaping only lengthens), except
    /// the name `__name__`; and each label takes at least 6 bytes of it (`,a="x"`: a label with
    /// an empty value is neither written nor counted).
    #[inline]
    fn too_short_to_break(&self, limits: &LabelLimits) -> bool {
        let n = self.bytes.len();
        let within = |limit: usize, longest: usize| limit == 0 || longest <= limit;
        within(limits.name_length, n.max(METRIC_NAME.len()))
            && within(limits.value_length, n)
            && within(limits.labels, n / 6 + 1)
    }
}

impl KeyBuf {
    /// An empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// The key of a relabeled label set, which must be sorted by name. Rejected when it has no
    /// metric name (or an empty one), or a label with an empty name (`labelmap` can make one,
    /// and no exposition format can carry it).
    #[inline]
    pub fn label_set<'a>(
        &'a mut self,
        labels: &'a LabelBuf,
    ) -> Result<SeriesKey<'a, impl Iterator<Item = (&'a str, &'a str)> + Clone + 'a>, Rejected>
    {
        let all = labels.as_slice();
        let name_at = match labels.position(METRIC_NAME) {
            Some(i) if !all[i].value.is_empty() => i,
            _ => return Err(Rejected::Nameless),
        };
        if all.iter().any(|l| l.name.is_empty()) {
            return Err(Rejected::InvalidLabel);
        }
        let name = all[name_at].value.as_str();
        let others = all
            .iter()
            .enumerate()
            .filter(move |&(i, _)| i != name_at)
            .map(|(_, l)| (l.name.as_str(), l.value.as_str()));
        self.bytes.clear();
        write_series(&mut self.bytes, name, others.clone());
        Ok(SeriesKey {
            bytes: &self.bytes,
            name,
            labels: others,
        })
    }

    /// The key of a series given as its metric name and its other labels as borrowed pairs,
    /// sorted by name, none with an empty value.
    #[inline]
    pub fn pairs<'a>(
        &'a mut self,
        name: &'a str,
        labels: &'a [(&'a str, &'a str)],
    ) -> SeriesKey<'a, impl Iterator<Item = (&'a str, &'a str)> + Clone + 'a> {
        self.bytes.clear();
        write_series(&mut self.bytes, name, labels.iter().copied());
        SeriesKey {
            bytes: &self.bytes,
            name,
            labels: labels.iter().copied(),
        }
    }

    /// The key of `sample` keeping the labels `order` (indices in input order, sorted by label
    /// name), for a sample with a nonzero [`Sample::layout`] (all label names plain).
    ///
    /// `runs` is `order` cut into ranges of consecutive input indices, `(from, to)`. When the
    /// metric name was written bare and every run stands in the line exactly as it renders
    /// ([`Sample::raw_labels`]), the key is the name plus one copy per run: dropping one label
    /// from a sorted label block leaves two runs. Otherwise it is written label by label,
    /// skipping the escaping checks for values the parser saw no escape in.
    #[inline]
    pub fn planned<'a>(
        &'a mut self,
        sample: &'a Sample<'a>,
        order: &'a [u8],
        runs: &[(u8, u8)],
    ) -> SeriesKey<'a, impl Iterator<Item = (&'a str, &'a str)> + Clone + 'a> {
        let labels = order
            .iter()
            .filter_map(move |&i| sample.label_at(usize::from(i)));
        if !(sample.plain_name() && self.write_runs(sample, runs)) {
            self.bytes.clear();
            write_series_checked(
                &mut self.bytes,
                sample.name,
                sample.plain_name(),
                labels.clone(),
            );
        }
        debug_assert!(
            {
                let mut want = Vec::new();
                write_series_checked(&mut want, sample.name, sample.plain_name(), labels.clone());
                want == self.bytes
            },
            "key {:?} is not the rendered series",
            String::from_utf8_lossy(&self.bytes)
        );
        SeriesKey {
            bytes: &self.bytes,
            name: sample.name,
            labels: labels
                .filter(|l| !l.1.is_empty())
                .map(|(name, value, _)| (name, value)),
        }
    }

    /// Writes the name of `sample` and its label `runs` as they stand in the input; false (with
    /// the buffer undefined) when some run does not stand there as it renders.
    #[inline]
    fn write_runs(&mut self, sample: &Sample<'_>, runs: &[(u8, u8)]) -> bool {
        let key = &mut self.bytes;
        key.clear();
        key.extend_from_slice(sample.name.as_bytes());
        let mut sep = b'{';
        for &(from, to) in runs {
            let Some(raw) = sample.raw_labels(usize::from(from), usize::from(to)) else {
                return false;
            };
            key.push(sep);
            sep = b',';
            key.extend_from_slice(raw);
        }
        if sep == b',' {
            key.push(b'}');
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_gives_the_rendered_series() {
        let mut key = KeyBuf::new();
        let mut set = LabelBuf::new();
        for (n, v) in [("__name__", "req"), ("code", "200"), ("path", "a\"b")] {
            set.push(n, v);
        }
        let want = "req{code=\"200\",path=\"a\\\"b\"}";
        assert_eq!(key.label_set(&set).unwrap().as_bytes(), want.as_bytes());
        let pairs = [("code", "200"), ("path", "a\"b")];
        assert_eq!(key.pairs("req", &pairs).as_bytes(), want.as_bytes());
    }

    #[test]
    fn label_sets_without_name_or_with_empty_names_are_rejected() {
        let mut key = KeyBuf::new();
        let mut set = LabelBuf::new();
        set.push("a", "1");
        assert_eq!(key.label_set(&set).err(), Some(Rejected::Nameless));
        set.push("__name__", "");
        assert_eq!(key.label_set(&set).err(), Some(Rejected::Nameless));
        set.clear();
        set.push("", "1");
        set.push("__name__", "x");
        assert_eq!(key.label_set(&set).err(), Some(Rejected::InvalidLabel));
    }

    #[test]
    fn limits_see_the_labels_without_name() {
        let mut key = KeyBuf::new();
        let pairs = [("a", "1"), ("b", "2")];
        let series = key.pairs("x", &pairs);
        let two = LabelLimits {
            labels: 2,
            ..LabelLimits::UNLIMITED
        };
        let three = LabelLimits { labels: 3, ..two };
        assert!(series.check(&two).is_err(), "__name__ counts as a label");
        assert!(series.check(&three).is_ok());
    }

    #[test]
    fn short_keys_skip_the_label_walk_only_when_no_limit_can_break() {
        let mut key = KeyBuf::new();
        let pairs = [("a", "1"), ("bb", "22")];
        let series = key.pairs("up", &pairs);
        // `up{a="1",bb="22"}`: 17 bytes, 3 labels with `__name__`.
        let limits = |labels, name_length, value_length| LabelLimits {
            labels,
            name_length,
            value_length,
        };
        assert!(series.too_short_to_break(&limits(256, 1024, 65536)));
        assert!(series.too_short_to_break(&limits(3, 17, 17)));
        for tight in [
            limits(2, 0, 0),
            limits(0, 7, 0),
            limits(0, 0, 1),
            limits(0, 1, 0),
        ] {
            assert!(!series.too_short_to_break(&tight), "{tight:?}");
        }
        // The walk decides what the bound cannot.
        assert!(series.check(&limits(3, 8, 2)).is_ok());
        assert!(series.check(&limits(0, 0, 1)).is_err());
        assert!(
            series.check(&limits(0, 7, 0)).is_err(),
            "__name__ is 8 bytes"
        );
    }
}
