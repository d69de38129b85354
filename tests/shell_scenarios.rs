//! A shell-executor runner installed on "the host": its job user, the Docker socket's group, and
//! the groups its running process really has. Each scenario runs ci-doctor in a private mount
//! namespace where test-owned `passwd` and `group` files cover `/etc/passwd` and `/etc/group`,
//! so this machine's accounts are never changed.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use common::*;
use serde_json::Value;

const C18: &str = "C18-shell-executor-user-not-in-docker-group";
const RUNNER_UID: u32 = 4999;

/// `passwd` and `group` of this machine, plus user `gitlab-runner` and a `docker` group with
/// the socket's gid whose members are `docker_members`; `root_members` join group `root`.
fn account_files(dir: &Path, docker_members: &str, root_members: &str) -> u32 {
    let socket_gid = std::fs::metadata("/var/run/docker.sock").expect("Docker socket").gid();
    let mut passwd: String = std::fs::read_to_string("/etc/passwd").unwrap().lines().filter(|line| !line.starts_with("gitlab-runner:")).map(|line| format!("{line}\n")).collect();
    passwd.push_str(&format!("gitlab-runner:x:{RUNNER_UID}:{RUNNER_UID}::/home/gitlab-runner:/bin/bash\n"));
    let mut group = String::new();
    for line in std::fs::read_to_string("/etc/group").unwrap().lines() {
        let fields: Vec<&str> = line.split(':').collect();
        if fields.len() < 4 || fields[0] == "docker" || fields[0] == "gitlab-runner" || fields[2] == socket_gid.to_string() {
            continue;
        }
        if fields[2] == "0" {
            group.push_str(&format!("{}:{}:0:{root_members}\n", fields[0], fields[1]));
        } else {
            group.push_str(&format!("{line}\n"));
        }
    }
    group.push_str(&format!("docker:x:{socket_gid}:{docker_members}\ngitlab-runner:x:{RUNNER_UID}:\n"));
    std::fs::write(dir.join("passwd"), passwd).unwrap();
    std::fs::write(dir.join("group"), group).unwrap();
    socket_gid
}

/// Runs `runner` (a shell command that starts the fake runner process in the background) and
/// then ci-doctor with each of `runs`, inside a private mount namespace with the account files of
/// `dir`. Returns each run's stdout and the shell's stderr.
fn in_namespace(dir: &Path, runner: &str, runs: &[&[&str]]) -> (Vec<String>, String) {
    let binary = env!("CARGO_BIN_EXE_ci-doctor");
    let mut script = format!(
        "set -e\nmount --bind {0}/passwd /etc/passwd\nmount --bind {0}/group /etc/group\n{runner} &\nRUNNER=$!\ntrap 'kill $RUNNER 2>/dev/null || true' EXIT\nsleep 0.5\n",
        dir.display()
    );
    for (index, args) in runs.iter().enumerate() {
        let quoted: Vec<String> = args.iter().map(|arg| format!("'{arg}'")).collect();
        script.push_str(&format!("NO_COLOR=1 {binary} {} > {}/out-{index} 2>> {}/stderr </dev/null || true\n", quoted.join(" "), dir.display(), dir.display()));
    }
    let output = Command::new("unshare").args(["--mount", "--propagation", "private", "bash", "-c", &script]).env_remove("GITLAB_TOKEN").output().expect("unshare runs");
    assert!(output.status.success(), "the namespace script failed: {}", String::from_utf8_lossy(&output.stderr));
    let outputs = (0..runs.len()).map(|index| std::fs::read_to_string(dir.join(format!("out-{index}"))).unwrap_or_default()).collect();
    let stderr = std::fs::read_to_string(dir.join("stderr")).unwrap_or_default();
    (outputs, stderr)
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|error| panic!("not JSON ({error}):\n{text}"))
}

/// Selects the findings of `check` for the runner whose config is `config`.
fn runner_findings<'a>(report: &'a Value, check: &str, config: &Path) -> Vec<&'a Value> {
    findings(report, check).into_iter().filter(|finding| finding["runner"]["config"] == config.display().to_string()).collect()
}

#[test]
fn shell_user_without_docker_group() -> anyhow::Result<()> {
    // The bed orders this scenario with the others, so no scenario containers are around.
    let bed = ci_doctor_testbed::Bed::new("c18-shell-user")?;
    let dir = bed.create_dir("accounts")?;
    let socket_gid = account_files(&dir, "alice", "");
    let config = bed.write_file("etc-gitlab-runner/config.toml", case_file(C18, "config.toml"))?;
    set_mode(&config, 0o600);
    let runner = format!("bash -c 'exec -a /usr/bin/gitlab-runner perl -e \"sleep 600\" run --working-directory /home/gitlab-runner --config {} --service gitlab-runner --user gitlab-runner'", config.display());
    let (outputs, stderr) = in_namespace(&dir, &runner, &[&["--format", "json", "--timeout", "3"], &["--timeout", "3", "--fix", "--yes"]]);

    let report = json(&outputs[0]);
    let errors = runner_findings(&report, "docker.socket-access", &config);
    assert_eq!(errors.len(), 1, "{report:#}\n{stderr}");
    let error = errors[0];
    assert_eq!(error["severity"], "error");
    assert_eq!(error["runner"]["name"], "build-host-shell");
    let message = error["message"].as_str().unwrap();
    assert!(message.starts_with("runner `build-host-shell` uses the shell executor; its jobs run as user `gitlab-runner` (`--user` of runner process"), "{message}");
    assert!(message.ends_with(&format!("which is not in group `docker` (gid {socket_gid}) that owns `/var/run/docker.sock` with mode 0660")), "{message}");
    let text = text_of(error);
    assert!(text.contains("permission denied while trying to connect to the Docker daemon socket"), "{text}");
    assert!(text.contains("equivalent to root"), "{text}");
    let commands: Vec<&str> = error["fix"]["actions"].as_array().unwrap().iter().filter_map(|action| action["command"].as_str()).collect();
    assert_eq!(commands, ["sudo usermod -aG docker gitlab-runner", "sudo systemctl restart gitlab-runner"]);

    // Must not report: the daemon down, or anything to change in config.toml.
    assert_eq!(verdict(&report, "docker.daemon")["status"], "ok");
    assert!(report["findings"].as_array().unwrap().iter().all(|finding| finding["fix"]["actions"].as_array().is_none_or(|actions| actions.iter().all(|action| action["action"] == "command"))), "{report:#}");
    let fixed = &outputs[1];
    assert!(fixed.contains("Nothing to fix"), "{fixed}");
    assert!(fixed.contains("sudo usermod -aG docker gitlab-runner"), "{fixed}");
    assert_eq!(std::fs::read_to_string(&config)?, case_file(C18, "config.toml"));
    assert!(!outputs.iter().any(|output| output.contains("glrt-FAKEc18Hx4Mc7Ts2Lb5k")) && !stderr.contains("glrt-FAKEc18Hx4Mc7Ts2Lb5k"));

    // The user is in no powerful group.
    let groups: Vec<&Value> = verdicts(&report, "security.runner-groups").into_iter().filter(|verdict| verdict["runner"]["config"] == config.display().to_string()).collect();
    assert_eq!(groups.len(), 1, "{report:#}");
    assert_eq!(groups[0]["status"], "ok");
    Ok(())
}

#[test]
fn process_started_before_group_change() -> anyhow::Result<()> {
    let bed = ci_doctor_testbed::Bed::new("shell-user-stale-groups")?;
    let dir = bed.create_dir("accounts")?;
    let socket_gid = account_files(&dir, "alice,gitlab-runner", "gitlab-runner");
    let config = bed.write_file("home-gitlab-runner/config.toml", case_file(C18, "config.toml"))?;
    set_mode(&config, 0o644);
    // The runner runs as the user itself, with the groups it had before joining `docker`.
    let runner = format!("setpriv --reuid {RUNNER_UID} --regid {RUNNER_UID} --clear-groups bash -c 'exec -a /usr/bin/gitlab-runner perl -e \"sleep 600\" run --config {}'", config.display());
    let (outputs, stderr) = in_namespace(&dir, &runner, &[&["--format", "json", "--timeout", "3"]]);

    let report = json(&outputs[0]);
    let errors = runner_findings(&report, "docker.socket-access", &config);
    assert_eq!(errors.len(), 1, "{report:#}\n{stderr}");
    let message = errors[0]["message"].as_str().unwrap();
    assert!(message.starts_with("runner process "), "{message}");
    assert!(message.ends_with("runs as `gitlab-runner` without group `docker`, which the user joined after the process started"), "{message}");
    let commands: Vec<&str> = errors[0]["fix"]["actions"].as_array().unwrap().iter().filter_map(|action| action["command"].as_str()).collect();
    assert_eq!(commands, ["sudo systemctl restart gitlab-runner"]);

    // Group `root` and the socket's group are both powerful.
    let warnings: Vec<String> = runner_findings(&report, "security.runner-groups", &config).iter().map(|finding| finding["message"].as_str().unwrap().to_string()).collect();
    assert_eq!(
        warnings,
        [
            "user `gitlab-runner`, which shell jobs run as, is in group `root` (gid 0)".to_string(),
            format!("user `gitlab-runner`, which shell jobs run as, is in group `docker` (gid {socket_gid})"),
        ]
    );
    Ok(())
}
