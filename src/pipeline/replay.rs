//! Cache replay: a series the [`SeriesCache`] knows (a repeat scrape) gets the outcomes it got
//! before, list by list, without relabeling or building a key.

use crate::exposition::Sample;

use super::series_cache::{Remembered, SeriesCache};
use super::{observe, point, Outcome, Subset};

/// The cache key of `sample`. `float_label` is the label whose value the pipeline normalizes in
/// this sample, if any: the same series text is treated differently inside and outside its
/// family's `# TYPE` block, so the key depends on it too.
#[inline]
pub(super) fn cache_key(sample: &Sample<'_>, float_label: Option<&str>) -> u128 {
    let context = match float_label {
        None => 0,
        Some("le") => 1,
        Some(_) => 2,
    };
    SeriesCache::key(sample.series_text, sample.family.len(), context)
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
    let point = point(sample);
    let mut group = None;
    outcomes.for_each(subsets, |sub, outcome| match outcome {
        Outcome::Slot(slot) => {
            sub.aggregator.add_to_slot(slot, point);
            observe(sub, key, outcome, sample, &mut group);
        }
        Outcome::Dropped => {
            sub.drop_sample();
        }
        Outcome::Rejected(why) => {
            sub.reject(why);
        }
    });
}
