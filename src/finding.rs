//! Findings: what a check observed, how bad it is, and how to repair it.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use crate::fix::Fix;

/// How a check judged one subject (the host, a runner process or one `[[runners]]` entry).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Jobs fail or never start.
    Error,
    /// Works by luck, degraded, or a security risk.
    Warning,
    /// Worth knowing, nothing to do.
    Info,
    /// Verified to work; the message says what was verified.
    Ok,
    /// Could not be judged; the message says why and what would enable it.
    Skipped,
}

impl Status {
    /// Returns true for the statuses that are findings rather than notes.
    pub fn is_problem(self) -> bool {
        matches!(self, Status::Error | Status::Warning | Status::Info)
    }

    /// Lowercase label used in human output and JSON.
    pub fn label(self) -> &'static str {
        match self {
            Status::Error => "error",
            Status::Warning => "warning",
            Status::Info => "info",
            Status::Ok => "ok",
            Status::Skipped => "skipped",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// Which subject a finding is about: the index of a runner process in `Facts::runners`
/// and, for per-entry checks, the index of its `[[runners]]` entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Subject {
    pub runner: usize,
    pub entry: Option<usize>,
}

/// The point of view a network finding was judged from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum View {
    /// The machine ci-doctor runs on.
    Host,
    /// The runner process, or its container's network namespace.
    Runner,
    /// A job or helper container created by the docker executor.
    Job,
}

/// How a network verdict was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// A connection made from inside the right network namespace.
    Probe,
    /// Deduced from container settings alone.
    Reasoning,
}

/// The view and the method behind a network finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Basis {
    pub view: View,
    pub method: Method,
    /// One line on how the probe was made, or why none was possible.
    pub detail: String,
}

/// A place in a configuration file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Location {
    /// The file as ci-doctor read it (a host path, or the path inside a container).
    pub file: PathBuf,
    /// TOML key path such as `runners[0].docker.privileged`.
    pub key: Option<String>,
    /// 1-based line, when the key exists in the file.
    pub line: Option<usize>,
    /// 1-based column (in characters), when the key exists in the file.
    pub column: Option<usize>,
}

/// One observation of one check about one subject.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    pub check: &'static str,
    pub status: Status,
    pub subject: Option<Subject>,
    /// One line: the observed fact.
    pub message: String,
    /// Why it matters: the effect on jobs or on the runner.
    pub effect: Option<String>,
    /// Facts that support the message, one line each.
    pub evidence: Vec<String>,
    pub basis: Option<Basis>,
    pub location: Option<Location>,
    /// One imperative line on what to do.
    pub help: Option<String>,
    pub fix: Option<Fix>,
    /// Set when a policy rule lowered the severity the check gave.
    pub downgraded: Option<Downgrade>,
}

/// A severity change made by a policy rule, shown with the finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Downgrade {
    /// The severity the check gave.
    pub from: Status,
    /// The rule's `reason`.
    pub reason: String,
    /// Location of the rule, for example ``` `[[downgrade]]` 1 in `/srv/app/.ci-doctor.toml` ```.
    pub rule: String,
}

impl Finding {
    /// Starts a finding of `check` with `status` and `message`; the builder methods add the rest.
    pub fn new(check: &'static str, status: Status, message: impl Into<String>) -> Finding {
        Finding {
            check,
            status,
            subject: None,
            message: message.into(),
            effect: None,
            evidence: Vec::new(),
            basis: None,
            location: None,
            help: None,
            fix: None,
            downgraded: None,
        }
    }

    pub fn subject(mut self, subject: Subject) -> Self {
        self.subject = Some(subject);
        self
    }

    pub fn effect(mut self, effect: impl Into<String>) -> Self {
        self.effect = Some(effect.into());
        self
    }

    pub fn evidence(mut self, line: impl Into<String>) -> Self {
        self.evidence.push(line.into());
        self
    }

    pub fn basis(mut self, basis: Basis) -> Self {
        self.basis = Some(basis);
        self
    }

    pub fn location(mut self, location: Option<Location>) -> Self {
        self.location = location;
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn fix(mut self, fix: Fix) -> Self {
        self.fix = Some(fix);
        self
    }
}
