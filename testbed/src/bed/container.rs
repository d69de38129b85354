//! Containers of a bed: the builder that creates them and a handle to use
//! them afterwards.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use super::{Bed, Created};
use crate::dns::DnsRecord;
use crate::docker::{docker, docker_output, inspect};
use crate::images::{self, Base};
use crate::standin::{
    LoggedRequest, REQUEST_LOG_FILE_NAME, ServerCertOptions, TestCertificates, read_request_log,
    test_ca_and_server_cert_with,
};
use crate::state::State;

/// Command of containers that only need to exist and run: sleep for 2^31 - 1
/// seconds (about 68 years), the largest signed 32-bit value.
const DEFAULT_COMMAND: &[&str] = &["sleep", "2147483647"];

/// Socket of a local Docker Engine, the one bind source allowed outside the
/// bed directory.
const DOCKER_SOCKET: &str = "/var/run/docker.sock";

/// How long a stand-in or DNS container may take to bind its ports.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Directory inside stand-in and DNS containers that is bind-mounted from
/// the bed directory: state file, request log, TLS files, ready marker.
const STANDIN_DIR: &str = "/standin";

/// State that `start()` leaves the container in.
#[derive(Debug, Clone)]
enum Lifecycle {
    Running,
    /// `docker create` only: status `created`.
    Created,
    /// Started with a command that writes `log` to stderr and exits with `code`.
    Exited {
        code: i32,
        log: String,
    },
}

/// Program the container runs.
#[derive(Debug, Clone)]
enum Role {
    Plain,
    Standin {
        state: Box<State>,
        https_names: Vec<String>,
        certificate: ServerCertOptions,
    },
    Dns {
        records: Vec<DnsRecord>,
    },
}

struct NetworkAttachment {
    name: String,
    aliases: Vec<String>,
}

struct Bind {
    host: PathBuf,
    container: String,
    read_only: bool,
}

/// Describes a container; [`ContainerBuilder::start`] creates it.
#[must_use = "call start() to create the container"]
pub struct ContainerBuilder<'b> {
    bed: &'b Bed,
    name: String,
    image: Option<(String, Base)>,
    hostname: Option<String>,
    networks: Vec<NetworkAttachment>,
    links: Vec<String>,
    ports: Vec<String>,
    env: Vec<(String, String)>,
    binds: Vec<Bind>,
    volumes: Vec<(String, String)>,
    dns: Vec<IpAddr>,
    extra_hosts: Vec<(String, IpAddr)>,
    command: Option<Vec<String>>,
    entrypoint: Option<String>,
    privileged: bool,
    pid_host: bool,
    cap_add: Vec<String>,
    security_opts: Vec<String>,
    restart: Option<String>,
    labels: Vec<(String, String)>,
    lifecycle: Lifecycle,
    role: Role,
}

impl<'b> ContainerBuilder<'b> {
    pub(super) fn new(bed: &'b Bed, name: &str) -> ContainerBuilder<'b> {
        ContainerBuilder {
            bed,
            name: name.to_owned(),
            image: None,
            hostname: None,
            networks: Vec::new(),
            links: Vec::new(),
            ports: Vec::new(),
            env: Vec::new(),
            binds: Vec::new(),
            volumes: Vec::new(),
            dns: Vec::new(),
            extra_hosts: Vec::new(),
            command: None,
            entrypoint: None,
            privileged: false,
            pid_host: false,
            cap_add: Vec::new(),
            security_opts: Vec::new(),
            restart: None,
            labels: Vec::new(),
            lifecycle: Lifecycle::Running,
            role: Role::Plain,
        }
    }

    /// Sets the image name the container shows, tagged from the busybox base (or from
    /// the standin base for [`Self::gitlab_standin`] and [`Self::dns_server`]).
    /// An image built with [`Bed::image`] is used as it is. Without this the
    /// container runs the base image itself.
    pub fn image(mut self, image_ref: &str) -> Self {
        let base = self.image.as_ref().map_or(Base::Busybox, |(_, base)| *base);
        self.image = Some((image_ref.to_owned(), base));
        self
    }

    /// Sets the image name, tagged from an explicit base.
    pub fn image_from(mut self, image_ref: &str, base: Base) -> Self {
        self.image = Some((image_ref.to_owned(), base));
        self
    }

    pub fn hostname(mut self, hostname: &str) -> Self {
        self.hostname = Some(hostname.to_owned());
        self
    }

    /// Attaches a network. The first one is given to `docker create`, later
    /// ones are added with `docker network connect` before the start.
    pub fn network(self, network: &str) -> Self {
        self.network_with_aliases(network, &[])
    }

    /// Attaches a network with DNS aliases on it (`--network-alias`).
    pub fn network_with_aliases(mut self, network: &str, aliases: &[&str]) -> Self {
        self.networks.push(NetworkAttachment {
            name: network.to_owned(),
            aliases: aliases.iter().map(|alias| (*alias).to_owned()).collect(),
        });
        self
    }

    /// Adds a legacy link, for example `link("gitlab:gitlab.example.test")`.
    pub fn link(mut self, link: &str) -> Self {
        self.links.push(link.to_owned());
        self
    }

    /// Publishes a TCP port on 127.0.0.1 with a host port chosen by Docker,
    /// which [`Container::published_port`] returns.
    pub fn publish(self, container_port: u16) -> Self {
        self.publish_spec(&format!("127.0.0.1::{container_port}"))
    }

    /// Publishes a TCP port on a fixed host address and port.
    pub fn publish_on(self, host_ip: IpAddr, host_port: u16, container_port: u16) -> Self {
        let host_ip = match host_ip {
            IpAddr::V4(ip) => ip.to_string(),
            IpAddr::V6(ip) => format!("[{ip}]"),
        };
        self.publish_spec(&format!("{host_ip}:{host_port}:{container_port}"))
    }

    /// Publishes with any `--publish` value, for example `8080:80/tcp`. Note
    /// that a value without a host address listens on every host address.
    pub fn publish_spec(mut self, spec: &str) -> Self {
        self.ports.push(spec.to_owned());
        self
    }

    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Bind-mounts a host path, which must be below [`Bed::dir`] or be the
    /// Docker Engine's socket ([`Self::docker_socket`]).
    pub fn bind(mut self, host: &Path, container: &str) -> Self {
        self.binds.push(Bind {
            host: host.to_owned(),
            container: container.to_owned(),
            read_only: false,
        });
        self
    }

    /// Bind-mounts a host path below [`Bed::dir`] read-only.
    pub fn bind_read_only(mut self, host: &Path, container: &str) -> Self {
        self.binds.push(Bind {
            host: host.to_owned(),
            container: container.to_owned(),
            read_only: true,
        });
        self
    }

    /// Bind-mounts the Docker Engine's socket `/var/run/docker.sock` at the
    /// same path, as runner setups with the docker executor do. This assumes
    /// the engine is local and listens there (the default without `DOCKER_HOST`).
    pub fn docker_socket(self) -> Self {
        self.bind(Path::new(DOCKER_SOCKET), DOCKER_SOCKET)
    }

    /// Mounts a named volume, creating it in the bed unless it already was.
    pub fn volume(mut self, volume: &str, container: &str) -> Self {
        self.volumes.push((volume.to_owned(), container.to_owned()));
        self
    }

    /// Adds `--dns`: the container's resolver (or Docker's embedded DNS on a
    /// user-defined network) sends its queries to this server.
    pub fn dns(mut self, server: IpAddr) -> Self {
        self.dns.push(server);
        self
    }

    /// Adds `--add-host NAME:IP` (an `/etc/hosts` entry).
    pub fn add_host(mut self, name: &str, ip: IpAddr) -> Self {
        self.extra_hosts.push((name.to_owned(), ip));
        self
    }

    /// Command to run instead of `sleep 2147483647`.
    pub fn command(mut self, command: &[&str]) -> Self {
        self.command = Some(command.iter().map(|part| (*part).to_owned()).collect());
        self
    }

    /// Overrides the image's entrypoint with one executable.
    pub fn entrypoint(mut self, entrypoint: &str) -> Self {
        self.entrypoint = Some(entrypoint.to_owned());
        self
    }

    pub fn privileged(mut self) -> Self {
        self.privileged = true;
        self
    }

    /// Shares the host's PID namespace (`--pid host`), so that the container
    /// sees the host's processes and their `/proc/<pid>/ns` files.
    pub fn pid_host(mut self) -> Self {
        self.pid_host = true;
        self
    }

    /// Adds a capability (`--cap-add`), for example `SYS_ADMIN`.
    pub fn cap_add(mut self, capability: &str) -> Self {
        self.cap_add.push(capability.to_owned());
        self
    }

    /// Adds a security option (`--security-opt`), for example
    /// `apparmor=unconfined`.
    pub fn security_opt(mut self, option: &str) -> Self {
        self.security_opts.push(option.to_owned());
        self
    }

    /// Restart policy, for example `always` or `on-failure:3`.
    pub fn restart(mut self, policy: &str) -> Self {
        self.restart = Some(policy.to_owned());
        self
    }

    pub fn label(mut self, key: &str, value: &str) -> Self {
        self.labels.push((key.to_owned(), value.to_owned()));
        self
    }

    /// Creates the container without starting it (status `created`).
    pub fn created_only(mut self) -> Self {
        self.lifecycle = Lifecycle::Created;
        self
    }

    /// Runs the container once: it writes `log` to stderr (so `docker logs`
    /// shows it) and exits with `code`, for example
    /// `exited(1, "mount: permission denied (are you root?)")`.
    pub fn exited(mut self, code: i32, log: &str) -> Self {
        self.lifecycle = Lifecycle::Exited {
            code,
            log: log.to_owned(),
        };
        self
    }

    /// Runs the stand-in GitLab service with `state` on container port 80.
    /// The state file and the request log live in the bed directory.
    pub fn gitlab_standin(mut self, state: &State) -> Self {
        self.role = Role::Standin {
            state: Box::new(state.clone()),
            https_names: Vec::new(),
            certificate: ServerCertOptions::default(),
        };
        self.use_standin_base();
        self
    }

    /// Also serves HTTPS on container port 443, with a certificate for
    /// `names` signed by a fresh test CA ([`Container::tls_certificates`]).
    /// Call after [`Self::gitlab_standin`].
    pub fn https(mut self, names: &[&str]) -> Self {
        if let Role::Standin { https_names, .. } = &mut self.role {
            *https_names = names.iter().map(|name| (*name).to_owned()).collect();
        }
        self
    }

    /// Like [`Self::https`], with a server certificate shaped by `options`
    /// (for example an expired one).
    pub fn https_with(mut self, names: &[&str], options: ServerCertOptions) -> Self {
        self = self.https(names);
        if let Role::Standin { certificate, .. } = &mut self.role {
            *certificate = options;
        }
        self
    }

    /// Runs the test DNS server on port 53 (UDP and TCP) with `records`.
    pub fn dns_server(mut self, records: &[DnsRecord]) -> Self {
        self.role = Role::Dns {
            records: records.to_vec(),
        };
        self.use_standin_base();
        self
    }

    fn use_standin_base(&mut self) {
        let image_ref = self.image.take().map_or_else(
            || images::STANDIN_IMAGE.to_owned(),
            |(image_ref, _)| image_ref,
        );
        self.image = Some((image_ref, Base::Standin));
    }

    /// Creates the container, attaches its networks and brings it to the
    /// requested state. A stand-in or DNS container is started and waited for
    /// until it listens. The container is recorded in the bed as soon as it
    /// exists, so a failure later on still removes it on drop.
    pub fn start(self) -> anyhow::Result<Container> {
        let bed = self.bed;
        bed.ensure_name_free("container", &self.name)?;
        self.check_bind_sources()?;

        let (image_ref, base) = self
            .image
            .clone()
            .unwrap_or_else(|| (Base::Busybox.image_ref().to_owned(), Base::Busybox));
        if images::tag(&image_ref, base)? {
            bed.record(Created::Tag(image_ref.clone()));
        }
        for (volume, _) in &self.volumes {
            let already = bed
                .created_by_bed(|object| matches!(object, Created::Volume(name) if name == volume));
            if !already {
                bed.volume(volume)?;
            }
        }
        let (files, role_command) = self.prepare_role()?;
        let args = self.create_args(&image_ref, files.as_ref(), role_command);
        docker(&args)?;
        bed.record(Created::Container(self.name.clone()));

        for network in self.networks.iter().skip(1) {
            let mut connect = vec!["network".to_owned(), "connect".to_owned()];
            for alias in &network.aliases {
                connect.push("--alias".to_owned());
                connect.push(alias.clone());
            }
            connect.push(network.name.clone());
            connect.push(self.name.clone());
            docker(&connect)?;
        }

        let container = Container {
            name: self.name.clone(),
            files,
        };
        match &self.lifecycle {
            Lifecycle::Created => {}
            Lifecycle::Running => {
                docker(&["start", self.name.as_str()])?;
                if let Some(files) = &container.files {
                    container.wait_ready(&files.dir.join("ready"))?;
                }
            }
            Lifecycle::Exited { code, .. } => {
                docker(&["start", self.name.as_str()])?;
                let status = docker(&["wait", self.name.as_str()])?;
                if status.trim() != code.to_string() {
                    bail!(
                        "container {} exited with status {status}, expected {code}",
                        self.name
                    );
                }
            }
        }
        Ok(container)
    }

    /// Fails unless every bind mount source is below the bed directory or is
    /// the Docker Engine's socket.
    fn check_bind_sources(&self) -> anyhow::Result<()> {
        let bed_dir = self
            .bed
            .dir()
            .canonicalize()
            .context("failed to resolve the bed directory")?;
        let docker_socket = Path::new(DOCKER_SOCKET).canonicalize().ok();
        for bind in &self.binds {
            let host = bind.host.canonicalize().with_context(|| {
                format!("bind mount source {} does not exist", bind.host.display())
            })?;
            if !host.starts_with(&bed_dir) && Some(&host) != docker_socket.as_ref() {
                bail!(
                    "bind mount source {} is outside the bed directory {}; create it with \
                     Bed::create_dir, or use docker_socket() for the Docker Engine's socket",
                    bind.host.display(),
                    bed_dir.display()
                );
            }
        }
        Ok(())
    }

    /// Writes the files of a stand-in or DNS container into the bed directory
    /// and returns them with the command that runs the role.
    fn prepare_role(&self) -> anyhow::Result<(Option<StandinFiles>, Option<Vec<String>>)> {
        let role_dir = || -> anyhow::Result<PathBuf> {
            let dir = self.bed.create_dir(&format!("containers/{}", self.name))?;
            let _ = std::fs::remove_file(dir.join("ready"));
            Ok(dir)
        };
        match &self.role {
            Role::Plain => Ok((None, None)),
            Role::Standin {
                state,
                https_names,
                certificate,
            } => {
                let dir = role_dir()?;
                state.save(&dir.join("state.json"))?;
                let mut command: Vec<String> = [
                    "gitlab-standin",
                    "serve",
                    "--state",
                    "/standin/state.json",
                    "--listen",
                    "0.0.0.0:80",
                    "--ready-file",
                    "/standin/ready",
                ]
                .map(str::to_owned)
                .to_vec();
                let mut tls = None;
                if !https_names.is_empty() {
                    let names: Vec<&str> = https_names.iter().map(String::as_str).collect();
                    tls = Some(test_ca_and_server_cert_with(
                        &dir.join("tls"),
                        &names,
                        *certificate,
                    )?);
                    command.extend(
                        [
                            "--tls-cert",
                            "/standin/tls/server.pem",
                            "--tls-key",
                            "/standin/tls/server-key.pem",
                            "--tls-listen",
                            "0.0.0.0:443",
                        ]
                        .map(str::to_owned),
                    );
                }
                Ok((Some(StandinFiles { dir, tls }), Some(command)))
            }
            Role::Dns { records } => {
                let dir = role_dir()?;
                let mut command: Vec<String> = [
                    "gitlab-standin",
                    "dns",
                    "--listen",
                    "0.0.0.0:53",
                    "--ready-file",
                    "/standin/ready",
                ]
                .map(str::to_owned)
                .to_vec();
                for record in records {
                    command.push("--record".to_owned());
                    command.push(record.to_string());
                }
                Ok((Some(StandinFiles { dir, tls: None }), Some(command)))
            }
        }
    }

    fn create_args(
        &self,
        image_ref: &str,
        files: Option<&StandinFiles>,
        role_command: Option<Vec<String>>,
    ) -> Vec<String> {
        let mut args = vec!["create".to_owned(), "--name".to_owned(), self.name.clone()];
        args.extend(self.bed.label_args());
        let mut push = |flag: &str, value: String| {
            args.push(flag.to_owned());
            args.push(value);
        };
        for (key, value) in &self.labels {
            push("--label", format!("{key}={value}"));
        }
        if let Some(hostname) = &self.hostname {
            push("--hostname", hostname.clone());
        }
        if let Some(first) = self.networks.first() {
            push("--network", first.name.clone());
            for alias in &first.aliases {
                push("--network-alias", alias.clone());
            }
        }
        for link in &self.links {
            push("--link", link.clone());
        }
        for port in &self.ports {
            push("--publish", port.clone());
        }
        for (key, value) in &self.env {
            push("--env", format!("{key}={value}"));
        }
        for bind in &self.binds {
            let mode = if bind.read_only { ":ro" } else { "" };
            push(
                "--volume",
                format!("{}:{}{mode}", bind.host.display(), bind.container),
            );
        }
        if let Some(files) = files {
            push("--volume", format!("{}:{STANDIN_DIR}", files.dir.display()));
        }
        for (volume, path) in &self.volumes {
            push("--volume", format!("{volume}:{path}"));
        }
        for server in &self.dns {
            push("--dns", server.to_string());
        }
        for (name, ip) in &self.extra_hosts {
            push("--add-host", format!("{name}:{ip}"));
        }
        if let Some(policy) = &self.restart {
            push("--restart", policy.clone());
        }
        if let Some(entrypoint) = &self.entrypoint {
            push("--entrypoint", entrypoint.clone());
        }
        if self.privileged {
            args.push("--privileged".to_owned());
        }
        if self.pid_host {
            args.push("--pid=host".to_owned());
        }
        for capability in &self.cap_add {
            args.push(format!("--cap-add={capability}"));
        }
        for option in &self.security_opts {
            args.push(format!("--security-opt={option}"));
        }
        args.push(image_ref.to_owned());

        let command = match &self.lifecycle {
            Lifecycle::Exited { code, log } => vec![
                "sh".to_owned(),
                "-c".to_owned(),
                format!("printf '%s\\n' {} >&2; exit {code}", shell_quote(log)),
            ],
            _ => self.command.clone().or(role_command).unwrap_or_else(|| {
                DEFAULT_COMMAND
                    .iter()
                    .map(|part| (*part).to_owned())
                    .collect()
            }),
        };
        args.extend(command);
        args
    }
}

/// Quotes a string for `sh` with single quotes.
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Files of a stand-in or DNS container in the bed directory.
#[derive(Debug, Clone)]
struct StandinFiles {
    /// Host directory mounted at `/standin`.
    dir: PathBuf,
    tls: Option<TestCertificates>,
}

/// Output of [`Container::exec`].
#[derive(Debug, Clone)]
pub struct ExecOutput {
    /// Exit status of the command (`-1` if it was killed by a signal).
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl ExecOutput {
    pub fn success(&self) -> bool {
        self.status == 0
    }
}

/// A container created by a bed. The handle does not own the container: the
/// bed removes it on drop.
#[derive(Debug, Clone)]
pub struct Container {
    name: String,
    files: Option<StandinFiles>,
}

impl Container {
    /// Returns a handle to an existing container, by name.
    pub(super) fn existing(name: &str) -> Container {
        Container {
            name: name.to_owned(),
            files: None,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Returns `docker inspect` output for the container.
    pub fn inspect(&self) -> anyhow::Result<serde_json::Value> {
        inspect("container", &self.name)?
            .with_context(|| format!("container {} does not exist", self.name))
    }

    /// Returns the container's IPv4 address on `network`.
    pub fn ip(&self, network: &str) -> anyhow::Result<IpAddr> {
        let details = self.inspect()?;
        let address = details["NetworkSettings"]["Networks"][network]["IPAddress"]
            .as_str()
            .unwrap_or_default();
        if address.is_empty() {
            bail!(
                "container {} has no address on network {network}: it is not attached to it or not running",
                self.name
            );
        }
        address
            .parse()
            .with_context(|| format!("invalid address {address:?} of container {}", self.name))
    }

    /// Host port that Docker published for a TCP `container_port`.
    pub fn published_port(&self, container_port: u16) -> anyhow::Result<u16> {
        let output = docker(&["port", self.name.as_str(), &format!("{container_port}/tcp")])?;
        let first = output.lines().next().with_context(|| {
            format!("container {} publishes no port {container_port}", self.name)
        })?;
        let port = first.rsplit(':').next().unwrap_or_default();
        port.parse()
            .with_context(|| format!("unexpected `docker port` output {first:?}"))
    }

    /// Runs `command` in the running container and returns its output. A
    /// non-zero exit status is not an error: check [`ExecOutput::status`].
    pub fn exec(&self, command: &[&str]) -> anyhow::Result<ExecOutput> {
        let mut args = vec!["exec", self.name.as_str()];
        args.extend_from_slice(command);
        let output = docker_output(&args)?;
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        // Failures of `docker exec` itself, as opposed to the command's.
        if stderr.contains("Error response from daemon")
            || stderr.contains("OCI runtime exec failed")
        {
            bail!("`docker {}` failed: {}", args.join(" "), stderr.trim());
        }
        Ok(ExecOutput {
            status: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr,
        })
    }

    /// Waits until the container stops and returns its exit status.
    pub fn wait(&self) -> anyhow::Result<i64> {
        let status = docker(&["wait", self.name.as_str()])?;
        status
            .trim()
            .parse()
            .with_context(|| format!("`docker wait {}` printed {status:?}", self.name))
    }

    /// Returns what the container wrote to stdout and to stderr, apart.
    pub fn output(&self) -> anyhow::Result<(String, String)> {
        let output = docker_output(&["logs", self.name.as_str()])?;
        if !output.status.success() {
            bail!(
                "`docker logs {}` failed: {}",
                self.name,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok((
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        ))
    }

    /// Returns what the container wrote to stdout, then to stderr.
    pub fn logs(&self) -> anyhow::Result<String> {
        let output = docker_output(&["logs", self.name.as_str()])?;
        if !output.status.success() {
            bail!(
                "`docker logs {}` failed: {}",
                self.name,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }

    /// Stops the container (`docker stop` with a one second grace period).
    pub fn stop(&self) -> anyhow::Result<()> {
        docker(&["stop", "--time", "1", self.name.as_str()])?;
        Ok(())
    }

    /// Host path of the stand-in's request log, for a stand-in container.
    pub fn request_log_path(&self) -> Option<PathBuf> {
        self.files
            .as_ref()
            .filter(|files| files.dir.join("state.json").exists())
            .map(|files| files.dir.join(REQUEST_LOG_FILE_NAME))
    }

    /// Reads the stand-in's request log.
    pub fn request_log(&self) -> anyhow::Result<Vec<LoggedRequest>> {
        let path = self
            .request_log_path()
            .with_context(|| format!("container {} is not a stand-in GitLab", self.name))?;
        read_request_log(&path)
    }

    /// Host path of the stand-in's state file, for a stand-in container.
    pub fn state_path(&self) -> Option<PathBuf> {
        self.request_log_path()
            .and_then(|log| log.parent().map(|dir| dir.join("state.json")))
    }

    /// Test CA and server certificate of a stand-in started with HTTPS.
    pub fn tls_certificates(&self) -> Option<&TestCertificates> {
        self.files.as_ref().and_then(|files| files.tls.as_ref())
    }

    /// Waits until the role's ready file exists, failing early with the
    /// container's log when the container stops.
    fn wait_ready(&self, ready_file: &Path) -> anyhow::Result<()> {
        let started = Instant::now();
        let mut checks = 0u32;
        while !ready_file.exists() {
            checks += 1;
            if checks.is_multiple_of(10) {
                let running = self.inspect()?["State"]["Running"].as_bool() == Some(true);
                if !running {
                    bail!(
                        "container {} stopped before it was ready; its log:\n{}",
                        self.name,
                        self.logs().unwrap_or_default()
                    );
                }
            }
            if started.elapsed() > READY_TIMEOUT {
                bail!(
                    "container {} was not ready after {READY_TIMEOUT:?}; its log:\n{}",
                    self.name,
                    self.logs().unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }
}
