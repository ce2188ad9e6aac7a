//! `$1`-style templates with Go's `Regexp.Expand` semantics, for `replacement` and a templated
//! `target_label`.
//!
//! Go's rules, which the `regex` crate's `Captures::expand` does not all share:
//! - `$$` is a literal `$`.
//! - `$name` takes the longest run of letters, digits (Unicode `L` and `Nd`) and `_`: `$1x` is
//!   the group *named* `1x` (so usually empty), `${1}x` is group 1 then `x`.
//! - A name of decimal digits without a leading zero is a group number: `$01` is the group
//!   named `01`, not group 1 (the `regex` crate reads it as group 1).
//! - An unknown group, a group that did not participate, or a number past the last group
//!   expands to nothing.
//! - A `$` that starts no valid reference (`$`, `$-`, `${}`, `${1`) is kept literally.
//!
//! Templates are parsed once, when the rule is compiled, into literal text and group indices,
//! so expanding one is a few `push_str` calls.

use std::sync::LazyLock;

use regex::Regex;

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template {
    parts: Box<[Part]>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(Box<str>),
    /// A capture group index.
    Group(usize),
}

impl Template {
    /// Parses `template` for a regex whose groups are named by `group_names` (index 0 is the
    /// whole match, as from `Regex::capture_names`).
    pub(crate) fn parse(template: &str, group_names: &[Option<&str>]) -> Template {
        let mut parts = Vec::new();
        let mut text = String::new();
        let mut rest = template;
        while let Some(dollar) = rest.find('$') {
            text.push_str(&rest[..dollar]);
            rest = &rest[dollar + 1..];
            if let Some(after) = rest.strip_prefix('$') {
                text.push('$');
                rest = after;
                continue;
            }
            let Some((name, after)) = reference(rest) else {
                text.push('$');
                continue;
            };
            rest = after;
            // References to groups that do not exist expand to nothing: drop them.
            if let Some(index) = group_index(name, group_names) {
                if !text.is_empty() {
                    parts.push(Part::Text(std::mem::take(&mut text).into()));
                }
                parts.push(Part::Group(index));
            }
        }
        text.push_str(rest);
        if !text.is_empty() {
            parts.push(Part::Text(text.into()));
        }
        Template {
            parts: parts.into(),
        }
    }

    /// The expansion when it does not depend on the match (no group references).
    pub(crate) fn as_literal(&self) -> Option<&str> {
        match &*self.parts {
            [] => Some(""),
            [Part::Text(text)] => Some(text),
            _ => None,
        }
    }

    /// Appends the expansion to `out`. `group(i)` gives the byte range of group `i` in
    /// `input`, or `None` when it did not participate.
    pub(crate) fn expand(
        &self,
        input: &str,
        group: impl Fn(usize) -> Option<(usize, usize)>,
        out: &mut String,
    ) {
        for part in &*self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Group(i) => {
                    if let Some(text) = group(*i).and_then(|(s, e)| input.get(s..e)) {
                        out.push_str(text);
                    }
                }
            }
        }
    }
}

/// Go's `extract`: the name of the reference at the start of `s` (just after `$`) and the text
/// after it, or `None` when there is no valid reference.
fn reference(s: &str) -> Option<(&str, &str)> {
    static NAME: LazyLock<Option<Regex>> = LazyLock::new(|| Regex::new(r"\A[\p{L}\p{Nd}_]+").ok());
    let (braced, body) = match s.strip_prefix('{') {
        Some(body) => (true, body),
        None => (false, s),
    };
    let len = NAME.as_ref()?.find(body)?.end();
    let (name, after) = body.split_at(len);
    if braced {
        Some((name, after.strip_prefix('}')?))
    } else {
        Some((name, after))
    }
}

/// The group a reference names: a number (decimal, no leading zero) or a group name.
fn group_index(name: &str, group_names: &[Option<&str>]) -> Option<usize> {
    let numeric =
        name.bytes().all(|b| b.is_ascii_digit()) && !(name.len() > 1 && name.starts_with('0'));
    if numeric {
        // Saturates on absurd numbers, which are past the last group either way.
        let n = name.bytes().fold(0usize, |n, d| {
            n.saturating_mul(10).saturating_add(usize::from(d - b'0'))
        });
        (n < group_names.len()).then_some(n)
    } else {
        group_names.iter().position(|g| *g == Some(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Expands `template` against `regex` (anchored like Prometheus) matched on `input`.
    fn expand(regex: &str, template: &str, input: &str) -> String {
        let re = super::super::goregex::compile_anchored(regex).unwrap();
        let names: Vec<_> = re.capture_names().collect();
        let t = Template::parse(template, &names);
        let mut locs = re.capture_locations();
        assert!(
            re.captures_read(&mut locs, input).is_some(),
            "{regex} !~ {input}"
        );
        let mut out = String::new();
        t.expand(input, |i| locs.get(i), &mut out);
        out
    }

    #[test]
    fn numbered_and_braced_references() {
        assert_eq!(expand("(a+)-(b+)", "$2:$1", "aa-b"), "b:aa");
        assert_eq!(expand("(a+)-(b+)", "${2}x${1}", "aa-b"), "bxaa");
        assert_eq!(expand("(a+)-(b+)", "$0", "aa-b"), "aa-b");
        assert_eq!(expand("(a+)-(b+)", "[$1]", "aa-b"), "[aa]");
    }

    #[test]
    fn names_run_as_far_as_letters_digits_and_underscore() {
        // `$1x` is the group named "1x", which does not exist: empty.
        assert_eq!(expand("(a)", "$1x", "a"), "");
        assert_eq!(expand("(a)", "${1}x", "a"), "ax");
        assert_eq!(expand("(a)", "$1_", "a"), "");
        assert_eq!(expand("(a)", "$1.x", "a"), "a.x");
        assert_eq!(expand("(a)", "$1é", "a"), ""); // é is a letter: group "1é"
        assert_eq!(expand("(a)", "$1-$1", "a"), "a-a");
    }

    #[test]
    fn named_groups() {
        assert_eq!(expand("(?P<k>a)(?<v>b)", "$v=$k", "ab"), "b=a");
        assert_eq!(expand("(?P<k>a)(?<v>b)", "${k}_$2", "ab"), "a_b");
        assert_eq!(expand("(?P<k>a)", "$missing!", "a"), "!");
    }

    #[test]
    fn dollar_dollar_and_malformed_references() {
        assert_eq!(expand("(a)", "$$1", "a"), "$1");
        assert_eq!(expand("(a)", "$$$1", "a"), "$a");
        assert_eq!(expand("(a)", "cost: $", "a"), "cost: $");
        assert_eq!(expand("(a)", "$-1", "a"), "$-1");
        assert_eq!(expand("(a)", "${}", "a"), "${}");
        assert_eq!(expand("(a)", "${1", "a"), "${1");
        assert_eq!(expand("(a)", "${1-}", "a"), "${1-}");
    }

    #[test]
    fn missing_and_non_participating_groups_are_empty() {
        assert_eq!(expand("(a)", "<$2>", "a"), "<>");
        assert_eq!(expand("(a)|(b)", "<$1|$2>", "b"), "<|b>");
        assert_eq!(expand("(a)", "$99999999999999999999999", "a"), "");
        // A leading zero makes a name, not a number ($01 is group 1 for the regex crate).
        assert_eq!(expand("(a)", "$01", "a"), "");
        assert_eq!(expand("(a)", "$00", "a"), "");
    }

    #[test]
    fn literal_templates() {
        assert_eq!(Template::parse("abc", &[None]).as_literal(), Some("abc"));
        assert_eq!(Template::parse("", &[None]).as_literal(), Some(""));
        assert_eq!(Template::parse("a$$b", &[None]).as_literal(), Some("a$b"));
        assert_eq!(
            Template::parse("a$9b", &[None, None]).as_literal(),
            Some("a")
        );
        assert_eq!(Template::parse("a$1", &[None, None]).as_literal(), None);
    }
}
