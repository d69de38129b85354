//! Probes: connections made from a runner's own point of view.
//!
//! For a runner container, the probe enters the container's network namespace and uses the
//! container's hosts file, resolver configuration and CA bundle, so a name resolves and a
//! certificate verifies exactly as they would for the runner. That needs root on the Docker
//! host; without it, or for a remote daemon, the checks reason from the container's settings
//! alone and say so.

pub mod cleanup;
pub mod http;
pub mod job;
pub mod netns;
pub mod resolve;
pub mod tls;
pub mod view;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::future::join_all;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant;

use crate::facts::probe::{
    CaFile, CaFileState, CandidateCa, Connection, Probes, Resolution, SocketProbe, SocketState, TlsOutcome, TlsProbe, TlsVerdict,
    TokenOutcome, TokenProbe, UrlProbe, ViewAccess, ViewFact,
};
use crate::facts::{Facts, RunnerKind};
use crate::secret::Secret;
use crate::topology;
use view::ViewFiles;

/// Label carried by every container ci-doctor creates, so that it is never mistaken for a
/// runner and can always be found and removed.
pub const PROBE_LABEL: &str = "ci-doctor.probe";

/// The socket the runner uses when neither `host` nor `DOCKER_HOST` names one.
pub const DEFAULT_DOCKER_SOCKET: &str = "/var/run/docker.sock";

/// Token verifications in flight at once from one session, so that a config with hundreds of
/// entries does not flood GitLab.
const VERIFICATIONS: usize = 16;

/// Docker socket pings in flight at once across all runner containers.
const SOCKET_PINGS: usize = 16;

/// What to probe from one runner's point of view.
#[derive(Debug, Clone, Default)]
pub(crate) struct Plan {
    pub(crate) runner: usize,
    /// Place the probes run from, for the progress line: "container `gitlab-runner`".
    pub(crate) view: String,
    /// URL to probe, with the PEM files of extra CAs the runner trusts for it.
    pub(crate) urls: BTreeMap<String, Vec<String>>,
    /// Entry index, its URL and its token.
    pub(crate) tokens: Vec<(usize, String, Secret)>,
    /// HTTPS entries whose certificate chain is judged.
    pub(crate) tls: Vec<TlsEntry>,
    pub(crate) system_id: Option<String>,
    /// The runner's own root directory, where the CA files of `urls` are read: the runner
    /// hands its CA to job containers too, so job-view probes trust the same files.
    pub(crate) ca_root: std::path::PathBuf,
}

/// One `[[runners]]` entry with an `https://` URL, and where its runner looks for CA files.
#[derive(Debug, Clone)]
pub(crate) struct TlsEntry {
    entry: usize,
    url: String,
    /// `tls-ca-file` when set.
    ca_file: Option<String>,
    /// The directory of `config.toml`, whose `certs/` the runner reads.
    config_dir: String,
}

/// Runs the probes of every runner's view and of every job view concurrently, finishing by
/// `deadline`. A job view that a runner container provably shares is read from that runner's
/// probes instead of a probe container of its own.
pub async fn run_all(facts: &Facts, client: Option<&crate::gather::docker::DockerClient>, timeout: Duration, deadline: Instant) -> (Probes, Vec<crate::facts::job::JobView>) {
    let accesses: Vec<ViewAccess> = (0..facts.runners.len()).map(|runner| access_for(facts, runner)).collect();
    tracing::debug!(runners = accesses.len(), "view access decided");
    let mut shared = Vec::new();
    let mut own = Vec::new();
    for view in job::plan(facts) {
        match job::shared_runner(facts, &view, &accesses) {
            Some((runner, access)) if !facts.settings.no_probe => shared.push((view, runner, access)),
            _ => own.push(view),
        }
    }
    let extra: Vec<(usize, String)> = shared.iter().flat_map(|(view, runner, _)| view.urls.iter().map(|(url, _)| (*runner, url.clone()))).collect();

    let (probes, mut job_views) = tokio::join!(run(facts, &accesses, &extra, timeout, deadline), job::run(facts, client, own, timeout, deadline));
    job_views.extend(shared.into_iter().map(|(view, runner, access)| job::shared_view(view, runner, access, &probes)));
    tracing::debug!(urls = probes.urls.len(), tokens = probes.tokens.len(), job_views = job_views.len(), "probes done");
    (probes, job_views)
}

/// Runs every probe of every runner concurrently, finishing by `deadline`. `extra` adds URLs to
/// the plan of a runner, as `(runner, url)`.
async fn run(facts: &Facts, accesses: &[ViewAccess], extra: &[(usize, String)], timeout: Duration, deadline: Instant) -> Probes {
    let mut probes = Probes::default();
    let mut sessions = Vec::new();

    // Socket pings share one time limit and a bound, like token verifications. Each runner
    // container pings its own mount, but most mounts lead to the same daemon.
    let pings = tokio::sync::Semaphore::new(SOCKET_PINGS);
    let ping_deadline = (Instant::now() + timeout).min(deadline);
    let mut socket_checks = Vec::new();

    for (index, runner) in facts.runners.iter().enumerate() {
        let access = accesses[index].clone();
        let mut plan = plan(facts, index);
        for (_, url) in extra.iter().filter(|(runner, _)| *runner == index) {
            plan.urls.entry(url.clone()).or_default();
        }
        probes.views.push(ViewFact { runner: index, access: access.clone() });

        if !access.probed() {
            let reason = match &access {
                ViewAccess::Disabled => "probes are off (`--no-probe`)".to_string(),
                ViewAccess::Unavailable { reason } => reason.clone(),
                _ => String::new(),
            };
            for (entry, _, _) in &plan.tokens {
                probes.tokens.push(TokenProbe { runner: index, entry: *entry, outcome: TokenOutcome::NotSent { reason: reason.clone() } });
            }
            continue;
        }

        let root = match (&runner.kind, &access) {
            (RunnerKind::Container(_), ViewAccess::Namespace { pid }) => format!("/proc/{pid}/root"),
            _ => "/".to_string(),
        };
        socket_checks.push(probe_sockets(facts, index, PathBuf::from(&root), &pings, ping_deadline));

        let files = ViewFiles::load(Path::new(&root));
        let pid = match access {
            ViewAccess::Namespace { pid } => Some(pid),
            _ => None,
        };
        plan.ca_root = Path::new(&root).to_path_buf();
        // Sessions are not queued: each mostly waits on the network, and a queued one would add
        // its whole time limit to the run when GitLab hangs.
        sessions.push(run_session(pid, plan, files, timeout, deadline));
    }

    let (sessions, sockets) = futures_util::future::join(join_all(sessions), join_all(socket_checks)).await;
    probes.sockets.extend(sockets.into_iter().flatten());
    for (urls, tokens, tls) in sessions {
        probes.urls.extend(urls);
        probes.tokens.extend(tokens);
        probes.tls.extend(tls);
    }
    probes
}

/// Decides how runner `runner`'s point of view can be reached.
fn access_for(facts: &Facts, runner: usize) -> ViewAccess {
    if facts.settings.no_probe {
        return ViewAccess::Disabled;
    }
    let container = match &facts.runners[runner].kind {
        RunnerKind::Native(_) => return ViewAccess::HostNetwork,
        RunnerKind::Container(container) => container,
    };
    if !facts.docker.info().is_some_and(|info| info.is_local) {
        return ViewAccess::Unavailable { reason: "the Docker daemon is not on this machine, so its containers' namespaces are out of reach".into() };
    }
    let Some(pid) = container.pid.filter(|_| container.is_running()) else {
        return ViewAccess::Unavailable { reason: format!("container `{}` is not running", container.name) };
    };
    match netns::can_enter(pid) {
        Ok(()) => ViewAccess::Namespace { pid },
        Err(reason) => ViewAccess::Unavailable { reason },
    }
}

/// The CA files the runner of `entry` trusts for `url`: its `tls-ca-file`, else
/// `certs/<host>.crt` beside its config, as paths inside the runner's file system.
pub(crate) fn runner_cas(config_dir: &Path, entry: &crate::facts::Entry, url: &str) -> Vec<String> {
    if let Some(ca) = entry.keys.str("tls-ca-file").filter(|ca| !ca.is_empty()) {
        return vec![ca.to_string()];
    }
    match url::Url::parse(url).ok().and_then(|parsed| parsed.host_str().map(str::to_string)) {
        Some(host) => vec![config_dir.join("certs").join(format!("{host}.crt")).to_string_lossy().to_string()],
        None => Vec::new(),
    }
}

/// Lists the URLs and tokens to try for runner `runner`.
fn plan(facts: &Facts, runner: usize) -> Plan {
    let process = &facts.runners[runner];
    let view = match &process.kind {
        RunnerKind::Container(container) => format!("container `{}`", container.name),
        RunnerKind::Native(_) => "this host".to_string(),
    };
    let mut plan = Plan { runner, view, system_id: process.config.system_id.clone(), ..Plan::default() };
    let config_dir = process.config.path.parent().map(Path::to_path_buf).unwrap_or_default();

    for entry in facts.entries(runner) {
        let Some(url) = entry.keys.str("url").map(str::to_string) else { continue };
        if url::Url::parse(&url).is_err() {
            continue;
        }
        plan.urls.entry(url.clone()).or_default().extend(runner_cas(&config_dir, entry, &url));
        if url.starts_with("https://") {
            plan.tls.push(TlsEntry {
                entry: entry.index,
                url: url.clone(),
                ca_file: entry.keys.str("tls-ca-file").filter(|path| !path.is_empty()).map(str::to_string),
                config_dir: config_dir.to_string_lossy().to_string(),
            });
        }
        if let Some(token) = entry.keys.secret("token") {
            plan.tokens.push((entry.index, url, token.clone()));
        }
    }

    // URLs a fix could propose are probed in the same round, so that a dead GitLab costs
    // one time limit rather than two.
    if let RunnerKind::Container(container) = &process.kind {
        for candidate in topology::gitlab_candidates(container, &facts.gitlabs) {
            plan.urls.entry(candidate.url).or_default();
        }
    }
    plan
}

/// Runs a plan inside the namespace of `pid`, or on this host when `pid` is `None`.
async fn run_session(pid: Option<u32>, plan: Plan, files: ViewFiles, timeout: Duration, deadline: Instant) -> SessionResult {
    let runner = plan.runner;
    let urls: Vec<String> = plan.urls.keys().cloned().collect();
    let tokens = plan.tokens.clone();
    let tls_entries = plan.tls.clone();

    let result = match pid {
        Some(pid) => {
            let session = netns::run_in_namespace(pid, move || session(plan, files, timeout, deadline));
            // The thread gets a little longer than the deadline to report its own time-outs.
            match tokio::time::timeout_at(deadline + Duration::from_millis(500), session).await {
                Ok(result) => result,
                Err(_) => Err("the probe did not finish before the run's deadline".to_string()),
            }
        }
        None => Ok(session(plan, files, timeout, deadline).await),
    };

    match result {
        Ok(results) => results,
        Err(message) => {
            tracing::warn!(runner, %message, "probe session failed");
            let url_probes = urls
                .iter()
                .map(|url| failed_url_probe(runner, url, &message))
                .collect();
            let token_probes = tokens
                .iter()
                .map(|(entry, _, _)| TokenProbe { runner, entry: *entry, outcome: TokenOutcome::Failed { message: message.clone() } })
                .collect();
            let tls_probes = tls_entries
                .iter()
                .map(|entry| TlsProbe { runner, entry: entry.entry, url: entry.url.clone(), host: host_of(&entry.url), outcome: TlsOutcome::NoHandshake { message: message.clone() } })
                .collect();
            (url_probes, token_probes, tls_probes)
        }
    }
}

/// URL probes, token verifications and certificate verdicts of one session.
pub(crate) type SessionResult = (Vec<UrlProbe>, Vec<TokenProbe>, Vec<TlsProbe>);

fn host_of(url: &str) -> String {
    url::Url::parse(url).ok().and_then(|parsed| parsed.host_str().map(str::to_string)).unwrap_or_default()
}

fn failed_url_probe(runner: usize, url: &str, message: &str) -> UrlProbe {
    let parsed = url::Url::parse(url).ok();
    UrlProbe {
        runner,
        url: crate::secret::redact_url(url),
        host: parsed.as_ref().and_then(|url| url.host_str().map(str::to_string)).unwrap_or_default(),
        port: parsed.as_ref().and_then(url::Url::port_or_known_default).unwrap_or(0),
        resolution: Resolution::Failed { message: message.to_string(), servers: Vec::new() },
        connection: None,
        http: None,
    }
}

/// Probes every URL of the plan concurrently, then verifies each token whose URL answered
/// like GitLab.
pub(crate) async fn session(plan: Plan, files: ViewFiles, timeout: Duration, deadline: Instant) -> SessionResult {
    let files = &files;
    let ca_root = &plan.ca_root;
    let probes = join_all(plan.urls.iter().map(|(url, cas)| {
        let wait = crate::progress::wait(format!("{} from {}", crate::secret::redact_url(url), plan.view));
        async move {
            let probed = probe_url(plan.runner, url, cas, ca_root, files, timeout, deadline).await;
            drop(wait);
            probed
        }
    }))
    .await;

    let mut clients = BTreeMap::new();
    let mut chains = BTreeMap::new();
    let mut url_probes = Vec::new();
    for (probe, client, chain) in probes {
        if let Some(client) = client {
            clients.insert(probe.url.clone(), client);
        }
        if let Some(chain) = chain {
            chains.insert(probe.url.clone(), chain);
        }
        url_probes.push(probe);
    }
    let tls_probes = plan.tls.iter().map(|entry| judge_tls(plan.runner, entry, chains.get(&entry.url), &plan.ca_root, files)).collect();

    // One time limit for all verifications of the session, waiting for a turn included.
    let in_flight = tokio::sync::Semaphore::new(VERIFICATIONS);
    let verify_deadline = (Instant::now() + timeout).min(deadline);
    let verifications = plan.tokens.iter().map(|(entry, url, token)| {
        let probe = url_probes.iter().find(|probe| &probe.url == url);
        let client = clients.get(url);
        let system_id = plan.system_id.clone();
        let view = &plan.view;
        let in_flight = &in_flight;
        async move {
            let _permit = in_flight.acquire().await;
            let outcome = match (probe, client) {
                // A verification still waiting for its turn at the time limit was never sent, and
                // saying it timed out would blame GitLab for the queue.
                (Some(probe), Some(_)) if probe.reached_gitlab() && Instant::now() >= verify_deadline => TokenOutcome::NotSent {
                    reason: format!(
                        "GitLab at `{}` verified the other tokens of this runner too slowly to reach this one within {} s; run again with a higher `--timeout`",
                        crate::secret::redact_url(url),
                        timeout.as_secs()
                    ),
                },
                (Some(probe), Some(client)) if probe.reached_gitlab() => {
                    let _wait = crate::progress::wait(format!("GitLab at {} from {} to verify a runner token", crate::secret::redact_url(url), view));
                    client.verify(&api_base(url), token, system_id.as_deref(), verify_deadline).await
                }
                _ => TokenOutcome::NotSent { reason: format!("`{}` did not answer like GitLab from the runner's view", crate::secret::redact_url(url)) },
            };
            TokenProbe { runner: plan.runner, entry: *entry, outcome }
        }
    });
    let token_probes = join_all(verifications).await;
    (url_probes, token_probes, tls_probes)
}

/// Judges the chain presented at `entry`'s URL with the trust that entry's runner uses, and with
/// every other CA file in the runner's `certs/` directory. CA files are read below `ca_root`,
/// the runner's own root directory.
fn judge_tls(runner: usize, entry: &TlsEntry, chain: Option<&Result<Vec<rustls_pki_types::CertificateDer<'static>>, String>>, ca_root: &Path, files: &ViewFiles) -> TlsProbe {
    let host = host_of(&entry.url);
    let mut probe = TlsProbe { runner, entry: entry.entry, url: crate::secret::redact_url(&entry.url), host: host.clone(), outcome: TlsOutcome::NoHandshake { message: "the URL was not reached".into() } };
    let chain = match chain {
        Some(Ok(chain)) => chain,
        Some(Err(message)) => {
            probe.outcome = TlsOutcome::NoHandshake { message: message.clone() };
            return probe;
        }
        None => return probe,
    };
    let now = rustls_pki_types::UnixTime::now();
    let certs_dir = format!("{}/certs", entry.config_dir.trim_end_matches('/'));

    // The runner adds `tls-ca-file`, or else `certs/<host>.crt`, to the system bundle.
    let (ca_path, configured) = match &entry.ca_file {
        Some(path) => (path.clone(), true),
        None => (format!("{certs_dir}/{host}.crt"), false),
    };
    let (ca_state, ca_certificates) = read_ca_file(ca_root, &ca_path);
    let mut roots = files.roots.clone();
    roots.extend(ca_certificates);
    let verdict = tls::verify(chain, &roots, &host, now);

    let mut candidates = Vec::new();
    if verdict != TlsVerdict::Trusted {
        for path in ca_files_in(ca_root, &certs_dir).into_iter().filter(|path| *path != ca_path) {
            let (_, certificates) = read_ca_file(ca_root, &path);
            if certificates.is_empty() {
                continue;
            }
            let mut roots = files.roots.clone();
            roots.extend(certificates);
            candidates.push(CandidateCa { verdict: tls::verify(chain, &roots, &host, now), path });
        }
    }
    probe.outcome = TlsOutcome::Presented {
        chain: tls::describe(chain),
        verdict,
        roots_source: files.roots_source.clone(),
        ca_file: CaFile { path: ca_path, configured, state: ca_state },
        candidates,
    };
    probe
}

/// Reads a PEM CA file at `path` as the runner sees it, below `ca_root`.
fn read_ca_file(ca_root: &Path, path: &str) -> (CaFileState, Vec<rustls_pki_types::CertificateDer<'static>>) {
    match std::fs::read(ca_root.join(path.trim_start_matches('/'))) {
        Ok(bytes) => {
            let certificates = view::parse_pem_certificates(&bytes);
            let state = if certificates.is_empty() { CaFileState::NoCertificates } else { CaFileState::Loaded { certificates: certificates.len() } };
            (state, certificates)
        }
        Err(_) => (CaFileState::Missing, Vec::new()),
    }
}

/// Lists the PEM files (`*.crt`, `*.pem`) in `dir` below `ca_root`, except client certificates
/// (`*.auth.crt`), sorted by name.
fn ca_files_in(ca_root: &Path, dir: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(ca_root.join(dir.trim_start_matches('/'))) else { return Vec::new() };
    let mut out: Vec<String> = entries
        .flatten()
        .filter_map(|entry| entry.file_name().to_str().map(str::to_string))
        .filter(|name| (name.ends_with(".crt") || name.ends_with(".pem")) && !name.ends_with(".auth.crt"))
        .map(|name| format!("{dir}/{name}"))
        .collect();
    out.sort();
    out
}

/// Looks up, connects to and asks one URL, within one time limit.
async fn probe_url(runner: usize, url: &str, cas: &[String], ca_root: &Path, files: &ViewFiles, timeout: Duration, deadline: Instant) -> UrlOutcome {
    let deadline = (Instant::now() + timeout).min(deadline);
    let Ok(parsed) = url::Url::parse(url) else {
        return (failed_url_probe(runner, url, "not a valid URL"), None, None);
    };
    let host = parsed.host_str().unwrap_or_default().to_string();
    let port = parsed.port_or_known_default().unwrap_or(80);
    let mut probe = UrlProbe {
        runner,
        url: url.to_string(),
        host: host.clone(),
        port,
        resolution: Resolution::Failed { message: String::new(), servers: Vec::new() },
        connection: None,
        http: None,
    };

    let remaining = deadline.saturating_duration_since(Instant::now());
    probe.resolution = resolve::resolve(&host, files, remaining).await;
    let addresses: Vec<SocketAddr> = probe
        .resolution
        .addresses()
        .iter()
        .filter_map(|address| address.parse::<IpAddr>().ok())
        .map(|address| SocketAddr::new(address, port))
        .collect();
    if addresses.is_empty() {
        return (probe, None, None);
    }

    let connection = http::connect(&addresses, deadline).await;
    let open = matches!(connection, Connection::Open { .. });
    probe.connection = Some(connection);
    if !open {
        return (probe, None, None);
    }

    let mut roots = files.roots.clone();
    for ca in cas {
        if let Ok(bytes) = std::fs::read(ca_root.join(ca.trim_start_matches('/'))) {
            roots.extend(view::parse_pem_certificates(&bytes));
        }
    }
    let client = match http::Client::new(&host, &addresses, &roots, timeout) {
        Ok(client) => client,
        Err(message) => {
            probe.http = Some(crate::facts::probe::HttpResult::Failed { message });
            return (probe, None, None);
        }
    };

    // The chain is recorded on a connection of its own, beside the API request, so that a
    // certificate the runner rejects can still be explained.
    let chain = async {
        if parsed.scheme() == "https" { Some(tls::fetch_chain(addresses[0], &host, deadline).await) } else { None }
    };
    let base = api_base(url);
    let (http, chain) = tokio::join!(client.probe_api(&base, deadline), chain);
    probe.http = Some(http);
    (probe, Some(client), chain)
}

/// A URL probe, its HTTP client when it connected, and the certificate chain of an HTTPS URL.
type UrlOutcome = (UrlProbe, Option<http::Client>, Option<Result<Vec<rustls_pki_types::CertificateDer<'static>>, String>>);

/// The base the runner builds API URLs from: `url` without a trailing slash or legacy `/ci`.
pub fn api_base(url: &str) -> String {
    let trimmed = url.trim_end_matches('/');
    trimmed.strip_suffix("/ci").unwrap_or(trimmed).to_string()
}

/// Probes the Docker socket paths that docker-executor entries of a runner container use.
/// Pings every Docker socket that runner container `runner`'s docker-executor entries use, as
/// seen under `root`, at most [`SOCKET_PINGS`] at once across runners and all by `deadline`.
async fn probe_sockets(facts: &Facts, runner: usize, root: PathBuf, pings: &tokio::sync::Semaphore, deadline: Instant) -> Vec<SocketProbe> {
    let RunnerKind::Container(container) = &facts.runners[runner].kind else { return Vec::new() };
    let mut paths: Vec<String> = Vec::new();
    for entry in facts.entries(runner).iter().filter(|entry| entry.uses_docker()) {
        if let Some(path) = socket_path_of(entry.keys.str("docker.host"), container.env("DOCKER_HOST"))
            && !paths.contains(&path)
        {
            paths.push(path);
        }
    }

    let root = &root;
    join_all(paths.into_iter().map(|path| async move {
        let _permit = pings.acquire().await;
        let _wait = crate::progress::wait(format!("the Docker socket `{path}` in container `{}`", container.name));
        let state = probe_socket(&root.join(path.trim_start_matches('/')), deadline).await;
        SocketProbe { runner, path, state }
    }))
    .await
}

/// The Unix socket a docker-executor entry uses: its `host`, else the runner's `DOCKER_HOST`,
/// else the default. `None` when the endpoint is not a Unix socket.
pub fn socket_path_of(host: Option<&str>, docker_host_env: Option<&str>) -> Option<String> {
    let endpoint = host
        .filter(|host| !host.is_empty())
        .or(docker_host_env.filter(|host| !host.is_empty()))
        .unwrap_or("unix:///var/run/docker.sock");
    endpoint.strip_prefix("unix://").map(str::to_string)
}

/// Checks that `path` is a socket and that a Docker daemon responds to `GET /_ping` through it
/// by `deadline`.
async fn probe_socket(path: &Path, deadline: Instant) -> SocketState {
    use std::os::unix::fs::FileTypeExt;

    let Ok(meta) = std::fs::metadata(path) else { return SocketState::Missing };
    if !meta.file_type().is_socket() {
        return SocketState::NotASocket;
    }
    let ping = async {
        let mut stream = tokio::net::UnixStream::connect(path).await?;
        stream.write_all(b"GET /_ping HTTP/1.0\r\nHost: docker\r\n\r\n").await?;
        let mut answer = vec![0u8; 256];
        let read = stream.read(&mut answer).await?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&answer[..read]).to_string())
    };
    match tokio::time::timeout_at(deadline, ping).await {
        Ok(Ok(answer)) if answer.starts_with("HTTP/1.") && answer.contains(" 200 ") => SocketState::Answers,
        Ok(Ok(answer)) => SocketState::Failed { message: format!("unexpected answer: {}", answer.lines().next().unwrap_or("")) },
        Ok(Err(error)) => SocketState::Failed { message: error.to_string() },
        Err(_) => SocketState::Failed { message: "no answer in time".into() },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Serves GitLab's two probe endpoints on a loopback port, one request per connection.
    /// `GET /api/v4/version` returns 401 at once, and `POST /api/v4/runners/verify` returns 200
    /// after `verify_delay`.
    async fn slow_verify_server(verify_delay: Duration) -> SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let mut request = vec![0u8; 4096];
                    let read = stream.read(&mut request).await.unwrap_or(0);
                    let (status, body) = if String::from_utf8_lossy(&request[..read]).starts_with("POST /api/v4/runners/verify") {
                        tokio::time::sleep(verify_delay).await;
                        ("200 OK", r#"{"id":7,"token_expires_at":null}"#)
                    } else {
                        ("401 Unauthorized", r#"{"message":"401 Unauthorized"}"#)
                    };
                    let response = format!("HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
                    let _ = stream.write_all(response.as_bytes()).await;
                });
            }
        });
        address
    }

    #[tokio::test(flavor = "current_thread")]
    async fn verifications_queued_past_the_limit_are_not_sent() {
        // 16 verifications run at once, each taking 0.6 s against a 1 s limit: the first 16
        // finish, the next 16 time out at the limit, and the last 8 get no turn in time.
        let address = slow_verify_server(Duration::from_millis(600)).await;
        let url = format!("http://{address}/");
        let tokens = (0..40).map(|entry| (entry, url.clone(), Secret::new(format!("glrt-FAKEqueue{entry:012}")))).collect();
        let plan = Plan { view: "this host".into(), urls: BTreeMap::from([(url.clone(), Vec::new())]), tokens, ca_root: "/".into(), ..Plan::default() };
        let timeout = Duration::from_secs(1);

        let (urls, token_probes, _) = session(plan, ViewFiles::load(Path::new("/")), timeout, Instant::now() + Duration::from_secs(10)).await;

        assert!(urls[0].reached_gitlab(), "{:?}", urls[0]);
        let valid = token_probes.iter().filter(|probe| matches!(probe.outcome, TokenOutcome::Valid { .. })).count();
        let not_sent: Vec<&String> = token_probes
            .iter()
            .filter_map(|probe| match &probe.outcome {
                TokenOutcome::NotSent { reason } => Some(reason),
                _ => None,
            })
            .collect();
        assert_eq!(token_probes.len(), 40);
        assert!(valid <= VERIFICATIONS, "{token_probes:?}");
        // The third turn starts at the limit at the earliest; on a loaded machine, the second may
        // too.
        assert!(not_sent.len() >= 40 - 2 * VERIFICATIONS, "{token_probes:?}");
        assert!(not_sent[0].contains("too slowly to reach this one within 1 s"), "{}", not_sent[0]);
        assert!(not_sent[0].contains("--timeout"), "{}", not_sent[0]);
    }

    #[test]
    fn api_base_drops_slash_and_legacy_suffix() {
        assert_eq!(api_base("http://gitlab/"), "http://gitlab");
        assert_eq!(api_base("https://example.test/gitlab/ci"), "https://example.test/gitlab");
    }

    #[test]
    fn socket_path_follows_the_runner_order() {
        assert_eq!(socket_path_of(None, None).as_deref(), Some("/var/run/docker.sock"));
        assert_eq!(socket_path_of(Some("unix:///run/user/1000/docker.sock"), None).as_deref(), Some("/run/user/1000/docker.sock"));
        assert_eq!(socket_path_of(Some(""), Some("unix:///custom.sock")).as_deref(), Some("/custom.sock"));
        assert_eq!(socket_path_of(Some("tcp://docker:2375"), None), None);
    }
}
