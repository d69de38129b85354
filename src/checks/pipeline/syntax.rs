//! `pipeline.syntax`: the pipeline file reads as GitLab would read it.

use crate::checks::Check;
use crate::facts::Facts;
use crate::finding::{Finding, Location, Status};
use crate::pipeline::Place;

pub struct Syntax;

impl Check for Syntax {
    fn id(&self) -> &'static str {
        "pipeline.syntax"
    }

    fn summary(&self) -> &'static str {
        "`.gitlab-ci.yml` parses, its local includes, references and `extends` resolve"
    }

    fn explanation(&self) -> &'static str {
        include_str!("../../../checks/pipeline.syntax.md")
    }

    fn run(&self, facts: &Facts, out: &mut Vec<Finding>) {
        let Some(fact) = &facts.pipeline else {
            out.push(Finding::new(self.id(), Status::Skipped, "no pipeline was read: not in a Git checkout with a `.gitlab-ci.yml` at its top").help("pass `--ci-file PATH` to check a pipeline"));
            return;
        };
        let pipeline = match &fact.result {
            Ok(pipeline) => pipeline,
            Err(error) => {
                out.push(
                    Finding::new(self.id(), Status::Error, error.message.clone())
                        .effect("GitLab rejects the pipeline: no job starts (\"This GitLab CI configuration is invalid\")")
                        .location(error.place.as_ref().map(location)),
                );
                return;
            }
        };
        for (problem, place) in &pipeline.problems {
            out.push(
                Finding::new(self.id(), Status::Error, problem.clone())
                    .effect("GitLab rejects the pipeline: no job starts (\"This GitLab CI configuration is invalid\")")
                    .location(Some(location(place))),
            );
        }
        for (note, place) in &pipeline.not_followed {
            out.push(
                Finding::new(self.id(), Status::Info, note.clone())
                    .effect("jobs and settings from that include are not part of this diagnosis")
                    .location(Some(location(place))),
            );
        }
        let included = pipeline.files.len().saturating_sub(1);
        let files = if included == 0 { String::new() } else { format!(" and {included} included file{}", if included == 1 { "" } else { "s" }) };
        let jobs = match pipeline.jobs.len() {
            1 => "1 job".to_string(),
            count => format!("{count} jobs"),
        };
        out.push(Finding::new(self.id(), Status::Ok, format!("read {jobs} from `{}`{files} ({})", fact.path.display(), fact.chosen_by)));
    }
}

fn location(place: &Place) -> Location {
    Location { file: place.file.clone(), key: None, line: Some(place.line), column: None }
}
