//! What the Docker Engine reports: the daemon, and the containers that matter.

use std::path::PathBuf;

use serde::Serialize;

/// The Docker endpoint from the host's view and what it answered.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DockerFacts {
    /// The endpoint as a URL, for example `unix:///var/run/docker.sock`.
    pub endpoint: String,
    /// Where the endpoint came from: `DOCKER_HOST` or the default.
    pub endpoint_from_env: bool,
    /// The daemon's answer, or why there was none.
    pub daemon: Option<Result<DaemonInfo, DockerError>>,
    /// The socket file, for `unix://` endpoints.
    pub socket: Option<SocketInfo>,
    /// How many containers the daemon listed, for the summary.
    pub containers_seen: usize,
}

impl DockerFacts {
    /// The daemon's answer when it gave one.
    pub fn info(&self) -> Option<&DaemonInfo> {
        match &self.daemon {
            Some(Ok(info)) => Some(info),
            _ => None,
        }
    }
}

/// Facts from `GET /version` and `GET /info`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct DaemonInfo {
    pub server_version: String,
    pub api_version: String,
    pub os: String,
    pub arch: String,
    pub ncpu: Option<i64>,
    pub mem_total: Option<i64>,
    pub docker_root_dir: Option<String>,
    /// Free and total bytes of the file system under `docker_root_dir`, when it is on this
    /// machine.
    pub root_free_bytes: Option<u64>,
    pub root_total_bytes: Option<u64>,
    /// The daemon runs on this machine (a `unix://` endpoint), so container paths under
    /// `/proc` and mount sources are this machine's.
    pub is_local: bool,
}

/// Why the daemon did not answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DockerError {
    pub kind: DockerErrorKind,
    /// The underlying error, secrets redacted.
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DockerErrorKind {
    /// `DOCKER_HOST` is not a URL ci-doctor can use.
    InvalidEndpoint,
    /// No socket file at the path.
    SocketMissing,
    /// The socket exists but this user may not open it.
    PermissionDenied,
    /// Nothing listens: the daemon is stopped.
    ConnectionRefused,
    /// No answer within the probe time limit.
    Timeout,
    /// Something else.
    Other,
}

/// Owner, group and mode of a Unix socket file.
#[derive(Debug, Clone, Default, Serialize)]
pub struct SocketInfo {
    pub path: PathBuf,
    pub exists: bool,
    pub is_socket: bool,
    pub uid: u32,
    pub gid: u32,
    pub owner: Option<String>,
    pub group: Option<String>,
    pub mode: u32,
}

/// The parts of `docker inspect` that checks use.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ContainerInfo {
    pub id: String,
    /// Name without the leading slash.
    pub name: String,
    /// The image reference the container was created from, as `docker ps` shows it.
    pub image: String,
    /// `running`, `exited`, `created`, ...
    pub state: String,
    /// Host PID of the container's first process, when it runs.
    pub pid: Option<u32>,
    pub hostname: String,
    /// `HostConfig.NetworkMode`: `default`, `bridge`, `host`, `none`, a network name, or
    /// `container:<id>`.
    pub network_mode: String,
    pub networks: Vec<NetworkAttachment>,
    /// Legacy links: the linked container and the alias it has here.
    pub links: Vec<Link>,
    /// `--add-host` entries, as `name:address`.
    pub extra_hosts: Vec<String>,
    /// `--dns` servers.
    pub dns: Vec<String>,
    pub mounts: Vec<MountInfo>,
    /// Environment variables that checks read; others are dropped because they may hold secrets.
    pub env: Vec<(String, String)>,
    /// Entrypoint and command, joined.
    pub command: Vec<String>,
    pub privileged: bool,
    pub ports: Vec<PortBinding>,
    pub restart_policy: Option<String>,
    /// The whole environment, only to expand `$VAR` in `url` and `token` as the runner does.
    pub private_env: PrivateEnv,
}

/// An environment that may hold secrets: never serialized, and `Debug` shows only the names.
#[derive(Clone, Default)]
pub struct PrivateEnv(pub Option<Vec<(String, String)>>);

impl PrivateEnv {
    /// The value of `name`; `None` when the variable is unset. The outer `None` means the
    /// environment itself is unknown.
    pub fn get(&self, name: &str) -> Option<Option<&str>> {
        self.0.as_ref().map(|pairs| pairs.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str()))
    }
}

impl std::fmt::Debug for PrivateEnv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.0 {
            Some(pairs) => f.debug_list().entries(pairs.iter().map(|(key, _)| key)).finish(),
            None => f.write_str("unknown"),
        }
    }
}

impl serde::Serialize for PrivateEnv {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_none()
    }
}

impl ContainerInfo {
    pub fn is_running(&self) -> bool {
        self.state == "running"
    }

    /// The value of environment variable `name`, when it is one that was kept.
    pub fn env(&self, name: &str) -> Option<&str> {
        self.env.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }

    /// The network attachment named `name`.
    pub fn network(&self, name: &str) -> Option<&NetworkAttachment> {
        self.networks.iter().find(|network| network.name == name)
    }

    /// Returns true when the container is only on Docker's default bridge network, where
    /// container names do not resolve.
    pub fn on_default_bridge_only(&self) -> bool {
        !self.networks.is_empty() && self.networks.iter().all(|network| network.name == "bridge")
    }

    /// Returns true when the container shares the host's network namespace.
    pub fn uses_host_network(&self) -> bool {
        self.network_mode == "host"
    }

    /// The mount whose destination is `path` or one of its parent directories, the deepest first.
    pub fn mount_covering(&self, path: &str) -> Option<&MountInfo> {
        self.mounts
            .iter()
            .filter(|mount| {
                let destination = mount.destination.trim_end_matches('/');
                path == destination || path.starts_with(&format!("{destination}/"))
            })
            .max_by_key(|mount| mount.destination.len())
    }
}

/// One network a container is attached to.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NetworkAttachment {
    pub name: String,
    pub ip: Option<String>,
    pub aliases: Vec<String>,
}

/// A legacy `--link`: container `target` reachable under `alias`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Link {
    pub target: String,
    pub alias: String,
}

/// One mount of a container.
#[derive(Debug, Clone, Default, Serialize)]
pub struct MountInfo {
    /// `bind`, `volume` or `tmpfs`.
    pub kind: String,
    /// Host path for binds; the volume's data directory for volumes.
    pub source: Option<String>,
    /// Volume name, for volumes.
    pub name: Option<String>,
    pub destination: String,
    pub read_write: bool,
}

/// A published port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PortBinding {
    pub container_port: u16,
    pub protocol: String,
    pub host_ip: Option<String>,
    pub host_port: Option<u16>,
}

/// A GitLab container and what it says about its own URL.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GitLabContainer {
    pub container: ContainerInfo,
    /// `external_url`, from `GITLAB_OMNIBUS_CONFIG` or `/etc/gitlab/gitlab.rb`.
    pub external_url: Option<String>,
    /// Where `external_url` was read.
    pub external_url_source: Option<String>,
    /// The port nginx listens on inside the container (`nginx['listen_port']`), when set.
    pub listen_port: Option<u16>,
}

impl GitLabContainer {
    /// The port GitLab answers on inside the container for `scheme`.
    pub fn internal_port(&self, https: bool) -> u16 {
        if let Some(port) = self.listen_port {
            return port;
        }
        if https { 443 } else { 80 }
    }

    /// The URL GitLab advertises to jobs for cloning: its `external_url`, or, without one,
    /// `http://` and the container's host name, which is what Omnibus GitLab falls back to.
    pub fn advertised_url(&self) -> String {
        match &self.external_url {
            Some(url) => url.clone(),
            None => format!("http://{}", self.container.hostname),
        }
    }

    /// Returns true when the external URL uses HTTPS, so nginx serves TLS by default.
    pub fn serves_https(&self) -> bool {
        self.external_url.as_deref().is_some_and(|url| url.starts_with("https://"))
    }
}
