//! `scheduling.protected`: jobs on unprotected branches wait because the runners that could take
//! them take jobs of protected branches only.

use super::{Group, Wording, api_command, counts, runners_phrase};
use crate::checks::Check;
use crate::facts::Facts;
use crate::facts::gitlab::ApiRunner;
use crate::finding::Finding;
use crate::scheduling::Evaluation;

pub struct Protected;

impl Check for Protected {
    fn id(&self) -> &'static str {
        "scheduling.protected"
    }

    fn summary(&self) -> &'static str {
        "jobs of unprotected branches have a runner that takes them (`access_level`)"
    }

    fn explanation(&self) -> &'static str {
        include_str!("../../../checks/scheduling.protected.md")
    }

    fn run(&self, facts: &Facts, out: &mut Vec<Finding>) {
        super::report(self.id(), self, facts, out);
    }
}

impl Wording for Protected {
    fn message(&self, group: &Group, _evaluation: &Evaluation) -> String {
        let branch = group.jobs.first().map(|verdict| verdict.job.git_ref.clone()).unwrap_or_default();
        let run = if group.is_plural() { "run" } else { "runs" };
        let take = if group.blocked.len() == 1 { "takes" } else { "take" };
        format!(
            "{} {run} on unprotected branch `{branch}`, and {} {take} jobs of protected branches only (`access_level = ref_protected`)",
            group.jobs_phrase(),
            runners_phrase(group, ApiRunner::label)
        )
    }

    fn effect(&self, group: &Group) -> String {
        let stay = if group.is_plural() { "they stay" } else { "it stays" };
        format!("a protected runner never takes a job of an unprotected branch, so {stay} pending")
    }

    fn remedy(&self, group: &Group, _evaluation: &Evaluation, api: &str) -> (String, Vec<String>) {
        let branch = group.jobs.first().map(|verdict| verdict.job.git_ref.clone()).unwrap_or_default();
        let Some((runner, _)) = group.blocked.first() else { return ("register a runner for the project".into(), Vec::new()) };
        let help = format!(
            "protect branch `{branch}` (Settings > Repository > Protected branches) if its jobs may use protected runners, or let runner {} take jobs of every branch (the command below); a protected runner often holds deployment secrets, so decide which",
            runner.id
        );
        (help, vec![api_command("PUT", api, &format!("/runners/{}", runner.id), "access_level=not_protected")])
    }

    fn ok_message(&self, evaluation: &Evaluation) -> String {
        format!("no waiting job is held back by a protected runner ({})", counts(evaluation))
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{facts, job, problems, runner};

    #[test]
    fn protected_runner_and_feature_branch() {
        let mut protected = runner(5, &[]);
        protected.access_level = "ref_protected".into();
        let facts = facts(vec![protected], vec![job(100, "build", &[], "feature-x"), job(101, "build", &[], "main")]);
        let found = problems(&facts);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0].check, "scheduling.protected");
        assert_eq!(found[0].message, "job `build` runs on unprotected branch `feature-x`, and runner 5 (`runner-5`) takes jobs of protected branches only (`access_level = ref_protected`)");
    }
}
