//! Checks of GitLab's TLS certificate as the runners see it.

pub mod trust;
