//! The stand-in GitLab service in-process on loopback: status codes, bodies
//! and headers of each endpoint, the request log, and HTTPS with a test CA.

use std::net::SocketAddr;
use std::path::PathBuf;

use ci_doctor_testbed::standin::{Standin, TlsListener, load_tls_config};
use ci_doctor_testbed::state::{
    Job, PersonalAccessToken, Project, ProtectedBranch, Runner, RunnerStatus, RunnerType, State,
    User,
};
use ci_doctor_testbed::{read_request_log, test_ca_and_server_cert};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::net::TcpListener;

const ADMIN_TOKEN: &str = "glpat-admin-0000000001";
const USER_TOKEN: &str = "glpat-user-00000000002";
const READ_USER_TOKEN: &str = "glpat-readuser-0000003";
const REVOKED_TOKEN: &str = "glpat-revoked-000000004";
const EXPIRED_TOKEN: &str = "glpat-expired-000000005";

fn scenario_state() -> State {
    let mut state = State::default();
    state.users.push(User {
        id: 2,
        username: "developer".to_owned(),
        name: "Developer".to_owned(),
        is_admin: false,
        state: "active".to_owned(),
        bot: false,
    });
    state.personal_access_tokens = vec![
        PersonalAccessToken::new(1, ADMIN_TOKEN, &["api"]),
        PersonalAccessToken {
            user_id: 2,
            ..PersonalAccessToken::new(2, USER_TOKEN, &["read_api"])
        },
        PersonalAccessToken::new(3, READ_USER_TOKEN, &["read_user"]),
        PersonalAccessToken {
            revoked: true,
            ..PersonalAccessToken::new(4, REVOKED_TOKEN, &["api"])
        },
        PersonalAccessToken {
            expires_at: Some("2001-01-01".to_owned()),
            ..PersonalAccessToken::new(5, EXPIRED_TOKEN, &["api"])
        },
    ];
    let mut project = Project::new(10, "group/app");
    project.protected_branches = vec![
        ProtectedBranch::new("main"),
        ProtectedBranch {
            allow_force_push: true,
            push_access_level: 30,
            ..ProtectedBranch::new("release/*")
        },
    ];
    let mut private_runners_only = Project::new(11, "group/secure");
    private_runners_only.shared_runners_enabled = false;
    state.projects = vec![project, private_runners_only];

    let shared = Runner::new(1, "glrt-shared-runner-token");
    let project_runner = Runner {
        runner_type: RunnerType::ProjectType,
        projects: vec![10],
        tag_list: vec!["docker".to_owned(), "linux".to_owned()],
        status: RunnerStatus::Offline,
        ..Runner::new(2, "glrt-project-runner-token")
    };
    let orphan = Runner {
        runner_type: RunnerType::ProjectType,
        orphaned: true,
        ..Runner::new(3, "glrt-orphaned-runner-token")
    };
    let paused = Runner {
        paused: true,
        status: RunnerStatus::Stale,
        ..Runner::new(4, "glrt-paused-runner-token")
    };
    state.runners = vec![shared, project_runner, orphan, paused];
    state.revoked_runner_tokens = vec!["glrt-revoked-runner-token".to_owned()];
    state.registration_tokens = vec!["GR1348941registration".to_owned()];

    let mut pending = Job::new(100, 10, "build");
    pending.tag_list = vec!["docker".to_owned()];
    let running = Job {
        status: "running".to_owned(),
        runner_id: Some(2),
        ..Job::new(101, 10, "test")
    };
    let other_pending = Job::new(102, 10, "lint");
    let other_project = Job::new(103, 11, "deploy");
    state.jobs = vec![pending, running, other_pending, other_project];
    state
}

/// Returns a client builder that ignores proxy settings, after installing the
/// ring crypto provider that reqwest needs with `rustls-no-provider`.
fn client_builder() -> reqwest::ClientBuilder {
    // Ignore the error of a second install: the provider is process-wide.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().no_proxy()
}

struct Server {
    base: String,
    log: PathBuf,
    client: reqwest::Client,
    _dir: tempfile::TempDir,
}

async fn start(state: State) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("requests.jsonl");
    let standin = Standin::with_request_log(state, &log).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(standin.serve(listener, None));
    Server {
        base: format!("http://{address}"),
        log,
        client: client_builder().build().unwrap(),
        _dir: dir,
    }
}

impl Server {
    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.get(format!("{}{path}", self.base))
    }

    fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.post(format!("{}{path}", self.base))
    }
}

async fn json_of(response: reqwest::Response) -> (StatusCode, Value) {
    let status = response.status();
    let body = response.json().await.unwrap();
    (status, body)
}

#[tokio::test]
async fn verify_known_token_returns_runner() {
    let server = start(scenario_state()).await;
    let response = server
        .post("/api/v4/runners/verify")
        .json(&json!({"token": "glrt-shared-runner-token", "system_id": "s_0123456789ab"}))
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(response).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        body,
        json!({"id": 1, "token": "glrt-shared-runner-token", "token_expires_at": null})
    );
}

#[tokio::test]
async fn verify_accepts_form_body() {
    let server = start(scenario_state()).await;
    let response = server
        .post("/api/v4/runners/verify")
        .header("content-type", "application/x-www-form-urlencoded")
        .body("token=glrt-project-runner-token")
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(response).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["id"], 2);
}

#[tokio::test]
async fn verify_rejects_unknown_revoked_and_orphaned() {
    let server = start(scenario_state()).await;
    let cases = [
        (
            "glrt-unknown",
            StatusCode::FORBIDDEN,
            json!({"message": "403 Forbidden"}),
        ),
        (
            "glrt-revoked-runner-token",
            StatusCode::FORBIDDEN,
            json!({"message": "403 Forbidden"}),
        ),
        (
            "glrt-orphaned-runner-token",
            StatusCode::UNPROCESSABLE_ENTITY,
            json!({"message": "Runner is orphaned"}),
        ),
    ];
    for (token, expected_status, expected_body) in cases {
        let response = server
            .post("/api/v4/runners/verify")
            .json(&json!({ "token": token }))
            .send()
            .await
            .unwrap();
        let (status, body) = json_of(response).await;
        assert_eq!(status, expected_status, "{token}");
        assert_eq!(body, expected_body, "{token}");
    }
}

#[tokio::test]
async fn verify_without_token_is_bad_request() {
    let server = start(scenario_state()).await;
    let response = server
        .post("/api/v4/runners/verify")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(response).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, json!({"error": "token is missing"}));
}

#[tokio::test]
async fn version_needs_access_token() {
    let server = start(scenario_state()).await;
    for path in ["/api/v4/version", "/api/v4/metadata"] {
        let (status, body) = json_of(server.get(path).send().await.unwrap()).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(body, json!({"message": "401 Unauthorized"}), "{path}");

        let unknown = server
            .get(path)
            .header("PRIVATE-TOKEN", "glpat-nobody")
            .send()
            .await
            .unwrap();
        assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED, "{path}");
    }
}

#[tokio::test]
async fn version_accepts_private_token_and_bearer() {
    let server = start(scenario_state()).await;
    let with_header = server
        .get("/api/v4/version")
        .header("PRIVATE-TOKEN", ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(with_header).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["version"], "17.5.2");
    assert_eq!(body["enterprise"], false);
    assert_eq!(body["kas"]["enabled"], false);

    let with_bearer = server
        .get("/api/v4/metadata")
        .bearer_auth(READ_USER_TOKEN)
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(with_bearer).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["revision"], "c0ffee17a52");
}

#[tokio::test]
async fn revoked_and_expired_tokens_get_invalid_token() {
    let server = start(scenario_state()).await;
    for (token, description) in [
        (
            REVOKED_TOKEN,
            "Token was revoked. You have to re-authorize from the user.",
        ),
        (EXPIRED_TOKEN, "Token has expired."),
    ] {
        let response = server
            .get("/api/v4/user")
            .header("PRIVATE-TOKEN", token)
            .send()
            .await
            .unwrap();
        let challenge = response.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .to_owned();
        let (status, body) = json_of(response).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{token}");
        assert_eq!(body["error"], "invalid_token", "{token}");
        assert_eq!(body["error_description"], description, "{token}");
        assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    }
}

#[tokio::test]
async fn read_user_token_lacks_api_scope() {
    let server = start(scenario_state()).await;
    let response = server
        .get("/api/v4/projects/10")
        .header("PRIVATE-TOKEN", READ_USER_TOKEN)
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(response).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body["error"], "insufficient_scope");
    assert_eq!(body["scope"], "api read_api");
}

#[tokio::test]
async fn user_and_token_self_describe_caller() {
    let server = start(scenario_state()).await;
    let (status, user) = json_of(
        server
            .get("/api/v4/user")
            .header("PRIVATE-TOKEN", USER_TOKEN)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(user["id"], 2);
    assert_eq!(user["username"], "developer");
    assert_eq!(user["is_admin"], false);

    let (status, token) = json_of(
        server
            .get("/api/v4/personal_access_tokens/self")
            .header("PRIVATE-TOKEN", USER_TOKEN)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(token["id"], 2);
    assert_eq!(token["scopes"], json!(["read_api"]));
    assert_eq!(token["user_id"], 2);
    assert_eq!(token["active"], true);
    assert_eq!(token["revoked"], false);
}

#[tokio::test]
async fn runner_details_have_gitlab_fields() {
    let server = start(scenario_state()).await;
    let (status, runner) = json_of(
        server
            .get("/api/v4/runners/2")
            .header("PRIVATE-TOKEN", ADMIN_TOKEN)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(runner["id"], 2);
    assert_eq!(runner["runner_type"], "project_type");
    assert_eq!(runner["is_shared"], false);
    assert_eq!(runner["status"], "offline");
    assert_eq!(runner["online"], false);
    assert_eq!(runner["active"], true);
    assert_eq!(runner["tag_list"], json!(["docker", "linux"]));
    assert_eq!(runner["access_level"], "not_protected");
    assert_eq!(runner["projects"][0]["path_with_namespace"], "group/app");
    assert!(
        runner.get("token").is_none(),
        "runner details must not expose the token"
    );
}

#[tokio::test]
async fn unknown_runner_and_project_are_not_found() {
    let server = start(scenario_state()).await;
    let (status, body) = json_of(
        server
            .get("/api/v4/runners/99")
            .header("PRIVATE-TOKEN", ADMIN_TOKEN)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body, json!({"message": "404 Runner Not Found"}));

    let (status, body) = json_of(
        server
            .get("/api/v4/projects/group%2Fmissing")
            .header("PRIVATE-TOKEN", ADMIN_TOKEN)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body, json!({"message": "404 Project Not Found"}));
}

#[tokio::test]
async fn unknown_api_path_is_not_found() {
    let server = start(scenario_state()).await;
    let (status, body) = json_of(server.get("/api/v4/nothing/here").send().await.unwrap()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body, json!({"error": "404 Not Found"}));
}

#[tokio::test]
async fn all_runners_needs_admin_and_filters_type() {
    let server = start(scenario_state()).await;
    let forbidden = server
        .get("/api/v4/runners/all")
        .header("PRIVATE-TOKEN", USER_TOKEN)
        .send()
        .await
        .unwrap();
    let (status, body) = json_of(forbidden).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body, json!({"message": "403 Forbidden"}));

    let (status, all) = json_of(
        server
            .get("/api/v4/runners/all")
            .header("PRIVATE-TOKEN", ADMIN_TOKEN)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(all.as_array().unwrap().len(), 4);

    let (status, instance) = json_of(
        server
            .get("/api/v4/runners/all?type=instance_type&paused=false")
            .header("PRIVATE-TOKEN", ADMIN_TOKEN)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<i64> = instance
        .as_array()
        .unwrap()
        .iter()
        .map(|runner| runner["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, vec![1]);

    let (status, body) = json_of(
        server
            .get("/api/v4/runners/all?type=bogus")
            .header("PRIVATE-TOKEN", ADMIN_TOKEN)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, json!({"error": "type does not have a valid value"}));
}

#[tokio::test]
async fn project_runners_follow_shared_setting() {
    let server = start(scenario_state()).await;
    let ids = |body: &Value| -> Vec<i64> {
        body.as_array()
            .unwrap()
            .iter()
            .map(|runner| runner["id"].as_i64().unwrap())
            .collect()
    };

    let (status, app) = json_of(
        server
            .get("/api/v4/projects/10/runners")
            .header("PRIVATE-TOKEN", ADMIN_TOKEN)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&app), vec![1, 2, 4]);

    let (status, secure) = json_of(
        server
            .get("/api/v4/projects/11/runners")
            .header("PRIVATE-TOKEN", ADMIN_TOKEN)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(ids(&secure).is_empty(), "{secure}");

    let (_, tagged) = json_of(
        server
            .get("/api/v4/projects/10/runners?tag_list=docker")
            .header("PRIVATE-TOKEN", ADMIN_TOKEN)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(ids(&tagged), vec![2]);
}

#[tokio::test]
async fn project_by_encoded_path() {
    let server = start(scenario_state()).await;
    let (status, project) = json_of(
        server
            .get("/api/v4/projects/group%2Fapp")
            .header("PRIVATE-TOKEN", ADMIN_TOKEN)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(project["id"], 10);
    assert_eq!(project["path_with_namespace"], "group/app");
    assert_eq!(project["web_url"], "http://gitlab.example.test/group/app");
    assert_eq!(
        project["http_url_to_repo"],
        "http://gitlab.example.test/group/app.git"
    );
    assert_eq!(project["shared_runners_enabled"], true);
    assert_eq!(project["default_branch"], "main");
}

#[tokio::test]
async fn jobs_filter_by_repeated_scope() {
    let server = start(scenario_state()).await;
    let ids = |body: &Value| -> Vec<i64> {
        body.as_array()
            .unwrap()
            .iter()
            .map(|job| job["id"].as_i64().unwrap())
            .collect()
    };

    let (status, pending) = json_of(
        server
            .get("/api/v4/projects/10/jobs?scope[]=pending")
            .header("PRIVATE-TOKEN", ADMIN_TOKEN)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(ids(&pending), vec![102, 100]);
    assert_eq!(pending[1]["tag_list"], json!(["docker"]));
    assert_eq!(pending[1]["runner"], Value::Null);

    let (_, both) = json_of(
        server
            .get("/api/v4/projects/10/jobs?scope%5B%5D=pending&scope%5B%5D=running")
            .header("PRIVATE-TOKEN", ADMIN_TOKEN)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(ids(&both), vec![102, 101, 100]);
    assert_eq!(both[1]["runner"]["id"], 2);

    let (status, body) = json_of(
        server
            .get("/api/v4/projects/10/jobs?scope[]=sleeping")
            .header("PRIVATE-TOKEN", ADMIN_TOKEN)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body, json!({"error": "scope does not have a valid value"}));
}

#[tokio::test]
async fn protected_branches_have_access_levels() {
    let server = start(scenario_state()).await;
    let (status, branches) = json_of(
        server
            .get("/api/v4/projects/10/protected_branches")
            .header("PRIVATE-TOKEN", ADMIN_TOKEN)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(branches[0]["name"], "main");
    assert_eq!(branches[0]["push_access_levels"][0]["access_level"], 40);
    assert_eq!(
        branches[0]["push_access_levels"][0]["access_level_description"],
        "Maintainers"
    );
    assert_eq!(branches[1]["name"], "release/*");
    assert_eq!(branches[1]["allow_force_push"], true);
    assert_eq!(branches[1]["push_access_levels"][0]["access_level"], 30);
}

#[tokio::test]
async fn lists_carry_pagination_headers() {
    let server = start(scenario_state()).await;
    let response = server
        .get("/api/v4/runners/all?per_page=1&page=2")
        .header("PRIVATE-TOKEN", ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    let header = |name: &str| response.headers()[name].to_str().unwrap().to_owned();
    assert_eq!(header("x-total"), "4");
    assert_eq!(header("x-total-pages"), "4");
    assert_eq!(header("x-page"), "2");
    assert_eq!(header("x-per-page"), "1");
    assert_eq!(header("x-next-page"), "3");
    assert_eq!(header("x-prev-page"), "1");
    let link = header("link");
    assert!(link.contains("page=3&per_page=1>; rel=\"next\""), "{link}");
    let (_, body) = json_of(response).await;
    assert_eq!(body.as_array().unwrap().len(), 1);
    assert_eq!(body[0]["id"], 2);

    let last = server
        .get("/api/v4/runners/all?per_page=100&page=1")
        .header("PRIVATE-TOKEN", ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(last.headers()["x-next-page"], "");
    assert_eq!(last.headers()["x-total-pages"], "1");
}

#[tokio::test]
async fn health_checks_are_empty_not_found() {
    let server = start(scenario_state()).await;
    for path in ["/-/health", "/-/readiness"] {
        let response = server.get(path).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        assert!(response.bytes().await.unwrap().is_empty(), "{path}");
    }
}

#[tokio::test]
async fn registration_adds_verifiable_runner() {
    let server = start(scenario_state()).await;
    let refused = server
        .post("/api/v4/runners")
        .form(&[("token", "GR-wrong"), ("description", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);

    let (status, registered) = json_of(
        server
            .post("/api/v4/runners")
            .form(&[
                ("token", "GR1348941registration"),
                ("description", "new"),
                ("tag_list", "a,b"),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(registered["id"], 5);
    let token = registered["token"].as_str().unwrap().to_owned();

    let verified = server
        .post("/api/v4/runners/verify")
        .json(&json!({ "token": token }))
        .send()
        .await
        .unwrap();
    assert_eq!(verified.status(), StatusCode::OK);
}

#[tokio::test]
async fn request_log_records_host_and_credentials() {
    let server = start(scenario_state()).await;
    server
        .get("/api/v4/version?probe=1")
        .header("PRIVATE-TOKEN", ADMIN_TOKEN)
        .header("host", "gitlab.example.test")
        .send()
        .await
        .unwrap();
    server
        .post("/api/v4/runners/verify")
        .json(&json!({"token": "glrt-shared-runner-token"}))
        .send()
        .await
        .unwrap();

    let entries = read_request_log(&server.log).unwrap();
    assert_eq!(entries.len(), 2);
    let version = &entries[0];
    assert_eq!(version.method, "GET");
    assert_eq!(version.path, "/api/v4/version");
    assert_eq!(version.query, "probe=1");
    assert_eq!(version.host.as_deref(), Some("gitlab.example.test"));
    assert_eq!(version.credential("PRIVATE-TOKEN"), Some(ADMIN_TOKEN));
    assert_eq!(version.status, 200);
    assert_eq!(version.scheme, "http");

    let verify = &entries[1];
    assert!(verify.credentials.is_empty(), "{:?}", verify.credentials);
    assert!(verify.contains_secret("glrt-shared-runner-token"));
    assert!(!verify.contains_secret(ADMIN_TOKEN));
}

async fn start_https(
    state: State,
    names: &[&str],
) -> (
    SocketAddr,
    ci_doctor_testbed::standin::TestCertificates,
    PathBuf,
    tempfile::TempDir,
) {
    let dir = tempfile::tempdir().unwrap();
    let certificates = test_ca_and_server_cert(&dir.path().join("tls"), names).unwrap();
    let config = load_tls_config(&certificates.server_cert, &certificates.server_key).unwrap();
    let log = dir.path().join("requests.jsonl");
    let standin = Standin::with_request_log(state, &log).unwrap();
    let http = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let https = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = https.local_addr().unwrap();
    tokio::spawn(standin.serve(
        http,
        Some(TlsListener {
            listener: https,
            config,
        }),
    ));
    (address, certificates, log, dir)
}

#[tokio::test]
async fn https_serves_with_test_ca() {
    let (address, certificates, log, _dir) =
        start_https(scenario_state(), &["gitlab.example.test"]).await;
    let ca = reqwest::Certificate::from_pem(certificates.ca_pem.as_bytes()).unwrap();
    let client = client_builder()
        .tls_certs_only([ca])
        .resolve("gitlab.example.test", address)
        .build()
        .unwrap();
    let response = client
        .get(format!(
            "https://gitlab.example.test:{}/api/v4/version",
            address.port()
        ))
        .header("PRIVATE-TOKEN", ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let entries = read_request_log(&log).unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].scheme, "https");
}

#[tokio::test]
async fn https_rejects_name_not_in_certificate() {
    let (address, certificates, log, _dir) =
        start_https(scenario_state(), &["gitlab.example.test"]).await;
    let ca = reqwest::Certificate::from_pem(certificates.ca_pem.as_bytes()).unwrap();
    let client = client_builder()
        .tls_certs_only([ca])
        .resolve("other.example.test", address)
        .build()
        .unwrap();
    let result = client
        .get(format!(
            "https://other.example.test:{}/api/v4/version",
            address.port()
        ))
        .header("PRIVATE-TOKEN", ADMIN_TOKEN)
        .send()
        .await;
    assert!(
        result.is_err(),
        "a certificate for gitlab.example.test must not match other.example.test"
    );
    assert!(
        read_request_log(&log).unwrap().is_empty(),
        "no request may reach the server"
    );
}

#[tokio::test]
async fn redirect_answers_before_any_route() {
    let mut state = scenario_state();
    state.redirects = vec![ci_doctor_testbed::state::Redirect {
        from: "/api/v4/projects".to_owned(),
        to: "http://gitlab.moved.example.test/".to_owned(),
    }];
    let server = start(state).await;
    let client = client_builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let response = client
        .get(format!(
            "{}/api/v4/projects/10/jobs?scope[]=pending",
            server.base
        ))
        .header("PRIVATE-TOKEN", ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::MOVED_PERMANENTLY);
    assert_eq!(
        response.headers()["location"],
        "http://gitlab.moved.example.test/api/v4/projects/10/jobs?scope[]=pending"
    );

    // Other paths keep their usual answers.
    let version = server.get("/api/v4/version").send().await.unwrap();
    assert_eq!(version.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn verify_rejects_expired_runner_token() {
    let mut state = scenario_state();
    state.runners.push(Runner {
        token_expires_at: Some("2001-01-01T00:00:00.000Z".to_owned()),
        ..Runner::new(9, "glrt-expired-runner-token")
    });
    state.runners.push(Runner {
        token_expires_at: Some("2999-01-01T00:00:00.000Z".to_owned()),
        ..Runner::new(10, "glrt-current-runner-token")
    });
    let server = start(state).await;
    for (token, expected) in [
        ("glrt-expired-runner-token", StatusCode::FORBIDDEN),
        ("glrt-current-runner-token", StatusCode::OK),
    ] {
        let response = server
            .post("/api/v4/runners/verify")
            .json(&json!({ "token": token }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), expected, "{token}");
    }
}

#[test]
fn expired_server_certificate_ends_in_2021() {
    use ci_doctor_testbed::standin::{ServerCertOptions, test_ca_and_server_cert_with};
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject as _;

    let dir = tempfile::tempdir().unwrap();
    let options = ServerCertOptions { expired: true };
    let certificates =
        test_ca_and_server_cert_with(dir.path(), &["gitlab.example.test"], options).unwrap();
    let server = CertificateDer::from_pem_file(&certificates.server_cert).unwrap();
    let ca = CertificateDer::from_pem_slice(certificates.ca_pem.as_bytes()).unwrap();
    let mut roots = rustls::RootCertStore::empty();
    roots.add(ca).unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let verifier =
        rustls::client::WebPkiServerVerifier::builder_with_provider(roots.into(), provider)
            .build()
            .unwrap();
    use rustls::client::danger::ServerCertVerifier as _;
    let name = rustls_pki_types::ServerName::try_from("gitlab.example.test").unwrap();
    let error = verifier
        .verify_server_cert(&server, &[], &name, &[], rustls_pki_types::UnixTime::now())
        .unwrap_err();
    assert!(
        matches!(
            error,
            rustls::Error::InvalidCertificate(rustls::CertificateError::ExpiredContext { .. })
                | rustls::Error::InvalidCertificate(rustls::CertificateError::Expired)
        ),
        "{error:?}"
    );
}
