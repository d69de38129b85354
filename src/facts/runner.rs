//! Runner processes: a container or a native install, each with its config file.

use serde::Serialize;

use super::config::ConfigFile;
use super::docker::ContainerInfo;

/// One GitLab Runner process (or container) and the config it uses.
#[derive(Debug, Clone, Serialize)]
pub struct RunnerProcess {
    pub kind: RunnerKind,
    pub config: ConfigFile,
}

/// Where a runner runs.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum RunnerKind {
    /// A runner container on the local Docker daemon.
    Container(Box<ContainerInfo>),
    /// A runner installed on this host, or a config named with `--config`.
    Native(NativeRunner),
}

/// A runner installed on the host.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NativeRunner {
    /// PID of a running `gitlab-runner run` that uses this config, when one was found.
    pub pid: Option<u32>,
    /// The user jobs run as (`--user` of the service), when known.
    pub user: Option<String>,
    /// The service name (`--service`, or the unit file's name), when known.
    pub service: Option<String>,
    /// How it was found, for example "process 812" or "default path".
    pub found_by: String,
    /// The process's environment, when a running process was found and readable.
    pub private_env: super::docker::PrivateEnv,
}

impl RunnerProcess {
    /// The environment the runner expands `$VAR` in `url` and `token` from.
    pub fn env(&self) -> &super::docker::PrivateEnv {
        match &self.kind {
            RunnerKind::Container(container) => &container.private_env,
            RunnerKind::Native(native) => &native.private_env,
        }
    }

    /// The runner container, for containerized runners.
    pub fn container(&self) -> Option<&ContainerInfo> {
        match &self.kind {
            RunnerKind::Container(container) => Some(container),
            RunnerKind::Native(_) => None,
        }
    }

    /// A short name for headings: "container `gitlab-runner`" or "runner on this host".
    pub fn title(&self) -> String {
        match &self.kind {
            RunnerKind::Container(container) => format!("runner container `{}`", container.name),
            RunnerKind::Native(native) => format!("runner on this host ({})", native.found_by),
        }
    }
}
