//! GitLab endpoints that misbehave: each probe ends within its time limit, the whole run within
//! its deadline, memory stays bounded, and no token crosses a redirect.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

/// How a fake GitLab misbehaves.
#[derive(Clone, Copy)]
enum Behaviour {
    /// Accepts the connection and never sends a byte.
    Silent,
    /// Sends a valid answer one byte a second.
    Trickle,
    /// Answers 401 with a body that is not JSON.
    InvalidJson,
    /// Sends a 200 whose chunked body never ends.
    EndlessBody,
    /// Redirects every request to itself.
    RedirectLoop,
    /// Redirects every request to another host.
    RedirectAway(u16),
    /// Answers 500.
    ServerError,
    /// Answers the API probe like GitLab, then redirects the token check to another host.
    VerifyRedirect(u16),
    /// Records requests and answers 404, standing for the host a redirect points at.
    Recorder,
}

/// Starts a server on 127.0.0.`last`; returns its port and the request lines it received.
fn serve(last: u8, behaviour: Behaviour) -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind(("127.0.0.".to_string() + &last.to_string(), 0)).expect("loopback port");
    let port = listener.local_addr().unwrap().port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let log = log.clone();
            std::thread::spawn(move || handle(stream, behaviour, port, last, &log));
        }
    });
    (port, seen)
}

fn handle(mut stream: TcpStream, behaviour: Behaviour, port: u16, last: u8, log: &Mutex<Vec<String>>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let mut request = Vec::new();
    let mut buffer = [0u8; 4096];
    // Read the head, and for a POST the body too (small JSON).
    while let Ok(read) = stream.read(&mut buffer) {
        if read == 0 {
            break;
        }
        request.extend_from_slice(&buffer[..read]);
        let text = String::from_utf8_lossy(&request);
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text.lines().find_map(|line| line.to_ascii_lowercase().strip_prefix("content-length:").map(|value| value.trim().parse::<usize>().unwrap_or(0))).unwrap_or(0);
            if request.len() >= end + 4 + length {
                break;
            }
        }
        if matches!(behaviour, Behaviour::Silent) {
            break;
        }
    }
    let text = String::from_utf8_lossy(&request).to_string();
    log.lock().unwrap().push(text.clone());
    let first = text.lines().next().unwrap_or("").to_string();

    let reply = |stream: &mut TcpStream, head: &str, body: &str| {
        let _ = stream.write_all(format!("{head}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).as_bytes());
    };
    match behaviour {
        Behaviour::Silent => std::thread::sleep(Duration::from_secs(30)),
        Behaviour::Trickle => {
            let answer = "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: 30\r\n\r\n{\"message\":\"401 Unauthorized\"}";
            for byte in answer.bytes() {
                if stream.write_all(&[byte]).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_secs(1));
            }
        }
        Behaviour::InvalidJson => reply(&mut stream, "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json", "{\"message\": 401 Unauth"),
        Behaviour::EndlessBody => {
            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n");
            let chunk = format!("{:x}\r\n{}\r\n", 65536, "x".repeat(65536));
            while stream.write_all(chunk.as_bytes()).is_ok() {}
        }
        Behaviour::RedirectLoop => reply(&mut stream, &format!("HTTP/1.1 302 Found\r\nLocation: http://127.0.0.{last}:{port}/api/v4/version"), ""),
        Behaviour::RedirectAway(target) => reply(&mut stream, &format!("HTTP/1.1 302 Found\r\nLocation: http://127.0.0.2:{target}/api/v4/version"), ""),
        Behaviour::ServerError => reply(&mut stream, "HTTP/1.1 500 Internal Server Error\r\nContent-Type: text/html", "<h1>500</h1>"),
        Behaviour::VerifyRedirect(target) => {
            if first.starts_with("GET /api/v4/version") {
                reply(&mut stream, "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json", "{\"message\":\"401 Unauthorized\"}");
            } else {
                reply(&mut stream, &format!("HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.2:{target}/api/v4/runners/verify"), "");
            }
        }
        Behaviour::Recorder => reply(&mut stream, "HTTP/1.1 404 Not Found\r\nContent-Type: application/json", "{\"message\":\"404 Not Found\"}"),
    }
}

/// Runs `command` and returns its output and peak resident memory in KiB. The child is reaped
/// with `wait4`, which also reports its peak memory, rather than with `Child::wait`.
#[allow(clippy::zombie_processes)]
fn run_measured(mut command: std::process::Command) -> (std::process::Output, i64) {
    use std::os::unix::process::ExitStatusExt;

    let child = command.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().expect("ci-doctor starts");
    let pid = child.id() as i32;
    let mut stdout = child.stdout.expect("stdout piped");
    let mut stderr = child.stderr.expect("stderr piped");
    let readers = std::thread::spawn(move || {
        let mut out = Vec::new();
        let mut err = Vec::new();
        let _ = stdout.read_to_end(&mut out);
        let _ = stderr.read_to_end(&mut err);
        (out, err)
    });
    let mut status = 0;
    let mut usage: nix::libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `wait4` writes into the two locals it is given, for a child of this process.
    let waited = unsafe { nix::libc::wait4(pid, &mut status, 0, &mut usage) };
    assert_eq!(waited, pid, "wait4 failed");
    let (out, err) = readers.join().unwrap();
    let output = std::process::Output { status: std::process::ExitStatus::from_raw(status), stdout: out, stderr: err };
    (output, usage.ru_maxrss)
}

#[test]
fn misbehaving_gitlab_endpoints_end_within_the_deadline() {
    let (recorder_port, recorded) = serve(2, Behaviour::Recorder);
    let servers = [
        ("silent", Behaviour::Silent, "http"),
        ("trickle", Behaviour::Trickle, "http"),
        ("invalid-json", Behaviour::InvalidJson, "http"),
        ("endless-body", Behaviour::EndlessBody, "http"),
        ("redirect-loop", Behaviour::RedirectLoop, "http"),
        ("redirect-away", Behaviour::RedirectAway(recorder_port), "http"),
        ("server-error", Behaviour::ServerError, "http"),
        ("verify-redirect", Behaviour::VerifyRedirect(recorder_port), "http"),
        ("tls-stall", Behaviour::Silent, "https"),
    ];
    let mut config = String::from("concurrent = 9\n");
    let mut tokens = Vec::new();
    for (index, (name, behaviour, scheme)) in servers.iter().enumerate() {
        let (port, _) = serve(1, *behaviour);
        let token = format!("glrt-FAKEhostile{index:02}Zz9Yy8Xx");
        config.push_str(&format!("\n[[runners]]\n  name = \"{name}\"\n  url = \"{scheme}://127.0.0.1:{port}/\"\n  token = \"{token}\"\n  executor = \"shell\"\n"));
        tokens.push(token);
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, &config).unwrap();
    set_mode(&path, 0o600);

    let timeout = 2.0;
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_ci-doctor"));
    command.args(["--config", path.to_str().unwrap(), "--format", "json", "--timeout", &timeout.to_string(), "--only", "network.runner-url,auth.token"]).env("NO_COLOR", "1");
    let started = Instant::now();
    let (output, peak_kib) = run_measured(command);
    let elapsed = started.elapsed();
    let run = Run { status: output.status.code().unwrap_or(-1), stdout: String::from_utf8_lossy(&output.stdout).into(), stderr: String::from_utf8_lossy(&output.stderr).into() };

    // Bounded: one time limit for all nine at once (plus start-up), and modest memory despite
    // an endless body. Generous bounds: this guards against hangs and unbounded reads, not speed.
    assert!(elapsed < Duration::from_secs_f64(timeout * 2.0 + 1.0), "took {elapsed:?}");
    assert!(peak_kib < 200 * 1024, "peak memory {peak_kib} KiB");
    let report = run.json();
    let message = |name: &str| {
        let found: Vec<&serde_json::Value> = findings(&report, "network.runner-url").into_iter().filter(|finding| finding["runner"]["name"] == name).collect();
        assert_eq!(found.len(), 1, "{name}: {report:#}");
        text_of(found[0])
    };
    assert!(message("silent").contains("sends no answer within 2 s"), "{}", message("silent"));
    assert!(message("trickle").contains("sends no answer within 2 s"), "{}", message("trickle"));
    assert!(message("invalid-json").contains("answers 401") && message("invalid-json").contains("not like the GitLab API"), "{}", message("invalid-json"));
    assert!(message("endless-body").contains("not like the GitLab API"), "{}", message("endless-body"));
    assert!(message("redirect-loop").contains("redirect (302)"), "{}", message("redirect-loop"));
    assert!(message("redirect-away").contains("redirect (302) to `http://127.0.0.2"), "{}", message("redirect-away"));
    assert!(message("server-error").contains("HTTP 500"), "{}", message("server-error"));
    assert!(message("tls-stall").contains("no answer within 2 s") || message("tls-stall").contains("TLS"), "{}", message("tls-stall"));

    // The token check of the redirecting GitLab is answered with the redirect, not followed.
    let verify = findings(&report, "auth.token").into_iter().find(|finding| finding["runner"]["name"] == "verify-redirect").expect("verify finding");
    assert!(verify["message"].as_str().unwrap().contains("307"), "{verify:#}");
    assert!(recorded.lock().unwrap().is_empty(), "a redirect was followed: {:?}", recorded.lock().unwrap());

    let secrets: Vec<&str> = tokens.iter().map(String::as_str).collect();
    run.assert_no_secrets(&secrets);
}

#[test]
fn huge_config_is_read_within_bounds() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(1024 * 1024 * 1024).unwrap();
    let pipeline = dir.path().join(".gitlab-ci.yml");
    let file = std::fs::File::create(&pipeline).unwrap();
    file.set_len(512 * 1024 * 1024).unwrap();

    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_ci-doctor"));
    command.args(["--config", path.to_str().unwrap(), "--ci-file", pipeline.to_str().unwrap(), "--no-probe", "--format", "json"]);
    let started = Instant::now();
    let (output, peak_kib) = run_measured(command);
    assert!(started.elapsed() < Duration::from_secs(10), "took {:?}", started.elapsed());
    assert!(peak_kib < 100 * 1024, "peak memory {peak_kib} KiB reading a 1 GiB config");
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let error = finding(&report, "config.found", "error");
    assert!(error["message"].as_str().unwrap().contains("far larger than any runner config"), "{error:#}");
    let pipeline_error = finding(&report, "pipeline.syntax", "error");
    assert!(pipeline_error["message"].as_str().unwrap().contains("far larger than any pipeline"), "{pipeline_error:#}");
}
