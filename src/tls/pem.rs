//! Certificates, private keys and CA bundles from PEM text.
//!
//! The callers read the bytes themselves (a file, or text inlined in the web config) and put
//! the flag or field and the file name in front of a [`PemError`], which says only what is wrong
//! with the PEM text, in the same words for both.

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::RootCertStore;

/// What is wrong with PEM text that should hold certificates or a key.
#[derive(Debug, thiserror::Error)]
pub(crate) enum PemError {
    /// A block that does not decode (bad base64, a missing `END` line, ...).
    #[error("invalid PEM: {0}")]
    Invalid(pem::Error),
    /// Valid PEM, but not one `CERTIFICATE` block in it.
    #[error("no CERTIFICATE block found")]
    NoCertificate,
    /// No private key block (PKCS#8, PKCS#1 or SEC1) that decodes.
    #[error("no usable private key: {0}")]
    NoKey(pem::Error),
    /// A certificate that rustls refuses as a trust anchor.
    #[error("unusable CA certificate: {0}")]
    BadCa(rustls::Error),
}

/// Every `CERTIFICATE` block of `text`, in order (a chain: the leaf first); at least one.
pub(crate) fn certificates(text: &[u8]) -> Result<Vec<CertificateDer<'static>>, PemError> {
    let certs = CertificateDer::pem_slice_iter(text)
        .collect::<Result<Vec<_>, _>>()
        .map_err(PemError::Invalid)?;
    if certs.is_empty() {
        return Err(PemError::NoCertificate);
    }
    Ok(certs)
}

/// The first private key of `text`.
pub(crate) fn private_key(text: &[u8]) -> Result<PrivateKeyDer<'static>, PemError> {
    PrivateKeyDer::from_pem_slice(text).map_err(PemError::NoKey)
}

/// A trust store holding every certificate of `text` (a CA bundle); at least one.
pub(crate) fn root_store(text: &[u8]) -> Result<RootCertStore, PemError> {
    let mut roots = RootCertStore::empty();
    for cert in certificates(text)? {
        roots.add(cert).map_err(PemError::BadCa)?;
    }
    Ok(roots)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_wrong_is_named() {
        let e = certificates(b"not a certificate\n").unwrap_err();
        assert_eq!(e.to_string(), "no CERTIFICATE block found");
        let broken = b"-----BEGIN CERTIFICATE-----\nMIIB\n";
        assert!(matches!(certificates(broken), Err(PemError::Invalid(_))));
        let e = private_key(b"").unwrap_err();
        assert!(e.to_string().starts_with("no usable private key: "), "{e}");
        let e = root_store(b"").unwrap_err();
        assert!(matches!(e, PemError::NoCertificate), "{e}");
    }
}
