//! `docker.disk-space`: the file system under Docker's root directory has room for jobs.

use crate::checks::Check;
use crate::facts::Facts;
use crate::finding::{Finding, Status};

pub struct DiskSpace;

/// Below this, image pulls and job containers fail outright.
const CRITICAL_BYTES: u64 = 1024 * 1024 * 1024;
/// Below this (or below a tenth of the file system), a few large images fill it up.
const LOW_BYTES: u64 = 5 * 1024 * 1024 * 1024;

impl Check for DiskSpace {
    fn id(&self) -> &'static str {
        "docker.disk-space"
    }

    fn summary(&self) -> &'static str {
        "free space under Docker's root directory"
    }

    fn explanation(&self) -> &'static str {
        include_str!("../../../checks/docker.disk-space.md")
    }

    fn run(&self, facts: &Facts, out: &mut Vec<Finding>) {
        let Some(info) = facts.docker.info() else {
            out.push(Finding::new(self.id(), Status::Skipped, "Docker did not answer (see `docker.daemon`)"));
            return;
        };
        let root = info.docker_root_dir.clone().unwrap_or_else(|| "/var/lib/docker".into());
        let (Some(free), Some(total)) = (info.root_free_bytes, info.root_total_bytes) else {
            out.push(Finding::new(self.id(), Status::Skipped, format!("the free space under `{root}` is unknown: the daemon is not on this machine")));
            return;
        };
        let shown = format!("{} free of {} under `{root}`", gib(free), gib(total));
        let help = "remove what jobs left behind: `docker system prune` (stopped containers, unused networks, dangling images), `docker volume prune`, and old images with `docker image prune -a --filter until=240h`";
        let finding = if free < CRITICAL_BYTES {
            Finding::new(self.id(), Status::Error, format!("only {shown}"))
                .effect("image pulls and job containers fail with \"no space left on device\"")
                .help(help)
        } else if free < LOW_BYTES || free * 10 < total {
            Finding::new(self.id(), Status::Warning, format!("little space left: {shown}"))
                .effect("a few large images or build caches will fill it, and jobs then fail with \"no space left on device\"")
                .help(help)
        } else {
            Finding::new(self.id(), Status::Ok, shown)
        };
        out.push(finding);
    }
}

fn gib(bytes: u64) -> String {
    format!("{:.1} GiB", bytes as f64 / (1024.0 * 1024.0 * 1024.0))
}
