//! What `--fix` did, for the human and JSON reports.

use serde::Serialize;

/// The outcome of one file.
#[derive(Debug, Clone, Serialize)]
pub struct FileOutcome {
    pub path: String,
    pub diff: String,
    pub needs_review: bool,
    /// `planned` (dry run), `written`, `declined` or `failed`.
    pub state: &'static str,
    pub backup: Option<String>,
    pub error: Option<String>,
}

/// One fixed or still-reported finding after the second check.
#[derive(Debug, Clone, Serialize)]
pub struct Recheck {
    pub check: &'static str,
    pub message: String,
    pub fixed: bool,
}

/// The whole `--fix` outcome.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FixReport {
    pub files: Vec<FileOutcome>,
    pub held_back: Vec<HeldBackJson>,
    pub commands: Vec<CommandJson>,
    pub rechecked: Vec<Recheck>,
}

#[derive(Debug, Clone, Serialize)]
pub struct HeldBackJson {
    pub check: &'static str,
    pub message: String,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct CommandJson {
    pub check: &'static str,
    pub command: String,
}
