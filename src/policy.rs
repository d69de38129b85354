//! The policy file: defaults for flags, and rules that ignore or downgrade findings, each with
//! the reason the report shows.
//!
//! ci-doctor reads `--policy FILE` when given; otherwise `.ci-doctor.toml` at the top of the
//! current Git checkout, or else `/etc/ci-doctor.toml`. Only the first file found is read.
//!
//! ```toml
//! [defaults]
//! gitlab-url = "https://gitlab.example.test"
//! runner-container = ["gitlab-runner"]
//!
//! [[ignore]]
//! check = "config.file-mode"
//! reason = "single-user build host; only root logs in"
//!
//! [[downgrade]]
//! check = "network"
//! runner = "staging-runner"
//! to = "warning"
//! reason = "staging runner, rebuilt every night"
//! ```

use std::ops::Range;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::ArgMatches;
use clap::parser::ValueSource;
use serde::Deserialize;

use crate::checks;
use crate::cli::DiagnoseArgs;
use crate::facts::Facts;
use crate::finding::{Downgrade, Finding, Status};

/// Name of the project's policy file, at the top of the Git checkout.
pub const PROJECT_FILE: &str = ".ci-doctor.toml";

/// The machine-wide policy file, read when the project has none.
pub const SYSTEM_FILE: &str = "/etc/ci-doctor.toml";

/// A validated policy.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// The file it came from; `None` for the empty policy used when there is no file.
    pub path: Option<PathBuf>,
    pub defaults: Defaults,
    /// Ignore rules first, then downgrade rules, each in file order.
    pub rules: Vec<Rule>,
}

/// Values for flags that the command line did not give.
#[derive(Debug, Clone, Default)]
pub struct Defaults {
    pub gitlab_url: Option<String>,
    pub runner_container: Vec<String>,
    pub config: Vec<PathBuf>,
    pub timeout: Option<f64>,
}

/// One `[[ignore]]` or `[[downgrade]]` rule.
#[derive(Debug, Clone)]
pub struct Rule {
    pub action: Action,
    /// A check id or an area.
    pub check: String,
    /// Limits the rule to one runner: a runner container's name or a `[[runners]]` entry's
    /// `name`.
    pub runner: Option<String>,
    pub reason: String,
    /// Location of the rule, for the report: ``` `[[ignore]]` 1 in `/srv/app/.ci-doctor.toml` ```.
    pub origin: String,
}

/// Effect of a rule on the findings it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Removes the finding from the exit status; the report lists it with the reason.
    Ignore,
    /// Lowers the finding's severity to this one.
    Downgrade(Status),
}

/// A finding that an ignore rule removed, kept for the report.
#[derive(Debug, Clone)]
pub struct Ignored {
    pub finding: Finding,
    pub reason: String,
    /// Location of the rule, as in [`Rule::origin`].
    pub rule: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPolicy {
    #[serde(default)]
    defaults: RawDefaults,
    #[serde(default)]
    ignore: Vec<RawIgnore>,
    #[serde(default)]
    downgrade: Vec<RawDowngrade>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct RawDefaults {
    gitlab_url: Option<String>,
    runner_container: Option<OneOrMany<String>>,
    config: Option<OneOrMany<PathBuf>>,
    timeout: Option<f64>,
}

#[derive(Deserialize)]
#[serde(untagged, expecting = "a string or an array of strings")]
enum OneOrMany<T> {
    One(T),
    Many(Vec<T>),
}

impl<T> OneOrMany<T> {
    fn into_vec(self) -> Vec<T> {
        match self {
            OneOrMany::One(value) => vec![value],
            OneOrMany::Many(values) => values,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIgnore {
    check: toml::Spanned<String>,
    runner: Option<String>,
    reason: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDowngrade {
    check: toml::Spanned<String>,
    runner: Option<String>,
    to: toml::Spanned<String>,
    reason: Option<String>,
}

impl Policy {
    /// Finds and reads the policy: `explicit` when given, else the project's file, else the
    /// machine's. Returns the empty policy when there is none.
    pub fn discover(explicit: Option<&Path>) -> anyhow::Result<Policy> {
        let project = crate::project::current_root();
        Policy::discover_in(explicit, project.as_deref(), Path::new(SYSTEM_FILE))
    }

    /// Finds and reads the policy: `explicit`, else [`PROJECT_FILE`] in `project`, else
    /// `system`.
    fn discover_in(explicit: Option<&Path>, project: Option<&Path>, system: &Path) -> anyhow::Result<Policy> {
        if let Some(path) = explicit {
            return Policy::read(path);
        }
        let project_file = project.map(|root| root.join(PROJECT_FILE));
        for path in project_file.iter().map(PathBuf::as_path).chain([system]) {
            if path.is_file() {
                tracing::debug!(path = %path.display(), "policy file found");
                return Policy::read(path);
            }
        }
        Ok(Policy::default())
    }

    /// Reads and validates the policy file at `path`.
    pub fn read(path: &Path) -> anyhow::Result<Policy> {
        let text = std::fs::read_to_string(path).with_context(|| format!("failed to read policy file `{}`", path.display()))?;
        Policy::parse(&text, path)
    }

    /// Parses and validates policy `text`, naming `path` in every error.
    pub fn parse(text: &str, path: &Path) -> anyhow::Result<Policy> {
        let file = path.display();
        let raw: RawPolicy = toml::from_str(text).with_context(|| format!("invalid policy file `{file}`"))?;

        let defaults = Defaults {
            gitlab_url: raw.defaults.gitlab_url,
            runner_container: raw.defaults.runner_container.map(OneOrMany::into_vec).unwrap_or_default(),
            config: raw.defaults.config.map(OneOrMany::into_vec).unwrap_or_default(),
            timeout: raw.defaults.timeout,
        };
        if let Some(timeout) = defaults.timeout
            && !(timeout.is_finite() && timeout > 0.0 && timeout <= 3600.0)
        {
            anyhow::bail!("invalid policy file `{file}`: `[defaults] timeout = {timeout}` is not a number of seconds between 0 and 3600");
        }

        let mut rules = Vec::new();
        for (index, rule) in raw.ignore.into_iter().enumerate() {
            let origin = format!("`[[ignore]]` {} in `{file}`", index + 1);
            let line = line_of(text, rule.check.span());
            let check = validate_check(rule.check.into_inner(), &origin, line)?;
            let reason = validate_reason(rule.reason, &origin, line, &check)?;
            rules.push(Rule { action: Action::Ignore, check, runner: rule.runner, reason, origin });
        }
        for (index, rule) in raw.downgrade.into_iter().enumerate() {
            let origin = format!("`[[downgrade]]` {} in `{file}`", index + 1);
            let line = line_of(text, rule.check.span());
            let check = validate_check(rule.check.into_inner(), &origin, line)?;
            let to = match rule.to.get_ref().as_str() {
                "warning" => Status::Warning,
                "info" => Status::Info,
                other => anyhow::bail!(
                    "invalid policy rule {origin} (line {}): `to = \"{other}\"`; a downgrade lowers a finding to `warning` or `info`",
                    line_of(text, rule.to.span())
                ),
            };
            let reason = validate_reason(rule.reason, &origin, line, &check)?;
            rules.push(Rule { action: Action::Downgrade(to), check, runner: rule.runner, reason, origin });
        }

        Ok(Policy { path: Some(path.to_path_buf()), defaults, rules })
    }

    /// Fills the flags the command line left unset with the policy's defaults. `matches`
    /// separates a value given on the command line (or in its environment variable) from a
    /// default.
    pub fn apply_defaults(&self, args: &mut DiagnoseArgs, matches: &ArgMatches) {
        let is_given = |id: &str| matches.value_source(id).is_some_and(|source| source != ValueSource::DefaultValue);
        if args.gitlab_url.is_none() {
            args.gitlab_url = self.defaults.gitlab_url.clone();
        }
        // Naming runners in either way on the command line replaces the policy's choice.
        if !is_given("config") && !is_given("runner_container") {
            args.config = self.defaults.config.clone();
            args.runner_container = self.defaults.runner_container.clone();
        }
        if let Some(timeout) = self.defaults.timeout
            && !is_given("timeout")
        {
            args.timeout = timeout;
        }
    }

    /// Applies the rules to `findings`: returns the findings that remain, downgrades marked,
    /// and the ones an ignore rule removed. Only errors, warnings and infos are affected; `ok`
    /// and `skipped` verdicts stay as they are.
    pub fn apply(&self, facts: &Facts, findings: Vec<Finding>) -> (Vec<Finding>, Vec<Ignored>) {
        let mut remaining = Vec::new();
        let mut ignored = Vec::new();
        for mut finding in findings {
            if !finding.status.is_problem() {
                remaining.push(finding);
                continue;
            }
            let mut matching = self.rules.iter().filter(|rule| rule.matches(facts, &finding));
            // Ignore rules come first in `rules`, so an ignore wins over a downgrade.
            match matching.next() {
                Some(rule) if rule.action == Action::Ignore => {
                    ignored.push(Ignored { finding, reason: rule.reason.clone(), rule: rule.origin.clone() });
                }
                Some(Rule { action: Action::Downgrade(to), reason, origin, .. }) => {
                    // A downgrade only lowers: an info stays an info under `to = "warning"`.
                    if *to > finding.status {
                        finding.downgraded = Some(Downgrade { from: finding.status, reason: reason.clone(), rule: origin.clone() });
                        finding.status = *to;
                    }
                    remaining.push(finding);
                }
                _ => remaining.push(finding),
            }
        }
        (remaining, ignored)
    }
}

impl Rule {
    fn matches(&self, facts: &Facts, finding: &Finding) -> bool {
        if self.check != finding.check && self.check != checks::area(finding.check) {
            return false;
        }
        let Some(runner) = &self.runner else { return true };
        let Some(subject) = finding.subject else { return false };
        let Some(process) = facts.runners.get(subject.runner) else { return false };
        if process.container().is_some_and(|container| &container.name == runner) {
            return true;
        }
        let entries = facts.entries(subject.runner);
        match subject.entry {
            Some(entry) => entries.get(entry).is_some_and(|entry| entry.keys.str("name") == Some(runner.as_str())),
            None => false,
        }
    }
}

/// 1-based line of byte offset `span.start` in `text`.
fn line_of(text: &str, span: Range<usize>) -> usize {
    text[..span.start.min(text.len())].matches('\n').count() + 1
}

fn validate_check(check: String, origin: &str, line: usize) -> anyhow::Result<String> {
    let mut known: Vec<&str> = checks::CHECKS.iter().map(|check| check.id()).collect();
    known.extend(checks::CHECKS.iter().map(|check| checks::area(check.id())));
    if known.contains(&check.as_str()) {
        return Ok(check);
    }
    known.sort_unstable();
    known.dedup();
    let hint = match crate::suggest::closest(&check, known.iter().copied()) {
        Some(close) => format!("did you mean `{close}`?"),
        None => "`ci-doctor list` shows every check id".to_string(),
    };
    anyhow::bail!("invalid policy rule {origin} (line {line}): unknown check or area `{check}`; {hint}")
}

fn validate_reason(reason: Option<String>, origin: &str, line: usize, check: &str) -> anyhow::Result<String> {
    match reason.map(|reason| reason.trim().to_string()) {
        Some(reason) if !reason.is_empty() => Ok(reason),
        Some(_) => anyhow::bail!("invalid policy rule {origin} (line {line}, check `{check}`): `reason` is empty; say why the finding does not apply here"),
        None => anyhow::bail!(
            "invalid policy rule {origin} (line {line}, check `{check}`): `reason` is missing; add `reason = \"...\"` saying why the finding does not apply here, so that the report can show it"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> anyhow::Result<Policy> {
        Policy::parse(text, Path::new("/srv/app/.ci-doctor.toml"))
    }

    fn error_of(text: &str) -> String {
        format!("{:#}", parse(text).unwrap_err())
    }

    #[test]
    fn full_policy_parses() {
        let policy = parse(
            "[defaults]\ngitlab-url = \"https://gitlab.example.test\"\nrunner-container = \"gitlab-runner\"\ntimeout = 2.5\n\n\
             [[ignore]]\ncheck = \"config.file-mode\"\nreason = \"single-user host\"\n\n\
             [[downgrade]]\ncheck = \"network\"\nrunner = \"staging\"\nto = \"info\"\nreason = \"rebuilt nightly\"\n",
        )
        .unwrap();
        assert_eq!(policy.defaults.gitlab_url.as_deref(), Some("https://gitlab.example.test"));
        assert_eq!(policy.defaults.runner_container, ["gitlab-runner"]);
        assert_eq!(policy.defaults.timeout, Some(2.5));
        assert_eq!(policy.rules.len(), 2);
        assert_eq!(policy.rules[0].action, Action::Ignore);
        assert_eq!(policy.rules[0].origin, "`[[ignore]]` 1 in `/srv/app/.ci-doctor.toml`");
        assert_eq!(policy.rules[1].action, Action::Downgrade(Status::Info));
        assert_eq!(policy.rules[1].runner.as_deref(), Some("staging"));
    }

    #[test]
    fn rule_without_reason_is_rejected() {
        let error = error_of("[[ignore]]\ncheck = \"config.file-mode\"\n");
        assert!(error.contains("`[[ignore]]` 1 in `/srv/app/.ci-doctor.toml`"), "{error}");
        assert!(error.contains("line 2"), "{error}");
        assert!(error.contains("`reason` is missing"), "{error}");
        let error = error_of("[[downgrade]]\ncheck = \"network\"\nto = \"info\"\nreason = \"  \"\n");
        assert!(error.contains("`[[downgrade]]` 1"), "{error}");
        assert!(error.contains("`reason` is empty"), "{error}");
    }

    #[test]
    fn unknown_key_is_named() {
        let error = error_of("[[ignore]]\ncheck = \"config.keys\"\nreason = \"x\"\nreson = \"y\"\n");
        assert!(error.contains("/srv/app/.ci-doctor.toml"), "{error}");
        assert!(error.contains("unknown field `reson`"), "{error}");
        let error = error_of("[defaults]\ngitlab-token = \"glpat-x\"\n");
        assert!(error.contains("unknown field `gitlab-token`"), "{error}");
        let error = error_of("[rules]\n");
        assert!(error.contains("unknown field `rules`"), "{error}");
    }

    #[test]
    fn unknown_check_gets_a_suggestion() {
        let error = error_of("[[ignore]]\ncheck = \"config.file-mod\"\nreason = \"x\"\n");
        assert!(error.contains("unknown check or area `config.file-mod`; did you mean `config.file-mode`?"), "{error}");
        let error = error_of("[[ignore]]\ncheck = \"entirely-else\"\nreason = \"x\"\n");
        assert!(error.contains("`ci-doctor list`"), "{error}");
    }

    #[test]
    fn downgrade_cannot_raise_or_name_an_unknown_severity() {
        let error = error_of("[[downgrade]]\ncheck = \"network\"\nto = \"error\"\nreason = \"x\"\n");
        assert!(error.contains("`to = \"error\"`"), "{error}");
        assert!(error.contains("line 3"), "{error}");
    }

    #[test]
    fn timeout_default_is_bounded() {
        let error = error_of("[defaults]\ntimeout = 0\n");
        assert!(error.contains("timeout = 0"), "{error}");
    }

    fn finding(check: &'static str, status: Status) -> Finding {
        Finding::new(check, status, format!("{check} says something"))
    }

    #[test]
    fn ignore_removes_and_downgrade_lowers() {
        let policy = parse(
            "[[ignore]]\ncheck = \"config.file-mode\"\nreason = \"single-user host\"\n\n\
             [[downgrade]]\ncheck = \"network\"\nto = \"warning\"\nreason = \"staging\"\n\n\
             [[downgrade]]\ncheck = \"config\"\nto = \"warning\"\nreason = \"would ignore too\"\n",
        )
        .unwrap();
        let findings = vec![
            finding("config.file-mode", Status::Warning),
            finding("config.file-mode", Status::Ok),
            finding("network.runner-url", Status::Error),
            finding("network.runner-url", Status::Info),
            finding("auth.token", Status::Error),
        ];
        let (kept, ignored) = policy.apply(&Facts::default(), findings);

        assert_eq!(ignored.len(), 1);
        assert_eq!(ignored[0].finding.check, "config.file-mode");
        assert_eq!(ignored[0].reason, "single-user host");
        let statuses: Vec<(&str, Status)> = kept.iter().map(|finding| (finding.check, finding.status)).collect();
        assert_eq!(
            statuses,
            [("config.file-mode", Status::Ok), ("network.runner-url", Status::Warning), ("network.runner-url", Status::Info), ("auth.token", Status::Error)]
        );
        let downgrade = kept[1].downgraded.as_ref().unwrap();
        assert_eq!(downgrade.from, Status::Error);
        assert_eq!(downgrade.reason, "staging");
        assert!(kept[2].downgraded.is_none(), "an info is not raised to a warning");
    }

    #[test]
    fn project_file_comes_before_the_system_file() {
        let dir = tempfile::tempdir().unwrap();
        let project = dir.path().join("project");
        std::fs::create_dir(&project).unwrap();
        let system = dir.path().join("ci-doctor.toml");
        std::fs::write(&system, "[defaults]\ntimeout = 7\n").unwrap();

        let found = Policy::discover_in(None, Some(&project), &system).unwrap();
        assert_eq!(found.path.as_deref(), Some(system.as_path()), "no project file: the system file");
        assert_eq!(found.defaults.timeout, Some(7.0));

        std::fs::write(project.join(PROJECT_FILE), "[defaults]\ntimeout = 2\n").unwrap();
        let found = Policy::discover_in(None, Some(&project), &system).unwrap();
        assert_eq!(found.path, Some(project.join(PROJECT_FILE)));
        assert_eq!(found.defaults.timeout, Some(2.0), "the files are not merged");

        let explicit = dir.path().join("explicit.toml");
        std::fs::write(&explicit, "").unwrap();
        let found = Policy::discover_in(Some(&explicit), Some(&project), &system).unwrap();
        assert_eq!(found.path.as_deref(), Some(explicit.as_path()));

        let none = Policy::discover_in(None, None, &dir.path().join("absent.toml")).unwrap();
        assert!(none.path.is_none());
        assert!(none.rules.is_empty());
    }

    #[test]
    fn runner_scoped_rule_skips_host_findings() {
        let policy = parse("[[ignore]]\ncheck = \"docker\"\nrunner = \"gitlab-runner\"\nreason = \"x\"\n").unwrap();
        let (kept, ignored) = policy.apply(&Facts::default(), vec![finding("docker.daemon", Status::Error)]);
        assert_eq!(kept.len(), 1);
        assert!(ignored.is_empty());
    }
}
