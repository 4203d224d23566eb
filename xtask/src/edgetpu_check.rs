//! `cargo xtask edgetpu-check MODEL.tflite [--json] [-a]`: predicts the Edge
//! TPU op mapping without the compiler. Delegates to the `edgetpu-check`
//! binary of the `stage-edgetpu` crate, which carries the heavy dependencies.

use std::process::{Command, ExitCode};

use anyhow::Context;

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
    let mut command = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    command
        .current_dir(crate::workspace_root())
        .args([
            "run",
            "--quiet",
            "--release",
            "-p",
            "stage-edgetpu",
            "--bin",
            "edgetpu-check",
            "--",
        ])
        .arg(&args.model);
    if args.json {
        command.arg("--json");
    }
    if args.allow_multiple_subgraphs {
        command.arg("-a");
    }
    let status = command
        .status()
        .context("running cargo to build and start edgetpu-check")?;
    Ok(match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        None => ExitCode::FAILURE,
    })
}
