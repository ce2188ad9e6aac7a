//! metric-gate: a Prometheus scrape proxy that filters, relabels and sums metrics at the source.
//!
//! The hot path is one streaming pass: bytes -> [`exposition::parse`] -> [`relabel`] (per subset)
//! -> [`aggregate`] -> [`exposition::render`]. The same [`pipeline`] serves the CLI and the server.

pub mod aggregate;
pub mod analyze;
pub mod cli;
pub mod counters;
pub mod explorer;
pub mod exposition;
mod key_store;
pub mod labels;
pub mod limits;
pub mod pipeline;
pub mod relabel;
pub mod remote_write;
pub mod server;
pub mod sum;
mod tls;
pub mod units;
pub mod upstream;
