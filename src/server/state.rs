//! The server's shared state: the configuration, what a reload replaces ([`Live`]), the
//! single-flight slot of `/metrics` scrapes, the subsets' last results, readiness and the
//! self-metrics.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arc_swap::{ArcSwap, ArcSwapOption};
use bytes::Bytes;
use futures_util::future::{BoxFuture, FutureExt, Shared};

use crate::upstream::{
    Client, ClientError, DnsResolver, FetchError, ResolveError, ResolverConfigError, Target,
    UpstreamSpec,
};

use super::config::{RelabelConfig, ServerConfig, UpstreamConfig};
use super::encoding::Rendered;
use super::metrics::{ErrorLabels, SelfMetrics, SubsetLabels, TargetLabels, DEFAULT_SUBSET_LABEL};
use super::reload::{Live, ReloadError, Reloaded};
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
}

/// What a `/metrics` request answers: the default list's output, or why there is none.
#[derive(Debug)]
pub struct ScrapeOutcome {
    /// The body, or why there is none (answered with a 502).
    pub result: Result<Rendered, ScrapeError>,
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

type Flight = Shared<BoxFuture<'static, Arc<ScrapeOutcome>>>;

/// State shared by all handlers.
pub struct AppState {
    cfg: ServerConfig,
    resolver: Option<DnsResolver>,
    /// Engine, subset names and client of the current configuration.
    live: ArcSwap<Live>,
    /// One reload at a time.
    reload_lock: tokio::sync::Mutex<()>,
    /// The scrape in flight, if any, with its generation number.
    inflight: Mutex<Option<(u64, Flight)>>,
    generation: AtomicU64,
    /// The named subsets' last results.
    subsets: ArcSwapOption<SubsetSnapshots>,
    ready: AtomicBool,
    /// Self-metrics, shared with the listener.
    pub metrics: Arc<SelfMetrics>,
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
            Some(DnsResolver::new(up.dns_server, Duration::from_secs(2))?)
        } else {
            None
        };
        warn_about_client_settings(up);
        let live = Live::new(&cfg, relabel)?;
        let metrics = Arc::new(SelfMetrics::new());
        metrics.record_reload(true);
        Ok(Arc::new(Self {
            resolver,
            live: ArcSwap::from_pointee(live),
            reload_lock: tokio::sync::Mutex::new(()),
            inflight: Mutex::new(None),
            generation: AtomicU64::new(0),
            subsets: ArcSwapOption::empty(),
            ready: AtomicBool::new(false),
            metrics,
            cfg,
        }))
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

    /// The result of the scrape in flight, or of a new one started now with `timeout`.
    pub async fn scrape(self: &Arc<Self>, timeout: Duration) -> Arc<ScrapeOutcome> {
        let flight = {
            let mut slot = self.inflight.lock().unwrap_or_else(|e| e.into_inner());
            match &*slot {
                Some((_, f)) => {
                    self.metrics.scrapes_shared.inc();
                    f.clone()
                }
                None => {
                    let generation = self.generation.fetch_add(1, Ordering::Relaxed);
                    let state = Arc::clone(self);
                    let task = tokio::spawn(async move {
                        // Later requests start a new scrape rather than reuse this result; the
                        // guard also frees the slot if the scrape panics.
                        let _clear = ClearFlight {
                            state: Arc::clone(&state),
                            generation,
                        };
                        Arc::new(state.scrape_now(timeout).await)
                    });
                    let f = task
                        .map(|r| match r {
                            Ok(o) => o,
                            Err(e) => Arc::new(ScrapeOutcome {
                                result: Err(ScrapeError::Task(e.to_string())),
                            }),
                        })
                        .boxed()
                        .shared();
                    *slot = Some((generation, f.clone()));
                    f
                }
            }
        };
        flight.await
    }

    /// One scrape from resolution to publishing; runs in the flight's task.
    async fn scrape_now(&self, timeout: Duration) -> ScrapeOutcome {
        let started = Instant::now();
        let fetched_at_ms = now_ms();
        let deadline = tokio::time::Instant::from_std(started + timeout);
        // Resolution counts against the scrape's timeout too: a slow DNS server must not make the
        // answer miss Prometheus' deadline.
        let report = match tokio::time::timeout_at(deadline, self.targets()).await {
            Ok(Ok(targets)) => {
                // The configuration of this scrape, kept to its end even if a reload swaps in
                // another.
                let live = self.live.load_full();
                let engine = Arc::clone(&live.engine).lock_owned().await;
                Ok(scrape::run(ScrapeInput {
                    engine,
                    client: live.client.clone(),
                    targets,
                    fetch: self.cfg.limits.fetch_options(deadline, timeout),
                    fetched_at_ms,
                    sample_limit: self.cfg.limits.sample_limit,
                    target_health: self.cfg.target_health,
                })
                .await)
            }
            Ok(Err(e)) => Err(e),
            Err(_) => Err(ResolveError::Lookup {
                name: self.cfg.upstream.spec.to_string(),
                cause: format!("timeout after {timeout:?}"),
            }),
        };
        self.publish(report, started, fetched_at_ms)
    }

    /// The one place a scrape's results become visible: self-metrics and logs from `report`,
    /// then the subsets' snapshots (swapped in together) and readiness. Returns the answer of
    /// the `/metrics` requests that wait for this scrape.
    fn publish(
        &self,
        report: Result<ScrapeReport, ResolveError>,
        started: Instant,
        fetched_at_ms: i64,
    ) -> ScrapeOutcome {
        let m = &self.metrics;
        let upstream = self.cfg.upstream.spec.to_string();
        let report = match report {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(upstream = %upstream, error = %e, "scrape failed");
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
                };
            }
        };
        for target in &report.targets {
            record_target(m, target);
        }
        let ok = report.targets_ok();
        m.targets.set(report.targets.len() as i64);
        m.targets_up.set(ok as i64);
        m.cached_targets.set(report.cached_targets as i64);
        let Some(output) = report.output else {
            return ScrapeOutcome {
                result: Err(report.failure(&upstream)),
            };
        };
        let caches = &output.caches;
        m.relabel_cache_entries.set(caches.relabel_entries as i64);
        m.series_cache_entries.set(caches.series_entries as i64);
        m.series_cache_hits.inc_by(caches.series_hits);
        m.series_cache_misses.inc_by(caches.series_misses);

        let mut by_name = HashMap::new();
        let mut default = None;
        for list in output.lists {
            let label = SubsetLabels {
                subset: list
                    .name
                    .clone()
                    .unwrap_or_else(|| DEFAULT_SUBSET_LABEL.to_owned()),
            };
            record_list(m, &label, &list);
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
            match list.name {
                None => default = Some(body),
                Some(n) => {
                    let snapshot = SubsetSnapshot {
                        rendered: body.map(Rendered::new),
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
        let default = default.unwrap_or_else(|| Ok(Bytes::new()));
        tracing::info!(
            upstream = %upstream,
            targets_ok = ok,
            targets_failed = report.targets.len() - ok,
            bytes_out = default.as_ref().map_or(0, Bytes::len),
            duration_ms = started.elapsed().as_millis() as u64,
            "scrape done"
        );
        ScrapeOutcome {
            result: default.map(Rendered::new),
        }
    }

    /// Re-reads the configuration files and swaps in what changed; returns a one-line summary,
    /// or the error while the previous configuration keeps serving. Logs and records the result
    /// in the self-metrics either way.
    pub async fn reload(&self) -> Result<String, ReloadError> {
        let _one_at_a_time = self.reload_lock.lock().await;
        let current = self.live.load_full();
        let result = current.reload(&self.cfg).map(|found| match found {
            Reloaded::Unchanged(summary) => summary,
            Reloaded::Changed { live, summary } => {
                for gone in current
                    .subset_names
                    .iter()
                    .filter(|n| !live.subset_names.contains(n))
                {
                    self.metrics.forget_subset(gone);
                }
                self.live.store(live);
                summary
            }
        });
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

/// Empties the in-flight slot when a scrape task ends, however it ends.
struct ClearFlight {
    state: Arc<AppState>,
    generation: u64,
}

impl Drop for ClearFlight {
    fn drop(&mut self) {
        let mut slot = self
            .state
            .inflight
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if matches!(&*slot, Some((g, _)) if *g == self.generation) {
            *slot = None;
        }
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
        .set(list.arena_bytes as i64);
}

/// Logs and counts one target's result.
fn record_target(m: &SelfMetrics, run: &TargetReport) {
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

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
