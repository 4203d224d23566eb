//! `cargo xtask test`: provisions (as `setup` does), then runs the whole
//! workspace's tests with the managed interpreter in `EDGEPIPE_PYTHON` and
//! `EDGEPIPE_REQUIRE_PYTHON=1`, so a test that needs it fails rather than
//! returning early when it is missing.

use std::process::{Command, ExitCode};

use anyhow::Context;

#[derive(clap::Args, Default)]
pub struct Args {
    /// Skip provisioning (tests needing the Python env then fail unless one
    /// is already provisioned).
    #[arg(long)]
    no_setup: bool,
    /// Extra arguments for `cargo test` (after `--`).
    #[arg(last = true)]
    cargo_args: Vec<String>,
}

/// Makes `stage_test_support::require_python` fail instead of returning
/// `None` (`stage_test_support::REQUIRE_PYTHON_VAR`; xtask does not link it).
const REQUIRE_PYTHON_VAR: &str = "EDGEPIPE_REQUIRE_PYTHON";

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let root = crate::workspace_root();
    let mut command = Command::new(pipeline::catalog::cargo());
    command
        .current_dir(&root)
        .args(["test", "--workspace"])
        .args(&args.cargo_args)
        .env(REQUIRE_PYTHON_VAR, "1");
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
