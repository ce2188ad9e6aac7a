//! Writers for the text format 0.0.4: escaping, name quoting, series keys and metadata lines.
//!
//! Everything appends to a `Vec<u8>`; nothing allocates beyond that vector's growth.

use super::float::{write_go_float, write_i64};

/// The `Content-Type` of everything metric-gate renders.
pub const CONTENT_TYPE_TEXT_004: &str = "text/plain; version=0.0.4; charset=utf-8";

/// True when `name` matches `[a-zA-Z_:][a-zA-Z0-9_:]*`, the metric names that need no quoting.
pub fn is_legacy_metric_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_alphabetic() || b[0] == b'_' || b[0] == b':')
        && b[1..]
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'_' || c == b':')
}

/// True when `name` matches `[a-zA-Z_][a-zA-Z0-9_]*`, the label names that need no quoting.
pub fn is_legacy_label_name(name: &str) -> bool {
    let b = name.as_bytes();
    !b.is_empty()
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b[1..]
            .iter()
            .all(|&c| c.is_ascii_alphanumeric() || c == b'_')
}

/// Bytes a label value must escape: `\\`, `"` and newline.
static NEEDS_ESCAPE: [bool; 256] = {
    let mut t = [false; 256];
    t[b'\\' as usize] = true;
    t[b'"' as usize] = true;
    t[b'\n' as usize] = true;
    t
};

/// Appends a label value (or quoted name) with `\\`, `\"` and `\n` escaped.
#[inline]
pub fn write_escaped_label_value(out: &mut Vec<u8>, value: &str) {
    let bytes = value.as_bytes();
    // Label values are short: a table lookup per byte beats a memchr call below a few dozen
    // bytes.
    let clean = if bytes.len() < 32 {
        !bytes.iter().any(|&b| NEEDS_ESCAPE[b as usize])
    } else {
        memchr::memchr3(b'\\', b'"', b'\n', bytes).is_none()
    };
    if clean {
        out.extend_from_slice(bytes);
        return;
    }
    for &b in bytes {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\n' => out.extend_from_slice(b"\\n"),
            _ => out.push(b),
        }
    }
}

/// Appends HELP text with `\\` and `\n` escaped (the only escapes HELP knows).
pub fn write_escaped_help(out: &mut Vec<u8>, text: &str) {
    for &b in text.as_bytes() {
        match b {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            _ => out.push(b),
        }
    }
}

/// Appends a metric name for a comment line: bare when legacy-valid, else quoted.
pub(crate) fn write_comment_name(out: &mut Vec<u8>, name: &str) {
    if is_legacy_metric_name(name) {
        out.extend_from_slice(name.as_bytes());
    } else {
        out.push(b'"');
        write_escaped_label_value(out, name);
        out.push(b'"');
    }
}

/// Appends `# KEYWORD name ` and then `text` through `write_text`, and the newline.
fn write_comment(
    out: &mut Vec<u8>,
    keyword: &[u8],
    name: &str,
    text: &str,
    write_text: fn(&mut Vec<u8>, &str),
) {
    out.extend_from_slice(b"# ");
    out.extend_from_slice(keyword);
    out.push(b' ');
    write_comment_name(out, name);
    out.push(b' ');
    write_text(out, text);
    out.push(b'\n');
}

fn write_plain(out: &mut Vec<u8>, text: &str) {
    out.extend_from_slice(text.as_bytes());
}

/// Appends `# HELP name text\n`.
pub fn write_help(out: &mut Vec<u8>, name: &str, text: &str) {
    write_comment(out, b"HELP", name, text, write_escaped_help);
}

/// Appends `# TYPE name type\n`.
pub fn write_type(out: &mut Vec<u8>, name: &str, typ: &str) {
    write_comment(out, b"TYPE", name, typ, write_plain);
}

/// [`write_series`] for a series whose shape the caller has already checked, skipping the
/// per-byte checks: `legacy_name` says the metric name is legacy-valid, every label name must be
/// legacy-valid (`[a-zA-Z_][a-zA-Z0-9_]*`), and a value whose flag is set holds nothing to
/// escape (no `\\`, `"` or newline). Labels with an empty value are left out (an empty value is
/// an absent label). Writes what `write_series` writes for the non-empty labels.
pub fn write_series_checked<'a>(
    out: &mut Vec<u8>,
    name: &str,
    legacy_name: bool,
    labels: impl IntoIterator<Item = (&'a str, &'a str, bool)>,
) {
    if !legacy_name {
        write_series(
            out,
            name,
            labels
                .into_iter()
                .filter(|l| !l.1.is_empty())
                .map(|(n, v, _)| (n, v)),
        );
        return;
    }
    out.extend_from_slice(name.as_bytes());
    let mut sep = b'{';
    for (n, v, verbatim) in labels {
        if v.is_empty() {
            continue;
        }
        out.push(sep);
        sep = b',';
        debug_assert!(is_legacy_label_name(n));
        out.extend_from_slice(n.as_bytes());
        out.extend_from_slice(b"=\"");
        if verbatim {
            out.extend_from_slice(v.as_bytes());
        } else {
            write_escaped_label_value(out, v);
        }
        out.push(b'"');
    }
    if sep == b',' {
        out.push(b'}');
    }
}

/// Appends the series part of a sample line: `name{a="x",b="y"}`, or `name` without labels.
///
/// Labels are written in the order given (callers sort them for a canonical key). A metric name
/// that is not legacy-valid is written in the Prometheus 3 quoted form `{"my.metric",a="x"}`;
/// so are label names.
pub fn write_series<'a>(
    out: &mut Vec<u8>,
    name: &str,
    labels: impl IntoIterator<Item = (&'a str, &'a str)>,
) {
    let mut labels = labels.into_iter().peekable();
    let quoted_name = !is_legacy_metric_name(name);
    if quoted_name {
        out.extend_from_slice(b"{\"");
        write_escaped_label_value(out, name);
        out.push(b'"');
        if labels.peek().is_none() {
            out.push(b'}');
            return;
        }
        out.push(b',');
    } else {
        out.extend_from_slice(name.as_bytes());
        if labels.peek().is_none() {
            return;
        }
        out.push(b'{');
    }
    let mut first = true;
    for (n, v) in labels {
        if !first {
            out.push(b',');
        }
        first = false;
        if is_legacy_label_name(n) {
            out.extend_from_slice(n.as_bytes());
        } else {
            out.push(b'"');
            write_escaped_label_value(out, n);
            out.push(b'"');
        }
        out.extend_from_slice(b"=\"");
        write_escaped_label_value(out, v);
        out.push(b'"');
    }
    out.push(b'}');
}

/// Appends ` value[ timestamp]\n` after a series.
pub fn write_value_line_end(out: &mut Vec<u8>, value: f64, timestamp_ms: Option<i64>) {
    out.push(b' ');
    write_go_float(out, value);
    write_timestamp_line_end(out, timestamp_ms);
}

/// Appends `[ timestamp]\n`.
pub fn write_timestamp_line_end(out: &mut Vec<u8>, timestamp_ms: Option<i64>) {
    if let Some(ts) = timestamp_ms {
        out.push(b' ');
        write_i64(out, ts);
    }
    out.push(b'\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: Vec<u8>) -> String {
        String::from_utf8(v).unwrap()
    }

    #[test]
    fn series_forms() {
        let mut v = Vec::new();
        write_series(&mut v, "up", []);
        assert_eq!(s(v), "up");
        let mut v = Vec::new();
        write_series(&mut v, "x", [("a", "1"), ("b", "q\"\\\n")]);
        assert_eq!(s(v), r#"x{a="1",b="q\"\\\n"}"#);
        let mut v = Vec::new();
        write_series(&mut v, "my.metric", [("label.x", "v")]);
        assert_eq!(s(v), r#"{"my.metric","label.x"="v"}"#);
        let mut v = Vec::new();
        write_series(&mut v, "my.metric", []);
        assert_eq!(s(v), r#"{"my.metric"}"#);
    }

    #[test]
    fn metadata_lines() {
        let mut v = Vec::new();
        write_help(&mut v, "x", "a\\b\nc \"q\"");
        write_type(&mut v, "x", "counter");
        write_help(&mut v, "my.metric", "h");
        assert_eq!(
            s(v),
            "# HELP x a\\\\b\\nc \"q\"\n# TYPE x counter\n# HELP \"my.metric\" h\n"
        );
    }

    #[test]
    fn name_validity() {
        assert!(is_legacy_metric_name("a:b_c9"));
        assert!(!is_legacy_metric_name("9a"));
        assert!(!is_legacy_metric_name(""));
        assert!(is_legacy_label_name("_a9"));
        assert!(!is_legacy_label_name("a:b"));
    }

    #[test]
    fn value_and_timestamp() {
        let mut v = Vec::new();
        write_value_line_end(&mut v, 1e6, Some(-5));
        write_value_line_end(&mut v, f64::NAN, None);
        assert_eq!(s(v), " 1e+06 -5\n NaN\n");
    }
}
