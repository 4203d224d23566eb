//! A YAML document as a tree of nodes that remember where they were written,
//! so every later check (unknown keys, param types, references) can point at
//! `file:line:col`. Parsing is serde-saphyr's; the typed pipeline model is
//! built from this tree by hand in [`crate::model`].

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use serde_saphyr::Spanned;

/// A 1-based position in a source file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    pub line: u64,
    pub column: u64,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

impl From<serde_saphyr::Location> for Pos {
    fn from(location: serde_saphyr::Location) -> Self {
        Pos {
            line: location.line(),
            column: location.column(),
        }
    }
}

/// One YAML node and where it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: NodeValue,
    pub pos: Pos,
}

/// The value of a node. Mappings keep their order and each key's position
/// (duplicate keys are rejected by the parser).
#[derive(Debug, Clone, PartialEq)]
pub enum NodeValue {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    String(String),
    Seq(Vec<Node>),
    Map(Vec<(Key, Node)>),
}

/// A mapping key and where it is written.
#[derive(Debug, Clone, PartialEq)]
pub struct Key {
    pub name: String,
    pub pos: Pos,
}

/// Why a document could not be parsed.
#[derive(Debug, Clone)]
pub struct ParseError {
    pub pos: Option<Pos>,
    pub message: String,
}

/// Stand-ins for the braces of `${...}` while the YAML parser runs: one
/// character each, so line and column numbers stay those of the file.
const OPEN: char = '\u{2983}';
const CLOSE: char = '\u{2984}';

/// Parses a document. Input limits (nesting, size) are serde-saphyr's defaults.
///
/// Pipeline references may be written unquoted even inside flow mappings
/// (`inputs: { model: ${export.model} }`), which plain YAML forbids because
/// `{` and `}` are flow indicators there. Their braces are swapped for
/// look-alike characters before parsing and restored in every string after.
pub fn parse(text: &str) -> Result<Node, ParseError> {
    let options = serde_saphyr::options! { strict_booleans: true, with_snippet: false };
    let protected = protect_references(text);
    serde_saphyr::from_str_with_options::<Node>(&protected, options).map_err(|err| ParseError {
        pos: err.location().map(Pos::from),
        message: restore_references(&reworded(&err)),
    })
}

/// The parser's message in the project's words: duplicate keys and input
/// limits are explained without the parser's own option names; other
/// syntax errors keep the parser's first line (it names the token).
fn reworded(err: &serde_saphyr::Error) -> String {
    use serde_saphyr::Error;
    use serde_saphyr::budget::BudgetBreach;
    let mut inner = err;
    while let Error::AliasError { error, .. } | Error::WithSnippet { error, .. } = inner {
        inner = error;
    }
    match inner {
        Error::DuplicateMappingKey { key: Some(key), .. } => format!(
            "`{}` is written twice in the same mapping; keep one (a later one would silently replace the first)",
            restore_references(key)
        ),
        Error::DuplicateMappingKey { key: None, .. } => {
            "a key is written twice in the same mapping; keep one (a later one would silently replace the first)".to_owned()
        }
        Error::AliasReplayCounterOverflow { .. }
        | Error::AliasReplayLimitExceeded { .. }
        | Error::AliasExpansionLimitExceeded { .. }
        | Error::AliasReplayStackDepthExceeded { .. } => {
            "the file is too large or too complex to read safely: its YAML aliases (`*name`) expand to too many values; write the repeated values out".to_owned()
        }
        Error::Budget { breach, .. } => {
            let what = match breach {
                BudgetBreach::Depth { depth } => format!(
                    "it nests {depth} levels deep, more than a pipeline file may (64)"
                ),
                BudgetBreach::Aliases { .. }
                | BudgetBreach::Anchors { .. }
                | BudgetBreach::AliasAnchorRatio { .. } => {
                    "it uses too many YAML aliases (`*name`) for a pipeline file; write the repeated values out or use fewer anchors".to_owned()
                }
                BudgetBreach::Events { .. } | BudgetBreach::Nodes { .. } => {
                    "it has more values than a pipeline file may (250,000)".to_owned()
                }
                BudgetBreach::Documents { .. } => {
                    "it holds more YAML documents (`---`) than a pipeline file may".to_owned()
                }
                _ => "it is larger than a pipeline file may be".to_owned(),
            };
            format!("the file is too large or too complex to read safely: {what}")
        }
        _ => first_line(&err.to_string()),
    }
}

/// Replaces the braces of each `${...}` (on one line, without nested braces).
fn protect_references(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        let after = &rest[start + 2..];
        let end = after.find(['}', '{', '\n']);
        match end {
            Some(end) if after[end..].starts_with('}') => {
                out.push_str(&rest[..start]);
                out.push('$');
                out.push(OPEN);
                out.push_str(&after[..end]);
                out.push(CLOSE);
                rest = &after[end + 1..];
            }
            _ => {
                out.push_str(&rest[..start + 2]);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn restore_references(text: &str) -> String {
    if text.contains(OPEN) || text.contains(CLOSE) {
        text.replace(OPEN, "{").replace(CLOSE, "}")
    } else {
        text.to_owned()
    }
}

/// serde-saphyr renders a snippet below the message; keep the message only,
/// the caller adds its own `file:line:col`.
fn first_line(message: &str) -> String {
    let line = message.lines().next().unwrap_or(message).trim();
    line.strip_prefix("error: ").unwrap_or(line).to_owned()
}

impl NodeValue {
    /// The YAML type name used in messages.
    pub fn type_name(&self) -> &'static str {
        match self {
            NodeValue::Null => "null",
            NodeValue::Bool(_) => "boolean",
            NodeValue::Int(_) => "integer",
            NodeValue::Float(_) => "number",
            NodeValue::String(_) => "string",
            NodeValue::Seq(_) => "list",
            NodeValue::Map(_) => "mapping",
        }
    }
}

impl Node {
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            NodeValue::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_map(&self) -> Option<&[(Key, Node)]> {
        match &self.value {
            NodeValue::Map(entries) => Some(entries),
            _ => None,
        }
    }

    /// Converts to JSON (params are passed to stages as JSON).
    pub fn to_json(&self) -> Value {
        match &self.value {
            NodeValue::Null => Value::Null,
            NodeValue::Bool(b) => Value::Bool(*b),
            NodeValue::Int(i) => Value::from(*i),
            NodeValue::Float(f) => {
                serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number)
            }
            NodeValue::String(s) => Value::String(s.clone()),
            NodeValue::Seq(items) => Value::Array(items.iter().map(Node::to_json).collect()),
            NodeValue::Map(entries) => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.name.clone(), v.to_json()))
                    .collect(),
            ),
        }
    }

    /// The position of the value at a JSON-pointer-like path of keys and
    /// indices below this node, or of the deepest node that exists.
    pub fn pos_at(&self, path: &[PathSegment]) -> Pos {
        let mut node = self;
        for segment in path {
            let next = match (segment, &node.value) {
                (PathSegment::Key(name), NodeValue::Map(entries)) => entries
                    .iter()
                    .find(|(k, _)| &k.name == name)
                    .map(|(_, v)| v),
                (PathSegment::Index(i), NodeValue::Seq(items)) => items.get(*i),
                _ => None,
            };
            match next {
                Some(child) => node = child,
                None => break,
            }
        }
        node.pos
    }

    /// The position of a key (not its value) in this mapping.
    pub fn key_pos(&self, name: &str) -> Option<Pos> {
        self.as_map()?
            .iter()
            .find(|(k, _)| k.name == name)
            .map(|(k, _)| k.pos)
    }
}

/// One step of a path into a node tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathSegment {
    Key(String),
    Index(usize),
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<NodeValue>::deserialize(deserializer)?;
        Ok(Node {
            value: spanned.value,
            pos: spanned.referenced.into(),
        })
    }
}

impl<'de> Deserialize<'de> for Key {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = Spanned::<KeyText>::deserialize(deserializer)?;
        Ok(Key {
            name: spanned.value.0,
            pos: spanned.referenced.into(),
        })
    }
}

/// A mapping key: scalars of any type are taken as their text.
struct KeyText(String);

impl<'de> Deserialize<'de> for KeyText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl Visitor<'_> for KeyVisitor {
            type Value = KeyText;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a scalar mapping key")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<KeyText, E> {
                Ok(KeyText(restore_references(v)))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<KeyText, E> {
                Ok(KeyText(restore_references(&v)))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<KeyText, E> {
                Ok(KeyText(v.to_string()))
            }
            fn visit_unit<E: de::Error>(self) -> Result<KeyText, E> {
                Ok(KeyText("null".to_owned()))
            }
        }
        deserializer.deserialize_any(KeyVisitor)
    }
}

impl<'de> Deserialize<'de> for NodeValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ValueVisitor;
        impl<'de> Visitor<'de> for ValueVisitor {
            type Value = NodeValue;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("any YAML value")
            }
            fn visit_unit<E: de::Error>(self) -> Result<NodeValue, E> {
                Ok(NodeValue::Null)
            }
            fn visit_none<E: de::Error>(self) -> Result<NodeValue, E> {
                Ok(NodeValue::Null)
            }
            fn visit_some<D2: Deserializer<'de>>(self, d: D2) -> Result<NodeValue, D2::Error> {
                NodeValue::deserialize(d)
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<NodeValue, E> {
                Ok(NodeValue::Bool(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<NodeValue, E> {
                Ok(NodeValue::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<NodeValue, E> {
                i64::try_from(v)
                    .map(NodeValue::Int)
                    .map_err(|_| E::custom(format!("integer {v} is too large")))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<NodeValue, E> {
                Ok(NodeValue::Float(v))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<NodeValue, E> {
                Ok(NodeValue::String(restore_references(v)))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<NodeValue, E> {
                Ok(NodeValue::String(restore_references(&v)))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<NodeValue, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<Node>()? {
                    items.push(item);
                }
                Ok(NodeValue::Seq(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<NodeValue, A::Error> {
                let mut entries: Vec<(Key, Node)> = Vec::new();
                while let Some(key) = map.next_key::<Key>()? {
                    let value = map.next_value::<Node>()?;
                    entries.push((key, value));
                }
                Ok(NodeValue::Map(entries))
            }
        }
        deserializer.deserialize_any(ValueVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nodes_and_keys_carry_line_and_column() {
        let doc = parse(
            "name: x\nstages:\n  a:\n    kind: fetch\n    params: { n: 3, f: 0.5, ok: true }\n",
        )
        .unwrap();
        let stages = doc
            .as_map()
            .unwrap()
            .iter()
            .find(|(k, _)| k.name == "stages")
            .unwrap();
        assert_eq!(stages.0.pos, Pos { line: 2, column: 1 });
        let a = &stages.1.as_map().unwrap()[0];
        assert_eq!(a.0.name, "a");
        assert_eq!(a.0.pos, Pos { line: 3, column: 3 });
        let params =
            a.1.as_map()
                .unwrap()
                .iter()
                .find(|(k, _)| k.name == "params")
                .unwrap();
        assert_eq!(
            params.1.to_json(),
            serde_json::json!({"n": 3, "f": 0.5, "ok": true})
        );
        let n_pos = params.1.pos_at(&[PathSegment::Key("n".into())]);
        assert_eq!(
            n_pos,
            Pos {
                line: 5,
                column: 18
            }
        );
        let kind = a.1.as_map().unwrap()[0].1.clone();
        assert_eq!(kind.as_str(), Some("fetch"));
        assert_eq!(
            kind.pos,
            Pos {
                line: 4,
                column: 11
            }
        );
    }

    #[test]
    fn quoted_numbers_stay_strings_and_references_parse() {
        let doc = parse("a: '3'\nb: ${x.y}\nc: [1, two]\n").unwrap();
        assert_eq!(
            doc.to_json(),
            serde_json::json!({"a": "3", "b": "${x.y}", "c": [1, "two"]})
        );
    }

    #[test]
    fn unquoted_references_work_in_flow_mappings_and_keep_columns() {
        let doc = parse("i: { a: ${x.y}, b: 3, c: '${q.r}' }\nj: ${open\n").unwrap();
        assert_eq!(
            doc.to_json(),
            serde_json::json!({"i": {"a": "${x.y}", "b": 3, "c": "${q.r}"}, "j": "${open"})
        );
        let i = &doc.as_map().unwrap()[0].1;
        assert_eq!(
            i.pos_at(&[PathSegment::Key("b".into())]),
            Pos {
                line: 1,
                column: 20
            }
        );
    }

    #[test]
    fn syntax_errors_have_a_position() {
        let err = parse("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.pos.is_some(), "{err:?}");
    }

    #[test]
    fn duplicate_keys_are_rejected() {
        let err = parse("a: 1\na: 2\n").unwrap_err();
        assert_eq!(
            err.message,
            "`a` is written twice in the same mapping; keep one (a later one would silently replace the first)"
        );
        assert!(!err.message.contains("DuplicateKeyPolicy"), "{err:?}");
        assert_eq!(err.pos, Some(Pos { line: 2, column: 1 }));
    }

    #[test]
    fn nesting_beyond_the_limit_is_explained_without_parser_internals() {
        let deep = format!("a: {}1{}\n", "[".repeat(80), "]".repeat(80));
        let err = parse(&deep).unwrap_err();
        assert!(
            err.message.starts_with(
                "the file is too large or too complex to read safely: it nests 65 levels deep"
            ),
            "{err:?}"
        );
        assert!(err.pos.is_some(), "{err:?}");
    }

    #[test]
    fn alias_bombs_are_refused_in_the_projects_words() {
        let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let refs = vec![format!("*a{}", i - 1); 10].join(", ");
            text.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
        }
        let err = parse(&text).unwrap_err();
        assert!(
            err.message
                .starts_with("the file is too large or too complex to read safely: "),
            "{err:?}"
        );
        assert!(!err.message.contains("Budget"), "{err:?}");
    }
}
