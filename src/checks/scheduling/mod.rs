//! Scheduling checks: why jobs of the project stay pending. Each check reports one kind of
//! [`Block`]. This module contains what they share: the skipped and ok notes, the grouping of
//! stuck jobs, and the exact commands of a remedy.

pub mod instance_runners;
pub mod protected;
pub mod runner_status;
pub mod tags;
pub mod untagged;

use crate::facts::Facts;
use crate::facts::gitlab::{ApiAccess, ApiRunner};
use crate::finding::{Finding, Status};
use crate::fix::Fix;
use crate::scheduling::{self, Block, Evaluation, JobOrigin, JobRequest, JobVerdict};

/// Jobs stuck for the same reasons under one check, and the runners those reasons block.
pub struct Group<'e> {
    pub jobs: Vec<&'e JobVerdict<'e>>,
    /// Each runner this check's condition blocks, with that block.
    pub blocked: Vec<(&'e ApiRunner, Block)>,
}

impl Group<'_> {
    /// "job `a`" or "jobs `a` and `b`".
    pub fn jobs_phrase(&self) -> String {
        let names: Vec<String> = self.jobs.iter().map(|verdict| format!("`{}`", verdict.job.name)).collect();
        match names.as_slice() {
            [one] => format!("job {one}"),
            [init @ .., last] => format!("jobs {} and {last}", init.join(", ")),
            [] => "no job".into(),
        }
    }

    pub fn is_plural(&self) -> bool {
        self.jobs.len() > 1
    }
}

/// The texts each scheduling check words its own way.
pub trait Wording {
    /// Builds the one-line message: which jobs wait, and which runners this condition keeps
    /// from them.
    fn message(&self, group: &Group, evaluation: &Evaluation) -> String;
    /// Builds the effect on the jobs.
    fn effect(&self, group: &Group) -> String;
    /// Builds the help line and the exact commands of the remedy.
    fn remedy(&self, group: &Group, evaluation: &Evaluation, api: &str) -> (String, Vec<String>);
    /// Builds the `ok` line, with the counts of jobs and runners judged.
    fn ok_message(&self, evaluation: &Evaluation) -> String;
}

/// Runs one scheduling check: skipped without the facts, an error for each group of stuck jobs
/// this check's condition holds back, or `ok`.
pub fn report(check: &'static str, wording: &dyn Wording, facts: &Facts, out: &mut Vec<Finding>) {
    let gitlab = &facts.gitlab;
    match &gitlab.access {
        ApiAccess::NotContacted { reason, enable } => {
            out.push(Finding::new(check, Status::Skipped, format!("{reason}; to check which runner may take the project's jobs, {enable}")));
            return;
        }
        ApiAccess::Failed { message, help } => {
            out.push(Finding::new(check, Status::Skipped, format!("{message}; {help}")));
            return;
        }
        ApiAccess::Reached { .. } => {}
    }
    if gitlab.project_ref.is_none() {
        out.push(Finding::new(check, Status::Skipped, "no project to check: pass `--project` with its path (`group/app`) or id, or run ci-doctor inside a checkout whose `origin` remote is on GitLab"));
        return;
    }
    if let Some(Err(message)) = &gitlab.project {
        out.push(Finding::new(check, Status::Skipped, message.clone()));
        return;
    }
    let evaluation = match scheduling::waiting_jobs(gitlab, &pipeline_jobs(facts)).and_then(|jobs| scheduling::evaluate(gitlab, jobs)) {
        Ok(evaluation) => evaluation,
        Err(unavailable) if unavailable.reason.contains("answered 403") => {
            out.push(Finding::new(check, Status::Skipped, format!("{}; listing a project's runners and jobs needs the Maintainer role in it", unavailable.reason)));
            return;
        }
        Err(unavailable) => {
            out.push(Finding::new(check, Status::Skipped, unavailable.reason));
            return;
        }
    };
    let api = gitlab.target.as_ref().map(|target| target.url.clone()).unwrap_or_default();

    let groups = groups(check, &evaluation);
    if groups.is_empty() {
        out.push(Finding::new(check, Status::Ok, wording.ok_message(&evaluation)));
        return;
    }
    for group in groups {
        let (help, commands) = wording.remedy(&group, &evaluation, &api);
        // Jobs GitLab already created are stuck now; jobs only in the pipeline file would be,
        // unless their `rules` keep them from running on this branch.
        let waiting_now = group.jobs.iter().any(|verdict| matches!(verdict.job.origin, JobOrigin::Api { .. }));
        let status = if waiting_now { Status::Error } else { Status::Warning };
        let mut finding = Finding::new(check, status, wording.message(&group, &evaluation)).effect(wording.effect(&group));
        for verdict in &group.jobs {
            finding = finding.evidence(table_line(verdict));
        }
        finding = finding.evidence(fallback_line(&evaluation)).help(help);
        if !commands.is_empty() {
            finding = finding.fix(Fix::commands("change the runner or project settings in GitLab", &commands));
        }
        out.push(finding);
    }
}

/// Converts the jobs of the pipeline file into requests on the checked-out branch (else the
/// project's default branch).
fn pipeline_jobs(facts: &Facts) -> Vec<JobRequest> {
    let Some(Ok(pipeline)) = facts.pipeline.as_ref().map(|fact| &fact.result) else { return Vec::new() };
    let default_branch = facts.gitlab.project().and_then(|project| project.default_branch.clone());
    let Some(git_ref) = facts.gitlab.current_branch.clone().or(default_branch) else { return Vec::new() };
    pipeline
        .jobs
        .iter()
        .map(|job| JobRequest { name: job.name.clone(), tags: job.tags.clone(), git_ref: git_ref.clone(), is_tag: false, origin: JobOrigin::PipelineFile })
        .collect()
}

/// Stuck jobs grouped by what this check's condition does to each runner.
fn groups<'e>(check: &str, evaluation: &'e Evaluation<'e>) -> Vec<Group<'e>> {
    let mut out: Vec<Group<'e>> = Vec::new();
    let mut keys: Vec<Vec<(u64, String)>> = Vec::new();
    for verdict in evaluation.jobs.iter().filter(|verdict| verdict.is_stuck()) {
        let blocked: Vec<(&ApiRunner, Block)> = verdict
            .runners
            .iter()
            .flat_map(|(candidate, blocks)| blocks.iter().filter(|block| block.check() == check).map(move |block| (candidate.runner, block.clone())))
            .collect();
        let no_runner = verdict.runners.is_empty() && check == no_runner_check(evaluation);
        if blocked.is_empty() && !no_runner {
            continue;
        }
        let mut key: Vec<(u64, String)> = blocked.iter().map(|(runner, block)| (runner.id, block.describe(&verdict.job))).collect();
        key.push((0, verdict.job.tags.join(",")));
        match keys.iter().position(|known| *known == key) {
            Some(at) => out[at].jobs.push(verdict),
            None => {
                keys.push(key);
                out.push(Group { jobs: vec![verdict], blocked });
            }
        }
    }
    out
}

/// Returns the check that reports jobs no runner at all may take: `scheduling.instance-runners` when the
/// project turned instance runners off, `scheduling.runner-status` otherwise.
pub fn no_runner_check(evaluation: &Evaluation) -> &'static str {
    if evaluation.shared_runners_enabled { "scheduling.runner-status" } else { "scheduling.instance-runners" }
}

/// "job `build` (#100, pending on `main`): runner 7 (`a`) lacks tag `gpu`; runner 8 (`b`) is paused".
fn table_line(verdict: &JobVerdict) -> String {
    if verdict.runners.is_empty() {
        return format!("{}: no runner is available to the project", verdict.job.describe());
    }
    let runners: Vec<String> = verdict
        .runners
        .iter()
        .map(|(candidate, blocks)| {
            let reasons: Vec<String> = blocks.iter().map(|block| block.describe(&verdict.job)).collect();
            format!("{} {}", candidate.runner.label(), reasons.join(" and "))
        })
        .collect();
    format!("{}: {}", verdict.job.describe(), runners.join("; "))
}

/// Describes what the project has beyond its own runners.
fn fallback_line(evaluation: &Evaluation) -> String {
    let instance = evaluation.candidates.iter().filter(|candidate| candidate.runner.is_instance()).count();
    if !evaluation.shared_runners_enabled && evaluation.instance_runners_unknown {
        return format!("project `{}` turned instance runners off; listing them needs an administrator's token, so they are not judged here", evaluation.project);
    }
    if !evaluation.shared_runners_enabled {
        return format!("project `{}` turned instance runners off", evaluation.project);
    }
    match instance {
        0 => format!("no instance runners are available to project `{}` to fall back on", evaluation.project),
        1 => "1 instance runner is available to the project".into(),
        count => format!("{count} instance runners are available to the project"),
    }
}

/// `runner 90 (`ec2-docker`, tags `docker, aws`)`.
pub fn runner_with_tags(runner: &ApiRunner) -> String {
    let tags = if runner.tag_list.is_empty() { "no tags".to_string() } else { format!("tags `{}`", runner.tag_list.join(", ")) };
    if runner.description.is_empty() { format!("runner {} ({tags})", runner.id) } else { format!("runner {} (`{}`, {tags})", runner.id, runner.description) }
}

/// "runner 90 (...)" or "runners 90 (...) and 91 (...)", each runner once.
pub fn runners_phrase(group: &Group, label: fn(&ApiRunner) -> String) -> String {
    let mut seen: Vec<u64> = Vec::new();
    let mut labels: Vec<String> = Vec::new();
    for (runner, _) in &group.blocked {
        if !seen.contains(&runner.id) {
            seen.push(runner.id);
            labels.push(label(runner));
        }
    }
    match labels.as_slice() {
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
        [] => "no runner".into(),
    }
}

/// Builds a `curl` command that changes a setting through the API. The command reads the token
/// from `GITLAB_TOKEN`, so it never appears in the output.
pub fn api_command(method: &str, api: &str, path: &str, data: &str) -> String {
    format!("curl --request {method} --header \"PRIVATE-TOKEN: $GITLAB_TOKEN\" --data \"{data}\" \"{}/api/v4{path}\"", api.trim_end_matches('/'))
}

/// Counts the waiting jobs and runners judged, for the `ok` lines.
pub fn counts(evaluation: &Evaluation) -> String {
    let jobs = evaluation.jobs.len();
    let runners = evaluation.candidates.len();
    let job_noun = if jobs == 1 { "waiting job" } else { "waiting jobs" };
    let runner_noun = if runners == 1 { "runner" } else { "runners" };
    format!("{jobs} {job_noun} of project `{}`, {runners} {runner_noun}", evaluation.project)
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Facts of a project with runners and jobs, for the scheduling checks' unit tests.

    use crate::facts::Facts;
    use crate::facts::gitlab::{ApiAccess, ApiJob, ApiRunner, ApiTarget, ProjectInfo, ProjectRef, TargetSource};
    use crate::finding::Finding;

    pub fn runner(id: u64, tags: &[&str]) -> ApiRunner {
        ApiRunner {
            id,
            description: format!("runner-{id}"),
            runner_type: "project_type".into(),
            paused: false,
            status: "online".into(),
            tag_list: tags.iter().map(|tag| tag.to_string()).collect(),
            run_untagged: true,
            locked: false,
            access_level: "not_protected".into(),
            projects: vec![31],
            contacted_at: None,
            has_details: true,
        }
    }

    pub fn job(id: u64, name: &str, tags: &[&str], git_ref: &str) -> ApiJob {
        ApiJob { id, name: name.into(), status: "pending".into(), stage: "test".into(), git_ref: git_ref.into(), is_tag: false, tag_list: tags.iter().map(|tag| tag.to_string()).collect() }
    }

    pub fn facts(runners: Vec<ApiRunner>, jobs: Vec<ApiJob>) -> Facts {
        let mut facts = Facts::default();
        facts.gitlab.access = ApiAccess::Reached { username: "root".into(), is_admin: true };
        facts.gitlab.target = Some(ApiTarget { url: "https://gitlab.example.test".into(), source: TargetSource::Flag });
        facts.gitlab.project_ref = Some(ProjectRef { id_or_path: "web/near-sdk".into(), from_flag: true });
        facts.gitlab.project = Some(Ok(ProjectInfo { id: 31, path: "web/near-sdk".into(), web_url: String::new(), default_branch: Some("main".into()), shared_runners_enabled: true, group_runners_enabled: true }));
        facts.gitlab.runners = Some(Ok(runners));
        facts.gitlab.jobs = Some(Ok(jobs));
        facts.gitlab.protected_branches = Some(Ok(vec!["main".into()]));
        facts
    }

    /// Runs every scheduling check and returns the findings that are problems.
    pub fn problems(facts: &Facts) -> Vec<Finding> {
        let mut out = Vec::new();
        for check in crate::checks::CHECKS.iter().filter(|check| check.id().starts_with("scheduling.")) {
            check.run(facts, &mut out);
        }
        out.into_iter().filter(|finding| finding.status.is_problem()).collect()
    }
}
