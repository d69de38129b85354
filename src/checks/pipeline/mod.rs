//! Checks of the pipeline file itself.

pub mod syntax;
