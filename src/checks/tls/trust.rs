//! `tls.trust`: each runner trusts GitLab's certificate, judged on the chain GitLab presents
//! to the runner's own view and with the runner's own trust store.

use crate::checks::Check;
use crate::facts::config::{locate, locate_missing};
use crate::facts::probe::{CaFileState, CertificateInfo, TlsOutcome, TlsVerdict, ViewAccess};
use crate::facts::{Entry, Facts};
use crate::finding::{Basis, Finding, Method, Status, Subject, View};
use crate::fix::{Action, Fix, KeyPath, TomlValue};

pub struct Trust;

impl Check for Trust {
    fn id(&self) -> &'static str {
        "tls.trust"
    }

    fn summary(&self) -> &'static str {
        "each runner trusts GitLab's certificate: system CAs plus `tls-ca-file` or `certs/<host>.crt`"
    }

    fn explanation(&self) -> &'static str {
        include_str!("../../../checks/tls.trust.md")
    }

    fn run(&self, facts: &Facts, out: &mut Vec<Finding>) {
        for (index, _) in facts.runners.iter().enumerate() {
            for entry in facts.entries(index) {
                let subject = Subject { runner: index, entry: Some(entry.index) };
                for finding in judge(self.id(), facts, index, entry) {
                    out.push(finding.subject(subject));
                }
            }
        }
    }
}

fn judge(id: &'static str, facts: &Facts, runner: usize, entry: &Entry) -> Vec<Finding> {
    let name = entry.label();
    let Some(url) = entry.keys.str("url") else { return Vec::new() };
    if !url.starts_with("https://") {
        return vec![Finding::new(id, Status::Skipped, format!("runner `{name}` uses plain HTTP (`{}`), so no certificate is involved", crate::secret::redact_url(url)))];
    }
    let Some(probe) = facts.probes.tls(runner, entry.index) else {
        let reason = match facts.probes.view(runner) {
            Some(ViewAccess::Disabled) => "probes are off (`--no-probe`)".to_string(),
            Some(ViewAccess::Unavailable { reason }) => reason.clone(),
            _ => "no probe ran".to_string(),
        };
        return vec![Finding::new(id, Status::Skipped, format!("GitLab's certificate was not checked for runner `{name}`: {reason}"))];
    };
    let (chain, verdict, roots_source, ca_file, candidates) = match &probe.outcome {
        TlsOutcome::NoHandshake { message } => {
            return vec![Finding::new(id, Status::Skipped, format!("no certificate to check for runner `{name}`: {message} (see `network.runner-url`)"))];
        }
        TlsOutcome::Presented { chain, verdict, roots_source, ca_file, candidates } => (chain, verdict, roots_source, ca_file, candidates),
    };

    let config = &facts.runners[runner].config;
    let host = &probe.host;
    let basis = basis(facts, runner);
    let url_location = entry.keys.get("url").map(|located| locate(config, located));
    let ca_location = entry.keys.get("tls-ca-file").map(|located| locate(config, located));
    let leaf = chain.first();
    let trust = trust_line(roots_source.as_deref(), ca_file, &name);

    if *verdict == TlsVerdict::Trusted {
        let issuer = leaf.map(|leaf| format!(", issued by `{}`, valid until {}", leaf.issuer, leaf.not_after)).unwrap_or_default();
        return vec![Finding::new(id, Status::Ok, format!("runner `{name}` trusts the certificate of `{host}`{issuer}")).evidence(trust).basis(basis)];
    }

    let mut finding = match verdict {
        TlsVerdict::UnknownIssuer => {
            let issuer = chain.last().map(|top| format!(" (`{}`)", top.issuer)).unwrap_or_default();
            Finding::new(id, Status::Error, format!("the certificate of `{host}` chains to a CA{issuer} that runner `{name}` does not trust"))
                .effect("every request of the runner fails with \"x509: certificate signed by unknown authority\", so it takes no jobs; clones in jobs fail with \"SSL certificate problem\"")
        }
        TlsVerdict::Expired => {
            let until = leaf.map(|leaf| format!(" on {}", leaf.not_after)).unwrap_or_default();
            Finding::new(id, Status::Error, format!("the certificate of `{host}` expired{until}"))
                .effect("every request of the runner fails with \"x509: certificate has expired or is not yet valid\", so it takes no jobs")
                .help("renew GitLab's certificate (with Let's Encrypt, `sudo gitlab-ctl renew-le-certs`), then restart its web server")
        }
        TlsVerdict::NotYetValid => {
            let from = leaf.map(|leaf| format!(" before {}", leaf.not_before)).unwrap_or_default();
            Finding::new(id, Status::Error, format!("the certificate of `{host}` is not valid{from}"))
                .effect("every request of the runner fails with \"x509: certificate has expired or is not yet valid\", so it takes no jobs")
                .help("check the clocks of this host and of GitLab (`timedatectl`); one of them is wrong")
        }
        TlsVerdict::NameMismatch => {
            let names = leaf.map(|leaf| leaf.names.iter().map(|name| format!("`{name}`")).collect::<Vec<_>>().join(", ")).unwrap_or_default();
            Finding::new(id, Status::Error, format!("the certificate presented at `{host}` is for {names}, not for `{host}`"))
                .effect(format!("every request of the runner fails with \"x509: certificate is valid for {}, not {host}\", so it takes no jobs", leaf.map(|leaf| leaf.names.join(", ")).unwrap_or_default()))
                .help("set `url` to a name the certificate holds, or issue GitLab a certificate that includes this name")
        }
        TlsVerdict::Other { message } => Finding::new(id, Status::Error, format!("the certificate of `{host}` does not verify for runner `{name}`: {message}"))
            .effect("every request of the runner fails with an x509 error, so it takes no jobs"),
        TlsVerdict::Trusted => unreachable!("handled above"),
    };
    for line in chain_lines(chain) {
        finding = finding.evidence(line);
    }
    finding = finding.evidence(trust).basis(basis.clone()).location(if ca_file.configured { ca_location } else { url_location });

    let mut out = Vec::new();
    if *verdict == TlsVerdict::UnknownIssuer {
        let verifying: Vec<&str> = candidates.iter().filter(|candidate| candidate.verdict == TlsVerdict::Trusted).map(|candidate| candidate.path.as_str()).collect();
        match verifying.first() {
            Some(path) => {
                let action = Action::SetKey { path: KeyPath::entry(entry.index, &["tls-ca-file"]), value: TomlValue::String(path.to_string()), after: Some("url".into()) };
                finding = finding
                    .help(format!("set `tls-ca-file = \"{path}\"` for runner `{name}`: that file verifies GitLab's chain, and the runner then also hands the CA to the clone step in job containers"))
                    .fix(Fix::safe(format!("set `tls-ca-file = \"{path}\"`"), vec![action]));
                for path in &verifying {
                    let location = match entry.keys.get("tls-ca-file") {
                        Some(located) => Some(locate(config, located)),
                        None => Some(locate_missing(config, Some(entry), "tls-ca-file")),
                    };
                    out.push(
                        Finding::new(id, Status::Info, format!("`{path}` exists on the runner's side and verifies the certificate of `{host}`, but runner `{name}` does not reference it"))
                            .basis(basis.clone())
                            .location(location),
                    );
                }
            }
            None => {
                let issuer = chain.last().map(|top| top.issuer.clone()).unwrap_or_default();
                let convention = if ca_file.configured { format!("`{}`", ca_file.path) } else { format!("`{}` (the runner loads it by itself)", ca_file.path) };
                finding = finding.help(format!("put the certificate of the CA `{issuer}` (PEM) into {convention}, or reference a file that holds it with `tls-ca-file`; no CA file on the runner's side verifies the chain yet"));
            }
        }
    }
    out.insert(0, finding);
    out
}

/// Describes each certificate in one line: subject, issuer and validity.
fn chain_lines(chain: &[CertificateInfo]) -> Vec<String> {
    chain
        .iter()
        .enumerate()
        .map(|(index, certificate)| {
            let names = if certificate.names.is_empty() { String::new() } else { format!(", names {}", certificate.names.join(", ")) };
            format!("presented certificate {}: `{}`, issued by `{}`, valid {} to {}{names}", index + 1, certificate.subject, certificate.issuer, certificate.not_before, certificate.not_after)
        })
        .collect()
}

/// Describes what the runner trusts: its CA bundle and its CA file.
fn trust_line(roots_source: Option<&str>, ca_file: &crate::facts::probe::CaFile, name: &str) -> String {
    let bundle = match roots_source {
        Some(path) => format!("system CAs from `{path}`"),
        None => "no system CA bundle".to_string(),
    };
    let file = match (&ca_file.state, ca_file.configured) {
        (CaFileState::Loaded { certificates }, true) => format!("plus `tls-ca-file = \"{}\"` ({certificates} certificates)", ca_file.path),
        (CaFileState::Loaded { certificates }, false) => format!("plus `{}` ({certificates} certificates), which the runner loads by itself", ca_file.path),
        (CaFileState::Missing, true) => format!("`tls-ca-file` names `{}`, which does not exist on the runner's side", ca_file.path),
        (CaFileState::Missing, false) => format!("runner `{name}` has no `tls-ca-file`, and `{}` (the file the runner would load by itself) is absent", ca_file.path),
        (CaFileState::NoCertificates, _) => format!("`{}` holds no PEM certificate", ca_file.path),
    };
    format!("the runner trusts {bundle}; {file}")
}

fn basis(facts: &Facts, runner: usize) -> Basis {
    let detail = match (facts.probes.view(runner), facts.runners[runner].container()) {
        (Some(ViewAccess::Namespace { pid }), Some(container)) => format!("handshake made inside the network namespace of container `{}` (process {pid}), verified with the container's own CA bundle", container.name),
        _ => "handshake made from this host, verified with its CA bundle".to_string(),
    };
    Basis { view: View::Runner, method: Method::Probe, detail }
}

