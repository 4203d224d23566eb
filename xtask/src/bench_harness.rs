//! `cargo xtask bench-harness [ARGS]`: the bench stage's measured mean latency
//! against a plain Python `ai_edge_litert` loop over the same model (prints
//! `ratio: X.XX`). Delegates to the `bench-harness` benchmark of `stage-bench`,
//! which links LiteRT; ARGS pass through (`--model`, `--records`, `--threads`,
//! `--runs`, `--warmup`, `--rounds`).

use std::process::ExitCode;

use crate::delegate::{PassThrough, run_bench};

pub fn run(args: PassThrough) -> anyhow::Result<ExitCode> {
    run_bench("stage-bench", "bench-harness", args.args)
}
