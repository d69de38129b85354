//! `config.file-mode`: a config holding tokens is not readable by other users.

use crate::checks::Check;
use crate::facts::Facts;
use crate::finding::{Finding, Status, Subject};
use crate::fix::{Action, Fix};

pub struct FileMode;

impl Check for FileMode {
    fn id(&self) -> &'static str {
        "config.file-mode"
    }

    fn summary(&self) -> &'static str {
        "a config holding tokens is readable only by its owner"
    }

    fn explanation(&self) -> &'static str {
        include_str!("../../../checks/config.file-mode.md")
    }

    fn run(&self, facts: &Facts, out: &mut Vec<Finding>) {
        for (index, runner) in facts.runners.iter().enumerate() {
            let subject = Subject { runner: index, entry: None };
            let config = &runner.config;
            let shown = config.display_path();
            let Some(meta) = config.meta else {
                out.push(Finding::new(self.id(), Status::Skipped, format!("the mode of `{}` is unknown", shown.display())).subject(subject));
                continue;
            };

            let has_secrets = config.parsed().is_some_and(|parsed| parsed.occurrences.iter().any(|occurrence| matches!(occurrence.value, crate::facts::Val::Secret(_))));
            let exposed = meta.mode & 0o077;
            if exposed == 0 || !has_secrets {
                let what = if has_secrets { "holds tokens and" } else { "holds no token and" };
                out.push(Finding::new(self.id(), Status::Ok, format!("`{}` {what} has mode {:04o}", shown.display(), meta.mode)).subject(subject));
                continue;
            }

            let who = if exposed & 0o007 != 0 { "every user on the system" } else { "members of the file's group" };
            let mut finding = Finding::new(self.id(), Status::Warning, format!("`{}` holds runner tokens and has mode {:04o}", shown.display(), meta.mode))
                .subject(subject)
                .effect(format!("{who} can read the tokens and impersonate the runner: take its jobs and read their secrets"))
                .location(Some(config.location()));
            finding = match &config.host_path {
                Some(path) => finding
                    .help(format!("restrict it: `chmod 600 {}`", path.display()))
                    .fix(Fix::safe("set the file mode to 0600", vec![Action::SetFileMode { mode: 0o600 }])),
                None => finding.help(format!("restrict it inside the container: `chmod 600 {}`", config.path.display())),
            };
            out.push(finding);
        }
    }
}
