//! Where metrics come from: the `--upstream` URL, its targets, and fetching them.
//!
//! Three kinds of upstream (see [`UpstreamSpec`]), each over `http` or `https`:
//! - a plain `http://host:port/path`: one target, resolved by the HTTP connector as usual;
//! - `dns+http://name:port/path`: the name is resolved on **every** scrape and each address is
//!   a target (of one address family by default: [`IpFamily`]);
//! - `dnssrv+http://_port._proto.name/path`: SRV records give host names and ports, each host
//!   name is resolved and each address is a target.
//!
//! [`resolve`] turns a spec into [`Target`]s; [`fetch`] requests one target and streams its body
//! into a parser sink; [`tls`] holds the `--upstream.*` TLS and authorization settings.

pub mod compression;
pub mod deadline;
pub mod fetch;
pub mod resolve;
pub mod tls;

use std::fmt;
use std::net::SocketAddr;

use http::uri::{Authority, PathAndQuery, Scheme, Uri};

pub use compression::Compression;
pub use deadline::Deadline;
pub use fetch::{BodyStats, Client, ClientError, FetchError, FetchOptions};
pub use resolve::{DnsResolver, IpFamily, ResolveError, ResolverConfigError};
pub use tls::{ClientOptions, TlsFiles};

/// How targets are found, parsed once from `--upstream`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UpstreamSpec {
    /// One fixed URL.
    Static {
        /// The URL as requested.
        uri: Uri,
    },
    /// `dns+http://name:port/path`: every address of `host` (of the chosen [`IpFamily`]) is a
    /// target on `port`.
    Dns {
        /// `http` or `https`: how every target is requested.
        scheme: Scheme,
        /// Host name to resolve.
        host: String,
        /// Port every address is scraped on (default 80, 443 for https).
        port: u16,
        /// The `Host` header sent to every target: the authority as written in the URL.
        authority: Authority,
        /// Path and query requested from every target.
        path: PathAndQuery,
    },
    /// `dnssrv+http://_port._proto.name/path`: SRV records give host names and ports.
    DnsSrv {
        /// `http` or `https`: how every target is requested.
        scheme: Scheme,
        /// The SRV record name (`_port._proto.name`).
        name: String,
        /// Path and query requested from every target.
        path: PathAndQuery,
    },
}

/// `--upstream` could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid upstream {url:?}: {reason}")]
pub struct SpecError {
    /// The URL as given.
    pub url: String,
    /// What is wrong with it.
    pub reason: String,
}

impl UpstreamSpec {
    /// Parses an upstream URL with its scheme (the CLI adds `http://` to a bare
    /// `host:port/path`). The fetch itself is `http` or `https` (with or without
    /// `dns+`/`dnssrv+`).
    pub fn parse(url: &str) -> Result<Self, SpecError> {
        let err = |reason: &str| SpecError {
            url: url.to_owned(),
            reason: reason.to_owned(),
        };
        let (mode, rest) = if let Some(r) = url.strip_prefix("dns+") {
            (1, r)
        } else if let Some(r) = url.strip_prefix("dnssrv+") {
            (2, r)
        } else {
            (0, url)
        };
        if mode != 0 && !rest.contains("://") {
            // `dns+localhost:9100/metrics`: the scheme of the fetch is missing, not the prefix's.
            let prefix = &url[..url.len() - rest.len()];
            return Err(err(&format!(
                "{prefix} needs a scheme: {prefix}http://{rest}"
            )));
        }
        let uri: Uri = rest
            .parse()
            .map_err(|e: http::uri::InvalidUri| err(&e.to_string()))?;
        let scheme = match uri.scheme() {
            Some(s) if *s == Scheme::HTTP => Scheme::HTTP,
            Some(s) if *s == Scheme::HTTPS => Scheme::HTTPS,
            _ => return Err(err("the scheme must be http or https")),
        };
        let default_port = if scheme == Scheme::HTTPS { 443 } else { 80 };
        let authority = uri
            .authority()
            .cloned()
            .ok_or_else(|| err("no host in the URL"))?;
        if authority.as_str().contains('@') {
            return Err(err("user info in the URL is not supported"));
        }
        let path = uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        match mode {
            0 => Ok(Self::Static { uri }),
            1 => {
                let host = authority.host().trim_matches(['[', ']']).to_owned();
                if host.is_empty() {
                    return Err(err("no host name to resolve"));
                }
                Ok(Self::Dns {
                    scheme,
                    host,
                    port: authority.port_u16().unwrap_or(default_port),
                    authority,
                    path,
                })
            }
            _ => {
                if authority.port().is_some() {
                    return Err(err(
                        "dnssrv+ takes the port from the SRV records; remove the port from the URL",
                    ));
                }
                Ok(Self::DnsSrv {
                    scheme,
                    name: authority.host().to_owned(),
                    path,
                })
            }
        }
    }

    /// True for `dns+` and `dnssrv+` upstreams: targets are resolved on every scrape and summed.
    pub fn is_fan_out(&self) -> bool {
        !matches!(self, Self::Static { .. })
    }

    /// True when targets are requested over TLS.
    pub fn is_https(&self) -> bool {
        match self {
            Self::Static { uri } => uri.scheme() == Some(&Scheme::HTTPS),
            Self::Dns { scheme, .. } | Self::DnsSrv { scheme, .. } => *scheme == Scheme::HTTPS,
        }
    }

    /// The name the upstream's TLS certificate is checked against unless
    /// `--upstream.server-name` says otherwise: the URL's host for a static upstream; for
    /// `dns+` the DNS name (targets are dialled by IP, but a pod's certificate names the
    /// Service); for `dnssrv+` the SRV name without its leading `_port._proto.` labels, i.e.
    /// the Service name of a Kubernetes SRV record.
    pub fn default_server_name(&self) -> String {
        match self {
            Self::Static { uri } => uri.host().unwrap_or("").trim_matches(['[', ']']).to_owned(),
            Self::Dns { host, .. } => host.clone(),
            Self::DnsSrv { name, .. } => {
                let mut rest = name.as_str();
                while let Some((label, tail)) = rest.split_once('.') {
                    if !label.starts_with('_') {
                        break;
                    }
                    rest = tail;
                }
                rest.trim_end_matches('.').to_owned()
            }
        }
    }
}

impl fmt::Display for UpstreamSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Static { uri } => write!(f, "{uri}"),
            Self::Dns {
                scheme,
                authority,
                path,
                ..
            } => write!(f, "dns+{scheme}://{authority}{path}"),
            Self::DnsSrv { scheme, name, path } => write!(f, "dnssrv+{scheme}://{name}{path}"),
        }
    }
}

/// One HTTP endpoint to scrape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The URL requested (an IP address in fan-out mode).
    pub uri: Uri,
    /// `Host` header to send instead of the URI's authority (fan-out mode keeps the name).
    pub host_header: Option<String>,
    /// The name used in logs, self-metrics and `target` labels: `ip:port` in fan-out mode, the
    /// URL's authority otherwise.
    pub name: String,
}

impl Target {
    /// The single target of a static upstream.
    pub fn fixed(uri: &Uri) -> Self {
        Self {
            uri: uri.clone(),
            host_header: None,
            name: uri
                .authority()
                .map(|a| a.as_str().to_owned())
                .unwrap_or_default(),
        }
    }

    /// A fan-out target: `addr` is requested with `scheme`, `host` is sent as the `Host`
    /// header.
    pub fn at(scheme: &Scheme, addr: SocketAddr, host: &str, path: &PathAndQuery) -> Self {
        let name = addr.to_string();
        let uri = Uri::builder()
            .scheme(scheme.clone())
            .authority(name.as_str())
            .path_and_query(path.clone())
            .build()
            // A socket address always forms a valid authority and `path` is already valid.
            .unwrap_or_else(|_| Uri::from_static("http://0.0.0.0/"));
        Self {
            uri,
            host_header: Some(host.to_owned()),
            name,
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_three_kinds() {
        assert_eq!(
            UpstreamSpec::parse("http://localhost:10254/metrics").unwrap(),
            UpstreamSpec::Static {
                uri: Uri::from_static("http://localhost:10254/metrics")
            }
        );
        let d = UpstreamSpec::parse("dns+http://svc.ns:10254/metrics?x=1").unwrap();
        match &d {
            UpstreamSpec::Dns {
                scheme,
                host,
                port,
                authority,
                path,
            } => {
                assert_eq!(*scheme, Scheme::HTTP);
                assert_eq!(host, "svc.ns");
                assert_eq!(*port, 10254);
                assert_eq!(authority.as_str(), "svc.ns:10254");
                assert_eq!(path.as_str(), "/metrics?x=1");
            }
            other => panic!("{other:?}"),
        }
        assert!(d.is_fan_out());
        assert_eq!(d.to_string(), "dns+http://svc.ns:10254/metrics?x=1");
        let s = UpstreamSpec::parse("dnssrv+http://_metrics._tcp.svc/m").unwrap();
        assert_eq!(
            s,
            UpstreamSpec::DnsSrv {
                scheme: Scheme::HTTP,
                name: "_metrics._tcp.svc".into(),
                path: PathAndQuery::from_static("/m")
            }
        );
        match UpstreamSpec::parse("dns+http://svc").unwrap() {
            UpstreamSpec::Dns { port, path, .. } => {
                assert_eq!(port, 80);
                assert_eq!(path.as_str(), "/");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn refuses_what_it_cannot_fetch() {
        for bad in [
            "ftp://x/",
            "dns+ftp://x/",
            "dnssrv+http://_a._tcp.x:80/",
            "http://user@x/",
            "http://",
        ] {
            assert!(UpstreamSpec::parse(bad).is_err(), "{bad}");
        }
        for (bad, hint) in [
            (
                "dns+localhost:9100/metrics",
                "dns+ needs a scheme: dns+http://localhost:9100/metrics",
            ),
            (
                "dnssrv+_m._tcp.svc/metrics",
                "dnssrv+ needs a scheme: dnssrv+http://_m._tcp.svc/metrics",
            ),
        ] {
            let e = UpstreamSpec::parse(bad).unwrap_err().to_string();
            assert_eq!(e, format!("invalid upstream {bad:?}: {hint}"));
        }
    }

    #[test]
    fn fan_out_targets_keep_the_host_name() {
        let t = Target::at(
            &Scheme::HTTP,
            "127.0.0.2:8080".parse().unwrap(),
            "svc:8080",
            &PathAndQuery::from_static("/metrics"),
        );
        assert_eq!(t.uri, "http://127.0.0.2:8080/metrics");
        assert_eq!(t.host_header.as_deref(), Some("svc:8080"));
        assert_eq!(t.name, "127.0.0.2:8080");
        let v6 = Target::at(
            &Scheme::HTTP,
            "[::1]:80".parse().unwrap(),
            "svc",
            &PathAndQuery::from_static("/"),
        );
        assert_eq!(v6.uri, "http://[::1]:80/");
        assert_eq!(v6.name, "[::1]:80");
        let tls = Target::at(
            &Scheme::HTTPS,
            "10.0.0.5:10254".parse().unwrap(),
            "svc:10254",
            &PathAndQuery::from_static("/metrics"),
        );
        assert_eq!(tls.uri, "https://10.0.0.5:10254/metrics");
    }

    #[test]
    fn https_upstreams_and_their_server_names() {
        let s = UpstreamSpec::parse("https://[::1]:8443/metrics").unwrap();
        assert!(s.is_https() && !s.is_fan_out());
        assert_eq!(s.default_server_name(), "::1");
        let d = UpstreamSpec::parse("dns+https://pods.ns.svc/metrics").unwrap();
        assert!(d.is_https());
        match &d {
            UpstreamSpec::Dns { port, scheme, .. } => {
                assert_eq!(*port, 443);
                assert_eq!(*scheme, Scheme::HTTPS);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(d.default_server_name(), "pods.ns.svc");
        assert_eq!(d.to_string(), "dns+https://pods.ns.svc/metrics");
        let srv = UpstreamSpec::parse("dnssrv+https://_metrics._tcp.ingress.ns.svc/m").unwrap();
        assert_eq!(srv.default_server_name(), "ingress.ns.svc");
        assert_eq!(
            srv.to_string(),
            "dnssrv+https://_metrics._tcp.ingress.ns.svc/m"
        );
        assert!(!UpstreamSpec::parse("dns+http://x/").unwrap().is_https());
    }
}
