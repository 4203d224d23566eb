//! A stage's self-description: what `STAGE describe` prints, what
//! `cargo xtask stages` lists and what the orchestrator validates against.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::reproducibility::Reproducibility;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StageDescription {
    pub protocol: u32,
    pub kind: String,
    /// One line: what the stage does.
    pub description: String,
    pub params: Vec<ParamSpec>,
    pub inputs: Vec<InputSpec>,
    pub outputs: Vec<OutputSpec>,
    /// The stage runs Python in the managed environment (local executor).
    pub uses_python: bool,
    /// The JSON Schema of the params object, as generated from the stage's
    /// params type; used for `cargo xtask schema`.
    pub params_schema: Value,
    /// What a re-run with the same inputs reproduces (`cargo xtask reproduce`).
    #[serde(default)]
    pub reproducibility: Reproducibility,
}

/// One param: name, type, default and documentation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ParamSpec {
    pub name: String,
    /// JSON type name: `string`, `integer`, `number`, `boolean`, `array`,
    /// `object`, or several joined by `|`.
    pub ty: String,
    pub required: bool,
    #[serde(default)]
    pub default: Option<Value>,
    /// Allowed values, for enumerations.
    #[serde(default)]
    pub choices: Vec<Value>,
    pub doc: String,
}

/// A named input the stage consumes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    pub name: String,
    /// Accepts a list of artifacts rather than one.
    pub many: bool,
    pub required: bool,
    pub doc: String,
    /// A many-input the stage can take from a finished run: every recorded
    /// output whose [`OutputSpec::artifact`] is this artifact type.
    /// `cargo xtask report` rebuilds the kind that declares one from a lock
    /// file, without the orchestrator naming the kind.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub collects: Option<String>,
}

/// A named output the stage produces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    pub name: String,
    pub doc: String,
    /// The artifact type of the output, named by its file (`bench.json`),
    /// when other stages read it by type.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact: Option<String>,
}

impl InputSpec {
    pub fn one(name: &str, doc: &str) -> Self {
        Self {
            name: name.to_owned(),
            many: false,
            required: true,
            doc: doc.to_owned(),
            collects: None,
        }
    }
    pub fn optional(name: &str, doc: &str) -> Self {
        Self {
            required: false,
            ..Self::one(name, doc)
        }
    }
    pub fn many(name: &str, doc: &str) -> Self {
        Self {
            many: true,
            ..Self::one(name, doc)
        }
    }
    /// This many-input collects every recorded output of `artifact` type.
    pub fn collects(self, artifact: &str) -> Self {
        Self {
            collects: Some(artifact.to_owned()),
            ..self
        }
    }
}

impl OutputSpec {
    pub fn new(name: &str, doc: &str) -> Self {
        Self {
            name: name.to_owned(),
            doc: doc.to_owned(),
            artifact: None,
        }
    }
    /// The output is an artifact of type `artifact` (its file name).
    pub fn artifact(self, artifact: &str) -> Self {
        Self {
            artifact: Some(artifact.to_owned()),
            ..self
        }
    }
}

/// Derives the param list from a params type's JSON Schema, so the Rust type
/// stays the single source of truth for names, types, defaults and docs.
pub(crate) fn params_from_schema(schema: &Value) -> Vec<ParamSpec> {
    let Some(properties) = schema.get("properties").and_then(Value::as_object) else {
        return Vec::new();
    };
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    properties
        .iter()
        .map(|(name, field)| {
            let prop = resolve(schema, field);
            // A field's own default and doc win over those of the type it refers to.
            let own = |key: &str| field.get(key).or_else(|| prop.get(key));
            ParamSpec {
                name: name.clone(),
                ty: type_name(schema, prop),
                required: required.contains(&name.as_str()),
                default: own("default").cloned(),
                choices: choices(schema, prop),
                doc: own("description")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .replace('\n', " "),
            }
        })
        .collect()
}

/// Follows a local `$ref` (`#/$defs/Name`) when the property is only a reference.
fn resolve<'a>(root: &'a Value, prop: &'a Value) -> &'a Value {
    let Some(reference) = prop.get("$ref").and_then(Value::as_str) else {
        return prop;
    };
    let pointer = reference.trim_start_matches('#');
    root.pointer(pointer).unwrap_or(prop)
}

fn type_name(root: &Value, prop: &Value) -> String {
    let mut names: Vec<String> = Vec::new();
    collect_types(root, prop, &mut names);
    names.dedup();
    if names.is_empty() {
        "any".to_owned()
    } else {
        names.join("|")
    }
}

fn collect_types(root: &Value, prop: &Value, out: &mut Vec<String>) {
    let prop = resolve(root, prop);
    match prop.get("type") {
        Some(Value::String(t)) => out.push(t.clone()),
        Some(Value::Array(ts)) => {
            out.extend(ts.iter().filter_map(Value::as_str).map(str::to_owned))
        }
        _ => {}
    }
    if prop.get("enum").is_some() && prop.get("type").is_none() {
        out.push("string".to_owned());
    }
    for key in ["anyOf", "oneOf"] {
        if let Some(Value::Array(alternatives)) = prop.get(key) {
            for alternative in alternatives {
                collect_types(root, alternative, out);
            }
        }
    }
}

fn choices(root: &Value, prop: &Value) -> Vec<Value> {
    let prop = resolve(root, prop);
    if let Some(Value::Array(values)) = prop.get("enum") {
        return values.clone();
    }
    let mut out = Vec::new();
    for key in ["anyOf", "oneOf"] {
        if let Some(Value::Array(alternatives)) = prop.get(key) {
            for alternative in alternatives {
                let alternative = resolve(root, alternative);
                if let Some(c) = alternative.get("const") {
                    out.push(c.clone());
                }
                if let Some(Value::Array(values)) = alternative.get("enum") {
                    out.extend(values.iter().cloned());
                }
            }
        }
    }
    out
}
