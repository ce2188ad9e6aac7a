//! The TLS pieces the server (`--web.config.file`) and the upstream client (`--upstream.*`)
//! share: reading certificates and keys from PEM ([`pem`]), the crypto provider, and the
//! verifier that accepts any certificate but still checks the handshake ([`verify`]).
//!
//! This module is a leaf: it knows rustls and nothing of the server or the upstream, which
//! build their own rustls configurations from these parts and name their own flags and fields
//! in errors.

pub(crate) mod pem;
pub(crate) mod verify;

use rustls::crypto::CryptoProvider;

/// The ring provider: the only crypto backend this binary links (no aws-lc, no OpenSSL).
/// Returned by value, so a caller may narrow its cipher suites or key-exchange groups first.
pub(crate) fn provider() -> CryptoProvider {
    rustls::crypto::ring::default_provider()
}
