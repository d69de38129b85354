//! Reasoning about Docker networking: which names a container can resolve and which URLs of a
//! GitLab container a runner container could use.

use crate::facts::docker::{ContainerInfo, GitLabContainer};

/// A URL under which a runner container might reach a GitLab container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub url: String,
    /// The GitLab container this URL leads to.
    pub gitlab: String,
    /// Why this URL should work, for messages.
    pub reason: String,
    /// The user-defined network that makes the name resolve, which job containers must join
    /// too (through `network_mode`) to use the same URL.
    pub network: Option<String>,
}

/// URLs of every GitLab container that `runner` could use, the most robust first: the
/// container name on a shared user-defined network, then a legacy link alias, then GitLab's
/// `external_url`.
pub fn gitlab_candidates(runner: &ContainerInfo, gitlabs: &[GitLabContainer]) -> Vec<Candidate> {
    let mut out: Vec<Candidate> = Vec::new();
    let mut push = |candidate: Candidate| {
        if !out.iter().any(|known| known.url == candidate.url) {
            out.push(candidate);
        }
    };

    for gitlab in gitlabs {
        let container = &gitlab.container;
        if container.id == runner.id {
            continue;
        }
        let https = gitlab.serves_https();
        let port = gitlab.internal_port(https);

        for network in shared_user_networks(runner, container) {
            push(Candidate {
                url: base_url(https, &container.name, port),
                gitlab: container.name.clone(),
                reason: format!("container `{}` shares network `{network}` with the runner", container.name),
                network: Some(network),
            });
        }
        for link in runner.links.iter().filter(|link| link.target == container.name) {
            push(Candidate {
                url: base_url(https, &link.alias, port),
                gitlab: container.name.clone(),
                reason: format!("the runner container has a link to `{}` as `{}`", container.name, link.alias),
                network: None,
            });
        }
        if let Some(external) = &gitlab.external_url {
            push(Candidate {
                url: with_trailing_slash(external),
                gitlab: container.name.clone(),
                reason: format!("`external_url` of GitLab container `{}`", container.name),
                network: None,
            });
        }
    }
    out
}

/// User-defined networks both containers are attached to. The default bridge does not count:
/// names do not resolve there.
pub fn shared_user_networks(a: &ContainerInfo, b: &ContainerInfo) -> Vec<String> {
    a.networks
        .iter()
        .filter(|network| is_user_defined(&network.name))
        .filter(|network| b.network(&network.name).is_some())
        .map(|network| network.name.clone())
        .collect()
}

/// Returns true for networks where Docker's embedded DNS resolves container names.
pub fn is_user_defined(network: &str) -> bool {
    !matches!(network, "bridge" | "host" | "none" | "default" | "")
}

/// Returns true when `host` names the container's own loopback.
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']').trim_end_matches('.');
    if host.eq_ignore_ascii_case("localhost") || host.to_ascii_lowercase().ends_with(".localhost") {
        return true;
    }
    host.parse::<std::net::IpAddr>().is_ok_and(|address| address.is_loopback())
}

/// `scheme://host[:port]/`, leaving out the port when it is the scheme's default.
pub fn base_url(https: bool, host: &str, port: u16) -> String {
    let scheme = if https { "https" } else { "http" };
    let default = if https { 443 } else { 80 };
    if port == default { format!("{scheme}://{host}/") } else { format!("{scheme}://{host}:{port}/") }
}

fn with_trailing_slash(url: &str) -> String {
    if url.ends_with('/') { url.to_string() } else { format!("{url}/") }
}

/// Reads `external_url` and `nginx['listen_port']` from `GITLAB_OMNIBUS_CONFIG`, which holds
/// Ruby statements separated by `;` or newlines.
pub fn parse_omnibus_config(text: &str) -> (Option<String>, Option<u16>) {
    let mut external_url = None;
    let mut listen_port = None;
    for statement in text.split([';', '\n']) {
        let statement = statement.trim();
        if let Some(rest) = statement.strip_prefix("external_url") {
            external_url = quoted(rest);
        } else if let Some(rest) = statement.strip_prefix("nginx['listen_port']").or_else(|| statement.strip_prefix("nginx[\"listen_port\"]")) {
            listen_port = rest.trim().trim_start_matches('=').trim().parse().ok();
        }
    }
    (external_url, listen_port)
}

fn quoted(text: &str) -> Option<String> {
    let text = text.trim().trim_start_matches('=').trim();
    let quote = text.chars().next().filter(|c| *c == '\'' || *c == '"')?;
    let rest = &text[1..];
    let end = rest.find(quote)?;
    Some(rest[..end].to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::docker::{Link, NetworkAttachment};

    fn container(name: &str, networks: &[&str]) -> ContainerInfo {
        ContainerInfo {
            id: format!("id-{name}"),
            name: name.into(),
            networks: networks.iter().map(|network| NetworkAttachment { name: network.to_string(), ..Default::default() }).collect(),
            ..Default::default()
        }
    }

    #[test]
    fn omnibus_config_gives_url_and_port() {
        let (url, port) = parse_omnibus_config("external_url 'http://gitlab.example.test:8080'; nginx['listen_port'] = 80");
        assert_eq!(url.as_deref(), Some("http://gitlab.example.test:8080"));
        assert_eq!(port, Some(80));
        assert_eq!(parse_omnibus_config("gitlab_rails['x'] = 1").0, None);
    }

    #[test]
    fn shared_network_candidate_comes_first() {
        let runner = container("gitlab-runner", &["ci-net"]);
        let gitlab = GitLabContainer {
            container: container("gitlab", &["ci-net"]),
            external_url: Some("http://gitlab.example.test:8080".into()),
            listen_port: Some(80),
        };
        let candidates = gitlab_candidates(&runner, &[gitlab]);
        assert_eq!(candidates[0].url, "http://gitlab/");
        assert_eq!(candidates[0].network.as_deref(), Some("ci-net"));
        assert_eq!(candidates[1].url, "http://gitlab.example.test:8080/");
    }

    #[test]
    fn link_alias_is_a_candidate_on_the_default_bridge() {
        let mut runner = container("gitlab-runner", &["bridge"]);
        runner.links.push(Link { target: "gitlab".into(), alias: "gitlab.example.test".into() });
        let gitlab = GitLabContainer { container: container("gitlab", &["bridge"]), ..Default::default() };
        let candidates = gitlab_candidates(&runner, &[gitlab]);
        assert_eq!(candidates.len(), 1);
        assert_eq!(candidates[0].url, "http://gitlab.example.test/");
        assert_eq!(candidates[0].network, None);
    }

    #[test]
    fn loopback_hosts_are_recognised() {
        for host in ["localhost", "LOCALHOST", "127.0.0.1", "127.1.2.3", "[::1]", "app.localhost"] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in ["gitlab", "10.0.0.1", "localhost.example.test"] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }
}
