//! The JSON report. Its field names are an interface: add fields freely, but renaming or
//! removing one needs a new `schema` version.

use serde::Serialize;

use super::{Report, Summary};
use crate::facts::{Facts, RunnerKind};
use crate::finding::{Basis, Downgrade, Finding, Location, Status};
use crate::fix::Fix;

/// Version of the JSON layout.
pub const SCHEMA: &str = "ci-doctor.report/v1";

#[derive(Serialize)]
struct JsonReport<'a> {
    schema: &'static str,
    version: &'static str,
    docker: Option<JsonDocker<'a>>,
    runners: Vec<JsonRunner>,
    /// Problems: errors, warnings and infos.
    findings: Vec<JsonFinding<'a>>,
    /// Every verdict, `ok` and `skipped` included.
    checks: Vec<JsonCheck<'a>>,
    summary: Summary,
    /// The policy file that was read, or null.
    policy: Option<String>,
    /// Problems a policy rule ignored; they count in no total and in no exit status.
    ignored: Vec<JsonIgnored<'a>>,
    exit_code: u8,
    /// What `--fix` did; absent without `--fix`.
    #[serde(skip_serializing_if = "Option::is_none")]
    fix: Option<&'a crate::fix::report::FixReport>,
}

#[derive(Serialize)]
struct JsonDocker<'a> {
    endpoint: &'a str,
    server_version: &'a str,
    api_version: &'a str,
}

#[derive(Serialize, Clone)]
struct JsonRunner {
    index: usize,
    kind: &'static str,
    container: Option<String>,
    image: Option<String>,
    config: String,
    entries: Vec<JsonEntry>,
}

#[derive(Serialize, Clone)]
struct JsonEntry {
    index: usize,
    name: Option<String>,
    executor: Option<String>,
    url: Option<String>,
}

/// The subject of a finding as scripts see it.
#[derive(Serialize)]
struct JsonSubject {
    index: usize,
    container: Option<String>,
    config: String,
    entry: Option<usize>,
    name: Option<String>,
}

#[derive(Serialize)]
struct JsonFinding<'a> {
    check: &'static str,
    severity: Status,
    message: &'a str,
    runner: Option<JsonSubject>,
    effect: Option<&'a str>,
    evidence: &'a [String],
    basis: Option<&'a Basis>,
    location: Option<&'a Location>,
    help: Option<&'a str>,
    fix: Option<&'a Fix>,
    /// Present when a policy rule lowered the severity.
    #[serde(skip_serializing_if = "Option::is_none")]
    downgraded: Option<&'a Downgrade>,
}

#[derive(Serialize)]
struct JsonIgnored<'a> {
    #[serde(flatten)]
    finding: JsonFinding<'a>,
    reason: &'a str,
    rule: &'a str,
}

#[derive(Serialize)]
struct JsonCheck<'a> {
    check: &'static str,
    status: Status,
    runner: Option<JsonSubject>,
    message: &'a str,
    /// The view and method behind a network verdict.
    #[serde(skip_serializing_if = "Option::is_none")]
    basis: Option<&'a Basis>,
}

/// Renders the report as pretty-printed JSON, secrets redacted.
pub fn render(report: &Report, fix: Option<&crate::fix::report::FixReport>) -> String {
    let facts = report.facts;
    let docker = facts.docker.info().map(|info| JsonDocker {
        endpoint: &facts.docker.endpoint,
        server_version: &info.server_version,
        api_version: &info.api_version,
    });
    let json = JsonReport {
        schema: SCHEMA,
        version: env!("CARGO_PKG_VERSION"),
        docker,
        runners: runners(facts),
        findings: report.findings.iter().filter(|finding| finding.status.is_problem()).map(|finding| finding_json(facts, finding)).collect(),
        checks: report
            .findings
            .iter()
            .map(|finding| JsonCheck { check: finding.check, status: finding.status, runner: subject(facts, finding), message: &finding.message, basis: finding.basis.as_ref() })
            .collect(),
        summary: report.summary(),
        policy: report.policy.map(|path| path.display().to_string()),
        ignored: report
            .ignored
            .iter()
            .map(|ignored| JsonIgnored { finding: finding_json(facts, &ignored.finding), reason: &ignored.reason, rule: &ignored.rule })
            .collect(),
        exit_code: report.exit_code(),
        fix,
    };
    let text = serde_json::to_string_pretty(&json).unwrap_or_else(|error| format!("{{\"error\": \"failed to encode the report: {error}\"}}"));
    crate::secret::redact(&text)
}

fn runners(facts: &Facts) -> Vec<JsonRunner> {
    facts
        .runners
        .iter()
        .enumerate()
        .map(|(index, runner)| {
            let (kind, container, image) = match &runner.kind {
                RunnerKind::Container(container) => ("container", Some(container.name.clone()), Some(container.image.clone())),
                RunnerKind::Native(_) => ("host", None, None),
            };
            let entries = facts
                .entries(index)
                .iter()
                .map(|entry| JsonEntry {
                    index: entry.index,
                    name: entry.keys.str("name").map(str::to_string),
                    executor: entry.executor().map(str::to_string),
                    url: entry.keys.str("url").map(crate::secret::redact_url),
                })
                .collect();
            JsonRunner { index, kind, container, image, config: runner.config.display_path().display().to_string(), entries }
        })
        .collect()
}

fn subject(facts: &Facts, finding: &Finding) -> Option<JsonSubject> {
    let subject = finding.subject?;
    let runner = facts.runners.get(subject.runner)?;
    let name = subject.entry.and_then(|entry| facts.entries(subject.runner).get(entry)).and_then(|entry| entry.keys.str("name")).map(str::to_string);
    Some(JsonSubject {
        index: subject.runner,
        container: runner.container().map(|container| container.name.clone()),
        config: runner.config.display_path().display().to_string(),
        entry: subject.entry,
        name,
    })
}

fn finding_json<'a>(facts: &Facts, finding: &'a Finding) -> JsonFinding<'a> {
    JsonFinding {
        check: finding.check,
        severity: finding.status,
        message: &finding.message,
        runner: subject(facts, finding),
        effect: finding.effect.as_deref(),
        evidence: &finding.evidence,
        basis: finding.basis.as_ref(),
        location: finding.location.as_ref(),
        help: finding.help.as_deref(),
        fix: finding.fix.as_ref(),
        downgraded: finding.downgraded.as_ref(),
    }
}
