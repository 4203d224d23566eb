//! `cargo xtask bench-map [ARGS]`: edgepipe's COCO mAP against pycocotools on
//! 5,000 synthetic images × 100 detections (prints the time ratio and the
//! largest metric difference). Delegates to the `bench-map` binary of
//! `stage-bench`; ARGS pass through (`--images`, `--detections`,
//! `--categories`, `--seed`).

use std::process::{Command, ExitCode};

use anyhow::Context;

#[derive(clap::Args)]
pub struct Args {
    /// Arguments for the benchmark binary (see its --help).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .current_dir(crate::workspace_root())
        .args([
            "run",
            "--quiet",
            "--release",
            "-p",
            "stage-bench",
            "--bin",
            "bench-map",
            "--",
        ])
        .args(&args.args)
        .status()
        .context("running cargo to build and start bench-map")?;
    Ok(match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        None => ExitCode::FAILURE,
    })
}
