//! `cargo xtask stages`: the stage kinds found in the workspace.

use std::process::ExitCode;

use pipeline::catalog::Catalog;
use pipeline::digest::StateDb;

#[derive(clap::Args)]
pub struct Args {
    /// Print the descriptions as JSON.
    #[arg(long)]
    json: bool,
}

pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let workspace = crate::workspace();
    let catalog = Catalog::discover(&workspace)?;
    let db = StateDb::open(&workspace.state_db_path());
    let kinds: Vec<&str> = catalog.kinds().collect();
    let descriptions = catalog.describe(&kinds, &workspace, &db)?;
    let _ = db.save();
    if args.json {
        println!("{}", serde_json::to_string_pretty(&descriptions)?);
        return Ok(ExitCode::SUCCESS);
    }
    for (kind, description) in &descriptions {
        let package = catalog
            .get(kind)
            .map(|s| s.package.as_str())
            .unwrap_or_default();
        let python = if description.uses_python {
            " [python]"
        } else {
            ""
        };
        println!("{kind} ({package}){python}: {}", description.description);
        for input in &description.inputs {
            let shape = if input.many { "list" } else { "one" };
            let need = if input.required {
                "required"
            } else {
                "optional"
            };
            println!(
                "    input  {:<18} {shape}, {need}: {}",
                input.name, input.doc
            );
        }
        for output in &description.outputs {
            println!("    output {:<18} {}", output.name, output.doc);
        }
        for param in &description.params {
            let default = match (&param.default, param.required) {
                (Some(d), _) => format!(" = {d}"),
                (None, true) => " (required)".to_owned(),
                (None, false) => String::new(),
            };
            let choices = if param.choices.is_empty() {
                String::new()
            } else {
                format!(
                    " [{}]",
                    param
                        .choices
                        .iter()
                        .map(|c| c.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            };
            println!(
                "    param  {:<18} {}{default}{choices}: {}",
                param.name, param.ty, param.doc
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
