//! Quoting configuration input in error messages, at most [`QUOTE_LIMIT`] bytes of it.
//!
//! An error about a 10 MB regex must not be 10 MB long: it is logged, and returned by
//! `POST /-/reload`. Every error that quotes input goes through [`Quoted`] or [`Backticked`],
//! which cut the input after [`QUOTE_LIMIT`] bytes (at a character boundary) and say how long
//! it was; messages built by other libraries, which may quote input whole, go through
//! [`shorten`].

use std::borrow::Cow;
use std::fmt;

/// Most bytes of one input an error message quotes.
pub const QUOTE_LIMIT: usize = 200;

/// `s` cut to at most [`QUOTE_LIMIT`] bytes at a character boundary, and whether it was cut.
fn cut(s: &str) -> (&str, bool) {
    if s.len() <= QUOTE_LIMIT {
        return (s, false);
    }
    let mut end = QUOTE_LIMIT;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    (&s[..end], true)
}

/// Displays a string as `{:?}` does (`"a\"b"`); a longer one than [`QUOTE_LIMIT`] bytes as
/// its start, `…`, and its length: `"aaaa…" (10485760 bytes)`.
pub struct Quoted<'a>(pub &'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match cut(self.0) {
            (whole, false) => write!(f, "{whole:?}"),
            (start, true) => {
                let debug = format!("{start:?}");
                let open = debug.strip_suffix('"').unwrap_or(&debug);
                write!(f, "{open}…\" ({} bytes)", self.0.len())
            }
        }
    }
}

/// Displays a string between backticks, unescaped, as Go's regexp errors quote a pattern
/// (`` `[a` ``); a longer one than [`QUOTE_LIMIT`] bytes as `` `[aaa…` (65536 bytes) ``.
pub struct Backticked<'a>(pub &'a str);

impl fmt::Display for Backticked<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match cut(self.0) {
            (whole, false) => write!(f, "`{whole}`"),
            (start, true) => write!(f, "`{start}…` ({} bytes)", self.0.len()),
        }
    }
}

/// A message from another library (the YAML reader), which may quote input whole: when it
/// is longer than twice [`QUOTE_LIMIT`], the middle is left out, keeping the start (what went
/// wrong) and the end (where: serde_yaml_ng ends with `at line L column C`).
pub fn shorten(message: &str) -> Cow<'_, str> {
    if message.len() <= 2 * QUOTE_LIMIT {
        return Cow::Borrowed(message);
    }
    let (head, _) = cut(message);
    let mut tail_start = message.len() - QUOTE_LIMIT / 2;
    while !message.is_char_boundary(tail_start) {
        tail_start += 1;
    }
    let left_out = tail_start - head.len();
    Cow::Owned(format!(
        "{head}[… {left_out} bytes left out …]{}",
        &message[tail_start..]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_input_is_quoted_whole() {
        assert_eq!(Quoted("a\"b\n").to_string(), r#""a\"b\n""#);
        assert_eq!(Quoted("").to_string(), r#""""#);
        assert_eq!(Backticked("[a").to_string(), "`[a`");
        let exact = "x".repeat(QUOTE_LIMIT);
        assert_eq!(Quoted(&exact).to_string(), format!("\"{exact}\""));
        assert_eq!(shorten("short"), "short");
    }

    #[test]
    fn long_input_is_cut_and_measured() {
        let long = "a".repeat(10 << 20);
        let q = Quoted(&long).to_string();
        assert_eq!(
            q,
            format!("\"{}…\" ({} bytes)", "a".repeat(QUOTE_LIMIT), 10 << 20)
        );
        let b = Backticked(&long).to_string();
        assert_eq!(
            b,
            format!("`{}…` ({} bytes)", "a".repeat(QUOTE_LIMIT), 10 << 20)
        );
    }

    #[test]
    fn cuts_fall_on_character_boundaries() {
        // 'é' is two bytes: the limit falls inside the 101st.
        let s = format!("x{}", "é".repeat(200));
        let q = Quoted(&s).to_string();
        assert!(q.starts_with(&format!("\"x{}…\"", "é".repeat(99))), "{q}");
        assert!(q.ends_with(&format!("({} bytes)", s.len())), "{q}");
        let m = format!("{}{}", "é".repeat(500), " at line 1 column 2");
        let short = shorten(&m);
        assert!(short.len() < 2 * QUOTE_LIMIT + 64, "{short}");
        assert!(short.ends_with(" at line 1 column 2"), "{short}");
    }

    #[test]
    fn long_messages_keep_start_and_end() {
        let message = format!(
            "invalid type: string \"{}\", expected a sequence at line 1 column 25",
            "k".repeat(1 << 20)
        );
        let short = shorten(&message);
        assert!(short.len() <= 2 * QUOTE_LIMIT + 64, "{}", short.len());
        assert!(short.starts_with("invalid type: string \"kkk"), "{short}");
        assert!(
            short.ends_with("\", expected a sequence at line 1 column 25"),
            "{short}"
        );
        assert!(short.contains("bytes left out"), "{short}");
    }
}
