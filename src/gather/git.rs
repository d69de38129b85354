//! The Git checkout ci-doctor runs in: the web URL and project path of its `origin` remote, and
//! the branch checked out.

use std::path::Path;
use std::process::{Command, Stdio};

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
    let url = git(dir, &["remote", "get-url", "origin"])?;
    parse_remote(&url)
}

/// The branch checked out at `dir`; `None` on a detached head or outside a checkout.
pub fn current_branch(dir: &Path) -> Option<String> {
    let branch = git(dir, &["rev-parse", "--abbrev-ref", "HEAD"])?;
    (branch != "HEAD").then_some(branch)
}

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let output = Command::new("git").arg("-C").arg(dir).args(args).stdin(Stdio::null()).stderr(Stdio::null()).output().ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8(output.stdout).ok()?.trim().to_string();
    (!text.is_empty()).then_some(text)
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
    fn remotes_without_a_project_are_ignored() {
        assert_eq!(origin_of("/srv/git/app.git"), None);
        assert_eq!(origin_of("file:///srv/git/group/app.git"), None);
        assert_eq!(origin_of("https://gitlab.example.test/"), None);
    }
}
