//! `runner.concurrency`: `concurrent` does not serialize jobs that could run side by side.

use crate::checks::Check;
use crate::facts::config::{locate, locate_missing};
use crate::facts::Facts;
use crate::finding::{Finding, Status, Subject};
use crate::fix::{Action, Fix, KeyPath, TomlValue};

pub struct Concurrency;

impl Check for Concurrency {
    fn id(&self) -> &'static str {
        "runner.concurrency"
    }

    fn summary(&self) -> &'static str {
        "`concurrent` is not below the runners' `limit`s or the pipeline's parallel jobs"
    }

    fn explanation(&self) -> &'static str {
        include_str!("../../../checks/runner.concurrency.md")
    }

    fn run(&self, facts: &Facts, out: &mut Vec<Finding>) {
        for (runner, process) in facts.runners.iter().enumerate() {
            let Some(parsed) = process.config.parsed() else { continue };
            let subject = Subject { runner, entry: None };
            let concurrent = parsed.global.int("concurrent").unwrap_or(1);
            let location = parsed.global.get("concurrent").map(|located| locate(&process.config, located)).or_else(|| Some(locate_missing(&process.config, None, "concurrent")));
            let before = out.len();

            for entry in &parsed.entries {
                if let Some(limit) = entry.keys.int("limit").filter(|limit| *limit > concurrent) {
                    out.push(
                        Finding::new(self.id(), Status::Warning, format!("`concurrent = {concurrent}` keeps runner `{}` below `limit = {limit}`", entry.label()))
                            .subject(Subject { runner, entry: Some(entry.index) })
                            .effect(format!("`concurrent` caps jobs for the whole process, so this entry never runs more than {concurrent} at once"))
                            .location(entry.keys.get("limit").map(|located| locate(&process.config, located)))
                            .help(format!("raise `concurrent` to {limit} or lower `limit` for `{}`", entry.label())),
                    );
                }
            }

            let waiting = parallel_jobs(facts);
            if concurrent == 1 && waiting.len() > 1 {
                let cpus = facts.docker.info().and_then(|info| info.ncpu).filter(|cpus| *cpus > 1);
                let names: Vec<String> = waiting.iter().skip(1).map(|job| format!("`{job}`")).collect();
                let host = cpus.map(|cpus| format!(" and the Docker host has {cpus} CPUs")).unwrap_or_default();
                let mut finding = Finding::new(self.id(), Status::Warning, format!(
                    "`concurrent = 1` limits this runner process to one job at a time across all its `[[runners]]`; jobs {} wait although they can run beside `{}`{host}",
                    names.join(" and "),
                    waiting[0]
                ))
                .subject(subject)
                .effect("jobs of one stage run one after another, so pipelines take as long as the sum of their jobs")
                .location(location.clone())
                .help("raise `concurrent` to what the host can carry (for example its number of CPUs), and cap single entries with `limit`");
                if let Some(cpus) = cpus {
                    let action = Action::SetKey { path: KeyPath::top(&["concurrent"]), value: TomlValue::Integer(cpus), after: None };
                    finding = finding.fix(Fix::safe(format!("set `concurrent = {cpus}`, the Docker host's CPU count"), vec![action]));
                }
                out.push(finding);
            } else if (concurrent as usize) < parsed.entries.len() {
                out.push(
                    Finding::new(self.id(), Status::Warning, format!("`concurrent = {concurrent}` is below the number of `[[runners]]` entries ({})", parsed.entries.len()))
                        .subject(subject)
                        .effect("some entries wait for others to finish before they can take a job")
                        .location(location.clone())
                        .help(format!("raise `concurrent` to at least {}", parsed.entries.len())),
                );
            }
            if out.len() == before {
                out.push(Finding::new(self.id(), Status::Ok, format!("`concurrent = {concurrent}` does not hold back the entries' limits or the pipeline's parallel jobs")).subject(subject));
            }
        }
    }
}

/// Jobs of the pipeline's largest stage, which could run side by side.
fn parallel_jobs(facts: &Facts) -> Vec<String> {
    let mut by_stage: std::collections::BTreeMap<&str, Vec<String>> = std::collections::BTreeMap::new();
    for job in facts.jobs() {
        by_stage.entry(job.stage.as_str()).or_default().push(job.name.clone());
    }
    by_stage.into_values().max_by_key(Vec::len).unwrap_or_default()
}
