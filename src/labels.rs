//! A reusable, owned label set: what relabeling reads and writes, and what aggregation keys on.
//!
//! [`LabelBuf`] keeps its `String`s alive between uses: `clear()` only resets a length, so
//! filling it again for the next series reuses the same heap buffers. In steady state, copying
//! a parsed series into it, relabeling it and keying it allocates nothing.

/// The label holding the metric name, as in Prometheus.
pub const METRIC_NAME: &str = "__name__";

/// One label: name and (unescaped) value.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Label {
    /// Label name, e.g. `method` or `__name__`.
    pub name: String,
    /// Label value, unescaped. An empty value means "absent" in Prometheus.
    pub value: String,
}

/// An owned label set whose storage is reused across series.
///
/// Labels are kept in insertion order until [`LabelBuf::sort`] is called; lookups are linear,
/// which beats hashing for the handful of labels a series carries. Names are unique: [`set`]
/// replaces an existing label of the same name.
///
/// [`set`]: LabelBuf::set
#[derive(Debug, Clone)]
pub struct LabelBuf {
    /// `items[..len]` are live; `items[len..]` are spare slots whose `String` capacity is kept.
    items: Vec<Label>,
    len: usize,
    /// True while the live labels are known to be sorted by name: pushes check it against the
    /// previous name, removals cannot break it, so [`LabelBuf::sort`] is usually free.
    sorted: bool,
}

impl Default for LabelBuf {
    fn default() -> Self {
        Self {
            items: Vec::new(),
            len: 0,
            sorted: true,
        }
    }
}

/// Orders label names; cheaper than `str::cmp` for the usual case where names differ in their
/// first byte.
#[inline]
fn cmp_names(a: &str, b: &str) -> std::cmp::Ordering {
    match (a.as_bytes().first(), b.as_bytes().first()) {
        (Some(x), Some(y)) if x != y => x.cmp(y),
        _ => a.cmp(b),
    }
}

impl LabelBuf {
    /// An empty label set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Removes every label, keeping the storage for reuse.
    #[inline]
    pub fn clear(&mut self) {
        self.len = 0;
        self.sorted = true;
    }

    /// Number of live labels.
    #[inline]
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the set holds no label.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The live labels, in their current order.
    #[inline]
    pub fn as_slice(&self) -> &[Label] {
        &self.items[..self.len]
    }

    /// Iterates over `(name, value)` pairs.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.as_slice()
            .iter()
            .map(|l| (l.name.as_str(), l.value.as_str()))
    }

    /// Appends a label without checking for an existing one of the same name.
    ///
    /// For filling the set from a parsed series, whose names the parser has already checked for
    /// duplicates. Reuses a spare slot's storage when there is one.
    #[inline]
    pub fn push(&mut self, name: &str, value: &str) {
        if self.len == self.items.len() {
            self.items.push(Label::default());
        }
        if self.sorted && self.len > 0 {
            self.sorted = cmp_names(&self.items[self.len - 1].name, name).is_lt();
        }
        let slot = &mut self.items[self.len];
        slot.name.clear();
        slot.name.push_str(name);
        slot.value.clear();
        slot.value.push_str(value);
        self.len += 1;
    }

    /// The value of label `name`, if present. An absent label reads as `None`; callers that
    /// follow Prometheus treat that the same as `Some("")`.
    #[inline]
    pub fn get(&self, name: &str) -> Option<&str> {
        self.as_slice()
            .iter()
            .find(|l| l.name == name)
            .map(|l| l.value.as_str())
    }

    /// The value of label `name`, or `""` when absent (Prometheus' reading of a missing label).
    #[inline]
    pub fn get_or_empty(&self, name: &str) -> &str {
        self.get(name).unwrap_or("")
    }

    /// Sets `name` to `value`, replacing an existing label of that name. An empty `value`
    /// removes the label, as Prometheus does.
    pub fn set(&mut self, name: &str, value: &str) {
        if value.is_empty() {
            self.remove(name);
            return;
        }
        if let Some(l) = self.items[..self.len].iter_mut().find(|l| l.name == name) {
            l.value.clear();
            l.value.push_str(value);
            return;
        }
        self.push(name, value);
    }

    /// Removes label `name` if present; keeps the relative order of the others.
    pub fn remove(&mut self, name: &str) {
        if let Some(i) = self.as_slice().iter().position(|l| l.name == name) {
            self.remove_at(i);
        }
    }

    /// Keeps only the labels for which `keep` returns true; keeps their relative order.
    pub fn retain(&mut self, mut keep: impl FnMut(&Label) -> bool) {
        let mut i = 0;
        while i < self.len {
            if keep(&self.items[i]) {
                i += 1;
            } else {
                self.remove_at(i);
            }
        }
    }

    /// Removes the label at `i`, moving its storage to the spare slots.
    fn remove_at(&mut self, i: usize) {
        // Rotate the removed slot to the end of the live range so its Strings stay allocated.
        self.items[i..self.len].rotate_left(1);
        self.len -= 1;
    }

    /// Sorts the labels by name (Prometheus' canonical order; `__name__` sorts first among the
    /// usual names because `_` precedes lowercase letters).
    pub fn sort(&mut self) {
        if !self.sorted {
            self.items[..self.len].sort_unstable_by(|a, b| cmp_names(&a.name, &b.name));
            self.sorted = true;
        }
    }

    /// Index of label `name` among the live labels.
    #[inline]
    pub fn position(&self, name: &str) -> Option<usize> {
        self.as_slice().iter().position(|l| l.name == name)
    }

    /// Replaces the content with a copy of `other`, reusing storage.
    pub fn copy_from(&mut self, other: &LabelBuf) {
        self.clear();
        for l in other.as_slice() {
            self.push(&l.name, &l.value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_flag_tracks_pushes() {
        let mut b = LabelBuf::new();
        b.push("__name__", "x");
        b.push("a", "1");
        b.push("b", "2");
        assert!(b.sorted);
        b.push("B", "3");
        assert!(!b.sorted);
        b.sort();
        assert_eq!(
            b.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            vec!["B", "__name__", "a", "b"]
        );
        b.clear();
        b.push("ab", "1");
        b.push("aa", "2");
        b.sort();
        assert_eq!(
            b.iter().map(|(n, _)| n).collect::<Vec<_>>(),
            vec!["aa", "ab"]
        );
    }

    #[test]
    fn set_replaces_and_empty_removes() {
        let mut b = LabelBuf::new();
        b.push("a", "1");
        b.push("b", "2");
        b.set("a", "3");
        assert_eq!(b.get("a"), Some("3"));
        b.set("b", "");
        assert_eq!(b.get("b"), None);
        assert_eq!(b.len(), 1);
        b.set("c", "4");
        assert_eq!(b.iter().collect::<Vec<_>>(), vec![("a", "3"), ("c", "4")]);
    }

    #[test]
    fn retain_keeps_order_and_storage() {
        let mut b = LabelBuf::new();
        for (n, v) in [("z", "1"), ("y", "2"), ("x", "3"), ("w", "4")] {
            b.push(n, v);
        }
        b.retain(|l| l.name != "y" && l.name != "w");
        assert_eq!(b.iter().collect::<Vec<_>>(), vec![("z", "1"), ("x", "3")]);
        b.sort();
        assert_eq!(b.iter().collect::<Vec<_>>(), vec![("x", "3"), ("z", "1")]);
        // Spare slots are reused: four slots exist although two are live.
        assert_eq!(b.items.len(), 4);
        b.clear();
        assert!(b.is_empty());
    }
}
