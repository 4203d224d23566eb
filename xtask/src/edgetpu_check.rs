//! `cargo xtask edgetpu-check MODEL.tflite [--json] [-a]`: predicts the Edge
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
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut argv = vec![args.model.into_os_string()];
    if args.json {
        argv.push("--json".into());
    }
    if args.allow_multiple_subgraphs {
        argv.push("-a".into());
    }
    crate::delegate::run_release_binary("stage-edgetpu", "edgetpu-check", argv)
}
