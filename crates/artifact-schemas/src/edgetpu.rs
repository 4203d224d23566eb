//! `edgetpu.json`: which ops of one model run on the Edge TPU (compiled by
//! `edgetpu_compiler`, or predicted from Coral's documented rules), written
//! by the edgetpu stage and read by the bench stage (`edgetpu_report`).
//!
//! The bench stage reads `compiled`, `predicted`, `summary` and `ops`; the
//! lint findings, the compiler's console facts and the prediction/compiler
//! disagreements are the edgetpu stage's own diagnostics, kept as JSON
//! values here so their types stay with the code that builds them.

use serde::{Deserialize, Serialize};

/// The file name, which is also the artifact type name stages declare.
pub const FILE: &str = "edgetpu.json";

/// The whole `edgetpu.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EdgeTpuReport {
    /// The model's file name.
    pub model: String,
    /// The mapping is the compiler's (or the input was already compiled).
    pub compiled: bool,
    /// The input model was already compiled for the Edge TPU.
    #[serde(default)]
    pub input_was_compiled: bool,
    /// The mapping is a prediction, not compiler output.
    pub predicted: bool,
    /// Where the mapping comes from, in words.
    #[serde(default)]
    pub mapping_source: String,
    /// Why the mapping is what it is (no compiler, compiler failure).
    #[serde(default)]
    pub notes: Vec<String>,
    /// Every op of the main subgraph and where it runs (the prediction;
    /// the compiler's table has no op indices).
    #[serde(default)]
    pub ops: Vec<OpReport>,
    /// Op counts: the compiler's when it compiled, else the prediction's.
    pub summary: Summary,
    /// The prediction's counts, also when the compiler ran.
    #[serde(default)]
    pub predicted_summary: Option<Summary>,
    /// The compiler build a prediction assumes.
    #[serde(default)]
    pub assumed_compiler: Option<String>,
    /// The Edge TPU runtime version a prediction assumes.
    #[serde(default)]
    pub assumed_runtime: Option<u32>,
    /// Why the compiler would reject the whole model.
    #[serde(default)]
    pub model_error: Option<String>,
    /// For compiled models: the Edge TPU runtime version the package needs.
    #[serde(default)]
    pub min_runtime_version: Option<i32>,
    /// Per-op display names and reasons.
    #[serde(default)]
    pub op_details: Vec<OpDetail>,
    /// Lint findings (the edgetpu stage's diagnostics).
    #[serde(default)]
    pub lint: serde_json::Value,
    /// The compiler run (command, version, memory, table); `null` without one.
    #[serde(default)]
    pub compiler: serde_json::Value,
    /// Ops where the prediction and the compiler disagree.
    #[serde(default)]
    pub disagreements: serde_json::Value,
}

impl EdgeTpuReport {
    /// `<index> <OP>` of the first op left on the CPU (`109 DEQUANTIZE`),
    /// or the bare index when the op list does not name it.
    pub fn first_cpu_op(&self) -> Option<String> {
        let index = self.summary.first_cpu_op?;
        Some(match self.ops.iter().find(|op| op.index == index) {
            Some(op) => format!("{index} {}", op.op),
            None => index.to_string(),
        })
    }
}

/// One op and where it runs (the shape `edgetpu-check --json` prints).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpReport {
    pub index: usize,
    /// TFLite's op name (`CONV_2D`, `CUSTOM`).
    pub op: String,
    /// A custom op's custom code (`TFLite_Detection_PostProcess`); absent for builtins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_code: Option<String>,
    pub on_tpu: bool,
    pub status: String,
}

/// Counts over the report's ops.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Summary {
    pub tpu_ops: usize,
    pub cpu_ops: usize,
    /// Index of the first op that runs on the CPU, if any.
    #[serde(default)]
    pub first_cpu_op: Option<usize>,
}

impl Summary {
    pub fn of(ops: &[OpReport]) -> Summary {
        Summary {
            tpu_ops: ops.iter().filter(|o| o.on_tpu).count(),
            cpu_ops: ops.iter().filter(|o| !o.on_tpu).count(),
            first_cpu_op: ops.iter().find(|o| !o.on_tpu).map(|o| o.index),
        }
    }

    /// Share of ops on the TPU, in percent (0 for an empty model).
    pub fn tpu_percent(&self) -> f64 {
        let total = self.tpu_ops + self.cpu_ops;
        if total == 0 {
            0.0
        } else {
            100.0 * self.tpu_ops as f64 / total as f64
        }
    }
}

/// Details of one op beyond its placement: display name and reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpDetail {
    pub index: usize,
    /// `CUSTOM (TFLite_Detection_PostProcess)` for custom ops.
    pub display_name: String,
    /// Why it is not mapped, in edgepipe's words (empty when mapped).
    pub reason: String,
    /// Index of the unmapped op this one depends on, for cut ops.
    pub cut_by: Option<usize>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn first_cpu_op_names_the_op_from_the_list() {
        let report: EdgeTpuReport = crate::parse(
            std::path::Path::new(FILE),
            br#"{"model": "m.tflite", "compiled": false, "predicted": true,
                "summary": {"tpu_ops": 60, "cpu_ops": 3, "first_cpu_op": 60},
                "ops": [{"index": 59, "op": "CONV_2D", "on_tpu": true, "status": "Mapped to Edge TPU"},
                        {"index": 60, "op": "DEQUANTIZE", "on_tpu": false, "status": "Operation is otherwise supported, but not mapped due to some unspecified limitation"}]}"#,
        )
        .unwrap();
        assert_eq!(report.first_cpu_op().as_deref(), Some("60 DEQUANTIZE"));
        assert_eq!(report.summary.tpu_percent(), 100.0 * 60.0 / 63.0);
        assert_eq!(report.compiler, serde_json::Value::Null);
        let bare = EdgeTpuReport {
            ops: Vec::new(),
            ..report
        };
        assert_eq!(bare.first_cpu_op().as_deref(), Some("60"));
    }
}
