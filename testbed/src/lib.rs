//! Test bed for ci-doctor: a stand-in GitLab service, a test DNS server and
//! Docker scenario helpers. See `README.md` for how tests use them.

pub mod bed;
mod clock;
pub mod dns;
mod docker;
mod file_lock;
pub mod images;
pub mod standin;
pub mod state;

pub use bed::{Bed, Container, ContainerBuilder, ExecOutput, PROBE_LABEL, wait_for_probe_containers};
pub use dns::DnsRecord;
pub use images::{Base, ensure_images, tag};
pub use standin::{LoggedRequest, Standin, read_request_log, test_ca_and_server_cert};
pub use state::State;
