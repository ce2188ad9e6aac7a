//! A relabel regex with regex-free fast paths for the shapes most configurations use.
//!
//! Relabel regexes are fully anchored, so many are plain string tests: `foo` is equality,
//! `foo|bar` membership, `foo.*` a prefix test, `.*foo` a suffix test, `.*foo.*` a substring
//! test, `.*` always true (under Prometheus' `(?s:...)` the dot matches newlines too). A
//! pattern made only of such alternatives, optionally wrapped in one `(...)` or `(?:...)`, is
//! matched without the regex engine. Anything else — classes, other quantifiers, flags such as
//! `(?i)` — uses the regex.
//!
//! The fast path is derived from the pattern text by a deliberately small parser; the tests
//! check it against the regex on chosen and on generated patterns.

use std::fmt;
use std::sync::Arc;

use hashbrown::HashSet;
use regex::{CaptureLocations, Regex};

use super::goregex;

/// From this many literal alternatives on, membership is a hash lookup, not a scan.
const SET_THRESHOLD: usize = 8;

/// A compiled relabel regex. Cloning is cheap and shares the compiled parts (the regex's
/// program, the fast path's literals), so rules with the same pattern share one compilation.
#[derive(Clone)]
pub(crate) struct Matcher {
    pattern: Arc<str>,
    regex: Regex,
    fast: Option<Fast>,
    /// How many leading groups span the whole match: 1 (group 0), or 2 when a fast pattern is
    /// wrapped in a capturing `(...)`.
    whole_groups: usize,
}

/// A regex-free equivalent of the pattern.
#[derive(Debug, Clone)]
enum Fast {
    Any(Arc<[Branch]>),
    Set(Arc<HashSet<Box<str>, foldhash::fast::RandomState>>),
}

/// One alternative of a fast pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Branch {
    /// `.*`
    Everything,
    /// `lit`
    Exact(Box<str>),
    /// `lit.*`
    Prefix(Box<str>),
    /// `.*lit`
    Suffix(Box<str>),
    /// `.*lit.*`
    Contains(Box<str>),
}

impl Branch {
    fn is_match(&self, s: &str) -> bool {
        match self {
            Branch::Everything => true,
            Branch::Exact(lit) => s == &**lit,
            Branch::Prefix(lit) => s.starts_with(&**lit),
            Branch::Suffix(lit) => s.ends_with(&**lit),
            Branch::Contains(lit) => s.contains(&**lit),
        }
    }
}

/// The groups of a match: from the regex, or (fast path) every group is the whole input.
pub(crate) enum Groups<'a> {
    Whole { len: usize, count: usize },
    Regex(&'a CaptureLocations),
}

impl Groups<'_> {
    /// Byte range of group `i`, `None` when it did not participate or does not exist.
    pub(crate) fn get(&self, i: usize) -> Option<(usize, usize)> {
        match self {
            Groups::Whole { len, count } => (i < *count).then_some((0, *len)),
            Groups::Regex(locs) => locs.get(i),
        }
    }
}

impl Matcher {
    /// Compiles a Go RE2 `pattern` with Prometheus' anchoring.
    pub(crate) fn new(pattern: &str) -> Result<Matcher, String> {
        let regex = goregex::compile_anchored(pattern)?;
        let (fast, capturing_wrapper) = match parse_fast(pattern) {
            Some((branches, capturing)) => (Some(Fast::from_branches(branches)), capturing),
            None => (None, false),
        };
        let whole_groups = 1 + usize::from(capturing_wrapper);
        // The fast parser admits no group but the wrapper; the regex must agree.
        let fast = fast.filter(|_| regex.captures_len() == whole_groups);
        Ok(Matcher {
            pattern: pattern.into(),
            regex,
            fast,
            whole_groups,
        })
    }

    /// The compiled regex (anchored, Go semantics).
    pub(crate) fn regex(&self) -> &Regex {
        &self.regex
    }

    /// True when `other` is a clone of this matcher (shares its compilation).
    #[cfg(test)]
    pub(crate) fn shares_compilation_with(&self, other: &Matcher) -> bool {
        Arc::ptr_eq(&self.pattern, &other.pattern)
    }

    /// True when matching never runs the regex.
    #[cfg(test)]
    pub(crate) fn is_fast(&self) -> bool {
        self.fast.is_some()
    }

    /// The fast-path answer: `Some(matched)`, or `None` when the regex must decide.
    #[inline]
    pub(crate) fn fast_match(&self, s: &str) -> Option<bool> {
        match self.fast.as_ref()? {
            Fast::Any(branches) => Some(branches.iter().any(|b| b.is_match(s))),
            Fast::Set(set) => Some(set.contains(s)),
        }
    }

    /// Matches `s`, by the fast path when there is one.
    #[cfg(test)]
    pub(crate) fn is_match(&self, s: &str) -> bool {
        self.fast_match(s).unwrap_or_else(|| self.regex.is_match(s))
    }

    /// For a fast pattern, the groups of a match without running the regex: every group of a
    /// fast pattern (group 0 and the optional wrapper) spans the whole input. `None` when the
    /// pattern has no fast path.
    #[inline]
    pub(crate) fn fast_groups(&self, s: &str) -> Option<Option<Groups<'static>>> {
        let matched = self.fast_match(s)?;
        Some(matched.then_some(Groups::Whole {
            len: s.len(),
            count: self.whole_groups,
        }))
    }
}

impl fmt::Debug for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Matcher")
            .field("pattern", &self.pattern)
            .field("fast", &self.fast.is_some())
            .finish()
    }
}

impl Fast {
    fn from_branches(branches: Vec<Branch>) -> Fast {
        let all_exact = branches.iter().all(|b| matches!(b, Branch::Exact(_)));
        if all_exact && branches.len() >= SET_THRESHOLD {
            let set = branches
                .into_iter()
                .filter_map(|b| match b {
                    Branch::Exact(lit) => Some(lit),
                    _ => None,
                })
                .collect();
            Fast::Set(Arc::new(set))
        } else {
            Fast::Any(branches.into())
        }
    }
}

/// Parses `pattern` as alternatives of [`Branch`] shapes, optionally wrapped in one group.
/// Returns the branches and whether the wrapper captures, or `None` for any other pattern.
fn parse_fast(pattern: &str) -> Option<(Vec<Branch>, bool)> {
    let (inner, capturing) = if let Some(inner) = pattern
        .strip_prefix("(?:")
        .and_then(|p| p.strip_suffix(')'))
    {
        (inner, false)
    } else if let Some(inner) = pattern
        .strip_prefix('(')
        .filter(|p| !p.starts_with('?'))
        .and_then(|p| p.strip_suffix(')'))
    {
        (inner, true)
    } else {
        (pattern, false)
    };
    // After stripping, any parenthesis left makes a branch fail to parse: "(a)|(b)" is
    // rejected rather than misread as "a)|(b".
    let branches = split_alternatives(inner)
        .into_iter()
        .map(parse_branch)
        .collect::<Option<Vec<_>>>()?;
    Some((branches, capturing))
}

/// Splits on `|` that is not escaped.
fn split_alternatives(s: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '|' => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

/// Parses `[.*] literal [.*]`, where the literal is plain characters and escaped ASCII
/// punctuation.
fn parse_branch(s: &str) -> Option<Branch> {
    let mut literal = String::new();
    let mut leading = false;
    let mut trailing = false;
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '.' => {
                if chars.next() != Some('*')
                    || matches!(chars.peek(), Some('*' | '+' | '?' | '{'))
                    || trailing
                {
                    return None;
                }
                if literal.is_empty() && !leading {
                    leading = true;
                } else {
                    trailing = true;
                }
            }
            '\\' => {
                let escaped = chars.next()?;
                if trailing || !escaped.is_ascii() || escaped.is_ascii_alphanumeric() {
                    return None;
                }
                literal.push(escaped);
            }
            '+' | '*' | '?' | '(' | ')' | '[' | ']' | '{' | '}' | '^' | '$' | '|' => return None,
            _ => {
                if trailing {
                    return None;
                }
                literal.push(c);
            }
        }
    }
    let literal: Box<str> = literal.into();
    Some(match (leading, trailing) {
        (false, false) => Branch::Exact(literal),
        _ if literal.is_empty() => Branch::Everything,
        (false, true) => Branch::Prefix(literal),
        (true, false) => Branch::Suffix(literal),
        (true, true) => Branch::Contains(literal),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn branches(pattern: &str) -> Option<Vec<Branch>> {
        parse_fast(pattern).map(|(b, _)| b)
    }

    #[test]
    fn recognised_shapes() {
        use Branch::*;
        let lit = |s: &str| -> Box<str> { s.into() };
        assert_eq!(branches("foo"), Some(vec![Exact(lit("foo"))]));
        assert_eq!(branches(""), Some(vec![Exact(lit(""))]));
        assert_eq!(branches(".*"), Some(vec![Everything]));
        assert_eq!(branches("(.*)"), Some(vec![Everything]));
        assert_eq!(branches(".*.*"), Some(vec![Everything]));
        assert_eq!(branches("go_.*"), Some(vec![Prefix(lit("go_"))]));
        assert_eq!(branches(".*_total"), Some(vec![Suffix(lit("_total"))]));
        assert_eq!(branches(".*err.*"), Some(vec![Contains(lit("err"))]));
        assert_eq!(
            branches("(?:a|b\\.c|d.*|)"),
            Some(vec![
                Exact(lit("a")),
                Exact(lit("b.c")),
                Prefix(lit("d")),
                Exact(lit(""))
            ])
        );
        assert_eq!(branches(r"a\|b"), Some(vec![Exact(lit("a|b"))]));
        assert_eq!(branches(r"a\\"), Some(vec![Exact(lit("a\\"))]));
        assert_eq!(branches("a b-c/d:e"), Some(vec![Exact(lit("a b-c/d:e"))]));
    }

    #[test]
    fn other_shapes_use_the_regex() {
        for p in [
            "a.*b", ".", ".+", "a*", ".*?", "a?", "(a)|(b)", "(?i)a", "(?i:a)", "[ab]", "a{2}",
            r"\d", r"\.*", "^a", "a$", "(?P<x>a)", "((a))", r"\é", "a)|(b", ".*.*.*",
        ] {
            assert_eq!(branches(p), None, "{p}");
            assert!(
                !Matcher::new(p).map(|m| m.is_fast()).unwrap_or(false),
                "{p}"
            );
        }
    }

    #[test]
    fn wrapper_group_counts() {
        let m = Matcher::new("(.*)").unwrap();
        assert!(m.is_fast());
        let Some(Some(g)) = m.fast_groups("abc") else {
            panic!()
        };
        assert_eq!(
            (g.get(0), g.get(1), g.get(2)),
            (Some((0, 3)), Some((0, 3)), None)
        );
        let m = Matcher::new("(?:a|b)").unwrap();
        let Some(Some(g)) = m.fast_groups("a") else {
            panic!()
        };
        assert_eq!((g.get(0), g.get(1)), (Some((0, 1)), None));
        assert!(matches!(m.fast_groups("c"), Some(None)));
        assert!(Matcher::new("a(b)").unwrap().fast_groups("ab").is_none());
    }

    #[test]
    fn large_literal_alternations_use_a_set() {
        let names: Vec<String> = (0..20).map(|i| format!("metric_{i}")).collect();
        let m = Matcher::new(&names.join("|")).unwrap();
        assert!(matches!(m.fast, Some(Fast::Set(_))));
        assert!(m.is_match("metric_7") && !m.is_match("metric_70") && !m.is_match("metric_"));
    }

    /// Fast path and regex agree on hand-picked tricky inputs.
    #[test]
    fn fast_path_equals_regex() {
        let patterns = [
            "foo",
            "",
            ".*",
            "(.*)",
            "go_.*",
            ".*_total",
            ".*err.*",
            "a|b|",
            "(?:x.*|.*y)",
            r"a\.b",
            r"\_x",
            "é.*",
            ".*\n",
            "a b",
            "m0|m1|m2|m3|m4|m5|m6|m7|m8|m9",
        ];
        let inputs = [
            "", "foo", "foobar", "xfoo", "go_", "go_x", "x_total", "_total", "err", "an error",
            "a", "b", "ab", "x\ny", "a.b", "axb", "_x", "é", "éa", "\n", "a b", "m3", "m10",
        ];
        for p in patterns {
            let m = Matcher::new(p).unwrap();
            assert!(m.is_fast(), "{p}");
            for s in inputs {
                assert_eq!(
                    m.fast_match(s),
                    Some(m.regex().is_match(s)),
                    "{p:?} on {s:?}"
                );
            }
        }
    }

    fn token() -> impl Strategy<Value = &'static str> {
        prop::sample::select(vec![
            "a", "b", "ab", ".*", "|", "\\.", "\\|", ".", "(", ")", "(?:", "*", "é", "\n", "",
        ])
    }

    proptest! {
        /// Whenever a generated pattern takes the fast path, it agrees with the regex.
        #[test]
        fn generated_fast_paths_equal_regex(
            tokens in prop::collection::vec(token(), 0..7),
            inputs in prop::collection::vec("[ab.|é\n]{0,6}", 1..8),
        ) {
            let pattern: String = tokens.concat();
            if let Ok(m) = Matcher::new(&pattern) {
                for s in &inputs {
                    if let Some(fast) = m.fast_match(s) {
                        prop_assert_eq!(fast, m.regex().is_match(s), "{:?} on {:?}", pattern, s);
                    }
                }
            }
        }
    }
}
