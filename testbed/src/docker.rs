//! Runs the `docker` command-line client and turns failures into errors that
//! show the command and what the client wrote to stderr.

use std::ffi::OsStr;
use std::io::Write as _;
use std::process::{Command, Output, Stdio};

use anyhow::{Context as _, bail};

fn command_line<S: AsRef<OsStr>>(args: &[S]) -> String {
    let mut line = String::from("docker");
    for arg in args {
        line.push(' ');
        line.push_str(&arg.as_ref().to_string_lossy());
    }
    line
}

/// Runs `docker ARGS` and returns its output whatever the exit status.
pub(crate) fn docker_output<S: AsRef<OsStr>>(args: &[S]) -> anyhow::Result<Output> {
    Command::new("docker")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| {
            format!(
                "failed to start `{}`: is the Docker CLI installed and on PATH?",
                command_line(args)
            )
        })
}

/// Runs `docker ARGS` and returns its stdout without the trailing newline,
/// or an error with its stderr when it exits with a non-zero status.
pub(crate) fn docker<S: AsRef<OsStr>>(args: &[S]) -> anyhow::Result<String> {
    let output = docker_output(args)?;
    check(args, &output)?;
    Ok(String::from_utf8_lossy(&output.stdout)
        .trim_end()
        .to_owned())
}

/// Runs `docker ARGS` with `input` on stdin, for `docker import -`.
pub(crate) fn docker_with_input<S: AsRef<OsStr>>(
    args: &[S],
    input: &[u8],
) -> anyhow::Result<String> {
    let mut child = Command::new("docker")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("failed to start `{}`", command_line(args)))?;
    let mut stdin = child
        .stdin
        .take()
        .context("the docker client has no stdin")?;
    // Write on another thread, so a client that fills its stdout pipe before
    // reading all of stdin cannot deadlock with this process.
    let input = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let output = child
        .wait_with_output()
        .with_context(|| format!("failed to wait for `{}`", command_line(args)))?;
    let written = writer
        .join()
        .expect("the stdin writer thread does not panic");
    check(args, &output)?;
    written.with_context(|| format!("failed to write the input of `{}`", command_line(args)))?;
    Ok(String::from_utf8_lossy(&output.stdout)
        .trim_end()
        .to_owned())
}

fn check<S: AsRef<OsStr>>(args: &[S], output: &Output) -> anyhow::Result<()> {
    if output.status.success() {
        return Ok(());
    }
    bail!(
        "`{}` failed ({}): {}",
        command_line(args),
        output.status,
        String::from_utf8_lossy(&output.stderr).trim()
    )
}

/// Returns `docker inspect` output of one object as JSON, or `None` when no
/// object of that kind has that name or id. `kind` is `container`,
/// `network`, `volume` or `image`.
pub(crate) fn inspect(kind: &str, name: &str) -> anyhow::Result<Option<serde_json::Value>> {
    let args = [kind, "inspect", "--format", "{{json .}}", name];
    let output = docker_output(&args)?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr).to_lowercase();
        if stderr.contains("no such") || stderr.contains("not found") {
            return Ok(None);
        }
        check(&args, &output)?;
    }
    let text = String::from_utf8_lossy(&output.stdout);
    let value = serde_json::from_str(text.trim())
        .with_context(|| format!("invalid JSON from `{}`", command_line(&args)))?;
    Ok(Some(value))
}
