//! `image.job-tools`: job images can do what the scripts ask: a `docker` CLI where scripts call
//! `docker`, a shell-friendly entrypoint, and pinned Docker versions.

use crate::checks::Check;
use crate::facts::Facts;
use crate::finding::{Finding, Status};
use crate::pipeline::repository;

pub struct JobTools;

/// Official images known to ship without the docker CLI.
const NO_DOCKER_CLI: &[&str] = &[
    "alpine", "ubuntu", "debian", "busybox", "python", "node", "golang", "ruby", "rust", "openjdk", "eclipse-temurin", "maven", "gradle", "php", "centos",
    "fedora", "rockylinux", "almalinux",
];

/// Entrypoints that run the job script they are given.
const SHELL_ENTRYPOINTS: &[&str] = &["sh", "bash", "ash", "dash", "zsh", "docker-entrypoint.sh", "dumb-init", "tini", "entrypoint.sh", "env"];

impl Check for JobTools {
    fn id(&self) -> &'static str {
        "image.job-tools"
    }

    fn summary(&self) -> &'static str {
        "job images have what scripts need: a docker CLI for `docker` calls, a shell entrypoint, pinned versions"
    }

    fn explanation(&self) -> &'static str {
        include_str!("../../../checks/image.job-tools.md")
    }

    fn run(&self, facts: &Facts, out: &mut Vec<Finding>) {
        if facts.pipeline.is_none() {
            out.push(Finding::new(self.id(), Status::Skipped, "no pipeline was read (pass `--ci-file`)"));
            return;
        }
        let before = out.len();
        for job in facts.jobs() {
            let Some(image) = &job.image else { continue };
            let location = Some(crate::checks::dind::job_location(job, "image"));
            let name = repository(&image.name).rsplit('/').next().unwrap_or("");

            if job.calls_docker() && NO_DOCKER_CLI.contains(&name) {
                out.push(
                    Finding::new(self.id(), Status::Warning, format!("job `{}` runs `docker`, but its image `{}` has no docker CLI", job.name, image.name))
                        .effect("the script stops with \"docker: command not found\" (exit code 127)")
                        .location(location.clone())
                        .help("use a `docker:<version>` image for this job, or install the CLI in `before_script`"),
                );
            }
            if image.entrypoint.is_none()
                && let Some(entrypoint) = facts.image(&image.name).and_then(|fact| fact.entrypoint.as_ref())
                && !entrypoint.first().is_some_and(|program| SHELL_ENTRYPOINTS.contains(&program.rsplit('/').next().unwrap_or(program)))
            {
                out.push(
                    Finding::new(self.id(), Status::Warning, format!("image `{}` of job `{}` has the entrypoint `{}`, which does not run shell scripts", image.name, job.name, entrypoint.join(" ")))
                        .effect("the runner hands the job script to the image's entrypoint; a program that is not a shell ignores it or fails, and the job ends at once")
                        .location(location.clone())
                        .help(format!("override it in the job: `image: {{ name: \"{}\", entrypoint: [\"\"] }}`", image.name)),
                );
            }
        }

        // Floating Docker tags: the client in the job and the daemon in the service can change
        // version under the pipeline, independently.
        let floating: Vec<String> = super::job_images(facts)
            .into_iter()
            .filter(|(image, _)| {
                let tag = image.rsplit_once(':').map(|(_, tag)| tag).filter(|tag| !tag.contains('/')).unwrap_or("latest");
                repository(image).rsplit('/').next() == Some("docker") && matches!(tag, "stable" | "latest" | "dind" | "git" | "edge" | "dind-rootless")
            })
            .map(|(image, _)| format!("`{image}`"))
            .collect();
        if !floating.is_empty() {
            let (noun, verb) = if floating.len() == 1 { ("tag", "is a floating") } else { ("tags", "are floating") };
            out.push(
                Finding::new(self.id(), Status::Info, format!("{} {verb} {noun}", floating.join(" and ")))
                    .effect("the docker client and daemon versions change under the pipeline whenever a tag moves, as when `docker:dind` turned on TLS by default in 19.03")
                    .help("pin matching versions, for example `docker:27` with `docker:27-dind`"),
            );
        }
        if out.len() == before {
            out.push(Finding::new(self.id(), Status::Ok, "job images fit their scripts, as far as their names and entrypoints tell"));
        }
    }
}
