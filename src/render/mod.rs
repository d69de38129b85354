//! Views of one report: human text, JSON, JUnit XML, GitLab Code Quality JSON and Markdown.
//! All read the same findings and add nothing of their own; a final pass removes any secret
//! that slipped into the text.

pub mod codequality;
pub mod human;
pub mod json;
pub mod junit;
pub mod markdown;

use std::path::Path;
use std::time::Duration;

use crate::facts::Facts;
use crate::finding::{Finding, Status};
use crate::policy::Ignored;

/// The findings of a run with the facts they are about.
pub struct Report<'a> {
    pub facts: &'a Facts,
    pub findings: &'a [Finding],
    pub strict: bool,
    /// Findings that a policy rule ignored, with their reasons. They count in no total and in
    /// no exit status.
    pub ignored: &'a [Ignored],
    /// The policy file that was read, if any.
    pub policy: Option<&'a Path>,
    /// Top of the Git checkout; paths inside it are shown relative to it where a format
    /// expects project paths (Code Quality, JUnit).
    pub project: Option<&'a Path>,
    /// Time spent gathering facts and running checks.
    pub elapsed: Duration,
}

/// The findings under one heading of the human report: about the host, GitLab or the
/// pipeline, or about one runner.
pub struct Section<'a> {
    /// Index of the runner in `Facts::runners`; `None` for findings about no runner.
    pub runner: Option<usize>,
    /// The heading the human report uses.
    pub title: String,
    /// Findings about the host or the runner as a whole.
    pub general: Vec<&'a Finding>,
    /// Findings about each `[[runners]]` entry that has any: heading and findings.
    pub entries: Vec<(String, Vec<&'a Finding>)>,
}

impl Section<'_> {
    /// Returns true when the section contains no finding.
    pub fn is_empty(&self) -> bool {
        self.general.is_empty() && self.entries.is_empty()
    }
}

/// Groups `findings` by subject: those about no runner first (the host, GitLab, the pipeline),
/// then each runner with its entries. A finding
/// whose entry no longer exists in the parsed config counts as about its runner.
pub fn sections<'a>(facts: &Facts, findings: impl IntoIterator<Item = &'a Finding> + Clone) -> Vec<Section<'a>> {
    let mut out: Vec<Section> = human::GROUP_HEADINGS
        .iter()
        .map(|heading| Section {
            runner: None,
            title: heading.to_string(),
            general: findings.clone().into_iter().filter(|finding| finding.subject.is_none() && human::group_of(finding.check) == *heading).collect(),
            entries: Vec::new(),
        })
        .collect();
    for index in 0..facts.runners.len() {
        let of_runner: Vec<&Finding> = findings.clone().into_iter().filter(|finding| finding.subject.is_some_and(|subject| subject.runner == index)).collect();
        let entries = facts.entries(index);
        let mut section = Section { runner: Some(index), title: human::runner_heading(facts, index), general: Vec::new(), entries: Vec::new() };
        for finding in &of_runner {
            let entry = finding.subject.and_then(|subject| subject.entry);
            if entry.is_none_or(|entry| entry >= entries.len()) {
                section.general.push(finding);
            }
        }
        for entry in entries {
            let in_entry: Vec<&Finding> = of_runner.iter().copied().filter(|finding| finding.subject.and_then(|subject| subject.entry) == Some(entry.index)).collect();
            if !in_entry.is_empty() {
                section.entries.push((human::entry_heading(facts, index, entry), in_entry));
            }
        }
        out.push(section);
    }
    out
}

/// Counts of each status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    pub errors: usize,
    pub warnings: usize,
    pub infos: usize,
    pub ok: usize,
    pub skipped: usize,
}

impl Report<'_> {
    pub fn summary(&self) -> Summary {
        let mut summary = Summary::default();
        for finding in self.findings {
            match finding.status {
                Status::Error => summary.errors += 1,
                Status::Warning => summary.warnings += 1,
                Status::Info => summary.infos += 1,
                Status::Ok => summary.ok += 1,
                Status::Skipped => summary.skipped += 1,
            }
        }
        summary
    }

    /// 0 without errors, 1 with at least one error (or, with `--strict`, a warning).
    pub fn exit_code(&self) -> u8 {
        let summary = self.summary();
        if summary.errors > 0 || (self.strict && summary.warnings > 0) { 1 } else { 0 }
    }
}
