//! `scheduling.tags`: jobs wait because no runner available to the project carries all their
//! tags.

use super::{Group, Wording, api_command, counts};
use crate::checks::Check;
use crate::facts::Facts;
use crate::facts::gitlab::ApiRunner;
use crate::finding::Finding;
use crate::scheduling::{Block, Evaluation, code_list};

pub struct Tags;

impl Check for Tags {
    fn id(&self) -> &'static str {
        "scheduling.tags"
    }

    fn summary(&self) -> &'static str {
        "each tagged job has a runner that carries all its tags"
    }

    fn explanation(&self) -> &'static str {
        include_str!("../../../checks/scheduling.tags.md")
    }

    fn run(&self, facts: &Facts, out: &mut Vec<Finding>) {
        super::report(self.id(), self, facts, out);
    }
}

impl Wording for Tags {
    fn message(&self, group: &Group, _evaluation: &Evaluation) -> String {
        let tags = group.jobs.first().map(|verdict| code_list(&verdict.job.tags)).unwrap_or_default();
        let need = if group.is_plural() { "need" } else { "needs" };
        let lacking: Vec<String> = group
            .blocked
            .iter()
            .map(|(runner, block)| format!("{} {}", runner.label(), group.jobs.first().map(|verdict| block.describe(&verdict.job)).unwrap_or_default()))
            .collect();
        format!("{} {need} tags {tags}: {}", group.jobs_phrase(), lacking.join("; "))
    }

    fn effect(&self, group: &Group) -> String {
        let (them, stay) = if group.is_plural() { ("them", "they stay") } else { ("it", "it stays") };
        format!("GitLab gives a job only to a runner that carries every tag of the job, so no runner picks {them} up and {stay} pending")
    }

    fn remedy(&self, group: &Group, _evaluation: &Evaluation, api: &str) -> (String, Vec<String>) {
        // The runner that lacks the fewest tags needs the smallest change.
        let closest = group.blocked.iter().min_by_key(|(_, block)| match block {
            Block::MissingTags(missing) => missing.len(),
            _ => usize::MAX,
        });
        let Some((runner, Block::MissingTags(missing))) = closest else { return ("register a runner with the jobs' tags".into(), Vec::new()) };
        let mut all: Vec<String> = runner.tag_list.clone();
        all.extend(missing.iter().cloned());
        let help = format!(
            "add {} to {} (the command below sets its whole tag list), or remove {} from the jobs' `tags`",
            code_list(missing),
            label(runner),
            code_list(missing)
        );
        (help, vec![api_command("PUT", api, &format!("/runners/{}", runner.id), &format!("tag_list={}", all.join(",")))])
    }

    fn ok_message(&self, evaluation: &Evaluation) -> String {
        format!("no waiting job is held back by its tags ({})", counts(evaluation))
    }
}

fn label(runner: &ApiRunner) -> String {
    runner.label()
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{facts, job, problems, runner};

    #[test]
    fn missing_tag_names_each_runner() {
        let facts = facts(vec![runner(7, &["docker"]), runner(8, &["windows"])], vec![job(100, "build", &["docker", "gpu"], "main")]);
        let found = problems(&facts);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0].check, "scheduling.tags");
        assert_eq!(found[0].message, "job `build` needs tags `docker`, `gpu`: runner 7 (`runner-7`) lacks tag `gpu`; runner 8 (`runner-8`) lacks tags `docker`, `gpu`");
        let fix = format!("{:?}", found[0].fix);
        assert!(fix.contains("tag_list=docker,gpu") && fix.contains("/runners/7"), "{fix}");
    }

    #[test]
    fn job_with_a_matching_runner_is_fine() {
        let facts = facts(vec![runner(7, &["docker"]), runner(8, &["docker", "gpu"])], vec![job(100, "build", &["docker", "gpu"], "main")]);
        assert!(problems(&facts).is_empty());
    }
}
