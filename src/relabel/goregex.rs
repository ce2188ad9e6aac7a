//! Go RE2 regex syntax, as Prometheus compiles relabel regexes, rewritten for the `regex` crate.
//!
//! The two dialects agree on almost everything (both are RE2-style: leftmost-first, no
//! backreferences, same groups and flags). What differs, and what [`translate`] rewrites so a
//! rule matches exactly what it matches in Prometheus (Go `regexp/syntax`, flags `Perl`):
//!
//! - `\d \s \w` and `\D \S \W` are ASCII-only in Go (`\s` is `[\t\n\f\r ]`, without `\v`) and
//!   Unicode in Rust: they are spelled out as ASCII classes. `\b \B` become `(?-u:\b)`,
//!   `(?-u:\B)`. Explicit classes keep Go's behaviour under `(?i)` too (Go folds `\w` to
//!   include `K` (Kelvin) and `ſ`, as Rust does for `(?i)[0-9A-Za-z_]`).
//! - Inside `[...]` Rust reads `[` as a nested class and `&&`, `--`, `~~` as set operations;
//!   Go reads them as characters. Classes are parsed with Go's rules and re-emitted item by
//!   item.
//! - `\<` and `\>` are word boundaries in Rust and literal `<` `>` in Go. Every escaped or
//!   punctuation literal is therefore emitted as `\x{..}`, which no dialect reads otherwise.
//! - A `{` that does not start a valid repetition (`{`, `{x}`, `{,3}`, `{01}`) is a literal in
//!   Go and an error in Rust. Go caps repetition counts at 1000.
//! - Go has octal escapes (`\0`, `\012`) and `\Q...\E` quoting; Rust has neither.
//! - Go writes negated Unicode classes also as `\p{^Greek}`; Rust only as `\P{Greek}`.
//! - Go rejects what Rust accepts beyond RE2: the flags `x`, `u`, `R`, group names with
//!   characters other than `[A-Za-z0-9_]`, `\p{sc=...}`-style properties, unknown escapes.
//!
//! Capture groups are neither added nor removed, so group numbers and names are unchanged.

use std::fmt::Write as _;

use regex::{Regex, RegexBuilder};

use super::quote::Backticked;

/// Compiled-size limit for one relabel regex. Above the crate default (10 MiB) so that long
/// alternations of metric names, which Go compiles without a limit, still load.
const SIZE_LIMIT: usize = 64 << 20;

/// Go's limit on `{n,m}` counts.
const MAX_REPEAT: u32 = 1000;

/// Compiles `pattern` as Prometheus does (`^(?s:PATTERN)$`), with Go's semantics.
pub(crate) fn compile_anchored(pattern: &str) -> Result<Regex, String> {
    let body = translate(pattern)?;
    RegexBuilder::new(&format!("^(?s:{body})$"))
        .size_limit(SIZE_LIMIT)
        .build()
        .map_err(|e| match e {
            // The crate's message is a multi-line diagram of the *translated* pattern; only
            // its last line ("error: ...") means anything to the author of the Go pattern.
            regex::Error::Syntax(text) => text
                .lines()
                .last()
                .unwrap_or_default()
                .trim_start_matches("error: ")
                .to_owned(),
            other => other.to_string(),
        })
}

/// Rewrites a Go RE2 pattern into an equivalent `regex`-crate pattern (see the module docs).
///
/// Errors use Go's wording (`missing closing ]: `[a``) for what this function detects itself;
/// everything else is left for the `regex` crate to reject.
pub(crate) fn translate(pattern: &str) -> Result<String, String> {
    let mut t = Translator {
        src: pattern.chars().collect(),
        pos: 0,
        out: String::with_capacity(pattern.len() + 16),
        last_repeat: None,
    };
    t.run()?;
    Ok(t.out)
}

/// Go's `\d`, `\s`, `\w` as class items (for use inside `[...]`).
fn perl_class_items(c: char) -> &'static str {
    match c {
        'd' | 'D' => "0-9",
        's' | 'S' => r"\x{9}\x{A}\x{C}\x{D}\x{20}",
        _ => "0-9A-Za-z_",
    }
}

/// Appends `c` as a literal that means `c` to the `regex` crate inside or outside a class.
fn push_literal(out: &mut String, c: char) {
    if c.is_ascii_alphanumeric() || !c.is_ascii() {
        out.push(c);
    } else {
        // Writing to a String cannot fail.
        let _ = write!(out, "\\x{{{:X}}}", u32::from(c));
    }
}

struct Translator {
    src: Vec<char>,
    pos: usize,
    out: String,
    /// Start of the previous token when it was a repetition operator: Go rejects stacked
    /// repetitions (`a**`, `a+*`, `a{2}*`), which the `regex` crate accepts.
    last_repeat: Option<usize>,
}

impl Translator {
    fn peek(&self) -> Option<char> {
        self.src.get(self.pos).copied()
    }

    fn peek_at(&self, ahead: usize) -> Option<char> {
        self.src.get(self.pos + ahead).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        Some(c)
    }

    fn text(&self, from: usize) -> String {
        self.src[from.min(self.src.len())..self.pos.min(self.src.len())]
            .iter()
            .collect()
    }

    /// Go's error form, `code: `text``, quoting at most a few hundred bytes of the text.
    fn error(&self, code: &str, from: usize) -> String {
        format!("{code}: {}", Backticked(&self.text(from)))
    }

    fn run(&mut self) -> Result<(), String> {
        while let Some(c) = self.peek() {
            let start = self.pos;
            let mut repeat = false;
            match c {
                '\\' => self.escape()?,
                '[' => self.class()?,
                '(' => self.group()?,
                '{' => repeat = self.brace()?,
                '*' | '+' | '?' => {
                    self.pos += 1;
                    self.repetition(start)?;
                    repeat = true;
                }
                '.' | '|' | ')' | '^' | '$' => {
                    self.pos += 1;
                    self.out.push(c);
                }
                _ => {
                    self.pos += 1;
                    push_literal(&mut self.out, c);
                }
            }
            self.last_repeat = repeat.then_some(start);
        }
        Ok(())
    }

    /// Finishes a repetition operator that started at `start` and ends at `self.pos`: takes
    /// an optional `?` (non-greedy) and rejects it when it follows another repetition.
    fn repetition(&mut self, start: usize) -> Result<(), String> {
        if self.peek() == Some('?') {
            self.pos += 1;
        }
        if let Some(previous) = self.last_repeat {
            return Err(self.error("invalid nested repetition operator", previous));
        }
        let text = self.text(start);
        self.out.push_str(&text);
        Ok(())
    }

    /// An escape outside a class; `self.pos` is at the backslash.
    fn escape(&mut self) -> Result<(), String> {
        let start = self.pos;
        self.pos += 1;
        let Some(c) = self.next() else {
            return Err("trailing backslash at end of expression: ``".to_owned());
        };
        match c {
            'A' => self.out.push_str(r"\A"),
            'z' => self.out.push_str(r"\z"),
            'b' => self.out.push_str(r"(?-u:\b)"),
            'B' => self.out.push_str(r"(?-u:\B)"),
            'Q' => {
                // Literal text up to `\E` or the end of the pattern.
                while let Some(q) = self.next() {
                    if q == '\\' && self.peek() == Some('E') {
                        self.pos += 1;
                        break;
                    }
                    push_literal(&mut self.out, q);
                }
            }
            'p' | 'P' => self.unicode_class(c, start)?,
            'd' | 's' | 'w' => {
                self.out.push('[');
                self.out.push_str(perl_class_items(c));
                self.out.push(']');
            }
            'D' | 'S' | 'W' => {
                self.out.push_str("[^");
                self.out.push_str(perl_class_items(c));
                self.out.push(']');
            }
            _ => {
                let lit = self.escaped_char(c, start)?;
                push_literal(&mut self.out, lit);
            }
        }
        Ok(())
    }

    /// Go's `parseEscape` for single-character escapes; `c` follows the backslash at `start`.
    fn escaped_char(&mut self, c: char, start: usize) -> Result<char, String> {
        let invalid = |t: &Self| t.error("invalid escape sequence", start);
        match c {
            '1'..='7' if !self.peek().is_some_and(|d| d.is_digit(8)) => Err(invalid(self)),
            '0'..='7' => {
                // Octal: up to three digits in all.
                let mut value = c.to_digit(8).unwrap_or(0);
                for _ in 1..3 {
                    match self.peek().and_then(|d| d.to_digit(8)) {
                        Some(d) => {
                            value = value * 8 + d;
                            self.pos += 1;
                        }
                        None => break,
                    }
                }
                char::from_u32(value).ok_or_else(|| invalid(self))
            }
            'x' => {
                let mut value: u32 = 0;
                if self.peek() == Some('{') {
                    self.pos += 1;
                    let mut digits = 0;
                    loop {
                        match self.next() {
                            Some('}') => break,
                            Some(h) => {
                                let d = h.to_digit(16).ok_or_else(|| invalid(self))?;
                                value = value * 16 + d;
                                if value > 0x10FFFF {
                                    return Err(invalid(self));
                                }
                                digits += 1;
                            }
                            None => return Err(invalid(self)),
                        }
                    }
                    if digits == 0 {
                        return Err(invalid(self));
                    }
                } else {
                    for _ in 0..2 {
                        let d = self
                            .next()
                            .and_then(|h| h.to_digit(16))
                            .ok_or_else(|| invalid(self))?;
                        value = value * 16 + d;
                    }
                }
                char::from_u32(value).ok_or_else(|| invalid(self))
            }
            'a' => Ok('\u{7}'),
            'f' => Ok('\u{C}'),
            'n' => Ok('\n'),
            'r' => Ok('\r'),
            't' => Ok('\t'),
            'v' => Ok('\u{B}'),
            // Escaped punctuation is always itself (Go also accepts `\_`).
            c if c.is_ascii() && !c.is_ascii_alphanumeric() => Ok(c),
            _ => Err(invalid(self)),
        }
    }

    /// `\pN`, `\p{Name}`, `\p{^Name}` and the `\P` forms; `p` has been read.
    fn unicode_class(&mut self, p: char, start: usize) -> Result<(), String> {
        let mut negated = p == 'P';
        let name: String = match self.next() {
            Some('{') => {
                let mut name = String::new();
                loop {
                    match self.next() {
                        Some('}') => break,
                        Some(c) => name.push(c),
                        None => return Err(self.error("invalid character class range", start)),
                    }
                }
                if let Some(rest) = name.strip_prefix('^') {
                    negated = !negated;
                    name = rest.to_owned();
                }
                name
            }
            Some(c) => c.to_string(),
            None => return Err(self.error("invalid character class range", start)),
        };
        // Go knows only table names (`L`, `Lu`, `Greek`, `Old_Italic`, `Any`).
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(self.error("invalid character class range", start));
        }
        self.out.push_str(if negated { r"\P{" } else { r"\p{" });
        self.out.push_str(&name);
        self.out.push('}');
        Ok(())
    }

    /// A character class, parsed with Go's rules (`parseClass`); `self.pos` is at `[`.
    fn class(&mut self) -> Result<(), String> {
        let start = self.pos;
        self.pos += 1;
        self.out.push('[');
        if self.peek() == Some('^') {
            self.pos += 1;
            self.out.push('^');
        }
        let mut first = true;
        loop {
            let Some(c) = self.peek() else {
                self.pos = self.src.len();
                return Err(self.error("missing closing ]", start));
            };
            if c == ']' && !first {
                self.pos += 1;
                self.out.push(']');
                return Ok(());
            }
            first = false;
            // POSIX class `[:alpha:]` / `[:^alpha:]`; `[` is otherwise an ordinary character.
            if c == '[' && self.peek_at(1) == Some(':') {
                if let Some(len) = self.named_class_len() {
                    let item_start = self.pos;
                    self.pos += len;
                    let item = self.text(item_start);
                    let name = item[2..item.len() - 2].trim_start_matches('^');
                    if !POSIX_CLASSES.contains(&name) {
                        return Err(format!(
                            "invalid character class range: {}",
                            Backticked(&item)
                        ));
                    }
                    self.out.push_str(&item);
                    continue;
                }
            }
            if c == '\\' {
                match self.peek_at(1) {
                    Some(p @ ('p' | 'P')) => {
                        let item_start = self.pos;
                        self.pos += 2;
                        self.unicode_class(p, item_start)?;
                        continue;
                    }
                    Some(d @ ('d' | 's' | 'w')) => {
                        self.pos += 2;
                        self.out.push_str(perl_class_items(d));
                        continue;
                    }
                    Some(d @ ('D' | 'S' | 'W')) => {
                        // A negated class as a union member: Rust's nested class.
                        self.pos += 2;
                        self.out.push_str("[^");
                        self.out.push_str(perl_class_items(d));
                        self.out.push(']');
                        continue;
                    }
                    _ => {}
                }
            }
            let range_start = self.pos;
            let lo = self.class_char()?;
            // `a-z` is a range; `a-]` is `a` and `-`.
            if self.peek() == Some('-') && self.peek_at(1).is_some_and(|n| n != ']') {
                self.pos += 1;
                let hi = self.class_char()?;
                if hi < lo {
                    return Err(self.error("invalid character class range", range_start));
                }
                push_literal(&mut self.out, lo);
                self.out.push('-');
                push_literal(&mut self.out, hi);
            } else {
                push_literal(&mut self.out, lo);
            }
        }
    }

    /// Length of a `[:name:]` item at `self.pos`. Like Go, looks for the next `:]` anywhere
    /// in the rest of the pattern; none means `[` is an ordinary character.
    fn named_class_len(&self) -> Option<usize> {
        let rest = &self.src[self.pos + 2..];
        rest.windows(2).position(|w| w == [':', ']']).map(|i| i + 4)
    }

    /// One character inside a class: raw, or an escape.
    fn class_char(&mut self) -> Result<char, String> {
        let start = self.pos;
        match self.next() {
            Some('\\') => match self.next() {
                Some(c) => self.escaped_char(c, start),
                None => Err("trailing backslash at end of expression: ``".to_owned()),
            },
            Some(c) => Ok(c),
            None => Err(self.error("missing closing ]", start)),
        }
    }

    /// `(`, `(?:`, `(?flags)`, `(?flags:`, `(?P<name>`, `(?<name>`; `self.pos` is at `(`.
    fn group(&mut self) -> Result<(), String> {
        let start = self.pos;
        self.pos += 1;
        self.out.push('(');
        if self.peek() != Some('?') {
            return Ok(());
        }
        self.pos += 1;
        self.out.push('?');
        let named = if self.peek() == Some('<') {
            self.pos += 1;
            true
        } else if self.peek() == Some('P') && self.peek_at(1) == Some('<') {
            self.pos += 2;
            true
        } else {
            false
        };
        if named {
            let mut name = String::new();
            loop {
                match self.next() {
                    Some('>') => break,
                    Some(c) => name.push(c),
                    None => return Err(self.error("invalid named capture", start)),
                }
            }
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(self.error("invalid named capture", start));
            }
            self.out.push_str("P<");
            self.out.push_str(&name);
            self.out.push('>');
            return Ok(());
        }
        // Flags up to `:` or `)`; the regex crate checks their arrangement, Go's set is smaller.
        while let Some(c) = self.peek() {
            match c {
                ':' => {
                    self.pos += 1;
                    self.out.push(':');
                    return Ok(());
                }
                ')' => return Ok(()),
                'i' | 'm' | 's' | 'U' | '-' => {
                    self.pos += 1;
                    self.out.push(c);
                }
                _ => {
                    self.pos += 1;
                    return Err(self.error("invalid or unsupported Perl syntax", start));
                }
            }
        }
        Err(self.error("missing closing )", start))
    }

    /// `{`: a repetition `{n}`, `{n,}`, `{n,m}` if it parses as one in Go, else a literal.
    /// Returns whether it was a repetition.
    fn brace(&mut self) -> Result<bool, String> {
        let start = self.pos;
        let Some((min, max, len)) = self.repeat_at(start) else {
            self.pos += 1;
            push_literal(&mut self.out, '{');
            return Ok(false);
        };
        self.pos += len;
        let too_big = |n: u32| n > MAX_REPEAT;
        if too_big(min) || max.is_some_and(|m| too_big(m) || m < min) {
            return Err(self.error("invalid repeat count", start));
        }
        self.repetition(start)?;
        Ok(true)
    }

    /// Go's `parseRepeat`: `{` digits [`,` [digits]] `}`, no leading zeros. Returns
    /// (min, max (None = unbounded), length in chars). Oversized numbers saturate.
    fn repeat_at(&self, at: usize) -> Option<(u32, Option<u32>, usize)> {
        let mut i = at + 1;
        let int = |i: &mut usize| -> Option<u32> {
            let begin = *i;
            while self.src.get(*i).is_some_and(char::is_ascii_digit) {
                *i += 1;
            }
            let digits = &self.src[begin..*i];
            if digits.is_empty() || (digits.len() > 1 && digits[0] == '0') {
                return None;
            }
            Some(digits.iter().fold(0u32, |n, d| {
                n.saturating_mul(10)
                    .saturating_add(d.to_digit(10).unwrap_or(0))
            }))
        };
        let min = int(&mut i)?;
        let max = match self.src.get(i)? {
            ',' => {
                i += 1;
                if *self.src.get(i)? == '}' {
                    None
                } else {
                    Some(int(&mut i)?)
                }
            }
            _ => Some(min),
        };
        (*self.src.get(i)? == '}').then_some((min, max, i + 1 - at))
    }
}

/// The POSIX class names Go accepts inside `[...]`; the `regex` crate has the same set.
const POSIX_CLASSES: [&str; 14] = [
    "alnum", "alpha", "ascii", "blank", "cntrl", "digit", "graph", "lower", "print", "punct",
    "space", "upper", "word", "xdigit",
];

#[cfg(test)]
mod tests {
    use super::*;

    fn matches(pattern: &str, input: &str) -> bool {
        compile_anchored(pattern)
            .unwrap_or_else(|e| panic!("{pattern}: {e}"))
            .is_match(input)
    }

    fn err(pattern: &str) -> String {
        compile_anchored(pattern).unwrap_err()
    }

    #[test]
    fn plain_patterns_pass_through() {
        assert!(matches("a*?b+?c??d{1,2}?", "aabbd"));
        assert!(matches("(a*)*", "aa")); // a group resets the stacking check
        assert_eq!(translate("foo.*|ba(r|z)+?$").unwrap(), "foo.*|ba(r|z)+?$");
        assert_eq!(
            translate("(?i:Ab)(?P<x>c)(?<y>d)").unwrap(),
            "(?i:Ab)(?P<x>c)(?P<y>d)"
        );
        assert_eq!(translate("a{2,3}b{2}c{2,}").unwrap(), "a{2,3}b{2}c{2,}");
    }

    #[test]
    fn anchored_and_dot_matches_newline() {
        assert!(matches("foo", "foo"));
        assert!(!matches("foo", "foobar"));
        assert!(!matches("foo", "xfoo"));
        assert!(matches("a|b", "b"));
        assert!(!matches("a|b", "ab"));
        assert!(matches("a.*", "a\nb"));
        assert!(matches("", ""));
        assert!(!matches("", "x"));
    }

    #[test]
    fn perl_classes_are_ascii_like_go() {
        assert!(matches(r"\d+", "0129"));
        assert!(!matches(r"\d", "٣")); // Arabic-Indic digit three: \d in Rust, not in Go
        assert!(matches(r"\D", "٣"));
        assert!(!matches(r"\w", "é"));
        assert!(matches(r"\W", "é"));
        assert!(matches(r"\w+", "az_AZ09"));
        assert!(!matches(r"\s", "\u{B}")); // Go's \s has no \v
        assert!(!matches(r"\s", "\u{A0}"));
        assert!(matches(r"\s+", " \t\n\r\u{C}"));
        assert!(matches(r"\S", "\u{B}"));
        assert!(matches(r"[\d]", "5") && !matches(r"[\d]", "٣"));
        assert!(matches(r"[^\d]", "٣") && !matches(r"[^\d]", "5"));
        assert!(matches(r"[\D]", "x") && !matches(r"[\D]", "5"));
        assert!(matches(r"[^\D]", "5") && !matches(r"[^\D]", "x"));
        assert!(matches(r"[\w.]+", "a.b_c") && !matches(r"[\w.]+", "é"));
        assert!(matches(r"[\W]", "é"));
        assert!(matches(r"[\s]", "\u{C}") && !matches(r"[\s]", "\u{B}"));
        assert!(matches(r"[\S]", "\u{B}"));
        // Under (?i) Go folds \w, so the Kelvin sign and long s are word characters.
        assert!(matches(r"(?i)\w", "\u{212A}"));
        assert!(!matches(r"\w", "\u{212A}"));
    }

    #[test]
    fn word_boundaries_are_ascii_like_go() {
        assert!(matches(r".*\bb\b.*", "a b c"));
        assert!(!matches(r".*\bb.*", "ab"));
        // 'é' is not a word character for Go's \b, so there is a boundary between é and b.
        assert!(matches(r"é\bb", "éb"));
        assert!(matches(r"a\Bb", "ab"));
    }

    #[test]
    fn class_syntax_follows_go() {
        assert!(matches(r"[[]", "["));
        assert!(matches(r"[]a]+", "]a"));
        assert!(matches(r"[^]a]", "b") && !matches(r"[^]a]", "]"));
        assert!(matches(r"[a&&b]", "&"));
        assert!(matches(r"[a~~b]", "~"));
        assert!(matches(r"[+--]", ",")); // range + .. -
        assert!(matches(r"[--/]", ".")); // range - .. /
        assert!(matches(r"[a-]", "-"));
        assert!(matches(r"[-a]", "-"));
        assert!(matches(r"[a-c-e]", "-") && !matches(r"[a-c-e]", "d"));
        assert!(matches(r"[\]]", "]"));
        assert!(matches(r"[\-]", "-"));
        assert!(matches(r"[\x41-\x{43}]", "B"));
        assert!(matches(r"[\101]", "A"));
        assert!(matches(r"[[:alpha:]]+", "abZ") && !matches(r"[[:alpha:]]", "é"));
        assert!(matches(r"[[:^digit:]x]", "a"));
        assert!(matches(r"[\p{Greek}]", "α"));
        assert!(matches(r"[^\p{Greek}]", "a"));
        assert!(matches(r"[\P{^Greek}]", "α"));
        assert!(matches(r"[[:a]", ":")); // no ":]" later: '[' ':' 'a' are characters
        assert!(matches(r"[^\n]", "x") && !matches(r"[^\n]", "\n"));
        assert!(matches(r"[^a]", "\n")); // Go's Perl flags include ClassNL
    }

    #[test]
    fn escapes_follow_go() {
        assert!(matches(r"\<a\>", "<a>")); // word boundaries in Rust, literals in Go
        assert!(matches(r"\_\ \#\&\~\-", "_ #&~-"));
        assert!(matches(r"\0", "\0"));
        assert!(matches(r"\101\1012", "AA2"));
        assert!(matches(r"\x41\x{1F600}", "A😀"));
        assert!(matches(r"\a\f\t\n\r\v", "\u{7}\u{C}\t\n\r\u{B}"));
        assert!(matches(r"\Qa.b*\E+", "a.b**"));
        assert!(matches(r"\Qa.b", "a.b"));
        assert!(matches(r"\pL\p{Lu}\PL", "aB1"));
        assert!(matches(r"\p{^Greek}", "a") && !matches(r"\p{^Greek}", "α"));
        assert!(matches(r"\P{^Greek}", "α"));
        assert!(matches(r"\Aa\z", "a"));
        assert!(matches(r"a#b c", "a#b c"));
        assert!(matches(r"a]b}", "a]b}"));
    }

    #[test]
    fn braces_that_are_not_repetitions_are_literals() {
        assert!(matches(r"a{b}", "a{b}"));
        assert!(matches(r"a{", "a{"));
        assert!(matches(r"a{,3}", "a{,3}"));
        assert!(matches(r"a{01}", "a{01}"));
        assert!(matches(r"a{1,2x}", "a{1,2x}"));
        assert!(matches(r"a\b{start}", "a{start}"));
        assert!(matches(r"a{2}", "aa") && !matches(r"a{2}", "a"));
        assert!(matches(r"a{1000}", &"a".repeat(1000)));
    }

    #[test]
    fn case_insensitive_flags() {
        assert!(matches(r"(?i)foo", "FoO"));
        assert!(matches(r"(?i)k", "\u{212A}")); // Go folds with Unicode simple folding too
        assert!(matches(r"(?i)\x4B", "k"));
        assert!(matches(r"(?i:a)b", "Ab") && !matches(r"(?i:a)b", "AB"));
        assert!(matches(r"(?U)a+", "aa"));
        assert!(matches(r"(?m)a$", "a"));
    }

    #[test]
    fn prometheus_anchor_quirk_is_kept() {
        // Prometheus wraps the pattern as `^(?s:PATTERN)$` without checking the parentheses,
        // so "a)|(b" yields `^(?s:a)|(b)$`: "a" anchored at the start, or "b" at the end.
        assert!(matches("a)|(b", "a"));
        assert!(matches("a)|(b", "b"));
    }

    #[test]
    fn errors_use_go_wording() {
        assert_eq!(err("[a"), "missing closing ]: `[a`");
        assert_eq!(err("[]"), "missing closing ]: `[]`");
        assert_eq!(err("a\\"), "trailing backslash at end of expression: ``");
        assert_eq!(err(r"\C"), r"invalid escape sequence: `\C`");
        assert_eq!(err(r"\e"), r"invalid escape sequence: `\e`");
        assert_eq!(err(r"\1"), r"invalid escape sequence: `\1`");
        assert_eq!(err(r"\x4"), r"invalid escape sequence: `\x4`");
        assert_eq!(err(r"\x{}"), r"invalid escape sequence: `\x{}`");
        assert_eq!(err(r"\x{110000}"), r"invalid escape sequence: `\x{110000`");
        assert_eq!(err(r"\é"), r"invalid escape sequence: `\é`");
        assert_eq!(err(r"[z-a]"), "invalid character class range: `z-a`");
        assert_eq!(
            err(r"[[:foo:]]"),
            "invalid character class range: `[:foo:]`"
        );
        assert_eq!(
            err(r"\p{sc=Greek}"),
            r"invalid character class range: `\p{sc=Greek}`"
        );
        assert_eq!(err(r"a{1001}"), "invalid repeat count: `{1001}`");
        assert_eq!(err(r"a{2,1}"), "invalid repeat count: `{2,1}`");
        assert_eq!(err(r"a{0,1001}"), "invalid repeat count: `{0,1001}`");
        assert_eq!(err(r"(?x)a"), "invalid or unsupported Perl syntax: `(?x`");
        assert_eq!(err(r"(?u)a"), "invalid or unsupported Perl syntax: `(?u`");
        assert_eq!(err(r"(?P<a.b>x)"), "invalid named capture: `(?P<a.b>`");
        assert_eq!(err(r"(?P<>x)"), "invalid named capture: `(?P<>`");
        assert_eq!(err("a**"), "invalid nested repetition operator: `**`");
        assert_eq!(err("a+*"), "invalid nested repetition operator: `+*`");
        assert_eq!(err("a*?+"), "invalid nested repetition operator: `*?+`");
        assert_eq!(err("a{2}*"), "invalid nested repetition operator: `{2}*`");
        assert_eq!(err("a*{2}"), "invalid nested repetition operator: `*{2}`");
        // Left to the regex crate:
        assert_eq!(err("(a"), "unclosed group");
        assert_eq!(err("*a"), "repetition operator missing expression");
    }

    #[test]
    fn groups_are_kept() {
        let re = compile_anchored(r"(a)(?:b)(?P<n>\d)(?i)([[:alpha:]])").unwrap();
        assert_eq!(re.captures_len(), 4);
        let names: Vec<_> = re.capture_names().collect();
        assert_eq!(names, [None, None, Some("n"), None]);
    }
}
