//! The label block `{name="value",...}` of a sample line.
//!
//! # One decision, two paths
//!
//! A block first follows the remembered label layouts (`layout_cache.rs`): while each label
//! starts with the `name="` the layout expects at that place, its name is known valid and
//! distinct, and only its value is scanned. The first label that matches no layout hands the
//! rest of the block to the general path, which never hands it back: names are checked against
//! the name charset, quoted names and `__name__` are accepted, blanks are allowed between all
//! tokens, and duplicates are looked for. Whichever path reaches the closing `}`, the line then
//! gets its layout id ([`super::Sample::layout`]) or, if it followed none, its names may become
//! a new layout.
//!
//! Guarantee: the two paths accept the same lines with the same labels and the same errors, so
//! a parser warmed by earlier lines answers exactly as a fresh one (`tests.rs` checks this over
//! random lines). That holds because the layouts hold plain names only, and a label set that
//! matched a layout throughout has exactly that layout's distinct names.
//!
//! Syntax (as Prometheus' `promparse` reads it): a trailing comma, `{}`, and a missing comma
//! between two labels are accepted; a quoted string followed by `,` or `}` is the metric name
//! (the Prometheus 3 form `{"my.metric", "label.x"="v"}`), and so is the value of `__name__`.

use super::line::LineState;
use super::name_index::NameIndex;
use super::piece::{LabelSpan, Piece};
use super::quoted::quoted;
use super::scan::{has_class, is_ws, scan_class, skip_ws, LABEL_CHAR, LABEL_START};
use super::{ParseError, ParseErrorKind};

/// How far the labels of a block followed the remembered layouts.
enum Walk {
    /// Every label matched, through the closing `}`: parsing continues at `end`, and `slot` is
    /// the layout the labels followed last. `plain`: the labels stand as rendering writes them
    /// (see [`LineState::plain_block`]).
    Closed {
        end: usize,
        slot: usize,
        plain: bool,
    },
    /// The label at this index matched no layout; the labels before it are in `spans`.
    Left(usize),
}

/// Where the label loop goes after a value.
enum Step {
    /// Parse the next label from this index.
    Next(usize),
    /// The label set closed; parsing continues at this index.
    Close(usize),
}

/// What the general path found where a label name belongs.
enum Name {
    /// A label name written at `at`, its `=` at `eq`.
    Label { name: Piece, at: usize, eq: usize },
    /// A quoted metric name followed by `,`; the next label starts at this index.
    Metric(usize),
    /// The closing `}`; parsing continues at this index.
    Close(usize),
}

/// The duplicate check's state on the general path. While names arrive in increasing order,
/// as most writers sort them, one comparison with the greatest name so far proves a new name
/// unique; `seen` has one bit per name hash, so that a name whose bit is clear is unique too.
/// The rest are compared with every earlier name while there are fewer than [`INDEX_FROM`];
/// past that, the names go into a hash table ([`NameIndex`]), so that a line of many unsorted
/// names costs time linear in their number, not quadratic.
struct Distinct {
    /// Index in `spans` of the greatest name so far.
    max: usize,
    /// [`name_bit`]s of all names so far.
    seen: u64,
    /// How many of `spans` (from the first) are in the line's [`NameIndex`]; 0 while it is not
    /// in use.
    indexed: usize,
}

/// Labels a block may hold before the duplicate check stops comparing a name with every
/// earlier one and uses the hash table.
const INDEX_FROM: usize = 16;

#[cfg(test)]
thread_local! {
    /// Name comparisons made by the duplicate check on this thread (tests count them to prove
    /// the check linear).
    pub(super) static NAME_COMPARISONS: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// `a == b` for the duplicate check, counted in tests.
#[inline]
fn same_name(a: &[u8], b: &[u8]) -> bool {
    #[cfg(test)]
    NAME_COMPARISONS.with(|c| c.set(c.get() + 1));
    bytes_eq(a, b)
}

impl LineState {
    /// Parses a label block from just after `{`; returns the index after `}`. A quoted string
    /// followed by `,` or `}`, or a `__name__` label, sets `name`.
    pub(super) fn label_block(
        &mut self,
        s: &str,
        i: usize,
        name: &mut Option<Piece>,
    ) -> Result<usize, ParseError> {
        let b = s.as_bytes();
        let end = match self.follow_layout(s, i)? {
            Walk::Closed { end, slot, plain } => {
                self.plain_block = plain;
                self.line_layout = match self.layouts.complete(slot, self.spans.len()) {
                    Some(id) => id,
                    // A prefix of a layout and no whole one, e.g. `_sum` after `_bucket` with a
                    // trailing `le` when no `_sum` shape is remembered.
                    None => self.missed_layout(b),
                };
                end
            }
            Walk::Left(at) => {
                let end = self.general_labels(s, at, name)?;
                self.line_layout = self.missed_layout(b);
                end
            }
        };
        // Counted once the block is read (a syntax error or a duplicate in it is reported
        // first, as without the limit); every step before is linear in the block's length.
        if self.max_labels != 0 && self.spans.len() >= self.max_labels {
            self.count_labels(s, i, *name)?;
        }
        Ok(end)
    }

    /// The fast path: labels from `i` as long as each `name="` is the next pattern of the layout
    /// followed so far (or of another layout that agrees with it on the labels before). Each
    /// costs a word comparison or two and the scan of its value.
    #[inline(always)]
    fn follow_layout(&mut self, s: &str, mut i: usize) -> Result<Walk, ParseError> {
        let b = s.as_bytes();
        let mut cur = self.layouts.last();
        let mut layout = self.layouts.slot(cur);
        // Each label here starts right where the layout expects it, `name="` and all; it stays
        // as rendering writes it while its value needs no unescaping, is not empty, and a bare
        // `,` or the `}` follows it.
        let mut plain = true;
        loop {
            let k = self.spans.len();
            let mut hit = layout.and_then(|l| l.matches(k, b, i));
            if hit.is_none() {
                if let Some((j, p)) = self.layouts.switch(cur, k, b, i) {
                    cur = j;
                    layout = self.layouts.slot(j);
                    hit = Some(p);
                }
            }
            let Some(p) = hit else {
                return Ok(Walk::Left(i));
            };
            let lname = Piece::line(i, i + p.len() - 2);
            let q = i + p.len() - 1;
            let Some((value, end)) = quoted(&mut self.scratch, s, q) else {
                return Err(self.unterminated_value(s, q, lname));
            };
            plain &= !value.in_scratch() && !value.is_empty();
            self.spans.push(LabelSpan { name: lname, value });
            match b.get(end) {
                Some(b',') => i = end + 1,
                Some(b'}') => {
                    return Ok(Walk::Closed {
                        end: end + 1,
                        slot: cur,
                        plain,
                    })
                }
                _ => {
                    plain = false;
                    match self.after_value(s, end, lname)? {
                        Step::Next(j) => i = j,
                        Step::Close(j) => {
                            return Ok(Walk::Closed {
                                end: j,
                                slot: cur,
                                plain,
                            })
                        }
                    }
                }
            }
        }
    }

    /// The general path, from the label at `i` through the closing `}`; returns the index
    /// after it. Each label is a name (or the end of the block), `=`, a quoted value, then `,`,
    /// blanks or `}`. Out of line, so that the registers of the fast path's loop are not shared
    /// with this one.
    #[inline(never)]
    fn general_labels(
        &mut self,
        s: &str,
        mut i: usize,
        name: &mut Option<Piece>,
    ) -> Result<usize, ParseError> {
        let b = s.as_bytes();
        let mut distinct = self.distinct_so_far(b);
        loop {
            let (lname, at, eq) = match self.label_name(s, i, name)? {
                Name::Label { name, at, eq } => (name, at, eq),
                Name::Metric(next) => {
                    i = next;
                    continue;
                }
                Name::Close(end) => return Ok(end),
            };
            let (value, end) = self.label_value(s, skip_ws(b, eq + 1), lname)?;
            self.add_label(s, at, lname, value, name, &mut distinct)?;
            match self.after_value(s, end, lname)? {
                Step::Next(j) => i = j,
                Step::Close(j) => return Ok(j),
            }
        }
    }

    /// What stands at `i` where a label name belongs (after blanks): a plain or quoted label
    /// name and its `=`, a quoted metric name (which sets `name`), or the closing `}`.
    #[inline(always)]
    fn label_name(
        &mut self,
        s: &str,
        mut i: usize,
        name: &mut Option<Piece>,
    ) -> Result<Name, ParseError> {
        let b = s.as_bytes();
        let mut c = b.get(i).copied();
        if c.is_some_and(is_ws) {
            i = skip_ws(b, i);
            c = b.get(i).copied();
        }
        let at = i;
        match c {
            Some(c) if has_class(c, LABEL_START) => {
                let end = scan_class(b, i + 1, LABEL_CHAR);
                let eq = skip_ws(b, end);
                if b.get(eq) != Some(&b'=') {
                    return Err(self.err(
                        eq + 1,
                        format_args!("expected '=' after label name {:?}", &s[at..end]),
                    ));
                }
                Ok(Name::Label {
                    name: Piece::line(at, end),
                    at,
                    eq,
                })
            }
            Some(b'}') => Ok(Name::Close(i + 1)),
            Some(b'"') => {
                let Some((q, end)) = quoted(&mut self.scratch, s, i) else {
                    return Err(self.err(
                        i + 1,
                        format_args!("unterminated quoted name (missing closing '\"')"),
                    ));
                };
                let j = skip_ws(b, end);
                match b.get(j) {
                    Some(b'=') => Ok(Name::Label { name: q, at, eq: j }),
                    Some(&c @ (b',' | b'}')) => {
                        self.set_name(name, q, s, at)?;
                        Ok(if c == b'}' {
                            Name::Close(j + 1)
                        } else {
                            Name::Metric(j + 1)
                        })
                    }
                    _ => Err(self.err(
                        j + 1,
                        format_args!(
                            "expected '=', ',' or '}}' after quoted name {:?}",
                            q.get(s, &self.scratch)
                        ),
                    )),
                }
            }
            Some(_) => Err(self.err(i + 1, format_args!("expected label name or '}}'"))),
            None => Err(self.err(
                i + 1,
                format_args!("expected label name or '}}' (unterminated label set)"),
            )),
        }
    }

    /// The quoted value of label `lname` whose opening quote should be at `i`: the value and the
    /// index after its closing quote.
    #[inline(always)]
    fn label_value(
        &mut self,
        s: &str,
        i: usize,
        lname: Piece,
    ) -> Result<(Piece, usize), ParseError> {
        if s.as_bytes().get(i) != Some(&b'"') {
            return Err(self.err(
                i + 1,
                format_args!(
                    "expected '\"' to open the value of label {:?}",
                    lname.get(s, &self.scratch)
                ),
            ));
        }
        match quoted(&mut self.scratch, s, i) {
            Some(v) => Ok(v),
            None => Err(self.unterminated_value(s, i, lname)),
        }
    }

    /// Adds label `lname` (written at `at`) with `value` on the general path: `__name__` sets the
    /// metric name; any other name must be non-empty and not seen before in this block.
    #[inline(always)]
    fn add_label(
        &mut self,
        s: &str,
        at: usize,
        lname: Piece,
        value: Piece,
        name: &mut Option<Piece>,
        distinct: &mut Distinct,
    ) -> Result<(), ParseError> {
        let b = s.as_bytes();
        let lname_bytes = lname.bytes(b, self.scratch.as_bytes());
        if lname_bytes == b"__name__" {
            return self.set_name(name, value, s, at);
        }
        if lname_bytes.is_empty() {
            return Err(self.err(at + 1, format_args!("empty label name")));
        }
        let bit = name_bit(lname_bytes);
        if let Some(max) = self.spans.get(distinct.max) {
            let scratch = self.scratch.as_bytes();
            if bytes_greater(lname_bytes, max.name.bytes(b, scratch)) {
                distinct.max = self.spans.len();
            } else if distinct.seen & bit != 0 && self.seen_before(b, lname, distinct) {
                return Err(self.err(
                    at + 1,
                    format_args!("duplicate label name {:?}", lname.get(s, &self.scratch)),
                ));
            }
        }
        distinct.seen |= bit;
        self.spans.push(LabelSpan { name: lname, value });
        if distinct.indexed > 0 {
            // Keep the index complete: a later name is looked up there.
            let (spans, scratch) = (&self.spans, self.scratch.as_bytes());
            index_names(&mut self.name_index, spans, b, scratch, distinct);
        }
        Ok(())
    }

    /// True if `name` is the name of a label already in `spans`: compared with each while they
    /// are few, looked up in the line's [`NameIndex`] (built on first use) past that.
    fn seen_before(&mut self, b: &[u8], lname: Piece, distinct: &mut Distinct) -> bool {
        let (spans, scratch) = (&self.spans, self.scratch.as_bytes());
        let name = lname.bytes(b, scratch);
        if distinct.indexed == 0 && spans.len() < INDEX_FROM {
            return spans
                .iter()
                .any(|l| same_name(l.name.bytes(b, scratch), name));
        }
        index_names(&mut self.name_index, spans, b, scratch, distinct);
        self.name_index.contains(name, |k| {
            spans
                .get(k)
                .is_some_and(|l| same_name(l.name.bytes(b, scratch), name))
        })
    }

    /// Refuses the labels in `spans` if, with `__name__` and without those with an empty value
    /// (absent labels), they are more than [`ParseOptions::max_labels`](super::ParseOptions);
    /// the error points at the first label over the limit (at the block, `block`, when that
    /// label's name was quoted) and reads as the output's label limit error.
    #[cold]
    fn count_labels(&self, s: &str, block: usize, name: Option<Piece>) -> Result<(), ParseError> {
        let max = self.max_labels;
        let mut count = 1;
        let mut first_over = None;
        for l in &self.spans {
            count += usize::from(!l.value.is_empty());
            if count > max && first_over.is_none() {
                first_over = Some(if l.name.in_scratch() {
                    block
                } else {
                    l.name.start()
                });
            }
        }
        let Some(at) = first_over else {
            return Ok(());
        };
        let metric = name.map_or("", |n| n.get(s, &self.scratch));
        let metric = match metric.char_indices().nth(50) {
            Some((cut, _)) => format!("{}...", &metric[..cut]),
            None => metric.to_owned(),
        };
        Err(ParseError {
            kind: ParseErrorKind::LabelLimit,
            ..self.err(
                at + 1,
                format_args!(
                    "label limit exceeded: series {metric:?} has {count} labels (with __name__) > limit {max} (--label-limit)"
                ),
            )
        })
    }

    /// The value of label `lname`, opened at `q`, never closes.
    #[cold]
    fn unterminated_value(&self, s: &str, q: usize, lname: Piece) -> ParseError {
        self.err(
            q + 1,
            format_args!(
                "unterminated value of label {:?} (missing closing '\"')",
                lname.get(s, &self.scratch)
            ),
        )
    }

    /// What follows the value of label `lname` that ends at `end`: `,` (or, as `promparse`
    /// tolerates, just blanks) and the next label, or `}`.
    #[inline(always)]
    fn after_value(&self, s: &str, end: usize, lname: Piece) -> Result<Step, ParseError> {
        let b = s.as_bytes();
        let mut i = end;
        let mut c = b.get(i).copied();
        if c.is_some_and(is_ws) {
            i = skip_ws(b, i);
            c = b.get(i).copied();
        }
        match c {
            Some(b',') => Ok(Step::Next(i + 1)),
            Some(b'}') => Ok(Step::Close(i + 1)),
            Some(_) if i > end => Ok(Step::Next(i)),
            _ => Err(self.err(
                i + 1,
                format_args!(
                    "expected ',' or '}}' after the value of label {:?}",
                    lname.get(s, &self.scratch)
                ),
            )),
        }
    }

    /// The duplicate check's state for the labels already in `spans` (those the fast path
    /// took, known distinct).
    fn distinct_so_far(&self, b: &[u8]) -> Distinct {
        let scratch = self.scratch.as_bytes();
        let mut max = 0;
        let mut seen = 0;
        for (k, l) in self.spans.iter().enumerate() {
            let name = l.name.bytes(b, scratch);
            seen |= name_bit(name);
            if let Some(m) = self.spans.get(max) {
                if bytes_greater(name, m.name.bytes(b, scratch)) {
                    max = k;
                }
            }
        }
        Distinct {
            max,
            seen,
            indexed: 0,
        }
    }

    /// The line's labels followed no remembered layout through: they become a new layout when
    /// the cache's policy wants one and every name is plain; returns its id, or 0.
    ///
    /// Only plain names qualify: a pattern made from a quoted name such as `label.x` would
    /// otherwise accept `label.x="v"` unquoted, which is invalid.
    fn missed_layout(&mut self, b: &[u8]) -> u64 {
        if !self.layouts.missed() {
            return 0;
        }
        let scratch = self.scratch.as_bytes();
        let plain = self.spans.iter().all(|l| {
            let name = l.name.bytes(b, scratch);
            name.first().is_some_and(|&c| has_class(c, LABEL_START))
                && scan_class(name, 0, LABEL_CHAR) == name.len()
        });
        if !plain {
            return 0;
        }
        self.layouts
            .remember(self.spans.iter().map(|l| l.name.bytes(b, scratch)))
    }

    /// Sets the metric name from inside the braces, refusing a second or empty one.
    fn set_name(
        &self,
        name: &mut Option<Piece>,
        value: Piece,
        s: &str,
        at: usize,
    ) -> Result<(), ParseError> {
        if let Some(old) = name {
            return Err(self.err(
                at + 1,
                format_args!(
                    "metric name given twice (already {:?})",
                    old.get(s, &self.scratch)
                ),
            ));
        }
        if value.is_empty() {
            return Err(self.err(at + 1, format_args!("empty metric name")));
        }
        *name = Some(value);
        Ok(())
    }
}

/// Adds the names of `spans` not yet in `index` (all of them, after clearing it, when it was
/// not in use for this block). They are distinct, so none is compared.
fn index_names(
    index: &mut NameIndex,
    spans: &[LabelSpan],
    b: &[u8],
    scratch: &[u8],
    distinct: &mut Distinct,
) {
    if distinct.indexed == 0 {
        index.clear();
    }
    for (k, l) in spans.iter().enumerate().skip(distinct.indexed) {
        index.insert(l.name.bytes(b, scratch), k);
    }
    distinct.indexed = spans.len();
}

/// `a > b` (as strings: byte order is UTF-8 order), inlined: label names usually differ early,
/// where a call to `memcmp` would cost more than the comparison.
#[inline]
fn bytes_greater(a: &[u8], b: &[u8]) -> bool {
    for (x, y) in a.iter().zip(b) {
        if x != y {
            return x > y;
        }
    }
    a.len() > b.len()
}

/// One of 64 bits, chosen by a cheap hash of a label name (length, first, middle and last
/// byte), for the duplicate check's filter.
#[inline]
fn name_bit(name: &[u8]) -> u64 {
    let byte = |i: usize| u32::from(name.get(i).copied().unwrap_or(0));
    let n = name.len();
    let h = (n as u32)
        .wrapping_mul(0x9e37_79b9)
        .wrapping_add(byte(0).wrapping_mul(0x85eb_ca6b))
        .wrapping_add(byte(n / 2).wrapping_mul(0xc2b2_ae35))
        .wrapping_add(byte(n.wrapping_sub(1)).wrapping_mul(0x27d4_eb2f));
    1 << (h >> 26)
}

/// `a == b`, inlined: names of equal length usually differ early, where a call to `memcmp`
/// would cost more than the comparison.
#[inline]
fn bytes_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}
