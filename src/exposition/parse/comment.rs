//! Comment lines: `# HELP`, `# TYPE` and `# UNIT` become [`Metadata`], `# EOF` ends an
//! OpenMetrics input, and any other comment is ignored.
//!
//! As in Prometheus' `promparse`: a `#` or a keyword not followed by a blank starts a plain
//! comment; `# HELP` text unescapes `\\` and `\n` (also `\"` in [`Format::OpenMetrics`]) and is
//! separated from the name by exactly one blank; `# TYPE` must name a known type; `# EOF` is an
//! ordinary comment in [`Format::Text`]. Ignored comments are not checked for UTF-8, so a
//! comment in another encoding does not fail an input. Every metadata line also updates family
//! membership (`families.rs`).

use memchr::memchr;

use super::line::LineState;
use super::piece::Piece;
use super::quoted::{quoted, unescape_into};
use super::scan::{has_class, is_ws, scan_class, skip_ws, METRIC_CHAR, METRIC_START};
use super::{Format, MetaKind, Metadata, ParseError, Sink};

impl LineState {
    /// A `#` line; `i` is the index of `#`.
    pub(super) fn comment<S: Sink + ?Sized>(
        &mut self,
        b: &[u8],
        text: Option<&str>,
        i: usize,
        sink: &mut S,
    ) -> Result<(), ParseError> {
        // `#` not followed by a blank is a plain comment, as in `promparse`.
        if !b.get(i + 1).is_some_and(|&c| is_ws(c)) {
            return Ok(());
        }
        let k = skip_ws(b, i + 1);
        let rest = &b[k..];
        let kind = if rest.starts_with(b"HELP") {
            MetaKind::Help
        } else if rest.starts_with(b"TYPE") {
            MetaKind::Type
        } else if rest.starts_with(b"UNIT") {
            MetaKind::Unit
        } else {
            if rest.starts_with(b"EOF")
                && skip_ws(rest, 3) == rest.len()
                && self.format != Format::Text
            {
                self.ended = true;
                self.om_seen = true;
            }
            return Ok(());
        };
        // A keyword not followed by a blank (`# HELPx`, `# HELP`) is a plain comment.
        if !b.get(k + 4).is_some_and(|&c| is_ws(c)) {
            return Ok(());
        }
        let s = match text {
            Some(s) => s,
            None => self.utf8(b)?,
        };
        self.scratch.clear();
        let keyword = &s[k..k + 4];

        // The family name, plain or quoted.
        let n = skip_ws(b, k + 4);
        let (family, name_end) = match b.get(n) {
            Some(b'"') => match quoted(&mut self.scratch, s, n) {
                Some(q) => q,
                None => {
                    return Err(self.err(
                        n + 1,
                        format_args!("unterminated quoted metric name in {keyword}"),
                    ))
                }
            },
            Some(&c) if has_class(c, METRIC_START) => {
                let end = scan_class(b, n + 1, METRIC_CHAR);
                (Piece::line(n, end), end)
            }
            _ => return Err(self.err(n + 1, format_args!("expected metric name after {keyword}"))),
        };
        if family.is_empty() {
            return Err(self.err(n + 1, format_args!("empty metric name in {keyword}")));
        }
        let text = match b.get(name_end) {
            None => Piece::line(name_end, name_end),
            Some(&c) if is_ws(c) => {
                if kind == MetaKind::Help {
                    // Exactly one blank separates name and text, as in `promparse`.
                    let t = name_end + 1;
                    match memchr(b'\\', &b[t..]) {
                        None => Piece::line(t, b.len()),
                        Some(bs) => {
                            let quote_escape = self.format == Format::OpenMetrics;
                            match unescape_into(
                                &mut self.scratch,
                                s,
                                t,
                                t + bs,
                                false,
                                quote_escape,
                            ) {
                                Some((p, _)) => p,
                                None => Piece::line(t, b.len()),
                            }
                        }
                    }
                } else {
                    let t = skip_ws(b, name_end);
                    let mut e = b.len();
                    while e > t && is_ws(b[e - 1]) {
                        e -= 1;
                    }
                    Piece::line(t, e)
                }
            }
            Some(_) => {
                return Err(self.err(
                    name_end + 1,
                    format_args!("expected whitespace after the metric name in {keyword}"),
                ))
            }
        };

        let text_col = if text.in_scratch() {
            name_end + 2
        } else {
            text.start() + 1
        };
        let scratch = self.scratch.as_str();
        let family = family.get(s, scratch);
        let text = text.get(s, scratch);
        match kind {
            MetaKind::Type => {
                if !self.families.typed(family, text) {
                    let msg = if text.is_empty() {
                        format_args!("expected a metric type after {family:?}")
                    } else {
                        format_args!("unknown metric type {text:?} for {family:?}")
                    };
                    return Err(self.err(text_col, msg));
                }
            }
            MetaKind::Help | MetaKind::Unit => {
                self.families.described(family);
                if kind == MetaKind::Unit {
                    self.om_seen = true;
                }
            }
        }
        sink.metadata(&Metadata { kind, family, text });
        Ok(())
    }
}
