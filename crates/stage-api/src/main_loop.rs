//! `stage_main`: the whole command-line surface of a stage binary, so a
//! stage crate's `main` is one line.

use std::path::Path;
use std::process::ExitCode;

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::context::StageContext;
use crate::describe::{InputSpec, OutputSpec, StageDescription, params_from_schema};
use crate::error::StageError;
use crate::protocol::{PROTOCOL_VERSION, StageRequest, StageResult};
use crate::reproducibility::Reproducibility;

/// A stage kind. Params are a `#[serde(deny_unknown_fields)]` struct whose
/// doc comments and defaults document the stage (via its JSON Schema).
pub trait Stage {
    type Params: DeserializeOwned + JsonSchema;
    /// The kind named in pipeline YAML (`dataset`, `quantize`).
    const KIND: &'static str;
    /// One line: what the stage does.
    const DESCRIPTION: &'static str;
    /// Whether the local executor must provide the managed Python environment.
    const USES_PYTHON: bool = false;

    fn inputs() -> Vec<InputSpec>;
    fn outputs() -> Vec<OutputSpec>;
    /// What a re-run with the same inputs reproduces; byte-identical outputs
    /// unless the stage says otherwise.
    fn reproducibility() -> Reproducibility {
        Reproducibility::exact()
    }
    fn run(ctx: &StageContext, params: Self::Params) -> Result<StageResult, StageError>;
}

/// The stage's self-description.
pub fn describe<S: Stage>() -> StageDescription {
    let schema = serde_json::to_value(schemars::schema_for!(S::Params)).unwrap_or(Value::Null);
    StageDescription {
        protocol: PROTOCOL_VERSION,
        kind: S::KIND.to_owned(),
        description: S::DESCRIPTION.to_owned(),
        params: params_from_schema(&schema),
        inputs: S::inputs(),
        outputs: S::outputs(),
        uses_python: S::USES_PYTHON,
        params_schema: schema,
        reproducibility: S::reproducibility(),
    }
}

/// Deserializes params, naming the offending key path on error.
pub fn parse_params<S: Stage>(params: &Map<String, Value>) -> Result<S::Params, StageError> {
    let value = Value::Object(params.clone());
    serde_path_to_error::deserialize(value).map_err(|err| {
        let path = err.path().to_string();
        let inner = crate::serde_wording::reword(&err.into_inner().to_string());
        if path == "." {
            StageError::input(format!("params of `{}`: {inner}", S::KIND))
        } else {
            StageError::input(format!("params of `{}`: `{path}`: {inner}", S::KIND))
        }
    })
}

const USAGE: &str = "usage: STAGE describe | STAGE validate PARAMS.json | STAGE run REQUEST.json";

/// Entry point of a stage binary: `fn main() -> ExitCode { stage_main::<MyStage>() }`.
///
/// Exit codes: 0 success, 1 the stage failed, 2 bad invocation or request.
pub fn stage_main<S: Stage>() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let outcome = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["describe"] => print_json(&describe::<S>()),
        ["validate", path] => read_json::<Map<String, Value>>(Path::new(path))
            .and_then(|params| parse_params::<S>(&params).map(|_| ())),
        ["run", path] => run::<S>(Path::new(path)),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::from(match err {
                StageError::Input(_) => 2,
                _ => 1,
            })
        }
    }
}

fn run<S: Stage>(request_path: &Path) -> Result<(), StageError> {
    let request: StageRequest = read_json(request_path)?;
    let result_path = request.result_path.clone();
    let result = run_request::<S>(request)?;
    let bytes = serde_json::to_vec_pretty(&result)
        .map_err(|e| StageError::Other(format!("cannot encode the result: {e}")))?;
    crate::write_atomic(&result_path, &bytes)
        .map_err(|e| StageError::io(format!("writing {}", result_path.display()), e))
}

/// Runs stage `S` in this process on `request`: checks protocol and kind,
/// parses the params, runs the stage and checks that every output it returns
/// exists inside the output directory. `STAGE run` is this plus reading the
/// request file and writing the result file.
pub fn run_request<S: Stage>(request: StageRequest) -> Result<StageResult, StageError> {
    if request.protocol != PROTOCOL_VERSION {
        return Err(StageError::input(format!(
            "request protocol {} but this stage speaks {PROTOCOL_VERSION}; rebuild the stages",
            request.protocol
        )));
    }
    if request.kind != S::KIND {
        return Err(StageError::input(format!(
            "request is for kind `{}` but this binary is `{}`",
            request.kind,
            S::KIND
        )));
    }
    let params = parse_params::<S>(&request.params)?;
    let ctx = StageContext::new(request);
    let result = S::run(&ctx, params)?;
    for (name, relative) in &result.outputs {
        let path = ctx.output_path(relative);
        if relative.is_absolute() || !path.exists() {
            return Err(StageError::Other(format!(
                "output `{name}` ({}) is not inside the output directory",
                relative.display()
            )));
        }
    }
    Ok(result)
}

fn read_json<T: DeserializeOwned>(path: &Path) -> Result<T, StageError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| StageError::io(format!("reading {}", path.display()), e))?;
    serde_json::from_str(&text).map_err(|e| {
        StageError::input(format!(
            "{}: invalid JSON: {}",
            path.display(),
            crate::serde_wording::reword(&e.to_string())
        ))
    })
}

fn print_json(value: &impl serde::Serialize) -> Result<(), StageError> {
    let text = serde_json::to_string_pretty(value)
        .map_err(|e| StageError::Other(format!("cannot encode: {e}")))?;
    println!("{text}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    /// Params of a test stage.
    #[derive(Debug, Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    struct EchoParams {
        /// How many copies to write.
        #[serde(default = "three")]
        copies: u32,
        /// Text to write.
        text: String,
        /// Output format.
        #[serde(default)]
        format: Format,
    }

    #[derive(Debug, Default, Deserialize, JsonSchema)]
    #[serde(rename_all = "lowercase")]
    enum Format {
        #[default]
        Plain,
        Json,
    }

    fn three() -> u32 {
        3
    }

    struct Echo;

    impl Stage for Echo {
        type Params = EchoParams;
        const KIND: &'static str = "echo";
        const DESCRIPTION: &'static str = "Writes text.";
        fn inputs() -> Vec<InputSpec> {
            vec![]
        }
        fn outputs() -> Vec<OutputSpec> {
            vec![OutputSpec::new("text", "the text")]
        }
        fn run(ctx: &StageContext, params: EchoParams) -> Result<StageResult, StageError> {
            let body = match params.format {
                Format::Plain => params.text.repeat(params.copies as usize),
                Format::Json => serde_json::to_string(&vec![params.text; params.copies as usize])
                    .map_err(|e| StageError::Other(e.to_string()))?,
            };
            std::fs::write(ctx.output_path("t.txt"), body)
                .map_err(|e| StageError::io("writing", e))?;
            Ok(StageResult::default().output("text", "t.txt"))
        }
    }

    #[test]
    fn describe_derives_params_from_the_type() {
        let d = describe::<Echo>();
        let copies = d.params.iter().find(|p| p.name == "copies").unwrap();
        assert_eq!(copies.ty, "integer");
        assert_eq!(copies.default, Some(Value::from(3)));
        assert!(!copies.required);
        assert_eq!(copies.doc, "How many copies to write.");
        let text = d.params.iter().find(|p| p.name == "text").unwrap();
        assert!(text.required);
        assert_eq!(text.ty, "string");
        let format = d.params.iter().find(|p| p.name == "format").unwrap();
        assert_eq!(
            format.choices,
            vec![Value::from("plain"), Value::from("json")]
        );
        assert_eq!(format.doc, "Output format.");
    }

    #[test]
    fn params_errors_name_the_key() {
        let params: Map<String, Value> =
            serde_json::from_str(r#"{"text":"a","copies":"x"}"#).unwrap();
        let err = parse_params::<Echo>(&params).unwrap_err().to_string();
        assert_eq!(
            err,
            r#"params of `echo`: `copies`: is the text "x", but must be a whole number (0 or more)"#
        );
        let params: Map<String, Value> = serde_json::from_str(r#"{"text":"a","copis":2}"#).unwrap();
        let err = parse_params::<Echo>(&params).unwrap_err().to_string();
        assert!(
            err.starts_with(
                "params of `echo`: `copis`: unknown key `copis`; the valid keys are `copies`"
            ),
            "{err}"
        );
    }

    #[test]
    fn run_writes_outputs_and_result() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        let request = StageRequest {
            protocol: PROTOCOL_VERSION,
            kind: "echo".into(),
            stage: "e".into(),
            params: serde_json::from_str(r#"{"text":"ab","copies":2}"#).unwrap(),
            inputs: Default::default(),
            output_dir: out.clone(),
            result_path: dir.path().join("result.json"),
            scratch_dir: dir.path().join("scratch"),
            workspace_root: dir.path().to_path_buf(),
            executor: Default::default(),
            cache_key: "k".into(),
        };
        let request_path = dir.path().join("request.json");
        std::fs::write(&request_path, serde_json::to_vec(&request).unwrap()).unwrap();
        run::<Echo>(&request_path).unwrap();
        assert_eq!(std::fs::read_to_string(out.join("t.txt")).unwrap(), "abab");
        let result: StageResult =
            serde_json::from_slice(&std::fs::read(dir.path().join("result.json")).unwrap())
                .unwrap();
        assert_eq!(result.outputs["text"], Path::new("t.txt"));
    }
}
