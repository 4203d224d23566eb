//! `cargo xtask gc`: removes cache entries that no lock file refers to.

use std::process::ExitCode;

#[derive(clap::Args)]
pub struct Args {
    /// Only report what would be removed.
    #[arg(long)]
    dry_run: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let workspace = crate::workspace();
    let report = pipeline::maintenance::gc(&workspace, args.dry_run)?;
    let verb = if args.dry_run {
        "would remove"
    } else {
        "removed"
    };
    println!(
        "{verb} {} entries ({:.1} MiB), kept {} referenced by {} lock file(s)",
        report.removed,
        report.bytes_freed as f64 / (1 << 20) as f64,
        report.kept,
        report.lock_files
    );
    Ok(ExitCode::SUCCESS)
}
