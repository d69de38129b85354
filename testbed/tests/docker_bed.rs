//! Beds on the local Docker Engine: the stand-in and the DNS server in
//! containers, clients in other containers, and cleanup.
//!
//! Every test contacts only containers and networks it created.

use std::net::IpAddr;
use std::process::Command;

use ci_doctor_testbed::bed::{BED_LABEL, OWNER_LABEL};
use ci_doctor_testbed::state::{PersonalAccessToken, Runner, RunnerType, State};
use ci_doctor_testbed::{Base, Bed, DnsRecord, ensure_images, tag};
use serde_json::Value;

const TOKEN: &str = "glpat-docker-bed-0000001";

fn standin_state() -> State {
    State {
        personal_access_tokens: vec![PersonalAccessToken::new(1, TOKEN, &["api"])],
        runners: vec![
            Runner::new(1, "glrt-good-token"),
            Runner {
                runner_type: RunnerType::ProjectType,
                orphaned: true,
                ..Runner::new(2, "glrt-orphan-token")
            },
        ],
        revoked_runner_tokens: vec!["glrt-revoked-token".to_owned()],
        ..State::default()
    }
}

/// Runs `docker ARGS` directly, for setup and checks outside the bed.
fn docker(args: &[&str]) -> std::process::Output {
    Command::new("docker")
        .args(args)
        .output()
        .expect("the docker CLI runs")
}

fn exists(kind: &str, name: &str) -> bool {
    docker(&[kind, "inspect", name]).status.success()
}

/// Removes a container this test created outside any bed, also on panic.
struct ForeignContainer(String);

impl Drop for ForeignContainer {
    fn drop(&mut self) {
        docker(&["rm", "--force", &self.0]);
    }
}

/// Runs busybox `wget` in `client` and returns (exit status, stdout, stderr).
/// The time limit comes from `timeout`, because the `-T` option of wget in
/// Debian's busybox-static 1.35.0 crashes with SIGSEGV.
fn wget(bed: &Bed, client: &str, args: &[&str]) -> (i32, String, String) {
    let mut command = vec!["timeout", "10", "wget", "-q", "-O", "-"];
    command.extend_from_slice(args);
    let output = bed.exec(client, &command).unwrap();
    (output.status, output.stdout, output.stderr)
}

#[test]
fn verify_answers_from_container() {
    let bed = Bed::new("verify-answers-from-container").unwrap();
    bed.network("ci-net").create().unwrap();
    let gitlab = bed
        .container("gitlab")
        .image("gitlab/gitlab-ce:17.5.2-ce.0")
        .network("ci-net")
        .gitlab_standin(&standin_state())
        .start()
        .unwrap();
    bed.container("gitlab-runner")
        .image("gitlab/gitlab-runner:v17.5.3")
        .network("ci-net")
        .start()
        .unwrap();

    let verify = |token: &str| {
        wget(
            &bed,
            "gitlab-runner",
            &[
                "--header",
                "Content-Type: application/json",
                "--post-data",
                &format!(r#"{{"token":"{token}"}}"#),
                "http://gitlab/api/v4/runners/verify",
            ],
        )
    };
    let (status, body, stderr) = verify("glrt-good-token");
    assert_eq!(status, 0, "{stderr}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["id"], 1);

    let (status, _, stderr) = verify("glrt-revoked-token");
    assert_ne!(status, 0);
    assert!(stderr.contains("403 Forbidden"), "{stderr}");

    let (status, _, stderr) = verify("glrt-orphan-token");
    assert_ne!(status, 0);
    assert!(stderr.contains("422"), "{stderr}");

    let log = gitlab.request_log().unwrap();
    let statuses: Vec<u16> = log.iter().map(|entry| entry.status).collect();
    assert_eq!(statuses, vec![200, 403, 422]);
    assert!(
        log.iter()
            .all(|entry| entry.host.as_deref() == Some("gitlab")),
        "{log:?}"
    );
    assert!(log[0].contains_secret("glrt-good-token"));

    let runner_ip = bed.container_ip("gitlab-runner", "ci-net").unwrap();
    assert!(
        log[0].peer.starts_with(&format!("{runner_ip}:")),
        "{}",
        log[0].peer
    );
}

#[test]
fn standin_https_reachable_from_host() {
    let bed = Bed::new("standin-https-reachable-from-host").unwrap();
    bed.network("ci-net").create().unwrap();
    let gitlab = bed
        .container("gitlab")
        .image("gitlab/gitlab-ce:17.5.2-ce.0")
        .network("ci-net")
        .gitlab_standin(&standin_state())
        .https(&["gitlab.example.test"])
        .start()
        .unwrap();
    let address = gitlab.ip("ci-net").unwrap();
    let certificates = gitlab.tls_certificates().expect("HTTPS was requested");

    let _ = rustls::crypto::ring::default_provider().install_default();
    let ca = reqwest::Certificate::from_pem(certificates.ca_pem.as_bytes()).unwrap();
    let client = reqwest::Client::builder()
        .no_proxy()
        .tls_certs_only([ca])
        .resolve(
            "gitlab.example.test",
            std::net::SocketAddr::new(address, 443),
        )
        .build()
        .unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (version_status, body, health_status) = runtime.block_on(async {
        let response = client
            .get("https://gitlab.example.test/api/v4/version")
            .header("PRIVATE-TOKEN", TOKEN)
            .send()
            .await
            .unwrap();
        let version_status = response.status();
        let body: Value = response.json().await.unwrap();
        let health = client
            .get(format!("http://{address}/-/health"))
            .send()
            .await
            .unwrap();
        (version_status, body, health.status())
    });
    assert_eq!(version_status, 200);
    assert_eq!(body["version"], "17.5.2");
    assert_eq!(health_status, 404);

    let log = gitlab.request_log().unwrap();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0].scheme, "https");
    assert_eq!(log[0].host.as_deref(), Some("gitlab.example.test"));
    assert_eq!(log[0].credential("private-token"), Some(TOKEN));
    assert_eq!(log[1].scheme, "http");
}

#[test]
fn dns_container_resolves_invented_names() {
    let bed = Bed::new("dns-container-resolves-invented-names").unwrap();
    bed.network("ci-net").create().unwrap();
    let gitlab = bed
        .container("gitlab")
        .image("gitlab/gitlab-ce:17.5.2-ce.0")
        .network("ci-net")
        .gitlab_standin(&standin_state())
        .start()
        .unwrap();
    let gitlab_ip = gitlab.ip("ci-net").unwrap();
    let record = DnsRecord::new("gitlab.example.test", gitlab_ip).unwrap();
    let dns = bed
        .container("dns")
        .network("ci-net")
        .dns_server(&[record])
        .start()
        .unwrap();
    let dns_ip = dns.ip("ci-net").unwrap();
    bed.container("client")
        .network("ci-net")
        .dns(dns_ip)
        .start()
        .unwrap();

    let lookup = bed
        .exec("client", &["nslookup", "gitlab.example.test"])
        .unwrap();
    assert!(lookup.success(), "{lookup:?}");
    assert!(lookup.stdout.contains(&gitlab_ip.to_string()), "{lookup:?}");

    let missing = bed
        .exec("client", &["nslookup", "registry.example.test"])
        .unwrap();
    assert!(!missing.success(), "{missing:?}");

    // A DNS server without records returns NXDOMAIN for every name.
    let empty = bed
        .container("dns-empty")
        .network("ci-net")
        .dns_server(&[])
        .start()
        .unwrap();
    let empty_ip = empty.ip("ci-net").unwrap().to_string();
    let nothing = bed
        .exec("client", &["nslookup", "gitlab.example.test", &empty_ip])
        .unwrap();
    assert!(!nothing.success(), "{nothing:?}");
    assert!(nothing.stdout.contains("NXDOMAIN"), "{nothing:?}");

    let (status, body, stderr) = wget(
        &bed,
        "client",
        &[
            "--header",
            &format!("PRIVATE-TOKEN: {TOKEN}"),
            "http://gitlab.example.test/api/v4/version",
        ],
    );
    assert_eq!(status, 0, "{stderr}");
    assert!(body.contains("\"version\":\"17.5.2\""), "{body}");
    let log = gitlab.request_log().unwrap();
    assert_eq!(
        log.last().unwrap().host.as_deref(),
        Some("gitlab.example.test")
    );
}

#[test]
fn exited_container_keeps_log() {
    let bed = Bed::new("exited-container-keeps-log").unwrap();
    let dind = bed
        .container("dind")
        .image("docker:27-dind")
        .exited(1, "mount: permission denied (are you root?)")
        .start()
        .unwrap();
    let details = dind.inspect().unwrap();
    assert_eq!(details["State"]["Status"], "exited");
    assert_eq!(details["State"]["ExitCode"], 1);
    assert_eq!(details["Config"]["Image"], "docker:27-dind");
    assert!(
        dind.logs()
            .unwrap()
            .contains("mount: permission denied (are you root?)")
    );

    let created = bed
        .container("never-started")
        .created_only()
        .start()
        .unwrap();
    assert_eq!(created.inspect().unwrap()["State"]["Status"], "created");
}

#[test]
fn bed_removes_everything_on_drop() {
    let bed = Bed::new("bed-removes-everything-on-drop").unwrap();
    let bed_id = bed.id().to_owned();
    bed.network("ci-net").create().unwrap();
    bed.network("ci-internal").internal().create().unwrap();
    bed.volume("runner-config").unwrap();
    bed.image("docker:dind")
        .env("DOCKER_TLS_CERTDIR", "/certs")
        .expose("2375")
        .expose("2376")
        .build()
        .unwrap();
    let config_dir = bed.create_dir("runner").unwrap();
    bed.write_file("runner/config.toml", "concurrent = 1\n")
        .unwrap();
    let dind = bed
        .container("docker-dind")
        .image("docker:dind")
        .network_with_aliases("ci-net", &["docker"])
        .network_with_aliases("ci-internal", &["dind.internal"])
        .start()
        .unwrap();
    // Created only: a Docker Engine that itself runs with reduced
    // capabilities cannot start a privileged container, but can create one.
    let privileged = bed
        .container("docker-privileged")
        .image("docker:dind")
        .privileged()
        .created_only()
        .start()
        .unwrap();
    // A tag no other test uses, so its removal below is this bed's doing.
    let runner_image = format!(
        "gitlab/gitlab-runner:v17.5.3-testbed-{}",
        std::process::id()
    );
    let runner = bed
        .container("gitlab-runner")
        .image(&runner_image)
        .hostname("runner-host")
        .network("ci-net")
        .link("docker-dind:docker")
        .env("DOCKER_HOST", "tcp://docker:2375")
        .bind_read_only(&config_dir, "/etc/gitlab-runner")
        .docker_socket()
        .volume("runner-config", "/home/gitlab-runner")
        .volume("runner-cache", "/cache")
        .add_host(
            "gitlab.example.test",
            "192.0.2.10".parse::<IpAddr>().unwrap(),
        )
        .publish(8093)
        .restart("unless-stopped")
        .label("purpose", "runner")
        .start()
        .unwrap();

    let details = dind.inspect().unwrap();
    let env = details["Config"]["Env"].as_array().unwrap();
    assert!(
        env.iter().any(|value| value == "DOCKER_TLS_CERTDIR=/certs"),
        "{env:?}"
    );
    assert!(details["Config"]["ExposedPorts"].get("2376/tcp").is_some());
    assert!(
        privileged.inspect().unwrap()["HostConfig"]["Privileged"]
            .as_bool()
            .unwrap()
    );
    let aliases = &details["NetworkSettings"]["Networks"]["ci-internal"]["Aliases"];
    assert!(
        aliases
            .as_array()
            .unwrap()
            .iter()
            .any(|alias| alias == "dind.internal"),
        "{aliases}"
    );

    let files = bed
        .exec(
            "gitlab-runner",
            &["cat", "/etc/gitlab-runner/config.toml", "/etc/hosts"],
        )
        .unwrap();
    assert!(files.stdout.contains("concurrent = 1"), "{files:?}");
    assert!(
        files.stdout.contains("192.0.2.10\tgitlab.example.test"),
        "{files:?}"
    );
    let socket = bed
        .exec("gitlab-runner", &["test", "-S", "/var/run/docker.sock"])
        .unwrap();
    assert!(socket.success(), "the Docker socket is mounted: {socket:?}");
    let hostname = bed.exec("gitlab-runner", &["hostname"]).unwrap();
    assert_eq!(hostname.stdout.trim(), "runner-host");
    let port = runner.published_port(8093).unwrap();
    assert!(port > 0);

    let bed_dir = bed.dir().to_owned();
    drop(bed);

    for (kind, name) in [
        ("container", "docker-dind"),
        ("container", "docker-privileged"),
        ("container", "gitlab-runner"),
        ("network", "ci-net"),
        ("network", "ci-internal"),
        ("volume", "runner-config"),
        ("volume", "runner-cache"),
        ("image", "docker:dind"),
        ("image", runner_image.as_str()),
    ] {
        assert!(
            !exists(kind, name),
            "{kind} {name} is left after the bed was dropped"
        );
    }
    let filter = format!("label={BED_LABEL}={bed_id}");
    let listed = docker(&["ps", "--all", "--quiet", "--filter", &filter]);
    assert!(
        listed.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&listed.stdout)
    );
    assert!(!bed_dir.exists(), "{} is left", bed_dir.display());
}

#[test]
fn bind_outside_bed_dir_is_rejected() {
    let bed = Bed::new("bind-outside-bed-dir-is-rejected").unwrap();
    let error = bed
        .container("gitlab-runner")
        .bind(std::path::Path::new("/etc"), "/host-etc")
        .start()
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("bind mount source /etc is outside the bed directory"),
        "{error}"
    );
    assert!(
        !exists("container", "gitlab-runner"),
        "nothing is created after a rejected bind"
    );
}

#[test]
fn bed_cleans_up_after_panic() {
    let runner_image = format!("gitlab/gitlab-runner:v17.5.3-panic-{}", std::process::id());
    let image = runner_image.clone();
    let outcome = std::thread::spawn(move || {
        let bed = Bed::new("bed-cleans-up-after-panic").unwrap();
        bed.network("ci-net").create().unwrap();
        bed.container("gitlab-runner")
            .image(&image)
            .network("ci-net")
            .start()
            .unwrap();
        panic!("the scenario fails");
    })
    .join();
    assert!(outcome.is_err(), "the thread must have panicked");
    assert!(!exists("container", "gitlab-runner"));
    assert!(!exists("network", "ci-net"));
    assert!(!exists("image", &runner_image));
}

#[test]
fn bed_refuses_name_of_unlabelled_container() {
    ensure_images().unwrap();
    let name = format!("ci-doctor-testbed-foreign-{}", std::process::id());
    let created = docker(&[
        "create",
        "--name",
        &name,
        ci_doctor_testbed::images::BUSYBOX_IMAGE,
    ]);
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let _foreign = ForeignContainer(name.clone());

    let bed = Bed::new("bed-refuses-name-of-unlabelled-container").unwrap();
    let error = bed.container(&name).start().unwrap_err().to_string();
    assert!(
        error.contains(&format!(
            "container {name} exists and was not created by the ci-doctor test bed"
        )),
        "{error}"
    );
    assert!(error.contains(&format!("docker rm -f {name}")), "{error}");
    drop(bed);
    assert!(
        exists("container", &name),
        "the bed must not remove a container it did not create"
    );
}

#[test]
fn bed_removes_leftovers_of_dead_process() {
    ensure_images().unwrap();
    let name = format!("ci-doctor-testbed-leftover-{}", std::process::id());
    let created = docker(&[
        "create",
        "--name",
        &name,
        "--label",
        &format!("{BED_LABEL}=dead-bed"),
        "--label",
        &format!("{OWNER_LABEL}=some-earlier-boot/1/1"),
        ci_doctor_testbed::images::BUSYBOX_IMAGE,
    ]);
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let _guard = ForeignContainer(name.clone());

    let bed = Bed::new("bed-removes-leftovers-of-dead-process").unwrap();
    assert!(
        !exists("container", &name),
        "the leftover of a dead process must be removed"
    );
    drop(bed);
}

#[test]
fn tag_refuses_image_not_built_by_bed() {
    ensure_images().unwrap();
    let image_ref = format!("ci-doctor-testbed-foreign/image:{}", std::process::id());
    let mut import = Command::new("docker")
        .args(["import", "-", &image_ref])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    {
        // An empty tar archive: two zero blocks.
        use std::io::Write as _;
        import
            .stdin
            .take()
            .unwrap()
            .write_all(&[0u8; 1024])
            .unwrap();
    }
    assert!(import.wait().unwrap().success());

    let error = tag(&image_ref, Base::Busybox).unwrap_err().to_string();
    let remaining = docker(&["image", "inspect", "--format", "{{.Id}}", &image_ref]);
    docker(&["image", "rm", &image_ref]);
    assert!(
        error.contains("was not built by the ci-doctor test bed"),
        "{error}"
    );
    assert!(
        remaining.status.success(),
        "the foreign image must keep its tag"
    );
}
