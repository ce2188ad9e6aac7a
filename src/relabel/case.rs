//! Case mapping as Go's `strings.ToLower` / `strings.ToUpper` do it, for the `lowercase` and
//! `uppercase` actions.
//!
//! Go maps rune by rune with `unicode.ToLower` / `unicode.ToUpper`: the *simple* case mappings
//! of UnicodeData.txt, one rune to one rune. Rust's `char::to_lowercase` / `to_uppercase` use
//! the *full* mappings, which add SpecialCasing.txt's one-to-many entries (`ß` → `SS`,
//! `İ` → `i̇`, `ᾳ` → `ΑΙ`). Where Rust's mapping is a single char it equals the simple mapping
//! (checked against the Unicode 14 simple mappings for every code point); where it is several
//! chars, the simple mapping is taken from [`SIMPLE_UPPER_OF_MULTI`] or is the char itself.

/// Simple uppercase mappings of the chars whose full uppercase mapping is several chars, where
/// the simple mapping is not the char itself. The other such chars (`ß`, `ŉ`, `ǰ`, `ΐ`, the
/// ligatures `ﬀ`..`ﬆ`, ...) have no simple uppercase mapping and stay unchanged.
///
/// Source: field 12 of UnicodeData.txt (Unicode 14), read through Perl's
/// `Unicode::UCD::charinfo`; sorted by the first char for binary search.
const SIMPLE_UPPER_OF_MULTI: [(char, char); 27] = [
    ('\u{1F80}', '\u{1F88}'),
    ('\u{1F81}', '\u{1F89}'),
    ('\u{1F82}', '\u{1F8A}'),
    ('\u{1F83}', '\u{1F8B}'),
    ('\u{1F84}', '\u{1F8C}'),
    ('\u{1F85}', '\u{1F8D}'),
    ('\u{1F86}', '\u{1F8E}'),
    ('\u{1F87}', '\u{1F8F}'),
    ('\u{1F90}', '\u{1F98}'),
    ('\u{1F91}', '\u{1F99}'),
    ('\u{1F92}', '\u{1F9A}'),
    ('\u{1F93}', '\u{1F9B}'),
    ('\u{1F94}', '\u{1F9C}'),
    ('\u{1F95}', '\u{1F9D}'),
    ('\u{1F96}', '\u{1F9E}'),
    ('\u{1F97}', '\u{1F9F}'),
    ('\u{1FA0}', '\u{1FA8}'),
    ('\u{1FA1}', '\u{1FA9}'),
    ('\u{1FA2}', '\u{1FAA}'),
    ('\u{1FA3}', '\u{1FAB}'),
    ('\u{1FA4}', '\u{1FAC}'),
    ('\u{1FA5}', '\u{1FAD}'),
    ('\u{1FA6}', '\u{1FAE}'),
    ('\u{1FA7}', '\u{1FAF}'),
    ('\u{1FB3}', '\u{1FBC}'),
    ('\u{1FC3}', '\u{1FCC}'),
    ('\u{1FF3}', '\u{1FFC}'),
];

/// Go's `unicode.ToLower`.
pub(crate) fn lower_char(c: char) -> char {
    let mut full = c.to_lowercase();
    match (full.next(), full.next()) {
        (Some(single), None) => single,
        // Only U+0130 (İ) lowers to several chars (i + combining dot); its simple mapping is i.
        _ if c == '\u{130}' => 'i',
        _ => c,
    }
}

/// Go's `unicode.ToUpper`.
pub(crate) fn upper_char(c: char) -> char {
    let mut full = c.to_uppercase();
    match (full.next(), full.next()) {
        (Some(single), None) => single,
        _ => SIMPLE_UPPER_OF_MULTI
            .binary_search_by_key(&c, |&(from, _)| from)
            .map_or(c, |i| SIMPLE_UPPER_OF_MULTI[i].1),
    }
}

/// Appends Go's `strings.ToLower(s)` to `out`.
pub(crate) fn push_lower(s: &str, out: &mut String) {
    if s.is_ascii() {
        let start = out.len();
        out.push_str(s);
        out[start..].make_ascii_lowercase();
    } else {
        out.extend(s.chars().map(lower_char));
    }
}

/// Appends Go's `strings.ToUpper(s)` to `out`.
pub(crate) fn push_upper(s: &str, out: &mut String) {
    if s.is_ascii() {
        let start = out.len();
        out.push_str(s);
        out[start..].make_ascii_uppercase();
    } else {
        out.extend(s.chars().map(upper_char));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lower(s: &str) -> String {
        let mut out = String::new();
        push_lower(s, &mut out);
        out
    }

    fn upper(s: &str) -> String {
        let mut out = String::new();
        push_upper(s, &mut out);
        out
    }

    #[test]
    fn ascii() {
        assert_eq!(lower("GET /Index.HTML 200"), "get /index.html 200");
        assert_eq!(upper("get /index.html 200"), "GET /INDEX.HTML 200");
        let mut out = String::from("keep:");
        push_upper("ab", &mut out);
        assert_eq!(out, "keep:AB");
    }

    /// Expected values are Go's (`strings.ToUpper` / `strings.ToLower`, simple mappings).
    #[test]
    fn one_rune_to_one_rune_like_go() {
        assert_eq!(upper("straße"), "STRAßE"); // Rust's to_uppercase gives "STRASSE"
        assert_eq!(lower("İSTANBUL"), "istanbul"); // Rust's to_lowercase gives "i̇stanbul"
        assert_eq!(upper("ŉ ǰ ΐ ﬀ"), "ŉ ǰ ΐ ﬀ"); // no simple uppercase mapping
        assert_eq!(upper("ᾳ ῳ ᾀ"), "ᾼ ῼ ᾈ"); // simple mapping to the titlecase-like capital
        assert_eq!(lower("ᾼ"), "ᾳ");
        assert_eq!(lower("ΟΔΟΣ"), "οδοσ"); // no final-sigma rule
        assert_eq!(upper("ǆ ǅ"), "Ǆ Ǆ");
        assert_eq!(lower("ǅ"), "ǆ");
        assert_eq!(lower("\u{212A}"), "k"); // Kelvin sign
        assert_eq!(upper("ſ"), "S"); // long s
        assert_eq!(upper("ı"), "I"); // dotless i
        assert_eq!(lower("ẞ"), "ß");
        assert_eq!(upper("ß"), "ß");
        assert_eq!(upper("éàü"), "ÉÀÜ");
    }

    #[test]
    fn every_char_maps_to_exactly_one_char() {
        let table_is_sorted = SIMPLE_UPPER_OF_MULTI.windows(2).all(|w| w[0].0 < w[1].0);
        assert!(table_is_sorted);
        for &(from, to) in &SIMPLE_UPPER_OF_MULTI {
            assert!(from.to_uppercase().count() > 1, "{from:?}");
            assert_eq!(upper_char(from), to);
        }
    }
}
