//! Checks of the runner process itself.

pub mod concurrency;
pub mod docker_access;
