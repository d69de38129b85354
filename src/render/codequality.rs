//! The report as a GitLab Code Quality report (`artifacts:reports:codequality`): a JSON array
//! with one issue per error, warning and info, each with `description`, `check_name`,
//! `fingerprint`, `severity` and `location` (`path` and `lines.begin`).
//!
//! Every issue needs a file. A finding with a location points at its file and line. A finding
//! about a `[[runners]]` entry without a location points at the entry's header in
//! `config.toml`, and one about a runner as a whole at line 1 of its `config.toml`. A finding
//! about the host points at line 1 of `.gitlab-ci.yml`, the pipeline that runs on this host. Paths inside the project's Git
//! checkout are relative to its top, as GitLab expects; others stay absolute.
//!
//! The fingerprint is a SHA-256 of the check id, the path, the TOML key path and the subject
//! (runner container, entry name), never of the message, so an issue keeps its fingerprint
//! from run to run while its wording or line changes.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::Serialize;

use super::Report;
use crate::finding::{Finding, Status};

/// The file host findings point at.
const PIPELINE_FILE: &str = ".gitlab-ci.yml";

#[derive(Serialize)]
struct Issue {
    description: String,
    check_name: &'static str,
    fingerprint: String,
    severity: &'static str,
    location: IssueLocation,
}

#[derive(Serialize)]
struct IssueLocation {
    path: String,
    lines: Lines,
}

#[derive(Serialize)]
struct Lines {
    begin: usize,
}

/// Renders the report as a Code Quality JSON array, secrets redacted.
pub fn render(report: &Report) -> String {
    let mut issues = Vec::new();
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();

    let problems = report.findings.iter().filter(|finding| finding.status.is_problem()).map(|finding| (finding, None));
    let ignored = report.ignored.iter().map(|ignored| (&ignored.finding, Some(ignored.reason.as_str())));
    for (finding, ignored_because) in problems.chain(ignored) {
        let (path, line, identity) = place(report, finding);

        // Two findings of one check on one key of one subject would share a fingerprint. GitLab
        // shows only the first issue of a fingerprint, so a counter keeps them apart.
        let occurrence = seen.entry(identity.clone()).or_default();
        *occurrence += 1;
        let fingerprint = fingerprint(&format!("{identity}\u{0}{occurrence}"));

        let mut description = finding.message.clone();
        if let Some(downgrade) = &finding.downgraded {
            description.push_str(&format!(" (downgraded from {} by policy: {})", downgrade.from, downgrade.reason));
        }
        let severity = match ignored_because {
            Some(reason) => {
                description = format!("ignored by policy ({reason}): {description}");
                "info"
            }
            None => severity(finding.status),
        };
        issues.push(Issue {
            // Redacted before JSON escaping, which could otherwise hide a secret from the
            // final pass.
            description: crate::secret::redact(&description),
            check_name: finding.check,
            fingerprint,
            severity,
            location: IssueLocation { path: crate::secret::redact(&path), lines: Lines { begin: line } },
        });
    }

    let text = serde_json::to_string_pretty(&issues).unwrap_or_else(|_| "[]".to_string());
    crate::secret::redact(&text) + "\n"
}

/// GitLab's severity for a status: errors stop jobs (`critical`), warnings are risks or
/// degradations (`major`), infos need no action (`info`).
fn severity(status: Status) -> &'static str {
    match status {
        Status::Error => "critical",
        Status::Warning => "major",
        Status::Info | Status::Ok | Status::Skipped => "info",
    }
}

/// Returns the path and line an issue points at, and the identity its fingerprint hashes.
fn place(report: &Report, finding: &Finding) -> (String, usize, String) {
    let facts = report.facts;
    let runner = finding.subject.and_then(|subject| facts.runners.get(subject.runner).map(|runner| (subject, runner)));
    let (file, line): (PathBuf, usize) = match (&finding.location, runner) {
        (Some(location), _) => (location.file.clone(), location.line.unwrap_or(1)),
        (None, Some((subject, runner))) => {
            let entry_line = subject.entry.and_then(|entry| facts.entries(subject.runner).get(entry)).map(|entry| entry.line);
            (runner.config.display_path(), entry_line.unwrap_or(1))
        }
        (None, None) => (report.project.map(|root| root.join(PIPELINE_FILE)).unwrap_or_else(|| PIPELINE_FILE.into()), 1),
    };
    let path = crate::project::relative_to(&file, report.project).display().to_string();

    let key = finding.location.as_ref().and_then(|location| location.key.as_deref()).unwrap_or("");
    let subject = match runner {
        Some((subject, runner)) => {
            let container = runner.container().map(|container| container.name.as_str()).unwrap_or("");
            let entry = subject.entry.and_then(|entry| facts.entries(subject.runner).get(entry)).map(|entry| entry.label()).unwrap_or_default();
            format!("{container}\u{0}{entry}")
        }
        None => "host".to_string(),
    };
    let identity = format!("{}\u{0}{path}\u{0}{key}\u{0}{subject}", finding.check);
    (path, line.max(1), identity)
}

/// Lowercase hex SHA-256 of `text`.
fn fingerprint(text: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
    digest.as_ref().iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_sha256_hex() {
        assert_eq!(fingerprint("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn severities_follow_statuses() {
        assert_eq!(severity(Status::Error), "critical");
        assert_eq!(severity(Status::Warning), "major");
        assert_eq!(severity(Status::Info), "info");
    }
}
