//! `ci-doctor why`: finds the checks whose documented symptoms match an error message or a job
//! log.
//!
//! Each page's `## Symptoms` bullets are the messages users see. A message matches a symptom when
//! most of the symptom's words appear in it, so host names, ports and ids may differ.

use std::collections::BTreeSet;

use crate::checks::{CHECKS, Check};

/// Largest job log read; runner job logs are capped at 4 MiB by default.
pub const MAX_LOG_BYTES: u64 = 16 * 1024 * 1024;

/// Share of a symptom's words that must appear in the text.
const MIN_SCORE: f64 = 0.7;
/// Fewest shared words for a match, so that short symptoms do not match everything.
const MIN_SHARED: usize = 3;

const STOPWORDS: &[&str] = &["the", "and", "for", "with", "not", "are", "was", "this", "that", "from", "its", "after", "line", "error", "warning", "job", "failed"];

/// A documented symptom and its significant words.
type Symptom = (String, BTreeSet<String>);

/// A check whose symptom matched, with the symptom and the text it matched.
#[derive(Debug, Clone)]
pub struct Match {
    pub check: &'static str,
    pub symptom: String,
    pub text: String,
    pub score: f64,
}

/// Returns the symptom bullets of a check page.
pub fn symptoms(page: &str) -> Vec<String> {
    let mut in_section = false;
    let mut out = Vec::new();
    for line in page.lines() {
        if line.starts_with("## ") {
            in_section = line.trim() == "## Symptoms";
            continue;
        }
        if !in_section {
            continue;
        }
        if let Some(bullet) = line.strip_prefix("- ") {
            // A bullet quoting a message has it in backticks: use the quote alone, unless it is
            // a mere word inside a sentence.
            let quoted = bullet.split('`').skip(1).step_by(2).collect::<Vec<_>>().join(" ");
            out.push(if words(&quoted).len() >= MIN_SHARED { quoted } else { bullet.to_string() });
        }
    }
    out
}

fn words(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .map(str::to_ascii_lowercase)
        .filter(|word| word.len() >= 3 && !STOPWORDS.contains(&word.as_str()))
        .collect()
}

/// Checks whose symptoms match `text`, best first; each check once.
pub fn explain(text: &str) -> Vec<Match> {
    explain_lines(std::iter::once(text))
}

/// Checks whose symptoms match any of `lines` (a job log), best first; each check once, with
/// the line that matched best.
pub fn explain_lines<'a>(lines: impl IntoIterator<Item = &'a str>) -> Vec<Match> {
    let pages: Vec<(&'static dyn Check, Vec<Symptom>)> = CHECKS
        .iter()
        .map(|check| (*check, symptoms(check.explanation()).into_iter().map(|symptom| {
            let words = words(&symptom);
            (symptom, words)
        }).collect()))
        .collect();

    let mut best: Vec<Match> = Vec::new();
    for line in lines {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        let found = words(line);
        for (check, symptoms) in &pages {
            for (symptom, wanted) in symptoms {
                let shared = wanted.intersection(&found).count();
                if shared < MIN_SHARED {
                    continue;
                }
                let score = shared as f64 / wanted.len() as f64;
                if score < MIN_SCORE {
                    continue;
                }
                let candidate = Match { check: check.id(), symptom: symptom.clone(), text: crate::secret::redact(line), score };
                match best.iter_mut().find(|known| known.check == candidate.check) {
                    Some(known) if known.score >= candidate.score => {}
                    Some(known) => *known = candidate,
                    None => best.push(candidate),
                }
            }
        }
    }
    best.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.check.cmp(b.check)));
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dind_connection_error_names_tls_and_privileges() {
        let matches = explain("Cannot connect to the Docker daemon at tcp://docker:2375. Is the docker daemon running?");
        let ids: Vec<&str> = matches.iter().map(|found| found.check).collect();
        assert!(ids.contains(&"dind.tls"), "{ids:?}");
        assert!(ids.contains(&"dind.privileged"), "{ids:?}");
    }

    #[test]
    fn clone_error_names_clone_and_gitlab_url_checks() {
        let matches = explain("fatal: unable to access 'http://localhost/steward/app.git/': Failed to connect to localhost port 80 after 0 ms: Connection refused");
        let ids: Vec<&str> = matches.iter().map(|found| found.check).collect();
        assert!(ids.contains(&"network.clone-url"), "{ids:?}");
        assert!(ids.contains(&"gitlab.external-url"), "{ids:?}");
        assert!(!ids.contains(&"dind.tls"), "{ids:?}");
    }

    #[test]
    fn unrelated_text_matches_nothing() {
        assert!(explain("all tests passed in 3.2 seconds").is_empty());
    }

    #[test]
    fn symptoms_are_read_from_their_section() {
        let page = "# `x`\n\n## Symptoms\n\n- `first message with words`\n- Some `short` note about things here\n\n## Why\n\n- not a symptom\n";
        assert_eq!(symptoms(page), vec!["first message with words", "Some `short` note about things here"]);
    }
}
