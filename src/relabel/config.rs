//! Serde types for `relabel_config`, defaults and validation. (stub)

/// Relabel action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Action {
    /// replace
    #[default]
    Replace,
}

/// One rule.
#[derive(Debug, Clone, Default)]
pub struct RelabelConfig {}

/// A configuration error.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);
