//! `cargo xtask setup`: provisions what the local executor needs — the
//! managed Python environment, the LiteRT library and the demo video —
//! idempotently (fast when everything is in place).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;

#[derive(clap::Args, Default)]
pub struct Args {
    /// Also download every package of the Python lock into DIR (a wheelhouse
    /// for machines without network), then install from it.
    #[arg(long, value_name = "DIR")]
    wheelhouse: Option<PathBuf>,
    /// Install the Python packages only from DIR (a wheelhouse), never the network.
    #[arg(long, value_name = "DIR")]
    offline: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let root = crate::workspace_root();
    let started = Instant::now();
    provision(&root, args)?;
    eprintln!("setup done in {:.1} s", started.elapsed().as_secs_f64());
    Ok(ExitCode::SUCCESS)
}

/// Provisions everything; returns the managed interpreter.
pub fn provision(root: &std::path::Path, args: Args) -> anyhow::Result<PathBuf> {
    let options = provision::python_env::SetupOptions {
        wheelhouse_fill: args.wheelhouse,
        offline_from: args.offline,
    };
    let env = provision::python_env::ensure(root, &options)
        .context("provisioning the managed Python environment")?;
    eprintln!(
        "python env: {} (lock {})",
        env.python.display(),
        &env.lock_hash[..12.min(env.lock_hash.len())]
    );
    let litert = provision::litert::ensure(root).context("provisioning the LiteRT library")?;
    eprintln!("LiteRT: {}", litert.display());
    let video = provision::apt_package::prefetch_vtest().context("fetching the vtest video")?;
    eprintln!("vtest video: {}", video.path.display());
    Ok(env.python)
}
