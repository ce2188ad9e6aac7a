//! The proxy server: axum router, shared state, single-flight scrapes, lifecycle.
//!
//! # Concurrent `/metrics` requests
//! Single-flight: a request arriving while a scrape is in flight waits for that scrape and
//! answers with its result; otherwise it starts a new scrape. An HA pair of Prometheus servers
//! therefore costs one upstream request when their scrapes overlap, and both get the same,
//! consistent answer. The scrape runs in its own task, so a client that disconnects does not
//! cancel it (the relabel programs it holds always come back to the [`scrape::Engine`]).
//! Each request's `X-Prometheus-Scrape-Timeout-Seconds` is its own: the scrape runs until the
//! latest deadline among the requests waiting for it (at most `--scrape-timeout`), and each
//! request stops waiting at its own deadline (`504`), so a client with a short timeout never
//! cuts the scrape short for the others (see [`flight`]).
//!
//! # Subsets
//! Every scrape also computes each named subset. Their rendered results are swapped in together
//! (one `ArcSwap` store of [`SubsetSnapshots`]), so `/metrics/{subset}` never sees half
//! of one scrape and half of another.
//!
//! # Reloading
//! What a reload may replace (the relabel programs with their caches, the subset names, the
//! upstream client) lives in one `reload::Live` value behind an `ArcSwap`: a scrape takes the
//! current one when it starts and keeps it to its end, so a reload never changes a scrape
//! midway. See [`reload`].
//!
//! # Where things are
//! - [`config`]: the plain configuration the CLI builds (nothing in the server reads flags).
//! - `state`: [`AppState`], the single-flight slot, and `AppState::publish`, the one place
//!   where a scrape's report becomes self-metrics, logs, the answer and the subsets' snapshots.
//! - [`scrape`]: one scrape, from explicit inputs ([`scrape::ScrapeInput`]) to a report.
//! - [`reload`]: what a reload replaces, and how it is rebuilt from the files.
//! - [`flight`]: single-flight passes (`/metrics`, `/analyze`) with a deadline per request.
//! - `handlers`: the router and the endpoints; `request`: what they share (the one error type
//!   that turns failures into responses, a request's patience from Prometheus' timeout header);
//!   `analyze`: `GET /analyze` (text report, explorer page and what-ifs from one shared pass),
//!   with `analysis`, the types a pass produces.
//! - [`responses`]: shared response bodies, the bound on what unread responses hold, the
//!   response write timeout.
//! - [`listener`]: the accept loop, with [`web_config`] and basic auth around the router;
//!   [`bind`]: the listen socket (dual-stack by default).
//! - [`push`]: remote write: the push loop, `POST /api/v1/write`, its reload and shutdown.

mod analysis;
mod analyze;
mod basic_auth;
pub mod bind;
pub mod config;
pub mod encoding;
pub mod flight;
mod gzip_parts;
mod handlers;
pub mod listener;
pub mod metrics;
pub mod metrics_format;
pub mod push;
pub mod reload;
mod request;
pub mod responses;
pub mod scrape;
mod state;
pub mod web_config;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;

pub use config::{
    ListenerConfig, RelabelConfig, RelabelError, RelabelSource, RemoteWriteSettings, ScrapeLimits,
    ServerConfig, UpstreamConfig,
};
pub use reload::ReloadError;
pub use state::{AppState, LastScrape, ScrapeOutcome, StartError, SubsetSnapshot, SubsetSnapshots};

/// Serves `state` on `listener`, with the listener settings of its configuration (web config,
/// connection cap, timeouts), until `shutdown` completes; then finishes in-flight requests.
/// With remote write, the push loop runs meanwhile, and at the end the endpoints are flushed
/// (stale markers for every series, then the queues) within `--remote-write.flush-deadline`.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let listener_cfg = state.config().listener.clone();
    let warm_up = state
        .config()
        .warm_up
        .then(|| tokio::spawn(warm_up(Arc::clone(&state))));
    let push = state
        .remote_write
        .is_some()
        .then(|| tokio::spawn(push::push_loop(Arc::clone(&state))));
    let saver = state
        .config()
        .state_file
        .clone()
        .map(|path| tokio::spawn(save_state_periodically(Arc::clone(&state), path)));
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
    if let Some(p) = push {
        p.abort();
    }
    if let Some(rw) = &state.remote_write {
        rw.shutdown().await;
    }
    if let Some(s) = saver {
        s.abort();
    }
    if let Some(path) = &state.config().state_file {
        save_state(&state, path).await;
        tracing::info!(path = %path.display(), "counter state saved");
    }
    result
}

/// Writes the counter state to `path` every [`config::STATE_FILE_INTERVAL`].
async fn save_state_periodically(state: Arc<AppState>, path: std::path::PathBuf) {
    let mut tick = tokio::time::interval(config::STATE_FILE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        save_state(&state, &path).await;
    }
}

/// One write at a time: the shutdown's write waits for a periodic one still running (an
/// aborted task's blocking write goes on), so the newest state is the one left in the file.
static SAVING: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Writes the counter state to `path` atomically, off the async workers; a failure is logged
/// (the state stays in memory and the next write tries again).
async fn save_state(state: &AppState, path: &std::path::Path) {
    let counters = state.counters();
    let path = path.to_owned();
    let written = tokio::task::spawn_blocking(move || {
        let _one = SAVING.lock().unwrap_or_else(|e| e.into_inner());
        let bytes = counters.encode();
        crate::counters::state_file::write_atomic(&path, &bytes).map(|()| bytes.len())
    })
    .await;
    match written {
        Ok(Ok(bytes)) => tracing::debug!(bytes, "counter state written"),
        Ok(Err(e)) => tracing::warn!(error = %e, "counter state not written"),
        Err(e) => tracing::warn!(error = %e, "counter state not written"),
    }
}

/// Scrapes until one scrape succeeds: 1 s, 2 s, 4 s ... 30 s apart.
async fn warm_up(state: Arc<AppState>) {
    let mut wait = Duration::from_secs(1);
    while !state.is_ready() {
        let patience = flight::Patience::from_now(state.config().upstream.scrape_timeout);
        let gzip = state.background_gzip();
        if state
            .scrape(patience, gzip)
            .await
            .is_ok_and(|o| o.result.is_ok())
        {
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

/// Reloads on every SIGHUP, for the life of the runtime. Installing the handler replaces the
/// default action (terminate), so call this before announcing that the server is up.
#[cfg(unix)]
pub fn reload_on_sighup(state: Arc<AppState>) -> std::io::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = signal(SignalKind::hangup())?;
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            tracing::info!("SIGHUP: reloading the configuration");
            // The result is logged and counted by `reload`.
            let _ = state.reload().await;
        }
    });
    Ok(())
}

/// Without Unix signals, reloads come only from `POST /-/reload`.
#[cfg(not(unix))]
pub fn reload_on_sighup(_state: Arc<AppState>) -> std::io::Result<()> {
    Ok(())
}

/// The server could not start, or stopped serving with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// The state could not be built (the upstream's resolver or client).
    #[error(transparent)]
    Start(#[from] StartError),
    /// The async runtime could not be started.
    #[error("starting the runtime: {0}")]
    Runtime(#[source] std::io::Error),
    /// The listen address could not be bound.
    #[error("listening on {addr}: {source}")]
    Listen {
        /// `--listen-address` and `--port`.
        addr: SocketAddr,
        /// Why binding failed.
        source: std::io::Error,
    },
    /// The SIGHUP handler could not be installed.
    #[error("installing the SIGHUP handler: {0}")]
    Signal(#[source] std::io::Error),
    /// Accepting connections failed.
    #[error("serving: {0}")]
    Serve(#[source] std::io::Error),
}

/// Server mode of the binary: listens on `config.listen` until SIGTERM or Ctrl-C.
pub fn run(config: ServerConfig, relabel: RelabelConfig) -> Result<(), ServerError> {
    let (tls, basic_auth) = config.listener.web.as_ref().map_or((false, false), |w| {
        let c = w.get();
        (c.tls.is_some(), c.auth.is_some())
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(ServerError::Runtime)?;
    runtime.block_on(async {
        let addr = config.listen;
        let state = AppState::new(config, relabel)?;
        let listen_error = |source| ServerError::Listen { addr, source };
        let listener = bind::bind(addr).map_err(listen_error)?;
        let local = listener.local_addr().map_err(listen_error)?;
        // Before the "listening" line: from then on a SIGHUP reloads instead of killing us.
        reload_on_sighup(Arc::clone(&state)).map_err(ServerError::Signal)?;
        tracing::info!(
            addr = %local,
            upstream = %state.config().upstream.spec,
            subsets = state.subset_names().len(),
            tls,
            basic_auth,
            max_connections = state.config().listener.max_connections,
            "listening"
        );
        serve(listener, state, shutdown_signal())
            .await
            .map_err(ServerError::Serve)?;
        tracing::info!("stopped");
        Ok(())
    })
}
