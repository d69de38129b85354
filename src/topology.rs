//! Reasoning about Docker networking: which names a container can resolve and which URLs of a
//! GitLab container a runner container could use.

use crate::facts::docker::{ContainerInfo, GitLabContainer};

/// A URL under which a runner container might reach a GitLab container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub url: String,
    /// The GitLab container this URL leads to.
    pub gitlab: String,
    /// The reason this URL should work, for messages.
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

/// Reads `external_url` and `nginx['listen_port']` from `GITLAB_OMNIBUS_CONFIG`, which contains
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

/// Reads `external_url` from `gitlab.rb`, ignoring comments.
pub fn parse_gitlab_rb(text: &str) -> Option<String> {
    text.lines()
        .map(|line| line.split('#').next().unwrap_or("").trim())
        .filter_map(|line| line.strip_prefix("external_url"))
        .filter_map(quoted)
        .next_back()
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
    fn gitlab_rb_gives_the_active_url() {
        let text = "# external_url 'http://old.example.test'\nexternal_url \"https://gitlab.example.test\"\nnginx['listen_port'] = 80\n";
        assert_eq!(parse_gitlab_rb(text).as_deref(), Some("https://gitlab.example.test"));
        assert_eq!(parse_gitlab_rb("# external_url 'x'\n"), None);
    }

    #[test]
    fn shared_network_candidate_comes_first() {
        let runner = container("gitlab-runner", &["ci-net"]);
        let gitlab = GitLabContainer {
            container: container("gitlab", &["ci-net"]),
            external_url: Some("http://gitlab.example.test:8080".into()),
            external_url_source: None,
            listen_port: Some(80),
        };
        let candidates = gitlab_candidates(&runner, &[gitlab]);
        assert_eq!(candidates[0].url, "http://gitlab/");
        assert_eq!(candidates[0].network.as_deref(), Some("ci-net"));
        assert_eq!(candidates[1].url, "http://gitlab.example.test:8080/");
    }

    #[test]
    fn link_alias_is_a_bridge_candidate() {
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

/// Finds the GitLab container an entry's `url` leads to, by name, host name, alias, link or
/// address. Without a match, it is the only GitLab container when there is just one.
pub fn gitlab_for_entry<'a>(facts: &'a crate::facts::Facts, runner: usize, entry: &crate::facts::Entry) -> Option<&'a GitLabContainer> {
    let host = entry.keys.str("url").and_then(|url| url::Url::parse(url).ok()).and_then(|url| url.host_str().map(str::to_string));
    let container = facts.runners[runner].container();
    if let Some(host) = host {
        let linked = container.and_then(|container| container.links.iter().find(|link| link.alias.eq_ignore_ascii_case(&host))).map(|link| link.target.clone());
        let found = facts.gitlabs.iter().find(|gitlab| {
            let candidate = &gitlab.container;
            candidate.name.eq_ignore_ascii_case(&host)
                || candidate.hostname.eq_ignore_ascii_case(&host)
                || linked.as_deref() == Some(candidate.name.as_str())
                || candidate.networks.iter().any(|network| network.ip.as_deref() == Some(host.as_str()) || network.aliases.iter().any(|alias| alias.eq_ignore_ascii_case(&host)))
                || gitlab.external_url.as_deref().and_then(|url| url::Url::parse(url).ok()).is_some_and(|url| url.host_str().is_some_and(|own| own.eq_ignore_ascii_case(&host)))
        });
        if found.is_some() {
            return found;
        }
    }
    match facts.gitlabs.as_slice() {
        [only] => Some(only),
        _ => None,
    }
}

/// Where job containers clone from, and how ci-doctor knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloneSource {
    /// The base URL: scheme, host and port, as GitLab or `clone_url` gives it.
    pub url: String,
    /// `clone_url`, or the GitLab container whose advertised URL this is.
    pub from: CloneFrom,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloneFrom {
    /// The entry's own `clone_url`.
    CloneUrl,
    /// GitLab's `external_url`, read from the container named here.
    ExternalUrl { container: String, source: String },
    /// No `external_url`: GitLab falls back to the container's host name.
    Hostname { container: String },
}

/// The clone URL of an entry's jobs: its `clone_url`, else the URL its GitLab advertises.
pub fn clone_source(facts: &crate::facts::Facts, runner: usize, entry: &crate::facts::Entry) -> Option<CloneSource> {
    if let Some(clone_url) = entry.keys.str("clone_url").filter(|url| !url.trim().is_empty()) {
        return Some(CloneSource { url: clone_url.to_string(), from: CloneFrom::CloneUrl });
    }
    let gitlab = gitlab_for_entry(facts, runner, entry)?;
    let from = match (&gitlab.external_url, &gitlab.external_url_source) {
        (Some(_), source) => CloneFrom::ExternalUrl { container: gitlab.container.name.clone(), source: source.clone().unwrap_or_default() },
        (None, _) => CloneFrom::Hostname { container: gitlab.container.name.clone() },
    };
    Some(CloneSource { url: gitlab.advertised_url(), from })
}

/// The network settings a job container of `entry` gets from `[runners.docker]`.
pub fn job_network(entry: &crate::facts::Entry) -> crate::facts::job::JobNetwork {
    crate::facts::job::JobNetwork {
        network_mode: entry.keys.str("docker.network_mode").filter(|mode| !mode.is_empty() && *mode != "default" && *mode != "bridge").map(str::to_string),
        extra_hosts: entry.keys.strings("docker.extra_hosts"),
        links: entry.keys.strings("docker.links"),
        dns: entry.keys.strings("docker.dns"),
        dns_search: entry.keys.strings("docker.dns_search"),
    }
}

/// Returns true when `host` looks like a Docker container id (12 or 64 hex digits), which is
/// the host name of a container started without `--hostname`.
pub fn is_container_id(host: &str) -> bool {
    (host.len() == 12 || host.len() == 64) && host.chars().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
}

/// The runner version of a runner container, from its image tag (`v17.5.3` or `17.5.3`);
/// `None` for other tags such as `latest`.
pub fn runner_version(process: &crate::facts::RunnerProcess) -> Option<(u32, u32, u32)> {
    let image = &process.container()?.image;
    let tag = image.rsplit_once(':').map(|(_, tag)| tag).filter(|tag| !tag.contains('/'))?;
    let tag = tag.trim_start_matches('v');
    let tag = tag.split(['-', '+']).next()?;
    let mut parts = tag.split('.').map(|part| part.parse::<u32>().ok());
    Some((parts.next()??, parts.next()??, parts.next().flatten().unwrap_or(0)))
}

/// The helper image an entry's jobs use: its `helper_image`, else the default for the
/// runner's version and the daemon's architecture. `None` when the version is unknown.
pub fn helper_image(process: &crate::facts::RunnerProcess, entry: &crate::facts::Entry, daemon: Option<&crate::facts::DaemonInfo>) -> Option<String> {
    if let Some(image) = entry.keys.str("docker.helper_image").filter(|image| !image.is_empty()) {
        return Some(image.to_string());
    }
    let (major, minor, patch) = runner_version(process)?;
    let arch = match daemon.map(|info| info.arch.as_str()) {
        Some("arm64" | "aarch64") => "arm64",
        Some("arm") => "arm",
        Some("s390x") => "s390x",
        Some("ppc64le") => "ppc64le",
        _ => "x86_64",
    };
    Some(format!("registry.gitlab.com/gitlab-org/gitlab-runner/gitlab-runner-helper:{arch}-v{major}.{minor}.{patch}"))
}

/// A repair of an unreachable clone URL, with the URL a job-view probe tries to confirm it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloneCandidate {
    /// The URL to try from the job's view.
    pub probe_url: String,
    pub remedy: CloneRemedy,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloneRemedy {
    /// Set `clone_url` to this base URL.
    CloneUrl(String),
    /// Map `host` to `address` in job containers with `extra_hosts`.
    ExtraHost { host: String, address: String },
}

/// Repairs for an entry whose jobs cannot reach `clone`, the most robust first: the runner's own
/// `url` when jobs reach it too, GitLab's container name on the network jobs join, and last a
/// fixed address of the GitLab container on the default bridge.
pub fn clone_candidates(facts: &crate::facts::Facts, runner: usize, entry: &crate::facts::Entry, clone: &CloneSource) -> Vec<CloneCandidate> {
    let mut out = Vec::new();
    let Ok(clone_url) = url::Url::parse(&clone.url) else { return out };
    let clone_host = clone_url.host_str().unwrap_or_default().to_string();

    if let Some(url) = entry.keys.str("url")
        && url != clone.url
        && let Ok(parsed) = url::Url::parse(url)
    {
        out.push(CloneCandidate {
            probe_url: url.to_string(),
            remedy: CloneRemedy::CloneUrl(origin(&parsed)),
            reason: format!("the runner's own `url`, `{url}`, points at the same GitLab"),
        });
    }

    let Some(gitlab) = gitlab_for_entry(facts, runner, entry) else { return out };
    let https = clone_url.scheme() == "https";
    let port = gitlab.internal_port(https);
    let network = job_network(entry);
    match &network.network_mode {
        Some(mode) if is_user_defined(mode) && gitlab.container.network(mode).is_some() => {
            let url = base_url(https, &gitlab.container.name, port);
            out.push(CloneCandidate {
                probe_url: url.clone(),
                remedy: CloneRemedy::CloneUrl(url.trim_end_matches('/').to_string()),
                reason: format!("container `{}` is on network `{mode}`, which job containers join", gitlab.container.name),
            });
        }
        None => {
            if let Some(address) = gitlab.container.network("bridge").and_then(|network| network.ip.clone()) {
                out.push(CloneCandidate {
                    probe_url: base_url(https, &address, port),
                    remedy: CloneRemedy::ExtraHost { host: clone_host, address: address.clone() },
                    reason: format!("`{address}` is container `{}` on the default bridge, where job containers run", gitlab.container.name),
                });
            }
        }
        _ => {}
    }
    out
}

/// `scheme://host[:port]` of a URL, without a trailing slash.
pub fn origin(url: &url::Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{}://{host}:{port}", url.scheme()),
        None => format!("{}://{host}", url.scheme()),
    }
}
