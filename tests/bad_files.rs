//! Bad config and pipeline files: each gets a clear finding that names the file and what to do,
//! never a panic, and `--fix` never makes them worse.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::*;

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    path
}

/// Diagnoses `path` without probes and returns the report, asserting ci-doctor ran to the end.
fn diagnose(path: &Path) -> serde_json::Value {
    let run = ci_doctor(&["--config", path.to_str().unwrap(), "--no-probe", "--format", "json"]);
    assert!(run.status == 0 || run.status == 1, "exit {} for {}: {}", run.status, path.display(), run.stderr);
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
    run.json()
}

fn message_of(report: &serde_json::Value, check: &str, severity: &str) -> String {
    finding(report, check, severity)["message"].as_str().unwrap().to_string()
}

#[test]
fn unreadable_contents_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [(&str, &[u8], &str); 3] = [
        ("garbage.toml", &[0xde, 0xad, 0xbe, 0xef, 0x00, 0xff, 0x10], "not valid UTF-8"),
        ("latin1.toml", b"[[runners]]\n  name = \"caf\xe9\"\n", "not valid UTF-8 (first invalid byte at offset 25)"),
        ("nul.toml", b"concurrent = 1\n\x00\n", "not valid TOML"),
    ];
    for (name, bytes, expected) in cases {
        let path = write(dir.path(), name, bytes);
        let report = diagnose(&path);
        let text = report["findings"].as_array().unwrap().iter().map(|finding| finding["message"].as_str().unwrap().to_string()).collect::<Vec<_>>().join("\n");
        assert!(text.contains(expected), "{name}: {text}");
        assert!(text.contains(name), "{name}: the file is named: {text}");
    }
}

#[test]
fn empty_and_runnerless_files_say_they_register_nothing() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in [("empty.toml", ""), ("no-runners.toml", "concurrent = 4\n")] {
        let report = diagnose(&write(dir.path(), name, text.as_bytes()));
        let message = message_of(&report, "config.found", "warning");
        assert!(message.contains("has no `[[runners]]` entry"), "{name}: {message}");
    }
}

#[test]
fn byte_order_mark_and_crlf_are_read_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let text = "\u{feff}concurrent = 1\r\n[[runners]]\r\n  name = \"crlf\"\r\n  executor = \"docker\"\r\n  [runners.docker]\r\n    privilaged = true\r\n";
    let path = write(dir.path(), "windows.toml", text.as_bytes());
    let report = diagnose(&path);
    assert!(message_of(&report, "config.keys", "error").contains("did you mean `privileged`"));
    let fixed = ci_doctor(&["--config", path.to_str().unwrap(), "--no-probe", "--fix", "--yes", "--only", "config.keys"]);
    assert_eq!(fixed.status, 0, "{}", fixed.stdout);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), text.replace("privilaged", "privileged"));
}

#[test]
fn duplicate_keys_are_a_syntax_error_with_a_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "dup.toml", b"concurrent = 1\n[[runners]]\n  name = \"a\"\n  name = \"b\"\n");
    let report = diagnose(&path);
    let error = finding(&report, "config.syntax", "error");
    assert!(error["message"].as_str().unwrap().contains("duplicate key"), "{error:#}");
    assert_eq!(error["location"]["line"], 4);
}

#[test]
fn paths_that_are_no_file_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let directory = dir.path().join("dir.toml");
    std::fs::create_dir(&directory).unwrap();
    let dangling = dir.path().join("dangling.toml");
    std::os::unix::fs::symlink(dir.path().join("missing.toml"), &dangling).unwrap();
    let first = dir.path().join("loop-a.toml");
    let second = dir.path().join("loop-b.toml");
    std::os::unix::fs::symlink(&second, &first).unwrap();
    std::os::unix::fs::symlink(&first, &second).unwrap();

    let expected = [(directory, "is a directory"), (dangling, "symbolic link to"), (first, "loop of symbolic links")];
    for (path, words) in expected {
        let message = message_of(&diagnose(&path), "config.found", "error");
        assert!(message.contains(words) && message.contains(&path.file_name().unwrap().to_string_lossy().to_string()), "{}: {message}", path.display());
    }
}

#[test]
fn unreadable_file_asks_for_root() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "secret.toml", b"[[runners]]\n  token = \"glrt-FAKEnoaccess0099\"\n");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let output = std::process::Command::new("setpriv")
        .args(["--reuid=4242", "--regid=4242", "--clear-groups", "--"])
        .arg(env!("CARGO_BIN_EXE_ci-doctor"))
        .args(["--config", path.to_str().unwrap(), "--no-probe", "--format", "json"])
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let skipped = verdicts(&report, "config.found").into_iter().find(|verdict| verdict["status"] == "skipped").expect("skipped");
    assert!(skipped["message"].as_str().unwrap().contains("cannot read"), "{skipped:#}");
    assert_no_token_shapes(&String::from_utf8_lossy(&output.stdout));
}

#[test]
fn entries_that_collide_or_hide_credentials_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let text = "concurrent = 3\n\n[[runners]]\n  name = \"a\"\n  url = \"gitlab.example.test\"\n  token = \"glrt-FAKEsharedtoken001\"\n  executor = \"shell\"\n\n[[runners]]\n  name = \"a\"\n  url = \"https://deploy:FAKEpass0rd42@[::1]:8443/\"\n  token = \"glrt-FAKEsharedtoken001\"\n  executor = \"shell\"\n\n[[runners]]\n  name = \"env\"\n  url = \"$CI_SERVER_URL\"\n  token = \"${RUNNER_TOKEN}\"\n  executor = \"shell\"\n";
    let path = write(dir.path(), "tricky.toml", text.as_bytes());
    let run = ci_doctor(&["--config", path.to_str().unwrap(), "--no-probe", "--format", "json"]);
    let report = run.json();
    let warnings: Vec<String> = findings(&report, "config.entries").iter().map(|finding| finding["message"].as_str().unwrap().to_string()).collect();
    assert!(warnings.iter().any(|message| message.contains("are named `a`")), "{warnings:#?}");
    assert!(warnings.iter().any(|message| message.contains("share one token")), "{warnings:#?}");
    assert!(warnings.iter().any(|message| message.contains("carries credentials (`https://deploy:…@[::1]:8443/`)")), "{warnings:#?}");
    let scheme = finding(&report, "network.runner-url", "error");
    assert!(scheme["help"].as_str().unwrap().contains("did you mean `https://gitlab.example.test/`"), "{scheme:#}");
    let env = verdicts(&report, "network.runner-url").into_iter().find(|verdict| verdict["runner"]["name"] == "env").unwrap();
    assert!(env["message"].as_str().unwrap().contains("`$CI_SERVER_URL` from the runner's environment"), "{env:#}");
    run.assert_no_secrets(&["FAKEpass0rd42"]);
}

#[test]
fn bad_pipelines_are_findings_with_places() {
    let dir = tempfile::tempdir().unwrap();
    let config = write(dir.path(), "config.toml", b"concurrent = 1\n[[runners]]\n  name = \"p\"\n  executor = \"docker\"\n  [runners.docker]\n    image = \"alpine\"\n");
    let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for level in 1..9 {
        bomb.push_str(&format!("a{level}: &a{level} [{}]\n", vec![format!("*a{}", level - 1); 10].join(", ")));
    }
    let cases = [
        ("invalid.yml", "build:\n  script: [docker info\n  image: x\n".to_string(), "not valid YAML"),
        ("bomb.yml", bomb, "not valid YAML"),
        ("deep.yml", format!("a: {}x{}\n", "[".repeat(5000), "]".repeat(5000)), "not valid YAML"),
        ("tags.yml", "build:\n  image: !custom docker:27\n  script: !!seq [docker info]\n  services: [docker:27-dind]\n".to_string(), ""),
    ];
    for (name, text, expected) in cases {
        let pipeline = dir.path().join(name);
        std::fs::write(&pipeline, &text).unwrap();
        let started = std::time::Instant::now();
        let run = ci_doctor(&["--config", config.to_str().unwrap(), "--ci-file", pipeline.to_str().unwrap(), "--no-probe", "--format", "json"]);
        assert!(started.elapsed() < std::time::Duration::from_secs(10), "{name} took {:?}", started.elapsed());
        assert!(run.status == 0 || run.status == 1, "{name}: {}", run.stderr);
        let report = run.json();
        if expected.is_empty() {
            // Unknown tags keep their values: the job is read, and its dind service judged.
            assert!(verdict(&report, "pipeline.syntax")["message"].as_str().unwrap().contains("read 1 job"), "{report:#}");
            assert!(!findings(&report, "dind.privileged").is_empty(), "{report:#}");
        } else {
            let error = finding(&report, "pipeline.syntax", "error");
            assert!(error["message"].as_str().unwrap().contains(expected) && error["message"].as_str().unwrap().contains(name), "{name}: {error:#}");
            assert!(error["location"]["line"].as_u64().is_some(), "{name}: a line is given: {error:#}");
        }
    }
}
