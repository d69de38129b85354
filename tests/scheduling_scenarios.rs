//! Scheduling checks against the stand-in GitLab: the untagged-jobs setup on real containers,
//! then each condition alone and combined on loopback, a healthy project, no token, a redirect
//! that must not carry the token, a GitLab that accepts connections but sends nothing, and
//! the project taken from the checkout's `origin` remote.

mod common;

use std::time::{Duration, Instant};

use ci_doctor_testbed::State;
use ci_doctor_testbed::state::{AccessLevel, Job, PersonalAccessToken, Project, ProtectedBranch, Redirect, Runner, RunnerStatus, RunnerType};
use common::*;
use serde_json::Value;

const C15: &str = "C15-untagged-job-runner-refuses-untagged";
const ADMIN: &str = "glpat-FAKEschedAdmin00001";
const SCHEDULING: &[&str] = &["scheduling.tags", "scheduling.untagged", "scheduling.protected", "scheduling.instance-runners", "scheduling.runner-status"];

/// Project 31 `web/near-sdk` (branch `main` protected) and an administrator's token.
fn project_state() -> State {
    let mut project = Project::new(31, "web/near-sdk");
    project.protected_branches = vec![ProtectedBranch::new("main")];
    State { projects: vec![project], personal_access_tokens: vec![PersonalAccessToken::new(1, ADMIN, &["read_api"])], ..State::default() }
}

fn project_runner(id: u64, tags: &[&str]) -> Runner {
    Runner { runner_type: RunnerType::ProjectType, projects: vec![31], tag_list: tags.iter().map(|tag| tag.to_string()).collect(), description: format!("runner-{id}"), ..Runner::new(id, &format!("glrt-FAKEsched{id:010}")) }
}

fn job(id: u64, name: &str, tags: &[&str], git_ref: &str) -> Job {
    Job { tag_list: tags.iter().map(|tag| tag.to_string()).collect(), git_ref: git_ref.to_string(), ..Job::new(id, 31, name) }
}

/// Writes a config with one shell runner, so that ci-doctor looks at nothing else on this host.
fn quiet_config() -> (tempfile::TempDir, std::path::PathBuf) {
    config_file("concurrent = 1\n\n[[runners]]\n  name = \"local\"\n  url = \"http://127.0.0.1:9/\"\n  token = \"glrt-FAKEschedLocal0001\"\n  executor = \"shell\"\n")
}

/// Runs ci-doctor against `gitlab` for project `web/near-sdk` and returns the JSON report.
fn diagnose(gitlab: &LocalGitLab, config: &std::path::Path, extra: &[&str]) -> Value {
    let url = gitlab.url();
    let mut args = vec!["--format", "json", "--config", config.to_str().unwrap(), "--no-probe", "--gitlab-url", &url, "--gitlab-token", ADMIN, "--project", "web/near-sdk", "--timeout", "3"];
    args.extend_from_slice(extra);
    let run = ci_doctor(&args);
    run.assert_no_secrets(&[ADMIN]);
    run.json()
}

/// Lists the scheduling findings (problems only) of a report, as `(check, message)`.
fn scheduling_problems(report: &Value) -> Vec<(String, String)> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|finding| SCHEDULING.contains(&finding["check"].as_str().unwrap()))
        .map(|finding| (finding["check"].as_str().unwrap().to_string(), finding["message"].as_str().unwrap().to_string()))
        .collect()
}

#[test]
fn untagged_jobs_wait_for_a_runner_refusing_them() -> anyhow::Result<()> {
    let token = "glrt-FAKEc15Pd2Hr7Kw4Yx9g";
    let mut state = project_state();
    state.runners = vec![Runner {
        description: "ec2-docker".into(),
        runner_type: RunnerType::GroupType,
        tag_list: vec!["docker".into(), "aws".into()],
        run_untagged: false,
        projects: vec![31],
        ..Runner::new(90, token)
    }];
    state.jobs = vec![job(9100, "install", &[], "main"), Job { status: "created".into(), ..job(9101, "unit-tests", &[], "main") }];

    let bed = ci_doctor_testbed::Bed::new("c15-untagged")?;
    let gitlab = bed.container("gitlab-web").image("ci-doctor-test/standin:latest").publish(80).gitlab_standin(&state).https(&["gitlab.example.test"]).start()?;
    let dns = dns(&bed, "bridge", &[("gitlab.example.test", ip(&gitlab, "bridge"))]);
    let config = runner_config_dir(&bed, &with_job_dns(&case_file(C15, "config.toml"), dns));
    bed.write_file("runner-config/certs/gitlab.example.test.crt", &gitlab.tls_certificates().expect("https is on").ca_pem)?;
    bed.container("gitlab-runner").image(RUNNER_IMAGE).dns(dns).bind(&config, "/etc/gitlab-runner").docker_socket().start()?;
    let api = format!("http://127.0.0.1:{}", gitlab.published_port(80)?);
    // The case's pipeline file lists the same two jobs, which count once.
    let ci_file = format!("{CASES}/{C15}/.gitlab-ci.yml");
    let flags = ["--gitlab-url", api.as_str(), "--gitlab-token", ADMIN, "--project", "web/near-sdk", "--ci-file", ci_file.as_str()];

    let run = diagnose_container("gitlab-runner", &flags);
    let report = run.json();
    assert_eq!(run.status, 1, "{}", run.stderr);
    let error = finding(&report, "scheduling.untagged", "error");
    assert_eq!(
        error["message"],
        "jobs `install` and `unit-tests` have no `tags`, and the only runner available to project `web/near-sdk`, runner 90 (`ec2-docker`, tags `docker, aws`), has `run_untagged = false`"
    );
    let text = text_of(error);
    assert!(text.contains("never picks them up"), "{text}");
    assert!(text.contains("no instance runners are available to project `web/near-sdk` to fall back on"), "{text}");
    assert!(text.contains("job `unit-tests` (#9101, created on `main`): runner 90 (`ec2-docker`) has `run_untagged = false`"), "{text}");
    assert!(text.contains("Run untagged jobs"), "{text}");
    assert!(text.contains("`tags: [docker]`"), "{text}");
    let command = error["fix"]["actions"][0]["command"].as_str().unwrap();
    assert_eq!(command, format!("curl --request PUT --header \"PRIVATE-TOKEN: $GITLAB_TOKEN\" --data \"run_untagged=true\" \"{api}/api/v4/runners/90\""));

    // Must not report: a tag mismatch, or anything to change in config.toml.
    assert!(findings(&report, "scheduling.tags").is_empty(), "{report:#}");
    let errors: Vec<&str> = report["findings"].as_array().unwrap().iter().filter(|finding| finding["severity"] == "error").map(|finding| finding["check"].as_str().unwrap()).collect();
    assert_eq!(errors, ["scheduling.untagged"], "{report:#}");
    assert!(error["location"].is_null());
    assert_eq!(verdict(&report, "tls.trust")["status"], "ok", "{report:#}");
    assert_eq!(verdict(&report, "auth.token")["status"], "ok", "{report:#}");
    run.assert_no_secrets(&[token, ADMIN]);

    // --fix prints the GitLab command and leaves config.toml byte for byte.
    let path = config.join("config.toml");
    let before = std::fs::read(&path)?;
    let mut args = vec!["--runner-container", "gitlab-runner", "--timeout", "3", "--fix", "--yes"];
    args.extend_from_slice(&flags);
    let fixed = ci_doctor(&args);
    assert!(fixed.stdout.contains("Nothing to fix"), "{}", fixed.stdout);
    assert!(fixed.stdout.contains("run_untagged=true"), "{}", fixed.stdout);
    assert_eq!(std::fs::read(&path)?, before);
    fixed.assert_no_secrets(&[token, ADMIN]);

    // The access token went to the stand-in's published port only, never with a runner token.
    for request in gitlab.request_log()? {
        if request.credential("private-token").is_some() {
            assert_eq!(request.scheme, "http", "{request:?}");
            assert!(!request.body.contains(token), "{request:?}");
        }
    }
    Ok(())
}

#[test]
fn each_condition_alone_names_its_runner() {
    let cases: Vec<(&str, Vec<Runner>, Vec<Job>, &str)> = vec![
        ("scheduling.tags", vec![project_runner(7, &["docker"])], vec![job(100, "build", &["docker", "gpu"], "main")], "job `build` needs tags `docker`, `gpu`: runner 7 (`runner-7`) lacks tag `gpu`"),
        ("scheduling.untagged", vec![Runner { run_untagged: false, ..project_runner(8, &["docker"]) }], vec![job(101, "lint", &[], "main")], "job `lint` has no `tags`, and the only runner available to project `web/near-sdk`, runner 8 (`runner-8`, tags `docker`), has `run_untagged = false`"),
        ("scheduling.protected", vec![Runner { access_level: AccessLevel::RefProtected, ..project_runner(9, &[]) }], vec![job(102, "test", &[], "feature-x")], "job `test` runs on unprotected branch `feature-x`, and runner 9 (`runner-9`) takes jobs of protected branches only (`access_level = ref_protected`)"),
        ("scheduling.runner-status", vec![Runner { paused: true, ..project_runner(10, &[]) }], vec![job(103, "test", &[], "main")], "job `test` waits: runner 10 (`runner-10`) is paused"),
        ("scheduling.runner-status", vec![Runner { status: RunnerStatus::Offline, contacted_at: Some("2026-01-05T10:00:00.000Z".into()), ..project_runner(11, &[]) }], vec![job(104, "test", &[], "main")], "job `test` waits: runner 11 (`runner-11`) is offline (last contact 2026-01-05T10:00:00.000Z)"),
        ("scheduling.runner-status", vec![Runner { status: RunnerStatus::Stale, ..project_runner(12, &[]) }], vec![job(105, "test", &[], "main")], "job `test` waits: runner 12 (`runner-12`) is stale: it has not contacted GitLab for over a week (last contact 2024-10-01T09:00:00.000Z)"),
        ("scheduling.runner-status", vec![Runner { status: RunnerStatus::NeverContacted, contacted_at: None, ..project_runner(13, &[]) }], vec![job(106, "test", &[], "main")], "job `test` waits: runner 13 (`runner-13`) has never contacted GitLab"),
        ("scheduling.runner-status", vec![], vec![job(107, "test", &[], "main")], "no runner is available to project `web/near-sdk`, so job `test` waits"),
    ];
    let (_dir, config) = quiet_config();
    for (check, runners, jobs, message) in cases {
        let mut state = project_state();
        state.runners = runners;
        state.jobs = jobs;
        let gitlab = local_gitlab(state, "127.0.0.1", None);
        let report = diagnose(&gitlab, &config, &[]);
        assert_eq!(scheduling_problems(&report), [(check.to_string(), message.to_string())], "{report:#}");
        assert_eq!(report["exit_code"], 1);
    }
}

#[test]
fn instance_runners_turned_off() {
    let mut state = project_state();
    state.projects[0].shared_runners_enabled = false;
    state.runners = vec![Runner { tag_list: vec!["docker".into()], description: "shared-docker".into(), ..Runner::new(3, "glrt-FAKEschedShared001") }];
    state.jobs = vec![job(100, "build", &["docker"], "main")];
    let gitlab = local_gitlab(state, "127.0.0.1", None);
    let (_dir, config) = quiet_config();
    let report = diagnose(&gitlab, &config, &[]);
    assert_eq!(
        scheduling_problems(&report),
        [("scheduling.instance-runners".to_string(), "job `build` could run on instance runner 3 (`shared-docker`), but project `web/near-sdk` turned instance runners off".to_string())]
    );
    let error = finding(&report, "scheduling.instance-runners", "error");
    assert!(error["fix"]["actions"][0]["command"].as_str().unwrap().contains("shared_runners_enabled=true"), "{error:#}");
}

#[test]
fn runner_of_this_host_locked_to_another_project() {
    let mut state = project_state();
    state.projects.push(Project::new(77, "other/app"));
    state.runners = vec![Runner { locked: true, projects: vec![77], ..project_runner(12, &[]) }];
    state.jobs = vec![job(100, "build", &[], "main")];
    let gitlab = local_gitlab(state, "127.0.0.1", None);
    let (_dir, config) = config_file("concurrent = 1\n\n[[runners]]\n  name = \"here\"\n  url = \"http://127.0.0.1:9/\"\n  id = 12\n  token = \"glrt-FAKEsched0000000012\"\n  executor = \"shell\"\n");
    let report = diagnose(&gitlab, &config, &[]);
    assert_eq!(scheduling_problems(&report), [("scheduling.runner-status".to_string(), "job `build` waits: runner 12 (`runner-12`) is locked to project 77".to_string())]);
}

#[test]
fn two_reasons_reported_by_both_checks() {
    let mut state = project_state();
    state.runners = vec![Runner { paused: true, ..project_runner(4, &["docker"]) }, Runner { access_level: AccessLevel::RefProtected, ..project_runner(5, &["docker", "gpu"]) }];
    state.jobs = vec![job(100, "build", &["docker", "gpu"], "feature-x")];
    let gitlab = local_gitlab(state, "127.0.0.1", None);
    let (_dir, config) = quiet_config();
    let report = diagnose(&gitlab, &config, &[]);
    let checks: Vec<String> = scheduling_problems(&report).into_iter().map(|(check, _)| check).collect();
    assert_eq!(checks, ["scheduling.tags", "scheduling.protected", "scheduling.runner-status"], "{report:#}");
    for check in &checks {
        let error = finding(&report, check, "error");
        let table = error["evidence"][0].as_str().unwrap();
        assert_eq!(table, "job `build` (#100, pending on `feature-x`): runner 4 (`runner-4`) is paused and lacks tag `gpu`; runner 5 (`runner-5`) takes jobs of protected branches only (`access_level = ref_protected`), and `feature-x` is not protected", "{check}");
    }
}

#[test]
fn healthy_project_has_no_scheduling_finding() {
    let mut state = project_state();
    state.runners = vec![project_runner(7, &["docker"]), Runner { access_level: AccessLevel::RefProtected, ..project_runner(8, &["deploy"]) }];
    state.jobs = vec![job(100, "build", &["docker"], "feature-x"), job(101, "lint", &[], "feature-x"), job(102, "deploy", &["deploy"], "main")];
    let gitlab = local_gitlab(state, "127.0.0.1", None);
    let (_dir, config) = quiet_config();
    let report = diagnose(&gitlab, &config, &[]);
    assert!(scheduling_problems(&report).is_empty(), "{report:#}");
    for check in SCHEDULING {
        let verdict = verdict(&report, check);
        assert_eq!(verdict["status"], "ok", "{verdict:#}");
        assert!(verdict["message"].as_str().unwrap().contains("3 waiting jobs of project `web/near-sdk`, 2 runners"), "{verdict:#}");
    }
}

#[test]
fn without_token_scheduling_checks_are_skipped() {
    let (_dir, config) = quiet_config();
    let run = ci_doctor(&["--format", "json", "--config", config.to_str().unwrap(), "--no-probe"]);
    let report = run.json();
    assert_eq!(run.status, 0, "no error without a token: {report:#}");
    for check in SCHEDULING {
        let verdict = verdict(&report, check);
        assert_eq!(verdict["status"], "skipped");
        let message = verdict["message"].as_str().unwrap();
        assert!(message.contains("no GitLab access token was given"), "{message}");
        assert!(message.contains("`--gitlab-token`"), "{message}");
        assert!(message.contains("`read_api`"), "{message}");
    }
}

#[test]
fn redirect_is_not_followed_with_the_token() {
    // GitLab B runs on another loopback address: a host of its own.
    let mut state = project_state();
    state.jobs = vec![job(100, "build", &["docker"], "main")];
    let other = local_gitlab(state.clone(), "127.0.0.2", None);

    // A replies like GitLab, then redirects the project's API paths to B.
    let mut redirecting = state.clone();
    redirecting.redirects = vec![Redirect { from: "/api/v4/projects".into(), to: other.url() }];
    let gitlab = local_gitlab(redirecting, "127.0.0.1", None);
    let (_dir, config) = quiet_config();
    let report = diagnose(&gitlab, &config, &[]);
    let verdict = verdict(&report, "scheduling.tags");
    assert_eq!(verdict["status"], "skipped");
    let message = verdict["message"].as_str().unwrap();
    assert!(message.contains("redirect (301)"), "{message}");
    assert!(message.contains(&other.url()), "{message}");
    assert!(message.contains("does not follow"), "{message}");
    assert!(other.requests().is_empty(), "B got requests: {:#?}", other.requests());
    assert!(gitlab.requests().iter().any(|request| request.path == "/api/v4/projects/web%2Fnear-sdk" && request.status == 301));

    // A GitLab that redirects everything gets no token at all.
    let mut moved = state;
    moved.redirects = vec![Redirect { from: "/".into(), to: other.url() }];
    let moved = local_gitlab(moved, "127.0.0.1", None);
    let report = diagnose(&moved, &config, &[]);
    let message = verdict_message(&report, "scheduling.untagged");
    assert!(message.contains("the access token is not sent across a redirect"), "{message}");
    assert!(message.contains(&format!("`--gitlab-url` with the address GitLab redirects to (`{}`)", other.url())), "{message}");
    for request in moved.requests() {
        assert!(request.credentials.is_empty(), "{request:?}");
        assert!(!request.contains_secret(ADMIN), "{request:?}");
    }
    assert!(other.requests().is_empty(), "B got requests: {:#?}", other.requests());
}

fn verdict_message(report: &Value, check: &str) -> String {
    verdict(report, check)["message"].as_str().unwrap().to_string()
}

#[test]
fn dead_gitlab_costs_one_timeout() {
    // The listener accepts connections and never sends a byte.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    let (_dir, config) = quiet_config();
    let started = Instant::now();
    let run = ci_doctor(&["--format", "json", "--config", config.to_str().unwrap(), "--no-probe", "--gitlab-url", &url, "--gitlab-token", ADMIN, "--project", "web/near-sdk", "--timeout", "2"]);
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(4), "a dead GitLab took {elapsed:?}");
    let report = run.json();
    for check in SCHEDULING {
        let message = verdict_message(&report, check);
        assert!(message.contains("no answer in time"), "{message}");
        assert!(message.contains("the access token was not sent"), "{message}");
    }
    run.assert_no_secrets(&[ADMIN]);
}

#[test]
fn origin_remote_and_pipeline_file() -> anyhow::Result<()> {
    let mut state = project_state();
    state.runners = vec![project_runner(7, &["docker"])];
    state.jobs = vec![job(100, "build", &["gpu"], "main")];
    let gitlab = local_gitlab(state, "127.0.0.1", None);
    let checkout = tempfile::tempdir()?;
    for args in [vec!["init", "-q", "-b", "main"], vec!["remote", "add", "origin", &format!("{}/web/near-sdk.git", gitlab.url())]] {
        let status = std::process::Command::new("git").arg("-C").arg(checkout.path()).args(&args).status()?;
        assert!(status.success(), "git {args:?}");
    }
    // The pipeline file repeats the waiting job `build` and adds two jobs that wait for no one yet.
    std::fs::write(checkout.path().join(".gitlab-ci.yml"), "build:\n  tags: [gpu]\n  script: [make]\n\ndocs:\n  tags: [gpu]\n  script: [make docs]\n\ndeploy:\n  tags: [arm]\n  script: [make deploy]\n")?;
    let (_dir, config) = quiet_config();
    let run = ci_doctor_in(Some(checkout.path()), &["--format", "json", "--config", config.to_str().unwrap(), "--no-probe", "--gitlab-token", ADMIN, "--timeout", "3"], None);
    let report = run.json();
    let problems = scheduling_problems(&report);
    assert_eq!(problems.len(), 2, "{report:#}");
    assert_eq!(problems[0], ("scheduling.tags".to_string(), "jobs `build` and `docs` need tags `gpu`: runner 7 (`runner-7`) lacks tag `gpu`".to_string()));
    assert_eq!(problems[1], ("scheduling.tags".to_string(), "job `deploy` needs tags `arm`: runner 7 (`runner-7`) lacks tag `arm`".to_string()));
    let tags = findings(&report, "scheduling.tags");
    assert_eq!(tags[0]["severity"], "error", "`build` waits now");
    assert_eq!(tags[1]["severity"], "warning", "`deploy` exists only in the pipeline file");
    assert!(text_of(tags[1]).contains("job `deploy` of the pipeline file (on `main`)"), "{:#}", tags[1]);
    run.assert_no_secrets(&[ADMIN]);

    // The human report names the project and where its GitLab came from.
    let human = ci_doctor_in(Some(checkout.path()), &["--config", config.to_str().unwrap(), "--no-probe", "--gitlab-token", ADMIN, "--timeout", "3"], None);
    assert!(human.stdout.contains(&format!("GitLab project `web/near-sdk` at {} (from the `origin` remote of this checkout)", gitlab.url())), "{}", human.stdout);
    Ok(())
}
