//! `cargo xtask clean`: removes the cache, logs, output links and cached
//! stage descriptions (provisioned tools are kept).

use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {}

pub fn run(_args: Args) -> anyhow::Result<ExitCode> {
    let workspace = crate::workspace();
    let freed = pipeline::maintenance::clean(&workspace)?;
    println!(
        "removed {:.1} MiB under {}",
        freed as f64 / (1 << 20) as f64,
        workspace.state_dir.display()
    );
    Ok(ExitCode::SUCCESS)
}
