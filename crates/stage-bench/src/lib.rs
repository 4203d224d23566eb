//! The `bench` stage: how fast, how accurate and how large a `.tflite`
//! detector is, measured the way the report needs it.
//!
//! * [`runtime`] runs models on the CPU through LiteRT (`libLiteRt.so`,
//!   provisioned by `cargo xtask setup`), with buffers sized by [`model_io`];
//! * [`latency`] times inference like TFLite's `benchmark_model`;
//! * [`coco_eval`] is a pycocotools-exact COCO box evaluation;
//! * [`quant_error`] compares a quantized model with its float parent;
//! * [`results`] defines `bench.json`, the report stage's input.
//!
//! Binaries: `stage-bench` (the stage), `bench-harness` (our loop against a
//! plain Python `ai_edge_litert` loop) and `bench-map` (our COCO evaluation
//! against pycocotools on a large synthetic set).

#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod coco_eval;
pub mod detections;
pub mod edgetpu;
pub mod latency;
pub mod memory;
pub mod model_io;
pub mod preprocess;
pub mod quant_error;
pub mod reference;
pub mod results;
pub mod runtime;
pub mod signature;
pub mod stage;
pub mod synthetic;
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
    Ok(LatencyStats::from_samples(init_ms, &warmup, samples))
}
