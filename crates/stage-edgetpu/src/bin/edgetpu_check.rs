//! `edgetpu-check MODEL.tflite [--json] [-a] [--compiler-version V] [-m N]`: predicts the Edge TPU mapping
//! of a CPU model (or reports a compiled one) without running the compiler.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use stage_edgetpu::{PredictOptions, Target, analyze, check_json, lint, report};

const USAGE: &str = "usage: edgetpu-check MODEL.tflite [--json] [-a|--allow-multiple-subgraphs] \
                     [--compiler-version VERSION] [-m|--min-runtime-version N]";

/// Exit codes: 0 checked, 1 the compiler would reject the model, 2 bad input.
fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::from(2)
        }
    }
}

/// Returns whether the compiler would accept the model.
fn run() -> anyhow::Result<bool> {
    let mut model = None;
    let mut json = false;
    let mut options = PredictOptions::default();
    let mut compiler_version: Option<String> = None;
    let mut min_runtime_version: Option<u32> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .with_context(|| format!("{name} needs a value\n{USAGE}"))
        };
        match arg.as_str() {
            "--json" => json = true,
            "-a" | "--allow-multiple-subgraphs" => options.allow_multiple_subgraphs = true,
            "--compiler-version" => compiler_version = Some(value("--compiler-version")?),
            "-m" | "--min-runtime-version" => {
                let text = value("--min-runtime-version")?;
                min_runtime_version = Some(text.parse().with_context(|| {
                    format!("--min-runtime-version `{text}` is not a runtime number (e.g. 13)")
                })?);
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(true);
            }
            other if other.starts_with('-') => bail!("unknown option `{other}`\n{USAGE}"),
            other if model.is_none() => model = Some(PathBuf::from(other)),
            other => bail!("unexpected argument `{other}`\n{USAGE}"),
        }
    }
    let Some(path) = model else {
        bail!("no model given\n{USAGE}")
    };
    options.target = Target::new(compiler_version.as_deref(), min_runtime_version)?;
    let model = tflite::Model::from_path(&path).context("reading the model")?;
    let name = path.display().to_string();
    let analysis = analyze(&model, &name, options).with_context(|| format!("analysing {name}"))?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&check_json(&name, &analysis))?
        );
    } else {
        let findings = lint::lint(&model, &analysis);
        print!("{}", report::render(&name, &analysis, &findings));
    }
    if let Some(error) = &analysis.model_error {
        eprintln!("error: the Edge TPU compiler would reject {name}: {error}");
    }
    Ok(analysis.model_error.is_none())
}
