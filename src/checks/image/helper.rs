//! `image.helper`: the helper image that clones and uploads is available.

use crate::checks::Check;
use crate::facts::Facts;
use crate::finding::{Finding, Status, Subject};

pub struct Helper;

impl Check for Helper {
    fn id(&self) -> &'static str {
        "image.helper"
    }

    fn summary(&self) -> &'static str {
        "the helper image is on this host or pullable, and matches the runner version"
    }

    fn explanation(&self) -> &'static str {
        include_str!("../../../checks/image.helper.md")
    }

    fn run(&self, facts: &Facts, out: &mut Vec<Finding>) {
        for (runner, process) in facts.runners.iter().enumerate() {
            for entry in facts.entries(runner).iter().filter(|entry| entry.uses_docker()) {
                let subject = Subject { runner, entry: Some(entry.index) };
                let Some(image) = crate::topology::helper_image(process, entry, facts.docker.info()) else {
                    out.push(Finding::new(self.id(), Status::Skipped, format!("the runner version of `{}` is unknown, so its default helper image is too", entry.label())).subject(subject));
                    continue;
                };
                let custom = entry.keys.str("docker.helper_image").is_some_and(|value| !value.is_empty());
                let location = entry.keys.get("docker.helper_image").map(|located| crate::facts::config::locate(&process.config, located));

                if custom && let Some((major, minor, patch)) = crate::topology::runner_version(process) {
                    let version = format!("v{major}.{minor}.{patch}");
                    let tag = image.rsplit_once(':').map(|(_, tag)| tag).unwrap_or("");
                    if tag.contains('v') && !tag.contains(&version) {
                        out.push(
                            Finding::new(self.id(), Status::Warning, format!("helper image `{image}` of runner `{}` does not match runner version {version}", entry.label()))
                                .subject(subject)
                                .effect("a helper from another release may not understand the runner's commands; jobs can fail in \"Getting source\" or while uploading artifacts")
                                .location(location)
                                .help(format!("use the helper image tagged for {version}, or remove `helper_image` to let the runner choose")),
                        );
                        continue;
                    }
                }
                match facts.image(&image) {
                    Some(fact) if fact.present => out.push(Finding::new(self.id(), Status::Ok, format!("helper image `{image}` is on this host")).subject(subject)),
                    _ if custom => out.push(
                        Finding::new(self.id(), Status::Warning, format!("helper image `{image}` of runner `{}` is not on this host", entry.label()))
                            .subject(subject)
                            .effect("the first job pulls it; on an offline host, or when the registry needs credentials the daemon lacks, every job fails in \"Preparing environment\"")
                            .location(location)
                            .help(format!("pull it ahead: `docker pull {image}`")),
                    ),
                    _ => out.push(
                        Finding::new(self.id(), Status::Info, format!("helper image `{image}` is not on this host yet"))
                            .subject(subject)
                            .effect("the first job pulls it from registry.gitlab.com; on an offline host, set `helper_image` to a copy in a reachable registry or load it with `docker load`"),
                    ),
                }
            }
        }
    }
}
