//! Typed repairs carried by findings.
//!
//! A check never edits anything: it describes the repair as data. The fixer plans these
//! actions against the parsed `toml_edit` document of the right file, shows a diff and writes
//! the file safely.

pub mod edit;
pub mod flow;
pub mod report;
pub mod run;
pub mod text;
pub mod write;

use serde::Serialize;

/// Whether a fix can be applied without a second look.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Safety {
    /// Changes nothing that jobs could abuse.
    Safe,
    /// Widens what jobs can do (privileged mode, a mounted Docker socket); applied only when
    /// its check is named with `--only` or the user confirms it.
    NeedsReview,
}

/// A TOML value that a fix writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum TomlValue {
    String(String),
    Integer(i64),
    Bool(bool),
    Strings(Vec<String>),
}

/// Where a key lives: the top level of the file or one `[[runners]]` entry, then the keys
/// below it, for example `entry: Some(0), keys: ["docker", "network_mode"]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyPath {
    pub entry: Option<usize>,
    pub keys: Vec<String>,
}

impl KeyPath {
    /// A key at the top level of the file.
    pub fn top(keys: &[&str]) -> KeyPath {
        KeyPath { entry: None, keys: keys.iter().map(|key| key.to_string()).collect() }
    }

    /// A key inside `[[runners]]` entry `entry`.
    pub fn entry(entry: usize, keys: &[&str]) -> KeyPath {
        KeyPath { entry: Some(entry), keys: keys.iter().map(|key| key.to_string()).collect() }
    }
}

impl std::fmt::Display for KeyPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if let Some(entry) = self.entry {
            write!(f, "runners[{entry}]")?;
            for key in &self.keys {
                write!(f, ".{key}")?;
            }
            Ok(())
        } else {
            f.write_str(&self.keys.join("."))
        }
    }
}

/// One step of a repair.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Action {
    /// Set a key, creating it (and its table) when missing. A new key goes right after the
    /// sibling named `after` when that exists, otherwise at the end of its table.
    SetKey { path: KeyPath, value: TomlValue, after: Option<String> },
    /// Remove a key.
    RemoveKey { path: KeyPath },
    /// Append a string to an array, creating the array when missing.
    AddToArray { path: KeyPath, value: String },
    /// Remove a string from an array.
    RemoveFromArray { path: KeyPath, value: String },
    /// Rename a key, keeping its value and position.
    RenameKey { path: KeyPath, new_name: String },
    /// Remove a whole `[[runners]]` entry.
    RemoveEntry { entry: usize },
    /// Change the file's permission bits.
    SetFileMode { mode: u32 },
    /// A command for the user to run; ci-doctor never runs it.
    Command { command: String },
}

impl Action {
    /// Returns true when the action is an edit of `config.toml` that `--fix` can apply.
    pub fn is_edit(&self) -> bool {
        !matches!(self, Action::Command { .. })
    }
}

/// A repair: what it does in one line, its safety, and its steps.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Fix {
    pub summary: String,
    pub safety: Safety,
    pub actions: Vec<Action>,
}

impl Fix {
    /// A fix made of `config.toml` edits that are safe to apply.
    pub fn safe(summary: impl Into<String>, actions: Vec<Action>) -> Fix {
        Fix { summary: summary.into(), safety: Safety::Safe, actions }
    }

    /// A fix that widens what jobs can do.
    pub fn needs_review(summary: impl Into<String>, actions: Vec<Action>) -> Fix {
        Fix { summary: summary.into(), safety: Safety::NeedsReview, actions }
    }

    /// Commands for the user to run, for remedies outside `config.toml`.
    pub fn commands(summary: impl Into<String>, commands: &[String]) -> Fix {
        let actions = commands.iter().map(|command| Action::Command { command: command.clone() }).collect();
        Fix { summary: summary.into(), safety: Safety::Safe, actions }
    }

    /// Returns true when the fix has at least one `config.toml` edit.
    pub fn has_edits(&self) -> bool {
        self.actions.iter().any(Action::is_edit)
    }
}
