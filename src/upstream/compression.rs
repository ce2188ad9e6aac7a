//! Whether scrapes ask the upstream for gzip (`--upstream.compression`).

/// Whether scrapes ask the upstream for gzip (`--upstream.compression`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Compression {
    /// Gzip, except from a loopback address (`localhost`, 127.0.0.0/8, `::1`): a sidecar's
    /// exporter would spend more CPU compressing (Go's `promhttp` uses gzip's default level;
    /// zlib at that level took 2.3-2.5 s of CPU for a 276 MB page here) than loopback saves.
    #[default]
    Auto,
    /// Always gzip.
    Gzip,
    /// Never: the body comes as it is.
    None,
}

impl Compression {
    /// The names the flag accepts.
    pub const NAMES: [&'static str; 3] = ["auto", "gzip", "none"];

    /// Whether a scrape of an upstream at `host` (as a URI writes it: IPv6 in brackets) asks
    /// for gzip.
    pub fn asks_gzip(self, host: &str) -> bool {
        match self {
            Compression::Gzip => true,
            Compression::None => false,
            Compression::Auto => !is_loopback_host(host),
        }
    }
}

impl std::str::FromStr for Compression {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "gzip" => Ok(Self::Gzip),
            "none" | "identity" => Ok(Self::None),
            _ => Err(format!(
                "invalid upstream compression {s:?}: expected one of {}",
                Self::NAMES.join(", ")
            )),
        }
    }
}

/// True for `localhost` (and names under `.localhost`, RFC 6761), 127.0.0.0/8 and `::1`
/// (also written as an IPv4-mapped address); `host` as a URI writes it (IPv6 in brackets).
fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_end_matches('.');
    if host.eq_ignore_ascii_case("localhost")
        || host
            .get(host.len().saturating_sub(10)..)
            .is_some_and(|end| end.eq_ignore_ascii_case(".localhost"))
    {
        return true;
    }
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    match bare.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(v4)) => v4.is_loopback(),
        Ok(std::net::IpAddr::V6(v6)) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_compression_skips_gzip_on_loopback_only() {
        let asks = |url: &str, c: Compression| {
            let uri: http::Uri = url.parse().unwrap();
            c.asks_gzip(uri.host().unwrap())
        };
        for url in [
            "http://localhost:10254/metrics",
            "http://LOCALHOST./metrics",
            "http://exporter.localhost:9100/metrics",
            "http://127.0.0.1:10254/metrics",
            "http://127.8.9.10/metrics",
            "http://[::1]:10254/metrics",
            "http://[::ffff:127.0.0.1]:9100/metrics",
        ] {
            assert!(!asks(url, Compression::Auto), "{url}");
            assert!(asks(url, Compression::Gzip), "{url}");
        }
        for url in [
            "http://10.1.2.3:10254/metrics",
            "http://[fd00::1]:10254/metrics",
            "http://ingress-nginx.svc:10254/metrics",
            "http://notlocalhost/metrics",
            "http://[::ffff:10.0.0.1]/metrics",
        ] {
            assert!(asks(url, Compression::Auto), "{url}");
            assert!(!asks(url, Compression::None), "{url}");
        }
        assert_eq!("GZIP".parse(), Ok(Compression::Gzip));
        assert_eq!("identity".parse(), Ok(Compression::None));
        assert!("zstd"
            .parse::<Compression>()
            .unwrap_err()
            .contains("auto, gzip, none"));
    }
}
