//! Who ci-doctor runs as.

use serde::Serialize;

/// The user running ci-doctor and its groups.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HostFacts {
    pub user: String,
    pub uid: u32,
    pub gid: u32,
    /// Groups of this process (supplementary and primary), as `(gid, name)`.
    pub groups: Vec<(u32, Option<String>)>,
}

impl HostFacts {
    pub fn is_root(&self) -> bool {
        self.uid == 0
    }

    pub fn in_group(&self, gid: u32) -> bool {
        self.gid == gid || self.groups.iter().any(|(group, _)| *group == gid)
    }
}

/// The user that shell-executor jobs of one native runner run as, and what it may do.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ShellUser {
    /// Index of the runner process in `Facts::runners`.
    pub runner: usize,
    pub name: String,
    /// Where the name came from, for messages: "the service's `--user`", ...
    pub source: String,
    /// Jobs start through `su <user>` (the runner runs as root with `--user`), which reads the
    /// user's groups afresh for every job. Otherwise jobs inherit the runner process's groups.
    pub through_su: bool,
    /// The account, when it exists: uid, primary gid and every group (`getgrouplist`).
    pub account: Option<Account>,
    /// The running runner process and the groups it really has (`/proc/<pid>/status`).
    pub process: Option<ProcessIds>,
    /// The systemd service to restart, from `--service` or the unit file name.
    pub service: Option<String>,
    /// The Docker socket jobs use: `/var/run/docker.sock` unless `DOCKER_HOST` says otherwise.
    pub socket: Option<super::docker::SocketInfo>,
}

/// A user account and its groups.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Account {
    pub uid: u32,
    pub gid: u32,
    /// Every group of the user, primary included, as `(gid, name)`.
    pub groups: Vec<(u32, Option<String>)>,
}

impl Account {
    pub fn in_group(&self, gid: u32) -> bool {
        self.gid == gid || self.groups.iter().any(|(group, _)| *group == gid)
    }
}

/// User and groups of a running process.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ProcessIds {
    pub pid: u32,
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
}
