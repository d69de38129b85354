//! `dind.privileged`: a job's Docker-in-Docker service gets the privileges its daemon needs.

use super::docker_entries;
use crate::checks::Check;
use crate::facts::config::{locate, locate_missing};
use crate::facts::{Entry, Facts};
use crate::finding::{Finding, Status, Subject};
use crate::fix::{Action, Fix, KeyPath, TomlValue};
use crate::pipeline::{Job, Service};

pub struct Privileged;

/// Image patterns for the dind service, in both the short and the normalized form, because the
/// runner may compare either.
const DIND_PATTERNS: &[&str] = &["docker:*-dind", "docker:dind", "docker.io/library/docker:*-dind", "docker.io/library/docker:dind"];

/// First runner release assumed to have `services_privileged` and
/// `allowed_privileged_services`. NOTE: an estimate; older runners get `privileged = true`.
const SERVICES_PRIVILEGED_SINCE: (u32, u32, u32) = (16, 0, 0);

impl Check for Privileged {
    fn id(&self) -> &'static str {
        "dind.privileged"
    }

    fn summary(&self) -> &'static str {
        "a `docker:dind` service runs privileged: `privileged`, `services_privileged`, `allowed_privileged_services`"
    }

    fn explanation(&self) -> &'static str {
        include_str!("../../../checks/dind.privileged.md")
    }

    fn run(&self, facts: &Facts, out: &mut Vec<Finding>) {
        let dind_jobs: Vec<&Job> = facts.jobs().iter().filter(|job| job.dind_services().next().is_some()).collect();
        for (runner, entry) in docker_entries(facts) {
            let subject = Subject { runner, entry: Some(entry.index) };
            if facts.pipeline.is_none() {
                out.push(Finding::new(self.id(), Status::Skipped, "no pipeline was read (pass `--ci-file`)").subject(subject));
                continue;
            }
            if dind_jobs.is_empty() {
                out.push(Finding::new(self.id(), Status::Ok, "no job of the pipeline uses a `docker:dind` service").subject(subject));
                continue;
            }
            out.push(judge(self.id(), facts, runner, entry, &dind_jobs).subject(subject));
        }
    }
}

fn judge(id: &'static str, facts: &Facts, runner: usize, entry: &Entry, jobs: &[&Job]) -> Finding {
    let name = entry.label();
    let privileged = entry.keys.bool("docker.privileged").unwrap_or(false);
    let services_privileged = entry.keys.bool("docker.services_privileged");
    let allowed = entry.keys.strings("docker.allowed_privileged_services");

    let mut unprivileged: Vec<(&Job, &Service)> = Vec::new();
    for job in jobs {
        for service in job.dind_services() {
            let effective = services_privileged.unwrap_or(privileged);
            let permitted = allowed.is_empty() || allowed.iter().any(|pattern| glob_match(pattern, &service.name));
            if !(effective && permitted) {
                unprivileged.push((job, service));
            }
        }
    }
    let Some((job, service)) = unprivileged.first() else {
        return Finding::new(id, Status::Ok, format!("runner `{name}` runs the jobs' `docker:dind` services privileged"));
    };

    let why = match (services_privileged, privileged, allowed.is_empty()) {
        (Some(true), _, false) | (None, true, false) => format!("`allowed_privileged_services` does not match `{}`", service.name),
        (Some(false), _, _) => "`services_privileged = false`".to_string(),
        _ => "`privileged = false` and no `services_privileged`".to_string(),
    };
    let alias = service.aliases.first().cloned().unwrap_or_else(|| "docker".into());
    let others: Vec<String> = unprivileged.iter().skip(1).map(|(job, _)| format!("`{}`", job.name)).collect();
    let mut message = format!("job `{}` uses service `{}`, but runner `{name}` has {why}", job.name, service.name);
    if !others.is_empty() {
        message.push_str(&format!(" (so do {})", others.join(", ")));
    }

    let config = &facts.runners[runner].config;
    let mut finding = Finding::new(id, Status::Error, message)
        .effect(format!(
            "the Docker daemon inside the service cannot mount what it needs and exits at once, after which the alias `{alias}` does not resolve: \"Cannot connect to the Docker daemon at tcp://{alias}:2375\" or \"lookup {alias} ... no such host\""
        ))
        .location(entry.keys.get("docker.privileged").map(|located| locate(config, located)).or_else(|| Some(locate_missing(config, Some(entry), "docker.privileged"))));
    for container in facts.job_containers.iter().filter(|container| container.kind == "service" && is_dind_image(container.service.as_deref().unwrap_or(&container.image))) {
        let log = container.log_tail.iter().find(|line| line.contains("permission denied") || line.contains("are you root")).or(container.log_tail.last());
        if let Some(line) = log {
            finding = finding.evidence(format!("service container `{}` ({}) exited with code {}; its log: {line}", container.name, container.image, container.exit_code.map(|code| code.to_string()).unwrap_or_else(|| "?".into())));
        }
    }
    with_fix(finding, facts, runner, entry, service)
}

fn with_fix(finding: Finding, facts: &Facts, runner: usize, entry: &Entry, service: &Service) -> Finding {
    let version = crate::topology::runner_version(&facts.runners[runner]);
    let supports_services_privileged = version.is_none_or(|version| version >= SERVICES_PRIVILEGED_SINCE);
    let risk = "privileged services can take over the host; prefer limiting them to the dind images as below";

    if !supports_services_privileged {
        let action = Action::SetKey { path: KeyPath::entry(entry.index, &["docker", "privileged"]), value: TomlValue::Bool(true), after: None };
        return finding
            .help(format!("set `privileged = true` (this runner version has no `services_privileged`); {risk}"))
            .fix(Fix::needs_review("set `privileged = true`", vec![action]));
    }

    let mut patterns: Vec<String> = DIND_PATTERNS.iter().map(|pattern| pattern.to_string()).collect();
    if !patterns.iter().any(|pattern| glob_match(pattern, &service.name)) {
        patterns.push(service.name.clone());
    }
    let existing = entry.keys.strings("docker.allowed_privileged_services");
    let mut actions = vec![Action::SetKey { path: KeyPath::entry(entry.index, &["docker", "services_privileged"]), value: TomlValue::Bool(true), after: Some("privileged".into()) }];
    if existing.is_empty() {
        actions.push(Action::SetKey {
            path: KeyPath::entry(entry.index, &["docker", "allowed_privileged_services"]),
            value: TomlValue::Strings(patterns.clone()),
            after: Some("services_privileged".into()),
        });
    } else {
        for pattern in patterns.iter().filter(|pattern| !existing.contains(pattern)) {
            actions.push(Action::AddToArray { path: KeyPath::entry(entry.index, &["docker", "allowed_privileged_services"]), value: pattern.clone() });
        }
    }
    finding
        .help(format!(
            "allow privilege for the dind service only: `services_privileged = true` with `allowed_privileged_services = [{}]`; or `privileged = true` for the whole runner. Either way, {risk}",
            patterns.iter().map(|pattern| format!("\"{pattern}\"")).collect::<Vec<_>>().join(", ")
        ))
        .fix(Fix::needs_review("run only the dind services privileged", actions))
}

fn is_dind_image(image: &str) -> bool {
    Service { name: image.to_string(), ..Service::default() }.is_dind()
}

/// Matches `name` against a glob where `*` stands for any run of characters except `/`, as
/// the runner's image allow-lists do.
pub(crate) fn glob_match(pattern: &str, name: &str) -> bool {
    fn matches(pattern: &[u8], name: &[u8]) -> bool {
        match pattern.split_first() {
            None => name.is_empty(),
            Some((b'*', rest)) => (0..=name.len()).take_while(|&skip| skip == 0 || name[skip - 1] != b'/').any(|skip| matches(rest, &name[skip..])),
            Some((byte, rest)) => name.first() == Some(byte) && matches(rest, &name[1..]),
        }
    }
    matches(pattern.as_bytes(), name.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_stop_at_slashes() {
        assert!(glob_match("docker:*-dind", "docker:27-dind"));
        assert!(glob_match("docker:dind", "docker:dind"));
        assert!(!glob_match("docker:*-dind", "docker:dind"));
        assert!(glob_match("docker.io/library/docker:*-dind", "docker.io/library/docker:27-dind"));
        assert!(!glob_match("*", "library/docker"));
    }
}
