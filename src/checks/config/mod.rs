//! Checks of runner `config.toml` files: where they are, their syntax, keys and permissions.

pub mod entries;
pub mod file_mode;
pub mod found;
pub mod keys;
pub mod syntax;
