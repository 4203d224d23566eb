//! The quantize stage's params: which conversion to run and its knobs.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use artifact_schemas::quantize::Mode;

pub use crate::calibration::CalibrationSplit;

/// Params of the `quantize` stage.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct QuantizeParams {
    /// The conversion: `float32` (no quantization), `float16` (float16
    /// weights), `dynamic` (int8 weights, float activations), `full_int8`
    /// (post-training: int8 weights per channel and activations, calibrated
    /// on sample images), `qat_int8` (a per-channel quantization-aware
    /// frozen graph to a full-integer int8 model with the MLIR converter,
    /// ranges from training, no calibration) or `toco` (a per-tensor
    /// quantization-aware frozen graph to uint8 with the legacy converter).
    pub mode: Mode,
    /// Images that calibrate activation ranges (`full_int8`).
    #[serde(default = "default_calibration_images")]
    pub num_calibration_images: u32,
    /// The split calibration images are drawn from (`full_int8`): `train`
    /// (default), so no scored val image sets a range, or `val`.
    #[serde(default)]
    pub calibration_split: CalibrationSplit,
    /// Seed of the calibration sample: the same records, seed and count
    /// always calibrate on the same images (`full_int8`).
    #[serde(default)]
    pub calibration_seed: u64,
    /// Input tensor type of a `full_int8` model (`float`, `int8`, `uint8`)
    /// or a `qat_int8` one (`int8`, or `uint8` when left at `float`). The
    /// detection post-process always returns float32 boxes, classes, scores
    /// and counts.
    #[serde(default)]
    pub io_type: IoType,
    /// `toco`: the uint8 input value that maps to 0.0 (`mean_values`).
    #[serde(default = "default_toco_stat")]
    pub toco_mean_value: f64,
    /// `toco`: uint8 steps per 1.0 of the model's input (`std_dev_values`).
    #[serde(default = "default_toco_stat")]
    pub toco_std_dev_value: f64,
}

fn default_calibration_images() -> u32 {
    100
}

fn default_toco_stat() -> f64 {
    128.0
}

/// The element type of a quantized model's input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum IoType {
    #[default]
    #[serde(alias = "float32")]
    Float,
    Int8,
    Uint8,
}

impl IoType {
    /// The TFLite tensor type name (`float32`, `int8`, `uint8`).
    pub fn dtype(self) -> &'static str {
        match self {
            IoType::Float => "float32",
            IoType::Int8 => "int8",
            IoType::Uint8 => "uint8",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_fill_in_everything_but_the_mode() {
        let params: QuantizeParams = serde_json::from_str(r#"{"mode":"full_int8"}"#).unwrap();
        assert_eq!(params.mode, Mode::FullInt8);
        assert_eq!(params.num_calibration_images, 100);
        assert_eq!(params.calibration_split, CalibrationSplit::Train);
        assert_eq!(params.calibration_seed, 0);
        assert_eq!(params.io_type, IoType::Float);
        assert_eq!(params.toco_mean_value, 128.0);
        assert_eq!(params.toco_std_dev_value, 128.0);
    }

    #[test]
    fn io_type_accepts_float32_as_float() {
        let params: QuantizeParams =
            serde_json::from_str(r#"{"mode":"full_int8","io_type":"float32"}"#).unwrap();
        assert_eq!(params.io_type.dtype(), "float32");
        let params: QuantizeParams =
            serde_json::from_str(r#"{"mode":"full_int8","io_type":"uint8"}"#).unwrap();
        assert_eq!(params.io_type.dtype(), "uint8");
    }

    #[test]
    fn unknown_modes_and_keys_are_rejected() {
        assert!(serde_json::from_str::<QuantizeParams>(r#"{"mode":"int4"}"#).is_err());
        assert!(serde_json::from_str::<QuantizeParams>(r#"{"mode":"toco","bits":8}"#).is_err());
    }
}
