//! A small YAML tree for `.gitlab-ci.yml`, with positions, built from saphyr's marked nodes.
//!
//! saphyr resolves anchors and aliases, within a node budget against alias bombs, and keeps
//! tags. This module adds YAML merge keys (`<<: *base`), which GitLab supports and saphyr leaves
//! as ordinary keys. It also turns `!reference [job, key]` into a node of its own and bounds the
//! nesting depth.

use saphyr::{LoadableYamlNode, MarkedYaml, Scalar, YamlData};

/// Deepest nesting accepted. Real pipelines stay far below; a deeper file is an attack or an
/// accident, and walking it recursively could overflow the stack.
pub const MAX_DEPTH: usize = 128;

/// Most nodes accepted per file, after alias expansion.
pub const MAX_NODES: usize = 200_000;

/// A YAML value with the line it starts on (1-based) and the file it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub line: usize,
    /// Index into the list of files the pipeline was read from.
    pub file: usize,
    /// The line of the key this value belongs to, for mapping values; a block value starts on
    /// the next line.
    pub key_line: Option<usize>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Keys in document order; keys are strings, as GitLab reads them.
    Map(Vec<(String, Node)>),
    /// `!reference [a, b, ...]`, resolved later against the whole configuration.
    Reference(Vec<String>),
}

impl Node {
    pub fn new(value: Value, line: usize, file: usize) -> Node {
        Node { value, line, file, key_line: None }
    }

    /// Returns the line to point at: the key's line for a mapping value, else the value's own.
    pub fn anchor_line(&self) -> usize {
        self.key_line.unwrap_or(self.line)
    }

    /// Returns the value under `key` of a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries.iter().rev().find(|(name, _)| name == key).map(|(_, node)| node),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(text) => Some(text),
            _ => None,
        }
    }

    /// Returns the value as text when it is a scalar, as GitLab turns variable values into
    /// strings.
    pub fn scalar_text(&self) -> Option<String> {
        match &self.value {
            Value::Str(text) => Some(text.clone()),
            Value::Int(number) => Some(number.to_string()),
            Value::Float(number) => Some(number.to_string()),
            Value::Bool(flag) => Some(flag.to_string()),
            Value::Null => Some(String::new()),
            _ => None,
        }
    }

    pub fn entries(&self) -> &[(String, Node)] {
        match &self.value {
            Value::Map(entries) => entries,
            _ => &[],
        }
    }

    pub fn items(&self) -> &[Node] {
        match &self.value {
            Value::Seq(items) => items,
            _ => &[],
        }
    }
}

/// A YAML error with its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct YamlError {
    pub message: String,
    pub line: usize,
    pub column: usize,
}

/// Parses `text` (the first document) into a tree.
pub fn parse(text: &str, file: usize) -> Result<Node, YamlError> {
    let documents = MarkedYaml::load_from_str(text).map_err(|error| YamlError {
        message: error.info().to_string(),
        line: error.marker().line().max(1),
        column: error.marker().col() + 1,
    })?;
    let Some(document) = documents.into_iter().next() else {
        return Ok(Node::new(Value::Null, 1, file));
    };
    let mut budget = MAX_NODES;
    convert(&document, file, 0, &mut budget)
}

fn convert(node: &MarkedYaml, file: usize, depth: usize, budget: &mut usize) -> Result<Node, YamlError> {
    let line = node.span.start.line().max(1);
    if depth > MAX_DEPTH {
        return Err(YamlError { message: format!("nesting deeper than {MAX_DEPTH} levels"), line, column: node.span.start.col() + 1 });
    }
    if *budget == 0 {
        return Err(YamlError { message: format!("more than {MAX_NODES} nodes"), line, column: node.span.start.col() + 1 });
    }
    *budget -= 1;

    let value = match &node.data {
        YamlData::Value(scalar) => scalar_value(scalar),
        YamlData::Representation(text, _, _) => Value::Str(text.to_string()),
        YamlData::Sequence(items) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                out.push(convert(item, file, depth + 1, budget)?);
            }
            Value::Seq(out)
        }
        YamlData::Mapping(mapping) => {
            let mut explicit: Vec<(String, Node)> = Vec::new();
            let mut merged: Vec<(String, Node)> = Vec::new();
            for (key, value) in mapping.iter() {
                let key_text = key_text(key);
                let mut converted = convert(value, file, depth + 1, budget)?;
                converted.key_line = Some(key.span.start.line().max(1));
                if key_text == "<<" {
                    merge_sources(&converted, &mut merged);
                } else {
                    explicit.push((key_text, converted));
                }
            }
            // Explicit keys win over merged ones; merged keys keep their own order in front.
            let mut entries: Vec<(String, Node)> = merged.into_iter().filter(|(name, _)| !explicit.iter().any(|(own, _)| own == name)).collect();
            entries.extend(explicit);
            Value::Map(entries)
        }
        YamlData::Tagged(tag, inner) if tag.suffix == "reference" => {
            let converted = convert(inner, file, depth + 1, budget)?;
            let path: Vec<String> = converted.items().iter().filter_map(Node::scalar_text).collect();
            Value::Reference(path)
        }
        // Other tags (`!!str`, application tags) keep their value.
        YamlData::Tagged(_, inner) => return convert(inner, file, depth + 1, budget),
        YamlData::Alias(_) | YamlData::BadValue => Value::Null,
    };
    Ok(Node::new(value, line, file))
}

/// Collects the keys of a merge source: a mapping, or a sequence of mappings where earlier
/// ones win.
fn merge_sources(source: &Node, merged: &mut Vec<(String, Node)>) {
    let mut add = |entries: &[(String, Node)]| {
        for (name, value) in entries {
            if !merged.iter().any(|(known, _)| known == name) {
                merged.push((name.clone(), value.clone()));
            }
        }
    };
    match &source.value {
        Value::Map(entries) => add(entries),
        Value::Seq(items) => {
            for item in items {
                add(item.entries());
            }
        }
        _ => {}
    }
}

fn key_text(key: &MarkedYaml) -> String {
    match &key.data {
        YamlData::Value(scalar) => match scalar_value(scalar) {
            Value::Str(text) => text,
            Value::Int(number) => number.to_string(),
            Value::Float(number) => number.to_string(),
            Value::Bool(flag) => flag.to_string(),
            _ => String::new(),
        },
        YamlData::Representation(text, _, _) => text.to_string(),
        _ => String::new(),
    }
}

fn scalar_value(scalar: &Scalar) -> Value {
    match scalar {
        Scalar::Null => Value::Null,
        Scalar::Boolean(flag) => Value::Bool(*flag),
        Scalar::Integer(number) => Value::Int(*number),
        Scalar::FloatingPoint(number) => Value::Float(number.into_inner()),
        Scalar::String(text) => Value::Str(text.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_keys_fill_in_without_overriding() {
        let tree = parse(".base: &base\n  image: docker:27\n  stage: build\njob:\n  <<: *base\n  stage: test\n", 0).unwrap();
        let job = tree.get("job").unwrap();
        assert_eq!(job.get("image").and_then(Node::as_str), Some("docker:27"));
        assert_eq!(job.get("stage").and_then(Node::as_str), Some("test"));
    }

    #[test]
    fn merge_of_several_sources_prefers_the_first() {
        let tree = parse("a: &a {x: 1}\nb: &b {x: 2, y: 3}\nc:\n  <<: [*a, *b]\n", 0).unwrap();
        let c = tree.get("c").unwrap();
        assert_eq!(c.get("x").and_then(Node::scalar_text).as_deref(), Some("1"));
        assert_eq!(c.get("y").and_then(Node::scalar_text).as_deref(), Some("3"));
    }

    #[test]
    fn reference_tags_are_kept() {
        let tree = parse("job:\n  script: !reference [.setup, script]\n", 0).unwrap();
        let script = tree.get("job").unwrap().get("script").unwrap();
        assert_eq!(script.value, Value::Reference(vec![".setup".into(), "script".into()]));
        assert_eq!(script.line, 2);
    }

    #[test]
    fn syntax_error_has_a_position() {
        let error = parse("job:\n  script: [a, b\n  image: x\n", 0).unwrap_err();
        assert!(error.line >= 2, "{error:?}");
    }

    #[test]
    fn alias_bomb_is_rejected() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for level in 1..9 {
            let previous = format!("*a{}", level - 1);
            text.push_str(&format!("a{level}: &a{level} [{}]\n", vec![previous; 10].join(", ")));
        }
        assert!(parse(&text, 0).is_err());
    }

    #[test]
    fn deep_nesting_is_rejected() {
        let text = format!("{}x{}", "[".repeat(MAX_DEPTH + 10), "]".repeat(MAX_DEPTH + 10));
        assert!(parse(&text, 0).is_err());
    }
}
