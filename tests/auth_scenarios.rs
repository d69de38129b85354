//! `auth.token` against a stand-in GitLab on loopback: deleted runners whose entries `--fix`
//! removes, reset and expired tokens, and runner tokens of the wrong kind.

mod common;

use ci_doctor_testbed::state::{PersonalAccessToken, Runner};
use common::*;

const ADMIN: &str = "glpat-FAKEauthAdmin0000001";

fn entry(name: &str, url: &str, id: u64, token: &str, extra: &str) -> String {
    format!("\n# {name} keeps its comment\n[[runners]]\n  name = \"{name}\"\n  url = \"{url}/\"\n  id = {id}\n  token = \"{token}\"\n{extra}  executor = \"shell\"\n")
}

#[test]
fn entries_of_deleted_runners_are_removed_by_fix() -> anyhow::Result<()> {
    let alive = "glrt-FAKEauthAlive000001";
    let gone_a = "glrt-FAKEauthGoneA00001";
    let gone_b = "glrt-FAKEauthGoneB00001";
    let mut state = state_with_runners(&[(301, alive, "alive")]);
    state.personal_access_tokens.push(PersonalAccessToken::new(1, ADMIN, &["read_api"]));
    let gitlab = local_gitlab(state, "127.0.0.1", None);
    let url = gitlab.url();
    let head = "concurrent = 2\ncheck_interval = 0\n";
    let config_text = format!("{head}{}{}{}", entry("gone-a", &url, 302, gone_a, ""), entry("alive", &url, 301, alive, ""), entry("gone-b", &url, 303, gone_b, ""));
    let (_dir, config) = config_file(&config_text);
    let args = ["--config", config.to_str().unwrap(), "--gitlab-url", &url, "--gitlab-token", ADMIN, "--timeout", "3"];

    let mut json_args = vec!["--format", "json"];
    json_args.extend_from_slice(&args);
    let run = ci_doctor(&json_args);
    let report = run.json();
    let errors: Vec<_> = findings(&report, "auth.token").into_iter().filter(|finding| finding["severity"] == "error").collect();
    assert_eq!(errors.len(), 2, "{report:#}");
    assert_eq!(errors[0]["message"], "runner `gone-a` (id 302) no longer exists in GitLab, and GitLab rejects its token `glrt-FAKE…` (403 Forbidden)");
    assert_eq!(errors[0]["fix"]["actions"][0]["action"], "remove-entry");
    assert!(text_of(errors[1]).contains("`GET /api/v4/runners/303` answers 404"), "{:#}", errors[1]);
    run.assert_no_secrets(&[ADMIN, alive, gone_a, gone_b]);

    let mut fix_args = args.to_vec();
    fix_args.extend_from_slice(&["--fix", "--yes"]);
    let fixed = ci_doctor(&fix_args);
    assert_eq!(fixed.status, 0, "{}\n{}", fixed.stdout, fixed.stderr);
    let expected = format!("{head}{}", entry("alive", &url, 301, alive, ""));
    assert_eq!(std::fs::read_to_string(&config)?, expected);
    assert!(fixed.stdout.contains("fixed: auth.token"), "{}", fixed.stdout);
    fixed.assert_no_secrets(&[ADMIN, alive, gone_a, gone_b]);

    // The access token went with every API request, and only to the stand-in; runner tokens
    // went only to `/runners/verify`.
    for request in gitlab.requests() {
        if request.path == "/api/v4/runners/verify" {
            assert!(request.credentials.is_empty(), "{request:?}");
        } else if request.path != "/api/v4/version" {
            assert_eq!(request.credential("private-token"), Some(ADMIN), "{request:?}");
        }
    }
    Ok(())
}

#[test]
fn reset_token_of_existing_runner_keeps_the_entry() -> anyhow::Result<()> {
    let mut state = state_with_runners(&[(401, "glrt-FAKEauthNewToken001", "reset")]);
    state.personal_access_tokens.push(PersonalAccessToken::new(1, ADMIN, &["read_api"]));
    let gitlab = local_gitlab(state, "127.0.0.1", None);
    let url = gitlab.url();
    let (_dir, config) = config_file(&format!("concurrent = 1\n{}", entry("reset", &url, 401, "glrt-FAKEauthOldToken001", "  token_expires_at = 2025-01-01T00:00:00Z\n")));

    let report = ci_doctor(&["--format", "json", "--config", config.to_str().unwrap(), "--gitlab-url", &url, "--gitlab-token", ADMIN, "--timeout", "3"]).json();
    let error = finding(&report, "auth.token", "error");
    assert_eq!(error["message"], "token `glrt-FAKE…` of runner `reset` expired at 2025-01-01T00:00:00Z, and GitLab rejects it (403 Forbidden)");
    assert!(text_of(error).contains("runner 401 still exists in GitLab"), "{error:#}");
    assert!(error["fix"].is_null(), "{error:#}");
    Ok(())
}

#[test]
fn expired_runner_token_is_rejected_with_its_date() -> anyhow::Result<()> {
    let token = "glrt-FAKEauthExpired0001";
    let mut state = state_with_runners(&[]);
    state.runners.push(Runner { token_expires_at: Some("2024-06-01T00:00:00.000Z".into()), ..Runner::new(501, token) });
    let gitlab = local_gitlab(state, "127.0.0.1", None);
    let (_dir, config) = config_file(&format!("concurrent = 1\n{}", entry("old", &gitlab.url(), 501, token, "  token_expires_at = 2024-06-01T00:00:00Z\n")));

    let run = ci_doctor(&["--format", "json", "--config", config.to_str().unwrap(), "--timeout", "3"]);
    let report = run.json();
    let error = finding(&report, "auth.token", "error");
    assert!(error["message"].as_str().unwrap().contains("expired at 2024-06-01T00:00:00Z"), "{error:#}");
    run.assert_no_secrets(&[token]);
    Ok(())
}

#[test]
fn personal_token_is_wrong_kind() -> anyhow::Result<()> {
    let pat = "glpat-FAKEauthWrongKind01";
    let (_dir, config) = config_file(&format!("concurrent = 1\n{}", entry("pat", "http://127.0.0.1:9", 601, pat, "")));
    let run = ci_doctor(&["--format", "json", "--config", config.to_str().unwrap(), "--no-probe"]);
    let report = run.json();
    let error = finding(&report, "auth.token", "error");
    assert_eq!(error["message"], "`token` of runner `pat` (`glpat-FAKE…`) is a personal, project or group access token (`glpat-`), not a runner authentication token");
    run.assert_no_secrets(&[pat]);
    Ok(())
}
