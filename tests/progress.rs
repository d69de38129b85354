//! The progress line on stderr: drawn on a terminal while a probe waits, naming it; never in
//! pipes or JSON.

mod common;

use std::path::PathBuf;

use common::*;

/// Writes a runner config on this host whose `url` is a loopback port that never replies.
fn slow_config(dir: &tempfile::TempDir, port: u16) -> PathBuf {
    let path = dir.path().join("config.toml");
    std::fs::write(&path, format!("concurrent = 1\n\n[[runners]]\n  name = \"slow\"\n  url = \"http://127.0.0.1:{port}/\"\n  token = \"glrt-FAKEprogress0Aa1Bb\"\n  executor = \"shell\"\n")).unwrap();
    set_mode(&path, 0o600);
    path
}

#[test]
fn terminal_shows_what_is_being_waited_for() {
    let (_listener, port) = silent_listener();
    let dir = tempfile::tempdir().unwrap();
    let config = slow_config(&dir, port);

    let (status, screen) = ci_doctor_on_terminal(&["--config", config.to_str().unwrap(), "--only", "network", "--timeout", "2"]);
    assert_eq!(status, 1, "{screen}");
    let line = format!("waiting for http://127.0.0.1:{port}/ from this host (");
    assert!(screen.contains(&line), "{screen}");
    assert!(screen.contains("s)"), "the line counts seconds: {screen}");

    // The line is cleared (carriage return, erase line) before the report starts.
    let report_at = screen.find("Runner on this host").expect("the report follows");
    let last_draw = screen[..report_at].rfind(&line).expect("drawn before the report");
    assert!(screen[last_draw..report_at].contains("\r\u{1b}[2K"), "{:?}", &screen[last_draw..report_at]);
    assert!(!screen[report_at..].contains("waiting for"), "{screen}");
}

#[test]
fn pipes_and_json_get_no_progress() {
    let (_listener, port) = silent_listener();
    let dir = tempfile::tempdir().unwrap();
    let config = slow_config(&dir, port);
    let args = ["--config", config.to_str().unwrap(), "--only", "network", "--timeout", "1.5"];

    let piped = ci_doctor(&args);
    assert_eq!(piped.status, 1);
    assert_eq!(piped.stderr, "", "stderr is not a terminal");
    assert!(piped.stdout.contains("sends no answer within 1.5 s"), "{}", piped.stdout);

    let mut json_args = args.to_vec();
    json_args.extend(["--format", "json"]);
    let (status, screen) = ci_doctor_on_terminal(&json_args);
    assert_eq!(status, 1);
    assert!(!screen.contains("waiting for"), "{screen}");
    let report: serde_json::Value = serde_json::from_str(&screen.replace("\r\n", "\n")).unwrap_or_else(|error| panic!("only JSON on the terminal ({error}):\n{screen}"));
    assert_eq!(report["exit_code"], 1);
}
