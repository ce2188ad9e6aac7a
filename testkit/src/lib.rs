//! Test support shared by metric-gate's integration tests, benches, examples and fuzz targets,
//! so each piece exists once:
//!
//! - [`checks`]: the fuzz oracles (parse, relabel config, pipeline), run by the fuzz targets,
//!   by `tests/fuzz_regressions.rs` over the saved inputs, and partly by `tests/properties.rs`;
//! - [`ingress`]: the ingress-nginx-shaped payload generator (benches, `examples/gen_ingress.rs`);
//! - with the `net` feature (default): [`dns`] (a DNS server on loopback), [`upstream`] (fake
//!   upstreams), [`gate`] (metric-gate in-process, or its binary), [`client`] (a small HTTP
//!   client), [`e2e`] (Prometheus, node_exporter and the binary as real processes).
//!
//! Everything binds 127.0.0.x with random ports and stops when dropped. Not published; these are
//! helpers for tests, so they panic on failure instead of returning errors.

pub mod checks;
pub mod ingress;

#[cfg(feature = "net")]
pub mod client;
#[cfg(feature = "net")]
pub mod dns;
#[cfg(feature = "net")]
pub mod e2e;
#[cfg(feature = "net")]
pub mod gate;
#[cfg(feature = "net")]
pub mod upstream;
