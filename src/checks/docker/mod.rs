//! Checks of the Docker Engine from the host's point of view.

pub mod daemon;
pub mod socket_access;
