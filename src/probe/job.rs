//! The job's point of view: a short-lived container created with the network settings a job
//! container would get (`network_mode`, `extra_hosts`, `links`, `dns`, `dns_search`), whose
//! network namespace the probe enters like a runner container's. Starting a container costs a
//! quarter of a second or more, so entries with the same settings share one, and where a runner
//! container provably sees the same as a job (see [`shared_runner`]) its own probes are used.
//!
//! The probe container runs `sleep` for a little longer than the run's deadline, with
//! auto-remove on. So even if ci-doctor is killed, the container disappears by itself. Normally
//! ci-doctor kills its process as soon as the probes finish, and Docker removes it.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::models::{ContainerCreateBody, HostConfig};
use bollard::query_parameters::{CreateContainerOptionsBuilder, RemoveContainerOptionsBuilder};
use futures_util::future::join_all;
use tokio::time::Instant;

use super::view::ViewFiles;
use super::{PROBE_LABEL, Plan, netns, session};
use crate::facts::job::{JobAccess, JobNetwork, JobView};
use crate::facts::probe::ViewAccess;
use crate::facts::{Facts, RunnerKind};
use crate::gather::docker::{DockerClient, call, classify};
use crate::topology;

/// Job network settings shared by one or more docker-executor entries, with the URLs to try
/// from them.
#[derive(Debug, Clone)]
pub struct PlannedView {
    /// `(runner, entry)` of every entry with these settings.
    pub members: Vec<(usize, usize)>,
    pub network: JobNetwork,
    /// Each URL with the CA files its runners trust for it, as paths on this host.
    pub urls: Vec<(String, Vec<PathBuf>)>,
}

/// Groups the docker-executor entries of every runner by their job network settings, with the
/// URLs to try from each group. Entries of different runners share a group, and so one probe
/// container, unless they trust different CA files for the same URL.
pub fn plan(facts: &Facts) -> Vec<PlannedView> {
    let mut planned: Vec<PlannedView> = Vec::new();
    let mut files = FileCache::default();
    for runner in 0..facts.runners.len() {
        let config_dir = facts.runners[runner].config.path.parent().map(Path::to_path_buf).unwrap_or_default();
        let root = runner_root(facts, runner);
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
            let urls: Vec<(String, Vec<PathBuf>)> = urls
                .into_iter()
                .map(|url| {
                    let cas = super::runner_cas(&config_dir, entry, &url).iter().map(|ca| root.join(ca.trim_start_matches('/'))).collect();
                    (url, cas)
                })
                .collect();

            let mut fits = |view: &PlannedView| view.network == network && urls.iter().all(|(url, cas)| view.urls.iter().all(|(known, known_cas)| known != url || files.same(known_cas, cas)));
            let member = (runner, entry.index);
            match planned.iter_mut().find(|view| fits(view)) {
                Some(view) => {
                    view.members.push(member);
                    for (url, cas) in urls {
                        if !view.urls.iter().any(|(known, _)| *known == url) {
                            view.urls.push((url, cas));
                        }
                    }
                }
                None => {
                    let mut unique: Vec<(String, Vec<PathBuf>)> = Vec::new();
                    for (url, cas) in urls {
                        if !unique.iter().any(|(known, _)| *known == url) {
                            unique.push((url, cas));
                        }
                    }
                    planned.push(PlannedView { members: vec![member], network, urls: unique });
                }
            }
        }
    }
    planned
}

/// CA files read while planning, each once.
#[derive(Default)]
struct FileCache(HashMap<PathBuf, Option<Vec<u8>>>);

impl FileCache {
    /// Whether two lists of CA files hold the same certificates, file by file; a missing file
    /// equals only a missing file.
    fn same(&mut self, a: &[PathBuf], b: &[PathBuf]) -> bool {
        a.len() == b.len() && a.iter().zip(b).all(|(a, b)| a == b || self.read(a) == self.read(b))
    }

    fn read(&mut self, path: &Path) -> Option<Vec<u8>> {
        self.0.entry(path.to_path_buf()).or_insert_with(|| std::fs::read(path).ok()).clone()
    }
}

/// The runner container whose own probes show what a job container with `view`'s settings sees
/// for every one of its URLs, with how that is known, so that no probe container is needed. That
/// is true in two layouts, [`shared_on_network`] and [`shared_through_links`]. HTTPS URLs always
/// get a probe container, because a job trusts the CA bundle of its own image.
pub fn shared_runner(facts: &Facts, view: &PlannedView, accesses: &[ViewAccess]) -> Option<(usize, JobAccess)> {
    let root_of = |pid| PathBuf::from(format!("/proc/{pid}/root"));
    shared_runner_with_roots(facts, view, accesses, &root_of)
}

/// [`shared_runner`], with `root_of` giving the root directory of a container's first process.
fn shared_runner_with_roots(facts: &Facts, view: &PlannedView, accesses: &[ViewAccess], root_of: &dyn Fn(u32) -> PathBuf) -> Option<(usize, JobAccess)> {
    let name_of = |runner: usize| facts.runners[runner].container().map(|container| container.name.clone()).unwrap_or_default();
    if let Some((runner, network)) = shared_on_network(facts, view, accesses, root_of) {
        return Some((runner, JobAccess::Shared { container: name_of(runner), network }));
    }
    let (runner, links) = shared_through_links(facts, view, accesses, root_of)?;
    Some((runner, JobAccess::Linked { container: name_of(runner), links }))
}

/// Returns the host of every URL of `view`, when all of them are plain HTTP.
fn http_hosts(view: &PlannedView) -> Option<Vec<String>> {
    view.urls
        .iter()
        .map(|(url, _)| {
            let parsed = url::Url::parse(url).ok().filter(|parsed| parsed.scheme() == "http")?;
            Some(parsed.host_str()?.trim_matches(['[', ']']).to_string())
        })
        .collect()
}

/// Returns the runner container on the jobs' user-defined network, with that network, when
///
/// - jobs join a user-defined network (`network_mode`), and the runner container, whose
///   namespace ci-doctor enters, is on that network and on no other user-defined one;
/// - every URL is plain HTTP and names a known GitLab container on that network by container
///   name, alias or address: Docker's embedded DNS gives every container on the network the same
///   answer for such a name, and the network's bridge carries both connections alike;
/// - neither the jobs (`extra_hosts`, `links`) nor the runner container (`--add-host`, links,
///   its own name, aliases and host name, a hosts file or resolver configuration of its own)
///   map that name to anything else.
fn shared_on_network(facts: &Facts, view: &PlannedView, accesses: &[ViewAccess], root_of: &dyn Fn(u32) -> PathBuf) -> Option<(usize, String)> {
    let network = view.network.network_mode.as_deref().filter(|mode| topology::is_user_defined(mode) && !mode.starts_with("container:"))?;
    let hosts = http_hosts(view)?;
    for host in &hosts {
        let named = facts.gitlabs.iter().any(|gitlab| {
            let container = &gitlab.container;
            container.name.eq_ignore_ascii_case(host)
                || container.network(network).is_some_and(|attachment| attachment.ip.as_deref() == Some(host.as_str()) || attachment.aliases.iter().any(|alias| alias.eq_ignore_ascii_case(host)))
        });
        let job_remaps = view.network.extra_hosts.iter().any(|mapping| host_of_mapping(mapping).eq_ignore_ascii_case(host))
            || view.network.links.iter().any(|link| link.split(':').any(|part| part.eq_ignore_ascii_case(host)));
        if !named || job_remaps {
            return None;
        }
    }

    let runner = candidate_runners(facts, view).find(|runner| {
        let Some(container) = facts.runners[*runner].container() else { return false };
        let user_networks: Vec<&str> = container.networks.iter().map(|attachment| attachment.name.as_str()).filter(|name| topology::is_user_defined(name)).collect();
        let remaps = |host: &String| {
            container.name.eq_ignore_ascii_case(host)
                || container.hostname.eq_ignore_ascii_case(host)
                || container.network(network).is_some_and(|attachment| attachment.aliases.iter().any(|alias| alias.eq_ignore_ascii_case(host)))
                || container.extra_hosts.iter().any(|mapping| host_of_mapping(mapping).eq_ignore_ascii_case(host))
                || container.links.iter().any(|link| link.alias.eq_ignore_ascii_case(host))
        };
        matches!(accesses.get(*runner), Some(ViewAccess::Namespace { .. }))
            && user_networks == [network]
            && !hosts.iter().any(remaps)
            && container.pid.is_some_and(|pid| resolves_like_docker(&root_of(pid), &hosts))
    })?;
    Some((runner, network.to_string()))
}

/// Returns the runner container linked like the jobs on Docker's default bridge, with the links
/// in `--link name:alias` form, when
///
/// - jobs use the default bridge (no `network_mode`, or `bridge`), and so does the runner
///   container, whose namespace ci-doctor enters, on no other network;
/// - every URL is plain HTTP and its host is the alias of exactly one job link to a known GitLab
///   container, not named by the jobs' `extra_hosts`, or that container's bridge address;
/// - the runner container links the same container, under the same alias for a name, and does
///   not map the name otherwise (`--add-host`, its own name or host name);
/// - the first line of the runner's hosts file that names the host gives that container's
///   current bridge address. Docker writes that line into a job container's hosts file at its
///   start, and the bridge carries both connections alike.
fn shared_through_links(facts: &Facts, view: &PlannedView, accesses: &[ViewAccess], root_of: &dyn Fn(u32) -> PathBuf) -> Option<(usize, Vec<String>)> {
    if view.network.network_mode.as_deref().is_some_and(|mode| mode != "bridge") {
        return None;
    }
    let hosts = http_hosts(view)?;

    // Each host, with the GitLab container the jobs link for it and that container's bridge
    // address. A host that is that address needs no name resolution, but the link still matters:
    // with inter-container traffic off (`icc=false`), only linked containers reach each other.
    let job_links: Vec<(&str, &str)> = view.network.links.iter().filter_map(|link| parse_job_link(link)).collect();
    let mut targets: Vec<Target> = Vec::new();
    for host in hosts {
        let bridge_address = |container: &crate::facts::docker::ContainerInfo| container.network("bridge").and_then(|attachment| attachment.ip.as_deref()?.parse::<IpAddr>().ok());
        let target = match host.parse::<IpAddr>() {
            Ok(address) => {
                let gitlab = facts.gitlabs.iter().map(|gitlab| &gitlab.container).find(|container| bridge_address(container) == Some(address))?;
                let alias = job_links.iter().find(|(name, _)| *name == gitlab.name)?.1;
                Target { host, alias: alias.to_string(), container: gitlab.name.clone(), address, by_name: false }
            }
            Err(_) => {
                let mut named = job_links.iter().filter(|(_, alias)| alias.eq_ignore_ascii_case(&host));
                let (name, _) = named.next()?;
                if named.next().is_some() || view.network.extra_hosts.iter().any(|mapping| host_of_mapping(mapping).eq_ignore_ascii_case(&host)) {
                    return None;
                }
                let gitlab = facts.gitlabs.iter().map(|gitlab| &gitlab.container).find(|container| container.name == *name)?;
                Target { alias: host.clone(), host, container: gitlab.name.clone(), address: bridge_address(gitlab)?, by_name: true }
            }
        };
        targets.push(target);
    }

    let runner = candidate_runners(facts, view).find(|runner| {
        let Some(container) = facts.runners[*runner].container() else { return false };
        let Some(pid) = container.pid else { return false };
        let bridge_only = container.networks.len() == 1 && container.networks[0].name == "bridge";
        let linked = |target: &Target| {
            let same_link = container.links.iter().any(|link| link.target == target.container && (!target.by_name || link.alias.eq_ignore_ascii_case(&target.host)));
            let remapped = container.name.eq_ignore_ascii_case(&target.host)
                || container.hostname.eq_ignore_ascii_case(&target.host)
                || container.extra_hosts.iter().any(|mapping| host_of_mapping(mapping).eq_ignore_ascii_case(&target.host));
            same_link && !(target.by_name && remapped)
        };
        let hosts_file = std::fs::read_to_string(root_of(pid).join("etc/hosts")).unwrap_or_default();
        let entries = super::view::parse_hosts(&hosts_file);
        let current = |target: &Target| {
            !target.by_name || entries.iter().find(|(_, names)| names.iter().any(|name| name.eq_ignore_ascii_case(&target.host))).is_some_and(|(found, _)| *found == target.address)
        };
        matches!(accesses.get(*runner), Some(ViewAccess::Namespace { .. })) && bridge_only && targets.iter().all(linked) && targets.iter().all(current)
    })?;
    let mut links: Vec<String> = targets.iter().map(|target| format!("{}:{}", target.container, target.alias)).collect();
    links.sort();
    links.dedup();
    Some((runner, links))
}

/// A URL host that a job link leads to.
struct Target {
    host: String,
    /// The job link's alias; the host itself unless the host is an address.
    alias: String,
    /// The linked GitLab container's name.
    container: String,
    /// That container's address on the default bridge.
    address: IpAddr,
    /// Whether the host is a name, which the hosts file resolves, rather than the address.
    by_name: bool,
}

/// Parses a job link as `[runners.docker] links` gives it, `name:alias` or `name`, into
/// `(name, alias)`.
fn parse_job_link(link: &str) -> Option<(&str, &str)> {
    let link = link.trim();
    let (name, alias) = link.split_once(':').unwrap_or((link, link));
    let name = name.trim_start_matches('/');
    (!name.is_empty() && !alias.is_empty()).then_some((name, alias))
}

/// Lists the runners to try as stand-ins for `view`: the entries' own runners first, then every
/// other.
fn candidate_runners<'a>(facts: &Facts, view: &'a PlannedView) -> impl Iterator<Item = usize> + 'a {
    view.members.iter().map(|(runner, _)| *runner).chain(0..facts.runners.len())
}

/// Whether the container whose root is `root` resolves names as Docker sets it up on a
/// user-defined network: through the embedded DNS server alone, with no line of its hosts file
/// naming one of `hosts`. A bind-mounted `/etc/resolv.conf` or `/etc/hosts` breaks that.
fn resolves_like_docker(root: &Path, hosts: &[String]) -> bool {
    let Ok(resolv) = std::fs::read_to_string(root.join("etc/resolv.conf")) else { return false };
    let servers: Vec<&str> = resolv.lines().filter_map(|line| line.trim().strip_prefix("nameserver")).map(str::trim).collect();
    if servers != [DOCKER_DNS] {
        return false;
    }
    let names = std::fs::read_to_string(root.join("etc/hosts")).unwrap_or_default();
    !names.lines().map(|line| line.split('#').next().unwrap_or_default()).any(|line| line.split_whitespace().skip(1).any(|name| hosts.iter().any(|host| host.eq_ignore_ascii_case(name))))
}

/// Docker's embedded DNS server, which containers on user-defined networks use.
const DOCKER_DNS: &str = "127.0.0.11";

/// The host name of an `extra_hosts` mapping, `name:address` or `name=address`.
fn host_of_mapping(mapping: &str) -> &str {
    mapping.split([':', '=']).next().unwrap_or_default().trim()
}

/// Builds the job view of `view` from the probes of runner container `runner`, whose view equals
/// the jobs' for the reason `access` gives (see [`shared_runner`]).
pub fn shared_view(view: PlannedView, runner: usize, access: JobAccess, probes: &crate::facts::probe::Probes) -> JobView {
    let urls = view
        .urls
        .iter()
        .filter_map(|(url, _)| probes.urls.iter().find(|probe| probe.runner == runner && probe.url == *url))
        .map(|probe| crate::facts::probe::UrlProbe { runner: view.members[0].0, ..probe.clone() })
        .collect();
    JobView { runner: view.members[0].0, members: view.members, network: view.network, access, urls }
}

/// Probes every planned job view concurrently, each from a probe container of its own.
pub async fn run(facts: &Facts, client: Option<&DockerClient>, planned: Vec<PlannedView>, timeout: Duration, deadline: Instant) -> Vec<JobView> {
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
            .map(|view| JobView { runner: view.members[0].0, members: view.members, network: view.network, access: access.clone(), urls: Vec::new() })
            .collect();
    }
    let client = client.expect("checked above");
    let images = candidate_images(facts);
    let semaphore = tokio::sync::Semaphore::new(PROBE_CONTAINERS);
    let views = planned.into_iter().map(|view| {
        let images = images.clone();
        let semaphore = &semaphore;
        async move {
            let _permit = semaphore.acquire().await;
            let runner = view.members[0].0;
            let (access, probes) = probe_view(client, runner, &view.network, &view.urls, &images, timeout, deadline).await;
            JobView { runner, members: view.members, network: view.network, access, urls: probes }
        }
    });
    join_all(views).await
}

/// Probe containers started at once: each costs the daemon a network namespace and a mount.
const PROBE_CONTAINERS: usize = 4;

/// Returns the directory that is `/` for runner `runner`: its container's root through
/// `/proc`, or this host's.
fn runner_root(facts: &Facts, runner: usize) -> PathBuf {
    match facts.runners[runner].container().and_then(|container| container.pid) {
        Some(pid) => PathBuf::from(format!("/proc/{pid}/root")),
        None => PathBuf::from("/"),
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

async fn probe_view(
    client: &DockerClient,
    runner: usize,
    network: &JobNetwork,
    urls: &[(String, Vec<PathBuf>)],
    images: &[String],
    timeout: Duration,
    deadline: Instant,
) -> (JobAccess, Vec<crate::facts::probe::UrlProbe>) {
    // A name of its own for every container of this process: an ended probe container of an
    // earlier diagnosis (a re-check after `--fix`) may still be on its way out.
    static STARTED: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let sequence = STARTED.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = format!("ci-doctor-probe-{}-{sequence}", std::process::id());
    let mut last_error = "no local image to run a probe container from".to_string();

    for image in images.iter().take(3) {
        match start_probe(client, &name, image, network, timeout, deadline).await {
            Ok(pid) => {
                let files = ViewFiles::load(Path::new(&format!("/proc/{pid}/root")));
                // CA paths are host paths already, so they are read below `/`.
                let urls = urls.iter().map(|(url, cas)| (url.clone(), cas.iter().map(|ca| ca.to_string_lossy().into_owned()).collect())).collect();
                let plan = Plan { runner, view: format!("job probe container `{name}`"), urls, ca_root: PathBuf::from("/"), ..Plan::default() };
                let result = tokio::time::timeout_at(
                    deadline + Duration::from_millis(500),
                    netns::run_in_namespace(pid, move || session(plan, files, timeout, deadline)),
                )
                .await;
                stop(client, &name, pid).await;
                return match result {
                    Ok(Ok((probes, _, _))) => (JobAccess::Probe { container: name, image: image.clone() }, probes),
                    Ok(Err(message)) => (JobAccess::Unavailable { reason: message }, Vec::new()),
                    Err(_) => (JobAccess::Unavailable { reason: "the job probe did not finish before the run's deadline".into() }, Vec::new()),
                };
            }
            Err(error) => {
                remove(client, &name).await;
                // Another image would get the same error, and so does every job.
                if rejects_job_network(&error) {
                    return (JobAccess::Rejected { message: error }, Vec::new());
                }
                last_error = error;
            }
        }
    }
    (JobAccess::Unavailable { reason: format!("no probe container could start: {last_error}") }, Vec::new())
}

/// Returns whether a Docker error on creating or starting a container blames the network settings
/// it was given, rather than the image or the daemon. The phrases are Docker Engine 20.10's, each seen
/// here. A daemon that words them otherwise leaves the job view to reasoning.
fn rejects_job_network(message: &str) -> bool {
    const PHRASES: [&str; 4] = ["Cannot link to", "could not get container for", "conflicting options", "invalid IP address in add-host"];
    let network_missing = message.contains("network ") && message.contains(" not found");
    network_missing || PHRASES.iter().any(|phrase| message.contains(phrase))
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

/// Ends a probe container whose first process is `pid` by killing that process: the
/// container then stops and Docker removes it by itself (auto-remove), without ci-doctor
/// waiting the tenth of a second that a stop and removal take. Falls back to removing it through
/// the API.
async fn stop(client: &DockerClient, name: &str, pid: u32) {
    use nix::sys::signal::{Signal, kill};
    match kill(nix::unistd::Pid::from_raw(pid as i32), Signal::SIGKILL) {
        Ok(()) => super::cleanup::unregister(name),
        Err(error) => {
            tracing::debug!(container = name, %error, "failed to kill the probe process; removing the container");
            remove(client, name).await;
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::config::{ConfigFile, ConfigOrigin, ParsedConfig};
    use crate::facts::docker::{ContainerInfo, GitLabContainer, Link, NetworkAttachment};
    use crate::facts::runner::RunnerProcess;

    const ENTRY: &str = "[[runners]]\n  name = \"shared\"\n  url = \"http://gitlab/\"\n  executor = \"docker\"\n  [runners.docker]\n    image = \"alpine:3.20\"\n";

    fn attachment(name: &str, ip: &str, aliases: &[&str]) -> NetworkAttachment {
        NetworkAttachment { name: name.into(), ip: Some(ip.into()), aliases: aliases.iter().map(|alias| alias.to_string()).collect() }
    }

    fn runner(name: &str, networks: Vec<NetworkAttachment>, docker_keys: &str) -> RunnerProcess {
        let text = format!("{ENTRY}{docker_keys}");
        let parsed = ParsedConfig::parse(&text).unwrap();
        let config = ConfigFile { path: "/etc/gitlab-runner/config.toml".into(), origin: ConfigOrigin::Given, host_path: None, meta: None, text: Ok(text), parsed: Some(Ok(parsed)), system_id: None };
        let container = ContainerInfo { name: name.into(), hostname: "0123456789ab".into(), state: "running".into(), pid: Some(4242), networks, ..ContainerInfo::default() };
        RunnerProcess { kind: RunnerKind::Container(Box::new(container)), config }
    }

    /// GitLab as container `gitlab-1` with alias `gitlab` on `ci-net`, and one runner container.
    fn facts(runner_networks: Vec<NetworkAttachment>, docker_keys: &str) -> Facts {
        let gitlab = ContainerInfo { name: "gitlab-1".into(), networks: vec![attachment("ci-net", "172.18.0.2", &["gitlab"])], ..ContainerInfo::default() };
        Facts {
            runners: vec![runner("gitlab-runner", runner_networks, docker_keys)],
            gitlabs: vec![GitLabContainer { container: gitlab, external_url: Some("http://gitlab".into()), ..GitLabContainer::default() }],
            ..Facts::default()
        }
    }

    /// A container root as Docker writes it for a user-defined network.
    fn docker_root(hosts: &str, resolv: &str) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("etc")).unwrap();
        std::fs::write(root.path().join("etc/hosts"), hosts).unwrap();
        std::fs::write(root.path().join("etc/resolv.conf"), resolv).unwrap();
        root
    }

    const HOSTS: &str = "127.0.0.1\tlocalhost\n172.18.0.3\t0123456789ab\n";
    const RESOLV: &str = "search example.test\nnameserver 127.0.0.11\noptions ndots:0\n";

    fn shared_with_files(facts: &Facts, hosts: &str, resolv: &str) -> Option<usize> {
        let root = docker_root(hosts, resolv);
        let accesses = vec![ViewAccess::Namespace { pid: 4242 }; facts.runners.len()];
        let views = plan(facts);
        assert_eq!(views.len(), 1, "{views:#?}");
        shared_runner_with_roots(facts, &views[0], &accesses, &|_| root.path().to_path_buf()).map(|(runner, _)| runner)
    }

    fn shared(facts: &Facts) -> Option<usize> {
        shared_with_files(facts, HOSTS, RESOLV)
    }

    #[test]
    fn runner_on_the_jobs_network_stands_for_them() {
        let facts = facts(vec![attachment("ci-net", "172.18.0.3", &[])], "    network_mode = \"ci-net\"\n");
        assert_eq!(shared(&facts), Some(0));
    }

    #[test]
    fn any_remapping_of_the_name_needs_a_probe_container() {
        let on_net = || vec![attachment("ci-net", "172.18.0.3", &[])];
        let cases = [
            ("jobs map the name", facts(on_net(), "    network_mode = \"ci-net\"\n    extra_hosts = [\"gitlab:10.0.0.9\"]\n")),
            ("jobs link the name", facts(on_net(), "    network_mode = \"ci-net\"\n    links = [\"other:gitlab\"]\n")),
            ("jobs on the default bridge", facts(on_net(), "")),
            ("runner on a second network", facts(vec![attachment("ci-net", "172.18.0.3", &[]), attachment("other-net", "172.19.0.3", &[])], "    network_mode = \"ci-net\"\n")),
            ("runner not on the jobs' network", facts(vec![attachment("other-net", "172.19.0.3", &[])], "    network_mode = \"ci-net\"\n")),
            ("runner has the name as an alias", facts(vec![attachment("ci-net", "172.18.0.3", &["gitlab"])], "    network_mode = \"ci-net\"\n")),
        ];
        for (case, facts) in cases {
            assert_eq!(shared(&facts), None, "{case}");
        }
    }

    #[test]
    fn a_runner_resolving_by_files_of_its_own_cannot_stand_for_jobs() {
        let facts = facts(vec![attachment("ci-net", "172.18.0.3", &[])], "    network_mode = \"ci-net\"\n");
        assert_eq!(shared_with_files(&facts, HOSTS, "nameserver 10.0.0.53\n"), None, "a mounted resolv.conf");
        assert_eq!(shared_with_files(&facts, &format!("{HOSTS}10.0.0.9 gitlab\n"), RESOLV), None, "a hosts file naming GitLab");
        assert_eq!(shared_with_files(&facts, &format!("{HOSTS}# 10.0.0.9 gitlab\n"), RESOLV), Some(0), "a comment names nothing");
    }

    #[test]
    fn names_outside_the_network_and_https_need_a_probe_container() {
        let mut facts = facts(vec![attachment("ci-net", "172.18.0.3", &[])], "    network_mode = \"ci-net\"\n");
        facts.gitlabs[0].external_url = Some("http://gitlab.example.test".into());
        assert_eq!(shared(&facts), None, "the clone URL's name is not a container on the network");

        let mut facts = facts_with_url("https://gitlab/");
        facts.gitlabs[0].external_url = Some("https://gitlab".into());
        assert_eq!(shared(&facts), None, "a job trusts its own CA bundle");
    }

    fn facts_with_url(url: &str) -> Facts {
        let mut facts = facts(vec![attachment("ci-net", "172.18.0.3", &[])], "    network_mode = \"ci-net\"\n");
        let text = format!("{}{}", ENTRY.replace("http://gitlab/", url), "    network_mode = \"ci-net\"\n");
        facts.runners[0].config.parsed = Some(Ok(ParsedConfig::parse(&text).unwrap()));
        facts
    }

    #[test]
    fn runner_without_a_namespace_view_cannot_stand_for_jobs() {
        let facts = facts(vec![attachment("ci-net", "172.18.0.3", &[])], "    network_mode = \"ci-net\"\n");
        let views = plan(&facts);
        let root = docker_root(HOSTS, RESOLV);
        let accesses = vec![ViewAccess::Unavailable { reason: "not root".into() }];
        assert_eq!(shared_runner_with_roots(&facts, &views[0], &accesses, &|_| root.path().to_path_buf()), None);
    }

    /// GitLab as container `gitlab` at 172.17.0.2 on the default bridge, and a runner container
    /// there linked to it as `gitlab` (or as `runner_link`), whose jobs get `docker_keys`.
    fn linked_facts(runner_link: &str, docker_keys: &str) -> Facts {
        let gitlab = ContainerInfo { name: "gitlab".into(), networks: vec![attachment("bridge", "172.17.0.2", &[])], ..ContainerInfo::default() };
        let mut runner = runner("gitlab-runner", vec![attachment("bridge", "172.17.0.3", &[])], docker_keys);
        if let RunnerKind::Container(container) = &mut runner.kind {
            let (target, alias) = runner_link.split_once(':').unwrap();
            container.links = vec![Link { target: target.into(), alias: alias.into() }];
        }
        Facts {
            runners: vec![runner],
            gitlabs: vec![GitLabContainer { container: gitlab, external_url: Some("http://gitlab".into()), ..GitLabContainer::default() }],
            ..Facts::default()
        }
    }

    /// A hosts file as Docker writes it for a container linked to `gitlab` at 172.17.0.2.
    const LINKED_HOSTS: &str = "127.0.0.1\tlocalhost\n172.17.0.2\tgitlab 0123456789cd\n172.17.0.3\t0123456789ab\n";
    const BRIDGE_RESOLV: &str = "nameserver 10.0.0.53\n";

    fn linked_access(facts: &Facts, hosts: &str) -> Option<(usize, JobAccess)> {
        let root = docker_root(hosts, BRIDGE_RESOLV);
        let views = plan(facts);
        assert_eq!(views.len(), 1, "{views:#?}");
        shared_runner_with_roots(facts, &views[0], &[ViewAccess::Namespace { pid: 4242 }], &|_| root.path().to_path_buf())
    }

    #[test]
    fn linked_runner_gives_job_view() {
        for keys in ["    links = [\"gitlab:gitlab\"]\n", "    links = [\"gitlab\"]\n", "    network_mode = \"bridge\"\n    links = [\"gitlab:gitlab\"]\n"] {
            let facts = linked_facts("gitlab:gitlab", keys);
            let expected = JobAccess::Linked { container: "gitlab-runner".into(), links: vec!["gitlab:gitlab".into()] };
            assert_eq!(linked_access(&facts, LINKED_HOSTS), Some((0, expected)), "{keys}");
        }
    }

    #[test]
    fn differing_links_need_probe_container() {
        let cases = [
            ("jobs have no link", linked_facts("gitlab:gitlab", "")),
            ("jobs link another container", linked_facts("gitlab:gitlab", "    links = [\"other:gitlab\"]\n")),
            ("jobs link the name twice", linked_facts("gitlab:gitlab", "    links = [\"gitlab:gitlab\", \"other:gitlab\"]\n")),
            ("jobs also map the name", linked_facts("gitlab:gitlab", "    links = [\"gitlab:gitlab\"]\n    extra_hosts = [\"gitlab:10.0.0.9\"]\n")),
            ("jobs on a user-defined network", linked_facts("gitlab:gitlab", "    network_mode = \"ci-net\"\n    links = [\"gitlab:gitlab\"]\n")),
            ("runner links another alias", linked_facts("gitlab:gitlab.example.test", "    links = [\"gitlab:gitlab\"]\n")),
            ("runner links another container", linked_facts("other:gitlab", "    links = [\"gitlab:gitlab\"]\n")),
        ];
        for (case, facts) in cases {
            assert_eq!(linked_access(&facts, LINKED_HOSTS), None, "{case}");
        }
    }

    #[test]
    fn linked_runner_with_stale_hosts_rejected() {
        let facts = linked_facts("gitlab:gitlab", "    links = [\"gitlab:gitlab\"]\n");
        // GitLab restarted with a new address; the runner's hosts file still has the old one.
        assert_eq!(linked_access(&facts, &LINKED_HOSTS.replace("172.17.0.2", "172.17.0.9")), None, "an old address");
        assert_eq!(linked_access(&facts, &format!("10.0.0.9 gitlab\n{LINKED_HOSTS}")), None, "an earlier line wins");
        assert_eq!(linked_access(&facts, HOSTS), None, "no line names GitLab");

        let mut on_two = facts.clone();
        if let RunnerKind::Container(container) = &mut on_two.runners[0].kind {
            container.networks.push(attachment("ci-net", "172.18.0.3", &[]));
        }
        assert_eq!(linked_access(&on_two, LINKED_HOSTS), None, "runner also on a user-defined network");
    }

    #[test]
    fn job_network_rejections_are_recognized() {
        let rejections = [
            "Docker responded with status code 404: network no-such-net not found",
            "Docker responded with status code 500: Cannot link to /gitlab, as it does not belong to the default network",
            "Docker responded with status code 404: could not get container for gitlab: No such container: gitlab",
            "Docker responded with status code 400: invalid IP address in add-host: \"notanip\"",
            "Docker responded with status code 400: conflicting options: dns and the network mode",
        ];
        for message in rejections {
            assert!(rejects_job_network(message), "{message}");
        }
        let other = ["Docker responded with status code 404: No such image: alpine:3.20", "the probe container from `alpine:3.20` stopped at once", "operation timed out"];
        for message in other {
            assert!(!rejects_job_network(message), "{message}");
        }
    }

    #[test]
    fn entries_of_several_runners_share_one_view() {
        let mut facts = facts(vec![attachment("ci-net", "172.18.0.3", &[])], "    network_mode = \"ci-net\"\n");
        facts.runners.push(runner("gitlab-runner-2", vec![attachment("ci-net", "172.18.0.4", &[])], "    network_mode = \"ci-net\"\n"));
        let views = plan(&facts);
        assert_eq!(views.len(), 1, "{views:#?}");
        assert_eq!(views[0].members, vec![(0, 0), (1, 0)]);

        facts.runners[1] = runner("gitlab-runner-2", vec![attachment("ci-net", "172.18.0.4", &[])], "    network_mode = \"other-net\"\n");
        assert_eq!(plan(&facts).len(), 2, "other settings, another view");
    }
}
