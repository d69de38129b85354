//! `config.syntax`: the config is valid TOML.

use annotate_snippets::{AnnotationKind, Level, Renderer, Snippet};

use crate::checks::Check;
use crate::facts::Facts;
use crate::finding::{Finding, Location, Status, Subject};

pub struct Syntax;

impl Check for Syntax {
    fn id(&self) -> &'static str {
        "config.syntax"
    }

    fn summary(&self) -> &'static str {
        "config.toml is valid TOML; an error shows its line, column and the offending line"
    }

    fn explanation(&self) -> &'static str {
        include_str!("../../../checks/config.syntax.md")
    }

    fn run(&self, facts: &Facts, out: &mut Vec<Finding>) {
        for (index, runner) in facts.runners.iter().enumerate() {
            let subject = Subject { runner: index, entry: None };
            let config = &runner.config;
            let shown = config.display_path();
            let (Ok(text), Some(parsed)) = (&config.text, &config.parsed) else {
                out.push(Finding::new(self.id(), Status::Skipped, format!("`{}` was not read (see `config.found`)", shown.display())).subject(subject));
                continue;
            };

            match parsed {
                Ok(_) => out.push(Finding::new(self.id(), Status::Ok, format!("`{}` is valid TOML", shown.display())).subject(subject)),
                Err(error) => {
                    let location = Location { file: shown.clone(), key: None, line: Some(error.line), column: Some(error.column) };
                    let mut finding = Finding::new(self.id(), Status::Error, format!("`{}` is not valid TOML: {}", shown.display(), first_line(&error.message)))
                        .subject(subject)
                        .effect("the runner refuses to start with this file; a running runner keeps its previous config and ignores every later change")
                        .location(Some(location))
                        .help("correct the file at the marked position; `gitlab-runner lint` (runner 19.3 or later) checks it too");
                    for line in snippet(text, &shown.display().to_string(), error.span.clone(), &error.message) {
                        finding = finding.evidence(line);
                    }
                    out.push(finding);
                }
            }
        }
    }
}

fn first_line(message: &str) -> &str {
    message.lines().next().unwrap_or(message).trim()
}

/// The offending line with the error position underlined, as plain text lines.
fn snippet(text: &str, path: &str, span: std::ops::Range<usize>, message: &str) -> Vec<String> {
    let mut span = span.start.min(text.len())..span.end.min(text.len());
    if span.is_empty() {
        // An empty span (an error at the end of a line) still deserves a visible mark.
        let end = text[span.start..].chars().next().map(|c| span.start + c.len_utf8()).unwrap_or(span.start);
        span = span.start..end;
    }
    let report = &[Level::ERROR.primary_title(first_line(message)).element(
        Snippet::source(text).path(path).fold(true).annotation(AnnotationKind::Primary.span(span).label(first_line(message))),
    )];
    let rendered = Renderer::plain().render(report);
    rendered.lines().skip(1).map(str::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippet_underlines_the_offending_line() {
        let text = "concurrent = 1\n[[runners]]\n  name = \"x\n";
        let error = crate::facts::config::ParsedConfig::parse(text).unwrap_err();
        let lines = snippet(text, "config.toml", error.span.clone(), &error.message);
        let joined = lines.join("\n");
        assert!(joined.contains("config.toml:3:"), "{joined}");
        assert!(joined.contains("name = \"x"), "{joined}");
        assert!(joined.contains('^'), "{joined}");
    }
}
