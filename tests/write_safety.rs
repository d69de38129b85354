//! `--fix` under faults: killed at any point of a write, a full disk, a concurrent writer.

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};


const TOKEN: &str = "glrt-FAKEwritesafety0042";

fn config_text() -> String {
    format!("# comment\nconcurrent = 1\n\n[[runners]]\n  name = \"w\"\n  url = \"http://gitlab.example.test/\"\n  token = \"{TOKEN}\"\n  executor = \"docker\"\n  [runners.docker]\n    image = \"alpine:3.20\"\n    privilaged = true\n")
}

fn fixed_text() -> String {
    config_text().replace("privilaged", "privileged")
}

/// Files left in `dir` besides the config.
fn others(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir).unwrap().flatten().map(|entry| entry.file_name().to_string_lossy().to_string()).filter(|name| name != "config.toml").collect()
}

#[test]
fn kill_at_each_write_point_leaves_a_whole_file() {
    for point in ["pause-before-backup", "pause-before-replace", "pause-before-commit"] {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.toml");
        std::fs::write(&path, config_text()).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();

        let mut child = Command::new(env!("CARGO_BIN_EXE_ci-doctor"))
            .args(["--config", path.to_str().unwrap(), "--no-probe", "--fix", "--yes", "--only", "config.keys"])
            .env("CI_DOCTOR_TEST_FAULT", point)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // The pause lasts a minute; wait until ci-doctor sits in it, then kill it hard.
        std::thread::sleep(Duration::from_millis(1500));
        assert!(child.try_wait().unwrap().is_none(), "{point}: ci-doctor ended before the fault point");
        child.kill().unwrap();
        child.wait().unwrap();

        let content = std::fs::read_to_string(&path).unwrap();
        assert!(content == config_text() || content == fixed_text(), "{point}: a half-written file:\n{content}");
        toml_edit::DocumentMut::from_str_checked(&content);
        for name in others(dir.path()) {
            // Where the file system lacks O_TMPFILE, a kill between writing and renaming leaves
            // the named temporary file; the config itself is never touched by it.
            if name.starts_with(".config.toml.") {
                continue;
            }
            assert!(name.starts_with("config.toml.ci-doctor-") && name.ends_with(".bak"), "{point}: stray file {name}");
            let backup = std::fs::read_to_string(dir.path().join(&name)).unwrap();
            assert_eq!(backup, config_text(), "{point}: a backup must be whole");
        }
    }
}

/// Parses TOML or panics with the text: a killed write must never leave invalid TOML.
trait CheckedParse {
    fn from_str_checked(text: &str);
}

impl CheckedParse for toml_edit::DocumentMut {
    fn from_str_checked(text: &str) {
        text.parse::<toml_edit::DocumentMut>().unwrap_or_else(|error| panic!("invalid TOML after a kill: {error}\n{text}"));
    }
}

#[test]
fn full_disk_leaves_the_old_file_and_says_so() {
    // A private mount namespace with a small tmpfs, filled up, so the machine's own mounts
    // stay untouched.
    let dir = tempfile::tempdir().unwrap();
    let mount = dir.path().join("small");
    std::fs::create_dir(&mount).unwrap();
    let config = mount.join("config.toml");
    let script = format!(
        "set -e; mount -t tmpfs -o size=64k tmpfs {m}; printf '%s' \"$CONFIG\" > {c}; chmod 600 {c}; dd if=/dev/zero of={m}/filler bs=1k count=1000 2>/dev/null || true; set +e; {bin} --config {c} --no-probe --fix --yes --only config.keys; echo \"exit=$?\"; echo ---file---; cat {c}",
        m = mount.display(),
        c = config.display(),
        bin = env!("CARGO_BIN_EXE_ci-doctor"),
    );
    let output = Command::new("unshare").args(["--mount", "--propagation", "private", "sh", "-c", &script]).env("CONFIG", config_text()).output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("No space left on device") && stdout.contains("the file is unchanged"), "{stdout}");
    assert!(stdout.contains("exit=2"), "{stdout}");
    let (report, file) = stdout.split_once("---file---\n").expect("separator printed");
    assert_eq!(file, config_text(), "the old file must stay whole");
    assert!(!report.contains(TOKEN), "{report}");
}

#[test]
fn concurrent_writer_between_read_and_replace_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, config_text()).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();

    let resume = dir.path().join("resume");
    let child = Command::new(env!("CARGO_BIN_EXE_ci-doctor"))
        .args(["--config", path.to_str().unwrap(), "--no-probe", "--fix", "--yes", "--only", "config.keys"])
        .env("CI_DOCTOR_TEST_FAULT", "pause-before-replace")
        .env("CI_DOCTOR_TEST_RESUME", &resume)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    // The runner rewrites its config, as it does when it rotates its token.
    let rewritten = config_text().replace("concurrent = 1", "concurrent = 2");
    std::fs::write(&path, &rewritten).unwrap();
    std::fs::write(&resume, "").unwrap();
    let started = Instant::now();
    let output = child.wait_with_output().unwrap();
    assert!(started.elapsed() < Duration::from_secs(30));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("changed since ci-doctor read it"), "{stdout}");
    assert_eq!(std::fs::read_to_string(&path).unwrap(), rewritten);
    let left: Vec<String> = others(dir.path()).into_iter().filter(|name| name != "resume").collect();
    assert!(left.is_empty(), "the backup of a refused write is removed: {left:?}");
}
