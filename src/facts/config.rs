//! A runner's `config.toml`: where it was found, its text, and a parsed view with positions.
//!
//! The runner decodes keys case-insensitively, so every lookup here lower-cases the key path.
//! Values remember where they sit in the file, so findings can point at the line.

use std::collections::BTreeMap;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Serialize;
use toml_edit::{Item, Table, Value};

use crate::finding::Location;
use crate::secret::Secret;

/// Keys whose values are credentials (lower-case, as the runner matches them).
const SECRET_KEYS: &[&str] = &[
    "token", "password", "secretkey", "accesskey", "sessiontoken", "privatekey", "accountkey",
    "bearer_token", "sentry_dsn",
];

/// A config file as one runner process uses it.
#[derive(Clone, Serialize)]
pub struct ConfigFile {
    /// The path as the runner sees it (inside its container, for a containerized runner).
    pub path: PathBuf,
    /// How ci-doctor reached the file.
    pub origin: ConfigOrigin,
    /// The path on this host that ci-doctor read, when it read one.
    pub host_path: Option<PathBuf>,
    /// Mode, owner and size of the file, when known.
    pub meta: Option<FileMeta>,
    /// The file's text, or why it could not be read.
    #[serde(skip)]
    pub text: Result<String, ReadFailure>,
    /// The parsed view, when the text was read.
    pub parsed: Option<Result<ParsedConfig, SyntaxError>>,
    /// The runner's system id from `.runner_system_id` beside the config, when present.
    pub system_id: Option<String>,
}

/// How ci-doctor reached a config file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ConfigOrigin {
    /// A file on this host used by a runner installed here.
    HostFile,
    /// Named with `--config`.
    Given,
    /// A bind mount of the runner container; `source` is the host path of the mount.
    BindMount { container: String, source: PathBuf },
    /// A named volume of the runner container.
    Volume { container: String, volume: String },
    /// Copied out of the container through the Docker API, because no host path was readable.
    Copied { container: String, persisted: bool },
}

/// Why a config file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ReadFailure {
    /// Nothing exists at the path.
    NotFound,
    /// The file exists but this user may not read it.
    PermissionDenied,
    /// Something else went wrong; the message says what.
    Other { message: String },
}

/// Permission bits, owner and size of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct FileMeta {
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub len: u64,
}

/// A TOML syntax error with its position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SyntaxError {
    pub message: String,
    pub span: Range<usize>,
    pub line: usize,
    pub column: usize,
}

impl std::fmt::Debug for ConfigFile {
    /// Leaves out the text, which holds tokens in clear.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = match &self.text {
            Ok(text) => format!("{} bytes", text.len()),
            Err(failure) => format!("{failure:?}"),
        };
        f.debug_struct("ConfigFile")
            .field("path", &self.path)
            .field("origin", &self.origin)
            .field("host_path", &self.host_path)
            .field("meta", &self.meta)
            .field("text", &text)
            .field("parsed", &self.parsed)
            .field("system_id", &self.system_id)
            .finish()
    }
}

impl ConfigFile {
    /// The parsed view, when the file was read and parsed.
    pub fn parsed(&self) -> Option<&ParsedConfig> {
        match &self.parsed {
            Some(Ok(parsed)) => Some(parsed),
            _ => None,
        }
    }

    /// The name to show for the file: the host path when read from the host, otherwise
    /// `container:path`.
    pub fn display_path(&self) -> PathBuf {
        display_path(&self.path, &self.origin, self.host_path.as_deref())
    }

    /// A location in this file, with no key.
    pub fn location(&self) -> Location {
        Location { file: self.display_path(), key: None, line: None, column: None }
    }
}

fn display_path(path: &Path, origin: &ConfigOrigin, host_path: Option<&Path>) -> PathBuf {
    if let Some(host_path) = host_path {
        return host_path.to_path_buf();
    }
    match origin {
        ConfigOrigin::BindMount { container, .. }
        | ConfigOrigin::Volume { container, .. }
        | ConfigOrigin::Copied { container, .. } => PathBuf::from(format!("{container}:{}", path.display())),
        ConfigOrigin::HostFile | ConfigOrigin::Given => path.to_path_buf(),
    }
}

/// A TOML value as checks need it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Val {
    String(String),
    Secret(Secret),
    Integer(i64),
    Float(f64),
    Bool(bool),
    Datetime(String),
    Array(Vec<Val>),
    Table,
}

impl Val {
    /// The TOML type name used in messages and in the key reference.
    pub fn type_name(&self) -> &'static str {
        match self {
            Val::String(_) | Val::Secret(_) => "string",
            Val::Integer(_) => "integer",
            Val::Float(_) => "float",
            Val::Bool(_) => "boolean",
            Val::Datetime(_) => "datetime",
            Val::Array(_) => "array",
            Val::Table => "table",
        }
    }
}

/// A value and where it sits.
#[derive(Debug, Clone, Serialize)]
pub struct Located {
    pub value: Val,
    /// The key path as written in the file, for example `runners[0].docker.privileged`.
    pub key: String,
    pub line: usize,
    pub column: usize,
    /// Byte range of the key in the file.
    #[serde(skip)]
    pub key_span: Range<usize>,
}

/// Every key of one table tree, by lower-cased dotted path below that tree.
#[derive(Debug, Clone, Default, Serialize)]
pub struct KeyMap {
    pub keys: BTreeMap<String, Located>,
}

impl KeyMap {
    /// The value at `path` (dotted, any case), for example `docker.network_mode`.
    pub fn get(&self, path: &str) -> Option<&Located> {
        self.keys.get(&path.to_ascii_lowercase())
    }

    pub fn str(&self, path: &str) -> Option<&str> {
        match &self.get(path)?.value {
            Val::String(text) => Some(text),
            Val::Secret(secret) => Some(secret.expose()),
            _ => None,
        }
    }

    pub fn int(&self, path: &str) -> Option<i64> {
        match self.get(path)?.value {
            Val::Integer(number) => Some(number),
            _ => None,
        }
    }

    pub fn bool(&self, path: &str) -> Option<bool> {
        match self.get(path)?.value {
            Val::Bool(flag) => Some(flag),
            _ => None,
        }
    }

    pub fn secret(&self, path: &str) -> Option<&Secret> {
        match &self.get(path)?.value {
            Val::Secret(secret) => Some(secret),
            _ => None,
        }
    }

    /// The strings of an array value; non-string items are left out.
    pub fn strings(&self, path: &str) -> Vec<String> {
        match self.get(path).map(|located| &located.value) {
            Some(Val::Array(items)) => items
                .iter()
                .filter_map(|item| match item {
                    Val::String(text) => Some(text.clone()),
                    _ => None,
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Returns true when the key exists.
    pub fn has(&self, path: &str) -> bool {
        self.get(path).is_some()
    }
}

/// One `[[runners]]` entry.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// Position among the entries, from 0.
    pub index: usize,
    /// Line of the `[[runners]]` header.
    pub line: usize,
    pub keys: KeyMap,
    /// `$VAR` references the runner expands in `url` and `token`.
    pub expansions: Vec<Expansion>,
}

/// A `$VAR` reference in `url` or `token`, and whether ci-doctor could expand it.
#[derive(Debug, Clone, Serialize)]
pub struct Expansion {
    pub key: &'static str,
    pub variables: Vec<String>,
    /// The runner's environment was known, so the value was expanded as the runner does.
    pub resolved: bool,
}

/// Keys whose `$VAR` and `${VAR}` references the runner expands from its environment.
const EXPANDED_KEYS: &[&str] = &["url", "token"];

/// Expands `$VAR` in `url` and `token` of `entry` as the runner does (unset variables become
/// empty), when `env` is known; otherwise records the references as unresolved.
pub fn expand_entry(entry: &mut Entry, env: &super::docker::PrivateEnv) {
    for key in EXPANDED_KEYS {
        let Some(located) = entry.keys.keys.get_mut(*key) else { continue };
        let text = match &located.value {
            Val::String(text) => text.clone(),
            Val::Secret(secret) => secret.expose().to_string(),
            _ => continue,
        };
        let variables = references(&text);
        if variables.is_empty() {
            continue;
        }
        let resolved = env.0.is_some();
        if resolved {
            let expanded = expand(&text, |name| env.get(name).flatten().map(str::to_string));
            located.value = if *key == "token" { Val::Secret(Secret::new(expanded)) } else { Val::String(expanded) };
        }
        entry.expansions.push(Expansion { key, variables, resolved });
    }
}

/// Names referenced as `$NAME` or `${NAME}` in `text`.
pub fn references(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    expand(text, |name| {
        names.push(name.to_string());
        None
    });
    names
}

/// Expands `$NAME` and `${NAME}` the way Go's `os.Expand` does: an unknown name becomes empty.
pub fn expand(text: &str, mut lookup: impl FnMut(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        let (name, consumed) = if let Some(braced) = after.strip_prefix('{') {
            match braced.find('}') {
                Some(end) => (&braced[..end], end + 2),
                None => ("", 0),
            }
        } else {
            let end = after.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(after.len());
            (&after[..end], end)
        };
        if name.is_empty() {
            out.push('$');
            rest = after;
            continue;
        }
        out.push_str(&lookup(name).unwrap_or_default());
        rest = &after[consumed..];
    }
    out.push_str(rest);
    out
}

impl Entry {
    /// The entry's `name`, or `#<n>` (1-based) when it has none.
    pub fn label(&self) -> String {
        match self.keys.str("name") {
            Some(name) if !name.is_empty() => name.to_string(),
            _ => format!("#{}", self.index + 1),
        }
    }

    pub fn executor(&self) -> Option<&str> {
        self.keys.str("executor")
    }

    /// Returns true for the executors that create containers through a Docker daemon.
    pub fn uses_docker(&self) -> bool {
        matches!(
            self.executor(),
            Some("docker" | "docker-windows" | "docker+machine" | "docker-autoscaler")
        )
    }
}

/// One key as written in the file, for checks of names and types.
#[derive(Debug, Clone, Serialize)]
pub struct KeyOccurrence {
    /// Path segments as written, with array-of-tables indexes as their own segments.
    pub segments: Vec<String>,
    /// Lower-cased path without indexes, matching the key reference (`runners.docker.image`).
    pub schema_path: String,
    pub value: Val,
    pub line: usize,
    pub column: usize,
    #[serde(skip)]
    pub key_span: Range<usize>,
}

impl KeyOccurrence {
    /// The key path for messages: `runners[0].docker.privileged`.
    pub fn display_key(&self) -> String {
        display_key(&self.segments)
    }

    /// The schema path of the table holding this key. Computed from the segments, because a
    /// quoted key such as `"net.ipv4.ip_forward"` contains dots of its own.
    pub fn parent_schema_path(&self) -> String {
        schema_path(&self.segments[..self.segments.len().saturating_sub(1)])
    }
}

/// Lower-cased dotted path without array indexes.
fn schema_path(segments: &[String]) -> String {
    segments
        .iter()
        .filter(|segment| !segment.chars().all(|c| c.is_ascii_digit()))
        .map(|segment| segment.to_ascii_lowercase())
        .collect::<Vec<_>>()
        .join(".")
}

/// The parsed view of a config file.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ParsedConfig {
    /// Keys outside `[[runners]]`.
    pub global: KeyMap,
    pub entries: Vec<Entry>,
    /// Every key in file order.
    pub occurrences: Vec<KeyOccurrence>,
}

impl ParsedConfig {
    /// Parses `text`; `Err` carries the first syntax error with its position. Credentials in
    /// the text are registered as secrets first, so that even an error message cannot show
    /// them.
    pub fn parse(text: &str) -> Result<ParsedConfig, SyntaxError> {
        crate::secret::register_in_text(text, SECRET_KEYS);
        let document = toml_edit::Document::parse(text).map_err(|error| {
            let span = error.span().unwrap_or(0..0);
            let (line, column) = line_column(text, span.start);
            SyntaxError { message: error.message().trim().to_string(), span, line, column }
        })?;

        let mut parsed = ParsedConfig::default();
        let mut walker = Walker { text, lines: LineIndex::new(text), parsed: &mut parsed };
        walker.table(document.as_table(), &mut Vec::new(), None);
        Ok(parsed)
    }
}

/// Builds a location for the value at `located` in `file`.
pub fn locate(file: &ConfigFile, located: &Located) -> Location {
    Location {
        file: file.display_path(),
        key: Some(located.key.clone()),
        line: Some(located.line),
        column: Some(located.column),
    }
}

/// Builds a location for a key that does not exist yet, pointing at the entry header.
pub fn locate_missing(file: &ConfigFile, entry: Option<&Entry>, key: &str) -> Location {
    let (key, line) = match entry {
        Some(entry) => (format!("runners[{}].{key}", entry.index), Some(entry.line)),
        None => (key.to_string(), None),
    };
    Location { file: file.display_path(), key: Some(key), line, column: None }
}

/// 1-based line and column (in characters) of byte offset `at`.
pub fn line_column(text: &str, at: usize) -> (usize, usize) {
    let at = at.min(text.len());
    let before = &text[..floor_char_boundary(text, at)];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map(|newline| newline + 1).unwrap_or(0);
    let column = before[line_start..].chars().count() + 1;
    (line, column)
}

fn floor_char_boundary(text: &str, mut at: usize) -> usize {
    while at > 0 && !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn display_key(segments: &[String]) -> String {
    let mut out = String::new();
    for segment in segments {
        if segment.chars().all(|c| c.is_ascii_digit()) && !out.is_empty() {
            out.push_str(&format!("[{segment}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(segment);
        }
    }
    out
}

/// Walks the document once, filling the global map, the entries and the occurrences.
struct Walker<'a> {
    text: &'a str,
    lines: LineIndex,
    parsed: &'a mut ParsedConfig,
}

/// Byte offsets where the lines of a text start, so that a large config with thousands of keys
/// finds each key's line without scanning the text from the start every time.
struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    fn new(text: &str) -> LineIndex {
        let starts = std::iter::once(0).chain(text.match_indices('\n').map(|(at, _)| at + 1)).collect();
        LineIndex { starts }
    }

    /// 1-based line and column (in characters) of byte offset `at`, as [`line_column`] gives.
    fn line_column(&self, text: &str, at: usize) -> (usize, usize) {
        let at = floor_char_boundary(text, at.min(text.len()));
        let line = self.starts.partition_point(|start| *start <= at);
        let column = text[self.starts[line - 1]..at].chars().count() + 1;
        (line, column)
    }
}

impl Walker<'_> {
    /// Walks `table`, whose path is `segments`; `entry` is the `[[runners]]` index it is in.
    fn table(&mut self, table: &Table, segments: &mut Vec<String>, entry: Option<usize>) {
        for (name, item) in table.iter() {
            let key_span = table.key(name).and_then(|key| key.span()).unwrap_or(0..0);
            segments.push(name.to_string());

            let is_runners = segments.len() == 1 && name.eq_ignore_ascii_case("runners");
            match item {
                Item::ArrayOfTables(array) if is_runners => {
                    for (index, runner) in array.iter().enumerate() {
                        let header = runner.span().map(|span| span.start).unwrap_or(key_span.start);
                        let (line, _) = self.lines.line_column(self.text, header);
                        self.parsed.entries.push(Entry { index, line, keys: KeyMap::default(), expansions: Vec::new() });
                        segments.push(index.to_string());
                        self.table(runner, segments, Some(index));
                        segments.pop();
                    }
                }
                Item::ArrayOfTables(array) => {
                    self.record(segments, Val::Array(Vec::new()), key_span.clone(), entry);
                    for (index, nested) in array.iter().enumerate() {
                        segments.push(index.to_string());
                        self.table(nested, segments, entry);
                        segments.pop();
                    }
                }
                Item::Table(nested) => {
                    let span = if key_span.is_empty() { nested.span().unwrap_or(0..0) } else { key_span };
                    self.record(segments, Val::Table, span, entry);
                    self.table(nested, segments, entry);
                }
                Item::Value(Value::InlineTable(inline)) => {
                    self.record(segments, Val::Table, key_span, entry);
                    self.inline_table(inline, segments, entry);
                }
                Item::Value(value) => {
                    let value = convert(value, name);
                    self.record(segments, value, key_span, entry);
                }
                Item::None => {}
            }
            segments.pop();
        }
    }

    fn inline_table(&mut self, table: &toml_edit::InlineTable, segments: &mut Vec<String>, entry: Option<usize>) {
        for (name, value) in table.iter() {
            let key_span = table.key(name).and_then(|key| key.span()).unwrap_or(0..0);
            segments.push(name.to_string());
            if let Value::InlineTable(nested) = value {
                self.record(segments, Val::Table, key_span, entry);
                self.inline_table(nested, segments, entry);
            } else {
                let value = convert(value, name);
                self.record(segments, value, key_span, entry);
            }
            segments.pop();
        }
    }

    fn record(&mut self, segments: &[String], value: Val, key_span: Range<usize>, entry: Option<usize>) {
        let (line, column) = self.lines.line_column(self.text, key_span.start);
        let schema_path = schema_path(segments);
        let key = display_key(segments);

        self.parsed.occurrences.push(KeyOccurrence {
            segments: segments.to_vec(),
            schema_path,
            value: value.clone(),
            line,
            column,
            key_span: key_span.clone(),
        });

        // Entry maps hold paths below `runners[i]`; the global map holds the rest.
        let located = Located { value, key, line, column, key_span };
        match entry {
            Some(index) => {
                let below: Vec<String> = segments[2..].iter().map(|s| s.to_ascii_lowercase()).collect();
                if let Some(target) = self.parsed.entries.get_mut(index) {
                    target.keys.keys.entry(below.join(".")).or_insert(located);
                }
            }
            None => {
                let path: Vec<String> = segments.iter().map(|s| s.to_ascii_lowercase()).collect();
                self.parsed.global.keys.entry(path.join(".")).or_insert(located);
            }
        }
    }
}

fn convert(value: &Value, key: &str) -> Val {
    match value {
        Value::String(text) => {
            let text = text.value().clone();
            // A password in a URL's user info is a secret wherever the URL shows up.
            if text.contains('@') && (text.starts_with("http://") || text.starts_with("https://")) {
                crate::secret::redact_url(&text);
            }
            // Credential keys, and anything shaped like a GitLab token under any key (a
            // misspelled `tokn` still holds a real token).
            let shaped_like_token = crate::secret::TokenKind::of(&text) != crate::secret::TokenKind::Unprefixed;
            if (SECRET_KEYS.contains(&key.to_ascii_lowercase().as_str()) || shaped_like_token) && !text.is_empty() {
                Val::Secret(Secret::new(text))
            } else {
                Val::String(text)
            }
        }
        Value::Integer(number) => Val::Integer(*number.value()),
        Value::Float(number) => Val::Float(*number.value()),
        Value::Boolean(flag) => Val::Bool(*flag.value()),
        Value::Datetime(datetime) => Val::Datetime(datetime.value().to_string()),
        Value::Array(items) => Val::Array(items.iter().map(|item| convert(item, key)).collect()),
        Value::InlineTable(_) => Val::Table,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_index_agrees_with_a_scan_at_every_offset() {
        let text = "a = 1\n\n  é = \"ü\"\r\nlast";
        let index = LineIndex::new(text);
        for at in 0..=text.len() + 2 {
            assert_eq!(index.line_column(text, at), line_column(text, at), "offset {at}");
        }
    }

    const SAMPLE: &str = r#"# comment
concurrent = 2

[[runners]]
  name = "first"
  URL = "http://gitlab/"
  token = "glrt-FAKEconfigtest0001"
  executor = "docker"
  [runners.docker]
    privileged = false
    volumes = ["/cache", "/var/run/docker.sock:/var/run/docker.sock"]

[[runners]]
  name = "second"
  docker = { image = "alpine:3.20", network_mode = "ci-net" }
"#;

    #[test]
    fn entries_and_keys_are_found_with_positions() {
        let parsed = ParsedConfig::parse(SAMPLE).unwrap();
        assert_eq!(parsed.global.int("concurrent"), Some(2));
        assert_eq!(parsed.entries.len(), 2);

        let first = &parsed.entries[0];
        assert_eq!(first.line, 4);
        assert_eq!(first.keys.str("url"), Some("http://gitlab/"));
        let url = first.keys.get("url").unwrap();
        assert_eq!((url.line, url.column), (6, 3));
        assert_eq!(url.key, "runners[0].URL");
        assert_eq!(first.keys.bool("docker.privileged"), Some(false));
        assert_eq!(first.keys.strings("docker.volumes").len(), 2);
        assert!(first.uses_docker());
    }

    #[test]
    fn inline_tables_are_walked() {
        let parsed = ParsedConfig::parse(SAMPLE).unwrap();
        let second = &parsed.entries[1];
        assert_eq!(second.keys.str("docker.network_mode"), Some("ci-net"));
        let occurrence = parsed.occurrences.iter().find(|o| o.schema_path == "runners.docker.network_mode").unwrap();
        assert_eq!(occurrence.display_key(), "runners[1].docker.network_mode");
    }

    #[test]
    fn tokens_become_secrets() {
        let parsed = ParsedConfig::parse(SAMPLE).unwrap();
        let token = parsed.entries[0].keys.secret("token").unwrap();
        assert_eq!(token.to_string(), "glrt-FAKE…");
        let dump = format!("{parsed:?}");
        assert!(!dump.contains("glrt-FAKEconfigtest0001"));
    }

    #[test]
    fn variables_expand_like_go() {
        let lookup = |name: &str| (name == "HOST").then(|| "gitlab".to_string());
        assert_eq!(expand("http://$HOST/", lookup), "http://gitlab/");
        assert_eq!(expand("http://${HOST}:8080", lookup), "http://gitlab:8080");
        assert_eq!(expand("$MISSING-x", lookup), "-x");
        assert_eq!(expand("cost $ 5", lookup), "cost $ 5");
        assert_eq!(references("${A}/$B_C"), vec!["A", "B_C"]);
    }

    #[test]
    fn entries_expand_from_a_known_environment() {
        let mut parsed = ParsedConfig::parse("[[runners]]\n  url = \"$CI_SERVER_URL\"\n  token = \"${RUNNER_TOKEN}\"\n").unwrap();
        let env = crate::facts::docker::PrivateEnv(Some(vec![("CI_SERVER_URL".into(), "http://gitlab/".into()), ("RUNNER_TOKEN".into(), "glrt-FAKEexpanded00112233".into())]));
        expand_entry(&mut parsed.entries[0], &env);
        assert_eq!(parsed.entries[0].keys.str("url"), Some("http://gitlab/"));
        assert_eq!(parsed.entries[0].keys.secret("token").unwrap().to_string(), "glrt-FAKE…");
        assert!(parsed.entries[0].expansions.iter().all(|expansion| expansion.resolved));

        let mut unknown = ParsedConfig::parse("[[runners]]\n  url = \"$CI_SERVER_URL\"\n").unwrap();
        expand_entry(&mut unknown.entries[0], &crate::facts::docker::PrivateEnv(None));
        assert_eq!(unknown.entries[0].keys.str("url"), Some("$CI_SERVER_URL"));
        assert!(!unknown.entries[0].expansions[0].resolved);
    }

    #[test]
    fn url_passwords_become_secrets() {
        ParsedConfig::parse("[[runners]]\n  url = \"https://deploy:FAKEpassw0rd99@gitlab.example.test/\"\n").unwrap();
        assert!(!crate::secret::redact("FAKEpassw0rd99").contains("FAKEpassw0rd99"));
    }

    #[test]
    fn syntax_error_has_line_and_column() {
        let error = ParsedConfig::parse("concurrent = 1\n[[runners]]\n  name = \"x\n").unwrap_err();
        assert_eq!(error.line, 3);
        assert!(error.column >= 10, "{error:?}");
    }
}
