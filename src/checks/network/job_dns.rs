//! `network.job-dns`: job containers get a resolver that responds.

use crate::checks::Check;
use crate::facts::probe::Resolution;
use crate::facts::{Entry, Facts};
use crate::finding::{Finding, Status, Subject};

pub struct JobDns;

impl Check for JobDns {
    fn id(&self) -> &'static str {
        "network.job-dns"
    }

    fn summary(&self) -> &'static str {
        "job containers get DNS servers that answer: valid `dns` entries, a reachable resolver"
    }

    fn explanation(&self) -> &'static str {
        include_str!("../../../checks/network.job-dns.md")
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
    let config = &facts.runners[runner].config;

    // The runner validates `dns` since 19.2: each must be an IP address.
    let invalid: Vec<String> = entry.keys.strings("docker.dns").into_iter().filter(|server| server.parse::<std::net::IpAddr>().is_err()).collect();
    if !invalid.is_empty() {
        return Finding::new(id, Status::Error, format!("`dns` of runner `{name}` contains names, not addresses: {}", invalid.iter().map(|server| format!("`{server}`")).collect::<Vec<_>>().join(", ")))
            .effect("Docker needs IP addresses of DNS servers; recent runners reject the job, older ones hand job containers an unusable resolver")
            .location(entry.keys.get("docker.dns").map(|located| crate::facts::config::locate(config, located)))
            .help("list DNS servers by address, for example `dns = [\"10.0.0.2\"]`");
    }

    let Some(view) = facts.job_view(runner, entry.index) else {
        return Finding::new(id, Status::Skipped, format!("runner `{name}` has no job view"));
    };
    let basis = super::job_basis(Some(view));
    let failures: Vec<(String, String, Vec<String>)> = view
        .urls
        .iter()
        .filter_map(|probe| match &probe.resolution {
            Resolution::Failed { message, servers } => Some((probe.host.clone(), message.clone(), servers.clone())),
            _ => None,
        })
        .collect();
    if view.urls.is_empty() {
        return Finding::new(id, Status::Skipped, format!("nothing was looked up from the job's view of runner `{name}`")).evidence(basis.detail.clone()).basis(basis);
    }
    if let Some((host, message, servers)) = failures.first() {
        let servers = if servers.is_empty() { "no server".to_string() } else { servers.join(", ") };
        return Finding::new(id, Status::Error, format!("DNS from job containers of runner `{name}` fails: looking up `{host}` through {servers}: {message}"))
            .effect("jobs cannot resolve GitLab or registries: \"Could not resolve host\" while cloning, \"server misbehaving\" or \"i/o timeout\" while pulling images")
            .basis(basis)
            .help("set `dns` in `[runners.docker]` to a resolver job containers can reach, or fix the host's resolver that Docker copies into containers");
    }
    let looked_up: Vec<String> = view.urls.iter().map(|probe| format!("`{}`", probe.host)).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    Finding::new(id, Status::Ok, format!("job containers of runner `{name}` get answers from their resolver (looked up {})", looked_up.join(", "))).basis(basis)
}
