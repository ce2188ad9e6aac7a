//! The remote-write endpoints the server runs: the loaded configuration, the push schedule,
//! starting endpoints and handing them over on reload, and the flush at shutdown. Nothing here
//! knows the server's state: the push loop and the receiver ([`super`]) drive it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use prometheus_client::registry::Registry;
use tokio::sync::RwLock;
use tokio::time::Instant;

use crate::remote_write::config::ConfigError;
use crate::remote_write::{RemoteWrite, RemoteWriteConfig, RemoteWriteMetrics};

use crate::server::config::RemoteWriteSettings;

/// How long a reload waits for the replaced endpoints to deliver their queues (pushes and
/// forwarded writes wait as long); what is left then is dropped and counted.
pub const RELOAD_FLUSH_DEADLINE: Duration = Duration::from_secs(5);

/// Remote write could not be set up (at start or reload).
#[derive(Debug, thiserror::Error)]
pub enum RemoteWriteError {
    /// The file could not be read, or is invalid (the message names the file, the endpoint
    /// and the field).
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// An endpoint's TLS files or credential files could not be read.
    #[error("--remote-write.config-file {path}: {message}")]
    Start {
        /// The file.
        path: String,
        /// What failed, naming the endpoint.
        message: String,
    },
}

/// The running remote-write configuration and what the reader of it needs.
pub(super) struct Current {
    /// The endpoints with their queues and sender tasks.
    pub(super) rw: RemoteWrite,
    /// The file's text they were built from.
    text: String,
    /// What was parsed from it.
    config: RemoteWriteConfig,
}

/// What the push loop and the scrapes read without waiting for a reload.
#[derive(Debug, Clone)]
pub(super) struct Schedule {
    /// The top-level `interval`: time between pushes.
    pub(super) interval: Duration,
    /// The subsets that endpoints push (rendered a second time, without timestamps).
    subsets: Vec<String>,
}

/// Remote write's part of the server state.
pub(crate) struct RemoteWriteState {
    pub(super) settings: RemoteWriteSettings,
    /// Pushes and forwards hold it shared; a reload's hand-over and the shutdown flush hold it
    /// alone.
    pub(super) current: Arc<RwLock<Current>>,
    schedule: Mutex<Schedule>,
    pub(super) metrics: RemoteWriteMetrics,
}

impl std::fmt::Debug for RemoteWriteState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteWriteState")
            .field("path", &self.settings.path)
            .field("receiver", &self.settings.receiver)
            .finish_non_exhaustive()
    }
}

fn schedule_of(rw: &RemoteWrite) -> Schedule {
    Schedule {
        interval: rw.interval(),
        subsets: rw
            .lists()
            .into_iter()
            .flatten()
            .map(str::to_owned)
            .collect(),
    }
}

impl RemoteWriteState {
    /// Checks the endpoints' lists against `subset_exists`, registers the self-metrics into
    /// `registry` and starts every endpoint. Runs inside the tokio runtime.
    pub(crate) fn start(
        settings: &RemoteWriteSettings,
        subset_exists: impl Fn(&str) -> bool,
        registry: &mut Registry,
    ) -> Result<Self, RemoteWriteError> {
        settings.config.check_lists(&subset_exists)?;
        let metrics = RemoteWriteMetrics::new(registry);
        let rw = start_endpoints(settings, &settings.config, &metrics)?;
        Ok(Self {
            schedule: Mutex::new(schedule_of(&rw)),
            current: Arc::new(RwLock::new(Current {
                rw,
                text: settings.text.clone(),
                config: settings.config.clone(),
            })),
            metrics,
            settings: settings.clone(),
        })
    }

    /// Whether `POST /api/v1/write` is served.
    pub(crate) fn receiver(&self) -> bool {
        self.settings.receiver
    }

    pub(super) fn schedule(&self) -> Schedule {
        self.schedule
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// The subsets some endpoint pushes now: a scrape renders them a second time without the
    /// fetch time.
    pub(crate) fn pushed_subsets(&self) -> Vec<String> {
        self.schedule().subsets
    }

    /// Reads the file again and checks it against the subsets the reload swaps in. `None`:
    /// the text is unchanged and the endpoints stay. Nothing is replaced yet.
    pub(crate) async fn prepare_reload(
        &self,
        subset_names: &[String],
    ) -> Result<Option<Prepared>, RemoteWriteError> {
        let path = &self.settings.path;
        let text = std::fs::read_to_string(path).map_err(|e| {
            ConfigError(format!(
                "--remote-write.config-file {}: {e}",
                path.display()
            ))
        })?;
        let exists = |s: &str| subset_names.iter().any(|n| n == s);
        {
            let cur = self.current.read().await;
            if text == cur.text {
                // The relabel file may have removed a subset that an endpoint pushes.
                cur.config.check_lists(exists)?;
                return Ok(None);
            }
        }
        let config =
            RemoteWriteConfig::from_yaml(&text, &path.display().to_string(), path.parent())?;
        config.check_lists(exists)?;
        let rw = start_endpoints(&self.settings, &config, &self.metrics)?;
        Ok(Some(Prepared { rw, text, config }))
    }

    /// Swaps in what [`Self::prepare_reload`] built and lets the old endpoints hand over (see
    /// the module documentation). Returns a summary for the reload's answer.
    pub(crate) async fn apply_reload(&self, prepared: Prepared) -> String {
        let mut cur = self.current.write().await;
        let old = std::mem::replace(
            &mut *cur,
            Current {
                rw: prepared.rw,
                text: prepared.text,
                config: prepared.config,
            },
        );
        *self.schedule.lock().unwrap_or_else(|p| p.into_inner()) = schedule_of(&cur.rw);
        let gone = old
            .rw
            .hand_over(&cur.rw, Instant::now() + RELOAD_FLUSH_DEADLINE)
            .await;
        for label in &gone {
            self.metrics.forget(label);
        }
        format!(
            "remote write config with {} endpoints ({} removed)",
            cur.rw.endpoints().len(),
            gone.len()
        )
    }

    /// Flushes every endpoint (stale markers for every live series, then the queues) within
    /// `--remote-write.flush-deadline`.
    pub(crate) async fn shutdown(&self) {
        let cur = self.current.write().await;
        let deadline = Instant::now() + self.settings.flush_deadline;
        tracing::info!(
            endpoints = cur.rw.endpoints().len(),
            deadline_ms = self.settings.flush_deadline.as_millis() as u64,
            "remote write: flushing the queues, with stale markers for every series"
        );
        cur.rw.flush(deadline).await;
    }
}

/// A new remote-write configuration, started but not swapped in.
pub(crate) struct Prepared {
    rw: RemoteWrite,
    text: String,
    config: RemoteWriteConfig,
}

fn start_endpoints(
    settings: &RemoteWriteSettings,
    config: &RemoteWriteConfig,
    metrics: &RemoteWriteMetrics,
) -> Result<RemoteWrite, RemoteWriteError> {
    RemoteWrite::start(config, metrics).map_err(|message| RemoteWriteError::Start {
        path: settings.path.display().to_string(),
        message,
    })
}

/// The untimed texts a scrape rendered, by subset (for `ScrapeOutcome::untimed`).
pub(crate) type UntimedLists = HashMap<String, Bytes>;
