//! One scrape: resolve targets, fetch them all at once, run every subset's pipeline on each body,
//! sum the targets that answered in full, render.
//!
//! # What lives across scrapes
//! [`Engine`] keeps, per target, the subsets (relabel programs with their caches, aggregation
//! buffers with their capacity), so a sidecar's second scrape reuses everything the first one
//! learned and allocated. Targets that were not resolved by a scrape are forgotten.
//!
//! # All or nothing per target
//! Each target gets its own [`Pipeline`]. A target that fails at any point (connection, status,
//! timeout, a bad line, the body limit) is left out whole: its half-filled aggregates are never
//! merged. In static mode there is one target and its aggregates are rendered directly.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use tokio::sync::OwnedMutexGuard;

use crate::aggregate::{Aggregator, RenderOptions};
use crate::exposition::render::{write_help, write_series, write_type, write_value_line_end};
use crate::limits::{check_sample_limit, LabelLimits, SampleLimitError};
use crate::pipeline::series_cache::DEFAULT_MAX_ENTRIES;
use crate::pipeline::Pipeline;
use crate::relabel::Config;
use crate::upstream::fetch::{scrape_into, FetchOptions};
use crate::upstream::{FetchError, ResolveError, Target};

use super::encoding::Rendered;
use super::metrics::{ErrorLabels, SubsetLabels, TargetLabels, DEFAULT_SUBSET_LABEL};
use super::AppState;

/// Mutable scrape state; used only by the one scrape in flight (see [`AppState`]).
#[derive(Debug)]
pub struct Engine {
    /// The pipeline as configured (no series seen yet): copied for a new target.
    template: Pipeline,
    /// Per target name: its pipeline, kept between scrapes with its series cache, relabel
    /// caches and aggregation buffers.
    targets: HashMap<String, Pipeline>,
    /// Fan-out sums, one per subset, emptied every scrape.
    merged: Vec<Aggregator>,
}

impl Engine {
    /// An engine for the default list and every subset of `config`; `fan_out` compares `le`
    /// and `quantile` labels by value (targets may spell a bound differently).
    pub fn new(config: &Config, fan_out: bool, label_limits: LabelLimits) -> Self {
        let template = Pipeline::new(config)
            .with_label_limits(label_limits)
            .normalize_float_labels(fan_out)
            .with_series_cache(DEFAULT_MAX_ENTRIES);
        let merged = template
            .subsets()
            .iter()
            .map(|_| Aggregator::new())
            .collect();
        Self {
            template,
            targets: HashMap::new(),
            merged,
        }
    }

    /// Takes `target`'s pipeline out of the engine, ready for a new body.
    fn checkout(&mut self, target: &str) -> Pipeline {
        match self.targets.remove(target) {
            Some(mut p) => {
                p.begin_scrape();
                p
            }
            None => self.template.clone(),
        }
    }
}

/// A named subset's last result.
#[derive(Debug)]
pub struct SubsetSnapshot {
    /// Rendered with the fetch time on samples that have no timestamp; or, when the output
    /// broke `--sample-limit`, the 502 message.
    pub rendered: Result<Rendered, String>,
    /// Output series.
    pub series: usize,
}

/// The named subsets' results of one scrape, swapped in as a whole so that readers never mix
/// two scrapes.
#[derive(Debug)]
pub struct SubsetSnapshots {
    /// When the upstream fetch that produced them started, ms since the epoch.
    pub fetched_at_ms: i64,
    /// By subset name.
    pub by_name: HashMap<String, Arc<SubsetSnapshot>>,
}

/// What a `/metrics` request answers: the default list's output, or why there is none.
#[derive(Debug)]
pub struct ScrapeOutcome {
    /// The body, or the 502 message.
    pub result: Result<Rendered, String>,
}

/// How one target did.
#[derive(Debug)]
struct TargetRun {
    target: Target,
    pipeline: Pipeline,
    samples: u64,
    result: Result<crate::upstream::BodyStats, FetchError>,
    duration: Duration,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Runs one scrape with `timeout` per target; stores the subsets' snapshots when at least one
/// target answered in full.
pub async fn run(state: Arc<AppState>, timeout: Duration) -> ScrapeOutcome {
    let started = Instant::now();
    let fetched_at_ms = now_ms();
    // Resolution counts against the scrape's timeout too: a slow DNS server must not make the
    // answer miss Prometheus' deadline.
    let resolved = tokio::time::timeout(timeout, state.targets())
        .await
        .unwrap_or_else(|_| {
            Err(ResolveError::Lookup {
                name: state.cfg.spec.to_string(),
                cause: format!("timeout after {timeout:?}"),
            })
        });
    let targets = match resolved {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!(upstream = %state.cfg.spec, error = %e, "scrape failed");
            state
                .metrics
                .upstream_errors
                .get_or_create(&ErrorLabels {
                    target: state.cfg.spec.to_string(),
                    cause: "resolve",
                })
                .inc();
            return ScrapeOutcome {
                result: Err(format!("upstream {}: {e}", state.cfg.spec)),
            };
        }
    };
    // The configuration of this scrape, kept to its end even if a reload swaps in another.
    let live = state.live.load_full();
    let mut engine = Arc::clone(&live.engine).lock_owned().await;
    let opts = FetchOptions {
        deadline: tokio::time::Instant::from_std(started + timeout),
        timeout,
        max_body: state.cfg.max_body,
        max_line: state.cfg.max_line,
    };
    let runs = futures_util::future::join_all(targets.into_iter().map(|target| {
        let pipeline = engine.checkout(&target.name);
        let client = live.client.clone();
        async move {
            let t0 = Instant::now();
            let (pipeline, result) = scrape_into(&client, &target, opts, pipeline).await;
            TargetRun {
                samples: pipeline.samples(),
                pipeline,
                target,
                result,
                duration: t0.elapsed(),
            }
        }
    }))
    .await;

    let fan_out = state.cfg.spec.is_fan_out();
    let mut errors = Vec::new();
    for run in &runs {
        record_target(&state, run);
        if let Err(e) = &run.result {
            errors.push(format!("{}: {e}", run.target));
        }
    }
    let ok = runs.iter().filter(|r| r.result.is_ok()).count();
    state.metrics.targets.set(runs.len() as i64);
    state.metrics.targets_up.set(ok as i64);
    if ok == 0 {
        // Programs go back for the next scrape; the half-filled aggregates are cleared then.
        let msg = if fan_out {
            format!(
                "upstream {}: all {} targets failed: {}",
                state.cfg.spec,
                runs.len(),
                errors.join("; ")
            )
        } else {
            let cause = runs
                .iter()
                .find_map(|r| r.result.as_ref().err())
                .map(ToString::to_string)
                .unwrap_or_default();
            format!("upstream {}: {cause}", state.cfg.spec)
        };
        engine.targets = runs
            .into_iter()
            .map(|r| (r.target.name, r.pipeline))
            .collect();
        state
            .metrics
            .cached_targets
            .set(engine.targets.len() as i64);
        return ScrapeOutcome { result: Err(msg) };
    }

    let health = (fan_out && state.cfg.target_health).then(|| health_series(&runs));
    let names: Vec<Option<String>> = engine
        .template
        .subsets()
        .iter()
        .map(|s| s.name.as_named().map(str::to_owned))
        .collect();
    // Merging and rendering a big result is CPU work: keep it off the runtime's workers.
    let sample_limit = state.cfg.sample_limit;
    let (rendered, cached_targets, cache_entries, series_cache) =
        tokio::task::spawn_blocking(move || {
            let outputs = render_all(
                &mut engine,
                runs,
                fan_out,
                fetched_at_ms,
                health,
                sample_limit,
            );
            let cache_entries: usize = engine
                .targets
                .values()
                .flat_map(|p| p.subsets())
                .map(|s| s.program.cache_entries())
                .sum();
            let series_cache = engine.targets.values().fold((0, 0, 0), |acc, p| {
                let (len, st) = p
                    .series_cache()
                    .map_or((0, Default::default()), |c| (c.len(), c.stats()));
                (acc.0 + len, acc.1 + st.hits, acc.2 + st.misses)
            });
            (outputs, engine.targets.len(), cache_entries, series_cache)
        })
        .await
        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));

    state.metrics.cached_targets.set(cached_targets as i64);
    let m = &state.metrics;
    m.relabel_cache_entries.set(cache_entries as i64);
    m.series_cache_entries.set(series_cache.0 as i64);
    m.series_cache_hits.inc_by(series_cache.1);
    m.series_cache_misses.inc_by(series_cache.2);
    let mut by_name = HashMap::new();
    let mut default = None;
    for (name, out) in names.into_iter().zip(rendered) {
        let label = SubsetLabels {
            subset: name
                .clone()
                .unwrap_or_else(|| DEFAULT_SUBSET_LABEL.to_owned()),
        };
        let m = &state.metrics;
        m.series_written
            .get_or_create(&label)
            .set(out.series as i64);
        m.dropped_by_relabel
            .get_or_create(&label)
            .inc_by(out.dropped_by_relabel);
        m.dropped_nameless
            .get_or_create(&label)
            .inc_by(out.dropped_nameless);
        m.aggregate_bytes
            .get_or_create(&label)
            .set(out.arena_bytes as i64);
        let body = match out.body {
            Ok(b) => Ok(b),
            Err(e) => {
                m.sample_limit_exceeded.get_or_create(&label).inc();
                tracing::warn!(
                    upstream = %state.cfg.spec,
                    subset = %label.subset,
                    series = e.series,
                    limit = e.limit,
                    "sample limit exceeded"
                );
                Err(match &name {
                    None => format!("upstream {}: {e}", state.cfg.spec),
                    Some(n) => format!("upstream {}: subset {n:?}: {e}", state.cfg.spec),
                })
            }
        };
        match name {
            None => default = Some(body),
            Some(n) => {
                by_name.insert(
                    n,
                    Arc::new(SubsetSnapshot {
                        rendered: body.map(Rendered::new),
                        series: out.series,
                    }),
                );
            }
        }
    }
    state.subsets.store(Some(Arc::new(SubsetSnapshots {
        fetched_at_ms,
        by_name,
    })));
    state.mark_ready();
    let default = default.unwrap_or_else(|| Ok(Bytes::new()));
    tracing::info!(
        upstream = %state.cfg.spec,
        targets_ok = ok,
        targets_failed = errors.len(),
        bytes_out = default.as_ref().map_or(0, Bytes::len),
        duration_ms = started.elapsed().as_millis() as u64,
        "scrape done"
    );
    ScrapeOutcome {
        result: default.map(Rendered::new),
    }
}

/// Logs and counts one target's result.
fn record_target(state: &AppState, run: &TargetRun) {
    let m = &state.metrics;
    let target = run.target.name.clone();
    m.upstream_duration
        .get_or_create(&TargetLabels {
            target: target.clone(),
        })
        .observe(run.duration.as_secs_f64());
    m.series_read.inc_by(run.samples);
    match &run.result {
        Ok(stats) => {
            m.bytes_read.inc_by(stats.decoded_bytes);
            m.wire_bytes_read.inc_by(stats.wire_bytes);
            tracing::debug!(
                target_addr = %run.target,
                bytes = stats.decoded_bytes,
                wire_bytes = stats.wire_bytes,
                samples = run.samples,
                duration_ms = run.duration.as_millis() as u64,
                "target scraped"
            );
        }
        Err(e) => {
            if matches!(e, FetchError::Parse(_)) {
                m.parse_errors.inc();
            }
            m.upstream_errors
                .get_or_create(&ErrorLabels {
                    target,
                    cause: e.kind(),
                })
                .inc();
            tracing::warn!(
                target_addr = %run.target,
                cause = e.kind(),
                error = %e,
                duration_ms = run.duration.as_millis() as u64,
                "target failed"
            );
        }
    }
}

/// One subset's rendered output and counters.
struct Output {
    /// The text, or the sample limit it broke (then nothing was rendered).
    body: Result<Bytes, SampleLimitError>,
    series: usize,
    arena_bytes: usize,
    dropped_by_relabel: u64,
    dropped_nameless: u64,
}

/// Sums (fan-out) and renders every subset; puts every target's subsets back into the engine.
fn render_all(
    engine: &mut OwnedMutexGuard<Engine>,
    runs: Vec<TargetRun>,
    fan_out: bool,
    fetched_at_ms: i64,
    health: Option<Vec<u8>>,
    sample_limit: usize,
) -> Vec<Output> {
    let engine = &mut **engine;
    let n = engine.template.subsets().len();
    let ok: Vec<usize> = (0..runs.len())
        .filter(|&j| runs[j].result.is_ok())
        .collect();
    let mut outputs = Vec::with_capacity(n);
    for i in 0..n {
        let dropped_by_relabel = ok
            .iter()
            .map(|&j| runs[j].pipeline.subsets()[i].dropped_by_relabel)
            .sum();
        let dropped_nameless = ok
            .iter()
            .map(|&j| {
                let st = runs[j].pipeline.subsets()[i].aggregator.stats();
                st.dropped_nameless + st.dropped_invalid
            })
            .sum();
        let agg: &Aggregator = if fan_out {
            // Targets keep their own aggregates (their slots are what their series caches point
            // at); the sum is built fresh every scrape.
            let merged = &mut engine.merged[i];
            merged.clear();
            for &j in &ok {
                merged.merge_from(&runs[j].pipeline.subsets()[i].aggregator);
            }
            merged
        } else {
            &runs[ok[0]].pipeline.subsets()[i].aggregator
        };
        let is_default = i == 0;
        let opts = RenderOptions {
            // Subsets are served later, from storage: stamp them with the fetch time.
            default_timestamp_ms: (!is_default).then_some(fetched_at_ms),
        };
        // The health series are metric-gate's own and do not count against the limit.
        let body = check_sample_limit(agg.series_count(), sample_limit).map(|()| {
            let mut body = Vec::with_capacity(agg.arena_bytes() + agg.series_count() * 24 + 1024);
            agg.render(&mut body, &opts);
            if is_default {
                if let Some(h) = &health {
                    body.extend_from_slice(h);
                }
            }
            Bytes::from(body)
        });
        outputs.push(Output {
            body,
            series: agg.series_count(),
            arena_bytes: agg.arena_bytes(),
            dropped_by_relabel,
            dropped_nameless,
        });
    }
    engine.targets = runs
        .into_iter()
        .map(|r| (r.target.name, r.pipeline))
        .collect();
    outputs
}

/// `metric_gate_upstream_up` and `metric_gate_upstream_scrape_duration_seconds` per target, so
/// a lost pod is visible even though the summed output has no per-pod `up`.
fn health_series(runs: &[TargetRun]) -> Vec<u8> {
    let mut out = Vec::new();
    write_help(
        &mut out,
        "metric_gate_upstream_up",
        "1 if the target's whole response was read and summed in this scrape, 0 if it was left out.",
    );
    write_type(&mut out, "metric_gate_upstream_up", "gauge");
    for r in runs {
        write_series(
            &mut out,
            "metric_gate_upstream_up",
            [("target", r.target.name.as_str())],
        );
        let up = if r.result.is_ok() { 1.0 } else { 0.0 };
        write_value_line_end(&mut out, up, None);
    }
    write_help(
        &mut out,
        "metric_gate_upstream_scrape_duration_seconds",
        "Duration of the target's request in this scrape, until its body was parsed or it failed.",
    );
    write_type(
        &mut out,
        "metric_gate_upstream_scrape_duration_seconds",
        "gauge",
    );
    for r in runs {
        write_series(
            &mut out,
            "metric_gate_upstream_scrape_duration_seconds",
            [("target", r.target.name.as_str())],
        );
        write_value_line_end(&mut out, r.duration.as_secs_f64(), None);
    }
    out
}
