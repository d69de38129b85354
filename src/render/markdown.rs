//! The report as Markdown, for support tickets and onboarding pages: the human report's content
//! with headings per runner and entry, one list item per verdict, and the findings a policy
//! ignored at the end.

use std::fmt::Write as _;

use super::{Report, human};
use crate::finding::{Finding, Method};
use crate::fix::Action;

/// Renders the report as Markdown, secrets redacted. With `verbose`, `ok` and `skipped`
/// verdicts show their evidence too, as in the human report with `-v`.
pub fn render(report: &Report, verbose: bool) -> String {
    let facts = report.facts;
    let mut out = String::from("# ci-doctor report\n\n");
    let plain = human::Style { color: false, verbose, fix_hint: false };
    let _ = writeln!(out, "{}\n", inline(&human::summary_line(report, plain)));
    if let Some(info) = facts.docker.info() {
        let _ = writeln!(out, "ci-doctor {} · Docker {} (API {}) at `{}`\n", env!("CARGO_PKG_VERSION"), info.server_version, info.api_version, facts.docker.endpoint);
    }

    for section in super::sections(facts, report.findings.iter()) {
        if section.runner.is_none() && section.is_empty() {
            continue;
        }
        let _ = writeln!(out, "## {}\n", inline(&section.title));
        if let Some(line) = section.runner.and_then(|runner| human::view_line(facts, runner)) {
            let _ = writeln!(out, "_{}_\n", inline(&line));
        }
        for finding in &section.general {
            write_finding(&mut out, finding, verbose);
        }
        if !section.general.is_empty() {
            out.push('\n');
        }
        for (title, findings) in &section.entries {
            let _ = writeln!(out, "### {}\n", inline(title));
            for finding in findings {
                write_finding(&mut out, finding, verbose);
            }
            out.push('\n');
        }
    }

    if !report.ignored.is_empty() {
        out.push_str("## Ignored by policy\n\n");
        for ignored in report.ignored {
            write_finding(&mut out, &ignored.finding, false);
            let _ = writeln!(out, "  - reason: {} (rule {})", inline(&ignored.reason), inline(&ignored.rule));
        }
        out.push('\n');
    }

    let text = out.trim_end().to_string() + "\n";
    crate::secret::redact(&text)
}

fn write_finding(out: &mut String, finding: &Finding, verbose: bool) {
    let _ = writeln!(out, "- **{}** `{}`: {}", finding.status.label(), finding.check, inline(&finding.message));

    if let Some(location) = &finding.location {
        let mut place = location.file.display().to_string();
        if let Some(line) = location.line {
            let _ = write!(place, ":{line}");
            if let Some(column) = location.column {
                let _ = write!(place, ":{column}");
            }
        }
        match &location.key {
            Some(key) => {
                let _ = writeln!(out, "  - location: `{place}` (`{key}`)");
            }
            None => {
                let _ = writeln!(out, "  - location: `{place}`");
            }
        }
    }
    if let Some(downgrade) = &finding.downgraded {
        let _ = writeln!(out, "  - policy: downgraded from {} ({}): {}", downgrade.from, inline(&downgrade.rule), inline(&downgrade.reason));
    }
    if let Some(effect) = &finding.effect {
        let _ = writeln!(out, "  - effect: {}", inline(effect));
    }

    if finding.status.is_problem() || verbose {
        let (snippet, lines): (Vec<&String>, Vec<&String>) = finding.evidence.iter().partition(|line| human::is_preformatted(line));
        for line in lines {
            let _ = writeln!(out, "  - evidence: {}", inline(line));
        }
        if !snippet.is_empty() {
            out.push_str("\n  ```text\n");
            for line in snippet {
                let _ = writeln!(out, "  {line}");
            }
            out.push_str("  ```\n\n");
        }
    }
    if finding.status.is_problem()
        && let Some(basis) = &finding.basis
    {
        let how = match basis.method {
            Method::Probe => "probe",
            Method::Reasoning => "reasoning",
        };
        let _ = writeln!(out, "  - judged by {how}: {}", inline(&basis.detail));
    }
    if let Some(help) = &finding.help {
        let _ = writeln!(out, "  - help: {}", inline(help));
    }
    if let Some(fix) = &finding.fix {
        for action in &fix.actions {
            if let Action::Command { command } = action {
                let _ = writeln!(out, "  - run: {}", code_span(command));
            }
        }
    }
}

/// Escapes Markdown syntax in text outside code spans. The messages already put values in
/// backticks, and those spans are kept as they are; an unpaired backtick is escaped. Secrets
/// are redacted first, since escaping could split one so that the final pass misses it.
fn inline(text: &str) -> String {
    let text = crate::secret::redact(text);
    let mut out = String::with_capacity(text.len());
    let pieces: Vec<&str> = text.split('`').collect();
    let paired = pieces.len() % 2 == 1;
    for (index, piece) in pieces.iter().enumerate() {
        let in_code = index % 2 == 1 && (paired || index + 1 < pieces.len());
        if in_code {
            out.push('`');
            out.push_str(piece);
            out.push('`');
            continue;
        }
        if index % 2 == 1 {
            out.push_str("\\`");
        }
        for c in piece.chars() {
            if matches!(c, '\\' | '*' | '_' | '<' | '>' | '[' | ']' | '|' | '#') {
                out.push('\\');
            }
            out.push(c);
        }
    }
    out
}

/// `text` as one code span, with a fence longer than any run of backticks inside it.
fn code_span(text: &str) -> String {
    let text = crate::secret::redact(text);
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let fence = "`".repeat(longest + 1);
    if longest > 0 { format!("{fence} {text} {fence}") } else { format!("{fence}{text}{fence}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_keeps_code_spans_and_escapes_the_rest() {
        assert_eq!(inline("set `url = \"http://gitlab/\"` for *all*"), "set `url = \"http://gitlab/\"` for \\*all\\*");
        assert_eq!(inline("`network_mode` and network_mode"), "`network_mode` and network\\_mode");
        assert_eq!(inline("a <b> and [c]"), "a \\<b\\> and \\[c\\]");
    }

    #[test]
    fn unpaired_backtick_is_escaped() {
        assert_eq!(inline("one ` two"), "one \\` two");
        assert_eq!(inline("`a` b ` c"), "`a` b \\` c");
    }

    #[test]
    fn code_span_fences_inner_backticks() {
        assert_eq!(code_span("docker ps"), "`docker ps`");
        assert_eq!(code_span("echo `id`"), "`` echo `id` ``");
    }
}
