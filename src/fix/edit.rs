//! Applies fix actions to a `toml_edit` document, keeping every byte that an action does not
//! touch: comments, whitespace, key order and other entries.
//!
//! Keys are found case-insensitively, as the runner decodes them, so a fix edits `URL` rather
//! than adding a second `url` beside it.

use toml_edit::{Array, DocumentMut, Item, Key, Table, TableLike, Value};

use super::{Action, KeyPath, TomlValue};

/// Why an action could not be applied.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EditError {
    #[error("the file has no `[[runners]]` entry number {0}")]
    EntryMissing(usize),
    #[error("`{0}` is not a table")]
    NotATable(String),
    #[error("`{0}` is not an array")]
    NotAnArray(String),
    #[error("`{0}` does not exist")]
    KeyMissing(String),
    #[error("`{0}` already exists")]
    KeyExists(String),
    #[error("the path is empty")]
    EmptyPath,
}

/// Applies `action` to `document`. Returns `Ok(false)` when the document already had the
/// desired state, so that a second run changes nothing.
pub fn apply(document: &mut DocumentMut, action: &Action) -> Result<bool, EditError> {
    match action {
        Action::SetKey { path, value, after } => set_key(document, path, value, after.as_deref()),
        Action::RemoveKey { path } => remove_key(document, path),
        Action::AddToArray { path, value } => add_to_array(document, path, value),
        Action::RemoveFromArray { path, value } => remove_from_array(document, path, value),
        Action::RenameKey { path, new_name } => rename_key(document, path, new_name),
        Action::RemoveEntry { entry } => remove_runner_entry(document, *entry),
        Action::SetFileMode { .. } | Action::Command { .. } => Ok(false),
    }
}

fn set_key(document: &mut DocumentMut, path: &KeyPath, value: &TomlValue, after: Option<&str>) -> Result<bool, EditError> {
    let (parents, name) = split(path)?;
    let Found { table, header_indent, inline } = find_parent(document, path.entry, parents, true)?;
    let new_value = to_value(value);

    if let Some(existing) = find_key(table, name) {
        let item = table.get_mut(&existing).expect("key found above");
        let Some(old) = item.as_value_mut() else {
            return Err(EditError::NotATable(path.to_string()));
        };
        if same_value(old, &new_value) {
            return Ok(false);
        }
        let decor = old.decor().clone();
        let mut replacement = new_value;
        *replacement.decor_mut() = decor;
        *old = replacement;
        return Ok(true);
    }

    let mut key = Key::new(name);
    key.leaf_decor_mut().set_prefix(indentation(table, header_indent.as_deref()));
    let position = position_for(table, &table_schema_path(path), name, after);
    insert_at(table, key, Item::Value(new_value), position, inline);
    Ok(true)
}

fn remove_key(document: &mut DocumentMut, path: &KeyPath) -> Result<bool, EditError> {
    let (parents, name) = split(path)?;
    let Ok(table) = parent_table(document, path.entry, parents, false) else {
        return Ok(false);
    };
    match find_key(table, name) {
        Some(existing) => Ok(table.remove(&existing).is_some()),
        None => Ok(false),
    }
}

fn add_to_array(document: &mut DocumentMut, path: &KeyPath, value: &str) -> Result<bool, EditError> {
    let (parents, name) = split(path)?;
    let Found { table, header_indent, inline } = find_parent(document, path.entry, parents, true)?;
    match find_key(table, name) {
        Some(existing) => {
            let array = table.get_mut(&existing).and_then(Item::as_array_mut).ok_or_else(|| EditError::NotAnArray(path.to_string()))?;
            if array.iter().any(|item| item.as_str() == Some(value)) {
                return Ok(false);
            }
            array.push(value);
            Ok(true)
        }
        None => {
            let mut array = Array::new();
            array.push(value);
            let mut key = Key::new(name);
            key.leaf_decor_mut().set_prefix(indentation(table, header_indent.as_deref()));
            let position = position_for(table, &table_schema_path(path), name, None);
            insert_at(table, key, Item::Value(Value::Array(array)), position, inline);
            Ok(true)
        }
    }
}

fn remove_from_array(document: &mut DocumentMut, path: &KeyPath, value: &str) -> Result<bool, EditError> {
    let (parents, name) = split(path)?;
    let Ok(table) = parent_table(document, path.entry, parents, false) else {
        return Ok(false);
    };
    let Some(existing) = find_key(table, name) else { return Ok(false) };
    let array = table.get_mut(&existing).and_then(Item::as_array_mut).ok_or_else(|| EditError::NotAnArray(path.to_string()))?;
    let before = array.len();
    array.retain(|item| item.as_str() != Some(value));
    Ok(array.len() != before)
}

fn rename_key(document: &mut DocumentMut, path: &KeyPath, new_name: &str) -> Result<bool, EditError> {
    let (parents, name) = split(path)?;
    let table = parent_table(document, path.entry, parents, false)?;
    if table.contains_key(new_name) {
        // Already renamed (or both exist, which the user must sort out by hand).
        return if table.contains_key(name) { Err(EditError::KeyExists(new_name.to_string())) } else { Ok(false) };
    }
    let Some(existing) = table.iter().map(|(key, _)| key.to_string()).find(|key| key == name) else {
        return Err(EditError::KeyMissing(path.to_string()));
    };

    // The renamed key takes the old one's place: right after the value that preceded it.
    let values: Vec<String> = table.iter().filter(|(_, item)| item.is_value()).map(|(key, _)| key.to_string()).collect();
    let position = match values.iter().position(|key| *key == existing) {
        Some(0) => Position::Start,
        Some(at) => Position::After(values[at - 1].clone()),
        None => Position::End,
    };
    let (old_key, item) = take(table, &existing).expect("key exists");
    let mut renamed = Key::new(new_name);
    *renamed.leaf_decor_mut() = old_key.leaf_decor().clone();
    *renamed.dotted_decor_mut() = old_key.dotted_decor().clone();
    insert_at(table, renamed, item, position, false);
    Ok(true)
}

/// Inserts `item` under `key`, keeping the key's decor (its indentation).
fn insert_formatted(table: &mut dyn TableLike, key: &Key, item: Item) {
    if let toml_edit::Entry::Vacant(vacant) = table.entry_format(key) {
        vacant.insert(item);
    }
}

/// Removes `name` and returns it with its key, whose decor a later insert can reuse.
fn take(table: &mut dyn TableLike, name: &str) -> Option<(Key, Item)> {
    let key = table.key(name)?.clone();
    let item = table.remove(name)?;
    Some((key, item))
}

fn remove_runner_entry(document: &mut DocumentMut, entry: usize) -> Result<bool, EditError> {
    let runners = runners_key(document.as_table()).ok_or(EditError::EntryMissing(entry))?;
    let array = document.get_mut(&runners).and_then(Item::as_array_of_tables_mut).ok_or(EditError::EntryMissing(entry))?;
    if entry >= array.len() {
        return Err(EditError::EntryMissing(entry));
    }
    array.remove(entry);
    Ok(true)
}

fn split(path: &KeyPath) -> Result<(&[String], &str), EditError> {
    let (name, parents) = path.keys.split_last().ok_or(EditError::EmptyPath)?;
    Ok((parents, name))
}

/// The key named `name` in `table`, matched case-insensitively; an exact match wins.
fn find_key(table: &dyn TableLike, name: &str) -> Option<String> {
    if table.contains_key(name) {
        return Some(name.to_string());
    }
    table.iter().map(|(key, _)| key).find(|key| key.eq_ignore_ascii_case(name)).map(str::to_string)
}

fn runners_key(table: &Table) -> Option<String> {
    find_key(table, "runners")
}

/// The table that holds the last key of a path, created (as a `[header]` table) when `create`
/// is set and it is missing.
/// A table found by a path, with the indentation of its `[header]` when it has one.
struct Found<'a> {
    table: &'a mut dyn TableLike,
    header_indent: Option<String>,
    /// The table is an inline table (`{ a = 1 }`), whose values carry their own spacing.
    inline: bool,
}

fn parent_table<'a>(document: &'a mut DocumentMut, entry: Option<usize>, parents: &[String], create: bool) -> Result<&'a mut dyn TableLike, EditError> {
    Ok(find_parent(document, entry, parents, create)?.table)
}

fn find_parent<'a>(document: &'a mut DocumentMut, entry: Option<usize>, parents: &[String], create: bool) -> Result<Found<'a>, EditError> {
    let mut inline = false;
    let (mut table, mut header_indent): (&mut dyn TableLike, Option<String>) = match entry {
        Some(index) => {
            let runners = runners_key(document.as_table()).ok_or(EditError::EntryMissing(index))?;
            let array = document.get_mut(&runners).and_then(Item::as_array_of_tables_mut).ok_or(EditError::EntryMissing(index))?;
            let runner = array.get_mut(index).ok_or(EditError::EntryMissing(index))?;
            let indent = last_line(runner.decor().prefix().and_then(|prefix| prefix.as_str()).unwrap_or(""));
            (runner, Some(indent))
        }
        None => (document.as_table_mut(), None),
    };

    for (depth, name) in parents.iter().enumerate() {
        let existing = find_key(table, name);
        let key = match existing {
            Some(key) => key,
            None if create => {
                let header_indent = header_indentation(table, entry.is_some(), depth);
                let mut new_table = Table::new();
                new_table.set_implicit(false);
                new_table.decor_mut().set_prefix(header_indent);
                table.insert(name, Item::Table(new_table));
                name.clone()
            }
            None => return Err(EditError::KeyMissing(name.clone())),
        };
        let item = table.get_mut(&key).ok_or_else(|| EditError::NotATable(name.clone()))?;
        header_indent = match item {
            Item::Table(nested) if !nested.is_implicit() && !nested.is_dotted() => {
                Some(last_line(nested.decor().prefix().and_then(|prefix| prefix.as_str()).unwrap_or("")))
            }
            _ => None,
        };
        inline = matches!(item, Item::Value(Value::InlineTable(_)));
        table = item.as_table_like_mut().ok_or_else(|| EditError::NotATable(name.clone()))?;
    }
    Ok(Found { table, header_indent, inline })
}

fn last_line(text: &str) -> String {
    text.rsplit('\n').next().unwrap_or("").to_string()
}

/// Indentation for a new key: that of the last key already in the table, or two more spaces
/// than the table's own header.
fn indentation(table: &dyn TableLike, header_indent: Option<&str>) -> String {
    let last = table
        .iter()
        .filter(|(_, item)| item.is_value())
        .filter_map(|(key, _)| table.key(key))
        .filter_map(|key| key.leaf_decor().prefix().and_then(|prefix| prefix.as_str()).map(last_line))
        .last();
    match (last, header_indent) {
        (Some(prefix), _) => prefix,
        (None, Some(header)) => format!("{header}  "),
        (None, None) => String::new(),
    }
}

/// Header indentation for a new sub-table: that of an existing sibling table, or two spaces per
/// level inside a `[[runners]]` entry (the layout `gitlab-runner register` writes).
fn header_indentation(table: &dyn TableLike, in_entry: bool, depth: usize) -> String {
    let sibling = table
        .iter()
        .filter_map(|(_, item)| item.as_table())
        .filter_map(|sibling| sibling.decor().prefix().and_then(|prefix| prefix.as_str()))
        .map(|prefix| prefix.rsplit('\n').next().unwrap_or("").to_string())
        .last();
    match sibling {
        Some(indent) => indent,
        None if in_entry => "  ".repeat(depth + 1),
        None => String::new(),
    }
}

/// Where a new key goes among the values of its table.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Position {
    /// Right after this existing key.
    After(String),
    /// Before every other value.
    Start,
    End,
}

/// The reference path of the table a key path points into: `runners.docker` for
/// `runners[0].docker.network_mode`.
fn table_schema_path(path: &KeyPath) -> String {
    let mut segments: Vec<String> = Vec::new();
    if path.entry.is_some() {
        segments.push("runners".into());
    }
    segments.extend(path.keys[..path.keys.len().saturating_sub(1)].iter().map(|key| key.to_ascii_lowercase()));
    segments.join(".")
}

/// Places `name` after `after` when that key exists; otherwise where the runner's own order
/// (the key reference) puts it, which is where `gitlab-runner register` writes it; otherwise at
/// the end.
fn position_for(table: &dyn TableLike, table_path: &str, name: &str, after: Option<&str>) -> Position {
    if let Some(anchor) = after.and_then(|after| find_key(table, after)) {
        return Position::After(anchor);
    }
    let order = crate::reference::children(table_path);
    let Some(own) = order.iter().position(|child| child.eq_ignore_ascii_case(name)) else {
        return Position::End;
    };
    let values: Vec<String> = table.iter().filter(|(_, item)| item.is_value()).map(|(key, _)| key.to_string()).collect();
    let rank = |key: &str| order.iter().position(|child| child.eq_ignore_ascii_case(key));
    // Every existing key must be in the reference for the order to mean anything.
    let ranks: Option<Vec<usize>> = values.iter().map(|key| rank(key)).collect();
    let Some(ranks) = ranks else { return Position::End };
    match values.iter().zip(&ranks).filter(|(_, rank)| **rank < own).max_by_key(|(_, rank)| **rank) {
        Some((key, _)) => Position::After(key.clone()),
        None if !values.is_empty() => Position::Start,
        None => Position::End,
    }
}

/// Inserts `key` at `position`, moving the later values behind it so that each keeps its
/// decor. In an inline table, the spacing before the closing brace moves to the new last value.
fn insert_at(table: &mut dyn TableLike, key: Key, item: Item, position: Position, inline: bool) {
    let values: Vec<String> = table.iter().filter(|(_, item)| item.is_value()).map(|(key, _)| key.to_string()).collect();
    let split = match &position {
        Position::After(anchor) => values.iter().position(|key| key == anchor).map(|at| at + 1).unwrap_or(values.len()),
        Position::Start => 0,
        Position::End => values.len(),
    };
    let mut moved = Vec::new();
    for later in &values[split..] {
        if let Some(entry) = take(table, later) {
            moved.push(entry);
        }
    }
    let last_before = if inline && moved.is_empty() { values.last().cloned() } else { None };

    insert_formatted(table, &key, item);
    for (key, item) in moved {
        insert_formatted(table, &key, item);
    }

    if let Some(previous) = last_before
        && let Some(previous_value) = table.get_mut(&previous).and_then(Item::as_value_mut)
    {
        let suffix = previous_value.decor().suffix().and_then(|suffix| suffix.as_str()).unwrap_or("").to_string();
        previous_value.decor_mut().set_suffix("");
        if let Some(new_value) = table.get_mut(key.get()).and_then(Item::as_value_mut) {
            new_value.decor_mut().set_suffix(suffix);
        }
    }
}

fn to_value(value: &TomlValue) -> Value {
    match value {
        TomlValue::String(text) => Value::from(text.as_str()),
        TomlValue::Integer(number) => Value::from(*number),
        TomlValue::Bool(flag) => Value::from(*flag),
        TomlValue::Strings(items) => {
            let mut array = Array::new();
            for item in items {
                array.push(item.as_str());
            }
            Value::Array(array)
        }
    }
}

fn same_value(old: &Value, new: &Value) -> bool {
    match (old, new) {
        (Value::String(a), Value::String(b)) => a.value() == b.value(),
        (Value::Integer(a), Value::Integer(b)) => a.value() == b.value(),
        (Value::Boolean(a), Value::Boolean(b)) => a.value() == b.value(),
        (Value::Array(a), Value::Array(b)) => a.len() == b.len() && a.iter().zip(b.iter()).all(|(x, y)| same_value(x, y)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CASES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/cases");

    fn case(name: &str, file: &str) -> String {
        std::fs::read_to_string(format!("{CASES}/{name}/{file}")).unwrap()
    }

    fn apply_all(text: &str, actions: &[Action]) -> String {
        let mut document: DocumentMut = text.parse().unwrap();
        for action in actions {
            apply(&mut document, action).unwrap();
        }
        document.to_string()
    }

    fn set(entry: usize, keys: &[&str], value: TomlValue, after: Option<&str>) -> Action {
        Action::SetKey { path: KeyPath::entry(entry, keys), value, after: after.map(str::to_string) }
    }

    #[test]
    fn url_and_network_mode_fix_matches_the_expected_file() {
        let name = "C01-register-url-localhost-in-container";
        let actions = [
            set(0, &["url"], TomlValue::String("http://gitlab/".into()), None),
            set(0, &["docker", "network_mode"], TomlValue::String("ci-net".into()), None),
        ];
        let fixed = apply_all(&case(name, "config.toml"), &actions);
        assert_eq!(fixed, case(name, "config.fixed.toml"));
        assert_eq!(apply_all(&fixed, &actions), fixed, "a second run changes nothing");
    }

    #[test]
    fn new_key_goes_after_its_anchor() {
        let name = "C03-external-url-is-localhost";
        let actions = [set(0, &["clone_url"], TomlValue::String("http://gitlab".into()), Some("url"))];
        let fixed = apply_all(&case(name, "config.toml"), &actions);
        assert_eq!(fixed, case(name, "config.fixed.toml"));
    }

    #[test]
    fn array_value_is_written_inline() {
        let name = "C10-dind-service-without-privileged";
        let services = ["docker:*-dind", "docker:dind", "docker.io/library/docker:*-dind", "docker.io/library/docker:dind"];
        let actions = [
            set(0, &["docker", "allowed_privileged_services"], TomlValue::Strings(services.iter().map(|s| s.to_string()).collect()), Some("privileged")),
            set(0, &["docker", "services_privileged"], TomlValue::Bool(true), Some("privileged")),
        ];
        let fixed = apply_all(&case(name, "config.toml"), &actions);
        assert_eq!(fixed, case(name, "config.fixed.toml"));
    }

    #[test]
    fn existing_value_keeps_its_comment() {
        let text = "concurrent = 1 # raise me\n";
        let fixed = apply_all(text, &[Action::SetKey { path: KeyPath::top(&["concurrent"]), value: TomlValue::Integer(4), after: None }]);
        assert_eq!(fixed, "concurrent = 4 # raise me\n");
    }

    #[test]
    fn keys_match_case_insensitively() {
        let text = "[[runners]]\n  URL = \"http://localhost/\"\n";
        let fixed = apply_all(text, &[set(0, &["url"], TomlValue::String("http://gitlab/".into()), None)]);
        assert_eq!(fixed, "[[runners]]\n  URL = \"http://gitlab/\"\n");
    }

    #[test]
    fn rename_keeps_position_and_value() {
        let text = "[[runners]]\n  [runners.docker]\n    privilaged = true # needed for dind\n    image = \"alpine\"\n";
        let action = Action::RenameKey { path: KeyPath::entry(0, &["docker", "privilaged"]), new_name: "privileged".into() };
        let fixed = apply_all(text, std::slice::from_ref(&action));
        assert_eq!(fixed, "[[runners]]\n  [runners.docker]\n    privileged = true # needed for dind\n    image = \"alpine\"\n");
        let mut document: DocumentMut = fixed.parse().unwrap();
        assert_eq!(apply(&mut document, &action), Ok(false));
    }

    #[test]
    fn missing_table_is_created_with_the_entry_layout() {
        let text = "[[runners]]\n  name = \"a\"\n  executor = \"docker\"\n";
        let fixed = apply_all(text, &[set(0, &["docker", "network_mode"], TomlValue::String("ci-net".into()), None)]);
        assert_eq!(fixed, "[[runners]]\n  name = \"a\"\n  executor = \"docker\"\n  [runners.docker]\n    network_mode = \"ci-net\"\n");
    }

    #[test]
    fn only_the_chosen_entry_changes() {
        let text = "[[runners]]\n  name = \"a\"\n  url = \"http://localhost/\"\n\n[[runners]]\n  name = \"b\"\n  url = \"http://localhost/\"\n";
        let fixed = apply_all(text, &[set(1, &["url"], TomlValue::String("http://gitlab/".into()), None)]);
        assert_eq!(fixed, "[[runners]]\n  name = \"a\"\n  url = \"http://localhost/\"\n\n[[runners]]\n  name = \"b\"\n  url = \"http://gitlab/\"\n");
    }

    #[test]
    fn dotted_and_inline_tables_are_edited_in_place() {
        let text = "[[runners]]\n  docker.privileged = false\n  cache = { Type = \"s3\" }\n";
        let fixed = apply_all(text, &[
            set(0, &["docker", "privileged"], TomlValue::Bool(true), None),
            set(0, &["cache", "Shared"], TomlValue::Bool(true), None),
        ]);
        assert_eq!(fixed, "[[runners]]\n  docker.privileged = true\n  cache = { Type = \"s3\", Shared = true }\n");
    }

    #[test]
    fn removing_an_entry_drops_only_it() {
        let text = "concurrent = 2\n\n[[runners]]\n  name = \"old\"\n\n[[runners]]\n  name = \"new\"\n";
        let fixed = apply_all(text, &[Action::RemoveEntry { entry: 0 }]);
        assert_eq!(fixed, "concurrent = 2\n\n[[runners]]\n  name = \"new\"\n");
    }

    #[test]
    fn array_items_are_added_once() {
        let text = "[[runners]]\n  [runners.docker]\n    volumes = [\"/cache\"]\n";
        let action = Action::AddToArray { path: KeyPath::entry(0, &["docker", "volumes"]), value: "/certs/client".into() };
        let fixed = apply_all(text, std::slice::from_ref(&action));
        assert_eq!(fixed, "[[runners]]\n  [runners.docker]\n    volumes = [\"/cache\", \"/certs/client\"]\n");
        assert_eq!(apply_all(&fixed, &[action]), fixed);
    }
}
