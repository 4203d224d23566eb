//! The published Edge TPU figures the experiment reproduces, shown beside the
//! measured rows and always labelled as a reference: they were measured on a
//! Coral Dev Board, not by this pipeline.

use crate::metrics::VariantMetrics;
use crate::variant::Role;

/// One row of the published table.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PublishedRow {
    pub approach: &'static str,
    pub latency_ms: f64,
    pub fps: f64,
    /// The variant of this pipeline that follows the same approach.
    pub comparable: Role,
}

/// Where the published figures come from.
pub const PUBLISHED_SOURCE: &str = "Published Edge TPU results of the original experiment \
     (SSDLite MobileNet V2 pedestrian detector on a Coral Dev Board, Oxford Town Centre images)";

pub const PUBLISHED: [PublishedRow; 2] = [
    PublishedRow {
        approach: "post-training quantization",
        latency_ms: 6.6,
        fps: 152.0,
        comparable: Role::FullInt8,
    },
    PublishedRow {
        approach: "quantization-aware training",
        latency_ms: 6.1,
        fps: 164.0,
        comparable: Role::QatToco,
    },
];

/// The measured variant to show beside a published row: a CPU run of the
/// same approach, if this run has one.
pub fn measured_beside<'a>(
    row: &PublishedRow,
    variants: &'a [VariantMetrics],
) -> Option<&'a VariantMetrics> {
    variants
        .iter()
        .find(|v| v.role == Some(row.comparable) && !v.no_device)
}
