//! `ci-doctor docs`: the check pages as a set of linked Markdown files for a wiki or a static
//! site. Every page comes from [`CHECKS`]: a check added to the registry gets its page and its
//! index entry with nothing else to change.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Context as _;

use crate::checks::{self, CHECKS, Check};

/// Name of the index page.
pub const INDEX: &str = "index.md";

/// One generated file: its name in the output directory and its text.
pub struct Page {
    pub name: String,
    pub text: String,
}

/// Writes the index and one page per check into `dir`, creating it when missing. Files of the
/// same names are replaced; other files in `dir` are left alone.
pub fn write(dir: &Path) -> anyhow::Result<Vec<Page>> {
    std::fs::create_dir_all(dir).with_context(|| format!("failed to create docs directory `{}`", dir.display()))?;
    let pages = pages();
    for page in &pages {
        let path = dir.join(&page.name);
        std::fs::write(&path, &page.text).with_context(|| format!("failed to write docs page `{}`", path.display()))?;
    }
    Ok(pages)
}

/// Returns the file name of a check's page.
pub fn page_name(id: &str) -> String {
    format!("{id}.md")
}

/// Builds the index and every check page.
pub fn pages() -> Vec<Page> {
    let mut pages = vec![Page { name: INDEX.to_string(), text: index() }];
    for check in CHECKS {
        pages.push(Page { name: page_name(check.id()), text: check_page(*check) });
    }
    pages
}

/// Lists the areas in registry order, each once.
fn areas() -> Vec<&'static str> {
    let mut areas: Vec<&str> = Vec::new();
    for check in CHECKS {
        let area = checks::area(check.id());
        if !areas.contains(&area) {
            areas.push(area);
        }
    }
    areas
}

fn index() -> String {
    let mut out = String::from("# ci-doctor checks\n\n");
    let _ = writeln!(
        out,
        "ci-doctor {} runs {} checks. Each page says what its check examines, the messages you see when it fails (Symptoms), why it happens, how to fix it, and what the check cannot judge.\n",
        env!("CARGO_PKG_VERSION"),
        CHECKS.len()
    );
    out.push_str("Run one check or area with `ci-doctor --only <id>`; print a page in a terminal with `ci-doctor explain <id>`.\n");
    for area in areas() {
        let _ = writeln!(out, "\n## `{area}`\n");
        out.push_str("| check | what it examines |\n|---|---|\n");
        for check in CHECKS.iter().filter(|check| checks::area(check.id()) == area) {
            let _ = writeln!(out, "| [`{}`]({}) | {} |", check.id(), page_name(check.id()), check.summary().replace('|', "\\|"));
        }
    }
    out
}

fn check_page(check: &dyn Check) -> String {
    let mut out = link_mentions(check.explanation(), check.id());
    if !out.ends_with('\n') {
        out.push('\n');
    }

    let area = checks::area(check.id());
    let neighbours: Vec<String> = CHECKS
        .iter()
        .filter(|other| checks::area(other.id()) == area && other.id() != check.id())
        .map(|other| format!("[`{}`]({})", other.id(), page_name(other.id())))
        .collect();
    out.push_str("\n---\n\n");
    if !neighbours.is_empty() {
        let _ = writeln!(out, "Other `{area}` checks: {}.\n", neighbours.join(", "));
    }
    let _ = writeln!(out, "[All checks]({INDEX})");
    out
}

/// Turns each mention of another check id in backticks (`` `config.file-mode` ``) into a link
/// to its page. Headings and fenced code blocks stay as they are.
fn link_mentions(page: &str, own_id: &str) -> String {
    let mut out = String::with_capacity(page.len());
    let mut in_fence = false;
    for line in page.split_inclusive('\n') {
        if line.trim_start().starts_with("```") {
            in_fence = !in_fence;
        }
        if in_fence || line.starts_with('#') {
            out.push_str(line);
            continue;
        }
        let mut linked = line.to_string();
        for check in CHECKS.iter().filter(|check| check.id() != own_id) {
            let mention = format!("`{}`", check.id());
            let link = format!("[`{}`]({})", check.id(), page_name(check.id()));
            // Mentions that are already link texts keep their link.
            let guarded = linked.replace(&format!("[{mention}]"), "\u{0}");
            linked = guarded.replace(&mention, &link).replace('\u{0}', &format!("[{mention}]"));
        }
        out.push_str(&linked);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_lists_every_check_page() {
        let pages = pages();
        let index = &pages[0];
        assert_eq!(index.name, INDEX);
        for check in CHECKS {
            let name = page_name(check.id());
            assert!(pages.iter().any(|page| page.name == name), "{name} missing");
            assert!(index.text.contains(&format!("[`{}`]({name})", check.id())), "{name} not in the index");
        }
    }

    #[test]
    fn mentions_become_links_outside_code_and_headings() {
        let page = "# `auth.token`\n\nSee `config.file-mode` and [`config.keys`](config.keys.md).\n\n```text\n`config.syntax`\n```\n";
        let linked = link_mentions(page, "auth.token");
        assert!(linked.starts_with("# `auth.token`\n"), "{linked}");
        assert!(linked.contains("See [`config.file-mode`](config.file-mode.md) and [`config.keys`](config.keys.md)."), "{linked}");
        assert!(linked.contains("```text\n`config.syntax`\n```"), "{linked}");
    }

    #[test]
    fn own_id_is_not_linked() {
        let linked = link_mentions("This is `auth.token` itself.\n", "auth.token");
        assert_eq!(linked, "This is `auth.token` itself.\n");
    }
}
