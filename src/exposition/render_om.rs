//! Writers for OpenMetrics text 1.0: a family's metadata and samples, timestamps in seconds,
//! and `# EOF`.
//!
//! Series keys are written as the text format writes them ([`super::render::write_series`]):
//! the two formats share the series syntax (Prometheus 3 reads the quoted form of UTF-8 names
//! in both). What differs is decided here, per family, so that a Prometheus storing the
//! OpenMetrics answer stores the same series names as from the text answer:
//! - a family keeps its type only when every sample name is one that type allows in
//!   OpenMetrics (a counter `x` has `x_total` and `x_created`; a histogram `x_bucket`, `x_sum`,
//!   `x_count`, `x_created`; and so on). A text-format counter family `x_total` becomes the
//!   OpenMetrics family `x`, with the same samples;
//! - otherwise the family is `unknown` (a counter without `_total`, such as ingress-nginx's
//!   `nginx_ingress_controller_requests`, is retyped rather than renamed), and when even that
//!   cannot hold the samples (names that differ from the family's), each sample name is its own
//!   `unknown` family;
//! - text 0.0.4's `untyped` is OpenMetrics' `unknown`;
//! - `# UNIT` is written only where OpenMetrics allows it: the family name ends with `_<unit>`;
//! - HELP escapes `\\`, `\n` and `"`, timestamps are seconds (from milliseconds, exactly);
//! - exemplars are written as the input wrote them, on the samples OpenMetrics allows them on
//!   (a counter's `_total`, a histogram's `_bucket`), and left out on any other (a family
//!   retyped `unknown` has none).

use std::borrow::Cow;

use super::float::{write_go_float, write_i64};
use super::render::{write_comment_name, write_escaped_label_value};

/// The `Content-Type` of OpenMetrics text 1.0 without an escaping parameter.
pub const CONTENT_TYPE_OPENMETRICS: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A sample's value as it is to be written.
#[derive(Debug, Clone, Copy)]
pub enum OmValue<'a> {
    /// The input's spelling, written as is.
    Text(&'a [u8]),
    /// A computed value (a sum), written Go's way.
    Float(f64),
}

/// One sample of a family to write.
#[derive(Debug, Clone, Copy)]
pub struct OmSample<'a> {
    /// The metric name (unquoted, unescaped).
    pub name: &'a str,
    /// The rendered series (`name{a="x"}`), written as is.
    pub key: &'a [u8],
    /// The value.
    pub value: OmValue<'a>,
    /// Milliseconds since the epoch, written as seconds.
    pub timestamp_ms: Option<i64>,
    /// The exemplar, `{labels} value [timestamp]` as the input wrote it, written after ` # `
    /// where OpenMetrics allows one (a counter's `_total`, a histogram's or gauge histogram's
    /// `_bucket`) and left out elsewhere.
    pub exemplar: Option<&'a str>,
}

/// The suffixes a sample name may add to its family's name, by OpenMetrics type.
fn suffixes(typ: &str) -> &'static [&'static str] {
    match typ {
        "counter" => &["_total", "_created"],
        "histogram" => &["_bucket", "_sum", "_count", "_created"],
        "gaugehistogram" => &["_bucket", "_gsum", "_gcount"],
        "summary" => &["", "_sum", "_count", "_created"],
        "info" => &["_info"],
        _ => &[""],
    }
}

/// The OpenMetrics type word for a TYPE word of either format; `None` for an unknown word.
fn openmetrics_type(typ: &str) -> Option<&'static str> {
    Some(match typ {
        "counter" => "counter",
        "gauge" => "gauge",
        "histogram" => "histogram",
        "gaugehistogram" => "gaugehistogram",
        "summary" => "summary",
        "info" => "info",
        "stateset" => "stateset",
        "untyped" | "unknown" => "unknown",
        _ => return None,
    })
}

fn fits(family: &str, typ: &str, names: &[&str]) -> bool {
    let sfx = suffixes(typ);
    names.iter().all(|n| {
        n.strip_prefix(family)
            .is_some_and(|rest| sfx.contains(&rest))
    })
}

/// How a family is written in OpenMetrics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OmFamily<'a> {
    /// One family: this name and type.
    Typed {
        /// The family name (a text counter `x_total` is the OpenMetrics family `x`).
        name: Cow<'a, str>,
        /// The OpenMetrics type.
        typ: &'static str,
    },
    /// The sample names fit no family of one name: each is written as its own `unknown`
    /// family, without HELP.
    PerName,
}

/// Decides how family `family` with TYPE `typ` (either format's word; `None` when it had no
/// TYPE) and samples named `names` is written in OpenMetrics; see the module docs.
pub fn openmetrics_family<'a>(family: &'a str, typ: Option<&str>, names: &[&str]) -> OmFamily<'a> {
    let typ = typ.and_then(openmetrics_type).unwrap_or("unknown");
    if typ == "counter" {
        let base = family.strip_suffix("_total").unwrap_or(family);
        if fits(base, "counter", names) {
            return OmFamily::Typed {
                name: Cow::Borrowed(base),
                typ,
            };
        }
    } else if fits(family, typ, names) {
        return OmFamily::Typed {
            name: Cow::Borrowed(family),
            typ,
        };
    }
    if fits(family, "unknown", names) {
        return OmFamily::Typed {
            name: Cow::Borrowed(family),
            typ: "unknown",
        };
    }
    OmFamily::PerName
}

/// Appends `# KEYWORD name text\n` with `text` escaped as OpenMetrics escapes HELP (`\\`, `\n`,
/// `"`).
fn write_meta(out: &mut Vec<u8>, keyword: &[u8], name: &str, text: &str) {
    out.extend_from_slice(b"# ");
    out.extend_from_slice(keyword);
    out.push(b' ');
    write_comment_name(out, name);
    out.push(b' ');
    write_escaped_label_value(out, text);
    out.push(b'\n');
}

/// Appends milliseconds since the epoch as seconds, exactly (`1700000000.5`, `-0.25`, `12`).
pub fn write_ms_as_seconds(out: &mut Vec<u8>, ms: i64) {
    if ms < 0 {
        out.push(b'-');
    }
    let a = ms.unsigned_abs();
    let (secs, frac) = (a / 1000, a % 1000);
    // `secs` < 2^63 / 1000 fits an i64.
    write_i64(out, secs as i64);
    if frac != 0 {
        let digits = [
            b'0' + (frac / 100) as u8,
            b'0' + (frac / 10 % 10) as u8,
            b'0' + (frac % 10) as u8,
        ];
        let len = if frac % 100 == 0 {
            1
        } else if frac % 10 == 0 {
            2
        } else {
            3
        };
        out.push(b'.');
        out.extend_from_slice(&digits[..len]);
    }
}

/// Whether OpenMetrics allows an exemplar on sample `name` of a family of type `typ`: only
/// counters' `_total` and (gauge) histograms' `_bucket` samples may carry one.
fn allows_exemplar(typ: &str, name: &str) -> bool {
    match typ {
        "counter" => name.ends_with("_total"),
        "histogram" | "gaugehistogram" => name.ends_with("_bucket"),
        _ => false,
    }
}

fn write_sample(out: &mut Vec<u8>, s: &OmSample<'_>, exemplar: bool) {
    out.extend_from_slice(s.key);
    out.push(b' ');
    match s.value {
        OmValue::Text(t) => out.extend_from_slice(t),
        OmValue::Float(v) => write_go_float(out, v),
    }
    if let Some(ms) = s.timestamp_ms {
        out.push(b' ');
        write_ms_as_seconds(out, ms);
    }
    if let (true, Some(e)) = (exemplar, s.exemplar) {
        out.extend_from_slice(b" # ");
        out.extend_from_slice(e.as_bytes());
    }
    out.push(b'\n');
}

/// Appends one family in OpenMetrics: `# HELP`, `# TYPE`, `# UNIT` (where allowed), then its
/// samples in the order given, as [`openmetrics_family`] decides. Writes nothing for a family
/// without samples.
pub fn write_openmetrics_family(
    out: &mut Vec<u8>,
    family: &str,
    help: Option<&str>,
    typ: Option<&str>,
    unit: Option<&str>,
    samples: &[OmSample<'_>],
) {
    if samples.is_empty() {
        return;
    }
    let names: Vec<&str> = samples.iter().map(|s| s.name).collect();
    match openmetrics_family(family, typ, &names) {
        OmFamily::Typed { name, typ } => {
            if let Some(help) = help {
                write_meta(out, b"HELP", &name, help);
            }
            out.extend_from_slice(b"# TYPE ");
            write_comment_name(out, &name);
            out.push(b' ');
            out.extend_from_slice(typ.as_bytes());
            out.push(b'\n');
            if let Some(unit) = unit.filter(|u| !u.is_empty()) {
                let suffixed = name
                    .strip_suffix(unit)
                    .is_some_and(|rest| rest.ends_with('_'));
                if suffixed {
                    write_meta(out, b"UNIT", &name, unit);
                }
            }
            for s in samples {
                write_sample(out, s, allows_exemplar(typ, s.name));
            }
        }
        OmFamily::PerName => {
            let mut done: Vec<&str> = Vec::new();
            for (i, first) in samples.iter().enumerate() {
                if done.contains(&first.name) {
                    continue;
                }
                done.push(first.name);
                out.extend_from_slice(b"# TYPE ");
                write_comment_name(out, first.name);
                out.extend_from_slice(b" unknown\n");
                for s in samples[i..].iter().filter(|s| s.name == first.name) {
                    write_sample(out, s, false);
                }
            }
        }
    }
}

/// Appends the `# EOF` line that ends every OpenMetrics exposition.
pub fn write_eof(out: &mut Vec<u8>) {
    out.extend_from_slice(b"# EOF\n");
}

/// The metric name of a rendered series key (`name{...}`, `name`, or the quoted form
/// `{"name",...}`), unescaped.
pub fn key_name(key: &[u8]) -> Cow<'_, str> {
    if let Some(rest) = key.strip_prefix(b"{\"") {
        let mut out = Vec::new();
        let mut i = 0;
        while i < rest.len() {
            match rest[i] {
                b'"' => break,
                b'\\' if i + 1 < rest.len() => {
                    i += 1;
                    out.push(match rest[i] {
                        b'n' => b'\n',
                        c => c,
                    });
                }
                c => out.push(c),
            }
            i += 1;
        }
        return Cow::Owned(String::from_utf8_lossy(&out).into_owned());
    }
    let end = memchr::memchr(b'{', key).unwrap_or(key.len());
    String::from_utf8_lossy(&key[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fam<'a>(family: &'a str, typ: Option<&str>, names: &[&str]) -> OmFamily<'a> {
        openmetrics_family(family, typ, names)
    }

    fn typed(name: &str, typ: &'static str) -> OmFamily<'static> {
        OmFamily::Typed {
            name: Cow::Owned(name.to_owned()),
            typ,
        }
    }

    #[test]
    fn families_keep_their_series_names() {
        // An OpenMetrics counter, and a text one named with its `_total`.
        assert_eq!(
            fam("x", Some("counter"), &["x_total", "x_created"]),
            typed("x", "counter")
        );
        assert_eq!(
            fam("x_total", Some("counter"), &["x_total"]),
            typed("x", "counter")
        );
        // A counter without `_total` is retyped, not renamed.
        assert_eq!(
            fam("nginx_requests", Some("counter"), &["nginx_requests"]),
            typed("nginx_requests", "unknown")
        );
        assert_eq!(fam("u", Some("untyped"), &["u"]), typed("u", "unknown"));
        assert_eq!(fam("u", None, &["u"]), typed("u", "unknown"));
        assert_eq!(
            fam(
                "h",
                Some("histogram"),
                &["h_bucket", "h_sum", "h_count", "h_created"]
            ),
            typed("h", "histogram")
        );
        assert_eq!(fam("b", Some("info"), &["b_info"]), typed("b", "info"));
        assert_eq!(fam("s", Some("stateset"), &["s"]), typed("s", "stateset"));
        assert_eq!(fam("g", Some("gauge"), &["g", "other"]), OmFamily::PerName);
        assert_eq!(
            fam("h", Some("histogram"), &["h_bucket", "h"]),
            OmFamily::PerName
        );
    }

    #[test]
    fn writes_families() {
        let mut out = Vec::new();
        let s = |name: &'static str, key: &'static str, v: &'static str, ts| OmSample {
            name,
            key: key.as_bytes(),
            value: OmValue::Text(v.as_bytes()),
            timestamp_ms: ts,
            exemplar: None,
        };
        write_openmetrics_family(
            &mut out,
            "rpc_seconds_total",
            Some("Time \"spent\"\n."),
            Some("counter"),
            Some("seconds"),
            &[
                s(
                    "rpc_seconds_total",
                    "rpc_seconds_total{a=\"1\"}",
                    "2",
                    Some(1_700_000_000_500),
                ),
                s(
                    "rpc_seconds_created",
                    "rpc_seconds_created{a=\"1\"}",
                    "1.7e9",
                    None,
                ),
            ],
        );
        write_openmetrics_family(
            &mut out,
            "g",
            None,
            Some("gauge"),
            Some("bytes"),
            &[
                s("g", "g", "1", Some(-1_250)),
                s("other", "other", "2", None),
            ],
        );
        write_eof(&mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\
# HELP rpc_seconds Time \\\"spent\\\"\\n.
# TYPE rpc_seconds counter
# UNIT rpc_seconds seconds
rpc_seconds_total{a=\"1\"} 2 1700000000.5
rpc_seconds_created{a=\"1\"} 1.7e9
# TYPE g unknown
g 1 -1.25
# TYPE other unknown
other 2
# EOF
"
        );
    }

    #[test]
    fn exemplars_only_where_openmetrics_allows_them() {
        let ex = Some("{trace_id=\"x\"} 1.0 1.6e9");
        let s = |name: &'static str, key: &'static str| OmSample {
            name,
            key: key.as_bytes(),
            value: OmValue::Text(b"1"),
            timestamp_ms: None,
            exemplar: ex,
        };
        let mut out = Vec::new();
        write_openmetrics_family(
            &mut out,
            "c",
            None,
            Some("counter"),
            None,
            &[s("c_total", "c_total"), s("c_created", "c_created")],
        );
        write_openmetrics_family(
            &mut out,
            "h",
            None,
            Some("histogram"),
            None,
            &[s("h_bucket", "h_bucket{le=\"1\"}"), s("h_count", "h_count")],
        );
        // A counter without `_total` is `unknown`: no exemplar; nor on a gauge.
        write_openmetrics_family(&mut out, "r", None, Some("counter"), None, &[s("r", "r")]);
        write_openmetrics_family(&mut out, "g", None, Some("gauge"), None, &[s("g", "g")]);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\
# TYPE c counter
c_total 1 # {trace_id=\"x\"} 1.0 1.6e9
c_created 1
# TYPE h histogram
h_bucket{le=\"1\"} 1 # {trace_id=\"x\"} 1.0 1.6e9
h_count 1
# TYPE r unknown
r 1
# TYPE g gauge
g 1
"
        );
    }

    #[test]
    fn seconds_are_exact() {
        for (ms, want) in [
            (0, "0"),
            (1, "0.001"),
            (10, "0.01"),
            (1_700_000_000_000, "1700000000"),
            (1_700_000_000_120, "1700000000.12"),
            (-1, "-0.001"),
            (i64::MIN, "-9223372036854775.808"),
        ] {
            let mut out = Vec::new();
            write_ms_as_seconds(&mut out, ms);
            assert_eq!(String::from_utf8(out).unwrap(), want, "{ms}");
        }
    }

    #[test]
    fn names_of_keys() {
        assert_eq!(key_name(b"up{a=\"1\"}"), "up");
        assert_eq!(key_name(b"up"), "up");
        assert_eq!(key_name(b"{\"a.b\\\"c\",x=\"1\"}"), "a.b\"c");
        assert_eq!(key_name(b"{\"a.b\"}"), "a.b");
    }
}
