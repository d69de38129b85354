//! Diagnoses of runner setups built on a real Docker Engine: the healthy layouts and the faults
//! of a runner that cannot reach GitLab, has no Docker socket, or has a broken config.

mod common;

use common::*;

const H01: &str = "H01-healthy-linked";
const H02: &str = "H02-healthy-network";
const C07: &str = "C07-runner-container-has-no-docker-socket";

#[test]
fn healthy_runner_linked_on_default_bridge() -> anyhow::Result<()> {
    let token = "glrt-FAKEh01Lk4Rt8Vw2Np6Q";
    let bed = ci_doctor_testbed::Bed::new("h01-healthy-linked")?;
    let dns = dns(&bed, "bridge", &[]);
    bed.container("gitlab")
        .image(GITLAB_IMAGE)
        .hostname("gitlab")
        .publish(80)
        .env("GITLAB_OMNIBUS_CONFIG", "external_url 'http://gitlab'")
        .gitlab_standin(&state_with_runners(&[(13, token, "linked-runner")]))
        .start()?;
    let config = runner_config_dir(&bed, &case_file(H01, "config.toml"));
    bed.container("gitlab-runner")
        .image(RUNNER_IMAGE)
        .link("gitlab:gitlab")
        .dns(dns)
        .restart("always")
        .bind(&config, "/etc/gitlab-runner")
        .bind(std::path::Path::new("/var/run/docker.sock"), "/var/run/docker.sock")
        .start()?;

    let since = docker_clock()?;
    let run = diagnose_container("gitlab-runner", &[]);
    let report = run.json();
    assert_healthy(&report);
    assert_eq!(run.status, 0, "{}", run.stderr);

    // Jobs link GitLab under the same name as the runner container, so the runner's own probes
    // give the job's view and no probe container is created.
    let clones = verdicts(&report, "network.clone-url");
    assert!(clones.iter().any(|clone| clone["status"] == "ok"), "{clones:#?}");
    for clone in clones.iter().filter(|clone| clone["status"] == "ok") {
        assert_eq!(clone["basis"]["method"], "probe", "{clone:#}");
        assert!(clone["basis"]["detail"].as_str().unwrap().contains("probed from runner container `gitlab-runner`, which is on the default bridge with the same legacy link as the job containers (`--link gitlab:gitlab`)"), "{clone:#}");
    }
    assert_eq!(probe_containers_created_since(&since)?, Vec::<String>::new());

    let url = verdict(&report, "network.runner-url");
    assert_eq!(url["status"], "ok");
    assert!(url["message"].as_str().unwrap().contains("reaches GitLab at `http://gitlab/` from container `gitlab-runner`"), "{url:#}");
    assert!(url["message"].as_str().unwrap().contains("/etc/hosts"), "the link is how the name resolves: {url:#}");

    let auth = verdict(&report, "auth.token");
    assert_eq!(auth["status"], "ok");
    assert!(auth["message"].as_str().unwrap().contains("(runner 13)"), "{auth:#}");

    let docker = verdict(&report, "runner.docker-access");
    assert_eq!(docker["status"], "ok");
    run.assert_no_secrets(&[token]);
    Ok(())
}

#[test]
fn healthy_runner_on_shared_network() -> anyhow::Result<()> {
    let token = "glrt-FAKEh02Nt5Wk8Qz3Lp7Y";
    let bed = ci_doctor_testbed::Bed::new("h02-healthy-network")?;
    bed.network("ci-net").create()?;
    let dns = dns(&bed, "ci-net", &[]);
    bed.container("gitlab")
        .image(GITLAB_IMAGE)
        .hostname("gitlab")
        .network_with_aliases("ci-net", &["gitlab"])
        .publish(80)
        .env("GITLAB_OMNIBUS_CONFIG", "external_url 'http://gitlab'")
        .gitlab_standin(&state_with_runners(&[(12, token, "network-runner")]))
        .start()?;
    let config = runner_config_dir(&bed, &case_file(H02, "config.toml"));
    bed.container("gitlab-runner")
        .image(RUNNER_IMAGE)
        .network("ci-net")
        .dns(dns)
        .bind(&config, "/etc/gitlab-runner")
        .bind(std::path::Path::new("/var/run/docker.sock"), "/var/run/docker.sock")
        .start()?;

    let run = diagnose_container("gitlab-runner", &[]);
    let report = run.json();
    assert_healthy(&report);

    let url = verdict(&report, "network.runner-url");
    assert_eq!(url["status"], "ok");
    assert!(url["message"].as_str().unwrap().contains("Docker's embedded DNS"), "{url:#}");
    assert!(verdict(&report, "auth.token")["message"].as_str().unwrap().contains("(runner 12)"));
    assert_eq!(verdict(&report, "runner.docker-access")["status"], "ok");
    run.assert_no_secrets(&[token]);

    // Discovery without flags finds the same runner container.
    let discovered = ci_doctor(&["--format", "json", "--timeout", "3"]);
    let discovered = discovered.json();
    let names: Vec<&str> = discovered["runners"].as_array().unwrap().iter().filter_map(|runner| runner["container"].as_str()).collect();
    assert!(names.contains(&"gitlab-runner"), "{names:?}");
    Ok(())
}

#[test]
fn url_on_container_loopback_is_an_error_with_a_working_remedy() -> anyhow::Result<()> {
    let token = "glrt-FAKEc01q7Lm2Vx9Rt4Bn";
    let bed = ci_doctor_testbed::Bed::new("c01-localhost-url")?;
    build_c01(&bed, token)?;

    let run = diagnose_container("gitlab-runner", &[]);
    let report = run.json();
    assert_eq!(run.status, 1);
    let error = finding(&report, "network.runner-url", "error");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("`compose-runner`") && message.contains("container `gitlab-runner`"), "{message}");
    assert!(message.contains("`localhost` is that container's own loopback, not GitLab"), "{message}");
    assert!(text_of(error).contains("connection refused"), "{error:#}");
    assert_eq!(error["basis"]["method"], "probe");
    assert_eq!(error["location"]["line"], 12);

    // The remedy names the address that works, and why the external URL does not.
    let help = error["help"].as_str().unwrap();
    assert!(help.contains("`url = \"http://gitlab/\"`") && help.contains("ci-net"), "{help}");
    assert!(text_of(error).contains("`http://gitlab.example.test:8080/`"), "{error:#}");
    assert_eq!(error["fix"]["actions"][0]["value"], "http://gitlab/");
    assert_eq!(error["fix"]["actions"][1]["value"], "ci-net");

    // Must not report: a socket problem or a token problem.
    assert_eq!(verdict(&report, "runner.docker-access")["status"], "ok");
    assert_eq!(verdict(&report, "auth.token")["status"], "skipped");
    assert!(findings(&report, "auth.token").is_empty());
    run.assert_no_secrets(&[token]);
    Ok(())
}

#[test]
fn loopback_url_is_an_error_by_reasoning_too() -> anyhow::Result<()> {
    let bed = ci_doctor_testbed::Bed::new("c01-no-probe")?;
    build_c01(&bed, "glrt-FAKEc01q7Lm2Vx9Rt4Bn")?;

    let run = diagnose_container("gitlab-runner", &["--no-probe"]);
    let report = run.json();
    let error = finding(&report, "network.runner-url", "error");
    assert_eq!(error["basis"]["method"], "reasoning");
    assert!(error["message"].as_str().unwrap().contains("own loopback"), "{error:#}");
    assert!(verdict(&report, "auth.token")["message"].as_str().unwrap().contains("--no-probe"), "{report:#}");
    Ok(())
}

#[test]
fn runner_container_without_socket_is_an_error() -> anyhow::Result<()> {
    let token = "glrt-FAKEc07Lp3Mw8Qy2Zr6t";
    let bed = ci_doctor_testbed::Bed::new("c07-no-socket")?;
    // GitLab is outside Docker's view here: a stand-in that is not a GitLab image, reached by
    // name through the test DNS server, over HTTPS with a CA the runner trusts through the
    // `certs/<host>.crt` convention.
    let gitlab = bed
        .container("gitlab-external")
        .image("ci-doctor-test/standin:latest")
        .gitlab_standin(&state_with_runners(&[(15, token, "android-builder")]))
        .https(&["gitlab.example.test"])
        .start()?;
    let dns = dns(&bed, "bridge", &[("gitlab.example.test", ip(&gitlab, "bridge"))]);
    let config = runner_config_dir(&bed, &with_job_dns(&case_file(C07, "config.toml"), dns));
    let ca = &gitlab.tls_certificates().expect("https is on").ca_pem;
    bed.write_file("runner-config/certs/gitlab.example.test.crt", ca)?;
    bed.container("gitlab-runner").image(RUNNER_IMAGE).restart("always").dns(dns).bind(&config, "/etc/gitlab-runner").start()?;

    let run = diagnose_container("gitlab-runner", &[]);
    let report = run.json();
    assert_eq!(run.status, 1);
    let error = finding(&report, "runner.docker-access", "error");
    let text = text_of(error);
    assert!(error["message"].as_str().unwrap().contains("container `gitlab-runner` has no Docker socket"), "{error:#}");
    assert!(text.contains("Cannot connect to the Docker daemon"), "{text}");
    assert!(text.contains("the Docker daemon itself answers from this host"), "the daemon is fine: {text}");
    let command = error["fix"]["actions"][0]["command"].as_str().unwrap();
    assert!(command.contains("-v /var/run/docker.sock:/var/run/docker.sock"), "{command}");
    assert!(command.contains("--name gitlab-runner") && command.contains(RUNNER_IMAGE) && command.contains(":/etc/gitlab-runner"), "{command}");

    // Must not report: the daemon down, or anything about dind and privileges.
    assert_eq!(verdict(&report, "docker.daemon")["status"], "ok");
    assert!(findings(&report, "network.runner-url").is_empty(), "{report:#}");
    assert_eq!(verdict(&report, "auth.token")["status"], "ok");
    for check in ["dind.privileged", "dind.tls", "dind.docker-host", "dind.job-daemon", "security.privileged"] {
        assert!(findings(&report, check).is_empty(), "{check} must not report here: {:#?}", problems(&report));
    }
    run.assert_no_secrets(&[token]);

    // --fix prints the command and changes nothing.
    let before = std::fs::read(config.join("config.toml"))?;
    let fixed = ci_doctor(&["--runner-container", "gitlab-runner", "--timeout", "3", "--fix", "--yes"]);
    assert!(fixed.stdout.contains("Run these yourself") && fixed.stdout.contains("-v /var/run/docker.sock:/var/run/docker.sock"), "{}", fixed.stdout);
    assert!(fixed.stdout.contains("Nothing to fix"), "{}", fixed.stdout);
    assert_eq!(std::fs::read(config.join("config.toml"))?, before);
    Ok(())
}

#[test]
fn name_without_link_on_default_bridge_does_not_resolve() -> anyhow::Result<()> {
    let token = "glrt-FAKEnolinkAb12Cd34";
    let bed = ci_doctor_testbed::Bed::new("bridge-without-link")?;
    let dns = dns(&bed, "bridge", &[]);
    bed.container("gitlab").image(GITLAB_IMAGE).hostname("gitlab").gitlab_standin(&state_with_runners(&[(21, token, "bridge-runner")])).start()?;
    let config = format!(
        "concurrent = 1\n\n[[runners]]\n  name = \"bridge-runner\"\n  url = \"http://gitlab\"\n  token = \"{token}\"\n  executor = \"docker\"\n  [runners.docker]\n    image = \"alpine:3.20\"\n    dns = [\"{dns}\"]\n"
    );
    let config = runner_config_dir(&bed, &config);
    bed.container("gitlab-runner")
        .image(RUNNER_IMAGE)
        .dns(dns)
        .bind(&config, "/etc/gitlab-runner")
        .bind(std::path::Path::new("/var/run/docker.sock"), "/var/run/docker.sock")
        .start()?;

    let run = diagnose_container("gitlab-runner", &[]);
    let report = run.json();
    assert_eq!(run.status, 1);
    let error = finding(&report, "network.runner-url", "error");
    let text = text_of(error);
    assert!(error["message"].as_str().unwrap().contains("`gitlab` does not resolve from container `gitlab-runner`"), "{error:#}");
    assert!(text.contains("default `bridge` network") && text.contains("--link"), "{text}");

    // The remedy joins both containers on a new network, as commands to run by hand.
    let commands: Vec<&str> = error["fix"]["actions"].as_array().unwrap().iter().filter_map(|action| action["command"].as_str()).collect();
    assert_eq!(commands, ["docker network create ci-net", "docker network connect ci-net gitlab", "docker network connect ci-net gitlab-runner"]);

    // Reasoning alone reaches the same verdict.
    let reasoned = diagnose_container("gitlab-runner", &["--no-probe"]).json();
    let error = finding(&reasoned, "network.runner-url", "error");
    assert_eq!(error["basis"]["method"], "reasoning");
    assert!(text_of(error).contains("--link"), "{error:#}");
    run.assert_no_secrets(&[token]);
    Ok(())
}

#[test]
fn revoked_token_is_an_error() -> anyhow::Result<()> {
    let token = "glrt-FAKErevokedXy98Zw76";
    let bed = ci_doctor_testbed::Bed::new("revoked-token")?;
    bed.network("ci-net").create()?;
    let dns = dns(&bed, "ci-net", &[]);
    let mut state = state_with_runners(&[]);
    state.revoked_runner_tokens.push(token.to_string());
    let gitlab = bed.container("gitlab").image(GITLAB_IMAGE).network("ci-net").gitlab_standin(&state).start()?;
    let config = format!(
        "concurrent = 1\n\n[[runners]]\n  name = \"old-runner\"\n  url = \"http://gitlab/\"\n  token = \"{token}\"\n  executor = \"docker\"\n  [runners.docker]\n    image = \"alpine:3.20\"\n    dns = [\"{dns}\"]\n    network_mode = \"ci-net\"\n"
    );
    let config = runner_config_dir(&bed, &config);
    bed.container("gitlab-runner")
        .image(RUNNER_IMAGE)
        .network("ci-net")
        .dns(dns)
        .bind(&config, "/etc/gitlab-runner")
        .bind(std::path::Path::new("/var/run/docker.sock"), "/var/run/docker.sock")
        .start()?;

    let run = diagnose_container("gitlab-runner", &[]);
    let report = run.json();
    assert_eq!(run.status, 1);
    let error = finding(&report, "auth.token", "error");
    assert!(error["message"].as_str().unwrap().contains("403 Forbidden"), "{error:#}");
    assert!(error["message"].as_str().unwrap().contains("glrt-FAKE…"), "the token shows only its prefix: {error:#}");
    assert_eq!(verdict(&report, "network.runner-url")["status"], "ok");
    run.assert_no_secrets(&[token]);

    // The token went to the runner's GitLab and nowhere else, and only there.
    let requests = gitlab.request_log()?;
    let verify: Vec<_> = requests.iter().filter(|request| request.path == "/api/v4/runners/verify").collect();
    assert_eq!(verify.len(), 1, "{requests:#?}");
    assert_eq!(verify[0].host.as_deref(), Some("gitlab"));
    Ok(())
}

#[test]
fn syntax_error_and_misspelled_key_point_at_their_lines() -> anyhow::Result<()> {
    let token = "glrt-FAKEsyntaxQw12Er34";
    let bed = ci_doctor_testbed::Bed::new("config-errors")?;
    let dir = bed.create_dir("configs")?;

    let broken = dir.join("broken.toml");
    std::fs::write(&broken, format!("concurrent = 1\n\n[[runners]]\n  name = \"broken\n  token = \"{token}\"\n"))?;
    let run = ci_doctor(&["--format", "json", "--config", broken.to_str().unwrap(), "--no-probe"]);
    let report = run.json();
    assert_eq!(run.status, 1);
    let error = finding(&report, "config.syntax", "error");
    assert_eq!(error["location"]["line"], 4);
    let snippet = error["evidence"].as_array().unwrap().iter().filter_map(|line| line.as_str()).collect::<Vec<_>>().join("\n");
    assert!(snippet.contains("name = \"broken") && snippet.contains('^'), "{snippet}");
    run.assert_no_secrets(&[token]);

    let typo = dir.join("typo.toml");
    std::fs::write(&typo, format!("concurrent = 1\n\n[[runners]]\n  name = \"typo\"\n  url = \"http://gitlab.example.test/\"\n  token = \"{token}\"\n  executor = \"docker\"\n  [runners.docker]\n    image = \"docker:27\"\n    privilaged = true\n"))?;
    let run = ci_doctor(&["--format", "json", "--config", typo.to_str().unwrap(), "--no-probe"]);
    let report = run.json();
    assert_eq!(run.status, 1);
    let error = finding(&report, "config.keys", "error");
    assert_eq!(error["message"], "unknown key `runners[0].docker.privilaged`; did you mean `privileged`?");
    assert_eq!(error["location"]["line"], 10);
    assert_eq!(error["location"]["column"], 5);
    run.assert_no_secrets(&[token]);

    // The human report shows the same, with the file and line.
    let human = ci_doctor(&["--config", typo.to_str().unwrap(), "--no-probe"]);
    assert!(human.stdout.contains("error[config.keys]: unknown key `runners[0].docker.privilaged`; did you mean `privileged`?"), "{}", human.stdout);
    assert!(human.stdout.contains(&format!("--> {}:10:5", typo.display())), "{}", human.stdout);
    Ok(())
}

#[test]
fn native_runner_process_is_found_by_its_config_flag() -> anyhow::Result<()> {
    let token = "glrt-FAKEnativeProc0011";
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("native-config.toml");
    std::fs::write(&config, format!("concurrent = 1\n\n[[runners]]\n  name = \"host-shell\"\n  url = \"http://127.0.0.1:9/\"\n  token = \"{token}\"\n  executor = \"shell\"\n"))?;
    set_mode(&config, 0o600);

    // A process whose command line is that of `gitlab-runner run --config <file>`.
    let mut process = std::process::Command::new("bash")
        .args(["-c", &format!("exec -a /usr/bin/gitlab-runner perl -e 'sleep 600' run --config {}", config.display())])
        .spawn()?;
    std::thread::sleep(std::time::Duration::from_millis(300));

    let run = ci_doctor(&["--format", "json", "--no-probe"]);
    let _ = process.kill();
    let _ = process.wait();
    let report = run.json();
    let runner = report["runners"].as_array().unwrap().iter().find(|runner| runner["config"] == config.display().to_string());
    let runner = runner.unwrap_or_else(|| panic!("the runner process was not found:\n{report:#}"));
    assert_eq!(runner["kind"], "host");
    assert_eq!(runner["entries"][0]["name"], "host-shell");
    run.assert_no_secrets(&[token]);
    Ok(())
}

/// Returns the daemon's current time, in the form `docker events --since` takes.
fn docker_clock() -> anyhow::Result<String> {
    let output = std::process::Command::new("docker").args(["info", "--format", "{{.SystemTime}}"]).output()?;
    anyhow::ensure!(output.status.success(), "docker info failed: {}", String::from_utf8_lossy(&output.stderr));
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_string())
}

/// Lists the names of ci-doctor probe containers the daemon created since `since`.
fn probe_containers_created_since(since: &str) -> anyhow::Result<Vec<String>> {
    let until = docker_clock()?;
    let filter = format!("label={}", ci_doctor_testbed::PROBE_LABEL);
    let output = std::process::Command::new("docker")
        .args(["events", "--since", since, "--until", &until, "--filter", &filter, "--filter", "event=create", "--format", "{{.Actor.Attributes.name}}"])
        .output()?;
    anyhow::ensure!(output.status.success(), "docker events failed: {}", String::from_utf8_lossy(&output.stderr));
    Ok(String::from_utf8_lossy(&output.stdout).lines().map(str::to_string).collect())
}
