//! Checks of credentials.

pub mod token;
