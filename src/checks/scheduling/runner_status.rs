//! `scheduling.runner-status`: jobs wait because the runners that could take them are paused,
//! not polling GitLab, or not available to the project.

use super::{Group, Wording, api_command, counts};
use crate::checks::Check;
use crate::facts::Facts;
use crate::finding::Finding;
use crate::scheduling::{Block, Evaluation};

pub struct RunnerStatus;

impl Check for RunnerStatus {
    fn id(&self) -> &'static str {
        "scheduling.runner-status"
    }

    fn summary(&self) -> &'static str {
        "the runners that could take waiting jobs are unpaused, online and available to the project"
    }

    fn explanation(&self) -> &'static str {
        include_str!("../../../checks/scheduling.runner-status.md")
    }

    fn run(&self, facts: &Facts, out: &mut Vec<Finding>) {
        super::report(self.id(), self, facts, out);
    }
}

impl Wording for RunnerStatus {
    fn message(&self, group: &Group, evaluation: &Evaluation) -> String {
        let wait = if group.is_plural() { "wait" } else { "waits" };
        if group.blocked.is_empty() {
            return format!("no runner is available to project `{}`, so {} {wait}", evaluation.project, group.jobs_phrase());
        }
        let Some(first) = group.jobs.first() else { return String::new() };
        let reasons: Vec<String> = group.blocked.iter().map(|(runner, block)| format!("{} {}", runner.label(), block.describe(&first.job))).collect();
        format!("{} {wait}: {}", group.jobs_phrase(), reasons.join("; "))
    }

    fn effect(&self, group: &Group) -> String {
        let stay = if group.is_plural() { "they stay" } else { "it stays" };
        format!("GitLab hands jobs only to unpaused runners that poll it and are available to the project, so {stay} pending")
    }

    fn remedy(&self, group: &Group, evaluation: &Evaluation, api: &str) -> (String, Vec<String>) {
        if group.blocked.is_empty() {
            return ("register a runner for the project (Settings > CI/CD > Runners > New project runner)".into(), Vec::new());
        }
        let mut steps = Vec::new();
        let mut commands = Vec::new();
        let project = url::form_urlencoded::byte_serialize(evaluation.project.as_bytes()).collect::<String>();
        for (runner, block) in &group.blocked {
            match block {
                Block::Paused => {
                    steps.push(format!("resume runner {}", runner.id));
                    commands.push(api_command("PUT", api, &format!("/runners/{}", runner.id), "paused=false"));
                }
                Block::NotPolling { .. } => steps.push(format!("start runner {} and check that it reaches GitLab (`gitlab-runner verify` on its host)", runner.id)),
                Block::NotInProject { runner_type, locked, .. } if runner_type == "project_type" => {
                    if *locked {
                        steps.push(format!("unlock runner {} and enable it for the project", runner.id));
                        commands.push(api_command("PUT", api, &format!("/runners/{}", runner.id), "locked=false"));
                    } else {
                        steps.push(format!("enable runner {} for the project", runner.id));
                    }
                    commands.push(api_command("POST", api, &format!("/projects/{project}/runners"), &format!("runner_id={}", runner.id)));
                }
                Block::NotInProject { .. } => steps.push(format!("make runner {} available to the project, or register one for it", runner.id)),
                _ => {}
            }
        }
        steps.dedup();
        (steps.join("; "), commands)
    }

    fn ok_message(&self, evaluation: &Evaluation) -> String {
        format!("no waiting job is held back by a paused, offline or unavailable runner ({})", counts(evaluation))
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{facts, job, problems, runner};
    use crate::facts::gitlab::{LookupResult, RunnerLookup};
    use crate::finding::Status;

    #[test]
    fn paused_and_never_contacted_runners() {
        let mut paused = runner(4, &[]);
        paused.paused = true;
        let mut fresh = runner(6, &[]);
        fresh.status = "never_contacted".into();
        let found = problems(&facts(vec![paused, fresh], vec![job(100, "build", &[], "main")]));
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0].check, "scheduling.runner-status");
        assert_eq!(found[0].message, "job `build` waits: runner 4 (`runner-4`) is paused; runner 6 (`runner-6`) has never contacted GitLab");
        assert!(format!("{:?}", found[0].fix).contains("paused=false"));
    }

    #[test]
    fn runner_of_this_host_locked_to_another_project() {
        let mut facts = facts(vec![], vec![job(100, "build", &[], "main")]);
        let mut elsewhere = runner(12, &[]);
        elsewhere.locked = true;
        elsewhere.projects = vec![77];
        facts.gitlab.config_runners = vec![RunnerLookup { runner: 0, entry: 0, id: 12, result: LookupResult::Found(elsewhere) }];
        let found = problems(&facts);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0].message, "job `build` waits: runner 12 (`runner-12`) is locked to project 77");
        let fix = format!("{:?}", found[0].fix);
        assert!(fix.contains("locked=false") && fix.contains("runner_id=12"), "{fix}");
    }

    #[test]
    fn job_with_two_reasons_reports_both() {
        let mut paused = runner(4, &["docker"]);
        paused.paused = true;
        let found = problems(&facts(vec![paused], vec![job(100, "build", &["gpu"], "main")]));
        let checks: Vec<&str> = found.iter().map(|finding| finding.check).collect();
        assert_eq!(checks, ["scheduling.tags", "scheduling.runner-status"], "{found:#?}");
        for finding in &found {
            assert_eq!(finding.status, Status::Error);
            assert!(finding.evidence[0].contains("runner 4 (`runner-4`) is paused and lacks tag `gpu`"), "{:#?}", finding.evidence);
        }
    }

    #[test]
    fn no_runner_at_all() {
        let found = problems(&facts(vec![], vec![job(100, "build", &[], "main")]));
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0].message, "no runner is available to project `web/near-sdk`, so job `build` waits");
    }

    #[test]
    fn without_token_every_scheduling_check_is_skipped() {
        let facts = crate::facts::Facts::default();
        let mut out = Vec::new();
        for check in crate::checks::CHECKS.iter().filter(|check| check.id().starts_with("scheduling.")) {
            check.run(&facts, &mut out);
        }
        assert_eq!(out.len(), 5);
        for finding in out {
            assert_eq!(finding.status, Status::Skipped);
            assert!(finding.message.contains("`--gitlab-token`") && finding.message.contains("`read_api`"), "{}", finding.message);
        }
    }
}
