//! `cargo xtask bench-harness [ARGS]`: the bench stage's measured mean latency
//! against a plain Python `ai_edge_litert` loop over the same model (prints
//! `ratio: X.XX`). Delegates to the `bench-harness` binary of `stage-bench`,
//! which links LiteRT; ARGS pass through (`--model`, `--records`, `--threads`,
//! `--runs`, `--warmup`, `--rounds`).

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
            "bench-harness",
            "--",
        ])
        .args(&args.args)
        .status()
        .context("running cargo to build and start bench-harness")?;
    Ok(match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        None => ExitCode::FAILURE,
    })
}
