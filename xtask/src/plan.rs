//! `cargo xtask plan FILE [--only S] [--force S]`: what a run would do and
//! why, without running.

use std::path::PathBuf;
use std::process::ExitCode;

use pipeline::engine::{RunOptions, Session};
use pipeline::executor::Executor;

use crate::display;

#[derive(clap::Args)]
pub struct Args {
    /// The pipeline YAML.
    file: PathBuf,
    /// Plan for this executor.
    #[arg(long, value_parser = crate::run_pipeline::parse_executor)]
    executor: Option<Executor>,
    #[command(flatten)]
    selection: crate::run_pipeline::Selection,
    #[command(flatten)]
    remote: crate::remote::RemoteArgs,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let workspace = crate::workspace();
    let live = display::LiveDisplay::new();
    let mut session =
        Session::load(&workspace, &args.file, &live).map_err(display::engine_error)?;
    session
        .use_remote(&args.remote.choice())
        .map_err(display::engine_error)?;
    let options = RunOptions {
        only: args.selection.only,
        force: args.selection.force,
        executor: args.executor,
        ..Default::default()
    };
    let plan = session.plan(&options).map_err(display::engine_error)?;
    display::print_plan(&session, &plan);
    Ok(ExitCode::SUCCESS)
}
