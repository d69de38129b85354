//! `security.privileged`: privileged jobs or a mounted Docker socket hand the host to any job.

use crate::checks::Check;
use crate::facts::config::locate;
use crate::facts::Facts;
use crate::finding::{Finding, Status, Subject};

pub struct Privileged;

impl Check for Privileged {
    fn id(&self) -> &'static str {
        "security.privileged"
    }

    fn summary(&self) -> &'static str {
        "privileged jobs or services, or a mounted Docker socket: any job can take over the host"
    }

    fn explanation(&self) -> &'static str {
        include_str!("../../../checks/security.privileged.md")
    }

    fn run(&self, facts: &Facts, out: &mut Vec<Finding>) {
        for (runner, process) in facts.runners.iter().enumerate() {
            for entry in facts.entries(runner).iter().filter(|entry| entry.uses_docker()) {
                let subject = Subject { runner, entry: Some(entry.index) };
                let name = entry.label();
                let privileged = entry.keys.bool("docker.privileged").unwrap_or(false);
                let services = entry.keys.bool("docker.services_privileged").unwrap_or(privileged);
                let allowed_images = entry.keys.strings("docker.allowed_privileged_images");
                let allowed_services = entry.keys.strings("docker.allowed_privileged_services");
                let socket = entry.keys.strings("docker.volumes").into_iter().find(|volume| volume.contains("docker.sock"));
                let before = out.len();

                if privileged {
                    let limited = if allowed_images.is_empty() { String::new() } else { format!(" (limited to images {})", list(&allowed_images)) };
                    out.push(
                        Finding::new(self.id(), Status::Warning, format!("runner `{name}` runs jobs privileged{limited}"))
                            .subject(subject)
                            .effect("a privileged container can mount the host's disks and load kernel modules: any job, from any project this runner serves, can take over the host")
                            .location(entry.keys.get("docker.privileged").map(|located| locate(&process.config, located)))
                            .help("limit privilege to the images that need it (`services_privileged` with `allowed_privileged_services`, `allowed_privileged_images`), or build images without a daemon (kaniko, buildah, BuildKit rootless)"),
                    );
                } else if services {
                    let limited = if allowed_services.is_empty() { " (any service image)".to_string() } else { format!(" (limited to {})", list(&allowed_services)) };
                    out.push(
                        Finding::new(self.id(), Status::Warning, format!("runner `{name}` runs services privileged{limited}"))
                            .subject(subject)
                            .effect("a job can start a privileged service of its choosing within these limits, and a privileged container can take over the host")
                            .location(entry.keys.get("docker.services_privileged").map(|located| locate(&process.config, located)))
                            .help("keep `allowed_privileged_services` to the dind images, and run this runner only for trusted projects"),
                    );
                }
                if let Some(volume) = socket {
                    out.push(
                        Finding::new(self.id(), Status::Warning, format!("runner `{name}` mounts the host's Docker socket into jobs (`{volume}`)"))
                            .subject(subject)
                            .effect("any job controls the host's Docker daemon: it can start a privileged container, read other jobs' containers and take over the host")
                            .location(entry.keys.get("docker.volumes").map(|located| locate(&process.config, located)))
                            .help("use a `docker:dind` service per job instead, or run this runner only for trusted projects"),
                    );
                }
                if out.len() == before {
                    out.push(Finding::new(self.id(), Status::Ok, format!("jobs of runner `{name}` run unprivileged and without the Docker socket")).subject(subject));
                }
            }
        }
    }
}

fn list(items: &[String]) -> String {
    items.iter().map(|item| format!("`{item}`")).collect::<Vec<_>>().join(", ")
}
