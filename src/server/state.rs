//! The server's shared state: the configuration, what a reload replaces ([`Live`]), the
//! single-flight slot of `/metrics` scrapes, the subsets' last results, readiness and the
//! self-metrics.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::{ArcSwap, ArcSwapOption};
use futures_util::future::{BoxFuture, FutureExt, Shared};

use crate::upstream::{
    Client, ClientError, DnsResolver, ResolveError, ResolverConfigError, Target, UpstreamSpec,
};

use super::config::{RelabelConfig, ServerConfig, UpstreamConfig};
use super::metrics::SelfMetrics;
use super::reload::{Live, ReloadError, Reloaded};
use super::scrape::{self, ScrapeOutcome, SubsetSnapshots};

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

type Flight = Shared<BoxFuture<'static, Arc<ScrapeOutcome>>>;

/// State shared by all handlers.
pub struct AppState {
    pub(super) cfg: ServerConfig,
    resolver: Option<DnsResolver>,
    /// Engine, subset names and client of the current configuration.
    pub(super) live: ArcSwap<Live>,
    /// One reload at a time.
    reload_lock: tokio::sync::Mutex<()>,
    /// The scrape in flight, if any, with its generation number.
    inflight: Mutex<Option<(u64, Flight)>>,
    generation: AtomicU64,
    /// The named subsets' last results.
    pub(super) subsets: ArcSwapOption<SubsetSnapshots>,
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
                        Arc::new(scrape::run(Arc::clone(&state), timeout).await)
                    });
                    let f = task
                        .map(|r| match r {
                            Ok(o) => o,
                            Err(e) => Arc::new(ScrapeOutcome {
                                result: Err(format!("scrape task failed: {e}")),
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
                self.live.store(Arc::new(live));
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
