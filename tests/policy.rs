//! The policy file on the command line: found at the top of the Git checkout, applied to the
//! exit status, rejected when a rule lacks its reason, and overridden by flags.

mod common;

use std::path::{Path, PathBuf};

use common::*;

const TOKEN: &str = "glrt-FAKEpolicy0Aa1Bb2Cc";

/// Creates a Git checkout (a `.git` directory is all ci-doctor looks for) with a subdirectory
/// to run from, and a runner config on this host with one error: an unknown key.
fn checkout() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join(".git")).unwrap();
    let nested = dir.path().join("ci/jobs");
    std::fs::create_dir_all(&nested).unwrap();
    let config = dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!("concurrent = 1\n\n[[runners]]\n  name = \"typo\"\n  url = \"http://gitlab.example.test/\"\n  token = \"{TOKEN}\"\n  executor = \"docker\"\n  [runners.docker]\n    image = \"docker:27\"\n    privilaged = true\n"),
    )
    .unwrap();
    set_mode(&config, 0o600);
    (dir, nested, config)
}

fn run_in(dir: &Path, args: &[&str]) -> Run {
    ci_doctor_in(Some(dir), args, None)
}

#[test]
fn project_policy_ignores_with_reason() {
    let (root, nested, config) = checkout();
    let args = ["--config", config.to_str().unwrap(), "--no-probe"];

    let before = run_in(&nested, &args);
    assert_eq!(before.status, 1, "the unknown key is an error:\n{}", before.stdout);

    std::fs::write(root.path().join(".ci-doctor.toml"), "[[ignore]]\ncheck = \"config.keys\"\nreason = \"the key is fixed by the next Ansible run\"\n").unwrap();
    let after = run_in(&nested, &args);
    assert_eq!(after.status, 0, "the ignored error leaves the exit status:\n{}\n{}", after.stdout, after.stderr);
    assert!(after.stdout.contains("1 finding ignored by policy: the key is fixed by the next Ansible run"), "{}", after.stdout);
    let rule = format!("rule `[[ignore]]` 1 in `{}`", root.path().join(".ci-doctor.toml").display());
    assert!(after.stdout.contains(&rule), "{}", after.stdout);
    assert!(after.stdout.contains("0 errors, 0 warnings"), "the ignored error counts nowhere:\n{}", after.stdout);
    after.assert_no_secrets(&[TOKEN]);

    // `--no-policy` shows the finding again; `--strict` still counts only what is left.
    let unfiltered = run_in(&nested, &["--config", config.to_str().unwrap(), "--no-probe", "--no-policy"]);
    assert_eq!(unfiltered.status, 1);
    let strict = run_in(&nested, &["--config", config.to_str().unwrap(), "--no-probe", "--strict"]);
    assert_eq!(strict.status, 0, "{}", strict.stdout);
}

#[test]
fn rule_without_reason_is_rejected() {
    let (root, nested, config) = checkout();
    let policy = root.path().join(".ci-doctor.toml");
    std::fs::write(&policy, "[[ignore]]\ncheck = \"config.file-mode\"\nreason = \"single-user host\"\n\n[[ignore]]\ncheck = \"config.keys\"\n").unwrap();

    let run = run_in(&nested, &["--config", config.to_str().unwrap(), "--no-probe"]);
    assert_eq!(run.status, 2);
    assert_eq!(run.stdout, "", "no report without a valid policy");
    let expected = format!("error: invalid policy rule `[[ignore]]` 2 in `{}` (line 6, check `config.keys`): `reason` is missing", policy.display());
    assert!(run.stderr.starts_with(&expected), "{}", run.stderr);
}

#[test]
fn unknown_key_and_unknown_check_are_rejected() {
    let (root, nested, config) = checkout();
    let policy = root.path().join(".ci-doctor.toml");
    let args = ["--config", config.to_str().unwrap(), "--no-probe"];

    std::fs::write(&policy, "[defaults]\nrunner-containers = [\"gitlab-runner\"]\n").unwrap();
    let run = run_in(&nested, &args);
    assert_eq!(run.status, 2);
    assert!(run.stderr.contains(&format!("invalid policy file `{}`", policy.display())), "{}", run.stderr);
    assert!(run.stderr.contains("unknown field `runner-containers`"), "{}", run.stderr);

    std::fs::write(&policy, "[[downgrade]]\ncheck = \"netwrk\"\nto = \"info\"\nreason = \"lab network\"\n").unwrap();
    let run = run_in(&nested, &args);
    assert_eq!(run.status, 2);
    assert!(run.stderr.contains("unknown check or area `netwrk`; did you mean `network`?"), "{}", run.stderr);
}

#[test]
fn downgrade_changes_severity_and_says_so() {
    let (root, nested, config) = checkout();
    std::fs::write(root.path().join(".ci-doctor.toml"), "[[downgrade]]\ncheck = \"config\"\nrunner = \"typo\"\nto = \"warning\"\nreason = \"lab runner\"\n").unwrap();

    let run = run_in(&nested, &["--config", config.to_str().unwrap(), "--no-probe", "--format", "json"]);
    assert_eq!(run.status, 0);
    let report = run.json();
    let warning = finding(&report, "config.keys", "warning");
    assert_eq!(warning["downgraded"]["from"], "error");
    assert_eq!(warning["downgraded"]["reason"], "lab runner");

    let strict = run_in(&nested, &["--config", config.to_str().unwrap(), "--no-probe", "--strict"]);
    assert_eq!(strict.status, 1, "a downgraded error is still a warning for `--strict`");
    assert!(strict.stdout.contains("warning[config.keys]: unknown key"), "{}", strict.stdout);
    assert!(strict.stdout.contains("= policy: downgraded from error (`[[downgrade]]` 1 in "), "{}", strict.stdout);
}

#[test]
fn rule_for_another_runner_changes_nothing() {
    let (root, nested, config) = checkout();
    std::fs::write(root.path().join(".ci-doctor.toml"), "[[ignore]]\ncheck = \"config.keys\"\nrunner = \"some-other-runner\"\nreason = \"not this one\"\n").unwrap();
    let run = run_in(&nested, &["--config", config.to_str().unwrap(), "--no-probe"]);
    assert_eq!(run.status, 1);
    assert!(run.stdout.contains("error[config.keys]"), "{}", run.stdout);
    assert!(!run.stdout.contains("ignored by policy"), "{}", run.stdout);
}

#[test]
fn command_line_flags_win_over_policy_defaults() {
    let (root, nested, config) = checkout();
    std::fs::write(root.path().join(".ci-doctor.toml"), "[defaults]\nrunner-container = \"no-such-runner-container\"\n").unwrap();

    // Without runner flags the policy's container is diagnosed, and it does not exist.
    let from_policy = run_in(&nested, &["--no-probe"]);
    assert_eq!(from_policy.status, 2);
    assert!(from_policy.stderr.contains("`no-such-runner-container`"), "{}", from_policy.stderr);

    // `--config` on the command line replaces the policy's choice of runners.
    let from_flag = run_in(&nested, &["--config", config.to_str().unwrap(), "--no-probe", "--format", "json"]);
    assert_eq!(from_flag.status, 1, "{}", from_flag.stderr);
    let runners = from_flag.json()["runners"].as_array().unwrap().len();
    assert_eq!(runners, 1);
}

#[test]
fn policy_timeout_applies_unless_given() {
    // A listener on loopback that accepts and never replies, so the probe waits for the whole
    // time limit, which the message states.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (root, nested, _) = checkout();
    let config = root.path().join("slow.toml");
    std::fs::write(&config, format!("concurrent = 1\n\n[[runners]]\n  name = \"slow\"\n  url = \"http://127.0.0.1:{port}/\"\n  token = \"{TOKEN}\"\n  executor = \"shell\"\n")).unwrap();
    set_mode(&config, 0o600);
    std::fs::write(root.path().join(".ci-doctor.toml"), "[defaults]\ntimeout = 1\n").unwrap();
    let message = |run: &Run| finding(&run.json(), "network.runner-url", "error")["message"].as_str().unwrap().to_string();

    let from_policy = run_in(&nested, &["--config", config.to_str().unwrap(), "--only", "network", "--format", "json"]);
    assert!(message(&from_policy).contains("sends no answer within 1 s"), "{}", from_policy.stdout);
    let from_flag = run_in(&nested, &["--config", config.to_str().unwrap(), "--only", "network", "--format", "json", "--timeout", "2"]);
    assert!(message(&from_flag).contains("sends no answer within 2 s"), "{}", from_flag.stdout);
    drop(listener);
}

#[test]
fn explicit_policy_file_must_exist() {
    let (_root, nested, config) = checkout();
    let run = run_in(&nested, &["--config", config.to_str().unwrap(), "--no-probe", "--policy", "missing-policy.toml"]);
    assert_eq!(run.status, 2);
    assert!(run.stderr.contains("failed to read policy file `missing-policy.toml`"), "{}", run.stderr);
}

#[test]
fn readme_example_policy_is_valid() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme.find("```toml\n").expect("the README shows a policy") + "```toml\n".len();
    let example = &readme[start..start + readme[start..].find("```").unwrap()];
    let policy = ci_doctor::policy::Policy::parse(example, Path::new("README.md")).unwrap_or_else(|error| panic!("{error:#}"));
    assert_eq!(policy.rules.len(), 2);
    assert_eq!(policy.defaults.runner_container, ["gitlab-runner"]);
}
