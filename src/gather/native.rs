//! Finds runners installed on this host: running `gitlab-runner run` processes, systemd units,
//! and the default config paths.

use std::path::{Path, PathBuf};

use super::config::{DEFAULT_CONFIG, config_path_from_args};
use crate::facts::runner::NativeRunner;

/// A runner install on this host and the config it uses.
#[derive(Debug, Clone)]
pub struct NativeCandidate {
    pub config: PathBuf,
    pub runner: NativeRunner,
}

/// Systemd unit files the runner's `install` command writes.
const UNIT_FILES: &[&str] = &[
    "/etc/systemd/system/gitlab-runner.service",
    "/lib/systemd/system/gitlab-runner.service",
    "/usr/lib/systemd/system/gitlab-runner.service",
];

/// Finds native runners. Processes come first, because their `--config` is what really runs;
/// then unit files, then default paths that exist.
pub fn discover() -> Vec<NativeCandidate> {
    let mut found: Vec<NativeCandidate> = Vec::new();
    let mut add = |candidate: NativeCandidate| {
        let key = canonical(&candidate.config);
        if !found.iter().any(|known| canonical(&known.config) == key) {
            found.push(candidate);
        }
    };

    for process in runner_processes() {
        add(process);
    }
    for unit in UNIT_FILES {
        if let Some(candidate) = from_unit_file(Path::new(unit)) {
            add(candidate);
        }
    }
    for path in default_paths() {
        if path.exists() {
            add(NativeCandidate { config: path, runner: NativeRunner { found_by: "default path".into(), ..NativeRunner::default() } });
        }
    }
    found
}

fn default_paths() -> Vec<PathBuf> {
    let mut paths = vec![PathBuf::from(DEFAULT_CONFIG)];
    if let Some(home) = std::env::var_os("HOME") {
        paths.push(Path::new(&home).join(".gitlab-runner/config.toml"));
    }
    paths
}

/// Resolves symlinks so that one file reached two ways counts once.
pub fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

/// `gitlab-runner run` processes in this host's mount namespace. Runner processes inside
/// containers are visible in `/proc` too, but their paths belong to the container.
fn runner_processes() -> Vec<NativeCandidate> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    let own_namespace = std::fs::read_link("/proc/self/ns/mnt").ok();

    let mut found = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|name| name.parse::<u32>().ok()) else { continue };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else { continue };
        let args: Vec<String> = cmdline
            .split(|byte| *byte == 0)
            .filter(|arg| !arg.is_empty())
            .map(|arg| String::from_utf8_lossy(arg).to_string())
            .collect();
        if !is_runner_run(&args) || in_container(pid, own_namespace.as_deref()) {
            continue;
        }

        let user = flag_value(&args, "--user", "-u");
        let service = flag_value(&args, "--service", "-n");
        let config = config_path_from_args(&args, None).unwrap_or_else(|| default_config_for_process(pid));
        let private_env = crate::facts::docker::PrivateEnv(read_environ(pid));
        found.push(NativeCandidate { config, runner: NativeRunner { pid: Some(pid), user, service, found_by: format!("process {pid}"), private_env } });
    }
    found
}

/// The environment of process `pid`, when this user may read it.
fn read_environ(pid: u32) -> Option<Vec<(String, String)>> {
    let bytes = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    Some(
        bytes
            .split(|byte| *byte == 0)
            .filter_map(|pair| {
                let pair = String::from_utf8_lossy(pair);
                pair.split_once('=').map(|(key, value)| (key.to_string(), value.to_string()))
            })
            .collect(),
    )
}

fn is_runner_run(args: &[String]) -> bool {
    let Some(program) = args.first() else { return false };
    let name = program.rsplit('/').next().unwrap_or(program);
    let is_runner = name == "gitlab-runner" || name.starts_with("gitlab-runner-linux") || name == "gitlab-ci-multi-runner";
    is_runner && args.iter().skip(1).any(|arg| arg == "run")
}

/// Returns true when `pid` lives in another mount namespace than ci-doctor, or, when that
/// cannot be read, when its cgroup names a container runtime.
fn in_container(pid: u32, own_namespace: Option<&Path>) -> bool {
    if let (Some(own), Ok(theirs)) = (own_namespace, std::fs::read_link(format!("/proc/{pid}/ns/mnt"))) {
        return own != theirs;
    }
    std::fs::read_to_string(format!("/proc/{pid}/cgroup"))
        .is_ok_and(|cgroup| cgroup.contains("docker") || cgroup.contains("containerd") || cgroup.contains("libpod"))
}

/// The runner's default: `/etc/gitlab-runner` for root, `~/.gitlab-runner` for other users.
fn default_config_for_process(pid: u32) -> PathBuf {
    let uid = std::fs::read_to_string(format!("/proc/{pid}/status")).ok().and_then(|status| {
        status.lines().find_map(|line| line.strip_prefix("Uid:")).and_then(|ids| ids.split_whitespace().nth(1)?.parse::<u32>().ok())
    });
    match uid {
        Some(0) | None => PathBuf::from(DEFAULT_CONFIG),
        Some(uid) => nix::unistd::User::from_uid(uid.into())
            .ok()
            .flatten()
            .map(|user| user.dir.join(".gitlab-runner/config.toml"))
            .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG)),
    }
}

/// The value of a flag given as `--name value`, `--name=value`, `-n value` or `-n=value`.
fn flag_value(args: &[String], long: &str, short: &str) -> Option<String> {
    let mut words = args.iter();
    while let Some(word) = words.next() {
        if let Some(value) = word.strip_prefix(&format!("{long}=")).or_else(|| word.strip_prefix(&format!("{short}="))) {
            return Some(value.to_string());
        }
        if word == long || word == short {
            return words.next().cloned();
        }
    }
    None
}

/// Reads `ExecStart=` of a systemd unit written by `gitlab-runner install`.
fn from_unit_file(path: &Path) -> Option<NativeCandidate> {
    let text = std::fs::read_to_string(path).ok()?;
    let exec = text.lines().find_map(|line| line.trim().strip_prefix("ExecStart="))?;
    let args: Vec<String> = exec.split_whitespace().map(|word| word.trim_matches('"').to_string()).collect();
    if !is_runner_run(&args) {
        return None;
    }
    let config = config_path_from_args(&args, None).unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG));
    let user = flag_value(&args, "--user", "-u");
    let unit_name = path.file_stem().map(|stem| stem.to_string_lossy().to_string());
    let service = flag_value(&args, "--service", "-n").or(unit_name);
    Some(NativeCandidate { config, runner: NativeRunner { pid: None, user, service, found_by: format!("unit {}", path.display()), private_env: Default::default() } })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Vec<String> {
        text.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn run_commands_are_recognised() {
        assert!(is_runner_run(&words("/usr/bin/gitlab-runner run --config /etc/gitlab-runner/config.toml")));
        assert!(is_runner_run(&words("gitlab-runner-linux-amd64 run")));
        assert!(!is_runner_run(&words("/usr/bin/gitlab-runner register")));
        assert!(!is_runner_run(&words("/usr/bin/dumb-init /entrypoint run --user=gitlab-runner")));
    }

    #[test]
    fn unit_file_gives_config_and_user() {
        let dir = tempfile::tempdir().unwrap();
        let unit = dir.path().join("gitlab-runner.service");
        std::fs::write(
            &unit,
            "[Service]\nExecStart=/usr/bin/gitlab-runner \"run\" \"--working-directory\" \"/home/gitlab-runner\" \"--config\" \"/etc/gitlab-runner/config.toml\" \"--service\" \"gitlab-runner\" \"--user\" \"gitlab-runner\"\n",
        )
        .unwrap();
        let candidate = from_unit_file(&unit).unwrap();
        assert_eq!(candidate.config, PathBuf::from("/etc/gitlab-runner/config.toml"));
        assert_eq!(candidate.runner.user.as_deref(), Some("gitlab-runner"));
        assert_eq!(candidate.runner.service.as_deref(), Some("gitlab-runner"));
    }
}
