//! Pre-compile lint: the known reasons models fail or fall back to the CPU
//! on the Edge TPU, each with the specific fix.

use serde::Serialize;
use tflite::{Model, Subgraph};

use crate::analyze::Analysis;
use crate::op_versions::{self, LimitKind};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// The compiler will reject the model.
    Error,
    /// Part of the model will run on the CPU.
    Warning,
    /// Worth knowing; nothing to fix.
    Info,
}

/// One lint finding.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub level: Level,
    /// Stable identifier (`float-io`, `float-tensors`, `dynamic-shape`, ...).
    pub code: &'static str,
    pub message: String,
    /// What to change.
    pub fix: String,
    /// Op indices concerned.
    pub ops: Vec<usize>,
}

const QUANTIZE_FIX: &str = "quantize with mode full_int8 and uint8/int8 input and output types, or use QAT + toco (uint8, mean/std 128)";
/// How many tensor names a finding quotes.
const NAMES_QUOTED: usize = 5;

fn quoted(names: &[String]) -> String {
    let shown: Vec<String> = names
        .iter()
        .take(NAMES_QUOTED)
        .map(|n| format!("`{n}`"))
        .collect();
    let more = names.len().saturating_sub(NAMES_QUOTED);
    if more > 0 {
        format!("{} and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

/// Runs every check on a CPU model (compiled models get none).
pub fn lint(model: &Model, analysis: &Analysis) -> Vec<Finding> {
    let Some(graph) = model.main_subgraph() else {
        return Vec::new();
    };
    if analysis.compiled {
        return Vec::new();
    }
    let mut findings = Vec::new();
    if let Some(error) = &analysis.model_error {
        findings.push(Finding {
            level: Level::Error,
            code: "model-rejected",
            message: format!("the compiler will reject this model: {error}"),
            fix: if error.contains("quantized") {
                QUANTIZE_FIX.to_owned()
            } else {
                "export with a fixed input shape (batch 1, fixed height and width)".to_owned()
            },
            ops: Vec::new(),
        });
    }
    float_io(graph, &mut findings);
    float_tensors(graph, &mut findings);
    dynamic_shapes(graph, &mut findings);
    op_version_limits(graph, analysis, &mut findings);
    early_cuts(analysis, &mut findings);
    quantize_placement(graph, &mut findings);
    if analysis.extra_subgraphs > 0 {
        findings.push(Finding {
            level: Level::Warning,
            code: "extra-subgraphs",
            message: format!(
                "the model has {} TFLite subgraphs besides the main one (control flow); only the main one is compiled",
                analysis.extra_subgraphs
            ),
            fix: "remove control flow (tf.cond / tf.while_loop) from the exported graph".to_owned(),
            ops: Vec::new(),
        });
    }
    findings
}

/// Producers of the SSD post-process op's float outputs are float by design.
fn is_postprocess_output(graph: &Subgraph, tensor: usize) -> bool {
    graph
        .producer(tensor)
        .is_some_and(|op| op.is_custom("TFLite_Detection_PostProcess"))
}

fn float_io(graph: &Subgraph, findings: &mut Vec<Finding>) {
    let float_inputs: Vec<String> = graph
        .input_tensors()
        .iter()
        .filter(|t| t.dtype.is_float())
        .map(|t| t.name.clone())
        .collect();
    let float_outputs: Vec<String> = graph
        .output_tensors()
        .iter()
        .filter(|t| t.dtype.is_float() && !is_postprocess_output(graph, t.index))
        .map(|t| t.name.clone())
        .collect();
    if !float_inputs.is_empty() || !float_outputs.is_empty() {
        let mut parts = Vec::new();
        if !float_inputs.is_empty() {
            parts.push(format!("float input {}", quoted(&float_inputs)));
        }
        if !float_outputs.is_empty() {
            parts.push(format!("float output {}", quoted(&float_outputs)));
        }
        findings.push(Finding {
            level: Level::Warning,
            code: "float-io",
            message: format!(
                "{}: a QUANTIZE/DEQUANTIZE pair converts on the CPU at each end of the model",
                parts.join(" and ")
            ),
            fix: QUANTIZE_FIX.to_owned(),
            ops: Vec::new(),
        });
    }
}

fn float_tensors(graph: &Subgraph, findings: &mut Vec<Finding>) {
    // Float tensors between ops, other than I/O and what DEQUANTIZE or the
    // post-process op produce (float by design).
    let io: Vec<usize> = graph
        .inputs
        .iter()
        .chain(graph.outputs.iter())
        .filter_map(|i| usize::try_from(*i).ok())
        .collect();
    let mut names = Vec::new();
    let mut ops = Vec::new();
    for tensor in &graph.tensors {
        if !tensor.dtype.is_float() || io.contains(&tensor.index) {
            continue;
        }
        let producer = graph.producer(tensor.index);
        if producer
            .is_some_and(|op| op.op == "DEQUANTIZE" || op.is_custom("TFLite_Detection_PostProcess"))
        {
            continue;
        }
        // Float inputs of the post-process op (anchors) are expected too.
        let only_postprocess = graph
            .operators
            .iter()
            .filter(|op| op.input_indices().any(|t| t == tensor.index))
            .all(|op| op.is_custom("TFLite_Detection_PostProcess"));
        if tensor.is_constant && only_postprocess {
            continue;
        }
        names.push(tensor.name.clone());
        if let Some(op) = producer {
            ops.push(op.index);
        }
    }
    if names.is_empty() {
        return;
    }
    ops.sort_unstable();
    ops.dedup();
    findings.push(Finding {
        level: Level::Warning,
        code: "float-tensors",
        message: format!(
            "{} tensors are still float after quantization ({}); ops on them run on the CPU",
            names.len(),
            quoted(&names)
        ),
        fix: format!(
            "{QUANTIZE_FIX}; with full_int8, restrict supported ops to TFLITE_BUILTINS_INT8 so the converter \
             fails instead of leaving float ops, and make the representative dataset exercise every op"
        ),
        ops,
    });
}

fn dynamic_shapes(graph: &Subgraph, findings: &mut Vec<Finding>) {
    let dynamic: Vec<String> = graph
        .tensors
        .iter()
        .filter(|t| t.has_dynamic_shape())
        .map(|t| t.name.clone())
        .collect();
    if dynamic.is_empty() {
        return;
    }
    findings.push(Finding {
        level: Level::Warning,
        code: "dynamic-shape",
        message: format!("{} tensors have dynamic dimensions ({})", dynamic.len(), quoted(&dynamic)),
        fix: "export with a fixed input shape (batch 1, fixed height and width); the Edge TPU needs static shapes"
            .to_owned(),
        ops: Vec::new(),
    });
}

/// Ops whose version the target compiler cannot read or map, one finding
/// per (op, version) with what avoids that version.
fn op_version_limits(graph: &Subgraph, analysis: &Analysis, findings: &mut Vec<Finding>) {
    let Some(target) = analysis.target else {
        return;
    };
    let mut seen: Vec<(&str, i32)> = Vec::new();
    for op in &graph.operators {
        let Some(limit) = op_versions::exceeded(&op.op, op.version, target.compiler) else {
            continue;
        };
        if seen.contains(&(limit.op, op.version)) {
            continue;
        }
        seen.push((limit.op, op.version));
        let ops: Vec<usize> = graph
            .operators
            .iter()
            .filter(|o| o.op == op.op && o.version == op.version)
            .map(|o| o.index)
            .collect();
        let (level, effect) = match limit.kind {
            LimitKind::Unreadable => (
                Level::Error,
                format!(
                    "the compiler cannot read it and stops (\"Didn't find op for builtin opcode '{}' version '{}'\")",
                    op.op, op.version
                ),
            ),
            LimitKind::Unmapped => (
                Level::Warning,
                "the compiler leaves it on the CPU (\"Operation version not supported\")"
                    .to_owned(),
            ),
        };
        findings.push(Finding {
            level,
            code: "op-version",
            message: format!(
                "{} op(s) {} at version {}: compiler {} handles {} up to version {}; {effect}",
                ops.len(),
                op.op,
                op.version,
                target.compiler.build,
                op.op,
                limit.max_version
            ),
            fix: format!("{} (seen in {})", limit.avoid, limit.source),
            ops,
        });
    }
}

fn early_cuts(analysis: &Analysis, findings: &mut Vec<Finding>) {
    if analysis.model_error.is_some() {
        return;
    }
    let mut origins: Vec<usize> = analysis.details.iter().filter_map(|d| d.cut_by).collect();
    origins.sort_unstable();
    origins.dedup();
    for origin in origins {
        let fallen = analysis
            .details
            .iter()
            .filter(|d| d.cut_by == Some(origin))
            .count();
        let Some(detail) = analysis.details.get(origin) else {
            continue;
        };
        let status = analysis
            .ops
            .get(origin)
            .map(|o| o.status.as_str())
            .unwrap_or_default();
        findings.push(Finding {
            level: Level::Warning,
            code: "early-cut",
            message: format!(
                "op {origin} {} is not mapped ({status}{}), so {fallen} supported ops after it also run on the CPU",
                detail.display_name,
                if detail.reason.is_empty() { String::new() } else { format!(": {}", detail.reason) }
            ),
            fix: "replace the op with a supported one or move it to the end of the graph; compiling with -a \
                  (allow multiple Edge TPU subgraphs) maps the supported ops after it, at the cost of extra \
                  CPU/TPU transfers"
                .to_owned(),
            ops: vec![origin],
        });
    }
}

fn quantize_placement(graph: &Subgraph, findings: &mut Vec<Finding>) {
    let count = |name: &str| {
        graph
            .operators
            .iter()
            .filter(|op| op.op == name)
            .collect::<Vec<_>>()
    };
    let quantize = count("QUANTIZE");
    let dequantize = count("DEQUANTIZE");
    let requantize: Vec<usize> = quantize
        .iter()
        .filter(|op| {
            op.input_indices()
                .next()
                .and_then(|t| graph.tensors.get(t))
                .is_some_and(|t| t.dtype.is_8bit_integer())
        })
        .map(|op| op.index)
        .collect();
    if !requantize.is_empty() {
        findings.push(Finding {
            level: Level::Info,
            code: "requantize",
            message: format!(
                "{} QUANTIZE ops requantize between 8-bit scales (post-training quantization inserts them where \
                 an op's inputs have different scales, e.g. before CONCATENATION); they map to the Edge TPU \
                 but cost time",
                requantize.len()
            ),
            fix: "quantization-aware training with matching scales (QAT + toco) avoids them".to_owned(),
            ops: requantize,
        });
    }
    let (before_postprocess, elsewhere): (Vec<usize>, Vec<usize>) =
        dequantize.iter().map(|op| op.index).partition(|index| {
            let op = &graph.operators[*index];
            op.output_indices().all(|t| {
                graph
                    .operators
                    .iter()
                    .filter(|c| c.input_indices().any(|i| i == t))
                    .all(|c| c.is_custom("TFLite_Detection_PostProcess"))
            })
        });
    if !before_postprocess.is_empty() {
        findings.push(Finding {
            level: Level::Info,
            code: "dequantize-postprocess",
            message: format!(
                "{} DEQUANTIZE ops feed TFLite_Detection_PostProcess float inputs; they and the post-process run \
                 on the CPU (the QAT + toco path keeps the post-process inputs 8-bit and needs none)",
                before_postprocess.len()
            ),
            fix: "expected for post-training quantization of an SSD; use QAT + toco to drop them".to_owned(),
            ops: before_postprocess,
        });
    }
    if !elsewhere.is_empty() {
        findings.push(Finding {
            level: Level::Warning,
            code: "dequantize-midgraph",
            message: format!(
                "{} DEQUANTIZE ops turn 8-bit tensors back into float before ops other than the post-process",
                elsewhere.len()
            ),
            fix: QUANTIZE_FIX.to_owned(),
            ops: elsewhere,
        });
    }
}
