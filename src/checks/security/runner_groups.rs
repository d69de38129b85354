//! `security.runner-groups`: the user that shell jobs run as is not root and not in a group that
//! grants root on the host.

use crate::checks::Check;
use crate::facts::Facts;
use crate::facts::host::ShellUser;
use crate::finding::{Finding, Status, Subject};

pub struct RunnerGroups;

impl Check for RunnerGroups {
    fn id(&self) -> &'static str {
        "security.runner-groups"
    }

    fn summary(&self) -> &'static str {
        "the user shell jobs run as is not root, nor in `root`, `docker`, `sudo`, `wheel`, `disk` or similar groups"
    }

    fn explanation(&self) -> &'static str {
        include_str!("../../../checks/security.runner-groups.md")
    }

    fn run(&self, facts: &Facts, out: &mut Vec<Finding>) {
        for user in &facts.shell_users {
            let subject = Subject { runner: user.runner, entry: None };
            for finding in judge(self.id(), user, docker_gid(user)) {
                out.push(finding.subject(subject));
            }
        }
    }
}

/// Groups whose members can become root, and how.
const POWERFUL: &[(&str, &str)] = &[
    ("root", "files and devices of group `root` become writable to every job"),
    ("sudo", "any job can run commands as root through `sudo` wherever sudoers allows it"),
    ("wheel", "any job can run commands as root through `sudo` or `su` wherever the system allows it"),
    ("admin", "any job can run commands as root through `sudo` wherever sudoers allows it"),
    ("disk", "any job can read and write the raw disks, past every file permission"),
    ("docker", "any job can start a privileged container that mounts the host's `/`, which is root on this host"),
    ("lxd", "any job can start a privileged system container, which is root on this host"),
];

/// Returns the gid of the Docker socket's group, which counts as `docker` whatever its name.
fn docker_gid(user: &ShellUser) -> Option<u32> {
    user.socket.as_ref().filter(|socket| socket.exists).map(|socket| socket.gid).filter(|gid| *gid != 0)
}

fn judge(id: &'static str, user: &ShellUser, docker_gid: Option<u32>) -> Vec<Finding> {
    let name = &user.name;
    let Some(account) = &user.account else {
        return vec![Finding::new(id, Status::Skipped, format!("user `{name}` does not exist on this host (see `docker.socket-access`)"))];
    };
    if account.uid == 0 {
        return vec![Finding::new(id, Status::Warning, format!("shell jobs run as root ({})", user.source))
            .effect("every job, from every branch and merge request that reaches this runner, can change anything on this host")
            .help("run the service with `--user gitlab-runner` (`sudo gitlab-runner install --user gitlab-runner ...`), or move the jobs to the docker executor")];
    }

    // A running process without `su` keeps the groups it started with; count those too.
    let mut gids: Vec<(u32, Option<String>)> = account.groups.clone();
    if let Some(process) = user.process.as_ref().filter(|_| !user.through_su) {
        for gid in process.groups.iter().chain([&process.gid]) {
            if !gids.iter().any(|(known, _)| known == gid) {
                gids.push((*gid, None));
            }
        }
    }

    let mut out = Vec::new();
    for (gid, group) in &gids {
        let group_name = group.clone().unwrap_or_else(|| gid.to_string());
        let kind = if *gid == 0 { Some("root") } else if Some(*gid) == docker_gid { Some("docker") } else { POWERFUL.iter().map(|(known, _)| *known).find(|known| *known == group_name) };
        let Some(kind) = kind else { continue };
        let why = POWERFUL.iter().find(|(known, _)| *known == kind).map(|(_, why)| *why).unwrap_or_default();
        let mut finding = Finding::new(id, Status::Warning, format!("user `{name}`, which shell jobs run as, is in group `{group_name}` (gid {gid})"))
            .effect(format!("{why}; whoever can push a pipeline to a project using this runner controls the host"));
        finding = match kind {
            "docker" => finding.help(format!("keep this only for runners that serve trusted projects; otherwise use rootless Docker or the docker executor, and remove the membership with `sudo gpasswd -d {name} {group_name}`")),
            _ => finding.help(format!("remove the membership: `sudo gpasswd -d {name} {group_name}`, then restart the runner")),
        };
        out.push(finding);
    }
    if out.is_empty() {
        out.push(Finding::new(id, Status::Ok, format!("user `{name}`, which shell jobs run as, is not root and in no group that grants root")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::docker::SocketInfo;
    use crate::facts::host::Account;

    fn user(groups: &[(u32, &str)]) -> ShellUser {
        ShellUser {
            name: "gitlab-runner".into(),
            source: "`--user` of runner process 1".into(),
            through_su: true,
            account: Some(Account { uid: 999, gid: 999, groups: groups.iter().map(|(gid, name)| (*gid, Some(name.to_string()))).collect() }),
            socket: Some(SocketInfo { exists: true, gid: 105, ..SocketInfo::default() }),
            ..ShellUser::default()
        }
    }

    #[test]
    fn root_group_is_a_warning() {
        let found = judge("security.runner-groups", &user(&[(999, "gitlab-runner"), (0, "root")]), Some(105));
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].status, Status::Warning);
        assert_eq!(found[0].message, "user `gitlab-runner`, which shell jobs run as, is in group `root` (gid 0)");
    }

    #[test]
    fn socket_group_counts_as_docker_whatever_its_name() {
        let found = judge("security.runner-groups", &user(&[(999, "gitlab-runner"), (105, "containers")]), Some(105));
        assert_eq!(found.len(), 1);
        assert!(found[0].effect.as_deref().unwrap().contains("privileged container"), "{:?}", found[0].effect);
    }

    #[test]
    fn plain_user_is_ok() {
        let found = judge("security.runner-groups", &user(&[(999, "gitlab-runner"), (1001, "builders")]), Some(105));
        assert_eq!(found[0].status, Status::Ok);
    }
}
