//! `scheduling.untagged`: jobs without `tags` wait because the runners that could take them
//! have `run_untagged = false`.

use super::{Group, Wording, api_command, counts, runner_with_tags, runners_phrase};
use crate::checks::Check;
use crate::facts::Facts;
use crate::finding::Finding;
use crate::scheduling::Evaluation;

pub struct Untagged;

impl Check for Untagged {
    fn id(&self) -> &'static str {
        "scheduling.untagged"
    }

    fn summary(&self) -> &'static str {
        "untagged jobs have a runner that runs untagged jobs (`run_untagged`)"
    }

    fn explanation(&self) -> &'static str {
        include_str!("../../../checks/scheduling.untagged.md")
    }

    fn run(&self, facts: &Facts, out: &mut Vec<Finding>) {
        super::report(self.id(), self, facts, out);
    }
}

impl Wording for Untagged {
    fn message(&self, group: &Group, evaluation: &Evaluation) -> String {
        let have = if group.is_plural() { "have" } else { "has" };
        let runners = runners_phrase(group, runner_with_tags);
        if evaluation.candidates.len() == 1 {
            format!("{} {have} no `tags`, and the only runner available to project `{}`, {runners}, has `run_untagged = false`", group.jobs_phrase(), evaluation.project)
        } else {
            let has = if group.blocked.len() == 1 { "has" } else { "have" };
            format!("{} {have} no `tags`, and {runners} {has} `run_untagged = false`", group.jobs_phrase())
        }
    }

    fn effect(&self, group: &Group) -> String {
        let (them, stay) = if group.is_plural() { ("them", "they stay") } else { ("it", "it stays") };
        format!("a runner with `run_untagged = false` takes only jobs with tags, so it never picks {them} up and {stay} pending")
    }

    fn remedy(&self, group: &Group, _evaluation: &Evaluation, api: &str) -> (String, Vec<String>) {
        let Some((runner, _)) = group.blocked.first() else { return ("register a runner for the project".into(), Vec::new()) };
        let tags = match runner.tag_list.first() {
            Some(tag) => format!("add `tags: [{tag}]` to the jobs"),
            None => "give the jobs tags the runner carries".into(),
        };
        let help = format!("turn on \"Run untagged jobs\" for runner {} (its settings page in GitLab, or the command below), or {tags}", runner.id);
        (help, vec![api_command("PUT", api, &format!("/runners/{}", runner.id), "run_untagged=true")])
    }

    fn ok_message(&self, evaluation: &Evaluation) -> String {
        format!("no waiting job is held back by `run_untagged` ({})", counts(evaluation))
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{facts, job, problems, runner};
    use crate::finding::Status;

    #[test]
    fn untagged_jobs_and_the_only_runner_refusing_them() {
        let mut picky = runner(90, &["docker", "aws"]);
        picky.description = "ec2-docker".into();
        picky.run_untagged = false;
        picky.runner_type = "group_type".into();
        let facts = facts(vec![picky], vec![job(9100, "install", &[], "main"), job(9101, "unit-tests", &[], "main")]);
        let found = problems(&facts);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0].check, "scheduling.untagged");
        assert_eq!(found[0].status, Status::Error);
        assert_eq!(
            found[0].message,
            "jobs `install` and `unit-tests` have no `tags`, and the only runner available to project `web/near-sdk`, runner 90 (`ec2-docker`, tags `docker, aws`), has `run_untagged = false`"
        );
        assert!(found[0].evidence.iter().any(|line| line == "no instance runners are available to project `web/near-sdk` to fall back on"), "{:#?}", found[0].evidence);
        let command = format!("{:?}", found[0].fix);
        assert!(command.contains("run_untagged=true") && command.contains("/api/v4/runners/90"), "{command}");
    }
}
