//! OpenMetrics exemplars: ` # {labels} value [timestamp]` after a sample's value or timestamp.
//!
//! metric-gate writes text 0.0.4, which has no exemplars, so an exemplar is checked for syntax
//! and skipped, in every format: a malformed one is an error (as in Prometheus), a valid one
//! changes nothing but marks the input as OpenMetrics for the timestamp rule (see
//! `timestamp.rs`). Nothing is unescaped or kept, so skipping costs no scratch space.

use super::line::LineState;
use super::quoted::skip_quoted;
use super::scan::{has_class, is_ws, scan_class, skip_ws, token_end, LABEL_CHAR, LABEL_START};
use super::ParseError;
use crate::exposition::float::parse_go_float;

impl LineState {
    /// Checks and skips an exemplar ` # {labels} value [timestamp]` starting at the `#` at `i`.
    pub(super) fn exemplar(&mut self, s: &str, i: usize) -> Result<(), ParseError> {
        let b = s.as_bytes();
        let mut j = i + 1;
        if !b.get(j).is_some_and(|&c| is_ws(c)) {
            return Err(self.err(j + 1, format_args!("expected ' ' after '#' of an exemplar")));
        }
        j = skip_ws(b, j);
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
        for what in ["value", "timestamp"] {
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
            if parse_go_float(&s[start..j]).is_none() {
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
        Ok(())
    }
}
