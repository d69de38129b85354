//! The job's point of view: a short-lived container created with the network settings a job
//! container would get (`network_mode`, `extra_hosts`, `links`, `dns`, `dns_search`), whose
//! network namespace the probe enters like a runner container's.
//!
//! The probe container runs `sleep` for a little longer than the run's deadline, with
//! auto-remove on. So even if ci-doctor is killed, the container disappears by itself. Normally
//! ci-doctor removes it as soon as the probes finish.

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder};
use futures_util::future::join_all;
use tokio::time::Instant;

use super::view::ViewFiles;
use super::{PROBE_LABEL, Plan, netns, session};
use crate::facts::job::{JobAccess, JobNetwork, JobView};
use crate::facts::{Facts, RunnerKind};
use crate::gather::docker::{DockerClient, call, classify};
use crate::topology;

/// One job view to probe: the runner, its entries with these settings, the settings, and each
/// URL with the CA files (in the runner's file system) that the runner trusts for it.
type Planned = (usize, Vec<usize>, JobNetwork, Vec<(String, Vec<String>)>);

/// Distinct job settings of every docker-executor entry, with the URLs to try from each.
pub fn plan(facts: &Facts) -> Vec<Planned> {
    let mut planned: Vec<Planned> = Vec::new();
    for runner in 0..facts.runners.len() {
        let config_dir = facts.runners[runner].config.path.parent().map(Path::to_path_buf).unwrap_or_default();
        for entry in facts.entries(runner).iter().filter(|entry| entry.uses_docker()) {
            let network = topology::job_network(entry);
            let mut urls = Vec::new();
            if let Some(url) = entry.keys.str("url") {
                urls.push(url.to_string());
            }
            if let Some(source) = topology::clone_source(facts, runner, entry) {
                // Repairs a fix could propose are tried in the same round.
                for candidate in topology::clone_candidates(facts, runner, entry, &source) {
                    urls.push(candidate.probe_url);
                }
                urls.insert(0, source.url);
            }
            let urls: Vec<(String, Vec<String>)> = urls.into_iter().map(|url| {
                let cas = super::runner_cas(&config_dir, entry, &url);
                (url, cas)
            }).collect();
            let index = match planned.iter().position(|(known, _, settings, _)| *known == runner && *settings == network) {
                Some(index) => {
                    planned[index].1.push(entry.index);
                    index
                }
                None => {
                    planned.push((runner, vec![entry.index], network, Vec::new()));
                    planned.len() - 1
                }
            };
            for (url, cas) in urls {
                let known = &mut planned[index].3;
                match known.iter_mut().find(|(existing, _)| *existing == url) {
                    Some((_, existing_cas)) => existing_cas.extend(cas),
                    None => known.push((url, cas)),
                }
            }
        }
    }
    planned
}

/// Probes every planned job view concurrently.
pub async fn run(facts: &Facts, client: Option<&DockerClient>, timeout: Duration, deadline: Instant) -> Vec<JobView> {
    let planned = plan(facts);
    let unavailable = |reason: String| JobAccess::Unavailable { reason };
    let blocked = if facts.settings.no_probe {
        Some(JobAccess::Disabled)
    } else if client.is_none() || !facts.docker.info().is_some_and(|info| info.is_local) {
        Some(unavailable("the Docker daemon is not on this machine or did not answer".into()))
    } else if !nix::unistd::geteuid().is_root() {
        Some(unavailable("entering a probe container's network namespace needs root".into()))
    } else {
        None
    };

    if let Some(access) = blocked {
        return planned
            .into_iter()
            .map(|(runner, entries, network, _)| JobView { runner, entries, network, access: access.clone(), urls: Vec::new() })
            .collect();
    }
    let client = client.expect("checked above");
    let images = candidate_images(facts);
    let views = planned.into_iter().enumerate().map(|(index, (runner, entries, network, urls))| {
        let images = images.clone();
        let ca_root = runner_root(facts, runner);
        async move {
            let (access, probes) = probe_view(client, index, runner, &network, &urls, &ca_root, &images, timeout, deadline).await;
            JobView { runner, entries, network, access, urls: probes }
        }
    });
    join_all(views).await
}

/// Returns the directory that is `/` for runner `runner`: its container's root through
/// `/proc`, or this host's.
fn runner_root(facts: &Facts, runner: usize) -> std::path::PathBuf {
    match facts.runners[runner].container().and_then(|container| container.pid) {
        Some(pid) => std::path::PathBuf::from(format!("/proc/{pid}/root")),
        None => std::path::PathBuf::from("/"),
    }
}

/// Local images that can host a probe, the most likely to have `sleep` first: images of the
/// runners' own containers, then the default job images, then the pipeline's.
fn candidate_images(facts: &Facts) -> Vec<String> {
    let mut images: Vec<String> = Vec::new();
    let mut push = |image: &str| {
        if !image.is_empty() && !images.iter().any(|known| known == image) {
            images.push(image.to_string());
        }
    };
    for runner in &facts.runners {
        if let RunnerKind::Container(container) = &runner.kind {
            push(&container.image);
        }
    }
    for image in facts.images.iter().filter(|image| image.present) {
        push(&image.reference);
    }
    images
}

#[allow(clippy::too_many_arguments)]
async fn probe_view(
    client: &DockerClient,
    index: usize,
    runner: usize,
    network: &JobNetwork,
    urls: &[(String, Vec<String>)],
    ca_root: &Path,
    images: &[String],
    timeout: Duration,
    deadline: Instant,
) -> (JobAccess, Vec<crate::facts::probe::UrlProbe>) {
    let name = format!("ci-doctor-probe-{}-{index}", std::process::id());
    let mut last_error = "no local image to run a probe container from".to_string();

    for image in images.iter().take(3) {
        match start_probe(client, &name, image, network, timeout, deadline).await {
            Ok(pid) => {
                let files = ViewFiles::load(Path::new(&format!("/proc/{pid}/root")));
                let plan = Plan { runner, view: format!("job probe container `{name}`"), urls: urls.iter().cloned().collect(), ca_root: ca_root.to_path_buf(), ..Plan::default() };
                let result = tokio::time::timeout_at(
                    deadline + Duration::from_millis(500),
                    netns::run_in_namespace(pid, move || session(plan, files, timeout, deadline)),
                )
                .await;
                remove(client, &name).await;
                return match result {
                    Ok(Ok((probes, _, _))) => (JobAccess::Probe { container: name, image: image.clone() }, probes),
                    Ok(Err(message)) => (JobAccess::Unavailable { reason: message }, Vec::new()),
                    Err(_) => (JobAccess::Unavailable { reason: "the job probe did not finish before the run's deadline".into() }, Vec::new()),
                };
            }
            Err(error) => {
                remove(client, &name).await;
                last_error = error;
            }
        }
    }
    (JobAccess::Unavailable { reason: format!("no probe container could start: {last_error}") }, Vec::new())
}

/// Creates and starts the probe container and returns its process id.
async fn start_probe(client: &DockerClient, name: &str, image: &str, network: &JobNetwork, timeout: Duration, deadline: Instant) -> Result<u32, String> {
    // Long enough for the probes, short enough to vanish soon if ci-doctor dies first.
    let lifetime = deadline.saturating_duration_since(Instant::now()).as_secs() + 5;
    let some = |items: &Vec<String>| (!items.is_empty()).then(|| items.clone());
    let body = ContainerCreateBody {
        image: Some(image.to_string()),
        entrypoint: Some(vec!["sleep".into()]),
        cmd: Some(vec![lifetime.to_string()]),
        labels: Some(HashMap::from([(PROBE_LABEL.to_string(), std::process::id().to_string())])),
        network_disabled: Some(false),
        host_config: Some(HostConfig {
            network_mode: network.network_mode.clone(),
            extra_hosts: some(&network.extra_hosts),
            links: some(&network.links),
            dns: some(&network.dns),
            dns_search: some(&network.dns_search),
            auto_remove: Some(true),
            ..HostConfig::default()
        }),
        ..ContainerCreateBody::default()
    };
    let options = CreateContainerOptionsBuilder::default().name(name).build();
    super::cleanup::register(&crate::gather::docker::Endpoint::from_env().url, name);
    call(timeout, client.docker.create_container(Some(options), body)).await.map_err(|error| classify(&error).message)?;
    call(timeout, client.docker.start_container(name, None)).await.map_err(|error| classify(&error).message)?;

    let inspected = call(timeout, client.docker.inspect_container(name, None)).await.map_err(|error| classify(&error).message)?;
    let state = inspected.state.unwrap_or_default();
    if super::cleanup::test_fault("pause-while-probing") {
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
    if super::cleanup::test_fault("panic-while-probing") {
        panic!("fault injected while a probe container runs");
    }
    match state.pid.filter(|pid| *pid > 0) {
        Some(pid) if state.running == Some(true) => Ok(pid as u32),
        _ => Err(format!("the probe container from `{image}` stopped at once")),
    }
}

/// Removes the probe container, whatever state it is in.
pub async fn remove(client: &DockerClient, name: &str) {
    super::cleanup::unregister(name);
    let options = RemoveContainerOptionsBuilder::default().force(true).build();
    if let Err(error) = call(client.timeout, client.docker.remove_container(name, Some(options))).await {
        let error = classify(&error);
        if !error.message.contains("No such container") && !error.message.contains("404") && !error.message.contains("already in progress") {
            tracing::warn!(container = name, error = %error.message, "failed to remove probe container");
        }
    }
}
