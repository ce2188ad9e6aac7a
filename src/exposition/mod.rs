//! The Prometheus text exposition format: streaming parser and renderer.

pub mod escape;
pub mod float;
pub mod parse;
pub mod render;
pub mod render_om;

pub use float::parse_go_float;
pub use parse::{
    Exemplar, Format, Interrupt, MetaKind, Metadata, ParseError, ParseErrorKind, ParseOptions,
    Parser, Sample, Sink,
};
