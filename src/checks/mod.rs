//! The check registry: every check, and the selection made with `--only` and `--skip`.

pub mod auth;
pub mod config;
pub mod dind;
pub mod docker;
pub mod gitlab;
pub mod image;
pub mod network;
pub mod pipeline;
pub mod runner;
pub mod scheduling;
pub mod security;
pub mod tls;

use crate::facts::Facts;
use crate::finding::Finding;

/// One diagnosis: a pure function from facts to findings.
pub trait Check: Sync {
    /// Stable id `area.topic`, for example `network.runner-url`.
    fn id(&self) -> &'static str;
    /// One line for `ci-doctor list`: what the check examines.
    fn summary(&self) -> &'static str;
    /// The check's page, `checks/<id>.md`, for `ci-doctor explain <id>`.
    fn explanation(&self) -> &'static str;
    /// Adds findings, `ok` and `skipped` notes included, to `out`. Never prints or does I/O.
    fn run(&self, facts: &Facts, out: &mut Vec<Finding>);
}

/// Every check, in the order of a run: host, GitLab, pipeline, config, runner, network, auth,
/// then the job side.
pub const CHECKS: &[&dyn Check] = &[
    &docker::daemon::Daemon,
    &docker::socket_access::SocketAccess,
    &docker::disk_space::DiskSpace,
    &gitlab::external_url::ExternalUrl,
    &pipeline::syntax::Syntax,
    &config::found::Found,
    &config::syntax::Syntax,
    &config::keys::Keys,
    &config::entries::Entries,
    &config::file_mode::FileMode,
    &runner::docker_access::DockerAccess,
    &runner::concurrency::Concurrency,
    &network::runner_url::RunnerUrl,
    &tls::trust::Trust,
    &auth::token::Token,
    &network::clone_url::CloneUrl,
    &network::job_coordinator::JobCoordinator,
    &network::job_dns::JobDns,
    &dind::privileged::Privileged,
    &dind::tls::Tls,
    &dind::docker_host::DockerHost,
    &dind::job_daemon::JobDaemon,
    &image::pull_policy::PullPolicy,
    &image::helper::Helper,
    &image::job_tools::JobTools,
    &image::executor_kind::ExecutorKind,
    &security::privileged::Privileged,
    &scheduling::tags::Tags,
    &scheduling::untagged::Untagged,
    &scheduling::protected::Protected,
    &scheduling::instance_runners::InstanceRunners,
    &scheduling::runner_status::RunnerStatus,
    &security::runner_groups::RunnerGroups,
];

/// The check with id `id`.
pub fn find(id: &str) -> Option<&'static dyn Check> {
    CHECKS.iter().copied().find(|check| check.id() == id)
}

/// The area of a check id: `network` for `network.runner-url`.
pub fn area(id: &str) -> &str {
    id.split('.').next().unwrap_or(id)
}

/// Which checks to run, from `--only` and `--skip`.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    only: Vec<String>,
    skip: Vec<String>,
}

impl Selection {
    /// Validates the names given to `--only` and `--skip`: each must be a check id or an area.
    pub fn new(only: &[String], skip: &[String]) -> Result<Selection, String> {
        for name in only.iter().chain(skip) {
            if !is_known(name) {
                return Err(unknown_name_message(name));
            }
        }
        Ok(Selection { only: only.to_vec(), skip: skip.to_vec() })
    }

    /// Returns true when the check with id `id` runs.
    pub fn includes(&self, id: &str) -> bool {
        let matches = |name: &String| name == id || name == area(id);
        (self.only.is_empty() || self.only.iter().any(matches)) && !self.skip.iter().any(matches)
    }

    /// Returns true when `id` was named by its id or area in `--only`.
    pub fn names(&self, id: &str) -> bool {
        self.only.iter().any(|name| name == id || name == area(id))
    }
}

fn is_known(name: &str) -> bool {
    CHECKS.iter().any(|check| check.id() == name || area(check.id()) == name)
}

fn unknown_name_message(name: &str) -> String {
    let mut known: Vec<&str> = CHECKS.iter().map(|check| check.id()).collect();
    known.extend(CHECKS.iter().map(|check| area(check.id())));
    known.sort_unstable();
    known.dedup();
    let suggestion = crate::suggest::closest(name, known.iter().copied());
    match suggestion {
        Some(close) => format!("unknown check or area `{name}`; did you mean `{close}`? (`ci-doctor list` shows them all)"),
        None => format!("unknown check or area `{name}`; `ci-doctor list` shows every check id"),
    }
}

/// Runs the selected checks over `facts`.
pub fn run(facts: &Facts, selection: &Selection) -> Vec<Finding> {
    let mut findings = Vec::new();
    for check in CHECKS.iter().filter(|check| selection.includes(check.id())) {
        let _span = tracing::debug_span!("check", id = check.id()).entered();
        check.run(facts, &mut findings);
    }
    findings
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_well_formed() {
        let mut ids: Vec<&str> = CHECKS.iter().map(|check| check.id()).collect();
        for id in &ids {
            let (area, topic) = id.split_once('.').expect("id has an area");
            assert!(area.chars().all(|c| c.is_ascii_lowercase()), "{id}");
            assert!(topic.chars().all(|c| c.is_ascii_lowercase() || c == '-'), "{id}");
        }
        ids.sort_unstable();
        let before = ids.len();
        ids.dedup();
        assert_eq!(before, ids.len(), "duplicate check id");
    }

    #[test]
    fn every_page_has_its_headings() {
        for check in CHECKS {
            let page = check.explanation();
            assert!(page.starts_with(&format!("# `{}`", check.id())), "{} page title", check.id());
            for heading in ["## Symptoms", "## Why", "## Fix"] {
                assert!(page.contains(heading), "{} lacks {heading}", check.id());
            }
        }
    }

    #[test]
    fn selection_takes_ids_and_areas() {
        let selection = Selection::new(&["network".into()], &[]).unwrap();
        assert!(selection.includes("network.runner-url"));
        assert!(!selection.includes("auth.token"));
        let selection = Selection::new(&[], &["auth.token".into()]).unwrap();
        assert!(!selection.includes("auth.token"));
        assert!(selection.includes("config.keys"));
    }

    #[test]
    fn unknown_selection_suggests_a_name() {
        let error = Selection::new(&["netwrk".into()], &[]).unwrap_err();
        assert!(error.contains("did you mean `network`"), "{error}");
    }
}
