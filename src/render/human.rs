//! The report for people: grouped by runner, then by entry, in the order checks run.

use std::fmt::Write as _;

use owo_colors::OwoColorize;

use super::Report;
use crate::facts::probe::ViewAccess;
use crate::facts::{Entry, Facts, RunnerKind};
use crate::finding::{Finding, Method, Status};
use crate::fix::Action;

/// Styles applied when colour is on.
#[derive(Clone, Copy)]
pub struct Style {
    pub color: bool,
    /// Show evidence of `ok` and `skipped` lines too (`-v`).
    pub verbose: bool,
    /// Point at `--fix` when findings have fixes (off while `--fix` runs).
    pub fix_hint: bool,
}

impl Style {
    fn status(self, status: Status, text: &str) -> String {
        if !self.color {
            return text.to_string();
        }
        match status {
            Status::Error => text.red().bold().to_string(),
            Status::Warning => text.yellow().bold().to_string(),
            Status::Info => text.cyan().bold().to_string(),
            Status::Ok => text.green().to_string(),
            Status::Skipped => text.dimmed().to_string(),
        }
    }

    fn heading(self, text: &str) -> String {
        if self.color { text.bold().to_string() } else { text.to_string() }
    }

    fn dim(self, text: &str) -> String {
        if self.color { text.dimmed().to_string() } else { text.to_string() }
    }
}

/// Renders the report as text, secrets redacted.
pub fn render(report: &Report, style: Style) -> String {
    let facts = report.facts;
    let mut out = String::new();

    // Findings about no runner in particular, by what they are about.
    let mut first = true;
    for heading in GROUP_HEADINGS {
        let in_group: Vec<&Finding> = report.findings.iter().filter(|finding| finding.subject.is_none() && group_of(finding.check) == heading).collect();
        if in_group.is_empty() {
            continue;
        }
        if !first {
            let _ = writeln!(out);
        }
        first = false;
        let title = if heading == "GitLab" { gitlab_heading(facts) } else { heading.to_string() };
        let _ = writeln!(out, "{}", style.heading(&title));
        for finding in in_group {
            write_finding(&mut out, finding, style, "  ");
        }
    }

    for (index, runner) in facts.runners.iter().enumerate() {
        let _ = writeln!(out);
        let _ = writeln!(out, "{}", style.heading(&runner_heading(facts, index)));
        if let Some(line) = view_line(facts, index) {
            let _ = writeln!(out, "  {}", style.dim(&line));
        }
        for finding in report.findings.iter().filter(|finding| finding.subject.is_some_and(|subject| subject.runner == index && subject.entry.is_none())) {
            write_finding(&mut out, finding, style, "  ");
        }
        for entry in facts.entries(index) {
            let in_entry: Vec<&Finding> = report
                .findings
                .iter()
                .filter(|finding| finding.subject.is_some_and(|subject| subject.runner == index && subject.entry == Some(entry.index)))
                .collect();
            if in_entry.is_empty() {
                continue;
            }
            let _ = writeln!(out, "  {}", style.heading(&entry_heading(facts, index, entry)));
            for finding in in_entry {
                write_finding(&mut out, finding, style, "    ");
            }
        }
        let _ = runner;
    }

    let _ = writeln!(out);
    let _ = writeln!(out, "{}", summary_line(report, style));
    let fixable = report.findings.iter().filter(|finding| finding.fix.as_ref().is_some_and(|fix| fix.has_edits())).count();
    if fixable > 0 && style.fix_hint {
        let noun = if fixable == 1 { "finding has" } else { "findings have" };
        let _ = writeln!(out, "{fixable} {noun} a config.toml fix: run `ci-doctor --fix` to review and apply it");
    }
    write_ignored(&mut out, report, style);
    crate::secret::redact(&out)
}

/// Names the GitLab project the scheduling findings are about, and where its GitLab came from.
fn gitlab_heading(facts: &Facts) -> String {
    match (&facts.gitlab.project_ref, &facts.gitlab.target) {
        (Some(project), Some(target)) => format!("GitLab project `{}` at {} ({})", project.id_or_path, target.url, target.source.describe()),
        (Some(project), None) => format!("GitLab project `{}`", project.id_or_path),
        _ => "GitLab".to_string(),
    }
}

/// Headings of the findings about no runner in particular, in report order.
pub(crate) const GROUP_HEADINGS: [&str; 3] = ["This host", "GitLab", "Pipeline"];

/// The heading a finding without a runner goes under, one of [`GROUP_HEADINGS`].
pub(crate) fn group_of(check: &str) -> &'static str {
    match crate::checks::area(check) {
        "gitlab" | "scheduling" | "tls" => "GitLab",
        "pipeline" | "dind" | "image" => "Pipeline",
        _ => "This host",
    }
}

/// Formats the heading of runner `index`: its container or host install, and its config file.
pub fn runner_heading(facts: &Facts, index: usize) -> String {
    let runner = &facts.runners[index];
    let config = runner.config.display_path();
    match &runner.kind {
        RunnerKind::Container(container) => {
            let state = if container.is_running() { String::new() } else { format!(", {}", container.state) };
            format!("Runner container `{}` ({}{state}) · {}", container.name, container.image, config.display())
        }
        RunnerKind::Native(native) => format!("Runner on this host ({}) · {}", native.found_by, config.display()),
    }
}

/// Formats the heading of one `[[runners]]` entry: its name, position and executor.
pub(crate) fn entry_heading(facts: &Facts, runner: usize, entry: &Entry) -> String {
    let mut title = format!("runner `{}` (entry {} of {}", entry.label(), entry.index + 1, facts.entries(runner).len());
    if let Some(executor) = entry.executor() {
        let _ = write!(title, ", {executor} executor");
    }
    title.push(')');
    title
}

/// Formats the line under a runner heading that names the point of view of its network
/// verdicts.
pub(crate) fn view_line(facts: &Facts, index: usize) -> Option<String> {
    let line = match facts.probes.view(index)? {
        ViewAccess::Namespace { .. } => "probes run inside the container's network namespace".to_string(),
        ViewAccess::HostNetwork => "probes run from this host".to_string(),
        ViewAccess::Unavailable { reason } => format!("not probed ({reason}); network verdicts come from reasoning"),
        ViewAccess::Disabled => "not probed (`--no-probe`); network verdicts come from reasoning".to_string(),
    };
    Some(line)
}

/// Writes one finding: its label and message, then location, effect, evidence, basis, help and
/// commands on indented lines.
pub(crate) fn write_finding(out: &mut String, finding: &Finding, style: Style, indent: &str) {
    let label = format!("{}[{}]", finding.status.label(), finding.check);
    let _ = writeln!(out, "{indent}{}: {}", style.status(finding.status, &label), finding.message);

    let inner = format!("{indent}  ");
    if let Some(location) = &finding.location {
        let mut place = location.file.display().to_string();
        if let Some(line) = location.line {
            let _ = write!(place, ":{line}");
            if let Some(column) = location.column {
                let _ = write!(place, ":{column}");
            }
        }
        if let Some(key) = &location.key {
            let _ = write!(place, " ({key})");
        }
        let _ = writeln!(out, "{inner}--> {place}");
    }
    if let Some(downgrade) = &finding.downgraded {
        let _ = writeln!(out, "{inner}= policy: downgraded from {} ({}): {}", downgrade.from, downgrade.rule, downgrade.reason);
    }
    if let Some(effect) = &finding.effect {
        let _ = writeln!(out, "{inner}= effect: {effect}");
    }
    let show_evidence = finding.status.is_problem() || style.verbose;
    for line in finding.evidence.iter().filter(|_| show_evidence) {
        if is_preformatted(line) {
            let _ = writeln!(out, "{inner}{line}");
        } else {
            let _ = writeln!(out, "{inner}= evidence: {line}");
        }
    }
    if finding.status.is_problem()
        && let Some(basis) = &finding.basis
    {
        let how = match basis.method {
            Method::Probe => "probe",
            Method::Reasoning => "reasoning",
        };
        let _ = writeln!(out, "{inner}= {}: {}", style.dim(&format!("judged by {how}")), style.dim(&basis.detail));
    }
    if let Some(help) = &finding.help {
        let _ = writeln!(out, "{inner}help: {help}");
    }
    if let Some(fix) = &finding.fix {
        for action in &fix.actions {
            if let Action::Command { command } = action {
                let _ = writeln!(out, "{inner}run: {command}");
            }
        }
    }
}

/// Returns true for an evidence line of a source snippet (`  |`, `-->`), which keeps its own
/// alignment instead of getting an `= evidence:` label.
pub(crate) fn is_preformatted(line: &str) -> bool {
    line.starts_with(' ') || line.starts_with('|') || line.trim_start().starts_with("-->") || line.contains(" | ")
}

/// Formats the one-line summary: counts of each status and of runners.
pub(crate) fn summary_line(report: &Report, style: Style) -> String {
    let summary = report.summary();
    let plural = |count: usize, one: &str, many: &str| format!("{count} {}", if count == 1 { one } else { many });
    let problems = [
        style.status(if summary.errors > 0 { Status::Error } else { Status::Ok }, &plural(summary.errors, "error", "errors")),
        style.status(if summary.warnings > 0 { Status::Warning } else { Status::Ok }, &plural(summary.warnings, "warning", "warnings")),
        plural(summary.infos, "info", "infos"),
    ];
    let runners = report.facts.runners.len();
    format!(
        "{} · {} ok, {} skipped · {} diagnosed",
        problems.join(", "),
        summary.ok,
        summary.skipped,
        plural(runners, "runner", "runners")
    )
}

/// Lists the findings a policy ignored, grouped by rule:
/// `1 finding ignored by policy: <reason>`, then each finding's label and message.
fn write_ignored(out: &mut String, report: &Report, style: Style) {
    let mut rules: Vec<&str> = Vec::new();
    for ignored in report.ignored {
        if !rules.contains(&ignored.rule.as_str()) {
            rules.push(&ignored.rule);
        }
    }
    for rule in rules {
        let of_rule: Vec<_> = report.ignored.iter().filter(|ignored| ignored.rule == rule).collect();
        let noun = if of_rule.len() == 1 { "finding" } else { "findings" };
        let _ = writeln!(out, "{} {noun} ignored by policy: {}", of_rule.len(), of_rule[0].reason);
        let _ = writeln!(out, "  {}", style.dim(&format!("rule {rule}")));
        for ignored in of_rule {
            let finding = &ignored.finding;
            let label = format!("{}[{}]", finding.status.label(), finding.check);
            let _ = writeln!(out, "  {}: {}", style.dim(&label), finding.message);
        }
    }
}
