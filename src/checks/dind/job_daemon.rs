//! `dind.job-daemon`: a job that runs `docker` has a daemon to talk to.

use super::docker_entries;
use crate::checks::Check;
use crate::facts::Facts;
use crate::finding::{Finding, Status, Subject};
use crate::fix::{Action, Fix, KeyPath};

pub struct JobDaemon;

impl Check for JobDaemon {
    fn id(&self) -> &'static str {
        "dind.job-daemon"
    }

    fn summary(&self) -> &'static str {
        "a job that runs `docker` has a daemon: a dind service or a mounted socket"
    }

    fn explanation(&self) -> &'static str {
        include_str!("../../../checks/dind.job-daemon.md")
    }

    fn run(&self, facts: &Facts, out: &mut Vec<Finding>) {
        // Jobs that call docker with no daemon of their own: no dind service, no tcp DOCKER_HOST.
        let needy: Vec<&crate::pipeline::Job> = facts
            .jobs()
            .iter()
            .filter(|job| job.calls_docker() && job.dind_services().next().is_none() && !job.variable("DOCKER_HOST").is_some_and(|host| host.starts_with("tcp://")))
            .collect();

        for (runner, entry) in docker_entries(facts) {
            let subject = Subject { runner, entry: Some(entry.index) };
            if facts.pipeline.is_none() {
                out.push(Finding::new(self.id(), Status::Skipped, "no pipeline was read (pass `--ci-file`)").subject(subject));
                continue;
            }
            if needy.is_empty() {
                out.push(Finding::new(self.id(), Status::Ok, "every job that runs `docker` has a dind service or a `DOCKER_HOST`").subject(subject));
                continue;
            }
            let socket_mounted = entry.keys.strings("docker.volumes").iter().any(|volume| volume.contains("docker.sock"));
            if socket_mounted {
                out.push(Finding::new(self.id(), Status::Ok, format!("runner `{}` mounts the host's Docker socket into jobs", entry.label())).subject(subject));
                continue;
            }
            let names: Vec<String> = needy.iter().map(|job| format!("`{}`", job.name)).collect();
            let action = Action::AddToArray { path: KeyPath::entry(entry.index, &["docker", "volumes"]), value: "/var/run/docker.sock:/var/run/docker.sock".into() };
            let location = entry.keys.get("docker.volumes").map(|located| crate::facts::config::locate(&facts.runners[runner].config, located));
            out.push(
                Finding::new(self.id(), Status::Error, format!("jobs {} run `docker`, but have no dind service and runner `{}` mounts no Docker socket", names.join(", "), entry.label()))
                    .subject(subject)
                    .effect("the docker CLI in the job finds no daemon: \"Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?\"")
                    .location(location)
                    .help("add a `docker:dind` service to these jobs (isolated, needs privileged services), or mount the host's socket into jobs (simple, but every job then controls the host's Docker)")
                    .fix(Fix::needs_review("mount the host's Docker socket into job containers", vec![action])),
            );
        }
    }
}
