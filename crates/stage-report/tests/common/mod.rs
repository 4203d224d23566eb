//! `bench.json` fixtures: a test writes only the fields it is about and
//! [`complete`] fills in the rest as the bench stage writes them, so every
//! fixture parses as `artifact_schemas::bench::BenchResults`.

#![allow(dead_code)]

use serde_json::{Value, json};

/// `partial` over a full `bench.json`. Top-level fields it lacks take the
/// defaults below; a section it gives (`latency`, `accuracy`,
/// `quantization_error`, `edgetpu`, `preprocessing`) is merged over that
/// section's defaults, and a section it omits is `null` (not measured).
pub fn complete(partial: Value) -> Value {
    let mut full = json!({
        "schema": 1, "variant": "", "model_file": "model.tflite", "model_size_bytes": 0,
        "scheme": null, "input_dtype": "float32", "output_dtypes": ["float32"],
        "input_shape": [1, 300, 300, 3], "edgetpu": null, "runtime": "litert-cpu",
        "status": "ok", "status_detail": null, "threads": 1, "latency": null,
        "preprocessing": {"images": 0, "mean_ms": 0.0, "total_ms": 0.0},
        "accuracy": null, "quantization_error": null, "peak_rss_bytes": null, "warnings": []
    });
    let sections = [
        ("latency", latency_defaults()),
        ("accuracy", accuracy_defaults()),
        ("quantization_error", quantization_error_defaults()),
        (
            "edgetpu",
            json!({"compiled": false, "predicted": true, "ops_on_tpu": null, "ops_on_cpu": null}),
        ),
        (
            "preprocessing",
            json!({"images": 0, "mean_ms": 0.0, "total_ms": 0.0}),
        ),
    ];
    let Value::Object(partial) = partial else {
        panic!("a bench.json fixture is an object");
    };
    for (key, value) in partial {
        let merged = match (sections.iter().find(|(name, _)| *name == key), value) {
            (Some((_, defaults)), Value::Object(fields)) => {
                let mut section = defaults.clone();
                for (field, v) in fields {
                    section[field] = v;
                }
                section
            }
            (_, value) => value,
        };
        full[key] = merged;
    }
    full
}

fn latency_defaults() -> Value {
    json!({"init_ms": 1.0, "first_ms": 10.0, "warmup_runs": 1, "count": 1, "mean_ms": 10.0,
        "std_ms": 0.0, "min_ms": 10.0, "p50_ms": 10.0, "p90_ms": 10.0, "p99_ms": 10.0,
        "max_ms": 10.0, "fps": 100.0, "samples_ms": [10.0]})
}

fn accuracy_defaults() -> Value {
    json!({"images": 200, "detections": 0, "map": 0.0, "map_50": 0.0, "ar_100": 0.0,
        "coco": {"map": 0.0, "map_50": 0.0, "map_75": 0.0, "map_small": -1.0, "map_medium": 0.0,
            "map_large": 0.0, "ar_1": 0.0, "ar_10": 0.0, "ar_100": 0.0, "ar_small": -1.0,
            "ar_medium": 0.0, "ar_large": 0.0}})
}

fn quantization_error_defaults() -> Value {
    json!({"images": 200, "score_threshold": 0.5, "iou_threshold": 0.5, "float_detections": 0,
        "quantized_detections": 0, "matched": 0, "lost": 0, "gained": 0,
        "mean_abs_box_diff": null, "mean_abs_score_diff": null, "mean_matched_iou": null,
        "mean_abs_output_diff": null})
}
