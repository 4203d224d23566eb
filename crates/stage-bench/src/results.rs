//! `bench.json`: everything one benchmark row of the report needs. The
//! field names are a stable interface (the report stage reads them); add
//! fields, never rename or remove them, and bump [`SCHEMA_VERSION`] if a
//! meaning changes.
//!
//! | field | meaning |
//! |---|---|
//! | `schema` | [`SCHEMA_VERSION`] |
//! | `variant` | the variant's label from the pipeline (`float32`, `full_int8 PTQ`, ...) |
//! | `model_file`, `model_size_bytes` | the benchmarked `.tflite` and its size |
//! | `scheme` | quantization mode from the quantize report (`float32`, `float16`, `dynamic`, `full_int8`, `toco`), else `null` |
//! | `input_dtype`, `output_dtypes` | model I/O element types (from the model itself; the quantize report's when present) |
//! | `input_shape` | `[1, h, w, 3]` |
//! | `edgetpu` | from the edgetpu report: `compiled`, `predicted`, `ops_on_tpu`, `ops_on_cpu` (`null` without a report) |
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

use crate::latency::LatencyStats;
use crate::quant_error::QuantizationError;
use coco_eval::CocoSummary;

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
    pub device: Option<crate::device::DeviceInfo>,
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
