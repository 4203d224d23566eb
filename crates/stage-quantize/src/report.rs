//! Builds `quantize.json` ([`QuantizeReport`], defined in
//! `artifact_schemas::quantize`) from a conversion and its model analysis.

use artifact_schemas::export::ExportFormat;
pub use artifact_schemas::quantize::{CalibrationSummary, QuantizeReport};

use crate::analysis::ModelAnalysis;
use crate::calibration::CalibrationSet;
use crate::params::Mode;

/// The report's file name in the output directory.
pub const REPORT_FILE: &str = artifact_schemas::quantize::FILE;

/// The calibration sample as the report shows it.
pub fn calibration_summary(set: &CalibrationSet) -> CalibrationSummary {
    CalibrationSummary {
        split: set.split.as_str().to_owned(),
        seed: set.seed,
        available: set.available,
        images: set.records.len(),
        records: set.labels(),
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

/// The report of a conversion, before the mode check fills `matches_mode`,
/// `problems` and `warnings`.
pub fn new_report(facts: ConversionFacts, model: &ModelAnalysis) -> QuantizeReport {
    let ops = model.op_counts();
    QuantizeReport {
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
pub fn summary(report: &QuantizeReport) -> String {
    let input = report
        .inputs
        .first()
        .map(|t| t.dtype.as_str())
        .unwrap_or("?");
    format!(
        "{}: {:.1} KiB, {} ops ({} float), input {input}, {} float tensors, converted in {:.1} s",
        report.mode,
        report.model_size_bytes as f64 / 1024.0,
        report.op_total,
        report.float_compute_ops.len(),
        report.float_tensors.len(),
        report.conversion_seconds
    )
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
        let report = new_report(facts, &float16_model());
        assert_eq!(report.op_total, 2);
        assert_eq!(report.ops["DEQUANTIZE"], 1);
        assert_eq!(report.converter, "tflite");
        assert_eq!(report.float_compute_ops, ["CONV_2D#1"]);
        assert_eq!(report.constant_bytes_by_dtype["float16"], 864);
        assert_eq!(report.weights[0].dtype, "float16");
        assert_eq!(
            summary(&report),
            "float16: 2.0 KiB, 2 ops (1 float), input float32, 5 float tensors, converted in 1.5 s"
        );
        let json = serde_json::to_value(&report).unwrap();
        assert_eq!(json["mode"], "float16");
        assert_eq!(json["source_format"], "saved_model");
    }
}
