//! The `dataset` stage: annotations (COCO, Pascal VOC, plain CSV, Oxford
//! Town Centre) and images in; Object Detection API TFRecord shards, a
//! label map and a validation summary out.
//!
//! The pipeline: [`import`] reads annotations into format-neutral
//! [`annotation`]s, [`plan`] orders, relabels and splits them, [`convert`]
//! reads, validates, hashes and encodes the images on all cores and writes
//! the shards in order, [`stage`] wires it to the stage protocol.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod annotation;
pub mod convert;
pub mod image_header;
pub mod import;
pub mod label_map;
pub mod plan;
pub mod split;
pub mod stage;
pub mod synth;
pub mod validate;

pub use stage::{DatasetParams, DatasetStage, build_dataset};
