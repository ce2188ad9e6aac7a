//! `GET /analyze`: the cardinality report for scripts, the explorer for browsers, and the
//! explorer's what-ifs, all from single-flight passes over the upstream.
//!
//! # One pass, three answers
//! A pass fetches every target once and streams each body through one sink that feeds both the
//! text report ([`Analyzer`], the format `curl` always had) and the explorer's
//! [`explorer::Analysis`] (the cardinality profile and, when the pass was started for one, a
//! what-if run through the real pipeline). The body is parsed as it arrives and never kept:
//! nothing of it outlives the pass except the two reports.
//!
//! # Sharing
//! Passes are single-flight ([`super::flight`], `AppState::analyses`): a request arriving while
//! a pass is in flight shares it when the pass answers it ([`Want::answered_by`]). Every pass
//! answers the text report; a pass started for the page also profiles; a what-if is part of
//! the pass that runs it (which profiles too). A request the pass in flight does not answer
//! waits for it to end and then starts (or shares) the next one, within its own deadline. So
//! N clients cost one upstream fetch when they ask the same thing, there is never more than one
//! `/analyze` fetch at a time, and a text-only pass costs what it always did.
//!
//! # Bounds
//! A pass is bounded like a scrape: `--max-body-size` and `--max-line-length` per target, the
//! request's timeout (`--scrape-timeout`, or Prometheus' header) for the fetch and for the
//! what-if's work, which runs as the body streams in. The listener's authentication and
//! connection limits apply as to any route. The what-if configuration is checked before any
//! fetch, against the same configuration limits as `--relabel-file`.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;

use crate::analyze::Analyzer;
use crate::explorer::{
    self, negotiate, render_page, AnalyzeQuery, ExplorerError, PageData, ResponseFormat,
    WhatIfOptions, HTML_CONTENT_TYPE, JSON_CONTENT_TYPE,
};
use crate::exposition::{Metadata, Sample, Sink};
use crate::limits::LimitSink;
use crate::upstream::fetch::scrape_into;
use crate::upstream::{Deadline, FetchError, ResolveError};

use super::analysis::{Analysis, AnalyzeFailure, Reports, Want};
use super::flight::FlightError;
use super::request::{request_patience, ApiError, CONTENT_TYPE_PLAIN};
use super::scrape::TargetFailures;
use super::state::AppState;

/// The settings of a server what-if: the upstream's parsing is the fetch's own; `le` and
/// `quantile` are compared by value over several targets, as `/metrics` does; the
/// configuration is read with the default options (UTF-8 names, the default limits).
fn what_if_options(state: &AppState) -> WhatIfOptions {
    WhatIfOptions {
        normalize_float_labels: state.config().upstream.spec.is_fan_out(),
        max_body_bytes: state.config().limits.max_body,
        ..WhatIfOptions::default()
    }
}

/// The sink of a pass: every sample goes to the text report, and to the explorer when the
/// pass computes it.
struct PassSink {
    text: Analyzer,
    explorer: Option<explorer::Analysis>,
}

impl Sink for PassSink {
    fn metadata(&mut self, meta: &Metadata<'_>) {
        self.text.metadata(meta);
        if let Some(e) = &mut self.explorer {
            e.metadata(meta);
        }
    }

    fn sample(&mut self, sample: &Sample<'_>) {
        self.text.sample(sample);
        if let Some(e) = &mut self.explorer {
            e.sample(sample);
        }
    }
}

/// Neither report applies a label limit: they count what the upstream sends.
impl LimitSink for PassSink {}

/// `GET /analyze`: the answer's format from `format=` or `Accept` ([`negotiate`]): text (the
/// report as it always was, or a what-if's text form when the query asks for one), the
/// explorer page, or its JSON. See the module docs for how passes are shared.
pub(crate) async fn analyze(
    State(state): State<Arc<AppState>>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let query = AnalyzeQuery::parse(raw.as_deref().unwrap_or(""));
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let format = negotiate(&query, accept);
    let opts = what_if_options(&state);
    // A configuration that does not load is answered without a what-if: 400 at once for text;
    // the page and JSON show the error next to the profile.
    let mut prepared = None;
    let (want, config_error) = match (query.request(), format) {
        (Some(r), _) => match explorer::Analysis::new(Some(&r), &opts) {
            Ok(a) => {
                prepared = Some(a);
                (Want::WhatIf(r), None)
            }
            Err(e) if format == ResponseFormat::Text => {
                return Ok(with_vary(text_response(
                    status_of(&e),
                    format!("what-if: {e}\n"),
                )))
            }
            Err(e) => (Want::Profile, Some(e)),
        },
        (None, ResponseFormat::Text) => (Want::Text, None),
        (None, _) => (Want::Profile, None),
    };
    let patience = request_patience(state.config().upstream.scrape_timeout, &headers);
    let cap = state.config().upstream.scrape_timeout;
    let pass = loop {
        // The explorer's sink is built here, not in the pass, so a pass never fails to start:
        // the one checked above, or (after a pass that did not answer, which took it along
        // unused) again from the same, already checked, configuration.
        let sink = match &want {
            Want::Text => None,
            Want::Profile => Some(explorer::Analysis::profile_only(&opts)),
            Want::WhatIf(r) => Some(prepared.take().unwrap_or_else(|| {
                explorer::Analysis::new(Some(r), &opts)
                    .unwrap_or_else(|_| explorer::Analysis::profile_only(&opts))
            })),
        };
        let (st, w) = (Arc::clone(&state), want.clone());
        let joined = state
            .analyses
            .run(patience, cap, move |_, deadline| {
                analyze_pass(st, deadline, w, sink)
            })
            .await;
        let joined = match joined {
            Ok(j) => j,
            Err(e) if format == ResponseFormat::Text => return Err(e.into()),
            Err(e) => {
                let e = match e {
                    FlightError::GaveUp(_) => ExplorerError::Timeout,
                    FlightError::Task(m) => ExplorerError::Io(m),
                };
                return Ok(explorer_response(
                    format,
                    &page_data(&state, &query, config_error, Err(e)),
                ));
            }
        };
        if want.answered_by(&joined.value.want) {
            break joined.value;
        }
        // The pass in flight computed something else: the next one computes this (the slot
        // is free once a pass has ended, so the loop starts or joins a new pass; `run` gives up
        // at this request's own deadline, which bounds the loop).
    };
    let reports = match (&pass.result, format) {
        (Ok(r), _) => r,
        (Err(e), ResponseFormat::Text) => return Err(e.clone().into()),
        (Err(e), _) => {
            let e = ExplorerError::Input(e.to_string());
            return Ok(explorer_response(
                format,
                &page_data(&state, &query, config_error, Err(e)),
            ));
        }
    };
    // `answered_by` gives the page, JSON and what-ifs only passes that ran the explorer.
    let no_profile = || ExplorerError::Io("the analysis has no profile".to_owned());
    match (format, &want) {
        (ResponseFormat::Text, Want::WhatIf(_)) => {
            let resp = match &reports.explorer {
                Some(Ok(explorer::Report {
                    whatif: Some(w), ..
                })) => text_response(StatusCode::OK, w.to_text()),
                Some(Err(e)) => text_response(status_of(e), format!("what-if: {e}\n")),
                _ => text_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "what-if: no result\n".to_owned(),
                ),
            };
            Ok(with_vary(resp))
        }
        (ResponseFormat::Text, _) => {
            let mut r = Response::new(Body::from(reports.text.clone()));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(CONTENT_TYPE_PLAIN),
            );
            Ok(with_vary(r))
        }
        _ => {
            let explorer = reports
                .explorer
                .clone()
                .unwrap_or_else(|| Err(no_profile()));
            let mut data = page_data(&state, &query, config_error, explorer);
            data.notes.extend(reports.notes.iter().cloned());
            Ok(explorer_response(format, &data))
        }
    }
}

/// The page's data for the upstream and `query`.
fn page_data(
    state: &AppState,
    query: &AnalyzeQuery,
    config_error: Option<ExplorerError>,
    result: Result<explorer::Report, ExplorerError>,
) -> PageData {
    PageData::server(
        state.config().upstream.spec.to_string(),
        query,
        config_error,
        result,
    )
}

fn status_of(e: &ExplorerError) -> StatusCode {
    StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

fn text_response(status: StatusCode, text: String) -> Response {
    let mut r = Response::new(Body::from(text));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(CONTENT_TYPE_PLAIN),
    );
    r
}

/// Marks a response as chosen by `Accept`, so caches keep the text and the page apart.
fn with_vary(mut r: Response) -> Response {
    r.headers_mut()
        .insert(header::VARY, HeaderValue::from_static("Accept"));
    r
}

/// The page (with its Content-Security-Policy as a header too) or its JSON.
pub(crate) fn explorer_response(format: ResponseFormat, data: &PageData) -> Response {
    let status =
        StatusCode::from_u16(data.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let (content_type, body) = match format {
        ResponseFormat::Json => (JSON_CONTENT_TYPE, Bytes::from(data.to_json())),
        _ => (HTML_CONTENT_TYPE, Bytes::from(render_page(data))),
    };
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if format == ResponseFormat::Html {
        if let Ok(v) = HeaderValue::from_str(&format!(
            "{}; frame-ancestors 'none'",
            explorer::content_security_policy()
        )) {
            h.insert(header::CONTENT_SECURITY_POLICY, v);
        }
    }
    with_vary(r)
}

/// One `/analyze` pass: every target in turn into one sink, all within `deadline`; then the
/// reports (the explorer's on a blocking thread: rendering a what-if's output is real work).
async fn analyze_pass(
    state: Arc<AppState>,
    deadline: Deadline,
    want: Want,
    explorer: Option<explorer::Analysis>,
) -> Analysis {
    let upstream = state.config().upstream.spec.to_string();
    let fail = |e| Analysis {
        want: want.clone(),
        result: Err(e),
    };
    let targets = match deadline.run(state.targets()).await {
        Ok(Ok(t)) => t,
        Ok(Err(e)) => return fail(AnalyzeFailure::Resolve(e)),
        Err(_) => {
            return fail(AnalyzeFailure::Resolve(ResolveError::Lookup {
                name: upstream,
                cause: format!("timeout after {:?}", deadline.timeout()),
            }))
        }
    };
    let mut sink = PassSink {
        text: Analyzer::new(),
        explorer,
    };
    let mut failed: Vec<(String, FetchError)> = Vec::new();
    let total = targets.len();
    // One report over all targets: the sink goes from one body to the next, within one
    // deadline for all targets together.
    let fetch = state.config().limits.fetch_options(deadline);
    let client = state.client();
    for target in &targets {
        let (s, result) = scrape_into(&client, target, fetch.clone(), sink).await;
        sink = s;
        match result {
            Ok(stats) => {
                sink.text.add_bytes(stats.decoded_bytes);
                if let Some(e) = &mut sink.explorer {
                    e.add_bytes(stats.decoded_bytes);
                }
                state.mark_ready();
            }
            Err(e) => {
                tracing::warn!(target_addr = %target, cause = e.kind(), error = %e, "analyze: target failed");
                failed.push((target.name.clone(), e));
            }
        }
    }
    if failed.len() == total {
        return fail(AnalyzeFailure::AllTargets {
            upstream,
            failures: TargetFailures(failed),
        });
    }
    let mut text = sink.text.report();
    let mut notes = Vec::new();
    for (t, e) in &failed {
        let _ = writeln!(
            text,
            "# target {t} failed ({e}); the report may include part of its body"
        );
        notes.push(format!(
            "target {t} failed ({e}); the numbers may include part of its body"
        ));
    }
    let explorer = match sink.explorer {
        None => None,
        Some(e) => Some(
            match tokio::task::spawn_blocking(move || e.finish()).await {
                Ok(r) => r,
                Err(e) => Err(ExplorerError::Io(format!("the analysis failed: {e}"))),
            },
        ),
    };
    Analysis {
        want,
        result: Ok(Reports {
            text: Bytes::from(text),
            explorer,
            notes,
        }),
    }
}
