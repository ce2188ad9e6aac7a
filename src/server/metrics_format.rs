//! The format of `/-/metrics`, negotiated like an exporter does: OpenMetrics text when the
//! client asks for it (Prometheus does, first), text 0.0.4 otherwise (`curl`, `promtool`, other
//! scrapers).
//!
//! `prometheus-client` writes OpenMetrics only, so the 0.0.4 form is converted from it the way
//! Prometheus' own client libraries write 0.0.4:
//! - `# EOF` and `# UNIT` lines are dropped;
//! - a counter family `x` whose samples are `x_total` is announced as `x_total` (`# HELP
//!   x_total`, `# TYPE x_total counter`), so every sample name has its HELP and TYPE;
//! - `_created` samples of counters, histograms and summaries are dropped (0.0.4 has none);
//! - `unknown` becomes `untyped`, `info` a gauge named `x_info`, `stateset` a gauge; other
//!   OpenMetrics-only types lose their TYPE line (their samples stay, untyped);
//! - HELP text keeps only the escapes 0.0.4 knows (`\\`, `\n`); exemplars are dropped and
//!   float-second timestamps become milliseconds.

use std::fmt::Write as _;

/// The two formats `/-/metrics` answers in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelfMetricsFormat {
    /// `text/plain; version=0.0.4`.
    Text,
    /// `application/openmetrics-text; version=1.0.0`.
    OpenMetrics,
}

impl SelfMetricsFormat {
    /// The format for a request's `Accept` header: the acceptable range with the highest `q`
    /// (the first one among equals), OpenMetrics only when it wins. No header, an empty one, or
    /// one that names neither format gives text 0.0.4. Parsed leniently (Prometheus versions
    /// send odd headers): a `q` that is not a number counts as 1, one above 1 as 1.
    pub fn negotiate(accept: Option<&str>) -> Self {
        let mut best: Option<(f32, Self)> = None;
        for range in accept.unwrap_or("").split(',') {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let format = match media.as_str() {
                "application/openmetrics-text" => Self::OpenMetrics,
                "text/plain" | "text/*" | "*/*" => Self::Text,
                _ => continue,
            };
            let q = parts
                .filter_map(|p| {
                    let (k, v) = p.split_once('=')?;
                    k.trim().eq_ignore_ascii_case("q").then(|| v.trim())
                })
                .next_back()
                .map_or(1.0, |v| {
                    v.parse::<f32>()
                        .ok()
                        .filter(|q| q.is_finite())
                        .map_or(1.0, |q| q.min(1.0))
                });
            if q > 0.0 && best.is_none_or(|(b, _)| q > b) {
                best = Some((q, format));
            }
        }
        best.map_or(Self::Text, |(_, f)| f)
    }

    /// The exact `Content-Type` of an answer in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Text => crate::exposition::render::CONTENT_TYPE_TEXT_004,
            Self::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// The metadata of the family being converted, written before its first sample.
#[derive(Default)]
struct Family<'a> {
    name: &'a str,
    help: Option<&'a str>,
    kind: Option<&'a str>,
    written: bool,
}

impl Family<'_> {
    /// The family's name and type in 0.0.4; `None` for a type 0.0.4 cannot say.
    fn text_name_and_type(&self) -> Option<(String, &'static str)> {
        let name = self.name;
        Some(match self.kind.unwrap_or("unknown") {
            "counter" if name.ends_with("_total") => (name.to_owned(), "counter"),
            "counter" => (format!("{name}_total"), "counter"),
            "gauge" => (name.to_owned(), "gauge"),
            "histogram" => (name.to_owned(), "histogram"),
            "summary" => (name.to_owned(), "summary"),
            "unknown" => (name.to_owned(), "untyped"),
            "info" => (format!("{name}_info"), "gauge"),
            "stateset" => (name.to_owned(), "gauge"),
            _ => return None,
        })
    }

    fn write_metadata(&mut self, out: &mut String) {
        if self.written || self.name.is_empty() {
            return;
        }
        self.written = true;
        let Some((name, kind)) = self.text_name_and_type() else {
            return;
        };
        if let Some(help) = self.help {
            let _ = writeln!(out, "# HELP {name} {}", help_to_text(help));
        }
        let _ = writeln!(out, "# TYPE {name} {kind}");
    }

    /// True for the `_created` samples 0.0.4 does not have.
    fn is_created(&self, sample_name: &str) -> bool {
        let base = self.name.strip_suffix("_total").unwrap_or(self.name);
        matches!(self.kind, Some("counter" | "histogram" | "summary"))
            && sample_name.strip_prefix(base) == Some("_created")
    }
}

/// HELP text in OpenMetrics escaping (`\\`, `\n`, `\"`) in 0.0.4 escaping (`\\`, `\n`).
fn help_to_text(help: &str) -> String {
    let mut out = String::with_capacity(help.len());
    let mut chars = help.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('"') => out.push('"'),
            Some(n) => {
                out.push('\\');
                out.push(n);
            }
            None => out.push_str("\\\\"),
        }
    }
    out
}

/// Converts OpenMetrics text (as `prometheus-client` writes it) to text format 0.0.4; see the
/// module docs for what changes.
pub fn openmetrics_to_text(om: &str) -> String {
    let mut out = String::with_capacity(om.len() + om.len() / 8);
    let mut family = Family::default();
    for line in om.lines() {
        if let Some(comment) = line.strip_prefix('#') {
            let comment = comment.trim_start();
            let (keyword, rest) = comment.split_once(' ').unwrap_or((comment, ""));
            if keyword != "HELP" && keyword != "TYPE" {
                continue; // `# EOF`, `# UNIT`, other comments
            }
            let (name, text) = rest.split_once(' ').unwrap_or((rest, ""));
            if name != family.name {
                family.write_metadata(&mut out);
                family = Family {
                    name,
                    ..Family::default()
                };
            }
            if keyword == "HELP" {
                family.help = Some(text);
            } else {
                family.kind = Some(text.trim());
            }
            continue;
        }
        if line.trim().is_empty() {
            continue;
        }
        family.write_metadata(&mut out);
        let (series, rest) = split_series(line);
        let sample_name = series.split('{').next().unwrap_or(series);
        if family.is_created(sample_name) {
            continue;
        }
        // `value [timestamp] [# exemplar]`.
        let rest = rest.split(" # ").next().unwrap_or(rest);
        let mut tokens = rest.split_whitespace();
        let value = tokens.next().unwrap_or("");
        out.push_str(series);
        out.push(' ');
        out.push_str(value);
        if let Some(ts) = tokens.next().and_then(|t| t.parse::<f64>().ok()) {
            let _ = write!(out, " {}", (ts * 1000.0).round() as i64);
        }
        out.push('\n');
    }
    family.write_metadata(&mut out);
    out
}

/// Splits a sample line after its series (name and label block), honouring quoted label
/// values (which may hold spaces, `}` and ` # `).
fn split_series(line: &str) -> (&str, &str) {
    let bytes = line.as_bytes();
    let mut i = 0;
    let mut depth_open = false;
    let mut in_quotes = false;
    while i < bytes.len() {
        let b = bytes[i];
        if in_quotes {
            match b {
                b'\\' => i += 1,
                b'"' => in_quotes = false,
                _ => {}
            }
        } else {
            match b {
                b'{' => depth_open = true,
                b'"' if depth_open => in_quotes = true,
                b'}' => return (&line[..=i], &line[i + 1..]),
                b' ' | b'\t' if !depth_open => return (&line[..i], &line[i..]),
                _ => {}
            }
        }
        i += 1;
    }
    (line, "")
}

#[cfg(test)]
mod tests {
    use super::*;
    use SelfMetricsFormat::{OpenMetrics, Text};

    #[test]
    fn negotiates_like_an_exporter() {
        for (accept, want) in [
            (None, Text),
            (Some(""), Text),
            (Some("*/*"), Text),
            (Some("text/plain;version=0.0.4"), Text),
            (Some("application/openmetrics-text"), OpenMetrics),
            // Prometheus 2.42 and 3.x.
            (Some("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"), OpenMetrics),
            (Some("application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,text/plain;version=0.0.4;q=0.5"), OpenMetrics),
            (Some("text/plain;version=0.0.4;q=1,application/openmetrics-text;q=0.5"), Text),
            (Some("text/plain;q=0.2, application/openmetrics-text;q=0.9"), OpenMetrics),
            // Prometheus 2.49.0's invalid `q=2` counts as 1; OpenMetrics came first.
            (Some("application/openmetrics-text;version=1.0.0,*/*;q=2"), OpenMetrics),
            (Some("application/openmetrics-text;q=0,text/html"), Text),
            (Some("application/json"), Text),
            (Some("application/openmetrics-text;q=junk"), OpenMetrics),
        ] {
            assert_eq!(SelfMetricsFormat::negotiate(accept), want, "{accept:?}");
        }
        assert_eq!(
            Text.content_type(),
            "text/plain; version=0.0.4; charset=utf-8"
        );
    }

    #[test]
    fn converts_openmetrics_to_0_0_4() {
        let om = "\
# HELP mg_requests Requests \\\"served\\\", by code.
# TYPE mg_requests counter
mg_requests_total{code=\"200\"} 3
mg_requests_created{code=\"200\"} 1700000000.5
# HELP mg_open Open \\\\ now.
# TYPE mg_open gauge
mg_open 2
# HELP mg_duration_seconds Duration.
# TYPE mg_duration_seconds histogram
# UNIT mg_duration_seconds seconds
mg_duration_seconds_bucket{le=\"0.5\"} 1 # {trace=\"a b}\"} 0.2 1700000000.0
mg_duration_seconds_bucket{le=\"+Inf\"} 1
mg_duration_seconds_sum 0.2
mg_duration_seconds_count 1
# HELP mg_build Build.
# TYPE mg_build info
mg_build_info{version=\"1\"} 1
# TYPE mg_odd unknown
mg_odd{v=\"a } # b\"} 1 1700000000.25
# TYPE mg_total_things counter
mg_total_things_total 1
# EOF
";
        let want = "\
# HELP mg_requests_total Requests \"served\", by code.
# TYPE mg_requests_total counter
mg_requests_total{code=\"200\"} 3
# HELP mg_open Open \\\\ now.
# TYPE mg_open gauge
mg_open 2
# HELP mg_duration_seconds Duration.
# TYPE mg_duration_seconds histogram
mg_duration_seconds_bucket{le=\"0.5\"} 1
mg_duration_seconds_bucket{le=\"+Inf\"} 1
mg_duration_seconds_sum 0.2
mg_duration_seconds_count 1
# HELP mg_build_info Build.
# TYPE mg_build_info gauge
mg_build_info{version=\"1\"} 1
# TYPE mg_odd untyped
mg_odd{v=\"a } # b\"} 1 1700000000250
# TYPE mg_total_things_total counter
mg_total_things_total 1
";
        assert_eq!(openmetrics_to_text(om), want);
    }
}
