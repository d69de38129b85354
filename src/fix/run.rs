//! Runs `--fix`: show the diagnosis and the planned diffs, ask once, write, and check again.

use std::io::{BufRead, IsTerminal, Write};
use std::time::Instant;

use super::flow::{self, Destination, Plan};
use super::report::{CommandJson, FileOutcome, FixReport, HeldBackJson, Recheck};
use crate::checks::{self, Selection};
use crate::cli::{DiagnoseArgs, Format};
use crate::facts::Facts;
use crate::finding::Finding;
use crate::gather::Options;
use crate::policy::{Ignored, Policy};
use crate::render::{self, Report};

/// The results of the diagnosis that runs before `--fix`.
pub struct Diagnosis<'a> {
    pub facts: &'a Facts,
    pub findings: &'a [Finding],
    /// Findings the policy ignored; they get no fix.
    pub ignored: &'a [Ignored],
    /// The policy, applied again to the check after the fix.
    pub policy: &'a Policy,
}

/// Runs the fix flow and returns the exit status of the state after it.
pub async fn run(args: &DiagnoseArgs, options: &Options, selection: &Selection, diagnosis: &Diagnosis<'_>, color: bool) -> anyhow::Result<u8> {
    let Diagnosis { facts, findings, ignored, policy } = *diagnosis;
    let human = args.format == Format::Human;
    let started = Instant::now();
    let project = crate::project::current_root();
    let report = Report {
        facts,
        findings,
        strict: args.strict,
        ignored,
        policy: policy.path.as_deref(),
        project: project.as_deref(),
        elapsed: started.elapsed(),
    };
    if human {
        crate::output::write_report(&render::human::render(&report, render::human::Style { color, verbose: args.verbose > 0, fix_hint: false }))?;
    }

    let interactive = std::io::stdin().is_terminal() && std::io::stderr().is_terminal() && !args.yes;
    let named = flow::named_in(selection);
    let accept_review = |finding: &Finding| {
        named(finding) || (interactive && !args.dry_run && ask(&format!("The fix of `{}` widens what jobs can do ({}). Include it?", finding.check, finding.fix.as_ref().map(|fix| fix.summary.as_str()).unwrap_or(""))))
    };
    let plan = flow::plan(facts, findings, &accept_review);
    let mut outcome = describe(&plan, findings);

    if human {
        crate::output::write_report(&render_plan(&plan, findings))?;
    }
    if !plan.changes_anything() {
        if human {
            crate::output::write_report("\nNothing to fix: no finding has a config.toml edit to apply; every file is left as it was.\n")?;
        }
        return finish(args, &report, &outcome, report.exit_code());
    }
    if args.dry_run {
        for file in &mut outcome.files {
            file.state = "planned";
        }
        if human {
            crate::output::write_report("\nDry run: nothing was written.\n")?;
        }
        return finish(args, &report, &outcome, report.exit_code());
    }

    let changed = plan.files.iter().filter(|file| file.changes_anything()).count();
    if !args.yes {
        if !interactive {
            anyhow::bail!("refusing to write without confirmation: stdin is not a terminal; pass `--yes` to apply the changes above, or `--dry-run` to only show them");
        }
        let noun = if changed == 1 { "file" } else { "files" };
        if !ask(&format!("Apply these changes to {changed} {noun}?")) {
            for file in &mut outcome.files {
                file.state = "declined";
            }
            if human {
                crate::output::write_report("Nothing was written.\n")?;
            }
            return finish(args, &report, &outcome, report.exit_code());
        }
    }

    let wrote_any = write_all(&plan, facts, options, &mut outcome).await;
    if human {
        crate::output::write_report(&render_writes(&outcome))?;
    }
    if !wrote_any {
        return finish(args, &report, &outcome, 2);
    }

    // Check again with fresh facts: only the second look says whether a fix worked.
    let started = Instant::now();
    let progress = crate::progress::display(args.format);
    let after_facts = crate::app::interruptible(crate::gather::gather(options)).await;
    drop(progress);
    let (after, after_ignored) = policy.apply(&after_facts, checks::run(&after_facts, selection));
    for file in plan.files.iter().filter(|file| file.changes_anything()) {
        for index in &file.included {
            let finding = &findings[*index];
            outcome.rechecked.push(Recheck { check: finding.check, message: finding.message.clone(), fixed: flow::is_fixed(finding, &after) });
        }
    }
    let after_report = Report {
        facts: &after_facts,
        findings: &after,
        strict: args.strict,
        ignored: &after_ignored,
        policy: policy.path.as_deref(),
        project: project.as_deref(),
        elapsed: started.elapsed(),
    };
    if human {
        crate::output::write_report(&render_recheck(&outcome))?;
    }
    finish(args, &after_report, &outcome, after_report.exit_code())
}

fn finish(args: &DiagnoseArgs, report: &Report, outcome: &FixReport, code: u8) -> anyhow::Result<u8> {
    if args.format == Format::Json {
        crate::output::write_report(&(render::json::render(report, Some(outcome)) + "\n"))?;
    }
    Ok(code)
}

fn describe(plan: &Plan, findings: &[Finding]) -> FixReport {
    FixReport {
        files: plan
            .files
            .iter()
            .filter(|file| file.changes_anything())
            .map(|file| FileOutcome {
                path: file.display.display().to_string(),
                diff: flow::render_diff(file, findings),
                needs_review: file.needs_review,
                state: "planned",
                backup: None,
                error: None,
            })
            .collect(),
        held_back: plan
            .held_back
            .iter()
            .map(|held| HeldBackJson { check: findings[held.finding].check, message: findings[held.finding].message.clone(), reason: held.reason.clone() })
            .collect(),
        commands: plan.commands.iter().map(|(index, command)| CommandJson { check: findings[*index].check, command: command.clone() }).collect(),
        rechecked: Vec::new(),
    }
}

fn render_plan(plan: &Plan, findings: &[Finding]) -> String {
    let mut out = String::new();
    let changed: Vec<_> = plan.files.iter().filter(|file| file.changes_anything()).collect();
    if !changed.is_empty() {
        out.push_str("\nFixes\n");
        for file in changed {
            out.push_str(&flow::render_diff(file, findings));
        }
    }
    if !plan.held_back.is_empty() {
        out.push_str("\nNot applied:\n");
        for held in &plan.held_back {
            let finding = &findings[held.finding];
            out.push_str(&format!("  {}: {} ({})\n", finding.check, finding.fix.as_ref().map(|fix| fix.summary.as_str()).unwrap_or(""), held.reason));
        }
    }
    if !plan.commands.is_empty() {
        out.push_str("\nRun these yourself; ci-doctor never runs them:\n");
        for (index, command) in &plan.commands {
            out.push_str(&format!("  {}: {command}\n", findings[*index].check));
        }
    }
    crate::secret::redact(&out)
}

fn render_writes(outcome: &FixReport) -> String {
    let mut out = String::new();
    for file in &outcome.files {
        match (file.state, &file.backup, &file.error) {
            ("written", Some(backup), _) => out.push_str(&format!("wrote {} (backup: {backup})\n", file.path)),
            ("written", None, _) => out.push_str(&format!("wrote {}\n", file.path)),
            (_, _, Some(error)) => out.push_str(&format!("error: {error}\n")),
            _ => {}
        }
    }
    if outcome.files.iter().any(|file| file.state == "written") {
        out.push_str("The runner notices the change by itself within a few seconds (it checks the file's time every 3 s); no restart is needed.\n");
    }
    out
}

fn render_recheck(outcome: &FixReport) -> String {
    let mut out = String::from("\nChecked again:\n");
    for recheck in &outcome.rechecked {
        let state = if recheck.fixed { "fixed" } else { "still reported" };
        out.push_str(&format!("  {state}: {}: {}\n", recheck.check, recheck.message));
    }
    crate::secret::redact(&out)
}

/// Writes every planned file; returns true when at least one was written.
async fn write_all(plan: &Plan, facts: &Facts, options: &Options, outcome: &mut FixReport) -> bool {
    let mut wrote_any = false;
    let mut docker = None;
    let mut files = outcome.files.iter_mut();
    for file in plan.files.iter().filter(|file| file.changes_anything()) {
        let Some(entry) = files.next() else { break };
        let result = match flow::destination(facts, file.runner) {
            Some(Destination::Host(path)) => super::write::write_host(&path, &file.original, &file.updated, file.mode).map_err(|error| error.to_string()),
            Some(Destination::Container { id, name, path, meta }) => {
                if docker.is_none() {
                    let endpoint = crate::gather::docker::Endpoint::from_env();
                    docker = crate::gather::docker::connect(&endpoint, options.timeout).await.ok().map(|(client, _)| client);
                }
                match &docker {
                    Some(client) => super::write::write_container(client, &id, &path, &file.original, &file.updated, meta).await.map_err(|error| error.to_string()),
                    None => Err(format!("failed to reach Docker to write `{}` in container `{name}`", path.display())),
                }
            }
            None => Err(format!("no way to write `{}`", file.display.display())),
        };
        match result {
            Ok(written) => {
                wrote_any = true;
                entry.state = "written";
                entry.backup = written.backup.map(|backup| backup.display().to_string());
            }
            Err(error) => {
                entry.state = "failed";
                entry.error = Some(crate::secret::redact(&error));
            }
        }
    }
    wrote_any
}

/// Asks a yes/no question on stderr; anything but `y` or `yes` is no.
fn ask(question: &str) -> bool {
    let mut stderr = std::io::stderr();
    let _ = write!(stderr, "{question} [y/N] ");
    let _ = stderr.flush();
    let mut answer = String::new();
    if std::io::stdin().lock().read_line(&mut answer).is_err() {
        return false;
    }
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}
