//! `dind.tls`: the job's `DOCKER_HOST` port matches the TLS mode of its dind service.

use super::{docker_entries, docker_host_target, job_location};
use crate::checks::Check;
use crate::facts::Facts;
use crate::finding::{Finding, Status, Subject};
use crate::fix::{Action, Fix, KeyPath};
use crate::pipeline::{Job, Service};

pub struct Tls;

impl Check for Tls {
    fn id(&self) -> &'static str {
        "dind.tls"
    }

    fn summary(&self) -> &'static str {
        "dind TLS mode matches: 2375 without TLS, 2376 with TLS and the `/certs/client` volume"
    }

    fn explanation(&self) -> &'static str {
        include_str!("../../../checks/dind.tls.md")
    }

    fn run(&self, facts: &Facts, out: &mut Vec<Finding>) {
        let jobs: Vec<&Job> = facts.jobs().iter().filter(|job| job.dind_services().next().is_some()).collect();
        if jobs.is_empty() {
            let message = if facts.pipeline.is_some() { "no job of the pipeline uses a `docker:dind` service" } else { "no pipeline was read (pass `--ci-file`)" };
            let status = if facts.pipeline.is_some() { Status::Ok } else { Status::Skipped };
            out.push(Finding::new(self.id(), status, message));
            return;
        }
        let mut needs_client_certs = false;
        for job in &jobs {
            let service = job.dind_services().next().expect("filtered above");
            match judge(self.id(), facts, job, service) {
                Verdict::Finding(finding) => out.push(*finding),
                Verdict::TlsOn => needs_client_certs = true,
            }
        }
        if needs_client_certs {
            for (runner, entry) in docker_entries(facts) {
                let subject = Subject { runner, entry: Some(entry.index) };
                let volumes = entry.keys.strings("docker.volumes");
                if volumes.iter().any(|volume| volume.split(':').any(|part| part.trim_end_matches('/') == "/certs/client")) {
                    out.push(Finding::new(self.id(), Status::Ok, format!("runner `{}` shares `/certs/client` between dind and job containers", entry.label())).subject(subject));
                    continue;
                }
                let action = Action::AddToArray { path: KeyPath::entry(entry.index, &["docker", "volumes"]), value: "/certs/client".into() };
                out.push(
                    Finding::new(self.id(), Status::Error, format!("jobs talk TLS to dind on port 2376, but runner `{}` has no `/certs/client` volume", entry.label()))
                        .subject(subject)
                        .effect("the dind service writes its client certificates into `/certs/client` of its own container only, so the job's docker CLI has none: \"error during connect ... tls: ... certificate signed by unknown authority\" or \"Cannot connect to the Docker daemon at tcp://docker:2376\"")
                        .location(entry.keys.get("docker.volumes").map(|located| crate::facts::config::locate(&facts.runners[runner].config, located)))
                        .help("add `\"/certs/client\"` to `volumes` so that the service and the job share it")
                        .fix(Fix::safe("add `/certs/client` to `volumes`", vec![action])),
                );
            }
        }
    }
}

enum Verdict {
    Finding(Box<Finding>),
    /// Consistent TLS: the runners must share the client certificates.
    TlsOn,
}

/// Returns the TLS directory the dind daemon uses: the service's variable, else the job's,
/// else the image's default (`/certs` in `docker:dind` images since 19.03).
fn cert_dir(facts: &Facts, job: &Job, service: &Service) -> (String, String) {
    if let Some(value) = service.variables.get("DOCKER_TLS_CERTDIR") {
        return (value.clone(), "the service's `variables`".into());
    }
    if let Some(value) = job.variable("DOCKER_TLS_CERTDIR") {
        return (value.to_string(), "the job's `variables`".into());
    }
    if let Some(value) = facts.image(&service.name).and_then(|image| image.env("DOCKER_TLS_CERTDIR")) {
        return (value.to_string(), format!("the default of image `{}`", service.name));
    }
    let tag = service.name.rsplit_once(':').map(|(_, tag)| tag).unwrap_or("latest");
    let old = tag.split(['.', '-']).next().and_then(|major| major.parse::<u32>().ok()).is_some_and(|major| major < 19);
    if old { (String::new(), format!("image `{}` predates TLS by default", service.name)) } else { ("/certs".into(), format!("the default of `docker:dind` images since 19.03 (`{}`)", service.name)) }
}

fn judge(id: &'static str, facts: &Facts, job: &Job, service: &Service) -> Verdict {
    let Some(docker_host) = job.variable("DOCKER_HOST") else {
        return Verdict::Finding(Box::new(Finding::new(id, Status::Ok, format!("job `{}` leaves `DOCKER_HOST` to the docker image, which picks the port from the TLS setup", job.name))));
    };
    let Some((host, port)) = docker_host_target(docker_host) else {
        return Verdict::Finding(Box::new(Finding::new(id, Status::Skipped, format!("job `{}` uses `DOCKER_HOST: {docker_host}`, which is not a `tcp://` address", job.name))));
    };
    let (directory, source) = cert_dir(facts, job, service);
    let tls_on = !directory.is_empty();
    let tls_variant = format!("TLS (preferred): `DOCKER_HOST: tcp://{host}:2376`, `DOCKER_TLS_CERTDIR: \"/certs\"`, and runner `volumes` containing `\"/certs/client\"`");
    let plain_variant = format!("no TLS: keep `DOCKER_HOST: tcp://{host}:2375` and add `DOCKER_TLS_CERTDIR: \"\"` to the job's `variables`");

    let mismatch = match (tls_on, port) {
        (true, 2375) => Some((
            format!("job `{}` points `DOCKER_HOST` at `{docker_host}`, but its `{}` service has TLS on (`DOCKER_TLS_CERTDIR={directory}`, {source})", job.name, service.name),
            "with TLS on, the dind daemon listens only on 2376; nothing answers on 2375: \"Cannot connect to the Docker daemon at tcp://docker:2375. Is the docker daemon running?\"".to_string(),
        )),
        (false, 2376) => Some((
            format!("job `{}` points `DOCKER_HOST` at `{docker_host}`, but its `{}` service has TLS off (`DOCKER_TLS_CERTDIR` empty, {source})", job.name, service.name),
            "without TLS the dind daemon listens on 2375 only, and has no certificates for a client on 2376".to_string(),
        )),
        _ => None,
    };
    match mismatch {
        Some((message, effect)) => Verdict::Finding(Box::new(
            Finding::new(id, Status::Error, message)
                .effect(effect)
                .location(Some(job_location(job, "variables.DOCKER_HOST")))
                .evidence(format!("choose {tls_variant}"))
                .evidence(format!("or {plain_variant}"))
                .help("pick one mode and set the job's variables to match; the choice is a policy decision, so `--fix` leaves `.gitlab-ci.yml` alone"),
        )),
        None if tls_on => Verdict::TlsOn,
        None => Verdict::Finding(Box::new(Finding::new(id, Status::Ok, format!("job `{}` talks plain TCP to `{}` on 2375 with TLS off", job.name, service.name)))),
    }
}
