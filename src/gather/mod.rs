//! Gathers every fact once, concurrently, each I/O under its own time limit and the whole run
//! under one deadline.

pub mod config;
pub mod docker;
pub mod git;
pub mod gitlab;
pub mod native;
pub mod shell;

use std::path::PathBuf;
use std::time::Duration;

use futures_util::future::join_all;
use tokio::time::Instant;

use crate::facts::config::ConfigOrigin;
use crate::facts::docker::GitLabContainer;
use crate::facts::host::HostFacts;
use crate::facts::runner::{NativeRunner, RunnerKind, RunnerProcess};
use crate::facts::{Facts, Settings};
use docker::{DockerClient, Endpoint};

/// Docker calls in flight at once, so that a host with hundreds of containers does not flood
/// its daemon.
const DOCKER_CONCURRENCY: usize = 16;

/// What to gather and how long each step may take.
#[derive(Debug, Clone)]
pub struct Options {
    pub configs: Vec<PathBuf>,
    pub runner_containers: Vec<String>,
    pub timeout: Duration,
    pub no_probe: bool,
    pub has_gitlab_token: bool,
    /// `--ci-file`; without it the pipeline of the current Git checkout is read.
    pub ci_file: Option<PathBuf>,
    /// Where the GitLab API is and the token for it.
    pub gitlab: gitlab::Input,
}

impl Options {
    /// The whole run's deadline: time for the Docker round trips and for one round of probes.
    pub fn deadline(&self) -> Instant {
        Instant::now() + self.timeout * 3 + Duration::from_secs(1)
    }
}

/// Gathers the facts of this host.
pub async fn gather(options: &Options) -> Facts {
    let deadline = options.deadline();
    let mut facts = Facts {
        host: host_facts(),
        settings: Settings {
            no_probe: options.no_probe,
            timeout_secs: options.timeout.as_secs_f64(),
            explicit_runners: !options.configs.is_empty() || !options.runner_containers.is_empty(),
            has_gitlab_token: options.has_gitlab_token,
            now: crate::time::now_unix(),
        },
        ..Facts::default()
    };

    // Host files are read on blocking threads while the Docker calls run: the process table
    // of a busy host and a large pipeline take as long as a Docker round trip.
    let scan_host = options.configs.is_empty() && options.runner_containers.is_empty();
    let native = tokio::task::spawn_blocking(move || if scan_host { native::discover() } else { Vec::new() });
    let ci_file = options.ci_file.clone();
    let pipeline = tokio::task::spawn_blocking(move || crate::pipeline::load(ci_file.as_deref()));

    // The Docker endpoint first: runner discovery depends on it.
    let endpoint = Endpoint::from_env();
    facts.docker.endpoint = crate::secret::redact_url(&endpoint.url);
    facts.docker.endpoint_from_env = endpoint.from_env;
    if let Some(path) = endpoint.socket_path() {
        facts.docker.socket = Some(docker::inspect_socket(&path));
    }
    // `/info` is the daemon's slowest answer and only checks read it, so it is asked at once,
    // beside the version negotiation and the whole discovery.
    let opened = docker::open_newest(&endpoint, options.timeout);
    let early_system = async {
        match &opened {
            Ok(client) => client.system().await,
            Err(_) => None,
        }
    };
    let discovery = async {
        let client = match opened.clone() {
            Ok(client) => docker::negotiate(&endpoint, client).await,
            Err(error) => Err(error),
        };
        let client = match client {
            Ok((client, info)) => {
                facts.docker.daemon = Some(Ok(info));
                Some(client)
            }
            Err(error) => {
                facts.docker.daemon = Some(Err(error));
                None
            }
        };
        let listed = discover(&mut facts, client.as_ref(), options, native, pipeline).await;
        (client, listed)
    };
    let (mut system, (client, listed)) = tokio::join!(early_system, discovery);

    let client = match listed {
        Ok(()) => client,
        Err(error) => {
            facts.docker.daemon = Some(Err(error));
            None
        }
    };
    if let (Some(client), Some(Ok(info))) = (&client, &mut facts.docker.daemon) {
        // After a downgrade of the API version the early request failed; ask again.
        if system.is_none() {
            system = client.system().await;
        }
        if let Some(system) = system {
            docker::add_system(info, system);
        }
    }

    facts.shell_users = shell::shell_users(&facts);

    let remaining = deadline.saturating_duration_since(Instant::now());
    tracing::debug!(runners = facts.runners.len(), gitlabs = facts.gitlabs.len(), ?remaining, "discovery done");
    let docker_client = client.as_ref();

    // The API runs beside the probes when its URL is known without them, so that a slow
    // GitLab costs one time limit, not two.
    match options.gitlab.early_target() {
        Some(target) => {
            let ((probes, job_views), gitlab) = tokio::join!(
                crate::probe::run_all(&facts, docker_client, options.timeout, deadline),
                gitlab::gather(&options.gitlab, Ok(target), &facts, options.timeout, deadline),
            );
            facts.probes = probes;
            facts.job_views = job_views;
            facts.gitlab = gitlab;
        }
        None => {
            let (probes, job_views) = crate::probe::run_all(&facts, docker_client, options.timeout, deadline).await;
            facts.probes = probes;
            facts.job_views = job_views;
            let target = gitlab::target_from_runners(&facts);
            facts.gitlab = gitlab::gather(&options.gitlab, target, &facts, options.timeout, deadline).await;
        }
    }
    facts
}

/// Every image a job may use: pipeline images and services, each entry's default image, and
/// each entry's helper image.
fn image_references(facts: &Facts) -> Vec<String> {
    let mut references: Vec<String> = Vec::new();
    let mut push = |reference: String| {
        if !reference.is_empty() && !references.contains(&reference) {
            references.push(reference);
        }
    };
    for job in facts.jobs() {
        if let Some(image) = &job.image {
            push(image.name.clone());
        }
        for service in &job.services {
            push(service.name.clone());
        }
    }
    for (runner, process) in facts.runners.iter().enumerate() {
        for entry in facts.entries(runner).iter().filter(|entry| entry.uses_docker()) {
            if let Some(image) = entry.keys.str("docker.image") {
                push(image.to_string());
            }
            if let Some(helper) = crate::topology::helper_image(process, entry, facts.docker.info()) {
                push(helper);
            }
        }
    }
    references
}

fn host_facts() -> HostFacts {
    let uid = nix::unistd::getuid().as_raw();
    let gid = nix::unistd::getgid().as_raw();
    let user = nix::unistd::User::from_uid(uid.into()).ok().flatten().map(|user| user.name).unwrap_or_else(|| uid.to_string());
    let mut groups: Vec<(u32, Option<String>)> = nix::unistd::getgroups()
        .unwrap_or_default()
        .into_iter()
        .map(|group| {
            let name = nix::unistd::Group::from_gid(group).ok().flatten().map(|group| group.name);
            (group.as_raw(), name)
        })
        .collect();
    groups.sort();
    groups.dedup();
    HostFacts { user, uid, gid, groups }
}

/// Finds the runners and GitLab containers, reads their configs and the pipeline, and inspects
/// the images jobs use. Returns the error of a daemon that answered but could not list its
/// containers; native runners and the pipeline are read all the same.
async fn discover(
    facts: &mut Facts,
    client: Option<&DockerClient>,
    options: &Options,
    native: tokio::task::JoinHandle<Vec<native::NativeCandidate>>,
    pipeline: tokio::task::JoinHandle<Option<crate::pipeline::PipelineFact>>,
) -> Result<(), crate::facts::docker::DockerError> {
    let mut listed = Ok(());
    let client = match client.map(|client| async move { (client, client.list().await) }) {
        Some(listing) => match listing.await {
            (client, Ok(containers)) => {
                facts.docker.containers_seen = containers.len();
                let (_, job_containers) = tokio::join!(discover_containers(facts, client, &containers, options), docker::job_containers(client, &containers));
                facts.job_containers = job_containers;
                Some(client)
            }
            (_, Err(error)) => {
                listed = Err(error);
                None
            }
        },
        None => None,
    };

    add_native_runners(facts, options, native.await.unwrap_or_default());
    for runner in &mut facts.runners {
        let env = runner.env().clone();
        if let Some(Ok(parsed)) = &mut runner.config.parsed {
            for entry in &mut parsed.entries {
                crate::facts::config::expand_entry(entry, &env);
            }
        }
    }
    facts.pipeline = pipeline.await.ok().flatten();

    // What jobs meet: their images.
    if let Some(client) = client {
        let references = image_references(facts);
        let semaphore = tokio::sync::Semaphore::new(DOCKER_CONCURRENCY);
        let inspections = references.iter().map(|reference| {
            let semaphore = &semaphore;
            async move {
                let _permit = semaphore.acquire().await;
                docker::inspect_image(client, reference).await
            }
        });
        facts.images = join_all(inspections).await;
    }
    listed
}

/// Inspects runner and GitLab containers and reads each runner's config.
async fn discover_containers(facts: &mut Facts, client: &DockerClient, containers: &[bollard::models::ContainerSummary], options: &Options) {
    let explicit = !options.runner_containers.is_empty() || !options.configs.is_empty();
    let mut runner_names: Vec<String> = if explicit {
        options.runner_containers.clone()
    } else {
        containers.iter().filter(|summary| docker::is_runner(summary)).map(docker::summary_name).collect()
    };
    let gitlab_names: Vec<String> = containers
        .iter()
        .filter(|summary| summary.image.as_deref().is_some_and(docker::is_gitlab_image))
        .map(docker::summary_name)
        .collect();

    // With `--config`, a file that is some runner container's mounted config is diagnosed from
    // that container's view; so inspect every runner container to find out.
    if !options.configs.is_empty() {
        for summary in containers.iter().filter(|summary| docker::is_runner(summary)) {
            let name = docker::summary_name(summary);
            if !runner_names.contains(&name) {
                runner_names.push(name);
            }
        }
    }

    let semaphore = tokio::sync::Semaphore::new(DOCKER_CONCURRENCY);
    let inspect = |name: String, variable: &'static str| {
        let semaphore = &semaphore;
        async move {
            let _permit = semaphore.acquire().await;
            (name.clone(), client.inspect_with_env(&name, variable).await)
        }
    };
    let (runners, gitlabs) = tokio::join!(
        join_all(runner_names.iter().cloned().map(|name| inspect(name, ""))),
        join_all(gitlab_names.iter().cloned().map(|name| inspect(name, "GITLAB_OMNIBUS_CONFIG"))),
    );

    let is_local = facts.docker.info().is_some_and(|info| info.is_local);
    let gitlab_reads = gitlabs.into_iter().map(|(name, result)| async move {
        match result {
            Ok((container, omnibus)) => Some(gitlab_container(client, container, omnibus, is_local).await),
            Err(error) => {
                tracing::warn!(container = %name, error = %error.message, "failed to inspect GitLab container");
                None
            }
        }
    });
    facts.gitlabs = join_all(gitlab_reads).await.into_iter().flatten().collect();

    let mut inspected = Vec::new();
    for (name, result) in runners {
        match result {
            Ok((container, _)) => inspected.push(container),
            Err(error) if options.runner_containers.contains(&name) => {
                facts.missing_inputs.push(format!("failed to inspect runner container `{name}`: {}; list containers with `docker ps -a`", error.message));
            }
            Err(error) => tracing::warn!(container = %name, error = %error.message, "failed to inspect runner container"),
        }
    }

    let configs = join_all(inspected.iter().map(|container| config::read_container_config(client, container, is_local))).await;
    let wanted_configs: Vec<PathBuf> = options.configs.iter().map(|path| native::canonical(path)).collect();
    for (container, config) in inspected.into_iter().zip(configs) {
        let named = options.runner_containers.contains(&container.name);
        let matches_config = config.host_path.as_ref().is_some_and(|path| wanted_configs.contains(&native::canonical(path)));
        if explicit && !named && !matches_config {
            continue;
        }
        facts.runners.push(RunnerProcess { kind: RunnerKind::Container(Box::new(container)), config });
    }
}

/// A GitLab container with its `external_url`: from `GITLAB_OMNIBUS_CONFIG`, else from
/// `/etc/gitlab/gitlab.rb` inside it. The environment variable is reduced to the URL and port at
/// once, because it often holds passwords too.
async fn gitlab_container(client: &DockerClient, container: crate::facts::ContainerInfo, omnibus: Option<String>, is_local: bool) -> GitLabContainer {
    let (mut external_url, listen_port) = crate::topology::parse_omnibus_config(omnibus.as_deref().unwrap_or(""));
    let mut external_url_source = external_url.as_ref().map(|_| "`GITLAB_OMNIBUS_CONFIG`".to_string());
    if external_url.is_none()
        && let Some(text) = config::read_container_file(client, &container, "/etc/gitlab/gitlab.rb", is_local).await
    {
        external_url = crate::topology::parse_gitlab_rb(&text);
        external_url_source = external_url.as_ref().map(|_| "`/etc/gitlab/gitlab.rb`".to_string());
    }
    GitLabContainer { container, external_url, external_url_source, listen_port }
}

/// Adds runners installed on this host, or the files named with `--config` that no runner
/// container uses.
fn add_native_runners(facts: &mut Facts, options: &Options, candidates: Vec<native::NativeCandidate>) {
    let used: Vec<PathBuf> = facts.runners.iter().filter_map(|runner| runner.config.host_path.as_deref().map(native::canonical)).collect();

    if !options.configs.is_empty() {
        for path in &options.configs {
            if used.contains(&native::canonical(path)) {
                continue;
            }
            let config = config::read_host_config(path, ConfigOrigin::Given);
            let runner = NativeRunner { found_by: "--config".into(), ..NativeRunner::default() };
            facts.runners.push(RunnerProcess { kind: RunnerKind::Native(runner), config });
        }
        return;
    }
    if !options.runner_containers.is_empty() {
        return;
    }

    for candidate in candidates {
        // A host directory mounted into a runner container is that container's config, not a
        // second runner, unless a runner process on the host uses it.
        if candidate.runner.pid.is_none() && used.contains(&native::canonical(&candidate.config)) {
            continue;
        }
        let config = config::read_host_config(&candidate.config, ConfigOrigin::HostFile);
        facts.runners.push(RunnerProcess { kind: RunnerKind::Native(candidate.runner), config });
    }
}
