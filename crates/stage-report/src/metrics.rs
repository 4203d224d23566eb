//! `metrics.json`: the report's machine-readable form, one entry per variant.
//!
//! The same document is what a later run compares against (`baseline`), so
//! it is versioned by [`METRICS_SCHEMA`] and every numeric field of a
//! variant entry takes part in the diff.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::variant::Role;
pub use coco_eval::Interval;

/// Identifies a metrics document, also when it is embedded in a lock file.
pub const METRICS_SCHEMA: &str = "edgepipe.report.metrics/1";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricsDoc {
    pub schema: String,
    pub title: String,
    /// The variant accuracy deltas, size ratios and speedups are relative to.
    pub reference_variant: Option<String>,
    pub variants: Vec<VariantMetrics>,
    pub targets: Vec<TargetResult>,
    /// Where the models came from, merged over all bench results.
    #[serde(default)]
    pub provenance: BTreeMap<String, String>,
    /// The bench results read, by file name, with their BLAKE3 digests.
    #[serde(default)]
    pub inputs: Vec<InputRecord>,
    /// How the accuracy intervals were computed; absent without per-image evaluations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bootstrap: Option<BootstrapInfo>,
    /// Differences against the baseline run, when one was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline: Option<BaselineDiff>,
}

/// Metrics of one variant. Absent values are omitted, never zero.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct VariantMetrics {
    pub variant: String,
    pub role: Option<Role>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scheme: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_dtype: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_dtype: Option<String>,
    /// The model could not be run because no Edge TPU device was present.
    #[serde(default)]
    pub no_device: bool,
    #[serde(default)]
    pub edgetpu_compiled: bool,
    /// Op placement comes from static prediction, not the compiler.
    #[serde(default)]
    pub ops_predicted: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_cpu_op: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_bytes: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_mb: Option<f64>,
    /// Model size divided by the reference's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size_vs_reference: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tpu_ops: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu_ops: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub threads: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub init_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_inference_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_mean_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_std_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_min_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_p50_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_p90_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_p99_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_max_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_samples: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fps: Option<f64>,
    /// Reference mean latency divided by this variant's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub speedup_vs_reference: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preprocess_ms: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub map: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub map50: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ar100: Option<f64>,
    /// (mAP@.5 − reference mAP@.5) × 100, in percentage points.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta_map50_points: Option<f64>,
    /// (mAP − reference mAP) × 100, in percentage points.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta_map_points: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quant_box_mae: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quant_score_mae: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quant_matched_iou: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quant_detections_gained: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quant_detections_lost: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub peak_rss_mb: Option<f64>,
    /// Bootstrap intervals of the accuracy metrics (see [`MetricsDoc::bootstrap`]).
    #[serde(default, skip_serializing_if = "AccuracyIntervals::is_empty")]
    pub intervals: AccuracyIntervals,
}

/// Percentile intervals of one variant's accuracy over bootstrap resamples
/// of the val images. Nested (not flat numbers), so baseline diffs leave
/// them out.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AccuracyIntervals {
    /// mAP@[.5:.95], as a fraction like `map`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub map: Option<Interval>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub map50: Option<Interval>,
    /// Δ mAP versus the reference, in points.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta_map_points: Option<Interval>,
    /// Δ mAP@.5 versus the reference, in points.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delta_map50_points: Option<Interval>,
    /// Mean IoU of detections matched to the float parent's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub matched_iou: Option<Interval>,
}

impl AccuracyIntervals {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// The bootstrap behind the intervals.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BootstrapInfo {
    pub resamples: usize,
    pub seed: u64,
    pub confidence: f64,
    /// Val images each resample draws (with replacement).
    pub images: usize,
}

impl VariantMetrics {
    /// Every numeric metric by name, for diffs.
    pub fn numeric(&self) -> BTreeMap<String, f64> {
        let Ok(Value::Object(map)) = serde_json::to_value(self) else {
            return BTreeMap::new();
        };
        map.into_iter()
            .filter_map(|(k, v)| v.as_f64().map(|n| (k, n)))
            .collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Met,
    Missed,
    /// The interval straddles the bound: the data cannot tell.
    Inconclusive,
    /// A variant or value the target needs is absent from this run.
    NotEvaluated,
}

impl Verdict {
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Met => "met",
            Verdict::Missed => "missed",
            Verdict::Inconclusive => "inconclusive",
            Verdict::NotEvaluated => "not evaluated",
        }
    }
}

/// One accuracy or speed target and how this run did against it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetResult {
    pub id: String,
    pub description: String,
    #[serde(default)]
    pub variant: Option<String>,
    #[serde(default)]
    pub measured: Option<f64>,
    /// The bootstrap interval of the measured value, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<Interval>,
    pub threshold: f64,
    pub unit: String,
    pub verdict: Verdict,
    /// Why, in one sentence.
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InputRecord {
    pub file: String,
    pub variant: String,
    pub blake3: String,
}

/// `current − baseline` for every metric, like `dvc metrics diff`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaselineDiff {
    /// What the baseline was read from (file name and kind).
    pub source: String,
    pub title: String,
    pub rows: Vec<DiffRow>,
    /// Variants only in the current run.
    #[serde(default)]
    pub added: Vec<String>,
    /// Variants only in the baseline.
    #[serde(default)]
    pub removed: Vec<String>,
    /// Target verdicts then and now.
    #[serde(default)]
    pub targets: Vec<TargetDiff>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TargetDiff {
    pub id: String,
    pub description: String,
    pub baseline: Option<Verdict>,
    pub current: Verdict,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiffRow {
    pub variant: String,
    pub metric: String,
    pub baseline: Option<f64>,
    pub current: Option<f64>,
    /// `current − baseline` when both exist.
    pub change: Option<f64>,
    /// `change / |baseline|` × 100 when the baseline is not zero.
    pub change_percent: Option<f64>,
}
