//! The pipeline: what `.gitlab-ci.yml` requires of the runners.
//!
//! Reading follows GitLab's order: parse each file, merge `include: local` files under the main
//! file, resolve `!reference` tags, apply `extends:`, then give every job its `default:` and
//! global values. Other include kinds (project, remote, template, component) are not fetched;
//! the pipeline says which were left out.

mod resolve;
pub mod yaml;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

pub use resolve::read;

/// A place in a pipeline file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Place {
    pub file: PathBuf,
    pub line: usize,
}

/// The pipeline as jobs see it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Pipeline {
    /// The main file.
    pub path: PathBuf,
    /// Every file read: the main file, then local includes.
    pub files: Vec<PathBuf>,
    pub stages: Vec<String>,
    /// Visible jobs, in file order, with `extends:`, `default:` and globals applied.
    pub jobs: Vec<Job>,
    /// Includes that were not followed, and why.
    pub not_followed: Vec<(String, Place)>,
    /// Problems GitLab would reject the pipeline for, other than syntax.
    pub problems: Vec<(String, Place)>,
}

/// One job.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Job {
    pub name: String,
    pub place: Place,
    pub stage: String,
    pub image: Option<Image>,
    pub services: Vec<Service>,
    /// Global variables overlaid with the job's own.
    pub variables: BTreeMap<String, String>,
    pub tags: Vec<String>,
    /// `before_script`, `script` and `after_script` lines, in that order.
    pub script: Vec<String>,
}

/// An `image:` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Image {
    pub name: String,
    pub entrypoint: Option<Vec<String>>,
    pub pull_policy: Vec<String>,
    pub place: Place,
}

/// A `services:` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Service {
    pub name: String,
    /// Host names of the service in the job's network: the explicit `alias` (space or comma
    /// separated), else the names the runner derives from the image.
    pub aliases: Vec<String>,
    pub command: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    pub variables: BTreeMap<String, String>,
    pub place: Place,
}

impl Place {
    fn new(file: &Path, line: usize) -> Place {
        Place { file: file.to_path_buf(), line }
    }
}

impl Service {
    /// Returns true for Docker-in-Docker images (`docker:dind`, `docker:27-dind`,
    /// `docker:27.3-dind-rootless`, with or without a registry).
    pub fn is_dind(&self) -> bool {
        let repository = repository(&self.name);
        let tag = self.name.rsplit_once(':').map(|(_, tag)| tag).filter(|tag| !tag.contains('/')).unwrap_or("latest");
        let name = repository.rsplit('/').next().unwrap_or(repository);
        name == "docker" && tag.contains("dind")
    }
}

impl Job {
    /// Returns the job's value of variable `name`: the job's own, or the global one.
    pub fn variable(&self, name: &str) -> Option<&str> {
        self.variables.get(name).map(String::as_str)
    }

    /// Returns the dind services of this job.
    pub fn dind_services(&self) -> impl Iterator<Item = &Service> {
        self.services.iter().filter(|service| service.is_dind())
    }

    /// Returns true when a script line runs a command that talks to a Docker daemon: `docker`
    /// or `docker-compose`.
    pub fn calls_docker(&self) -> bool {
        self.script.iter().any(|line| {
            line.split(['|', ';', '&', '(', ')', '`', '$']).any(|part| {
                part.split_whitespace().next().is_some_and(|word| {
                    let program = word.rsplit('/').next().unwrap_or(word);
                    program == "docker" || program == "docker-compose"
                })
            })
        })
    }
}

/// Returns the repository part of an image reference, without tag or digest.
pub fn repository(image: &str) -> &str {
    let without_digest = image.split('@').next().unwrap_or(image);
    match without_digest.rsplit_once(':') {
        Some((repository, tag)) if !tag.contains('/') => repository,
        _ => without_digest,
    }
}

/// Host names the runner gives a service without an explicit alias: the repository with `/`
/// turned into `__`, and into `-`.
pub fn default_aliases(image: &str) -> Vec<String> {
    let repository = repository(image);
    let mut aliases = vec![repository.replace('/', "__")];
    let dashed = repository.replace('/', "-");
    if !aliases.contains(&dashed) {
        aliases.push(dashed);
    }
    aliases
}

/// The pipeline file and what came of reading it.
#[derive(Debug, Clone, Serialize)]
pub struct PipelineFact {
    pub path: PathBuf,
    /// How the file was chosen: `--ci-file` or the Git checkout.
    pub chosen_by: &'static str,
    pub result: Result<Pipeline, PipelineError>,
}

/// Why a pipeline could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PipelineError {
    pub message: String,
    pub place: Option<Place>,
}

/// Finds the top of the Git checkout that contains `start`, by its `.git` entry.
pub fn checkout_root(start: &Path) -> Option<PathBuf> {
    let mut current = Some(start);
    while let Some(directory) = current {
        if directory.join(".git").exists() {
            return Some(directory.to_path_buf());
        }
        current = directory.parent();
    }
    None
}

/// Finds and reads the pipeline: `ci_file` when given, else `.gitlab-ci.yml` at the top of the
/// Git checkout around the current directory. `None` when there is no pipeline to read.
pub fn load(ci_file: Option<&Path>) -> Option<PipelineFact> {
    let (path, chosen_by) = match ci_file {
        Some(path) => (path.to_path_buf(), "--ci-file"),
        None => {
            let cwd = std::env::current_dir().ok()?;
            let root = checkout_root(&cwd)?;
            let path = root.join(".gitlab-ci.yml");
            if !path.exists() {
                return None;
            }
            (path, "the Git checkout")
        }
    };
    let root = path.parent().and_then(checkout_root).or_else(|| path.parent().map(Path::to_path_buf)).unwrap_or_default();
    let result = read(&path, &root);
    Some(PipelineFact { path, chosen_by, result })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dind_images_are_recognised() {
        for name in ["docker:dind", "docker:27-dind", "docker:27.3.1-dind-rootless", "docker.io/library/docker:dind", "registry.example.test/mirror/docker:dind"] {
            assert!(Service { name: name.into(), ..Service::default() }.is_dind(), "{name}");
        }
        for name in ["docker:27", "docker:27-cli", "postgres:16", "mydind:1"] {
            assert!(!Service { name: name.into(), ..Service::default() }.is_dind(), "{name}");
        }
    }

    #[test]
    fn default_aliases_follow_the_runner() {
        assert_eq!(default_aliases("docker:27-dind"), vec!["docker"]);
        assert_eq!(default_aliases("tutum/wordpress:latest"), vec!["tutum__wordpress", "tutum-wordpress"]);
        assert_eq!(default_aliases("registry.example.test:5000/group/svc:1"), vec!["registry.example.test:5000__group__svc", "registry.example.test:5000-group-svc"]);
    }

    #[test]
    fn docker_calls_are_found_in_scripts() {
        let job = |line: &str| Job { script: vec![line.to_string()], ..Job::default() };
        assert!(job("docker build -t app .").calls_docker());
        assert!(job("echo x && docker info").calls_docker());
        assert!(job("/usr/bin/docker ps").calls_docker());
        assert!(job("docker-compose up -d").calls_docker());
        assert!(!job("echo docker is great").calls_docker());
    }
}
