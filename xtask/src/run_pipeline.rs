//! `cargo xtask pipeline FILE`: runs a pipeline and prints a summary table.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use pipeline::engine::{RunOptions, Session, Status};
use pipeline::executor::Executor;

use crate::display::{self, LiveDisplay};

#[derive(clap::Args)]
pub struct Args {
    /// The pipeline YAML.
    file: PathBuf,
    /// Show what would run and why, without running anything.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    selection: Selection,
    /// Stages run at the same time.
    #[arg(long, short, default_value_t = 2)]
    jobs: usize,
    /// Run every stage with this executor.
    #[arg(long, value_parser = parse_executor)]
    executor: Option<Executor>,
    /// Fail at once instead of waiting when another run holds the cache.
    #[arg(long)]
    no_wait: bool,
    #[command(flatten)]
    progress: display::ProgressArgs,
    #[command(flatten)]
    remote: crate::remote::RemoteArgs,
}

/// Which stages a run takes and which it re-runs (`pipeline` and `plan`).
#[derive(clap::Args)]
pub struct Selection {
    /// Run only this stage and what it needs (repeatable).
    #[arg(long, value_name = "STAGE")]
    pub only: Vec<String>,
    /// Run this stage even when it is cached (repeatable).
    #[arg(long, value_name = "STAGE")]
    pub force: Vec<String>,
}

pub fn parse_executor(text: &str) -> Result<Executor, String> {
    Executor::parse(text)
        .ok_or_else(|| format!("unknown executor `{text}`; expected `local`, `docker` or `slurm`"))
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let workspace = crate::workspace();
    let live = LiveDisplay::with_progress_interval(args.progress.interval()?);
    let mut session =
        Session::load(&workspace, &args.file, &live).map_err(display::engine_error)?;
    session
        .use_remote(&args.remote.choice())
        .map_err(display::engine_error)?;
    let options = RunOptions {
        only: args.selection.only,
        force: args.selection.force,
        jobs: args.jobs,
        executor: args.executor,
        wait_for_lock: !args.no_wait,
        python: Default::default(),
    };
    if args.dry_run {
        let plan = session.plan(&options).map_err(display::engine_error)?;
        display::print_plan(&session, &plan);
        return Ok(ExitCode::SUCCESS);
    }
    let report = session
        .run(&options, &live)
        .map_err(display::engine_error)
        .context("the pipeline did not run")?;
    live.clear();
    display::print_summary(&report);
    if report.count(Status::Failed) > 0 {
        for failed in report.failed() {
            display::print_failure(failed);
        }
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}
