//! Quoted strings and escapes: label values, quoted names (`{"my.metric"}`) and `# HELP` text.
//!
//! Prometheus unescapes only `\\`, `\n` and (in quoted strings) `\"`, and keeps any other
//! backslash sequence verbatim, as its `strings.Replacer` does; so do these functions. Text
//! without a backslash is not copied: [`quoted`] returns a [`Piece`] of the line, and only text
//! holding a backslash is unescaped, appended to the caller's scratch buffer. A closing quote is
//! found by skipping escaped characters, so a value may end in `\\`.

use memchr::memchr;

use super::piece::Piece;
use super::scan::find_quote_or_backslash;

/// Parses a quoted string (label value, quoted name) whose opening quote is at `q`; returns its
/// unescaped text (unescaped into `scratch` only if it holds a backslash) and the index after
/// the closing quote, `None` if unterminated.
#[inline(always)]
pub(super) fn quoted(scratch: &mut String, s: &str, q: usize) -> Option<(Piece, usize)> {
    let b = s.as_bytes();
    let body = q + 1;
    let k = find_quote_or_backslash(b, body)?;
    if b[k] == b'"' {
        Some((Piece::line(body, k), k + 1))
    } else {
        unescape_into(scratch, s, body, k, true, true)
    }
}

/// Finds the end of a quoted string whose opening quote is at `q` without unescaping: the index
/// after the closing quote, `None` when the line ends first.
pub(super) fn skip_quoted(b: &[u8], q: usize) -> Option<usize> {
    let mut j = q + 1;
    loop {
        let k = find_quote_or_backslash(b, j)?;
        if b[k] == b'"' {
            return Some(k + 1);
        }
        j = k + 2;
    }
}

/// Unescapes `s[body..]`, whose first backslash (or closing quote) is at `first`, into
/// `scratch`. `\\` and `\n` are replaced, `\"` too with `quote_escape`; any other backslash is
/// kept, as Prometheus' `strings.Replacer` does. A `quoted` string ends at its closing quote (and
/// `None` means it is unterminated); otherwise the text runs to the end of `s`. Returns the
/// unescaped piece and the index after the text (after the closing quote).
pub(super) fn unescape_into(
    scratch: &mut String,
    s: &str,
    body: usize,
    first: usize,
    quoted: bool,
    quote_escape: bool,
) -> Option<(Piece, usize)> {
    let b = s.as_bytes();
    let start = scratch.len();
    let mut seg = body;
    let mut at = Some(first);
    loop {
        let Some(p) = at else {
            if quoted {
                return None;
            }
            scratch.push_str(s.get(seg..)?);
            return Some((Piece::scratch(start, scratch.len()), b.len()));
        };
        scratch.push_str(s.get(seg..p)?);
        if quoted && b[p] == b'"' {
            return Some((Piece::scratch(start, scratch.len()), p + 1));
        }
        // `b[p]` is a backslash.
        seg = match b.get(p + 1) {
            Some(b'\\') => {
                scratch.push('\\');
                p + 2
            }
            Some(b'n') => {
                scratch.push('\n');
                p + 2
            }
            Some(b'"') if quote_escape => {
                scratch.push('"');
                p + 2
            }
            // Unknown escape (or a lone backslash ending help text): keep the backslash; the
            // next byte is ordinary text (it is neither a backslash nor, if quoted, a quote).
            Some(_) => {
                scratch.push('\\');
                p + 1
            }
            None if quoted => return None,
            None => {
                scratch.push('\\');
                p + 1
            }
        };
        at = find_special(b, seg, quoted).map(|k| seg + k);
    }
}

/// Offset of the next backslash (or quote, in quoted strings) in `b[from..]`.
#[inline]
pub(super) fn find_special(b: &[u8], from: usize, quoted: bool) -> Option<usize> {
    if quoted {
        find_quote_or_backslash(b, from).map(|k| k - from)
    } else {
        memchr(b'\\', b.get(from..)?)
    }
}
