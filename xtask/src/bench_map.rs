//! `cargo xtask bench-map [ARGS]`: edgepipe's COCO mAP against pycocotools on
//! 5,000 synthetic images × 100 detections (prints the time ratio and the
//! largest metric difference). Delegates to the `bench-map` benchmark of
//! `stage-bench`; ARGS pass through (`--images`, `--detections`,
//! `--categories`, `--seed`).

use std::process::ExitCode;

use crate::delegate::{PassThrough, run_bench};

pub fn run(args: PassThrough) -> anyhow::Result<ExitCode> {
    run_bench("stage-bench", "bench-map", args.args)
}
