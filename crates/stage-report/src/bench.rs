//! The bench stage's `bench.json` as the report loads it: the one type
//! `artifact_schemas::bench::BenchResults`, plus the file it came from and
//! the digest of its bytes.

use std::path::{Path, PathBuf};

pub use artifact_schemas::bench::BenchResults;

use crate::error::ReportError;

/// A bench result and the file it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct LoadedBench {
    pub path: PathBuf,
    /// BLAKE3 of the file's bytes, so a report names exactly what it read.
    pub digest: String,
    pub result: BenchResults,
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

/// Parses `bench.json` bytes; errors name `path`, the line and the
/// offending field.
pub fn parse(path: &Path, bytes: &[u8]) -> Result<BenchResults, ReportError> {
    let bad = |detail: String| ReportError::BadBench {
        path: path.to_path_buf(),
        detail,
    };
    serde_json::from_slice::<serde::de::IgnoredAny>(bytes)
        .map_err(|e| bad(format!("invalid JSON: {e}")))?;
    let result: BenchResults = artifact_schemas::parse(path, bytes).map_err(|e| match e {
        artifact_schemas::ArtifactError::Invalid { detail, .. } => bad(detail),
        other => bad(other.to_string()),
    })?;
    if result.variant.trim().is_empty() {
        return Err(bad("field `variant` is empty".to_owned()));
    }
    Ok(result)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A `bench.json` as the bench stage writes it, plus a field from a
    /// newer producer.
    pub(crate) fn full() -> serde_json::Value {
        serde_json::json!({
            "schema": 1, "variant": "full_int8 PTQ", "model_file": "model.tflite",
            "model_size_bytes": 1048576, "scheme": "full_int8", "input_dtype": "uint8",
            "output_dtypes": ["float32", "float32"], "input_shape": [1, 300, 300, 3],
            "edgetpu": {"compiled": false, "predicted": true, "ops_on_tpu": 60, "ops_on_cpu": 1},
            "runtime": "litert-cpu", "status": "ok", "status_detail": null, "threads": 1,
            "latency": {"init_ms": 2.0, "first_ms": 12.0, "warmup_runs": 1, "count": 2,
                "mean_ms": 10.5, "std_ms": 0.5, "min_ms": 10.0, "p50_ms": 10.0, "p90_ms": 10.9,
                "p99_ms": 10.99, "max_ms": 11.0, "fps": 95.2, "samples_ms": [10.0, 11.0]},
            "preprocessing": {"images": 4, "mean_ms": 1.5, "total_ms": 6.0},
            "accuracy": {"images": 4, "detections": 9, "map": 0.25, "map_50": 0.5, "ar_100": 0.3,
                "coco": {"map": 0.25, "map_50": 0.5, "map_75": 0.2, "map_small": -1.0,
                    "map_medium": 0.1, "map_large": 0.3, "ar_1": 0.1, "ar_10": 0.2, "ar_100": 0.3,
                    "ar_small": -1.0, "ar_medium": 0.2, "ar_large": 0.4}},
            "quantization_error": null, "peak_rss_bytes": 1000, "warnings": [],
            "something_new": {"x": 1}
        })
    }

    /// [`full`] with its variant, scheme, runtime and status replaced.
    pub(crate) fn row(
        variant: &str,
        scheme: Option<&str>,
        runtime: &str,
        status: &str,
    ) -> BenchResults {
        let mut json = full();
        json["variant"] = variant.into();
        json["scheme"] = scheme.into();
        json["runtime"] = runtime.into();
        json["status"] = status.into();
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn reads_a_full_result_and_ignores_unknown_fields() {
        let json = serde_json::to_vec(&full()).unwrap();
        let r = parse(Path::new("b.json"), &json).unwrap();
        assert_eq!(r.variant, "full_int8 PTQ");
        assert_eq!(r.model_size_bytes, 1_048_576);
        assert_eq!(r.latency_mean(), Some(10.5));
        assert_eq!(r.latency.clone().unwrap().samples_ms, vec![10.0, 11.0]);
        assert_eq!(r.map_50(), Some(0.5));
        assert_eq!(r.edgetpu.clone().unwrap().ops_on_tpu, Some(60));
        assert_eq!(r.preprocessing.mean_ms, 1.5);
        assert_eq!(r.output_dtypes, ["float32", "float32"]);
    }

    #[test]
    fn missing_required_field_names_file_and_field() {
        let mut json = full();
        json.as_object_mut().unwrap().remove("model_size_bytes");
        let err = parse(
            Path::new("/x/bench.json"),
            &serde_json::to_vec(&json).unwrap(),
        )
        .unwrap_err();
        let text = err.to_string();
        assert!(text.contains("/x/bench.json"), "{text}");
        assert!(text.contains("model_size_bytes"), "{text}");
        let mut json = full();
        json["latency"]["mean_ms"] = "fast".into();
        let err = parse(
            Path::new("/x/bench.json"),
            &serde_json::to_vec(&json).unwrap(),
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
