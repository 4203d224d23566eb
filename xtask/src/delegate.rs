//! Commands whose work lives in a heavier crate: xtask builds and runs that
//! crate's release binary (`cargo run`) or benchmark (`cargo bench`), so
//! xtask itself stays light.

use std::ffi::OsString;
use std::process::{Command, ExitCode};

use anyhow::Context;

/// Arguments handed unchanged to the delegated binary.
#[derive(clap::Args)]
pub struct PassThrough {
    /// Arguments of the binary (`-- --help` lists them).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub args: Vec<String>,
}

/// `cargo run --release -p PACKAGE --bin BINARY -- ARGS`, from the workspace
/// root; the binary's exit code becomes ours.
pub fn run_release_binary<I, S>(package: &str, binary: &str, args: I) -> anyhow::Result<ExitCode>
where
    I: IntoIterator<Item = S>,
    S: Into<OsString>,
{
    let cargo_args = [
        "run",
        "--quiet",
        "--release",
        "-p",
        package,
        "--bin",
        binary,
    ];
    run_cargo(&cargo_args, binary, args)
}

/// `cargo bench -p PACKAGE --bench BENCH -- ARGS` for a `harness = false`
/// benchmark under the crate's `benches/` (outside the stage's source hash),
/// built with the release-based bench profile; cargo appends `--bench` to
/// ARGS. The benchmark's exit code becomes ours.
pub fn run_bench<I, S>(package: &str, bench: &str, args: I) -> anyhow::Result<ExitCode>
where
    I: IntoIterator<Item = S>,
    S: Into<OsString>,
{
    let cargo_args = ["bench", "--quiet", "-p", package, "--bench", bench];
    run_cargo(&cargo_args, bench, args)
}

/// `cargo CARGO_ARGS -- ARGS` from the workspace root, cargo's and the
/// program's output on the terminal.
fn run_cargo<I, S>(cargo_args: &[&str], program: &str, args: I) -> anyhow::Result<ExitCode>
where
    I: IntoIterator<Item = S>,
    S: Into<OsString>,
{
    let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .current_dir(crate::workspace_root())
        .args(cargo_args)
        .arg("--")
        .args(args.into_iter().map(Into::into))
        .status()
        .with_context(|| format!("running cargo to build and start {program}"))?;
    Ok(match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        None => ExitCode::FAILURE,
    })
}
