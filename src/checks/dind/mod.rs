//! Checks of Docker-in-Docker in jobs: privileges, TLS, `DOCKER_HOST`, and a daemon at all.

pub mod docker_host;
pub mod job_daemon;
pub mod privileged;
pub mod tls;

use crate::facts::{Entry, Facts};
use crate::finding::Location;
use crate::pipeline::Job;

/// Lists every docker-executor entry with its runner. Which of them GitLab gives a job depends
/// on runner tags kept on the GitLab side, so each is judged as a possible home of every job.
pub(crate) fn docker_entries(facts: &Facts) -> Vec<(usize, &Entry)> {
    let mut out = Vec::new();
    for runner in 0..facts.runners.len() {
        for entry in facts.entries(runner).iter().filter(|entry| entry.uses_docker()) {
            out.push((runner, entry));
        }
    }
    out
}

/// Returns the place of `job` in the pipeline, as a finding location.
pub(crate) fn job_location(job: &Job, key: &str) -> Location {
    Location { file: job.place.file.clone(), key: Some(format!("{}.{key}", job.name)), line: Some(job.place.line), column: None }
}

/// `host:port` of a `tcp://` `DOCKER_HOST`.
pub(crate) fn docker_host_target(value: &str) -> Option<(String, u16)> {
    let parsed = url::Url::parse(value.trim()).ok()?;
    if parsed.scheme() != "tcp" {
        return None;
    }
    let host = parsed.host_str()?.to_string();
    let port = parsed.port().unwrap_or(2375);
    Some((host, port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_host_targets_are_parsed() {
        assert_eq!(docker_host_target("tcp://docker:2375/"), Some(("docker".into(), 2375)));
        assert_eq!(docker_host_target("tcp://dind:2376"), Some(("dind".into(), 2376)));
        assert_eq!(docker_host_target("unix:///var/run/docker.sock"), None);
    }
}
