//! Response bodies: gzip when the client accepts it, computed once per rendered result.
//!
//! A scrape renders each list once ([`Rendered`]); every client of that scrape gets the same
//! bytes (`Bytes` shares one allocation), and each encoding a client asks for is made once per
//! result, on first demand, and shared the same way. How long responses may hold these bytes is
//! bounded separately (`server::responses`).

use std::io::Write as _;

use bytes::Bytes;
use http::HeaderMap;
use tokio::sync::OnceCell;

/// A rendered response body and, once a client asked for it, its gzip form. Shared between the
/// requests that read the same result (single-flight scrapes, subset snapshots), so each result
/// is compressed at most once.
#[derive(Debug)]
pub struct Rendered {
    /// The plain text.
    pub body: Bytes,
    /// The scrape that rendered it: responses holding bodies of the same scrape hold one set of
    /// bytes between them.
    pub generation: u64,
    gzip: OnceCell<Bytes>,
}

/// A content coding a client may ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// The text as rendered.
    Identity,
    /// gzip (`Content-Encoding: gzip`).
    Gzip,
}

impl Rendered {
    /// Wraps a body rendered by scrape number `generation`.
    pub fn new(body: Bytes, generation: u64) -> Self {
        Self {
            body,
            generation,
            gzip: OnceCell::new(),
        }
    }

    /// The body in `encoding`, made on first demand and shared after that.
    pub async fn encoded(&self, encoding: Encoding) -> Bytes {
        match encoding {
            Encoding::Identity => self.body.clone(),
            Encoding::Gzip => self.gzipped().await,
        }
    }

    /// The gzip form, compressed on a blocking thread the first time (a large pass-through
    /// result takes a while to compress).
    pub async fn gzipped(&self) -> Bytes {
        self.gzip
            .get_or_init(|| {
                let body = self.body.clone();
                async move {
                    tokio::task::spawn_blocking(move || gzip(&body))
                        .await
                        .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
                }
            })
            .await
            .clone()
    }
}

/// Gzip at the fastest level: Prometheus scrapes often, and on loopback or in-cluster links the
/// CPU time of higher levels costs more than the bytes they save.
pub fn gzip(data: &[u8]) -> Bytes {
    let mut e = flate2::write::GzEncoder::new(
        Vec::with_capacity(data.len() / 8 + 64),
        flate2::Compression::fast(),
    );
    // Writing into a Vec cannot fail.
    let _ = e.write_all(data);
    Bytes::from(e.finish().unwrap_or_default())
}

/// The encoding to answer with: gzip when the client accepts it.
pub fn negotiate_encoding(headers: &HeaderMap) -> Encoding {
    if accepts_gzip(headers) {
        Encoding::Gzip
    } else {
        Encoding::Identity
    }
}

/// True when `Accept-Encoding` accepts gzip (`gzip` or `*` with a non-zero q). Lenient: an
/// unparsable part is skipped, never an error.
pub fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers
        .get_all(http::header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|part| {
            let mut it = part.split(';');
            let coding = it.next().unwrap_or("").trim();
            if !(coding.eq_ignore_ascii_case("gzip") || coding == "*") {
                return false;
            }
            let q = it
                .filter_map(|p| p.trim().strip_prefix("q="))
                .find_map(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            q > 0.0
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    fn h(v: &'static str) -> HeaderMap {
        let mut m = HeaderMap::new();
        m.insert(http::header::ACCEPT_ENCODING, HeaderValue::from_static(v));
        m
    }

    #[test]
    fn accept_encoding() {
        assert!(accepts_gzip(&h("gzip")));
        assert!(accepts_gzip(&h("deflate, GZIP;q=0.5")));
        assert!(accepts_gzip(&h("*")));
        assert!(!accepts_gzip(&h("gzip;q=0")));
        assert!(!accepts_gzip(&h("identity")));
        assert!(!accepts_gzip(&h(";;,,q=x")));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn gzip_round_trip() {
        let z = gzip(b"up 1\n");
        let mut d = flate2::read::GzDecoder::new(&z[..]);
        let mut s = String::new();
        std::io::Read::read_to_string(&mut d, &mut s).unwrap();
        assert_eq!(s, "up 1\n");
    }
}
