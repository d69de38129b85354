//! `--fix` on real files and real containers: exact results, idempotence, writes through the
//! Docker API, and every refusal.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;

/// A config with one fixable finding (a misspelled key) and a token.
const TYPO_TOKEN: &str = "glrt-FAKEfixtypo0Aa1Bb2C";

fn typo_config() -> String {
    format!(
        "# keep this comment\nconcurrent = 1\n\n[[runners]]\n  name = \"typo\"\n  url = \"http://gitlab.example.test/\"\n  token = \"{TYPO_TOKEN}\"\n  executor = \"docker\"\n  [runners.docker]\n    image = \"docker:27\"\n    privilaged = true # for dind\n    volumes = [\"/cache\"]\n"
    )
}

fn typo_fixed() -> String {
    typo_config().replace("privilaged = true", "privileged = true")
}

fn backups(dir: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().flatten().map(|entry| entry.path()).filter(|path| path.to_string_lossy().ends_with(".bak")).collect();
    found.sort();
    found
}

#[test]
fn localhost_url_fix_matches_the_expected_file_and_is_idempotent() -> anyhow::Result<()> {
    let token = "glrt-FAKEc01q7Lm2Vx9Rt4Bn";
    let bed = ci_doctor_testbed::Bed::new("c01-fix")?;
    let (config, dns) = build_c01(&bed, token)?;

    let run = ci_doctor(&["--runner-container", "gitlab-runner", "--timeout", "3", "--fix", "--yes"]);
    assert_eq!(run.status, 0, "{}\n{}", run.stdout, run.stderr);
    // The case's expected result, plus `clone_url`: once jobs join `ci-net`, Docker's embedded
    // DNS resolves GitLab's advertised `gitlab.example.test` to the GitLab container itself,
    // where port 8080 is closed, so without it every clone would fail after the fix.
    let expected = with_job_dns(&case_file(C01, "config.fixed.toml"), dns).replace("  url = \"http://gitlab/\"\n", "  url = \"http://gitlab/\"\n  clone_url = \"http://gitlab\"\n");
    assert_eq!(std::fs::read_to_string(&config)?, expected);
    assert!(run.stdout.contains("`clone_url = \"http://gitlab\"`"), "{}", run.stdout);
    assert!(run.stdout.contains("+  url = \"http://gitlab/\""), "{}", run.stdout);
    assert!(run.stdout.contains("fixed: network.runner-url"), "{}", run.stdout);
    assert!(run.stdout.contains("no restart is needed"), "{}", run.stdout);
    run.assert_no_secrets(&[token]);

    // The backup holds the old file, with the same mode.
    let saved = backups(config.parent().unwrap());
    assert_eq!(saved.len(), 1, "{saved:?}");
    assert_eq!(std::fs::read_to_string(&saved[0])?, with_job_dns(&case_file(C01, "config.toml"), dns));
    assert_eq!(std::fs::metadata(&saved[0])?.mode() & 0o777, 0o600);
    assert_eq!(std::fs::metadata(&config)?.mode() & 0o777, 0o600);

    // A new diagnosis no longer reports it, and the token now verifies.
    let report = diagnose_container("gitlab-runner", &[]).json();
    assert!(findings(&report, "network.runner-url").is_empty(), "{report:#}");
    assert_eq!(verdict(&report, "auth.token")["status"], "ok");

    // A second --fix changes nothing and says so.
    let before = std::fs::read(&config)?;
    let again = ci_doctor(&["--runner-container", "gitlab-runner", "--timeout", "3", "--fix", "--yes"]);
    assert_eq!(again.status, 0, "{}", again.stdout);
    assert!(again.stdout.contains("Nothing to fix"), "{}", again.stdout);
    assert_eq!(std::fs::read(&config)?, before);
    assert_eq!(backups(config.parent().unwrap()).len(), 1, "no second backup");
    Ok(())
}

/// Runs ci-doctor as an unprivileged user in the socket's group, who can use Docker but cannot
/// read Docker's volume directories.
fn ci_doctor_as_docker_user(args: &[&str]) -> Run {
    let group = std::fs::metadata("/var/run/docker.sock").expect("socket exists").gid();
    let home = tempfile::tempdir().unwrap();
    let output = Command::new("setpriv")
        .args(["--reuid=4242", "--regid=4242", &format!("--groups={group}"), "--inh-caps=-all", "--"])
        .arg(env!("CARGO_BIN_EXE_ci-doctor"))
        .args(args)
        .env("NO_COLOR", "1")
        .env("HOME", home.path())
        .stdin(Stdio::null())
        .output()
        .expect("setpriv runs");
    Run { status: output.status.code().unwrap_or(-1), stdout: String::from_utf8_lossy(&output.stdout).into(), stderr: String::from_utf8_lossy(&output.stderr).into() }
}

fn docker_cp_into(source: &Path, container: &str, destination: &str) {
    let status = Command::new("docker").args(["cp", &source.to_string_lossy(), &format!("{container}:{destination}")]).status().expect("docker cp runs");
    assert!(status.success(), "docker cp into {container} failed");
}

#[test]
fn config_in_a_volume_is_fixed_through_the_docker_api() -> anyhow::Result<()> {
    let bed = ci_doctor_testbed::Bed::new("fix-volume")?;
    bed.volume("runner-config")?;
    let runner = bed.container("gitlab-runner").image(RUNNER_IMAGE).volume("runner-config", "/etc/gitlab-runner").docker_socket().start()?;
    let file = bed.write_file("staging/config.toml", typo_config())?;
    docker_cp_into(&file, "gitlab-runner", "/etc/gitlab-runner/config.toml");
    runner.exec(&["chmod", "600", "/etc/gitlab-runner/config.toml"])?;

    let run = ci_doctor_as_docker_user(&["--runner-container", "gitlab-runner", "--no-probe", "--fix", "--yes"]);
    assert_eq!(run.status, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("in volume `runner-config` (copied through the Docker API)"), "{}", run.stdout);
    assert!(run.stdout.contains("fixed: config.keys"), "{}", run.stdout);
    run.assert_no_secrets(&[TYPO_TOKEN]);

    // The container sees the new file, with its mode kept, and the backup beside it.
    let inside = runner.exec(&["cat", "/etc/gitlab-runner/config.toml"])?;
    assert_eq!(inside.stdout, typo_fixed());
    let listing = runner.exec(&["ls", "-l", "/etc/gitlab-runner"])?.stdout;
    assert!(listing.contains("-rw-------") && listing.contains(".ci-doctor-"), "{listing}");
    Ok(())
}

#[test]
fn config_only_in_the_container_layer_is_fixed_through_the_docker_api() -> anyhow::Result<()> {
    let bed = ci_doctor_testbed::Bed::new("fix-container-layer")?;
    let runner = bed.container("gitlab-runner").image(RUNNER_IMAGE).docker_socket().start()?;
    runner.exec(&["mkdir", "-p", "/etc/gitlab-runner"])?;
    let file = bed.write_file("staging/config.toml", typo_config())?;
    docker_cp_into(&file, "gitlab-runner", "/etc/gitlab-runner/config.toml");

    let run = ci_doctor(&["--runner-container", "gitlab-runner", "--no-probe", "--fix", "--yes"]);
    assert!(run.stdout.contains("keeps `/etc/gitlab-runner/config.toml` only in its own writable layer"), "{}", run.stdout);
    assert!(run.stdout.contains("fixed: config.keys"), "{}\n{}", run.stdout, run.stderr);
    assert_eq!(runner.exec(&["cat", "/etc/gitlab-runner/config.toml"])?.stdout, typo_fixed());
    run.assert_no_secrets(&[TYPO_TOKEN]);
    Ok(())
}

/// A config file on this host in a fresh directory.
fn host_config(text: &str, mode: u32) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, text).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
    (dir, path)
}

#[test]
fn host_file_fix_renames_the_key_and_restricts_the_mode() {
    let (dir, path) = host_config(&typo_config(), 0o644);
    let shown = path.to_str().unwrap();

    let dry = ci_doctor(&["--config", shown, "--no-probe", "--fix", "--dry-run"]);
    assert!(dry.stdout.contains("-    privilaged = true # for dind") && dry.stdout.contains("+    privileged = true # for dind"), "{}", dry.stdout);
    assert!(dry.stdout.contains("mode: 0600") && dry.stdout.contains("Dry run: nothing was written"), "{}", dry.stdout);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), typo_config());

    let run = ci_doctor(&["--config", shown, "--no-probe", "--fix", "--yes"]);
    assert_eq!(run.status, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), typo_fixed());
    assert_eq!(std::fs::metadata(&path).unwrap().mode() & 0o777, 0o600);
    assert!(run.stdout.contains("fixed: config.keys") && run.stdout.contains("fixed: config.file-mode"), "{}", run.stdout);
    run.assert_no_secrets(&[TYPO_TOKEN]);
    let saved = backups(dir.path());
    assert_eq!(saved.len(), 1);
    assert_eq!(std::fs::metadata(&saved[0]).unwrap().mode() & 0o777, 0o644, "the backup keeps the old mode");

    let again = ci_doctor(&["--config", shown, "--no-probe", "--fix", "--yes"]);
    assert!(again.stdout.contains("Nothing to fix"), "{}", again.stdout);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), typo_fixed());
}

#[test]
fn fix_without_terminal_needs_yes() {
    let (_dir, path) = host_config(&typo_config(), 0o600);
    let run = ci_doctor(&["--config", path.to_str().unwrap(), "--no-probe", "--fix"]);
    assert_eq!(run.status, 2);
    assert!(run.stderr.contains("stdin is not a terminal") && run.stderr.contains("`--yes`"), "{}", run.stderr);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), typo_config());
}

#[test]
fn read_only_file_is_not_written() {
    let (dir, path) = host_config(&typo_config(), 0o400);
    let run = ci_doctor(&["--config", path.to_str().unwrap(), "--no-probe", "--fix", "--yes"]);
    assert_eq!(run.status, 2, "{}", run.stdout);
    assert!(run.stdout.contains("is read-only (mode 0400)"), "{}", run.stdout);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), typo_config());
    assert!(backups(dir.path()).is_empty());
}

#[test]
fn symlinked_config_edits_the_target_and_keeps_the_link() {
    let (dir, target) = host_config(&typo_config(), 0o600);
    let link = dir.path().join("link.toml");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let run = ci_doctor(&["--config", link.to_str().unwrap(), "--no-probe", "--fix", "--yes"]);
    assert_eq!(run.status, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    assert_eq!(std::fs::read_to_string(&target).unwrap(), typo_fixed());
}

#[test]
fn invalid_toml_is_never_written() {
    let broken = format!("{}[[runners\n", typo_config());
    let (dir, path) = host_config(&broken, 0o600);
    let run = ci_doctor(&["--config", path.to_str().unwrap(), "--no-probe", "--fix", "--yes"]);
    assert!(run.stdout.contains("error[config.syntax]") && run.stdout.contains(&format!("{}:13:", path.display())), "{}", run.stdout);
    assert!(run.stdout.contains("Nothing to fix"), "{}", run.stdout);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), broken);
    assert!(backups(dir.path()).is_empty());
    run.assert_no_secrets(&[TYPO_TOKEN]);
}

/// Runs `ci-doctor` under `script`, which gives it a terminal, and returns the child.
fn spawn_on_terminal(args: &[&str]) -> std::process::Child {
    let mut command_line = String::from(env!("CARGO_BIN_EXE_ci-doctor"));
    for arg in args {
        command_line.push(' ');
        command_line.push_str(arg);
    }
    Command::new("script")
        .args(["-qfec", &command_line, "/dev/null"])
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("script runs")
}

/// Reads `child`'s output until it contains `marker`.
fn read_until(reader: &mut impl Read, marker: &str) -> String {
    let mut seen = String::new();
    let mut buffer = [0u8; 4096];
    while !seen.contains(marker) {
        let read = reader.read(&mut buffer).expect("output readable");
        assert!(read > 0, "output ended before {marker:?}:\n{seen}");
        seen.push_str(&String::from_utf8_lossy(&buffer[..read]));
    }
    seen
}

#[test]
fn file_changed_after_reading_is_not_overwritten() {
    let (dir, path) = host_config(&typo_config(), 0o600);
    let mut child = spawn_on_terminal(&["--config", path.to_str().unwrap(), "--no-probe", "--fix"]);
    let mut stdout = child.stdout.take().unwrap();
    read_until(&mut stdout, "Apply these changes to 1 file?");

    // Another writer changes the file while ci-doctor waits for the answer.
    let other = typo_config().replace("concurrent = 1", "concurrent = 3");
    std::fs::write(&path, &other).unwrap();
    child.stdin.take().unwrap().write_all(b"y\n").unwrap();

    let mut rest = String::new();
    BufReader::new(stdout).read_to_string(&mut rest).unwrap();
    let status = child.wait().unwrap();
    assert!(rest.contains("changed since ci-doctor read it"), "{rest}");
    assert_eq!(status.code(), Some(2));
    assert_eq!(std::fs::read_to_string(&path).unwrap(), other);
    assert!(backups(dir.path()).is_empty());
}

#[test]
fn answering_no_writes_nothing() {
    let (_dir, path) = host_config(&typo_config(), 0o600);
    let mut child = spawn_on_terminal(&["--config", path.to_str().unwrap(), "--no-probe", "--fix"]);
    let mut stdout = child.stdout.take().unwrap();
    read_until(&mut stdout, "Apply these changes to 1 file?");
    child.stdin.take().unwrap().write_all(b"n\n").unwrap();
    let rest: Vec<String> = BufReader::new(stdout).lines().map_while(Result::ok).collect();
    child.wait().unwrap();
    assert!(rest.iter().any(|line| line.contains("Nothing was written")), "{rest:?}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), typo_config());
}

#[test]
fn fix_report_in_json_has_diffs_and_states() {
    let (_dir, path) = host_config(&typo_config(), 0o600);
    let run = ci_doctor(&["--config", path.to_str().unwrap(), "--no-probe", "--fix", "--dry-run", "--format", "json"]);
    let report = run.json();
    let files = report["fix"]["files"].as_array().unwrap();
    assert_eq!(files.len(), 1, "{report:#}");
    assert_eq!(files[0]["state"], "planned");
    assert!(files[0]["diff"].as_str().unwrap().contains("+    privileged = true"), "{report:#}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), typo_config());
    run.assert_no_secrets(&[TYPO_TOKEN]);
}
