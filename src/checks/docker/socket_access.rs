//! `docker.socket-access`: ci-doctor's own user can open the Docker socket.

use crate::checks::Check;
use crate::facts::docker::DockerErrorKind;
use crate::facts::Facts;
use crate::finding::{Finding, Status};

pub struct SocketAccess;

impl Check for SocketAccess {
    fn id(&self) -> &'static str {
        "docker.socket-access"
    }

    fn summary(&self) -> &'static str {
        "a user that must use Docker can open its socket: owner, group, mode and group membership"
    }

    fn explanation(&self) -> &'static str {
        include_str!("../../../checks/docker.socket-access.md")
    }

    fn run(&self, facts: &Facts, out: &mut Vec<Finding>) {
        let host = &facts.host;
        let Some(socket) = &facts.docker.socket else {
            out.push(Finding::new(self.id(), Status::Skipped, format!("the Docker endpoint `{}` is not a Unix socket", facts.docker.endpoint)));
            return;
        };
        let path = socket.path.display();
        if !socket.exists {
            out.push(Finding::new(self.id(), Status::Skipped, format!("no socket at `{path}` (see `docker.daemon`)")));
            return;
        }

        let owner = socket.owner.clone().unwrap_or_else(|| socket.uid.to_string());
        let group = socket.group.clone().unwrap_or_else(|| socket.gid.to_string());
        let described = format!("owner `{owner}`, group `{group}`, mode {:04o}", socket.mode);
        let denied = matches!(&facts.docker.daemon, Some(Err(error)) if error.kind == DockerErrorKind::PermissionDenied);

        if !denied {
            let how = if host.is_root() {
                "as root".to_string()
            } else if host.uid == socket.uid {
                "as the socket's owner".to_string()
            } else if host.in_group(socket.gid) {
                format!("through group `{group}`")
            } else {
                "through the socket's mode".to_string()
            };
            out.push(Finding::new(self.id(), Status::Ok, format!("user `{}` can open `{path}` {how} ({described})", host.user)));
            return;
        }

        let groups: Vec<String> = host
            .groups
            .iter()
            .map(|(gid, name)| name.clone().unwrap_or_else(|| gid.to_string()))
            .collect();
        let mut finding = Finding::new(self.id(), Status::Error, format!("user `{}` may not open `{path}` ({described})", host.user))
            .effect("every `docker` command of this user fails with \"permission denied while trying to connect to the Docker daemon socket\"")
            .evidence(format!("groups of this process: {}", if groups.is_empty() { "none".to_string() } else { groups.join(", ") }));
        if socket.mode & 0o060 == 0o060 {
            finding = finding
                .help(format!("add the user to group `{group}` and log in again: `sudo usermod -aG {group} {}`; membership in `{group}` is equivalent to root on this host", host.user));
        } else {
            finding = finding.help(format!("the socket is not group-writable; restore its usual mode with `sudo chmod 660 {path}` (the daemon sets it on start)"));
        }
        out.push(finding);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::docker::{DockerError, SocketInfo};
    use crate::facts::host::HostFacts;

    fn facts(uid: u32, denied: bool) -> Facts {
        let mut facts = Facts {
            host: HostFacts { user: "alice".into(), uid, gid: 1000, groups: vec![(1000, Some("alice".into()))] },
            ..Facts::default()
        };
        facts.docker.socket = Some(SocketInfo {
            path: "/var/run/docker.sock".into(),
            exists: true,
            is_socket: true,
            uid: 0,
            gid: 998,
            owner: Some("root".into()),
            group: Some("docker".into()),
            mode: 0o660,
        });
        if denied {
            facts.docker.daemon = Some(Err(DockerError { kind: DockerErrorKind::PermissionDenied, message: "permission denied".into() }));
        }
        facts
    }

    #[test]
    fn denied_user_gets_usermod_remedy() {
        let mut out = Vec::new();
        SocketAccess.run(&facts(1000, true), &mut out);
        assert_eq!(out[0].status, Status::Error);
        assert_eq!(out[0].message, "user `alice` may not open `/var/run/docker.sock` (owner `root`, group `docker`, mode 0660)");
        assert!(out[0].help.as_deref().unwrap().contains("sudo usermod -aG docker alice"));
    }

    #[test]
    fn root_is_ok() {
        let mut out = Vec::new();
        SocketAccess.run(&facts(0, false), &mut out);
        assert_eq!(out[0].status, Status::Ok);
        assert!(out[0].message.contains("as root"), "{}", out[0].message);
    }
}
