//! Talks to the Docker Engine: version negotiation, daemon facts, and container inspection.

use std::collections::HashMap;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::query_parameters::ListContainersOptionsBuilder;
use bollard::{ClientVersion, Docker};
use bollard::models::{ContainerInspectResponse, ContainerSummary, SystemInfo};

use crate::facts::docker::{
    ContainerInfo, DaemonInfo, DockerError, DockerErrorKind, Link, MountInfo, NetworkAttachment,
    PortBinding, SocketInfo,
};
use crate::secret::redact;

/// The socket every Docker client uses when `DOCKER_HOST` is unset.
pub const DEFAULT_SOCKET: &str = "/var/run/docker.sock";

/// Environment variables of containers that checks read. Everything else is dropped when
/// inspecting, because container environments often carry passwords and tokens.
const KEPT_ENV: &[&str] = &[
    "DOCKER_HOST", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH", "CONFIG_FILE", "CI_SERVER_URL",
    "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy",
    // Options of `gitlab-runner register` that images with a registering entrypoint pass on.
    "RUNNER_TAG_LIST", "REGISTER_RUN_UNTAGGED", "REGISTER_LOCKED", "REGISTER_ACCESS_LEVEL",
    "REGISTER_PAUSED", "REGISTER_MAXIMUM_TIMEOUT", "REGISTER_MAINTENANCE_NOTE",
];

/// A connected client and what it is connected to.
#[derive(Clone)]
pub struct DockerClient {
    pub docker: Docker,
    pub timeout: Duration,
}

/// The endpoint ci-doctor uses, from `DOCKER_HOST` or the default.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub url: String,
    pub from_env: bool,
}

impl Endpoint {
    /// Reads `DOCKER_HOST`; an empty value counts as unset, as the Docker CLI treats it.
    pub fn from_env() -> Endpoint {
        match std::env::var("DOCKER_HOST") {
            Ok(url) if !url.trim().is_empty() => Endpoint { url: url.trim().to_string(), from_env: true },
            _ => Endpoint { url: format!("unix://{DEFAULT_SOCKET}"), from_env: false },
        }
    }

    /// The socket path of a `unix://` endpoint.
    pub fn socket_path(&self) -> Option<PathBuf> {
        self.url.strip_prefix("unix://").map(PathBuf::from)
    }
}

/// Stats the socket file of a `unix://` endpoint.
pub fn inspect_socket(path: &Path) -> SocketInfo {
    let mut info = SocketInfo { path: path.to_path_buf(), ..SocketInfo::default() };
    if let Ok(meta) = std::fs::metadata(path) {
        info.exists = true;
        info.is_socket = meta.file_type().is_socket();
        info.uid = meta.uid();
        info.gid = meta.gid();
        info.mode = meta.mode() & 0o7777;
        info.owner = nix::unistd::User::from_uid(meta.uid().into()).ok().flatten().map(|user| user.name);
        info.group = nix::unistd::Group::from_gid(meta.gid().into()).ok().flatten().map(|group| group.name);
    }
    info
}

/// Connects to `endpoint` and negotiates the API version with one `GET /version`.
pub async fn connect(endpoint: &Endpoint, timeout: Duration) -> Result<(DockerClient, DaemonInfo), DockerError> {
    negotiate(endpoint, open_newest(endpoint, timeout)?).await
}

/// A client for `endpoint` at the newest API version bollard knows; [`negotiate`] settles the
/// version the daemon speaks.
pub fn open_newest(endpoint: &Endpoint, timeout: Duration) -> Result<DockerClient, DockerError> {
    let docker = open(endpoint, timeout.as_secs().max(1), bollard::API_DEFAULT_VERSION)?;
    Ok(DockerClient { docker, timeout })
}

/// Asks the daemon behind `client` for its version, and returns a client at an API version the
/// daemon supports.
pub async fn negotiate(endpoint: &Endpoint, client: DockerClient) -> Result<(DockerClient, DaemonInfo), DockerError> {
    let DockerClient { docker, timeout } = client;
    let seconds = timeout.as_secs().max(1);

    // An older daemon rejects the newest version with "client version X is too new. Maximum
    // supported API version is Y"; reconnect at Y.
    let (docker, version) = match call(timeout, docker.version()).await {
        Ok(version) => (docker, version),
        Err(error) => match max_supported_version(&error) {
            Some(max) => {
                let docker = open(endpoint, seconds, &max)?;
                let version = call(timeout, docker.version()).await.map_err(|error| classify(&error))?;
                (docker, version)
            }
            None => return Err(classify(&error)),
        },
    };

    let info = DaemonInfo {
        server_version: version.version.unwrap_or_default(),
        api_version: version.api_version.unwrap_or_default(),
        os: version.os.unwrap_or_default(),
        arch: version.arch.unwrap_or_default(),
        ncpu: None,
        mem_total: None,
        docker_root_dir: None,
        root_free_bytes: None,
        root_total_bytes: None,
        is_local: endpoint.url.starts_with("unix://"),
    };
    Ok((DockerClient { docker, timeout }, info))
}

fn open(endpoint: &Endpoint, seconds: u64, version: &ClientVersion) -> Result<Docker, DockerError> {
    let url = endpoint.url.as_str();
    let result = if let Some(path) = url.strip_prefix("unix://") {
        Docker::connect_with_unix(path, seconds, version)
    } else if url.starts_with("tcp://") || url.starts_with("http://") {
        Docker::connect_with_http(url, seconds, version)
    } else {
        return Err(DockerError {
            kind: DockerErrorKind::InvalidEndpoint,
            message: format!(
                "`{}` is not an endpoint ci-doctor can use; set DOCKER_HOST to `unix:///path/to/docker.sock` or `tcp://host:port`",
                redact(url)
            ),
        });
    };
    result.map_err(|error| classify(&error))
}

/// Runs one Docker call under the probe time limit.
pub async fn call<T>(
    timeout: Duration,
    request: impl Future<Output = Result<T, bollard::errors::Error>>,
) -> Result<T, bollard::errors::Error> {
    let _wait = crate::progress::wait(format!("the Docker Engine at {}", crate::secret::redact_url(&Endpoint::from_env().url)));
    match tokio::time::timeout(timeout, request).await {
        Ok(result) => result,
        Err(_) => Err(bollard::errors::Error::RequestTimeoutError),
    }
}

fn max_supported_version(error: &bollard::errors::Error) -> Option<ClientVersion> {
    let bollard::errors::Error::DockerResponseServerError { message, .. } = error else {
        return None;
    };
    let (_, tail) = message.split_once("Maximum supported API version is ")?;
    let version = tail.trim().trim_end_matches('.');
    let (major, minor) = version.split_once('.')?;
    Some(ClientVersion { major_version: major.parse().ok()?, minor_version: minor.parse().ok()? })
}

/// Sorts a bollard error into the kinds checks explain.
pub fn classify(error: &bollard::errors::Error) -> DockerError {
    use bollard::errors::Error;

    let message = redact(&error_chain(error));
    let kind = match error {
        Error::SocketNotFoundError(_) => DockerErrorKind::SocketMissing,
        Error::RequestTimeoutError => DockerErrorKind::Timeout,
        Error::UnsupportedURISchemeError { .. } | Error::URLParseError { .. } | Error::InvalidURIError { .. } => {
            DockerErrorKind::InvalidEndpoint
        }
        _ => match find_io_error(error) {
            Some(std::io::ErrorKind::PermissionDenied) => DockerErrorKind::PermissionDenied,
            Some(std::io::ErrorKind::ConnectionRefused) => DockerErrorKind::ConnectionRefused,
            Some(std::io::ErrorKind::NotFound) => DockerErrorKind::SocketMissing,
            Some(std::io::ErrorKind::TimedOut) => DockerErrorKind::Timeout,
            _ => DockerErrorKind::Other,
        },
    };
    DockerError { kind, message }
}

fn find_io_error(error: &(dyn std::error::Error + 'static)) -> Option<std::io::ErrorKind> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(error) = current {
        if let Some(io) = error.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        current = error.source();
    }
    None
}

/// Joins an error and its causes into one line.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![error.to_string()];
    let mut current = error.source();
    while let Some(cause) = current {
        let text = cause.to_string();
        if !parts.iter().any(|part| part.contains(&text)) {
            parts.push(text);
        }
        current = cause.source();
    }
    parts.join(": ")
}

impl DockerClient {
    /// `GET /info`: CPU count, memory and root directory. `None` when the daemon does not answer.
    pub async fn system(&self) -> Option<SystemInfo> {
        match call(self.timeout, self.docker.info()).await {
            Ok(system) => Some(system),
            Err(error) => {
                tracing::warn!(error = %redact(&error_chain(&error)), "docker info failed");
                None
            }
        }
    }

    /// Lists every container, running or not.
    pub async fn list(&self) -> Result<Vec<ContainerSummary>, DockerError> {
        let options = ListContainersOptionsBuilder::default().all(true).build();
        call(self.timeout, self.docker.list_containers(Some(options))).await.map_err(|error| classify(&error))
    }

    /// Inspects one container by name or id.
    pub async fn inspect(&self, name: &str) -> Result<ContainerInfo, DockerError> {
        Ok(self.inspect_with_env(name, "").await?.0)
    }

    /// Inspects one container and also returns the value of environment variable `variable`,
    /// which the container facts leave out (its environment may hold secrets).
    pub async fn inspect_with_env(&self, name: &str, variable: &str) -> Result<(ContainerInfo, Option<String>), DockerError> {
        let response = call(self.timeout, self.docker.inspect_container(name, None)).await.map_err(|error| classify(&error))?;
        let prefix = format!("{variable}=");
        let value = response
            .config
            .as_ref()
            .and_then(|config| config.env.as_ref())
            .and_then(|env| env.iter().find_map(|pair| pair.strip_prefix(&prefix).map(str::to_string)))
            .filter(|_| !variable.is_empty());
        Ok((container_info(response), value))
    }
}

/// Returns true when a listed container is a GitLab Runner: its image is a runner image, or its
/// command runs `gitlab-runner`. Containers that a runner creates for jobs are not runners.
pub fn is_runner(summary: &ContainerSummary) -> bool {
    if is_job_container(summary) {
        return false;
    }
    let image = summary.image.as_deref().unwrap_or_default();
    if is_runner_image(image) {
        return true;
    }
    let command = summary.command.as_deref().unwrap_or_default();
    command.split_whitespace().any(|word| {
        let program = word.rsplit('/').next().unwrap_or(word);
        program == "gitlab-runner" || program.starts_with("gitlab-runner-linux") || program == "gitlab-ci-multi-runner"
    })
}

/// Returns true for runner images, but not for the helper image.
pub fn is_runner_image(image: &str) -> bool {
    let repository = repository_of(image);
    let name = repository.rsplit('/').next().unwrap_or(repository);
    (repository.starts_with("gitlab/gitlab-runner") || repository.ends_with("gitlab-org/gitlab-runner"))
        && !name.contains("helper")
}

/// Returns true for GitLab Omnibus images.
pub fn is_gitlab_image(image: &str) -> bool {
    let repository = repository_of(image);
    ["gitlab/gitlab-ce", "gitlab/gitlab-ee"].iter().any(|known| {
        repository == *known || repository.ends_with(&format!("/{known}"))
    })
}

fn repository_of(image: &str) -> &str {
    let without_digest = image.split('@').next().unwrap_or(image);
    // A tag follows the last colon, unless that colon belongs to a registry port.
    match without_digest.rsplit_once(':') {
        Some((repository, tag)) if !tag.contains('/') => repository,
        _ => without_digest,
    }
}

fn is_job_container(summary: &ContainerSummary) -> bool {
    summary.labels.as_ref().is_some_and(|labels| {
        labels.contains_key("com.gitlab.gitlab-runner.type") || labels.contains_key(crate::probe::PROBE_LABEL)
    })
}

/// The container's name without the leading slash.
pub fn summary_name(summary: &ContainerSummary) -> String {
    summary
        .names
        .as_ref()
        .and_then(|names| names.first())
        .map(|name| name.trim_start_matches('/').to_string())
        .unwrap_or_else(|| summary.id.clone().unwrap_or_default())
}

/// Converts `docker inspect` output into the facts checks use.
pub fn container_info(response: ContainerInspectResponse) -> ContainerInfo {
    let name = response.name.unwrap_or_default().trim_start_matches('/').to_string();
    let config = response.config.unwrap_or_default();
    let host_config = response.host_config.unwrap_or_default();
    let state = response.state.unwrap_or_default();

    let networks = response
        .network_settings
        .as_ref()
        .and_then(|settings| settings.networks.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|(network, endpoint)| NetworkAttachment {
            name: network,
            ip: endpoint.ip_address.filter(|ip| !ip.is_empty()),
            aliases: endpoint.aliases.unwrap_or_default(),
        })
        .collect::<Vec<_>>();

    let links = host_config.links.clone().unwrap_or_default().iter().filter_map(|link| parse_link(link)).collect();

    let mounts = response
        .mounts
        .unwrap_or_default()
        .into_iter()
        .map(|mount| MountInfo {
            kind: mount.typ.map(|kind| kind.to_string()).unwrap_or_default(),
            source: mount.source.filter(|source| !source.is_empty()),
            name: mount.name,
            destination: mount.destination.unwrap_or_default(),
            read_write: mount.rw.unwrap_or(true),
        })
        .collect();

    let all_env: Vec<(String, String)> = config
        .env
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter_map(|pair| pair.split_once('=').map(|(key, value)| (key.to_string(), value.to_string())))
        .collect();
    let env = config
        .env
        .unwrap_or_default()
        .into_iter()
        .filter_map(|pair| {
            let (key, value) = pair.split_once('=')?;
            KEPT_ENV.contains(&key).then(|| (key.to_string(), crate::secret::redact_url(value)))
        })
        .collect();

    let mut command = config.entrypoint.unwrap_or_default();
    command.extend(config.cmd.unwrap_or_default());

    let ports = ports_of(&response.network_settings.and_then(|settings| settings.ports).unwrap_or_default());

    let mut info = ContainerInfo {
        id: response.id.unwrap_or_default(),
        name,
        image: config.image.unwrap_or_default(),
        state: state.status.map(|status| status.to_string()).unwrap_or_default(),
        pid: state.pid.filter(|pid| *pid > 0).map(|pid| pid as u32),
        hostname: config.hostname.unwrap_or_default(),
        network_mode: host_config.network_mode.clone().unwrap_or_default(),
        networks,
        links,
        extra_hosts: host_config.extra_hosts.clone().unwrap_or_default(),
        dns: host_config.dns.clone().unwrap_or_default(),
        mounts,
        env,
        command,
        privileged: host_config.privileged.unwrap_or(false),
        ports,
        restart_policy: host_config.restart_policy.and_then(|policy| policy.name).map(|name| name.to_string()),
        private_env: crate::facts::docker::PrivateEnv(Some(all_env)),
    };
    info.networks.sort_by(|a, b| a.name.cmp(&b.name));
    info
}

/// Parses a link as Docker stores it: `/gitlab:/gitlab-runner/gitlab.example.test`.
fn parse_link(link: &str) -> Option<Link> {
    let (target, alias_path) = link.split_once(':')?;
    let alias = alias_path.rsplit('/').next()?;
    Some(Link { target: target.trim_start_matches('/').to_string(), alias: alias.to_string() })
}

fn ports_of(ports: &HashMap<String, Option<Vec<bollard::models::PortBinding>>>) -> Vec<PortBinding> {
    let mut out = Vec::new();
    for (key, bindings) in ports {
        let (port, protocol) = key.split_once('/').unwrap_or((key.as_str(), "tcp"));
        let Ok(container_port) = port.parse::<u16>() else { continue };
        match bindings {
            Some(bindings) if !bindings.is_empty() => {
                for binding in bindings {
                    out.push(PortBinding {
                        container_port,
                        protocol: protocol.to_string(),
                        host_ip: binding.host_ip.clone().filter(|ip| !ip.is_empty()),
                        host_port: binding.host_port.as_deref().and_then(|port| port.parse().ok()),
                    });
                }
            }
            _ => out.push(PortBinding { container_port, protocol: protocol.to_string(), host_ip: None, host_port: None }),
        }
    }
    out.sort_by_key(|binding| (binding.container_port, binding.host_port));
    out.dedup_by_key(|binding| (binding.container_port, binding.host_port));
    out
}

/// Inspects image `reference`; a missing image is a fact, not an error.
pub async fn inspect_image(client: &DockerClient, reference: &str) -> crate::facts::job::ImageFact {
    let mut fact = crate::facts::job::ImageFact { reference: reference.to_string(), ..Default::default() };
    let Ok(image) = call(client.timeout, client.docker.inspect_image(reference)).await else {
        return fact;
    };
    fact.present = true;
    fact.local_only = image.repo_digests.as_ref().is_none_or(|digests| digests.is_empty());
    if let Some(config) = image.config {
        fact.env = config
            .env
            .unwrap_or_default()
            .into_iter()
            .filter_map(|pair| pair.split_once('=').map(|(key, value)| (key.to_string(), crate::secret::redact_url(value))))
            .collect();
        fact.entrypoint = config.entrypoint.filter(|entrypoint| !entrypoint.is_empty());
        fact.exposed_ports = config.exposed_ports.unwrap_or_default();
    }
    fact
}

/// The stopped containers a runner created for jobs, with the end of their logs.
pub async fn job_containers(client: &DockerClient, containers: &[ContainerSummary]) -> Vec<crate::facts::job::JobContainer> {
    // Only the newest few: old jobs leave many containers, and their logs cost a request each.
    const MAX_JOB_CONTAINERS: usize = 8;
    let stopped = containers.iter().filter(|summary| {
        let labels = summary.labels.as_ref();
        let kind = labels.and_then(|labels| labels.get("com.gitlab.gitlab-runner.type"));
        kind.is_some() && summary.state.as_ref().is_some_and(|state| state.to_string() == "exited")
    });
    let mut out = Vec::new();
    for summary in stopped.take(MAX_JOB_CONTAINERS) {
        let labels = summary.labels.clone().unwrap_or_default();
        let name = summary_name(summary);
        let exit_code = summary.status.as_deref().and_then(|status| {
            let inner = status.split_once('(')?.1.split_once(')')?.0;
            inner.parse::<i64>().ok()
        });
        out.push(crate::facts::job::JobContainer {
            log_tail: log_tail(client, &name).await,
            name,
            kind: labels.get("com.gitlab.gitlab-runner.type").cloned().unwrap_or_default(),
            image: summary.image.clone().unwrap_or_default(),
            service: labels.get("com.gitlab.gitlab-runner.service").cloned(),
            state: "exited".into(),
            exit_code,
        });
    }
    out
}

async fn log_tail(client: &DockerClient, name: &str) -> Vec<String> {
    use futures_util::StreamExt;

    let options = bollard::query_parameters::LogsOptionsBuilder::default().stdout(true).stderr(true).tail("20").build();
    let mut stream = client.docker.logs(name, Some(options));
    let mut lines = Vec::new();
    let read = async {
        while let Some(Ok(output)) = stream.next().await {
            let text = output.to_string();
            lines.extend(text.lines().map(|line| crate::secret::redact(line.trim_end())).filter(|line| !line.is_empty()));
        }
    };
    let _ = tokio::time::timeout(client.timeout, read).await;
    lines
}

/// Adds what `GET /info` tells to `info`: CPUs, memory, and the free space of the daemon's root
/// directory when the daemon runs on this machine.
pub fn add_system(info: &mut DaemonInfo, system: SystemInfo) {
    info.ncpu = system.ncpu;
    info.mem_total = system.mem_total;
    info.docker_root_dir = system.docker_root_dir;
    if info.is_local
        && let Some(root) = &info.docker_root_dir
        && let Ok(stats) = nix::sys::statvfs::statvfs(root.as_str())
    {
        let fragment = stats.fragment_size();
        info.root_free_bytes = Some(stats.blocks_available() * fragment);
        info.root_total_bytes = Some(stats.blocks() * fragment);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runner_images_exclude_the_helper() {
        assert!(is_runner_image("gitlab/gitlab-runner:v17.5.3"));
        assert!(is_runner_image("gitlab/gitlab-runner:alpine"));
        assert!(is_runner_image("registry.gitlab.com/gitlab-org/gitlab-runner:v17.5.3"));
        assert!(!is_runner_image("gitlab/gitlab-runner-helper:x86_64-v17.5.3"));
        assert!(!is_runner_image("registry.gitlab.com/gitlab-org/gitlab-runner/gitlab-runner-helper:x86_64-v17.5.3"));
        assert!(!is_runner_image("alpine:3.20"));
    }

    #[test]
    fn gitlab_images_are_recognised() {
        assert!(is_gitlab_image("gitlab/gitlab-ce:17.5.2-ce.0"));
        assert!(is_gitlab_image("gitlab/gitlab-ee:latest"));
        assert!(is_gitlab_image("registry.example.test:5000/gitlab/gitlab-ce:17.5.2-ce.0"));
        assert!(!is_gitlab_image("gitlab/gitlab-runner:latest"));
    }

    #[test]
    fn links_are_parsed() {
        let link = parse_link("/gitlab:/gitlab-runner/gitlab.example.test").unwrap();
        assert_eq!(link, Link { target: "gitlab".into(), alias: "gitlab.example.test".into() });
    }

    #[test]
    fn too_new_error_yields_the_maximum_version() {
        let error = bollard::errors::Error::DockerResponseServerError {
            status_code: 400,
            message: "client version 1.53 is too new. Maximum supported API version is 1.41".into(),
        };
        let version = max_supported_version(&error).unwrap();
        assert_eq!((version.major_version, version.minor_version), (1, 41));
    }
}
