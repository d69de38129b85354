//! Docker faults: an old engine, containers that vanish, a daemon that stops mid-run, broken
//! endpoints, probe containers that cannot start, and interruptions while a probe runs.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;

/// A fake Docker Engine on a Unix socket that answers `respond` for each request line, closing
/// the socket after `stop_after` requests.
fn fake_daemon(dir: &Path, stop_after: usize, respond: fn(&str) -> (u16, String)) -> PathBuf {
    let path = dir.join("docker.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let socket = path.clone();
    std::thread::spawn(move || {
        let mut served = 0;
        for stream in listener.incoming().flatten() {
            if served >= stop_after {
                break;
            }
            served += serve(stream, respond, stop_after - served);
        }
        // The daemon "stops": nothing listens any more.
        let _ = std::fs::remove_file(&socket);
    });
    path
}

/// Serves requests on one connection; returns how many.
fn serve(stream: UnixStream, respond: fn(&str) -> (u16, String), limit: usize) -> usize {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    let mut served = 0;
    while served < limit {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        let mut length = 0;
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                break;
            }
            if let Some(value) = header.to_ascii_lowercase().strip_prefix("content-length:") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        let _ = reader.read_exact(&mut body);
        let (status, json) = respond(&line);
        let reason = if status == 200 { "OK" } else { "Error" };
        let _ = write!(writer, "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nApi-Version: 1.24\r\nContent-Length: {}\r\n\r\n{json}", json.len());
        served += 1;
    }
    served
}

fn old_engine(request: &str) -> (u16, String) {
    if request.contains("/v1.53/") {
        return (400, r#"{"message":"client version 1.53 is too new. Maximum supported API version is 1.24"}"#.into());
    }
    if request.contains("/version") {
        return (200, r#"{"Version":"1.12.6","ApiVersion":"1.24","Os":"linux","Arch":"amd64"}"#.into());
    }
    if request.contains("/info") {
        return (200, r#"{"NCPU":2,"MemTotal":1000000,"DockerRootDir":"/var/lib/docker"}"#.into());
    }
    if request.contains("/containers/json") {
        return (200, r#"[{"Id":"abc123","Names":["/vanished-runner"],"Image":"gitlab/gitlab-runner:v17.5.3","Command":"/entrypoint run","State":"running","Status":"Up 1 hour","Labels":{}}]"#.into());
    }
    if request.contains("/containers/vanished-runner/json") {
        return (404, r#"{"message":"No such container: vanished-runner"}"#.into());
    }
    (404, r#"{"message":"page not found"}"#.into())
}

fn run_with_docker_host(host: &str, extra: &[&str]) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ci-doctor"));
    command.args(["--format", "json", "--no-probe", "--timeout", "2"]).args(extra).env("DOCKER_HOST", host).env("NO_COLOR", "1").stdin(Stdio::null());
    let output = command.output().unwrap();
    Run { status: output.status.code().unwrap_or(-1), stdout: String::from_utf8_lossy(&output.stdout).into(), stderr: String::from_utf8_lossy(&output.stderr).into() }
}

#[test]
fn old_engine_and_a_vanished_container_are_handled() {
    let dir = tempfile::tempdir().unwrap();
    let socket = fake_daemon(dir.path(), 100, old_engine);
    let run = run_with_docker_host(&format!("unix://{}", socket.display()), &[]);
    let report = run.json();
    let daemon = verdict(&report, "docker.daemon");
    assert_eq!(daemon["status"], "ok", "{report:#}");
    assert!(daemon["message"].as_str().unwrap().contains("(API 1.24)"), "{daemon:#}");
    // The listed runner vanished before inspection: no crash, no runner to report on.
    assert!(report["runners"].as_array().unwrap().iter().all(|runner| runner["container"] != "vanished-runner"), "{report:#}");
    assert_ne!(run.status, 2, "{}", run.stderr);
}

#[test]
fn daemon_that_stops_during_the_run_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    // Two requests (the version negotiation), then the socket disappears.
    let socket = fake_daemon(dir.path(), 2, old_engine);
    let run = run_with_docker_host(&format!("unix://{}", socket.display()), &[]);
    let report = run.json();
    let error = finding(&report, "docker.daemon", "error");
    assert!(error["message"].as_str().unwrap().contains("docker.sock"), "{error:#}");
    assert_eq!(run.status, 1);
}

#[test]
fn socket_path_that_is_a_regular_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("docker.sock");
    std::fs::write(&path, "not a socket").unwrap();
    let run = run_with_docker_host(&format!("unix://{}", path.display()), &[]);
    let report = run.json();
    let error = finding(&report, "docker.daemon", "error");
    assert!(error["message"].as_str().unwrap().contains("is not a socket"), "{error:#}");
}

#[test]
fn malformed_docker_host_names_the_value() {
    for host in ["localhost:2375", "ssh://user@host", "tcp//docker:2375"] {
        let run = run_with_docker_host(host, &[]);
        let report = run.json();
        let error = finding(&report, "docker.daemon", "error");
        let text = text_of(error);
        assert!(text.contains(host), "{host}: {text}");
        assert!(text.contains("DOCKER_HOST"), "{host}: {text}");
    }
}

#[test]
fn job_network_rejected_by_docker_is_an_error() -> anyhow::Result<()> {
    let bed = ci_doctor_testbed::Bed::new("probe-cannot-start")?;
    bed.network("ci-net").create()?;
    let dns = dns(&bed, "ci-net", &[]);
    bed.container("gitlab").image(GITLAB_IMAGE).network("ci-net").env("GITLAB_OMNIBUS_CONFIG", "external_url 'http://gitlab'").gitlab_standin(&state_with_runners(&[])).start()?;
    let config = "concurrent = 1\n\n[[runners]]\n  name = \"lost\"\n  url = \"http://gitlab/\"\n  token = \"glrt-FAKEnoprobe00112233\"\n  executor = \"docker\"\n  [runners.docker]\n    image = \"alpine:3.20\"\n    network_mode = \"no-such-network\"\n";
    let config_path = runner_container(&bed, Some("ci-net"), config, None, dns);

    // Docker rejects the probe container as it rejects every job container of this entry.
    let report = diagnose_container("gitlab-runner", &[]).json();
    let clone = finding(&report, "network.clone-url", "error");
    assert!(clone["message"].as_str().unwrap().contains("cannot start: Docker rejects their network settings"), "{clone:#}");
    assert!(text_of(clone).contains("network no-such-network not found"), "Docker's message is shown: {clone:#}");
    assert_eq!(clone["basis"]["method"], "probe", "{clone:#}");

    // Jobs on the default bridge with a link to GitLab, which is on `ci-net` only.
    std::fs::write(config_path, config.replace("network_mode = \"no-such-network\"", "links = [\"gitlab:gitlab\"]"))?;
    let report = diagnose_container("gitlab-runner", &[]).json();
    let clone = finding(&report, "network.clone-url", "error");
    assert!(text_of(clone).contains("Cannot link to /gitlab, as it does not belong to the default network"), "{clone:#}");
    assert!(text_of(clone).contains("`network_mode = \"ci-net\"`"), "the help names GitLab's network: {clone:#}");
    // Docker removes an ended probe container by itself, shortly after ci-doctor exits.
    assert!(ci_doctor_testbed::wait_for_probe_containers(std::time::Duration::from_secs(10)), "{:?}", leftover_probes());
    Ok(())
}

/// Probe containers on this daemon, by their label.
fn leftover_probes() -> Vec<String> {
    let output = Command::new("docker").args(["ps", "-a", "--filter", "label=ci-doctor.probe", "--format", "{{.Names}}"]).output().unwrap();
    String::from_utf8_lossy(&output.stdout).lines().map(str::to_string).collect()
}

/// Starts ci-doctor on the runner container with a fault point that holds or breaks a probe,
/// and waits until its probe container exists.
fn start_with_probe_fault(fault: &str) -> std::process::Child {
    let child = Command::new(env!("CARGO_BIN_EXE_ci-doctor"))
        .args(["--runner-container", "gitlab-runner", "--timeout", "3"])
        .env("CI_DOCTOR_TEST_FAULT", fault)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let label = format!("ci-doctor-probe-{}-", child.id());
    let started = Instant::now();
    while !leftover_probes().iter().any(|name| name.starts_with(&label)) {
        assert!(started.elapsed() < Duration::from_secs(20), "no probe container appeared");
        std::thread::sleep(Duration::from_millis(100));
    }
    child
}

#[test]
fn probe_containers_are_removed_on_signals_and_panics() -> anyhow::Result<()> {
    let bed = ci_doctor_testbed::Bed::new("probe-cleanup")?;
    bed.network("ci-net").create()?;
    let dns = dns(&bed, "ci-net", &[]);
    let gitlab = bed.container("gitlab").image(GITLAB_IMAGE).network("ci-net").env("GITLAB_OMNIBUS_CONFIG", "external_url 'http://gitlab'").gitlab_standin(&state_with_runners(&[])).start()?;
    // Jobs map `gitlab` with `extra_hosts`, so no runner container shares their view: it takes a
    // probe container.
    let config = format!(
        "concurrent = 1\n\n[[runners]]\n  name = \"held\"\n  url = \"http://gitlab/\"\n  token = \"glrt-FAKEcleanup00112233\"\n  executor = \"docker\"\n  [runners.docker]\n    image = \"alpine:3.20\"\n    network_mode = \"ci-net\"\n    extra_hosts = [\"gitlab:{}\"]\n",
        ip(&gitlab, "ci-net")
    );
    runner_container(&bed, Some("ci-net"), &config, None, dns);

    for (signal, code) in [(nix::sys::signal::Signal::SIGINT, 130), (nix::sys::signal::Signal::SIGTERM, 143)] {
        let mut child = start_with_probe_fault("pause-while-probing");
        // SAFETY: sends a signal to the child this test started.
        assert_eq!(unsafe { nix::libc::kill(child.id() as i32, signal as i32) }, 0);
        let status = child.wait()?;
        assert_eq!(status.code(), Some(code), "{signal:?}");
        assert!(leftover_probes().is_empty(), "{signal:?}: {:?}", leftover_probes());
    }

    let mut child = start_with_probe_fault("panic-while-probing");
    let status = child.wait()?;
    assert_eq!(status.code(), Some(101), "a panic exits with 101");
    assert!(leftover_probes().is_empty(), "after a panic: {:?}", leftover_probes());
    Ok(())
}
