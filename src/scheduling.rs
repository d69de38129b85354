//! Which runner may take which job: GitLab's matching rules applied to the facts read from its
//! API, for every job that waits and every runner that could take it.
//!
//! GitLab gives a job to a runner only when the runner is available to the project: assigned to
//! it, to its group, or an instance runner the project allows. The runner must also be unpaused,
//! poll for jobs, and carry every tag of the job (or run untagged jobs, for a job without tags).
//! A runner that takes protected refs only needs the job's ref to be protected. Each condition
//! that fails is a [`Block`], which one `scheduling.*` check reports.

use crate::facts::gitlab::{ApiJob, ApiRunner, GitLabFacts, LookupResult};

/// A job that needs a runner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRequest {
    pub name: String,
    pub tags: Vec<String>,
    /// The branch or tag the job runs for.
    pub git_ref: String,
    pub is_tag: bool,
    pub origin: JobOrigin,
}

/// The source of a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobOrigin {
    /// A job GitLab already created, waiting with `status` (`pending`, or `created` in a later
    /// stage).
    Api { id: u64, status: String },
    /// A job of the pipeline file, as it would run on the checked-out branch.
    PipelineFile,
}

impl JobRequest {
    /// Converts a job from the API's list.
    pub fn from_api(job: &ApiJob) -> JobRequest {
        JobRequest {
            name: job.name.clone(),
            tags: job.tag_list.clone(),
            git_ref: job.git_ref.clone(),
            is_tag: job.is_tag,
            origin: JobOrigin::Api { id: job.id, status: job.status.clone() },
        }
    }

    /// "job `build` (#100, pending on `main`)".
    pub fn describe(&self) -> String {
        match &self.origin {
            JobOrigin::Api { id, status } => format!("job `{}` (#{id}, {status} on `{}`)", self.name, self.git_ref),
            JobOrigin::PipelineFile => format!("job `{}` of the pipeline file (on `{}`)", self.name, self.git_ref),
        }
    }
}

/// One reason a runner does not take a job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Block {
    Paused,
    /// `offline`, `stale` or `never_contacted`.
    NotPolling { status: String, contacted_at: Option<String> },
    /// A runner of this host that exists in GitLab but is not available to the project.
    NotInProject { runner_type: String, locked: bool, projects: Vec<u64> },
    /// Job tags the runner does not carry.
    MissingTags(Vec<String>),
    /// The job has no tags and the runner has `run_untagged = false`.
    Untagged,
    /// The runner takes jobs of protected refs only, and the job's branch is not protected.
    ProtectedOnly,
    /// An instance runner, and the project turned instance runners off.
    InstanceRunnersOff,
}

impl Block {
    /// Returns the id of the check that reports this block.
    pub fn check(&self) -> &'static str {
        match self {
            Block::Paused | Block::NotPolling { .. } | Block::NotInProject { .. } => "scheduling.runner-status",
            Block::MissingTags(_) => "scheduling.tags",
            Block::Untagged => "scheduling.untagged",
            Block::ProtectedOnly => "scheduling.protected",
            Block::InstanceRunnersOff => "scheduling.instance-runners",
        }
    }

    /// Describes what keeps the runner from the job, completing "runner 90 (`x`) ...".
    pub fn describe(&self, job: &JobRequest) -> String {
        match self {
            Block::Paused => "is paused".into(),
            Block::NotPolling { status, contacted_at } => {
                let since = contacted_at.as_deref().map(|at| format!(" (last contact {at})")).unwrap_or_default();
                match status.as_str() {
                    "never_contacted" => "has never contacted GitLab".into(),
                    "stale" => format!("is stale: it has not contacted GitLab for over a week{since}"),
                    other => format!("is {other}{since}"),
                }
            }
            Block::NotInProject { runner_type, locked, projects } => match runner_type.as_str() {
                "project_type" if *locked => format!("is locked to {}", project_list(projects)),
                "project_type" => format!("is assigned to {}, not to this project", project_list(projects)),
                "group_type" => "belongs to a group this project is not in".into(),
                _ => "is not available to this project".into(),
            },
            Block::MissingTags(missing) => {
                let noun = if missing.len() == 1 { "tag" } else { "tags" };
                format!("lacks {noun} {}", code_list(missing))
            }
            Block::Untagged => "has `run_untagged = false`".into(),
            Block::ProtectedOnly => format!("takes jobs of protected branches only (`access_level = ref_protected`), and `{}` is not protected", job.git_ref),
            Block::InstanceRunnersOff => "is an instance runner, and the project turned instance runners off".into(),
        }
    }
}

fn project_list(projects: &[u64]) -> String {
    match projects {
        [] => "no project".into(),
        [one] => format!("project {one}"),
        many => format!("projects {}", many.iter().map(u64::to_string).collect::<Vec<_>>().join(", ")),
    }
}

/// `` `a`, `b` ``.
pub fn code_list(items: &[String]) -> String {
    items.iter().map(|item| format!("`{item}`")).collect::<Vec<_>>().join(", ")
}

/// The way a candidate runner relates to the project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Availability {
    /// Listed by `GET /projects/:id/runners`.
    Project,
    /// An instance runner the project turned off.
    InstanceOff,
    /// A runner of this host's `config.toml` that is not available to the project.
    Elsewhere,
}

/// A runner that could take the project's jobs.
#[derive(Debug, Clone)]
pub struct Candidate<'a> {
    pub runner: &'a ApiRunner,
    pub availability: Availability,
}

/// The verdict for one job: every candidate with what blocks it.
#[derive(Debug, Clone)]
pub struct JobVerdict<'a> {
    pub job: JobRequest,
    pub runners: Vec<(Candidate<'a>, Vec<Block>)>,
}

impl JobVerdict<'_> {
    /// Returns true when no runner may take the job.
    pub fn is_stuck(&self) -> bool {
        self.runners.iter().all(|(_, blocks)| !blocks.is_empty())
    }
}

/// The verdicts of every waiting job against every candidate runner.
#[derive(Debug, Clone)]
pub struct Evaluation<'a> {
    pub project: String,
    pub candidates: Vec<Candidate<'a>>,
    pub jobs: Vec<JobVerdict<'a>>,
    /// The project turned instance runners off and ci-doctor could not list them (that needs
    /// an administrator's token), so a runner that would take a job may be missing here.
    pub instance_runners_unknown: bool,
    pub shared_runners_enabled: bool,
}

/// The reason the scheduling checks cannot judge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable {
    pub reason: String,
}

/// Collects the jobs to judge: the jobs GitLab lists as waiting, then the jobs of `pipeline`
/// whose names are not among them (a listed job is the same job, already created).
pub fn waiting_jobs(gitlab: &GitLabFacts, pipeline: &[JobRequest]) -> Result<Vec<JobRequest>, Unavailable> {
    let listed = match &gitlab.jobs {
        Some(Ok(jobs)) => jobs,
        Some(Err(message)) => return Err(Unavailable { reason: message.clone() }),
        None => return Err(Unavailable { reason: "the project's jobs were not read".into() }),
    };
    // GitLab lists the newest first; the oldest first reads in pipeline order.
    let mut listed: Vec<&ApiJob> = listed.iter().collect();
    listed.sort_by_key(|job| job.id);
    let mut jobs: Vec<JobRequest> = listed.into_iter().map(JobRequest::from_api).collect();
    for job in pipeline {
        if !jobs.iter().any(|known| known.name == job.name) {
            jobs.push(job.clone());
        }
    }
    Ok(jobs)
}

/// Judges `jobs` against the runners GitLab reported for the project.
pub fn evaluate<'a>(gitlab: &'a GitLabFacts, jobs: Vec<JobRequest>) -> Result<Evaluation<'a>, Unavailable> {
    let project = match &gitlab.project {
        Some(Ok(project)) => project,
        Some(Err(message)) => return Err(Unavailable { reason: message.clone() }),
        None => return Err(Unavailable { reason: "no project was read".into() }),
    };
    let listed = match &gitlab.runners {
        Some(Ok(runners)) => runners,
        Some(Err(message)) => return Err(Unavailable { reason: message.clone() }),
        None => return Err(Unavailable { reason: "the project's runners were not read".into() }),
    };
    let protected: &[String] = match &gitlab.protected_branches {
        Some(Ok(branches)) => branches,
        _ => &[],
    };

    let mut candidates: Vec<Candidate> = listed.iter().map(|runner| Candidate { runner, availability: Availability::Project }).collect();
    let mut instance_runners_unknown = false;
    match &gitlab.instance_runners {
        Some(Ok(instance)) => {
            for runner in instance {
                if !candidates.iter().any(|known| known.runner.id == runner.id) {
                    candidates.push(Candidate { runner, availability: Availability::InstanceOff });
                }
            }
        }
        Some(Err(_)) => instance_runners_unknown = true,
        None => {}
    }
    for lookup in &gitlab.config_runners {
        if let LookupResult::Found(runner) = &lookup.result
            && !candidates.iter().any(|known| known.runner.id == runner.id)
        {
            let availability = if runner.is_instance() && !project.shared_runners_enabled { Availability::InstanceOff } else { Availability::Elsewhere };
            candidates.push(Candidate { runner, availability });
        }
    }

    let verdicts = jobs
        .into_iter()
        .map(|job| {
            let runners = candidates.iter().map(|candidate| (candidate.clone(), blocks(&job, candidate, protected))).collect();
            JobVerdict { job, runners }
        })
        .collect();
    Ok(Evaluation { project: project.path.clone(), candidates, jobs: verdicts, instance_runners_unknown, shared_runners_enabled: project.shared_runners_enabled })
}

/// Everything that keeps `candidate` from taking `job`.
pub fn blocks(job: &JobRequest, candidate: &Candidate, protected: &[String]) -> Vec<Block> {
    let runner = candidate.runner;
    let mut out = Vec::new();
    match candidate.availability {
        Availability::Project => {}
        Availability::InstanceOff => out.push(Block::InstanceRunnersOff),
        Availability::Elsewhere => out.push(Block::NotInProject { runner_type: runner.runner_type.clone(), locked: runner.locked, projects: runner.projects.clone() }),
    }
    if runner.paused {
        out.push(Block::Paused);
    }
    if matches!(runner.status.as_str(), "offline" | "stale" | "never_contacted") {
        out.push(Block::NotPolling { status: runner.status.clone(), contacted_at: runner.contacted_at.clone() });
    }

    // Without the runner's details, its tags and access level are unknown; nothing is claimed.
    if runner.has_details {
        if job.tags.is_empty() {
            if !runner.run_untagged {
                out.push(Block::Untagged);
            }
        } else {
            let missing: Vec<String> = job.tags.iter().filter(|tag| !runner.tag_list.contains(tag)).cloned().collect();
            if !missing.is_empty() {
                out.push(Block::MissingTags(missing));
            }
        }
        // TODO: protected tags are not read, so a job for a tag is never blocked here.
        if runner.is_protected_only() && !job.is_tag && !is_protected(&job.git_ref, protected) {
            out.push(Block::ProtectedOnly);
        }
    }
    out
}

/// Returns true when `branch` matches a protected branch name or wildcard pattern (`release/*`).
pub fn is_protected(branch: &str, patterns: &[String]) -> bool {
    patterns.iter().any(|pattern| wildcard_match(pattern, branch))
}

/// Matches `*` as any run of characters, as GitLab's protected branch wildcards do.
fn wildcard_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || !text[first.len()..].ends_with(last) || text.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn runner(id: u64) -> ApiRunner {
        ApiRunner {
            id,
            description: format!("runner-{id}"),
            runner_type: "project_type".into(),
            paused: false,
            status: "online".into(),
            tag_list: Vec::new(),
            run_untagged: true,
            locked: false,
            access_level: "not_protected".into(),
            projects: vec![31],
            contacted_at: None,
            has_details: true,
        }
    }

    fn job(tags: &[&str], git_ref: &str) -> JobRequest {
        JobRequest { name: "build".into(), tags: tags.iter().map(|tag| tag.to_string()).collect(), git_ref: git_ref.into(), is_tag: false, origin: JobOrigin::PipelineFile }
    }

    fn blocks_of(job: &JobRequest, runner: &ApiRunner) -> Vec<Block> {
        blocks(job, &Candidate { runner, availability: Availability::Project }, &["main".into(), "release/*".into()])
    }

    #[test]
    fn matching_runner_has_no_block() {
        let mut docker = runner(1);
        docker.tag_list = vec!["docker".into(), "linux".into()];
        assert!(blocks_of(&job(&["docker"], "main"), &docker).is_empty());
        assert!(blocks_of(&job(&[], "feature"), &docker).is_empty());
    }

    #[test]
    fn each_condition_is_its_own_block() {
        let mut picky = runner(2);
        picky.tag_list = vec!["docker".into()];
        picky.run_untagged = false;
        picky.access_level = "ref_protected".into();
        picky.paused = true;
        assert_eq!(blocks_of(&job(&[], "main"), &picky), [Block::Paused, Block::Untagged]);
        assert_eq!(blocks_of(&job(&["gpu", "docker"], "feature"), &picky), [Block::Paused, Block::MissingTags(vec!["gpu".into()]), Block::ProtectedOnly]);
        assert!(!blocks_of(&job(&["docker"], "release/1.2"), &picky).contains(&Block::ProtectedOnly));
    }

    #[test]
    fn wildcards_match_like_gitlab() {
        let patterns = vec!["release/*".to_string(), "*-stable".to_string(), "main".to_string()];
        assert!(is_protected("release/1.0", &patterns));
        assert!(is_protected("17-5-stable", &patterns));
        assert!(is_protected("main", &patterns));
        assert!(!is_protected("mainline", &patterns));
        assert!(!is_protected("feature/release", &patterns));
    }
}
