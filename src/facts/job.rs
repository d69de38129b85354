//! Facts about jobs: their images, the containers earlier jobs left, and the network a job
//! container gets.

use serde::Serialize;

use super::probe::UrlProbe;

/// A local image, as `docker image inspect` shows it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImageFact {
    /// The reference as the pipeline or config wrote it.
    pub reference: String,
    /// The image exists on this daemon.
    pub present: bool,
    /// Present, but with no registry digest: built or tagged here, so a pull would fail.
    pub local_only: bool,
    pub env: Vec<(String, String)>,
    pub entrypoint: Option<Vec<String>>,
    pub exposed_ports: Vec<String>,
}

impl ImageFact {
    /// Returns the value of `name` in the image's environment.
    pub fn env(&self, name: &str) -> Option<&str> {
        self.env.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str())
    }
}

/// A container a runner created for a job (its labels tell), kept because it stopped.
#[derive(Debug, Clone, Default, Serialize)]
pub struct JobContainer {
    pub name: String,
    /// `com.gitlab.gitlab-runner.type`: `build`, `service`, `cache`, ...
    pub kind: String,
    pub image: String,
    /// `com.gitlab.gitlab-runner.service`: the service image, for service containers.
    pub service: Option<String>,
    pub state: String,
    pub exit_code: Option<i64>,
    /// The last lines of its log.
    pub log_tail: Vec<String>,
}

/// The network settings a job container of one `[[runners]]` entry gets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct JobNetwork {
    /// `network_mode`; `None` is Docker's default bridge.
    pub network_mode: Option<String>,
    pub extra_hosts: Vec<String>,
    pub links: Vec<String>,
    pub dns: Vec<String>,
    pub dns_search: Vec<String>,
}

/// How the job's point of view was reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum JobAccess {
    /// A short-lived probe container with the job's network settings was created and its
    /// network namespace entered.
    Probe { container: String, image: String },
    /// No probe container: runner container `container` is on `network` like the job containers,
    /// and every URL names a container on that network, so the runner's own probes show what a
    /// job sees.
    Shared { container: String, network: String },
    /// No probe container: runner container `container` and the job containers are on Docker's
    /// default bridge with legacy links (`links`, in `--link name:alias` form) that map each
    /// URL's host to the same container, so the runner's own probes show the job's view.
    Linked { container: String, links: Vec<String> },
    /// Docker rejected a container with the job's network settings, as it rejects every job
    /// container of these settings; `message` is the daemon's error.
    Rejected { message: String },
    /// No probe was possible; checks reason from the settings.
    Unavailable { reason: String },
    /// `--no-probe` was given.
    Disabled,
}

/// The job's point of view for the entries that share network settings.
#[derive(Debug, Clone, Serialize)]
pub struct JobView {
    /// The runner of the first entry.
    pub runner: usize,
    /// `(runner, entry)` of every entry covered.
    pub members: Vec<(usize, usize)>,
    pub network: JobNetwork,
    pub access: JobAccess,
    /// URLs tried from inside the probe container.
    pub urls: Vec<UrlProbe>,
}

impl JobAccess {
    /// Whether URLs were really tried from the job's network.
    pub fn probed(&self) -> bool {
        matches!(self, JobAccess::Probe { .. } | JobAccess::Shared { .. } | JobAccess::Linked { .. })
    }
}

impl JobView {
    /// The probe of `url` from this view.
    pub fn url(&self, url: &str) -> Option<&UrlProbe> {
        self.urls.iter().find(|probe| probe.url == url)
    }
}
