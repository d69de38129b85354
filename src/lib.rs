//! ci-doctor: diagnose and repair self-hosted GitLab CI setups.
//!
//! A run goes through four steps: discover what exists and gather facts ([`gather`]), run the
//! pure checks over those facts ([`checks`]), render the findings ([`render`]), and with
//! `--fix`, apply the typed repairs the findings carry ([`fix`]).

pub mod app;
pub mod checks;
pub mod cli;
pub mod docs;
pub mod facts;
pub mod finding;
pub mod fix;
pub mod gather;
pub mod logging;
pub mod output;
pub mod pipeline;
pub mod policy;
pub mod probe;
pub mod progress;
pub mod project;
pub mod reference;
pub mod render;
pub mod scheduling;
pub mod secret;
pub mod suggest;
pub mod time;
pub mod topology;
pub mod why;
