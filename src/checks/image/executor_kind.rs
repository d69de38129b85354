//! `image.executor-kind`: pipelines that name images have runners that run containers.

use crate::checks::Check;
use crate::facts::Facts;
use crate::finding::{Finding, Status};

pub struct ExecutorKind;

impl Check for ExecutorKind {
    fn id(&self) -> &'static str {
        "image.executor-kind"
    }

    fn summary(&self) -> &'static str {
        "`image:` and `services:` are not sent to runners whose executor ignores them (shell)"
    }

    fn explanation(&self) -> &'static str {
        include_str!("../../../checks/image.executor-kind.md")
    }

    fn run(&self, facts: &Facts, out: &mut Vec<Finding>) {
        let with_images: Vec<&crate::pipeline::Job> = facts.jobs().iter().filter(|job| job.image.is_some() || !job.services.is_empty()).collect();
        let entries: Vec<(usize, &crate::facts::Entry)> = (0..facts.runners.len()).flat_map(|runner| facts.entries(runner).iter().map(move |entry| (runner, entry))).collect();
        if facts.pipeline.is_none() || entries.is_empty() {
            out.push(Finding::new(self.id(), Status::Skipped, "no pipeline or no runner entry to compare"));
            return;
        }
        if with_images.is_empty() {
            out.push(Finding::new(self.id(), Status::Ok, "no job names an image or a service"));
            return;
        }
        let container_executors = entries.iter().filter(|(_, entry)| entry.uses_docker() || matches!(entry.executor(), Some("kubernetes" | "docker-autoscaler" | "instance" | "custom"))).count();
        if container_executors > 0 {
            out.push(Finding::new(self.id(), Status::Ok, format!("{container_executors} of {} runner entries run jobs in containers", entries.len())));
            return;
        }
        let names: Vec<String> = with_images.iter().take(5).map(|job| format!("`{}`", job.name)).collect();
        out.push(
            Finding::new(self.id(), Status::Warning, format!("jobs {} name `image:` or `services:`, but every runner here uses the `{}` executor", names.join(", "), entries[0].1.executor().unwrap_or("shell")))
                .effect("the shell executor ignores `image:` and `services:`: the script runs on the host with whatever tools it has, and services never start")
                .help("register a docker-executor runner for these jobs, and route them with tags"),
        );
    }
}
