//! `docker.daemon`: the Docker Engine answers from this host.

use crate::checks::Check;
use crate::facts::docker::DockerErrorKind;
use crate::facts::Facts;
use crate::finding::{Finding, Status};

pub struct Daemon;

impl Check for Daemon {
    fn id(&self) -> &'static str {
        "docker.daemon"
    }

    fn summary(&self) -> &'static str {
        "the Docker Engine answers from this host, and which version it runs"
    }

    fn explanation(&self) -> &'static str {
        include_str!("../../../checks/docker.daemon.md")
    }

    fn run(&self, facts: &Facts, out: &mut Vec<Finding>) {
        let endpoint = &facts.docker.endpoint;
        let source = if facts.docker.endpoint_from_env { "from `DOCKER_HOST`" } else { "the default endpoint" };

        let error = match &facts.docker.daemon {
            None => {
                out.push(Finding::new(self.id(), Status::Skipped, "Docker was not contacted"));
                return;
            }
            Some(Ok(info)) => {
                let mut message = format!("Docker Engine {} (API {}) answers at `{endpoint}`", info.server_version, info.api_version);
                if let Some(ncpu) = info.ncpu {
                    message.push_str(&format!(", {ncpu} CPUs"));
                }
                out.push(Finding::new(self.id(), Status::Ok, message).evidence(format!("endpoint: {source}")));
                return;
            }
            Some(Err(error)) => error,
        };

        if let Some(socket) = facts.docker.socket.as_ref().filter(|socket| socket.exists && !socket.is_socket) {
            out.push(
                Finding::new(self.id(), Status::Error, format!("`{}` ({source}) is not a socket but a file or directory", socket.path.display()))
                    .effect("no Docker daemon listens there; runners that use this path cannot start jobs")
                    .evidence(error.message.clone())
                    .help("remove the stray file and restart Docker (`sudo systemctl restart docker`), which creates the socket; or set `DOCKER_HOST` to the real socket"),
            );
            return;
        }
        let finding = match error.kind {
            DockerErrorKind::InvalidEndpoint => Finding::new(self.id(), Status::Error, format!("Docker endpoint `{endpoint}` ({source}) is not usable"))
                .effect("ci-doctor cannot inspect containers, so runner containers and GitLab containers are not diagnosed")
                .help("set `DOCKER_HOST` to `unix:///var/run/docker.sock` or `tcp://HOST:PORT`, or unset it"),
            DockerErrorKind::SocketMissing => Finding::new(self.id(), Status::Error, format!("no Docker socket at `{endpoint}` ({source})"))
                .effect("the Docker Engine is not running here, or listens elsewhere; runners that use this socket cannot start jobs")
                .help("start the daemon (`sudo systemctl start docker`), or set `DOCKER_HOST` to where it listens"),
            DockerErrorKind::ConnectionRefused => Finding::new(self.id(), Status::Error, format!("nothing answers at `{endpoint}`: the Docker daemon is not running"))
                .effect("runners that use this daemon fail every job in \"Preparation\"")
                .help("start the daemon: `sudo systemctl start docker`, then read `journalctl -u docker` if it stops again"),
            DockerErrorKind::PermissionDenied => {
                out.push(Finding::new(self.id(), Status::Skipped, format!("cannot tell whether Docker runs: this user may not open `{endpoint}`"))
                    .evidence("see `docker.socket-access`"));
                return;
            }
            DockerErrorKind::Timeout => Finding::new(self.id(), Status::Error, format!("no answer from Docker at `{endpoint}` within {} s", facts.settings.timeout_secs))
                .effect("a daemon this slow makes jobs time out in \"Preparation\"")
                .help("check the daemon's health (`journalctl -u docker`, disk space, load), or raise `--timeout`"),
            DockerErrorKind::Other => Finding::new(self.id(), Status::Error, format!("Docker at `{endpoint}` failed to answer"))
                .help("run `docker info` to see the daemon's own error"),
        };
        out.push(finding.evidence(error.message.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::docker::{DaemonInfo, DockerError};

    fn run(facts: &Facts) -> Vec<Finding> {
        let mut out = Vec::new();
        Daemon.run(facts, &mut out);
        out
    }

    #[test]
    fn answering_daemon_is_ok() {
        let mut facts = Facts::default();
        facts.docker.endpoint = "unix:///var/run/docker.sock".into();
        facts.docker.daemon = Some(Ok(DaemonInfo { server_version: "27.3.1".into(), api_version: "1.47".into(), ncpu: Some(4), ..Default::default() }));
        let findings = run(&facts);
        assert_eq!(findings[0].status, Status::Ok);
        assert_eq!(findings[0].message, "Docker Engine 27.3.1 (API 1.47) answers at `unix:///var/run/docker.sock`, 4 CPUs");
    }

    #[test]
    fn refused_connection_is_an_error_saying_the_daemon_is_down() {
        let mut facts = Facts::default();
        facts.docker.endpoint = "unix:///var/run/docker.sock".into();
        facts.docker.daemon = Some(Err(DockerError { kind: DockerErrorKind::ConnectionRefused, message: "connection refused".into() }));
        let findings = run(&facts);
        assert_eq!(findings[0].status, Status::Error);
        assert!(findings[0].message.contains("not running"), "{}", findings[0].message);
    }

    #[test]
    fn permission_problem_is_left_to_socket_access() {
        let mut facts = Facts::default();
        facts.docker.daemon = Some(Err(DockerError { kind: DockerErrorKind::PermissionDenied, message: "permission denied".into() }));
        assert_eq!(run(&facts)[0].status, Status::Skipped);
    }
}
