//! `cargo xtask bench-tfrecord`: the dataset stage's TFRecord benchmark,
//! run as the release binary `bench-tfrecord` of `stage-dataset` (which
//! carries the heavy dependencies); arguments are passed through.

use std::process::ExitCode;

use crate::delegate::{PassThrough, run_bench};

pub fn run(args: PassThrough) -> anyhow::Result<ExitCode> {
    run_bench("stage-dataset", "bench-tfrecord", args.args)
}
