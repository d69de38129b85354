//! Facts from the GitLab API about one project and the runners that may take its jobs, read
//! with the user's access token.

use serde::Serialize;

/// Everything read from the GitLab API, or why nothing was.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GitLabFacts {
    /// The GitLab the access token goes to, and how ci-doctor chose it.
    pub target: Option<ApiTarget>,
    /// The project to diagnose, as named on the command line or by the `origin` remote.
    pub project_ref: Option<ProjectRef>,
    /// Whether the API accepted the token, and as which user.
    pub access: ApiAccess,
    /// The project, or why it could not be read.
    pub project: Option<Result<ProjectInfo, String>>,
    /// Runners available to the project (`GET /projects/:id/runners`, with each runner's
    /// details), or why they could not be listed.
    pub runners: Option<Result<Vec<ApiRunner>, String>>,
    /// Instance runners, listed only when the project turned them off, because then the project
    /// list leaves them out. Needs an administrator's token.
    pub instance_runners: Option<Result<Vec<ApiRunner>, String>>,
    /// Jobs waiting for a runner (`pending`, and `created` jobs of later stages), or why they
    /// could not be listed.
    pub jobs: Option<Result<Vec<ApiJob>, String>>,
    /// Names (and wildcard patterns) of protected branches, or why they could not be listed.
    pub protected_branches: Option<Result<Vec<String>, String>>,
    /// Runners named by `id` in the `[[runners]]` entries on this host.
    pub config_runners: Vec<RunnerLookup>,
    /// The branch checked out in the current directory, for jobs of the pipeline file.
    pub current_branch: Option<String>,
}

impl GitLabFacts {
    /// Returns the project, when it was read.
    pub fn project(&self) -> Option<&ProjectInfo> {
        self.project.as_ref().and_then(|project| project.as_ref().ok())
    }

    /// Finds the GitLab record of the runner with id `id` in any list that contains it.
    pub fn runner(&self, id: u64) -> Option<&ApiRunner> {
        fn listed(list: &Option<Result<Vec<ApiRunner>, String>>, id: u64) -> Option<&ApiRunner> {
            list.as_ref().and_then(|list| list.as_ref().ok()).and_then(|runners| runners.iter().find(|runner| runner.id == id))
        }
        listed(&self.runners, id).or_else(|| listed(&self.instance_runners, id)).or_else(|| {
            self.config_runners.iter().find_map(|lookup| match &lookup.result {
                LookupResult::Found(runner) if runner.id == id => Some(runner),
                _ => None,
            })
        })
    }

    /// Finds the lookup of the runner named in entry `entry` of runner process `runner`.
    pub fn config_runner(&self, runner: usize, entry: usize) -> Option<&RunnerLookup> {
        self.config_runners.iter().find(|lookup| lookup.runner == runner && lookup.entry == entry)
    }
}

/// A GitLab base URL and where it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiTarget {
    /// Base URL without a trailing slash, for example `https://gitlab.example.test`.
    pub url: String,
    pub source: TargetSource,
}

/// The rule by which ci-doctor chose the GitLab that gets the access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TargetSource {
    /// `--gitlab-url`.
    Flag,
    /// The web URL of the current checkout's `origin` remote.
    OriginRemote,
    /// The `url` of a runner entry that answered like GitLab from the runner's view and from
    /// this host.
    RunnerUrl,
}

impl TargetSource {
    /// Describes the source in a short phrase for messages.
    pub fn describe(&self) -> &'static str {
        match self {
            TargetSource::Flag => "from `--gitlab-url`",
            TargetSource::OriginRemote => "from the `origin` remote of this checkout",
            TargetSource::RunnerUrl => "from the runners' `url`, which answered like GitLab",
        }
    }
}

/// The project to diagnose: a numeric id or a path such as `group/app`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProjectRef {
    pub id_or_path: String,
    /// `--project` or the `origin` remote.
    pub from_flag: bool,
}

/// The outcome of talking to the GitLab API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ApiAccess {
    /// The API was not contacted. `reason` is why, and `enable` what would change that.
    NotContacted { reason: String, enable: String },
    /// The API could not be used. `message` is what happened, and `help` what to do.
    Failed { message: String, help: String },
    /// The API accepted the token.
    Reached { username: String, is_admin: bool },
}

impl Default for ApiAccess {
    fn default() -> Self {
        ApiAccess::NotContacted { reason: "no GitLab access token was given".into(), enable: ENABLE_WITH_TOKEN.into() }
    }
}

/// The advice that gives the scheduling checks their facts.
pub const ENABLE_WITH_TOKEN: &str = "pass `--gitlab-token` (or set `GITLAB_TOKEN`) with a personal, project or group access token with scope `read_api` and the Maintainer role in the project";

/// The parts of a project that decide which runners may take its jobs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProjectInfo {
    pub id: u64,
    pub path: String,
    pub web_url: String,
    pub default_branch: Option<String>,
    /// "Enable instance runners for this project".
    pub shared_runners_enabled: bool,
    pub group_runners_enabled: bool,
}

/// A runner as the Runners API describes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiRunner {
    pub id: u64,
    pub description: String,
    /// `instance_type`, `group_type` or `project_type`.
    pub runner_type: String,
    pub paused: bool,
    /// `online`, `offline`, `stale` or `never_contacted`.
    pub status: String,
    pub tag_list: Vec<String>,
    pub run_untagged: bool,
    pub locked: bool,
    /// `not_protected` or `ref_protected`.
    pub access_level: String,
    /// Ids of the projects a project runner is assigned to.
    pub projects: Vec<u64>,
    pub contacted_at: Option<String>,
    /// False when only the list entry was read, so tags and access level are unknown.
    pub has_details: bool,
}

impl ApiRunner {
    /// `runner 90 (`ec2-docker`)`.
    pub fn label(&self) -> String {
        if self.description.is_empty() { format!("runner {}", self.id) } else { format!("runner {} (`{}`)", self.id, self.description) }
    }

    pub fn is_instance(&self) -> bool {
        self.runner_type == "instance_type"
    }

    pub fn is_protected_only(&self) -> bool {
        self.access_level == "ref_protected"
    }
}

/// A job waiting for a runner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiJob {
    pub id: u64,
    pub name: String,
    pub status: String,
    pub stage: String,
    /// The branch or tag the job runs for.
    pub git_ref: String,
    /// True when `git_ref` is a tag.
    pub is_tag: bool,
    pub tag_list: Vec<String>,
}

/// `GET /runners/:id` for the `id` of one `[[runners]]` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunnerLookup {
    /// Index of the runner process in `Facts::runners`.
    pub runner: usize,
    pub entry: usize,
    pub id: u64,
    pub result: LookupResult,
}

/// The result of looking up one runner id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum LookupResult {
    Found(ApiRunner),
    /// 404: GitLab has no runner with that id.
    NotFound,
    Failed { message: String },
}
