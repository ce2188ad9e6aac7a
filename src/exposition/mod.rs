//! The Prometheus text exposition format: streaming parser and renderer.

pub mod float;
pub mod parse;
pub mod render;

pub use float::parse_go_float;
pub use parse::{
    Format, MetaKind, Metadata, ParseError, ParseErrorKind, ParseOptions, Parser, Sample, Sink,
};
