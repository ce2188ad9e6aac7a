//! One scrape: fetch every target at once, run every subset's pipeline on each body, sum the
//! targets that answered in full, render. The inputs are explicit ([`ScrapeInput`]) and the
//! result is a [`ScrapeReport`]: what each target did and what each list rendered. Recording
//! self-metrics, logging and storing the results is the caller's, in one place
//! (`AppState::publish`).
//!
//! # What lives across scrapes
//! [`Engine`] keeps, per target, the subsets (relabel programs with their caches, aggregation
//! buffers with their capacity), so a sidecar's second scrape reuses everything the first one
//! learned and allocated. Targets that were not resolved by a scrape are forgotten.
//!
//! # Counter state
//! Per list, a [`CounterState`] keeps summed counters monotonic across restarts, departures and
//! timeouts (see [`crate::counters`] and docs/aggregation.md). It lives in [`Counters`], which
//! a reload hands to the new engine, so it survives series-cache compactions and reloads (by
//! output series). Each scrape takes a sequence number when it starts and applies the targets
//! that answered in full once, under the store's lock: a scrape that finishes after a newer
//! one (an old engine's, during a reload) is refused and served from the newer state.
//!
//! # All or nothing per target
//! Each target gets its own [`Pipeline`]. A target that fails at any point (connection, status,
//! timeout, a bad line, the body limit) is left out whole: its half-filled aggregates are never
//! merged. In static mode there is one target and its aggregates are rendered directly. With
//! `--fan-out.require-all` one failed target fails the whole scrape (no list is rendered).

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::OwnedMutexGuard;

use super::encoding::Kept;
use super::gzip_parts::DeflatePart;
use crate::aggregate::{Aggregator, RenderOptions, SummedDrops};
use crate::counters::state_file;
use crate::counters::{CounterState, CounterStats, TargetScrape};
use crate::exposition::render::{write_help, write_series, write_type, write_value_line_end};
use crate::limits::{check_sample_limit, LabelLimits, SampleLimitError};
use crate::pipeline::series_cache::DEFAULT_MAX_ENTRIES;
use crate::pipeline::Pipeline;
use crate::relabel::Config;
use crate::upstream::fetch::scrape_into;
use crate::upstream::{BodyStats, Client, FetchError, FetchOptions, ResolveError, Target};

/// The counter state of every list, shared by the engines that reloads replace (a reload keeps
/// the totals of the output series that still exist).
#[derive(Debug, Clone)]
pub struct Counters(Arc<Mutex<CounterStore>>);

#[derive(Debug)]
struct CounterStore {
    /// The next scrape's sequence number.
    next_seq: u64,
    staleness_ms: u64,
    /// Per list (its [`crate::pipeline::ListName`] as text).
    lists: HashMap<String, CounterState>,
    /// The stats last reported per list, to report increases.
    reported: HashMap<String, CounterStats>,
}

impl Counters {
    /// Empty state; inputs unseen for `staleness` are forgotten (`--staleness-window`).
    pub fn new(staleness: Duration) -> Counters {
        Counters(Arc::new(Mutex::new(CounterStore {
            next_seq: 1,
            staleness_ms: u64::try_from(staleness.as_millis()).unwrap_or(u64::MAX),
            lists: HashMap::new(),
            reported: HashMap::new(),
        })))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CounterStore> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The sequence number of a scrape starting now.
    fn next_seq(&self) -> u64 {
        let mut store = self.lock();
        let seq = store.next_seq;
        store.next_seq += 1;
        seq
    }

    /// Forgets the state of lists not in `names` (a reload removed them).
    fn retain(&self, names: &[String]) {
        let mut store = self.lock();
        store.lists.retain(|n, _| names.contains(n));
        store.reported.retain(|n, _| names.contains(n));
    }

    /// Restores the lists kept in a `--state-file` (at startup). A file that is missing starts
    /// the state empty; one that cannot be read (another program's, another format version,
    /// damaged) is logged with its name and the state starts empty too: summed counters then
    /// start again from the plain sum, as without the file, rather than metric-gate refusing
    /// to start.
    pub fn load_file(&self, path: &std::path::Path) {
        let staleness_ms = self.lock().staleness_ms;
        match state_file::load(path, staleness_ms) {
            Ok(Some(lists)) => {
                let mut store = self.lock();
                let n = lists.len();
                for (name, state) in lists {
                    // The counts go on from the stored ones; self-metrics count from here.
                    store.reported.insert(name.clone(), state.stats());
                    store.lists.insert(name, state);
                }
                tracing::info!(path = %path.display(), lists = n, "counter state loaded");
            }
            Ok(None) => {
                tracing::info!(path = %path.display(), "no counter state file yet: starting empty");
            }
            Err(e) => tracing::warn!(
                error = %e,
                "counter state not loaded, starting empty: summed counters start again from the plain sum of their inputs"
            ),
        }
    }

    /// The state of every list in `--state-file` form ([`state_file::encode`]).
    pub fn encode(&self) -> Vec<u8> {
        let store = self.lock();
        let mut lists: Vec<_> = store.lists.iter().collect();
        lists.sort_unstable_by(|a, b| a.0.cmp(b.0));
        state_file::encode(lists.into_iter().map(|(n, s)| (n.as_str(), s)))
    }

    /// Bytes held by the state of every list, approximately.
    pub fn memory_bytes(&self) -> usize {
        self.lock()
            .lists
            .values()
            .map(CounterState::memory_bytes)
            .sum()
    }
}

/// Mutable scrape state; used only by the one scrape in flight (it is locked for the scrape).
#[derive(Debug)]
pub struct Engine {
    /// The pipeline as configured (no series seen yet): copied for a new target.
    template: Pipeline,
    /// Per target name: its pipeline, kept between scrapes with its series cache, relabel
    /// caches and aggregation buffers.
    targets: HashMap<String, Pipeline>,
    /// Fan-out sums, one per subset, emptied every scrape.
    merged: Vec<Aggregator>,
    /// Targets are summed (`dns+`, `dnssrv+`) rather than rendered one by one.
    fan_out: bool,
    /// Per list counter state, kept across reloads.
    counters: Counters,
}

impl Engine {
    /// An engine for the default list and every subset of `config`; `fan_out` sums targets,
    /// comparing `le` and `quantile` labels by value (targets may spell a bound differently;
    /// see [`Aggregator::merge_targets`]). Relabeling sees the upstream's text in either mode.
    ///
    /// `counters` is the counter state (a new one, or the previous engine's on a reload); the
    /// state of lists `config` does not have is dropped.
    pub fn new(
        config: &Config,
        fan_out: bool,
        label_limits: LabelLimits,
        counters: Counters,
    ) -> Self {
        let template = Pipeline::new(config)
            .with_label_limits(label_limits)
            .with_series_cache(DEFAULT_MAX_ENTRIES)
            .track_counters();
        let names: Vec<String> = template
            .subsets()
            .iter()
            .map(|s| s.name.to_string())
            .collect();
        counters.retain(&names);
        let merged = template
            .subsets()
            .iter()
            .map(|_| Aggregator::new())
            .collect();
        Self {
            template,
            targets: HashMap::new(),
            merged,
            fan_out,
            counters,
        }
    }

    /// The counter state (shared with the engine a reload builds).
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Takes `target`'s pipeline out of the engine, ready for a new body.
    fn checkout(&mut self, target: &str) -> Pipeline {
        let mut p = match self.targets.remove(target) {
            Some(mut p) => {
                p.begin_scrape();
                p
            }
            None => self.template.clone(),
        };
        p.set_target(target);
        p
    }

    /// Keeps the pipelines of this scrape's targets for the next one (and only those: targets
    /// that were not resolved are forgotten); returns what each target did.
    fn put_back(&mut self, runs: Vec<TargetRun>) -> Vec<TargetReport> {
        self.targets.clear();
        runs.into_iter()
            .map(|run| {
                self.targets
                    .insert(run.report.target.name.clone(), run.pipeline);
                run.report
            })
            .collect()
    }

    /// The size of the caches kept between scrapes, and the series cache's work in this one.
    fn cache_stats(&self) -> CacheStats {
        let mut stats = CacheStats {
            relabel_entries: self
                .targets
                .values()
                .flat_map(|p| p.subsets())
                .map(|s| s.program.cache_entries())
                .sum(),
            ..CacheStats::default()
        };
        for cache in self.targets.values().filter_map(Pipeline::series_cache) {
            let st = cache.stats();
            stats.series_entries += cache.len();
            stats.series_hits += st.hits;
            stats.series_misses += st.misses;
        }
        stats
    }
}

/// Everything one scrape works with, and nothing it publishes.
pub struct ScrapeInput {
    /// The engine of the configuration in force when the scrape started, locked to its end.
    pub engine: OwnedMutexGuard<Engine>,
    /// The upstream client of that configuration.
    pub client: Client,
    /// The targets resolved for this scrape.
    pub targets: Vec<Target>,
    /// Every target's request: the scrape's deadline and the body limits.
    pub fetch: FetchOptions,
    /// When the scrape started, ms since the epoch: the timestamp of subset samples that carry
    /// none (subsets are served later, from storage).
    pub fetched_at_ms: i64,
    /// Most series one list may write (0: unlimited).
    pub sample_limit: usize,
    /// In fan-out mode, append the per-target health series to the default list.
    pub target_health: bool,
    /// In fan-out mode, produce no output unless every target answered in full
    /// (`--fan-out.require-all`); otherwise the targets that answered are summed.
    pub require_all: bool,
    /// Subsets to render a second time without the fetch time on their samples: the lists
    /// remote write pushes (it stamps the samples itself, and only samples without a
    /// timestamp of their own get stale markers).
    pub untimed: Vec<String>,
    /// Keep the lists' bodies gzip-compressed only ([`Kept::Gzip`]): the request that started
    /// the scrape accepts gzip. The untimed texts stay text (remote write parses them).
    pub keep_gzip: bool,
    /// Threads that render and gzip-compress one large list at once (at least 1).
    pub threads: usize,
}

/// What one scrape did: every target's outcome and, when at least one target answered in
/// full, every list's output.
#[derive(Debug)]
pub struct ScrapeReport {
    /// Targets were summed (`dns+`, `dnssrv+`).
    pub fan_out: bool,
    /// Every target, in resolution order.
    pub targets: Vec<TargetReport>,
    /// Targets whose pipelines the engine keeps for the next scrape.
    pub cached_targets: usize,
    /// The lists' outputs; `None` when every target failed, or when one did and every target
    /// was required (`--fan-out.require-all`).
    pub output: Option<ScrapeOutput>,
}

/// How one target did.
#[derive(Debug)]
pub struct TargetReport {
    /// The target.
    pub target: Target,
    /// Samples parsed from its body (part of it when the target failed).
    pub samples: u64,
    /// The body's sizes, or why the target was left out.
    pub result: Result<BodyStats, FetchError>,
    /// From the request to the parsed body or the failure.
    pub duration: Duration,
    /// Samples that repeated a series already read in its body, ignored.
    pub duplicates: u64,
}

/// The lists' outputs of a scrape that had at least one target answer in full.
#[derive(Debug)]
pub struct ScrapeOutput {
    /// One per list, in configuration order, the default list first.
    pub lists: Vec<ListOutput>,
    /// The engine's caches after the scrape.
    pub caches: CacheStats,
}

/// One list's rendered output and counters, summed over the targets that answered in full.
#[derive(Debug)]
pub struct ListOutput {
    /// The subset's name; `None` for the default list.
    pub name: Option<String>,
    /// The text (or its gzip form: [`ScrapeInput::keep_gzip`]), or the sample limit it broke
    /// (then nothing was rendered).
    pub body: Result<Kept, SampleLimitError>,
    /// When every target that answered in full declared OpenMetrics, and `body` rendered: the
    /// same result in OpenMetrics (`# UNIT`, `info`, `stateset` kept; see
    /// [`Aggregator::render_openmetrics`]), for clients that accept it; kept as `body` is.
    pub openmetrics: Option<Kept>,
    /// For a subset in [`ScrapeInput::untimed`] whose body rendered: the text without the
    /// fetch time on samples that have no timestamp of their own.
    pub untimed: Option<Bytes>,
    /// Some name in the output is written quoted (see [`Aggregator::has_quoted_names`]).
    pub quoted_names: bool,
    /// Output series.
    pub series: usize,
    /// Bytes the list's aggregates hold across scrapes, over every target (and the fan-out
    /// sum): series keys and values, series records, families and their metadata.
    pub aggregate_bytes: usize,
    /// Families those aggregates hold (each has a series, live or idle).
    pub families: usize,
    /// Bytes held by the list's counter state, its family table included.
    pub counter_bytes: usize,
    /// Samples dropped by relabel rules.
    pub dropped_by_relabel: u64,
    /// Samples dropped for having no metric name or an empty label name after relabeling.
    pub dropped_nameless: u64,
    /// Series not served because several inputs fell into them (quantiles, `drop` rules).
    pub summed_drops: SummedDrops,
    /// The list's counter state: sizes now, and the counts' increases in this scrape.
    pub counters: CounterStats,
}

/// The engine's caches after a scrape, over all targets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Entries in the relabel decision caches, over all subsets.
    pub relabel_entries: usize,
    /// Raw series remembered by the series caches.
    pub series_entries: usize,
    /// Samples of this scrape whose outcome came from a series cache.
    pub series_hits: u64,
    /// Samples of this scrape relabeled and aggregated in full.
    pub series_misses: u64,
}

/// Why a scrape, or one list of it, has no output. Messages start with the upstream.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ScrapeError {
    /// The upstream's name could not be resolved (or not within the timeout).
    #[error("upstream {upstream}: {source}")]
    Resolve {
        /// The upstream as configured.
        upstream: String,
        /// The resolver's error.
        source: ResolveError,
    },
    /// The one target of a static upstream failed.
    #[error("upstream {upstream}: {source}")]
    Target {
        /// The upstream as configured.
        upstream: String,
        /// Why the target failed.
        source: FetchError,
    },
    /// Every target of a fan-out upstream failed.
    #[error("upstream {upstream}: all {} targets failed: {failures}", .failures.0.len())]
    AllTargets {
        /// The upstream as configured.
        upstream: String,
        /// Each target and why it failed.
        failures: TargetFailures,
    },
    /// Some targets of a fan-out upstream failed, and `--fan-out.require-all` asks for all.
    #[error("upstream {upstream}: {} of {total} targets failed (--fan-out.require-all): {failures}", .failures.0.len())]
    NotAllTargets {
        /// The upstream as configured.
        upstream: String,
        /// Targets resolved for the scrape.
        total: usize,
        /// Each failed target and why it failed.
        failures: TargetFailures,
    },
    /// A list's output had more series than `--sample-limit`.
    #[error("upstream {upstream}: {}{source}", subset_prefix(.subset))]
    SampleLimit {
        /// The upstream as configured.
        upstream: String,
        /// The subset; `None` for the default list.
        subset: Option<String>,
        /// Series and limit.
        source: SampleLimitError,
    },
    /// The scrape's task ended without a result (it panicked).
    #[error("scrape task failed: {0}")]
    Task(String),
}

fn subset_prefix(subset: &Option<String>) -> String {
    subset
        .as_ref()
        .map_or_else(String::new, |n| format!("subset {n:?}: "))
}

/// Targets and why each failed, written `target: error; target: error`.
#[derive(Debug, Clone, Default)]
pub struct TargetFailures(pub Vec<(String, FetchError)>);

impl fmt::Display for TargetFailures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (target, error)) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{target}: {error}")?;
        }
        Ok(())
    }
}

impl ScrapeReport {
    /// The targets that answered in full.
    pub fn targets_ok(&self) -> usize {
        self.targets.iter().filter(|t| t.result.is_ok()).count()
    }

    /// Why there is no output: the one target's error in static mode, every failed target's in
    /// fan-out mode (all of them, or some when every target was required).
    pub fn failure(&self, upstream: &str) -> ScrapeError {
        if self.fan_out && self.targets_ok() > 0 {
            let failures = self.targets.iter().filter_map(|t| {
                let e = t.result.as_ref().err()?;
                Some((t.target.name.clone(), e.clone()))
            });
            return ScrapeError::NotAllTargets {
                upstream: upstream.to_owned(),
                total: self.targets.len(),
                failures: TargetFailures(failures.collect()),
            };
        }
        let mut failures = self.targets.iter().filter_map(|t| {
            let e = t.result.as_ref().err()?;
            Some((t.target.name.clone(), e.clone()))
        });
        match failures.next() {
            Some((_, source)) if !self.fan_out => ScrapeError::Target {
                upstream: upstream.to_owned(),
                source,
            },
            first => ScrapeError::AllTargets {
                upstream: upstream.to_owned(),
                failures: TargetFailures(first.into_iter().chain(failures).collect()),
            },
        }
    }
}

/// A target's pipeline after its fetch, with what the target did.
struct TargetRun {
    report: TargetReport,
    pipeline: Pipeline,
}

/// Runs one scrape: every target at once, each bounded by `input.fetch`'s deadline. Every
/// target's pipeline goes back into the engine, whatever happened.
pub async fn run(input: ScrapeInput) -> ScrapeReport {
    let ScrapeInput {
        mut engine,
        client,
        targets,
        fetch,
        fetched_at_ms,
        sample_limit,
        target_health,
        require_all,
        untimed,
        keep_gzip,
        threads,
    } = input;
    let fan_out = engine.fan_out;
    let seq = engine.counters.next_seq();
    let runs = futures_util::future::join_all(targets.into_iter().map(|target| {
        let pipeline = engine.checkout(&target.name);
        let client = client.clone();
        let fetch = fetch.clone();
        async move {
            let t0 = Instant::now();
            let (pipeline, result) = scrape_into(&client, &target, fetch, pipeline).await;
            TargetRun {
                report: TargetReport {
                    samples: pipeline.samples(),
                    duplicates: pipeline.duplicates(),
                    target,
                    result,
                    duration: t0.elapsed(),
                },
                pipeline,
            }
        }
    }))
    .await;

    let failed = runs.iter().filter(|r| r.report.result.is_err()).count();
    if failed == runs.len() || (fan_out && require_all && failed > 0) {
        // Pipelines go back for the next scrape; the half-filled aggregates are cleared then.
        let targets = engine.put_back(runs);
        return ScrapeReport {
            fan_out,
            targets,
            cached_targets: engine.targets.len(),
            output: None,
        };
    }
    let health = (fan_out && target_health).then(|| health_series(&runs));
    // Merging and rendering a big result is CPU work: keep it off the runtime's workers.
    tokio::task::spawn_blocking(move || {
        let mut runs = runs;
        let lists = render_all(
            &mut engine,
            &mut runs,
            seq,
            fetched_at_ms,
            health,
            sample_limit,
            &untimed,
            keep_gzip,
            threads,
        );
        let targets = engine.put_back(runs);
        ScrapeReport {
            fan_out,
            targets,
            cached_targets: engine.targets.len(),
            output: Some(ScrapeOutput {
                lists,
                caches: engine.cache_stats(),
            }),
        }
    })
    .await
    .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}

/// Below this many bytes of text (about) a list is compressed on one thread: splitting costs
/// more than it saves.
const PARALLEL_RENDER_BYTES: usize = 4 << 20;

/// The text 0.0.4 of `agg` followed by `tail`, kept as text or gzip-compressed. A large gzip
/// one is rendered and compressed on up to `threads` threads at once, each a share of the
/// series ([`Aggregator::render_parallel`], [`super::gzip_parts`]): compression is most of
/// its cost.
/// Text is rendered on one thread: on the 2x ingress payload (133 MB of text) two threads
/// saved no time, the writes into fresh memory being the cost, and held a second buffer.
fn render_kept(
    agg: &Aggregator,
    opts: &RenderOptions,
    tail: &[u8],
    keep_gzip: bool,
    threads: usize,
) -> Kept {
    let hint = agg.render_size_hint();
    if !keep_gzip {
        let mut body = Vec::with_capacity(hint + tail.len());
        agg.render(&mut body, opts);
        body.extend_from_slice(tail);
        return Kept::Text(Bytes::from(body));
    }
    let threads = if hint < PARALLEL_RENDER_BYTES {
        1
    } else {
        threads.max(1)
    };
    // Ingress-shaped text compresses ~25x at the fastest level.
    let mut parts: Vec<DeflatePart> = (0..threads)
        .map(|_| DeflatePart::new(hint / 16 / threads))
        .collect();
    // Compressing into memory cannot fail, and the renderer adds no failure of its own.
    let _ = agg.render_parallel(opts, &mut parts);
    if let Some(last) = parts.last_mut() {
        let _ = std::io::Write::write_all(last, tail);
    }
    Kept::gzip_parts(parts)
}

/// Sums (fan-out) and renders every list over the targets that answered in full.
#[allow(clippy::too_many_arguments)]
fn render_all(
    engine: &mut Engine,
    runs: &mut [TargetRun],
    seq: u64,
    fetched_at_ms: i64,
    health: Option<Vec<u8>>,
    sample_limit: usize,
    untimed: &[String],
    keep_gzip: bool,
    threads: usize,
) -> Vec<ListOutput> {
    let ok_at: Vec<usize> = (0..runs.len())
        .filter(|&r| runs[r].report.result.is_ok())
        .collect();
    // The upstream's own format: OpenMetrics only when every target that counts answered in it.
    let openmetrics = runs
        .iter()
        .filter_map(|r| r.report.result.as_ref().ok())
        .all(|stats| stats.openmetrics);
    let counters = engine.counters.clone();
    let mut store = counters.lock();
    let staleness_ms = store.staleness_ms;
    let lists: Vec<String> = engine
        .template
        .subsets()
        .iter()
        .map(|s| s.name.to_string())
        .collect();
    let mut outputs = Vec::with_capacity(lists.len());
    for (i, list_key) in lists.iter().enumerate() {
        let ok = || ok_at.iter().map(|&r| &runs[r].pipeline);
        let dropped_by_relabel = ok().map(|p| p.subsets()[i].dropped_by_relabel).sum();
        let dropped_nameless = ok()
            .map(|p| {
                let st = p.subsets()[i].aggregator.stats();
                st.dropped_nameless + st.dropped_invalid
            })
            .sum();
        // The counter state applies the targets that answered in full, once, in scrape order.
        let state = store
            .lists
            .entry(list_key.clone())
            .or_insert_with(|| CounterState::new(staleness_ms));
        let records: Vec<&TargetScrape> = ok()
            .filter_map(|p| p.subsets()[i].counters.as_ref())
            .collect();
        // Fan-out: the targets' aggregates are summed while the state is updated (the two
        // read different data).
        let sources: Vec<&Aggregator> = if engine.fan_out {
            ok_at
                .iter()
                .map(|&r| &runs[r].pipeline.subsets()[i].aggregator)
                .collect()
        } else {
            Vec::new()
        };
        let applied = apply_while(
            if engine.fan_out { threads } else { 1 },
            || state.apply(seq, fetched_at_ms, &records),
            || {
                if engine.fan_out {
                    // Targets keep their own aggregates (their slots are what their series
                    // caches point at); the sum is built fresh every scrape. Bounds (`le`,
                    // `quantile`) are compared by value here, and only here.
                    engine.merged[i].merge_targets(&sources);
                }
            },
        );
        drop((records, sources));
        let needs_description = match applied {
            Ok(report) => report.needs_description,
            Err(refused) => {
                tracing::debug!(%refused, "a newer scrape's counter state is served");
                Vec::new()
            }
        };
        // Applied: the records' buffers are not needed until the next scrape.
        for r in runs.iter_mut() {
            if let Some(c) = &mut r.pipeline.subsets_mut()[i].counters {
                c.release();
            }
        }
        let agg: &mut Aggregator = if engine.fan_out {
            &mut engine.merged[i]
        } else {
            &mut runs[ok_at[0]].pipeline.subsets_mut()[i].aggregator
        };
        agg.apply_counters(state, &needs_description);
        let stats = state.stats();
        let before = store
            .reported
            .insert(list_key.clone(), stats)
            .unwrap_or_default();
        let counter_increase = CounterStats {
            resets: stats.resets.saturating_sub(before.resets),
            target_restarts: stats.target_restarts.saturating_sub(before.target_restarts),
            inputs_expired: stats.inputs_expired.saturating_sub(before.inputs_expired),
            outputs_expired: stats.outputs_expired.saturating_sub(before.outputs_expired),
            first_samples_skipped: stats
                .first_samples_skipped
                .saturating_sub(before.first_samples_skipped),
            non_finite: stats.non_finite.saturating_sub(before.non_finite),
            scrapes_refused: stats.scrapes_refused.saturating_sub(before.scrapes_refused),
            ..stats
        };
        let agg: &Aggregator = agg;
        let list = &engine.template.subsets()[i];
        let is_default = i == 0;
        let opts = RenderOptions {
            // Subsets are served later, from storage: stamp them with the fetch time.
            default_timestamp_ms: (!is_default).then_some(fetched_at_ms),
            now_ms: Some(fetched_at_ms),
        };
        // The health series are metric-gate's own and do not count against the limit.
        let tail: &[u8] = match (is_default, &health) {
            (true, Some(h)) => h,
            _ => &[],
        };
        let hint = agg.render_size_hint();
        let body = check_sample_limit(agg.series_count(), sample_limit)
            .map(|()| render_kept(agg, &opts, tail, keep_gzip, threads));
        // The health series go before `# EOF`; their text is valid OpenMetrics.
        let om_body = (openmetrics && body.is_ok()).then(|| {
            if keep_gzip {
                return Kept::gzip_of(hint, |mut w| agg.render_openmetrics_to(&mut w, &opts, tail));
            }
            let mut om = Vec::with_capacity(hint);
            // Writing into a Vec cannot fail.
            let _ = agg.render_openmetrics_to(&mut om, &opts, tail);
            Kept::Text(Bytes::from(om))
        });
        let wants_untimed = list
            .name
            .as_named()
            .is_some_and(|n| untimed.iter().any(|u| u == n));
        let untimed = (wants_untimed && body.is_ok()).then(|| {
            let mut text = Vec::with_capacity(agg.render_size_hint());
            agg.render(
                &mut text,
                &RenderOptions {
                    now_ms: Some(fetched_at_ms),
                    ..RenderOptions::default()
                },
            );
            Bytes::from(text)
        });
        let (quoted_names, series, summed_drops) = (
            agg.has_quoted_names(),
            agg.series_count(),
            agg.summed_drops(),
        );
        let name = list.name.as_named().map(str::to_owned);
        let (aggregate_bytes, families) = held_by_list(runs, &engine.merged, i);
        let counter_bytes = store
            .lists
            .get(list_key)
            .map_or(0, CounterState::memory_bytes);
        outputs.push(ListOutput {
            name,
            body,
            openmetrics: om_body,
            untimed,
            quoted_names,
            series,
            aggregate_bytes,
            families,
            counter_bytes,
            dropped_by_relabel,
            dropped_nameless,
            summed_drops,
            counters: counter_increase,
        });
    }
    outputs
}

/// Runs `apply` (the counter state's update) and `meanwhile` at once when `threads` allows a
/// second thread: `apply` on it, `meanwhile` on this one. On a `dns+` scrape of 4 targets
/// (851k input series each, `labeldrop: path`) the update took ~190 ms and the sum of the
/// targets' aggregates ~140 ms, one after the other.
fn apply_while<R: Send>(
    threads: usize,
    apply: impl FnOnce() -> R + Send,
    meanwhile: impl FnOnce(),
) -> R {
    if threads < 2 {
        meanwhile();
        return apply();
    }
    std::thread::scope(|scope| {
        let applying = scope.spawn(apply);
        meanwhile();
        applying
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e))
    })
}

/// Bytes and families held by list `i`'s aggregates: every target's (failed ones too: they keep
/// theirs for the next scrape) and the fan-out sum's.
fn held_by_list(runs: &[TargetRun], merged: &[Aggregator], i: usize) -> (usize, usize) {
    runs.iter()
        .map(|r| &r.pipeline.subsets()[i].aggregator)
        .chain(merged.get(i))
        .fold((0, 0), |(bytes, families), a| {
            (bytes + a.memory_bytes(), families + a.family_count())
        })
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
    for r in runs.iter().map(|r| &r.report) {
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
    for r in runs.iter().map(|r| &r.report) {
        write_series(
            &mut out,
            "metric_gate_upstream_scrape_duration_seconds",
            [("target", r.target.name.as_str())],
        );
        write_value_line_end(&mut out, r.duration.as_secs_f64(), None);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::StatusCode;

    #[test]
    fn apply_while_runs_both_and_returns_the_update() {
        for threads in [1, 2] {
            let mut merged = Vec::new();
            let apply_thread = std::sync::Mutex::new(None);
            let r = apply_while(
                threads,
                || {
                    *apply_thread.lock().unwrap() = Some(std::thread::current().id());
                    7
                },
                || merged.push(1),
            );
            assert_eq!((r, merged), (7, vec![1]), "threads {threads}");
            let elsewhere = apply_thread.into_inner().unwrap() != Some(std::thread::current().id());
            assert_eq!(elsewhere, threads > 1, "threads {threads}");
        }
    }

    fn failed(name: &str, e: FetchError) -> TargetReport {
        TargetReport {
            target: Target::fixed(&format!("http://{name}/metrics").parse().unwrap()),
            samples: 0,
            duplicates: 0,
            result: Err(e),
            duration: Duration::ZERO,
        }
    }

    fn report(fan_out: bool, targets: Vec<TargetReport>) -> ScrapeReport {
        ScrapeReport {
            fan_out,
            targets,
            cached_targets: 0,
            output: None,
        }
    }

    #[test]
    fn failure_messages_name_the_upstream_and_each_target() {
        let one = report(
            false,
            vec![failed("a:1", FetchError::Timeout(Duration::from_secs(2)))],
        );
        assert_eq!(
            one.failure("http://a:1/metrics").to_string(),
            "upstream http://a:1/metrics: timeout after 2s"
        );
        let all = report(
            true,
            vec![
                failed("10.0.0.1:80", FetchError::Body("reset".into())),
                failed("10.0.0.2:80", FetchError::TooLarge(9)),
            ],
        );
        assert_eq!(
            all.failure("dns+http://svc:80/m").to_string(),
            "upstream dns+http://svc:80/m: all 2 targets failed: 10.0.0.1:80: reading the body: reset; 10.0.0.2:80: body larger than the limit of 9 bytes (--max-body-size)"
        );
        let limit = SampleLimitError {
            series: 3,
            limit: 2,
        };
        let subset = ScrapeError::SampleLimit {
            upstream: "u".into(),
            subset: Some("s".into()),
            source: limit.clone(),
        };
        assert_eq!(
            subset.to_string(),
            format!("upstream u: subset \"s\": {limit}")
        );
        let mut some = report(
            true,
            vec![failed(
                "10.0.0.1:80",
                FetchError::Status(StatusCode::SERVICE_UNAVAILABLE),
            )],
        );
        some.targets.push(TargetReport {
            result: Ok(BodyStats::default()),
            ..failed("10.0.0.2:80", FetchError::TooLarge(1))
        });
        assert_eq!(
            some.failure("dns+http://svc:80/m").to_string(),
            "upstream dns+http://svc:80/m: 1 of 2 targets failed (--fan-out.require-all): 10.0.0.1:80: upstream answered 503 Service Unavailable"
        );
        let default = ScrapeError::SampleLimit {
            upstream: "u".into(),
            subset: None,
            source: limit.clone(),
        };
        assert_eq!(default.to_string(), format!("upstream u: {limit}"));
    }
}
