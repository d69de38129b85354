//! The files that shape a point of view: its hosts file, resolver configuration and CA bundle.
//!
//! For a container they are read through `/proc/<pid>/root`, so they are the container's own
//! files, exactly what a process inside would use. For the host, the root is `/`.

use std::net::IpAddr;
use std::path::{Path, PathBuf};

use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;

/// CA bundle locations of common distributions, in the order Go's x509 package tries them.
const CA_BUNDLES: &[&str] = &[
    "etc/ssl/certs/ca-certificates.crt",
    "etc/pki/tls/certs/ca-bundle.crt",
    "etc/ssl/ca-bundle.pem",
    "etc/pki/tls/cacert.pem",
    "etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",
    "etc/ssl/cert.pem",
];

/// Hosts entries, resolver configuration and trusted CAs of one point of view.
#[derive(Debug, Clone, Default)]
pub struct ViewFiles {
    /// The directory that is `/` for this view.
    pub root: PathBuf,
    pub hosts: Vec<(IpAddr, Vec<String>)>,
    pub resolv_conf: Option<Vec<u8>>,
    pub roots: Vec<CertificateDer<'static>>,
    /// Where the roots came from, for messages.
    pub roots_source: Option<String>,
}

impl ViewFiles {
    /// Reads the files below `root`.
    pub fn load(root: &Path) -> ViewFiles {
        let hosts = std::fs::read_to_string(root.join("etc/hosts")).map(|text| parse_hosts(&text)).unwrap_or_default();
        let resolv_conf = std::fs::read(root.join("etc/resolv.conf")).ok();

        let mut roots = Vec::new();
        let mut roots_source = None;
        for bundle in CA_BUNDLES {
            let path = root.join(bundle);
            if let Ok(bytes) = std::fs::read(&path) {
                roots = parse_pem_certificates(&bytes);
                if !roots.is_empty() {
                    roots_source = Some(format!("/{bundle}"));
                    break;
                }
            }
        }
        ViewFiles { root: root.to_path_buf(), hosts, resolv_conf, roots, roots_source }
    }

    /// Maps a path as the view sees it to a path ci-doctor can open.
    pub fn path(&self, inside: &str) -> PathBuf {
        self.root.join(inside.trim_start_matches('/'))
    }

    /// Addresses of `name` in the hosts file, case-insensitive, in file order.
    pub fn lookup_hosts(&self, name: &str) -> Vec<IpAddr> {
        let name = name.trim_end_matches('.');
        self.hosts
            .iter()
            .filter(|(_, names)| names.iter().any(|known| known.eq_ignore_ascii_case(name)))
            .map(|(address, _)| *address)
            .collect()
    }
}

/// Parses `/etc/hosts`: an address, then names, `#` comments.
pub fn parse_hosts(text: &str) -> Vec<(IpAddr, Vec<String>)> {
    text.lines()
        .filter_map(|line| {
            let line = line.split('#').next().unwrap_or("");
            let mut words = line.split_whitespace();
            let address = words.next()?.parse::<IpAddr>().ok()?;
            let names: Vec<String> = words.map(str::to_string).collect();
            (!names.is_empty()).then_some((address, names))
        })
        .collect()
}

/// Every certificate in a PEM bundle; other PEM sections and broken entries are skipped.
pub fn parse_pem_certificates(bytes: &[u8]) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_slice_iter(bytes).filter_map(Result::ok).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_file_is_parsed_with_links() {
        let hosts = parse_hosts("127.0.0.1\tlocalhost\n# comment\n172.17.0.2\tgitlab.example.test 0a1b2c3d gitlab\n::1 localhost ip6-localhost\n");
        let files = ViewFiles { hosts, ..ViewFiles::default() };
        assert_eq!(files.lookup_hosts("GitLab.Example.Test."), vec!["172.17.0.2".parse::<IpAddr>().unwrap()]);
        assert_eq!(files.lookup_hosts("localhost").len(), 2);
        assert!(files.lookup_hosts("gitlab.other").is_empty());
    }
}
