//! `tls.trust` on real containers and on loopback: a private CA the runner does not trust (and
//! the fix that references the CA file already on its side), an expired certificate, and a
//! certificate for another name.

mod common;

use ci_doctor_testbed::standin::ServerCertOptions;
use common::*;

const C19: &str = "C19-self-signed-gitlab-ca-not-trusted";

#[test]
fn private_ca_not_referenced_is_fixed_with_tls_ca_file() -> anyhow::Result<()> {
    let token = "glrt-FAKEc19Vb6Rn1Xw8Gd3m";
    let bed = ci_doctor_testbed::Bed::new("c19-private-ca")?;
    let gitlab = bed
        .container("gitlab-intranet")
        .image("ci-doctor-test/standin:latest")
        .gitlab_standin(&state_with_runners(&[(120, token, "intranet-runner")]))
        .https(&["gitlab.example.test"])
        .start()?;
    let dns = dns(&bed, "bridge", &[("gitlab.example.test", ip(&gitlab, "bridge"))]);
    let config = runner_config_dir(&bed, &with_job_dns(&case_file(C19, "config.toml"), dns));
    // The admin copied the CA beside the config, under a name the runner does not load.
    bed.write_file("runner-config/certs/ca.crt", &gitlab.tls_certificates().expect("https is on").ca_pem)?;
    bed.container("gitlab-runner").image(RUNNER_IMAGE).dns(dns).bind(&config, "/etc/gitlab-runner").docker_socket().start()?;

    let run = diagnose_container("gitlab-runner", &[]);
    let report = run.json();
    assert_eq!(run.status, 1, "{}", run.stderr);
    let error = finding(&report, "tls.trust", "error");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("the certificate of `gitlab.example.test` chains to a CA") && message.contains("runner `intranet-runner` does not trust"), "{message}");
    let text = text_of(error);
    assert!(text.contains("x509: certificate signed by unknown authority"), "{text}");
    assert!(text.contains("runner `intranet-runner` has no `tls-ca-file`, and `/etc/gitlab-runner/certs/gitlab.example.test.crt` (the file the runner would load by itself) is absent"), "{text}");
    assert!(text.contains("issued by `CN=ci-doctor test CA`"), "the chain's subjects and dates: {text}");
    assert!(text.contains("clone step in job containers"), "{text}");
    assert_eq!(error["basis"]["method"], "probe");
    let action = &error["fix"]["actions"][0];
    assert_eq!(action["action"], "set-key");
    assert_eq!(action["value"], "/etc/gitlab-runner/certs/ca.crt");
    assert_eq!(action["after"], "url");

    let info = finding(&report, "tls.trust", "info");
    assert!(info["message"].as_str().unwrap().contains("`/etc/gitlab-runner/certs/ca.crt` exists on the runner's side and verifies the certificate of `gitlab.example.test`"), "{info:#}");

    // Must not report: turning verification off as a remedy.
    for finding in report["findings"].as_array().unwrap() {
        let text = text_of(finding);
        assert!(!text.contains("GIT_SSL_NO_VERIFY") && !text.contains("tls_verify"), "{finding:#}");
    }
    assert!(findings(&report, "network.runner-url").is_empty(), "the network works: {report:#}");
    run.assert_no_secrets(&[token]);

    // --fix writes exactly the expected file, and the runner then trusts GitLab.
    let path = config.join("config.toml");
    let fixed = ci_doctor(&["--runner-container", "gitlab-runner", "--timeout", "3", "--fix", "--yes"]);
    assert_eq!(fixed.status, 0, "{}\n{}", fixed.stdout, fixed.stderr);
    assert_eq!(std::fs::read_to_string(&path)?, with_job_dns(&case_file(C19, "config.fixed.toml"), dns));
    assert!(fixed.stdout.contains("fixed: tls.trust"), "{}", fixed.stdout);
    fixed.assert_no_secrets(&[token]);

    let after = diagnose_container("gitlab-runner", &[]).json();
    assert_eq!(verdict(&after, "tls.trust")["status"], "ok", "{after:#}");
    assert_eq!(verdict(&after, "auth.token")["status"], "ok", "the token verifies over TLS now: {after:#}");

    let before = std::fs::read(&path)?;
    let again = ci_doctor(&["--runner-container", "gitlab-runner", "--timeout", "3", "--fix", "--yes"]);
    assert!(again.stdout.contains("Nothing to fix"), "{}", again.stdout);
    assert_eq!(std::fs::read(&path)?, before);
    Ok(())
}

#[test]
fn no_verifying_ca_file_means_no_fix() -> anyhow::Result<()> {
    let gitlab = local_gitlab(state_with_runners(&[]), "127.0.0.1", Some((&["127.0.0.1"], ServerCertOptions::default())));
    let https = gitlab.https.unwrap();
    let (dir, config) = config_file(&format!("concurrent = 1\n\n[[runners]]\n  name = \"host-shell\"\n  url = \"https://{https}/\"\n  token = \"glrt-FAKEtlsnoca0123\"\n  executor = \"shell\"\n"));
    std::fs::create_dir(dir.path().join("certs"))?;
    let unrelated = ci_doctor_testbed::test_ca_and_server_cert(&dir.path().join("other"), &["other.example.test"])?;
    std::fs::copy(&unrelated.ca_cert, dir.path().join("certs/other-ca.crt"))?;

    let run = ci_doctor(&["--format", "json", "--config", config.to_str().unwrap(), "--timeout", "3"]);
    let report = run.json();
    let error = finding(&report, "tls.trust", "error");
    assert!(error["message"].as_str().unwrap().contains("chains to a CA"), "{error:#}");
    assert!(error["fix"].is_null(), "no file verifies the chain, so nothing is set: {error:#}");
    assert!(text_of(error).contains("no CA file on the runner's side verifies the chain"), "{error:#}");
    assert!(findings(&report, "tls.trust").iter().all(|finding| finding["severity"] != "info"), "{report:#}");
    Ok(())
}

#[test]
fn expired_certificate_is_an_error_with_its_date() -> anyhow::Result<()> {
    let gitlab = local_gitlab(state_with_runners(&[]), "127.0.0.1", Some((&["127.0.0.1"], ServerCertOptions { expired: true })));
    let https = gitlab.https.unwrap();
    let ca = gitlab.ca_file.as_ref().unwrap().display().to_string();
    let (_dir, config) = config_file(&format!("concurrent = 1\n\n[[runners]]\n  name = \"host-shell\"\n  url = \"https://{https}/\"\n  tls-ca-file = \"{ca}\"\n  token = \"glrt-FAKEtlsexpired01\"\n  executor = \"shell\"\n"));

    let report = ci_doctor(&["--format", "json", "--config", config.to_str().unwrap(), "--timeout", "3"]).json();
    let error = finding(&report, "tls.trust", "error");
    assert_eq!(error["message"], "the certificate of `127.0.0.1` expired on 2021-01-01T00:00:00Z");
    assert!(text_of(error).contains("valid 2020-01-01T00:00:00Z to 2021-01-01T00:00:00Z"), "{error:#}");
    assert!(error["fix"].is_null());
    Ok(())
}

#[test]
fn certificate_for_another_name_is_a_mismatch() -> anyhow::Result<()> {
    let gitlab = local_gitlab(state_with_runners(&[]), "127.0.0.1", Some((&["gitlab.example.test"], ServerCertOptions::default())));
    let https = gitlab.https.unwrap();
    let ca = gitlab.ca_file.as_ref().unwrap().display().to_string();
    let (_dir, config) = config_file(&format!("concurrent = 1\n\n[[runners]]\n  name = \"host-shell\"\n  url = \"https://{https}/\"\n  tls-ca-file = \"{ca}\"\n  token = \"glrt-FAKEtlsname0001\"\n  executor = \"shell\"\n"));

    let report = ci_doctor(&["--format", "json", "--config", config.to_str().unwrap(), "--timeout", "3"]).json();
    let error = finding(&report, "tls.trust", "error");
    assert_eq!(error["message"], "the certificate presented at `127.0.0.1` is for `gitlab.example.test`, not for `127.0.0.1`");
    assert!(text_of(error).contains("x509: certificate is valid for gitlab.example.test, not 127.0.0.1"), "{error:#}");
    Ok(())
}
