//! COCO box evaluation without any runtime attached.
//!
//! * [`evaluate`] is a pycocotools-exact `COCOeval` (`iouType="bbox"`);
//! * [`match_table`] keeps per-image match records and re-accumulates AP
//!   under image multiplicities (bootstrap resamples) without re-matching;
//! * [`bootstrap`] draws seeded, paired image resamples and percentile
//!   intervals;
//! * [`per_image`] is `evaluation.json`, one model's evaluation image by
//!   image, the file that carries all of this between stages;
//! * [`synthetic`] makes deterministic COCO data for benchmarks and tests.

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod bootstrap;
pub mod evaluate;
pub mod match_table;
pub mod per_image;
pub mod rng;
pub mod synthetic;

pub use bootstrap::{
    BootstrapConfig, Interval, Resampler, VariantInput, VariantSamples, paired_bootstrap,
    paired_difference, percentile_interval,
};
pub use evaluate::{CocoBox, CocoEvalError, CocoSummary, Detection, GroundTruth, evaluate};
pub use match_table::{AveragePrecision, MatchTable, PrecisionRecallCurve};
pub use per_image::{
    ImageRecord, ObjectBox, PER_IMAGE_SCHEMA, PerImageEvaluation, ReferenceMatch, ScoredBox,
};
