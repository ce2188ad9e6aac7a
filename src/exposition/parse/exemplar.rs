//! OpenMetrics exemplars: ` # {labels} value [timestamp]` after a sample's value or timestamp.
//!
//! An exemplar is checked for syntax in every format (a malformed one is an error, as in
//! Prometheus) and handed to the sink with its sample ([`Sample::exemplar`]): its text as
//! written, for OpenMetrics output, and its timestamp, to choose among several. A valid one also
//! marks the input as OpenMetrics for the timestamp rule (see `timestamp.rs`). Nothing is
//! unescaped or copied: the exemplar is a slice of the line.
//!
//! [`Sample::exemplar`]: super::Sample::exemplar

use super::line::LineState;
use super::quoted::skip_quoted;
use super::scan::{has_class, is_ws, scan_class, skip_ws, token_end, LABEL_CHAR, LABEL_START};
use super::sink::Exemplar;
use super::ParseError;
use crate::exposition::float::parse_go_float;

impl LineState {
    /// Checks the exemplar ` # {labels} value [timestamp]` starting at the `#` at `i`, which
    /// ends the line.
    pub(super) fn exemplar<'s>(
        &mut self,
        s: &'s str,
        i: usize,
    ) -> Result<Exemplar<'s>, ParseError> {
        let b = s.as_bytes();
        let mut j = i + 1;
        if !b.get(j).is_some_and(|&c| is_ws(c)) {
            return Err(self.err(j + 1, format_args!("expected ' ' after '#' of an exemplar")));
        }
        j = skip_ws(b, j);
        let text_start = j;
        if b.get(j) != Some(&b'{') {
            return Err(self.err(
                j + 1,
                format_args!("expected '{{' to open the label set of an exemplar"),
            ));
        }
        j += 1;
        loop {
            j = skip_ws(b, j);
            match b.get(j) {
                Some(b'}') => {
                    j += 1;
                    break;
                }
                Some(b'"') => match skip_quoted(b, j) {
                    Some(end) => j = end,
                    None => {
                        return Err(self.err(
                            j + 1,
                            format_args!("unterminated quoted label name in exemplar"),
                        ))
                    }
                },
                Some(&c) if has_class(c, LABEL_START) => j = scan_class(b, j + 1, LABEL_CHAR),
                _ => {
                    return Err(self.err(
                        j + 1,
                        format_args!("expected label name or '}}' in exemplar"),
                    ))
                }
            }
            j = skip_ws(b, j);
            if b.get(j) != Some(&b'=') {
                return Err(self.err(
                    j + 1,
                    format_args!("expected '=' after exemplar label name"),
                ));
            }
            j = skip_ws(b, j + 1);
            if b.get(j) != Some(&b'"') {
                return Err(self.err(
                    j + 1,
                    format_args!("expected '\"' to open an exemplar label value"),
                ));
            }
            j = match skip_quoted(b, j) {
                Some(end) => end,
                None => {
                    return Err(self.err(
                        j + 1,
                        format_args!("unterminated exemplar label value (missing closing '\"')"),
                    ))
                }
            };
            j = skip_ws(b, j);
            match b.get(j) {
                Some(b',') => j += 1,
                Some(b'}') => {}
                _ => {
                    return Err(self.err(
                        j + 1,
                        format_args!("expected ',' or '}}' in exemplar label set"),
                    ))
                }
            }
        }
        // Value and optional timestamp: both floats.
        let mut numbers = [None; 2];
        for (what, number) in ["value", "timestamp"].into_iter().zip(&mut numbers) {
            let start = skip_ws(b, j);
            if start == b.len() {
                if what == "value" {
                    return Err(self.err(start + 1, format_args!("expected exemplar value")));
                }
                break;
            }
            if start == j {
                return Err(self.err(
                    start + 1,
                    format_args!("expected whitespace before exemplar {what}"),
                ));
            }
            j = token_end(b, start);
            *number = parse_go_float(&s[start..j]);
            if number.is_none() {
                return Err(self.err(
                    start + 1,
                    format_args!("expected a float exemplar {what}, found {:?}", &s[start..j]),
                ));
            }
        }
        let end = skip_ws(b, j);
        if end < b.len() {
            return Err(self.err(end + 1, format_args!("unexpected text after exemplar")));
        }
        self.om_seen = true;
        Ok(Exemplar {
            text: &s[text_start..j],
            value: numbers[0].unwrap_or(f64::NAN),
            timestamp: numbers[1],
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::exposition::{Exemplar, Format, Metadata, ParseOptions, Parser, Sample, Sink};

    #[derive(Default)]
    struct Exemplars(Vec<Option<(String, f64, Option<f64>)>>);

    impl Sink for Exemplars {
        fn metadata(&mut self, _: &Metadata<'_>) {}
        fn sample(&mut self, s: &Sample<'_>) {
            self.0.push(s.exemplar.map(
                |Exemplar {
                     text,
                     value,
                     timestamp,
                 }| (text.to_owned(), value, timestamp),
            ));
        }
    }

    fn exemplars(text: &str, format: Format) -> Result<Exemplars, String> {
        let mut sink = Exemplars::default();
        let mut p = Parser::new(ParseOptions {
            format,
            ..ParseOptions::default()
        });
        p.feed(text.as_bytes(), &mut sink)
            .map_err(|e| e.to_string())?;
        p.finish(&mut sink).map_err(|e| e.to_string())?;
        Ok(sink)
    }

    #[test]
    fn exemplars_are_handed_out_as_written() {
        let text = "\
a_total 1 # {trace_id=\"x\"} 1.0 1.6e9
b_bucket{le=\"1\"} 2 1700000000.5 #  {a=\"1\",\"b.c\"=\"\\\"q\"}   0.5\t
c 3
d 4 1700000000 # {} 7
# EOF
";
        let got = exemplars(text, Format::OpenMetrics).unwrap().0;
        assert_eq!(
            got,
            [
                Some(("{trace_id=\"x\"} 1.0 1.6e9".to_owned(), 1.0, Some(1.6e9))),
                Some(("{a=\"1\",\"b.c\"=\"\\\"q\"}   0.5".to_owned(), 0.5, None)),
                None,
                Some(("{} 7".to_owned(), 7.0, None)),
            ]
        );
        // Also in the text format (Prometheus checks them there too).
        let got = exemplars("x 1 # {t=\"1\"} 2 3\n", Format::Text).unwrap().0;
        assert_eq!(got, [Some(("{t=\"1\"} 2 3".to_owned(), 2.0, Some(3.0)))]);
        // Malformed exemplars are errors, with their column.
        for (bad, col) in [
            ("x 1 #{t=\"1\"} 2\n", 6),
            ("x 1 # {t=\"1\"}\n", 14),
            ("x 1 # {t=\"1\"} y\n", 15),
            ("x 1 # {t=\"1\"} 2 3 4\n", 19),
        ] {
            let e = exemplars(bad, Format::Text).err().unwrap();
            assert!(
                e.starts_with(&format!("line 1, col {col}:")),
                "{bad:?}: {e}"
            );
        }
    }
}
