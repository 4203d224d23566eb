//! The bench stage's `bench.json` as the report reads it.
//!
//! Deserialization is deliberately tolerant: unknown fields are ignored and
//! every section but the identity of the variant and its model size is
//! optional, so a bench that could not measure something (no Edge TPU device,
//! no float parent) still reports. Missing required fields fail with the file
//! and the field path named.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::ReportError;

/// One `bench.json`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct BenchResult {
    /// The variant's display name (`float32`, `full_int8 PTQ`, `QAT + toco`).
    pub variant: String,
    /// Model file size in bytes.
    #[serde(alias = "size_bytes", alias = "model_bytes")]
    pub model_size_bytes: u64,
    /// Quantization scheme / converter mode (`float32`, `float16`, `dynamic`,
    /// `full_int8`, `toco`).
    #[serde(default, alias = "mode")]
    pub scheme: Option<String>,
    #[serde(default)]
    pub input_dtype: Option<String>,
    /// Element types of the model's outputs.
    #[serde(default)]
    pub output_dtypes: Vec<String>,
    /// Where inference ran: `litert-cpu` or `edgetpu`.
    #[serde(default)]
    pub runtime: Option<String>,
    /// `ok`, or `no device` for an Edge TPU model without a usable device.
    #[serde(default)]
    pub status: Option<String>,
    /// Why the status is what it is, in words.
    #[serde(default)]
    pub status_detail: Option<String>,
    /// Anything that makes a number of this bench less trustworthy.
    #[serde(default)]
    pub warnings: Vec<String>,
    #[serde(default)]
    pub threads: Option<u32>,
    #[serde(default)]
    pub edgetpu: Option<EdgeTpuInfo>,
    #[serde(default)]
    pub latency: Option<Latency>,
    #[serde(default)]
    pub fps: Option<f64>,
    /// Preprocessing (decode, resize, normalize) timed apart from inference.
    #[serde(default)]
    pub preprocessing: Option<Preprocessing>,
    #[serde(default)]
    pub accuracy: Option<Accuracy>,
    #[serde(default)]
    pub quantization_error: Option<QuantizationError>,
    #[serde(default)]
    pub peak_rss_bytes: Option<u64>,
    /// The board of a device bench (`host`, `runtime`); absent for a local bench.
    #[serde(default)]
    pub device: Option<BenchDevice>,
    /// Free-form facts about where the model came from (dataset, teacher,
    /// training start); shown in the report's provenance section.
    #[serde(default)]
    pub provenance: Map<String, Value>,
}

/// Where a device bench ran: the board's host and its runtime.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct BenchDevice {
    pub host: String,
    pub runtime: String,
}

/// The Edge TPU view of the model: compiled by `edgetpu_compiler` or
/// predicted by static analysis of the op list.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct EdgeTpuInfo {
    pub compiled: bool,
    pub predicted: bool,
    #[serde(alias = "ops_on_tpu")]
    pub tpu_ops: Option<u32>,
    #[serde(alias = "ops_on_cpu")]
    pub cpu_ops: Option<u32>,
    pub first_cpu_op: Option<String>,
    /// `edgetpu` when it ran on a device, `no device` otherwise.
    pub runtime: Option<String>,
}

/// Latency statistics in milliseconds, plus the raw per-run samples.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Latency {
    pub init_ms: Option<f64>,
    pub first_ms: Option<f64>,
    pub mean_ms: Option<f64>,
    pub std_ms: Option<f64>,
    pub min_ms: Option<f64>,
    pub p50_ms: Option<f64>,
    pub p90_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
    /// Inferences per second (1000 / mean), when the bench puts it here.
    pub fps: Option<f64>,
    /// Timed runs (when the samples themselves are not included).
    pub count: Option<u64>,
    /// Every timed run, in milliseconds.
    #[serde(alias = "samples")]
    pub samples_ms: Vec<f64>,
}

/// COCO metrics in [0, 1].
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Accuracy {
    #[serde(alias = "mAP")]
    pub map: Option<f64>,
    #[serde(alias = "mAP50", alias = "map_50")]
    pub map50: Option<f64>,
    #[serde(alias = "AR100", alias = "ar_100")]
    pub ar100: Option<f64>,
    pub images: Option<u64>,
}

/// Output difference against the float parent model on the same images.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct QuantizationError {
    #[serde(alias = "mean_abs_box_diff")]
    pub box_mae: Option<f64>,
    #[serde(alias = "mean_abs_score_diff")]
    pub score_mae: Option<f64>,
    #[serde(alias = "mean_matched_iou")]
    pub matched_iou: Option<f64>,
    pub gained: Option<u64>,
    pub lost: Option<u64>,
}

/// Preprocessing time per image.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default)]
pub struct Preprocessing {
    pub images: Option<u64>,
    pub mean_ms: Option<f64>,
}

/// A bench result and the file it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedBench {
    pub path: PathBuf,
    /// BLAKE3 of the file's bytes, so a report names exactly what it read.
    pub digest: String,
    pub result: BenchResult,
}

impl LoadedBench {
    /// Reads and validates one `bench.json`.
    pub fn load(path: &Path) -> Result<Self, ReportError> {
        let bytes = std::fs::read(path).map_err(|source| ReportError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let result = parse(path, &bytes)?;
        Ok(Self {
            path: path.to_path_buf(),
            digest: blake3::hash(&bytes).to_hex().to_string(),
            result,
        })
    }
}

/// Parses `bench.json` bytes; errors name `path` and the offending field.
pub fn parse(path: &Path, bytes: &[u8]) -> Result<BenchResult, ReportError> {
    let bad = |detail: String| ReportError::BadBench {
        path: path.to_path_buf(),
        detail,
    };
    let value: Value =
        serde_json::from_slice(bytes).map_err(|e| bad(format!("invalid JSON: {e}")))?;
    let result: BenchResult = serde_path_to_error::deserialize(value).map_err(|err| {
        let at = err.path().to_string();
        let inner = err.into_inner();
        if at == "." {
            bad(inner.to_string())
        } else {
            bad(format!("field `{at}`: {inner}"))
        }
    })?;
    if result.variant.trim().is_empty() {
        return Err(bad("field `variant` is empty".to_owned()));
    }
    Ok(result)
}

impl BenchResult {
    /// Whether the numbers came from an Edge TPU (or would have, given a device).
    pub fn is_edgetpu_run(&self) -> bool {
        self.no_device()
            || self.runtime.as_deref().is_some_and(|r| {
                let r = r.to_ascii_lowercase();
                r.contains("edgetpu") || r.contains("edge tpu")
            })
    }

    /// The model was meant for an Edge TPU but no device was there to run it.
    pub fn no_device(&self) -> bool {
        let says_no_device =
            |s: Option<&str>| s.is_some_and(|r| r.eq_ignore_ascii_case("no device"));
        says_no_device(self.status.as_deref())
            || says_no_device(self.runtime.as_deref())
            || self.edgetpu.as_ref().is_some_and(|e| {
                says_no_device(e.runtime.as_deref()) && self.latency_mean().is_none()
            })
    }

    pub fn latency_mean(&self) -> Option<f64> {
        self.latency.as_ref().and_then(|l| l.mean_ms)
    }

    pub fn map(&self) -> Option<f64> {
        self.accuracy.as_ref().and_then(|a| a.map)
    }

    pub fn map50(&self) -> Option<f64> {
        self.accuracy.as_ref().and_then(|a| a.map50)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_full_result_and_ignores_unknown_fields() {
        let json = br#"{
            "variant": "full_int8 PTQ", "model_size_bytes": 1048576, "scheme": "full_int8",
            "something_new": {"x": 1},
            "latency": {"mean_ms": 10.5, "p50_ms": 10.0, "samples_ms": [10.0, 11.0]},
            "accuracy": {"map": 0.25, "map50": 0.5},
            "edgetpu": {"compiled": false, "predicted": true, "ops_on_tpu": 60, "ops_on_cpu": 1},
            "preprocessing": {"images": 4, "mean_ms": 1.5, "total_ms": 6.0},
            "output_dtypes": ["float32", "float32"], "status": "ok"
        }"#;
        let r = parse(Path::new("b.json"), json).unwrap();
        assert_eq!(r.variant, "full_int8 PTQ");
        assert_eq!(r.model_size_bytes, 1_048_576);
        assert_eq!(r.latency_mean(), Some(10.5));
        assert_eq!(r.latency.clone().unwrap().samples_ms, vec![10.0, 11.0]);
        assert_eq!(r.map50(), Some(0.5));
        assert_eq!(r.edgetpu.clone().unwrap().tpu_ops, Some(60));
        assert_eq!(r.preprocessing.unwrap().mean_ms, Some(1.5));
        assert_eq!(r.output_dtypes, ["float32", "float32"]);
    }

    #[test]
    fn missing_required_field_names_file_and_field() {
        let err = parse(Path::new("/x/bench.json"), br#"{"variant": "a"}"#).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("/x/bench.json"), "{text}");
        assert!(text.contains("model_size_bytes"), "{text}");
        let err = parse(
            Path::new("/x/bench.json"),
            br#"{"variant": "a", "model_size_bytes": 3, "latency": {"mean_ms": "fast"}}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("latency.mean_ms"), "{err}");
    }

    #[test]
    fn invalid_json_names_the_file() {
        let err = parse(Path::new("/y/bench.json"), b"{")
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("/y/bench.json: not a bench result: invalid JSON"),
            "{err}"
        );
    }
}
