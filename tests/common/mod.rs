//! Helpers shared by the integration tests: run the built binary, read its JSON report, and
//! build the usual scenario pieces on a test bed.

#![allow(dead_code)]

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use ci_doctor_testbed::state::Runner;
use ci_doctor_testbed::{Bed, Container, DnsRecord, State};
use serde_json::Value;

/// The cases a scenario rebuilds.
pub const CASES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/cases");

/// Image names the cases use.
pub const RUNNER_IMAGE: &str = "gitlab/gitlab-runner:v17.5.3";
pub const GITLAB_IMAGE: &str = "gitlab/gitlab-ce:17.5.2-ce.0";

/// One run of the binary.
#[derive(Debug)]
pub struct Run {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The JSON report on stdout.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|error| panic!("stdout is not JSON ({error}):\n{}\nstderr:\n{}", self.stdout, self.stderr))
    }

    /// Asserts that none of `secrets` appears in stdout or stderr.
    pub fn assert_no_secrets(&self, secrets: &[&str]) {
        for secret in secrets {
            assert!(!self.stdout.contains(secret), "stdout contains the secret {secret}:\n{}", self.stdout);
            assert!(!self.stderr.contains(secret), "stderr contains the secret {secret}:\n{}", self.stderr);
        }
    }
}

/// Runs ci-doctor with `args`, without colour and without a GitLab token from the environment.
pub fn ci_doctor(args: &[&str]) -> Run {
    ci_doctor_in(None, args, None)
}

/// Runs ci-doctor in `dir` (when given) with `args` and `stdin` as input.
pub fn ci_doctor_in(dir: Option<&Path>, args: &[&str], stdin: Option<&str>) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ci-doctor"));
    command.args(args).env("NO_COLOR", "1").env_remove("GITLAB_TOKEN").env_remove("RUST_LOG");
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    let output = match stdin {
        Some(input) => {
            use std::io::Write;
            command.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
            let mut child = command.spawn().expect("ci-doctor starts");
            child.stdin.take().expect("stdin piped").write_all(input.as_bytes()).expect("stdin written");
            child.wait_with_output().expect("ci-doctor finishes")
        }
        None => command.stdin(std::process::Stdio::null()).output().expect("ci-doctor runs"),
    };
    let run = Run {
        status: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).to_string(),
        stderr: String::from_utf8_lossy(&output.stderr).to_string(),
    };
    assert_no_token_shapes(&run.stdout);
    assert_no_token_shapes(&run.stderr);
    run
}

/// Token prefixes of GitLab; ci-doctor shows at most four characters after one.
const TOKEN_PREFIXES: &[&str] = &["glrt-", "glrtr-", "glpat-", "GR1348941", "glcbt-", "gldt-"];

/// Fails when `text` holds anything shaped like a whole token: a GitLab token prefix followed by
/// more than the four characters ci-doctor may show. Every run of the binary in these tests is
/// scanned this way, whatever the test asserts besides.
pub fn assert_no_token_shapes(text: &str) {
    for prefix in TOKEN_PREFIXES {
        for (at, _) in text.match_indices(prefix) {
            let rest = &text[at + prefix.len()..];
            let shown = rest.chars().take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-').count();
            assert!(shown <= 4, "output shows a whole token after `{prefix}`: {}", &text[at..(at + prefix.len() + shown).min(text.len())]);
        }
    }
}

/// Diagnoses runner container `container` and returns the run (JSON on stdout).
pub fn diagnose_container(container: &str, extra: &[&str]) -> Run {
    let mut args = vec!["--format", "json", "--runner-container", container, "--timeout", "3"];
    args.extend_from_slice(extra);
    ci_doctor(&args)
}

/// The verdicts (`checks` array) of check `check`.
pub fn verdicts<'a>(report: &'a Value, check: &str) -> Vec<&'a Value> {
    report["checks"].as_array().expect("checks array").iter().filter(|verdict| verdict["check"] == check).collect()
}

/// The findings (`findings` array) of check `check`.
pub fn findings<'a>(report: &'a Value, check: &str) -> Vec<&'a Value> {
    report["findings"].as_array().expect("findings array").iter().filter(|finding| finding["check"] == check).collect()
}

/// The single verdict of `check`, asserting there is exactly one.
pub fn verdict<'a>(report: &'a Value, check: &str) -> &'a Value {
    let found = verdicts(report, check);
    assert_eq!(found.len(), 1, "expected one verdict of {check}, found {}:\n{report:#}", found.len());
    found[0]
}

/// The single finding of `check` with `severity`.
pub fn finding<'a>(report: &'a Value, check: &str, severity: &str) -> &'a Value {
    let found: Vec<&Value> = findings(report, check).into_iter().filter(|finding| finding["severity"] == severity).collect();
    assert_eq!(found.len(), 1, "expected one {severity} of {check}, found {}:\n{report:#}", found.len());
    found[0]
}

/// Asserts that no finding is an error, and that every verdict is `ok`, `skipped` with a
/// reason, or an allowed warning or info.
pub fn assert_healthy(report: &Value) {
    let errors: Vec<&Value> = report["findings"].as_array().unwrap().iter().filter(|finding| finding["severity"] == "error").collect();
    assert!(errors.is_empty(), "unexpected errors:\n{errors:#?}");
    assert_eq!(report["exit_code"], 0, "{report:#}");
    for verdict in report["checks"].as_array().unwrap() {
        let status = verdict["status"].as_str().unwrap();
        assert!(["ok", "skipped", "warning", "info"].contains(&status), "{verdict:#}");
        assert!(!verdict["message"].as_str().unwrap().is_empty(), "a verdict without a message: {verdict:#}");
    }
}

/// All text of a finding: message, effect, evidence and help, for substring assertions.
pub fn text_of(finding: &Value) -> String {
    let mut parts = vec![finding["message"].as_str().unwrap_or("").to_string()];
    for field in ["effect", "help"] {
        if let Some(text) = finding[field].as_str() {
            parts.push(text.to_string());
        }
    }
    if let Some(evidence) = finding["evidence"].as_array() {
        parts.extend(evidence.iter().filter_map(Value::as_str).map(str::to_string));
    }
    parts.join("\n")
}

/// Reads a file of a case.
pub fn case_file(case: &str, file: &str) -> String {
    std::fs::read_to_string(format!("{CASES}/{case}/{file}")).unwrap_or_else(|error| panic!("failed to read {case}/{file}: {error}"))
}

/// The stand-in state with one runner per `(id, token, description)`.
pub fn state_with_runners(runners: &[(u64, &str, &str)]) -> State {
    State {
        runners: runners
            .iter()
            .map(|(id, token, description)| {
                let mut runner = Runner::new(*id, token);
                runner.description = description.to_string();
                runner
            })
            .collect(),
        ..State::default()
    }
}

/// Writes `config` as the runner config directory `runner-config/config.toml` (mode 0600) and
/// returns the directory.
pub fn runner_config_dir(bed: &Bed, config: &str) -> PathBuf {
    let path = bed.write_file("runner-config/config.toml", config).expect("config written");
    set_mode(&path, 0o600);
    path.parent().unwrap().to_path_buf()
}

pub fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("mode set");
}

/// Starts the test DNS server on `network` with `records`; containers get it with `--dns`, so
/// that no lookup of an invented name leaves this machine.
pub fn dns(bed: &Bed, network: &str, records: &[(&str, IpAddr)]) -> IpAddr {
    let records: Vec<DnsRecord> = records.iter().map(|(name, ip)| DnsRecord::new(name, *ip).expect("valid record")).collect();
    let server = bed.container("dns").network(network).dns_server(&records).start().expect("DNS server starts");
    server.ip(network).expect("DNS server has an address")
}

/// The IP of `container` on `network`.
pub fn ip(container: &Container, network: &str) -> IpAddr {
    container.ip(network).expect("container has an address")
}

/// The case of a runner whose `url` is its own container's loopback.
pub const C01: &str = "C01-register-url-localhost-in-container";


/// Inserts `dns = ["<server>"]` after the `image = ...` line of `[runners.docker]`, so that job
/// containers resolve through the test's DNS server: lookups of invented names never leave this
/// machine. Applied to a case's config and to its expected result alike.
pub fn with_job_dns(config: &str, server: IpAddr) -> String {
    let mut out = String::new();
    let mut in_docker = false;
    let mut done = false;
    for line in config.lines() {
        out.push_str(line);
        out.push('\n');
        if line.trim_start().starts_with('[') {
            in_docker = line.trim() == "[runners.docker]";
        }
        if in_docker && !done && line.trim_start().starts_with("image = ") {
            let indent = &line[..line.len() - line.trim_start().len()];
            out.push_str(&format!("{indent}dns = [\"{server}\"]\n"));
            done = true;
        }
    }
    assert!(done, "the config has no `image` in `[runners.docker]`");
    out
}

/// A GitLab outside Docker's view: a stand-in that is no GitLab image, answering HTTPS for
/// `gitlab.example.test` on `network`, plus a DNS server with that name. Returns the DNS
/// server's address and the CA a runner must trust.
pub fn external_gitlab(bed: &Bed, network: &str, runners: &[(u64, &str, &str)]) -> (IpAddr, String) {
    let gitlab = bed
        .container("gitlab-external")
        .image("ci-doctor-test/standin:latest")
        .network(network)
        .gitlab_standin(&state_with_runners(runners))
        .https(&["gitlab.example.test"])
        .start()
        .expect("stand-in starts");
    let server = dns(bed, network, &[("gitlab.example.test", ip(&gitlab, network))]);
    let ca = gitlab.tls_certificates().expect("https is on").ca_pem.clone();
    (server, ca)
}

/// A runner container `gitlab-runner` with `config` (and `ca` as `certs/gitlab.example.test.crt`)
/// in a bind-mounted directory, the Docker socket, and `dns` as its resolver.
pub fn runner_container(bed: &Bed, network: Option<&str>, config: &str, ca: Option<&str>, dns: IpAddr) -> PathBuf {
    let directory = runner_config_dir(bed, config);
    if let Some(ca) = ca {
        bed.write_file("runner-config/certs/gitlab.example.test.crt", ca).expect("CA written");
    }
    let mut builder = bed.container("gitlab-runner").image(RUNNER_IMAGE).dns(dns).bind(&directory, "/etc/gitlab-runner").docker_socket();
    if let Some(network) = network {
        builder = builder.network(network);
    }
    builder.start().expect("runner container starts");
    directory.join("config.toml")
}

/// Writes the case's pipeline (or `text`) into a project directory of the bed and returns the
/// path of its `.gitlab-ci.yml`.
pub fn pipeline_file(bed: &Bed, text: &str) -> PathBuf {
    bed.create_dir("project/.git").expect("project created");
    bed.write_file("project/.gitlab-ci.yml", text).expect("pipeline written")
}

/// The verdicts of `report` with a problem status, as `check: message` lines, for assertions
/// that list every problem of a scenario.
pub fn problems(report: &Value) -> Vec<String> {
    report["findings"].as_array().unwrap().iter().map(|finding| format!("{} {}: {}", finding["severity"].as_str().unwrap(), finding["check"].as_str().unwrap(), finding["message"].as_str().unwrap())).collect()
}

/// The gateway of Docker's default bridge, where containers reach the Docker host, as
/// `container` (attached to that bridge) sees it.
pub fn bridge_gateway(container: &Container) -> IpAddr {
    let inspected = container.inspect().expect("container inspects");
    let gateway = inspected["NetworkSettings"]["Networks"]["bridge"]["Gateway"].as_str().unwrap_or_default().to_string();
    gateway.parse().unwrap_or_else(|_| panic!("container {} has no gateway on the default bridge: {gateway:?}", container.name()))
}

/// Builds C01 as its topology describes it: GitLab and the runner on `ci-net`, GitLab's port
/// published on the Docker host (the default bridge's gateway) as 8080, a resolver that answers
/// `gitlab.example.test` with the Docker host, and the runner's `url` on its own loopback.
/// Returns the runner's config path and the resolver's address for job containers, which the
/// config carries in `dns` (see [`with_job_dns`]).
pub fn build_c01(bed: &ci_doctor_testbed::Bed, token: &str) -> anyhow::Result<(std::path::PathBuf, IpAddr)> {
    bed.network("ci-net").create()?;
    let probe = bed.container("gateway-probe").image("ci-doctor-test/busybox:latest").start()?;
    let gateway = bridge_gateway(&probe);
    let records = [DnsRecord::new("gitlab.example.test", gateway)?];
    let resolver = bed.container("dns").network("bridge").dns_server(&records).start()?;
    let status = std::process::Command::new("docker").args(["network", "connect", "ci-net", "dns"]).status()?;
    anyhow::ensure!(status.success(), "failed to connect the DNS server to ci-net");
    let job_dns = resolver.ip("bridge")?;
    let runner_dns = bed.container_ip("dns", "ci-net")?;

    bed.container("gitlab")
        .image(GITLAB_IMAGE)
        .hostname("gitlab.example.test")
        .network("ci-net")
        .publish_on(gateway, 8080, 80)
        .env("GITLAB_OMNIBUS_CONFIG", "external_url 'http://gitlab.example.test:8080'; nginx['listen_port'] = 80")
        .gitlab_standin(&state_with_runners(&[(4, token, "compose-runner")]))
        .start()?;
    let config = runner_config_dir(bed, &with_job_dns(&case_file(C01, "config.toml"), job_dns));
    bed.container("gitlab-runner")
        .image(RUNNER_IMAGE)
        .network("ci-net")
        .dns(runner_dns)
        .bind(&config, "/etc/gitlab-runner")
        .docker_socket()
        .start()?;
    Ok((config.join("config.toml"), job_dns))
}


/// A stand-in GitLab served in this test process on loopback, with its request log.
pub struct LocalGitLab {
    /// Plain HTTP address.
    pub http: std::net::SocketAddr,
    /// HTTPS address, when HTTPS was asked for.
    pub https: Option<std::net::SocketAddr>,
    /// The test CA's certificate (PEM file), when HTTPS was asked for.
    pub ca_file: Option<PathBuf>,
    pub log: PathBuf,
    _dir: tempfile::TempDir,
}

impl LocalGitLab {
    /// `http://<address>`.
    pub fn url(&self) -> String {
        format!("http://{}", self.http)
    }

    pub fn requests(&self) -> Vec<ci_doctor_testbed::LoggedRequest> {
        ci_doctor_testbed::read_request_log(&self.log).unwrap_or_default()
    }
}

/// Serves `state` on `ip` (a loopback address), and HTTPS with a test CA's certificate for
/// `https_names` when given. The server runs on its own thread until the test process ends.
pub fn local_gitlab(state: State, ip: &str, https: Option<(&[&str], ci_doctor_testbed::standin::ServerCertOptions)>) -> LocalGitLab {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = dir.path().join("requests.jsonl");
    let tls = https.map(|(names, options)| {
        let certificates = ci_doctor_testbed::standin::test_ca_and_server_cert_with(&dir.path().join("tls"), names, options).expect("certificates");
        let config = ci_doctor_testbed::standin::load_tls_config(&certificates.server_cert, &certificates.server_key).expect("TLS config");
        (certificates.ca_cert, config)
    });
    let standin = ci_doctor_testbed::Standin::with_request_log(state, &log).expect("stand-in");

    let http = std::net::TcpListener::bind(format!("{ip}:0")).expect("bind http");
    let https_listener = tls.as_ref().map(|_| std::net::TcpListener::bind(format!("{ip}:0")).expect("bind https"));
    let http_address = http.local_addr().unwrap();
    let https_address = https_listener.as_ref().map(|listener| listener.local_addr().unwrap());
    let ca_file = tls.as_ref().map(|(ca, _)| ca.clone());
    let config = tls.map(|(_, config)| config);
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        runtime.block_on(async move {
            http.set_nonblocking(true).unwrap();
            let http = tokio::net::TcpListener::from_std(http).unwrap();
            let tls = match (https_listener, config) {
                (Some(listener), Some(config)) => {
                    listener.set_nonblocking(true).unwrap();
                    Some(ci_doctor_testbed::standin::TlsListener { listener: tokio::net::TcpListener::from_std(listener).unwrap(), config })
                }
                _ => None,
            };
            let _ = standin.serve(http, tls).await;
        });
    });
    LocalGitLab { http: http_address, https: https_address, ca_file, log, _dir: dir }
}

/// Writes `config` to a fresh directory (mode 0600) and returns the directory and the file.
pub fn config_file(config: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("config.toml");
    std::fs::write(&path, config).expect("config written");
    set_mode(&path, 0o600);
    (dir, path)
}

/// Runs ci-doctor with `args` on a terminal that `script` provides, and returns everything it
/// wrote there (stdout and stderr together, with `\r\n` line ends) and its exit status.
pub fn ci_doctor_on_terminal(args: &[&str]) -> (i32, String) {
    use std::io::Read;

    let mut command_line = String::from(env!("CARGO_BIN_EXE_ci-doctor"));
    for arg in args {
        command_line.push_str(&format!(" '{}'", arg.replace('\'', r"'\''")));
    }
    let mut child = Command::new("script")
        .args(["-qfec", &command_line, "/dev/null"])
        .env("NO_COLOR", "1")
        .env_remove("GITLAB_TOKEN")
        .env_remove("RUST_LOG")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("script runs");
    // stdin stays open until ci-doctor is done, so that `script` does not end the session early.
    let _stdin = child.stdin.take();
    let mut output = String::new();
    child.stdout.take().expect("stdout piped").read_to_string(&mut output).expect("output readable");
    let status = child.wait().expect("script finishes");
    (status.code().unwrap_or(-1), output)
}

/// Opens a TCP listener on loopback that accepts connections and never replies, so that a
/// probe of `http://127.0.0.1:<port>/` waits for its whole time limit.
pub fn silent_listener() -> (std::net::TcpListener, u16) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("loopback port");
    let port = listener.local_addr().expect("bound").port();
    (listener, port)
}
