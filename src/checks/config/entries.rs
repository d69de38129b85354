//! `config.entries`: the `[[runners]]` entries of a file are distinct and plain: no shared
//! names or tokens, no credentials in URLs, and environment references that resolve.

use std::collections::BTreeMap;

use crate::checks::Check;
use crate::facts::config::locate;
use crate::facts::Facts;
use crate::finding::{Finding, Status, Subject};

pub struct Entries;

impl Check for Entries {
    fn id(&self) -> &'static str {
        "config.entries"
    }

    fn summary(&self) -> &'static str {
        "`[[runners]]` entries are distinct: unique names and tokens, no credentials in URLs, `$VAR` that resolve"
    }

    fn explanation(&self) -> &'static str {
        include_str!("../../../checks/config.entries.md")
    }

    fn run(&self, facts: &Facts, out: &mut Vec<Finding>) {
        for (runner, process) in facts.runners.iter().enumerate() {
            let Some(parsed) = process.config.parsed() else { continue };
            let config = &process.config;
            let before = out.len();

            let mut by_name: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
            let mut by_token: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
            for entry in &parsed.entries {
                if let Some(name) = entry.keys.str("name").filter(|name| !name.is_empty()) {
                    by_name.entry(name).or_default().push(entry.index);
                }
                if let Some(token) = entry.keys.secret("token").filter(|token| !token.is_empty()) {
                    by_token.entry(token.expose()).or_default().push(entry.index);
                }
            }
            for (name, indexes) in by_name.iter().filter(|(_, indexes)| indexes.len() > 1) {
                let entry = &parsed.entries[indexes[1]];
                out.push(
                    Finding::new(self.id(), Status::Warning, format!("{} `[[runners]]` entries are named `{name}` (entries {})", indexes.len(), numbers(indexes)))
                        .subject(Subject { runner, entry: Some(entry.index) })
                        .effect("the runner's log, GitLab's runner list and this report cannot tell them apart")
                        .location(entry.keys.get("name").map(|located| locate(config, located)))
                        .help("give each entry its own `name`"),
                );
            }
            for indexes in by_token.values().filter(|indexes| indexes.len() > 1) {
                let entry = &parsed.entries[indexes[1]];
                let names: Vec<String> = indexes.iter().map(|index| format!("{} (`{}`)", index + 1, parsed.entries[*index].label())).collect();
                out.push(
                    Finding::new(self.id(), Status::Warning, format!("entries {} share one token", names.join(" and ")))
                        .subject(Subject { runner, entry: Some(entry.index) })
                        .effect("GitLab sees a single runner, and each job goes to whichever entry asks first, with that entry's executor and settings")
                        .location(entry.keys.get("token").map(|located| locate(config, located)))
                        .help("register each entry as a runner of its own, or remove the copy"),
                );
            }
            for entry in &parsed.entries {
                let subject = Subject { runner, entry: Some(entry.index) };
                if let Some(url) = entry.keys.str("url").and_then(|url| url::Url::parse(url).ok())
                    && (!url.username().is_empty() || url.password().is_some())
                {
                    out.push(
                        Finding::new(self.id(), Status::Warning, format!("`url` of runner `{}` carries credentials (`{}`)", entry.label(), crate::secret::redact_url(url.as_str())))
                            .subject(subject)
                            .effect("they travel with every request and sit in the config in clear text, while GitLab authenticates runners by their token alone")
                            .location(entry.keys.get("url").map(|located| locate(config, located)))
                            .help("remove the user and password from `url`"),
                    );
                }
                for expansion in &entry.expansions {
                    let variables = expansion.variables.iter().map(|variable| format!("`${variable}`")).collect::<Vec<_>>().join(", ");
                    let (status, message) = if expansion.resolved {
                        (Status::Info, format!("`{}` of runner `{}` takes {variables} from the runner's environment; ci-doctor used the expanded value", expansion.key, entry.label()))
                    } else {
                        (Status::Skipped, format!("`{}` of runner `{}` takes {variables} from an environment ci-doctor cannot see; checks of it are skipped", expansion.key, entry.label()))
                    };
                    out.push(Finding::new(self.id(), status, message).subject(subject).location(entry.keys.get(expansion.key).map(|located| locate(config, located))));
                }
            }
            if out.len() == before {
                let count = parsed.entries.len();
                out.push(Finding::new(self.id(), Status::Ok, format!("{count} `[[runners]]` {} with distinct names and tokens", if count == 1 { "entry" } else { "entries" })).subject(Subject { runner, entry: None }));
            }
        }
    }
}

fn numbers(indexes: &[usize]) -> String {
    indexes.iter().map(|index| (index + 1).to_string()).collect::<Vec<_>>().join(", ")
}
