//! `network.runner-url`: the runner reaches GitLab at its `url`, judged from the runner's own
//! point of view.

use super::describe_probe;
use crate::checks::Check;
use crate::facts::config::{locate, locate_missing};
use crate::facts::probe::{Connection, HttpResult, Resolution, UrlProbe, ViewAccess};
use crate::facts::{ContainerInfo, Entry, Facts};
use crate::finding::{Basis, Finding, Method, Status, Subject, View};
use crate::fix::{Action, Fix, KeyPath, TomlValue};
use crate::secret::redact_url;
use crate::topology::{self, Candidate};

pub struct RunnerUrl;

impl Check for RunnerUrl {
    fn id(&self) -> &'static str {
        "network.runner-url"
    }

    fn summary(&self) -> &'static str {
        "the runner reaches GitLab at its `url`, from inside its own container or host"
    }

    fn explanation(&self) -> &'static str {
        include_str!("../../../checks/network.runner-url.md")
    }

    fn run(&self, facts: &Facts, out: &mut Vec<Finding>) {
        for (index, _) in facts.runners.iter().enumerate() {
            for entry in facts.entries(index) {
                let subject = Subject { runner: index, entry: Some(entry.index) };
                out.push(judge(self.id(), facts, index, entry).subject(subject));
            }
        }
    }
}

/// Everything one judgement needs.
struct Context<'a> {
    id: &'static str,
    facts: &'a Facts,
    runner: usize,
    entry: &'a Entry,
    container: Option<&'a ContainerInfo>,
}

fn judge(id: &'static str, facts: &Facts, runner: usize, entry: &Entry) -> Finding {
    let config = &facts.runners[runner].config;
    let container = facts.runners[runner].container();
    let context = Context { id, facts, runner, entry, container };
    let name = entry.label();

    let Some(raw_url) = entry.keys.str("url") else {
        return Finding::new(id, Status::Error, format!("runner `{name}` has no `url`"))
            .effect("the runner cannot contact GitLab for this entry")
            .location(Some(locate_missing(config, Some(entry), "url")))
            .help("set `url` to GitLab's base URL, for example `url = \"https://gitlab.example.com/\"`");
    };
    let location = entry.keys.get("url").map(|located| locate(config, located));
    let shown_url = redact_url(raw_url);
    if let Some(expansion) = entry.expansions.iter().find(|expansion| expansion.key == "url" && !expansion.resolved) {
        return Finding::new(id, Status::Skipped, format!(
            "`url` of runner `{name}` takes {} from the runner's environment, which ci-doctor cannot see here",
            expansion.variables.iter().map(|variable| format!("`${variable}`")).collect::<Vec<_>>().join(", ")
        ))
        .location(location)
        .help("run ci-doctor where it can read the runner process's environment (as root, with the runner running)");
    }

    let parsed = match url::Url::parse(raw_url) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && parsed.host_str().is_some() => parsed,
        _ => {
            let guess = if raw_url.contains("://") { None } else { Some(format!("https://{}/", raw_url.trim_end_matches('/'))) };
            let mut finding = Finding::new(id, Status::Error, format!("`url = \"{shown_url}\"` of runner `{name}` is not an http:// or https:// URL"))
                .effect("the runner cannot build API requests from it, so it takes no jobs")
                .location(location);
            finding = match guess {
                Some(guess) => finding.help(format!("write the scheme too; did you mean `{guess}`?")),
                None => finding.help("use GitLab's base URL, for example `https://gitlab.example.com/`"),
            };
            return finding;
        }
    };
    let host = parsed.host_str().unwrap_or_default().to_string();
    let port = parsed.port_or_known_default().unwrap_or(80);

    let in_own_network = container.is_some_and(|container| !container.uses_host_network());
    let access = facts.probes.view(runner).cloned().unwrap_or(ViewAccess::Disabled);
    let probe = facts.probes.url(runner, raw_url);

    // A loopback address inside a container is the container itself, whatever a probe found.
    if in_own_network && topology::is_loopback_host(&host) {
        let container = container.expect("checked above");
        let mut finding = Finding::new(id, Status::Error, format!(
            "runner `{name}` runs inside container `{}`; its `url` host `{host}` is that container's own loopback, not GitLab",
            container.name
        ))
        .effect("every job request (and any `gitlab-runner register`) gets \"connection refused\", so the runner never picks up a job")
        .location(location);
        if let Some(probe) = probe {
            finding = finding.evidence(describe_probe(probe)).basis(probe_basis(&context, &access));
        } else {
            finding = finding.basis(reasoning_basis(&context, &access));
        }
        return with_remedy(finding, &context, raw_url);
    }

    match probe {
        Some(probe) => judge_probe(&context, probe, &access, &host, port, &shown_url, location),
        None => judge_by_reasoning(&context, &access, &host, &shown_url, location),
    }
}

fn judge_probe(context: &Context, probe: &UrlProbe, access: &ViewAccess, host: &str, port: u16, url: &str, location: Option<crate::finding::Location>) -> Finding {
    let id = context.id;
    let name = context.entry.label();
    let place = place(context);
    let basis = probe_basis(context, access);

    let problem = |message: String, effect: &str| {
        Finding::new(id, Status::Error, message).effect(effect.to_string()).evidence(describe_probe(probe)).basis(basis.clone()).location(location.clone())
    };

    let finding = match (&probe.resolution, &probe.connection, &probe.http) {
        (Resolution::NotFound { .. } | Resolution::Failed { .. }, _, _) => {
            let mut finding = problem(format!("`{host}` does not resolve {place}"), "the runner cannot contact GitLab, so it takes no jobs and its log repeats \"no such host\"");
            for reason in why_unresolved(context, host) {
                finding = finding.evidence(reason);
            }
            finding
        }
        (_, Some(Connection::Refused { address }), _) => {
            let mut finding = problem(format!("connection to `{address}` ({host}) is refused {place}"), "every job request fails with \"connection refused\", so the runner takes no jobs");
            if let Some(reason) = why_refused(context, address, port) {
                finding = finding.evidence(reason);
            }
            finding
        }
        (_, Some(Connection::TimedOut { address }), _) => problem(
            format!("connection to `{address}` ({host}) times out {place}"),
            "job requests hang and fail; a firewall, a wrong address or a network the runner is not on drops the packets",
        ),
        (_, Some(Connection::Failed { address, message }), _) => problem(
            format!("connection to `{address}` ({host}) fails {place}: {message}"),
            "the runner cannot contact GitLab, so it takes no jobs",
        ),
        // The network works; why the certificate is rejected is `tls.trust`'s finding.
        (_, _, Some(HttpResult::Tls { message })) => {
            return Finding::new(id, Status::Skipped, format!("`{url}` accepts connections {place}, but TLS fails, so the API was not asked (`tls.trust` explains the certificate)"))
                .evidence(describe_probe(probe))
                .evidence(message.clone())
                .basis(basis);
        }
        (_, _, Some(HttpResult::TimedOut)) => {
            return problem(
                format!("`{url}` accepts connections {place} but sends no answer within {} s", context.facts.settings.timeout_secs),
                "job requests time out; GitLab may be starting, overloaded, or something else holds the port",
            )
            .help("check GitLab's health (`gitlab-ctl status` and its logs in the GitLab container) and that nothing else listens on that port; raise `--timeout` if GitLab is only slow");
        }
        (_, _, Some(HttpResult::Failed { message })) => problem(
            format!("HTTP request to `{url}` fails {place}: {message}"),
            "the runner cannot talk to GitLab, so it takes no jobs",
        ),
        (_, _, Some(HttpResult::Answered { status, location: Some(target), .. })) if (300..400).contains(status) => {
            return problem(format!("`{url}` answers {place} with a redirect ({status}) to `{target}`"), "the runner does not follow redirects for API calls, so every request fails")
                .help(format!("set `url` to the address GitLab redirects to: `{}`", redirect_base(target)));
        }
        (_, _, Some(HttpResult::Answered { status, gitlab: false, .. })) => problem(
            format!("`{url}` answers {place} with HTTP {status}, but not like the GitLab API"),
            "something other than GitLab listens there, or a proxy in between rewrites the answers",
        ),
        (_, _, Some(HttpResult::Answered { gitlab: true, .. })) => {
            let how = reach_detail(probe);
            return Finding::new(id, Status::Ok, format!("runner `{name}` reaches GitLab at `{url}` {place}{how}")).basis(basis);
        }
        _ => problem(format!("`{url}` could not be probed {place}"), "its reachability is unknown"),
    };
    with_remedy(finding, context, url)
}

fn judge_by_reasoning(context: &Context, access: &ViewAccess, host: &str, url: &str, location: Option<crate::finding::Location>) -> Finding {
    let id = context.id;
    let basis = reasoning_basis(context, access);
    let not_probed = match access {
        ViewAccess::Disabled => "probes are off".to_string(),
        ViewAccess::Unavailable { reason } => reason.clone(),
        _ => "not probed".to_string(),
    };

    if let Some(container) = context.container {
        let reasons = why_unresolved(context, host);
        let names_container = known_container(context.facts, host).is_some();
        let resolvable = resolvable_by_setting(container, host);
        if names_container && !resolvable && !reasons.is_empty() {
            let mut finding = Finding::new(id, Status::Error, format!("`{host}` will not resolve {}", place(context)))
                .effect("the runner cannot contact GitLab, so it takes no jobs and its log repeats \"no such host\"")
                .basis(basis)
                .location(location);
            for reason in reasons {
                finding = finding.evidence(reason);
            }
            return with_remedy(finding, context, url);
        }
        if names_container || resolvable {
            return Finding::new(id, Status::Ok, format!("`{host}` should resolve {} (judged from its settings; {not_probed})", place(context))).basis(basis);
        }
    }
    Finding::new(id, Status::Skipped, format!("`{url}` was not probed: {not_probed}")).basis(basis)
}

/// "from container `x`" or "from this host".
fn place(context: &Context) -> String {
    match context.container {
        Some(container) => format!("from container `{}`", container.name),
        None => "from this host".to_string(),
    }
}

fn probe_basis(context: &Context, access: &ViewAccess) -> Basis {
    let detail = match (access, context.container) {
        (ViewAccess::Namespace { pid }, Some(container)) => format!("probed inside the network namespace of container `{}` (process {pid}), with its own /etc/hosts and resolver", container.name),
        _ => "probed from this host, with its /etc/hosts and resolver".to_string(),
    };
    Basis { view: View::Runner, method: Method::Probe, detail }
}

fn reasoning_basis(context: &Context, access: &ViewAccess) -> Basis {
    let why = match access {
        ViewAccess::Disabled => "probes are off (`--no-probe`)".to_string(),
        ViewAccess::Unavailable { reason } => reason.clone(),
        _ => "no probe result".to_string(),
    };
    let what = if context.container.is_some() { "judged from the container's network settings" } else { "judged from the config" };
    Basis { view: View::Runner, method: Method::Reasoning, detail: format!("{what}; {why}") }
}

fn reach_detail(probe: &UrlProbe) -> String {
    match &probe.resolution {
        Resolution::HostsFile { .. } => " (through /etc/hosts: a link or `--add-host`)".to_string(),
        Resolution::Dns { servers, .. } if servers.iter().any(|server| server == "127.0.0.11") => " (through Docker's embedded DNS)".to_string(),
        Resolution::Dns { .. } => " (through DNS)".to_string(),
        _ => String::new(),
    }
}

/// Returns the GitLab container named `host`, by name or host name.
fn known_container<'a>(facts: &'a Facts, host: &str) -> Option<&'a ContainerInfo> {
    facts
        .gitlabs
        .iter()
        .map(|gitlab| &gitlab.container)
        .find(|container| container.name.eq_ignore_ascii_case(host) || container.hostname.eq_ignore_ascii_case(host))
}

/// Returns true when a link alias or an `--add-host` entry makes `host` resolve in the container.
fn resolvable_by_setting(container: &ContainerInfo, host: &str) -> bool {
    container.links.iter().any(|link| link.alias.eq_ignore_ascii_case(host))
        || container.extra_hosts.iter().any(|entry| entry.split(':').next().is_some_and(|name| name.eq_ignore_ascii_case(host)))
}

/// Explains from the topology why `host` does not resolve in the runner's container.
fn why_unresolved(context: &Context, host: &str) -> Vec<String> {
    let Some(container) = context.container else { return Vec::new() };
    let Some(target) = known_container(context.facts, host) else {
        return Vec::new();
    };
    let target_networks: Vec<&str> = target.networks.iter().map(|network| network.name.as_str()).collect();
    let shared = topology::shared_user_networks(container, target);
    if !shared.is_empty() {
        return Vec::new();
    }
    if container.on_default_bridge_only() {
        return vec![format!(
            "container `{}` is on Docker's default `bridge` network, where container names resolve only through `--link`, and it has no link to `{}`",
            container.name, target.name
        )];
    }
    vec![format!(
        "container `{}` is on {}, but `{}` is on {}; Docker resolves container names only within a shared user-defined network",
        container.name,
        list_networks(&container.networks.iter().map(|network| network.name.as_str()).collect::<Vec<_>>()),
        target.name,
        list_networks(&target_networks)
    )]
}

fn list_networks(names: &[&str]) -> String {
    match names {
        [] => "no network".to_string(),
        [one] => format!("network `{one}`"),
        many => format!("networks {}", many.iter().map(|name| format!("`{name}`")).collect::<Vec<_>>().join(", ")),
    }
}

/// Explains why a connection to `address` is refused, when it is a GitLab container's.
fn why_refused(context: &Context, address: &str, port: u16) -> Option<String> {
    let ip = address.rsplit_once(':').map(|(ip, _)| ip.trim_matches(['[', ']'])).unwrap_or(address);
    let gitlab = context.facts.gitlabs.iter().find(|gitlab| gitlab.container.networks.iter().any(|network| network.ip.as_deref() == Some(ip)))?;
    let internal = gitlab.internal_port(gitlab.serves_https());
    if internal == port {
        return None;
    }
    let published = gitlab.container.ports.iter().any(|binding| binding.host_port == Some(port));
    let note = if published { format!("; {port} is only the port published on the Docker host") } else { String::new() };
    Some(format!("`{ip}` is GitLab container `{}`, which listens on port {internal} inside its network{note}", gitlab.container.name))
}

/// Adds the repair: the first candidate URL that responded like GitLab from the runner's
/// view, and what the other candidates did.
fn with_remedy(finding: Finding, context: &Context, current_url: &str) -> Finding {
    let Some(container) = context.container else {
        return finding.help("set `url` to an address of GitLab that this host can reach");
    };
    let candidates = topology::gitlab_candidates(container, &context.facts.gitlabs);
    let mut finding = finding;
    let mut working: Option<&Candidate> = None;
    for candidate in candidates.iter().filter(|candidate| candidate.url != current_url) {
        match context.facts.probes.url(context.runner, &candidate.url) {
            Some(probe) if probe.reached_gitlab() => {
                working = working.or(Some(candidate));
            }
            Some(probe) => finding = finding.evidence(format!("`{}` ({}) does not work either: {}", candidate.url, candidate.reason, describe_probe(probe))),
            None => {}
        }
    }

    match working {
        Some(candidate) => {
            let mut actions = vec![Action::SetKey { path: KeyPath::entry(context.entry.index, &["url"]), value: TomlValue::String(candidate.url.clone()), after: None }];
            let mut why = format!("{}; confirmed from the runner's view", candidate.reason);
            let mut summary = format!("set `url = \"{}\"`", candidate.url);
            if let Some(network) = &candidate.network
                && context.entry.uses_docker()
                && context.entry.keys.str("docker.network_mode") != Some(network.as_str())
            {
                actions.push(Action::SetKey { path: KeyPath::entry(context.entry.index, &["docker", "network_mode"]), value: TomlValue::String(network.clone()), after: None });
                why.push_str(&format!("; job and helper containers upload artifacts to the same URL, so they join `{network}` through `network_mode`"));
                summary.push_str(&format!(" and `network_mode = \"{network}\"`"));
                if let Some((clone_url, reason)) = clone_url_on_network(context, network, &candidate.url) {
                    actions.push(Action::SetKey { path: KeyPath::entry(context.entry.index, &["clone_url"]), value: TomlValue::String(clone_url.clone()), after: Some("url".into()) });
                    why.push_str(&format!("; {reason}, so jobs clone from `{clone_url}` instead"));
                    summary.push_str(&format!(" and `clone_url = \"{clone_url}\"`"));
                }
            }
            finding.help(format!("set `url = \"{}\"` ({why})", candidate.url)).fix(Fix::safe(summary, actions))
        }
        None => match network_commands(container, &context.facts.gitlabs) {
            Some((commands, gitlab)) => finding
                .help(format!("put the runner and GitLab on one user-defined network, then set `url = \"http://{gitlab}/\"` and run ci-doctor again to confirm it"))
                .fix(Fix::commands("join the runner and GitLab on one user-defined network", &commands)),
            None if candidates.is_empty() => finding.help("set `url` to an address of GitLab that resolves and answers inside the runner container, such as a GitLab container's name on a user-defined network both containers join"),
            None => finding.help("no GitLab address answered from the runner's view; check that GitLab is up (`docker logs` of its container) and that `url` uses its container port"),
        },
    }
}

/// Commands that put the runner container on a network with the first GitLab container it
/// shares none with, and that GitLab container's name.
fn network_commands(runner: &ContainerInfo, gitlabs: &[crate::facts::GitLabContainer]) -> Option<(Vec<String>, String)> {
    let gitlab = gitlabs.iter().find(|gitlab| topology::shared_user_networks(runner, &gitlab.container).is_empty())?;
    let name = &gitlab.container.name;
    let commands = match gitlab.container.networks.iter().find(|network| topology::is_user_defined(&network.name)) {
        Some(network) => vec![format!("docker network connect {} {}", network.name, runner.name)],
        None => vec![
            "docker network create ci-net".to_string(),
            format!("docker network connect ci-net {name}"),
            format!("docker network connect ci-net {}", runner.name),
        ],
    };
    Some((commands, name.clone()))
}

/// The `clone_url` jobs need once they join `network`: set when GitLab's advertised clone URL
/// then leads to the GitLab container itself on a port it does not listen on (Docker's embedded
/// DNS answers a container's name and host name on the networks it joined), or is loopback.
fn clone_url_on_network(context: &Context, network: &str, url: &str) -> Option<(String, String)> {
    if context.entry.keys.str("clone_url").is_some_and(|clone| !clone.is_empty()) {
        return None;
    }
    let source = topology::clone_source(context.facts, context.runner, context.entry)?;
    let parsed = url::Url::parse(&source.url).ok()?;
    let host = parsed.host_str()?;
    let base = topology::origin(&url::Url::parse(url).ok()?);
    if topology::is_loopback_host(host) {
        return Some((base, format!("GitLab advertises `{}`, a loopback address in job containers", source.url)));
    }
    let gitlab = topology::gitlab_for_entry(context.facts, context.runner, context.entry)?;
    let container = &gitlab.container;
    let resolves_to_gitlab = container.network(network).is_some()
        && (container.name.eq_ignore_ascii_case(host)
            || container.hostname.eq_ignore_ascii_case(host)
            || container.network(network).is_some_and(|attachment| attachment.aliases.iter().any(|alias| alias.eq_ignore_ascii_case(host))));
    let port = parsed.port_or_known_default()?;
    let internal = gitlab.internal_port(parsed.scheme() == "https");
    if resolves_to_gitlab && port != internal {
        return Some((base, format!(
            "on `{network}` GitLab's advertised `{}` resolves to container `{}` itself, which listens on port {internal}, not {port}",
            source.url, container.name
        )));
    }
    None
}

fn redirect_base(target: &str) -> String {
    match url::Url::parse(target) {
        Ok(parsed) => format!("{}://{}/", parsed.scheme(), parsed.host_str().map(|host| match parsed.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        }).unwrap_or_default()),
        Err(_) => target.to_string(),
    }
}
