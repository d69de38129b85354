//! `auth.token`: each entry's token is a runner authentication token that GitLab accepts, and
//! each entry still has a runner in GitLab.

use crate::checks::Check;
use crate::facts::config::{locate, locate_missing};
use crate::facts::gitlab::{ApiRunner, LookupResult};
use crate::facts::probe::TokenOutcome;
use crate::facts::{Entry, Facts, Val};
use crate::finding::{Finding, Status, Subject};
use crate::fix::{Action, Fix};
use crate::secret::{Secret, TokenKind};

pub struct Token;

impl Check for Token {
    fn id(&self) -> &'static str {
        "auth.token"
    }

    fn summary(&self) -> &'static str {
        "each entry's token is a runner token that GitLab accepts (`POST /api/v4/runners/verify`), for a runner that still exists"
    }

    fn explanation(&self) -> &'static str {
        include_str!("../../../checks/auth.token.md")
    }

    fn run(&self, facts: &Facts, out: &mut Vec<Finding>) {
        for (index, _) in facts.runners.iter().enumerate() {
            for entry in facts.entries(index) {
                let subject = Subject { runner: index, entry: Some(entry.index) };
                out.push(judge(self.id(), facts, index, entry).subject(subject));
                if let Some(finding) = registration_options(self.id(), facts, index, entry) {
                    out.push(finding.subject(subject));
                }
            }
        }
    }
}

/// Options of `gitlab-runner register` that only the registration-token flow accepts: the
/// command-line flag, its environment variable, and the key people copy into `config.toml`.
const SERVER_SIDE_OPTIONS: &[(&str, &str, &str)] = &[
    ("--tag-list", "RUNNER_TAG_LIST", "tag_list"),
    ("--run-untagged", "REGISTER_RUN_UNTAGGED", "run_untagged"),
    ("--locked", "REGISTER_LOCKED", "locked"),
    ("--access-level", "REGISTER_ACCESS_LEVEL", "access_level"),
    ("--paused", "REGISTER_PAUSED", "paused"),
    ("--maximum-timeout", "REGISTER_MAXIMUM_TIMEOUT", "maximum_timeout"),
    ("--maintenance-note", "REGISTER_MAINTENANCE_NOTE", "maintenance_note"),
];

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

    let lookup = facts.gitlab.config_runner(runner, entry.index);
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
        TokenOutcome::Forbidden => forbidden(id, facts, entry, token, lookup.map(|lookup| &lookup.result), location),
        TokenOutcome::Orphaned => Finding::new(id, Status::Error, format!("GitLab answers that runner `{name}` is orphaned (422)"))
            .effect("the project or group that owned the runner no longer exists; the runner takes no jobs")
            .location(location)
            .help("create a new runner in an existing project or group and register it; remove this entry"),
        TokenOutcome::Unexpected { status: 410, message } => Finding::new(id, Status::Error, format!("GitLab answers 410 Gone for token `{token}` of runner `{name}`: {message}"))
            .effect("GitLab no longer accepts this kind of token (registration tokens are turned off on this instance), so the runner takes no jobs")
            .location(location)
            .help("create the runner in GitLab (Settings > CI/CD > Runners > New runner) and register with the `glrt-` token it shows"),
        TokenOutcome::Unexpected { status, message } => Finding::new(id, Status::Error, format!("GitLab answers {status} when verifying token `{token}` of runner `{name}`: {message}"))
            .location(location)
            .help("read GitLab's logs for this request; a 429 means migrations are running, retry later"),
        TokenOutcome::NotSent { reason } => not_verified(id, entry, token, &format!("was not verified: {reason}"), lookup.map(|lookup| &lookup.result)),
        TokenOutcome::Failed { message } => not_verified(id, entry, token, &format!("could not be verified: {message}"), lookup.map(|lookup| &lookup.result)),
    }
}

/// Judges a 403, which GitLab returns for a token it does not know. With an access token,
/// `GET /runners/:id` separates a deleted runner (whose entry can go) from a reset or expired
/// token.
fn forbidden(id: &'static str, facts: &Facts, entry: &Entry, token: &Secret, lookup: Option<&LookupResult>, location: Option<crate::finding::Location>) -> Finding {
    let name = entry.label();
    let runner_id = entry.keys.int("id").unwrap_or_default();
    if let Some(LookupResult::NotFound) = lookup {
        return Finding::new(id, Status::Error, format!("runner `{name}` (id {runner_id}) no longer exists in GitLab, and GitLab rejects its token `{token}` (403 Forbidden)"))
            .effect("the entry can never take a job again; the runner logs \"forbidden\" for it on every poll")
            .evidence(format!("`GET /api/v4/runners/{runner_id}` answers 404 Runner Not Found"))
            .location(location)
            .help(format!("remove the `[[runners]]` entry `{name}` (`ci-doctor --fix` does it); register a new runner if one is still needed"))
            .fix(Fix::safe(format!("remove the `[[runners]]` entry `{name}`, whose runner GitLab deleted"), vec![Action::RemoveEntry { entry: entry.index }]));
    }

    let mut finding = match expired_at(facts, entry) {
        Some(expired) => Finding::new(id, Status::Error, format!("token `{token}` of runner `{name}` expired at {expired}, and GitLab rejects it (403 Forbidden)"))
            .effect("the runner renews its token before it expires only while it runs and reaches GitLab; now it takes no jobs")
            .help("reset the runner's token in GitLab (its settings page, \"Reset token\") and put the new one in `token`, or register again"),
        None => Finding::new(id, Status::Error, format!("GitLab rejects token `{token}` of runner `{name}` (403 Forbidden)"))
            .effect("the token was revoked or reset, or its runner deleted; the runner takes no jobs and its log repeats \"forbidden\""),
    };
    finding = finding.location(location);
    match lookup {
        Some(LookupResult::Found(runner)) => {
            finding = finding.evidence(format!("runner {} still exists in GitLab ({}), so its token was reset or revoked", runner.id, runner_state(runner)));
            if finding.help.is_none() {
                finding = finding.help(format!("reset the token of runner {} in GitLab and put the new one in `token`, or register again", runner.id));
            }
            finding
        }
        _ if finding.help.is_some() => finding,
        _ => finding.help("register the runner again to get a new token; if its runner was deleted in GitLab, remove this entry (give `--gitlab-token` so that ci-doctor can confirm it and remove it with `--fix`)"),
    }
}

/// Judges an entry whose token could not be verified, which still reports a deleted runner.
fn not_verified(id: &'static str, entry: &Entry, token: &Secret, what: &str, lookup: Option<&LookupResult>) -> Finding {
    let name = entry.label();
    if let Some(LookupResult::NotFound) = lookup {
        let runner_id = entry.keys.int("id").unwrap_or_default();
        return Finding::new(id, Status::Error, format!("runner `{name}` (id {runner_id}) no longer exists in GitLab"))
            .effect("the entry can take no job; GitLab would reject its token")
            .evidence(format!("`GET /api/v4/runners/{runner_id}` answers 404 Runner Not Found; token `{token}` {what}"))
            .help(format!("remove the `[[runners]]` entry `{name}` once its token is confirmed dead (ci-doctor removes it with `--fix` when GitLab also rejects the token)"));
    }
    Finding::new(id, Status::Skipped, format!("token `{token}` of runner `{name}` {what}"))
}

/// Returns `token_expires_at` of the entry when it lies in the past; `0001-01-01` means no
/// expiry.
fn expired_at(facts: &Facts, entry: &Entry) -> Option<String> {
    let text = match &entry.keys.get("token_expires_at")?.value {
        Val::Datetime(text) | Val::String(text) => text.clone(),
        _ => return None,
    };
    let expires = crate::time::parse_rfc3339(&text)?;
    let never = crate::time::parse_rfc3339("0001-01-01T00:00:00Z")?;
    (expires > never && expires <= facts.settings.now).then_some(text)
}

fn runner_state(runner: &ApiRunner) -> String {
    if runner.paused { format!("{}, paused", runner.status) } else { runner.status.clone() }
}

/// Finds a runner with a `glrt-` token whose registration still passes options that only the
/// registration-token flow accepts: in the container's command or environment, or copied into
/// `config.toml`.
fn registration_options(id: &'static str, facts: &Facts, runner: usize, entry: &Entry) -> Option<Finding> {
    let token = entry.keys.secret("token")?;
    if token.kind() != TokenKind::RunnerAuthentication {
        return None;
    }
    let process = &facts.runners[runner];
    let mut found: Vec<String> = Vec::new();
    if let Some(container) = process.container() {
        let registers = container.command.iter().any(|word| word == "register");
        for (flag, variable, _) in SERVER_SIDE_OPTIONS {
            if container.env(variable).is_some() {
                found.push(format!("`{variable}` in the environment of container `{}`", container.name));
            }
            if registers && container.command.iter().any(|word| word == flag || word.starts_with(&format!("{flag}="))) {
                found.push(format!("`{flag}` in the command of container `{}`", container.name));
            }
        }
    }
    let mut location = None;
    for (_, _, key) in SERVER_SIDE_OPTIONS {
        if let Some(located) = entry.keys.get(key) {
            found.push(format!("`{key}` in `config.toml`"));
            location.get_or_insert_with(|| locate(&process.config, located));
        }
    }
    if found.is_empty() {
        return None;
    }

    let name = entry.label();
    let mut finding = Finding::new(id, Status::Warning, format!("runner `{name}` has a `glrt-` token, but its setup passes registration options that only the registration-token flow accepts: {}", found.join(", ")))
        .effect("`gitlab-runner register` with a `glrt-` token stops with \"Runner configuration other than name and executor configuration is reserved\", and `config.toml` has no such keys: tags, untagged jobs, protection and pausing live on the runner in GitLab")
        .location(location)
        .help("set these on the runner in GitLab (its settings page, or `PUT /api/v4/runners/:id`) and remove them from the registration and from `config.toml`");
    if let Some(LookupResult::Found(runner)) = facts.gitlab.config_runner(runner, entry.index).map(|lookup| &lookup.result) {
        let tags = if runner.tag_list.is_empty() { "no tags".to_string() } else { format!("tags `{}`", runner.tag_list.join(", ")) };
        finding = finding.evidence(format!("in GitLab, runner {} has {tags}, `run_untagged = {}`, `locked = {}`, `access_level = {}`", runner.id, runner.run_untagged, runner.locked, runner.access_level));
    }
    Some(finding)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::config::{ConfigFile, ConfigOrigin, ParsedConfig};
    use crate::facts::gitlab::RunnerLookup;
    use crate::facts::probe::TokenProbe;
    use crate::facts::runner::{NativeRunner, RunnerKind, RunnerProcess};

    fn facts_with(config: &str, outcome: Option<TokenOutcome>) -> Facts {
        let parsed = ParsedConfig::parse(config).unwrap();
        let file = ConfigFile { path: "/etc/gitlab-runner/config.toml".into(), origin: ConfigOrigin::Given, host_path: None, meta: None, text: Ok(config.into()), parsed: Some(Ok(parsed)), system_id: None };
        let mut facts = Facts { runners: vec![RunnerProcess { kind: RunnerKind::Native(NativeRunner::default()), config: file }], ..Facts::default() };
        facts.settings.now = crate::time::parse_rfc3339("2026-12-04T00:00:00Z").unwrap();
        if let Some(outcome) = outcome {
            facts.probes.tokens.push(TokenProbe { runner: 0, entry: 0, outcome });
        }
        facts
    }

    fn run(facts: &Facts) -> Vec<Finding> {
        let mut out = Vec::new();
        Token.run(facts, &mut out);
        out
    }

    const ENTRY: &str = "[[runners]]\n  name = \"build\"\n  url = \"https://gitlab.example.test/\"\n  id = 110\n";

    #[test]
    fn registration_and_personal_tokens_are_the_wrong_kind() {
        for (token, kind) in [("GR1348941FAKEregistration", "a registration token"), ("glpat-FAKEpersonal000001", "a personal, project or group access token")] {
            let facts = facts_with(&format!("{ENTRY}  token = \"{token}\"\n"), None);
            let found = run(&facts);
            assert_eq!(found[0].status, Status::Error);
            assert!(found[0].message.contains(kind), "{}", found[0].message);
            assert!(!found[0].message.contains(&token[10..]), "the token is shortened: {}", found[0].message);
        }
    }

    #[test]
    fn deleted_runner_entry_is_removed_by_the_fix() {
        let mut facts = facts_with(&format!("{ENTRY}  token = \"glrt-FAKEdeleted0000001\"\n"), Some(TokenOutcome::Forbidden));
        facts.gitlab.config_runners.push(RunnerLookup { runner: 0, entry: 0, id: 110, result: LookupResult::NotFound });
        let found = run(&facts);
        assert_eq!(found[0].message, "runner `build` (id 110) no longer exists in GitLab, and GitLab rejects its token `glrt-FAKE…` (403 Forbidden)");
        assert_eq!(found[0].fix.as_ref().unwrap().actions, [Action::RemoveEntry { entry: 0 }]);
    }

    #[test]
    fn forbidden_without_lookup_removes_nothing() {
        let facts = facts_with(&format!("{ENTRY}  token = \"glrt-FAKErevoked0000001\"\n"), Some(TokenOutcome::Forbidden));
        let found = run(&facts);
        assert_eq!(found[0].status, Status::Error);
        assert!(found[0].fix.is_none());
        assert!(found[0].help.as_deref().unwrap().contains("--gitlab-token"), "{:?}", found[0].help);
    }

    #[test]
    fn expired_token_names_its_date() {
        let facts = facts_with(&format!("{ENTRY}  token = \"glrt-FAKEexpired0000001\"\n  token_expires_at = 2025-01-01T00:00:00Z\n"), Some(TokenOutcome::Forbidden));
        let found = run(&facts);
        assert_eq!(found[0].message, "token `glrt-FAKE…` of runner `build` expired at 2025-01-01T00:00:00Z, and GitLab rejects it (403 Forbidden)");
        let never = facts_with(&format!("{ENTRY}  token = \"glrt-FAKEexpired0000001\"\n  token_expires_at = 0001-01-01T00:00:00Z\n"), Some(TokenOutcome::Forbidden));
        assert!(!run(&never)[0].message.contains("expired"));
    }

    #[test]
    fn gone_answer_explains_disabled_registration_tokens() {
        let facts = facts_with(&format!("{ENTRY}  token = \"glrtr-FAKEgone00000001\"\n"), Some(TokenOutcome::Unexpected { status: 410, message: "\"410 Gone\"".into() }));
        let found = run(&facts);
        assert!(found[0].message.contains("410 Gone"), "{}", found[0].message);
        assert!(found[0].effect.as_deref().unwrap().contains("registration tokens are turned off"));
    }

    #[test]
    fn old_registration_options_warn() {
        let facts = facts_with(&format!("{ENTRY}  token = \"glrt-FAKEoptions0000001\"\n  tag_list = [\"docker\"]\n  run_untagged = false\n"), Some(TokenOutcome::Valid { runner_id: Some(110), expires_at: None }));
        let found = run(&facts);
        assert_eq!(found.len(), 2, "{found:#?}");
        assert_eq!(found[1].status, Status::Warning);
        assert!(found[1].message.contains("`tag_list` in `config.toml`, `run_untagged` in `config.toml`"), "{}", found[1].message);
        assert_eq!(found[1].location.as_ref().unwrap().line, Some(6));
    }
}
