//! Cache replay: a series the [`SeriesCache`] knows (a repeat scrape) gets the outcomes it got
//! before, list by list, without relabeling or building a key.
//!
//! Two ways in. [`replay`] takes a parsed [`Sample`] whose series text the cache found (the
//! series came out of the usual order). [`replay_known`] is the fast path of a repeat scrape:
//! the cache expects a series next (the one after its last hit), the parser takes as many bytes
//! of the line as that series' text had, hashes them without parsing the label block, and the
//! cache confirms the hash ([`crate::exposition::Sink::known_sample`]). A hit there costs a scan
//! to the value, one hash and one compare, not a parse.
//!
//! Why the fast path may skip the labels: a hit means the bytes are exactly (to a 128-bit hash)
//! the series text of a sample this pipeline parsed in full before, in the same family and
//! float-label context (both are in the key). That parse checked everything the labels must
//! pass: syntax and escapes, the parser's label limit (`--label-limit` on input series when no
//! rule changes labels) and duplicate label names; a series over an output label limit is never
//! remembered, so it is parsed and checked again every scrape. What does depend on the scrape is
//! still done per sample on both ways: the duplicate-series check (a series twice in one
//! response keeps its first sample), the sample count, and the counter record, whose input
//! group the cache kept for series whose labels are not parsed.

use crate::aggregate::Point;
use crate::exposition::{KnownSample, Sample};

use super::series_cache::{Remembered, SeriesCache, NO_GROUP};
use super::{group_of, observe, point, Outcome, Subset};

/// The cache key of a series text of a sample of `family`. `float_label` is the label whose
/// value the pipeline normalizes in this sample, if any: the same series text is treated
/// differently inside and outside its family's `# TYPE` block, so the key depends on it too.
#[inline]
pub(super) fn cache_key(
    cache: &mut SeriesCache,
    series_text: &[u8],
    family: &str,
    float_label: Option<&str>,
) -> u128 {
    cache.key_of(series_text, family.len(), context(float_label))
}

/// The context word of a series' key: which label value, if any, the pipeline normalizes.
#[inline]
pub(super) fn context(float_label: Option<&str>) -> u32 {
    match float_label {
        None => 0,
        Some("le") => 1,
        Some(_) => 2,
    }
}

/// Replays `outcomes`, one per list, for `sample` (whose cache key is `key`), recording it for
/// the counters of the lists that track them.
#[inline]
pub(super) fn replay(
    subsets: &mut [Subset],
    outcomes: Remembered<'_>,
    sample: &Sample<'_>,
    key: u128,
) {
    let mut group = None;
    replay_outcomes(subsets, outcomes, point(sample), key, || {
        *group.get_or_insert_with(|| group_of(sample))
    });
}

/// Replays `outcomes` for a sample whose labels were not parsed (see the module docs), with the
/// input `group` the cache kept for it.
#[inline]
pub(super) fn replay_known(
    subsets: &mut [Subset],
    outcomes: Remembered<'_>,
    sample: &KnownSample<'_>,
    key: u128,
    group: u64,
) {
    let point = Point {
        value: sample.value,
        text: sample.value_text,
        timestamp_ms: sample.timestamp_ms,
    };
    replay_outcomes(subsets, outcomes, point, key, || {
        // Asked only for lists that track counters, whose pipeline keeps a group per entry.
        debug_assert_ne!(group, NO_GROUP, "a counter-tracking cache keeps groups");
        group
    });
}

/// Adds `point` as each list's remembered outcome says; `group` gives the sample's input group
/// when a counter record needs it.
#[inline(always)]
fn replay_outcomes(
    subsets: &mut [Subset],
    outcomes: Remembered<'_>,
    point: Point<'_>,
    key: u128,
    mut group: impl FnMut() -> u64,
) {
    outcomes.for_each(subsets, |sub, outcome| match outcome {
        Outcome::Slot(slot) => {
            sub.aggregator.add_to_slot(slot, point);
            observe(sub, key, outcome, point.value, &mut group);
        }
        Outcome::Dropped => {
            sub.drop_sample();
        }
        Outcome::Rejected(why) => {
            sub.reject(why);
        }
    });
}
