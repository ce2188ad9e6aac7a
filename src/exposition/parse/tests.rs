//! Tests of the parser as a whole: syntax accepted and refused, error positions, chunk borders,
//! formats, families, and that the layout caches never change a result.

use super::*;
use crate::exposition::float::parse_go_float;
use crate::exposition::render;

/// An owned copy of a sample.
#[derive(Debug, Clone, PartialEq)]
struct S {
    name: String,
    family: String,
    labels: Vec<(String, String)>,
    value_bits: u64,
    value_text: String,
    ts: Option<i64>,
    series: String,
    line: u64,
}

impl S {
    fn value(&self) -> f64 {
        f64::from_bits(self.value_bits)
    }
    fn labels(&self) -> Vec<(&str, &str)> {
        self.labels
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect()
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Ev {
    Meta(MetaKind, String, String),
    Sample(S),
}

#[derive(Default)]
struct Rec(Vec<Ev>);

impl Sink for Rec {
    fn metadata(&mut self, m: &Metadata<'_>) {
        self.0
            .push(Ev::Meta(m.kind, m.family.to_string(), m.text.to_string()));
    }
    fn sample(&mut self, s: &Sample<'_>) {
        assert_eq!(s.label_count(), s.labels().count());
        self.0.push(Ev::Sample(S {
            name: s.name.to_string(),
            family: s.family.to_string(),
            labels: s
                .labels()
                .map(|(n, v)| (n.to_string(), v.to_string()))
                .collect(),
            value_bits: s.value.to_bits(),
            value_text: s.value_text.to_string(),
            ts: s.timestamp_ms,
            series: String::from_utf8_lossy(s.series_text).into_owned(),
            line: s.line,
        }));
    }
}

fn opts(format: Format) -> ParseOptions {
    ParseOptions {
        format,
        ..ParseOptions::default()
    }
}

/// Feeds `chunks` then finishes; events and the first error.
fn run(chunks: &[&[u8]], o: ParseOptions) -> (Vec<Ev>, Result<(), ParseError>) {
    let mut p = Parser::new(o);
    let mut rec = Rec::default();
    for c in chunks {
        if let Err(e) = p.feed(c, &mut rec) {
            return (rec.0, Err(e));
        }
    }
    let r = p.finish(&mut rec);
    (rec.0, r)
}

/// The events of `input`, a whole body in `format`: OpenMetrics text gets the `# EOF` it must
/// end with when it has none.
fn events_fmt(input: &str, format: Format) -> Vec<Ev> {
    let whole;
    let input = if format == Format::OpenMetrics && !input.contains("# EOF") {
        whole = format!("{input}# EOF\n");
        &whole
    } else {
        input
    };
    let (ev, r) = run(&[input.as_bytes()], opts(format));
    if let Err(e) = r {
        panic!("unexpected error {e} for {input:?}");
    }
    ev
}

fn events(input: &str) -> Vec<Ev> {
    events_fmt(input, Format::Auto)
}

fn samples_fmt(input: &str, format: Format) -> Vec<S> {
    events_fmt(input, format)
        .into_iter()
        .filter_map(|e| match e {
            Ev::Sample(s) => Some(s),
            Ev::Meta(..) => None,
        })
        .collect()
}

fn samples(input: &str) -> Vec<S> {
    samples_fmt(input, Format::Auto)
}

fn one(input: &str) -> S {
    let mut s = samples(input);
    assert_eq!(s.len(), 1, "{input:?}");
    s.remove(0)
}

fn err_bytes(input: &[u8], format: Format) -> ParseError {
    match run(&[input], opts(format)).1 {
        Ok(()) => panic!("expected an error for {:?}", String::from_utf8_lossy(input)),
        Err(e) => e,
    }
}

fn err(input: &str) -> ParseError {
    err_bytes(input.as_bytes(), Format::Auto)
}

/// Asserts the error position and that the message contains `msg`.
fn assert_err(input: &str, line: u64, column: usize, msg: &str) {
    let e = err(input);
    assert_eq!((e.line, e.column), (line, column), "{input:?}: {e}");
    assert!(e.message.contains(msg), "{input:?}: {e}");
}

fn ts_of(input: &str, format: Format) -> Option<i64> {
    let s = samples_fmt(input, format);
    assert_eq!(s.len(), 1, "{input:?}");
    s[0].ts
}

#[test]
fn simple_sample() {
    let s = one("x 1\n");
    assert_eq!(s.name, "x");
    assert_eq!(s.family, "x");
    assert!(s.labels.is_empty());
    assert_eq!(s.value(), 1.0);
    assert_eq!(s.value_text, "1");
    assert_eq!(s.ts, None);
    assert_eq!(s.series, "x");
    assert_eq!(s.line, 1);
}

#[test]
fn sample_with_labels_and_timestamp() {
    let s = one("http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n");
    assert_eq!(s.name, "http_requests_total");
    assert_eq!(s.labels(), [("method", "post"), ("code", "200")]);
    assert_eq!(s.value(), 1027.0);
    assert_eq!(s.ts, Some(1_395_066_363_000));
    assert_eq!(
        s.series,
        "http_requests_total{method=\"post\",code=\"200\"}"
    );
}

#[test]
fn colon_in_metric_name() {
    let s = one("job:rate5m{a=\"b\"} 3\n");
    assert_eq!(s.name, "job:rate5m");
    assert_eq!(s.labels(), [("a", "b")]);
}

#[test]
fn name_inside_braces() {
    let s = one("{__name__=\"x\",a=\"b\"} 2\n");
    assert_eq!(s.name, "x");
    assert_eq!(s.labels(), [("a", "b")]);
    assert_eq!(s.series, "{__name__=\"x\",a=\"b\"}");
    let s = one("{a=\"b\", __name__=\"x\"} 2\n");
    assert_eq!(s.name, "x");
    assert_eq!(s.labels(), [("a", "b")]);
}

#[test]
fn quoted_utf8_names() {
    let s = one("{\"my.metric\", \"label.x\"=\"v\", \"ünï cødé\"=\"ç\", plain=\"p\"} 1\n");
    assert_eq!(s.name, "my.metric");
    assert_eq!(s.family, "my.metric");
    assert_eq!(
        s.labels(),
        [("label.x", "v"), ("ünï cødé", "ç"), ("plain", "p")]
    );
    // The quoted name may come anywhere, and alone.
    let s = one("{a=\"1\", \"my.metric\"} 1\n");
    assert_eq!(s.name, "my.metric");
    assert_eq!(s.labels(), [("a", "1")]);
    let s = one("{\"my.metric\"} 1\n");
    assert_eq!(s.name, "my.metric");
    assert_eq!(s.series, "{\"my.metric\"}");
    // Quoted names unescape like values; a quoted `__name__` label is the name.
    let s = one(concat!(r#"{"a\"b", "c\\d"="e"} 1"#, "\n"));
    assert_eq!(s.name, "a\"b");
    assert_eq!(s.labels(), [("c\\d", "e")]);
    let s = one(concat!(r#"{"__name__"="q.x"} 1"#, "\n"));
    assert_eq!(s.name, "q.x");
}

#[test]
fn whitespace_and_tabs() {
    let line = " \tx \t{ a = \"1\" ,\tb=\"2\" , } \t 3 \t 4 \t\n";
    let s = one(line);
    assert_eq!(s.name, "x");
    assert_eq!(s.labels(), [("a", "1"), ("b", "2")]);
    assert_eq!(s.value_text, "3");
    assert_eq!(s.ts, Some(4));
    assert_eq!(s.series, " \tx \t{ a = \"1\" ,\tb=\"2\" , }");
    // No blank needed between `}` and the value.
    assert_eq!(one("x{a=\"1\"}5\n").value(), 5.0);
    // Blank-only lines are skipped but counted.
    let s = samples("x 1\n \t \n\ny 2\n");
    assert_eq!(s[1].line, 4);
}

#[test]
fn trailing_comma_empty_braces_missing_comma() {
    assert_eq!(one("x{a=\"1\",} 1\n").labels(), [("a", "1")]);
    let s = one("x{} 1\n");
    assert!(s.labels.is_empty());
    assert_eq!(s.series, "x{}");
    // `promparse` accepts labels separated by blanks only.
    assert_eq!(
        one("x{a=\"1\" b=\"2\"} 1\n").labels(),
        [("a", "1"), ("b", "2")]
    );
    // Empty values are reported as written.
    assert_eq!(one("x{a=\"\"} 1\n").labels(), [("a", "")]);
}

#[test]
fn crlf_line_ends() {
    let s = samples("x 1\r\ny{a=\"b\"} 2 3\r\n# HELP z h\r\nz 4\r\n");
    assert_eq!(s.len(), 3);
    assert_eq!(s[0].value_text, "1");
    assert_eq!(s[1].ts, Some(3));
    assert_eq!(s[2].value_text, "4");
    assert_eq!(
        events("# HELP z h\r\n")[0],
        Ev::Meta(MetaKind::Help, "z".into(), "h".into())
    );
}

#[test]
fn label_value_escapes() {
    let s = one(concat!(
        r#"x{a="q\"uote",b="back\\slash",c="new\nline",d="tab\t",e="\\n",f="plain"} 1"#,
        "\n"
    ));
    assert_eq!(
        s.labels(),
        [
            ("a", "q\"uote"),
            ("b", "back\\slash"),
            ("c", "new\nline"),
            // Unknown escapes stay verbatim, as with Prometheus' strings.Replacer.
            ("d", "tab\\t"),
            ("e", "\\n"),
            ("f", "plain"),
        ]
    );
}

#[test]
fn value_ending_in_backslash() {
    let s = one(concat!(r#"x{a="end\\",b="c"} 1"#, "\n"));
    assert_eq!(s.labels(), [("a", "end\\"), ("b", "c")]);
    assert_eq!(one(concat!(r#"x{a="\\"} 1"#, "\n")).labels(), [("a", "\\")]);
    assert_eq!(
        one(concat!(r#"x{a="\\\\"} 1"#, "\n")).labels(),
        [("a", "\\\\")]
    );
    assert_eq!(one(concat!(r#"x{a="\""} 1"#, "\n")).labels(), [("a", "\"")]);
    // `\"` does not close the value.
    assert_err(
        concat!(r#"x{a="b\"} 1"#, "\n"),
        1,
        5,
        "unterminated value of label \"a\"",
    );
}

#[test]
fn scratch_reused_across_lines() {
    let s = samples("x{a=\"1\\n\"} 1\ny{b=\"2\\\\\",c=\"3\"} 2\nz{d=\"x\"} 3\n");
    assert_eq!(s[0].labels(), [("a", "1\n")]);
    assert_eq!(s[1].labels(), [("b", "2\\"), ("c", "3")]);
    assert_eq!(s[2].labels(), [("d", "x")]);
}

#[test]
fn float_forms() {
    let cases: &[(&str, f64)] = &[
        ("1", 1.0),
        ("0", 0.0),
        ("-1.5e-3", -1.5e-3),
        ("+Inf", f64::INFINITY),
        ("-Inf", f64::NEG_INFINITY),
        ("Inf", f64::INFINITY),
        ("inf", f64::INFINITY),
        ("+infinity", f64::INFINITY),
        ("-Infinity", f64::NEG_INFINITY),
        ("1e10", 1e10),
        ("1E5", 1e5),
        ("1e+05", 1e5),
        (".5", 0.5),
        ("5.", 5.0),
        ("+3", 3.0),
        ("0.25", 0.25),
        ("123456789012345678901234", 1.2345678901234568e23),
        ("1e-400", 0.0),
        ("007", 7.0),
    ];
    for &(text, want) in cases {
        let s = one(&format!("x {text}\n"));
        assert_eq!(s.value(), want, "{text}");
        assert_eq!(s.value_text, text);
    }
    let s = one("x -0\n");
    assert!(s.value() == 0.0 && s.value().is_sign_negative());
    for nan in ["NaN", "nan", "NAN"] {
        assert!(one(&format!("x {nan}\n")).value().is_nan(), "{nan}");
    }
}

#[test]
fn go_rejected_floats() {
    for bad in [
        "0x1p3", "0x10", "1_000", "1p3", "+nan", "-NaN", "1e400", "-1e400", "", ".", "e5", "E5",
        "1e", "1e+", "abc", "1.5.5", "in", "infi", "infinit", "nanx", "--1", "+-1", "1,5", "١",
        "1 ", " 1",
    ] {
        assert_eq!(parse_go_float(bad), None, "{bad:?} must be rejected");
    }
    assert_err("x 0x1p3\n", 1, 3, "expected a float value, found \"0x1p3\"");
    assert_err("x{a=\"b\"} 1_0\n", 1, 10, "expected a float value");
}

#[test]
fn millisecond_timestamps() {
    for f in [Format::Auto, Format::Text] {
        assert_eq!(ts_of("x 1 1395066363000\n", f), Some(1_395_066_363_000));
        assert_eq!(ts_of("x 1 -5\n", f), Some(-5));
        assert_eq!(ts_of("x 1 12\n", f), Some(12));
    }
    let e = err_bytes(b"x 1 1.5\n", Format::Text);
    assert_eq!((e.line, e.column), (1, 5));
    assert!(e.message.contains("integer milliseconds"), "{e}");
    assert_err("x 1 99999999999999999999\n", 1, 5, "timestamp");
    assert_err("x 1 abc\n", 1, 5, "expected a timestamp");
    assert_err("x 1 NaN\n", 1, 5, "expected a timestamp");
}

#[test]
fn openmetrics_second_timestamps() {
    // Written as a float: seconds, in Auto and OpenMetrics.
    for f in [Format::Auto, Format::OpenMetrics] {
        assert_eq!(ts_of("x 1 1520879607.789\n", f), Some(1_520_879_607_789));
        assert_eq!(ts_of("x 1 1.5e3\n", f), Some(1_500_000));
        assert_eq!(ts_of("x 1 -0.5\n", f), Some(-500));
    }
    // OpenMetrics: integers are seconds too.
    assert_eq!(
        ts_of("x 1 1520879607\n", Format::OpenMetrics),
        Some(1_520_879_607_000)
    );
    // Auto: an integer is milliseconds without an OpenMetrics feature...
    assert_eq!(ts_of("x 1 1520879607\n", Format::Auto), Some(1_520_879_607));
    // ... and seconds after one, when below 1e11.
    let s = samples("# UNIT x seconds\nx 1 1520879607\nx 2 1520879607000\n");
    assert_eq!(s[0].ts, Some(1_520_879_607_000));
    assert_eq!(s[1].ts, Some(1_520_879_607_000));
    let s = samples("a 1 1520879607 # {t=\"1\"} 1\nb 1 1520879607\n");
    assert_eq!(
        s[0].ts,
        Some(1_520_879_607_000),
        "exemplar on the same line"
    );
    assert_eq!(s[1].ts, Some(1_520_879_607_000));
    // Out of range or not finite.
    assert_err("x 1 1e300\n", 1, 5, "out of range");
    assert_err("x 1 +Inf.\n", 1, 5, "expected a timestamp");
    let e = err_bytes(b"x 1 9223372036854775807\n", Format::OpenMetrics);
    assert!(e.message.contains("out of range"), "{e}");
}

#[test]
fn help_text() {
    let ev = events("# HELP x a\\\\b\\nc \\t end \\q\\\n");
    assert_eq!(
        ev,
        [Ev::Meta(
            MetaKind::Help,
            "x".into(),
            "a\\b\nc \\t end \\q\\".into()
        )]
    );
    // Exactly one blank is the separator; trailing blanks are kept.
    assert_eq!(
        events("# HELP x  two \n"),
        [Ev::Meta(MetaKind::Help, "x".into(), " two ".into())]
    );
    assert_eq!(
        events("#\tHELP\tx\n"),
        [Ev::Meta(MetaKind::Help, "x".into(), "".into())]
    );
    // `\"` is an escape only in OpenMetrics help text.
    let line = "# HELP x say \\\"hi\\\"\n";
    assert_eq!(
        events_fmt(line, Format::Text),
        [Ev::Meta(
            MetaKind::Help,
            "x".into(),
            "say \\\"hi\\\"".into()
        )]
    );
    assert_eq!(
        events_fmt(line, Format::OpenMetrics),
        [Ev::Meta(MetaKind::Help, "x".into(), "say \"hi\"".into())]
    );
    assert_eq!(
        events("# HELP \"my.metric\" UTF-8 ✓\n"),
        [Ev::Meta(
            MetaKind::Help,
            "my.metric".into(),
            "UTF-8 ✓".into()
        )]
    );
}

#[test]
fn type_and_unit() {
    assert_eq!(
        events("# TYPE x counter\n# UNIT x seconds \n# TYPE \"my.metric\" gauge\n"),
        [
            Ev::Meta(MetaKind::Type, "x".into(), "counter".into()),
            Ev::Meta(MetaKind::Unit, "x".into(), "seconds".into()),
            Ev::Meta(MetaKind::Type, "my.metric".into(), "gauge".into()),
        ]
    );
    for t in [
        "counter",
        "gauge",
        "histogram",
        "summary",
        "untyped",
        "unknown",
        "gaugehistogram",
        "info",
        "stateset",
    ] {
        assert_eq!(
            events(&format!("# TYPE x {t}\n")),
            [Ev::Meta(MetaKind::Type, "x".into(), t.into())]
        );
    }
    assert_err("# TYPE x foo\n", 1, 10, "unknown metric type \"foo\"");
    assert_err("x 1\n# TYPE x\n", 2, 9, "expected a metric type");
    assert_err("# TYPE \n", 1, 8, "expected metric name after TYPE");
    assert_err(
        "# HELP x.y z\n",
        1,
        9,
        "expected whitespace after the metric name in HELP",
    );
    assert_err("# HELP \"x z\n", 1, 8, "unterminated quoted metric name");
}

#[test]
fn ignored_comments() {
    let ev =
        events("# hello\n#\n#HELP x y\n# HELPx y\n# HELP\n# EOFX\n# TYPE\n# \n  # indented\nx 1\n");
    assert_eq!(ev.len(), 1);
    match &ev[0] {
        Ev::Sample(s) => assert_eq!(s.line, 10),
        other => panic!("{other:?}"),
    }
    // Ordinary comments are not checked for UTF-8.
    assert_eq!(run(&[b"# caf\xe9\nx 1\n"], opts(Format::Auto)).0.len(), 1);
}

#[test]
fn eof_stops_input() {
    let input = "x 1\n# EOF\ny 2\ngarbage{{{\n";
    for chunked in [false, true] {
        let mut p = Parser::new(ParseOptions::default());
        let mut rec = Rec::default();
        if chunked {
            for b in input.as_bytes().chunks(3) {
                p.feed(b, &mut rec).unwrap();
            }
        } else {
            p.feed(input.as_bytes(), &mut rec).unwrap();
        }
        p.feed(b"more garbage\n{{{", &mut rec).unwrap();
        p.finish(&mut rec).unwrap();
        assert_eq!(rec.0.len(), 1);
        // The next input starts afresh, with no `# EOF` in effect.
        p.feed(b"z 1\n", &mut rec).unwrap();
        p.feed(b"z 2\n", &mut rec).unwrap();
        assert_eq!(rec.0.len(), 3);
    }
    // `# EOF` with trailing blanks, no newline.
    let (ev, r) = run(&[b"x 1\n# EOF "], ParseOptions::default());
    assert!(r.is_ok() && ev.len() == 1);
    // In the 0.0.4 format it is an ordinary comment, as in promparse.
    let s = samples_fmt("x 1\n# EOF\ny 2\n", Format::Text);
    assert_eq!(s.len(), 2);
}

#[test]
fn exemplars_skipped() {
    let s = one("foo_bucket{le=\"0.1\"} 8 # {trace_id=\"KOO5S4vxi0o\", \"q.x\"=\"}\\\"\"} 0.067 1520879607.789\n");
    assert_eq!(s.value(), 8.0);
    assert_eq!(s.ts, None);
    assert_eq!(s.series, "foo_bucket{le=\"0.1\"}");
    let s = one("foo_total 17 1520879607.789 # {a=\"b\"} 1\n");
    assert_eq!(s.ts, Some(1_520_879_607_789));
    let s = one("foo_total 17 # {} 1\n");
    assert_eq!(s.value(), 17.0);
    assert_err("x 1 # {a=\"b\"}\n", 1, 14, "expected exemplar value");
    assert_err(
        "x 1 # {a=\"b\"} z\n",
        1,
        15,
        "expected a float exemplar value",
    );
    assert_err(
        "x 1 # {a=\"b\"} 1 2 3\n",
        1,
        19,
        "unexpected text after exemplar",
    );
    assert_err(
        "x 1 # a\n",
        1,
        7,
        "expected '{' to open the label set of an exemplar",
    );
    assert_err("x 1 #{a=\"b\"} 1\n", 1, 6, "expected ' ' after '#'");
    assert_err(
        "x 1 # {a=\"b} 1\n",
        1,
        10,
        "unterminated exemplar label value",
    );
    assert_err("x 1 # {a \"b\"} 1\n", 1, 10, "expected '='");
}

#[test]
fn family_membership() {
    let input = "\
# HELP h A histogram.
# TYPE h histogram
h_bucket{le=\"1\"} 1
h_bucket{le=\"+Inf\"} 2
h_sum 3
h_count 2
h_created 1
h_total 5
other 1
h_sum 4
# TYPE s summary
s{quantile=\"0.5\"} 1
s_sum 1
s_count 1
s_created 1
s_bucket 1
# TYPE c counter
c_total 1
c_created 1
c 1
c_sum 1
# TYPE g gauge
g 1
g_sum 1
# TYPE gh gaugehistogram
gh_bucket{le=\"1\"} 1
gh_gcount 1
gh_gsum 1
gh_sum 1
# TYPE i info
i_info{v=\"1\"} 1
# TYPE h2 histogram
# HELP h2_count not the histogram any more
h2_count 1
h2_bucket 1
";
    let fam: Vec<(String, String)> = samples(input)
        .into_iter()
        .map(|s| (s.name, s.family))
        .collect();
    let want = [
        ("h_bucket", "h"),
        ("h_bucket", "h"),
        ("h_sum", "h"),
        ("h_count", "h"),
        ("h_created", "h"),
        ("h_total", "h_total"),
        ("other", "other"),
        ("h_sum", "h"),
        ("s", "s"),
        ("s_sum", "s"),
        ("s_count", "s"),
        ("s_created", "s"),
        ("s_bucket", "s_bucket"),
        ("c_total", "c"),
        ("c_created", "c"),
        ("c", "c"),
        ("c_sum", "c_sum"),
        ("g", "g"),
        ("g_sum", "g_sum"),
        ("gh_bucket", "gh"),
        ("gh_gcount", "gh"),
        ("gh_gsum", "gh"),
        ("gh_sum", "gh_sum"),
        ("i_info", "i"),
        ("h2_count", "h2_count"),
        ("h2_bucket", "h2_bucket"),
    ];
    let want: Vec<(String, String)> = want
        .iter()
        .map(|&(a, b)| (a.to_string(), b.to_string()))
        .collect();
    assert_eq!(fam, want);
    // Quoted family names work the same way.
    let s = samples("# TYPE \"my.h\" histogram\n{\"my.h_bucket\",le=\"1\"} 1\n");
    assert_eq!(s[0].family, "my.h");
}

#[test]
fn duplicate_labels() {
    assert_err(
        "x{a=\"1\",b=\"2\",a=\"3\"} 1\n",
        1,
        15,
        "duplicate label name \"a\"",
    );
    assert_err(
        "x{b=\"1\",a=\"2\",b=\"3\"} 1\n",
        1,
        15,
        "duplicate label name \"b\"",
    );
    assert_err(
        "x{a=\"1\",\"a\"=\"2\"} 1\n",
        1,
        9,
        "duplicate label name \"a\"",
    );
    assert_err("x{__name__=\"y\"} 1\n", 1, 3, "metric name given twice");
    assert_err("{\"x\",\"y\"} 1\n", 1, 6, "metric name given twice");
    assert_err("{__name__=\"\"} 1\n", 1, 2, "empty metric name");
    assert_err("{\"\"=\"v\"} 1\n", 1, 2, "empty label name");
    // Unique names in any order are fine.
    assert_eq!(one("x{c=\"1\",a=\"2\",b=\"3\"} 1\n").labels.len(), 3);
    assert_eq!(one("x{a=\"1\",b=\"2\",c=\"3\"} 1\n").labels.len(), 3);
}

/// A line of `n` labels `l{i:05}="v"` in decreasing order of names (the worst order for a
/// duplicate check that compares each name with the greatest so far), then `extra`.
fn reverse_sorted_line(n: usize, extra: &str) -> String {
    let mut line = String::from("m{");
    for i in (0..n).rev() {
        line.push_str(&format!("l{i:05}=\"v\","));
    }
    line.push_str(extra);
    line.push_str("} 1\n");
    line
}

/// Parses `input` whole, counting the names the duplicate check compared.
fn count_comparisons(input: &str, o: ParseOptions) -> (Vec<Ev>, Result<(), ParseError>, u64) {
    label_block::NAME_COMPARISONS.with(|c| c.set(0));
    let (ev, r) = run(&[input.as_bytes()], o);
    (ev, r, label_block::NAME_COMPARISONS.with(|c| c.get()))
}

#[test]
fn duplicate_check_is_linear() {
    // 90k reverse-sorted names (0.99 MB): comparing each with every earlier one took 8.3 s in a
    // release build; with the hash table past 16 names, each name is compared about once.
    let n = 90_000;
    let line = reverse_sorted_line(n, "");
    assert!(line.len() < 1 << 20);
    let (ev, r, compared) = count_comparisons(&line, ParseOptions::default());
    r.unwrap();
    match &ev[..] {
        [Ev::Sample(s)] => assert_eq!(s.labels.len(), n),
        other => panic!("{} events", other.len()),
    }
    assert!(
        compared < 2 * n as u64,
        "{compared} name comparisons for {n} names"
    );

    // Duplicates are still found, anywhere, with their position.
    let dup_first = reverse_sorted_line(n, "l89999=\"w\"");
    let (_, r, compared) = count_comparisons(&dup_first, ParseOptions::default());
    let e = r.unwrap_err();
    assert_eq!((e.line, e.column), (1, 3 + 11 * n));
    assert!(e.message.contains("duplicate label name \"l89999\""), "{e}");
    assert!(compared < 2 * n as u64, "{compared}");
    let dup_mid = reverse_sorted_line(n, "l45000=\"w\",zz=\"z\"");
    assert!(err(&dup_mid)
        .message
        .contains("duplicate label name \"l45000\""));
    // A name greater than all before it joins the table too, and is found again.
    let dup_greater = reverse_sorted_line(100, "zz=\"1\",a=\"2\",zz=\"3\"");
    assert!(err(&dup_greater)
        .message
        .contains("duplicate label name \"zz\""));
    // Quoted names (unescaped into the scratch buffer) are compared by their text.
    let quoted = reverse_sorted_line(100, "\"l.x\"=\"1\",\"l00050\"=\"2\"");
    assert!(err(&quoted)
        .message
        .contains("duplicate label name \"l00050\""));
    // Few names take the plain comparisons: 8 unsorted labels, no table.
    let (_, r, compared) = count_comparisons(
        "m{h=\"1\",g=\"1\",f=\"1\",e=\"1\",d=\"1\",c=\"1\",b=\"1\",a=\"1\"} 1\n",
        ParseOptions::default(),
    );
    r.unwrap();
    assert!(compared <= 28, "{compared}");
}

#[test]
fn max_labels_counts_as_prometheus() {
    let o = |max| ParseOptions {
        max_labels: max,
        ..ParseOptions::default()
    };
    let over = |input: &str, max| match run(&[input.as_bytes()], o(max)).1 {
        Ok(()) => None,
        Err(e) => {
            assert_eq!(e.kind, ParseErrorKind::LabelLimit, "{e}");
            Some((e.line, e.column, e.message))
        }
    };
    // `__name__` counts: 3 labels fit a limit of 4, not of 3.
    let three = "m{a=\"1\",b=\"2\",c=\"3\"} 1\n";
    assert_eq!(over(three, 4), None);
    assert_eq!(over(three, 0), None);
    assert_eq!(
        over(three, 3),
        Some((
            1,
            15,
            "label limit exceeded: series \"m\" has 4 labels (with __name__) > limit 3 (--label-limit)".to_owned()
        ))
    );
    // Empty values are absent labels and do not count.
    assert_eq!(over("m{a=\"\",b=\"2\",c=\"\",d=\"4\",e=\"\"} 1\n", 3), None);
    assert_eq!(over("{__name__=\"m\",a=\"1\",b=\"2\"} 1\n", 3), None);
    // The same through the remembered layouts (the second line follows the first's names).
    let mut p = Parser::new(o(3));
    let mut rec = Rec::default();
    p.feed(b"m{a=\"\",b=\"2\",c=\"3\"} 1\n", &mut rec).unwrap();
    let e = p
        .feed(b"m{a=\"1\",b=\"2\",c=\"3\"} 1\n", &mut rec)
        .unwrap_err();
    assert_eq!(
        (e.line, e.column, e.kind),
        (2, 15, ParseErrorKind::LabelLimit)
    );
    // 90k labels: refused, pointing at the first label over the limit, in linear time.
    let (ev, r, compared) = count_comparisons(&reverse_sorted_line(90_000, ""), o(256));
    assert!(ev.is_empty());
    let e = r.unwrap_err();
    assert_eq!(e.column, 3 + 11 * 255);
    assert!(
        e.message
            .contains("has 90001 labels (with __name__) > limit 256"),
        "{e}"
    );
    assert!(compared < 2 * 90_000, "{compared}");
    // A syntax error or a duplicate in the block is reported first, as without the limit.
    assert_eq!(
        run(&[b"m{a=\"1\",b=\"2\",a=\"3\"} 1\n"], o(2))
            .1
            .unwrap_err()
            .kind,
        ParseErrorKind::Syntax
    );
    // A quoted name over the limit: the error points at its text, or at the block when it was
    // unescaped.
    let e = run(&[b"m{a=\"1\",\"b.c\"=\"2\"} 1\n"], o(2)).1.unwrap_err();
    assert_eq!((e.column, e.kind), (10, ParseErrorKind::LabelLimit));
    let e = run(&[b"m{a=\"1\",\"b\\\"c\"=\"2\"} 1\n"], o(2))
        .1
        .unwrap_err();
    assert_eq!((e.column, e.kind), (3, ParseErrorKind::LabelLimit));
}

#[test]
fn interrupt_stops_between_blocks() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let asked = Arc::new(AtomicUsize::new(0));
    let counter = asked.clone();
    let o = ParseOptions {
        // Gives up when asked the third time: two blocks are parsed.
        interrupt: Some(Interrupt::new(move || {
            counter.fetch_add(1, Ordering::Relaxed) >= 2
        })),
        ..ParseOptions::default()
    };
    let line = format!("m{{pad=\"{}\"}} 1\n", "x".repeat(1000));
    let input = line.repeat(4 * BLOCK / line.len());
    let (ev, r) = run(&[input.as_bytes()], o);
    let e = r.unwrap_err();
    assert_eq!(e.kind, ParseErrorKind::Interrupted);
    assert_eq!(e.line, ev.len() as u64 + 1);
    assert!(
        !ev.is_empty() && ev.len() < 4 * BLOCK / line.len() / 2,
        "{}",
        ev.len()
    );
    assert_eq!(
        asked.load(Ordering::Relaxed),
        3,
        "asked once per block, not per line"
    );
}

#[test]
fn malformed_lines_positions() {
    assert_err("x{a=\"b\n", 1, 5, "unterminated value of label \"a\"");
    assert_err("x{a=\"b\"} \n", 1, 10, "expected value after series");
    assert_err("x{a=\"b\"}\n", 1, 9, "expected value after series");
    assert_err("x\n", 1, 2, "expected value after series");
    assert_err(
        "x{a=b} 1\n",
        1,
        5,
        "expected '\"' to open the value of label \"a\"",
    );
    assert_err("x{a} 1\n", 1, 4, "expected '=' after label name \"a\"");
    assert_err(
        "x 1 2 3\n",
        1,
        7,
        "expected end of line or exemplar after timestamp",
    );
    assert_err("x abc\n", 1, 3, "expected a float value, found \"abc\"");
    assert_err("-x 1\n", 1, 1, "expected metric name or '{'");
    assert_err("\"x\" 1\n", 1, 1, "expected metric name or '{'");
    assert_err(
        "x.y 1\n",
        1,
        2,
        "expected '{' or whitespace after metric name \"x\"",
    );
    assert_err("{a=\"b\"} 1\n", 1, 7, "missing metric name");
    assert_err("x{a=\"1\",,} 1\n", 1, 9, "expected label name or '}'");
    assert_err(
        "x{a=\"1\"\n",
        1,
        8,
        "expected ',' or '}' after the value of label \"a\"",
    );
    assert_err("x{a=\"1\",\n", 1, 9, "unterminated label set");
    assert_err(
        "x{\"a\" 1} 1\n",
        1,
        7,
        "expected '=', ',' or '}' after quoted name \"a\"",
    );
    assert_err("x{\"a} 1\n", 1, 3, "unterminated quoted name");
    assert_err("x{a=\"1\"=} 1\n", 1, 8, "expected ',' or '}'");
    // The documented message shape, on a later line.
    let e = err("ok 1\n# HELP m h\nx{method \"GET\"} 1\n");
    assert_eq!(
        e.to_string(),
        "line 3, col 10: expected '=' after label name \"method\""
    );
}

#[test]
fn events_before_an_error_are_delivered_and_error_sticks() {
    let mut p = Parser::new(ParseOptions::default());
    let mut rec = Rec::default();
    let e = p.feed(b"a 1\nb{ 2\nc 3\n", &mut rec).unwrap_err();
    assert_eq!(e.line, 2);
    assert_eq!(rec.0.len(), 1);
    assert_eq!(p.feed(b"d 4\n", &mut rec), Err(e.clone()));
    assert_eq!(p.finish(&mut rec), Err(e));
    // finish started over.
    p.feed(b"e 5\n", &mut rec).unwrap();
    p.finish(&mut rec).unwrap();
    match rec.0.last() {
        Some(Ev::Sample(s)) => assert_eq!((s.name.as_str(), s.line), ("e", 1)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_sink_that_should_stop_ends_the_input() {
    /// Wants no more input once it has `stop_after` samples.
    struct Stop {
        seen: Vec<String>,
        stop_after: usize,
    }
    impl Sink for Stop {
        fn metadata(&mut self, _: &Metadata<'_>) {}
        fn sample(&mut self, s: &Sample<'_>) {
            self.seen.push(s.name.to_owned());
        }
        fn should_stop(&self) -> bool {
            self.seen.len() >= self.stop_after
        }
    }
    let mut p = Parser::new(ParseOptions::default());
    let mut sink = Stop {
        seen: Vec::new(),
        stop_after: 1,
    };
    // Asked after every sample: the rest of the chunk is ignored, a syntax error included.
    p.feed(b"a 1\nb{{ 2\nc", &mut sink).unwrap();
    assert_eq!(sink.seen, ["a"]);
    // Then the rest of the input is ignored, errors and the carried line included.
    p.feed(b" 3\nd 4\n{{{\n", &mut sink).unwrap();
    p.finish(&mut sink).unwrap();
    assert_eq!(sink.seen, ["a"]);
    // The next input is parsed again once the sink takes input.
    sink.stop_after = 10;
    p.feed(b"e 5\n", &mut sink).unwrap();
    p.finish(&mut sink).unwrap();
    assert_eq!(sink.seen, ["a", "e"]);

    // Whole or byte by byte, the input ends at the same sample and no later error is seen.
    let input = b"a 1\nb 2\nc{{ 3\n";
    for chunk in [1, 2, 3, input.len()] {
        let mut p = Parser::new(ParseOptions::default());
        let mut sink = Stop {
            seen: Vec::new(),
            stop_after: 2,
        };
        for piece in input.chunks(chunk) {
            p.feed(piece, &mut sink).unwrap();
        }
        p.finish(&mut sink).unwrap();
        assert_eq!(sink.seen, ["a", "b"], "chunks of {chunk}");
    }
}

#[test]
fn finish_refuses_a_cut_last_line_and_resets() {
    let mut p = Parser::new(ParseOptions::default());
    let mut rec = Rec::default();
    p.feed(b"# TYPE h histogram\nh_sum 1\nh_count", &mut rec)
        .unwrap();
    assert_eq!(rec.0.len(), 2);
    p.feed(b" 2", &mut rec).unwrap();
    assert_eq!(rec.0.len(), 2);
    // `h_count 2` may be the start of `h_count 21`: a last line without its newline is cut.
    let e = p.finish(&mut rec).unwrap_err();
    assert_eq!(
        (e.line, e.column, e.kind),
        (3, 10, ParseErrorKind::Truncated)
    );
    assert_eq!(e.to_string(), "line 3, col 10: no newline at the end of the last line: the input may be cut off (every line must end with \\n)");
    assert_eq!(rec.0.len(), 2, "the cut line is not delivered");
    // Reuse: line numbers and families start over, the error is forgotten.
    p.feed(b"h_count 1\n", &mut rec).unwrap();
    p.finish(&mut rec).unwrap();
    match &rec.0[2] {
        Ev::Sample(s) => assert_eq!((s.family.as_str(), s.line), ("h_count", 1)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn truncated_inputs() {
    let cut = |input: &str, format: Format| -> Option<(u64, usize, String)> {
        let (_, r) = run(&[input.as_bytes()], opts(format));
        r.err().map(|e| {
            assert_eq!(e.kind, ParseErrorKind::Truncated, "{input:?}: {e}");
            (e.line, e.column, e.message)
        })
    };
    let no_newline = "no newline at the end of the last line: the input may be cut off (every line must end with \\n)".to_owned();
    let no_eof = "OpenMetrics text ends without \"# EOF\": the input may be cut off".to_owned();
    for f in [Format::Auto, Format::Text] {
        assert_eq!(cut("a 1\nb 67", f), Some((2, 5, no_newline.clone())));
        assert_eq!(cut("a 1\nb 1\r", f), Some((2, 5, no_newline.clone())));
        assert_eq!(
            cut("a 1\n# HELP b cut he", f),
            Some((2, 16, no_newline.clone()))
        );
        assert_eq!(cut("a 1\n \t ", f), None, "blanks cut nothing off");
        assert_eq!(cut("a 1\n", f), None);
        assert_eq!(cut("a 1\r\n", f), None);
        assert_eq!(cut("", f), None, "an empty text body is whole");
    }
    // `# EOF` ends OpenMetrics text with or without a newline; in text 0.0.4 it is a comment.
    for f in [Format::Auto, Format::OpenMetrics] {
        assert_eq!(cut("a 1\n# EOF", f), None);
        assert_eq!(cut("a 1\n# EOF\r", f), None);
        assert_eq!(cut("a 1\n# EOF\n", f), None);
        assert_eq!(
            cut("a 1\n# EOF\nb 6", f),
            None,
            "after # EOF nothing counts"
        );
    }
    assert_eq!(
        cut("a 1\n# EOF", Format::Text),
        Some((2, 6, no_newline.clone()))
    );
    // Declared OpenMetrics must end with `# EOF`.
    assert_eq!(
        cut("a 1\n", Format::OpenMetrics),
        Some((2, 1, no_eof.clone()))
    );
    assert_eq!(cut("", Format::OpenMetrics), Some((1, 1, no_eof.clone())));
    assert_eq!(
        cut("a 1\n  ", Format::OpenMetrics),
        Some((2, 3, no_eof.clone()))
    );
    assert_eq!(
        cut("a 1\n# EO", Format::OpenMetrics),
        Some((2, 5, no_eof.clone()))
    );
    assert_eq!(cut("a 1\nb 6", Format::OpenMetrics), Some((2, 4, no_eof)));

    // The same wherever the chunks end; the cut line is never delivered.
    let input = b"a 1\nb{x=\"1\"} 67";
    for k in 0..=input.len() {
        let (ev, r) = run_split(input, &[k]);
        assert_eq!(ev.len(), 1, "cut at {k}");
        let e = r.unwrap_err();
        assert_eq!(
            (e.line, e.column, e.kind),
            (2, 12, ParseErrorKind::Truncated)
        );
    }

    // An input the sink stopped is whole, wherever it was cut.
    struct StopAfterOne(usize);
    impl Sink for StopAfterOne {
        fn metadata(&mut self, _: &Metadata<'_>) {}
        fn sample(&mut self, _: &Sample<'_>) {
            self.0 += 1;
        }
        fn should_stop(&self) -> bool {
            self.0 >= 1
        }
    }
    let mut p = Parser::new(opts(Format::OpenMetrics));
    let mut sink = StopAfterOne(0);
    p.feed(b"a 1\nb 6", &mut sink).unwrap();
    p.finish(&mut sink).unwrap();
}

/// A multi-line input touching every construct.
const MIXED: &str = "# HELP http_requests_total The total number of \\\\ requests.\n\
# TYPE http_requests_total counter\n\
http_requests_total{method=\"post\",code=\"200\"} 1027 1395066363000\n\
http_requests_total{method=\"post\",code=\"400\"}    3 1395066363000\r\n\
\n\
# A comment\n\
metric_without_timestamp_and_labels 12.47\n\
{\"my.metric\", \"label.x\"=\"v\\\"q\"} -Inf\n\
# TYPE rpc histogram\n\
rpc_bucket{le=\"0.05\",path=\"C:\\\\dir\\\\\"} 24054\n\
rpc_bucket{le=\"+Inf\",path=\"a\\nb\"} 144320\n\
rpc_sum 53423 1520879607.789\n\
rpc_count{ } 144320 # {trace=\"x\"} 1 2\n\
{__name__=\"late\",\tz=\"\"} NaN\n\
tail{a=\"b\"} 7\n";

fn run_split(input: &[u8], cuts: &[usize]) -> (Vec<Ev>, Result<(), ParseError>) {
    run_split_with(input, cuts, ParseOptions::default())
}

fn run_split_with(
    input: &[u8],
    cuts: &[usize],
    o: ParseOptions,
) -> (Vec<Ev>, Result<(), ParseError>) {
    let mut chunks = Vec::new();
    let mut last = 0;
    for &c in cuts {
        chunks.push(&input[last..c]);
        last = c;
    }
    chunks.push(&input[last..]);
    run(&chunks, o)
}

#[test]
fn chunk_borders_at_every_offset() {
    let input = MIXED.as_bytes();
    let (whole, r) = run(&[input], ParseOptions::default());
    r.unwrap();
    assert_eq!(whole.len(), 13);
    for k in 0..=input.len() {
        assert_eq!(
            run_split(input, &[k]),
            (whole.clone(), Ok(())),
            "cut at {k}"
        );
    }
    for k in (0..input.len()).step_by(7) {
        for j in (k..input.len()).step_by(11) {
            assert_eq!(
                run_split(input, &[k, j]),
                (whole.clone(), Ok(())),
                "{k},{j}"
            );
        }
    }
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    assert_eq!(run(&bytes, ParseOptions::default()), (whole, Ok(())));
}

#[test]
fn errors_identical_across_chunk_borders() {
    let input = b"a 1\nb{x=\"1\"} 2\nc{y=\"2\" 3\n";
    let (ev, e) = run(&[input], ParseOptions::default());
    let e = e.unwrap_err();
    assert_eq!((e.line, e.column), (3, 9));
    for k in 0..=input.len() {
        assert_eq!(
            run_split(input, &[k]),
            (ev.clone(), Err(e.clone())),
            "cut at {k}"
        );
    }
}

#[test]
fn line_length_limit() {
    let o = ParseOptions {
        max_line_len: 10,
        ..ParseOptions::default()
    };
    let input = b"x 1\nlong_name_x 1\n";
    let (ev, r) = run(&[input], o.clone());
    assert_eq!(ev.len(), 1);
    let e = r.unwrap_err();
    assert_eq!((e.line, e.column), (2, 11));
    assert!(e.message.contains("limit of 10 bytes"), "{e}");
    // Same through the carry buffer, and for a final line without newline (too long is
    // reported before truncated).
    for k in 0..=input.len() {
        assert_eq!(
            run_split_with(input, &[k], o.clone()).1.unwrap_err(),
            e.clone(),
            "cut at {k}"
        );
    }
    let mut p = Parser::new(o.clone());
    let mut rec = Rec::default();
    p.feed(b"x 1\n0123456789", &mut rec).unwrap();
    let e = p.feed(b"a", &mut rec).unwrap_err();
    assert_eq!((e.line, e.column), (2, 11));
    // Exactly the limit is fine.
    let (ev, r) = run(&[b"abcdefgh 1\nabcdefgh 2\n"], o);
    assert!(r.is_ok());
    assert_eq!(ev.len(), 2);
}

#[test]
fn long_lines_and_block_edges() {
    // Lines across the 64 KiB UTF-8 blocks, and one line longer than a block.
    let mut input = String::new();
    let mut n = 0;
    while input.len() < 3 * BLOCK {
        input.push_str(&format!(
            "m{{i=\"{n}\",pad=\"{}\"}} {n}\n",
            "é".repeat(n % 50)
        ));
        n += 1;
        if n == 1000 {
            input.push_str(&format!("big{{v=\"{}\"}} 1\n", "x".repeat(BLOCK + 10)));
        }
    }
    let (whole, r) = run(&[input.as_bytes()], ParseOptions::default());
    r.unwrap();
    assert_eq!(whole.len(), n + 1);
    match &whole[1000] {
        Ev::Sample(s) => assert_eq!(s.labels[0].1.len(), BLOCK + 10),
        other => panic!("{other:?}"),
    }
    for size in [1000, 4099, BLOCK - 1, BLOCK + 1] {
        let chunks: Vec<&[u8]> = input.as_bytes().chunks(size).collect();
        assert_eq!(
            run(&chunks, ParseOptions::default()),
            (whole.clone(), Ok(())),
            "{size}"
        );
    }
}

#[test]
fn invalid_utf8() {
    let e = err_bytes(b"x 1\nx{a=\"\xff\"} 1\n", Format::Auto);
    assert_eq!(
        (e.line, e.column, e.message.as_str()),
        (2, 6, "invalid UTF-8")
    );
    let e = err_bytes(b"x{a=\"ok\xc3\"} 1\n", Format::Auto);
    assert_eq!((e.line, e.column), (1, 8));
    let e = err_bytes(b"# HELP x bad \xe2\x82\n", Format::Auto);
    assert_eq!((e.line, e.column), (1, 14));
    // A multi-byte character split across chunks is fine.
    let input = "x{a=\"€\"} 1\n".as_bytes();
    for k in 0..=input.len() {
        let (ev, r) = run_split(input, &[k]);
        assert!(r.is_ok());
        match &ev[0] {
            Ev::Sample(s) => assert_eq!(s.labels(), [("a", "€")]),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn never_panics_on_odd_input() {
    let pieces: [&[u8]; 16] = [
        b"x", b"{", b"}", b"\"", b"\\", b"=", b",", b" ", b"\n", b"#", b"1", b"e", b"\xff", b"\r",
        b"HELP ", b"# ",
    ];
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..3000 {
        let mut line = Vec::new();
        for _ in 0..(seed % 24) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            line.extend_from_slice(pieces[(seed % 16) as usize]);
        }
        let _ = run(&[&line], ParseOptions::default());
        let _ = run_split(&line, &[line.len() / 2]);
    }
}

#[test]
fn sample_accessors() {
    struct Check;
    impl Sink for Check {
        fn metadata(&mut self, _: &Metadata<'_>) {}
        fn sample(&mut self, s: &Sample<'_>) {
            assert_eq!(s.label_value("b"), Some("x\ny"));
            assert_eq!(s.label_value("zz"), None);
            let dbg = format!("{s:?}");
            assert!(dbg.contains("(\"a\", \"1\")"), "{dbg}");
        }
    }
    let mut p = Parser::new(ParseOptions::default());
    p.feed(b"m{a=\"1\",b=\"x\\ny\"} 1\n", &mut Check).unwrap();
    let dynsink: &mut dyn Sink = &mut Check;
    p.feed(b"m{a=\"1\",b=\"x\\ny\"} 1\n", dynsink).unwrap();
}

/// Outcome of one line: its events, or the error's column and message.
fn outcome(p: &mut Parser, line: &[u8]) -> Result<Vec<Ev>, (usize, String)> {
    let mut rec = Rec::default();
    let r = p
        .feed(line, &mut rec)
        .and_then(|()| p.feed(b"\n", &mut rec));
    let out = match r {
        Ok(()) => Ok(rec
            .0
            .into_iter()
            .map(|e| match e {
                Ev::Sample(s) => Ev::Sample(S { line: 0, ..s }),
                m => m,
            })
            .collect()),
        Err(e) => Err((e.column, e.message)),
    };
    p.reset();
    out
}

#[test]
fn remembered_layouts_and_names_never_change_results() {
    // Label sets that share prefixes, repeat, reorder, duplicate, quote or space out names:
    // a parser warmed by earlier lines must answer exactly as a fresh one.
    let names = [
        "a", "b", "le", "zz", "\"a.b\"", "\"b\"", "__name__", "a.b", "c1",
    ];
    let metrics = ["m_bucket", "m_sum", "m", "m_count_x", ""];
    let values = ["1", "", "x\\\"y", "long value with spaces", "\\", "é"];
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    let mut warm = Parser::new(ParseOptions::default());
    let mut checked = 0;
    for _ in 0..6000 {
        let mut line = String::from(metrics[next(metrics.len())]);
        line.push('{');
        let count = next(5);
        for k in 0..count {
            // Mostly stable shapes, so the caches get hits.
            let n = if next(4) == 0 {
                next(names.len())
            } else {
                k % 4
            };
            line.push_str(names[n]);
            line.push_str(if next(10) == 0 { " = " } else { "=" });
            line.push('"');
            line.push_str(values[next(values.len())]);
            line.push('"');
            if k + 1 < count || next(3) == 0 {
                line.push_str(if next(10) == 0 { " , " } else { "," });
            }
        }
        line.push_str("} 1");
        let fresh = outcome(&mut Parser::new(ParseOptions::default()), line.as_bytes());
        assert_eq!(outcome(&mut warm, line.as_bytes()), fresh, "{line}");
        checked += usize::from(fresh.is_ok());
    }
    assert!(checked > 1000, "too few valid lines: {checked}");
}

/// What [`Sample::layout`], [`Sample::plain_name`], [`Sample::label_at`] and
/// [`Sample::raw_labels`] promise, over
/// random lines that share, reorder, quote and space out label names, fed in random chunks.
#[test]
fn layouts_identify_plain_label_name_sequences() {
    #[derive(Default)]
    struct Shapes {
        by_layout: std::collections::HashMap<u64, Vec<String>>,
        with_layout: usize,
        lines: usize,
        raw_runs: usize,
    }
    impl Sink for Shapes {
        fn metadata(&mut self, _: &Metadata<'_>) {}
        fn sample(&mut self, s: &Sample<'_>) {
            self.lines += 1;
            let text = std::str::from_utf8(s.series_text).unwrap();
            if s.plain_name() {
                assert!(render::is_legacy_metric_name(s.name), "{text}");
                assert!(text.starts_with(s.name), "{text}");
            }
            let mut names = Vec::new();
            for i in 0..s.label_count() {
                let (n, v, verbatim) = s.label_at(i).unwrap();
                assert_eq!(s.labels().nth(i), Some((n, v)));
                if verbatim {
                    assert!(!v.contains(['\\', '"', '\n']), "{text}");
                }
                names.push(n.to_owned());
            }
            assert!(s.label_at(s.label_count()).is_none());
            if s.layout() == 0 {
                return;
            }
            self.with_layout += 1;
            // raw_labels: a run is either None or exactly the rendered labels.
            for from in 0..s.label_count() {
                for to in from + 1..=s.label_count() {
                    let Some(raw) = s.raw_labels(from, to) else {
                        continue;
                    };
                    let mut want = Vec::new();
                    render::write_series_checked(
                        &mut want,
                        "m",
                        true,
                        (from..to).map(|i| s.label_at(i).unwrap()),
                    );
                    assert_eq!(
                        format!("m{{{}}}", std::str::from_utf8(raw).unwrap()).as_bytes(),
                        &want[..],
                        "{text} [{from}..{to}]"
                    );
                    assert!((from..to).all(|i| s.label_at(i).unwrap().2), "{text}");
                    self.raw_runs += (to - from > 1) as usize;
                }
            }
            assert!(s.raw_labels(0, 0).is_none() && s.raw_labels(0, 99).is_none());
            assert!(
                names.iter().all(|n| render::is_legacy_label_name(n)),
                "{text}"
            );
            let known = self.by_layout.entry(s.layout()).or_insert(names.clone());
            assert_eq!(*known, names, "layout {} at {text}", s.layout());
        }
    }
    let names = ["a", "b", "le", "zz", "\"a.b\"", "\"b\"", "c1"];
    let metrics = ["m_bucket", "m_sum", "m", "{\"m.x\"", "{"];
    let values = ["1", "", "x\\\"y", "sp ace", "\\\\", "é", "a\\nb"];
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = |n: usize| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed % n as u64) as usize
    };
    let mut input = String::new();
    for _ in 0..4000 {
        let metric = metrics[next(metrics.len())];
        input.push_str(metric);
        let mut first = metric.starts_with('{') && metric.len() > 1;
        if !metric.starts_with('{') {
            input.push('{');
        }
        let mut used = Vec::new();
        for k in 0..next(5) {
            let n = if next(4) == 0 {
                next(names.len())
            } else {
                k % 4
            };
            let bare = names[n].trim_matches('"');
            if used.contains(&bare) {
                continue;
            }
            used.push(bare);
            if !first {
                first = true;
            } else {
                input.push_str(match next(20) {
                    0 | 1 => " , ",
                    // Blanks alone separate labels (as promparse tolerates), but not a
                    // quoted metric name from the first label.
                    2 if used.len() > 1 => " ",
                    _ => ",",
                });
            }
            input.push_str(names[n]);
            input.push_str(if next(10) == 0 { " = " } else { "=" });
            input.push('"');
            input.push_str(values[next(values.len())]);
            input.push('"');
        }
        if metric == "{" {
            input.push_str(if first {
                ",__name__=\"q\""
            } else {
                "__name__=\"q\""
            });
        }
        input.push_str("} 1\n");
    }
    let mut shapes = Shapes::default();
    let mut p = Parser::new(ParseOptions::default());
    let mut rest = input.as_bytes();
    while !rest.is_empty() {
        let (chunk, tail) = rest.split_at(rest.len().min(1 + next(300)));
        p.feed(chunk, &mut shapes).unwrap();
        rest = tail;
    }
    p.finish(&mut shapes).unwrap();
    assert_eq!(shapes.lines, 4000);
    assert!(shapes.with_layout > 1000, "{}", shapes.with_layout);
    assert!(shapes.by_layout.len() > 20, "{}", shapes.by_layout.len());
    assert!(shapes.raw_runs > 100, "{}", shapes.raw_runs);
}

#[test]
fn quoted_names_are_not_remembered_as_plain_ones() {
    let e = err("x{\"label.x\"=\"v\"} 1\nx{label.x=\"v\"} 1\n");
    assert_eq!((e.line, e.column), (2, 8), "{e}");
    let e = err("x{\"a\\\"b\"=\"v\"} 1\nx{a\"b=\"v\"} 1\n");
    assert_eq!((e.line, e.column), (2, 4), "{e}");
    // Same names, plain then quoted, both fine.
    let s = samples("x{a=\"1\"} 1\nx{\"a\"=\"2\"} 1\nx{a=\"3\"} 1\n");
    assert_eq!(s[1].labels(), [("a", "2")]);
    assert_eq!(s[2].labels(), [("a", "3")]);
}

#[test]
fn format_from_content_type() {
    assert_eq!(
        Format::from_content_type("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        Format::OpenMetrics
    );
    assert_eq!(
        Format::from_content_type("text/plain; version=0.0.4; charset=utf-8"),
        Format::Text
    );
    assert_eq!(Format::from_content_type(""), Format::Auto);
    assert_eq!(Format::from_content_type("application/json"), Format::Auto);
    assert_eq!(ParseOptions::default().format, Format::Auto);
    assert_eq!(ParseOptions::default().max_line_len, 1 << 20);
}

/// A sink that remembers the series of a first pass and, on later passes, expects a series of a
/// fixed length on every line ([`Sink::expected_series_len`]), taking a line as a
/// [`KnownSample`] whenever its series text is one it remembers: what a series cache does,
/// with the parser's guess made as adversarial as one length allows.
#[derive(Default)]
struct Known {
    rec: Rec,
    /// Series text -> (name, labels) of the first pass.
    seen: std::collections::HashMap<String, (String, Vec<(String, String)>)>,
    offer: Option<usize>,
    taken: usize,
}

impl Sink for Known {
    fn metadata(&mut self, m: &Metadata<'_>) {
        self.rec.metadata(m);
    }
    fn sample(&mut self, s: &Sample<'_>) {
        self.rec.sample(s);
        if let Some(Ev::Sample(r)) = self.rec.0.last() {
            self.seen
                .insert(r.series.clone(), (r.name.clone(), r.labels.clone()));
        }
    }
    fn expected_series_len(&self) -> Option<usize> {
        self.offer
    }
    fn known_sample(&mut self, s: &KnownSample<'_>) -> bool {
        assert_eq!(Some(s.series_text.len()), self.offer);
        let series = String::from_utf8_lossy(s.series_text).into_owned();
        let Some((name, labels)) = self.seen.get(&series) else {
            return false;
        };
        assert_eq!(name, s.name, "{series}");
        self.rec.0.push(Ev::Sample(S {
            name: s.name.to_string(),
            family: s.family.to_string(),
            labels: labels.clone(),
            value_bits: s.value.to_bits(),
            value_text: s.value_text.to_string(),
            ts: s.timestamp_ms,
            series,
            line: s.line,
        }));
        self.taken += 1;
        true
    }
}

#[test]
fn known_series_lines_parse_as_full_lines_do() {
    let first = "# TYPE h histogram\n\
        h_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 2\nh_sum 3\nh_count 2\n\
        foo 1\nfoo{a=\"1\"} 2\nfoo {a=\"}\"} 3\n  bar{a=\"x\\\"y\",b=\"2\"} 4 1000\n\
        baz{a=\"1\"} 5 # {t=\"1\"} 1\nqux{} 6\n";
    let later = [
        first,
        "h_bucket{le=\"1\"} 7\nh_sum 3\nfoo 8 123\nfoo\t9\n",
        "foo+1 2\n",
        "foo {a=\"1\"} 1\n",
        "foo{a=\"1\"}1\n",
        "foo{a=\"1\"} x\n",
        "foo{a=\"1\"} 1 2 3\n",
        "foo 1 # bad\n",
        "foo{a=\"1\"}} 1\n",
        "foo{a=\"1\",a=\"2\"} 1\n",
        "foo{a=\"1\"}\n",
        "foo \n",
        "foox 1\n",
        "qux{} 1\nqux{}  2 # {} 3\n",
        "bar{a=\"x\\\"y\",b=\"2\"} 4 1000\n",
        "  bar{a=\"x\\\"y\",b=\"2\"} 4 1000\n",
        "baz{a=\"1\"} 5 # {t=\"1\"} 1 2\n",
    ];
    let mut primed = Known::default();
    assert!(run_into(&[first.as_bytes()], &mut primed).is_ok());
    let mut lens: Vec<usize> = primed.seen.keys().map(String::len).collect();
    lens.extend([0, 1, 2, 4, 100]);
    lens.sort_unstable();
    lens.dedup();
    let mut taken = 0;
    for input in later {
        let (want, want_res) = run(&[input.as_bytes()], ParseOptions::default());
        for &len in &lens {
            let mut k = Known {
                seen: primed.seen.clone(),
                offer: Some(len),
                ..Known::default()
            };
            let res = run_into(&[input.as_bytes()], &mut k);
            assert_eq!(k.rec.0, want, "{input:?} expecting {len}");
            assert_eq!(res, want_res, "{input:?} expecting {len}");
            taken += k.taken;
        }
    }
    assert!(taken >= 15, "the fast path took {taken} lines");
}

/// Feeds `chunks` into `sink` then finishes; the first error.
fn run_into<K: Sink>(chunks: &[&[u8]], sink: &mut K) -> Result<(), ParseError> {
    let mut p = Parser::new(ParseOptions::default());
    for c in chunks {
        p.feed(c, sink)?;
    }
    p.finish(sink)
}
