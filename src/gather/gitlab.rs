//! Reads the project, its runners and its waiting jobs from the GitLab API with the user's
//! access token.
//!
//! The token goes to one GitLab only: `--gitlab-url`, else the web URL of the checkout's
//! `origin` remote, else the one `url` that the runners here use when it answered like GitLab
//! from the runner's view. Before the token is sent, an unauthenticated request must get
//! GitLab's own JSON answer from that URL. Redirects are never followed, so the token never
//! travels to another host; a redirect is reported instead.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use serde_json::Value;
use tokio::time::Instant;

use super::git::Origin;
use crate::facts::Facts;
use crate::facts::gitlab::{
    ApiAccess, ApiJob, ApiRunner, ApiTarget, GitLabFacts, LookupResult, ProjectInfo, ProjectRef, RunnerLookup, TargetSource,
};
use crate::secret::{Secret, redact};

/// Largest response read from the API; a page of 100 runners or jobs is well below it.
const MAX_BODY: usize = 4 * 1024 * 1024;

/// Runner detail requests in flight at once.
const DETAIL_CONCURRENCY: usize = 8;

/// Items per page; GitLab's maximum.
const PER_PAGE: &str = "per_page=100";

/// The settings of the GitLab API, from the command line and the checkout.
#[derive(Debug, Clone, Default)]
pub struct Input {
    pub token: Option<Secret>,
    pub url: Option<String>,
    pub project: Option<String>,
    /// Extra CA certificates (PEM) trusted for the API, besides this host's bundle.
    pub ca_file: Option<PathBuf>,
    /// The `origin` remote of the current checkout.
    pub origin: Option<Origin>,
    pub current_branch: Option<String>,
}

impl Input {
    /// Chooses the GitLab without probes: `--gitlab-url`, else the `origin` remote.
    pub fn early_target(&self) -> Option<ApiTarget> {
        if let Some(url) = &self.url {
            return Some(ApiTarget { url: url.trim_end_matches('/').to_string(), source: TargetSource::Flag });
        }
        self.origin.as_ref().map(|origin| ApiTarget { url: origin.base_url.clone(), source: TargetSource::OriginRemote })
    }

    fn project_ref(&self) -> Option<ProjectRef> {
        if let Some(project) = &self.project {
            return Some(ProjectRef { id_or_path: project.trim_matches('/').to_string(), from_flag: true });
        }
        // The origin's project path belongs to the origin's GitLab only.
        let same_gitlab = self.url.as_ref().is_none_or(|url| self.origin.as_ref().is_some_and(|origin| url.trim_end_matches('/') == origin.base_url));
        self.origin
            .as_ref()
            .filter(|_| same_gitlab)
            .map(|origin| ProjectRef { id_or_path: origin.project_path.clone(), from_flag: false })
    }
}

/// The one GitLab base URL that every runner entry here uses and that answered like GitLab from
/// the runner's view, for when neither `--gitlab-url` nor an `origin` remote names one.
pub fn target_from_runners(facts: &Facts) -> Result<ApiTarget, String> {
    let mut bases = BTreeSet::new();
    for (index, _) in facts.runners.iter().enumerate() {
        for entry in facts.entries(index) {
            let Some(url) = entry.keys.str("url") else { continue };
            if facts.probes.url(index, url).is_some_and(|probe| probe.reached_gitlab()) {
                bases.insert(crate::probe::api_base(url));
            }
        }
    }
    match bases.len() {
        0 => Err("no GitLab URL is known: neither `--gitlab-url` nor an `origin` remote names one, and no runner `url` answered like GitLab".into()),
        1 => Ok(ApiTarget { url: bases.into_iter().next().expect("one base"), source: TargetSource::RunnerUrl }),
        _ => Err(format!("the runners here use several GitLab URLs ({}); choose one with `--gitlab-url`", bases.into_iter().map(|base| format!("`{base}`")).collect::<Vec<_>>().join(", "))),
    }
}

/// Reads everything the scheduling and token checks need from `target`.
pub async fn gather(input: &Input, target: Result<ApiTarget, String>, facts: &Facts, timeout: Duration, deadline: Instant) -> GitLabFacts {
    let mut out = GitLabFacts { project_ref: input.project_ref(), current_branch: input.current_branch.clone(), ..GitLabFacts::default() };
    let Some(token) = input.token.clone().filter(|token| !token.is_empty()) else {
        return out;
    };
    let target = match target {
        Ok(target) => target,
        Err(reason) => {
            out.access = ApiAccess::NotContacted { reason, enable: "pass `--gitlab-url` with GitLab's web address".into() };
            return out;
        }
    };
    out.target = Some(target.clone());

    let client = match Client::new(&target.url, token, input.ca_file.as_ref(), timeout, deadline) {
        Ok(client) => client,
        Err(message) => {
            out.access = ApiAccess::Failed { message, help: "check `--gitlab-url` and `--ca-file`".into() };
            return out;
        }
    };

    // No credential goes out before the URL proved to be GitLab, without a redirect.
    if let Err(failure) = client.confirm_gitlab().await {
        out.access = failure;
        return out;
    }
    let project_ref = out.project_ref.clone();
    let project_path = project_ref.as_ref().map(|project| format!("/projects/{}", encode(&project.id_or_path)));
    let user = client.get_json("/user");
    let project = async {
        match &project_path {
            Some(path) => Some(client.get_json(path).await),
            None => None,
        }
    };
    let (user, project) = tokio::join!(user, project);
    match user {
        Ok(user) => {
            out.access = ApiAccess::Reached {
                username: user["username"].as_str().unwrap_or_default().to_string(),
                is_admin: user["is_admin"].as_bool().unwrap_or(false),
            };
        }
        Err(failure) => {
            out.access = access_failure(&client.base, &failure);
            return out;
        }
    }
    let is_admin = matches!(out.access, ApiAccess::Reached { is_admin: true, .. });

    let project = match project {
        Some(Ok(json)) => match project_info(&json) {
            Some(info) => Some(info),
            None => {
                out.project = Some(Err("GitLab answered with an unexpected project shape".into()));
                None
            }
        },
        Some(Err(failure)) => {
            out.project = Some(Err(failure.describe("the project")));
            None
        }
        None => None,
    };

    let lookups = config_runner_ids(facts);
    let lookups_done = join_all(lookups.iter().map(|(runner, entry, id)| {
        let client = &client;
        async move {
            let result = match client.get_json(&format!("/runners/{id}")).await {
                Ok(json) => match runner_details(&json) {
                    Some(runner) => LookupResult::Found(runner),
                    None => LookupResult::Failed { message: "GitLab answered with an unexpected runner shape".into() },
                },
                Err(Failure::Status { status: 404, .. }) => LookupResult::NotFound,
                Err(failure) => LookupResult::Failed { message: failure.describe(&format!("runner {id}")) },
            };
            RunnerLookup { runner: *runner, entry: *entry, id: *id, result }
        }
    }));

    let Some(project) = project else {
        out.config_runners = lookups_done.await;
        return out;
    };
    let base = format!("/projects/{}", project.id);
    let (runners_path, jobs_path, branches_path) = (
        format!("{base}/runners?{PER_PAGE}"),
        format!("{base}/jobs?scope[]=pending&scope[]=created&{PER_PAGE}"),
        format!("{base}/protected_branches?{PER_PAGE}"),
    );
    let runners = client.get_list(&runners_path);
    let jobs = client.get_list(&jobs_path);
    let branches = client.get_list(&branches_path);
    let instance = async {
        if project.shared_runners_enabled {
            return None;
        }
        if !is_admin {
            return Some(Err("listing instance runners needs an administrator's token".to_string()));
        }
        Some(client.get_list(&format!("/runners/all?type=instance_type&{PER_PAGE}")).await.map_err(|failure| failure.describe("instance runners")))
    };
    let (runners, jobs, branches, instance, config_runners) = tokio::join!(runners, jobs, branches, instance, lookups_done);
    out.config_runners = config_runners;

    out.jobs = Some(jobs.map(|jobs| jobs.iter().filter_map(job).collect()).map_err(|failure| failure.describe("the project's jobs")));
    out.protected_branches = Some(
        branches
            .map(|branches| branches.iter().filter_map(|branch| branch["name"].as_str().map(str::to_string)).collect())
            .map_err(|failure| failure.describe("the protected branches")),
    );
    out.runners = Some(match runners {
        Ok(list) => Ok(client.details(&list).await),
        Err(failure) => Err(failure.describe("the project's runners")),
    });
    out.instance_runners = match instance {
        Some(Ok(list)) => Some(Ok(client.details(&list).await)),
        Some(Err(message)) => Some(Err(message)),
        None => None,
    };
    out.project = Some(Ok(project));
    out
}

/// `(runner process, entry, id)` of every entry whose `id` key names its GitLab runner.
fn config_runner_ids(facts: &Facts) -> Vec<(usize, usize, u64)> {
    let mut out = Vec::new();
    for (index, _) in facts.runners.iter().enumerate() {
        for entry in facts.entries(index) {
            if let Some(id) = entry.keys.int("id").filter(|id| *id > 0) {
                out.push((index, entry.index, id as u64));
            }
        }
    }
    out
}

/// Percent-encodes a project path for `/projects/:id`.
fn encode(id_or_path: &str) -> String {
    url::form_urlencoded::byte_serialize(id_or_path.as_bytes()).collect::<String>().replace('+', "%20")
}

/// Why a request gave no usable answer.
#[derive(Debug, Clone)]
enum Failure {
    /// An HTTP status other than 200; `message` is GitLab's own message when it sent one.
    Status { status: u16, message: String },
    Redirect { status: u16, location: String },
    TimedOut,
    Transport { message: String },
    InvalidJson,
}

impl Failure {
    /// One line for a fact: "the project's jobs: GitLab answered 403 (...)".
    fn describe(&self, what: &str) -> String {
        match self {
            Failure::Status { status, message } if message.is_empty() => format!("reading {what} failed: GitLab answered {status}"),
            Failure::Status { status, message } => format!("reading {what} failed: GitLab answered {status} ({message})"),
            Failure::Redirect { status, location } => format!("reading {what} failed: GitLab answered with a redirect ({status}) to `{location}`, which ci-doctor does not follow with a token"),
            Failure::TimedOut => format!("reading {what} failed: no answer in time"),
            Failure::Transport { message } => format!("reading {what} failed: {message}"),
            Failure::InvalidJson => format!("reading {what} failed: the answer is not the JSON GitLab sends"),
        }
    }
}

/// What to report when `GET /user` fails.
fn access_failure(base: &str, failure: &Failure) -> ApiAccess {
    match failure {
        Failure::Status { status: 401, message } => ApiAccess::Failed {
            message: format!("GitLab at `{base}` rejects the access token (401{})", if message.is_empty() { String::new() } else { format!(": {message}") }),
            help: "the token is unknown, revoked or expired; create a new one (User settings > Access tokens) with scope `read_api`".into(),
        },
        Failure::Status { status: 403, message } => ApiAccess::Failed {
            message: format!("GitLab at `{base}` refuses the access token (403{})", if message.is_empty() { String::new() } else { format!(": {message}") }),
            help: "give the token scope `read_api` (or `api`)".into(),
        },
        Failure::Redirect { status, location } => ApiAccess::Failed {
            message: format!("GitLab at `{base}` answers with a redirect ({status}) to `{location}`; the access token is not sent across a redirect"),
            help: format!("pass `--gitlab-url` with the address GitLab redirects to ({})", redirect_base(location)),
        },
        other => ApiAccess::Failed { message: format!("GitLab at `{base}`: {}", other.describe("the current user")), help: "check that GitLab runs and that `--gitlab-url` is its web address".into() },
    }
}

/// `scheme://host[:port]` of a redirect target.
fn redirect_base(location: &str) -> String {
    match url::Url::parse(location) {
        Ok(parsed) => {
            let host = parsed.host_str().unwrap_or_default();
            match parsed.port() {
                Some(port) => format!("`{}://{host}:{port}`", parsed.scheme()),
                None => format!("`{}://{host}`", parsed.scheme()),
            }
        }
        Err(_) => format!("`{location}`"),
    }
}

/// An HTTP client bound to one GitLab and one token.
struct Client {
    base: String,
    inner: reqwest::Client,
    token: Secret,
    deadline: Instant,
    timeout: Duration,
}

impl Client {
    fn new(base: &str, token: Secret, ca_file: Option<&PathBuf>, timeout: Duration, deadline: Instant) -> Result<Client, String> {
        let parsed = url::Url::parse(base).map_err(|error| format!("`{}` is not a URL: {error}", redact(base)))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(format!("`{}` is not an http:// or https:// URL", redact(base)));
        }

        // This host's CA bundle, plus the CAs given with `--ca-file`.
        let mut roots = crate::probe::view::ViewFiles::load(std::path::Path::new("/")).roots;
        if let Some(path) = ca_file {
            let bytes = std::fs::read(path).map_err(|error| format!("failed to read `--ca-file {}`: {error}", path.display()))?;
            let extra = crate::probe::view::parse_pem_certificates(&bytes);
            if extra.is_empty() {
                return Err(format!("`--ca-file {}` holds no PEM certificate", path.display()));
            }
            roots.extend(extra);
        }
        let mut store = rustls::RootCertStore::empty();
        let (_added, _ignored) = store.add_parsable_certificates(roots);
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|error| error.to_string())?
            .with_root_certificates(store)
            .with_no_client_auth();

        let inner = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(timeout)
            .timeout(timeout)
            .user_agent(concat!("ci-doctor/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|error| redact(&crate::gather::docker::error_chain(&error)))?;
        Ok(Client { base: base.trim_end_matches('/').to_string(), inner, token, deadline, timeout })
    }

    /// `GET /api/v4/version` without a token must answer 401 with GitLab's JSON message.
    async fn confirm_gitlab(&self) -> Result<(), ApiAccess> {
        let help = "check that `--gitlab-url` (or the `origin` remote) is GitLab's web address".to_string();
        match self.send("/version", false).await {
            Ok((401, _, body)) if serde_json::from_slice::<Value>(&body).is_ok_and(|json| json.get("message").is_some()) => Ok(()),
            Ok((status, Some(location), _)) if (300..400).contains(&status) => Err(access_failure(&self.base, &Failure::Redirect { status, location })),
            Ok((status, _, _)) => Err(ApiAccess::Failed {
                message: format!("`{}` does not answer like GitLab (`GET /api/v4/version` without a token answers {status}); the access token was not sent", self.base),
                help,
            }),
            Err(failure) => Err(ApiAccess::Failed { message: format!("GitLab at `{}`: {}; the access token was not sent", self.base, failure.describe("the version")), help }),
        }
    }

    async fn get_json(&self, path: &str) -> Result<Value, Failure> {
        match self.send(path, true).await? {
            (200, _, body) => serde_json::from_slice(&body).map_err(|_| Failure::InvalidJson),
            (status, Some(location), _) if (300..400).contains(&status) => Err(Failure::Redirect { status, location }),
            (status, _, body) => Err(Failure::Status { status, message: message_of(&body) }),
        }
    }

    async fn get_list(&self, path: &str) -> Result<Vec<Value>, Failure> {
        // TODO: only the first page (100 items) is read; projects with more waiting jobs or
        // runners are judged on those 100.
        match self.get_json(path).await? {
            Value::Array(items) => Ok(items),
            _ => Err(Failure::InvalidJson),
        }
    }

    /// The details (`GET /runners/:id`) of every runner in a list; a runner whose details fail
    /// keeps what the list said.
    async fn details(&self, list: &[Value]) -> Vec<ApiRunner> {
        let semaphore = tokio::sync::Semaphore::new(DETAIL_CONCURRENCY);
        let fetch = |summary: &Value| {
            let semaphore = &semaphore;
            let summary = summary.clone();
            async move {
                let _permit = semaphore.acquire().await;
                let id = summary["id"].as_u64()?;
                match self.get_json(&format!("/runners/{id}")).await.ok().as_ref().and_then(runner_details) {
                    Some(runner) => Some(runner),
                    None => runner_summary(&summary),
                }
            }
        };
        join_all(list.iter().map(fetch)).await.into_iter().flatten().collect()
    }

    /// Sends `GET <base>/api/v4<path>`, with the token when `with_token` is set, and reads the
    /// answer before the per-request limit or the run's deadline, whichever comes first.
    async fn send(&self, path: &str, with_token: bool) -> Result<(u16, Option<String>, Vec<u8>), Failure> {
        let mut request = self.inner.get(format!("{}/api/v4{path}", self.base));
        if with_token {
            request = request.header("PRIVATE-TOKEN", self.token.expose());
        }
        let limit = (Instant::now() + self.timeout).min(self.deadline);
        let exchange = async {
            let mut response = request.send().await.map_err(classify)?;
            let status = response.status().as_u16();
            let location = response.headers().get("location").and_then(|value| value.to_str().ok()).map(crate::secret::redact_url);
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(classify)? {
                body.extend_from_slice(&chunk);
                if body.len() > MAX_BODY {
                    return Err(Failure::Transport { message: "the answer is far larger than any GitLab API answer ci-doctor reads".into() });
                }
            }
            tracing::trace!(path, status, body = %redact(&String::from_utf8_lossy(&body)), "GitLab API answer");
            Ok((status, location, body))
        };
        match tokio::time::timeout_at(limit, exchange).await {
            Ok(result) => result,
            Err(_) => Err(Failure::TimedOut),
        }
    }
}

fn classify(error: reqwest::Error) -> Failure {
    if error.is_timeout() {
        return Failure::TimedOut;
    }
    Failure::Transport { message: redact(&crate::gather::docker::error_chain(&error)) }
}

fn message_of(body: &[u8]) -> String {
    let Ok(json) = serde_json::from_slice::<Value>(body) else { return String::new() };
    let text = match (json.get("message"), json.get("error")) {
        (Some(Value::String(message)), _) => message.clone(),
        (Some(other), _) => other.to_string(),
        (None, Some(Value::String(error))) => error.clone(),
        _ => String::new(),
    };
    redact(&text.chars().take(200).collect::<String>())
}

fn project_info(json: &Value) -> Option<ProjectInfo> {
    Some(ProjectInfo {
        id: json["id"].as_u64()?,
        path: json["path_with_namespace"].as_str().unwrap_or_default().to_string(),
        web_url: json["web_url"].as_str().unwrap_or_default().to_string(),
        default_branch: json["default_branch"].as_str().map(str::to_string),
        shared_runners_enabled: json["shared_runners_enabled"].as_bool().unwrap_or(true),
        group_runners_enabled: json["group_runners_enabled"].as_bool().unwrap_or(true),
    })
}

/// A runner from a list entry alone: tags and access level are unknown.
fn runner_summary(json: &Value) -> Option<ApiRunner> {
    Some(ApiRunner {
        id: json["id"].as_u64()?,
        description: json["description"].as_str().unwrap_or_default().to_string(),
        runner_type: json["runner_type"].as_str().unwrap_or_default().to_string(),
        paused: json["paused"].as_bool().unwrap_or_else(|| !json["active"].as_bool().unwrap_or(true)),
        status: json["status"].as_str().unwrap_or_default().to_string(),
        tag_list: Vec::new(),
        run_untagged: true,
        locked: false,
        access_level: "not_protected".into(),
        projects: Vec::new(),
        contacted_at: None,
        has_details: false,
    })
}

fn runner_details(json: &Value) -> Option<ApiRunner> {
    let mut runner = runner_summary(json)?;
    runner.tag_list = json["tag_list"].as_array().map(|tags| tags.iter().filter_map(|tag| tag.as_str().map(str::to_string)).collect()).unwrap_or_default();
    runner.run_untagged = json["run_untagged"].as_bool().unwrap_or(true);
    runner.locked = json["locked"].as_bool().unwrap_or(false);
    runner.access_level = json["access_level"].as_str().unwrap_or("not_protected").to_string();
    runner.projects = json["projects"].as_array().map(|projects| projects.iter().filter_map(|project| project["id"].as_u64()).collect()).unwrap_or_default();
    runner.contacted_at = json["contacted_at"].as_str().map(str::to_string);
    runner.has_details = true;
    Some(runner)
}

fn job(json: &Value) -> Option<ApiJob> {
    Some(ApiJob {
        id: json["id"].as_u64()?,
        name: json["name"].as_str().unwrap_or_default().to_string(),
        status: json["status"].as_str().unwrap_or_default().to_string(),
        stage: json["stage"].as_str().unwrap_or_default().to_string(),
        git_ref: json["ref"].as_str().unwrap_or_default().to_string(),
        is_tag: json["tag"].as_bool().unwrap_or(false),
        tag_list: json["tag_list"].as_array().map(|tags| tags.iter().filter_map(|tag| tag.as_str().map(str::to_string)).collect()).unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_paths_are_encoded() {
        assert_eq!(encode("web/near-sdk"), "web%2Fnear-sdk");
        assert_eq!(encode("31"), "31");
    }

    #[test]
    fn origin_project_is_not_used_for_another_gitlab() {
        let origin = Origin { base_url: "https://gitlab.example.test".into(), project_path: "web/app".into() };
        let input = Input { url: Some("http://127.0.0.1:8080".into()), origin: Some(origin.clone()), ..Input::default() };
        assert_eq!(input.project_ref(), None);
        let input = Input { origin: Some(origin), ..Input::default() };
        assert_eq!(input.project_ref().unwrap().id_or_path, "web/app");
        assert_eq!(input.early_target().unwrap().source, TargetSource::OriginRemote);
    }

    #[test]
    fn runner_details_fill_scheduling_fields() {
        let json = serde_json::json!({"id": 90, "description": "ec2-docker", "status": "online", "paused": false, "tag_list": ["docker", "aws"], "run_untagged": false, "access_level": "not_protected", "locked": false, "runner_type": "group_type", "projects": [{"id": 31}]});
        let runner = runner_details(&json).unwrap();
        assert_eq!(runner.tag_list, ["docker", "aws"]);
        assert!(!runner.run_untagged);
        assert_eq!(runner.projects, [31]);
        assert!(runner.has_details);
    }
}
