//! Turns pipeline files into jobs: includes, `!reference`, `extends:` and defaults.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::yaml::{self, Node, Value};
use super::{Image, Job, Pipeline, PipelineError, Place, Service, default_aliases};

/// Largest pipeline file read; GitLab itself rejects configurations past a few megabytes.
const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// GitLab's limits: at most 150 included files, `extends` nested at most 11 levels, and
/// `!reference` tags nested at most 10 levels.
const MAX_INCLUDES: usize = 150;
const MAX_EXTENDS_DEPTH: usize = 11;
const MAX_REFERENCE_DEPTH: usize = 10;

/// Top-level keys that are not jobs.
const RESERVED: &[&str] = &[
    "image", "services", "stages", "types", "before_script", "after_script", "variables", "cache", "include", "default",
    "workflow", "spec",
];

/// Keys a job takes from `default:` (or the legacy globals) when it has none of its own.
const DEFAULTABLE: &[&str] = &["image", "services", "before_script", "after_script", "tags", "cache"];

/// Reads the pipeline at `path`; `root` is the top of the project, which `include: local`
/// paths are relative to.
pub fn read(path: &Path, root: &Path) -> Result<Pipeline, PipelineError> {
    let mut reader = Reader { root: root.to_path_buf(), files: Vec::new(), not_followed: Vec::new(), problems: Vec::new() };
    let main = reader.load(path, None)?;
    let merged = reader.with_includes(main, 0)?;

    let mut merged = merged;
    if let Value::Map(entries) = &mut merged.value {
        entries.retain(|(key, _)| key != "include");
    }
    let resolved = resolve_references(&merged, &merged, 0, &mut reader.problems, &reader.files);
    let jobs = reader.jobs(&resolved);
    let stages = resolved
        .get("stages")
        .map(|stages| stages.items().iter().filter_map(Node::scalar_text).collect())
        .unwrap_or_else(|| ["build", "test", "deploy"].map(str::to_string).to_vec());

    Ok(Pipeline {
        path: path.to_path_buf(),
        files: reader.files,
        stages,
        jobs,
        not_followed: reader.not_followed,
        problems: reader.problems,
    })
}

struct Reader {
    root: PathBuf,
    files: Vec<PathBuf>,
    not_followed: Vec<(String, Place)>,
    problems: Vec<(String, Place)>,
}

impl Reader {
    /// Reads and parses one file; `included_at` is where an `include:` named it.
    fn load(&mut self, path: &Path, included_at: Option<&Place>) -> Result<Node, PipelineError> {
        let at = |message: String| PipelineError { message, place: included_at.cloned() };
        let meta = std::fs::metadata(path).map_err(|error| at(format!("failed to read `{}`: {error}", path.display())))?;
        if meta.len() > MAX_FILE_BYTES {
            return Err(at(format!("`{}` is larger than {} MiB, far larger than any pipeline", path.display(), MAX_FILE_BYTES / 1024 / 1024)));
        }
        let bytes = std::fs::read(path).map_err(|error| at(format!("failed to read `{}`: {error}", path.display())))?;
        let text = String::from_utf8(bytes).map_err(|error| at(format!("`{}` is not valid UTF-8 (first invalid byte at offset {})", path.display(), error.utf8_error().valid_up_to())))?;

        let index = self.files.len();
        self.files.push(path.to_path_buf());
        yaml::parse(&text, index).map_err(|error| PipelineError {
            message: format!("`{}` is not valid YAML: {}", path.display(), error.message),
            place: Some(Place::new(path, error.line)),
        })
    }

    fn place(&self, node: &Node) -> Place {
        Place::new(self.files.get(node.file).map(PathBuf::as_path).unwrap_or(Path::new("")), node.anchor_line())
    }

    /// Merges the local files `node` includes under it: included content first, the including
    /// file on top, as GitLab does.
    fn with_includes(&mut self, node: Node, depth: usize) -> Result<Node, PipelineError> {
        let Some(include) = node.get("include").cloned() else { return Ok(node) };
        let entries: Vec<Node> = match &include.value {
            Value::Seq(items) => items.clone(),
            _ => vec![include.clone()],
        };

        let mut base = Node::new(Value::Map(Vec::new()), node.line, node.file);
        for entry in entries {
            let place = self.place(&entry);
            let local = match &entry.value {
                Value::Str(text) if text.starts_with("http://") || text.starts_with("https://") => {
                    self.not_followed.push((format!("`include: {text}` (remote) is not followed: ci-doctor reads only local files"), place));
                    continue;
                }
                Value::Str(text) => text.clone(),
                Value::Map(_) => match entry.get("local").and_then(Node::as_str) {
                    Some(local) => local.to_string(),
                    None => {
                        let kind = ["project", "remote", "template", "component"].into_iter().find(|kind| entry.get(kind).is_some()).unwrap_or("unknown");
                        self.not_followed.push((format!("`include: {kind}` is not followed: ci-doctor reads only local files"), place));
                        continue;
                    }
                },
                _ => continue,
            };
            if local.contains('*') {
                // TODO: wildcard local includes (`configs/*.yml`) are not expanded yet.
                self.not_followed.push((format!("`include: {local}` uses a wildcard, which ci-doctor does not expand yet"), place));
                continue;
            }
            if self.files.len() >= MAX_INCLUDES || depth >= MAX_INCLUDES {
                self.problems.push((format!("more than {MAX_INCLUDES} included files; GitLab rejects the pipeline"), place));
                break;
            }
            let path = self.root.join(local.trim_start_matches('/'));
            if !path.is_file() {
                self.problems.push((format!("local file `{local}` does not exist; GitLab rejects the pipeline"), place));
                continue;
            }
            if self.files.contains(&path) {
                continue;
            }
            let included = self.load(&path, Some(&place))?;
            let included = self.with_includes(included, depth + 1)?;
            base = deep_merge(&base, &included);
        }

        let mut own = node;
        if let Value::Map(entries) = &mut own.value {
            entries.retain(|(key, _)| key != "include");
        }
        let mut merged = deep_merge(&base, &own);
        merged.line = own.line;
        merged.file = own.file;
        Ok(merged)
    }

    /// Builds the visible jobs from the resolved configuration.
    fn jobs(&mut self, config: &Node) -> Vec<Job> {
        let defaults = self.defaults(config);
        let global_variables = variables(config.get("variables"));
        let mut jobs = Vec::new();

        for (name, node) in config.entries() {
            if RESERVED.contains(&name.as_str()) || name.starts_with('.') || !matches!(node.value, Value::Map(_)) {
                continue;
            }
            let extended = match extended(config, name, &mut Vec::new()) {
                Ok(extended) => extended,
                Err(message) => {
                    self.problems.push((message, self.place(node)));
                    node.clone()
                }
            };
            jobs.push(self.job(name, node, &extended, &defaults, &global_variables));
        }
        jobs
    }

    /// `default:` values, with the legacy top-level globals as fallback.
    fn defaults(&self, config: &Node) -> BTreeMap<String, Node> {
        let mut defaults = BTreeMap::new();
        for key in DEFAULTABLE {
            if let Some(value) = config.get("default").and_then(|default| default.get(key)).or_else(|| config.get(key)) {
                defaults.insert(key.to_string(), value.clone());
            }
        }
        defaults
    }

    fn job(&self, name: &str, declared: &Node, node: &Node, defaults: &BTreeMap<String, Node>, global_variables: &BTreeMap<String, String>) -> Job {
        let inherit = node.get("inherit");
        let inherits = |section: &str, key: &str| match inherit.and_then(|inherit| inherit.get(section)).map(|value| &value.value) {
            Some(Value::Bool(flag)) => *flag,
            Some(Value::Seq(items)) => items.iter().any(|item| item.as_str() == Some(key)),
            _ => true,
        };
        let value_of = |key: &str| node.get(key).or_else(|| if inherits("default", key) { defaults.get(key) } else { None });

        let mut variables: BTreeMap<String, String> =
            global_variables.iter().filter(|(key, _)| inherits("variables", key)).map(|(key, value)| (key.clone(), value.clone())).collect();
        variables.extend(self::variables(node.get("variables")));

        let mut script = Vec::new();
        for key in ["before_script", "script", "after_script"] {
            if let Some(lines) = value_of(key) {
                flatten_lines(lines, &mut script);
            }
        }

        Job {
            name: name.to_string(),
            place: self.place(declared),
            stage: node.get("stage").and_then(Node::scalar_text).unwrap_or_else(|| "test".to_string()),
            image: value_of("image").and_then(|image| self.image(image)),
            services: value_of("services").map(|services| services.items().iter().filter_map(|service| self.service(service)).collect()).unwrap_or_default(),
            variables,
            tags: value_of("tags").map(|tags| tags.items().iter().filter_map(Node::scalar_text).collect()).unwrap_or_default(),
            script,
        }
    }

    fn image(&self, node: &Node) -> Option<Image> {
        match &node.value {
            Value::Str(name) => Some(Image { name: name.clone(), place: self.place(node), ..Image::default() }),
            Value::Map(_) => Some(Image {
                name: node.get("name").and_then(Node::scalar_text)?,
                entrypoint: node.get("entrypoint").map(strings),
                pull_policy: node.get("pull_policy").map(strings_or_one).unwrap_or_default(),
                place: self.place(node),
            }),
            _ => None,
        }
    }

    fn service(&self, node: &Node) -> Option<Service> {
        let (name, alias) = match &node.value {
            Value::Str(name) => (name.clone(), None),
            Value::Map(_) => (node.get("name").and_then(Node::scalar_text)?, node.get("alias").and_then(Node::scalar_text)),
            _ => return None,
        };
        let aliases = match alias {
            Some(alias) => alias.split([' ', ',']).filter(|alias| !alias.is_empty()).map(str::to_string).collect(),
            None => default_aliases(&name),
        };
        Some(Service {
            name,
            aliases,
            command: node.get("command").map(strings),
            entrypoint: node.get("entrypoint").map(strings),
            variables: variables(node.get("variables")),
            place: self.place(node),
        })
    }
}

/// Resolves `!reference [job, key, ...]` tags against the whole configuration.
fn resolve_references(node: &Node, config: &Node, depth: usize, problems: &mut Vec<(String, Place)>, files: &[PathBuf]) -> Node {
    let place = |node: &Node| Place::new(files.get(node.file).map(PathBuf::as_path).unwrap_or(Path::new("")), node.anchor_line());
    match &node.value {
        Value::Reference(path) => {
            if depth >= MAX_REFERENCE_DEPTH {
                problems.push((format!("`!reference [{}]` is nested more than {MAX_REFERENCE_DEPTH} levels deep", path.join(", ")), place(node)));
                return Node::new(Value::Null, node.line, node.file);
            }
            let mut target = Some(config);
            for key in path {
                target = target.and_then(|current| current.get(key));
            }
            match target {
                Some(found) if path.is_empty() => found.clone(),
                Some(found) => {
                    // The value lands where the tag was, so it keeps the tag's position.
                    let resolved = resolve_references(found, config, depth + 1, problems, files);
                    Node { value: resolved.value, ..node.clone() }
                }
                None => {
                    problems.push((format!("`!reference [{}]` could not be found", path.join(", ")), place(node)));
                    Node::new(Value::Null, node.line, node.file)
                }
            }
        }
        Value::Seq(items) => {
            let items = items.iter().map(|item| resolve_references(item, config, depth, problems, files)).collect();
            Node { value: Value::Seq(items), ..node.clone() }
        }
        Value::Map(entries) => {
            let entries = entries.iter().map(|(key, value)| (key.clone(), resolve_references(value, config, depth, problems, files))).collect();
            Node { value: Value::Map(entries), ..node.clone() }
        }
        _ => node.clone(),
    }
}

/// Returns job `name` with its `extends:` chain applied: parents merged in order, the job on top.
fn extended(config: &Node, name: &str, stack: &mut Vec<String>) -> Result<Node, String> {
    let node = config.get(name).ok_or_else(|| format!("`extends: {name}` names a job that does not exist"))?;
    let parents: Vec<String> = match node.get("extends").map(|extends| &extends.value) {
        Some(Value::Str(parent)) => vec![parent.clone()],
        Some(Value::Seq(items)) => items.iter().filter_map(Node::scalar_text).collect(),
        _ => return Ok(node.clone()),
    };
    if stack.iter().any(|seen| seen == name) {
        return Err(format!("`extends:` of `{name}` is part of a circular chain"));
    }
    if stack.len() >= MAX_EXTENDS_DEPTH {
        return Err(format!("`extends:` of `{name}` is nested more than {MAX_EXTENDS_DEPTH} levels deep"));
    }

    stack.push(name.to_string());
    let mut merged = Node::new(Value::Map(Vec::new()), node.line, node.file);
    for parent in &parents {
        let parent = extended(config, parent, stack)?;
        merged = deep_merge(&merged, &parent);
    }
    stack.pop();

    let mut own = node.clone();
    if let Value::Map(entries) = &mut own.value {
        entries.retain(|(key, _)| key != "extends");
    }
    let mut result = deep_merge(&merged, &own);
    result.line = node.line;
    result.file = node.file;
    result.key_line = node.key_line;
    Ok(result)
}

/// GitLab's deep merge: mappings merge key by key, recursively; any other value from `over`
/// replaces the one in `base`.
fn deep_merge(base: &Node, over: &Node) -> Node {
    match (&base.value, &over.value) {
        (Value::Map(base_entries), Value::Map(over_entries)) => {
            let mut entries = base_entries.clone();
            for (key, value) in over_entries {
                match entries.iter_mut().find(|(known, _)| known == key) {
                    Some((_, existing)) => *existing = deep_merge(existing, value),
                    None => entries.push((key.clone(), value.clone())),
                }
            }
            let mut merged = Node::new(Value::Map(entries), over.line, over.file);
            merged.key_line = over.key_line;
            merged
        }
        _ => over.clone(),
    }
}

/// `variables:` as text: values may be scalars or `{ value: ..., description: ... }`.
fn variables(node: Option<&Node>) -> BTreeMap<String, String> {
    let Some(node) = node else { return BTreeMap::new() };
    node.entries()
        .iter()
        .filter_map(|(key, value)| {
            let text = match &value.value {
                Value::Map(_) => value.get("value").and_then(Node::scalar_text).unwrap_or_default(),
                _ => value.scalar_text()?,
            };
            Some((key.clone(), text))
        })
        .collect()
}

fn strings(node: &Node) -> Vec<String> {
    node.items().iter().filter_map(Node::scalar_text).collect()
}

fn strings_or_one(node: &Node) -> Vec<String> {
    match &node.value {
        Value::Seq(_) => strings(node),
        _ => node.scalar_text().into_iter().collect(),
    }
}

/// Script lines; nested sequences (from `!reference`) are flattened as GitLab does.
fn flatten_lines(node: &Node, out: &mut Vec<String>) {
    match &node.value {
        Value::Seq(items) => {
            for item in items {
                flatten_lines(item, out);
            }
        }
        _ => out.extend(node.scalar_text()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pipeline(files: &[(&str, &str)]) -> Pipeline {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        read(&dir.path().join(files[0].0), dir.path()).unwrap()
    }

    fn job<'a>(pipeline: &'a Pipeline, name: &str) -> &'a Job {
        pipeline.jobs.iter().find(|job| job.name == name).unwrap_or_else(|| panic!("no job {name}: {:?}", pipeline.jobs))
    }

    #[test]
    fn global_image_services_and_variables_reach_jobs() {
        let pipeline = pipeline(&[(".gitlab-ci.yml", "image: docker:stable\nservices:\n  - docker:dind\nvariables:\n  DOCKER_HOST: tcp://docker:2375\nbuild:\n  script:\n    - docker info\n")]);
        let build = job(&pipeline, "build");
        assert_eq!(build.image.as_ref().unwrap().name, "docker:stable");
        assert_eq!(build.services[0].name, "docker:dind");
        assert_eq!(build.services[0].aliases, vec!["docker"]);
        assert_eq!(build.variable("DOCKER_HOST"), Some("tcp://docker:2375"));
        assert!(build.calls_docker());
        assert_eq!(build.place.line, 6);
    }

    #[test]
    fn extends_merges_parents_under_the_job() {
        let text = ".dind:\n  services:\n    - name: docker:27-dind\n      alias: dockerd\n  variables:\n    DOCKER_TLS_CERTDIR: \"/certs\"\n.base:\n  image: docker:27\n  tags: [docker]\nbuild:\n  extends: [.base, .dind]\n  variables:\n    DOCKER_HOST: tcp://dockerd:2376\n  script: [docker build .]\n";
        let pipeline = pipeline(&[(".gitlab-ci.yml", text)]);
        assert_eq!(pipeline.jobs.len(), 1, "hidden jobs are not jobs");
        let build = job(&pipeline, "build");
        assert_eq!(build.image.as_ref().unwrap().name, "docker:27");
        assert_eq!(build.tags, vec!["docker"]);
        assert_eq!(build.services[0].aliases, vec!["dockerd"]);
        assert_eq!(build.variable("DOCKER_TLS_CERTDIR"), Some("/certs"));
        assert_eq!(build.variable("DOCKER_HOST"), Some("tcp://dockerd:2376"));
    }

    #[test]
    fn anchors_and_references_are_resolved() {
        let text = ".setup:\n  script:\n    - apk add docker-cli\n.services: &dind\n  services: [docker:dind]\ntest:\n  <<: *dind\n  image: alpine:3.20\n  script:\n    - !reference [.setup, script]\n    - docker ps\n";
        let pipeline = pipeline(&[(".gitlab-ci.yml", text)]);
        let test = job(&pipeline, "test");
        assert_eq!(test.services[0].name, "docker:dind");
        assert_eq!(test.script, vec!["apk add docker-cli", "docker ps"]);
    }

    #[test]
    fn default_section_applies_unless_inherit_says_no() {
        let text = "default:\n  image: ruby:3.3\n  tags: [shared]\nvariables:\n  A: \"1\"\n  B: \"2\"\nfirst:\n  script: [x]\nsecond:\n  inherit:\n    default: false\n    variables: [B]\n  script: [y]\n";
        let pipeline = pipeline(&[(".gitlab-ci.yml", text)]);
        assert_eq!(job(&pipeline, "first").image.as_ref().unwrap().name, "ruby:3.3");
        assert_eq!(job(&pipeline, "first").tags, vec!["shared"]);
        let second = job(&pipeline, "second");
        assert!(second.image.is_none());
        assert!(second.tags.is_empty());
        assert_eq!(second.variable("A"), None);
        assert_eq!(second.variable("B"), Some("2"));
    }

    #[test]
    fn local_includes_are_merged_and_others_reported() {
        let main = "include:\n  - local: /ci/dind.yml\n  - project: group/templates\n    file: /docker.yml\n  - https://example.test/ci.yml\nbuild:\n  extends: .dind\n  script: [docker info]\n";
        let included = ".dind:\n  services: [docker:27-dind]\n";
        let pipeline = pipeline(&[(".gitlab-ci.yml", main), ("ci/dind.yml", included)]);
        assert_eq!(job(&pipeline, "build").services[0].name, "docker:27-dind");
        assert_eq!(pipeline.files.len(), 2);
        assert_eq!(pipeline.not_followed.len(), 2, "{:?}", pipeline.not_followed);
        assert!(pipeline.not_followed[0].0.contains("project"));
    }

    #[test]
    fn problems_are_reported_with_places() {
        let text = "a:\n  extends: .missing\n  script: [x]\nb:\n  script: !reference [.nothing, script]\nc:\n  extends: c\n  script: [z]\n";
        let pipeline = pipeline(&[(".gitlab-ci.yml", text)]);
        let messages: Vec<&str> = pipeline.problems.iter().map(|(message, _)| message.as_str()).collect();
        assert!(messages.iter().any(|message| message.contains(".missing")), "{messages:?}");
        assert!(messages.iter().any(|message| message.contains("could not be found")), "{messages:?}");
        assert!(messages.iter().any(|message| message.contains("circular")), "{messages:?}");
    }

    #[test]
    fn syntax_error_is_an_error_with_a_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".gitlab-ci.yml");
        std::fs::write(&path, "build:\n  script: [a\n  image: x\n").unwrap();
        let error = read(&path, dir.path()).unwrap_err();
        assert!(error.place.as_ref().unwrap().line >= 2, "{error:?}");
        assert!(error.message.contains("not valid YAML"), "{error:?}");
    }
}
