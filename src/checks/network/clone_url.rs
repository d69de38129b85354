//! `network.clone-url`: job and helper containers reach the URL they clone from, judged from a
//! container with the job's own network settings.

use super::{describe_probe, job_basis};
use crate::checks::Check;
use crate::facts::config::{locate, locate_missing};
use crate::facts::{Entry, Facts};
use crate::finding::{Finding, Status, Subject};
use crate::fix::{Action, Fix, KeyPath, TomlValue};
use crate::topology::{self, CloneFrom, CloneRemedy, CloneSource};

pub struct CloneUrl;

impl Check for CloneUrl {
    fn id(&self) -> &'static str {
        "network.clone-url"
    }

    fn summary(&self) -> &'static str {
        "job containers reach the clone URL GitLab advertises (or `clone_url`), from the job's own network"
    }

    fn explanation(&self) -> &'static str {
        include_str!("../../../checks/network.clone-url.md")
    }

    fn run(&self, facts: &Facts, out: &mut Vec<Finding>) {
        for runner in 0..facts.runners.len() {
            for entry in facts.entries(runner).iter().filter(|entry| entry.uses_docker()) {
                let subject = Subject { runner, entry: Some(entry.index) };
                for finding in judge(self.id(), facts, runner, entry) {
                    out.push(finding.subject(subject));
                }
            }
        }
    }
}

fn judge(id: &'static str, facts: &Facts, runner: usize, entry: &Entry) -> Vec<Finding> {
    let name = entry.label();
    if let Some(finding) = rejected(id, facts, runner, entry) {
        return vec![finding];
    }
    let Some(source) = topology::clone_source(facts, runner, entry) else {
        return vec![Finding::new(id, Status::Skipped, format!("the clone URL of runner `{name}` is unknown: no `clone_url`, and no GitLab container on this host matches its `url`"))
            .help("set `clone_url`, or run ci-doctor where GitLab's container runs")];
    };
    let Ok(parsed) = url::Url::parse(&source.url) else {
        return vec![Finding::new(id, Status::Error, format!("clone URL `{}` of runner `{name}` is not a URL", source.url)).location(location(facts, runner, entry, &source))];
    };
    let host = parsed.host_str().unwrap_or_default().to_string();
    let origin = describe_source(&source);
    let view = facts.job_view(runner, entry.index);
    let basis = job_basis(view);
    let probe = view.and_then(|view| view.url(&source.url));
    let mut findings = Vec::new();

    // Background: a name that reaches the runner only through a legacy link.
    let link = facts.runners[runner].container().and_then(|container| container.links.iter().find(|link| link.alias.eq_ignore_ascii_case(&host)));
    if let Some(link) = link {
        findings.push(
            Finding::new(id, Status::Info, format!("the runner container reaches `{host}` through the legacy link `--link {}:{}`", link.target, link.alias))
                .effect("Docker keeps `--link` only for compatibility; links reach only the container that has them, never the job containers the runner creates"),
        );
    }

    let problem = if topology::is_loopback_host(&host) {
        Some(Finding::new(id, Status::Error, format!("jobs of runner `{name}` clone from `{}` ({origin}), but `{host}` inside a job container is the job container itself", source.url)))
    } else if topology::is_container_id(&host) {
        Some(Finding::new(id, Status::Error, format!("jobs of runner `{name}` clone from `{}` ({origin}): `{host}` is a container id that job containers cannot resolve", source.url)))
    } else {
        match probe {
            Some(probe) if probe.reached_gitlab() => {
                findings.push(Finding::new(id, Status::Ok, format!("job containers of runner `{name}` reach the clone URL `{}` ({origin})", source.url)).basis(basis));
                return findings;
            }
            Some(probe) => {
                let mut finding = Finding::new(id, Status::Error, format!("job containers of runner `{name}` cannot reach the clone URL `{}` ({origin})", source.url)).evidence(describe_probe(probe));
                if let Some(link) = link {
                    finding = finding.evidence(format!(
                        "the runner container reaches `{host}` only through its `--link {}:{}`; job and helper containers get no such link",
                        link.target, link.alias
                    ));
                }
                if probe.resolution.addresses().iter().any(|address| topology::is_loopback_host(address)) {
                    finding = finding.evidence(format!("the resolver hands job containers a loopback address for `{host}`, meant for a browser on the Docker host"));
                }
                Some(finding)
            }
            None => reasoned_problem(id, facts, runner, entry, &source, &host, link.is_some()),
        }
    };

    match problem {
        Some(finding) => {
            let finding = finding
                .effect("every job fails in \"Getting source from Git repository\" with \"Failed to connect to ... Connection refused\" or \"Could not resolve host\"")
                .basis(basis)
                .location(location(facts, runner, entry, &source));
            findings.push(with_remedy(finding, facts, runner, entry, &source));
        }
        None => findings.push(
            Finding::new(id, Status::Skipped, format!("the clone URL `{}` of runner `{name}` was not probed from the job's view", source.url))
                .evidence(basis.detail.clone())
                .basis(basis),
        ),
    }
    findings
}

/// Reports an error when Docker rejected a container with the job's network settings. No job of
/// the entry starts then, so there is no clone to judge.
fn rejected(id: &'static str, facts: &Facts, runner: usize, entry: &Entry) -> Option<Finding> {
    let view = facts.job_view(runner, entry.index)?;
    let crate::facts::job::JobAccess::Rejected { message } = &view.access else { return None };
    // The job log shows the daemon's own words, without the HTTP status ci-doctor adds.
    let daemon_message = match message.strip_prefix("Docker responded with status code ") {
        Some(rest) => rest.split_once(": ").map_or(rest, |(_, text)| text),
        None => message.as_str(),
    };
    let mut finding = Finding::new(id, Status::Error, format!("job containers of runner `{}` cannot start: Docker rejects their network settings", entry.label()))
        .effect(format!("every job fails before it runs, with \"Error response from daemon: {daemon_message}\""))
        .basis(job_basis(Some(view)));
    finding = if message.contains("Cannot link to") || message.contains("could not get container for") {
        // GitLab's own user-defined network is where jobs reach it by name without links.
        let gitlab_network = facts.gitlabs.iter().flat_map(|gitlab| &gitlab.container.networks).map(|attachment| attachment.name.as_str()).find(|name| topology::is_user_defined(name));
        let network_mode = gitlab_network.map_or("network_mode".to_string(), |network| format!("network_mode = \"{network}\""));
        finding.help(format!("legacy `links` work only between running containers on the default bridge: put GitLab, the runner and the jobs on one user-defined network (`{network_mode}` in `[runners.docker]`) and drop `links`"))
    } else {
        finding.help("correct `network_mode`, `links`, `extra_hosts` or `dns` in `[runners.docker]` so that Docker accepts them; `docker network ls` lists the networks")
    };
    Some(finding)
}

/// Judges from settings alone, for names whose resolution the settings decide.
fn reasoned_problem(id: &'static str, facts: &Facts, runner: usize, entry: &Entry, source: &CloneSource, host: &str, via_link: bool) -> Option<Finding> {
    let network = topology::job_network(entry);
    let mapped = network.extra_hosts.iter().any(|entry| entry.split(':').next().is_some_and(|name| name.eq_ignore_ascii_case(host)))
        || network.links.iter().any(|link| link.rsplit(':').next().is_some_and(|alias| alias.eq_ignore_ascii_case(host)));
    if mapped {
        return None;
    }
    let gitlab = topology::gitlab_for_entry(facts, runner, entry)?;
    let names_container = gitlab.container.name.eq_ignore_ascii_case(host) || gitlab.container.hostname.eq_ignore_ascii_case(host);
    let on_shared_network = network.network_mode.as_deref().is_some_and(|mode| gitlab.container.network(mode).is_some());
    if (via_link || names_container) && !on_shared_network {
        let network_text = network.network_mode.as_deref().map(|mode| format!("network `{mode}`")).unwrap_or_else(|| "Docker's default bridge".into());
        return Some(
            Finding::new(id, Status::Error, format!("job containers of runner `{}` will not resolve `{host}` in the clone URL `{}`", entry.label(), source.url))
                .evidence(format!("jobs run on {network_text} without a link or `extra_hosts` entry for `{host}`")),
        );
    }
    None
}

fn describe_source(source: &CloneSource) -> String {
    match &source.from {
        CloneFrom::CloneUrl => "its `clone_url`".to_string(),
        CloneFrom::ExternalUrl { container, source } => format!("GitLab's `external_url`, read from {source} of container `{container}`"),
        CloneFrom::Hostname { container } => format!("GitLab container `{container}` has no `external_url`, so GitLab uses its host name"),
    }
}

fn location(facts: &Facts, runner: usize, entry: &Entry, source: &CloneSource) -> Option<crate::finding::Location> {
    let config = &facts.runners[runner].config;
    match source.from {
        CloneFrom::CloneUrl => entry.keys.get("clone_url").map(|located| locate(config, located)),
        _ => Some(locate_missing(config, Some(entry), "clone_url")),
    }
}

/// Adds the first repair that a job-view probe confirmed, or reasoning allows.
fn with_remedy(finding: Finding, facts: &Facts, runner: usize, entry: &Entry, source: &CloneSource) -> Finding {
    let view = facts.job_view(runner, entry.index);
    let candidates = topology::clone_candidates(facts, runner, entry, source);
    let confirmed = |url: &str| view.and_then(|view| view.url(url)).is_some_and(|probe| probe.reached_gitlab());
    // A repair is proposed only when a job-view probe confirmed it.
    let chosen = candidates.iter().find(|candidate| confirmed(&candidate.probe_url));

    let durable = durable_commands(facts, runner, entry);
    let mut finding = finding;
    match chosen {
        Some(candidate) => match &candidate.remedy {
            CloneRemedy::CloneUrl(url) => {
                let action = Action::SetKey { path: KeyPath::entry(entry.index, &["clone_url"]), value: TomlValue::String(url.clone()), after: Some("url".into()) };
                finding = finding
                    .help(format!("set `clone_url = \"{url}\"` ({}), or change GitLab's `external_url` to a name every party can resolve, the host's browser included", candidate.reason))
                    .fix(Fix::safe(format!("set `clone_url = \"{url}\"`"), vec![action]));
            }
            CloneRemedy::ExtraHost { host, address } => {
                let mapping = format!("{host}:{address}");
                let action = Action::AddToArray { path: KeyPath::entry(entry.index, &["docker", "extra_hosts"]), value: mapping.clone() };
                let mut help = format!(
                    "give job containers the same mapping: `extra_hosts = [\"{mapping}\"]` ({}); this address changes when the container is recreated",
                    candidate.reason
                );
                if !durable.is_empty() {
                    help.push_str(", so the durable fix is a user-defined network shared by GitLab, the runner and the jobs (commands below, then `network_mode`)");
                }
                finding = finding.help(help).fix(Fix::safe(format!("add `{mapping}` to `extra_hosts`"), vec![action]));
                for command in &durable {
                    finding = finding.evidence(format!("durable fix: {command}"));
                }
            }
        },
        None => {
            let tried: Vec<String> = candidates.iter().map(|candidate| format!("`{}`", candidate.probe_url)).collect();
            if !tried.is_empty() && view.is_some_and(|view| view.access.probed()) {
                finding = finding.evidence(format!("none of {} answered from the job's view either", tried.join(", ")));
            }
            finding = finding.help("put GitLab and the job containers on one user-defined network (`network_mode`), or set `clone_url` to an address job containers reach");
            if !durable.is_empty() {
                finding = finding.fix(Fix::commands("create a network shared by GitLab, the runner and the jobs", &durable));
            }
        }
    }
    finding
}

/// Commands that put GitLab and the runner on one user-defined network, when they share none.
fn durable_commands(facts: &Facts, runner: usize, entry: &Entry) -> Vec<String> {
    let (Some(gitlab), Some(container)) = (topology::gitlab_for_entry(facts, runner, entry), facts.runners[runner].container()) else {
        return Vec::new();
    };
    if !topology::shared_user_networks(container, &gitlab.container).is_empty() {
        return Vec::new();
    }
    vec![
        "docker network create ci-net".to_string(),
        format!("docker network connect ci-net {}", gitlab.container.name),
        format!("docker network connect ci-net {}", container.name),
    ]
}
