//! `quantize.json`: what the quantize stage's conversion produced (op
//! list, dtypes, float tensors, weights, size, time, whether the model
//! matches its mode), for people and for the bench stage, which reads the
//! mode and the I/O dtypes (`quantize_report` input).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::export::ExportFormat;

/// The file name, which is also the artifact type name stages declare.
pub const FILE: &str = "quantize.json";

/// The whole `quantize.json`.
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

/// A conversion the quantize stage can run (also its `mode` param).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    Float32,
    Float16,
    Dynamic,
    FullInt8,
    QatInt8,
    Toco,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Float32 => "float32",
            Mode::Float16 => "float16",
            Mode::Dynamic => "dynamic",
            Mode::FullInt8 => "full_int8",
            Mode::QatInt8 => "qat_int8",
            Mode::Toco => "toco",
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A model input or output as the report lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TensorSummary {
    pub name: String,
    pub dtype: String,
    pub shape: Vec<i64>,
}

/// A tensor that holds float values, with the ops around it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FloatTensor {
    pub name: String,
    pub dtype: String,
    /// Constant data (a weight) rather than an activation.
    pub constant: bool,
    /// `OP#index` of the op that writes it; none for inputs and constants.
    pub produced_by: Option<String>,
    pub consumed_by: Vec<String>,
}

/// The op behind a weight tensor and how that weight is stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WeightStorage {
    pub op: String,
    pub tensor: String,
    /// The stored dtype (`float16` for a float16 weight dequantized at load).
    pub dtype: String,
    /// Quantization scales of the stored weight (1: per tensor; one per
    /// output channel: per channel; 0: not quantized).
    #[serde(default)]
    pub scales: usize,
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// A `quantize.json` as the quantize stage writes it (a full_int8
    /// conversion), in the stage's field order.
    const FULL_INT8: &str = r#"{
  "mode": "full_int8",
  "requested_input_type": "uint8",
  "source_format": "saved_model",
  "quantization_aware": false,
  "converter": "tflite",
  "tensorflow_version": "2.15.1",
  "model_size_bytes": 4096,
  "conversion_seconds": 2.5,
  "calibration_images": 2,
  "calibration": {
    "split": "train",
    "seed": 7,
    "available": 10,
    "images": 2,
    "records": [
      "train-00000-of-00001.tfrecord#3 img3",
      "train-00000-of-00001.tfrecord#8 img8"
    ]
  },
  "ops": {
    "CONV_2D": 1,
    "TFLite_Detection_PostProcess": 1
  },
  "op_total": 2,
  "has_detection_postprocess": true,
  "inputs": [
    {
      "name": "input",
      "dtype": "UINT8",
      "shape": [
        1,
        64,
        64,
        3
      ]
    }
  ],
  "outputs": [
    {
      "name": "boxes",
      "dtype": "FLOAT32",
      "shape": [
        1,
        10,
        4
      ]
    }
  ],
  "float_compute_ops": [],
  "float_tensors": [
    {
      "name": "boxes",
      "dtype": "FLOAT32",
      "constant": false,
      "produced_by": "TFLite_Detection_PostProcess#1",
      "consumed_by": []
    }
  ],
  "weights": [
    {
      "op": "CONV_2D#0",
      "tensor": "w",
      "dtype": "int8",
      "scales": 8
    }
  ],
  "constant_bytes_by_dtype": {
    "int8": 864
  },
  "matches_mode": true,
  "problems": [],
  "warnings": []
}"#;

    #[test]
    fn round_trips_the_file_the_quantize_stage_writes() {
        let report: QuantizeReport =
            crate::parse(std::path::Path::new(FILE), FULL_INT8.as_bytes()).unwrap();
        assert_eq!(report.mode, Mode::FullInt8);
        assert_eq!(report.inputs[0].dtype, "UINT8");
        assert_eq!(report.calibration.as_ref().unwrap().records.len(), 2);
        assert_eq!(report.weights[0].scales, 8);
        assert_eq!(
            String::from_utf8(serde_json::to_vec_pretty(&report).unwrap()).unwrap(),
            FULL_INT8
        );
    }

    #[test]
    fn an_unknown_mode_is_named() {
        let text = FULL_INT8.replace("\"full_int8\"", "\"int4\"");
        let err = crate::parse::<QuantizeReport>(std::path::Path::new(FILE), text.as_bytes())
            .unwrap_err()
            .to_string();
        assert!(err.contains("field `mode`"), "{err}");
        assert!(err.contains("int4"), "{err}");
    }
}
