//! The general path: any relabel rules, any number of lists. The sample's labels are copied
//! once into a reused [`LabelBuf`] (sorted, empty values left out), then every list runs its
//! rules on its own copy and its aggregate keys the result ([`KeyBuf::label_set`]), with
//! `le`/`quantile` in canonical form when asked.

use crate::aggregate::{KeyBuf, Point};
use crate::exposition::Sample;
use crate::labels::{LabelBuf, METRIC_NAME};
use crate::relabel::aggregation::SampleKind;

use super::float_labels::FloatLabelNormalizer;
use super::{Outcome, Subset};

/// Reused label sets of the general path.
#[derive(Debug, Clone, Default)]
pub(super) struct General {
    /// The sample's labels as parsed.
    input: LabelBuf,
    /// A copy of `input` for each list but the last, which relabels `input` itself.
    work: LabelBuf,
}

impl General {
    /// Routes `sample` through every list in `subsets`, pushing one outcome per list onto
    /// `outcomes`. `float_label` names the label whose value is keyed in canonical float text
    /// after relabeling, when the sample's family is a histogram or summary being normalized.
    #[inline]
    #[allow(clippy::too_many_arguments)]
    pub(super) fn route(
        &mut self,
        subsets: &mut [Subset],
        key: &mut KeyBuf,
        sample: &Sample<'_>,
        point: Point<'_>,
        kind: SampleKind,
        mut float_label: Option<(&mut FloatLabelNormalizer, &str)>,
        outcomes: &mut Vec<Outcome>,
    ) {
        let input = &mut self.input;
        input.clear();
        input.push(METRIC_NAME, sample.name);
        for (n, v) in sample.labels() {
            // An empty label value is the same as an absent label.
            if !v.is_empty() {
                input.push(n, v);
            }
        }
        // Prometheus relabels sorted label sets; order decides e.g. which of two labelmap
        // sources wins. Exporters nearly always write sorted labels, making this a linear check.
        input.sort();
        let Some((last, rest)) = subsets.split_last_mut() else {
            return;
        };
        for sub in rest {
            self.work.copy_from(&self.input);
            let float_label = float_label.as_mut().map(|(n, l)| (&mut **n, *l));
            outcomes.push(route_one(
                sub,
                &mut self.work,
                key,
                sample,
                point,
                kind,
                float_label,
            ));
        }
        // The last list may consume the input labels: no copy in the common single-list case.
        outcomes.push(route_one(
            last,
            &mut self.input,
            key,
            sample,
            point,
            kind,
            float_label,
        ));
    }
}

/// Runs one list's rules on `labels` and adds the survivor to its aggregate; `float_label`'s
/// value, if the survivor has it, is keyed in canonical form.
#[inline]
fn route_one(
    sub: &mut Subset,
    labels: &mut LabelBuf,
    key: &mut KeyBuf,
    sample: &Sample<'_>,
    point: Point<'_>,
    kind: SampleKind,
    float_label: Option<(&mut FloatLabelNormalizer, &str)>,
) -> Outcome {
    if !sub.program.is_empty() && !sub.program.apply(labels) {
        return sub.drop_sample();
    }
    if let Some((norm, label)) = float_label {
        // After relabeling: the rules see the upstream's text in every mode.
        if let Some(canonical) = labels.get(label).and_then(|v| norm.canonical(v)) {
            labels.set(label, canonical);
        }
    }
    labels.sort();
    // A renamed series leaves its family: it joins the family of its new name.
    let family = match labels.get(METRIC_NAME) {
        Some(n) if n == sample.name => sample.family,
        Some(n) => n,
        None => sample.family,
    };
    match key.label_set(labels) {
        Ok(series) => sub.add(family, series, point, kind),
        Err(why) => sub.reject(why),
    }
}
