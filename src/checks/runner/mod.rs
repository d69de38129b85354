//! Checks of the runner process itself.

pub mod docker_access;
