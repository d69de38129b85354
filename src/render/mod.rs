//! Views of one report: human text and JSON. Both read the same findings and add nothing of
//! their own; a final pass removes any secret that slipped into the text.

pub mod human;
pub mod json;

use crate::facts::Facts;
use crate::finding::{Finding, Status};

/// The findings of a run with the facts they are about.
pub struct Report<'a> {
    pub facts: &'a Facts,
    pub findings: &'a [Finding],
    pub strict: bool,
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
