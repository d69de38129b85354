//! Properties over generated configs: fixes touch only their own lines, keep the file valid and
//! are idempotent; generated secrets never reach any output, whatever the format.

use ci_doctor::checks::{self, Selection};
use ci_doctor::facts::config::{ConfigFile, ConfigOrigin, ParsedConfig};
use ci_doctor::facts::{Facts, RunnerKind, RunnerProcess};
use ci_doctor::fix::{Action, Fix, KeyPath, TomlValue, edit, flow, text};
use ci_doctor::render::{self, Report};
use proptest::prelude::*;

/// One generated `[[runners]]` entry.
#[derive(Debug, Clone)]
struct GeneratedEntry {
    name: String,
    url: String,
    token: String,
    indent: String,
    comment: Option<String>,
    docker_keys: Vec<(String, String)>,
}

fn entry_strategy() -> impl Strategy<Value = GeneratedEntry> {
    (
        "[a-z][a-z0-9-]{0,10}",
        prop_oneof![Just("http://gitlab/".to_string()), Just("https://gitlab.example.test".to_string()), Just("http://localhost:8080/".to_string())],
        "[A-Za-z0-9]{20}",
        prop_oneof![Just(String::new()), Just("  ".to_string()), Just("    ".to_string())],
        proptest::option::of("[a-z ]{1,20}"),
        proptest::collection::vec(
            prop_oneof![
                Just(("image".to_string(), "\"alpine:3.20\"".to_string())),
                Just(("privileged".to_string(), "false".to_string())),
                Just(("volumes".to_string(), "[\"/cache\"]".to_string())),
                Just(("privilaged".to_string(), "true".to_string())),
                Just(("shm_size".to_string(), "0".to_string())),
            ],
            0..4,
        ),
    )
        .prop_map(|(name, url, token, indent, comment, docker_keys)| GeneratedEntry { name, url, token: format!("glrt-{token}"), indent, comment, docker_keys })
}

fn render_config(concurrent: i64, entries: &[GeneratedEntry], crlf: bool) -> String {
    let mut text = format!("# generated\nconcurrent = {concurrent}\n");
    for entry in entries {
        let indent = &entry.indent;
        text.push_str("\n[[runners]]\n");
        if let Some(comment) = &entry.comment {
            text.push_str(&format!("{indent}# {comment}\n"));
        }
        text.push_str(&format!("{indent}name = \"{}\"\n{indent}url = \"{}\"\n{indent}token = \"{}\"\n{indent}executor = \"docker\"\n", entry.name, entry.url, entry.token));
        let mut seen = Vec::new();
        let keys: Vec<&(String, String)> = entry.docker_keys.iter().filter(|(key, _)| if seen.contains(key) { false } else { seen.push(key.clone()); true }).collect();
        if !keys.is_empty() {
            text.push_str(&format!("{indent}[runners.docker]\n"));
            for (key, value) in keys {
                text.push_str(&format!("{indent}  {key} = {value}\n"));
            }
        }
    }
    if crlf { text.replace('\n', "\r\n") } else { text }
}

fn action_strategy(entries: usize) -> impl Strategy<Value = Action> {
    let entry = 0..entries;
    prop_oneof![
        (entry.clone(), "[a-z]{3,8}").prop_map(|(entry, host)| Action::SetKey { path: KeyPath::entry(entry, &["url"]), value: TomlValue::String(format!("http://{host}/")), after: None }),
        (entry.clone(), "[a-z-]{3,8}").prop_map(|(entry, network)| Action::SetKey { path: KeyPath::entry(entry, &["docker", "network_mode"]), value: TomlValue::String(network), after: None }),
        (entry.clone(), "[a-z]{3,8}").prop_map(|(entry, host)| Action::SetKey { path: KeyPath::entry(entry, &["clone_url"]), value: TomlValue::String(format!("http://{host}")), after: Some("url".into()) }),
        entry.clone().prop_map(|entry| Action::AddToArray { path: KeyPath::entry(entry, &["docker", "volumes"]), value: "/certs/client".into() }),
        (1i64..64).prop_map(|value| Action::SetKey { path: KeyPath::top(&["concurrent"]), value: TomlValue::Integer(value), after: None }),
    ]
}

/// Applies `actions` the way `--fix` does: on the normalized text, then rebuilt around the
/// original bytes.
fn apply(original: &str, actions: &[Action]) -> String {
    let mut document: toml_edit::DocumentMut = text::normalize(original).parse().expect("generated config parses");
    for action in actions {
        let _ = edit::apply(&mut document, action);
    }
    text::reconstruct(original, &document.to_string())
}

/// Key names an action edits, to tell edited lines from untouched ones.
fn edited_names(actions: &[Action]) -> Vec<String> {
    let mut names: Vec<String> = actions
        .iter()
        .filter_map(|action| match action {
            Action::SetKey { path, .. } | Action::AddToArray { path, .. } => path.keys.last().cloned(),
            _ => None,
        })
        .collect();
    // A new key may need a new `[runners.docker]` header.
    names.push("[runners.docker]".into());
    names
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn fixes_touch_only_their_lines_and_are_idempotent(
        (entries, actions) in proptest::collection::vec(entry_strategy(), 1..4)
            .prop_flat_map(|entries| {
                let count = entries.len();
                (Just(entries), proptest::collection::vec(action_strategy(count), 1..5))
            }),
        concurrent in 1i64..8,
        crlf in any::<bool>(),
    ) {
        let original = render_config(concurrent, &entries, crlf);

        let fixed = apply(&original, &actions);
        prop_assert!(fixed.parse::<toml_edit::DocumentMut>().is_ok(), "invalid TOML:\n{}", fixed);
        prop_assert_eq!(apply(&fixed, &actions), fixed.clone(), "a second run changed the file");

        // Every original line that holds no edited key survives, in order, byte for byte.
        let names = edited_names(&actions);
        let touched = |line: &str| names.iter().any(|name| line.contains(name.as_str()));
        let kept: Vec<&str> = original.split_inclusive('\n').filter(|line| !touched(line)).collect();
        let mut output = fixed.split_inclusive('\n');
        for line in kept {
            prop_assert!(output.any(|candidate| candidate == line), "line {:?} was changed or moved", line);
        }
        if crlf {
            prop_assert!(!fixed.replace("\r\n", "").contains('\n'), "a line lost its CRLF ending");
        }
    }

    #[test]
    fn secrets_never_reach_any_output(
        body in "[A-Za-z0-9]{16,28}",
        prefix in prop_oneof![Just("glrt-"), Just("glrtr-"), Just("glpat-"), Just("GR1348941")],
        password in "[A-Za-z0-9]{10,20}",
        broken in any::<bool>(),
        placement in 0usize..4,
    ) {
        let token = format!("{prefix}{body}");
        let mut text = String::from("concurrent = 1\n\n[[runners]]\n  name = \"p\"\n");
        match placement {
            0 => text.push_str(&format!("  url = \"https://deploy:{password}@gitlab.example.test/\"\n  token = \"{token}\"\n")),
            1 => text.push_str(&format!("  # previous token: {token}\n  url = \"http://gitlab/\"\n  token = \"{token}\"\n")),
            2 => text.push_str(&format!("  url = \"http://gitlab/\"\n  tokn = \"{token}\"\n  token = \"{token}\"\n")),
            _ => text.push_str(&format!("  url = \"http://gitlab/\"\n  token = \"{token}\"\n  [runners.cache.s3]\n    SecretKey = \"{password}\"\n")),
        }
        text.push_str("  executor = \"docker\"\n  [runners.docker]\n    privilaged = true\n");
        if broken {
            text.push_str("  name = \"unterminated\n");
        }

        let config = ConfigFile {
            path: "/etc/gitlab-runner/config.toml".into(),
            origin: ConfigOrigin::Given,
            host_path: Some("/etc/gitlab-runner/config.toml".into()),
            meta: None,
            text: Ok(text.clone()),
            parsed: Some(ParsedConfig::parse(&text)),
            system_id: None,
        };
        let facts = Facts { runners: vec![RunnerProcess { kind: RunnerKind::Native(Default::default()), config }], ..Facts::default() };
        let findings = checks::run(&facts, &Selection::default());
        let report = Report { facts: &facts, findings: &findings, strict: false, ignored: &[], policy: None, project: None, elapsed: std::time::Duration::ZERO };
        let outputs = [
            render::human::render(&report, render::human::Style { color: false, verbose: true, fix_hint: true }),
            render::human::render(&report, render::human::Style { color: true, verbose: true, fix_hint: true }),
            render::json::render(&report, None),
            render::junit::render(&report),
            render::codequality::render(&report),
            render::markdown::render(&report, true),
        ];
        let plan = flow::plan(&facts, &findings, &|_| true);
        let diffs: Vec<String> = plan.files.iter().map(|file| flow::render_diff(file, &findings)).collect();
        // Tokens are `Secret`s even in `Debug`; logs also pass through the redacting writer.
        let debug = format!("{facts:?}");
        prop_assert!(!debug.contains(&token), "token in Debug output:\n{}", debug);
        let logged = ci_doctor::secret::redact(&debug);

        for output in outputs.iter().chain(diffs.iter()).chain(std::iter::once(&logged)) {
            prop_assert!(!output.contains(&token), "token in output:\n{}", output);
            prop_assert!(placement != 0 && placement != 3 || !output.contains(&password), "password in output:\n{}", output);
        }
    }
}

#[test]
fn fix_plan_for_generated_typo_keeps_comments() {
    let original = "# keep\nconcurrent = 1\n\n[[runners]]\n  # entry comment\n  name = \"x\"\n  executor = \"docker\"\n  [runners.docker]\n    privilaged = true # inline\n";
    let action = Action::RenameKey { path: KeyPath::entry(0, &["docker", "privilaged"]), new_name: "privileged".into() };
    let fixed = apply(original, std::slice::from_ref(&action));
    assert_eq!(fixed, original.replace("privilaged", "privileged"));
    let _ = Fix::safe("rename", vec![action]);
}
