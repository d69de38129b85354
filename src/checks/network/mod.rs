//! Checks of what each party can reach over the network.

pub mod runner_url;
