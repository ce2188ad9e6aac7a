//! DNS resolution of fan-out upstreams with hickory-resolver.
//!
//! Every scrape resolves again: pods come and go behind a headless Service and a cached answer
//! would keep scraping a pod that is gone (or miss a new one). The resolver is built with a zero
//! TTL ceiling and its cache is cleared before each lookup, so no answer outlives one scrape.
//!
//! # One address per pod
//! In a dual-stack cluster a headless Service answers both an A and an AAAA record for every
//! pod; scraping both would count each pod twice in the sum. So by default ([`IpFamily::Auto`])
//! only one family is used: IPv4 when the name has A records, else IPv6
//! (`--dns.ip-family` chooses otherwise).

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use hickory_resolver::config::{
    LookupIpStrategy, NameServerConfigGroup, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::TokioResolver;

use super::{Target, UpstreamSpec};

/// Resolving a fan-out upstream failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ResolveError {
    /// The DNS lookup failed.
    #[error("resolving {name}: {cause}")]
    Lookup {
        /// The name looked up.
        name: String,
        /// The resolver's message.
        cause: String,
    },
    /// The name exists but has no address (or no SRV record).
    #[error("resolving {name}: no addresses")]
    Empty {
        /// The name looked up.
        name: String,
    },
}

/// The system's DNS configuration could not be read, so no resolver could be built.
#[derive(Debug, Clone, thiserror::Error)]
#[error("reading the system DNS configuration: {cause}")]
pub struct ResolverConfigError {
    /// The resolver's message.
    pub cause: String,
}

/// Which addresses of a name become targets (`--dns.ip-family`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum IpFamily {
    /// IPv4 when the name has A records, else IPv6: one address per pod of a dual-stack
    /// Service (the AAAA record of a pod that has an A record is the same pod).
    #[default]
    Auto,
    /// A records only.
    Ipv4,
    /// AAAA records only.
    Ipv6,
    /// A and AAAA records: every address is a target. Right only when each address is a
    /// different process; a dual-stack pod is then scraped (and summed) twice.
    Both,
}

impl IpFamily {
    /// Every value, as the flag spells them.
    pub const NAMES: [&'static str; 4] = ["auto", "ipv4", "ipv6", "both"];

    /// The hickory lookup that asks for what this family keeps (`Auto` asks for A, then for
    /// AAAA only when there is no A record).
    fn strategy(self) -> LookupIpStrategy {
        match self {
            Self::Auto => LookupIpStrategy::Ipv4thenIpv6,
            Self::Ipv4 => LookupIpStrategy::Ipv4Only,
            Self::Ipv6 => LookupIpStrategy::Ipv6Only,
            Self::Both => LookupIpStrategy::Ipv4AndIpv6,
        }
    }

    /// Keeps the addresses of this family from `ips` (`Auto`: the IPv4 ones if there are any,
    /// else all). The resolver already asks for the right records; this holds the rule for
    /// answers that mix families anyway (e.g. /etc/hosts).
    pub fn select(self, mut ips: Vec<IpAddr>) -> Vec<IpAddr> {
        match self {
            Self::Both => {}
            Self::Ipv4 => ips.retain(IpAddr::is_ipv4),
            Self::Ipv6 => ips.retain(IpAddr::is_ipv6),
            Self::Auto => {
                if ips.iter().any(IpAddr::is_ipv4) {
                    ips.retain(IpAddr::is_ipv4);
                }
            }
        }
        ips
    }
}

impl FromStr for IpFamily {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(Self::Auto),
            "ipv4" | "4" => Ok(Self::Ipv4),
            "ipv6" | "6" => Ok(Self::Ipv6),
            "both" => Ok(Self::Both),
            _ => Err(format!(
                "invalid IP family {s:?}: expected one of {}",
                Self::NAMES.join(", ")
            )),
        }
    }
}

impl fmt::Display for IpFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Auto => "auto",
            Self::Ipv4 => "ipv4",
            Self::Ipv6 => "ipv6",
            Self::Both => "both",
        })
    }
}

/// A resolver for `dns+` and `dnssrv+` upstreams.
#[derive(Clone)]
pub struct DnsResolver {
    inner: TokioResolver,
    family: IpFamily,
}

impl std::fmt::Debug for DnsResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsResolver").finish_non_exhaustive()
    }
}

impl DnsResolver {
    /// A resolver using the system configuration (`/etc/resolv.conf`, `/etc/hosts`), or only the
    /// given DNS server (UDP and TCP on the same port) when `server` is set; `/etc/hosts` is
    /// read in both cases. `timeout` bounds each DNS query; `family` says which addresses of a
    /// name are targets.
    pub fn new(
        server: Option<SocketAddr>,
        timeout: Duration,
        family: IpFamily,
    ) -> Result<Self, ResolverConfigError> {
        let (config, mut opts) = match server {
            Some(addr) => (
                ResolverConfig::from_parts(
                    None,
                    vec![],
                    NameServerConfigGroup::from_ips_clear(&[addr.ip()], addr.port(), true),
                ),
                ResolverOpts::default(),
            ),
            None => hickory_resolver::system_conf::read_system_conf().map_err(|e| {
                ResolverConfigError {
                    cause: e.to_string(),
                }
            })?,
        };
        // A headless Service may be dual-stack: see the module docs.
        opts.ip_strategy = family.strategy();
        opts.use_hosts_file = ResolveHosts::Always;
        // Never reuse an answer across scrapes (see the module docs).
        opts.positive_max_ttl = Some(Duration::ZERO);
        opts.negative_max_ttl = Some(Duration::ZERO);
        opts.cache_size = 0;
        opts.timeout = timeout;
        opts.attempts = 2;
        let inner = TokioResolver::builder_with_config(config, TokioConnectionProvider::default())
            .with_options(opts)
            .build();
        Ok(Self { inner, family })
    }

    /// The addresses of `host` in the resolver's [`IpFamily`], sorted and deduplicated. An IP
    /// address given as the host is returned as it is.
    pub async fn lookup_ips(&self, host: &str) -> Result<Vec<IpAddr>, ResolveError> {
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(vec![ip]);
        }
        self.inner.clear_cache();
        let found = self
            .inner
            .lookup_ip(host)
            .await
            .map_err(|e| lookup_error(host, &e))?;
        let mut ips = self.family.select(found.iter().collect());
        ips.sort_unstable();
        ips.dedup();
        if ips.is_empty() {
            return Err(ResolveError::Empty {
                name: host.to_owned(),
            });
        }
        Ok(ips)
    }

    /// The targets of `spec` right now: one per address (fan-out), or the one URL (static).
    /// Targets are sorted by address, so output order does not depend on DNS answer order.
    pub async fn targets(&self, spec: &UpstreamSpec) -> Result<Vec<Target>, ResolveError> {
        match spec {
            UpstreamSpec::Static { uri } => Ok(vec![Target::fixed(uri)]),
            UpstreamSpec::Dns {
                scheme,
                host,
                port,
                authority,
                path,
            } => {
                let ips = self.lookup_ips(host).await?;
                Ok(ips
                    .into_iter()
                    .map(|ip| {
                        Target::at(scheme, SocketAddr::new(ip, *port), authority.as_str(), path)
                    })
                    .collect())
            }
            UpstreamSpec::DnsSrv { scheme, name, path } => {
                self.inner.clear_cache();
                let srv = self
                    .inner
                    .srv_lookup(name.as_str())
                    .await
                    .map_err(|e| lookup_error(name, &e))?;
                let mut hosts: Vec<(String, u16)> = srv
                    .iter()
                    .map(|r| (r.target().to_utf8(), r.port()))
                    .collect();
                hosts.sort_unstable();
                hosts.dedup();
                let mut targets = Vec::new();
                for (host, port) in hosts {
                    let ips = self.lookup_ips(&host).await?;
                    let header = format!("{}:{port}", host.trim_end_matches('.'));
                    targets
                        .extend(ips.into_iter().map(|ip| {
                            Target::at(scheme, SocketAddr::new(ip, port), &header, path)
                        }));
                }
                targets.sort_unstable_by(|a, b| a.name.cmp(&b.name));
                targets.dedup_by(|a, b| a.name == b.name);
                if targets.is_empty() {
                    return Err(ResolveError::Empty { name: name.clone() });
                }
                Ok(targets)
            }
        }
    }
}

fn lookup_error(name: &str, e: &hickory_resolver::ResolveError) -> ResolveError {
    if e.is_no_records_found() {
        ResolveError::Empty {
            name: name.to_owned(),
        }
    } else {
        ResolveError::Lookup {
            name: name.to_owned(),
            cause: e.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_family_by_default() {
        let v4: IpAddr = "10.0.0.5".parse().unwrap();
        let v6: IpAddr = "fd00::5".parse().unwrap();
        let both = vec![v4, v6];
        assert_eq!(IpFamily::default(), IpFamily::Auto);
        assert_eq!(IpFamily::Auto.select(both.clone()), vec![v4]);
        assert_eq!(IpFamily::Auto.select(vec![v6]), vec![v6]);
        assert!(IpFamily::Ipv4.select(vec![v6]).is_empty());
        assert_eq!(IpFamily::Ipv6.select(both.clone()), vec![v6]);
        assert_eq!(IpFamily::Both.select(both.clone()), both);
        for name in IpFamily::NAMES {
            let f: IpFamily = name.parse().unwrap();
            assert_eq!(f.to_string(), name);
        }
        let e = "dual".parse::<IpFamily>().unwrap_err();
        assert!(e.contains("auto, ipv4, ipv6, both"), "{e}");
    }
}
