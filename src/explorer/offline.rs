//! The explorer as one offline file (`--file PATH --html OUT.html`).
//!
//! A file cannot ask a server for what-ifs, so the interesting ones are computed in advance, by
//! the real pipeline: the pass-through run (the baseline) and dropping each label name of the
//! body alone. The page combines them only where that is exact: per metric, dropping several
//! labels of which at most one occurs in the metric is dropping that one. Combinations that
//! touch the same metric twice need the server (or `--file --apply`), and the page says so.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use hashbrown::HashMap;

use super::api::{OfflineWhatIf, PageData, QueryJson, Scenario, PAGE_DATA_VERSION};
use super::page::render_page;
use super::whatif::{
    analyze_bodies, check_size, feed, Trial, WhatIf, WhatIfOptions, WhatIfRequest,
};
use super::ExplorerError;

/// Most label names whose drop is precomputed (those carried by the most series first); the
/// rest are listed in [`OfflineWhatIf::skipped`]. Each costs one pass over the body.
pub const MAX_PRECOMPUTED_LABELS: usize = 64;

/// Settings of [`write_html`].
#[derive(Debug, Clone)]
pub struct HtmlOptions {
    /// Shown as the page's source (the file name).
    pub source: String,
    /// Parser settings and limits ([`WhatIfOptions::max_body_bytes`] bounds the file read).
    pub what_if: WhatIfOptions,
    /// Most label drops precomputed ([`MAX_PRECOMPUTED_LABELS`] by default).
    pub max_labels: usize,
}

impl Default for HtmlOptions {
    fn default() -> Self {
        Self {
            source: String::new(),
            what_if: WhatIfOptions::default(),
            max_labels: MAX_PRECOMPUTED_LABELS,
        }
    }
}

/// What [`write_html`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HtmlSummary {
    /// Series in the body.
    pub series: u64,
    /// Metric names profiled.
    pub metrics: u64,
    /// Label drops precomputed.
    pub labels: usize,
    /// Label names left out of the precomputation.
    pub skipped: usize,
    /// Bytes of the page.
    pub bytes: usize,
}

/// Reads a body (at most `opts.what_if.max_body_bytes`) and writes the explorer page for it to
/// `out`: the profile, and the what-if of dropping each label computed by the real pipeline.
/// The page is one self-contained HTML document that makes no network request.
pub fn write_html<R: Read, W: Write>(
    reader: R,
    opts: &HtmlOptions,
    mut out: W,
) -> Result<HtmlSummary, ExplorerError> {
    let body = read_capped(reader, opts.what_if.max_body_bytes)?;
    let data = offline_page_data(&body, opts)?;
    let html = render_page(&data);
    out.write_all(html.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| ExplorerError::Io(format!("writing the page: {e}")))?;
    let (series, metrics) = data
        .profile
        .as_ref()
        .map_or((0, 0), |p| (p.totals.series, p.totals.metrics));
    let (labels, skipped) = data
        .offline
        .as_ref()
        .map_or((0, 0), |o| (o.singles.len(), o.skipped.len()));
    Ok(HtmlSummary {
        series,
        metrics,
        labels,
        skipped,
        bytes: html.len(),
    })
}

/// Reads all of `reader`, failing once it yields more than `limit` bytes.
fn read_capped<R: Read>(reader: R, limit: u64) -> Result<Vec<u8>, ExplorerError> {
    let mut body = Vec::new();
    reader
        .take(limit.saturating_add(1))
        .read_to_end(&mut body)
        .map_err(|e| ExplorerError::Io(format!("read error: {e}")))?;
    if body.len() as u64 > limit {
        return Err(ExplorerError::TooLarge {
            size: body.len() as u64,
            limit,
        });
    }
    Ok(body)
}

/// The data of the offline page for `body`.
pub(crate) fn offline_page_data(
    body: &[u8],
    opts: &HtmlOptions,
) -> Result<PageData, ExplorerError> {
    let wopts = &opts.what_if;
    check_size(&[body], wopts)?;
    let nothing = WhatIfRequest::drop(Vec::<String>::new());
    let report = analyze_bodies(&[body], Some(&nothing), wopts)?;
    let profile = report.profile;
    let baseline = report
        .whatif
        .as_ref()
        .map(baseline_scenario)
        .unwrap_or_default();

    // Label names by the series that carry them, most first.
    let mut carried: HashMap<&str, u64> = HashMap::new();
    for m in &profile.metrics {
        for l in &m.labels {
            *carried.entry(l.name.as_str()).or_default() += l.series;
        }
    }
    let mut labels: Vec<(&str, u64)> = carried.into_iter().collect();
    labels.sort_unstable_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    let skipped: Vec<String> = labels
        .iter()
        .skip(opts.max_labels)
        .map(|l| l.0.to_owned())
        .collect();

    let todo: Vec<&str> = labels.iter().take(opts.max_labels).map(|l| l.0).collect();
    let singles = run_singles(body, &todo, wopts, &baseline)?;

    Ok(PageData {
        version: PAGE_DATA_VERSION,
        mode: "offline",
        source: opts.source.clone(),
        query: QueryJson::default(),
        profile: Some(profile),
        whatif: None,
        error: None,
        notes: Vec::new(),
        offline: Some(OfflineWhatIf {
            baseline,
            singles,
            skipped,
        }),
    })
}

/// Most passes run at once, and the memory they may take together: each holds the summed
/// output, up to the size of the body.
const MAX_THREADS: usize = 4;
const PARALLEL_MEMORY: usize = 1 << 30;

/// The scenario of dropping each of `labels` alone, on a few threads (each pass is independent
/// and reads the same body).
fn run_singles(
    body: &[u8],
    labels: &[&str],
    wopts: &WhatIfOptions,
    baseline: &Scenario,
) -> Result<BTreeMap<String, Scenario>, ExplorerError> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(MAX_THREADS)
        .min((PARALLEL_MEMORY / body.len().max(1)).max(1))
        .min(labels.len().max(1));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<Vec<(usize, Result<Scenario, ExplorerError>)>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(label) = labels.get(i) else {
                            return done;
                        };
                        let r = single(body, label, wopts, baseline);
                        let failed = r.is_err();
                        done.push((i, r));
                        if failed {
                            // Stop taking work; the first error is reported.
                            next.store(labels.len(), std::sync::atomic::Ordering::Relaxed);
                            return done;
                        }
                    }
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_default())
            .collect()
    });
    let mut all: Vec<(usize, Result<Scenario, ExplorerError>)> =
        results.into_iter().flatten().collect();
    all.sort_unstable_by_key(|(i, _)| *i);
    let mut singles = BTreeMap::new();
    for (i, r) in all {
        singles.insert(labels[i].to_owned(), r?);
    }
    if singles.len() != labels.len() {
        return Err(ExplorerError::Io("a what-if pass did not finish".into()));
    }
    Ok(singles)
}

/// The scenario of dropping `label` alone: what differs from `baseline`.
fn single(
    body: &[u8],
    label: &str,
    wopts: &WhatIfOptions,
    baseline: &Scenario,
) -> Result<Scenario, ExplorerError> {
    let mut trial = Trial::new(&WhatIfRequest::drop([label]), wopts)?;
    feed(&[body], &wopts.parse, wopts.deadline, &mut trial)?;
    let outcome = trial.finish(wopts.budget)?;
    let mut metrics: BTreeMap<String, [u64; 2]> = BTreeMap::new();
    let mut present = hashbrown::HashSet::with_capacity(outcome.profile.metrics.len());
    for m in &outcome.profile.metrics {
        present.insert(m.name.as_str());
        let now = [m.series, m.bytes];
        if baseline.metrics.get(&m.name) != Some(&now) {
            metrics.insert(m.name.clone(), now);
        }
    }
    // A metric whose series all went (not possible by dropping an ordinary label, but kept
    // exact should a drop leave series nameless).
    for name in baseline.metrics.keys() {
        if !present.contains(name.as_str()) {
            metrics.insert(name.clone(), [0, 0]);
        }
    }
    Ok(Scenario {
        series: outcome.series,
        bytes: outcome.bytes,
        summed: outcome.summed,
        metrics,
    })
}

fn baseline_scenario(w: &WhatIf) -> Scenario {
    Scenario {
        series: w.totals.series_after,
        bytes: w.totals.bytes_after,
        summed: w.totals.summed,
        metrics: w
            .metrics
            .iter()
            .filter(|m| m.series_after > 0)
            .map(|m| (m.name.clone(), [m.series_after, m.bytes_after]))
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::explorer::what_if;

    const SMALL: &[u8] = include_bytes!("../../testdata/ingress_small.prom");

    fn data() -> PageData {
        offline_page_data(
            SMALL,
            &HtmlOptions {
                source: "ingress_small.prom".into(),
                ..HtmlOptions::default()
            },
        )
        .unwrap()
    }

    /// Every single-label scenario equals the what-if of dropping that label, and combining
    /// the baseline with a single's metric changes gives that single's totals back.
    #[test]
    fn singles_are_the_real_what_ifs() {
        let d = data();
        let off = d.offline.as_ref().unwrap();
        assert!(off.skipped.is_empty());
        let profile = d.profile.as_ref().unwrap();
        assert_eq!(off.baseline.series, profile.totals.series);
        assert!(off.singles.contains_key("path"));
        assert!(off.singles.contains_key("controller_pod"));
        for (label, s) in &off.singles {
            let w = what_if(
                SMALL,
                &WhatIfRequest::drop([label]),
                &WhatIfOptions::default(),
            )
            .unwrap();
            assert_eq!(s.series, w.totals.series_after, "{label}");
            assert_eq!(s.bytes, w.totals.bytes_after, "{label}");
            assert_eq!(s.summed, w.totals.summed, "{label}");
            let mut series = off.baseline.series;
            let mut bytes = off.baseline.bytes;
            for (name, [ms, mb]) in &s.metrics {
                let [bs, bb] = off.baseline.metrics[name];
                series = series - bs + ms;
                bytes = bytes - bb + mb;
            }
            assert_eq!((series, bytes), (s.series, s.bytes), "{label}");
            // Only metrics that carry the label change.
            for name in s.metrics.keys() {
                let m = profile.metrics.iter().find(|m| &m.name == name).unwrap();
                assert!(m.labels.iter().any(|l| &l.name == label), "{label} {name}");
            }
        }
    }

    #[test]
    fn label_cap_and_page() {
        let opts = HtmlOptions {
            source: "x.prom".into(),
            max_labels: 2,
            ..HtmlOptions::default()
        };
        let mut out = Vec::new();
        let s = write_html(SMALL, &opts, &mut out).unwrap();
        assert_eq!(s.labels, 2);
        assert!(s.skipped > 0);
        assert_eq!(s.series, 136);
        assert_eq!(s.bytes, out.len());
        let html = String::from_utf8(out).unwrap();
        assert!(html.starts_with("<!DOCTYPE html>"), "{}", &html[..40]);
        assert!(html.contains("\"mode\":\"offline\""));

        let tight = HtmlOptions {
            what_if: WhatIfOptions {
                max_body_bytes: 100,
                ..WhatIfOptions::default()
            },
            ..HtmlOptions::default()
        };
        assert!(matches!(
            write_html(SMALL, &tight, Vec::new()),
            Err(ExplorerError::TooLarge { limit: 100, .. })
        ));
        assert!(matches!(
            write_html(&b"x{ 1\n"[..], &HtmlOptions::default(), Vec::new()),
            Err(ExplorerError::Input(_))
        ));
    }
}
