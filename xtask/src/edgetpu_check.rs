//! `cargo xtask edgetpu-check MODEL.tflite [--json] [-a] [--compiler-version V] [-m N]`: predicts the Edge
//! TPU op mapping without the compiler. Delegates to the `edgetpu-check`
//! binary of the `stage-edgetpu` crate, which carries the heavy dependencies.

use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// The .tflite model (a CPU model, or an already compiled `_edgetpu` model).
    model: std::path::PathBuf,
    /// Print exactly one JSON object: {model, compiled, ops, summary}.
    #[arg(long)]
    json: bool,
    /// Predict as with the compiler's -a (allow multiple Edge TPU subgraphs).
    #[arg(short = 'a', long)]
    allow_multiple_subgraphs: bool,
    /// The Edge TPU compiler release to predict for (16, 15, 14.1, 2.1, 2.0, 2.0.267685300, 1.0).
    #[arg(long, default_value = "16")]
    compiler_version: String,
    /// Predict as with the compiler's -m: the Edge TPU runtime version to target.
    #[arg(short = 'm', long)]
    min_runtime_version: Option<u32>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut argv = vec![args.model.into_os_string()];
    if args.json {
        argv.push("--json".into());
    }
    if args.allow_multiple_subgraphs {
        argv.push("-a".into());
    }
    argv.push("--compiler-version".into());
    argv.push(args.compiler_version.into());
    if let Some(runtime) = args.min_runtime_version {
        argv.push("--min-runtime-version".into());
        argv.push(runtime.to_string().into());
    }
    crate::delegate::run_release_binary("stage-edgetpu", "edgetpu-check", argv)
}
