//! Every report format rendered from one diagnosis of a real scenario, checked against the
//! others and against what GitLab reads: the JUnit XML validates against `schemas/junit.xsd`,
//! and the Code Quality issues carry the fields GitLab documents.

mod common;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use ci_doctor::checks::{self, Selection};
use ci_doctor::cli::Format;
use ci_doctor::finding::{Finding, Status};
use ci_doctor::render::{Report, human};
use common::*;
use serde_json::Value;

/// Validates JUnit XML with `xmllint` against the schema in the repository.
fn assert_valid_junit(xml: &str) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("report.xml");
    std::fs::write(&file, xml).unwrap();
    let schema = concat!(env!("CARGO_MANIFEST_DIR"), "/schemas/junit.xsd");
    let output = std::process::Command::new("xmllint")
        .args(["--noout", "--schema", schema])
        .arg(&file)
        .output()
        .expect("xmllint runs (Debian's libxml2-utils; scripts/test installs it)");
    assert!(output.status.success(), "the JUnit report does not validate:\n{}\n{xml}", String::from_utf8_lossy(&output.stderr));
}

/// Checks the fields GitLab documents for a Code Quality issue and returns the issues.
fn code_quality_issues(text: &str) -> Vec<Value> {
    let issues: Vec<Value> = serde_json::from_str(text).unwrap_or_else(|error| panic!("not a JSON array ({error}):\n{text}"));
    let mut fingerprints = BTreeSet::new();
    for issue in &issues {
        assert!(issue["description"].as_str().is_some_and(|text| !text.is_empty()), "description: {issue:#}");
        assert!(issue["check_name"].as_str().is_some_and(|name| ci_doctor::checks::find(name).is_some()), "check_name: {issue:#}");
        let fingerprint = issue["fingerprint"].as_str().expect("fingerprint is a string");
        assert!(fingerprint.len() == 64 && fingerprint.chars().all(|c| c.is_ascii_hexdigit()), "fingerprint: {issue:#}");
        assert!(fingerprints.insert(fingerprint.to_string()), "fingerprint repeated: {issue:#}");
        assert!(["info", "minor", "major", "critical", "blocker"].contains(&issue["severity"].as_str().unwrap_or("")), "severity: {issue:#}");
        assert!(issue["location"]["path"].as_str().is_some_and(|path| !path.is_empty()), "location.path: {issue:#}");
        assert!(issue["location"]["lines"]["begin"].as_u64().is_some_and(|line| line >= 1), "location.lines.begin: {issue:#}");
    }
    issues
}

/// Lists the test cases of a JUnit report as (suite, name, outcome, message) rows.
fn junit_cases(xml: &str) -> Vec<(String, String, &'static str, String)> {
    let document = roxmltree::Document::parse(xml).expect("JUnit report parses");
    let mut rows = Vec::new();
    for suite in document.descendants().filter(|node| node.has_tag_name("testsuite")) {
        for case in suite.children().filter(|node| node.has_tag_name("testcase")) {
            let child = |tag: &str| case.children().find(|node| node.has_tag_name(tag));
            let (outcome, message) = match (child("failure"), child("skipped")) {
                (Some(failure), _) => ("failure", failure.attribute("message").unwrap_or("").to_string()),
                (None, Some(skipped)) => ("skipped", skipped.attribute("message").unwrap_or("").to_string()),
                (None, None) => ("passed", String::new()),
            };
            rows.push((suite.attribute("name").unwrap().to_string(), case.attribute("name").unwrap().to_string(), outcome, message));
        }
    }
    rows
}

/// Renders `report` in every format.
fn render_all(report: &Report) -> [(Format, String); 5] {
    let style = human::Style { color: false, verbose: false, fix_hint: true };
    [Format::Human, Format::Json, Format::Junit, Format::Codequality, Format::Markdown].map(|format| (format, ci_doctor::app::render_report(report, format, style)))
}

fn problems(findings: &[Finding]) -> Vec<&Finding> {
    findings.iter().filter(|finding| finding.status.is_problem()).collect()
}

#[test]
fn every_format_of_c01_reports_the_same_findings() -> anyhow::Result<()> {
    let token = "glrt-FAKEc01q7Lm2Vx9Rt4Bn";
    let bed = ci_doctor_testbed::Bed::new("c01-report-formats")?;
    let (config, _) = build_c01(&bed, token)?;
    let pipeline = bed.write_file("project/.gitlab-ci.yml", case_file(C01, ".gitlab-ci.yml"))?;

    // One diagnosis, as `ci-doctor --runner-container gitlab-runner --ci-file ...` makes it.
    let options = ci_doctor::gather::Options {
        configs: Vec::new(),
        runner_containers: vec!["gitlab-runner".into()],
        timeout: Duration::from_secs(3),
        no_probe: false,
        has_gitlab_token: false,
        ci_file: Some(pipeline),
        gitlab: Default::default(),
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let started = Instant::now();
    let facts = runtime.block_on(ci_doctor::gather::gather(&options));
    let findings = checks::run(&facts, &Selection::default());
    let report = Report { facts: &facts, findings: &findings, strict: false, ignored: &[], policy: None, project: Some(bed.dir()), elapsed: started.elapsed() };
    let [(_, human), (_, json), (_, junit), (_, codequality), (_, markdown)] = render_all(&report);

    let error = findings.iter().find(|finding| finding.check == "network.runner-url" && finding.status == Status::Error).expect("C01 has its runner-url error");
    assert_eq!(error.location.as_ref().and_then(|location| location.line), Some(12));

    // Human and Markdown carry every problem's message; Markdown keeps its code spans.
    for finding in problems(&findings) {
        assert!(human.contains(&format!("{}[{}]: {}", finding.status, finding.check, finding.message)), "{human}");
        assert!(markdown.contains(&format!("- **{}** `{}`: {}", finding.status, finding.check, finding.message)), "{markdown}");
    }
    assert!(markdown.contains(&format!("  - location: `{}:12:3` (`runners[0].url`)", config.display())), "{markdown}");
    assert!(markdown.contains("### runner `compose-runner` (entry 1 of 1, docker executor)"), "{markdown}");

    // JSON: the same findings, in the same order.
    let json: Value = serde_json::from_str(&json)?;
    let listed: Vec<(&str, &str)> = json["findings"].as_array().unwrap().iter().map(|finding| (finding["check"].as_str().unwrap(), finding["severity"].as_str().unwrap())).collect();
    let expected: Vec<(&str, &str)> = problems(&findings).iter().map(|finding| (finding.check, finding.status.label())).collect();
    assert_eq!(listed, expected);

    // JUnit: valid, one case per verdict, the error as a failure with its message.
    assert_valid_junit(&junit);
    let cases = junit_cases(&junit);
    assert_eq!(cases.len(), findings.len(), "{junit}");
    let failures: Vec<_> = cases.iter().filter(|case| case.2 == "failure").collect();
    assert_eq!(failures.len(), findings.iter().filter(|finding| finding.status == Status::Error).count(), "{junit}");
    let url_case = cases.iter().find(|case| case.1 == "network.runner-url (runner compose-runner)").expect("a case for the runner's url");
    assert_eq!(url_case.0, human::runner_heading(&facts, 0));
    assert_eq!((url_case.2, url_case.3.as_str()), ("failure", error.message.as_str()));
    let skipped = findings.iter().filter(|finding| finding.status == Status::Skipped).count();
    assert_eq!(cases.iter().filter(|case| case.2 == "skipped").count(), skipped);

    // Code Quality: one issue per problem; the error points at the `url` line, relative to
    // the project.
    let issues = code_quality_issues(&codequality);
    assert_eq!(issues.len(), problems(&findings).len(), "{codequality}");
    let issue = issues.iter().find(|issue| issue["check_name"] == "network.runner-url").expect("an issue for the url");
    assert_eq!(issue["severity"], "critical");
    assert_eq!(issue["description"], error.message.as_str());
    assert_eq!(issue["location"]["path"], "runner-config/config.toml");
    assert_eq!(issue["location"]["lines"]["begin"], 12);

    // No format shows the token.
    for (format, text) in render_all(&report) {
        assert!(!text.contains(token), "{format:?} shows the token:\n{text}");
    }

    // A second diagnosis gives the same fingerprints.
    let again = runtime.block_on(ci_doctor::gather::gather(&options));
    let again_findings = checks::run(&again, &Selection::default());
    let again_report = Report { facts: &again, findings: &again_findings, strict: false, ignored: &[], policy: None, project: Some(bed.dir()), elapsed: Duration::ZERO };
    let fingerprints = |text: &str| code_quality_issues(text).iter().map(|issue| issue["fingerprint"].as_str().unwrap().to_string()).collect::<Vec<_>>();
    assert_eq!(fingerprints(&codequality), fingerprints(&ci_doctor::render::codequality::render(&again_report)));

    // The command line writes the same JUnit report to a file, and nothing to stdout.
    let dir = bed.create_dir("reports")?;
    let file = dir.join("junit.xml");
    let run = ci_doctor(&["--runner-container", "gitlab-runner", "--timeout", "3", "--format", "junit", "--output", file.to_str().unwrap()]);
    assert_eq!(run.status, 1, "{}", run.stderr);
    assert_eq!(run.stdout, "");
    let written = std::fs::read_to_string(&file)?;
    assert_valid_junit(&written);
    assert!(junit_cases(&written).iter().any(|case| case.1 == url_case.1 && case.2 == "failure"), "{written}");
    Ok(())
}

/// Writes a config on this host with an unknown key (an error) and mode 0644 (a warning).
fn typo_config(dir: &Path) -> std::path::PathBuf {
    let path = dir.join("config.toml");
    std::fs::write(
        &path,
        "concurrent = 1\n\n[[runners]]\n  name = \"typo\"\n  url = \"http://gitlab.example.test/\"\n  token = \"glrt-FAKEformats0Aa1Bb2C\"\n  executor = \"docker\"\n  [runners.docker]\n    image = \"docker:27\"\n    privilaged = true\n",
    )
    .unwrap();
    set_mode(&path, 0o644);
    path
}

#[test]
fn ignored_finding_is_listed_in_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let config = typo_config(dir.path());
    let policy = dir.path().join("policy.toml");
    let reason = "the key is renamed in the next config rollout";
    std::fs::write(&policy, format!("[[ignore]]\ncheck = \"config.keys\"\nreason = \"{reason}\"\n")).unwrap();
    let run = |format: &str| ci_doctor(&["--config", config.to_str().unwrap(), "--no-probe", "--policy", policy.to_str().unwrap(), "--format", format]);

    let human = run("human");
    assert_eq!(human.status, 0, "the ignored error no longer fails the run:\n{}", human.stdout);
    assert!(human.stdout.contains(&format!("1 finding ignored by policy: {reason}")), "{}", human.stdout);
    assert!(human.stdout.contains("  error[config.keys]: unknown key `runners[0].docker.privilaged`"), "{}", human.stdout);
    assert!(human.stdout.contains("0 errors, 1 warning"), "{}", human.stdout);

    let json = run("json").json();
    assert_eq!(json["exit_code"], 0);
    assert_eq!(json["ignored"][0]["check"], "config.keys");
    assert_eq!(json["ignored"][0]["reason"], reason);
    assert_eq!(json["policy"], policy.display().to_string());
    assert!(findings(&json, "config.keys").is_empty(), "{json:#}");

    let junit = run("junit");
    assert_valid_junit(&junit.stdout);
    let cases = junit_cases(&junit.stdout);
    let ignored = cases.iter().find(|case| case.1 == "config.keys (runner typo)").expect("a case for the ignored finding");
    assert_eq!((ignored.2, ignored.3.as_str()), ("skipped", format!("ignored by policy: {reason}").as_str()));
    assert!(cases.iter().all(|case| case.2 != "failure"), "{}", junit.stdout);

    let codequality = run("codequality");
    let issues = code_quality_issues(&codequality.stdout);
    let issue = issues.iter().find(|issue| issue["check_name"] == "config.keys").expect("the ignored issue is listed");
    assert_eq!(issue["severity"], "info");
    assert!(issue["description"].as_str().unwrap().starts_with(&format!("ignored by policy ({reason}): ")), "{issue:#}");
    assert_eq!(issue["location"]["lines"]["begin"], 10);

    let markdown = run("markdown");
    assert!(markdown.stdout.contains("## Ignored by policy\n\n- **error** `config.keys`:"), "{}", markdown.stdout);
    assert!(markdown.stdout.contains(&format!("  - reason: {reason}")), "{}", markdown.stdout);

    for output in [&human, &junit, &codequality, &markdown] {
        output.assert_no_secrets(&["glrt-FAKEformats0Aa1Bb2C"]);
    }
}

#[test]
fn strict_junit_fails_on_warnings_only_with_strict() {
    let dir = tempfile::tempdir().unwrap();
    let config = typo_config(dir.path());
    let policy = dir.path().join("policy.toml");
    std::fs::write(&policy, "[[downgrade]]\ncheck = \"config.keys\"\nto = \"warning\"\nreason = \"known typo\"\n").unwrap();
    let args = |strict: bool| {
        let mut args = vec!["--config", config.to_str().unwrap(), "--no-probe", "--policy", policy.to_str().unwrap(), "--format", "junit"];
        if strict {
            args.push("--strict");
        }
        ci_doctor(&args)
    };

    let relaxed = args(false);
    assert_eq!(relaxed.status, 0);
    assert_valid_junit(&relaxed.stdout);
    assert!(junit_cases(&relaxed.stdout).iter().all(|case| case.2 != "failure"), "{}", relaxed.stdout);
    assert!(relaxed.stdout.contains("= policy: downgraded from error"), "{}", relaxed.stdout);

    let strict = args(true);
    assert_eq!(strict.status, 1);
    assert_valid_junit(&strict.stdout);
    let failed: Vec<String> = junit_cases(&strict.stdout).into_iter().filter(|case| case.2 == "failure").map(|case| case.1).collect();
    assert_eq!(failed, ["config.file-mode", "config.keys (runner typo)"], "{}", strict.stdout);
}

#[test]
fn fix_rejects_formats_without_a_diff_view() {
    let dir = tempfile::tempdir().unwrap();
    let config = typo_config(dir.path());
    let run = ci_doctor(&["--config", config.to_str().unwrap(), "--no-probe", "--fix", "--dry-run", "--format", "junit"]);
    assert_eq!(run.status, 2);
    assert!(run.stderr.contains("`--fix` reports in the `human` or `json` format"), "{}", run.stderr);
}
