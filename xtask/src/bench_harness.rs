//! `cargo xtask bench-harness [ARGS]`: the bench stage's measured mean latency
//! against a plain Python `ai_edge_litert` loop over the same model (prints
//! `ratio: X.XX`). Delegates to the `bench-harness` binary of `stage-bench`,
//! which links LiteRT; ARGS pass through (`--model`, `--records`, `--threads`,
//! `--runs`, `--warmup`, `--rounds`).

use std::process::ExitCode;

use crate::delegate::{PassThrough, run_release_binary};

pub fn run(args: PassThrough) -> anyhow::Result<ExitCode> {
    run_release_binary("stage-bench", "bench-harness", args.args)
}
