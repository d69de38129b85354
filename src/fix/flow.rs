//! The `--fix` flow: plan the edits of each config, show the diffs, confirm, write, and check
//! again.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use similar::TextDiff;
use toml_edit::DocumentMut;

use super::{Action, Safety, edit};
use crate::checks::Selection;
use crate::facts::config::{ConfigOrigin, FileMeta};
use crate::facts::{Facts, RunnerKind};
use crate::finding::{Finding, Subject};

/// The planned change of one config file.
#[derive(Debug, Clone)]
pub struct FilePlan {
    pub runner: usize,
    pub display: PathBuf,
    pub original: String,
    pub updated: String,
    /// New permission bits, when a fix changes them.
    pub mode: Option<u32>,
    /// Indexes (into the findings) of the fixes included.
    pub included: Vec<usize>,
    pub needs_review: bool,
}

impl FilePlan {
    pub fn changes_anything(&self) -> bool {
        self.original != self.updated || self.mode.is_some()
    }
}

/// A fix that was not included, and why.
#[derive(Debug, Clone)]
pub struct HeldBack {
    pub finding: usize,
    pub reason: String,
}

/// Every planned change.
#[derive(Debug, Clone, Default)]
pub struct Plan {
    pub files: Vec<FilePlan>,
    pub held_back: Vec<HeldBack>,
    /// Commands for remedies outside config.toml, with the finding they belong to.
    pub commands: Vec<(usize, String)>,
}

impl Plan {
    pub fn changes_anything(&self) -> bool {
        self.files.iter().any(FilePlan::changes_anything)
    }
}

/// Plans the fixes of `findings` against the config each one belongs to. A fix that needs
/// review is included only when `accept_review` says so for its check.
pub fn plan(facts: &Facts, findings: &[Finding], accept_review: &dyn Fn(&Finding) -> bool) -> Plan {
    let mut plan = Plan::default();
    let mut by_runner: BTreeMap<usize, Vec<usize>> = BTreeMap::new();

    for (index, finding) in findings.iter().enumerate() {
        let Some(fix) = &finding.fix else { continue };
        for action in &fix.actions {
            if let Action::Command { command } = action {
                plan.commands.push((index, command.clone()));
            }
        }
        if !fix.has_edits() {
            continue;
        }
        let Some(Subject { runner, .. }) = finding.subject else { continue };
        if fix.safety == Safety::NeedsReview && !accept_review(finding) {
            plan.held_back.push(HeldBack {
                finding: index,
                reason: format!("it widens what jobs can do; apply it with `ci-doctor --fix --only {}`", finding.check),
            });
            continue;
        }
        by_runner.entry(runner).or_default().push(index);
    }

    for (runner, mut indexes) in by_runner {
        // Removing an entry shifts the ones after it, so removals go last, highest entry first.
        indexes.sort_by_key(|index| match removed_entry(&findings[*index]) {
            Some(entry) => (1, usize::MAX - entry),
            None => (0, *index),
        });
        let config = &facts.runners[runner].config;
        let Ok(original) = &config.text else { continue };
        let Ok(mut document) = super::text::normalize(original).parse::<DocumentMut>() else {
            for index in indexes {
                plan.held_back.push(HeldBack { finding: index, reason: "the file is not valid TOML (see `config.syntax`)".into() });
            }
            continue;
        };

        let mut file = FilePlan {
            runner,
            display: config.display_path(),
            original: original.clone(),
            updated: original.clone(),
            mode: None,
            included: Vec::new(),
            needs_review: false,
        };
        let mut claimed: BTreeMap<String, usize> = BTreeMap::new();
        for index in indexes {
            let finding = &findings[index];
            let fix = finding.fix.as_ref().expect("only findings with fixes are planned");
            if let Some(conflict) = conflicting(fix, &claimed) {
                plan.held_back.push(HeldBack { finding: index, reason: format!("it edits the same key as the fix of `{}`", findings[conflict].check) });
                continue;
            }

            // Apply to a copy, so that a fix that fails half-way leaves no partial edit.
            let mut candidate = document.clone();
            let mut failure = None;
            for action in fix.actions.iter().filter(|action| action.is_edit()) {
                match action {
                    Action::SetFileMode { mode } => file.mode = Some(*mode),
                    _ => {
                        if let Err(error) = edit::apply(&mut candidate, action) {
                            failure = Some(error.to_string());
                            break;
                        }
                    }
                }
            }
            match failure {
                Some(reason) => plan.held_back.push(HeldBack { finding: index, reason }),
                None => {
                    document = candidate;
                    for path in edited_paths(fix) {
                        claimed.insert(path, index);
                    }
                    file.needs_review |= fix.safety == Safety::NeedsReview;
                    file.included.push(index);
                }
            }
        }
        file.updated = super::text::reconstruct(original, &document.to_string());
        if file.mode.is_some() && config.host_path.is_none() {
            // Modes of files inside containers are kept as they are; the finding says how to
            // change them there.
            file.mode = None;
        }
        if file.mode == config.meta.map(|meta| meta.mode) {
            file.mode = None;
        }
        plan.files.push(file);
    }
    plan
}

/// Returns the `[[runners]]` entry that a finding's fix removes, if any.
fn removed_entry(finding: &Finding) -> Option<usize> {
    finding.fix.as_ref()?.actions.iter().find_map(|action| match action {
        Action::RemoveEntry { entry } => Some(*entry),
        _ => None,
    })
}

fn edited_paths(fix: &super::Fix) -> Vec<String> {
    fix.actions
        .iter()
        .filter_map(|action| match action {
            Action::SetKey { path, .. } | Action::RemoveKey { path } | Action::RenameKey { path, .. } => Some(path.to_string().to_ascii_lowercase()),
            Action::RemoveEntry { entry } => Some(format!("runners[{entry}]")),
            _ => None,
        })
        .collect()
}

fn conflicting(fix: &super::Fix, claimed: &BTreeMap<String, usize>) -> Option<usize> {
    edited_paths(fix).iter().find_map(|path| claimed.get(path).copied())
}

/// The unified diff of one file, with a header that says what the fixes are.
pub fn render_diff(file: &FilePlan, findings: &[Finding]) -> String {
    let mut out = String::new();
    let shown = file.display.display();
    let review = if file.needs_review { " (needs review: widens what jobs can do)" } else { "" };
    let _ = writeln!(out, "--- {shown}");
    let _ = writeln!(out, "+++ {shown} (fixed){review}");
    for index in &file.included {
        let finding = &findings[*index];
        if let Some(fix) = &finding.fix {
            let marker = if fix.safety == Safety::NeedsReview { " [needs review]" } else { "" };
            let _ = writeln!(out, "# {}: {}{marker}", finding.check, fix.summary);
        }
    }
    let diff = TextDiff::from_lines(&file.original, &file.updated);
    for hunk in diff.unified_diff().context_radius(3).iter_hunks() {
        let _ = write!(out, "{hunk}");
    }
    if let Some(mode) = file.mode {
        let _ = writeln!(out, "mode: {mode:04o}");
    }
    crate::secret::redact(&out)
}

/// Where a planned file gets written.
pub enum Destination {
    Host(PathBuf),
    Container { id: String, name: String, path: PathBuf, meta: FileMeta },
}

/// Where the config of runner `runner` must be written: the host path ci-doctor read, or back
/// into the container.
pub fn destination(facts: &Facts, runner: usize) -> Option<Destination> {
    let process = &facts.runners[runner];
    let config = &process.config;
    if let Some(path) = &config.host_path {
        return Some(Destination::Host(path.clone()));
    }
    match (&process.kind, &config.origin) {
        (RunnerKind::Container(container), ConfigOrigin::BindMount { .. } | ConfigOrigin::Volume { .. } | ConfigOrigin::Copied { .. }) => Some(Destination::Container {
            id: container.id.clone(),
            name: container.name.clone(),
            path: config.path.clone(),
            meta: config.meta.unwrap_or(FileMeta { mode: 0o600, uid: 0, gid: 0, len: 0 }),
        }),
        _ => None,
    }
}

/// Returns true when `before` (a finding that had a fix) is no longer reported in `after`: no
/// problem of the same check remains for the same subject and key.
pub fn is_fixed(before: &Finding, after: &[Finding]) -> bool {
    let key = |finding: &Finding| finding.location.as_ref().and_then(|location| location.key.clone());
    !after.iter().any(|finding| finding.check == before.check && finding.subject == before.subject && finding.status.is_problem() && key(finding) == key(before))
}

/// Filters findings for the checks a `--only` selection names, for fixes that need review.
pub fn named_in(selection: &Selection) -> impl Fn(&Finding) -> bool + '_ {
    move |finding: &Finding| selection.names(finding.check)
}
