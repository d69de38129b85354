//! `image.pull-policy`: the pull policy can work with the images the jobs need.

use crate::checks::Check;
use crate::facts::Facts;
use crate::finding::{Finding, Status, Subject};

pub struct PullPolicy;

impl Check for PullPolicy {
    fn id(&self) -> &'static str {
        "image.pull-policy"
    }

    fn summary(&self) -> &'static str {
        "the pull policy can work: `never` with the image present, `always` with a pullable image"
    }

    fn explanation(&self) -> &'static str {
        include_str!("../../../checks/image.pull-policy.md")
    }

    fn run(&self, facts: &Facts, out: &mut Vec<Finding>) {
        let images = super::job_images(facts);
        for runner in 0..facts.runners.len() {
            for entry in facts.entries(runner).iter().filter(|entry| entry.uses_docker()) {
                let subject = Subject { runner, entry: Some(entry.index) };
                let mut policies = entry.keys.strings("docker.pull_policy");
                if let Some(single) = entry.keys.str("docker.pull_policy") {
                    policies = vec![single.to_string()];
                }
                if policies.is_empty() {
                    policies.push("always".into());
                }
                let location = entry.keys.get("docker.pull_policy").map(|located| crate::facts::config::locate(&facts.runners[runner].config, located));
                let mut wanted: Vec<(String, Vec<String>)> = images.clone();
                if let Some(default) = entry.keys.str("docker.image")
                    && !wanted.iter().any(|(image, _)| image == default)
                {
                    wanted.push((default.to_string(), Vec::new()));
                }

                let before = out.len();
                for (image, jobs) in &wanted {
                    let Some(fact) = facts.image(image) else { continue };
                    let used_by = if jobs.is_empty() { "the runner's default image".to_string() } else { format!("used by {}", jobs.iter().map(|job| format!("`{job}`")).collect::<Vec<_>>().join(", ")) };
                    let only_never = policies.iter().all(|policy| policy == "never");
                    let only_always = policies.iter().all(|policy| policy == "always");
                    if only_never && !fact.present {
                        out.push(
                            Finding::new(self.id(), Status::Error, format!("image `{image}` ({used_by}) is not on this host, and runner `{}` has `pull_policy = \"never\"`", entry.label()))
                                .subject(subject)
                                .effect(format!("jobs fail in \"Preparing the docker executor\" with \"ERROR: Job failed: failed to pull image \\\"{image}\\\" ... pull_policy (never)\""))
                                .location(location.clone())
                                .help(format!("load the image on this host (`docker pull {image}` or `docker load`), or allow `if-not-present`")),
                        );
                    } else if only_always && fact.local_only {
                        out.push(
                            Finding::new(self.id(), Status::Warning, format!("image `{image}` ({used_by}) exists on this host without a registry digest, and runner `{}` always pulls", entry.label()))
                                .subject(subject)
                                .effect("an image built or tagged on this host may exist in no registry; `always` pulls it before every job and fails with \"pull access denied\" or \"not found\" unless a registry has it")
                                .location(location.clone())
                                .help("use `pull_policy = [\"always\", \"if-not-present\"]` (fall back to the local image) or `\"if-not-present\"`, or push the image to a registry"),
                        );
                    }
                }
                if out.len() == before {
                    out.push(Finding::new(self.id(), Status::Ok, format!("runner `{}` pulls with `{}`, which works for every image the jobs need", entry.label(), policies.join(", "))).subject(subject));
                }
            }
        }
    }
}
