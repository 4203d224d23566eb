//! `cargo xtask test`: provisions (as `setup` does), then runs the whole
//! workspace's tests with the managed interpreter in `EDGEPIPE_PYTHON`.

use std::process::{Command, ExitCode};

use anyhow::Context;

#[derive(clap::Args)]
pub struct Args {
    /// Skip provisioning (tests needing the Python env then skip themselves).
    #[arg(long)]
    no_setup: bool,
    /// Extra arguments for `cargo test` (after `--`).
    #[arg(last = true)]
    cargo_args: Vec<String>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let root = crate::workspace_root();
    let mut command = Command::new(pipeline::catalog::cargo());
    command
        .current_dir(&root)
        .args(["test", "--workspace"])
        .args(&args.cargo_args);
    if !args.no_setup {
        let python = crate::setup::provision(&root, Default::default())?;
        command.env("EDGEPIPE_PYTHON", python);
    }
    let status = command.status().context("running cargo test")?;
    Ok(if status.success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
