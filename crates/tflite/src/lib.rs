//! Reads TensorFlow Lite flatbuffer models (`.tflite`): subgraphs, operators
//! with TFLite's op names, tensors with type, shape, constness and
//! quantization, and the options of the custom ops edgepipe meets — the SSD
//! detection post-process op and the Edge TPU compiler's `edgetpu-custom-op`.
//!
//! ```no_run
//! let model = tflite::Model::from_path("model.tflite")?;
//! for (subgraph, op) in model.operators() {
//!     println!("{subgraph} {} {}", op.index, op.display_name());
//! }
//! # Ok::<(), tflite::TfliteError>(())
//! ```
//!
//! [`ModelWriter`] writes small one-subgraph models (tests build models op
//! by op with it).
//!
//! The flatbuffer readers are generated from the schema subsets in
//! `schema/` by `schema/regenerate.sh`; every access is bounds-checked, so a
//! truncated or hostile file gives a [`TfliteError`], never a panic.

#![cfg_attr(test, allow(clippy::unwrap_used))]

mod custom;
mod error;
pub mod flexbuffer;
mod generated;
mod model;
mod options;
mod tensor;
mod writer;

pub use custom::{DetectionPostProcessOptions, EdgeTpuOp, EdgeTpuPackage};
pub use error::TfliteError;
pub use model::{
    CUSTOM_BUILTIN_CODE, Metadata, Model, Operator, OperatorCode, Signature, Subgraph,
    builtin_operator_name,
};
pub use options::{OpOptions, activation_name};
pub use tensor::{Quantization, Tensor, TensorType};
pub use writer::{ModelWriter, TensorSpec};
