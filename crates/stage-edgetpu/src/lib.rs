//! The Edge TPU stage and checker: predicts which ops `edgetpu_compiler`
//! maps to the Edge TPU (Coral's documented rules, the first-unsupported-op
//! cut), lints models for the known failures, drives the compiler when one
//! exists, parses its console output and `.log`, and reports compiled models.
//!
//! Binaries: `stage-edgetpu` (the `edgetpu` pipeline stage) and
//! `edgetpu-check` (`cargo xtask edgetpu-check MODEL.tflite [--json]`).
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod analyze;
pub mod compiler;
pub mod compiler_log;
pub mod lint;
pub mod op_versions;
pub mod report;
pub mod rules;
pub mod stage;
pub mod versions;

pub use analyze::{Analysis, OpReport, PredictOptions, Summary, analyze};
pub use stage::EdgetpuStage;
pub use versions::{CompilerVersion, Target};

/// The one JSON object `edgetpu-check --json` prints.
/// Predictions add `assumed_compiler` and `assumed_runtime`.
pub fn check_json(model_name: &str, analysis: &Analysis) -> serde_json::Value {
    let mut json = serde_json::json!({
        "model": model_name,
        "compiled": analysis.compiled,
        "ops": analysis.ops,
        "summary": analysis.summary,
    });
    if let (Some(target), Some(object)) = (analysis.target, json.as_object_mut()) {
        object.insert("assumed_compiler".into(), target.compiler.build.into());
        object.insert("assumed_runtime".into(), target.runtime.into());
    }
    json
}
