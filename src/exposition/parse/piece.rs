//! Where a piece of text sits: [`Piece`] names a range of the current line or of the unescape
//! scratch buffer, and [`LabelSpan`] is one label as two pieces.
//!
//! The parser never copies a name or a value that it can point at: text without escapes stays
//! in the line, and only text with a backslash is unescaped, into one scratch buffer per line.
//! A piece records which of the two it is in, so that a [`super::Sample`] can hand out `&str`s
//! into either without allocating. Guarantee: a piece made by the parser lies on char
//! boundaries of the buffer it names (it starts and ends next to ASCII delimiters), and its
//! offsets fit in 31 bits (lines are capped below 2^31 bytes).

/// A piece of text in the current line or in the unescape scratch buffer, packed into one
/// word (start in bits 0..32, end in bits 32..63, bit 63 set for the scratch buffer) so that it
/// moves through registers whole: a struct of narrower fields, spilled and reloaded as a word,
/// stalls store forwarding in the label loop.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Piece(u64);

impl Piece {
    const SCRATCH: u64 = 1 << 63;

    /// `start..end` of the line. Offsets fit: lines (and the unescaped strings of one line) are
    /// at most `MAX_LINE_LIMIT` (< 2^31) bytes long.
    #[inline(always)]
    pub(super) fn line(start: usize, end: usize) -> Self {
        Piece(start as u64 | (end as u64) << 32)
    }

    /// `start..end` of the scratch buffer.
    #[inline(always)]
    pub(super) fn scratch(start: usize, end: usize) -> Self {
        Piece(Self::line(start, end).0 | Self::SCRATCH)
    }

    /// Whether the text is in the scratch buffer (it held an escape sequence).
    #[inline(always)]
    pub(super) fn in_scratch(self) -> bool {
        self.0 & Self::SCRATCH != 0
    }

    /// Offset of the first byte.
    #[inline(always)]
    pub(super) fn start(self) -> usize {
        (self.0 & 0xffff_ffff) as usize
    }

    /// Offset after the last byte.
    #[inline(always)]
    pub(super) fn end(self) -> usize {
        ((self.0 & !Self::SCRATCH) >> 32) as usize
    }

    /// Whether the text is empty.
    pub(super) fn is_empty(self) -> bool {
        self.start() == self.end()
    }

    /// `start..end`.
    #[inline(always)]
    pub(super) fn range(self) -> std::ops::Range<usize> {
        self.start()..self.end()
    }

    /// The bytes of the text, for comparisons in the hot path (no char-boundary checks).
    #[inline]
    pub(super) fn bytes<'s>(self, line: &'s [u8], scratch: &'s [u8]) -> &'s [u8] {
        let src = if self.in_scratch() { scratch } else { line };
        src.get(self.range()).unwrap_or(&[])
    }

    /// The text. Pieces always start and end next to ASCII delimiters, so the range is on char
    /// boundaries; `get` just keeps that from ever being a panic.
    #[inline]
    pub(super) fn get<'s>(self, line: &'s str, scratch: &'s str) -> &'s str {
        let src = if self.in_scratch() { scratch } else { line };
        src.get(self.range()).unwrap_or("")
    }
}

/// One label of the current line.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct LabelSpan {
    /// The label name (quoted names unquoted and unescaped).
    pub(super) name: Piece,
    /// The value, unescaped.
    pub(super) value: Piece,
}
