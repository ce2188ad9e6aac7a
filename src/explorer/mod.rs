//! The cardinality explorer: a browser page with the profile of a body (series, bytes, TYPE and
//! labels per metric) and a what-if playground that runs relabel rules through the real
//! pipeline.
//!
//! Pieces:
//! - [`Profiler`] / [`Profile`]: the cardinality profile, a parser [`Sink`] with bounded memory.
//! - [`what_if`], [`Analysis`]: run a [`WhatIfRequest`] (labels to drop, or a pasted
//!   `metric_relabel_configs` YAML) through [`crate::pipeline::Pipeline`] and compare series and
//!   bytes per metric before and after. [`Analysis`] is a [`Sink`] too, so a server streams the
//!   upstream body through it without keeping it.
//! - [`AnalyzeQuery`], [`negotiate`], [`PageData`]: the HTTP face of `/analyze`
//!   (`?drop=path,method`, `?relabel=<yaml>`, `?format=json`), JSON and HTML answers.
//! - [`render_page`]: one self-contained HTML document (HTML, CSS and a small script compiled
//!   into the binary, the data embedded as JSON, a Content-Security-Policy that forbids every
//!   external request).
//! - [`write_html`]: the same page as an offline file (`--file PATH --html OUT.html`), with the
//!   what-if of dropping each label precomputed.
//!
//! [`Sink`]: crate::exposition::Sink

mod api;
mod offline;
mod page;
mod profile;
mod whatif;

use serde::Serialize;

pub use api::{
    negotiate, AnalyzeQuery, OfflineWhatIf, PageData, ResponseFormat, Scenario, PAGE_DATA_VERSION,
};
pub use offline::{write_html, HtmlOptions, HtmlSummary, MAX_PRECOMPUTED_LABELS};
pub use page::{content_security_policy, render_page, HTML_CONTENT_TYPE, JSON_CONTENT_TYPE};
pub use profile::{
    LabelProfile, MetricProfile, Profile, ProfileBudget, Profiler, Totals, LIST_VALUES_UP_TO,
    MAX_TEXT_LEN,
};
pub use whatif::{
    analyze_bodies, drop_config_yaml, what_if, Analysis, ConfigProblem, MetricChange, Report,
    Rules, WhatIf, WhatIfOptions, WhatIfRequest, WhatIfTotals,
};

/// Help text of the CLI flag that writes the explorer for `--file`:
/// `--html OUT.html` (requires `--file`, conflicts with `--apply`).
pub const HTML_FLAG_HELP: &str = "With --file: write the cardinality explorer to this HTML file \
instead of printing the text report: metrics by series count with their TYPE and labels, and a \
what-if playground that shows the series and bytes left after dropping each label (computed by \
the real pipeline). One self-contained file; it makes no network request.";

/// Why an explorer request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExplorerError {
    /// The what-if configuration does not load.
    #[error("{}", config_message(.0))]
    Config(ConfigProblem),
    /// The body is not valid exposition text (the parser's `line N, col M: ...`).
    #[error("{0}")]
    Input(String),
    /// The body is larger than [`WhatIfOptions::max_body_bytes`].
    #[error("body of {size} bytes is larger than the limit of {limit} bytes")]
    TooLarge {
        /// Bytes in the body.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// The work did not finish before [`WhatIfOptions::deadline`].
    #[error("the analysis did not finish in time")]
    Timeout,
    /// Reading the input or writing the page failed.
    #[error("{0}")]
    Io(String),
}

fn config_message(p: &ConfigProblem) -> String {
    match (p.line, p.column) {
        (Some(l), Some(c)) => format!("{} (line {l}, column {c})", p.message),
        (Some(l), None) => format!("{} (line {l})", p.message),
        _ => p.message.clone(),
    }
}

impl ExplorerError {
    /// The HTTP status a server answers with: 400 for a configuration the client sent, 502 for
    /// an upstream body that cannot be read or is too large, 504 for a timeout, 500 otherwise.
    pub fn http_status(&self) -> u16 {
        match self {
            ExplorerError::Config(_) => 400,
            ExplorerError::Input(_) | ExplorerError::TooLarge { .. } => 502,
            ExplorerError::Timeout => 504,
            ExplorerError::Io(_) => 500,
        }
    }

    /// The JSON form the page shows.
    pub fn to_json(&self) -> ErrorJson {
        let (kind, line, column) = match self {
            ExplorerError::Config(p) => ("config", p.line, p.column),
            ExplorerError::Input(_) => ("input", None, None),
            ExplorerError::TooLarge { .. } => ("too_large", None, None),
            ExplorerError::Timeout => ("timeout", None, None),
            ExplorerError::Io(_) => ("io", None, None),
        };
        let message = match self {
            // The position travels in `line`/`column`; the page puts it in front.
            ExplorerError::Config(p) => p.message.clone(),
            e => e.to_string(),
        };
        ErrorJson {
            kind,
            message,
            line,
            column,
        }
    }
}

/// An [`ExplorerError`] as the JSON API and the page carry it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ErrorJson {
    /// `config`, `input`, `too_large`, `timeout` or `io`.
    pub kind: &'static str,
    /// What went wrong, for people.
    pub message: String,
    /// For `config`: the 1-based line in the YAML, when known.
    pub line: Option<u64>,
    /// For `config`: the 1-based column in the YAML, when known.
    pub column: Option<u64>,
}
