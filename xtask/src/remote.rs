//! `cargo xtask push|pull [--remote R] FILE`: send the cache entries a
//! pipeline's lock file names to the remote cache, or fetch them from it;
//! and the `--remote` / `--no-remote` flags shared with `pipeline` and `plan`.

use std::path::PathBuf;
use std::process::ExitCode;

use pipeline::engine::Session;
use pipeline::remote_cache::{RemoteChoice, RemoteEvent, Transfer};

use crate::display::{self, LiveDisplay};

/// Which remote cache to use.
#[derive(clap::Args, Clone)]
pub struct RemoteArgs {
    /// Use this remote cache (`s3://BUCKET/PREFIX`) instead of the configured one.
    #[arg(long, value_name = "S3_URL", conflicts_with = "no_remote")]
    remote: Option<String>,
    /// Use no remote cache, even when one is configured.
    #[arg(long)]
    no_remote: bool,
}

impl RemoteArgs {
    pub fn choice(&self) -> RemoteChoice {
        match (&self.remote, self.no_remote) {
            (_, true) => RemoteChoice::Disabled,
            (Some(url), false) => RemoteChoice::Url(url.clone()),
            (None, false) => RemoteChoice::Configured,
        }
    }
}

#[derive(clap::Args)]
pub struct Args {
    /// The pipeline YAML (its lock file names the entries).
    file: PathBuf,
    /// Use this remote cache (`s3://BUCKET/PREFIX`) instead of the configured one.
    #[arg(long, value_name = "S3_URL")]
    remote: Option<String>,
}

pub fn push(args: Args) -> anyhow::Result<ExitCode> {
    transfer(args, pipeline::remote_sync::push)
}

pub fn pull(args: Args) -> anyhow::Result<ExitCode> {
    transfer(args, pipeline::remote_sync::pull)
}

fn transfer(
    args: Args,
    action: fn(
        &Session,
        &dyn pipeline::engine::Observer,
    ) -> Result<Vec<RemoteEvent>, pipeline::engine::EngineError>,
) -> anyhow::Result<ExitCode> {
    let workspace = crate::workspace();
    let live = LiveDisplay::new();
    let mut session =
        Session::load(&workspace, &args.file, &live).map_err(display::engine_error)?;
    if let Some(url) = args.remote {
        session
            .use_remote(&RemoteChoice::Url(url))
            .map_err(display::engine_error)?;
    }
    let remote = session
        .cache()
        .remote()
        .map(|r| r.describe())
        .unwrap_or_default();
    let events = action(&session, &live).map_err(display::engine_error)?;
    live.clear();
    let count = |f: fn(&Transfer) -> bool| events.iter().filter(|e| f(&e.transfer)).count();
    let failed = count(|t| matches!(t, Transfer::Failed(_)));
    println!(
        "{}: {} pushed, {} pulled, {} already there, {} missing, {failed} failed ({remote})",
        session.pipeline.name,
        count(|t| matches!(t, Transfer::Pushed(s) if !s.already_there)),
        count(|t| matches!(t, Transfer::Pulled(_))),
        count(|t| {
            matches!(t, Transfer::Present) || matches!(t, Transfer::Pushed(s) if s.already_there)
        }),
        count(|t| matches!(t, Transfer::Missing)),
    );
    Ok(if failed > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
