//! The `quantize` stage: converts the export stage's graph to a `.tflite`
//! model in one of six modes (float32, float16, dynamic-range int8, full
//! int8 calibrated on a seeded sample of the train split, per-channel int8
//! from a quantization-aware graph with the MLIR converter, TOCO for
//! per-tensor quantization-aware graphs), describes the result (ops, dtypes,
//! per-channel scales, tensors left in float, size, time) and fails when the
//! model does not match the mode it was asked for.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod analysis;
pub mod calibration;
pub mod mode_check;
pub mod params;
pub mod report;
pub mod stage;

pub use stage::QuantizeStage;
