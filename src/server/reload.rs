//! Reloading the configuration on SIGHUP and `POST /-/reload`.
//!
//! # What is re-read
//! - `--relabel-file`: parsed and validated in full before anything is replaced. When the text
//!   changed, a new [`Engine`] is built: every target's pipeline, series cache, relabel caches
//!   and aggregators start empty, because the series cache maps raw series to outcomes the old
//!   rules computed. The subset names change with it (new ones are served, removed ones 404).
//!   A config given inline with `--relabel` (or none at all) cannot change: it is kept.
//! - The TLS files (`--upstream.ca-file`, `--upstream.cert-file`, `--upstream.key-file`): when
//!   their contents changed, a new client is built (so renewed certificates are picked up
//!   without a restart); its connection pool starts empty. Credential files need no reload:
//!   they are read on every upstream request.
//!
//! # All or nothing
//! Everything is read and built first; only when all of it is valid is the new state swapped
//! in, in one store. A bad file leaves the running configuration untouched, logs the error
//! (with the file and the rule or line) and sets `metric_gate_config_last_reload_successful`
//! to 0. A reload whose files are all unchanged keeps the current state, caches included, so
//! a config-reloader that reloads on every ConfigMap event costs nothing.
//!
//! # Scrapes in flight
//! A scrape holds the [`Live`] it started with (its engine and client) to its end, so a reload
//! during a scrape never mixes rules; the next scrape uses the new configuration. Requests that
//! join a scrape in flight (single-flight) get that scrape's result.

use std::sync::Arc;

use crate::upstream::{Client, TlsFiles};

use super::config::{RelabelConfig, RelabelSource};
use super::scrape::Engine;
use super::{AppState, Live};

impl AppState {
    /// Re-reads the configuration files and swaps in what changed; returns a one-line summary,
    /// or the error while the previous configuration keeps serving. Logs and records the result
    /// in the self-metrics either way.
    pub async fn reload(&self) -> Result<String, String> {
        let _one_at_a_time = self.reload_lock.lock().await;
        let result = self.try_reload();
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

    fn try_reload(&self) -> Result<String, String> {
        let current = self.live.load_full();
        let up = &self.cfg.upstream;

        let relabel = current.relabel.reread().map_err(|e| e.to_string())?;

        let tls_files = TlsFiles::read(&up.client)?;
        let client = if tls_files == current.tls_files {
            None
        } else {
            Some(Client::new(&up.client, &tls_files, &up.spec).map_err(|e| e.to_string())?)
        };

        if relabel.is_none() && client.is_none() {
            return Ok(match &current.relabel {
                RelabelSource::File { path, .. } => {
                    format!("configuration unchanged ({} and TLS files)", path.display())
                }
                RelabelSource::Fixed => {
                    "configuration unchanged (no --relabel-file to re-read; TLS files unchanged)"
                        .to_owned()
                }
            });
        }

        let mut changed = Vec::new();
        let (engine, subset_names, relabel) = match relabel {
            Some(RelabelConfig { config, source }) => {
                changed.push(format!(
                    "relabel config with {} subsets (caches cleared)",
                    config.subsets.len()
                ));
                (
                    Arc::new(tokio::sync::Mutex::new(Engine::new(
                        &config,
                        up.spec.is_fan_out(),
                        self.cfg.limits.labels,
                    ))),
                    config.subsets.iter().map(|(n, _)| n.clone()).collect(),
                    source,
                )
            }
            None => (
                Arc::clone(&current.engine),
                current.subset_names.clone(),
                current.relabel.clone(),
            ),
        };
        if client.is_some() {
            changed.push("upstream TLS files".to_owned());
        }
        for gone in current
            .subset_names
            .iter()
            .filter(|n| !subset_names.contains(n))
        {
            self.metrics.forget_subset(gone);
        }
        self.live.store(Arc::new(Live {
            engine,
            subset_names,
            client: client.unwrap_or_else(|| current.client.clone()),
            relabel,
            tls_files,
        }));
        Ok(format!("reloaded: {}", changed.join(", ")))
    }
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
