//! Keeps a file's own bytes around an edit: its byte-order mark and line endings.
//!
//! `toml_edit` writes `\n` line endings and no byte-order mark. Edits are therefore made on a
//! normalized copy, and the result is rebuilt from the original lines: unchanged lines keep
//! their exact bytes, and new lines get the file's dominant line ending.

use similar::{DiffTag, TextDiff};

const BOM: &str = "\u{feff}";

/// The text `toml_edit` should edit: without a byte-order mark and with `\n` line endings.
pub fn normalize(original: &str) -> String {
    original.strip_prefix(BOM).unwrap_or(original).replace("\r\n", "\n")
}

/// Rebuilds `original` with the changes that `edited` (a normalized copy after editing) made.
pub fn reconstruct(original: &str, edited: &str) -> String {
    let bom = original.starts_with(BOM);
    let body = original.strip_prefix(BOM).unwrap_or(original);
    let normalized = body.replace("\r\n", "\n");
    if normalized == edited {
        return original.to_string();
    }

    let original_lines: Vec<&str> = body.split_inclusive('\n').collect();
    let crlf = original_lines.iter().filter(|line| line.ends_with("\r\n")).count();
    let ending = if crlf * 2 > original_lines.len() { "\r\n" } else { "\n" };

    let diff = TextDiff::from_lines(&normalized, edited);
    let new_lines: Vec<&str> = edited.split_inclusive('\n').collect();
    let mut out = String::with_capacity(original.len() + 64);
    if bom {
        out.push_str(BOM);
    }
    for op in diff.ops() {
        match op.tag() {
            DiffTag::Equal => {
                for line in &original_lines[op.old_range()] {
                    out.push_str(line);
                }
            }
            DiffTag::Delete => {}
            DiffTag::Insert | DiffTag::Replace => {
                for line in &new_lines[op.new_range()] {
                    match line.strip_suffix('\n') {
                        Some(content) => {
                            out.push_str(content);
                            out.push_str(ending);
                        }
                        None => out.push_str(line),
                    }
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crlf_file_keeps_crlf_and_new_lines_get_it() {
        let original = "a = 1\r\nb = 2\r\n";
        let edited = normalize(original).replace("b = 2\n", "b = 2\nc = 3\n");
        assert_eq!(reconstruct(original, &edited), "a = 1\r\nb = 2\r\nc = 3\r\n");
    }

    #[test]
    fn byte_order_mark_is_kept() {
        let original = "\u{feff}a = 1\n";
        let edited = normalize(original).replace("a = 1", "a = 2");
        assert_eq!(reconstruct(original, &edited), "\u{feff}a = 2\n");
    }

    #[test]
    fn mixed_endings_keep_each_unchanged_line() {
        let original = "a = 1\r\nb = 2\nc = 3\r\n";
        let edited = normalize(original).replace("b = 2", "b = 5");
        assert_eq!(reconstruct(original, &edited), "a = 1\r\nb = 5\r\nc = 3\r\n");
    }

    #[test]
    fn no_change_returns_the_original_bytes() {
        let original = "\u{feff}a = 1\r\n";
        assert_eq!(reconstruct(original, &normalize(original)), original);
    }
}
