//! `docker.socket-access`: the users that must use Docker can open its socket: ci-doctor's own
//! user, and the user that shell-executor jobs run as.

use crate::checks::Check;
use crate::facts::docker::DockerErrorKind;
use crate::facts::host::ShellUser;
use crate::facts::Facts;
use crate::finding::{Finding, Status, Subject};
use crate::fix::Fix;

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
        own_user(self.id(), facts, out);
        for user in &facts.shell_users {
            for entry in facts.entries(user.runner).iter().filter(|entry| entry.executor() == Some("shell")) {
                let subject = Subject { runner: user.runner, entry: Some(entry.index) };
                out.push(shell_user(self.id(), user, &entry.label()).subject(subject));
            }
        }
    }
}

/// ci-doctor's own user, which talks to the daemon for the diagnosis.
fn own_user(id: &'static str, facts: &Facts, out: &mut Vec<Finding>) {
    {
        let host = &facts.host;
        let Some(socket) = &facts.docker.socket else {
            out.push(Finding::new(id, Status::Skipped, format!("the Docker endpoint `{}` is not a Unix socket", facts.docker.endpoint)));
            return;
        };
        let path = socket.path.display();
        if !socket.exists {
            out.push(Finding::new(id, Status::Skipped, format!("no socket at `{path}` (see `docker.daemon`)")));
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
            out.push(Finding::new(id, Status::Ok, format!("user `{}` can open `{path}` {how} ({described})", host.user)));
            return;
        }

        let groups: Vec<String> = host
            .groups
            .iter()
            .map(|(gid, name)| name.clone().unwrap_or_else(|| gid.to_string()))
            .collect();
        let mut finding = Finding::new(id, Status::Error, format!("user `{}` may not open `{path}` ({described})", host.user))
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

/// Judges the user that shell jobs of one runner run as.
fn shell_user(id: &'static str, user: &ShellUser, runner: &str) -> Finding {
    let name = &user.name;
    let Some(socket) = user.socket.as_ref().filter(|socket| socket.exists) else {
        return Finding::new(id, Status::Skipped, format!("no Docker socket at `/var/run/docker.sock`, so shell jobs of runner `{runner}` cannot use Docker (see `docker.daemon`)"));
    };
    let Some(account) = &user.account else {
        return Finding::new(id, Status::Error, format!("runner `{runner}` uses the shell executor with user `{name}` ({}), but no such user exists on this host", user.source))
            .effect("every job fails before its script starts")
            .help(format!("create the user (`sudo useradd --create-home {name}`) or fix the `--user` of the runner's service"));
    };
    let path = socket.path.display();
    let group = socket.group.clone().unwrap_or_else(|| socket.gid.to_string());
    let described = format!("owner `{}`, group `{group}` (gid {}), mode {:04o}", socket.owner.clone().unwrap_or_else(|| socket.uid.to_string()), socket.gid, socket.mode);
    if account.uid == 0 {
        return Finding::new(id, Status::Ok, format!("shell jobs of runner `{runner}` run as root, which can open `{path}`"));
    }

    let in_group_now = account.in_group(socket.gid);
    // Without `su`, jobs inherit the running process's groups, fixed when it started.
    let process_lacks_group = match &user.process {
        Some(process) if !user.through_su => process.gid != socket.gid && !process.groups.contains(&socket.gid),
        _ => false,
    };
    let group_usable = socket.mode & 0o060 == 0o060;
    if (account.uid == socket.uid && socket.mode & 0o600 == 0o600) || socket.mode & 0o006 == 0o006 || (in_group_now && group_usable && !process_lacks_group) {
        return Finding::new(id, Status::Ok, format!("shell jobs of runner `{runner}` run as `{name}`, which can open `{path}` ({described})"));
    }

    let service = user.service.clone().unwrap_or_else(|| "gitlab-runner".to_string());
    let restart = format!("sudo systemctl restart {service}");
    let groups: Vec<String> = account.groups.iter().map(|(gid, group)| format!("{} ({gid})", group.clone().unwrap_or_else(|| gid.to_string()))).collect();
    let effect = "every `docker` command in a job fails with \"permission denied while trying to connect to the Docker daemon socket\"";

    if !group_usable {
        return Finding::new(id, Status::Error, format!("runner `{runner}` uses the shell executor with user `{name}`, but `{path}` ({described}) gives its group no access"))
            .effect(effect)
            .help(format!("restore the socket's usual mode with `sudo chmod 660 {path}` (the daemon sets it on start)"));
    }
    if in_group_now && process_lacks_group {
        let pid = user.process.as_ref().map(|process| process.pid).unwrap_or_default();
        return Finding::new(id, Status::Error, format!("runner process {pid} runs as `{name}` without group `{group}`, which the user joined after the process started"))
            .effect(format!("jobs of runner `{runner}` inherit the process's groups, so {effect}"))
            .evidence(format!("`{name}` is in groups {} now; process {pid} has the groups it started with", groups.join(", ")))
            .help(format!("restart the runner so that it picks up the new group: `{restart}`"))
            .fix(Fix::commands(format!("restart `{service}`"), &[restart]));
    }

    let usermod = format!("sudo usermod -aG {group} {name}");
    Finding::new(id, Status::Error, format!("runner `{runner}` uses the shell executor; its jobs run as user `{name}` ({}), which is not in group `{group}` (gid {}) that owns `{path}` with mode {:04o}", user.source, socket.gid, socket.mode))
        .effect(effect)
        .evidence(format!("`{name}` is in groups {}", groups.join(", ")))
        .help(format!("add the user to the group and restart the runner: `{usermod}`, then `{restart}`; membership in `{group}` is equivalent to root on this host, so any job can take it over"))
        .fix(Fix::commands(format!("add `{name}` to group `{group}` and restart `{service}`"), &[usermod, restart]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::docker::{DockerError, SocketInfo};
    use crate::facts::host::{HostFacts, ShellUser};

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

    fn shell(groups: &[u32], process_groups: Option<&[u32]>, through_su: bool) -> ShellUser {
        use crate::facts::host::{Account, ProcessIds};
        ShellUser {
            runner: 0,
            name: "gitlab-runner".into(),
            source: "`--user` of runner process 812".into(),
            through_su,
            account: Some(Account { uid: 999, gid: 999, groups: groups.iter().map(|gid| (*gid, None)).collect() }),
            process: process_groups.map(|groups| ProcessIds { pid: 812, uid: if through_su { 0 } else { 999 }, gid: if through_su { 0 } else { 999 }, groups: groups.to_vec() }),
            service: Some("gitlab-runner".into()),
            socket: Some(SocketInfo { path: "/var/run/docker.sock".into(), exists: true, is_socket: true, uid: 0, gid: 998, owner: Some("root".into()), group: Some("docker".into()), mode: 0o660 }),
        }
    }

    #[test]
    fn shell_user_gets_usermod_and_restart() {
        let finding = shell_user("docker.socket-access", &shell(&[999], Some(&[]), true), "build-host-shell");
        assert_eq!(finding.status, Status::Error);
        assert_eq!(finding.message, "runner `build-host-shell` uses the shell executor; its jobs run as user `gitlab-runner` (`--user` of runner process 812), which is not in group `docker` (gid 998) that owns `/var/run/docker.sock` with mode 0660");
        let commands: Vec<String> = finding.fix.unwrap().actions.iter().map(|action| format!("{action:?}")).collect();
        assert!(commands[0].contains("sudo usermod -aG docker gitlab-runner"), "{commands:?}");
        assert!(commands[1].contains("sudo systemctl restart gitlab-runner"), "{commands:?}");
    }

    #[test]
    fn stale_process_needs_a_restart() {
        let finding = shell_user("docker.socket-access", &shell(&[999, 998], Some(&[999]), false), "build-host-shell");
        assert_eq!(finding.status, Status::Error);
        assert_eq!(finding.message, "runner process 812 runs as `gitlab-runner` without group `docker`, which the user joined after the process started");
        // Through `su`, jobs read the groups afresh, so the same membership suffices.
        let through_su = shell_user("docker.socket-access", &shell(&[999, 998], Some(&[]), true), "build-host-shell");
        assert_eq!(through_su.status, Status::Ok);
    }

    #[test]
    fn root_is_ok() {
        let mut out = Vec::new();
        SocketAccess.run(&facts(0, false), &mut out);
        assert_eq!(out[0].status, Status::Ok);
        assert!(out[0].message.contains("as root"), "{}", out[0].message);
    }
}
