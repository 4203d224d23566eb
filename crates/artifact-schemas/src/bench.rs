//! `bench.json`: everything one benchmark row of the report needs, written
//! by the bench stage and read by the report stage. The field names are a
//! stable interface; add fields, never rename or remove them, and bump
//! [`SCHEMA_VERSION`] if a meaning changes.
//!
//! | field | meaning |
//! |---|---|
//! | `schema` | [`SCHEMA_VERSION`] |
//! | `variant` | the variant's label from the pipeline (`float32`, `full_int8 PTQ`, ...) |
//! | `model_file`, `model_size_bytes` | the benchmarked `.tflite` and its size |
//! | `scheme` | quantization mode from the quantize report (`float32`, `float16`, `dynamic`, `full_int8`, `toco`), else `null` |
//! | `input_dtype`, `output_dtypes` | model I/O element types (from the model itself; the quantize report's when present) |
//! | `input_shape` | `[1, h, w, 3]` |
//! | `edgetpu` | from the edgetpu report: `compiled`, `predicted`, `ops_on_tpu`, `ops_on_cpu`, `first_cpu_op` (`null` without a report) |
//! | `runtime` | `litert-cpu` or `edgetpu` |
//! | `status` | `ok`; `no device` (Edge TPU model without a usable Edge TPU: no latency, never a CPU number); `not compiled` (the Edge TPU stage produced no model: empty model fields, no numbers) |
//! | `status_detail` | why, in words |
//! | `threads` | CPU threads of the runtime |
//! | `latency` | [`LatencyStats`]: `init_ms`, `first_ms`, `warmup_runs`, `count`, `mean_ms`, `std_ms`, `min_ms`, `p50_ms`, `p90_ms`, `p99_ms`, `max_ms`, `fps`, `samples_ms` (every timed run) — `null` when not measured |
//! | `preprocessing` | decode + resize + normalize/quantize per image: `images`, `mean_ms`, `total_ms` |
//! | `accuracy` | `images`, `detections`, `map` (mAP@[.5:.95]), `map_50`, `ar_100`, `coco` (all twelve COCOeval stats) — `null` for models without detections |
//! | `quantization_error` | [`QuantizationError`] against the float parent, `null` without `float_model` |
//! | `peak_rss_bytes` | peak resident memory of the bench process |
//! | `warnings` | anything that makes a number less trustworthy |
//! | `device` | for a bench on a board over SSH: `host`, `runtime` (`edgetpu`/`cpu`), `machine`, `interpreter`, `python`; `null` for a local bench |

use serde::{Deserialize, Serialize};

/// The file name, which is also the artifact type name stages declare.
pub const FILE: &str = "bench.json";

/// Reads a statistic written as `null`: JSON has no NaN, so a run without
/// timed samples (NaN statistics) is written with nulls, read back as NaN.
fn null_as_nan<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(deserializer)?.unwrap_or(f64::NAN))
}

/// Version of the `bench.json` layout.
pub const SCHEMA_VERSION: u32 = 1;

/// The LiteRT CPU runtime label.
pub const RUNTIME_CPU: &str = "litert-cpu";
/// The Edge TPU runtime label.
pub const RUNTIME_EDGETPU: &str = "edgetpu";
/// `status` of a measured benchmark.
pub const STATUS_OK: &str = "ok";
/// `status` of an Edge TPU model on a machine without an Edge TPU.
pub const STATUS_NO_DEVICE: &str = "no device";
/// `status` of an Edge TPU variant whose `model` is an empty `compiled`
/// directory (no compiler ran): model fields are empty, no numbers.
pub const STATUS_NOT_COMPILED: &str = "not compiled";

/// The whole `bench.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BenchResults {
    pub schema: u32,
    pub variant: String,
    pub model_file: String,
    pub model_size_bytes: u64,
    pub scheme: Option<String>,
    pub input_dtype: String,
    pub output_dtypes: Vec<String>,
    pub input_shape: Vec<i32>,
    pub edgetpu: Option<EdgeTpuMapping>,
    pub runtime: String,
    pub status: String,
    pub status_detail: Option<String>,
    pub threads: usize,
    pub latency: Option<LatencyStats>,
    pub preprocessing: Preprocessing,
    pub accuracy: Option<Accuracy>,
    pub quantization_error: Option<QuantizationError>,
    pub peak_rss_bytes: Option<u64>,
    pub warnings: Vec<String>,
    /// The board a device bench ran on; `None` for a local bench.
    #[serde(default)]
    pub device: Option<DeviceInfo>,
}

/// Ops placement from the edgetpu stage's report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EdgeTpuMapping {
    /// The compiler ran and produced a model.
    pub compiled: bool,
    /// Placement predicted by static analysis rather than compiled.
    pub predicted: bool,
    pub ops_on_tpu: Option<u64>,
    pub ops_on_cpu: Option<u64>,
    /// The first op left on the CPU, as `<index> <OP>` (`109 DEQUANTIZE`).
    #[serde(default)]
    pub first_cpu_op: Option<String>,
}

/// Time spent turning images into inputs.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Preprocessing {
    pub images: usize,
    pub mean_ms: f64,
    pub total_ms: f64,
}

/// COCO accuracy over the val split.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Accuracy {
    pub images: usize,
    pub detections: usize,
    /// mAP@[.5:.95] (COCOeval `stats[0]`).
    pub map: f64,
    /// mAP@.5 (`stats[1]`).
    pub map_50: f64,
    /// AR@100 (`stats[8]`).
    pub ar_100: f64,
    pub coco: CocoSummary,
}

/// Timings of one benchmark, in milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatencyStats {
    /// Model load and compilation (runtime initialisation), ms.
    #[serde(deserialize_with = "null_as_nan")]
    pub init_ms: f64,
    /// The very first inference (first warm-up run), ms.
    #[serde(deserialize_with = "null_as_nan")]
    pub first_ms: f64,
    /// Warm-up runs executed (not in the statistics).
    pub warmup_runs: usize,
    /// Timed runs.
    pub count: usize,
    #[serde(deserialize_with = "null_as_nan")]
    pub mean_ms: f64,
    /// Population standard deviation, as `benchmark_model` prints it.
    #[serde(deserialize_with = "null_as_nan")]
    pub std_ms: f64,
    #[serde(deserialize_with = "null_as_nan")]
    pub min_ms: f64,
    /// Percentiles by linear interpolation between order statistics
    /// (numpy's default method).
    #[serde(deserialize_with = "null_as_nan")]
    pub p50_ms: f64,
    #[serde(deserialize_with = "null_as_nan")]
    pub p90_ms: f64,
    #[serde(deserialize_with = "null_as_nan")]
    pub p99_ms: f64,
    #[serde(deserialize_with = "null_as_nan")]
    pub max_ms: f64,
    /// 1000 / mean_ms: inferences per second of the model alone.
    #[serde(deserialize_with = "null_as_nan")]
    pub fps: f64,
    /// Every timed run in order, ms (for distribution plots).
    pub samples_ms: Vec<f64>,
}

/// The comparison of one model with its float parent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QuantizationError {
    /// Images both models ran on.
    pub images: usize,
    /// Detections below this score are not compared.
    pub score_threshold: f64,
    /// Minimum IoU for two detections to be the same object.
    pub iou_threshold: f64,
    pub float_detections: usize,
    pub quantized_detections: usize,
    pub matched: usize,
    /// Float detections with no quantized counterpart.
    pub lost: usize,
    /// Quantized detections with no float counterpart.
    pub gained: usize,
    /// Mean |Δ| of normalized box coordinates over matched pairs.
    pub mean_abs_box_diff: Option<f64>,
    /// Mean |Δ score| over matched pairs.
    pub mean_abs_score_diff: Option<f64>,
    /// Mean IoU of matched pairs.
    pub mean_matched_iou: Option<f64>,
    /// For models without detections: mean |Δ| of all dequantized outputs.
    pub mean_abs_output_diff: Option<f64>,
}

/// The device a row was measured on (`bench.json` `device`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceInfo {
    /// The board's host name or address (no user, no credentials).
    pub host: String,
    /// `edgetpu` or `cpu`.
    pub runtime: String,
    /// The board's CPU architecture (`aarch64`).
    pub machine: String,
    /// The TFLite interpreter the board used (`tflite_runtime 2.5.0`).
    pub interpreter: String,
    pub python: String,
}

/// The twelve numbers `COCOeval.summarize()` prints, in its order.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct CocoSummary {
    /// AP @[IoU=0.50:0.95 | area=all | maxDets=100] (`stats[0]`).
    pub map: f64,
    /// AP @[IoU=0.50] (`stats[1]`).
    pub map_50: f64,
    /// AP @[IoU=0.75] (`stats[2]`).
    pub map_75: f64,
    pub map_small: f64,
    pub map_medium: f64,
    pub map_large: f64,
    /// AR @[maxDets=1] (`stats[6]`).
    pub ar_1: f64,
    /// AR @[maxDets=10] (`stats[7]`).
    pub ar_10: f64,
    /// AR @[IoU=0.50:0.95 | area=all | maxDets=100] (`stats[8]`).
    pub ar_100: f64,
    pub ar_small: f64,
    pub ar_medium: f64,
    pub ar_large: f64,
}

impl CocoSummary {
    /// The values in `COCOeval.stats` order.
    pub fn as_array(&self) -> [f64; 12] {
        [
            self.map,
            self.map_50,
            self.map_75,
            self.map_small,
            self.map_medium,
            self.map_large,
            self.ar_1,
            self.ar_10,
            self.ar_100,
            self.ar_small,
            self.ar_medium,
            self.ar_large,
        ]
    }
}

impl BenchResults {
    /// Whether the numbers came from an Edge TPU (or would have, given a device).
    pub fn is_edgetpu_run(&self) -> bool {
        self.runtime == RUNTIME_EDGETPU || self.no_device()
    }

    /// The model was meant for an Edge TPU but no device was there to run it.
    pub fn no_device(&self) -> bool {
        self.status == STATUS_NO_DEVICE
    }

    /// Mean latency in ms, when measured.
    pub fn latency_mean(&self) -> Option<f64> {
        self.latency.as_ref().map(|l| l.mean_ms)
    }

    /// mAP@[.5:.95], when the model has detections.
    pub fn map(&self) -> Option<f64> {
        self.accuracy.as_ref().map(|a| a.map)
    }

    /// mAP@.5, when the model has detections.
    pub fn map_50(&self) -> Option<f64> {
        self.accuracy.as_ref().map(|a| a.map_50)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn small() -> BenchResults {
        BenchResults {
            schema: SCHEMA_VERSION,
            variant: "full_int8 PTQ".into(),
            model_file: "model.tflite".into(),
            model_size_bytes: 1024,
            scheme: Some("full_int8".into()),
            input_dtype: "uint8".into(),
            output_dtypes: vec!["float32".into()],
            input_shape: vec![1, 300, 300, 3],
            edgetpu: Some(EdgeTpuMapping {
                compiled: false,
                predicted: true,
                ops_on_tpu: Some(60),
                ops_on_cpu: Some(1),
                first_cpu_op: Some("60 DEQUANTIZE".into()),
            }),
            runtime: RUNTIME_CPU.into(),
            status: STATUS_OK.into(),
            status_detail: None,
            threads: 1,
            latency: None,
            preprocessing: Preprocessing {
                images: 2,
                mean_ms: 1.5,
                total_ms: 3.0,
            },
            accuracy: None,
            quantization_error: None,
            peak_rss_bytes: Some(4096),
            warnings: vec!["w".into()],
            device: None,
        }
    }

    #[test]
    fn bench_json_bytes_keep_their_field_order() {
        let bytes = serde_json::to_string_pretty(&small()).unwrap();
        let expected = r#"{
  "schema": 1,
  "variant": "full_int8 PTQ",
  "model_file": "model.tflite",
  "model_size_bytes": 1024,
  "scheme": "full_int8",
  "input_dtype": "uint8",
  "output_dtypes": [
    "float32"
  ],
  "input_shape": [
    1,
    300,
    300,
    3
  ],
  "edgetpu": {
    "compiled": false,
    "predicted": true,
    "ops_on_tpu": 60,
    "ops_on_cpu": 1,
    "first_cpu_op": "60 DEQUANTIZE"
  },
  "runtime": "litert-cpu",
  "status": "ok",
  "status_detail": null,
  "threads": 1,
  "latency": null,
  "preprocessing": {
    "images": 2,
    "mean_ms": 1.5,
    "total_ms": 3.0
  },
  "accuracy": null,
  "quantization_error": null,
  "peak_rss_bytes": 4096,
  "warnings": [
    "w"
  ],
  "device": null
}"#;
        assert_eq!(bytes, expected);
        let back: BenchResults =
            crate::parse(std::path::Path::new(FILE), bytes.as_bytes()).unwrap();
        assert_eq!(back, small());
    }

    #[test]
    fn files_from_before_device_and_first_cpu_op_still_read() {
        let mut value = serde_json::to_value(small()).unwrap();
        let object = value.as_object_mut().unwrap();
        object.remove("device");
        object["edgetpu"]
            .as_object_mut()
            .unwrap()
            .remove("first_cpu_op");
        let old: BenchResults = serde_json::from_value(value).unwrap();
        assert_eq!(old.device, None);
        assert_eq!(old.edgetpu.unwrap().first_cpu_op, None);
    }

    #[test]
    fn statistics_of_a_run_without_samples_read_back_as_nan() {
        let nan = f64::NAN;
        let latency = LatencyStats {
            init_ms: 3.0,
            first_ms: nan,
            warmup_runs: 0,
            count: 0,
            mean_ms: nan,
            std_ms: nan,
            min_ms: nan,
            p50_ms: nan,
            p90_ms: nan,
            p99_ms: nan,
            max_ms: nan,
            fps: nan,
            samples_ms: Vec::new(),
        };
        let json = serde_json::to_string(&latency).unwrap();
        assert!(json.contains(r#""mean_ms":null"#), "{json}");
        let back: LatencyStats = serde_json::from_str(&json).unwrap();
        assert_eq!(back.init_ms, 3.0);
        assert!(back.mean_ms.is_nan() && back.fps.is_nan());
    }

    #[test]
    fn runs_on_an_edge_tpu_without_a_device() {
        let mut row = small();
        assert!(!row.is_edgetpu_run());
        row.runtime = RUNTIME_EDGETPU.into();
        row.status = STATUS_NO_DEVICE.into();
        assert!(row.is_edgetpu_run() && row.no_device());
        assert_eq!((row.latency_mean(), row.map_50()), (None, None));
    }
}
