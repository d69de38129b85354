//! `runner.docker-access`: a docker-executor runner can reach a Docker daemon.

use crate::checks::Check;
use crate::facts::probe::{SocketState, ViewAccess};
use crate::facts::{ContainerInfo, Entry, Facts, RunnerKind};
use crate::finding::{Basis, Finding, Method, Status, Subject, View};
use crate::fix::Fix;
use crate::probe::socket_path_of;

pub struct DockerAccess;

impl Check for DockerAccess {
    fn id(&self) -> &'static str {
        "runner.docker-access"
    }

    fn summary(&self) -> &'static str {
        "a docker-executor runner reaches a daemon: socket mounted into its container, or a `host`"
    }

    fn explanation(&self) -> &'static str {
        include_str!("../../../checks/runner.docker-access.md")
    }

    fn run(&self, facts: &Facts, out: &mut Vec<Finding>) {
        for (index, runner) in facts.runners.iter().enumerate() {
            for entry in facts.entries(index).iter().filter(|entry| entry.uses_docker()) {
                let subject = Subject { runner: index, entry: Some(entry.index) };
                let finding = match &runner.kind {
                    RunnerKind::Container(container) => judge_container(self.id(), facts, index, container, entry),
                    RunnerKind::Native(_) => judge_native(self.id(), facts, entry),
                };
                out.push(finding.subject(subject));
            }
        }
    }
}

fn judge_container(id: &'static str, facts: &Facts, runner: usize, container: &ContainerInfo, entry: &Entry) -> Finding {
    let name = &entry.label();
    let Some(path) = socket_path_of(entry.keys.str("docker.host"), container.env("DOCKER_HOST")) else {
        let endpoint = entry.keys.str("docker.host").or(container.env("DOCKER_HOST")).unwrap_or_default();
        return Finding::new(id, Status::Skipped, format!("runner `{name}` uses Docker at `{endpoint}`, which ci-doctor does not probe yet"));
    };
    let source = if entry.keys.str("docker.host").is_some_and(|host| !host.is_empty()) {
        "its `host` setting"
    } else if container.env("DOCKER_HOST").is_some() {
        "the container's `DOCKER_HOST`"
    } else {
        "the default endpoint"
    };

    let daemon_note = facts.docker.info().map(|info| format!("the Docker daemon itself answers from this host at `{}` (Docker {})", facts.docker.endpoint, info.server_version));
    let missing = |detail: String, basis: Basis| {
        let mut finding = Finding::new(id, Status::Error, format!("runner `{name}` uses the docker executor with `unix://{path}` ({source}), but container `{}` has no Docker socket there", container.name))
            .effect("every job fails in \"Preparation\" with \"Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?\"")
            .evidence(detail)
            .basis(basis)
            .help(format!("recreate container `{}` with the host's socket mounted (`-v /var/run/docker.sock:{path}`), keeping its config mount; a config.toml edit cannot give a container a socket it does not have", container.name))
            .fix(Fix::commands("recreate the runner container with the Docker socket mounted", &[recreate_command(container, &path)]));
        if let Some(note) = &daemon_note {
            finding = finding.evidence(note.clone());
        }
        finding
    };

    match facts.probes.socket(runner, &path) {
        Some(probe) => {
            let basis = Basis { view: View::Runner, method: Method::Probe, detail: format!("checked `{path}` inside container `{}`", container.name) };
            match &probe.state {
                SocketState::Answers => Finding::new(id, Status::Ok, format!("container `{}` reaches the Docker daemon through `{path}`", container.name))
                    .evidence(mount_note(container, &path))
                    .basis(basis),
                SocketState::Missing => missing(format!("`{path}` does not exist inside the container"), basis),
                SocketState::NotASocket => missing(
                    format!("`{path}` inside the container is not a socket; Docker creates an empty directory when a bind mount's source did not exist at start"),
                    basis,
                ),
                SocketState::Failed { message } => Finding::new(id, Status::Error, format!("container `{}` has `{path}`, but no daemon answers through it", container.name))
                    .effect("every job fails in \"Preparation\" with \"Cannot connect to the Docker daemon\"")
                    .evidence(message.clone())
                    .evidence(mount_note(container, &path))
                    .basis(basis)
                    .help("check that the mount's source is the daemon's real socket (`docker info` on the host shows it)"),
            }
        }
        None => {
            let reason = match facts.probes.view(runner) {
                Some(ViewAccess::Unavailable { reason }) => reason.clone(),
                Some(ViewAccess::Disabled) => "probes are off".to_string(),
                _ => "not probed".to_string(),
            };
            let basis = Basis { view: View::Runner, method: Method::Reasoning, detail: format!("from the container's mounts ({reason})") };
            match container.mount_covering(&path) {
                Some(_) => Finding::new(id, Status::Ok, format!("container `{}` has `{path}` mounted", container.name)).evidence(mount_note(container, &path)).basis(basis),
                None => missing(format!("no mount of container `{}` covers `{path}`", container.name), basis),
            }
        }
    }
}

fn mount_note(container: &ContainerInfo, path: &str) -> String {
    match container.mount_covering(path) {
        Some(mount) => format!("mount: `{}` -> `{}`", mount.source.as_deref().unwrap_or("?"), mount.destination),
        None => format!("no mount covers `{path}`; the socket comes from the image"),
    }
}

fn judge_native(id: &'static str, facts: &Facts, entry: &Entry) -> Finding {
    let name = entry.label();
    let host = entry.keys.str("docker.host").filter(|host| !host.is_empty());
    match (host, facts.docker.info()) {
        (None, Some(info)) if !facts.docker.endpoint_from_env => Finding::new(id, Status::Ok, format!("runner `{name}` uses this host's Docker daemon at `{}` (Docker {})", facts.docker.endpoint, info.server_version)),
        (None, None) => Finding::new(id, Status::Error, format!("runner `{name}` uses the docker executor, but no Docker daemon answers on this host"))
            .effect("every job fails in \"Preparation\" with \"Cannot connect to the Docker daemon\"")
            .help("start Docker (`sudo systemctl start docker`); see `docker.daemon`"),
        (Some(host), _) => Finding::new(id, Status::Skipped, format!("runner `{name}` uses Docker at `{host}`, which ci-doctor does not probe yet")),
        (None, Some(_)) => Finding::new(id, Status::Skipped, format!("runner `{name}` uses the service's own `DOCKER_HOST`, which may differ from this shell's")),
    }
}

/// A `docker run` that recreates `container` with the socket mounted, keeping what the
/// inspection shows: name, restart policy, networks, links, mounts and image.
pub fn recreate_command(container: &ContainerInfo, socket: &str) -> String {
    let mut words = vec!["docker run -d".to_string(), format!("--name {}", container.name)];
    if let Some(policy) = container.restart_policy.as_deref().filter(|policy| !policy.is_empty() && *policy != "no") {
        words.push(format!("--restart {policy}"));
    }
    if let Some(network) = container.networks.first().filter(|network| network.name != "bridge") {
        words.push(format!("--network {}", network.name));
    }
    for link in &container.links {
        words.push(format!("--link {}:{}", link.target, link.alias));
    }
    for mount in &container.mounts {
        match (mount.kind.as_str(), &mount.name, &mount.source) {
            ("volume", Some(volume), _) => words.push(format!("-v {volume}:{}", mount.destination)),
            (_, _, Some(source)) => words.push(format!("-v {source}:{}", mount.destination)),
            _ => {}
        }
    }
    words.push(format!("-v /var/run/docker.sock:{socket}"));
    words.push(container.image.clone());
    format!("docker rm -f {} && {}", container.name, words.join(" "))
}
