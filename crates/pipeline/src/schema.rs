//! The JSON Schema of the pipeline format, with each stage kind's params
//! schema (from `describe`) embedded, so editors can complete and check
//! pipeline files.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};
use stage_api::StageDescription;

/// The schema for pipelines using the described kinds.
pub fn pipeline_schema(descriptions: &BTreeMap<String, StageDescription>) -> Value {
    let mut defs = Map::new();
    let reference = json!({
        "type": "string",
        "pattern": "^\\$\\{[A-Za-z0-9_-]+\\.[A-Za-z0-9_-]+\\}$|^[^$]",
        "description": "`${stage.output}`, or a path relative to the pipeline file"
    });
    defs.insert("artifact".into(), reference);
    defs.insert(
        "executor".into(),
        json!({
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "kind": { "enum": crate::executor::Executor::NAMES },
                "threads": { "type": "integer", "minimum": 1 },
                "tool_timeout_secs": { "type": "integer", "minimum": 1 },
                "timeout_secs": { "type": "integer", "minimum": 1 },
                "env": { "type": "object", "additionalProperties": { "type": ["string", "number", "boolean"] } },
                "docker": {
                    "type": "object",
                    "additionalProperties": false,
                    "properties": {
                        "gpus": { "type": "boolean" },
                        "context": { "type": "string" },
                        "image_prefix": { "type": "string" },
                        "shared_paths": {
                            "type": "boolean",
                            "description": "the engine's host sees the workspace and state directory at the same paths (required with a remote context)"
                        }
                    }
                },
                "slurm": {
                    "type": "object",
                    "additionalProperties": false,
                    "properties": {
                        "partition": { "type": "string" },
                        "cpus": { "type": "integer", "minimum": 1 },
                        "mem": {
                            "type": ["string", "integer"],
                            "pattern": "^[0-9]+([KMGTkmgt][Bb]?)?$",
                            "description": "--mem: a size like 4G or 512M (a plain number is MiB)"
                        },
                        "gpus": { "type": "integer", "minimum": 0 },
                        "time_limit": {
                            "type": ["string", "integer"],
                            "description": "--time: minutes, H:MM:SS or D-HH:MM:SS"
                        },
                        "account": { "type": "string" },
                        "qos": { "type": "string" },
                        "extra_args": { "type": "array", "items": { "type": "string", "pattern": "^-" } }
                    }
                }
            }
        }),
    );
    let mut variants = Vec::new();
    for (kind, description) in descriptions {
        let params = embed(kind, &description.params_schema, &mut defs);
        let mut inputs = Map::new();
        for input in &description.inputs {
            let one = json!({ "$ref": "#/$defs/artifact", "description": input.doc });
            let schema = if input.many {
                json!({ "type": "array", "items": { "$ref": "#/$defs/artifact" }, "description": input.doc })
            } else {
                one
            };
            inputs.insert(input.name.clone(), schema);
        }
        let required_inputs: Vec<&str> = description
            .inputs
            .iter()
            .filter(|i| i.required)
            .map(|i| i.name.as_str())
            .collect();
        let mut required = vec!["kind"];
        if !required_inputs.is_empty() {
            required.push("inputs");
        }
        if description.params.iter().any(|p| p.required) {
            required.push("params");
        }
        variants.push(json!({
            "description": description.description,
            "type": "object",
            "additionalProperties": false,
            "required": required,
            "properties": {
                "kind": { "const": kind },
                "params": params,
                "inputs": {
                    "type": "object",
                    "additionalProperties": false,
                    "required": required_inputs,
                    "properties": inputs
                },
                "executor": { "$ref": "#/$defs/executor" }
            }
        }));
    }
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "edgepipe pipeline",
        "type": "object",
        "additionalProperties": false,
        "required": ["name", "stages"],
        "properties": {
            "name": { "type": "string", "pattern": "^[A-Za-z0-9_][A-Za-z0-9_-]*$" },
            "description": { "type": "string" },
            "executor": { "$ref": "#/$defs/executor" },
            "stages": {
                "type": "object",
                "propertyNames": { "pattern": "^[A-Za-z0-9_][A-Za-z0-9_-]*$" },
                "additionalProperties": { "oneOf": variants }
            }
        },
        "$defs": defs
    })
}

/// Moves a params schema's `$defs` into the shared `$defs` under
/// `<kind>.<name>` and rewrites its references to match.
fn embed(kind: &str, schema: &Value, defs: &mut Map<String, Value>) -> Value {
    let mut schema = schema.clone();
    if let Value::Object(map) = &mut schema {
        map.remove("$schema");
        if let Some(Value::Object(local)) = map.remove("$defs") {
            for (name, mut def) in local {
                rewrite_refs(kind, &mut def);
                defs.insert(format!("{kind}.{name}"), def);
            }
        }
    }
    rewrite_refs(kind, &mut schema);
    schema
}

fn rewrite_refs(kind: &str, value: &mut Value) {
    match value {
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                if key == "$ref"
                    && let Value::String(target) = child
                    && let Some(name) = target.strip_prefix("#/$defs/")
                {
                    *target = format!("#/$defs/{kind}.{name}");
                } else {
                    rewrite_refs(kind, child);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| rewrite_refs(kind, v)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use stage_api::{InputSpec, OutputSpec};

    use super::*;

    #[test]
    fn embeds_params_with_prefixed_definitions() {
        let params_schema = json!({
            "$schema": "x",
            "type": "object",
            "properties": { "mode": { "$ref": "#/$defs/Mode" } },
            "$defs": { "Mode": { "enum": ["a", "b"] } }
        });
        let description = StageDescription {
            protocol: 1,
            kind: "quantize".into(),
            description: "Quantizes.".into(),
            params: vec![],
            inputs: vec![InputSpec::one("model", "m"), InputSpec::many("extra", "e")],
            outputs: vec![OutputSpec::new("model", "m")],
            uses_python: true,
            params_schema,
            reproducibility: Default::default(),
        };
        let schema = pipeline_schema(&BTreeMap::from([("quantize".to_owned(), description)]));
        let variant = &schema
            .pointer("/properties/stages/additionalProperties/oneOf/0")
            .unwrap();
        assert_eq!(
            variant.pointer("/properties/kind/const").unwrap(),
            "quantize"
        );
        assert_eq!(
            variant
                .pointer("/properties/params/properties/mode/$ref")
                .unwrap(),
            "#/$defs/quantize.Mode"
        );
        assert_eq!(schema.pointer("/$defs/quantize.Mode/enum/1").unwrap(), "b");
        assert_eq!(
            variant.pointer("/properties/inputs/required/0").unwrap(),
            "model"
        );
        assert_eq!(
            variant
                .pointer("/properties/inputs/properties/extra/type")
                .unwrap(),
            "array"
        );
        assert!(variant.pointer("/properties/params/$schema").is_none());
    }
}
