//! The program: parse arguments, gather, check, render, and set the exit status.

use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{ArgMatches, CommandFactory, FromArgMatches};

use crate::checks::{self, Selection};
use crate::cli::{Cli, ColorChoice, Command, DiagnoseArgs, Format, ListFormat};
use crate::policy::Policy;
use crate::render::{self, Report};

/// Exit status when ci-doctor itself could not run.
const EXIT_FAILURE: u8 = 2;

/// Runs ci-doctor and returns its exit status: 0 without errors, 1 with errors, 2 when it could
/// not run.
pub fn main() -> ExitCode {
    let matches = Cli::command().get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit());
    crate::probe::cleanup::install_panic_hook();
    crate::logging::init(cli.diagnose.verbose, use_color(cli.diagnose.color, std::io::stderr().is_terminal()));

    let result = match &cli.command {
        Some(Command::List { format }) => list(*format),
        Some(Command::Explain { id }) => explain(id),
        Some(Command::Why { message, log }) => why(message.as_deref(), log.as_deref(), &cli.diagnose, &matches),
        Some(Command::Docs { out }) => docs(out),
        Some(Command::Completions { shell }) => completions(*shell),
        Some(Command::Manpage { out }) => manpage(out.as_deref()),
        None => diagnose(cli.diagnose.clone(), &matches),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            let mut stderr = std::io::stderr();
            let _ = writeln!(stderr, "error: {}", crate::secret::redact(&error.to_string()));
            for cause in error.chain().skip(1) {
                let _ = writeln!(stderr, "  caused by: {}", crate::secret::redact(&cause.to_string()));
            }
            ExitCode::from(EXIT_FAILURE)
        }
    }
}

/// Colour on a terminal unless `NO_COLOR` is set (to anything but an empty string).
fn use_color(choice: ColorChoice, is_terminal: bool) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => is_terminal && std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty()),
    }
}

fn list(format: ListFormat) -> anyhow::Result<u8> {
    let mut out = String::new();
    match format {
        ListFormat::Human => {
            let width = checks::CHECKS.iter().map(|check| check.id().len()).max().unwrap_or(0);
            for check in checks::CHECKS {
                out.push_str(&format!("{:width$}  {}\n", check.id(), check.summary()));
            }
        }
        ListFormat::Json => {
            let list: Vec<serde_json::Value> = checks::CHECKS
                .iter()
                .map(|check| serde_json::json!({ "id": check.id(), "area": checks::area(check.id()), "summary": check.summary() }))
                .collect();
            out = serde_json::to_string_pretty(&list)? + "\n";
        }
    }
    write_stdout(&out)?;
    Ok(0)
}

fn explain(id: &str) -> anyhow::Result<u8> {
    let Some(check) = checks::find(id) else {
        let ids = checks::CHECKS.iter().map(|check| check.id());
        let hint = match crate::suggest::closest(id, ids) {
            Some(close) => format!("; did you mean `{close}`?"),
            None => "; `ci-doctor list` shows every check".to_string(),
        };
        anyhow::bail!("unknown check `{id}`{hint}");
    };
    write_stdout(check.explanation())?;
    Ok(0)
}

fn why(message: Option<&str>, log: Option<&std::path::Path>, args: &DiagnoseArgs, matches: &ArgMatches) -> anyhow::Result<u8> {
    let found = match (message, log) {
        (Some(message), _) => crate::why::explain(message),
        (None, Some(path)) => {
            use std::io::Read;
            let file = std::fs::File::open(path).with_context(|| format!("failed to open job log `{}`", path.display()))?;
            let mut bytes = Vec::new();
            file.take(crate::why::MAX_LOG_BYTES).read_to_end(&mut bytes).with_context(|| format!("failed to read job log `{}`", path.display()))?;
            let text = String::from_utf8_lossy(&bytes);
            crate::why::explain_lines(text.lines())
        }
        (None, None) => anyhow::bail!("give an error message, or `--log FILE`"),
    };

    if let Some(path) = &args.output {
        crate::output::to_file(path);
    }
    let mut out = String::new();
    if found.is_empty() {
        out.push_str("No check's documented symptoms match this text; `ci-doctor list` shows every check.\n");
        crate::output::write_report(&out)?;
        return Ok(0);
    }
    out.push_str("These checks explain it:\n");
    for symptom in &found {
        out.push_str(&format!("  {}  (matches \"{}\")\n", symptom.check, symptom.symptom));
    }
    out.push_str("\nRunning them on this host:\n\n");
    if args.format == Format::Human {
        crate::output::write_report(&crate::secret::redact(&out))?;
    }

    let mut args = args.clone();
    args.only = found.iter().map(|symptom| symptom.check.to_string()).collect();
    args.skip.clear();
    diagnose(args, matches)
}

fn docs(out: &Path) -> anyhow::Result<u8> {
    let pages = crate::docs::write(out)?;
    eprintln!("wrote {} pages (`{}` and one per check) to `{}`", pages.len(), crate::docs::INDEX, out.display());
    Ok(0)
}

fn completions(shell: clap_complete::Shell) -> anyhow::Result<u8> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "ci-doctor", &mut script);
    write_stdout(&String::from_utf8_lossy(&script))?;
    Ok(0)
}

fn manpage(out: Option<&Path>) -> anyhow::Result<u8> {
    let command = Cli::command();
    match out {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(anyhow::Error::from).and_then(|()| Ok(clap_mangen::generate_to(command, dir)?)).map_err(|error| error.context(format!("failed to write manual pages to `{}`", dir.display())))?;
            eprintln!("wrote manual pages to `{}`", dir.display());
        }
        None => {
            let mut page = Vec::new();
            clap_mangen::Man::new(command).render(&mut page)?;
            write_stdout(&String::from_utf8_lossy(&page))?;
        }
    }
    Ok(0)
}

fn diagnose(mut args: DiagnoseArgs, matches: &ArgMatches) -> anyhow::Result<u8> {
    let policy = if args.no_policy { Policy::default() } else { Policy::discover(args.policy.as_deref())? };
    policy.apply_defaults(&mut args, matches);
    let args = &args;

    let selection = Selection::new(&args.only, &args.skip).map_err(anyhow::Error::msg)?;
    if !(args.timeout.is_finite() && args.timeout > 0.0 && args.timeout <= 3600.0) {
        anyhow::bail!("invalid `--timeout {}`: give a number of seconds between 0 and 3600, for example `--timeout 5`", args.timeout);
    }
    if args.fix && !matches!(args.format, Format::Human | Format::Json) {
        anyhow::bail!("`--fix` reports in the `human` or `json` format; run `ci-doctor --format {}` separately for that report", format_name(args.format));
    }
    if let Some(path) = &args.output {
        crate::output::to_file(path);
    }
    let color = use_color(args.color, !crate::output::is_file() && std::io::stdout().is_terminal());
    let cwd = std::env::current_dir().unwrap_or_default();
    let gitlab = crate::gather::gitlab::Input {
        token: args.gitlab_token.as_deref().map(crate::secret::Secret::new),
        url: args.gitlab_url.clone(),
        project: args.project.clone(),
        ca_file: args.ca_file.clone(),
        origin: crate::gather::git::origin(&cwd),
        current_branch: crate::gather::git::current_branch(&cwd),
    };

    let options = crate::gather::Options {
        configs: args.config.clone(),
        runner_containers: args.runner_container.clone(),
        timeout: Duration::from_secs_f64(args.timeout),
        no_probe: args.no_probe,
        has_gitlab_token: args.gitlab_token.is_some(),
        ci_file: args.ci_file.clone(),
        gitlab,
    };
    let started = Instant::now();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let progress = crate::progress::display(args.format);
    let facts = runtime.block_on(interruptible(crate::gather::gather(&options)));
    drop(progress);
    if let Some(message) = facts.missing_inputs.first() {
        anyhow::bail!("{message}");
    }

    let (findings, ignored) = policy.apply(&facts, checks::run(&facts, &selection));
    if args.fix {
        let diagnosis = crate::fix::run::Diagnosis { facts: &facts, findings: &findings, ignored: &ignored, policy: &policy };
        return runtime.block_on(crate::fix::run::run(args, &options, &selection, &diagnosis, color));
    }
    let project = crate::project::current_root();
    let report = Report {
        facts: &facts,
        findings: &findings,
        strict: args.strict,
        ignored: &ignored,
        policy: policy.path.as_deref(),
        project: project.as_deref(),
        elapsed: started.elapsed(),
    };
    let text = render_report(&report, args.format, render::human::Style { color, verbose: args.verbose > 0, fix_hint: true });
    crate::output::write_report(&text)?;
    Ok(report.exit_code())
}

/// Runs `work` until it ends or SIGINT or SIGTERM arrives; on a signal, removes the probe
/// containers that exist and exits with 128 plus the signal number, as shells do.
pub async fn interruptible<T>(work: impl Future<Output = T>) -> T {
    use tokio::signal::unix::{SignalKind, signal};

    let (Ok(mut interrupt), Ok(mut terminate)) = (signal(SignalKind::interrupt()), signal(SignalKind::terminate())) else {
        return work.await;
    };
    let code = tokio::select! {
        result = work => return result,
        _ = interrupt.recv() => 130,
        _ = terminate.recv() => 143,
    };
    let removed = crate::probe::cleanup::remove_all();
    tracing::debug!(removed, "interrupted; probe containers removed");
    std::process::exit(code);
}

/// Renders `report` in `format`; `style` applies to the human format.
pub fn render_report(report: &Report, format: Format, style: render::human::Style) -> String {
    match format {
        Format::Human => render::human::render(report, style),
        Format::Json => render::json::render(report, None) + "\n",
        Format::Junit => render::junit::render(report),
        Format::Codequality => render::codequality::render(report),
        Format::Markdown => render::markdown::render(report, style.verbose),
    }
}

/// Returns the name of `format` as `--format` takes it.
fn format_name(format: Format) -> String {
    use clap::ValueEnum;
    format.to_possible_value().map(|value| value.get_name().to_string()).unwrap_or_default()
}

/// Writes to stdout; a closed pipe (`ci-doctor | head`) is not an error.
pub fn write_stdout(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}
