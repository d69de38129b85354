//! The command line itself: listing and explaining checks, and rejecting bad input.

mod common;

use common::*;

#[test]
fn list_shows_every_check() {
    let run = ci_doctor(&["list"]);
    assert_eq!(run.status, 0);
    for id in ["docker.daemon", "docker.socket-access", "config.found", "config.syntax", "config.keys", "config.file-mode", "runner.docker-access", "network.runner-url", "tls.trust", "auth.token", "scheduling.tags", "scheduling.untagged", "scheduling.protected", "scheduling.instance-runners", "scheduling.runner-status", "security.runner-groups"] {
        assert!(run.stdout.lines().any(|line| line.starts_with(id)), "{id} missing:\n{}", run.stdout);
    }
}

#[test]
fn list_as_json_has_ids_and_areas() {
    let run = ci_doctor(&["list", "--format", "json"]);
    let list: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let first = &list.as_array().unwrap()[0];
    assert_eq!(first["id"], "docker.daemon");
    assert_eq!(first["area"], "docker");
}

#[test]
fn explain_prints_the_page() {
    let run = ci_doctor(&["explain", "network.runner-url"]);
    assert_eq!(run.status, 0);
    assert!(run.stdout.starts_with("# `network.runner-url`"), "{}", run.stdout);
    for heading in ["## Symptoms", "## Why", "## Fix", "## Limits"] {
        assert!(run.stdout.contains(heading), "{heading}");
    }
}

#[test]
fn explain_unknown_check_suggests_one() {
    let run = ci_doctor(&["explain", "network.runer-url"]);
    assert_eq!(run.status, 2);
    assert!(run.stderr.contains("unknown check `network.runer-url`; did you mean `network.runner-url`?"), "{}", run.stderr);
}

#[test]
fn unknown_only_name_is_rejected() {
    let run = ci_doctor(&["--only", "netwrk", "--no-probe"]);
    assert_eq!(run.status, 2);
    assert!(run.stderr.contains("did you mean `network`?"), "{}", run.stderr);
}

#[test]
fn invalid_timeout_is_rejected_with_the_value() {
    let run = ci_doctor(&["--timeout", "0", "--no-probe"]);
    assert_eq!(run.status, 2);
    assert!(run.stderr.contains("invalid `--timeout 0`"), "{}", run.stderr);
}

#[test]
fn missing_runner_container_is_named() {
    let run = ci_doctor(&["--runner-container", "no-such-runner-container", "--no-probe"]);
    assert_eq!(run.status, 2);
    assert!(run.stderr.contains("`no-such-runner-container`") && run.stderr.contains("docker ps -a"), "{}", run.stderr);
}

#[test]
fn missing_config_file_is_reported_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nothing-here.toml");
    let run = ci_doctor(&["--config", path.to_str().unwrap(), "--no-probe", "--format", "json"]);
    let report = run.json();
    let error = finding(&report, "config.found", "error");
    assert!(error["message"].as_str().unwrap().contains(&path.display().to_string()), "{error:#}");
    assert_eq!(run.status, 1);
}

#[test]
fn no_color_output_has_no_escape_codes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, "concurrent = 1\n").unwrap();
    let run = ci_doctor(&["--config", path.to_str().unwrap(), "--no-probe", "--color", "auto"]);
    assert!(!run.stdout.contains('\u{1b}'), "{}", run.stdout);
}

#[test]
fn why_names_the_checks_behind_a_dind_error() {
    let run = ci_doctor(&["--no-probe", "why", "Cannot connect to the Docker daemon at tcp://docker:2375. Is the docker daemon running?"]);
    assert!(run.stdout.contains("These checks explain it:"), "{}", run.stdout);
    let listed: Vec<&str> = run.stdout.lines().skip_while(|line| !line.starts_with("These checks")).skip(1).take_while(|line| line.starts_with("  ")).collect();
    assert!(listed.iter().any(|line| line.trim_start().starts_with("dind.tls ")), "{listed:?}");
    assert!(listed.iter().any(|line| line.trim_start().starts_with("dind.privileged ")), "{listed:?}");
    assert!(run.stdout.contains("Running them on this host"), "{}", run.stdout);
}

#[test]
fn why_scans_a_job_log() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("job.log");
    std::fs::write(&log, "Running with gitlab-runner 17.5.3\nGetting source from Git repository\nfatal: unable to access 'http://gitlab.example.test/dev/hello-world.git/': Failed to connect to gitlab.example.test port 80: Connection refused\nERROR: Job failed: exit code 1\n").unwrap();
    let run = ci_doctor(&["--no-probe", "why", "--log", log.to_str().unwrap()]);
    assert!(run.stdout.contains("network.clone-url"), "{}", run.stdout);
}

#[test]
fn why_without_a_match_says_so() {
    let run = ci_doctor(&["why", "everything is fine"]);
    assert_eq!(run.status, 0);
    assert!(run.stdout.contains("No check's documented symptoms match"), "{}", run.stdout);
}
