//! The key reference of GitLab Runner's `config.toml`: every key path with its TOML type, in
//! the order of the runner's own structures (gitlab-runner commit d79f3e7b, 2026-08-22).
//!
//! `config.keys` judges names and types against it; `--fix` uses its order to put a new key
//! where `gitlab-runner register` would write it.

use std::collections::BTreeMap;
use std::sync::OnceLock;

/// A key of the reference.
#[derive(Debug)]
pub struct KeyInfo {
    /// The path as the runner spells it, for example `runners.docker.privileged`.
    pub canonical: String,
    /// The TOML type, for example `boolean` or `duration string`.
    pub kind: &'static str,
    /// Position in the reference, which follows the runner's struct order.
    pub order: usize,
}

/// The reference by lower-cased dotted path.
pub fn keys() -> &'static BTreeMap<String, KeyInfo> {
    static KEYS: OnceLock<BTreeMap<String, KeyInfo>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let text: &'static str = include_str!("runner-config-keys.tsv");
        text.lines()
            .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
            .enumerate()
            .filter_map(|(order, line)| {
                let (path, kind) = line.split_once('\t')?;
                Some((path.to_ascii_lowercase(), KeyInfo { canonical: path.to_string(), kind: kind.trim(), order }))
            })
            .collect()
    })
}

/// The key at `path` (dotted, any case).
pub fn get(path: &str) -> Option<&'static KeyInfo> {
    keys().get(&path.to_ascii_lowercase())
}

/// The last segment of a key's canonical path.
pub fn canonical_name(info: &KeyInfo) -> &str {
    info.canonical.rsplit('.').next().unwrap_or(&info.canonical)
}

/// Names of the keys directly inside the table at `table` (lower-cased dotted path, `""` for
/// the top level), in the runner's order.
pub fn children(table: &str) -> Vec<&'static str> {
    let prefix = if table.is_empty() { String::new() } else { format!("{}.", table.to_ascii_lowercase()) };
    let mut found: Vec<&KeyInfo> = keys()
        .iter()
        .filter(|(path, _)| path.starts_with(&prefix) && !path[prefix.len()..].contains('.'))
        .map(|(_, info)| info)
        .collect();
    found.sort_by_key(|info| info.order);
    found.into_iter().map(canonical_name).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_children_follow_the_runner_order() {
        let children = children("runners.docker");
        let position = |name: &str| children.iter().position(|child| *child == name).unwrap();
        assert!(position("volumes") < position("network_mode"));
        assert!(position("network_mode") < position("shm_size"));
        assert!(position("privileged") < position("services_privileged"));
    }

    #[test]
    fn lookups_ignore_case() {
        assert_eq!(get("RUNNERS.Docker.Privileged").map(|info| info.kind), Some("boolean"));
        assert!(get("runners.docker.privilaged").is_none());
    }
}
