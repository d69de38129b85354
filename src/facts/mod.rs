//! Facts: everything a diagnosis knows, gathered once before any check runs.
//!
//! Facts are plain data. Checks read them and never do I/O, so a test can build facts by
//! hand, and a support engineer could replay the facts of someone else's machine.

pub mod config;
pub mod docker;
pub mod gitlab;
pub mod host;
pub mod job;
pub mod probe;
pub mod runner;

use serde::Serialize;

pub use config::{ConfigFile, ConfigOrigin, Entry, ParsedConfig, Val};
pub use docker::{ContainerInfo, DaemonInfo, DockerFacts, GitLabContainer};
pub use host::HostFacts;
pub use probe::{Probes, UrlProbe};
pub use runner::{RunnerKind, RunnerProcess};

/// Everything gathered about one setup.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Facts {
    pub host: HostFacts,
    pub docker: DockerFacts,
    /// Runner processes found, each with the config file it uses.
    pub runners: Vec<RunnerProcess>,
    /// GitLab containers found on the local daemon.
    pub gitlabs: Vec<GitLabContainer>,
    /// Results of connections made from each runner's point of view.
    pub probes: Probes,
    /// The pipeline, when one was found.
    pub pipeline: Option<crate::pipeline::PipelineFact>,
    /// Images that jobs, services and helpers use, as the daemon knows them.
    pub images: Vec<job::ImageFact>,
    /// Stopped containers that runners created for jobs.
    pub job_containers: Vec<job::JobContainer>,
    /// The job's point of view, per runner and network settings.
    pub job_views: Vec<job::JobView>,
    /// What the GitLab API reports about the project and its runners.
    pub gitlab: gitlab::GitLabFacts,
    /// The users that shell-executor jobs of native runners run as.
    pub shell_users: Vec<host::ShellUser>,
    /// Settings that shape what could be gathered.
    pub settings: Settings,
    /// Things named on the command line that do not exist, one message each. A diagnosis
    /// with any of these stops with exit status 2 instead of reporting.
    pub missing_inputs: Vec<String>,
}

/// Settings of the run that checks need to word their findings.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Settings {
    /// `--no-probe` was given.
    pub no_probe: bool,
    /// Per-probe time limit, in seconds.
    pub timeout_secs: f64,
    /// Runners were named explicitly (`--config`, `--runner-container`) rather than discovered.
    pub explicit_runners: bool,
    /// A GitLab access token was given.
    pub has_gitlab_token: bool,
    /// When the facts were gathered, in Unix seconds, for judging expiry dates.
    pub now: i64,
}

impl Facts {
    /// The image `reference` as the daemon knows it.
    pub fn image(&self, reference: &str) -> Option<&job::ImageFact> {
        self.images.iter().find(|image| image.reference == reference)
    }

    /// The parsed pipeline, when it was read without a fatal error.
    pub fn jobs(&self) -> &[crate::pipeline::Job] {
        match &self.pipeline {
            Some(crate::pipeline::PipelineFact { result: Ok(pipeline), .. }) => &pipeline.jobs,
            _ => &[],
        }
    }

    /// The job view that covers entry `entry` of runner `runner`.
    pub fn job_view(&self, runner: usize, entry: usize) -> Option<&job::JobView> {
        self.job_views.iter().find(|view| view.members.contains(&(runner, entry)))
    }

    /// The `[[runners]]` entries of runner `runner`, or none when its config did not parse.
    pub fn entries(&self, runner: usize) -> &[Entry] {
        self.runners[runner].config.parsed().map(|parsed| parsed.entries.as_slice()).unwrap_or(&[])
    }
}
