//! The job's side on real containers: clone URLs, docker-in-docker, images and concurrency.

mod common;

use std::path::Path;

use common::*;

const C02: &str = "C02-clone-host-known-only-through-runner-link";
const C03: &str = "C03-external-url-is-localhost";
const C10: &str = "C10-dind-service-without-privileged";
const C11: &str = "C11-dind-tls-default-vs-port-2375";
const C29: &str = "C29-concurrent-one-serializes-jobs";

fn diagnose_with_pipeline(container: &str, pipeline: &Path, extra: &[&str]) -> Run {
    let mut args = vec!["--format", "json", "--runner-container", container, "--timeout", "3", "--ci-file", pipeline.to_str().unwrap()];
    args.extend_from_slice(extra);
    ci_doctor(&args)
}

fn fix_with_pipeline(container: &str, pipeline: &Path) -> Run {
    ci_doctor(&["--runner-container", container, "--timeout", "3", "--ci-file", pipeline.to_str().unwrap(), "--fix", "--yes"])
}

#[test]
fn clone_host_known_only_through_the_runner_link() -> anyhow::Result<()> {
    let token = "glrt-FAKEc02Hk8sPq3Zw1Yd6";
    let bed = ci_doctor_testbed::Bed::new("c02-link-only-clone-host")?;
    // The resolver mirrors the host's /etc/hosts entry for the browser: the name is loopback.
    let dns = dns(&bed, "bridge", &[("gitlab.example.test", "127.0.0.1".parse()?)]);
    let gitlab = bed
        .container("gitlab")
        .image(GITLAB_IMAGE)
        .hostname("gitlab.example.test")
        .publish(80)
        .env("GITLAB_OMNIBUS_CONFIG", "external_url 'http://gitlab.example.test'")
        .gitlab_standin(&state_with_runners(&[(2, token, "hello-world-runner")]))
        .start()?;
    let config_dir = runner_config_dir(&bed, &with_job_dns(&case_file(C02, "config.toml"), dns));
    bed.container("gitlab-runner").image(RUNNER_IMAGE).link("gitlab:gitlab.example.test").dns(dns).bind(&config_dir, "/etc/gitlab-runner").docker_socket().start()?;
    let pipeline = pipeline_file(&bed, &case_file(C02, ".gitlab-ci.yml"));

    let run = diagnose_with_pipeline("gitlab-runner", &pipeline, &[]);
    let report = run.json();
    let error = finding(&report, "network.clone-url", "error");
    let text = text_of(error);
    assert!(error["message"].as_str().unwrap().contains("cannot reach the clone URL `http://gitlab.example.test`"), "{error:#}");
    assert!(text.contains("only through its `--link gitlab:gitlab.example.test`"), "{text}");
    assert!(text.contains("loopback address"), "{text}");
    assert_eq!(error["basis"]["view"], "job");
    assert_eq!(error["basis"]["method"], "probe");
    let info = finding(&report, "network.clone-url", "info");
    assert!(info["message"].as_str().unwrap().contains("legacy link"), "{info:#}");

    // Must not report: the runner failing to reach GitLab, or a DNS server problem.
    assert_eq!(verdict(&report, "network.runner-url")["status"], "ok");
    assert!(findings(&report, "network.job-dns").is_empty(), "{report:#}");
    run.assert_no_secrets(&[token]);

    // --fix maps the name for job containers to the GitLab container's bridge address.
    let address = gitlab.ip("bridge")?.to_string();
    let fixed = fix_with_pipeline("gitlab-runner", &pipeline);
    assert!(fixed.stdout.contains("fixed: network.clone-url"), "{}\n{}", fixed.stdout, fixed.stderr);
    let expected = with_job_dns(&case_file(C02, "config.fixed.toml").replace("{{ip:gitlab:bridge}}", &address), dns);
    assert_eq!(std::fs::read_to_string(config_dir.join("config.toml"))?, expected);
    assert!(text_of(error).contains("docker network create ci-net"), "the durable fix is printed: {error:#}");
    Ok(())
}

fn build_c03(bed: &ci_doctor_testbed::Bed, network: &str, config: &str, token: &str) -> anyhow::Result<(std::path::PathBuf, std::path::PathBuf)> {
    bed.network(network).create()?;
    let dns = dns(bed, network, &[]);
    bed.container("gitlab")
        .image(GITLAB_IMAGE)
        .network_with_aliases(network, &["gitlab"])
        .publish(80)
        .env("GITLAB_OMNIBUS_CONFIG", "external_url 'http://localhost'")
        .gitlab_standin(&state_with_runners(&[(1, token, "local-stack-runner"), (7, "glrt-FAKEc03second0000Aa", "second-runner")]))
        .start()?;
    let config = runner_container(bed, Some(network), config, None, dns);
    let pipeline = pipeline_file(bed, &case_file(C03, ".gitlab-ci.yml"));
    Ok((config, pipeline))
}

#[test]
fn external_url_on_localhost_breaks_clones() -> anyhow::Result<()> {
    let token = "glrt-FAKEc03Wn5Jd2Ka8Pc0s";
    let bed = ci_doctor_testbed::Bed::new("c03-external-url-localhost")?;
    let (config, pipeline) = build_c03(&bed, "devstack", &case_file(C03, "config.toml"), token)?;

    let run = diagnose_with_pipeline("gitlab-runner", &pipeline, &[]);
    let report = run.json();
    let external = finding(&report, "gitlab.external-url", "error");
    assert!(external["message"].as_str().unwrap().contains("advertises `http://localhost`"), "{external:#}");
    assert!(external["message"].as_str().unwrap().contains("loopback"), "{external:#}");
    let clone = finding(&report, "network.clone-url", "error");
    assert!(clone["message"].as_str().unwrap().contains("`localhost` inside a job container is the job container itself"), "{clone:#}");
    assert!(clone["help"].as_str().unwrap().contains("`clone_url = \"http://gitlab\"`"), "{clone:#}");

    // Must not report: the runner's url, or network_mode.
    assert_eq!(verdict(&report, "network.runner-url")["status"], "ok");
    assert_eq!(verdict(&report, "network.job-coordinator")["status"], "ok");
    run.assert_no_secrets(&[token]);

    let fixed = fix_with_pipeline("gitlab-runner", &pipeline);
    assert!(fixed.stdout.contains("fixed: network.clone-url"), "{}\n{}", fixed.stdout, fixed.stderr);
    assert_eq!(std::fs::read_to_string(&config)?, case_file(C03, "config.fixed.toml"));
    let again = diagnose_with_pipeline("gitlab-runner", &pipeline, &[]).json();
    assert_eq!(verdict(&again, "network.clone-url")["status"], "ok");
    Ok(())
}

#[test]
fn only_the_broken_entry_is_reported_and_fixed() -> anyhow::Result<()> {
    let token = "glrt-FAKEc03Wn5Jd2Ka8Pc0s";
    let bed = ci_doctor_testbed::Bed::new("c03-two-entries")?;
    // Another network name, and a second entry that already has a working `clone_url`.
    let first = case_file(C03, "config.toml").replace("devstack", "build-net");
    let second = "\n[[runners]]\n  name = \"second-runner\"\n  url = \"http://gitlab/\"\n  clone_url = \"http://gitlab\"\n  token = \"glrt-FAKEc03second0000Aa\"\n  executor = \"docker\"\n  [runners.docker]\n    image = \"alpine:3.20\"\n    network_mode = \"build-net\"\n";
    let (config, pipeline) = build_c03(&bed, "build-net", &format!("{first}{second}"), token)?;

    let report = diagnose_with_pipeline("gitlab-runner", &pipeline, &[]).json();
    let clone = finding(&report, "network.clone-url", "error");
    assert_eq!(clone["runner"]["name"], "local-stack-runner");
    let oks: Vec<&serde_json::Value> = verdicts(&report, "network.clone-url").into_iter().filter(|verdict| verdict["status"] == "ok").collect();
    assert_eq!(oks.len(), 1, "{report:#}");
    assert_eq!(oks[0]["runner"]["name"], "second-runner");

    fix_with_pipeline("gitlab-runner", &pipeline);
    let expected = format!("{}{second}", case_file(C03, "config.fixed.toml").replace("devstack", "build-net"));
    assert_eq!(std::fs::read_to_string(&config)?, expected);
    Ok(())
}

#[test]
fn dind_service_without_privileges_on_a_host_runner() -> anyhow::Result<()> {
    let token = "glrt-FAKEc10Dz8Hw3Cn6Vk1p";
    let bed = ci_doctor_testbed::Bed::new("c10-dind-unprivileged")?;
    // The service container an earlier job left behind, with the runner's labels.
    bed.container("runner-FAKEc10-project-44-concurrent-0-svc-docker-0")
        .image("docker:27-dind")
        .label("com.gitlab.gitlab-runner.type", "service")
        .label("com.gitlab.gitlab-runner.service", "docker:27-dind")
        .exited(1, "mount: permission denied (are you root?)")
        .start()?;
    let config = bed.write_file("native/config.toml", case_file(C10, "config.toml"))?;
    set_mode(&config, 0o600);
    let pipeline = pipeline_file(&bed, &case_file(C10, ".gitlab-ci.yml"));

    // A runner installed on the host; its GitLab name exists nowhere, so no probes.
    let args = ["--format", "json", "--config", config.to_str().unwrap(), "--ci-file", pipeline.to_str().unwrap(), "--no-probe"];
    let run = ci_doctor(&args);
    let report = run.json();
    let error = finding(&report, "dind.privileged", "error");
    let text = text_of(error);
    assert!(error["message"].as_str().unwrap().contains("job `linux-wheels` uses service `docker:27-dind`, but runner `pi-arm64` has `privileged = false` and no `services_privileged`"), "{error:#}");
    assert!(text.contains("alias `docker` does not resolve"), "{text}");
    assert!(text.contains("mount: permission denied (are you root?)"), "the exited service's log is evidence: {text}");
    assert!(text.contains("take over the host"), "the security risk is printed with the remedy: {text}");
    assert_eq!(error["fix"]["safety"], "needs-review");

    // Must not report: a TLS mismatch (TLS is off consistently) or a missing service.
    assert!(findings(&report, "dind.tls").is_empty(), "{:#?}", problems(&report));
    assert!(findings(&report, "dind.docker-host").is_empty(), "{:#?}", problems(&report));
    run.assert_no_secrets(&[token]);

    // A fix that widens privileges is held back unless its check is named.
    let held = ci_doctor(&["--config", config.to_str().unwrap(), "--ci-file", pipeline.to_str().unwrap(), "--no-probe", "--fix", "--yes"]);
    assert!(held.stdout.contains("it widens what jobs can do"), "{}", held.stdout);
    assert_eq!(std::fs::read_to_string(&config)?, case_file(C10, "config.toml"));

    let applied = ci_doctor(&["--config", config.to_str().unwrap(), "--ci-file", pipeline.to_str().unwrap(), "--no-probe", "--fix", "--yes", "--only", "dind.privileged"]);
    assert!(applied.stdout.contains("needs review"), "{}", applied.stdout);
    assert!(applied.stdout.contains("fixed: dind.privileged"), "{}\n{}", applied.stdout, applied.stderr);
    assert_eq!(std::fs::read_to_string(&config)?, case_file(C10, "config.fixed.toml"));

    // Now privileged services are a security warning.
    let after = ci_doctor(&args).json();
    let warning = finding(&after, "security.privileged", "warning");
    assert!(warning["message"].as_str().unwrap().contains("runs services privileged (limited to"), "{warning:#}");
    Ok(())
}

#[test]
fn dind_declared_through_extends_and_anchors_is_judged() -> anyhow::Result<()> {
    let bed = ci_doctor_testbed::Bed::new("dind-through-extends")?;
    let config = bed.write_file("native/config.toml", case_file(C10, "config.toml"))?;
    set_mode(&config, 0o600);
    let text = ".dind-vars: &dind-vars\n  DOCKER_HOST: tcp://docker:2375\n  DOCKER_TLS_CERTDIR: \"\"\n.dind:\n  services:\n    - name: docker:27-dind\n  variables: *dind-vars\nwheels:\n  extends: .dind\n  image: python:3.12\n  script: [docker info]\n";
    let pipeline = pipeline_file(&bed, text);
    let report = ci_doctor(&["--format", "json", "--config", config.to_str().unwrap(), "--ci-file", pipeline.to_str().unwrap(), "--no-probe"]).json();
    let error = finding(&report, "dind.privileged", "error");
    assert!(error["message"].as_str().unwrap().contains("job `wheels` uses service `docker:27-dind`"), "{error:#}");
    assert!(findings(&report, "dind.tls").is_empty(), "{:#?}", problems(&report));
    Ok(())
}

#[test]
fn dind_port_2375_against_tls_by_default() -> anyhow::Result<()> {
    let token = "glrt-FAKEc11Fs6Nd1Rw9Yb4k";
    let bed = ci_doctor_testbed::Bed::new("c11-dind-tls")?;
    bed.image("docker:dind").env("DOCKER_TLS_CERTDIR", "/certs").expose("2375").expose("2376").build()?;
    let (dns, ca) = external_gitlab(&bed, "bridge", &[(52, token, "web-builds")]);
    let config = runner_container(&bed, None, &with_job_dns(&case_file(C11, "config.toml"), dns), Some(&ca), dns);
    let pipeline = pipeline_file(&bed, &case_file(C11, ".gitlab-ci.yml"));

    let run = diagnose_with_pipeline("gitlab-runner", &pipeline, &[]);
    let report = run.json();
    let error = finding(&report, "dind.tls", "error");
    let text = text_of(error);
    assert!(error["message"].as_str().unwrap().contains("`tcp://docker:2375`") && error["message"].as_str().unwrap().contains("TLS on (`DOCKER_TLS_CERTDIR=/certs`"), "{error:#}");
    assert!(text.contains("image `docker:dind`"), "the image default is the source: {text}");
    assert!(text.contains("DOCKER_HOST: tcp://docker:2376") && text.contains("DOCKER_TLS_CERTDIR: \"\""), "both variants: {text}");
    let info = finding(&report, "image.job-tools", "info");
    assert!(info["message"].as_str().unwrap().contains("floating tag"), "{info:#}");

    // Must not report: privileged mode (already on) or a missing service; the only warning is
    // the security one.
    assert!(findings(&report, "dind.privileged").is_empty(), "{:#?}", problems(&report));
    assert!(findings(&report, "dind.docker-host").is_empty(), "{:#?}", problems(&report));
    let errors: Vec<String> = problems(&report).into_iter().filter(|line| line.starts_with("error")).collect();
    assert_eq!(errors.len(), 1, "{errors:#?}");
    run.assert_no_secrets(&[token]);

    // --fix changes nothing: the choice lives in .gitlab-ci.yml.
    let before = std::fs::read(&config)?;
    let fixed = fix_with_pipeline("gitlab-runner", &pipeline);
    assert!(fixed.stdout.contains("Nothing to fix"), "{}", fixed.stdout);
    assert_eq!(std::fs::read(&config)?, before);
    Ok(())
}

#[test]
fn healthy_dind_with_tls_has_only_the_security_warning() -> anyhow::Result<()> {
    let token = "glrt-FAKEdindTlsHealthy01";
    let bed = ci_doctor_testbed::Bed::new("healthy-dind")?;
    bed.network("ci-net").create()?;
    let dns = dns(&bed, "ci-net", &[]);
    bed.container("gitlab")
        .image(GITLAB_IMAGE)
        .network("ci-net")
        .env("GITLAB_OMNIBUS_CONFIG", "external_url 'http://gitlab'")
        .gitlab_standin(&state_with_runners(&[(31, token, "dind-runner")]))
        .start()?;
    let config = format!(
        "concurrent = 2\n\n[[runners]]\n  name = \"dind-runner\"\n  url = \"http://gitlab/\"\n  token = \"{token}\"\n  executor = \"docker\"\n  [runners.docker]\n    image = \"docker:27\"\n    privileged = true\n    volumes = [\"/certs/client\", \"/cache\"]\n    network_mode = \"ci-net\"\n"
    );
    runner_container(&bed, Some("ci-net"), &config, None, dns);
    let pipeline = pipeline_file(
        &bed,
        "build:\n  image: docker:27\n  services:\n    - docker:27-dind\n  variables:\n    DOCKER_HOST: tcp://docker:2376\n    DOCKER_TLS_CERTDIR: \"/certs\"\n  script:\n    - docker build -t app .\n",
    );

    let report = diagnose_with_pipeline("gitlab-runner", &pipeline, &[]).json();
    let problems = problems(&report);
    let unexpected: Vec<&String> = problems.iter().filter(|line| !line.starts_with("info") && !line.starts_with("warning security.privileged")).collect();
    assert!(unexpected.is_empty(), "{unexpected:#?}");
    assert!(problems.iter().any(|line| line.starts_with("warning security.privileged")), "{problems:#?}");
    assert_eq!(report["exit_code"], 0);
    assert!(verdicts(&report, "dind.tls").iter().any(|verdict| verdict["status"] == "ok"), "{report:#}");
    assert_eq!(verdict(&report, "network.clone-url")["status"], "ok");
    Ok(())
}

#[test]
fn healthy_clone_setup_has_no_finding() -> anyhow::Result<()> {
    let token = "glrt-FAKEh02Nt5Wk8Qz3Lp7Y";
    let bed = ci_doctor_testbed::Bed::new("healthy-clone")?;
    bed.network("ci-net").create()?;
    let dns = dns(&bed, "ci-net", &[]);
    bed.container("gitlab")
        .image(GITLAB_IMAGE)
        .hostname("gitlab")
        .network_with_aliases("ci-net", &["gitlab"])
        .env("GITLAB_OMNIBUS_CONFIG", "external_url 'http://gitlab'")
        .gitlab_standin(&state_with_runners(&[(12, token, "network-runner")]))
        .start()?;
    runner_container(&bed, Some("ci-net"), &case_file("H02-healthy-network", "config.toml"), None, dns);
    let pipeline = pipeline_file(&bed, &case_file("H02-healthy-network", ".gitlab-ci.yml"));

    let report = diagnose_with_pipeline("gitlab-runner", &pipeline, &[]).json();
    let problems = problems(&report);
    let unexpected: Vec<&String> = problems.iter().filter(|line| !line.starts_with("info")).collect();
    assert!(unexpected.is_empty(), "{unexpected:#?}");
    for check in ["network.clone-url", "network.job-coordinator", "network.job-dns", "gitlab.external-url"] {
        assert_eq!(verdict(&report, check)["status"], "ok", "{check}: {report:#}");
    }
    let basis = &verdict(&report, "network.clone-url")["basis"];
    assert_eq!(basis["method"], "probe");
    // The runner container is on the jobs' network and GitLab's name is an alias there, so its
    // own probes stand for the job's view and no probe container is started.
    assert!(basis["detail"].as_str().unwrap().contains("probed from runner container `gitlab-runner`, which is on network `ci-net`"), "{basis:#}");
    Ok(())
}

#[test]
fn concurrent_one_serializes_parallel_jobs() -> anyhow::Result<()> {
    let token = "glrt-FAKEc29Qp7Wz2Xr5Ty8i";
    let bed = ci_doctor_testbed::Bed::new("c29-concurrent-one")?;
    let (dns, ca) = external_gitlab(&bed, "bridge", &[(190, token, "akeso-runner")]);
    let config = runner_container(&bed, None, &with_job_dns(&case_file(C29, "config.toml"), dns), Some(&ca), dns);
    let pipeline = pipeline_file(&bed, &case_file(C29, ".gitlab-ci.yml"));

    let run = diagnose_with_pipeline("gitlab-runner", &pipeline, &[]);
    let report = run.json();
    let warning = finding(&report, "runner.concurrency", "warning");
    let message = warning["message"].as_str().unwrap();
    assert!(message.contains("`concurrent = 1` limits this runner process to one job at a time"), "{message}");
    assert!(message.contains("`integration` and `lint` wait"), "{message}");
    let cpus = std::thread::available_parallelism()?.get();
    if cpus > 1 {
        assert!(message.contains(&format!("{cpus} CPUs")), "{message}");
    }
    // Must not report a stuck job or any error.
    assert!(problems(&report).iter().all(|line| !line.starts_with("error")), "{:#?}", problems(&report));
    run.assert_no_secrets(&[token]);

    let fixed = fix_with_pipeline("gitlab-runner", &pipeline);
    assert!(fixed.stdout.contains(&format!("set `concurrent = {cpus}`")), "{}", fixed.stdout);
    let expected = with_job_dns(&case_file(C29, "config.fixed.toml").replace("{{ncpu}}", &cpus.to_string()), dns);
    assert_eq!(std::fs::read_to_string(&config)?, expected);
    Ok(())
}
