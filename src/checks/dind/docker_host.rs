//! `dind.docker-host`: the job's `DOCKER_HOST` names a service the job declares.

use super::{docker_host_target, job_location};
use crate::checks::Check;
use crate::facts::Facts;
use crate::finding::{Finding, Status};
use crate::topology;

pub struct DockerHost;

impl Check for DockerHost {
    fn id(&self) -> &'static str {
        "dind.docker-host"
    }

    fn summary(&self) -> &'static str {
        "`DOCKER_HOST` names a declared service, not the job container itself"
    }

    fn explanation(&self) -> &'static str {
        include_str!("../../../checks/dind.docker-host.md")
    }

    fn run(&self, facts: &Facts, out: &mut Vec<Finding>) {
        let mut judged = 0;
        for job in facts.jobs() {
            let Some(value) = job.variable("DOCKER_HOST") else { continue };
            let Some((host, port)) = docker_host_target(value) else { continue };
            judged += 1;
            let aliases: Vec<&str> = job.services.iter().flat_map(|service| service.aliases.iter().map(String::as_str)).collect();
            let location = Some(job_location(job, "variables.DOCKER_HOST"));

            if topology::is_loopback_host(&host) {
                out.push(
                    Finding::new(self.id(), Status::Error, format!("job `{}` sets `DOCKER_HOST: {value}`, the job container itself", job.name))
                        .effect("with the docker executor each service runs in a container of its own; nothing listens on the job container's loopback: \"Cannot connect to the Docker daemon at tcp://localhost\"")
                        .location(location)
                        .help(match aliases.first() {
                            Some(alias) => format!("point it at the service: `DOCKER_HOST: tcp://{alias}:{port}`"),
                            None => format!("add a `docker:dind` service and use `DOCKER_HOST: tcp://docker:{port}`"),
                        }),
                );
            } else if !job.services.is_empty() && !aliases.iter().any(|alias| alias.eq_ignore_ascii_case(&host)) {
                out.push(
                    Finding::new(self.id(), Status::Error, format!("job `{}` sets `DOCKER_HOST: {value}`, but none of its services is called `{host}`", job.name))
                        .effect(format!("`{host}` does not resolve in the job container: \"error during connect ... lookup {host} ... no such host\""))
                        .evidence(format!("its services answer to: {}", aliases.iter().map(|alias| format!("`{alias}`")).collect::<Vec<_>>().join(", ")))
                        .location(location)
                        .help("use one of the service names in `DOCKER_HOST`, or give the service that name with `alias:`"),
                );
            } else if job.services.is_empty() {
                out.push(Finding::new(self.id(), Status::Skipped, format!("job `{}` uses a Docker daemon at `{value}` outside the job, which ci-doctor does not probe", job.name)));
            } else {
                out.push(Finding::new(self.id(), Status::Ok, format!("job `{}` points `DOCKER_HOST` at its service `{host}`", job.name)));
            }
        }
        if judged == 0 {
            let (status, message) = if facts.pipeline.is_some() {
                (Status::Ok, "no job sets a `tcp://` `DOCKER_HOST`")
            } else {
                (Status::Skipped, "no pipeline was read (pass `--ci-file`)")
            };
            out.push(Finding::new(self.id(), status, message));
        }
    }
}
