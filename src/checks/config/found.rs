//! `config.found`: which `config.toml` each runner uses and how ci-doctor reached it.

use crate::checks::Check;
use crate::facts::config::{ConfigOrigin, ReadFailure};
use crate::facts::{Facts, RunnerKind};
use crate::finding::{Finding, Status, Subject};

pub struct Found;

impl Check for Found {
    fn id(&self) -> &'static str {
        "config.found"
    }

    fn summary(&self) -> &'static str {
        "which config.toml each runner uses, how it was reached, and whether it survives the container"
    }

    fn explanation(&self) -> &'static str {
        include_str!("../../../checks/config.found.md")
    }

    fn run(&self, facts: &Facts, out: &mut Vec<Finding>) {
        if facts.runners.is_empty() {
            out.push(no_runner(self.id(), facts));
            return;
        }
        for (index, runner) in facts.runners.iter().enumerate() {
            let subject = Subject { runner: index, entry: None };
            out.push(judge(self.id(), facts, index).subject(subject));
            let _ = runner;
        }
    }
}

fn no_runner(id: &'static str, facts: &Facts) -> Finding {
    let mut finding = Finding::new(id, Status::Warning, "no GitLab Runner found on this host")
        .effect("there is nothing to diagnose here; jobs for this host's runners would stay pending")
        .evidence("no `gitlab-runner run` process, no systemd unit, no config at `/etc/gitlab-runner/config.toml` or `~/.gitlab-runner/config.toml`")
        .help("name the runner with `--runner-container NAME` or `--config PATH`");
    finding = match facts.docker.info() {
        Some(_) => finding.evidence(format!("none of the {} containers on the Docker host runs an image `gitlab/gitlab-runner*` or a `gitlab-runner` command", facts.docker.containers_seen)),
        None => finding.evidence("containers were not examined: the Docker daemon did not answer"),
    };
    finding
}

fn judge(id: &'static str, facts: &Facts, index: usize) -> Finding {
    let runner = &facts.runners[index];
    let config = &runner.config;
    let path = config.path.display();
    let owner = match &runner.kind {
        RunnerKind::Container(container) => format!("runner container `{}`", container.name),
        RunnerKind::Native(_) => "the runner on this host".to_string(),
    };

    match &config.text {
        Err(ReadFailure::NotFound) => {
            let help = match &runner.kind {
                RunnerKind::Container(container) => format!("register the runner: `docker exec -it {} gitlab-runner register`", container.name),
                RunnerKind::Native(_) => "register the runner: `sudo gitlab-runner register`".to_string(),
            };
            Finding::new(id, Status::Error, format!("{owner} has no config at `{path}`"))
                .effect("the runner is not registered, so it takes no jobs")
                .location(Some(config.location()))
                .help(help)
        }
        Err(ReadFailure::PermissionDenied) => Finding::new(id, Status::Skipped, format!("cannot read `{}` as user `{}`", config.display_path().display(), facts.host.user))
            .help("run ci-doctor with `sudo` to diagnose this config"),
        Err(ReadFailure::Other { message }) => Finding::new(id, Status::Error, format!("cannot read `{}`: {message}", config.display_path().display()))
            .effect("the runner cannot load this file either; it does not start, or keeps its previous config")
            .location(Some(config.location()))
            .help("restore the file from a backup, or register the runner again"),
        Ok(_) => found(id, facts, index),
    }
}

fn found(id: &'static str, facts: &Facts, index: usize) -> Finding {
    let runner = &facts.runners[index];
    let config = &runner.config;
    let path = config.path.display();
    let entries = facts.entries(index).len();
    let counted = match entries {
        1 => "1 `[[runners]]` entry".to_string(),
        n => format!("{n} `[[runners]]` entries"),
    };

    let (status, message) = match &config.origin {
        ConfigOrigin::BindMount { container, source } => {
            let how = if config.host_path.is_some() { "read there" } else { "copied through the Docker API" };
            (Status::Ok, format!("container `{container}` uses `{path}`, bind-mounted from `{}` ({how}), with {counted}", source.display()))
        }
        ConfigOrigin::Volume { container, volume } => {
            let how = if config.host_path.is_some() { "read from the volume" } else { "copied through the Docker API" };
            (Status::Ok, format!("container `{container}` uses `{path}` in volume `{volume}` ({how}), with {counted}"))
        }
        ConfigOrigin::Copied { container, .. } => {
            return Finding::new(id, Status::Warning, format!("container `{container}` keeps `{path}` only in its own writable layer"))
                .effect("recreating the container (for example to upgrade the image) loses the registration, and the runner stops taking jobs")
                .evidence(format!("no mount covers `{path}`; the file was copied out through the Docker API"))
                .location(Some(config.location()))
                .help(format!(
                    "copy it out with `docker cp {container}:{} ./gitlab-runner-config`, then recreate the container with `-v \"$PWD/gitlab-runner-config:{}\"`",
                    config.path.parent().map(|dir| dir.display().to_string()).unwrap_or_default(),
                    config.path.parent().map(|dir| dir.display().to_string()).unwrap_or_default()
                ));
        }
        ConfigOrigin::HostFile => (Status::Ok, format!("{} uses `{path}`, with {counted}", runner.title())),
        ConfigOrigin::Given => (Status::Ok, format!("`{path}` (from `--config`) has {counted}")),
    };

    if entries == 0 && config.parsed().is_some() {
        return Finding::new(id, Status::Warning, format!("`{}` has no `[[runners]]` entry", config.display_path().display()))
            .effect("the runner is not registered with any GitLab, so it takes no jobs")
            .location(Some(config.location()))
            .help("register the runner with `gitlab-runner register`");
    }
    Finding::new(id, status, message)
}
