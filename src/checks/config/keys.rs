//! `config.keys`: every key is one the runner knows, with the right type.
//!
//! The runner decodes `config.toml` with BurntSushi/toml, which silently ignores unknown keys,
//! matches names case-insensitively, fails on type mismatches, and reads a bare integer as a
//! duration in nanoseconds. The key list is the reference in [`crate::reference`].

use crate::checks::Check;
use crate::facts::config::{ConfigFile, KeyOccurrence, Val};
use crate::facts::Facts;
use crate::finding::{Finding, Location, Status, Subject};
use crate::fix::{Action, Fix, KeyPath};
use crate::reference::KeyInfo;

pub struct Keys;

impl Check for Keys {
    fn id(&self) -> &'static str {
        "config.keys"
    }

    fn summary(&self) -> &'static str {
        "unknown or misspelled keys, wrong types, deprecated keys, integer durations"
    }

    fn explanation(&self) -> &'static str {
        include_str!("../../../checks/config.keys.md")
    }

    fn run(&self, facts: &Facts, out: &mut Vec<Finding>) {
        for (index, runner) in facts.runners.iter().enumerate() {
            let config = &runner.config;
            let Some(parsed) = config.parsed() else {
                let shown = config.display_path();
                out.push(Finding::new(self.id(), Status::Skipped, format!("`{}` did not parse (see `config.syntax`)", shown.display())).subject(Subject { runner: index, entry: None }));
                continue;
            };

            let before = out.len();
            for occurrence in &parsed.occurrences {
                let subject = Subject { runner: index, entry: entry_of(occurrence) };
                if let Some(finding) = judge(self.id(), config, occurrence) {
                    out.push(finding.subject(subject));
                }
            }
            for entry in &parsed.entries {
                if entry.executor().is_none() {
                    out.push(
                        Finding::new(self.id(), Status::Error, format!("runner `{}` has no `executor`", entry.label()))
                            .subject(Subject { runner: index, entry: Some(entry.index) })
                            .effect("the runner cannot run any job of this entry")
                            .location(Some(crate::facts::config::locate_missing(config, Some(entry), "executor")))
                            .help("set `executor`, for example `executor = \"docker\"`"),
                    );
                }
            }
            if out.len() == before {
                let count = parsed.occurrences.len();
                out.push(Finding::new(self.id(), Status::Ok, format!("all {count} keys of `{}` are known and well typed", config.display_path().display())).subject(Subject { runner: index, entry: None }));
            }
        }
    }
}

fn entry_of(occurrence: &KeyOccurrence) -> Option<usize> {
    let is_runners = occurrence.segments.first().is_some_and(|first| first.eq_ignore_ascii_case("runners"));
    if is_runners { occurrence.segments.get(1).and_then(|index| index.parse().ok()) } else { None }
}

fn schema() -> &'static std::collections::BTreeMap<String, KeyInfo> {
    crate::reference::keys()
}

/// Keys that are still accepted but should go, with what to do instead.
const DEPRECATED: &[(&str, &str)] = &[
    ("runners.machine.offpeakperiods", "use `[[runners.machine.autoscaling]]`; off-peak settings are ignored since runner 14.0"),
    ("runners.machine.offpeaktimezone", "use `[[runners.machine.autoscaling]]`; off-peak settings are ignored since runner 14.0"),
    ("runners.machine.offpeakidlecount", "use `[[runners.machine.autoscaling]]`; off-peak settings are ignored since runner 14.0"),
    ("runners.machine.offpeakidletime", "use `[[runners.machine.autoscaling]]`; off-peak settings are ignored since runner 14.0"),
    ("runners.cache.s3.uploadrolearn", "use `RoleARN`"),
    ("experimental.usage_logger.log_dir", "move it under `[experimental.usage_logger.logrotate]`"),
    ("experimental.usage_logger.max_backup_files", "move it under `[experimental.usage_logger.logrotate]`"),
    ("experimental.usage_logger.max_rotation_age", "move it under `[experimental.usage_logger.logrotate]`"),
    ("experimental.usage_logger.labels", "move it under `[experimental.usage_logger.logrotate]`"),
    ("runners.docker.helper_image_autoset_arch_and_os", "remove it: the docker executor does not read it (only `[runners.kubernetes]` does)"),
];

/// Keys the runner dropped, with where their setting lives now.
const REMOVED: &[(&str, &str)] = &[
    ("runners.cache.serveraddress", "move it into `[runners.cache.s3]` (flat cache keys were dropped)"),
    ("runners.cache.accesskey", "move it into `[runners.cache.s3]` (flat cache keys were dropped)"),
    ("runners.cache.secretkey", "move it into `[runners.cache.s3]` (flat cache keys were dropped)"),
    ("runners.cache.bucketname", "move it into `[runners.cache.s3]` (flat cache keys were dropped)"),
    ("runners.cache.bucketlocation", "move it into `[runners.cache.s3]` (flat cache keys were dropped)"),
    ("runners.cache.insecure", "move it into `[runners.cache.s3]` (flat cache keys were dropped)"),
    ("metrics_server", "use `listen_address`"),
    ("runners.tls-skip-verify", "trust GitLab's CA instead, with `tls-ca-file` or `certs/<host>.crt`"),
    ("runners.kubernetes.terminationgraceperiodseconds", "use `pod_termination_grace_period_seconds` or `cleanup_grace_period_seconds`"),
];

fn judge(id: &'static str, config: &ConfigFile, occurrence: &KeyOccurrence) -> Option<Finding> {
    let location = Location {
        file: config.display_path(),
        key: Some(occurrence.display_key()),
        line: Some(occurrence.line),
        column: Some(occurrence.column),
    };
    let key = occurrence.display_key();
    let written = occurrence.segments.last().cloned().unwrap_or_default();

    // Inside a free-form table (labels, sysctls, feature flags, ...) any name is valid;
    // only the value's type matters.
    if let Some(parent) = schema().get(&occurrence.parent_schema_path())
        && (parent.kind.starts_with("table of") || parent.kind == "table (free-form)")
    {
        return free_form_value(id, occurrence, parent.kind, &key, location);
    }

    if let Some((_, hint)) = REMOVED.iter().find(|(path, _)| *path == occurrence.schema_path) {
        return Some(
            Finding::new(id, Status::Error, format!("`{key}` is no longer a runner setting"))
                .effect("the runner ignores it, so the setting has no effect")
                .location(Some(location))
                .help(hint.to_string()),
        );
    }

    let Some(info) = schema().get(&occurrence.schema_path) else {
        return Some(unknown(id, occurrence, &key, location));
    };

    let canonical = crate::reference::canonical_name(info);
    if written != canonical {
        return Some(
            Finding::new(id, Status::Info, format!("`{key}` works, but the runner's spelling is `{canonical}`"))
                .effect("the runner matches key names case-insensitively, so this is only a matter of style")
                .location(Some(location))
                .help(format!("write `{canonical}`"))
                .fix(Fix::safe(format!("rename `{written}` to `{canonical}`"), vec![Action::RenameKey { path: key_path(occurrence), new_name: canonical.to_string() }])),
        );
    }

    if let Some(finding) = type_mismatch(id, occurrence, info.kind, &key, &location) {
        return Some(finding);
    }

    if let Some((_, hint)) = DEPRECATED.iter().find(|(path, _)| *path == occurrence.schema_path) {
        return Some(Finding::new(id, Status::Warning, format!("`{key}` is deprecated")).location(Some(location)).help(hint.to_string()));
    }
    deprecated_value(id, occurrence, &key, location)
}

fn unknown(id: &'static str, occurrence: &KeyOccurrence, key: &str, location: Location) -> Finding {
    let written = occurrence.segments.last().cloned().unwrap_or_default();
    let parent = occurrence.parent_schema_path();
    let siblings = crate::reference::children(&parent);

    let table = table_name(&occurrence.segments);
    match crate::suggest::closest(&written, siblings.iter().copied()) {
        Some(suggestion) => Finding::new(id, Status::Error, format!("unknown key `{key}`; did you mean `{suggestion}`?"))
            .effect(format!("the runner ignores unknown keys, so `{suggestion}` keeps its default"))
            .location(Some(location))
            .help(format!("rename `{written}` to `{suggestion}`"))
            .fix(Fix::safe(format!("rename `{written}` to `{suggestion}`"), vec![Action::RenameKey { path: key_path(occurrence), new_name: suggestion.to_string() }])),
        None => Finding::new(id, Status::Warning, format!("unknown key `{key}` in {table}"))
            .effect("the runner ignores it, so it has no effect")
            .location(Some(location))
            .help("remove it, or check the runner documentation for the setting you meant"),
    }
}

fn table_name(segments: &[String]) -> String {
    let parents: Vec<&str> = segments[..segments.len().saturating_sub(1)]
        .iter()
        .filter(|segment| !segment.chars().all(|c| c.is_ascii_digit()))
        .map(String::as_str)
        .collect();
    if parents.is_empty() { "the top level".to_string() } else { format!("`[{}]`", parents.join(".")) }
}

/// The fix path of an occurrence: the `[[runners]]` index and the keys below it.
fn key_path(occurrence: &KeyOccurrence) -> KeyPath {
    match entry_of(occurrence) {
        Some(entry) => KeyPath { entry: Some(entry), keys: occurrence.segments[2..].to_vec() },
        None => KeyPath { entry: None, keys: occurrence.segments.clone() },
    }
}

fn type_mismatch(id: &'static str, occurrence: &KeyOccurrence, expected: &str, key: &str, location: &Location) -> Option<Finding> {
    let value = &occurrence.value;
    if expected == "duration string" {
        return duration(id, value, key, location);
    }
    if matches_type(value, expected) {
        return None;
    }
    Some(
        Finding::new(id, Status::Error, format!("`{key}` must be {}, not {}", article(expected), article(value.type_name())))
            .effect("the runner refuses to load this file: it does not start, or a reload keeps the old config")
            .location(Some(location.clone()))
            .help(format!("write `{key}` as {}", article(expected))),
    )
}

fn matches_type(value: &Val, expected: &str) -> bool {
    let strings = |items: &Vec<Val>| items.iter().all(|item| matches!(item, Val::String(_) | Val::Secret(_)));
    match expected {
        "string" => matches!(value, Val::String(_) | Val::Secret(_)),
        "integer" => matches!(value, Val::Integer(_)),
        "float" => matches!(value, Val::Float(_) | Val::Integer(_)),
        "boolean" => matches!(value, Val::Bool(_)),
        "datetime" => matches!(value, Val::Datetime(_)),
        "array of strings" => matches!(value, Val::Array(items) if strings(items)),
        "array of integers" => matches!(value, Val::Array(items) if items.iter().all(|item| matches!(item, Val::Integer(_)))),
        "array of floats" => matches!(value, Val::Array(items) if items.iter().all(|item| matches!(item, Val::Float(_) | Val::Integer(_)))),
        "array of tables" => matches!(value, Val::Array(items) if items.iter().all(|item| matches!(item, Val::Table))),
        "string or array of strings" => matches!(value, Val::String(_)) || matches!(value, Val::Array(items) if strings(items)),
        kind if kind.starts_with("table") => matches!(value, Val::Table),
        _ => true,
    }
}

fn article(kind: &str) -> String {
    let first = kind.chars().next().unwrap_or('x');
    if "aeiou".contains(first) { format!("an {kind}") } else { format!("a {kind}") }
}

fn free_form_value(id: &'static str, occurrence: &KeyOccurrence, parent_kind: &str, key: &str, location: Location) -> Option<Finding> {
    let expected = match parent_kind {
        "table of strings" => "string",
        "table of booleans" => "boolean",
        "table of integers" => "integer",
        "table of string arrays" => "array of strings",
        _ => return None,
    };
    if matches_type(&occurrence.value, expected) {
        return None;
    }
    Some(
        Finding::new(id, Status::Error, format!("`{key}` must be {}, not {}", article(expected), article(occurrence.value.type_name())))
            .effect("the runner refuses to load this file: it does not start, or a reload keeps the old config")
            .location(Some(location))
            .help(format!("write `{key}` as {}", article(expected))),
    )
}

/// Durations are Go duration strings; a bare integer is read as nanoseconds.
fn duration(id: &'static str, value: &Val, key: &str, location: &Location) -> Option<Finding> {
    match value {
        Val::Integer(number) => Some(
            Finding::new(id, Status::Warning, format!("`{key} = {number}` is read as {number} nanoseconds"))
                .effect("a bare integer is a duration in nanoseconds to the runner, almost certainly not what was meant")
                .location(Some(location.clone()))
                .help(format!("write a duration string such as `\"{}\"`", seconds_as_duration(*number))),
        ),
        Val::String(text) if parse_go_duration(text).is_none() => Some(
            Finding::new(id, Status::Error, format!("`{key} = \"{text}\"` is not a duration the runner understands"))
                .effect("the runner refuses to load this file: it does not start, or a reload keeps the old config")
                .location(Some(location.clone()))
                .help("write a Go duration such as `\"90s\"`, `\"5m\"` or `\"1h30m\"` (units ns, us, ms, s, m, h; no spaces)"),
        ),
        Val::String(_) => None,
        other => Some(
            Finding::new(id, Status::Error, format!("`{key}` must be a duration string, not {}", article(other.type_name())))
                .effect("the runner refuses to load this file: it does not start, or a reload keeps the old config")
                .location(Some(location.clone()))
                .help("write a Go duration such as `\"90s\"` or `\"1h\"`"),
        ),
    }
}

/// Formats `seconds` the way Go prints durations (`1h30m0s` is written here as `1h30m`).
fn seconds_as_duration(seconds: i64) -> String {
    let seconds = seconds.max(0);
    let (hours, minutes, rest) = (seconds / 3600, seconds % 3600 / 60, seconds % 60);
    let mut out = String::new();
    if hours > 0 {
        out.push_str(&format!("{hours}h"));
    }
    if minutes > 0 {
        out.push_str(&format!("{minutes}m"));
    }
    if rest > 0 || out.is_empty() {
        out.push_str(&format!("{rest}s"));
    }
    out
}

/// Parses a Go duration (`time.ParseDuration`): an optional sign, then one or more decimal
/// numbers each with a unit. Returns nanoseconds.
pub fn parse_go_duration(text: &str) -> Option<f64> {
    let mut rest = text.strip_prefix(['-', '+']).unwrap_or(text);
    if rest == "0" {
        return Some(0.0);
    }
    if rest.is_empty() {
        return None;
    }
    let mut total = 0.0;
    while !rest.is_empty() {
        let number_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let number: f64 = rest[..number_len].parse().ok()?;
        rest = &rest[number_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        total += number * scale;
        rest = &rest[unit_len..];
    }
    Some(total)
}

fn deprecated_value(id: &'static str, occurrence: &KeyOccurrence, key: &str, location: Location) -> Option<Finding> {
    match (occurrence.schema_path.as_str(), &occurrence.value) {
        ("runners.executor", Val::String(executor)) if executor == "docker+machine" => Some(
            Finding::new(id, Status::Warning, format!("`{key} = \"docker+machine\"` uses an executor deprecated since runner 17.5"))
                .effect("its removal is planned for runner 20.0; the runner stops taking jobs after an upgrade past it")
                .location(Some(location))
                .help("move to `executor = \"docker-autoscaler\"` with `[runners.autoscaler]`"),
        ),
        ("runners.url", Val::String(url)) if url.trim_end_matches('/').ends_with("/ci") => Some(
            Finding::new(id, Status::Warning, format!("`{key}` ends in the legacy `/ci` suffix"))
                .effect("the runner strips it and logs a deprecation warning on every start")
                .location(Some(location))
                .help("drop `/ci` from the URL"),
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::facts::config::{ConfigOrigin, ParsedConfig};

    fn findings(text: &str) -> Vec<Finding> {
        let config = ConfigFile {
            path: "/etc/gitlab-runner/config.toml".into(),
            origin: ConfigOrigin::Given,
            host_path: Some("/etc/gitlab-runner/config.toml".into()),
            meta: None,
            text: Ok(text.to_string()),
            parsed: Some(ParsedConfig::parse(text)),
            system_id: None,
        };
        let facts = Facts {
            runners: vec![crate::facts::RunnerProcess { kind: crate::facts::RunnerKind::Native(Default::default()), config }],
            ..Facts::default()
        };
        let mut out = Vec::new();
        Keys.run(&facts, &mut out);
        out
    }

    #[test]
    fn misspelled_key_is_an_error_with_a_suggestion() {
        let out = findings("[[runners]]\n  executor = \"docker\"\n  [runners.docker]\n    privilaged = true\n");
        assert_eq!(out.len(), 1, "{out:#?}");
        assert_eq!(out[0].status, Status::Error);
        assert_eq!(out[0].message, "unknown key `runners[0].docker.privilaged`; did you mean `privileged`?");
        assert_eq!(out[0].location.as_ref().unwrap().line, Some(4));
        assert_eq!(out[0].fix.as_ref().unwrap().actions[0], Action::RenameKey { path: KeyPath::entry(0, &["docker", "privilaged"]), new_name: "privileged".into() });
    }

    #[test]
    fn case_only_difference_is_info() {
        let out = findings("[[runners]]\n  executor = \"docker\"\n  URL = \"http://gitlab/\"\n");
        assert_eq!(out[0].status, Status::Info);
        assert!(out[0].message.contains("spelling is `url`"), "{}", out[0].message);
    }

    #[test]
    fn wrong_type_is_an_error() {
        let out = findings("concurrent = \"4\"\n");
        assert_eq!(out[0].status, Status::Error);
        assert_eq!(out[0].message, "`concurrent` must be an integer, not a string");
    }

    #[test]
    fn integer_duration_is_read_as_nanoseconds() {
        let out = findings("[[runners]]\n  executor = \"shell\"\n  unhealthy_interval = 3600\n");
        assert_eq!(out[0].status, Status::Warning);
        assert!(out[0].help.as_deref().unwrap().contains("\"1h\""), "{:?}", out[0].help);
    }

    #[test]
    fn invalid_duration_string_is_an_error() {
        let out = findings("[[runners]]\n  executor = \"shell\"\n  unhealthy_interval = \"1 h\"\n");
        assert_eq!(out[0].status, Status::Error);
    }

    #[test]
    fn free_form_tables_accept_any_name() {
        let out = findings("[[runners]]\n  executor = \"docker\"\n  [runners.feature_flags]\n    FF_NETWORK_PER_BUILD = true\n  [runners.docker.sysctls]\n    \"net.ipv4.ip_forward\" = \"1\"\n");
        assert_eq!(out.len(), 1, "{out:#?}");
        assert_eq!(out[0].status, Status::Ok);
    }

    #[test]
    fn removed_flat_cache_key_says_where_it_went() {
        let out = findings("[[runners]]\n  executor = \"docker\"\n  [runners.cache]\n    ServerAddress = \"s3.example.test\"\n");
        assert!(out[0].help.as_deref().unwrap().contains("[runners.cache.s3]"));
    }

    #[test]
    fn missing_executor_is_an_error() {
        let out = findings("[[runners]]\n  name = \"x\"\n");
        assert_eq!(out[0].message, "runner `x` has no `executor`");
    }

    #[test]
    fn go_durations_parse() {
        assert_eq!(parse_go_duration("1h30m"), Some(5400e9));
        assert_eq!(parse_go_duration("1.5s"), Some(1.5e9));
        assert_eq!(parse_go_duration("0"), Some(0.0));
        assert_eq!(parse_go_duration("5min"), None);
        assert_eq!(parse_go_duration("10"), None);
        assert_eq!(parse_go_duration(""), None);
    }
}
