//! The label-filter path: the only list drops labels by name and keeps or drops series by their
//! metric name ([`Program::is_label_filter`]), so a sample is decided by its names alone and
//! keyed straight from the parsed line, without being copied into a label set.
//!
//! Which labels survive depends only on the label names, and the parser tags each sample with
//! the id of its label layout ([`Sample::layout`]: same id, same plain names in the same order).
//! So the decision is made once per layout, as a [`LayoutPlan`]: the kept labels in sorted
//! order, cut into runs that can be copied from the line into the key at once
//! ([`KeyBuf::planned`]). Samples without a layout collect their kept labels on the stack.
//! Gives exactly what the general path gives for the same rules (`tests/label_filter.rs`).

use crate::aggregate::{KeyBuf, Point, Rejected};
use crate::exposition::Sample;
use crate::labels::METRIC_NAME;
use crate::relabel::aggregation::SampleKind;
use crate::relabel::Program;

use super::{Outcome, Subset};

/// Most labels a series may have for this path; more take the general path.
const MAX_LABELS: usize = 32;

/// The label filter's state, kept across samples: the plans of recent layouts, and the
/// keep/drop verdict for the last metric name (a family's samples come in a row).
#[derive(Debug, Clone, Default)]
pub(super) struct LabelFilter {
    plans: LayoutPlans,
    last_name: String,
    last_name_kept: bool,
}

impl LabelFilter {
    /// Routes `sample` through `sub`, whose program is a label filter; `None` when the series
    /// has too many labels for this path (the general path then takes it).
    #[inline]
    pub(super) fn route(
        &mut self,
        sub: &mut Subset,
        key: &mut KeyBuf,
        sample: &Sample<'_>,
        point: Point<'_>,
        kind: SampleKind,
    ) -> Option<Outcome> {
        if sub.program.filters_names() && !self.keeps_series_named(&mut sub.program, sample.name) {
            return Some(sub.drop_sample());
        }
        if sample.layout() != 0 {
            if let Some(plan) = self.plans.get(&mut sub.program, sample) {
                if !plan.keeps_name {
                    return Some(sub.reject(Rejected::Nameless));
                }
                let series = key.planned(sample, plan.order(), plan.runs());
                return Some(sub.add(sample.family, series, point, kind));
            }
        }
        if !sub.program.keeps_label(METRIC_NAME) {
            return Some(sub.reject(Rejected::Nameless));
        }
        let mut kept = [("", ""); MAX_LABELS];
        let mut n = 0;
        for (name, value) in sample.labels() {
            // An empty label value is the same as an absent label.
            if value.is_empty() || !sub.program.keeps_label(name) {
                continue;
            }
            *kept.get_mut(n)? = (name, value);
            n += 1;
        }
        let kept = &mut kept[..n];
        if !kept.is_sorted_by(|a, b| a.0 < b.0) {
            kept.sort_unstable_by(|a, b| a.0.cmp(b.0));
        }
        Some(sub.add(sample.family, key.pairs(sample.name, kept), point, kind))
    }

    /// The `keep`/`drop` verdict of `program` on series named `name`, remembered for the last
    /// name.
    #[inline]
    fn keeps_series_named(&mut self, program: &mut Program, name: &str) -> bool {
        if name != self.last_name {
            self.last_name.clear();
            self.last_name.push_str(name);
            self.last_name_kept = program.keeps_series_named(name);
        }
        self.last_name_kept
    }
}

/// What the label filter decided for one label layout ([`Sample::layout`]): which labels
/// survive, in label-name order. Decided once per layout instead of per sample, since it
/// depends on the names only.
#[derive(Debug, Clone, Copy)]
struct LayoutPlan {
    layout: u64,
    /// Whether the metric name survives (else every sample is nameless).
    keeps_name: bool,
    len: u8,
    /// Indices (input order) of the kept labels, sorted by name.
    order: [u8; MAX_LABELS],
    /// `order` cut into runs of consecutive input indices, as `(from, to)` ranges: when the
    /// input has its labels sorted, dropping one label leaves two runs, each of which can be
    /// copied from the line into the series key at once (see [`Sample::raw_labels`]).
    runs: [(u8, u8); MAX_LABELS],
    nruns: u8,
}

impl LayoutPlan {
    const EMPTY: LayoutPlan = LayoutPlan {
        layout: 0,
        keeps_name: false,
        len: 0,
        order: [0; MAX_LABELS],
        runs: [(0, 0); MAX_LABELS],
        nruns: 0,
    };

    /// The kept labels' input indices, sorted by name.
    #[inline]
    fn order(&self) -> &[u8] {
        &self.order[..usize::from(self.len)]
    }

    /// [`LayoutPlan::order`] as runs of consecutive input indices.
    #[inline]
    fn runs(&self) -> &[(u8, u8)] {
        &self.runs[..usize::from(self.nruns)]
    }
}

/// The most recent [`LayoutPlan`]s (a family alternates between a few layouts).
#[derive(Debug, Clone)]
struct LayoutPlans {
    plans: [LayoutPlan; 8],
    next: usize,
}

impl Default for LayoutPlans {
    fn default() -> Self {
        Self {
            plans: [LayoutPlan::EMPTY; 8],
            next: 0,
        }
    }
}

impl LayoutPlans {
    /// The plan of `sample`'s layout (nonzero) under `program`, a label filter; `None` when the
    /// sample has too many labels for a plan.
    #[inline]
    fn get(&mut self, program: &mut Program, sample: &Sample<'_>) -> Option<&LayoutPlan> {
        let layout = sample.layout();
        let found = self.plans.iter().position(|p| p.layout == layout);
        let at = match found {
            Some(at) => at,
            None => self.build(program, sample)?,
        };
        self.plans.get(at)
    }

    #[cold]
    fn build(&mut self, program: &mut Program, sample: &Sample<'_>) -> Option<usize> {
        let n = sample.label_count();
        if n > MAX_LABELS {
            return None;
        }
        let mut plan = LayoutPlan {
            layout: sample.layout(),
            keeps_name: program.keeps_label(METRIC_NAME),
            ..LayoutPlan::EMPTY
        };
        let name = |i: u8| sample.label_at(usize::from(i)).map_or("", |l| l.0);
        for i in 0..n as u8 {
            if program.keeps_label(name(i)) {
                plan.order[usize::from(plan.len)] = i;
                plan.len += 1;
            }
        }
        plan.order[..usize::from(plan.len)].sort_unstable_by(|&a, &b| name(a).cmp(name(b)));
        for &i in &plan.order[..usize::from(plan.len)] {
            match plan.nruns.checked_sub(1) {
                Some(last) if plan.runs[usize::from(last)].1 == i => {
                    plan.runs[usize::from(last)].1 = i + 1
                }
                _ => {
                    plan.runs[usize::from(plan.nruns)] = (i, i + 1);
                    plan.nruns += 1;
                }
            }
        }
        let at = self.next;
        self.next = (at + 1) % self.plans.len();
        *self.plans.get_mut(at)? = plan;
        Some(at)
    }
}
