//! Checks a parsed pipeline against the stage catalog before anything runs:
//! known kinds, inputs and outputs that exist, params of the right names and
//! types, external input files that exist, and no cycles. Every problem is
//! reported at once, each at its `file:line:col`.

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use stage_api::{ParamSpec, StageDescription};

use crate::dag;
use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::model::{InputSource, Pipeline, StageSpec};
use crate::suggest;
use crate::yaml::{PathSegment, Pos};

/// Validates `pipeline`; `known_kinds` are the kinds the catalog has,
/// `descriptions` those of the kinds the pipeline uses.
pub fn validate<'a>(
    pipeline: &Pipeline,
    known_kinds: impl Iterator<Item = &'a str> + Clone,
    descriptions: &BTreeMap<String, StageDescription>,
) -> Result<Vec<usize>, Diagnostics> {
    let mut out = Vec::new();
    let error = |out: &mut Vec<Diagnostic>, pos: Pos, message: String, help: Option<String>| {
        let mut d = Diagnostic::new(&pipeline.file, Some(pos), message);
        d.help = help;
        out.push(d);
    };
    for stage in &pipeline.stages {
        let Some(description) = descriptions.get(&stage.kind) else {
            let known = known_kinds.clone().any(|k| k == stage.kind);
            if !known {
                error(
                    &mut out,
                    stage.kind_pos,
                    format!("unknown stage kind `{}`", stage.kind),
                    Some(suggest::help(&stage.kind, known_kinds.clone())),
                );
            }
            continue;
        };
        check_params(pipeline, stage, description, &mut out);
        // Inputs.
        let input_names = description.inputs.iter().map(|i| i.name.as_str());
        for (name, binding) in &stage.inputs {
            let Some(spec) = description.inputs.iter().find(|i| &i.name == name) else {
                error(
                    &mut out,
                    binding.pos,
                    format!(
                        "stage `{}` (kind `{}`) has no input `{name}`",
                        stage.name, stage.kind
                    ),
                    Some(suggest::help(name, input_names.clone())),
                );
                continue;
            };
            if !spec.many && binding.sources.len() > 1 {
                error(
                    &mut out,
                    binding.pos,
                    format!(
                        "input `{name}` of stage `{}` takes one artifact, got {}",
                        stage.name,
                        binding.sources.len()
                    ),
                    None,
                );
            }
            for source in &binding.sources {
                match source {
                    InputSource::Output {
                        stage: upstream,
                        output,
                        pos,
                    } => {
                        let Some(up) = pipeline.stage(upstream) else {
                            error(
                                &mut out,
                                *pos,
                                format!(
                                    "`${{{upstream}.{output}}}` refers to a stage `{upstream}` that does not exist"
                                ),
                                Some(suggest::help(
                                    upstream,
                                    pipeline.stages.iter().map(|s| s.name.as_str()),
                                )),
                            );
                            continue;
                        };
                        if up.name == stage.name {
                            error(
                                &mut out,
                                *pos,
                                format!("stage `{}` reads its own output", stage.name),
                                None,
                            );
                            continue;
                        }
                        if let Some(up_description) = descriptions.get(&up.kind)
                            && !up_description.outputs.iter().any(|o| &o.name == output)
                        {
                            error(
                                &mut out,
                                *pos,
                                format!(
                                    "stage `{upstream}` (kind `{}`) has no output `{output}`",
                                    up.kind
                                ),
                                Some(suggest::help(
                                    output,
                                    up_description.outputs.iter().map(|o| o.name.as_str()),
                                )),
                            );
                        }
                    }
                    InputSource::External { path, written, pos } => {
                        if !path.exists() {
                            error(
                                &mut out,
                                *pos,
                                format!(
                                    "input file `{written}` does not exist ({})",
                                    path.display()
                                ),
                                Some("paths are relative to the pipeline file".to_owned()),
                            );
                        }
                    }
                }
            }
        }
        for spec in description.inputs.iter().filter(|i| i.required) {
            if !stage.inputs.contains_key(&spec.name) {
                error(
                    &mut out,
                    stage.name_pos,
                    format!(
                        "stage `{}` (kind `{}`) needs input `{}`: {}",
                        stage.name, stage.kind, spec.name, spec.doc
                    ),
                    None,
                );
            }
        }
    }
    let order = match dag::topological_order(pipeline) {
        Ok(order) => order,
        Err(cycle) => {
            let first = pipeline.stage(&cycle[0]).map(|s| s.name_pos);
            out.push(Diagnostic::new(
                &pipeline.file,
                first,
                format!(
                    "the stages form a cycle: {} -> {}",
                    cycle.join(" -> "),
                    cycle[0]
                ),
            ));
            Vec::new()
        }
    };
    if out.is_empty() {
        Ok(order)
    } else {
        Err(Diagnostics(out))
    }
}

fn check_params(
    pipeline: &Pipeline,
    stage: &StageSpec,
    description: &StageDescription,
    out: &mut Vec<Diagnostic>,
) {
    let names = description.params.iter().map(|p| p.name.as_str());
    for (key, value) in &stage.params {
        let pos = stage.param_key_pos(key).unwrap_or(stage.kind_pos);
        let Some(spec) = description.params.iter().find(|p| &p.name == key) else {
            out.push(
                Diagnostic::new(
                    &pipeline.file,
                    Some(pos),
                    format!(
                        "stage `{}` (kind `{}`) has no param `{key}`",
                        stage.name, stage.kind
                    ),
                )
                .with_help(suggest::help(key, names.clone())),
            );
            continue;
        };
        if let Some(problem) = type_problem(spec, value) {
            let value_pos = stage.param_pos(&[PathSegment::Key(key.clone())]);
            let mut d = Diagnostic::new(
                &pipeline.file,
                Some(value_pos),
                format!("param `{key}` of stage `{}`: {problem}", stage.name),
            );
            if !spec.doc.is_empty() {
                d = d.with_help(format!("`{key}`: {}", spec.doc));
            }
            out.push(d);
        }
    }
    for spec in description.params.iter().filter(|p| p.required) {
        if !stage.params.contains_key(&spec.name) {
            out.push(
                Diagnostic::new(
                    &pipeline.file,
                    Some(stage.name_pos),
                    format!(
                        "stage `{}` needs param `{}` ({})",
                        stage.name, spec.name, spec.ty
                    ),
                )
                .with_help(spec.doc.clone()),
            );
        }
    }
}

/// Whether `value` fits the param's declared JSON type(s) and choices.
fn type_problem(spec: &ParamSpec, value: &Value) -> Option<String> {
    let types: Vec<&str> = spec.ty.split('|').map(str::trim).collect();
    let fits = |t: &str| match t {
        "any" => true,
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "boolean" => value.is_boolean(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        "null" => value.is_null(),
        _ => true,
    };
    if !types.iter().any(|t| fits(t)) {
        return Some(format!(
            "expected {}, found {}",
            spec.ty.replace('|', " or "),
            json_type(value)
        ));
    }
    if !spec.choices.is_empty() && !value.is_null() && !spec.choices.contains(value) {
        let choices: Vec<String> = spec.choices.iter().map(Value::to_string).collect();
        let help = value.as_str().and_then(|v| {
            suggest::closest(v, spec.choices.iter().filter_map(Value::as_str))
                .map(|c| format!(" (did you mean \"{c}\"?)"))
        });
        return Some(format!(
            "{value} is not one of {}{}",
            choices.join(", "),
            help.unwrap_or_default()
        ));
    }
    None
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(n) if n.is_f64() => "a number",
        Value::Number(_) => "an integer",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

/// The params a stage runs with: as written, plus the described defaults.
pub fn effective_params(stage: &StageSpec, description: &StageDescription) -> Map<String, Value> {
    let mut params = stage.params.clone();
    for spec in &description.params {
        if let Some(default) = &spec.default
            && !params.contains_key(&spec.name)
        {
            params.insert(spec.name.clone(), default.clone());
        }
    }
    params
}

/// Maps a stage's own params error (as printed by `STAGE validate`:
/// "params of `kind`: `a.b`: message") back to the YAML position.
pub fn locate_params_error(pipeline: &Pipeline, stage: &StageSpec, message: &str) -> Diagnostic {
    let message = message.trim().trim_start_matches("error: ");
    let detail = message.split_once(": ").map_or(message, |(_, rest)| rest);
    let path: Vec<PathSegment> = detail
        .strip_prefix('`')
        .and_then(|rest| rest.split_once('`'))
        .map(|(path, _)| {
            path.split('.')
                .filter(|s| !s.is_empty())
                .map(|s| match s.parse::<usize>() {
                    Ok(i) => PathSegment::Index(i),
                    Err(_) => PathSegment::Key(s.to_owned()),
                })
                .collect()
        })
        .unwrap_or_default();
    let pos = if path.is_empty() {
        stage.kind_pos
    } else {
        stage.param_pos(&path)
    };
    Diagnostic::new(
        &pipeline.file,
        Some(pos),
        format!("stage `{}`: {message}", stage.name),
    )
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use stage_api::{InputSpec, OutputSpec};

    use super::*;

    fn description(kind: &str) -> StageDescription {
        StageDescription {
            protocol: stage_api::PROTOCOL_VERSION,
            kind: kind.into(),
            description: "test".into(),
            params: vec![
                ParamSpec {
                    name: "steps".into(),
                    ty: "integer".into(),
                    required: false,
                    default: Some(10.into()),
                    choices: vec![],
                    doc: "Steps.".into(),
                },
                ParamSpec {
                    name: "mode".into(),
                    ty: "string".into(),
                    required: false,
                    default: Some("a".into()),
                    choices: vec!["float16".into(), "dynamic".into()],
                    doc: String::new(),
                },
                ParamSpec {
                    name: "name".into(),
                    ty: "string".into(),
                    required: true,
                    default: None,
                    choices: vec![],
                    doc: "Name.".into(),
                },
            ],
            inputs: vec![
                InputSpec::optional("source", "src"),
                InputSpec {
                    required: false,
                    ..InputSpec::many("all", "all")
                },
            ],
            outputs: vec![OutputSpec::new("file", "f")],
            uses_python: false,
            params_schema: Value::Null,
            reproducibility: Default::default(),
        }
    }

    fn check(text: &str) -> Result<Vec<usize>, Diagnostics> {
        let pipeline = Pipeline::parse(Path::new("/p/x.yaml"), text).unwrap();
        let descriptions = BTreeMap::from([("fetch".to_owned(), description("fetch"))]);
        validate(&pipeline, ["fetch", "train"].into_iter(), &descriptions)
    }

    #[test]
    fn valid_pipeline_gives_topological_order() {
        let order = check("name: d\nstages:\n  b: { kind: fetch, params: { name: x }, inputs: { source: '${a.file}' } }\n  a: { kind: fetch, params: { name: y } }\n").unwrap();
        assert_eq!(order, [1, 0]);
    }

    #[test]
    fn every_problem_is_reported_with_position_and_hint() {
        let err = check(
            "name: d\nstages:\n  a:\n    kind: fetc\n  b:\n    kind: fetch\n    params: { name: x, stesp: 3, mode: float61 }\n    inputs: { sorce: '${a.file}', all: ['${c.file}', '${b.fil}'] }\n",
        )
        .unwrap_err()
        .to_string();
        let expected = [
            "/p/x.yaml:4:11: unknown stage kind `fetc`\n  help: did you mean `fetch`?",
            "/p/x.yaml:7:24: stage `b` (kind `fetch`) has no param `stesp`\n  help: did you mean `steps`?",
            "/p/x.yaml:7:40: param `mode` of stage `b`: \"float61\" is not one of \"float16\", \"dynamic\" (did you mean \"float16\"?)",
            "/p/x.yaml:8:41: `${c.file}` refers to a stage `c` that does not exist\n  help: expected one of `a`, `b`",
            "/p/x.yaml:8:54: stage `b` reads its own output",
            "/p/x.yaml:8:15: stage `b` (kind `fetch`) has no input `sorce`\n  help: did you mean `source`?",
        ];
        for line in expected {
            assert!(err.contains(line), "missing\n{line}\nin\n{err}");
        }
        assert!(!err.contains("cycle"), "{err}");
    }

    #[test]
    fn wrong_types_missing_params_and_cycles() {
        let err = check("name: d\nstages:\n  a: { kind: fetch, params: { steps: 'ten' }, inputs: { source: '${b.file}' } }\n  b: { kind: fetch, params: { name: n }, inputs: { source: '${a.file}' } }\n")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("3:38: param `steps` of stage `a`: expected integer, found a string"),
            "{err}"
        );
        assert!(
            err.contains("3:3: stage `a` needs param `name` (string)"),
            "{err}"
        );
        assert!(
            err.contains("the stages form a cycle: a -> b -> a"),
            "{err}"
        );
    }

    #[test]
    fn missing_external_inputs_are_reported() {
        let err = check("name: d\nstages:\n  a: { kind: fetch, params: { name: n }, inputs: { source: no/such.file } }\n").unwrap_err();
        assert!(
            err.to_string()
                .contains("3:60: input file `no/such.file` does not exist"),
            "{err}"
        );
    }

    #[test]
    fn stage_validate_messages_map_to_param_positions() {
        let pipeline = Pipeline::parse(
            Path::new("/p/x.yaml"),
            "name: d\nstages:\n  a:\n    kind: fetch\n    params:\n      split: { method: temporal, train_fraction: 2 }\n",
        )
        .unwrap();
        let d = locate_params_error(
            &pipeline,
            &pipeline.stages[0],
            "error: params of `fetch`: `split.train_fraction`: must be below 1",
        );
        assert_eq!(
            d.pos,
            Some(Pos {
                line: 6,
                column: 50
            })
        );
    }

    #[test]
    fn defaults_fill_missing_params() {
        let pipeline = Pipeline::parse(
            Path::new("/p/x.yaml"),
            "name: d\nstages:\n  a: { kind: fetch, params: { name: n, steps: 3 } }\n",
        )
        .unwrap();
        let params = effective_params(&pipeline.stages[0], &description("fetch"));
        assert_eq!(
            Value::Object(params),
            serde_json::json!({"name": "n", "steps": 3, "mode": "a"})
        );
    }
}
