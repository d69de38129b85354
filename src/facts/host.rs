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
