//! The project ci-doctor runs in: the top of the current Git checkout, where the pipeline file
//! and the project's policy file live, and paths shown relative to it.

use std::path::{Path, PathBuf};

/// Finds the top of the Git checkout that contains `start`: the nearest directory, `start` included,
/// that has a `.git` entry. A `.git` file counts too, because worktrees and submodules use one.
pub fn git_root(start: &Path) -> Option<PathBuf> {
    start.ancestors().find(|dir| dir.join(".git").exists()).map(Path::to_path_buf)
}

/// Finds the top of the Git checkout of the current directory.
pub fn current_root() -> Option<PathBuf> {
    let cwd = std::env::current_dir().ok()?;
    git_root(&cwd)
}

/// `path` relative to `root` when it lies inside it, otherwise `path` unchanged.
pub fn relative_to(path: &Path, root: Option<&Path>) -> PathBuf {
    match root.and_then(|root| path.strip_prefix(root).ok()) {
        Some(relative) if !relative.as_os_str().is_empty() => relative.to_path_buf(),
        _ => path.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_root_finds_the_nearest_checkout() {
        let dir = tempfile::tempdir().unwrap();
        let nested = dir.path().join("a/b");
        std::fs::create_dir_all(&nested).unwrap();
        // With no checkout between `nested` and the temp dir, both find whatever is above it.
        assert_eq!(git_root(&nested), git_root(dir.path()));

        std::fs::create_dir(dir.path().join(".git")).unwrap();
        assert_eq!(git_root(&nested).as_deref(), Some(dir.path()));

        // A worktree has a `.git` file instead of a directory.
        std::fs::write(dir.path().join("a/.git"), "gitdir: /elsewhere\n").unwrap();
        assert_eq!(git_root(&nested).as_deref(), Some(dir.path().join("a").as_path()));
    }

    #[test]
    fn paths_inside_the_root_become_relative() {
        let root = Path::new("/srv/app");
        assert_eq!(relative_to(Path::new("/srv/app/.gitlab-ci.yml"), Some(root)), Path::new(".gitlab-ci.yml"));
        assert_eq!(relative_to(Path::new("/etc/gitlab-runner/config.toml"), Some(root)), Path::new("/etc/gitlab-runner/config.toml"));
        assert_eq!(relative_to(Path::new("/srv/app"), Some(root)), Path::new("/srv/app"));
        assert_eq!(relative_to(Path::new("/srv/app/x"), None), Path::new("/srv/app/x"));
    }
}
