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
//!
//! This module builds the values; the server's state swaps them in (`AppState::reload`), one
//! reload at a time, and records the result.

use std::sync::Arc;

use crate::relabel::Config;
use crate::upstream::{Client, ClientError, TlsFiles};

use super::config::{RelabelConfig, RelabelError, RelabelSource, ServerConfig};
use super::scrape::{Counters, Engine};

/// What a reload may replace, swapped as one value: a scrape keeps the one it started with.
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
    /// The counter state, handed to the engine a reload builds.
    pub(crate) counters: Counters,
}

/// A reload failed; the previous configuration keeps serving.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    /// `--relabel-file` could not be read or is invalid.
    #[error(transparent)]
    Relabel(#[from] RelabelError),
    /// The TLS files could not be read, or the client could not be built from them.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// `--remote-write.config-file` could not be read, is invalid, pushes a subset the relabel
    /// configuration lacks, or names unusable files.
    #[error(transparent)]
    RemoteWrite(#[from] super::push::endpoints::RemoteWriteError),
}

/// What a reload found.
pub(crate) enum Reloaded {
    /// Nothing changed: the current value stays, caches included. The summary says what was
    /// read.
    Unchanged(String),
    /// The new value, and a summary of what changed.
    Changed {
        /// Replaces the current value.
        live: Arc<Live>,
        /// `reloaded: ...`.
        summary: String,
    },
}

impl Live {
    /// The engine, subset names and upstream client of `relabel` and `cfg`. Fails when the TLS
    /// files cannot be read or the client cannot be built from them.
    pub(crate) fn new(cfg: &ServerConfig, relabel: RelabelConfig) -> Result<Self, ClientError> {
        let up = &cfg.upstream;
        let tls_files = read_tls_files(cfg)?;
        let client = Client::new(&up.client, &tls_files, &up.spec)?;
        let counters = Counters::new(cfg.staleness_window);
        if let Some(path) = &cfg.state_file {
            counters.load_file(path);
        }
        Ok(Self {
            engine: engine(cfg, &relabel.config, counters.clone()),
            subset_names: subset_names(&relabel.config),
            client,
            relabel: relabel.source,
            tls_files,
            counters,
        })
    }

    /// Reads the configuration files again and builds what changed (see the module docs).
    pub(crate) fn reload(&self, cfg: &ServerConfig) -> Result<Reloaded, ReloadError> {
        let up = &cfg.upstream;
        let relabel = self.relabel.reread()?;
        let tls_files = read_tls_files(cfg)?;
        let client = if tls_files == self.tls_files {
            None
        } else {
            Some(Client::new(&up.client, &tls_files, &up.spec)?)
        };

        if relabel.is_none() && client.is_none() {
            return Ok(Reloaded::Unchanged(match &self.relabel {
                RelabelSource::File { path, .. } => {
                    format!("configuration unchanged ({} and TLS files)", path.display())
                }
                RelabelSource::Fixed => {
                    "configuration unchanged (no --relabel-file to re-read; TLS files unchanged)"
                        .to_owned()
                }
            }));
        }

        let mut changed = Vec::new();
        let (engine, subset_names, relabel) = match relabel {
            Some(RelabelConfig { config, source }) => {
                changed.push(format!(
                    "relabel config with {} subsets (caches cleared)",
                    config.subsets.len()
                ));
                // The counter state goes on: totals of output series that still exist are kept.
                (
                    engine(cfg, &config, self.counters.clone()),
                    subset_names(&config),
                    source,
                )
            }
            None => (
                Arc::clone(&self.engine),
                self.subset_names.clone(),
                self.relabel.clone(),
            ),
        };
        if client.is_some() {
            changed.push("upstream TLS files".to_owned());
        }
        Ok(Reloaded::Changed {
            live: Arc::new(Self {
                engine,
                subset_names,
                client: client.unwrap_or_else(|| self.client.clone()),
                relabel,
                tls_files,
                counters: self.counters.clone(),
            }),
            summary: format!("reloaded: {}", changed.join(", ")),
        })
    }
}

fn engine(
    cfg: &ServerConfig,
    config: &Config,
    counters: Counters,
) -> Arc<tokio::sync::Mutex<Engine>> {
    Arc::new(tokio::sync::Mutex::new(Engine::new(
        config,
        cfg.upstream.spec.is_fan_out(),
        cfg.limits.labels,
        counters,
    )))
}

fn subset_names(config: &Config) -> Vec<String> {
    config.subsets.iter().map(|(n, _)| n.clone()).collect()
}

fn read_tls_files(cfg: &ServerConfig) -> Result<TlsFiles, ClientError> {
    TlsFiles::read(&cfg.upstream.client).map_err(ClientError::Tls)
}
