//! Checks of the GitLab instance itself.

pub mod external_url;
