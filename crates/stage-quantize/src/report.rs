//! `quantize.json`: what the conversion produced, for people and for the
//! bench and report stages (op list, dtypes, float tensors, size, time).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::analysis::{FloatTensor, ModelAnalysis, TensorSummary, WeightStorage};
use crate::calibration::CalibrationSet;
use crate::params::Mode;
use artifact_schemas::export::ExportFormat;

/// The report's file name in the output directory.
pub const REPORT_FILE: &str = "quantize.json";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QuantizeReport {
    pub mode: Mode,
    /// The input dtype the mode asked for.
    pub requested_input_type: String,
    pub source_format: ExportFormat,
    pub quantization_aware: bool,
    /// `tflite` (the MLIR converter) or `toco` (the legacy one).
    pub converter: String,
    pub tensorflow_version: Option<String>,
    pub model_size_bytes: u64,
    pub conversion_seconds: f64,
    pub calibration_images: u32,
    /// Which images calibrated a `full_int8` model (`null` otherwise).
    #[serde(default)]
    pub calibration: Option<CalibrationSummary>,
    /// Op name (custom ops by their own name) -> how many.
    pub ops: BTreeMap<String, usize>,
    pub op_total: usize,
    pub has_detection_postprocess: bool,
    pub inputs: Vec<TensorSummary>,
    pub outputs: Vec<TensorSummary>,
    /// Ops computing on float activations, besides the post-process and
    /// the QUANTIZE/DEQUANTIZE ops around it.
    pub float_compute_ops: Vec<String>,
    /// Every tensor left in float, with the ops that write and read it.
    pub float_tensors: Vec<FloatTensor>,
    /// The weight of every conv / fully-connected op and its stored dtype.
    pub weights: Vec<WeightStorage>,
    /// Bytes of constant data (mostly weights) per dtype.
    pub constant_bytes_by_dtype: BTreeMap<String, u64>,
    /// Whether the model matched its mode; when false `problems` says why.
    pub matches_mode: bool,
    pub problems: Vec<String>,
    pub warnings: Vec<String>,
}

/// The calibration sample as the report shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CalibrationSummary {
    /// `train` or `val`.
    pub split: String,
    pub seed: u64,
    /// Records in that split.
    pub available: u64,
    pub images: usize,
    /// `<shard>#<record> <source id>`, in reading order.
    pub records: Vec<String>,
}

impl CalibrationSummary {
    pub fn of(set: &CalibrationSet) -> Self {
        Self {
            split: set.split.as_str().to_owned(),
            seed: set.seed,
            available: set.available,
            images: set.records.len(),
            records: set.labels(),
        }
    }
}

/// What the conversion itself measured.
#[derive(Debug, Clone)]
pub struct ConversionFacts {
    pub mode: Mode,
    pub requested_input_type: String,
    pub source_format: ExportFormat,
    pub quantization_aware: bool,
    pub tensorflow_version: Option<String>,
    pub model_size_bytes: u64,
    pub conversion_seconds: f64,
    pub calibration_images: u32,
}

impl QuantizeReport {
    pub fn new(facts: ConversionFacts, model: &ModelAnalysis) -> Self {
        let ops = model.op_counts();
        Self {
            mode: facts.mode,
            requested_input_type: facts.requested_input_type,
            source_format: facts.source_format,
            quantization_aware: facts.quantization_aware,
            converter: if facts.mode == Mode::Toco {
                "toco"
            } else {
                "tflite"
            }
            .to_owned(),
            tensorflow_version: facts.tensorflow_version,
            model_size_bytes: facts.model_size_bytes,
            conversion_seconds: facts.conversion_seconds,
            calibration_images: facts.calibration_images,
            calibration: None,
            op_total: ops.values().sum(),
            ops,
            has_detection_postprocess: model.has_postprocess(),
            inputs: model.input_summaries(),
            outputs: model.output_summaries(),
            float_compute_ops: model
                .float_compute_ops()
                .iter()
                .map(|op| op.label())
                .collect(),
            float_tensors: model.float_tensors(),
            weights: model.weights(),
            constant_bytes_by_dtype: model.constant_bytes_by_dtype(),
            matches_mode: true,
            problems: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// One line for the run summary.
    pub fn summary(&self) -> String {
        let input = self.inputs.first().map(|t| t.dtype.as_str()).unwrap_or("?");
        format!(
            "{}: {:.1} KiB, {} ops ({} float), input {input}, {} float tensors, converted in {:.1} s",
            self.mode,
            self.model_size_bytes as f64 / 1024.0,
            self.op_total,
            self.float_compute_ops.len(),
            self.float_tensors.len(),
            self.conversion_seconds
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::tests::float16_model;

    #[test]
    fn report_counts_ops_and_float_tensors() {
        let facts = ConversionFacts {
            mode: Mode::Float16,
            requested_input_type: "float32".into(),
            source_format: ExportFormat::SavedModel,
            quantization_aware: false,
            tensorflow_version: Some("2.15.1".into()),
            model_size_bytes: 2048,
            conversion_seconds: 1.5,
            calibration_images: 0,
        };
        let report = QuantizeReport::new(facts, &float16_model());
        assert_eq!(report.op_total, 2);
        assert_eq!(report.ops["DEQUANTIZE"], 1);
        assert_eq!(report.converter, "tflite");
        assert_eq!(report.float_compute_ops, ["CONV_2D#1"]);
        assert_eq!(report.constant_bytes_by_dtype["float16"], 864);
        assert_eq!(report.weights[0].dtype, "float16");
        assert_eq!(
            report.summary(),
            "float16: 2.0 KiB, 2 ops (1 float), input float32, 5 float tensors, converted in 1.5 s"
        );
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["mode"], "float16");
        assert_eq!(json["source_format"], "saved_model");
    }
}
