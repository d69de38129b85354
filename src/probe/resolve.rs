//! Name lookup the way the runner does it.
//!
//! Official runner builds use Go's pure resolver, which reads `/etc/hosts` first and then asks
//! the servers in `/etc/resolv.conf` with its search list and `ndots`. This module does the
//! same with the view's own files, so a lookup inside a container uses the container's hosts
//! entries (where links and `--add-host` live) and its DNS servers (Docker's embedded DNS on
//! user-defined networks).

use std::net::IpAddr;
use std::time::Duration;

use hickory_resolver::config::{ResolveHosts, ResolverConfig, ResolverOpts};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::Resolver;

use super::view::ViewFiles;
use crate::facts::probe::Resolution;

/// Looks up `host` from the view described by `files`, within `timeout`.
pub async fn resolve(host: &str, files: &ViewFiles, timeout: Duration) -> Resolution {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(address) = host.parse::<IpAddr>() {
        return Resolution::Literal { addresses: vec![address.to_string()] };
    }

    let from_hosts = files.lookup_hosts(host);
    if !from_hosts.is_empty() {
        return Resolution::HostsFile { addresses: from_hosts.iter().map(IpAddr::to_string).collect() };
    }

    let Some(resolv_conf) = &files.resolv_conf else {
        return Resolution::Failed { message: "the view has no /etc/resolv.conf".into(), servers: Vec::new() };
    };
    let (config, options) = match parse_config(resolv_conf, timeout) {
        Ok(parsed) => parsed,
        Err(message) => return Resolution::Failed { message, servers: Vec::new() },
    };
    let servers: Vec<String> = config.name_servers().iter().map(|server| server.ip.to_string()).collect();

    let mut builder = Resolver::builder_with_config(config, TokioRuntimeProvider::default());
    *builder.options_mut() = options;
    let resolver = match builder.build() {
        Ok(resolver) => resolver,
        Err(error) => return Resolution::Failed { message: error.to_string(), servers },
    };

    match tokio::time::timeout(timeout, resolver.lookup_ip(host)).await {
        Ok(Ok(lookup)) => {
            let mut addresses: Vec<IpAddr> = lookup.iter().collect();
            // Prefer IPv4, as most container networks are IPv4-only.
            addresses.sort_by_key(|address| address.is_ipv6());
            let addresses: Vec<String> = addresses.iter().map(IpAddr::to_string).collect();
            if addresses.is_empty() {
                Resolution::NotFound { servers }
            } else {
                Resolution::Dns { addresses, servers }
            }
        }
        Ok(Err(error)) if error.is_nx_domain() || error.is_no_records_found() => Resolution::NotFound { servers },
        Ok(Err(error)) => Resolution::Failed { message: error.to_string(), servers },
        Err(_) => Resolution::Failed { message: format!("no answer within {} s", timeout.as_secs_f64()), servers },
    }
}

/// Reads resolver settings from `resolv.conf` text; the hosts file is handled separately, and
/// each server gets one attempt so that a dead server costs one time limit.
fn parse_config(resolv_conf: &[u8], timeout: Duration) -> Result<(ResolverConfig, ResolverOpts), String> {
    let (config, mut options) = hickory_resolver::system_conf::parse_resolv_conf(resolv_conf)
        .map_err(|error| format!("unusable /etc/resolv.conf: {error}"))?;
    options.use_hosts_file = ResolveHosts::Never;
    options.timeout = options.timeout.min(timeout);
    options.attempts = 1;
    options.cache_size = 0;
    Ok((config, options))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn literal_and_hosts_entries_need_no_dns() {
        let files = ViewFiles { hosts: super::super::view::parse_hosts("10.0.0.5 gitlab\n"), ..ViewFiles::default() };
        let literal = resolve("[::1]", &files, Duration::from_secs(1)).await;
        assert_eq!(literal, Resolution::Literal { addresses: vec!["::1".into()] });
        let hosts = resolve("gitlab", &files, Duration::from_secs(1)).await;
        assert_eq!(hosts, Resolution::HostsFile { addresses: vec!["10.0.0.5".into()] });
    }

    #[tokio::test]
    async fn missing_resolv_conf_is_a_failure() {
        let files = ViewFiles::default();
        let result = resolve("gitlab", &files, Duration::from_secs(1)).await;
        assert!(matches!(result, Resolution::Failed { .. }), "{result:?}");
    }
}
