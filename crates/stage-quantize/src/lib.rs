//! The `quantize` stage: converts the export stage's graph to a `.tflite`
//! model in one of five modes (float32, float16, dynamic-range int8, full
//! int8 calibrated on the val split, TOCO for quantization-aware graphs),
//! describes the result (ops, dtypes, tensors left in float, size, time)
//! and fails when the model does not match the mode it was asked for.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod analysis;
pub mod export_manifest;
pub mod mode_check;
pub mod params;
pub mod report;
pub mod stage;
pub mod val_records;

pub use stage::QuantizeStage;
