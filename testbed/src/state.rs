//! State of the stand-in GitLab service: the instance version, users, tokens,
//! runners, projects and jobs it serves.
//!
//! The state is read once from a JSON file (`gitlab-standin serve --state FILE`)
//! or built in code. Registering or unregistering a runner through the API
//! changes the in-memory copy only, and the file is never written back.

use std::path::Path;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

/// Everything the stand-in serves. Every field has a default, so `{}` is a
/// valid state file: GitLab 17.5.2 with one administrator and nothing else.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct State {
    /// GitLab version returned by `/version` and `/metadata`, for example `17.5.2`.
    pub version: String,
    /// Git revision returned by `/version` and `/metadata`.
    pub revision: String,
    /// `true` for an Enterprise Edition instance.
    pub enterprise: bool,
    /// GitLab's `external_url`, used to build `web_url` and `http_url_to_repo`
    /// values that the state does not set.
    pub external_url: String,
    pub users: Vec<User>,
    pub personal_access_tokens: Vec<PersonalAccessToken>,
    pub runners: Vec<Runner>,
    /// Runner authentication tokens that `POST /runners/verify` rejects with 403.
    pub revoked_runner_tokens: Vec<String>,
    /// Registration tokens that `POST /runners` accepts.
    pub registration_tokens: Vec<String>,
    pub projects: Vec<Project>,
    pub jobs: Vec<Job>,
    /// Paths answered with a redirect instead of their usual answer, as a
    /// GitLab behind a moved domain or a proxy answers.
    pub redirects: Vec<Redirect>,
}

impl Default for State {
    fn default() -> Self {
        State {
            version: "17.5.2".to_owned(),
            revision: "c0ffee17a52".to_owned(),
            enterprise: false,
            external_url: "http://gitlab.example.test".to_owned(),
            users: vec![User::root()],
            personal_access_tokens: Vec::new(),
            runners: Vec::new(),
            revoked_runner_tokens: Vec::new(),
            registration_tokens: Vec::new(),
            projects: Vec::new(),
            jobs: Vec::new(),
            redirects: Vec::new(),
        }
    }
}

impl State {
    /// Reads a state file. Unknown fields are errors, so a misspelt key in a
    /// fixture fails loudly instead of being ignored.
    pub fn load(path: &Path) -> anyhow::Result<State> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("failed to read state file {}", path.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("invalid state file {}", path.display()))
    }

    /// Writes the state as pretty-printed JSON.
    pub fn save(&self, path: &Path) -> anyhow::Result<()> {
        let text = serde_json::to_string_pretty(self)?;
        std::fs::write(path, text + "\n")
            .with_context(|| format!("failed to write state file {}", path.display()))
    }

    /// Returns the project with this numeric id.
    pub fn project(&self, id: u64) -> Option<&Project> {
        self.projects.iter().find(|project| project.id == id)
    }

    /// Returns the user with this id.
    pub fn user(&self, id: u64) -> Option<&User> {
        self.users.iter().find(|user| user.id == id)
    }

    /// Returns the runner with this id.
    pub fn runner(&self, id: u64) -> Option<&Runner> {
        self.runners.iter().find(|runner| runner.id == id)
    }
}

/// A redirect: requests whose path starts with `from` get `301 Moved
/// Permanently` with `Location: <to><path><?query>`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Redirect {
    /// Path prefix, for example `/api/v4/projects`.
    pub from: String,
    /// Base URL the request is sent to, for example `https://gitlab.example.test`.
    pub to: String,
}

/// A GitLab user that personal access tokens belong to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct User {
    pub id: u64,
    pub username: String,
    #[serde(default)]
    pub name: String,
    /// Administrators may list every runner with `GET /runners/all`.
    #[serde(default)]
    pub is_admin: bool,
    /// `active`, `blocked` or `deactivated`. Tokens of a user that is not
    /// active are rejected with 401.
    #[serde(default = "default_user_state")]
    pub state: String,
    #[serde(default)]
    pub bot: bool,
}

impl User {
    /// Returns the administrator that a new GitLab instance starts with (id 1).
    pub fn root() -> User {
        User {
            id: 1,
            username: "root".to_owned(),
            name: "Administrator".to_owned(),
            is_admin: true,
            state: default_user_state(),
            bot: false,
        }
    }
}

fn default_user_state() -> String {
    "active".to_owned()
}

/// A personal access token, sent as `PRIVATE-TOKEN` or `Authorization: Bearer`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersonalAccessToken {
    pub id: u64,
    #[serde(default = "default_token_name")]
    pub name: String,
    /// The secret value, for example `glpat-...`.
    pub token: String,
    /// GitLab scopes such as `api`, `read_api`, `read_user`, `create_runner`.
    #[serde(default)]
    pub scopes: Vec<String>,
    /// Id of the owner, which must be an entry of `users`.
    #[serde(default = "default_user_id")]
    pub user_id: u64,
    #[serde(default = "default_created_at")]
    pub created_at: String,
    /// Expiry date as `YYYY-MM-DD`. The token stops working on that date (UTC).
    #[serde(default)]
    pub expires_at: Option<String>,
    #[serde(default)]
    pub revoked: bool,
    #[serde(default)]
    pub last_used_at: Option<String>,
}

impl PersonalAccessToken {
    /// Creates an unexpired, unrevoked token of user 1 (root).
    pub fn new(id: u64, token: &str, scopes: &[&str]) -> PersonalAccessToken {
        PersonalAccessToken {
            id,
            name: default_token_name(),
            token: token.to_owned(),
            scopes: scopes.iter().map(|scope| (*scope).to_owned()).collect(),
            user_id: default_user_id(),
            created_at: default_created_at(),
            expires_at: None,
            revoked: false,
            last_used_at: None,
        }
    }
}

fn default_token_name() -> String {
    "ci-doctor".to_owned()
}

fn default_user_id() -> u64 {
    1
}

fn default_created_at() -> String {
    "2024-10-01T09:00:00.000Z".to_owned()
}

/// Runner status as the Runners API reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunnerStatus {
    Online,
    Offline,
    Stale,
    NeverContacted,
}

impl RunnerStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunnerStatus::Online => "online",
            RunnerStatus::Offline => "offline",
            RunnerStatus::Stale => "stale",
            RunnerStatus::NeverContacted => "never_contacted",
        }
    }
}

/// Whether a runner picks up jobs from any ref or only from protected refs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccessLevel {
    NotProtected,
    RefProtected,
}

impl AccessLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            AccessLevel::NotProtected => "not_protected",
            AccessLevel::RefProtected => "ref_protected",
        }
    }
}

/// Scope of a runner: the whole instance, a group, or listed projects.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunnerType {
    InstanceType,
    GroupType,
    ProjectType,
}

impl RunnerType {
    pub fn as_str(self) -> &'static str {
        match self {
            RunnerType::InstanceType => "instance_type",
            RunnerType::GroupType => "group_type",
            RunnerType::ProjectType => "project_type",
        }
    }

    /// Parses the value of the `type` query parameter.
    pub fn parse(value: &str) -> Option<RunnerType> {
        match value {
            "instance_type" => Some(RunnerType::InstanceType),
            "group_type" => Some(RunnerType::GroupType),
            "project_type" => Some(RunnerType::ProjectType),
            _ => None,
        }
    }
}

/// A registered runner.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Runner {
    pub id: u64,
    #[serde(default)]
    pub description: String,
    /// Runner authentication token, the `token` of `[[runners]]` in
    /// `config.toml` (`glrt-...` for runners created in the UI).
    pub token: String,
    /// Expiry time of the token (ISO 8601, UTC). From that time on,
    /// `POST /runners/verify` rejects the token with 403.
    #[serde(default)]
    pub token_expires_at: Option<String>,
    #[serde(default = "default_runner_status")]
    pub status: RunnerStatus,
    #[serde(default)]
    pub paused: bool,
    #[serde(default)]
    pub tag_list: Vec<String>,
    #[serde(default = "default_true")]
    pub run_untagged: bool,
    #[serde(default)]
    pub locked: bool,
    #[serde(default = "default_access_level")]
    pub access_level: AccessLevel,
    #[serde(default = "default_runner_type")]
    pub runner_type: RunnerType,
    /// Last contact as an ISO 8601 time, or `null` for a runner that never
    /// contacted GitLab.
    #[serde(default)]
    pub contacted_at: Option<String>,
    /// Ids of the projects the runner is assigned to (project runners), or of
    /// the projects in its group (group runners).
    #[serde(default)]
    pub projects: Vec<u64>,
    /// A project runner whose projects were all deleted. `POST /runners/verify`
    /// returns 422 "Runner is orphaned" for it.
    #[serde(default)]
    pub orphaned: bool,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub revision: Option<String>,
    #[serde(default)]
    pub platform: Option<String>,
    #[serde(default)]
    pub architecture: Option<String>,
    #[serde(default)]
    pub ip_address: Option<String>,
    #[serde(default)]
    pub maximum_timeout: Option<u64>,
    #[serde(default)]
    pub maintenance_note: Option<String>,
}

impl Runner {
    /// Creates an online, unpaused instance runner that runs untagged jobs.
    pub fn new(id: u64, token: &str) -> Runner {
        Runner {
            id,
            description: format!("runner-{id}"),
            token: token.to_owned(),
            token_expires_at: None,
            status: RunnerStatus::Online,
            paused: false,
            tag_list: Vec::new(),
            run_untagged: true,
            locked: false,
            access_level: AccessLevel::NotProtected,
            runner_type: RunnerType::InstanceType,
            contacted_at: Some("2024-10-01T09:00:00.000Z".to_owned()),
            projects: Vec::new(),
            orphaned: false,
            name: Some("gitlab-runner".to_owned()),
            version: Some("17.5.3".to_owned()),
            revision: Some("12030cf4".to_owned()),
            platform: Some("linux".to_owned()),
            architecture: Some("amd64".to_owned()),
            ip_address: None,
            maximum_timeout: None,
            maintenance_note: None,
        }
    }
}

fn default_runner_status() -> RunnerStatus {
    RunnerStatus::Online
}

fn default_access_level() -> AccessLevel {
    AccessLevel::NotProtected
}

fn default_runner_type() -> RunnerType {
    RunnerType::InstanceType
}

fn default_true() -> bool {
    true
}

/// A project.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Project {
    pub id: u64,
    /// Full path such as `group/app`, also accepted URL-encoded in place of
    /// the numeric id (`/projects/group%2Fapp`).
    pub path_with_namespace: String,
    /// Defaults to `<external_url>/<path_with_namespace>`.
    #[serde(default)]
    pub web_url: Option<String>,
    /// Defaults to `<external_url>/<path_with_namespace>.git`.
    #[serde(default)]
    pub http_url_to_repo: Option<String>,
    #[serde(default = "default_branch")]
    pub default_branch: String,
    /// `private`, `internal` or `public`.
    #[serde(default = "default_visibility")]
    pub visibility: String,
    #[serde(default = "default_true")]
    pub shared_runners_enabled: bool,
    #[serde(default)]
    pub protected_branches: Vec<ProtectedBranch>,
}

impl Project {
    /// Creates a private project with default branch `main` and instance
    /// runners enabled.
    pub fn new(id: u64, path_with_namespace: &str) -> Project {
        Project {
            id,
            path_with_namespace: path_with_namespace.to_owned(),
            web_url: None,
            http_url_to_repo: None,
            default_branch: default_branch(),
            visibility: default_visibility(),
            shared_runners_enabled: true,
            protected_branches: Vec::new(),
        }
    }

    /// Last segment of the path, which GitLab also uses as the default name.
    pub fn path(&self) -> &str {
        self.path_with_namespace
            .rsplit('/')
            .next()
            .unwrap_or(&self.path_with_namespace)
    }
}

fn default_branch() -> String {
    "main".to_owned()
}

fn default_visibility() -> String {
    "private".to_owned()
}

/// A protected branch (or wildcard such as `release/*`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProtectedBranch {
    pub name: String,
    /// GitLab access level allowed to push: 0 no one, 30 developers, 40
    /// maintainers, 60 administrators.
    #[serde(default = "default_maintainer_level")]
    pub push_access_level: u32,
    /// Access level allowed to merge, with the same values.
    #[serde(default = "default_maintainer_level")]
    pub merge_access_level: u32,
    #[serde(default)]
    pub allow_force_push: bool,
    #[serde(default)]
    pub code_owner_approval_required: bool,
}

impl ProtectedBranch {
    /// Creates a branch that only maintainers may push to and merge into.
    pub fn new(name: &str) -> ProtectedBranch {
        ProtectedBranch {
            name: name.to_owned(),
            push_access_level: default_maintainer_level(),
            merge_access_level: default_maintainer_level(),
            allow_force_push: false,
            code_owner_approval_required: false,
        }
    }
}

fn default_maintainer_level() -> u32 {
    40
}

/// A CI job of a project.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Job {
    pub id: u64,
    pub name: String,
    #[serde(default = "default_stage")]
    pub stage: String,
    #[serde(default)]
    pub tag_list: Vec<String>,
    #[serde(rename = "ref", default = "default_branch")]
    pub git_ref: String,
    /// GitLab job status such as `pending`, `running`, `success`, `failed`.
    #[serde(default = "default_job_status")]
    pub status: String,
    pub project_id: u64,
    /// Runner that picked the job up; `null` while the job waits.
    #[serde(default)]
    pub runner_id: Option<u64>,
    #[serde(default = "default_created_at")]
    pub created_at: String,
    #[serde(default)]
    pub started_at: Option<String>,
    #[serde(default)]
    pub finished_at: Option<String>,
}

impl Job {
    /// Creates a pending job on the project's default branch `main`.
    pub fn new(id: u64, project_id: u64, name: &str) -> Job {
        Job {
            id,
            name: name.to_owned(),
            stage: default_stage(),
            tag_list: Vec::new(),
            git_ref: default_branch(),
            status: default_job_status(),
            project_id,
            runner_id: None,
            created_at: default_created_at(),
            started_at: None,
            finished_at: None,
        }
    }
}

fn default_stage() -> String {
    "test".to_owned()
}

fn default_job_status() -> String {
    "pending".to_owned()
}

/// Job statuses that GitLab accepts in `scope[]`.
pub const JOB_SCOPES: &[&str] = &[
    "created",
    "pending",
    "running",
    "failed",
    "success",
    "canceled",
    "skipped",
    "waiting_for_resource",
    "manual",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_object_is_default_state() {
        let state: State = serde_json::from_str("{}").unwrap();
        assert_eq!(state, State::default());
        assert_eq!(state.users.len(), 1);
        assert!(state.users[0].is_admin);
    }

    #[test]
    fn unknown_field_is_rejected() {
        let error = serde_json::from_str::<State>(r#"{"runner": []}"#).unwrap_err();
        assert!(error.to_string().contains("unknown field"), "{error}");
    }

    #[test]
    fn runner_defaults_apply() {
        let runner: Runner = serde_json::from_str(r#"{"id": 7, "token": "glrt-x"}"#).unwrap();
        assert_eq!(runner.status, RunnerStatus::Online);
        assert!(runner.run_untagged);
        assert_eq!(runner.access_level, AccessLevel::NotProtected);
        assert_eq!(runner.runner_type, RunnerType::InstanceType);
        assert!(!runner.orphaned);
    }

    #[test]
    fn job_ref_uses_gitlab_key() {
        let job: Job =
            serde_json::from_str(r#"{"id": 1, "name": "build", "project_id": 2, "ref": "dev"}"#)
                .unwrap();
        assert_eq!(job.git_ref, "dev");
        let value = serde_json::to_value(&job).unwrap();
        assert_eq!(value["ref"], "dev");
    }
}
