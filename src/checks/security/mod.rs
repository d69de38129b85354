//! Checks of what jobs may do to the host.

pub mod privileged;
pub mod runner_groups;
