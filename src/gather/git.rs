//! The Git checkout ci-doctor runs in: the web URL and project path of its `origin` remote, and
//! the branch checked out.
//!
//! Both come from the files in the Git directory rather than from `git` itself: two process
//! spawns would cost more than the rest of a `--no-probe` run, and the two facts need only
//! `HEAD` and the `[remote "origin"]` section.

use std::path::{Path, PathBuf};

/// What the `origin` remote says about the project on GitLab.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// GitLab's web base URL, for example `https://gitlab.example.test`.
    pub base_url: String,
    /// The project path, for example `web/near-sdk`.
    pub project_path: String,
}

/// Reads the `origin` remote of the checkout at `dir`, when there is one.
pub fn origin(dir: &Path) -> Option<Origin> {
    let git = GitDir::find(dir)?;
    let local = std::fs::read_to_string(git.common.join("config")).ok()?;
    let url = config_values(&local, "remote", Some("origin"), "url").into_iter().next()?;

    // `url.<base>.insteadOf` rewrites apply to the remote as `git remote get-url` shows it.
    let mut rules = Vec::new();
    for text in global_configs().iter().map(String::as_str).chain([local.as_str()]) {
        rules.extend(instead_of_rules(text));
    }
    parse_remote(&rewrite(&url, &rules))
}

/// The branch checked out at `dir`; `None` on a detached head or outside a checkout.
pub fn current_branch(dir: &Path) -> Option<String> {
    let git = GitDir::find(dir)?;
    let head = std::fs::read_to_string(git.dir.join("HEAD")).ok()?;
    let reference = head.trim().strip_prefix("ref:")?.trim();
    reference.strip_prefix("refs/heads/").filter(|branch| !branch.is_empty()).map(str::to_string)
}

/// A checkout's Git directory (where `HEAD` is) and its common directory (where `config` is);
/// they differ in a linked worktree.
struct GitDir {
    dir: PathBuf,
    common: PathBuf,
}

impl GitDir {
    /// Finds the Git directory of `start` or of its nearest parent that has one, as Git does:
    /// `GIT_DIR` first, then a `.git` directory, or a `.git` file naming the directory
    /// (`gitdir: <path>`) in linked worktrees and submodules.
    fn find(start: &Path) -> Option<GitDir> {
        if let Some(dir) = std::env::var_os("GIT_DIR").filter(|dir| !dir.is_empty()) {
            return Some(GitDir::at(start.join(dir)));
        }
        for candidate in start.ancestors() {
            let dot_git = candidate.join(".git");
            if dot_git.is_dir() {
                return Some(GitDir::at(dot_git));
            }
            if let Ok(text) = std::fs::read_to_string(&dot_git)
                && let Some(path) = text.trim().strip_prefix("gitdir:")
            {
                return Some(GitDir::at(candidate.join(path.trim())));
            }
        }
        None
    }

    fn at(dir: PathBuf) -> GitDir {
        let common = match std::fs::read_to_string(dir.join("commondir")) {
            Ok(text) => dir.join(text.trim()),
            Err(_) => dir.clone(),
        };
        GitDir { dir, common }
    }
}

/// The user's and the system's Git configuration, as text; missing files are skipped.
fn global_configs() -> Vec<String> {
    let mut paths = vec![PathBuf::from("/etc/gitconfig")];
    let home = std::env::var_os("HOME").map(PathBuf::from);
    match std::env::var_os("XDG_CONFIG_HOME").filter(|dir| !dir.is_empty()) {
        Some(dir) => paths.push(PathBuf::from(dir).join("git/config")),
        None => paths.extend(home.as_ref().map(|home| home.join(".config/git/config"))),
    }
    paths.extend(home.map(|home| home.join(".gitconfig")));
    paths.iter().filter_map(|path| std::fs::read_to_string(path).ok()).collect()
}

/// Every value of `section.subsection.key` in a Git config file, in file order. Section and key
/// names compare without case, the subsection with case, as Git does.
// TODO: `[include]` and `[includeIf]` files are not followed.
fn config_values(text: &str, section: &str, subsection: Option<&str>, key: &str) -> Vec<String> {
    let mut values = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        let line = line.trim();
        if let Some(header) = line.strip_prefix('[') {
            let Some((header, _)) = header.split_once(']') else { continue };
            inside = section_matches(header, section, subsection);
            continue;
        }
        if !inside {
            continue;
        }
        let (name, value) = line.split_once('=').unwrap_or((line, ""));
        if name.trim().eq_ignore_ascii_case(key) {
            values.push(config_value(value));
        }
    }
    values
}

/// Whether a section header (the text between the brackets) names `section` and `subsection`.
fn section_matches(header: &str, section: &str, subsection: Option<&str>) -> bool {
    let header = header.trim();
    let (name, sub) = match header.split_once(char::is_whitespace) {
        Some((name, rest)) => (name, Some(rest.trim().trim_matches('"').replace("\\\"", "\"").replace("\\\\", "\\"))),
        // The old `[section.subsection]` form, whose subsection Git reads in lower case.
        None => match header.split_once('.') {
            Some((name, rest)) => (name, Some(rest.to_ascii_lowercase())),
            None => (header, None),
        },
    };
    name.eq_ignore_ascii_case(section) && sub.as_deref() == subsection
}

/// A value as Git reads it: comments (`#`, `;`) outside quotes dropped, quotes removed,
/// backslash escapes resolved, surrounding blanks trimmed.
fn config_value(raw: &str) -> String {
    let mut out = String::new();
    let mut quoted = false;
    let mut chars = raw.trim().chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => quoted = !quoted,
            '\\' => match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(other) => out.push(other),
                None => {}
            },
            '#' | ';' if !quoted => break,
            _ => out.push(c),
        }
    }
    out.trim().to_string()
}

/// `(base, prefix)` pairs from `[url "<base>"] insteadOf = <prefix>`.
fn instead_of_rules(text: &str) -> Vec<(String, String)> {
    let mut rules = Vec::new();
    let mut base: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if let Some(header) = line.strip_prefix('[') {
            let header = header.split_once(']').map(|(header, _)| header.trim()).unwrap_or("");
            base = header
                .split_once(char::is_whitespace)
                .filter(|(name, _)| name.eq_ignore_ascii_case("url"))
                .map(|(_, rest)| rest.trim().trim_matches('"').to_string());
            continue;
        }
        if let Some(base) = &base
            && let Some((name, value)) = line.split_once('=')
            && name.trim().eq_ignore_ascii_case("insteadOf")
        {
            rules.push((base.clone(), config_value(value)));
        }
    }
    rules
}

/// Applies the `insteadOf` rule with the longest matching prefix, as Git does.
fn rewrite(url: &str, rules: &[(String, String)]) -> String {
    rules
        .iter()
        .filter(|(_, prefix)| !prefix.is_empty() && url.starts_with(prefix.as_str()))
        .max_by_key(|(_, prefix)| prefix.len())
        .map(|(base, prefix)| format!("{base}{}", &url[prefix.len()..]))
        .unwrap_or_else(|| url.to_string())
}

/// Turns a remote URL into GitLab's web base URL and the project path. An HTTP(S) remote keeps
/// its scheme, host and port; an SSH remote (`git@host:group/app.git`, `ssh://git@host:2222/...`)
/// gives `https://host`, because GitLab's web address is not part of it.
pub fn parse_remote(remote: &str) -> Option<Origin> {
    let remote = remote.trim();
    let (base_url, path) = if remote.starts_with("http://") || remote.starts_with("https://") {
        // A password in the remote (`https://user:token@host/...`) is a secret; it never
        // reaches the base URL.
        let parsed = url::Url::parse(remote).ok()?;
        if let Some(password) = parsed.password() {
            crate::secret::register(password);
        }
        let host = parsed.host_str()?;
        let base = match parsed.port() {
            Some(port) => format!("{}://{host}:{port}", parsed.scheme()),
            None => format!("{}://{host}", parsed.scheme()),
        };
        (base, parsed.path().to_string())
    } else if remote.starts_with("ssh://") {
        let parsed = url::Url::parse(remote).ok()?;
        (format!("https://{}", parsed.host_str()?), parsed.path().to_string())
    } else if remote.contains("://") {
        // `file://`, `git://` and other schemes name no GitLab web address.
        return None;
    } else {
        let (user_host, path) = remote.split_once(':')?;
        let host = user_host.rsplit('@').next()?;
        if host.is_empty() || host.contains('/') {
            return None;
        }
        (format!("https://{host}"), path.to_string())
    };
    let project_path = path.trim_matches('/').trim_end_matches(".git").trim_matches('/').to_string();
    (!project_path.is_empty() && project_path.contains('/')).then_some(Origin { base_url, project_path })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin_of(remote: &str) -> Option<(String, String)> {
        parse_remote(remote).map(|origin| (origin.base_url, origin.project_path))
    }

    #[test]
    fn remote_forms_give_base_and_path() {
        let expected = Some(("https://gitlab.example.test".to_string(), "web/near-sdk".to_string()));
        assert_eq!(origin_of("https://gitlab.example.test/web/near-sdk.git"), expected);
        assert_eq!(origin_of("git@gitlab.example.test:web/near-sdk.git"), expected);
        assert_eq!(origin_of("ssh://git@gitlab.example.test:2222/web/near-sdk.git"), expected);
        assert_eq!(origin_of("http://127.0.0.1:8080/group/sub/app"), Some(("http://127.0.0.1:8080".into(), "group/sub/app".into())));
    }

    #[test]
    fn remote_password_stays_out_of_the_base() {
        let origin = parse_remote("https://oauth2:glpat-FAKEremote123456@gitlab.example.test/web/app.git").unwrap();
        assert_eq!(origin.base_url, "https://gitlab.example.test");
        assert!(!crate::secret::redact("glpat-FAKEremote123456").contains("remote123456"));
    }

    #[test]
    fn config_values_follow_git_syntax() {
        let text = "[core]\n\tbare = false\n[remote \"upstream\"]\n\turl = https://elsewhere.test/a/b.git\n[Remote \"origin\"]\n\tURL = \"https://gitlab.example.test/web/app.git\" ; comment\n\tfetch = +refs/heads/*:refs/remotes/origin/*\n[remote \"Origin\"]\n\turl = https://wrong.test/x/y.git\n";
        assert_eq!(config_values(text, "remote", Some("origin"), "url"), vec!["https://gitlab.example.test/web/app.git".to_string()]);
        assert_eq!(config_values("[remote.ORIGIN]\nurl = git@host:g/p.git\n", "remote", Some("origin"), "url"), vec!["git@host:g/p.git".to_string()]);
        assert!(config_values(text, "remote", Some("missing"), "url").is_empty());
    }

    #[test]
    fn instead_of_uses_the_longest_prefix() {
        let rules = instead_of_rules("[url \"https://gitlab.example.test/\"]\n\tinsteadOf = gl:\n[url \"https://mirror.example.test/\"]\n\tinsteadOf = g\n");
        assert_eq!(rewrite("gl:web/app.git", &rules), "https://gitlab.example.test/web/app.git");
        assert_eq!(rewrite("https://other.test/a/b", &rules), "https://other.test/a/b");
    }

    #[test]
    fn checkout_files_give_origin_and_branch() {
        let dir = tempfile::tempdir().unwrap();
        let git = dir.path().join(".git");
        std::fs::create_dir_all(&git).unwrap();
        std::fs::write(git.join("HEAD"), "ref: refs/heads/feature/login\n").unwrap();
        std::fs::write(git.join("config"), "[remote \"origin\"]\n\turl = git@gitlab.example.test:web/app.git\n").unwrap();
        let nested = dir.path().join("src/deep");
        std::fs::create_dir_all(&nested).unwrap();

        assert_eq!(current_branch(&nested).as_deref(), Some("feature/login"));
        let origin = origin(&nested).unwrap();
        assert_eq!((origin.base_url.as_str(), origin.project_path.as_str()), ("https://gitlab.example.test", "web/app"));

        std::fs::write(git.join("HEAD"), "0123456789abcdef0123456789abcdef01234567\n").unwrap();
        assert_eq!(current_branch(&nested), None, "a detached head has no branch");
    }

    #[test]
    fn linked_worktree_reads_head_of_its_own_and_config_of_the_main_checkout() {
        let dir = tempfile::tempdir().unwrap();
        let main_git = dir.path().join("main/.git");
        let worktree_git = main_git.join("worktrees/wt");
        std::fs::create_dir_all(&worktree_git).unwrap();
        std::fs::write(main_git.join("HEAD"), "ref: refs/heads/main\n").unwrap();
        std::fs::write(main_git.join("config"), "[remote \"origin\"]\n\turl = https://gitlab.example.test/web/app.git\n").unwrap();
        std::fs::write(worktree_git.join("HEAD"), "ref: refs/heads/topic\n").unwrap();
        std::fs::write(worktree_git.join("commondir"), "../..\n").unwrap();
        let checkout = dir.path().join("wt");
        std::fs::create_dir_all(&checkout).unwrap();
        std::fs::write(checkout.join(".git"), format!("gitdir: {}\n", worktree_git.display())).unwrap();

        assert_eq!(current_branch(&checkout).as_deref(), Some("topic"));
        assert_eq!(origin(&checkout).map(|origin| origin.project_path), Some("web/app".to_string()));
    }

    #[test]
    fn remotes_without_a_project_are_ignored() {
        assert_eq!(origin_of("/srv/git/app.git"), None);
        assert_eq!(origin_of("file:///srv/git/group/app.git"), None);
        assert_eq!(origin_of("https://gitlab.example.test/"), None);
    }
}
