//! Commands whose work lives in a heavier crate: xtask builds and runs that
//! crate's release binary with `cargo run`, so xtask itself stays light.

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
    let status = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .current_dir(crate::workspace_root())
        .args([
            "run",
            "--quiet",
            "--release",
            "-p",
            package,
            "--bin",
            binary,
            "--",
        ])
        .args(args.into_iter().map(Into::into))
        .status()
        .with_context(|| format!("running cargo to build and start {binary}"))?;
    Ok(match status.code() {
        Some(0) => ExitCode::SUCCESS,
        Some(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        None => ExitCode::FAILURE,
    })
}
