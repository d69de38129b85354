//! The program: parse arguments, gather, check, render, and set the exit status.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;

use crate::checks::{self, Selection};
use crate::cli::{Cli, ColorChoice, Command, DiagnoseArgs, Format};
use crate::render::{self, Report};

/// Exit status when ci-doctor itself could not run.
const EXIT_FAILURE: u8 = 2;

/// Runs ci-doctor and returns its exit status: 0 without errors, 1 with errors, 2 when it could
/// not run.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    crate::probe::cleanup::install_panic_hook();
    let color = use_color(cli.diagnose.color, std::io::stdout().is_terminal());
    crate::logging::init(cli.diagnose.verbose, use_color(cli.diagnose.color, std::io::stderr().is_terminal()));

    let result = match &cli.command {
        Some(Command::List { format }) => list(*format),
        Some(Command::Explain { id }) => explain(id),
        Some(Command::Why { message, log }) => why(message.as_deref(), log.as_deref(), &cli.diagnose, color),
        None => diagnose(&cli.diagnose, color),
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

fn list(format: Format) -> anyhow::Result<u8> {
    let mut out = String::new();
    match format {
        Format::Human => {
            let width = checks::CHECKS.iter().map(|check| check.id().len()).max().unwrap_or(0);
            for check in checks::CHECKS {
                out.push_str(&format!("{:width$}  {}\n", check.id(), check.summary()));
            }
        }
        Format::Json => {
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

fn why(message: Option<&str>, log: Option<&std::path::Path>, args: &DiagnoseArgs, color: bool) -> anyhow::Result<u8> {
    let matches = match (message, log) {
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

    let mut out = String::new();
    if matches.is_empty() {
        out.push_str("No check's documented symptoms match this text; `ci-doctor list` shows every check.\n");
        write_stdout(&out)?;
        return Ok(0);
    }
    out.push_str("These checks explain it:\n");
    for found in &matches {
        out.push_str(&format!("  {}  (matches \"{}\")\n", found.check, found.symptom));
    }
    out.push_str("\nRunning them on this host:\n\n");
    if args.format == Format::Human {
        write_stdout(&crate::secret::redact(&out))?;
    }

    let mut args = args.clone();
    args.only = matches.iter().map(|found| found.check.to_string()).collect();
    args.skip.clear();
    diagnose(&args, color)
}

fn diagnose(args: &DiagnoseArgs, color: bool) -> anyhow::Result<u8> {
    let selection = Selection::new(&args.only, &args.skip).map_err(anyhow::Error::msg)?;
    if !(args.timeout.is_finite() && args.timeout > 0.0 && args.timeout <= 3600.0) {
        anyhow::bail!("invalid `--timeout {}`: give a number of seconds between 0 and 3600, for example `--timeout 5`", args.timeout);
    }
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
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let facts = runtime.block_on(interruptible(crate::gather::gather(&options)));
    if let Some(message) = facts.missing_inputs.first() {
        anyhow::bail!("{message}");
    }

    let findings = checks::run(&facts, &selection);
    if args.fix {
        return runtime.block_on(crate::fix::run::run(args, &options, &selection, &facts, &findings, color));
    }
    let report = Report { facts: &facts, findings: &findings, strict: args.strict };
    let text = match args.format {
        Format::Human => render::human::render(&report, render::human::Style { color, verbose: args.verbose > 0, fix_hint: true }),
        Format::Json => render::json::render(&report, None) + "\n",
    };
    write_stdout(&text)?;
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

/// Writes to stdout; a closed pipe (`ci-doctor | head`) is not an error.
pub fn write_stdout(text: &str) -> anyhow::Result<()> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}
