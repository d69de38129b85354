//! The users that shell-executor jobs run as: their accounts, groups, and the groups the running
//! runner process really has.

use std::ffi::CString;

use nix::unistd::{Gid, Group, User, getgrouplist};

use crate::facts::Facts;
use crate::facts::host::{Account, ProcessIds, ShellUser};
use crate::facts::runner::RunnerKind;

/// Finds the job user of every native runner with a shell-executor entry.
pub fn shell_users(facts: &Facts) -> Vec<ShellUser> {
    let mut out = Vec::new();
    for (index, runner) in facts.runners.iter().enumerate() {
        let RunnerKind::Native(native) = &runner.kind else { continue };
        if !facts.entries(index).iter().any(|entry| entry.executor() == Some("shell")) {
            continue;
        }
        let process = native.pid.and_then(process_ids);

        // With `--user`, a runner running as root starts each job through `su -s /bin/bash <user>`
        // (the runner's bash shell, `shells/bash.go`); without it, jobs run as the process itself.
        let (name, source, through_su) = match (&native.user, &process) {
            (Some(user), Some(process)) => (user.clone(), format!("`--user` of runner process {}", process.pid), process.uid == 0),
            (Some(user), None) => (user.clone(), format!("`--user` in {}", native.found_by), true),
            (None, Some(process)) => match User::from_uid(process.uid.into()).ok().flatten() {
                Some(user) => (user.name, format!("runner process {} runs as this user", process.pid), false),
                None => (process.uid.to_string(), format!("runner process {} runs as this uid", process.pid), false),
            },
            (None, None) => continue,
        };
        out.push(ShellUser {
            runner: index,
            account: account(&name),
            name,
            source,
            through_su,
            process,
            service: native.service.clone(),
            socket: Some(super::docker::inspect_socket(std::path::Path::new(super::docker::DEFAULT_SOCKET))),
        });
    }
    out
}

/// The account named `name` and every group it belongs to, through NSS (so LDAP users count).
pub fn account(name: &str) -> Option<Account> {
    let user = User::from_name(name).ok().flatten()?;
    let groups = CString::new(name)
        .ok()
        .and_then(|cname| getgrouplist(&cname, user.gid).ok())
        .unwrap_or_else(|| vec![user.gid]);
    let mut groups: Vec<(u32, Option<String>)> = groups.into_iter().map(|gid| (gid.as_raw(), group_name(gid))).collect();
    groups.sort();
    groups.dedup();
    Some(Account { uid: user.uid.as_raw(), gid: user.gid.as_raw(), groups })
}

fn group_name(gid: Gid) -> Option<String> {
    Group::from_gid(gid).ok().flatten().map(|group| group.name)
}

/// The real uid, gid and supplementary groups of process `pid`, from `/proc/<pid>/status`.
pub fn process_ids(pid: u32) -> Option<ProcessIds> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    parse_status(pid, &status)
}

fn parse_status(pid: u32, status: &str) -> Option<ProcessIds> {
    let field = |name: &str| status.lines().find_map(|line| line.strip_prefix(name)).map(str::trim);
    let first = |text: &str| text.split_whitespace().next()?.parse::<u32>().ok();
    let uid = first(field("Uid:")?)?;
    let gid = first(field("Gid:")?)?;
    let groups = field("Groups:").unwrap_or("").split_whitespace().filter_map(|group| group.parse().ok()).collect();
    Some(ProcessIds { pid, uid, gid, groups })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_gives_real_ids_and_groups() {
        let status = "Name:\tgitlab-runner\nUid:\t999\t999\t999\t999\nGid:\t999\t999\t999\t999\nGroups:\t999 1001 \n";
        let ids = parse_status(42, status).unwrap();
        assert_eq!((ids.uid, ids.gid), (999, 999));
        assert_eq!(ids.groups, [999, 1001]);
    }

    #[test]
    fn root_account_is_in_group_root() {
        let root = account("root").unwrap();
        assert_eq!(root.uid, 0);
        assert!(root.in_group(0));
    }
}
