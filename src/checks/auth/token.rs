//! `auth.token`: each entry's token is a runner authentication token that GitLab accepts.

use crate::checks::Check;
use crate::facts::config::{locate, locate_missing};
use crate::facts::probe::TokenOutcome;
use crate::facts::{Entry, Facts};
use crate::finding::{Finding, Status, Subject};
use crate::secret::TokenKind;

pub struct Token;

impl Check for Token {
    fn id(&self) -> &'static str {
        "auth.token"
    }

    fn summary(&self) -> &'static str {
        "each entry's token is a runner token that GitLab accepts (`POST /api/v4/runners/verify`)"
    }

    fn explanation(&self) -> &'static str {
        include_str!("../../../checks/auth.token.md")
    }

    fn run(&self, facts: &Facts, out: &mut Vec<Finding>) {
        for (index, _) in facts.runners.iter().enumerate() {
            for entry in facts.entries(index) {
                let subject = Subject { runner: index, entry: Some(entry.index) };
                out.push(judge(self.id(), facts, index, entry).subject(subject));
            }
        }
    }
}

fn judge(id: &'static str, facts: &Facts, runner: usize, entry: &Entry) -> Finding {
    let config = &facts.runners[runner].config;
    let name = entry.label();

    let token = match entry.keys.secret("token") {
        Some(token) if !token.is_empty() => token,
        _ => {
            return Finding::new(id, Status::Error, format!("runner `{name}` has no `token`"))
                .effect("the runner skips this entry with a warning, so it takes no jobs")
                .location(Some(locate_missing(config, Some(entry), "token")))
                .help("register the runner (`gitlab-runner register`) so that it writes its token");
        }
    };
    let location = entry.keys.get("token").map(|located| locate(config, located));
    if let Some(expansion) = entry.expansions.iter().find(|expansion| expansion.key == "token" && !expansion.resolved) {
        return Finding::new(id, Status::Skipped, format!(
            "`token` of runner `{name}` takes {} from the runner's environment, which ci-doctor cannot see here",
            expansion.variables.iter().map(|variable| format!("`${variable}`")).collect::<Vec<_>>().join(", ")
        ))
        .location(location);
    }

    let wrong_kind = match token.kind() {
        TokenKind::Registration => Some("register the runner with it (`gitlab-runner register --registration-token …`) and keep the runner token that `register` writes"),
        TokenKind::PersonalAccess | TokenKind::OtherGitLab => Some("create a runner in GitLab (Settings > CI/CD > Runners > New runner) and register with the `glrt-` token it shows"),
        _ => None,
    };
    if let Some(help) = wrong_kind {
        return Finding::new(id, Status::Error, format!("`token` of runner `{name}` (`{token}`) is {}, not a runner authentication token", token.kind().describe()))
            .effect("GitLab answers every job request with 403 Forbidden, so the runner takes no jobs")
            .location(location)
            .help(help);
    }

    let Some(probe) = facts.probes.token(runner, entry.index) else {
        return Finding::new(id, Status::Skipped, format!("token `{token}` of runner `{name}` was not verified"));
    };
    match &probe.outcome {
        TokenOutcome::Valid { runner_id, expires_at } => {
            let id_text = runner_id.map(|runner_id| format!(" (runner {runner_id})")).unwrap_or_default();
            let mut finding = Finding::new(id, Status::Ok, format!("token `{token}` of runner `{name}` verifies{id_text}"));
            if let Some(expires_at) = expires_at {
                finding = finding.evidence(format!("expires at {expires_at}; the runner rotates it by itself"));
            }
            finding
        }
        TokenOutcome::Forbidden => Finding::new(id, Status::Error, format!("GitLab rejects token `{token}` of runner `{name}` (403 Forbidden)"))
            .effect("the token was revoked or its runner deleted; the runner takes no jobs and its log repeats \"forbidden\"")
            .location(location)
            .help("register the runner again to get a new token, then remove this stale entry"),
        TokenOutcome::Orphaned => Finding::new(id, Status::Error, format!("GitLab answers that runner `{name}` is orphaned (422)"))
            .effect("the project or group that owned the runner no longer exists; the runner takes no jobs")
            .location(location)
            .help("create a new runner in an existing project or group and register it; remove this entry"),
        TokenOutcome::Unexpected { status, message } => Finding::new(id, Status::Error, format!("GitLab answers {status} when verifying token `{token}` of runner `{name}`: {message}"))
            .location(location)
            .help("read GitLab's logs for this request; a 429 means migrations are running, retry later"),
        TokenOutcome::NotSent { reason } => Finding::new(id, Status::Skipped, format!("token `{token}` of runner `{name}` was not verified: {reason}")),
        TokenOutcome::Failed { message } => Finding::new(id, Status::Skipped, format!("token `{token}` of runner `{name}` could not be verified: {message}")),
    }
}
