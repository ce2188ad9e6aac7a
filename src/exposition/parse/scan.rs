//! Byte scanning: blanks, tokens, name characters and the quote-or-backslash search.
//!
//! These are the innermost loops of the parser, so each is small and `#[inline]`, and the two
//! that run over every label name and value avoid per-byte branches on character ranges: names
//! are checked against a 256-entry class table, and values are searched eight bytes at a time.
//! Guarantee: they never read past the slice they are given and never panic, whatever the bytes.

/// Spaces and tabs separate tokens.
#[inline]
pub(super) fn is_ws(c: u8) -> bool {
    c == b' ' || c == b'\t'
}

/// Index of the first non-blank byte at or after `i`.
#[inline]
pub(super) fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && is_ws(b[i]) {
        i += 1;
    }
    i
}

/// End of the token starting at `i` (the next space, tab or end of line).
#[inline]
pub(super) fn token_end(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && !is_ws(b[i]) {
        i += 1;
    }
    i
}

/// Class bits of [`NAME_CLASS`]: may start / continue a label name, a metric name.
pub(super) const LABEL_START: u8 = 1;
/// See [`LABEL_START`].
pub(super) const LABEL_CHAR: u8 = 2;
/// See [`LABEL_START`].
pub(super) const METRIC_START: u8 = 4;
/// See [`LABEL_START`].
pub(super) const METRIC_CHAR: u8 = 8;

/// Character classes of unquoted names: labels `[a-zA-Z_][a-zA-Z0-9_]*`, metrics
/// `[a-zA-Z_:][a-zA-Z0-9_:]*`.
static NAME_CLASS: [u8; 256] = name_class();

const fn name_class() -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 256 {
        let c = i as u8;
        if c.is_ascii_alphabetic() || c == b'_' {
            t[i] = LABEL_START | LABEL_CHAR | METRIC_START | METRIC_CHAR;
        } else if c.is_ascii_digit() {
            t[i] = LABEL_CHAR | METRIC_CHAR;
        } else if c == b':' {
            t[i] = METRIC_START | METRIC_CHAR;
        }
        i += 1;
    }
    t
}

/// Whether byte `c` is in `class` (one of the `*_START` / `*_CHAR` bits).
#[inline]
pub(super) fn has_class(c: u8, class: u8) -> bool {
    NAME_CLASS[c as usize] & class != 0
}

/// End of the run of `class` characters starting at `i`.
#[inline]
pub(super) fn scan_class(b: &[u8], mut i: usize, class: u8) -> usize {
    while i < b.len() && has_class(b[i], class) {
        i += 1;
    }
    i
}

/// Index of the first `"` or `\\` in `b[i..]`. Label values are short (a dozen bytes), where a
/// word-at-a-time scan inlined here beats a call into `memchr2`.
#[inline]
pub(super) fn find_quote_or_backslash(b: &[u8], mut i: usize) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    const QUOTES: u64 = LO * b'"' as u64;
    const BACKSLASHES: u64 = LO * b'\\' as u64;
    while let Some(word) = b.get(i..i + 8) {
        let Ok(word) = <[u8; 8]>::try_from(word) else {
            break;
        };
        let x = u64::from_le_bytes(word);
        let (q, s) = (x ^ QUOTES, x ^ BACKSLASHES);
        // A byte of `q` or `s` is zero where `x` has a quote or backslash; the lowest flagged
        // byte is exact (borrows only disturb the bytes above it).
        let found = ((q.wrapping_sub(LO) & !q) | (s.wrapping_sub(LO) & !s)) & HI;
        if found != 0 {
            return Some(i + (found.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    while let Some(&c) = b.get(i) {
        if c == b'"' || c == b'\\' {
            return Some(i);
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::parse::quoted::skip_quoted;

    #[test]
    fn word_scans_agree_with_the_byte_rules() {
        for c in 0..=255u8 {
            for pos in 0..12 {
                let mut line = vec![b'a'; 12];
                line[pos] = c;
                let label = c.is_ascii_alphanumeric() || c == b'_';
                let metric = label || c == b':';
                let want = |ok: bool| if ok { 12 } else { pos };
                assert_eq!(
                    scan_class(&line, 0, LABEL_CHAR),
                    want(label),
                    "label {c:#x}"
                );
                assert_eq!(
                    scan_class(&line, 0, METRIC_CHAR),
                    want(metric),
                    "metric {c:#x}"
                );
                assert_eq!(
                    has_class(c, LABEL_START),
                    c.is_ascii_alphabetic() || c == b'_'
                );
                assert_eq!(
                    has_class(c, METRIC_START),
                    c.is_ascii_alphabetic() || c == b'_' || c == b':'
                );
                let special = c == b'"' || c == b'\\';
                assert_eq!(
                    find_quote_or_backslash(&line, 0),
                    if special { Some(pos) } else { None },
                    "{c:#x} at {pos}"
                );
                assert_eq!(skip_quoted(&line, 0).is_some(), c == b'"' && pos > 0);
            }
        }
    }
}
