//! Predicts which ops the Edge TPU compiler maps, or reports what an already
//! compiled model runs on the TPU and on the CPU.
//!
//! The compiler builds one Edge TPU subgraph. Ops that cannot run there stay
//! on the CPU, and so does every op that depends on the output of an
//! unmapped op once the TPU region has started ("More than one subgraph is
//! not supported"): the model is cut at the first unsupported op. CPU ops
//! *before* the TPU region (a float-input QUANTIZE) do not cut it. With `-a`
//! (`allow_multiple_subgraphs`) the compiler may open further TPU subgraphs
//! after a CPU op, so ops downstream of a cut are judged on their own.
//! A model with several TFLite subgraphs (control flow) only has its main
//! subgraph considered.

use std::collections::HashSet;

use serde::Serialize;
use tflite::{Model, Subgraph};

use crate::rules::{self, status};
use crate::versions::Target;

pub use artifact_schemas::edgetpu::{OpDetail, OpReport, Summary};

/// The analysis of one model.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Analysis {
    pub compiled: bool,
    pub ops: Vec<OpReport>,
    pub summary: Summary,
    pub details: Vec<OpDetail>,
    /// Why the compiler would reject the whole model (e.g. "Model not quantized").
    pub model_error: Option<String>,
    /// For compiled models: the Edge TPU runtime version the package needs.
    pub min_runtime_version: Option<i32>,
    /// For compiled models: the compiler build recorded in the package.
    pub package_compiler: Option<String>,
    /// TFLite subgraphs beyond the main one (not considered).
    pub extra_subgraphs: usize,
    /// For predictions: the compiler and runtime the statuses assume.
    pub target: Option<Target>,
}

/// Options of the prediction that mirror compiler flags.
#[derive(Debug, Clone, Copy, Default)]
pub struct PredictOptions {
    /// `-a`: allow multiple Edge TPU subgraphs.
    pub allow_multiple_subgraphs: bool,
    /// The compiler and `-m` runtime to predict for (default: compiler 16, runtime 14).
    pub target: Target,
}

/// Why the model could not be analysed.
#[derive(Debug, thiserror::Error)]
pub enum AnalyzeError {
    #[error("{0}")]
    Model(#[from] tflite::TfliteError),
    #[error("{0} has no subgraph: there is nothing to compile")]
    Empty(String),
}

/// Analyses a model: a prediction for a CPU model, a report for a compiled one.
pub fn analyze(
    model: &Model,
    name: &str,
    options: PredictOptions,
) -> Result<Analysis, AnalyzeError> {
    let graph = model
        .main_subgraph()
        .ok_or_else(|| AnalyzeError::Empty(name.to_owned()))?;
    if graph
        .operators
        .iter()
        .any(|op| op.is_custom("edgetpu-custom-op"))
    {
        compiled_report(model, graph)
    } else {
        Ok(predict(model, graph, options))
    }
}

/// What a compiled model runs where: the custom op on the TPU, the rest on the CPU.
fn compiled_report(model: &Model, graph: &Subgraph) -> Result<Analysis, AnalyzeError> {
    let mut ops = Vec::new();
    let mut details = Vec::new();
    let mut min_runtime_version = None;
    let mut package_compiler = None;
    for op in &graph.operators {
        let on_tpu = op.is_custom("edgetpu-custom-op");
        let status = if on_tpu {
            let tpu = op.edgetpu_op()?.and_then(|t| t.package);
            if let Some(package) = &tpu {
                min_runtime_version = Some(
                    min_runtime_version.map_or(package.min_runtime_version, |v: i32| {
                        v.max(package.min_runtime_version)
                    }),
                );
                package_compiler = package_compiler.or_else(|| package.compiler_version.clone());
            }
            match tpu {
                Some(p) => format!(
                    "Edge TPU executable ({} bytes, runtime {}+)",
                    p.size_bytes, p.min_runtime_version
                ),
                None => "Edge TPU executable".to_owned(),
            }
        } else {
            "Runs on the CPU (left out of the Edge TPU executable)".to_owned()
        };
        ops.push(OpReport {
            index: op.index,
            op: op.op.clone(),
            custom_code: custom_code(op),
            on_tpu,
            status,
        });
        details.push(OpDetail {
            index: op.index,
            display_name: op.display_name(),
            reason: String::new(),
            cut_by: None,
        });
    }
    Ok(Analysis {
        compiled: true,
        summary: Summary::of(&ops),
        ops,
        details,
        model_error: None,
        min_runtime_version,
        package_compiler,
        extra_subgraphs: model.subgraphs.len().saturating_sub(1),
        target: None,
    })
}

/// The custom code of a custom op, for the JSON report.
fn custom_code(op: &tflite::Operator) -> Option<String> {
    if op.builtin_code == tflite::CUSTOM_BUILTIN_CODE {
        op.custom_code.clone()
    } else {
        None
    }
}

/// Whole-model failures the compiler reports before mapping anything.
fn model_level_error(graph: &Subgraph) -> Option<String> {
    let activations: Vec<&tflite::Tensor> =
        graph.tensors.iter().filter(|t| !t.is_constant).collect();
    if !activations
        .iter()
        .any(|t| t.dtype.is_8bit_integer() && t.quantization.is_some())
    {
        return Some("Model not quantized".to_owned());
    }
    let dynamic = graph.tensors.iter().find(|t| {
        t.shape.iter().any(|d| *d < 0)
            || t.shape_signature
                .as_ref()
                .is_some_and(|s| s.iter().skip(1).any(|d| *d < 0))
    })?;
    Some(format!(
        "Attempting to use a delegate that only supports static-sized tensors with a graph that has \
         dynamic-sized tensors (tensor `{}`)",
        dynamic.name
    ))
}

/// Predicts the compiler's per-op statuses for a CPU model.
pub fn predict(model: &Model, graph: &Subgraph, options: PredictOptions) -> Analysis {
    let model_error = model_level_error(graph);
    // Tensors produced inside or downstream of the TPU region, and tensors
    // downstream of a cut (an unmapped op after the TPU region started).
    let mut tpu_tensors: HashSet<usize> = HashSet::new();
    let mut cut_tensors: HashSet<usize> = HashSet::new();
    let mut cut_origin: std::collections::HashMap<usize, usize> = std::collections::HashMap::new();
    let mut ops = Vec::new();
    let mut details = Vec::new();

    for op in &graph.operators {
        let verdict = rules::judge(model, graph, op, &options.target);
        let cut_input = op.input_indices().find(|t| cut_tensors.contains(t));
        let after_tpu = op.input_indices().any(|t| tpu_tensors.contains(&t));
        let (on_tpu, status, reason, cut_by) = if let Some(error) = &model_error {
            (false, error.clone(), verdict.reason.clone(), None)
        } else if !verdict.is_mappable() {
            (
                false,
                verdict.status.to_owned(),
                verdict.reason.clone(),
                None,
            )
        } else if let (Some(tensor), false) = (cut_input, options.allow_multiple_subgraphs) {
            let origin = cut_origin.get(&tensor).copied();
            let reason = match origin {
                Some(o) => format!(
                    "depends on op {o}, which runs on the CPU; use -a to allow more Edge TPU subgraphs"
                ),
                None => String::new(),
            };
            (
                false,
                status::MORE_THAN_ONE_SUBGRAPH.to_owned(),
                reason,
                origin,
            )
        } else {
            (true, status::MAPPED.to_owned(), String::new(), None)
        };

        if on_tpu {
            tpu_tensors.extend(op.output_indices());
        } else if cut_input.is_some() || after_tpu || cut_by.is_some() {
            // An unmapped op once the TPU region started cuts the model here.
            let origin = cut_by
                .or_else(|| cut_input.and_then(|t| cut_origin.get(&t).copied()))
                .unwrap_or(op.index);
            for t in op.output_indices() {
                cut_tensors.insert(t);
                cut_origin.insert(t, origin);
            }
        }
        // Otherwise a CPU op before the TPU region (a float-input QUANTIZE):
        // its outputs feed the TPU region as inputs, no cut.
        ops.push(OpReport {
            index: op.index,
            op: op.op.clone(),
            custom_code: custom_code(op),
            on_tpu,
            status,
        });
        details.push(OpDetail {
            index: op.index,
            display_name: op.display_name(),
            reason,
            cut_by,
        });
    }

    Analysis {
        compiled: false,
        summary: Summary::of(&ops),
        ops,
        details,
        model_error,
        min_runtime_version: None,
        package_compiler: None,
        extra_subgraphs: model.subgraphs.len().saturating_sub(1),
        target: Some(options.target),
    }
}
