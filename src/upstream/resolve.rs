//! DNS resolution of fan-out upstreams with hickory-resolver.
//!
//! Every scrape resolves again: pods come and go behind a headless Service and a cached answer
//! would keep scraping a pod that is gone (or miss a new one). The resolver is built with a zero
//! TTL ceiling and its cache is cleared before each lookup, so no answer outlives one scrape.

use std::net::{IpAddr, SocketAddr};
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

/// A resolver for `dns+` and `dnssrv+` upstreams.
#[derive(Clone)]
pub struct DnsResolver {
    inner: TokioResolver,
}

impl std::fmt::Debug for DnsResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DnsResolver").finish_non_exhaustive()
    }
}

impl DnsResolver {
    /// A resolver using the system configuration (`/etc/resolv.conf`, `/etc/hosts`), or only the
    /// given DNS server (UDP and TCP on the same port) when `server` is set; `/etc/hosts` is
    /// read in both cases. `timeout` bounds each DNS query.
    pub fn new(server: Option<SocketAddr>, timeout: Duration) -> Result<Self, ResolverConfigError> {
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
        // A and AAAA, as a headless Service may be dual-stack.
        opts.ip_strategy = LookupIpStrategy::Ipv4AndIpv6;
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
        Ok(Self { inner })
    }

    /// All addresses of `host` (A and AAAA), sorted and deduplicated.
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
        let mut ips: Vec<IpAddr> = found.iter().collect();
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
