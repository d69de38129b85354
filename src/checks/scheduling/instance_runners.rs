//! `scheduling.instance-runners`: jobs wait because only instance runners would take them, and
//! the project turned instance runners off.

use super::{Group, Wording, api_command, counts, runners_phrase};
use crate::checks::Check;
use crate::facts::Facts;
use crate::facts::gitlab::ApiRunner;
use crate::finding::Finding;
use crate::scheduling::Evaluation;

pub struct InstanceRunners;

impl Check for InstanceRunners {
    fn id(&self) -> &'static str {
        "scheduling.instance-runners"
    }

    fn summary(&self) -> &'static str {
        "jobs that only instance runners could take are not held back by the project's setting"
    }

    fn explanation(&self) -> &'static str {
        include_str!("../../../checks/scheduling.instance-runners.md")
    }

    fn run(&self, facts: &Facts, out: &mut Vec<Finding>) {
        super::report(self.id(), self, facts, out);
    }
}

impl Wording for InstanceRunners {
    fn message(&self, group: &Group, evaluation: &Evaluation) -> String {
        if group.blocked.is_empty() {
            let wait = if group.is_plural() { "wait" } else { "waits" };
            return format!("project `{}` turned instance runners off and has no other runner, so {} {wait}", evaluation.project, group.jobs_phrase());
        }
        format!("{} could run on instance {}, but project `{}` turned instance runners off", group.jobs_phrase(), runners_phrase(group, ApiRunner::label), evaluation.project)
    }

    fn effect(&self, group: &Group) -> String {
        let stay = if group.is_plural() { "they stay" } else { "it stays" };
        format!("GitLab offers the project's jobs to its own and its group's runners only, so {stay} pending")
    }

    fn remedy(&self, _group: &Group, evaluation: &Evaluation, api: &str) -> (String, Vec<String>) {
        let project = url::form_urlencoded::byte_serialize(evaluation.project.as_bytes()).collect::<String>();
        let help = format!("turn on instance runners for project `{}` (Settings > CI/CD > Runners, or the command below), or register a project runner", evaluation.project);
        (help, vec![api_command("PUT", api, &format!("/projects/{project}"), "shared_runners_enabled=true")])
    }

    fn ok_message(&self, evaluation: &Evaluation) -> String {
        let setting = if evaluation.shared_runners_enabled { "instance runners are on" } else { "instance runners are off, and no waiting job needs one" };
        format!("{setting} ({})", counts(evaluation))
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{facts, job, problems, runner};
    use crate::facts::gitlab::ProjectInfo;

    fn without_instance_runners(facts: &mut crate::facts::Facts) {
        if let Some(Ok(project)) = &mut facts.gitlab.project {
            *project = ProjectInfo { shared_runners_enabled: false, ..project.clone() };
        }
    }

    #[test]
    fn only_an_instance_runner_would_take_the_job() {
        let mut shared = runner(3, &["docker"]);
        shared.runner_type = "instance_type".into();
        let mut facts = facts(vec![], vec![job(100, "build", &["docker"], "main")]);
        without_instance_runners(&mut facts);
        facts.gitlab.instance_runners = Some(Ok(vec![shared]));
        let found = problems(&facts);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0].check, "scheduling.instance-runners");
        assert_eq!(found[0].message, "job `build` could run on instance runner 3 (`runner-3`), but project `web/near-sdk` turned instance runners off");
        assert!(format!("{:?}", found[0].fix).contains("shared_runners_enabled=true"));
    }

    #[test]
    fn no_runner_at_all_with_instance_runners_off() {
        let mut facts = facts(vec![], vec![job(100, "build", &[], "main")]);
        without_instance_runners(&mut facts);
        facts.gitlab.instance_runners = Some(Err("listing instance runners needs an administrator's token".into()));
        let found = problems(&facts);
        assert_eq!(found.len(), 1, "{found:#?}");
        assert_eq!(found[0].check, "scheduling.instance-runners");
        assert!(found[0].message.contains("turned instance runners off and has no other runner"), "{}", found[0].message);
    }
}
