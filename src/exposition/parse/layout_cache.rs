//! The label-layout cache: the label names (and metric names) of recent lines, remembered as
//! patterns of whole 8-byte words, so that the next line of the same family is checked a word
//! at a time instead of byte by byte.
//!
//! The series of a family repeat their label names in the same order (`method`, `path`,
//! `status`, `le`...), so most label names cost one or two word comparisons, which also prove
//! them valid and distinct without a duplicate check.
//!
//! Guarantees:
//! - A match never changes a result. A pattern is the exact bytes `name="` (or a metric name),
//!   compared in full, and only plain names (`[a-zA-Z_][a-zA-Z0-9_]*`) are remembered: a match
//!   accepts exactly what the general path would accept for those bytes. Lines that match no
//!   layout take the general path and are remembered in turn.
//! - Each remembered layout gets an id unique within the process ([`super::Sample::layout`]):
//!   sinks decide once per id what depends on the label names alone.
//! - The cache is bounded: [`CACHE_SLOTS`] layouts and as many metric names, each as large as
//!   the names of one line.

use std::sync::atomic::{AtomicU64, Ordering};

use super::scan::{has_class, scan_class, METRIC_CHAR};

/// A byte string stored as little-endian 8-byte words (zero-padded) in its owner's word
/// buffer, to be compared against the input a word at a time instead of through `memcmp`.
/// The words are followed by the mask of the last word's bytes, so a match need not compute it.
/// Packed into one word (first word index in bits 0..32, length in bytes in bits 32..64) for
/// the same store-forwarding reason as [`super::piece::Piece`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Pattern(u64);

impl Pattern {
    /// Index of the first word in the owner's buffer.
    #[inline(always)]
    fn word(self) -> usize {
        (self.0 & 0xffff_ffff) as usize
    }

    /// Length in bytes.
    #[inline(always)]
    pub(super) fn len(self) -> usize {
        (self.0 >> 32) as usize
    }

    /// Number of words.
    #[inline(always)]
    fn words(self) -> usize {
        self.len().div_ceil(8)
    }

    /// The words of the pattern in the owner's buffer `buf`.
    #[inline(always)]
    fn in_buf(self, buf: &[u64]) -> Option<&[u64]> {
        buf.get(self.word()..self.word() + self.words())
    }

    /// Appends `head` followed by `tail` (at most 8 bytes) to `buf` as a pattern. Names are
    /// shorter than a line, so index and length fit in 32 bits.
    fn push(buf: &mut Vec<u64>, head: &[u8], tail: &[u8]) -> Pattern {
        let word = buf.len();
        let len = head.len() + tail.len();
        buf.reserve(len / 8 + 3);
        let mut chunks = head.chunks_exact(8);
        for c in &mut chunks {
            buf.push(u64::from_le_bytes(<[u8; 8]>::try_from(c).unwrap_or([0; 8])));
        }
        // The rest of `head` (< 8 bytes) and `tail` (<= 8 bytes) fill one or two more words.
        let mut rest = [0u8; 16];
        let mut n: usize = 0;
        for (d, &s) in rest.iter_mut().zip(chunks.remainder().iter().chain(tail)) {
            *d = s;
            n += 1;
        }
        for c in rest.chunks_exact(8).take(n.div_ceil(8)) {
            buf.push(u64::from_le_bytes(<[u8; 8]>::try_from(c).unwrap_or([0; 8])));
        }
        let tail = len % 8;
        buf.push(if tail == 0 {
            u64::MAX
        } else {
            (1u64 << (tail * 8)) - 1
        });
        Pattern(word as u64 | (len as u64) << 32)
    }

    /// Whether `b[i..]` starts with this pattern (`buf` is the owner's word buffer). Needs
    /// whole words of input: near the end of the line it answers `false`, and callers take
    /// their general path.
    #[inline(always)]
    fn matches(self, buf: &[u64], b: &[u8], i: usize) -> bool {
        let with_mask = buf.get(self.word()..self.word() + self.words() + 1);
        let Some((&mask, words)) = with_mask.and_then(<[u64]>::split_last) else {
            return false;
        };
        let Some((&last, full)) = words.split_last() else {
            return false;
        };
        let mut at = i;
        for &want in full {
            if load_word(b, at) != Some(want) {
                return false;
            }
            at += 8;
        }
        load_word(b, at).is_some_and(|have| (have ^ last) & mask == 0)
    }
}

/// The 8 bytes at `b[at..]` as a little-endian word, if there are 8.
#[inline(always)]
fn load_word(b: &[u8], at: usize) -> Option<u64> {
    let w = b.get(at..at + 8)?;
    <[u8; 8]>::try_from(w).ok().map(u64::from_le_bytes)
}

/// Number of label layouts (and metric names) remembered: enough for the shapes a family
/// alternates between (`_bucket` with `le`, `_sum`, `_count`, ...).
const CACHE_SLOTS: usize = 4;

/// A remembered sequence of patterns: per label `name="`, or a single metric name.
#[derive(Debug, Default)]
pub(super) struct Layout {
    /// The patterns, in order.
    patterns: Vec<Pattern>,
    /// The words the patterns point into.
    words: Vec<u64>,
    /// Unique per fill, process-wide (see [`super::Sample::layout`]); 0 while empty.
    id: u64,
}

/// The next [`Layout::id`]: shared by all parsers, so ids never repeat within a process, and a
/// sink fed by several parsers in turn can key on them.
static NEXT_LAYOUT_ID: AtomicU64 = AtomicU64::new(1);

impl Layout {
    /// Whether pattern `k` matches at `b[i..]`.
    #[inline(always)]
    pub(super) fn matches(&self, k: usize, b: &[u8], i: usize) -> Option<Pattern> {
        let p = *self.patterns.get(k)?;
        p.matches(&self.words, b, i).then_some(p)
    }

    /// Whether the first `k` patterns are the same as those of `other`.
    fn same_prefix(&self, other: &Layout, k: usize) -> bool {
        let (Some(mine), Some(theirs)) = (self.patterns.get(..k), other.patterns.get(..k)) else {
            return false;
        };
        mine.iter().zip(theirs).all(|(&a, &b)| {
            let (Some(x), Some(y)) = (a.in_buf(&self.words), b.in_buf(&other.words)) else {
                return false;
            };
            // Inline word comparison: a call to `memcmp` costs more for these few words.
            a.len() == b.len() && x.iter().zip(y).all(|(v, w)| v == w)
        })
    }

    /// Replaces the contents with one pattern per `(head, tail)` pair.
    fn fill<'p>(&mut self, parts: impl Iterator<Item = (&'p [u8], &'p [u8])>) {
        self.patterns.clear();
        self.words.clear();
        self.id = NEXT_LAYOUT_ID.fetch_add(1, Ordering::Relaxed);
        for (head, tail) in parts {
            self.patterns
                .push(Pattern::push(&mut self.words, head, tail));
        }
    }
}

/// Label layouts of recent lines whose label names took the full check, in [`CACHE_SLOTS`]
/// slots used round robin.
#[derive(Debug, Default)]
pub(super) struct LabelLayouts {
    slots: [Layout; CACHE_SLOTS],
    /// The slot the last line matched (or filled): where the next line starts.
    last: usize,
    /// Label sets in a row that matched no remembered layout.
    misses: u32,
}

impl LabelLayouts {
    /// The slot the last line matched (or filled).
    #[inline(always)]
    pub(super) fn last(&self) -> usize {
        self.last
    }

    /// Slot `j`.
    #[inline(always)]
    pub(super) fn slot(&self, j: usize) -> Option<&Layout> {
        self.slots.get(j)
    }

    /// Another slot than `cur` that agrees with it on the first `k` patterns and whose pattern
    /// `k` matches `b[i..]`: labels that leave one layout may go on in another that shares their
    /// beginning.
    pub(super) fn switch(
        &self,
        cur: usize,
        k: usize,
        b: &[u8],
        i: usize,
    ) -> Option<(usize, Pattern)> {
        let current = self.slots.get(cur)?;
        self.slots.iter().enumerate().find_map(|(j, slot)| {
            if j == cur || !slot.same_prefix(current, k) {
                return None;
            }
            slot.matches(k, b, i).map(|p| (j, p))
        })
    }

    /// A label set matched the first `k` patterns of slot `cur` and ended there: the layout
    /// with exactly those `k` labels (`cur`, or another slot agreeing with it on them, as for
    /// `_sum` after `_bucket` with a trailing `le`) becomes the last used, and its id is the
    /// line's layout. `None` when no slot has exactly these labels.
    #[inline]
    pub(super) fn complete(&mut self, cur: usize, k: usize) -> Option<u64> {
        let j = if self.slots.get(cur)?.patterns.len() == k {
            cur
        } else {
            self.exact(cur, k)?
        };
        self.last = j;
        self.misses = 0;
        self.slots.get(j).map(|l| l.id)
    }

    /// Another slot than `cur` that agrees with it on the first `k` patterns and has no more.
    /// Out of line: only lines that end early in a layout need it.
    #[inline(never)]
    fn exact(&self, cur: usize, k: usize) -> Option<usize> {
        let current = self.slots.get(cur)?;
        self.slots.iter().enumerate().position(|(j, slot)| {
            j != cur && slot.same_prefix(current, k) && slot.patterns.len() == k
        })
    }

    /// A label set matched no layout: whether to remember it. When label sets keep changing
    /// from line to line (as in kube-state-metrics' `*_labels` series), remembering each is
    /// wasted work: then only every 8th is.
    pub(super) fn missed(&mut self) -> bool {
        self.misses = self.misses.saturating_add(1);
        self.misses <= 4 || self.misses.is_multiple_of(8)
    }

    /// Remembers a label set, given by its names, in the slot after the one used last; returns
    /// its new id. Callers pass plain names only: a pattern made from a quoted name such as
    /// `label.x` would otherwise accept `label.x="v"` unquoted, which is invalid.
    pub(super) fn remember<'p>(&mut self, names: impl Iterator<Item = &'p [u8]>) -> u64 {
        let slot = (self.last + 1) % CACHE_SLOTS;
        self.last = slot;
        match self.slots.get_mut(slot) {
            Some(layout) => {
                layout.fill(names.map(|n| (n, &b"=\""[..])));
                layout.id
            }
            None => 0,
        }
    }
}

/// Recent metric names that had to be scanned, the same way: a name seen on one of the last
/// few lines costs a word comparison or two.
#[derive(Debug, Default)]
pub(super) struct MetricNames {
    slots: [Layout; CACHE_SLOTS],
    /// The slot the last line matched (or filled).
    last: usize,
}

impl MetricNames {
    /// End of the unquoted metric name starting at `b[i]`, a metric-name start character:
    /// matched against recent names, scanned (and remembered) if none matches.
    #[inline]
    pub(super) fn name_end(&mut self, b: &[u8], i: usize) -> usize {
        let ends_here = |end: usize| !b.get(end).is_some_and(|&c| has_class(c, METRIC_CHAR));
        let last = self.last;
        if let Some(p) = self.slots.get(last).and_then(|n| n.matches(0, b, i)) {
            if ends_here(i + p.len()) {
                return i + p.len();
            }
        }
        for (j, n) in self.slots.iter().enumerate() {
            if let Some(p) = n.matches(0, b, i) {
                if j != last && ends_here(i + p.len()) {
                    self.last = j;
                    return i + p.len();
                }
            }
        }
        let end = scan_class(b, i + 1, METRIC_CHAR);
        let slot = (last + 1) % CACHE_SLOTS;
        if let Some(n) = self.slots.get_mut(slot) {
            n.fill(std::iter::once((&b[i..end], &[][..])));
        }
        self.last = slot;
        end
    }
}
