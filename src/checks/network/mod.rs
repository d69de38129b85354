//! Checks of what each party can reach over the network.

pub mod clone_url;
pub mod job_coordinator;
pub mod job_dns;
pub mod runner_url;

use crate::facts::probe::{Connection, HttpResult, Resolution, UrlProbe};

/// Describes in one line what the probe saw.
pub(crate) fn describe_probe(probe: &UrlProbe) -> String {
    let resolved = match &probe.resolution {
        Resolution::Literal { addresses } => format!("`{}` is an address", addresses.join(", ")),
        Resolution::HostsFile { addresses } => format!("`{}` resolves to {} through /etc/hosts", probe.host, addresses.join(", ")),
        Resolution::Dns { addresses, servers } => format!("`{}` resolves to {} through DNS ({})", probe.host, addresses.join(", "), servers.join(", ")),
        Resolution::NotFound { servers } => format!("no /etc/hosts entry, and DNS ({}) answers that `{}` does not exist", servers.join(", "), probe.host),
        Resolution::Failed { message, .. } => format!("looking up `{}` failed: {message}", probe.host),
    };
    let connected = match &probe.connection {
        Some(Connection::Open { address }) => format!("; TCP connection to {address} opens"),
        Some(Connection::Refused { address }) => format!("; TCP connection to {address} is refused"),
        Some(Connection::TimedOut { address }) => format!("; TCP connection to {address} times out"),
        Some(Connection::Failed { address, message }) => format!("; TCP connection to {address} fails: {message}"),
        None => String::new(),
    };
    let answered = match &probe.http {
        Some(HttpResult::Answered { status, gitlab: true, .. }) => format!("; `GET /api/v4/version` answers {status} like GitLab"),
        Some(HttpResult::Answered { status, .. }) => format!("; `GET /api/v4/version` answers {status}"),
        Some(HttpResult::Tls { message }) => format!("; TLS fails: {message}"),
        Some(HttpResult::TimedOut) => "; no HTTP answer in time".to_string(),
        Some(HttpResult::Failed { message }) => format!("; HTTP fails: {message}"),
        None => String::new(),
    };
    format!("{resolved}{connected}{answered}")
}


/// Returns how a job-view verdict was reached.
pub(crate) fn job_basis(view: Option<&crate::facts::job::JobView>) -> crate::finding::Basis {
    use crate::facts::job::JobAccess;
    use crate::finding::{Basis, Method, View};

    match view.map(|view| &view.access) {
        Some(JobAccess::Probe { container, image }) => Basis {
            view: View::Job,
            method: Method::Probe,
            detail: format!("probed from a short-lived container `{container}` (image `{image}`) with the job's network settings, removed afterwards"),
        },
        Some(JobAccess::Shared { container, network }) => Basis {
            view: View::Job,
            method: Method::Probe,
            detail: format!("probed from runner container `{container}`, which is on network `{network}` like the job containers; every URL tried names a container on that network, so a job gets the same answers"),
        },
        Some(JobAccess::Linked { container, links }) => Basis {
            view: View::Job,
            method: Method::Probe,
            detail: format!(
                "probed from runner container `{container}`, which is on the default bridge with the same legacy link as the job containers ({}); every URL tried names a container through that link, so a job gets the same answers",
                links.iter().map(|link| format!("`--link {link}`")).collect::<Vec<_>>().join(", ")
            ),
        },
        Some(JobAccess::Rejected { message }) => Basis {
            view: View::Job,
            method: Method::Probe,
            detail: format!("Docker rejected a short-lived container with the job's network settings: {message}"),
        },
        Some(JobAccess::Unavailable { reason }) => Basis { view: View::Job, method: Method::Reasoning, detail: format!("judged from the job's network settings; no probe: {reason}") },
        Some(JobAccess::Disabled) => Basis { view: View::Job, method: Method::Reasoning, detail: "judged from the job's network settings; probes are off (`--no-probe`)".into() },
        None => Basis { view: View::Job, method: Method::Reasoning, detail: "judged from the job's network settings".into() },
    }
}
