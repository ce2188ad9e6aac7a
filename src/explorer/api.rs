//! The HTTP face of `/analyze`: the query, content negotiation, and the JSON the page and
//! scripts read.
//!
//! # API
//!
//! `GET /analyze` answers by `format=` if given, else by `Accept` ([`negotiate`]): plain text
//! (the cardinality report, unchanged, for `curl` and scripts), the explorer page (browsers),
//! or JSON. The query:
//!
//! | parameter | meaning |
//! |---|---|
//! | `drop=path,method` | what-if: drop these labels (a generated `labeldrop` rule) |
//! | `relabel=<yaml>` | what-if: this configuration (`--relabel-file` format); wins over `drop` |
//! | `subset=<name>` | measure this named list of `relabel` instead of `metric_relabel_configs` |
//! | `format=json\|html\|text` | the answer's format, overriding `Accept` |
//!
//! The JSON answer (and the data embedded in the page) is a [`PageData`]:
//!
//! ```json
//! {"version": 1, "mode": "server", "source": "http://localhost:10254/metrics",
//!  "query": {"drop": ["path"], "relabel": null, "subset": null},
//!  "profile": {"totals": {...}, "metrics": [...]},
//!  "whatif": {"config": "...", "totals": {...}, "metrics": [...]},
//!  "error": null, "notes": [], "offline": null}
//! ```
//!
//! `error` is `{"kind": "config", "message": ..., "line": 3, "column": 5}` for a configuration
//! that does not load (HTTP 400; the profile is still there when the body was fetched), or
//! `input`/`too_large`/`timeout` ([`crate::explorer::ExplorerError::http_status`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::profile::Profile;
use super::whatif::{Analysis, Report, WhatIf, WhatIfOptions, WhatIfRequest};
use super::{ErrorJson, ExplorerError};

/// Version of the [`PageData`] layout; bumped when a field changes meaning or goes away.
pub const PAGE_DATA_VERSION: u32 = 1;

/// The query of `GET /analyze` (also usable with axum's `Query` extractor).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct AnalyzeQuery {
    /// Labels to drop, comma-separated.
    pub drop: Option<String>,
    /// A relabel configuration (YAML) to try.
    pub relabel: Option<String>,
    /// The named list of `relabel` to measure.
    pub subset: Option<String>,
    /// `json`, `html` or `text`.
    pub format: Option<String>,
}

impl AnalyzeQuery {
    /// Reads a URL query string (`drop=path%2Cmethod&format=json`): `%XX` and `+` are decoded,
    /// unknown parameters ignored, the last of repeated ones wins.
    pub fn parse(query: &str) -> Self {
        let mut q = Self::default();
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let v = percent_decode(v);
            match percent_decode(k).as_str() {
                "drop" => q.drop = Some(v),
                "relabel" => q.relabel = Some(v),
                "subset" => q.subset = Some(v),
                "format" => q.format = Some(v),
                _ => {}
            }
        }
        q
    }

    /// The labels of `drop`, trimmed, without blanks.
    pub fn drop_labels(&self) -> Vec<String> {
        self.drop
            .as_deref()
            .unwrap_or("")
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// The what-if this query asks for: `relabel` (when not blank) wins over `drop`; `None`
    /// when neither names anything.
    pub fn request(&self) -> Option<WhatIfRequest> {
        let mut r = match self.relabel.as_deref() {
            Some(yaml) if !yaml.trim().is_empty() => WhatIfRequest::yaml(yaml),
            _ => {
                let labels = self.drop_labels();
                if labels.is_empty() {
                    return None;
                }
                WhatIfRequest::drop(labels)
            }
        };
        r.subset = self.subset.clone().filter(|s| !s.is_empty());
        Some(r)
    }

    /// The sink to feed the body to, and the error of a what-if configuration that does not
    /// load (the analysis then only profiles, so the page still shows the body next to the
    /// error).
    pub fn analysis(&self, opts: &WhatIfOptions) -> (Analysis, Option<ExplorerError>) {
        let request = self.request();
        match Analysis::new(request.as_ref(), opts) {
            Ok(a) => (a, None),
            Err(e) => (Analysis::profile_only(opts), Some(e)),
        }
    }
}

/// `%XX` and `+` decoding; a malformed escape is kept as written, invalid UTF-8 replaced.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = b.get(i + 1..i + 3).and_then(|h| {
                    std::str::from_utf8(h)
                        .ok()
                        .and_then(|h| u8::from_str_radix(h, 16).ok())
                });
                if let Some(v) = hex {
                    out.push(v);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// How to answer `/analyze`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseFormat {
    /// The text report (the original tool's format).
    Text,
    /// The explorer page.
    Html,
    /// [`PageData`] as JSON.
    Json,
}

/// Chooses the answer's format: `format=` when given (`json`, `html`, `text`), else the media
/// type the `Accept` header names with the highest weight among `text/plain`, `text/html` and
/// `application/json`. Wildcards name none of them, so `curl` (`*/*`) and clients without
/// `Accept` get text as before; a tie goes to text, then HTML.
pub fn negotiate(query: &AnalyzeQuery, accept: Option<&str>) -> ResponseFormat {
    match query
        .format
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("json") => return ResponseFormat::Json,
        Some("html") => return ResponseFormat::Html,
        Some("text") => return ResponseFormat::Text,
        _ => {}
    }
    let mut best = (0.0f32, ResponseFormat::Text);
    for part in accept.unwrap_or("").split(',') {
        let mut params = part.split(';');
        let media = params.next().unwrap_or("").trim().to_ascii_lowercase();
        let format = match media.as_str() {
            "text/plain" => ResponseFormat::Text,
            "text/html" | "application/xhtml+xml" => ResponseFormat::Html,
            "application/json" => ResponseFormat::Json,
            _ => continue,
        };
        let q = params
            .filter_map(|p| p.trim().strip_prefix("q="))
            .filter_map(|q| q.trim().parse::<f32>().ok())
            .next()
            .unwrap_or(1.0);
        let rank = |f: ResponseFormat| match f {
            ResponseFormat::Text => 2,
            ResponseFormat::Html => 1,
            ResponseFormat::Json => 0,
        };
        if q > 0.0 && (q > best.0 || (q == best.0 && rank(format) > rank(best.1))) {
            best = (q, format);
        }
    }
    best.1
}

/// The query as the page reads it back.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct QueryJson {
    /// Labels to drop.
    pub drop: Vec<String>,
    /// The pasted configuration.
    pub relabel: Option<String>,
    /// The measured subset.
    pub subset: Option<String>,
}

/// Everything the page shows, and the JSON answer of `/analyze?format=json`.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PageData {
    /// [`PAGE_DATA_VERSION`].
    pub version: u32,
    /// `server` (the page asks `/analyze?...&format=json` for other what-ifs) or `offline`
    /// (what-ifs come from [`PageData::offline`]).
    pub mode: &'static str,
    /// Where the body came from (upstream URL or file name).
    pub source: String,
    /// The what-if asked for.
    pub query: QueryJson,
    /// The body's profile; `None` when the body could not be read.
    pub profile: Option<Profile>,
    /// The what-if's result.
    pub whatif: Option<WhatIf>,
    /// Why the what-if or the analysis failed.
    pub error: Option<ErrorJson>,
    /// Remarks shown above the page (e.g. targets that failed and were left out).
    pub notes: Vec<String>,
    /// Precomputed what-ifs of an offline page.
    pub offline: Option<OfflineWhatIf>,
}

impl PageData {
    /// The page of a server's `/analyze`: `config_error` from [`AnalyzeQuery::analysis`], and
    /// the analysis' result.
    pub fn server(
        source: impl Into<String>,
        query: &AnalyzeQuery,
        config_error: Option<ExplorerError>,
        result: Result<Report, ExplorerError>,
    ) -> Self {
        let (profile, whatif, error) = match result {
            Ok(r) => (Some(r.profile), r.whatif, config_error.map(|e| e.to_json())),
            Err(e) => (None, None, Some(config_error.unwrap_or(e).to_json())),
        };
        Self {
            version: PAGE_DATA_VERSION,
            mode: "server",
            source: source.into(),
            query: QueryJson {
                drop: query.drop_labels(),
                relabel: query.relabel.clone().filter(|r| !r.trim().is_empty()),
                subset: query.subset.clone().filter(|s| !s.is_empty()),
            },
            profile,
            whatif,
            error,
            notes: Vec::new(),
            offline: None,
        }
    }

    /// Adds a remark shown at the top of the page.
    pub fn with_note(mut self, note: impl Into<String>) -> Self {
        self.notes.push(note.into());
        self
    }

    /// The HTTP status to answer with: the error's ([`ExplorerError::http_status`]), else 200.
    pub fn http_status(&self) -> u16 {
        match &self.error {
            None => 200,
            Some(e) => match e.kind {
                "config" => 400,
                "input" | "too_large" => 502,
                "timeout" => 504,
                _ => 500,
            },
        }
    }

    /// The JSON answer.
    pub fn to_json(&self) -> Vec<u8> {
        // The data holds only strings, integers and lists: serializing cannot fail, but answer
        // valid JSON regardless.
        serde_json::to_vec(self).unwrap_or_else(|_| {
            br#"{"version":1,"error":{"kind":"io","message":"cannot serialize the analysis"}}"#
                .to_vec()
        })
    }
}

/// The precomputed what-ifs of an offline page.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct OfflineWhatIf {
    /// The pass-through configuration (no rules): what metric-gate serves for this body as it
    /// is. `metrics` holds every metric.
    pub baseline: Scenario,
    /// Dropping one label: `metrics` holds only the metrics that differ from the baseline
    /// (those that carry the label).
    pub singles: BTreeMap<String, Scenario>,
    /// Label names not precomputed (beyond `HtmlOptions::max_labels`).
    pub skipped: Vec<String>,
}

/// What metric-gate serves under one configuration.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Scenario {
    /// Series served.
    pub series: u64,
    /// Bytes served (HELP and TYPE included).
    pub bytes: u64,
    /// Samples summed into another.
    pub summed: u64,
    /// Per metric name: `[series, bytes of sample lines]`.
    pub metrics: BTreeMap<String, [u64; 2]>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings() {
        let q = AnalyzeQuery::parse("drop=path%2Cmethod&format=json&x=1");
        assert_eq!(q.drop_labels(), ["path", "method"]);
        assert_eq!(q.format.as_deref(), Some("json"));
        let q = AnalyzeQuery::parse("drop=path,,+method+&subset=");
        assert_eq!(q.drop_labels(), ["path", "method"]);
        assert_eq!(q.request().unwrap().subset, None);
        let q =
            AnalyzeQuery::parse("relabel=metric_relabel_configs%3A+%5B%5D%0A&drop=path&subset=a");
        let r = q.request().unwrap();
        assert_eq!(r, {
            let mut r = WhatIfRequest::yaml("metric_relabel_configs: []\n");
            r.subset = Some("a".into());
            r
        });
        assert_eq!(AnalyzeQuery::parse("").request(), None);
        assert_eq!(AnalyzeQuery::parse("drop=,").request(), None);
        assert_eq!(percent_decode("%zz%4"), "%zz%4");
        assert_eq!(percent_decode("%C3%A9"), "é");
        assert_eq!(percent_decode("%ff"), "\u{fffd}");
    }

    #[test]
    fn negotiation() {
        let none = AnalyzeQuery::default();
        let browser =
            "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8";
        assert_eq!(negotiate(&none, Some(browser)), ResponseFormat::Html);
        assert_eq!(negotiate(&none, Some("*/*")), ResponseFormat::Text);
        assert_eq!(negotiate(&none, None), ResponseFormat::Text);
        assert_eq!(negotiate(&none, Some("text/plain")), ResponseFormat::Text);
        assert_eq!(
            negotiate(&none, Some("application/json")),
            ResponseFormat::Json
        );
        assert_eq!(
            negotiate(&none, Some("text/html;q=0.5, text/plain")),
            ResponseFormat::Text
        );
        assert_eq!(
            negotiate(&none, Some("text/html, text/plain")),
            ResponseFormat::Text
        );
        assert_eq!(
            negotiate(&none, Some("text/html;q=0")),
            ResponseFormat::Text
        );
        let json = AnalyzeQuery::parse("format=JSON");
        assert_eq!(negotiate(&json, Some(browser)), ResponseFormat::Json);
        let text = AnalyzeQuery::parse("format=text");
        assert_eq!(negotiate(&text, Some(browser)), ResponseFormat::Text);
    }

    #[test]
    fn server_page_data_and_status() {
        let body: &[u8] = include_bytes!("../../testdata/ingress_small.prom");
        let opts = WhatIfOptions::default();
        let q = AnalyzeQuery::parse("relabel=metric_relabel_configs%3A%0A-+action%3A+nope%0A");
        let (mut analysis, err) = q.analysis(&opts);
        assert!(err.is_some());
        let n = super::super::whatif::feed(&[body], &opts.parse, None, &mut analysis).unwrap();
        analysis.add_bytes(n);
        let data = PageData::server("up", &q, err, analysis.finish());
        assert_eq!(data.http_status(), 400);
        let e = data.error.as_ref().unwrap();
        assert_eq!((e.kind, e.line), ("config", Some(2)));
        // The profile is still there, for the page.
        assert_eq!(data.profile.as_ref().unwrap().totals.series, 136);
        let json: serde_json::Value = serde_json::from_slice(&data.to_json()).unwrap();
        assert_eq!(json["version"], 1);
        assert_eq!(json["mode"], "server");
        assert_eq!(json["error"]["kind"], "config");
        assert_eq!(json["profile"]["metrics"][0]["type"], "histogram");

        let q = AnalyzeQuery::parse("drop=path&format=json");
        let (mut analysis, err) = q.analysis(&opts);
        assert!(err.is_none());
        let n = super::super::whatif::feed(&[body], &opts.parse, None, &mut analysis).unwrap();
        analysis.add_bytes(n);
        let data = PageData::server("up", &q, None, analysis.finish()).with_note("hello");
        assert_eq!(data.http_status(), 200);
        let json: serde_json::Value = serde_json::from_slice(&data.to_json()).unwrap();
        assert_eq!(json["query"]["drop"][0], "path");
        assert_eq!(json["notes"][0], "hello");
        assert!(json["whatif"]["totals"]["series_after"].as_u64().unwrap() < 136);

        let failed = PageData::server("up", &q, None, Err(ExplorerError::Timeout));
        assert_eq!(failed.http_status(), 504);
        assert!(failed.profile.is_none());
    }

    /// Every metric in the JSON carries its family's TYPE (what decides how a sum treats it),
    /// and the page shows it with what a sum does. (The plain-text report, `crate::analyze`,
    /// has no TYPE column and is left as users parse it.)
    #[test]
    fn json_and_page_show_each_metrics_type() {
        let body: &[u8] = b"# TYPE req_total counter\nreq_total{code=\"200\"} 1\n\
# TYPE temp gauge\ntemp 3\n\
# TYPE lat histogram\nlat_bucket{le=\"+Inf\"} 1\nlat_sum 1\nlat_count 1\n\
# TYPE rpc summary\nrpc{quantile=\"0.5\"} 1\nrpc_sum 1\nrpc_count 1\n\
plain 1\n";
        let opts = WhatIfOptions::default();
        let q = AnalyzeQuery::parse("format=json");
        let (mut analysis, err) = q.analysis(&opts);
        assert!(err.is_none());
        let n = super::super::whatif::feed(&[body], &opts.parse, None, &mut analysis).unwrap();
        analysis.add_bytes(n);
        let report = analysis.finish().unwrap();
        let data = PageData::server("up", &q, None, Ok(report));
        let json: serde_json::Value = serde_json::from_slice(&data.to_json()).unwrap();
        let types: std::collections::BTreeMap<String, String> = json["profile"]["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| {
                (
                    m["name"].as_str().unwrap().to_owned(),
                    m["type"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        let want: std::collections::BTreeMap<String, String> = [
            ("req_total", "counter"),
            ("temp", "gauge"),
            ("lat_bucket", "histogram"),
            ("lat_sum", "histogram"),
            ("lat_count", "histogram"),
            ("rpc", "summary"),
            ("rpc_sum", "summary"),
            ("rpc_count", "summary"),
            ("plain", "untyped"),
        ]
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
        assert_eq!(types, want);
        // The page carries the same data and labels the TYPE badge with what a sum does.
        let page = super::super::page::render_page(&data);
        assert!(page.contains(r#""type":"summary""#));
        assert!(page.contains("Several inputs summed into one series: "));
    }
}
