//! `cargo xtask bench-tfrecord`: the dataset stage's TFRecord benchmark,
//! run as the release binary `bench-tfrecord` of `stage-dataset` (which
//! carries the heavy dependencies); arguments are passed through.

use std::process::{Command, ExitCode};

use anyhow::Context;

#[derive(clap::Args)]
pub struct Args {
    /// Arguments of `bench-tfrecord` (`--images N`, `--repeat N`, `--no-python`, `--json FILE`; `-- --help` lists them).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    args: Vec<String>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args([
            "run",
            "--release",
            "--quiet",
            "--package",
            "stage-dataset",
            "--bin",
            "bench-tfrecord",
            "--",
        ])
        .args(&args.args)
        .current_dir(crate::workspace_root())
        .status()
        .context("running cargo for bench-tfrecord")?;
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
