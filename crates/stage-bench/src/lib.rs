//! The `bench` stage: how fast, how accurate and how large a `.tflite`
//! detector is, measured the way the report needs it.
//!
//! * [`runtime`] runs models on the CPU through LiteRT (`libLiteRt.so`,
//!   provisioned by `cargo xtask setup`; `build.rs` refuses to build without
//!   it and embeds an rpath to it), with buffers sized by [`model_io`] and
//!   ordered as the runtime's signature lists them ([`signature`]);
//! * [`latency`] times inference like TFLite's `benchmark_model`;
//! * COCO evaluation is the `coco-eval` crate's (pycocotools-exact, with
//!   per-image records for the report's paired bootstrap);
//! * [`quant_error`] compares a quantized model with its float parent;
//! * `bench.json` is `artifact_schemas::bench::BenchResults` — its field
//!   table is the stable interface; `detections.json` is a COCO results list
//!   (`image_id`, `category_id`, `bbox` `[x, y, w, h]` in pixels, `score`)
//!   whose image ids are 1-based positions in the val split;
//!   `evaluation.json` is the same evaluation image by image (ground truth,
//!   detections and matches against the float parent), the per-image
//!   records the report's bootstrap intervals need (see
//!   `coco_eval::per_image`).
//!
//! Threads: the LiteRT C API that `litert-sys` 0.2.1 binds has no CPU
//! thread setting, and the CPU backend runs single-threaded (measured: no
//! extra threads, CPU time ≤ wall time). `threads` other than 1 is recorded
//! with a warning and `bench.json` says `threads: 1`; Python's reference
//! loop uses `num_threads` = the same value.
//!
//! Edge TPU: a model containing `edgetpu-custom-op` is timed only where
//! `libedgetpu.so.1` loads and a device is attached (through
//! `ai_edge_litert` with the Edge TPU delegate, since the LiteRT C API has
//! no Edge TPU path); otherwise `status` is `no device` and no latency is
//! recorded.
//!
//! Boards: with `device: {ssh: user@host, runtime: edgetpu|cpu}` the
//! model runs on a board over SSH ([`device`]): the board times it with its
//! TFLite interpreter (Edge TPU delegate or CPU) and returns samples and
//! outputs; statistics, detections and COCO accuracy are computed here with
//! the local bench's code, and `bench.json` names the device.
//!
//! Binary: `stage-bench` (the stage). Benchmarks (`benches/`, outside the
//! stage's source hash): `bench-harness` (our loop against a plain Python
//! `ai_edge_litert` loop) and `bench-map` (our COCO evaluation against
//! pycocotools on a large synthetic set).

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod detections;
pub mod device;
pub mod edgetpu;
pub mod latency;
pub mod memory;
pub mod model_io;
pub mod preprocess;
pub mod quant_error;
pub mod runtime;
pub mod signature;
pub mod stage;
pub mod val_split;

use latency::{LatencyStats, LoopLimits, measure};
use preprocess::InputData;
use runtime::{LiteRtRunner, RuntimeError};

/// Times `runner` over `inputs` (cycled), as the bench stage does.
pub fn measure_latency(
    runner: &mut LiteRtRunner,
    inputs: &[InputData],
    limits: &LoopLimits,
) -> Result<LatencyStats, RuntimeError> {
    let init_ms = runner.init_ms;
    let runner = std::cell::RefCell::new(runner);
    let (warmup, samples) = measure(
        limits,
        |i| {
            let input = inputs
                .get(i % inputs.len().max(1))
                .ok_or(RuntimeError::NoInputs)?;
            runner.borrow_mut().set_input(input)
        },
        || runner.borrow_mut().invoke(),
    )?;
    Ok(crate::latency::stats_from_samples(
        init_ms, &warmup, samples,
    ))
}
