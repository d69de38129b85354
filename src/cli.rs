//! Command-line interface.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Diagnose self-hosted GitLab CI setups: runners, their config.toml, Docker and GitLab.
#[derive(Debug, Parser)]
#[command(name = "ci-doctor", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    #[command(flatten)]
    pub diagnose: DiagnoseArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List every check, one line each.
    List {
        /// Output format.
        #[arg(long, value_enum, default_value_t = ListFormat::Human)]
        format: ListFormat,
    },
    /// Print the documentation page of a check.
    Explain {
        /// Check id, for example `network.runner-url`.
        id: String,
    },
    /// Find the checks that explain an error message or a job log, and run them here.
    Why {
        /// The error message, as pasted from a job or runner log.
        #[arg(required_unless_present = "log", conflicts_with = "log")]
        message: Option<String>,
        /// A saved job log to scan line by line.
        #[arg(long, value_name = "FILE")]
        log: Option<PathBuf>,
    },
    /// Write the documentation pages of every check, with an index, as Markdown for a wiki or a
    /// static site.
    Docs {
        /// Directory to write `index.md` and one `<id>.md` per check into (created if missing).
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Print a shell completion script.
    Completions {
        /// The shell to complete in.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), or write one page per command with `--out`.
    Manpage {
        /// Directory to write `ci-doctor.1` and a page per subcommand into.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
}

/// Report format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Text for people, grouped by runner.
    Human,
    /// Versioned JSON for scripts.
    Json,
    /// JUnit XML for GitLab's test report: a test suite per runner, a test case per verdict.
    Junit,
    /// GitLab Code Quality JSON: one issue per error, warning and info.
    Codequality,
    /// Markdown for support tickets and wiki pages.
    Markdown,
}

impl Format {
    /// Returns true for the formats that programs read; no progress line is drawn for them.
    pub fn is_machine_readable(self) -> bool {
        matches!(self, Format::Json | Format::Junit | Format::Codequality)
    }
}

/// Format of `ci-doctor list`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    /// One check per line: id and summary.
    Human,
    /// A JSON array of `id`, `area` and `summary`.
    Json,
}

/// When to use colour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// On a terminal, unless `NO_COLOR` is set.
    Auto,
    Always,
    Never,
}

/// Options of a diagnosis.
#[derive(Debug, Clone, Args)]
pub struct DiagnoseArgs {
    /// Report format.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,

    /// Write the report to this file instead of stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,

    /// Read this policy file instead of `.ci-doctor.toml` at the top of the Git checkout or
    /// `/etc/ci-doctor.toml`.
    #[arg(long, value_name = "FILE", conflicts_with = "no_policy")]
    pub policy: Option<PathBuf>,

    /// Read no policy file: report every finding with the severity its check gave.
    #[arg(long)]
    pub no_policy: bool,

    /// Diagnose this runner config.toml instead of discovering runners (repeatable).
    #[arg(long, short = 'c', value_name = "PATH")]
    pub config: Vec<PathBuf>,

    /// Diagnose this runner container instead of discovering runners (repeatable).
    #[arg(long, value_name = "NAME")]
    pub runner_container: Vec<String>,

    /// Pipeline file to read (default: `.gitlab-ci.yml` at the top of the current Git checkout).
    #[arg(long, value_name = "PATH")]
    pub ci_file: Option<PathBuf>,

    /// GitLab web address that gets the access token (default: the `origin` remote's GitLab).
    #[arg(long, value_name = "URL")]
    pub gitlab_url: Option<String>,

    /// Personal, project or group access token (scope `read_api`) for the scheduling checks
    /// (read from GITLAB_TOKEN when not given).
    #[arg(long, env = "GITLAB_TOKEN", hide_env_values = true, value_name = "TOKEN")]
    pub gitlab_token: Option<String>,

    /// GitLab project whose jobs to check: a numeric id or a path such as `group/app`
    /// (default: the `origin` remote's project).
    #[arg(long, value_name = "ID|PATH")]
    pub project: Option<String>,

    /// Extra CA certificates (PEM) that ci-doctor trusts for the GitLab API, besides this
    /// host's bundle.
    #[arg(long, value_name = "PATH")]
    pub ca_file: Option<PathBuf>,

    /// Run only these checks: ids such as `auth.token` or areas such as `network`
    /// (comma-separated or repeated).
    #[arg(long, value_delimiter = ',', value_name = "ID|AREA")]
    pub only: Vec<String>,

    /// Do not run these checks: ids or areas (comma-separated or repeated).
    #[arg(long, value_delimiter = ',', value_name = "ID|AREA")]
    pub skip: Vec<String>,

    /// Time limit of each probe (connection, request, Docker call), in seconds.
    #[arg(long, value_name = "SECONDS", default_value_t = 5.0)]
    pub timeout: f64,

    /// Judge by reasoning alone: no connections from runner namespaces and no probe containers.
    #[arg(long)]
    pub no_probe: bool,

    /// Treat warnings as failures in the exit status.
    #[arg(long)]
    pub strict: bool,

    /// Apply the config.toml repairs the diagnosis proposes, after showing a diff.
    #[arg(long)]
    pub fix: bool,

    /// With `--fix`: apply without asking (needed when stdin is not a terminal).
    #[arg(long, short = 'y', requires = "fix")]
    pub yes: bool,

    /// With `--fix`: show the diffs and write nothing.
    #[arg(long, requires = "fix", conflicts_with = "yes")]
    pub dry_run: bool,

    /// When to use colour.
    #[arg(long, value_enum, default_value_t = ColorChoice::Auto, global = true)]
    pub color: ColorChoice,

    /// Log to stderr: `-v` for decisions, `-vv` for raw answers (secrets redacted).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
}
