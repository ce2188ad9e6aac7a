//! The server's shared state: the configuration, what a reload replaces ([`Live`]), the
//! single-flight slot of `/metrics` scrapes, the subsets' last results, readiness and the
//! self-metrics.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arc_swap::{ArcSwap, ArcSwapOption};
use bytes::Bytes;

use crate::upstream::{
    Client, ClientError, Deadline, DnsResolver, FetchError, ResolveError, ResolverConfigError,
    Target, UpstreamSpec,
};

use super::analysis::Analysis;
use super::config::{RelabelConfig, ServerConfig, UpstreamConfig};
use super::encoding::{Kept, Rendered};
use super::flight::{FlightError, Patience, SingleFlight};
use super::metrics::{ErrorLabels, SelfMetrics, SubsetLabels, TargetLabels, DEFAULT_SUBSET_LABEL};
use super::push::endpoints::{RemoteWriteError, RemoteWriteState, UntimedLists};
use super::reload::{Live, ReloadError, Reloaded};
use super::responses::HeldResults;
use super::scrape::{self, ListOutput, ScrapeError, ScrapeInput, ScrapeReport, TargetReport};

/// The server could not start: the upstream's resolver or client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The system's DNS configuration (fan-out upstreams) could not be read.
    #[error(transparent)]
    Resolver(#[from] ResolverConfigError),
    /// The TLS files or credentials of the upstream client are unusable.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The remote-write configuration does not fit the relabel configuration, or an
    /// endpoint's files are unusable.
    #[error(transparent)]
    RemoteWrite(#[from] RemoteWriteError),
}

/// What a `/metrics` request answers: the default list's output, or why there is none.
#[derive(Debug)]
pub struct ScrapeOutcome {
    /// The body, or why there is none (answered with a 502).
    pub result: Result<Rendered, ScrapeError>,
    /// When the upstream fetch started, ms since the epoch (also for a failed scrape: remote
    /// write stamps its stale markers with it).
    pub fetched_at_ms: i64,
    /// The subsets remote write pushes, rendered without the fetch time (empty without remote
    /// write; a subset over `--sample-limit` is missing).
    pub untimed: UntimedLists,
}

/// A named subset's last result.
#[derive(Debug)]
pub struct SubsetSnapshot {
    /// Rendered with the fetch time on samples that have no timestamp; or, when the output
    /// broke `--sample-limit`, that error.
    pub rendered: Result<Rendered, ScrapeError>,
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

/// What the last finished scrape found, for the entry page (`GET /`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LastScrape {
    /// When its upstream fetch started, ms since the epoch.
    pub fetched_at_ms: i64,
    /// From the start to the published result.
    pub duration: Duration,
    /// Each target, with its error when it was left out.
    pub targets: Vec<(String, Option<String>)>,
    /// Each list (the default list first, as `None`) with its output series, or its error.
    pub lists: Vec<(Option<String>, Result<usize, String>)>,
    /// Why the scrape produced nothing, if it did not.
    pub error: Option<String>,
}

/// `/source` requests served at once; more are answered 503 at once. Each is an upstream fetch
/// of its own, streamed to its client, so it cannot be shared as `/analyze` passes are.
pub(crate) const MAX_SOURCE_REQUESTS: usize = 2;

/// State shared by all handlers.
pub struct AppState {
    cfg: ServerConfig,
    resolver: Option<DnsResolver>,
    /// Engine, subset names and client of the current configuration.
    live: ArcSwap<Live>,
    /// One reload at a time.
    reload_lock: tokio::sync::Mutex<()>,
    /// The `/metrics` scrape in flight; its generation numbers the scrape's results.
    scrapes: Arc<SingleFlight<ScrapeOutcome>>,
    /// The named subsets' last results.
    subsets: ArcSwapOption<SubsetSnapshots>,
    /// What the last finished scrape found (targets, lists, timing).
    last_scrape: ArcSwapOption<LastScrape>,
    ready: AtomicBool,
    /// Whether the last scrape request accepted gzip; true until one is seen (Prometheus
    /// always does). Scrapes that no request starts (the warm-up, a reload's) keep their
    /// bodies in this form, so the first scrape does not hold the whole text only to
    /// compress it for the client that joins it.
    gzip_clients: AtomicBool,
    /// Self-metrics, shared with the listener.
    pub metrics: Arc<SelfMetrics>,
    /// Remote write (`--remote-write.config-file`): endpoints, push schedule, receiver.
    pub(crate) remote_write: Option<RemoteWriteState>,
    /// The scrape results that responses not yet written hold.
    pub(crate) held: Arc<HeldResults>,
    /// The `/analyze` pass in flight.
    pub(crate) analyses: Arc<SingleFlight<Analysis>>,
    /// `/source` requests being served.
    pub(crate) source_slots: Arc<tokio::sync::Semaphore>,
    /// The targets that have per-target self-metric series, with the last scrape that had
    /// each, for forgetting them after the staleness window.
    target_series: std::sync::Mutex<HashMap<String, Instant>>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("cfg", &self.cfg)
            .field("subset_names", &self.live.load().subset_names)
            .finish_non_exhaustive()
    }
}

impl AppState {
    /// State for `cfg` and the loaded `relabel` configuration. With a relabel file, a reload
    /// that finds the same text as `relabel.source` keeps the engine and its caches.
    pub fn new(cfg: ServerConfig, relabel: RelabelConfig) -> Result<Arc<Self>, StartError> {
        let up = &cfg.upstream;
        let resolver = if up.spec.is_fan_out() {
            Some(DnsResolver::new(
                up.dns_server,
                Duration::from_secs(2),
                up.ip_family,
            )?)
        } else {
            None
        };
        warn_about_client_settings(up);
        let mut metrics = SelfMetrics::new();
        let remote_write = match &cfg.remote_write {
            Some(settings) => Some(RemoteWriteState::start(
                settings,
                |s| relabel.config.subsets.iter().any(|(name, _)| name == s),
                metrics.registry_mut(),
            )?),
            None => None,
        };
        let live = Live::new(&cfg, relabel)?;
        let metrics = Arc::new(metrics);
        metrics.record_reload(true);
        metrics.init_subsets(live.subset_names.iter().map(String::as_str));
        match &up.spec {
            UpstreamSpec::Static { uri } => metrics.init_target(&Target::fixed(uri).name),
            spec => metrics.init_upstream(&spec.to_string()),
        }
        Ok(Arc::new(Self {
            resolver,
            live: ArcSwap::from_pointee(live),
            reload_lock: tokio::sync::Mutex::new(()),
            scrapes: SingleFlight::new(),
            subsets: ArcSwapOption::empty(),
            last_scrape: ArcSwapOption::empty(),
            ready: AtomicBool::new(false),
            gzip_clients: AtomicBool::new(true),
            held: HeldResults::new(Arc::clone(&metrics)),
            analyses: SingleFlight::new(),
            source_slots: Arc::new(tokio::sync::Semaphore::new(MAX_SOURCE_REQUESTS)),
            target_series: std::sync::Mutex::new(HashMap::new()),
            metrics,
            remote_write,
            cfg,
        }))
    }

    /// The counter state of every list (shared by the engines reloads build).
    pub(crate) fn counters(&self) -> super::scrape::Counters {
        self.live.load().counters.clone()
    }

    /// The settings.
    pub fn config(&self) -> &ServerConfig {
        &self.cfg
    }

    /// The configured subset names now, in configuration order (a reload may change them).
    pub fn subset_names(&self) -> Vec<String> {
        self.live.load().subset_names.clone()
    }

    /// The last result of subset `name`; `None` before the first scrape that computed it.
    pub fn subset_snapshot(&self, name: &str) -> Option<Arc<SubsetSnapshot>> {
        self.subsets.load().as_ref()?.by_name.get(name).cloned()
    }

    /// What the last finished scrape found; `None` before the first one.
    pub fn last_scrape(&self) -> Option<Arc<LastScrape>> {
        self.last_scrape.load_full()
    }

    /// The upstream client of the current configuration.
    pub fn client(&self) -> Client {
        self.live.load().client.clone()
    }

    /// True once an upstream answered in full.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Relaxed)
    }

    pub(super) fn mark_ready(&self) {
        self.ready.store(true, Ordering::Relaxed);
    }

    /// The targets of the upstream right now (fan-out upstreams are resolved again each call).
    pub async fn targets(&self) -> Result<Vec<Target>, ResolveError> {
        match (&self.cfg.upstream.spec, &self.resolver) {
            (UpstreamSpec::Static { uri }, _) => Ok(vec![Target::fixed(uri)]),
            (spec, Some(r)) => r.targets(spec).await,
            // `new` builds a resolver for every fan-out spec.
            (_, None) => Err(ResolveError::Empty {
                name: self.cfg.upstream.spec.to_string(),
            }),
        }
    }

    /// The result of the scrape in flight, or of a new one (see [`super::flight`]): the scrape
    /// runs until the latest deadline of the requests waiting for it (at most
    /// `--scrape-timeout` from its start); this request waits as `patience` says. A scrape
    /// this request starts keeps its bodies as gzip only when `gzip` (the request accepts it:
    /// see [`super::encoding::Kept`]); one it joins is in the form its starter asked for.
    /// `gzip` is remembered for the scrapes no request starts ([`AppState::background_gzip`]).
    pub async fn scrape(
        self: &Arc<Self>,
        patience: Patience,
        gzip: bool,
    ) -> Result<Arc<ScrapeOutcome>, FlightError> {
        self.gzip_clients.store(gzip, Ordering::Relaxed);
        let state = Arc::clone(self);
        let joined = self
            .scrapes
            .run(
                patience,
                self.cfg.upstream.scrape_timeout,
                move |generation, deadline| async move {
                    state.scrape_now(generation, deadline, gzip).await
                },
            )
            .await?;
        if joined.shared {
            self.metrics.scrapes_shared.inc();
        }
        Ok(joined.value)
    }

    /// Waits for the scrape in flight, if any.
    pub async fn wait_for_scrape(&self) {
        if let Some(pass) = self.scrapes.current() {
            let _ = pass.await;
        }
    }

    /// One scrape from resolution to publishing; runs in the flight's task.
    async fn scrape_now(&self, generation: u64, deadline: Deadline, gzip: bool) -> ScrapeOutcome {
        let started = Instant::now();
        let fetched_at_ms = now_ms();
        // Resolution counts against the scrape's timeout too: a slow DNS server must not make the
        // answer miss Prometheus' deadline.
        let report = match deadline.run(self.targets()).await {
            Ok(Ok(targets)) => {
                // The configuration of this scrape, kept to its end even if a reload swaps in
                // another.
                let live = self.live.load_full();
                let engine = Arc::clone(&live.engine).lock_owned().await;
                Ok(scrape::run(ScrapeInput {
                    engine,
                    client: live.client.clone(),
                    targets,
                    fetch: self.cfg.limits.fetch_options(deadline.clone()),
                    fetched_at_ms,
                    sample_limit: self.cfg.limits.sample_limit,
                    target_health: self.cfg.target_health,
                    require_all: self.cfg.upstream.require_all,
                    untimed: self
                        .remote_write
                        .as_ref()
                        .map(RemoteWriteState::pushed_subsets)
                        .unwrap_or_default(),
                    keep_gzip: gzip,
                    threads: crate::pipeline::parallel::threads_for(self.cfg.threads),
                })
                .await)
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(ResolveError::Lookup {
                name: self.cfg.upstream.spec.to_string(),
                cause: format!("timeout after {:?}", deadline.timeout()),
            }),
        };
        self.publish(report, generation, started, fetched_at_ms)
    }

    /// The one place a scrape's results become visible: self-metrics and logs from `report`,
    /// then the subsets' snapshots (swapped in together) and readiness. Returns the answer of
    /// the `/metrics` requests that wait for this scrape.
    fn publish(
        &self,
        report: Result<ScrapeReport, ResolveError>,
        generation: u64,
        started: Instant,
        fetched_at_ms: i64,
    ) -> ScrapeOutcome {
        let m = &self.metrics;
        let upstream = self.cfg.upstream.spec.to_string();
        if let Ok(r) = &report {
            self.note_targets(&r.targets);
        }
        let report = match report {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(upstream = %upstream, error = %e, "scrape failed");
                self.last_scrape.store(Some(Arc::new(LastScrape {
                    fetched_at_ms,
                    duration: started.elapsed(),
                    targets: Vec::new(),
                    lists: Vec::new(),
                    error: Some(e.to_string()),
                })));
                m.upstream_errors
                    .get_or_create(&ErrorLabels {
                        target: upstream.clone(),
                        cause: "resolve",
                    })
                    .inc();
                return ScrapeOutcome {
                    result: Err(ScrapeError::Resolve {
                        upstream,
                        source: e,
                    }),
                    fetched_at_ms,
                    untimed: UntimedLists::new(),
                };
            }
        };
        for target in &report.targets {
            record_target(m, target);
        }
        let duplicates: u64 = report.targets.iter().map(|t| t.duplicates).sum();
        if duplicates > 0 {
            m.duplicate_samples.inc_by(duplicates);
            tracing::warn!(
                upstream = %upstream,
                samples = duplicates,
                "the same series more than once in an upstream body: the first sample is kept, the repeats are ignored"
            );
        }
        let ok = report.targets_ok();
        m.targets.set(report.targets.len() as i64);
        m.targets_up.set(ok as i64);
        m.cached_targets.set(report.cached_targets as i64);
        let mut last = LastScrape {
            fetched_at_ms,
            duration: Duration::ZERO,
            targets: report
                .targets
                .iter()
                .map(|t| {
                    (
                        t.target.name.clone(),
                        t.result.as_ref().err().map(|e| e.to_string()),
                    )
                })
                .collect(),
            lists: Vec::new(),
            error: None,
        };
        let Some(output) = report.output else {
            let failure = report.failure(&upstream);
            last.duration = started.elapsed();
            last.error = Some(failure.to_string());
            self.last_scrape.store(Some(Arc::new(last)));
            return ScrapeOutcome {
                result: Err(failure),
                fetched_at_ms,
                untimed: UntimedLists::new(),
            };
        };
        let caches = &output.caches;
        m.relabel_cache_entries.set(caches.relabel_entries as i64);
        m.series_cache_entries.set(caches.series_entries as i64);
        m.series_cache_hits.inc_by(caches.series_hits);
        m.series_cache_misses.inc_by(caches.series_misses);

        let mut by_name = HashMap::new();
        let mut default = None;
        let mut untimed = UntimedLists::new();
        for list in output.lists {
            if let (Some(name), Some(text)) = (&list.name, &list.untimed) {
                untimed.insert(name.clone(), text.clone());
            }
            let label = SubsetLabels {
                subset: list
                    .name
                    .clone()
                    .unwrap_or_else(|| DEFAULT_SUBSET_LABEL.to_owned()),
            };
            record_list(m, &label, &list);
            last.lists.push((
                list.name.clone(),
                match &list.body {
                    Ok(_) => Ok(list.series),
                    Err(e) => Err(e.to_string()),
                },
            ));
            if list.body.is_ok() {
                m.record_list_success(&label, fetched_at_ms);
            }
            let body = list.body.map_err(|e| {
                m.sample_limit_exceeded.get_or_create(&label).inc();
                tracing::warn!(
                    upstream = %upstream,
                    subset = %label.subset,
                    series = e.series,
                    limit = e.limit,
                    "sample limit exceeded"
                );
                ScrapeError::SampleLimit {
                    upstream: upstream.clone(),
                    subset: list.name.clone(),
                    source: e,
                }
            });
            let quoted = list.quoted_names;
            let om = list.openmetrics;
            match list.name {
                None => default = Some((body, quoted, om)),
                Some(n) => {
                    let snapshot = SubsetSnapshot {
                        rendered: body
                            .map(|b| Rendered::kept(b, generation, quoted).with_openmetrics(om)),
                        series: list.series,
                    };
                    by_name.insert(n, Arc::new(snapshot));
                }
            }
        }
        self.subsets.store(Some(Arc::new(SubsetSnapshots {
            fetched_at_ms,
            by_name,
        })));
        self.mark_ready();
        last.duration = started.elapsed();
        self.last_scrape.store(Some(Arc::new(last)));
        let (default, quoted, om) =
            default.unwrap_or_else(|| (Ok(Kept::Text(Bytes::new())), false, None));
        tracing::info!(
            upstream = %upstream,
            targets_ok = ok,
            targets_failed = report.targets.len() - ok,
            bytes_out = default.as_ref().map_or(0, Kept::text_len),
            duration_ms = started.elapsed().as_millis() as u64,
            "scrape done"
        );
        ScrapeOutcome {
            result: default.map(|b| Rendered::kept(b, generation, quoted).with_openmetrics(om)),
            fetched_at_ms,
            untimed,
        }
    }

    /// Remembers that `targets` were just scraped, and
    /// removes the self-metric series of targets unseen for the staleness window: with a
    /// `dns+` upstream whose pods come and go, `/-/metrics` would otherwise grow by a few
    /// series per pod ever seen.
    fn note_targets(&self, targets: &[TargetReport]) {
        let now = Instant::now();
        let window = self.cfg.staleness_window;
        let mut seen = self.target_series.lock().unwrap_or_else(|e| e.into_inner());
        for t in targets {
            seen.insert(t.target.name.clone(), now);
        }
        seen.retain(|name, last_seen| {
            let keep = now.duration_since(*last_seen) < window;
            if !keep {
                self.metrics.forget_target(name);
                tracing::debug!(target_addr = %name, "target gone for the staleness window: its self-metric series are removed");
            }
            keep
        });
    }

    /// Re-reads the configuration files and swaps in what changed; returns a one-line summary,
    /// or the error while the previous configuration keeps serving. Logs and records the result
    /// in the self-metrics either way. Subsets the reload adds are filled by a scrape started
    /// now ([`AppState::fill_new_subsets`]), not at the next `/metrics` request.
    pub async fn reload(self: &Arc<Self>) -> Result<String, ReloadError> {
        let _one_at_a_time = self.reload_lock.lock().await;
        let result = self.reload_locked().await;
        self.metrics.record_reload(result.is_ok());
        match &result {
            Ok(summary) => tracing::info!(result = %summary, "configuration reloaded"),
            Err(e) => tracing::error!(
                error = %e,
                "configuration reload failed; still serving the previous configuration"
            ),
        }
        result
    }

    /// Everything is read and checked before anything is swapped in: a bad relabel file or a
    /// bad remote-write file (or one whose `subset` the new relabel file lacks) keeps both.
    async fn reload_locked(self: &Arc<Self>) -> Result<String, ReloadError> {
        let current = self.live.load_full();
        let found = current.reload(&self.cfg)?;
        let subset_names = match &found {
            Reloaded::Unchanged(_) => &current.subset_names,
            Reloaded::Changed { live, .. } => &live.subset_names,
        };
        let remote_write = match &self.remote_write {
            Some(rw) => rw.prepare_reload(subset_names).await?,
            None => None,
        };
        let mut summary = match found {
            Reloaded::Unchanged(summary) => summary,
            Reloaded::Changed { live, summary } => {
                for gone in current
                    .subset_names
                    .iter()
                    .filter(|n| !live.subset_names.contains(n))
                {
                    self.metrics.forget_subset(gone);
                }
                let added: Vec<String> = live
                    .subset_names
                    .iter()
                    .filter(|n| !current.subset_names.contains(n))
                    .cloned()
                    .collect();
                self.live.store(live);
                if !added.is_empty() {
                    self.metrics.init_subsets(added.iter().map(String::as_str));
                    self.fill_new_subsets();
                }
                summary
            }
        };
        match (&self.remote_write, remote_write) {
            (Some(rw), Some(prepared)) => {
                summary = format!("{summary}; {}", rw.apply_reload(prepared).await);
            }
            (Some(_), None) => summary.push_str("; remote write config unchanged"),
            (None, _) => {}
        }
        Ok(summary)
    }
}

impl AppState {
    /// The form a scrape that no request starts keeps its bodies in: gzip unless the last
    /// scrape request did not accept it (see [`super::encoding::Kept`]).
    pub(crate) fn background_gzip(&self) -> bool {
        self.gzip_clients.load(Ordering::Relaxed)
    }

    /// Starts a scrape with the configuration just swapped in, so that subsets a reload added
    /// are served at once (a scrape computes every subset). It shares the single-flight: when
    /// no scrape is in flight, the new one is registered before this returns, so a request for
    /// a new subset waits for it (see the `/metrics/{subset}` handler). A scrape in flight
    /// started with the old configuration and does not compute the new subsets: the new
    /// scrape starts when it ends.
    fn fill_new_subsets(self: &Arc<Self>) {
        let timeout = self.cfg.upstream.scrape_timeout;
        let gzip = self.background_gzip();
        match self.scrapes.current() {
            // The pass runs in its own task; its result is published like any other. It is in
            // the slot when this returns, so a request for a new subset waits for it.
            None => {
                let state = Arc::clone(self);
                drop(self.scrapes.join_or_start(
                    Patience::from_now(timeout),
                    timeout,
                    move |generation, deadline| async move {
                        state.scrape_now(generation, deadline, gzip).await
                    },
                ));
            }
            Some(old) => {
                let state = Arc::clone(self);
                tokio::spawn(async move {
                    let _ = old.await;
                    let gzip = state.background_gzip();
                    let _ = state.scrape(Patience::from_now(timeout), gzip).await;
                });
            }
        }
    }
}

/// Start-up warnings about upstream settings that weaken or do nothing.
fn warn_about_client_settings(cfg: &UpstreamConfig) {
    let c = &cfg.client;
    if cfg.spec.is_https() {
        if c.insecure_skip_verify {
            tracing::warn!(
                upstream = %cfg.spec,
                "--upstream.insecure-skip-verify: the upstream's certificate is NOT verified; anyone on the path can impersonate it"
            );
        }
    } else if c.has_tls_settings() {
        tracing::warn!(
            upstream = %cfg.spec,
            "--upstream.* TLS flags are set but the upstream is plain http: they have no effect"
        );
    }
    if !cfg.spec.is_https() && (c.bearer_token_file.is_some() || c.basic_auth_user.is_some()) {
        tracing::warn!(
            upstream = %cfg.spec,
            "upstream credentials are sent over plain http, unencrypted"
        );
    }
}

/// Counts one list's output.
fn record_list(m: &SelfMetrics, label: &SubsetLabels, list: &ListOutput) {
    m.series_written
        .get_or_create(label)
        .set(list.series as i64);
    m.dropped_by_relabel
        .get_or_create(label)
        .inc_by(list.dropped_by_relabel);
    m.dropped_nameless
        .get_or_create(label)
        .inc_by(list.dropped_nameless);
    m.aggregate_bytes
        .get_or_create(label)
        .set(list.aggregate_bytes as i64);
    m.aggregate_families
        .get_or_create(label)
        .set(list.families as i64);
    m.carry_state_bytes
        .get_or_create(label)
        .set(list.counter_bytes as i64);
    let c = &list.counters;
    m.counter_inputs
        .get_or_create(label)
        .set(c.inputs_tracked as i64);
    m.counter_outputs_carried
        .get_or_create(label)
        .set(c.outputs_carried as i64);
    m.counter_resets.get_or_create(label).inc_by(c.resets);
    m.counter_target_restarts
        .get_or_create(label)
        .inc_by(c.target_restarts);
    m.counter_inputs_expired
        .get_or_create(label)
        .inc_by(c.inputs_expired);
    m.counter_outputs_expired
        .get_or_create(label)
        .inc_by(c.outputs_expired);
    m.counter_first_samples_skipped
        .get_or_create(label)
        .inc_by(c.first_samples_skipped);
    m.quantile_series_dropped
        .get_or_create(label)
        .inc_by(list.summed_drops.quantiles);
    m.summed_series_dropped
        .get_or_create(label)
        .inc_by(list.summed_drops.by_rule);
    m.uncommon_buckets_dropped
        .get_or_create(label)
        .inc_by(list.summed_drops.buckets);
    if list.summed_drops.buckets > 0 && !BUCKET_DROP_LOGGED.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            subset = %label.subset,
            series = list.summed_drops.buckets,
            "histograms summed from inputs with different bucket bounds: only the bounds common to all inputs are served; see metric_gate_uncommon_buckets_dropped_total (logged once)"
        );
    }
    if list.summed_drops.quantiles > 0 && !QUANTILE_DROP_LOGGED.swap(true, Ordering::Relaxed) {
        tracing::warn!(
            subset = %label.subset,
            series = list.summed_drops.quantiles,
            "summary quantile series that several inputs fall into are not served (a quantile cannot be summed); see metric_gate_quantile_series_dropped_total (logged once)"
        );
    }
}

/// The quantile drop is logged once per process; the self-metric counts every scrape.
static QUANTILE_DROP_LOGGED: AtomicBool = AtomicBool::new(false);

/// The uncommon-bucket drop is logged once per process, as the quantile drop.
static BUCKET_DROP_LOGGED: AtomicBool = AtomicBool::new(false);

/// Logs and counts one target's result.
fn record_target(m: &SelfMetrics, run: &TargetReport) {
    let target = run.target.name.clone();
    m.init_target(&target);
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

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
