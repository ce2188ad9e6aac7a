//! metric-gate itself under test: [`Gate`] runs the server in this process, [`spawn_gate_binary`]
//! starts the binary, [`binary`] finds it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use metric_gate::relabel::Config;
use metric_gate::server::ListenerConfig;
use metric_gate::server::{
    serve, AppState, RelabelConfig, ScrapeLimits, ServerConfig, UpstreamConfig,
};
use metric_gate::upstream::UpstreamSpec;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::client::{get, Resp};

/// The metric-gate binary of this build. Cargo builds it for every integration test and bench
/// of the package, next to their executables' `deps/` directory
/// (`target/<profile>/deps/<test>` -> `target/<profile>/metric-gate`); `CARGO_BIN_EXE_metric-gate`
/// in the environment overrides that.
pub fn binary() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        if let Some(p) = std::env::var_os("CARGO_BIN_EXE_metric-gate") {
            return p.into();
        }
        let exe = std::env::current_exe().expect("the path of the running test");
        let mut dir = exe.parent().expect("a directory").to_path_buf();
        if dir.ends_with("deps") {
            dir.pop();
        }
        let bin = dir.join(format!("metric-gate{}", std::env::consts::EXE_SUFFIX));
        assert!(
            bin.is_file(),
            "{} not found (built by cargo for the package's tests and benches)",
            bin.display()
        );
        bin
    })
    .clone()
}

/// A metric-gate server running in this process.
pub struct Gate {
    pub addr: SocketAddr,
    pub state: Arc<AppState>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

/// Settings for tests: 5 s timeout, no warm-up scrape, health series on, gzip asked of the
/// upstream.
pub fn config_for(upstream: &str) -> ServerConfig {
    ServerConfig {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        listener: ListenerConfig::default(),
        upstream: UpstreamConfig {
            spec: UpstreamSpec::parse(upstream).expect("upstream spec"),
            // Gzip even on loopback (the binary's default asks none there), so that tests go
            // through the upstream's gzip answers.
            client: metric_gate::upstream::ClientOptions {
                compression: metric_gate::upstream::Compression::Gzip,
                ..Default::default()
            },
            dns_server: None,
            ip_family: Default::default(),
            require_all: false,
            scrape_timeout: Duration::from_secs(5),
        },
        limits: ScrapeLimits {
            max_body: 512 << 20,
            max_line: 1 << 20,
            labels: metric_gate::limits::LabelLimits::DEFAULT,
            sample_limit: 0,
        },
        target_health: true,
        warm_up: false,
        remote_write: None,
        staleness_window: metric_gate::server::config::DEFAULT_STALENESS_WINDOW,
        state_file: None,
        threads: 0,
    }
}

impl Gate {
    pub async fn start(cfg: ServerConfig, relabel: &Config) -> Self {
        Self::start_with(cfg, relabel, ListenerConfig::default()).await
    }

    /// As `start`, with listener settings (web config, connection cap, timeouts).
    pub async fn start_with(
        mut cfg: ServerConfig,
        relabel: &Config,
        listener_cfg: ListenerConfig,
    ) -> Self {
        cfg.listener = listener_cfg;
        Self::start_relabel(cfg, RelabelConfig::fixed(relabel.clone())).await
    }

    /// As `start`, with the relabel configuration and its source (a file is read again on
    /// reload).
    pub async fn start_relabel(cfg: ServerConfig, relabel: RelabelConfig) -> Self {
        let state = AppState::new(cfg, relabel).expect("state");
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(serve(listener, state.clone(), async {
            let _ = stopped.await;
        }));
        Self {
            addr,
            state,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub async fn get(&self, path: &str) -> Resp {
        get(&self.url(path), &[]).await
    }

    /// Stops accepting, waits for in-flight requests.
    pub async fn stop(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.await.unwrap().unwrap();
        }
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

/// Starts the metric-gate binary with `args` (stderr piped, stdout discarded) and waits for its
/// `listening addr=...` log line. Returns the process, a receiver of its stderr lines and the
/// address it listens on.
pub fn spawn_gate_binary(
    args: &[&str],
) -> (
    std::process::Child,
    std::sync::mpsc::Receiver<String>,
    String,
) {
    let (child, rx, addr, _) = spawn_gate_binary_logged(args, &[]);
    (child, rx, addr)
}

/// As [`spawn_gate_binary`], with extra environment variables `env`, and also returns the log
/// lines up to and including `listening`.
pub fn spawn_gate_binary_logged(
    args: &[&str],
    env: &[(&str, &str)],
) -> (
    std::process::Child,
    std::sync::mpsc::Receiver<String>,
    String,
    Vec<String>,
) {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let mut child = Command::new(binary())
        .args(args)
        .envs(env.iter().copied())
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .expect("spawn metric-gate");
    let stderr = child.stderr.take().expect("piped stderr");
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut startup = Vec::new();
    let addr = loop {
        let line = match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(line) => line,
            Err(e) => {
                let _ = child.kill();
                panic!("no 'listening' log line from metric-gate: {e}; logs: {startup:?}");
            }
        };
        startup.push(line.clone());
        if let Some(rest) = line.split("addr=").nth(1) {
            break rest
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned();
        }
    };
    (child, rx, addr, startup)
}
