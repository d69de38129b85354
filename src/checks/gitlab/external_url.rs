//! `gitlab.external-url`: GitLab advertises a URL that the other parties can use.

use crate::checks::Check;
use crate::facts::{Facts, GitLabContainer};
use crate::finding::{Finding, Status};
use crate::topology;

pub struct ExternalUrl;

impl Check for ExternalUrl {
    fn id(&self) -> &'static str {
        "gitlab.external-url"
    }

    fn summary(&self) -> &'static str {
        "GitLab's `external_url` is usable by jobs: not loopback, not a container id, not a host-only port"
    }

    fn explanation(&self) -> &'static str {
        include_str!("../../../checks/gitlab.external-url.md")
    }

    fn run(&self, facts: &Facts, out: &mut Vec<Finding>) {
        if facts.gitlabs.is_empty() {
            out.push(Finding::new(self.id(), Status::Skipped, "no GitLab container on this Docker host"));
            return;
        }
        for gitlab in &facts.gitlabs {
            out.push(judge(self.id(), gitlab));
        }
    }
}

fn judge(id: &'static str, gitlab: &GitLabContainer) -> Finding {
    let name = &gitlab.container.name;
    let url = gitlab.advertised_url();
    let source = match (&gitlab.external_url, &gitlab.external_url_source) {
        (Some(_), Some(source)) => format!("its `external_url`, from {source}"),
        (Some(_), None) => "its `external_url`".to_string(),
        (None, _) => "it has no `external_url`, so GitLab falls back to the container's host name".to_string(),
    };
    let Ok(parsed) = url::Url::parse(&url) else {
        return Finding::new(id, Status::Error, format!("GitLab container `{name}` advertises `{url}` ({source}), which is not a URL"));
    };
    let host = parsed.host_str().unwrap_or_default();
    let effect = "the clone URL GitLab hands to every job points somewhere the job container cannot reach, so clones fail (\"Failed to connect to ... Connection refused\")";
    let help = "set `external_url` to a name every party resolves (the host's browser, the runner and job containers), for example the Docker host's DNS name with its published port, or set `clone_url` on each runner";

    if topology::is_loopback_host(host) {
        return Finding::new(id, Status::Error, format!("GitLab container `{name}` advertises `{url}` ({source}), a loopback address"))
            .effect(format!("{effect}: in each job container `{host}` is the job container itself"))
            .help(help);
    }
    if gitlab.external_url.is_none() && topology::is_container_id(host) {
        return Finding::new(id, Status::Error, format!("GitLab container `{name}` advertises `{url}`: {source}, and that is a container id"))
            .effect(format!("{effect}: nothing resolves a container id"))
            .help(format!("{help}; or start the container with `--hostname`"));
    }

    let https = parsed.scheme() == "https";
    let port = parsed.port_or_known_default().unwrap_or(80);
    let internal = gitlab.internal_port(https);
    if port != internal && gitlab.container.ports.iter().any(|binding| binding.host_port == Some(port)) {
        return Finding::new(id, Status::Warning, format!("GitLab container `{name}` advertises `{url}` ({source}), whose port {port} exists only on the Docker host"))
            .effect(format!("containers that reach GitLab by its container name find it on port {internal}, not {port}; clones work only where `{host}` leads to the Docker host"))
            .help(format!("use the same port inside and outside (`nginx['listen_port'] = {port}` with `-p {port}:{port}`), or set `clone_url` on runners whose jobs reach GitLab by container name"));
    }
    Finding::new(id, Status::Ok, format!("GitLab container `{name}` advertises `{url}` ({source})"))
}
