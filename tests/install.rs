//! Installing ci-doctor as the README shows, from the committed tree alone, and running the
//! installed binary as a container image against a real scenario.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::*;

/// Returns the Rust target of this machine, for a statically linked glibc build.
fn target_triple() -> String {
    format!("{}-unknown-linux-gnu", std::env::consts::ARCH)
}

/// Exports the committed tree (`git archive HEAD`) into `dir`: what a clean clone holds, with
/// no build output and no uncommitted file.
fn export_head(dir: &Path) {
    let archive = Command::new("git").args(["-C", env!("CARGO_MANIFEST_DIR"), "archive", "--format=tar", "HEAD"]).output().expect("git runs");
    assert!(archive.status.success(), "git archive failed: {}", String::from_utf8_lossy(&archive.stderr));
    tar::Archive::new(archive.stdout.as_slice()).unpack(dir).expect("archive unpacks");
}

/// Runs `cargo install --locked --path .` in `source`, statically linked so that the binary
/// also runs in a `FROM scratch` image, and returns the installed binary.
fn cargo_install(source: &Path, root: &Path) -> PathBuf {
    // A target directory kept between runs turns a repeated install into a short rebuild.
    let target_dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/install-static");
    let output = Command::new(env!("CARGO"))
        .args(["install", "--locked", "--path", ".", "--root"])
        .arg(root)
        .args(["--target", &target_triple()])
        .current_dir(source)
        .env("CARGO_TARGET_DIR", &target_dir)
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .output()
        .expect("cargo runs");
    assert!(output.status.success(), "cargo install failed:\n{}", String::from_utf8_lossy(&output.stderr));
    root.join("bin/ci-doctor")
}

/// Reads the options of the README's `docker run` line.
fn readme_run_options() -> Vec<String> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let line = readme.lines().find(|line| line.trim_start().starts_with("docker run ")).expect("the README has a `docker run` line");
    let words: Vec<&str> = line.split_whitespace().collect();
    let image = words.iter().position(|word| *word == "ci-doctor").expect("the line runs the `ci-doctor` image");
    words[2..image].iter().map(|word| word.to_string()).collect()
}

#[test]
fn clean_checkout_installs_and_runs_as_a_container() -> anyhow::Result<()> {
    let work = tempfile::tempdir()?;
    let source = work.path().join("source");
    std::fs::create_dir(&source)?;
    export_head(&source);

    let binary = cargo_install(&source, &work.path().join("root"));
    let version = Command::new(&binary).arg("--version").output()?;
    assert_eq!(String::from_utf8_lossy(&version.stdout), format!("ci-doctor {}\n", env!("CARGO_PKG_VERSION")));

    // The image, from the repository's Dockerfile and the installed binary.
    let token = "glrt-FAKEc01q7Lm2Vx9Rt4Bn";
    let bed = ci_doctor_testbed::Bed::new("c01-container-image")?;
    let context = bed.create_dir("image")?;
    let in_context = format!("target/{}/release/ci-doctor", target_triple());
    std::fs::create_dir_all(context.join(&in_context).parent().unwrap())?;
    std::fs::copy(&binary, context.join(&in_context))?;
    std::fs::copy(source.join("Dockerfile"), context.join("Dockerfile"))?;
    std::fs::copy(source.join(".dockerignore"), context.join(".dockerignore"))?;
    bed.build_image("ci-doctor-test/ci-doctor:latest", &context, &[("BINARY", &in_context)])?;

    // C01, diagnosed from a container started with the README's options.
    build_c01(&bed, token)?;
    let options = readme_run_options();
    let mut doctor = bed.container("ci-doctor").image("ci-doctor-test/ci-doctor:latest");
    let mut index = 0;
    while index < options.len() {
        let option = options[index].as_str();
        let value = options.get(index + 1).map(String::as_str).unwrap_or("");
        doctor = match option {
            "--rm" => doctor,
            "--pid" if value == "host" => doctor.pid_host(),
            "--cap-add" => doctor.cap_add(value),
            "--security-opt" => doctor.security_opt(value),
            "-v" if value == "/var/run/docker.sock:/var/run/docker.sock" => doctor.docker_socket(),
            other => panic!("the README's `docker run` line has an option this test does not know: {other} {value}"),
        };
        index += if ["--rm"].contains(&option) { 1 } else { 2 };
    }
    let doctor = doctor.command(&["--runner-container", "gitlab-runner", "--format", "json", "--timeout", "3"]).start()?;
    let status = doctor.wait()?;
    let (stdout, stderr) = doctor.output()?;
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_else(|error| panic!("no JSON report ({error}):\n{stdout}\n{stderr}"));

    assert_eq!(status, 1, "{stderr}");
    let error = finding(&report, "network.runner-url", "error");
    assert!(error["message"].as_str().unwrap().contains("`localhost` is that container's own loopback"), "{error:#}");
    assert_eq!(error["basis"]["method"], "probe", "the container entered the runner's namespace: {error:#}");
    assert!(text_of(error).contains("connection refused"), "{error:#}");
    assert_eq!(verdict(&report, "config.found")["status"], "ok", "{report:#}");
    assert_eq!(verdict(&report, "runner.docker-access")["status"], "ok", "{report:#}");
    assert!(!stdout.contains(token), "{stdout}");
    assert!(!stderr.contains(token), "{stderr}");
    Ok(())
}
