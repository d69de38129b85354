//! The report as JUnit XML, for GitLab's test report (`artifacts:reports:junit`).
//!
//! One `<testsuite>` for the host and one per runner, and one `<testcase>` per verdict. Errors
//! are `<failure>`s, and so are warnings with `--strict`. `skipped` verdicts and findings a
//! policy ignored are `<skipped>`. Everything else passes, with its text in `<system-out>`. The layout
//! is the one `schemas/junit.xsd` describes.
//!
//! A test case is named after its check and, for an entry, the runner's name, so that the name
//! stays the same from run to run and GitLab can tell a new failure from a fixed one. Checks
//! are pure functions over facts gathered once, so each test case's `time` is 0 and the
//! gathering time is on `<testsuites>`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::{Report, Section, human};
use crate::facts::Facts;
use crate::finding::{Finding, Status};
use crate::policy::Ignored;

/// One `<testcase>` before it is written.
struct Case<'a> {
    name: String,
    classname: &'static str,
    file: Option<String>,
    /// TOML key path of the finding, to tell apart cases that would share a name.
    key: Option<String>,
    outcome: Outcome<'a>,
    /// The finding as the human report shows it.
    text: String,
}

enum Outcome<'a> {
    Passed,
    Failed { kind: Status, message: &'a str },
    Skipped { message: String },
}

/// Renders the report as JUnit XML, secrets redacted.
pub fn render(report: &Report) -> String {
    let facts = report.facts;
    let ignored_findings = report.ignored.iter().map(|ignored| &ignored.finding);
    let verdicts = super::sections(facts, report.findings.iter());
    let ignored = super::sections(facts, ignored_findings);

    let mut suites = Vec::new();
    for (section, ignored_section) in verdicts.iter().zip(&ignored) {
        if section.is_empty() && ignored_section.is_empty() {
            continue;
        }
        let mut cases = cases_of(report, section, None);
        cases.extend(cases_of(report, ignored_section, Some(report.ignored)));
        make_names_unique(&mut cases);
        suites.push((section.title.clone(), cases));
    }

    let all: Vec<&Case> = suites.iter().flat_map(|(_, cases)| cases).collect();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"ci-doctor\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" time=\"{:.3}\">",
        all.len(),
        count(&all, |case| matches!(case.outcome, Outcome::Failed { .. })),
        count(&all, |case| matches!(case.outcome, Outcome::Skipped { .. })),
        report.elapsed.as_secs_f64()
    );
    for (title, cases) in &suites {
        let cases: Vec<&Case> = cases.iter().collect();
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"0\" skipped=\"{}\" time=\"0\">",
            escape(title),
            cases.len(),
            count(&cases, |case| matches!(case.outcome, Outcome::Failed { .. })),
            count(&cases, |case| matches!(case.outcome, Outcome::Skipped { .. })),
        );
        for case in cases {
            write_case(&mut out, case);
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    crate::secret::redact(&out)
}

fn count(cases: &[&Case], predicate: impl Fn(&Case) -> bool) -> usize {
    cases.iter().filter(|case| predicate(case)).count()
}

/// Builds the test cases of one section. With `ignored`, the findings are ones a policy
/// ignored, looked up there for their reasons.
fn cases_of<'a>(report: &'a Report, section: &Section<'a>, ignored: Option<&'a [Ignored]>) -> Vec<Case<'a>> {
    let mut findings: Vec<(Option<String>, &'a Finding)> = section.general.iter().map(|finding| (None, *finding)).collect();
    for (_, in_entry) in &section.entries {
        for finding in in_entry {
            findings.push((entry_name(report.facts, finding), *finding));
        }
    }

    findings
        .into_iter()
        .map(|(entry, finding)| {
            let name = match &entry {
                Some(entry) => format!("{} (runner {entry})", finding.check),
                None => finding.check.to_string(),
            };
            let outcome = match ignored {
                Some(ignored) => {
                    let reason = ignored.iter().find(|item| std::ptr::eq(&item.finding, finding)).map(|item| item.reason.as_str()).unwrap_or("");
                    Outcome::Skipped { message: format!("ignored by policy: {reason}") }
                }
                None => outcome_of(finding, report.strict),
            };
            let mut text = String::new();
            human::write_finding(&mut text, finding, human::Style { color: false, verbose: true, fix_hint: false }, "");
            if let Some(ignored) = ignored.and_then(|ignored| ignored.iter().find(|item| std::ptr::eq(&item.finding, finding))) {
                let _ = writeln!(text, "  = policy: ignored ({}): {}", ignored.rule, ignored.reason);
            }
            let file = finding.location.as_ref().map(|location| crate::project::relative_to(&location.file, report.project).display().to_string());
            let key = finding.location.as_ref().and_then(|location| location.key.clone());
            Case { name, classname: finding.check, file, key, outcome, text }
        })
        .collect()
}

fn outcome_of(finding: &Finding, strict: bool) -> Outcome<'_> {
    match finding.status {
        Status::Error => Outcome::Failed { kind: Status::Error, message: &finding.message },
        Status::Warning if strict => Outcome::Failed { kind: Status::Warning, message: &finding.message },
        Status::Skipped => Outcome::Skipped { message: finding.message.clone() },
        Status::Warning | Status::Info | Status::Ok => Outcome::Passed,
    }
}

/// Returns the `name` of a finding's `[[runners]]` entry, or its position when it has none.
fn entry_name(facts: &Facts, finding: &Finding) -> Option<String> {
    let subject = finding.subject?;
    let entry = facts.entries(subject.runner).get(subject.entry?)?;
    Some(entry.label())
}

/// Appends the key path, then a counter, to names that occur more than once in a suite, so
/// that every test case has its own name.
fn make_names_unique(cases: &mut [Case]) {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for case in cases.iter() {
        *seen.entry(case.name.clone()).or_default() += 1;
    }
    for case in cases.iter_mut() {
        if seen[&case.name] > 1
            && let Some(key) = &case.key
        {
            case.name = format!("{} at {key}", case.name);
        }
    }
    let mut counters: BTreeMap<String, usize> = BTreeMap::new();
    let mut totals: BTreeMap<String, usize> = BTreeMap::new();
    for case in cases.iter() {
        *totals.entry(case.name.clone()).or_default() += 1;
    }
    for case in cases.iter_mut() {
        if totals[&case.name] > 1 {
            let counter = counters.entry(case.name.clone()).or_default();
            *counter += 1;
            case.name = format!("{} #{counter}", case.name);
        }
    }
}

fn write_case(out: &mut String, case: &Case) {
    let file = case.file.as_deref().map(|file| format!(" file=\"{}\"", escape(file))).unwrap_or_default();
    let _ = writeln!(out, "    <testcase name=\"{}\" classname=\"{}\"{file} time=\"0\">", escape(&case.name), escape(case.classname));
    match &case.outcome {
        Outcome::Failed { kind, message } => {
            let _ = writeln!(out, "      <failure type=\"{kind}\" message=\"{}\">{}</failure>", escape(message), escape(&case.text));
        }
        Outcome::Skipped { message } => {
            let _ = writeln!(out, "      <skipped message=\"{}\"/>", escape(message));
            let _ = writeln!(out, "      <system-out>{}</system-out>", escape(&case.text));
        }
        Outcome::Passed => {
            let _ = writeln!(out, "      <system-out>{}</system-out>", escape(&case.text));
        }
    }
    out.push_str("    </testcase>\n");
}

/// Escapes text for XML content and attribute values. Characters that XML 1.0 does not allow
/// at all (most control characters) become U+FFFD, and so do the escape sequences of
/// terminal colours, which a message could carry from a container's output. Secrets are
/// redacted first, since escaping could change one so that the final pass misses it.
pub fn escape(text: &str) -> String {
    let text = crate::secret::redact(text);
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if (c as u32) < 0x20 || c == '\u{fffe}' || c == '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_markup_and_control_characters() {
        assert_eq!(escape("a < b & \"c\" 'd' > e"), "a &lt; b &amp; &quot;c&quot; &apos;d&apos; &gt; e");
        assert_eq!(escape("red \u{1b}[31mtext\u{0}"), "red \u{fffd}[31mtext\u{fffd}");
        assert_eq!(escape("line\nnext\ttab"), "line\nnext\ttab");
    }
}
