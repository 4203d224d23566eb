//! `cargo xtask schema`: the JSON Schema of pipeline files, with the params
//! of every stage kind found in the workspace.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use pipeline::catalog::Catalog;
use pipeline::digest::StateDb;

#[derive(clap::Args)]
pub struct Args {
    /// Write the schema to this file instead of stdout.
    #[arg(long)]
    out: Option<PathBuf>,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let workspace = crate::workspace();
    let catalog = Catalog::discover(&workspace)?;
    let db = StateDb::open(&workspace.state_db_path());
    let kinds: Vec<&str> = catalog.kinds().collect();
    let descriptions = catalog.describe(&kinds, &workspace, &db)?;
    let _ = db.save();
    let text = serde_json::to_string_pretty(&pipeline::schema::pipeline_schema(&descriptions))?;
    match args.out {
        Some(path) => {
            stage_api::write_atomic(&path, format!("{text}\n").as_bytes())
                .with_context(|| format!("writing {}", path.display()))?;
            eprintln!("wrote {}", path.display());
        }
        None => println!("{text}"),
    }
    Ok(ExitCode::SUCCESS)
}
