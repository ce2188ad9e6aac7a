//! Compiled relabel rules. (stub)

use crate::labels::LabelBuf;

/// A compiled list of relabel rules with its decision caches.
#[derive(Debug, Clone, Default)]
pub struct Program {}

impl Program {
    /// Applies the rules in order; returns false when the series is dropped.
    pub fn apply(&mut self, _labels: &mut LabelBuf) -> bool {
        true
    }
    /// True when the program has no rules (pass-through).
    pub fn is_empty(&self) -> bool {
        true
    }
}
