//! The proxy server: axum router, shared state, single-flight scrapes, lifecycle.
//!
//! # Concurrent `/metrics` requests
//! Single-flight: a request arriving while a scrape is in flight waits for that scrape and
//! answers with its result; otherwise it starts a new scrape. An HA pair of Prometheus servers
//! therefore costs one upstream request when their scrapes overlap, and both get the same,
//! consistent answer. The scrape runs in its own task, so a client that disconnects does not
//! cancel it (the relabel programs it holds always come back to the [`scrape::Engine`]).
//! The first request's `X-Prometheus-Scrape-Timeout-Seconds` sets the flight's timeout.
//!
//! # Subsets
//! Every scrape also computes each named subset. Their rendered results are swapped in together
//! (one `ArcSwap` store of [`scrape::SubsetSnapshots`]), so `/metrics/{subset}` never sees half
//! of one scrape and half of another.
//!
//! # Reloading
//! What a reload may replace (the relabel programs with their caches, the subset names, the
//! upstream client) lives in one [`Live`] value behind an `ArcSwap`: a scrape takes the current
//! one when it starts and keeps it to its end, so a reload never changes a scrape midway. See
//! [`reload`].

mod basic_auth;
pub mod config;
pub mod encoding;
mod handlers;
pub mod listener;
pub mod metrics;
pub mod reload;
pub mod scrape;
pub mod web_config;

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::{ArcSwap, ArcSwapOption};
use futures_util::future::{BoxFuture, FutureExt, Shared};
use tokio::net::TcpListener;

use crate::upstream::{Client, DnsResolver, ResolveError, Target, TlsFiles, UpstreamSpec};

pub use config::{
    RelabelConfig, RelabelError, RelabelSource, ScrapeLimits, ServerConfig, UpstreamConfig,
};
use metrics::SelfMetrics;
use scrape::{Engine, ScrapeOutcome, SubsetSnapshots};

type Flight = Shared<BoxFuture<'static, Arc<ScrapeOutcome>>>;

/// What a reload replaces, swapped as one value (see the module docs).
pub(crate) struct Live {
    /// Programs and buffers; locked only by the scrape in flight.
    pub(crate) engine: Arc<tokio::sync::Mutex<Engine>>,
    /// Subset names in configuration order.
    pub(crate) subset_names: Vec<String>,
    /// The upstream client (TLS settings and connection pool).
    pub(crate) client: Client,
    /// Where the relabel configuration of the engine came from (with the file's text).
    relabel: RelabelSource,
    /// The TLS files the client was built from.
    tls_files: TlsFiles,
}

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
    pub fn new(cfg: ServerConfig, relabel: RelabelConfig) -> Result<Arc<Self>, String> {
        let up = &cfg.upstream;
        let resolver = if up.spec.is_fan_out() {
            Some(
                DnsResolver::new(up.dns_server, Duration::from_secs(2))
                    .map_err(|e| e.to_string())?,
            )
        } else {
            None
        };
        warn_about_client_settings(up);
        let tls_files = TlsFiles::read(&up.client)?;
        let client = Client::new(&up.client, &tls_files, &up.spec).map_err(|e| e.to_string())?;
        let live = Live {
            engine: Arc::new(tokio::sync::Mutex::new(Engine::new(
                &relabel.config,
                up.spec.is_fan_out(),
                cfg.limits.labels,
            ))),
            subset_names: relabel
                .config
                .subsets
                .iter()
                .map(|(n, _)| n.clone())
                .collect(),
            client,
            relabel: relabel.source,
            tls_files,
        };
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

    fn mark_ready(&self) {
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

/// Serves `state` on `listener`, with the listener settings of its configuration (web config,
/// connection cap, timeouts), until `shutdown` completes; then finishes in-flight requests.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener_cfg = state.cfg.listener.clone();
    let warm_up = state
        .cfg
        .warm_up
        .then(|| tokio::spawn(warm_up(Arc::clone(&state))));
    let app = handlers::router(Arc::clone(&state));
    let result = listener::serve_connections(
        listener,
        app,
        Arc::clone(&state.metrics),
        listener_cfg,
        shutdown,
    )
    .await;
    if let Some(w) = warm_up {
        w.abort();
    }
    result
}

/// Scrapes until one scrape succeeds: 1 s, 2 s, 4 s ... 30 s apart.
async fn warm_up(state: Arc<AppState>) {
    let mut wait = Duration::from_secs(1);
    while !state.is_ready() {
        let outcome = state.scrape(state.cfg.upstream.scrape_timeout).await;
        if outcome.result.is_ok() {
            return;
        }
        tokio::time::sleep(wait).await;
        wait = (wait * 2).min(Duration::from_secs(30));
    }
}

/// Completes on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown requested: finishing in-flight requests");
}

/// Server mode of the binary: listens on `config.listen` until SIGTERM or Ctrl-C.
pub fn run(config: ServerConfig, relabel: RelabelConfig) -> Result<(), String> {
    let (tls, basic_auth) = config.listener.web.as_ref().map_or((false, false), |w| {
        let c = w.get();
        (c.tls.is_some(), c.auth.is_some())
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("starting the runtime: {e}"))?;
    runtime.block_on(async {
        let addr = config.listen;
        let state = AppState::new(config, relabel)?;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| format!("listening on {addr}: {e}"))?;
        let local = listener.local_addr().map_err(|e| e.to_string())?;
        // Before the "listening" line: from then on a SIGHUP reloads instead of killing us.
        reload::reload_on_sighup(Arc::clone(&state))
            .map_err(|e| format!("installing the SIGHUP handler: {e}"))?;
        tracing::info!(
            addr = %local,
            upstream = %state.cfg.upstream.spec,
            subsets = state.live.load().subset_names.len(),
            tls,
            basic_auth,
            max_connections = state.cfg.listener.max_connections,
            "listening"
        );
        serve(listener, state, shutdown_signal())
            .await
            .map_err(|e| format!("serving: {e}"))?;
        tracing::info!("stopped");
        Ok(())
    })
}
