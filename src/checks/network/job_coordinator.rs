//! `network.job-coordinator`: helper containers reach the runner's `url`, where they upload
//! artifacts and caches.

use super::{describe_probe, job_basis};
use crate::checks::Check;
use crate::facts::config::locate;
use crate::facts::{Entry, Facts};
use crate::finding::{Finding, Status, Subject};
use crate::fix::{Action, Fix, KeyPath, TomlValue};
use crate::topology;

pub struct JobCoordinator;

impl Check for JobCoordinator {
    fn id(&self) -> &'static str {
        "network.job-coordinator"
    }

    fn summary(&self) -> &'static str {
        "helper containers reach the runner's `url` for artifact and cache uploads"
    }

    fn explanation(&self) -> &'static str {
        include_str!("../../../checks/network.job-coordinator.md")
    }

    fn run(&self, facts: &Facts, out: &mut Vec<Finding>) {
        for runner in 0..facts.runners.len() {
            for entry in facts.entries(runner).iter().filter(|entry| entry.uses_docker()) {
                let subject = Subject { runner, entry: Some(entry.index) };
                out.push(judge(self.id(), facts, runner, entry).subject(subject));
            }
        }
    }
}

fn judge(id: &'static str, facts: &Facts, runner: usize, entry: &Entry) -> Finding {
    let name = entry.label();
    let Some(url) = entry.keys.str("url") else {
        return Finding::new(id, Status::Skipped, format!("runner `{name}` has no `url` (see `network.runner-url`)"));
    };
    // When the runner itself cannot reach its URL, that is the problem to fix first.
    if facts.probes.url(runner, url).is_some_and(|probe| !probe.reached_gitlab()) {
        return Finding::new(id, Status::Skipped, format!("the runner does not reach `{url}` itself (see `network.runner-url`)"));
    }
    let view = facts.job_view(runner, entry.index);
    let basis = job_basis(view);
    let Some(probe) = view.and_then(|view| view.url(url)) else {
        return Finding::new(id, Status::Skipped, format!("`{url}` was not probed from the job's view")).evidence(basis.detail.clone()).basis(basis);
    };
    if probe.reached_gitlab() {
        return Finding::new(id, Status::Ok, format!("helper containers of runner `{name}` reach `{url}`")).basis(basis);
    }

    let config = &facts.runners[runner].config;
    let mut finding = Finding::new(id, Status::Error, format!("helper containers of runner `{name}` cannot reach its `url` `{url}`, which the runner itself reaches"))
        .effect("jobs run, but uploading artifacts and caches fails (\"ERROR: Uploading artifacts ... dial tcp: lookup ... no such host\"), and so do jobs that download artifacts")
        .evidence(describe_probe(probe))
        .basis(basis)
        .location(entry.keys.get("url").map(|located| locate(config, located)));

    // Give jobs what gives the runner its reach. The shared network comes first, then the
    // host mapping that repairs the clone URL too (one change fixes both), then the link.
    let host = url::Url::parse(url).ok().and_then(|parsed| parsed.host_str().map(str::to_string)).unwrap_or_default();
    let mapping = topology::clone_source(facts, runner, entry).and_then(|source| {
        topology::clone_candidates(facts, runner, entry, &source).into_iter().find_map(|candidate| match candidate.remedy {
            topology::CloneRemedy::ExtraHost { host: mapped, address } if mapped.eq_ignore_ascii_case(&host) && view.and_then(|view| view.url(&candidate.probe_url)).is_some_and(|probe| probe.reached_gitlab()) => {
                Some(format!("{mapped}:{address}"))
            }
            _ => None,
        })
    });
    if let Some(container) = facts.runners[runner].container() {
        let gitlab = topology::gitlab_for_entry(facts, runner, entry);
        let shared = gitlab.map(|gitlab| topology::shared_user_networks(container, &gitlab.container)).unwrap_or_default();
        if let Some(mapping) = mapping {
            let action = Action::AddToArray { path: KeyPath::entry(entry.index, &["docker", "extra_hosts"]), value: mapping.clone() };
            finding = finding
                .help(format!("give job containers the mapping `extra_hosts = [\"{mapping}\"]`, the same that repairs the clone URL"))
                .fix(Fix::safe(format!("add `{mapping}` to `extra_hosts`"), vec![action]));
        } else if let Some(network) = shared.first() {
            let action = Action::SetKey { path: KeyPath::entry(entry.index, &["docker", "network_mode"]), value: TomlValue::String(network.clone()), after: None };
            finding = finding
                .help(format!("set `network_mode = \"{network}\"`: the runner reaches GitLab on that network, and job containers need to join it too"))
                .fix(Fix::safe(format!("set `network_mode = \"{network}\"`"), vec![action]));
        } else if let Some(link) = container.links.iter().find(|link| link.alias.eq_ignore_ascii_case(&host)) {
            let value = format!("{}:{}", link.target, link.alias);
            let action = Action::AddToArray { path: KeyPath::entry(entry.index, &["docker", "links"]), value: value.clone() };
            finding = finding
                .help(format!("give job containers the runner's link: `links = [\"{value}\"]`"))
                .fix(Fix::safe(format!("add `{value}` to `links`"), vec![action]));
        } else {
            finding = finding.help("give job containers the same way to GitLab that the runner container has: `network_mode`, `links` or `extra_hosts`");
        }
    }
    finding
}
