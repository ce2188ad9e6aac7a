//! Response bodies and their negotiation: which exposition format and name escaping a client
//! gets (from `Accept`), and gzip when it accepts it, each computed once per rendered result.
//!
//! A scrape renders each list once ([`Rendered`]); every client of that scrape gets the same
//! bytes (`Bytes` shares one allocation), and each escaping and encoding a client asks for is
//! made once per result, on first demand, and shared the same way. How long responses may hold
//! these bytes is bounded separately (`server::responses`).
//!
//! # Format negotiation
//! [`parse_accept`] reads an `Accept` header leniently (Prometheus versions send odd ones:
//! 2.49.0 an invalid `q=2`, 3.0 an `escaping=` on every range); [`Negotiated::for_metrics`]
//! picks the answer of `/metrics` and `/metrics/{subset}`, and `/-/metrics` uses the same
//! parsing (`super::metrics_format`).

use std::io::Write as _;

use bytes::Bytes;
use http::HeaderMap;
use tokio::sync::OnceCell;

use super::gzip_parts::{self, DeflatePart};
use crate::exposition::escape::{rewrite, EscapeStats, Escaping, Written};
use crate::exposition::{Format, ParseError};

/// One media range of an `Accept` header, with the parameters negotiation reads.
#[derive(Debug, Clone, PartialEq)]
pub struct MediaRange {
    /// `type/subtype`, lowercased (`text/plain`, `application/openmetrics-text`, `*/*`).
    pub media: String,
    /// The `version` parameter, if any.
    pub version: Option<String>,
    /// The `escaping` parameter, when it names a known scheme (an unknown one is ignored, as
    /// Prometheus' libraries do).
    pub escaping: Option<Escaping>,
    /// The weight: 1 when absent or not a number, at most 1.
    pub q: f32,
}

/// The media ranges of an `Accept` header in the order written. Never fails: a range without a
/// `/` is skipped, a parameter without `=` ignored, a `q` that is not a finite number counts as
/// 1 and one above 1 as 1 (Prometheus 2.49.0 sends `*/*;q=2`).
pub fn parse_accept(accept: &str) -> Vec<MediaRange> {
    let mut out = Vec::new();
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        if !media.contains('/') {
            continue;
        }
        let mut r = MediaRange {
            media,
            version: None,
            escaping: None,
            q: 1.0,
        };
        for p in parts {
            let Some((k, v)) = p.split_once('=') else {
                continue;
            };
            let (k, v) = (k.trim(), v.trim().trim_matches('"'));
            if k.eq_ignore_ascii_case("q") {
                r.q = v
                    .parse::<f32>()
                    .ok()
                    .filter(|q| q.is_finite())
                    .map_or(1.0, |q| q.min(1.0));
            } else if k.eq_ignore_ascii_case("version") {
                r.version = Some(v.to_owned());
            } else if k.eq_ignore_ascii_case("escaping") {
                r.escaping = Escaping::from_param(v).or(r.escaping);
            }
        }
        out.push(r);
    }
    out
}

/// The exposition formats metric-gate writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpositionFormat {
    /// Prometheus text format 0.0.4 (names outside the legacy set in Prometheus 3's quoted
    /// form when the escaping allows them).
    Text004,
    /// Prometheus text format 1.0.0: 0.0.4 with quoted UTF-8 names, Prometheus 3's.
    Text100,
    /// OpenMetrics text 1.0.0 (asked for as 1.0.0, 0.0.1 or without a version).
    OpenMetrics,
}

impl ExpositionFormat {
    /// The format a media range asks for, if metric-gate writes it: `text/plain` with version
    /// 0.0.4, 1.0.0 or none; `text/*` and `*/*` get 0.0.4; `application/openmetrics-text`
    /// with version 1.0.0, 0.0.1 or none.
    fn of(range: &MediaRange) -> Option<Self> {
        match (range.media.as_str(), range.version.as_deref()) {
            ("text/plain", None | Some("0.0.4")) | ("text/*" | "*/*", _) => Some(Self::Text004),
            ("text/plain", Some("1.0.0")) => Some(Self::Text100),
            ("application/openmetrics-text", None | Some("1.0.0" | "0.0.1")) => {
                Some(Self::OpenMetrics)
            }
            _ => None,
        }
    }

    /// True for the formats that are the upstream's own: OpenMetrics for an OpenMetrics
    /// upstream, the text formats for a text one.
    fn is_native(self, upstream_openmetrics: bool) -> bool {
        (self == Self::OpenMetrics) == upstream_openmetrics
    }
}

/// What a `/metrics` answer is: its format and how it writes names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    /// The exposition format.
    pub format: ExpositionFormat,
    /// How names outside the legacy character set are written.
    pub escaping: Escaping,
}

impl Negotiated {
    /// What a client sending `accept` gets when the upstream answered in OpenMetrics
    /// (`upstream_openmetrics`) or in the text format.
    ///
    /// The upstream's own format whenever the client accepts it (`q` > 0), whatever the
    /// weights: answering a text upstream in OpenMetrics, or the reverse, is a conversion, and
    /// only the upstream's own format is sure to make Prometheus store what it would store
    /// scraping the upstream directly. Among the ranges of that format the highest `q` wins
    /// (the first among equals). Only when the client accepts none of them, the best range of
    /// the other format (a conversion that keeps the series: see
    /// `exposition::render_om`). No range metric-gate can write (no header,
    /// `application/json`) gives text 0.0.4, which every scraper reads.
    ///
    /// The escaping is the chosen range's `escaping` parameter, or `underscores` when it names
    /// none (every Prometheus 2), as Prometheus' libraries do.
    pub fn for_metrics(accept: Option<&str>, upstream_openmetrics: bool) -> Self {
        let mut native: Option<(f32, Self)> = None;
        let mut other: Option<(f32, Self)> = None;
        for range in parse_accept(accept.unwrap_or("")) {
            let Some(format) = ExpositionFormat::of(&range) else {
                continue;
            };
            let best = if format.is_native(upstream_openmetrics) {
                &mut native
            } else {
                &mut other
            };
            if range.q > 0.0 && best.is_none_or(|(q, _)| range.q > q) {
                let escaping = range.escaping.unwrap_or(Escaping::Underscores);
                *best = Some((range.q, Self { format, escaping }));
            }
        }
        native.or(other).map_or(
            Self {
                format: ExpositionFormat::Text004,
                escaping: Escaping::Underscores,
            },
            |(_, n)| n,
        )
    }

    /// The exact `Content-Type` of the answer: format, version, charset and escaping.
    pub fn content_type(self) -> &'static str {
        use Escaping::{AllowUtf8, Dots, Underscores, Values};
        use ExpositionFormat::{OpenMetrics, Text004, Text100};
        match (self.format, self.escaping) {
            (OpenMetrics, AllowUtf8) => {
                "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=allow-utf-8"
            }
            (OpenMetrics, Underscores) => {
                "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=underscores"
            }
            (OpenMetrics, Dots) => {
                "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=dots"
            }
            (OpenMetrics, Values) => {
                "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=values"
            }
            (Text004, AllowUtf8) => {
                "text/plain; version=0.0.4; charset=utf-8; escaping=allow-utf-8"
            }
            (Text004, Underscores) => {
                "text/plain; version=0.0.4; charset=utf-8; escaping=underscores"
            }
            (Text004, Dots) => "text/plain; version=0.0.4; charset=utf-8; escaping=dots",
            (Text004, Values) => "text/plain; version=0.0.4; charset=utf-8; escaping=values",
            (Text100, AllowUtf8) => {
                "text/plain; version=1.0.0; charset=utf-8; escaping=allow-utf-8"
            }
            (Text100, Underscores) => {
                "text/plain; version=1.0.0; charset=utf-8; escaping=underscores"
            }
            (Text100, Dots) => "text/plain; version=1.0.0; charset=utf-8; escaping=dots",
            (Text100, Values) => "text/plain; version=1.0.0; charset=utf-8; escaping=values",
        }
    }
}

/// A rendered body as a scrape keeps it: the text, or only its gzip form.
///
/// A scrape started by a client that accepts gzip (Prometheus always does) renders straight
/// into a gzip encoder and keeps only the compressed bytes: on the 2x ingress payload that is
/// 5 MB held instead of 133 MB of text (built in a fresh allocation whose every page faults in),
/// and the compression that client's answer needed anyway. A client of that result that does
/// not accept gzip gets the text decompressed once, on first demand ([`Rendered::text`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kept {
    /// The text as rendered.
    Text(Bytes),
    /// The text gzip-compressed ([`gzip`]'s level), and the length of the text.
    Gzip {
        /// The compressed bytes.
        gzip: Bytes,
        /// The length of the text they hold.
        text_len: usize,
    },
}

impl Kept {
    /// The length of the text (compressed or not).
    pub fn text_len(&self) -> usize {
        match self {
            Kept::Text(b) => b.len(),
            Kept::Gzip { text_len, .. } => *text_len,
        }
    }

    /// `write`'s text compressed as it is written, so it never exists whole. `text_hint` is
    /// about how long the text will be.
    pub fn gzip_of(
        text_hint: usize,
        write: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>,
    ) -> Kept {
        // Ingress-shaped text compresses ~25x at the fastest level.
        let mut part = DeflatePart::new(text_hint / 16);
        // Compressing into memory cannot fail, and the renderers add no failure of their own.
        let _ = write(&mut part);
        Kept::gzip_parts(vec![part])
    }

    /// `parts` (in order) joined into one gzip member ([`gzip_parts::join`]).
    pub(super) fn gzip_parts(parts: Vec<DeflatePart>) -> Kept {
        let text_len = parts.iter().map(DeflatePart::text_len).sum();
        Kept::Gzip {
            // Joining parts compressed in memory cannot fail.
            gzip: Bytes::from(gzip_parts::join(parts).unwrap_or_default()),
            text_len,
        }
    }
}

impl From<Bytes> for Kept {
    fn from(text: Bytes) -> Kept {
        Kept::Text(text)
    }
}

/// A rendered response body in the form its scrape kept ([`Kept`]) and, once a client asked
/// for it, its other form (gzip, or the text). Shared between the requests that read the same
/// result (single-flight scrapes, subset snapshots), so each result is compressed (or
/// decompressed) at most once.
#[derive(Debug)]
pub struct Rendered {
    /// The plain text: set from the start when the scrape kept the text, else made on demand.
    text: OnceCell<Bytes>,
    /// The length of the text.
    text_len: usize,
    /// The scrape that rendered it: responses holding bodies of the same scrape hold one set of
    /// bytes between them.
    pub generation: u64,
    /// Some name in the text is outside the legacy character set (written quoted): escaping
    /// schemes other than `allow-utf-8` need their own text. False for the usual all-legacy
    /// output, which every scheme serves as is.
    quoted_names: bool,
    /// The gzip form: set from the start when the scrape kept it, else made on demand.
    gzip: OnceCell<Bytes>,
    /// The same result in OpenMetrics, when the upstream answered in it (rendered by the
    /// scrape, with `# UNIT`, `info`, `stateset` kept).
    openmetrics: Option<Box<Rendered>>,
    /// Text under each escaping scheme ([`scheme_index`]), made on first demand when
    /// `quoted_names`.
    escaped: [OnceCell<Box<Rendered>>; 4],
    /// OpenMetrics under each escaping scheme, made on first demand from `openmetrics` (when
    /// `quoted_names`), or converted from the text when the upstream answered in text.
    converted: [OnceCell<Box<Rendered>>; 4],
}

/// The slot of a scheme in [`Rendered`]'s arrays.
fn scheme_index(escaping: Escaping) -> usize {
    match escaping {
        Escaping::AllowUtf8 => 0,
        Escaping::Underscores => 1,
        Escaping::Dots => 2,
        Escaping::Values => 3,
    }
}

/// A content coding a client may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// The text as rendered.
    Identity,
    /// gzip (`Content-Encoding: gzip`).
    Gzip,
}

impl Rendered {
    /// Wraps a body rendered in text by scrape number `generation`; `quoted_names` says
    /// whether some name in it is written quoted (see
    /// [`crate::exposition::escape::series_has_quoted_name`]); when false, every escaping
    /// scheme is served the body itself.
    pub fn new(body: Bytes, generation: u64, quoted_names: bool) -> Self {
        Self::kept(Kept::Text(body), generation, quoted_names)
    }

    /// Wraps a body in the form its scrape kept, as [`Rendered::new`] does a text.
    pub fn kept(body: Kept, generation: u64, quoted_names: bool) -> Self {
        let text_len = body.text_len();
        let (text, gzip) = match body {
            Kept::Text(t) => (OnceCell::new_with(Some(t)), OnceCell::new()),
            Kept::Gzip { gzip, .. } => (OnceCell::new(), OnceCell::new_with(Some(gzip))),
        };
        Self {
            text,
            text_len,
            generation,
            quoted_names,
            gzip,
            openmetrics: None,
            escaped: Default::default(),
            converted: Default::default(),
        }
    }

    /// Adds the OpenMetrics rendering of the same result (the upstream answered in it).
    pub fn with_openmetrics(mut self, openmetrics: Option<Kept>) -> Self {
        self.openmetrics =
            openmetrics.map(|om| Box::new(Rendered::kept(om, self.generation, self.quoted_names)));
        self
    }

    /// The length of the text.
    pub fn text_len(&self) -> usize {
        self.text_len
    }

    /// The text when it is at hand (kept by the scrape, or already decompressed).
    pub fn text_now(&self) -> Option<&Bytes> {
        self.text.get()
    }

    /// The text; for a result kept as gzip, decompressed on a blocking thread by the first
    /// request that needs it and shared after that.
    pub async fn text(&self) -> Bytes {
        self.text
            .get_or_init(|| {
                let gz = self.gzip.get().cloned().unwrap_or_default();
                let len = self.text_len;
                async move {
                    tokio::task::spawn_blocking(move || gunzip(&gz, len))
                        .await
                        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
                }
            })
            .await
            .clone()
    }

    /// True when the upstream answered in OpenMetrics (and the result has that rendering).
    pub fn is_openmetrics(&self) -> bool {
        self.openmetrics.is_some()
    }

    /// The result as `negotiated` asks: the rendering itself when nothing changes (its own
    /// format family, and `allow-utf-8` or only legacy names), else the text rewritten
    /// ([`crate::exposition::escape::rewrite`]: names escaped, the format converted), made
    /// once (on a blocking thread) by the first request that needs it and shared after that.
    /// `on_rewrite` is called with what escaping did, once per result, format and scheme, by
    /// the request that made it. Fails only if a rendered text does not parse (never
    /// expected).
    pub async fn variant(
        &self,
        negotiated: Negotiated,
        on_rewrite: impl FnOnce(EscapeStats),
    ) -> Result<&Rendered, ParseError> {
        let escaping = negotiated.escaping;
        let unchanged_names = escaping == Escaping::AllowUtf8 || !self.quoted_names;
        let i = scheme_index(escaping);
        let (slot, source, from, to) = match (negotiated.format, &self.openmetrics) {
            (ExpositionFormat::Text004 | ExpositionFormat::Text100, _) => {
                if unchanged_names {
                    return Ok(self);
                }
                (&self.escaped[i], self, Format::Text, Written::Text)
            }
            (ExpositionFormat::OpenMetrics, Some(om)) => {
                if unchanged_names {
                    return Ok(om);
                }
                (
                    &self.converted[i],
                    &**om,
                    Format::OpenMetrics,
                    Written::OpenMetrics,
                )
            }
            (ExpositionFormat::OpenMetrics, None) => {
                (&self.converted[i], self, Format::Text, Written::OpenMetrics)
            }
        };
        let made = slot
            .get_or_try_init(|| {
                let generation = self.generation;
                async move {
                    let body = source.text().await;
                    let (text, stats) =
                        tokio::task::spawn_blocking(move || rewrite(&body, from, to, escaping))
                            .await
                            .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))?;
                    on_rewrite(stats);
                    Ok::<_, ParseError>(Box::new(Rendered::new(
                        Bytes::from(text),
                        generation,
                        false,
                    )))
                }
            })
            .await?;
        Ok(made)
    }

    /// The body in `encoding`, made on first demand and shared after that.
    pub async fn encoded(&self, encoding: Encoding) -> Bytes {
        match encoding {
            Encoding::Identity => self.text().await,
            Encoding::Gzip => self.gzipped().await,
        }
    }

    /// The gzip form, compressed on a blocking thread the first time (a large pass-through
    /// result takes a while to compress).
    pub async fn gzipped(&self) -> Bytes {
        self.gzip
            .get_or_init(|| {
                // A result kept as gzip has this cell set from the start: only text gets here.
                let body = self.text.get().cloned().unwrap_or_default();
                async move {
                    tokio::task::spawn_blocking(move || gzip(&body))
                        .await
                        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
                }
            })
            .await
            .clone()
    }
}

/// Gzip at the fastest level: Prometheus scrapes often, and on loopback or in-cluster links the
/// CPU time of higher levels costs more than the bytes they save.
pub fn gzip(data: &[u8]) -> Bytes {
    let mut part = DeflatePart::new(data.len() / 8);
    // Compressing into memory cannot fail.
    let _ = part.write_all(data);
    Bytes::from(gzip_parts::join(vec![part]).unwrap_or_default())
}

/// The text of `gz` (our own [`gzip`] output of a `len`-byte text). Empty if it does not
/// decompress, which our own output always does.
fn gunzip(gz: &[u8], len: usize) -> Bytes {
    let mut text = Vec::with_capacity(len);
    let mut d = flate2::write::GzDecoder::new(&mut text);
    if d.write_all(gz).and_then(|()| d.try_finish()).is_err() {
        return Bytes::new();
    }
    drop(d);
    Bytes::from(text)
}

/// The encoding to answer with: gzip when the client accepts it.
pub fn negotiate_encoding(headers: &HeaderMap) -> Encoding {
    if accepts_gzip(headers) {
        Encoding::Gzip
    } else {
        Encoding::Identity
    }
}

/// True when `Accept-Encoding` accepts gzip (`gzip` or `*` with a non-zero q). Lenient: an
/// unparsable part is skipped, never an error.
pub fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(http::header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|part| {
            let mut it = part.split(';');
            let coding = it.next().unwrap_or("").trim();
            if !(coding.eq_ignore_ascii_case("gzip") || coding == "*") {
                return false;
            }
            let q = it
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            q > 0.0
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn h(v: &'static str) -> HeaderMap {
        let mut m = HeaderMap::new();
        m.insert(http::header::ACCEPT_ENCODING, HeaderValue::from_static(v));
        m
    }

    #[test]
    fn accept_encoding() {
        assert!(accepts_gzip(&h("gzip")));
        assert!(accepts_gzip(&h("deflate, GZIP;q=0.5")));
        assert!(accepts_gzip(&h("*")));
        assert!(!accepts_gzip(&h("gzip;q=0")));
        assert!(!accepts_gzip(&h("identity")));
        assert!(!accepts_gzip(&h(";;,,q=x")));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    /// The `Accept` header of Prometheus 2.42.
    const PROMETHEUS_2_42: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    /// Prometheus 3's default `Accept` (UTF-8 names).
    const PROMETHEUS_3: &str = "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";

    #[test]
    fn metrics_negotiation_follows_the_client() {
        use Escaping::{AllowUtf8, Dots, Underscores, Values};
        use ExpositionFormat::{OpenMetrics, Text004, Text100};
        for (accept, format, escaping) in [
            (None, Text004, Underscores),
            (Some(""), Text004, Underscores),
            (Some("*/*"), Text004, Underscores),
            (Some("application/json"), Text004, Underscores),
            // OpenMetrics only: converted.
            (Some("application/openmetrics-text"), OpenMetrics, Underscores),
            (Some("application/openmetrics-text;version=0.0.1;escaping=allow-utf-8"), OpenMetrics, AllowUtf8),
            (Some("application/openmetrics-text;version=2.0.0"), Text004, Underscores),
            (Some(PROMETHEUS_2_42), Text004, Underscores),
            // Prometheus 3 defaults (UTF-8 names), and with `metric_name_escaping_scheme`.
            (Some("application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"), Text100, AllowUtf8),
            (Some("application/openmetrics-text;version=1.0.0;escaping=underscores;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=underscores;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"), Text100, Underscores),
            (Some("text/plain;version=1.0.0;escaping=dots;q=0.4,text/plain;version=0.0.4;q=0.3"), Text100, Dots),
            (Some("text/plain;version=1.0.0;escaping=values"), Text100, Values),
            // Prometheus 3.0-3.3 put `escaping=allow-utf-8` on every range.
            (Some("application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.5,text/plain;version=0.0.4;escaping=allow-utf-8;q=0.3,*/*;q=0.2"), Text004, AllowUtf8),
            // Prometheus 3 with `scrape_protocols: [PrometheusText0.0.4]`.
            (Some("text/plain;version=0.0.4;q=0.6,*/*;q=0.5"), Text004, Underscores),
            // An unknown scheme is ignored; an unknown version is not ours.
            (Some("text/plain;version=1.0.0;escaping=bogus"), Text100, Underscores),
            (Some("text/plain;version=9.9.9,text/*;q=0.1"), Text004, Underscores),
            (Some("text/plain;version=1.0.0;q=0,text/plain"), Text004, Underscores),
            // Prometheus 2.49.0's invalid `q=2` counts as 1.
            (Some("text/plain;version=1.0.0;escaping=allow-utf-8;q=0.5,*/*;q=2"), Text004, Underscores),
            (Some(";;,,=,/"), Text004, Underscores),
        ] {
            let n = Negotiated::for_metrics(accept, false);
            assert_eq!((n.format, n.escaping), (format, escaping), "{accept:?}");
        }
        let n = Negotiated::for_metrics(Some(PROMETHEUS_2_42), false);
        assert_eq!(
            n.content_type(),
            "text/plain; version=0.0.4; charset=utf-8; escaping=underscores"
        );
        let n = Negotiated {
            format: Text100,
            escaping: AllowUtf8,
        };
        assert_eq!(
            n.content_type(),
            "text/plain; version=1.0.0; charset=utf-8; escaping=allow-utf-8"
        );
    }

    #[test]
    fn an_openmetrics_upstream_is_answered_in_openmetrics() {
        use Escaping::{AllowUtf8, Underscores};
        use ExpositionFormat::{OpenMetrics, Text004, Text100};
        for (accept, format, escaping) in [
            (Some(PROMETHEUS_2_42), OpenMetrics, Underscores),
            (Some(PROMETHEUS_3), OpenMetrics, AllowUtf8),
            (
                Some("text/plain;version=0.0.4;q=1,application/openmetrics-text;q=0.1"),
                OpenMetrics,
                Underscores,
            ),
            // Clients that do not accept OpenMetrics get the text conversion.
            (None, Text004, Underscores),
            (
                Some("text/plain;version=1.0.0;escaping=allow-utf-8"),
                Text100,
                AllowUtf8,
            ),
            (
                Some("application/openmetrics-text;q=0,text/plain"),
                Text004,
                Underscores,
            ),
        ] {
            let n = Negotiated::for_metrics(accept, true);
            assert_eq!((n.format, n.escaping), (format, escaping), "{accept:?}");
        }
        assert_eq!(
            Negotiated::for_metrics(Some(PROMETHEUS_3), true).content_type(),
            "application/openmetrics-text; version=1.0.0; charset=utf-8; escaping=allow-utf-8"
        );
    }

    #[test]
    fn accept_parsing_is_lenient() {
        let r =
            parse_accept("Text/Plain ; Version=1.0.0; escaping=\"dots\" ; q=0.25, junk, */*;q=x");
        assert_eq!(r.len(), 2);
        assert_eq!(r[0].media, "text/plain");
        assert_eq!(r[0].version.as_deref(), Some("1.0.0"));
        assert_eq!(r[0].escaping, Some(Escaping::Dots));
        assert_eq!(r[0].q, 0.25);
        assert_eq!((r[1].media.as_str(), r[1].q), ("*/*", 1.0));
    }

    fn n(format: ExpositionFormat, escaping: Escaping) -> Negotiated {
        Negotiated { format, escaping }
    }

    #[tokio::test]
    async fn variants_are_made_once_and_only_when_needed() {
        use Escaping::{AllowUtf8, Underscores, Values};
        use ExpositionFormat::{OpenMetrics, Text004, Text100};
        let text = "{\"a.b\"} 1\na_b 2 1500\n";
        let r = Rendered::new(Bytes::from_static(text.as_bytes()), 7, true);
        let mut calls = Vec::new();
        let e = r
            .variant(n(Text004, Underscores), |s| calls.push(s))
            .await
            .unwrap();
        assert_eq!(&e.text_now().unwrap()[..], b"a_b 3 1500\n");
        assert_eq!(e.generation, 7);
        let again = r
            .variant(n(Text100, Underscores), |_| panic!("made twice"))
            .await
            .unwrap();
        assert!(std::ptr::eq(e, again));
        assert_eq!(
            calls,
            [EscapeStats {
                merged: 1,
                dropped: 0
            }]
        );
        let same = r
            .variant(n(Text100, AllowUtf8), |_| panic!())
            .await
            .unwrap();
        assert!(std::ptr::eq(same, &r));
        // A text result converted for an OpenMetrics-only client.
        let om = r.variant(n(OpenMetrics, AllowUtf8), |_| {}).await.unwrap();
        assert_eq!(
            std::str::from_utf8(om.text_now().unwrap()).unwrap(),
            "# TYPE \"a.b\" unknown\n{\"a.b\"} 1\n# TYPE a_b unknown\na_b 2 1.5\n# EOF\n"
        );
        // All-legacy text is served as is under every text scheme.
        let plain = Rendered::new(Bytes::from_static(b"up 1\n"), 1, false);
        let same = plain
            .variant(n(Text004, Values), |_| panic!())
            .await
            .unwrap();
        assert!(std::ptr::eq(same, &plain));
        // An OpenMetrics result is served as rendered, and as text to text clients.
        let both = Rendered::new(Bytes::from_static(b"up 1\n"), 1, false)
            .with_openmetrics(Some(Bytes::from_static(b"up 1\n# EOF\n").into()));
        assert!(both.is_openmetrics());
        let om = both
            .variant(n(OpenMetrics, Underscores), |_| panic!())
            .await
            .unwrap();
        assert_eq!(&om.text_now().unwrap()[..], b"up 1\n# EOF\n");
        let text = both
            .variant(n(Text004, Underscores), |_| panic!())
            .await
            .unwrap();
        assert_eq!(&text.text_now().unwrap()[..], b"up 1\n");
    }

    fn gunzipped(z: &[u8]) -> String {
        let mut d = flate2::read::GzDecoder::new(z);
        let mut s = String::new();
        std::io::Read::read_to_string(&mut d, &mut s).unwrap();
        s
    }

    #[tokio::test]
    async fn a_result_kept_as_gzip_answers_every_client() {
        let text = "{\"a.b\"} 1\na_b 2 1500\n";
        let kept = Kept::gzip_of(0, |w| w.write_all(text.as_bytes()));
        let Kept::Gzip { gzip: z, text_len } = &kept else {
            panic!("not kept as gzip: {kept:?}");
        };
        assert_eq!((gunzipped(z), *text_len), (text.to_owned(), text.len()));
        let r = Rendered::kept(kept.clone(), 3, true);
        assert_eq!(r.text_len(), text.len());
        assert!(r.text_now().is_none());
        // A gzip client gets the kept bytes themselves, not a second compression.
        assert_eq!(&r.encoded(Encoding::Gzip).await, z);
        assert!(r.text_now().is_none());
        // A plain client gets the text, decompressed once.
        assert_eq!(&r.encoded(Encoding::Identity).await[..], text.as_bytes());
        assert_eq!(&r.text_now().unwrap()[..], text.as_bytes());
        // Escaping reads the text too.
        let r = Rendered::kept(kept, 3, true);
        let e = r
            .variant(n(ExpositionFormat::Text004, Escaping::Underscores), |_| {})
            .await
            .unwrap();
        assert_eq!(&e.text_now().unwrap()[..], b"a_b 3 1500\n");
        // Kept as text, it is the text, and gzip is made on demand.
        let t = Kept::from(Bytes::from_static(b"up 1\n"));
        let r = Rendered::kept(t, 1, false);
        assert_eq!(gunzipped(&r.encoded(Encoding::Gzip).await), "up 1\n");
    }

    #[test]
    fn gzip_round_trip() {
        let z = gzip(b"up 1\n");
        let mut d = flate2::read::GzDecoder::new(&z[..]);
        let mut s = String::new();
        std::io::Read::read_to_string(&mut d, &mut s).unwrap();
        assert_eq!(s, "up 1\n");
    }
}
