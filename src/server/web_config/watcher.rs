//! [`WebConfigWatcher`]: the web config in force, loaded again when a file it came from changes.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use arc_swap::ArcSwap;

use super::{WebConfig, WebConfigError};
use crate::server::metrics::SelfMetrics;

/// What identifies one version of a file: modification time, size and (on Unix) inode, so a
/// rewrite in place and a swapped symlink are both seen.
type FileStamp = Option<(SystemTime, u64, u64)>;

fn stamp(path: &Path) -> FileStamp {
    let m = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let ino = std::os::unix::fs::MetadataExt::ino(&m);
    #[cfg(not(unix))]
    let ino = 0;
    Some((m.modified().ok()?, m.len(), ino))
}

fn stamps(cfg: &WebConfig) -> Vec<FileStamp> {
    cfg.files.iter().map(|f| stamp(f)).collect()
}

/// The web config in force, loaded again when its file or a file it names changes.
#[derive(Debug)]
pub struct WebConfigWatcher {
    path: PathBuf,
    current: ArcSwap<WebConfig>,
    /// The stamps of the files at the last load attempt, good or bad: a broken version is
    /// tried once, not at every connection.
    last_attempt: Mutex<Vec<FileStamp>>,
}

impl WebConfigWatcher {
    /// Loads `path`; an error here is a startup error.
    pub fn load(path: &Path) -> Result<Self, WebConfigError> {
        // Stamps taken before reading: a change during the read is seen at the next check.
        let cfg = WebConfig::load(path)?;
        let stamps = stamps(&cfg);
        Ok(Self {
            path: path.to_path_buf(),
            current: ArcSwap::from_pointee(cfg),
            last_attempt: Mutex::new(stamps),
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The config in force, without looking for changes.
    pub fn get(&self) -> Arc<WebConfig> {
        self.current.load_full()
    }

    /// The config for a new connection: loads the file again first if it or a file it names
    /// changed since the last attempt. A failed load is logged and counted; the previous
    /// config stays.
    pub fn current(&self, metrics: &SelfMetrics) -> Arc<WebConfig> {
        let cfg = self.current.load_full();
        let mut last = self.last_attempt.lock().unwrap_or_else(|e| e.into_inner());
        let now = stamps(&cfg);
        if now == *last {
            return cfg;
        }
        match WebConfig::load(&self.path) {
            Ok(new) => {
                *last = stamps(&new);
                let new = Arc::new(new);
                self.current.store(Arc::clone(&new));
                metrics.web_config_reloaded(true);
                tracing::info!(file = %self.path.display(), "web config reloaded");
                new
            }
            Err(e) => {
                *last = now;
                metrics.web_config_reloaded(false);
                tracing::error!(error = %e, "web config reload failed; keeping the previous one");
                cfg
            }
        }
    }
}
