//! The Prometheus text exposition format: streaming parser and renderer.

pub mod float;
pub mod parse;
pub mod render;

pub use parse::{
    parse_go_float, Format, MetaKind, Metadata, ParseError, ParseErrorKind, ParseOptions, Parser,
    Sample, Sink,
};
