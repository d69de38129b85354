//! Checks of the Docker Engine from the host's point of view.

pub mod daemon;
pub mod disk_space;
pub mod socket_access;
