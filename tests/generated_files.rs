//! Files generated from the registry and the command-line definition: the docs pages (with
//! no broken link), the shell completions and the manual page.

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use common::*;

/// Collects every link `[text](target)` in Markdown `text`, outside code spans and fenced
/// blocks.
fn links(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut in_fence = false;
    for line in text.lines() {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
            continue;
        }
        if in_fence {
            continue;
        }
        // Code spans can hold brackets that are not links.
        let outside_code: String = line.split('`').enumerate().map(|(index, piece)| if index % 2 == 0 { piece } else { "" }).collect::<Vec<_>>().join("``");
        let mut rest = outside_code.as_str();
        while let Some(at) = rest.find("](") {
            let after = &rest[at + 2..];
            let end = after.find(')').unwrap_or(after.len());
            found.push(after[..end].to_string());
            rest = &after[end..];
        }
    }
    found
}

/// Derives the anchors that GitLab and most static site generators make from the headings
/// of `text`.
fn anchors(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|line| line.starts_with('#'))
        .map(|line| {
            let title = line.trim_start_matches('#').trim().to_lowercase();
            title.chars().filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_').collect::<String>().replace(' ', "-")
        })
        .collect()
}

/// Returns the broken links of the Markdown files in `dir`, as "page: target" lines.
fn broken_links(dir: &Path) -> Vec<String> {
    let mut broken = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let page = entry.path();
        let text = std::fs::read_to_string(&page).unwrap();
        for target in links(&text) {
            if target.starts_with("http://") || target.starts_with("https://") || target.starts_with("mailto:") {
                continue;
            }
            let (file, anchor) = target.split_once('#').unwrap_or((&target, ""));
            let linked = if file.is_empty() { page.clone() } else { dir.join(file) };
            let name = page.file_name().unwrap().to_string_lossy().to_string();
            if !linked.is_file() {
                broken.push(format!("{name}: {target} (no such file)"));
            } else if !anchor.is_empty() && !anchors(&std::fs::read_to_string(&linked).unwrap()).contains(anchor) {
                broken.push(format!("{name}: {target} (no such heading)"));
            }
        }
    }
    broken
}

#[test]
fn link_checker_finds_broken_links() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("a.md"), "# A\n\n## Fix it\n\n[b](b.md) [gone](gone.md) [anchor](b.md#why) [bad anchor](b.md#nowhere) [own](#fix-it) `[not](a link)`\n").unwrap();
    std::fs::write(dir.path().join("b.md"), "# B\n\n## Why\n").unwrap();
    assert_eq!(broken_links(dir.path()), ["a.md: gone.md (no such file)", "a.md: b.md#nowhere (no such heading)"]);
}

#[test]
fn docs_pages_have_no_broken_links() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("wiki/checks");
    let run = ci_doctor(&["docs", "--out", out.to_str().unwrap()]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    assert_eq!(run.stdout, "", "stdout carries no report here");

    assert_eq!(broken_links(&out), Vec::<String>::new());

    let index = std::fs::read_to_string(out.join("index.md")).unwrap();
    for check in ci_doctor::checks::CHECKS {
        let page = std::fs::read_to_string(out.join(format!("{}.md", check.id()))).unwrap_or_else(|_| panic!("no page for {}", check.id()));
        assert!(page.starts_with(&format!("# `{}`", check.id())), "{}", check.id());
        assert!(page.contains("## Symptoms"), "{}", check.id());
        assert!(page.contains("## Fix"), "{}", check.id());
        assert!(links(&page).contains(&"index.md".to_string()), "{} does not link back to the index", check.id());
        assert!(links(&index).contains(&format!("{}.md", check.id())), "the index does not link to {}", check.id());
    }
    let files = std::fs::read_dir(&out).unwrap().count();
    assert_eq!(files, ci_doctor::checks::CHECKS.len() + 1);

    // Mentions of other checks become links.
    let token_page = std::fs::read_to_string(out.join("auth.token.md")).unwrap();
    assert!(token_page.contains("[`network.runner-url`](network.runner-url.md)"), "{token_page}");
}

#[test]
fn bash_completion_completes_subcommands_and_flags() {
    let run = ci_doctor(&["completions", "bash"]);
    assert_eq!(run.status, 0);
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("ci-doctor.bash");
    std::fs::write(&script, &run.stdout).unwrap();

    // Load the script into bash and ask it to complete the last of `words`.
    let complete = |words: &[&str]| {
        let quoted: Vec<String> = words.iter().map(|word| format!("'{word}'")).collect();
        let program = format!(
            "source {}; COMP_WORDS=({}); COMP_CWORD={}; COMP_LINE='{}'; COMP_POINT=${{#COMP_LINE}}; _ci__doctor ci-doctor \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
            script.display(),
            quoted.join(" "),
            words.len() - 1,
            words.join(" ")
        );
        let output = std::process::Command::new("bash").args(["-c", &program]).output().expect("bash runs");
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        String::from_utf8_lossy(&output.stdout).lines().map(str::to_string).collect::<Vec<_>>()
    };
    assert_eq!(complete(&["ci-doctor", "--form"]), ["--format"]);
    assert!(complete(&["ci-doctor", "ex"]).contains(&"explain".to_string()));
    let formats = complete(&["ci-doctor", "--format", ""]);
    for format in ["human", "json", "junit", "codequality", "markdown"] {
        assert!(formats.contains(&format.to_string()), "{format} missing from {formats:?}");
    }
}

#[test]
fn completions_exist_for_each_shell() {
    for (shell, marker) in [("zsh", "#compdef ci-doctor"), ("fish", "complete -c ci-doctor"), ("elvish", "ci-doctor"), ("powershell", "Register-ArgumentCompleter")] {
        let run = ci_doctor(&["completions", shell]);
        assert_eq!(run.status, 0, "{shell}: {}", run.stderr);
        assert!(run.stdout.contains(marker), "{shell}:\n{}", run.stdout);
        assert!(run.stdout.contains("no-policy"), "{shell} lacks a flag");
    }
    // zsh and fish also offer the values of `--format`.
    for shell in ["zsh", "fish"] {
        assert!(ci_doctor(&["completions", shell]).stdout.contains("codequality"), "{shell} lacks the format values");
    }
    let run = ci_doctor(&["completions", "tcsh"]);
    assert_eq!(run.status, 2);
}

#[test]
fn manual_page_renders_without_warnings() {
    let run = ci_doctor(&["manpage"]);
    assert_eq!(run.status, 0);
    assert!(run.stdout.contains(".TH ci-doctor 1"), "{}", run.stdout);

    // Plain text (`-P-cbou`: no bold, underline or overstrike), long lines, no hyphenation.
    let output = std::process::Command::new("groff")
        .args(["-man", "-Tutf8", "-ww", "-P-cbou", "-rLL=300n", "-rHY=0"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(run.stdout.as_bytes())?;
            child.wait_with_output()
        })
        .expect("groff runs (Debian's groff-base; scripts/test installs it)");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "groff failed:\n{stderr}");
    assert_eq!(stderr.trim(), "", "groff warns");

    let plain = String::from_utf8_lossy(&output.stdout);
    for expected in ["--format", "--output", "--policy", "--no-policy", "--runner-container", "docs", "completions", "manpage", "explain"] {
        assert!(plain.contains(expected), "the manual page lacks {expected}:\n{plain}");
    }
}

#[test]
fn manual_pages_are_written_per_command() {
    let dir = tempfile::tempdir().unwrap();
    let run = ci_doctor(&["manpage", "--out", dir.path().to_str().unwrap()]);
    assert_eq!(run.status, 0, "{}", run.stderr);
    for page in ["ci-doctor.1", "ci-doctor-docs.1", "ci-doctor-explain.1", "ci-doctor-completions.1"] {
        let text = std::fs::read_to_string(dir.path().join(page)).unwrap_or_else(|_| panic!("{page} missing"));
        assert!(text.contains(".TH"), "{page}");
    }
}
