//! `gitlab-standin`: the stand-in GitLab service and the test DNS server of
//! the ci-doctor test bed, as one static binary for the standin image.

use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use ci_doctor_testbed::dns::{DnsRecord, serve_dns};
use ci_doctor_testbed::standin::{REQUEST_LOG_FILE_NAME, Standin, TlsListener, load_tls_config};
use ci_doctor_testbed::state::State;
use clap::{Parser, Subcommand};
use tokio::net::{TcpListener, UdpSocket};

#[derive(Parser)]
#[command(
    version,
    about = "Stand-in GitLab service and test DNS server for ci-doctor tests"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the GitLab REST API subset described in the testbed README.
    Serve {
        /// State file (JSON) with the version, tokens, runners, projects and jobs to serve.
        #[arg(long, value_name = "FILE")]
        state: PathBuf,
        /// Address for plain HTTP, for example 0.0.0.0:80.
        #[arg(long, value_name = "ADDR")]
        listen: SocketAddr,
        /// PEM certificate chain for HTTPS; needs --tls-key and --tls-listen.
        #[arg(long, value_name = "PEM", requires_all = ["tls_key", "tls_listen"])]
        tls_cert: Option<PathBuf>,
        /// PEM private key for HTTPS.
        #[arg(long, value_name = "PEM", requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// Address for HTTPS, for example 0.0.0.0:443.
        #[arg(long, value_name = "ADDR", requires = "tls_cert")]
        tls_listen: Option<SocketAddr>,
        /// Request log (JSON lines); defaults to requests.jsonl next to the state file.
        #[arg(long, value_name = "FILE")]
        request_log: Option<PathBuf>,
        /// File to create once every listener is bound, for readiness checks.
        #[arg(long, value_name = "FILE")]
        ready_file: Option<PathBuf>,
    },
    /// Answer DNS queries for fixed names over UDP and TCP, and NXDOMAIN for all others.
    Dns {
        /// Address for UDP and TCP, for example 0.0.0.0:53.
        #[arg(long, value_name = "ADDR")]
        listen: SocketAddr,
        /// NAME=IP for one name, or *.DOMAIN=IP for every name below DOMAIN; repeatable.
        /// Without records every name gets NXDOMAIN.
        #[arg(long = "record", value_name = "NAME=IP")]
        records: Vec<DnsRecord>,
        /// File to create once the sockets are bound, for readiness checks.
        #[arg(long, value_name = "FILE")]
        ready_file: Option<PathBuf>,
    },
}

fn main() -> std::process::ExitCode {
    match run_cli() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            // One line with the causes, without a backtrace, so `docker logs`
            // of a failed container stays readable.
            eprintln!("gitlab-standin: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run_cli() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("failed to start the async runtime")?;
    runtime.block_on(run(cli.command))
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve {
            state,
            listen,
            tls_cert,
            tls_key,
            tls_listen,
            request_log,
            ready_file,
        } => {
            let state_path = state;
            let state = State::load(&state_path)?;
            let request_log = request_log.unwrap_or_else(|| {
                state_path
                    .parent()
                    .unwrap_or(Path::new("."))
                    .join(REQUEST_LOG_FILE_NAME)
            });
            let standin = Standin::with_request_log(state, &request_log)?;
            let http = bind_tcp(listen).await?;
            let tls = match (tls_cert, tls_key, tls_listen) {
                (Some(cert), Some(key), Some(address)) => Some(TlsListener {
                    listener: bind_tcp(address).await?,
                    config: load_tls_config(&cert, &key)?,
                }),
                _ => None,
            };
            tracing::info!(
                %listen,
                https = ?tls_listen,
                state = %state_path.display(),
                request_log = %request_log.display(),
                "serving the stand-in GitLab API"
            );
            mark_ready(ready_file.as_deref())?;
            let result = standin.serve(http, tls).await;
            tracing::error!(error = ?result.as_ref().err(), "stand-in GitLab stopped");
            result
        }
        Command::Dns {
            listen,
            records,
            ready_file,
        } => {
            let udp = UdpSocket::bind(listen)
                .await
                .with_context(|| format!("failed to bind UDP {listen}"))?;
            let tcp = bind_tcp(listen).await?;
            tracing::info!(%listen, records = records.len(), "serving DNS");
            mark_ready(ready_file.as_deref())?;
            let result = serve_dns(records, udp, tcp).await;
            tracing::error!(error = ?result.as_ref().err(), "DNS server stopped");
            result
        }
    }
}

async fn bind_tcp(address: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(address)
        .await
        .with_context(|| format!("failed to bind TCP {address}"))
}

fn mark_ready(path: Option<&Path>) -> anyhow::Result<()> {
    if let Some(path) = path {
        std::fs::write(path, b"ready\n")
            .with_context(|| format!("failed to write ready file {}", path.display()))?;
    }
    Ok(())
}
